//! Where the fleet's daily counts live. A gateway never asks per request: it takes an
//! allowance in chunks (leases) from a `Bank` and spends it from local state (`Ledger`).
//! `LocalBank` counts in this process, for one gateway without Redis (the embedded
//! default); a Redis bank shares the same counts across gateways.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use super::policy::Allowance;
use crate::model::AccountId;

/// A UTC day, as days since the Unix epoch: what an account's count belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Day(pub u32);

impl Day {
    const MS: u64 = 86_400_000;

    /// The UTC day `epoch_ms` falls on.
    pub fn of_epoch_ms(epoch_ms: u64) -> Day {
        Day(u32::try_from(epoch_ms / Day::MS).unwrap_or(u32::MAX))
    }
}

/// What the bank granted: `granted` bytes, out of a day's count that now stands at
/// `used`. Less than was asked for means the cap is (about to be) reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub granted: u64,
    pub used: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BankError {
    /// The bank could not be reached or answered out of time: the ledger goes on with
    /// what it holds and asks again.
    #[error("volume bank unavailable: {0}")]
    Unavailable(String),
}

/// A fleet-wide counter of bytes granted per account per UTC day.
pub trait Bank: Send + Sync + 'static {
    /// Grants up to `want` bytes of `account`'s allowance on `day`: its reservation
    /// first, then its pool, never past its cap (`Allowance::grant`).
    fn acquire(
        &self,
        account: AccountId,
        day: Day,
        want: u64,
        allowance: Allowance,
    ) -> impl Future<Output = Result<Grant, BankError>> + Send;

    /// Bytes granted to `account` on `day`, fleet-wide.
    fn used(
        &self,
        account: AccountId,
        day: Day,
    ) -> impl Future<Output = Result<u64, BankError>> + Send;

    /// True for the first gateway of the fleet to claim `slot` of `account` (a
    /// utilization interval), false for every other.
    fn claim(
        &self,
        account: AccountId,
        slot: u64,
    ) -> impl Future<Output = Result<bool, BankError>> + Send;

    /// Adds `bytes` to what log drop filter `filter` let through on `day`, fleet-wide;
    /// returns the new total (its threshold is counted against it).
    fn tally(
        &self,
        filter: u64,
        day: Day,
        bytes: u64,
    ) -> impl Future<Output = Result<u64, BankError>> + Send;
}

#[derive(Default)]
struct Counts {
    used: HashMap<(AccountId, Day), u64>,
    /// Keyed by the main account whose pool it is.
    pool_used: HashMap<(AccountId, Day), u64>,
    claimed: HashSet<(AccountId, u64)>,
    tallies: HashMap<(u64, Day), u64>,
}

/// The counts in this process: one gateway's whole fleet. Only background tasks call it,
/// never a request, so a plain mutex is enough.
#[derive(Default)]
pub struct LocalBank {
    counts: Mutex<Counts>,
}

impl LocalBank {
    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        // A panic while holding the lock leaves plain numbers behind: still usable.
        self.counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Bank for LocalBank {
    async fn acquire(
        &self,
        account: AccountId,
        day: Day,
        want: u64,
        allowance: Allowance,
    ) -> Result<Grant, BankError> {
        let mut counts = self.counts();
        // Older days are never asked for again.
        counts.used.retain(|(_, d), _| *d >= day);
        counts.pool_used.retain(|(_, d), _| *d >= day);
        let used = counts.used.get(&(account, day)).copied().unwrap_or(0);
        let pool_key = allowance.pool.map(|(main, _)| (main, day));
        let pool_used = pool_key
            .and_then(|key| counts.pool_used.get(&key).copied())
            .unwrap_or(0);
        let (granted, from_pool) = allowance.grant(want, used, pool_used);
        counts.used.insert((account, day), used + granted);
        if let Some(key) = pool_key.filter(|_| from_pool > 0) {
            counts.pool_used.insert(key, pool_used + from_pool);
        }
        Ok(Grant {
            granted,
            used: used + granted,
        })
    }

    async fn used(&self, account: AccountId, day: Day) -> Result<u64, BankError> {
        Ok(self
            .counts()
            .used
            .get(&(account, day))
            .copied()
            .unwrap_or(0))
    }

    async fn claim(&self, account: AccountId, slot: u64) -> Result<bool, BankError> {
        let mut counts = self.counts();
        // Slots only move forward: an account's older slots are never claimed again.
        counts.claimed.retain(|(a, s)| *a != account || *s >= slot);
        Ok(counts.claimed.insert((account, slot)))
    }

    async fn tally(&self, filter: u64, day: Day, bytes: u64) -> Result<u64, BankError> {
        let mut counts = self.counts();
        counts.tallies.retain(|(_, d), _| *d >= day);
        let total = counts.tallies.entry((filter, day)).or_default();
        *total = total.saturating_add(bytes);
        Ok(*total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capped(cap: u64) -> Allowance {
        Allowance {
            reserved: cap,
            cap: Some(cap),
            pool: None,
        }
    }

    #[tokio::test]
    async fn the_local_bank_grants_up_to_the_cap_and_forgets_old_days() {
        let bank = LocalBank::default();
        let (acme, day) = (AccountId(1), Day(20_000));
        let grant = bank.acquire(acme, day, 600, capped(1_000)).await.unwrap();
        assert_eq!(
            grant,
            Grant {
                granted: 600,
                used: 600
            }
        );
        let grant = bank.acquire(acme, day, 600, capped(1_000)).await.unwrap();
        assert_eq!(
            grant,
            Grant {
                granted: 400,
                used: 1_000
            },
            "the rest"
        );
        let grant = bank.acquire(acme, day, 600, capped(1_000)).await.unwrap();
        assert_eq!(grant.granted, 0, "capped");
        assert_eq!(bank.used(acme, day).await.unwrap(), 1_000);
        let next_day = bank
            .acquire(acme, Day(20_001), 600, capped(1_000))
            .await
            .unwrap();
        assert_eq!(next_day.granted, 600, "a new day starts at 0");
        assert_eq!(
            bank.used(acme, day).await.unwrap(),
            0,
            "the old day is forgotten"
        );
        assert_eq!(Day::of_epoch_ms(86_400_000 * 3 + 5), Day(3));
    }

    #[tokio::test]
    async fn accounts_of_one_plan_share_its_pool() {
        let bank = LocalBank::default();
        let (main, sub, day) = (AccountId(1), AccountId(2), Day(20_000));
        let pooled = |reserved| Allowance {
            reserved,
            cap: None,
            pool: Some((main, 100)),
        };
        assert_eq!(
            bank.acquire(sub, day, 150, pooled(20))
                .await
                .unwrap()
                .granted,
            120
        );
        assert_eq!(
            bank.acquire(main, day, 50, pooled(0))
                .await
                .unwrap()
                .granted,
            0,
            "the sub-account emptied the pool"
        );
    }

    #[tokio::test]
    async fn one_gateway_claims_each_slot() {
        let bank = LocalBank::default();
        let acme = AccountId(1);
        assert!(bank.claim(acme, 7).await.unwrap());
        assert!(!bank.claim(acme, 7).await.unwrap());
        assert!(bank.claim(acme, 8).await.unwrap());
        assert!(bank.claim(AccountId(2), 8).await.unwrap());
    }
}
