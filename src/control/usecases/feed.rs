//! What gateways ask of the control plane (DESIGN §2, §4): the snapshot of shipping-token
//! digests and read grants, the changes since a version (waiting for one), one digest for
//! a miss cache, and their usage reports. The caller has shown the feed secret
//! (`callers::gateway`); the wire shapes are `tokens::wire`'s.

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::{Stream, TryStreamExt};

use crate::clock::DAY_MS;
use crate::config::RateLimits;
use crate::control::plane::ControlPlane;
use crate::control::refusal::Refusal;
use crate::control::rules::{self, AccountType, Plan};
use crate::control::store::drop_filters::{self as filter_store, Dropped, Table};
use crate::control::store::feed as store;
use crate::control::store::shared_tokens as shared_store;
use crate::control::store::volume::{self as volume_store, VolumeRow};
use crate::control::store::{Actor, StoreError, Tx};
use crate::control::store::{Store, accounts, shipping_tokens};
use crate::control::usecases::change::audit;
use crate::control::volume::{Allocation, BYTES_PER_GB, RateLimit, shared_gb};
use crate::model::{AccountId, Kind};
use crate::telemetry::TOP_ACCOUNTS;
use crate::tokens::wire::{
    Changes, Digest, DropFilterChanges, GrantAccount, GrantApiToken, GrantChanges,
    GrantSharedToken, LogDropFilter, MetricsDropFilter, Rate, SnapshotEntry, UsageReport,
    VolumeChanges, VolumePolicy,
};

/// How often a control plane reads the feed's version from the store, so that a change
/// committed by another control plane on the same PostgreSQL wakes this one's long polls:
/// one query a second per control plane, however many gateways wait on it.
const RECHECK: Duration = Duration::from_secs(1);

/// The whole table as of `version`, read row by row so it never sits in memory whole.
/// Rows committed after `version` may ride along; the next `changes` applies them again.
pub struct Snapshot {
    pub version: u64,
    store: Store,
    rates: Rates,
}

impl Snapshot {
    pub fn tokens(&self) -> impl Stream<Item = Result<SnapshotEntry, Refusal>> + Send + '_ {
        store::entries(&self.store).map_err(Refusal::from)
    }

    pub fn grant_accounts(&self) -> impl Stream<Item = Result<GrantAccount, Refusal>> + Send + '_ {
        store::grant_accounts(&self.store).map_err(Refusal::from)
    }

    pub fn grant_api_tokens(
        &self,
    ) -> impl Stream<Item = Result<GrantApiToken, Refusal>> + Send + '_ {
        store::grant_api_tokens(&self.store).map_err(Refusal::from)
    }

    pub fn grant_shared_tokens(
        &self,
    ) -> impl Stream<Item = Result<GrantSharedToken, Refusal>> + Send + '_ {
        store::grant_shared_tokens(&self.store).map_err(Refusal::from)
    }

    pub fn log_filters(&self) -> impl Stream<Item = Result<LogDropFilter, Refusal>> + Send + '_ {
        filter_store::log_feed(&self.store).map_err(Refusal::from)
    }

    pub fn metrics_filters(
        &self,
    ) -> impl Stream<Item = Result<MetricsDropFilter, Refusal>> + Send + '_ {
        filter_store::metrics_feed(&self.store).map_err(Refusal::from)
    }

    /// Every account's volume policy (one row per account: small beside the tokens).
    pub async fn volumes(&self) -> Result<Vec<VolumePolicy>, Refusal> {
        let rows = volume_store::volume_rows(&mut self.store.conn().await?).await?;
        Ok(policies(&rows, &self.rates).1)
    }
}

/// The snapshot's version, read first, and its rows to stream.
pub async fn snapshot(cp: &ControlPlane) -> Result<Snapshot, Refusal> {
    let version = store::current_version(&mut cp.store.conn().await?).await?;
    Ok(Snapshot {
        version: version_u64(version),
        store: cp.store.clone(),
        rates: Rates::of(cp),
    })
}

/// Upserts and deletes since `since` (with `grants`, the read grants' too; with
/// `filters`, the drop filters'), waiting up to `wait` for one to happen; nothing new when the wait runs out or serving stops. A
/// `since` the feed no longer keeps is gone: the gateway must fetch a snapshot.
pub async fn changes(
    cp: &ControlPlane,
    since: i64,
    wait: Duration,
    grants: bool,
    volumes: bool,
    filters: bool,
) -> Result<Changes, Refusal> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut notified = cp.feed.subscribe();
    loop {
        // A gateway at the version this control plane knows waits without a query: a
        // change here, or one another control plane made (`watch_versions`), wakes it.
        // So a fleet at rest costs the store nothing per gateway.
        let known = *notified.borrow_and_update();
        let (version, oldest) = match since == known {
            true => (known, i64::MIN),
            false => store::versions(&mut cp.store.conn().await?).await?,
        };
        if since < oldest || since > version {
            return Err(Refusal::Gone {
                code: "feed/VERSION_GONE",
                message: format!(
                    "the feed keeps changes from version {oldest} to {version}; fetch \
                     /v1/feed/snapshot"
                ),
            });
        }
        if since < version {
            let mut conn = cp.store.conn().await?;
            let (upserts, deletes) = store::changes_since(&mut conn, since).await?;
            // The volume changes name deleted accounts as the grants' deletes do.
            let grant_changes = match grants || volumes {
                true => Some(store::grant_changes_since(&mut conn, since).await?),
                false => None,
            };
            let volumes = match (volumes, &grant_changes) {
                (true, Some(g)) => {
                    let rows = volume_store::volume_rows_since(&mut conn, since).await?;
                    let (families, policies) = policies(&rows, &Rates::of(cp));
                    Some(VolumeChanges {
                        families,
                        policies,
                        deletes: g.deletes.accounts.clone(),
                    })
                }
                _ => None,
            };
            let filters = match filters {
                true => Some(filter_store::changes_since(&mut conn, since).await?),
                false => None,
            };
            return Ok(Changes {
                version: version_u64(version),
                upserts,
                deletes,
                grants: grant_changes.filter(|_| grants),
                volumes,
                filters,
            });
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Ok(no_changes(version, grants, volumes, filters));
        }
        tokio::select! {
            _ = notified.changed() => {}
            _ = tokio::time::sleep(deadline - now) => {}
            _ = cp.feed.stopping.cancelled() => {
                return Ok(no_changes(version, grants, volumes, filters));
            }
        }
    }
}

/// Reads the feed's version every `RECHECK` until serving stops and wakes the long polls
/// when another control plane moved it. It keeps one connection of the pool for this, so
/// a tick is one query (a connection taken each time would be checked first: another);
/// after an error it takes a fresh one at the next tick.
pub async fn watch_versions(cp: &ControlPlane) {
    let mut tick = tokio::time::interval(RECHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut held = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = cp.feed.stopping.cancelled() => return,
        }
        let mut conn = match held.take() {
            Some(conn) => conn,
            None => match cp.store.conn().await {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::debug!(error = %e, "feed: no connection to read the version");
                    continue;
                }
            },
        };
        match store::current_version(&mut conn).await {
            Ok(version) => {
                cp.published(version);
                held = Some(conn);
            }
            Err(e) => tracing::debug!(error = %e, "feed: the version could not be read"),
        }
    }
}

/// Nothing new: the answer to a poll that waited it out (or was cut short by shutdown).
fn no_changes(version: i64, grants: bool, volumes: bool, filters: bool) -> Changes {
    Changes {
        version: version_u64(version),
        upserts: Vec::new(),
        deletes: Vec::new(),
        grants: grants.then(GrantChanges::default),
        volumes: volumes.then(VolumeChanges::default),
        filters: filters.then(DropFilterChanges::default),
    }
}

/// What decides an account's rate: the plans' defaults, and the time a trial is judged at.
struct Rates {
    defaults: RateLimits,
    now_secs: i64,
}

impl Rates {
    fn of(cp: &ControlPlane) -> Rates {
        Rates {
            defaults: cp.rate_limits,
            now_secs: cp.clock.now_secs(),
        }
    }

    /// The main account's own rate limit, else its plan's default (a running trial has
    /// pro's). A trial's end reaches gateways with the family's next change.
    fn of_row(&self, r: &VolumeRow) -> Option<Rate> {
        let plan = rules::effective_plan(r.plan, r.trial_ends_at, self.now_secs);
        let default = match plan {
            Plan::Community => self.defaults.community,
            Plan::Pro => self.defaults.pro,
            Plan::Enterprise => self.defaults.enterprise,
        };
        r.main_rate_limit
            .or(default.map(RateLimit::of_config))
            .map(RateLimit::wire)
    }
}

/// The families (main account ids) among `rows`, grouped as the store orders them, and
/// the volume policies of their accounts that have something for gateways to enforce
/// (docs/volume.md, "The model" and "Rate limits"). Tied accounts (metrics, tracing,
/// security) have no volume: only the rate.
fn policies(rows: &[VolumeRow], rates: &Rates) -> (Vec<AccountId>, Vec<VolumePolicy>) {
    let mut families = Vec::new();
    let mut policies = Vec::new();
    for family in rows.chunk_by(|a, b| a.main_id() == b.main_id()) {
        let main_id = family[0].main_id();
        families.push(account_id(main_id));
        let plan_gb = family
            .iter()
            .find(|r| r.owner_id.is_none())
            .and_then(|main| main.max_daily_gb);
        let subs = family
            .iter()
            .filter(|r| r.owner_id.is_some() && r.account_type == AccountType::Logs);
        let pool_gb = plan_gb.map(|plan| shared_gb(plan, subs.map(allocation)));
        policies.extend(
            family
                .iter()
                .map(|r| match r.account_type {
                    AccountType::Logs => policy(r, plan_gb, pool_gb, rates.of_row(r)),
                    _ => rate_only(r, rates.of_row(r)),
                })
                .filter(|p| p.allowance().is_some() || p.doc_size || p.rate.is_some()),
        );
    }
    (families, policies)
}

/// A tied account's policy: its main account's rate, in a bucket of its own.
fn rate_only(r: &VolumeRow, rate: Option<Rate>) -> VolumePolicy {
    VolumePolicy {
        account_id: account_id(r.id),
        account_name: r.name.clone(),
        main_id: account_id(r.main_id()),
        reserved_bytes: 0,
        cap_bytes: None,
        pool_bytes: None,
        plan_bytes: None,
        is_flexible: false,
        doc_size: false,
        utilization_minutes: None,
        rate,
    }
}

fn allocation(r: &VolumeRow) -> Allocation {
    Allocation::of(
        r.extra.is_flexible,
        r.max_daily_gb,
        r.extra.reserved_daily_gb,
    )
}

/// One log account's policy in a plan of `plan_gb` whose shared pool is `pool_gb`. A fixed
/// sub-account without `maxDailyGB` is not limited: gateways never invent a cap of 0.
fn policy(
    r: &VolumeRow,
    plan_gb: Option<f64>,
    pool_gb: Option<f64>,
    rate: Option<Rate>,
) -> VolumePolicy {
    let (reserved_gb, cap_gb, pool_gb) = match (r.owner_id, allocation(r)) {
        (None, _) => (0.0, None, pool_gb),
        (Some(_), Allocation::Fixed { .. }) => match r.max_daily_gb {
            Some(gb) => (gb, Some(gb), None),
            None => (0.0, None, None),
        },
        (
            Some(_),
            Allocation::Flexible {
                reserved_gb,
                cap_gb,
            },
        ) => (reserved_gb, cap_gb, pool_gb),
    };
    let utilization = &r.extra.utilization_settings;
    VolumePolicy {
        account_id: account_id(r.id),
        account_name: r.name.clone(),
        main_id: account_id(r.main_id()),
        reserved_bytes: bytes(reserved_gb),
        cap_bytes: cap_gb.map(bytes),
        pool_bytes: pool_gb.map(bytes),
        plan_bytes: plan_gb.map(bytes),
        is_flexible: r.owner_id.is_some() && r.extra.is_flexible,
        doc_size: r.extra.doc_size_setting,
        utilization_minutes: utilization
            .frequency_minutes
            .filter(|_| utilization.utilization_enabled == Some(true))
            .and_then(|m| u32::try_from(m).ok()),
        rate,
    }
}

fn bytes(gb: f64) -> u64 {
    // Saturating: volumes were checked finite and >= 0 when set.
    (gb * BYTES_PER_GB).round() as u64
}

fn account_id(id: i64) -> AccountId {
    AccountId(u64::try_from(id).unwrap_or(0))
}

/// One digest, for a gateway's miss cache.
pub async fn lookup(cp: &ControlPlane, digest: &Digest) -> Result<Option<SnapshotEntry>, Refusal> {
    let mut conn = cp.store.conn().await?;
    Ok(store::entry_by_digest(&mut conn, &digest.to_hex()).await?)
}

/// Records a gateway's usage report. Last-used times only move forward (shipping tokens'
/// and shared tokens'); volumes add up, on the UTC day the report arrives (gateways report
/// every few seconds, so at most that much lands on the next day). Unknown ids are
/// ignored: the token or account was deleted after the gateway counted it.
pub async fn record_usage(cp: &ControlPlane, mut report: UsageReport) -> Result<(), Refusal> {
    let day_ms = cp.clock.today_utc_ms();
    // Rows are written in one order whatever order the gateway sent, so two reports about
    // the same accounts cannot deadlock each other on PostgreSQL.
    report
        .tokens
        .sort_by(|a, b| a.token_id.0.cmp(&b.token_id.0));
    report
        .accounts
        .sort_by_key(|a| (a.account_id, a.kind.index()));
    report.shared_tokens.sort_by_key(|s| s.token_id);
    let mut tx = cp.store.begin().await?;
    for t in &report.tokens {
        let Ok(id) = t.token_id.0.parse::<i64>() else {
            continue;
        };
        let last_used = i64::try_from(t.last_used).unwrap_or(i64::MAX);
        shipping_tokens::mark_used(&mut tx, id, last_used).await?;
    }
    for s in &report.shared_tokens {
        let Ok(id) = i64::try_from(s.token_id) else {
            continue; // no shared token has such an id
        };
        let last_used_ms = i64::try_from(s.last_used_ms).unwrap_or(i64::MAX);
        shared_store::mark_used(&mut tx, id, last_used_ms).await?;
    }
    for a in &report.accounts {
        let Ok(account_id) = i64::try_from(a.account_id.0) else {
            continue; // no account has such an id
        };
        let bytes = i64::try_from(a.bytes).unwrap_or(i64::MAX);
        let records = i64::try_from(a.records).unwrap_or(i64::MAX);
        store::add_usage(&mut tx, account_id, a.kind, day_ms, bytes, records).await?;
        let oldest_kept = day_ms - (store::DAILY_USAGE_DAYS - 1) * DAY_MS;
        store::forget_usage_before(&mut tx, account_id, oldest_kept).await?;
        volume_store::forget_days_before(&mut tx, account_id, oldest_kept).await?;
        if a.kind == Kind::Logs {
            check_soft_limit(cp, &mut tx, account_id, day_ms).await?;
        }
    }
    report.capped.sort_unstable();
    report.capped.dedup();
    let now_ms = cp.clock.now_ms();
    for account in &report.capped {
        let Ok(account_id) = i64::try_from(account.0) else {
            continue;
        };
        if volume_store::mark_capped(&mut tx, account_id, day_ms, now_ms).await? {
            cp.telemetry
                .volume_marks
                .with_label_values(&["capped"])
                .inc();
        }
    }
    report
        .dropped
        .sort_by_key(|d| (d.kind.index(), d.filter_id));
    for d in &report.dropped {
        let table = match d.kind {
            Kind::Logs => Table::Logs,
            Kind::Metrics => Table::Metrics,
            Kind::Traces => continue, // no filter drops traces
        };
        let Ok(id) = i64::try_from(d.filter_id) else {
            continue;
        };
        let dropped = Dropped {
            records: i64::try_from(d.records).unwrap_or(i64::MAX),
            bytes: i64::try_from(d.bytes).unwrap_or(i64::MAX),
        };
        filter_store::add_dropped(&mut tx, table, id, day_ms, dropped).await?;
    }
    tx.commit().await?;
    // The report is recorded: a failure to read the top accounts must not make the
    // gateway send it again.
    if let Err(e) = read_top_accounts(cp, day_ms).await {
        tracing::warn!(error = %e, "top accounts not read");
    }
    Ok(())
}

/// How often the top accounts are read again while reports come in: one query per control
/// plane every few seconds, however many gateways report.
const TOP_ACCOUNTS_EVERY_MS: i64 = 5_000;

/// Reads today's top accounts into their gauge, unless that was done less than
/// `TOP_ACCOUNTS_EVERY_MS` ago.
async fn read_top_accounts(cp: &ControlPlane, day_ms: i64) -> Result<(), StoreError> {
    let now = cp.clock.now_ms();
    let read = &cp.telemetry.top_accounts_read_ms;
    let last = read.load(Ordering::Relaxed);
    if now.saturating_sub(last) < TOP_ACCOUNTS_EVERY_MS
        || read
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return Ok(());
    }
    let mut conn = cp.store.conn().await?;
    let top = volume_store::top_accounts_on(&mut conn, day_ms, TOP_ACCOUNTS).await?;
    let gauge = &cp.telemetry.top_accounts;
    gauge.reset();
    for a in top {
        gauge
            .with_label_values(&[&a.account_id.to_string(), &a.account_name, &a.kind])
            .set(a.bytes);
    }
    Ok(())
}

/// The first report of a UTC day that takes an account past its `softLimitGB` marks the
/// day and leaves one audit event; nothing is refused or dropped (docs/volume.md).
async fn check_soft_limit(
    cp: &ControlPlane,
    tx: &mut Tx,
    account_id: i64,
    day_ms: i64,
) -> Result<(), Refusal> {
    // A soft limit of 0 is none, as the page writes it.
    let soft_gb = volume_store::soft_limit_gb(tx, account_id).await?;
    let Some(soft_gb) = soft_gb.filter(|gb| *gb > 0.0) else {
        return Ok(());
    };
    let today = volume_store::log_bytes_on(tx, account_id, day_ms).await?;
    if (today as f64) < soft_gb * BYTES_PER_GB {
        return Ok(());
    }
    if volume_store::mark_soft_limit(tx, account_id, day_ms, cp.clock.now_ms()).await? {
        cp.telemetry
            .volume_marks
            .with_label_values(&["soft_limit"])
            .inc();
        // In the main account's trail, where its admins read what happens to their plan.
        let owner = accounts::get(tx, account_id)
            .await?
            .and_then(|a| a.owner_id);
        let target = format!("account:{account_id}");
        audit(
            cp,
            tx,
            owner.unwrap_or(account_id),
            Actor::Gateways,
            "volume.soft-limit",
            &target,
        )
        .await?;
    }
    Ok(())
}

fn version_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}
