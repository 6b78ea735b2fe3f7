//! Accounts (DESIGN §4): the operator creates main accounts and their tied metrics,
//! tracing and security accounts (sub-accounts are in `sub_accounts`), and an admin's
//! reach for the page's account switcher. Every new account starts with one enabled shipping token of its
//! kind, and with a first API token where its type and plan allow one.

use super::callers::Caller;
use super::change::audit;
use super::{api_tokens, shipping_tokens};
use crate::control::plane::ControlPlane;
use crate::control::refusal::Refusal;
use crate::control::rules::{self, AccountType, Plan, checked_name};
use crate::control::store::accounts::{
    self as store, Account, NewAccount, OwnedAccount, SubAccountSettings,
};
use crate::control::store::{Actor, Db, Tx, feed};
use crate::control::volume::{self, Allocation, RateLimit};

/// A main account or a tied one, as the operator asks for it.
pub struct AccountRequest<'a> {
    pub name: &'a str,
    pub plan: Option<Plan>,
    pub account_type: Option<AccountType>,
    pub owner_account_id: Option<i64>,
    /// Epoch seconds; main accounts only.
    pub trial_ends_at: Option<i64>,
    /// The plan's daily volume in GB (`totalTimeBasedDailyGB`); main log accounts only.
    pub daily_volume_gb: Option<f64>,
    /// The operator's rate limit over the plan's (`rateLimit`); main log accounts only.
    pub rate_limit: Option<RateLimit>,
}

/// A new account's id and the secrets it starts with.
pub struct CreatedAccount {
    pub account_id: i64,
    pub account_token: String,
    pub api_token: Option<String>,
}

/// The operator creates a main account, or one tied to a main account.
pub async fn create_account(
    cp: &ControlPlane,
    actor: Actor,
    req: AccountRequest<'_>,
) -> Result<CreatedAccount, Refusal> {
    let name = checked_name(req.name)?;
    let account_type = req.account_type.unwrap_or(AccountType::Logs);
    let mut tx = cp.store.begin().await?;
    let owner = match req.owner_account_id {
        None if account_type != AccountType::Logs => {
            return Err(Refusal::Invalid {
                code: "accounts/OWNER_REQUIRED",
                message: format!(
                    "a {} account is tied to a main account: ownerAccountId is required",
                    account_type.as_str()
                ),
            });
        }
        None => None,
        Some(owner_id) => Some(main_account(&mut tx, owner_id).await?),
    };
    if owner.is_some() && (req.plan.is_some() || req.trial_ends_at.is_some()) {
        return Err(Refusal::invalid(
            "plan and trialEndsAt belong to the main account; a tied account follows them",
        ));
    }
    let mut settings = SubAccountSettings {
        max_daily_gb: main_volume(owner.is_none(), account_type, req.daily_volume_gb)?,
        ..SubAccountSettings::default()
    };
    if req.rate_limit.is_some() && (owner.is_some() || account_type != AccountType::Logs) {
        return Err(Refusal::invalid(
            "rateLimit belongs to a main log management account; its sub-accounts and tied \
             accounts follow it, each on its own",
        ));
    }
    settings.extra.rate_limit = req.rate_limit;
    let now = cp.clock.now_secs();
    let plan = req.plan.unwrap_or(Plan::Community);
    let new = NewAccount {
        name,
        account_type,
        owner_id: owner.as_ref().map(|o| o.id),
        plan,
        trial_ends_at: req.trial_ends_at,
        settings: &settings,
        created_at: now,
    };
    let (account_id, first) = insert(cp, &mut tx, &new, actor).await?;
    let plan_now = match &owner {
        Some(o) => o.plan_at(now),
        None => rules::effective_plan(plan, req.trial_ends_at, now),
    };
    let api_token = if rules::check_may_create_api_token(account_type, plan_now).is_ok() {
        Some(
            api_tokens::insert(cp, &mut tx, account_id, "default", actor, first.version)
                .await?
                .token,
        )
    } else {
        None
    };
    tx.commit().await?;
    cp.published(first.version);
    Ok(CreatedAccount {
        account_id,
        account_token: first.token,
        api_token,
    })
}

/// `totalTimeBasedDailyGB` as the operator gives it: a volume, for a main log account.
fn main_volume(
    is_main: bool,
    account_type: AccountType,
    gb: Option<f64>,
) -> Result<Option<f64>, Refusal> {
    let Some(gb) = gb else {
        return Ok(None);
    };
    if !is_main || account_type != AccountType::Logs {
        return Err(Refusal::invalid(
            "totalTimeBasedDailyGB belongs to a main log management account; its sub-accounts \
             and tied accounts draw on it",
        ));
    }
    volume::checked_gb("totalTimeBasedDailyGB", gb).map(Some)
}

/// A main account's daily volume: its plan's, and what its sub-accounts leave to share.
#[derive(Debug, Clone, Copy)]
pub struct MainVolume {
    pub account_id: i64,
    /// `None`: no volume set (nothing is limited by it).
    pub daily_volume_gb: Option<f64>,
    pub shared_gb: Option<f64>,
}

/// What the operator reads and sets on a main account: its volume and its own rate limit.
#[derive(Debug, Clone, Copy)]
pub struct MainSettings {
    pub volume: MainVolume,
    /// `None`: its plan's default applies (if the plan has one).
    pub rate_limit: Option<RateLimit>,
}

/// What an operator's update changes: `None` leaves a setting as it is, `Some(None)`
/// clears it.
#[derive(Debug, Clone, Copy, Default)]
pub struct MainChange {
    pub daily_volume_gb: Option<Option<f64>>,
    pub rate_limit: Option<Option<RateLimit>>,
}

/// The main account's settings, as the operator reads them.
pub async fn main_settings_of(cp: &ControlPlane, id: i64) -> Result<MainSettings, Refusal> {
    let mut conn = cp.store.conn().await?;
    let account = store::get(&mut conn, id)
        .await?
        .filter(Account::is_main_logs)
        .ok_or_else(|| Refusal::not_found("main account"))?;
    let volume = pool(&mut conn, account.id).await?;
    let extra = store::extra_settings(&mut conn, account.id).await?;
    Ok(MainSettings {
        volume,
        rate_limit: extra.and_then(|e| e.rate_limit),
    })
}

/// The operator sets (or, with `Some(None)`, clears) a main account's daily volume and
/// its rate limit; the sub-accounts' fixed and reserved volumes must still fit in the
/// volume. A change puts the whole family into the feed again: every account of it
/// draws on the volume and follows the rate.
pub async fn update_main_account(
    cp: &ControlPlane,
    actor: Actor,
    id: i64,
    change: MainChange,
) -> Result<MainSettings, Refusal> {
    let gb = change
        .daily_volume_gb
        .map(|gb| {
            gb.map(|gb| volume::checked_gb("totalTimeBasedDailyGB", gb))
                .transpose()
        })
        .transpose()?;
    let mut tx = cp.store.begin().await?;
    store::lock(&mut tx, id)
        .await?
        .filter(Account::is_main_logs)
        .ok_or_else(|| Refusal::not_found("main account"))?;
    let subs = store::owned_accounts(&mut tx, id, AccountType::Logs).await?;
    let now = cp.clock.now_secs();
    let target = format!("account:{id}");
    let plan_gb = match gb {
        Some(gb) => {
            let allocations = subs.iter().map(|s| allocation(&s.settings));
            volume::check_fits(gb, allocations, "totalTimeBasedDailyGB")?;
            store::set_daily_volume_gb(&mut tx, id, gb, now).await?;
            audit(cp, &mut tx, id, actor, "account.set-volume", &target).await?;
            gb
        }
        None => store::daily_volume_gb(&mut tx, id).await?,
    };
    let mut extra = store::extra_settings(&mut tx, id)
        .await?
        .ok_or_else(|| Refusal::not_found("main account"))?;
    if let Some(rate_limit) = change.rate_limit {
        extra.rate_limit = rate_limit;
        store::set_extra_settings(&mut tx, id, &extra, now).await?;
        audit(cp, &mut tx, id, actor, "account.set-rate-limit", &target).await?;
    }
    let changed = gb.is_some() || change.rate_limit.is_some();
    let version = match changed {
        true => {
            let version = feed::next_version(&mut tx).await?;
            store::republish(&mut tx, id, version).await?;
            Some(version)
        }
        false => None,
    };
    tx.commit().await?;
    if let Some(version) = version {
        cp.published(version);
    }
    Ok(MainSettings {
        volume: MainVolume::of(id, plan_gb, &subs),
        rate_limit: extra.rate_limit,
    })
}

/// What a sub-account's settings take out of the plan.
pub(super) fn allocation(s: &SubAccountSettings) -> Allocation {
    Allocation::of(
        s.extra.is_flexible,
        s.max_daily_gb,
        s.extra.reserved_daily_gb,
    )
}

impl MainVolume {
    /// The volume of main account `main_id` with plan volume `plan` and sub-accounts `subs`.
    pub(super) fn of(main_id: i64, plan: Option<f64>, subs: &[OwnedAccount]) -> MainVolume {
        let allocations = || subs.iter().map(|s| allocation(&s.settings));
        MainVolume {
            account_id: main_id,
            daily_volume_gb: plan,
            shared_gb: plan.map(|plan| volume::shared_gb(plan, allocations())),
        }
    }
}

/// The main account's plan volume and its shared pool, read from the store.
pub(super) async fn pool(db: &mut impl Db, main_id: i64) -> Result<MainVolume, Refusal> {
    let plan = store::daily_volume_gb(db, main_id).await?;
    let subs = store::owned_accounts(db, main_id, AccountType::Logs).await?;
    Ok(MainVolume::of(main_id, plan, &subs))
}

/// An existing main account (a log management account no one owns), for tying another to it.
async fn main_account(tx: &mut Tx, id: i64) -> Result<Account, Refusal> {
    let account = store::get(tx, id).await?.ok_or_else(|| Refusal::Invalid {
        code: "accounts/OWNER_NOT_MAIN",
        message: format!("ownerAccountId {id} is not an account"),
    })?;
    if !account.is_main_logs() {
        return Err(Refusal::Invalid {
            code: "accounts/OWNER_NOT_MAIN",
            message: format!("account {id} is not a main log management account"),
        });
    }
    Ok(account)
}

/// Inserts the account, its first shipping token and the audit event. Both move the feed
/// (the account's read grants, the token); the token's version is the newer, to publish.
pub(super) async fn insert(
    cp: &ControlPlane,
    tx: &mut Tx,
    new: &NewAccount<'_>,
    actor: Actor,
) -> Result<(i64, shipping_tokens::Created), Refusal> {
    let version = feed::next_version(tx).await?;
    let id = store::insert(tx, new, version).await?;
    let kind = new.account_type.shipping_kind();
    let first = shipping_tokens::insert(cp, tx, id, kind, "default", true, actor).await?;
    audit(
        cp,
        tx,
        id,
        actor,
        "account.create",
        &format!("account:{id}"),
    )
    .await?;
    Ok((id, first))
}

/// The accounts an admin of a main account may switch to: its sub-accounts that are
/// `accessible` and its tied metrics, tracing and security accounts — the reach
/// `callers` gives the main account's API tokens (`X-Account-Id`). Other accounts reach none.
pub async fn reachable(cp: &ControlPlane, caller: &Caller) -> Result<Vec<Account>, Refusal> {
    caller.require_admin()?;
    if !caller.account.is_main_logs() {
        return Ok(Vec::new());
    }
    let mut conn = cp.store.conn().await?;
    let mut reached = Vec::new();
    for account_type in [
        AccountType::Logs,
        AccountType::Metrics,
        AccountType::Tracing,
        AccountType::Security,
    ] {
        for owned in store::owned_accounts(&mut conn, caller.account.id, account_type).await? {
            if account_type == AccountType::Logs && !owned.settings.accessible {
                continue;
            }
            if let Some(account) = store::get(&mut conn, owned.id).await? {
                reached.push(account);
            }
        }
    }
    Ok(reached)
}
