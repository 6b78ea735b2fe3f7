//! Where the fleet's daily counts live. A gateway never asks per request: it takes an
//! allowance in chunks (leases) from a `Bank` and spends it from local state (`Ledger`).
//! `LocalBank` counts in this process, for one gateway without Redis (the embedded
//! default); a Redis bank shares the same counts across gateways.

use std::collections::HashMap;
use std::sync::Mutex;

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
    /// Grants up to `want` bytes of `account`'s allowance on `day`, never past `cap`
    /// bytes counted that day.
    fn acquire(
        &self,
        account: AccountId,
        day: Day,
        want: u64,
        cap: u64,
    ) -> impl Future<Output = Result<Grant, BankError>> + Send;
}

/// The counts in this process: one gateway's whole fleet. Only the refill task calls it,
/// never a request, so a plain mutex is enough.
#[derive(Default)]
pub struct LocalBank {
    used: Mutex<HashMap<(AccountId, Day), u64>>,
}

impl LocalBank {
    /// Bytes granted to `account` on `day` so far.
    pub fn used(&self, account: AccountId, day: Day) -> u64 {
        self.counts().get(&(account, day)).copied().unwrap_or(0)
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<(AccountId, Day), u64>> {
        // A panic while holding the lock leaves plain numbers behind: still usable.
        self.used
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
        cap: u64,
    ) -> Result<Grant, BankError> {
        let mut counts = self.counts();
        // Older days are never asked for again.
        counts.retain(|(_, d), _| *d >= day);
        let used = counts.entry((account, day)).or_insert(0);
        let granted = want.min(cap.saturating_sub(*used));
        *used += granted;
        Ok(Grant {
            granted,
            used: *used,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_local_bank_grants_up_to_the_cap_and_forgets_old_days() {
        let bank = LocalBank::default();
        let (acme, day) = (AccountId(1), Day(20_000));
        let grant = bank.acquire(acme, day, 600, 1_000).await.unwrap();
        assert_eq!(
            grant,
            Grant {
                granted: 600,
                used: 600
            }
        );
        let grant = bank.acquire(acme, day, 600, 1_000).await.unwrap();
        assert_eq!(
            grant,
            Grant {
                granted: 400,
                used: 1_000
            },
            "the rest"
        );
        let grant = bank.acquire(acme, day, 600, 1_000).await.unwrap();
        assert_eq!(grant.granted, 0, "capped");
        assert_eq!(bank.used(acme, day), 1_000);
        let next_day = bank.acquire(acme, Day(20_001), 600, 1_000).await.unwrap();
        assert_eq!(next_day.granted, 600, "a new day starts at 0");
        assert_eq!(bank.used(acme, day), 0, "the old day is forgotten");
        assert_eq!(Day::of_epoch_ms(86_400_000 * 3 + 5), Day(3));
    }
}
