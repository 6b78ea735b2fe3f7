//! What the control plane tells gateways about an account's volume (docs/volume.md): the
//! feed carries one `VolumePolicy` per account that has something to enforce, and the
//! gateway turns it into an `Allowance` for the bank. Shapes only; `tokens::wire`
//! re-exports them for the feed.

use serde::{Deserialize, Serialize};

use crate::model::AccountId;

/// One account's volume settings, in bytes, as gateways enforce them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumePolicy {
    pub account_id: AccountId,
    #[serde(default)]
    pub account_name: String,
    /// The main account whose plan and shared pool it draws on (itself for a main account).
    pub main_id: AccountId,
    /// Bytes a day no other account may use: a fixed account's whole volume, a flexible
    /// account's reserved volume.
    #[serde(default)]
    pub reserved_bytes: u64,
    /// The most it may count a day; `None`: only the pool (if any) limits it.
    #[serde(default)]
    pub cap_bytes: Option<u64>,
    /// The main account's shared pool a day, when this account draws on it (a flexible
    /// sub-account, or the main account of a plan with a volume).
    #[serde(default)]
    pub pool_bytes: Option<u64>,
    /// The main account's plan volume a day (the utilization record's `plan_volume_in_GB`
    /// for the main account).
    #[serde(default)]
    pub plan_bytes: Option<u64>,
    #[serde(default)]
    pub is_flexible: bool,
    /// `docSizeSetting`: every log record gains `LogSize`.
    #[serde(default)]
    pub doc_size: bool,
    /// `utilizationSettings`: one utilization record per this many minutes, fleet-wide.
    #[serde(default)]
    pub utilization_minutes: Option<u32>,
    /// Bytes per second with a burst, at each gateway.
    #[serde(default)]
    pub rate: Option<Rate>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    pub bytes_per_sec: u64,
    pub burst_bytes: u64,
}

/// What the bank may grant an account a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Allowance {
    /// Granted first and to no one else: a fixed volume or a flexible reservation.
    pub reserved: u64,
    /// Never more than this counted a day; `None`: no cap of its own.
    pub cap: Option<u64>,
    /// The shared pool it draws on past `reserved`: its main account and the pool's bytes.
    /// `None`: nothing beyond `reserved` (when capped) or no limit at all.
    pub pool: Option<(AccountId, u64)>,
}

impl Allowance {
    /// Counted and never limited (utilization records still need the day's count).
    pub const UNLIMITED: Allowance = Allowance {
        reserved: 0,
        cap: None,
        pool: None,
    };

    /// The most the account can be granted today, if anything limits it.
    pub fn most(&self) -> Option<u64> {
        let through_pool = self
            .pool
            .map(|(_, pool)| self.reserved.saturating_add(pool));
        match (self.cap, through_pool) {
            (Some(cap), Some(pool)) => Some(cap.min(pool)),
            (cap, pool) => cap.or(pool),
        }
    }

    /// How much of `want` to grant when `used` bytes are counted for the account today
    /// and `pool_used` from its pool; returns `(granted, from_pool)`. The same arithmetic
    /// as the Redis bank's script (`redis.rs`).
    pub fn grant(&self, want: u64, used: u64, pool_used: u64) -> (u64, u64) {
        let mut grant = want;
        if let Some(cap) = self.cap {
            grant = grant.min(cap.saturating_sub(used));
        }
        let Some((_, pool)) = self.pool else {
            return (grant, 0);
        };
        let from_reserved = grant.min(self.reserved.saturating_sub(used));
        let from_pool = (grant - from_reserved).min(pool.saturating_sub(pool_used));
        (from_reserved + from_pool, from_pool)
    }
}

impl VolumePolicy {
    /// What the bank may grant, or `None` when nothing about the account needs its day
    /// counted (no volume, no utilization records).
    pub fn allowance(&self) -> Option<Allowance> {
        let allowance = Allowance {
            reserved: self.reserved_bytes,
            cap: self.cap_bytes,
            pool: self.pool_bytes.map(|pool| (self.main_id, pool)),
        };
        if allowance.most().is_some() {
            Some(allowance)
        } else if self.utilization_minutes.is_some() {
            Some(Allowance::UNLIMITED)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIN: AccountId = AccountId(1);

    #[test]
    fn a_flexible_account_takes_its_reservation_then_the_pool_up_to_its_cap() {
        let flexible = Allowance {
            reserved: 20,
            cap: Some(50),
            pool: Some((MAIN, 100)),
        };
        assert_eq!(flexible.grant(15, 0, 0), (15, 0), "inside the reservation");
        assert_eq!(flexible.grant(15, 15, 0), (15, 10), "5 reserved, 10 pooled");
        assert_eq!(flexible.grant(100, 30, 10), (20, 20), "up to the cap");
        assert_eq!(flexible.grant(10, 20, 95), (5, 5), "the pool's last 5");
        assert_eq!(flexible.most(), Some(50));
    }

    #[test]
    fn a_fixed_account_has_its_volume_and_nothing_more() {
        let fixed = Allowance {
            reserved: 30,
            cap: Some(30),
            pool: None,
        };
        assert_eq!(fixed.grant(20, 0, 0), (20, 0));
        assert_eq!(fixed.grant(20, 20, 0), (10, 0));
        assert_eq!(fixed.grant(20, 30, 0), (0, 0));
        assert_eq!(Allowance::UNLIMITED.grant(7, 1_000, 0), (7, 0));
        assert_eq!(Allowance::UNLIMITED.most(), None);
    }

    #[test]
    fn only_accounts_with_a_volume_or_utilization_are_counted() {
        let mut policy = VolumePolicy {
            account_id: AccountId(2),
            account_name: "dev".into(),
            main_id: MAIN,
            reserved_bytes: 0,
            cap_bytes: None,
            pool_bytes: None,
            plan_bytes: None,
            is_flexible: true,
            doc_size: true,
            utilization_minutes: None,
            rate: None,
        };
        assert_eq!(policy.allowance(), None);
        policy.utilization_minutes = Some(10);
        assert_eq!(policy.allowance(), Some(Allowance::UNLIMITED));
        policy.pool_bytes = Some(40);
        assert_eq!(policy.allowance().and_then(|a| a.most()), Some(40));
    }
}
