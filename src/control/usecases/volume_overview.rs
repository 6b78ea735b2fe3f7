//! What the page's Volume tab shows (docs/volume.md): for an account, and for a main
//! account each of its sub-accounts too, its daily volume as the model gives it, the bytes
//! its gateways reported per UTC day over the last `DAILY_USAGE_DAYS`, and what they
//! reported about today (capped, past the soft limit). It reads only: a sub-account's
//! volume settings change through `sub_accounts::update_sub_account`, under the API's rules.

use super::accounts::{MainVolume, allocation};
use super::callers::Caller;
use super::sub_accounts::{check_main_caller, subs_and_pool};
use crate::clock::DAY_MS;
use crate::control::plane::ControlPlane;
use crate::control::refusal::Refusal;
use crate::control::store::accounts::{self as store, Account, SubAccountSettings};
use crate::control::store::volume::{self as days, DayState};
use crate::control::store::{Db, feed};
use crate::control::volume::Allocation;

/// An account's daily volume, in GB.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Volume {
    /// A main log account: its plan's volume (`totalTimeBasedDailyGB`) and the shared pool
    /// it draws on; `None` when the operator set no plan volume.
    Main {
        plan_gb: Option<f64>,
        shared_gb: Option<f64>,
    },
    /// A sub-account: what it takes from its main account's plan, and that plan's pool.
    Sub {
        allocation: Allocation,
        shared_gb: Option<f64>,
    },
    /// A metrics, tracing or security account: counted, with no daily volume of its own.
    Unlimited,
}

impl Volume {
    /// The most the account may index a day (the main account: the pool); `None`: no
    /// volume limits it.
    pub fn most_gb(&self) -> Option<f64> {
        match *self {
            Volume::Main { shared_gb, .. } => shared_gb,
            Volume::Sub {
                allocation,
                shared_gb,
            } => allocation.most_gb(shared_gb),
            Volume::Unlimited => None,
        }
    }
}

/// One account's volume and usage.
pub struct AccountVolume {
    pub account: Account,
    pub volume: Volume,
    /// A sub-account's settings (type, reserved, cap, soft limit); `None` for the others.
    pub settings: Option<SubAccountSettings>,
    /// `(day's midnight in epoch ms, bytes)`, oldest first, the days that had any.
    pub daily_bytes: Vec<(i64, i64)>,
    /// What gateways reported about today.
    pub today: DayState,
}

impl AccountVolume {
    /// The bytes counted today.
    pub fn today_bytes(&self, today_ms: i64) -> i64 {
        self.daily_bytes
            .iter()
            .filter(|(day, _)| *day == today_ms)
            .map(|(_, bytes)| *bytes)
            .sum()
    }

    /// `softLimitGB`, when one is set (0 sets none).
    pub fn soft_limit_gb(&self) -> Option<f64> {
        let settings = self.settings.as_ref()?;
        settings.extra.soft_limit_gb.filter(|gb| *gb > 0.0)
    }
}

/// The tab's accounts: the caller's account first, then the sub-accounts it manages.
pub struct VolumeOverview {
    /// Today's midnight (UTC), epoch ms.
    pub today_ms: i64,
    /// How many days back usage is kept, today included.
    pub days: usize,
    pub accounts: Vec<AccountVolume>,
    /// Whether the caller may change the sub-accounts' volume settings.
    pub manages_subs: bool,
}

/// Admins see their account's volume; a main account's admins its sub-accounts' too, all
/// of them, as the sub-account API lists them (access to one is not needed to manage it).
pub async fn overview(cp: &ControlPlane, caller: &Caller) -> Result<VolumeOverview, Refusal> {
    caller.require_admin()?;
    let account = &caller.account;
    let mut conn = cp.store.conn().await?;
    let mut listed = Vec::new();
    if account.is_main_logs() {
        let (subs, pool) = subs_and_pool(&mut conn, account.id).await?;
        let main = Volume::Main {
            plan_gb: pool.daily_volume_gb,
            shared_gb: pool.shared_gb,
        };
        listed.push((account.clone(), main, None));
        for sub in subs {
            if let Some(found) = store::get(&mut conn, sub.id).await? {
                listed.push((found, sub_volume(&sub.settings, pool), Some(sub.settings)));
            }
        }
    } else if let (true, Some(main_id)) = (account.is_sub_account(), account.owner_id) {
        let (subs, pool) = subs_and_pool(&mut conn, main_id).await?;
        if let Some(own) = subs.into_iter().find(|s| s.id == account.id) {
            listed.push((
                account.clone(),
                sub_volume(&own.settings, pool),
                Some(own.settings),
            ));
        }
    } else {
        listed.push((account.clone(), Volume::Unlimited, None));
    }
    let today_ms = cp.clock.today_utc_ms();
    let mut accounts = Vec::with_capacity(listed.len());
    for (account, volume, settings) in listed {
        let (daily_bytes, today) = usage(&mut conn, account.id, today_ms).await?;
        accounts.push(AccountVolume {
            account,
            volume,
            settings,
            daily_bytes,
            today,
        });
    }
    Ok(VolumeOverview {
        today_ms,
        days: usize::try_from(feed::DAILY_USAGE_DAYS).unwrap_or(0),
        accounts,
        manages_subs: account.is_main_logs() && check_main_caller(caller).is_ok(),
    })
}

fn sub_volume(settings: &SubAccountSettings, pool: MainVolume) -> Volume {
    Volume::Sub {
        allocation: allocation(settings),
        shared_gb: pool.shared_gb,
    }
}

/// The account's bytes per day over the kept days, and today's state.
async fn usage(
    db: &mut impl Db,
    account_id: i64,
    today_ms: i64,
) -> Result<(Vec<(i64, i64)>, DayState), Refusal> {
    let since = today_ms - (feed::DAILY_USAGE_DAYS - 1) * DAY_MS;
    let daily_bytes = feed::daily_bytes(db, account_id, since).await?;
    let today = days::day_state(db, account_id, today_ms).await?;
    Ok((daily_bytes, today))
}
