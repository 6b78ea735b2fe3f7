//! The request path's one question about volume: may this account's request through, and
//! are its records forwarded? Answered from local state (the policies the feed sent, a
//! rate limiter per account, the ledger's leases), with no lock and no await. An account
//! without a policy costs one empty-map check.

use foldhash::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use governor::clock::Clock as _;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio_util::sync::CancellationToken;

use super::bank::{Bank, Day};
use super::policy::{Rate, VolumePolicy};
use super::{Ledger, Verdict};
use crate::clock::{Clock, DAY_MS};
use crate::config::OverCap;
use crate::model::{AccountId, Kind};
use crate::telemetry::VolumeMetrics;
use crate::tokens::wire::VolumeChanges;

/// What happens to an admitted request's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Forwarded; `log_size`: each log record gains `LogSize` first (`docSizeSetting`).
    Forward { log_size: bool },
    /// Accepted and not forwarded: the account reached its daily volume.
    Capped,
}

impl Admission {
    const PLAIN: Admission = Admission::Forward { log_size: false };
}

/// A request refused with 503 and `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Past the account's rate; the wait until its bucket holds the request.
    RateLimited { retry_after: Duration },
    /// Capped, with `over_cap = "refuse"`: the wait until the UTC day turns.
    Capped { retry_after: Duration },
}

/// One account's policy as the request path uses it.
struct Rules {
    policy: VolumePolicy,
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
}

impl Rules {
    fn new(policy: VolumePolicy, current: Option<&Arc<Rules>>) -> Rules {
        // An unchanged rate keeps its bucket: a feed update must not refill it.
        let limiter = match current {
            Some(r) if r.policy.rate == policy.rate => r.limiter.clone(),
            _ => policy.rate.map(|rate| Arc::new(limiter(rate))),
        };
        Rules { policy, limiter }
    }
}

fn limiter(rate: Rate) -> DefaultDirectRateLimiter {
    let per_sec = NonZeroU32::new(clamp_u32(rate.bytes_per_sec)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(clamp_u32(rate.burst_bytes.max(rate.bytes_per_sec)))
        .unwrap_or(NonZeroU32::MIN);
    RateLimiter::direct(Quota::per_second(per_sec).allow_burst(burst))
}

fn clamp_u32(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The gateway's volume state: policies by account, and the ledger of leases.
pub struct Gate {
    accounts: ArcSwap<HashMap<AccountId, Arc<Rules>>>,
    pub(super) ledger: Arc<Ledger>,
    clock: Clock,
    over_cap: OverCap,
    pub(super) metrics: VolumeMetrics,
}

impl Gate {
    pub fn new(lease_bytes: u64, over_cap: OverCap, clock: Clock, metrics: VolumeMetrics) -> Gate {
        Gate {
            accounts: ArcSwap::from_pointee(HashMap::default()),
            ledger: Arc::new(Ledger::new(lease_bytes)),
            clock,
            over_cap,
            metrics,
        }
    }

    /// Today, UTC, by this gateway's clock.
    pub fn today(&self) -> Day {
        Day::of_epoch_ms(u64::try_from(self.clock.now_ms()).unwrap_or(0))
    }

    /// Admits `records` records of `bytes` bytes (as accepted) for `account`. Metrics and
    /// traces are rate limited and never capped (their accounts have no daily volume).
    pub fn admit(
        &self,
        account: AccountId,
        kind: Kind,
        bytes: u64,
        records: u64,
    ) -> Result<Admission, Refused> {
        let accounts = self.accounts.load();
        if accounts.is_empty() {
            return Ok(Admission::PLAIN);
        }
        let Some(rules) = accounts.get(&account) else {
            return Ok(Admission::PLAIN);
        };
        if let Some(limiter) = &rules.limiter {
            let cells = NonZeroU32::new(clamp_u32(bytes)).unwrap_or(NonZeroU32::MIN);
            let outcome = match limiter.check_n(cells) {
                Ok(outcome) => outcome,
                // Larger than the burst: it passes only through an empty bucket, whole.
                Err(_) => {
                    let burst = NonZeroU32::new(clamp_u32(
                        rules
                            .policy
                            .rate
                            .map_or(1, |r| r.burst_bytes.max(r.bytes_per_sec)),
                    ))
                    .unwrap_or(NonZeroU32::MIN);
                    limiter.check_n(burst).unwrap_or(Ok(()))
                }
            };
            if let Err(not_until) = outcome {
                self.metrics.refused("rate_limit");
                let wait = not_until.wait_time_from(limiter.clock().now());
                return Err(Refused::RateLimited {
                    retry_after: wait.max(Duration::from_secs(1)),
                });
            }
        }
        if kind != Kind::Logs {
            return Ok(Admission::PLAIN);
        }
        match self.ledger.charge(account, bytes, self.today()) {
            Verdict::Forward => Ok(Admission::Forward {
                log_size: rules.policy.doc_size,
            }),
            Verdict::Capped => match self.over_cap {
                OverCap::Accept => {
                    self.metrics.capped(kind, records, bytes);
                    Ok(Admission::Capped)
                }
                OverCap::Refuse => {
                    self.metrics.refused("capped");
                    Err(Refused::Capped {
                        retry_after: self.until_tomorrow(),
                    })
                }
            },
        }
    }

    /// The time left in the UTC day, at least a second.
    fn until_tomorrow(&self) -> Duration {
        let now = self.clock.now_ms();
        let left = DAY_MS - now.rem_euclid(DAY_MS);
        Duration::from_millis(u64::try_from(left).unwrap_or(0)).max(Duration::from_secs(1))
    }

    /// Every account's policy as held now (what a gateway persists with its table).
    pub fn policies(&self) -> Vec<VolumePolicy> {
        let mut policies: Vec<VolumePolicy> = self
            .accounts
            .load()
            .values()
            .map(|r| r.policy.clone())
            .collect();
        policies.sort_by_key(|p| p.account_id);
        policies
    }

    /// Every account's policy, from a snapshot: replaces all.
    pub fn set_policies(&self, policies: Vec<VolumePolicy>) {
        let current = self.accounts.load();
        let next = policies
            .into_iter()
            .map(|p| {
                let id = p.account_id;
                (id, Arc::new(Rules::new(p, current.get(&id))))
            })
            .collect();
        self.install(next);
    }

    /// The plans a change names replace what this gateway held for them.
    pub fn apply(&self, changes: VolumeChanges) {
        let current = self.accounts.load();
        let mut next: HashMap<AccountId, Arc<Rules>> = current
            .iter()
            .filter(|(id, r)| {
                !changes.families.contains(&r.policy.main_id)
                    && !changes.deletes.contains(id)
                    && !changes.deletes.contains(&r.policy.main_id)
            })
            .map(|(&id, r)| (id, Arc::clone(r)))
            .collect();
        for p in changes.policies {
            let id = p.account_id;
            next.insert(id, Arc::new(Rules::new(p, current.get(&id))));
        }
        self.install(next);
    }

    fn install(&self, next: HashMap<AccountId, Arc<Rules>>) {
        let allowances: Vec<_> = next
            .iter()
            .filter_map(|(&id, r)| r.policy.allowance().map(|a| (id, a)))
            .collect();
        self.metrics
            .policies
            .set(i64::try_from(next.len()).unwrap_or(i64::MAX));
        self.ledger.set_allowances(allowances, self.today());
        self.accounts.store(Arc::new(next));
    }

    /// The accounts this gateway holds capped today (for the usage report).
    pub fn capped(&self) -> Vec<AccountId> {
        let capped = self.ledger.capped();
        self.metrics
            .capped_accounts
            .set(i64::try_from(capped.len()).unwrap_or(i64::MAX));
        capped
    }

    /// Returns once an account has become capped since the last call.
    pub async fn capped_changed(&self) {
        self.ledger.capped_wake.notified().await;
    }

    /// The policies of accounts that write utilization records.
    pub(super) fn utilization_policies(&self) -> Vec<VolumePolicy> {
        self.accounts
            .load()
            .values()
            .filter(|r| r.policy.utilization_minutes.is_some())
            .map(|r| r.policy.clone())
            .collect()
    }

    pub(super) fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Takes leases from `bank` as the ledger wants them, until `stop`; a failed call is
    /// tried again after `retry` while requests go on, counted ahead of the lease.
    pub async fn run<B: Bank>(
        self: Arc<Self>,
        bank: Arc<B>,
        retry: Duration,
        stop: CancellationToken,
    ) {
        loop {
            tokio::select! {
                () = self.ledger.wake.notified() => {}
                () = tokio::time::sleep(retry) => {}
                () = stop.cancelled() => return,
            }
            match self.ledger.refill(bank.as_ref()).await {
                Ok(0) => {}
                Ok(_) => self.metrics.bank_call("acquire", true),
                Err(e) => {
                    self.metrics.bank_call("acquire", false);
                    self.metrics.bank_outage(&e);
                }
            }
        }
    }
}
