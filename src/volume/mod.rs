//! What each account may still send today, decided on the request path from local state
//! (docs/volume.md, "Across a fleet"). The fleet's count of an account's day lives in a
//! `Bank` (Redis across gateways, or this process); a gateway takes its allowance from it
//! in leases of `lease_bytes`, spends them with one atomic subtraction a request, and asks
//! for the next lease in the background when half of one is left. A request never waits
//! on the bank.
//!
//! Past the cap an account is *capped* until the UTC day turns: its records are accepted
//! and not forwarded. How far past the cap a fleet can go: each gateway admits at most
//! what it spends while a refill is on its way after the last grant, one request, and
//! what it admits while the bank cannot be reached (counted, and taken from the next
//! grant when the bank is back).

pub mod bank;
pub mod gate;
pub mod policy;
pub mod redis;
pub mod utilization;

use foldhash::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};

use arc_swap::ArcSwap;
use tokio::sync::Notify;

use crate::model::AccountId;
use bank::{Bank, BankError, Day};
use policy::Allowance;

/// What to do with an accepted request's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Forward,
    /// The account reached its cap today: accept and do not forward.
    Capped,
}

/// One account's standing at this gateway on `day`. Atomics only: every request of the
/// account touches it.
struct Standing {
    allowance: Allowance,
    /// Bytes asked for at a time: smaller for a small allowance, so one gateway's unspent
    /// lease does not hold a large part of it.
    lease: i64,
    day: AtomicU32,
    /// What the allowance had left, fleet-wide, at the last grant: spending further ahead
    /// of a lease than this (the bank away) is past the cap even if no other gateway sent.
    remaining: AtomicI64,
    /// Bytes of the lease not spent yet; below 0, spent ahead of a refill.
    left: AtomicI64,
    /// The bank granted less than asked: what is left is the last of the cap.
    last: AtomicBool,
    /// Spent past the last grant: capped until the day turns.
    capped: AtomicBool,
    /// A refill is wanted; the refill task clears it when it asks the bank.
    wanted: AtomicBool,
}

impl Standing {
    fn new(allowance: Allowance, lease_bytes: i64, day: Day) -> Standing {
        let lease = match allowance.most() {
            Some(most) => lease_bytes.min((to_i64(most) / 32).max(MIN_LEASE)),
            None => lease_bytes,
        };
        Standing {
            allowance,
            lease,
            day: AtomicU32::new(day.0),
            remaining: AtomicI64::new(allowance.most().map_or(i64::MAX, to_i64)),
            left: AtomicI64::new(0),
            last: AtomicBool::new(false),
            capped: AtomicBool::new(false),
            wanted: AtomicBool::new(true),
        }
    }

    /// A new UTC day: a fresh count. One request wins the turn; the others carry on.
    fn turn(&self, seen: u32, day: Day) -> bool {
        if self
            .day
            .compare_exchange(seen, day.0, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        self.left.store(0, Ordering::Relaxed);
        let most = self.allowance.most().map_or(i64::MAX, to_i64);
        self.remaining.store(most, Ordering::Relaxed);
        self.last.store(false, Ordering::Relaxed);
        self.capped.store(false, Ordering::Relaxed);
        true
    }
}

/// The smallest lease asked for, however small the allowance.
const MIN_LEASE: i64 = 16 * 1024;

fn to_i64(bytes: u64) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

/// The accounts whose day is counted, and the leases this gateway holds for them.
pub struct Ledger {
    accounts: ArcSwap<HashMap<AccountId, Arc<Standing>>>,
    lease_bytes: i64,
    /// Rung when a lease is wanted; the refill task waits on it.
    pub(super) wake: Notify,
    /// Rung when an account becomes capped, so the control plane hears of it soon.
    pub(super) capped_wake: Notify,
}

impl Ledger {
    pub fn new(lease_bytes: u64) -> Ledger {
        Ledger {
            accounts: ArcSwap::from_pointee(HashMap::default()),
            lease_bytes: i64::try_from(lease_bytes.max(1)).unwrap_or(i64::MAX),
            wake: Notify::new(),
            capped_wake: Notify::new(),
        }
    }

    /// The accounts whose day is counted, and what each may be granted. An account whose
    /// allowance did not change keeps its lease; one whose allowance changed starts over
    /// from the bank's count; an account left out is no longer counted here.
    pub fn set_allowances(
        &self,
        allowances: impl IntoIterator<Item = (AccountId, Allowance)>,
        today: Day,
    ) {
        let current = self.accounts.load();
        let next: HashMap<AccountId, Arc<Standing>> = allowances
            .into_iter()
            .map(|(account, allowance)| {
                let standing = match current.get(&account) {
                    Some(s) if s.allowance == allowance => Arc::clone(s),
                    _ => Arc::new(Standing::new(allowance, self.lease_bytes, today)),
                };
                (account, standing)
            })
            .collect();
        self.accounts.store(Arc::new(next));
        self.wake.notify_one();
    }

    /// Spends `bytes` of `account`'s allowance on `day`: one lookup and a few atomics,
    /// no lock, no await.
    pub fn charge(&self, account: AccountId, bytes: u64, day: Day) -> Verdict {
        let accounts = self.accounts.load();
        let Some(s) = accounts.get(&account) else {
            return Verdict::Forward;
        };
        let seen = s.day.load(Ordering::Acquire);
        if seen != day.0 && s.turn(seen, day) {
            self.want(s);
        }
        if s.capped.load(Ordering::Relaxed) {
            return Verdict::Capped;
        }
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        let before = s.left.fetch_sub(bytes, Ordering::AcqRel);
        let after = before.saturating_sub(bytes);
        let past_cap = after <= 0
            && (s.last.load(Ordering::Acquire)
                || after.saturating_neg() >= s.remaining.load(Ordering::Acquire));
        if past_cap {
            self.cap(s);
            if before <= 0 {
                return Verdict::Capped;
            }
        } else if after < s.lease / 2 {
            self.want(s);
        }
        Verdict::Forward
    }

    /// The accounts this gateway holds capped today.
    pub fn capped(&self) -> Vec<AccountId> {
        self.accounts
            .load()
            .iter()
            .filter(|(_, s)| s.capped.load(Ordering::Relaxed))
            .map(|(&account, _)| account)
            .collect()
    }

    fn cap(&self, s: &Standing) {
        if !s.capped.swap(true, Ordering::Relaxed) {
            self.capped_wake.notify_one();
        }
    }

    fn want(&self, s: &Standing) {
        if !s.wanted.swap(true, Ordering::AcqRel) {
            self.wake.notify_one();
        }
    }

    /// Asks the bank for every lease wanted; returns how many were asked for. An account
    /// that spent ahead of its lease (a slow or unreachable bank) asks for that much more,
    /// so the fleet's count catches up. On a bank error the lease stays wanted and the
    /// error is returned.
    pub async fn refill<B: Bank>(&self, bank: &B) -> Result<usize, BankError> {
        let accounts = self.accounts.load_full();
        let mut asked = 0;
        for (&account, s) in accounts.iter() {
            if !s.wanted.swap(false, Ordering::AcqRel) || s.last.load(Ordering::Acquire) {
                continue;
            }
            let day = Day(s.day.load(Ordering::Acquire));
            let owed = (-s.left.load(Ordering::Acquire)).max(0);
            let want = u64::try_from(s.lease.saturating_add(owed)).unwrap_or(0);
            asked += 1;
            let grant = match bank.acquire(account, day, want, s.allowance).await {
                Ok(grant) => grant,
                Err(e) => {
                    s.wanted.store(true, Ordering::Release);
                    return Err(e);
                }
            };
            if s.day.load(Ordering::Acquire) != day.0 {
                // The day turned while asking: that grant counts for a day that is over.
                continue;
            }
            if grant.granted < want {
                s.last.store(true, Ordering::Release);
            }
            if let Some(most) = s.allowance.most() {
                let remaining = to_i64(most.saturating_sub(grant.used));
                s.remaining.store(remaining, Ordering::Release);
            }
            let granted = i64::try_from(grant.granted).unwrap_or(i64::MAX);
            let left = s
                .left
                .fetch_add(granted, Ordering::AcqRel)
                .saturating_add(granted);
            if left <= 0 && s.last.load(Ordering::Acquire) {
                self.cap(s);
            }
        }
        Ok(asked)
    }
}

#[cfg(test)]
mod tests {
    use super::bank::{Grant, LocalBank};
    use super::*;

    const ACME: AccountId = AccountId(1);
    const DAY: Day = Day(20_000);

    fn capped(cap: u64) -> Allowance {
        Allowance {
            reserved: cap,
            cap: Some(cap),
            pool: None,
        }
    }

    /// Sends `n` requests of `bytes` for `account`, refilling as a background task would
    /// between requests; the bytes forwarded.
    async fn send(ledger: &Ledger, bank: &LocalBank, n: usize, bytes: u64, day: Day) -> u64 {
        let mut forwarded = 0;
        for _ in 0..n {
            if ledger.charge(ACME, bytes, day) == Verdict::Forward {
                forwarded += bytes;
            }
            ledger.refill(bank).await.unwrap();
        }
        forwarded
    }

    #[tokio::test]
    async fn an_account_is_forwarded_up_to_its_cap_then_capped_until_the_day_turns() {
        let (ledger, bank) = (Ledger::new(100), LocalBank::default());
        ledger.set_allowances([(ACME, capped(1_000))], DAY);
        ledger.refill(&bank).await.unwrap();
        let forwarded = send(&ledger, &bank, 200, 30, DAY).await;
        assert!(
            (1_000..1_030).contains(&forwarded),
            "the cap, and at most the one request that crossed it: {forwarded}"
        );
        assert_eq!(ledger.charge(ACME, 1, DAY), Verdict::Capped);
        let tomorrow = Day(DAY.0 + 1);
        assert_eq!(ledger.charge(ACME, 30, tomorrow), Verdict::Forward);
        ledger.refill(&bank).await.unwrap();
        assert_eq!(
            bank.used(ACME, tomorrow).await.unwrap(),
            30 + 100,
            "the new day's first request, spent ahead of its lease, and a lease"
        );
    }

    #[tokio::test]
    async fn accounts_without_a_cap_are_not_counted() {
        let (ledger, bank) = (Ledger::new(100), LocalBank::default());
        ledger.set_allowances([(AccountId(2), capped(10))], DAY);
        assert_eq!(send(&ledger, &bank, 10, 1_000, DAY).await, 10_000);
        assert_eq!(bank.used(ACME, DAY).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn gateways_sharing_a_bank_share_the_cap() {
        let bank = LocalBank::default();
        let gateways = [Ledger::new(100), Ledger::new(100), Ledger::new(100)];
        for ledger in &gateways {
            ledger.set_allowances([(ACME, capped(2_000))], DAY);
        }
        let mut forwarded = 0;
        for _ in 0..200 {
            for ledger in &gateways {
                if ledger.charge(ACME, 20, DAY) == Verdict::Forward {
                    forwarded += 20;
                }
                ledger.refill(&bank).await.unwrap();
            }
        }
        assert!(
            (2_000..=2_000 + 3 * 20).contains(&forwarded),
            "the cap, and at most one crossing request a gateway: {forwarded}"
        );
    }

    #[tokio::test]
    async fn bytes_spent_while_the_bank_is_away_are_counted_when_it_is_back() {
        /// A bank that answers only when told to.
        struct Flaky {
            up: AtomicBool,
            inner: LocalBank,
        }
        impl Bank for Flaky {
            async fn acquire(
                &self,
                account: AccountId,
                day: Day,
                want: u64,
                allowance: Allowance,
            ) -> Result<Grant, BankError> {
                if !self.up.load(Ordering::Relaxed) {
                    return Err(BankError::Unavailable("down".into()));
                }
                self.inner.acquire(account, day, want, allowance).await
            }
            async fn used(&self, account: AccountId, day: Day) -> Result<u64, BankError> {
                self.inner.used(account, day).await
            }
            async fn claim(&self, account: AccountId, slot: u64) -> Result<bool, BankError> {
                self.inner.claim(account, slot).await
            }
            async fn tally(&self, filter: u64, day: Day, bytes: u64) -> Result<u64, BankError> {
                self.inner.tally(filter, day, bytes).await
            }
        }
        let bank = Flaky {
            up: AtomicBool::new(false),
            inner: LocalBank::default(),
        };
        let ledger = Ledger::new(100);
        ledger.set_allowances([(ACME, capped(10_000))], DAY);
        for _ in 0..10 {
            assert_eq!(
                ledger.charge(ACME, 50, DAY),
                Verdict::Forward,
                "the bank's outage refuses nothing"
            );
            assert!(ledger.refill(&bank).await.is_err());
        }
        bank.up.store(true, Ordering::Relaxed);
        ledger.refill(&bank).await.unwrap();
        assert_eq!(
            bank.inner.used(ACME, DAY).await.unwrap(),
            500 + 100,
            "the 500 bytes spent meanwhile, and a lease"
        );
    }

    #[tokio::test]
    async fn a_new_cap_starts_from_the_days_count() {
        let (ledger, bank) = (Ledger::new(100), LocalBank::default());
        ledger.set_allowances([(ACME, capped(300))], DAY);
        ledger.refill(&bank).await.unwrap();
        send(&ledger, &bank, 40, 10, DAY).await;
        assert_eq!(ledger.charge(ACME, 10, DAY), Verdict::Capped);
        ledger.set_allowances([(ACME, capped(600))], DAY);
        ledger.refill(&bank).await.unwrap();
        let forwarded = send(&ledger, &bank, 40, 10, DAY).await;
        assert!(
            (300..=310).contains(&forwarded),
            "the 300 more bytes the new cap allows: {forwarded}"
        );
    }
}
