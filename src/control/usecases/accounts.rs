//! Accounts (DESIGN §4): the operator creates main accounts and their tied metrics,
//! tracing and security accounts; a main account manages its sub-accounts (Logz.io's
//! time-based accounts). Every new account starts with one enabled shipping token of its
//! kind, and with a first API token where its type and plan allow one.

use super::{Change, api_tokens, audit, shipping_tokens};
use crate::control::ControlPlane;
use crate::control::auth::Caller;
use crate::control::clock::DAY_MS;
use crate::control::error::ApiError;
use crate::control::rules::{self, AccountType, Plan, checked_name};
use crate::control::store::accounts::{
    self as store, Account, NewAccount, OwnedAccount, SubAccountSettings, UtilizationSettings,
};
use crate::control::store::shipping_tokens::{self as token_store, Removal};
use crate::control::store::{Actor, Db, Tx, feed};

/// A main account or a tied one, as the operator asks for it.
pub struct AccountRequest<'a> {
    pub name: &'a str,
    pub plan: Option<Plan>,
    pub account_type: Option<AccountType>,
    pub owner_account_id: Option<i64>,
    /// Epoch seconds; main accounts only.
    pub trial_ends_at: Option<i64>,
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
) -> Result<CreatedAccount, ApiError> {
    let name = checked_name(req.name)?;
    let account_type = req.account_type.unwrap_or(AccountType::Logs);
    let mut tx = cp.store.begin().await?;
    let owner = match req.owner_account_id {
        None if account_type != AccountType::Logs => {
            return Err(ApiError::Invalid {
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
        return Err(ApiError::invalid(
            "plan and trialEndsAt belong to the main account; a tied account follows them",
        ));
    }
    let now = cp.clock.now_secs();
    let plan = req.plan.unwrap_or(Plan::Community);
    let new = NewAccount {
        name,
        account_type,
        owner_id: owner.as_ref().map(|o| o.id),
        plan,
        trial_ends_at: req.trial_ends_at,
        settings: &SubAccountSettings::default(),
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

/// An existing main account (a log management account no one owns), for tying another to it.
async fn main_account(tx: &mut Tx, id: i64) -> Result<Account, ApiError> {
    let account = store::get(tx, id).await?.ok_or_else(|| ApiError::Invalid {
        code: "accounts/OWNER_NOT_MAIN",
        message: format!("ownerAccountId {id} is not an account"),
    })?;
    if !account.is_main_logs() {
        return Err(ApiError::Invalid {
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
) -> Result<(i64, shipping_tokens::Created), ApiError> {
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

// === sub-accounts (Logz.io time-based accounts) ===

/// The sub-account fields a create or update gives; `None` leaves a field as it is.
#[derive(Default)]
pub struct SubAccountFields {
    pub email: Option<String>,
    pub retention_days: Option<i64>,
    pub max_daily_gb: Option<f64>,
    pub searchable: Option<bool>,
    pub accessible: Option<bool>,
    pub sharing_objects_accounts: Option<Vec<i64>>,
    pub doc_size_setting: Option<bool>,
    pub utilization_settings: Option<UtilizationSettings>,
    pub is_flexible: Option<bool>,
    pub reserved_daily_gb: Option<f64>,
    pub soft_limit_gb: Option<f64>,
    pub snap_search_retention_days: Option<i64>,
}

/// Whether fields are applied to a new sub-account or an existing one.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Applying {
    Create,
    Update,
}

impl SubAccountFields {
    /// Applies the given fields over `s`, checking each (400 naming the field).
    ///
    /// Numbers given are kept as given, 0 included (Logz.io's Go client sends them as
    /// pointers, left out when unset). `retentionDays` is the exception: the client sends
    /// it always, 0 when unset, so on an update 0 keeps the current value; a new
    /// sub-account given 0 is refused, as every retention is at least a day.
    fn apply(self, s: &mut SubAccountSettings, applying: Applying) -> Result<(), ApiError> {
        match self.retention_days {
            Some(0) if applying == Applying::Update => {}
            Some(days) if !(1..=3650).contains(&days) => {
                return Err(ApiError::invalid(
                    "retentionDays must be between 1 and 3650",
                ));
            }
            Some(days) => s.retention_days = Some(days),
            None => {}
        }
        for (field, value) in [
            ("maxDailyGB", self.max_daily_gb),
            ("reservedDailyGB", self.reserved_daily_gb),
            ("softLimitGB", self.soft_limit_gb),
        ] {
            if let Some(v) = value
                && !(v.is_finite() && v >= 0.0)
            {
                return Err(ApiError::invalid(format!("{field} must be a number >= 0")));
            }
        }
        if let Some(minutes) = self
            .utilization_settings
            .as_ref()
            .and_then(|u| u.frequency_minutes)
            && minutes < 0
        {
            return Err(ApiError::invalid(
                "utilizationSettings.frequencyMinutes must be >= 0",
            ));
        }
        if let Some(days) = self.snap_search_retention_days
            && !(0..=3650).contains(&days)
        {
            return Err(ApiError::invalid(
                "snapSearchRetentionDays must be between 0 and 3650",
            ));
        }
        if let Some(email) = self.email {
            s.email = Some(checked_email(email)?);
        }
        s.max_daily_gb = self.max_daily_gb.or(s.max_daily_gb);
        s.searchable = self.searchable.unwrap_or(s.searchable);
        s.accessible = self.accessible.unwrap_or(s.accessible);
        let extra = &mut s.extra;
        extra.reserved_daily_gb = self.reserved_daily_gb.or(extra.reserved_daily_gb);
        extra.soft_limit_gb = self.soft_limit_gb.or(extra.soft_limit_gb);
        extra.snap_search_retention_days = self
            .snap_search_retention_days
            .or(extra.snap_search_retention_days);
        extra.doc_size_setting = self.doc_size_setting.unwrap_or(extra.doc_size_setting);
        extra.is_flexible = self.is_flexible.unwrap_or(extra.is_flexible);
        if let Some(u) = self.utilization_settings {
            extra.utilization_settings = u;
        }
        if let Some(ids) = self.sharing_objects_accounts {
            extra.sharing_objects_accounts = ids;
        }
        if let (Some(reserved), Some(max)) = (extra.reserved_daily_gb, s.max_daily_gb)
            && reserved > max
        {
            return Err(ApiError::invalid(
                "reservedDailyGB must not be more than maxDailyGB",
            ));
        }
        Ok(())
    }
}

/// An email address, as Logz.io takes one for a sub-account's or metrics account's admin.
/// (Logz.io also requires an admin user of the main account: checked once accounts have
/// users.)
pub(super) fn checked_email(email: String) -> Result<String, ApiError> {
    let (local, domain) = email.split_once('@').unwrap_or_default();
    if local.is_empty()
        || domain.is_empty()
        || email.len() > 256
        || email.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(ApiError::invalid(
            "email must be an email address (an admin user of the main account)",
        ));
    }
    Ok(email)
}

/// Sub-account and metrics-account calls act on a main account, with its API token or the
/// operator's secret. The handlers ask before parsing a path id, so a caller that may not
/// make the call learns that first.
pub fn check_main_caller(caller: &Caller) -> Result<(), ApiError> {
    caller.require_admin()?;
    caller.require_main_account()?;
    if !caller.account.is_main_logs() {
        return Err(ApiError::rule(
            "accounts/NOT_MAIN_ACCOUNT",
            format!(
                "account {} is not a main log management account",
                caller.account.id
            ),
        ));
    }
    Ok(())
}

/// A new sub-account's id and its first shipping token.
pub struct CreatedSubAccount {
    pub account_id: i64,
    pub account_token: String,
}

pub async fn create_sub_account(
    cp: &ControlPlane,
    caller: &Caller,
    name: Option<&str>,
    fields: SubAccountFields,
) -> Result<CreatedSubAccount, ApiError> {
    check_main_caller(caller)?;
    let name = checked_name(name.ok_or_else(|| ApiError::invalid("accountName is required"))?)?;
    let mut settings = SubAccountSettings::default();
    fields.apply(&mut settings, Applying::Create)?;
    let mut change = Change::begin(cp, caller).await?;
    check_sharing_accounts(
        &mut change.tx,
        change.account.id,
        None,
        &settings.extra.sharing_objects_accounts,
    )
    .await?;
    let new = NewAccount {
        name,
        account_type: AccountType::Logs,
        owner_id: Some(change.account.id),
        plan: change.account.plan,
        trial_ends_at: None,
        settings: &settings,
        created_at: cp.clock.now_secs(),
    };
    let (account_id, first) = insert(cp, &mut change.tx, &new, caller.actor).await?;
    let target = format!("account:{account_id}");
    change.record("sub-account.create", &target).await?;
    change.commit().await?;
    cp.published(first.version);
    Ok(CreatedSubAccount {
        account_id,
        account_token: first.token,
    })
}

/// `sharingObjectsAccounts` may name the main account and its other sub-accounts only.
async fn check_sharing_accounts(
    tx: &mut Tx,
    main_id: i64,
    this: Option<i64>,
    ids: &[i64],
) -> Result<(), ApiError> {
    check_main_or_its_subs(tx, main_id, this, ids, "sharingObjectsAccounts").await
}

/// `field` may name the main account and its sub-accounts other than `this` only.
pub(super) async fn check_main_or_its_subs(
    tx: &mut Tx,
    main_id: i64,
    this: Option<i64>,
    ids: &[i64],
    field: &str,
) -> Result<(), ApiError> {
    let valid = main_or_its_subs(tx, main_id, this, ids).await?;
    if let Some(id) = ids.iter().find(|id| !valid.contains(id)) {
        return Err(ApiError::invalid(format!(
            "{field}: account {id} is not this main account or one of its other sub-accounts"
        )));
    }
    Ok(())
}

/// The ids in `ids` that are the main account or one of its sub-accounts other than
/// `this`: a stored list loses the accounts deleted since it was written, so an update
/// that does not touch the list, or a read, never trips over them.
pub(super) async fn main_or_its_subs(
    db: &mut impl Db,
    main_id: i64,
    this: Option<i64>,
    ids: &[i64],
) -> Result<Vec<i64>, ApiError> {
    let mut valid = Vec::with_capacity(ids.len());
    for &id in ids {
        let ok = id == main_id
            || (Some(id) != this
                && store::get(db, id)
                    .await?
                    .is_some_and(|a| a.owner_id == Some(main_id) && a.is_sub_account()));
        if ok {
            valid.push(id);
        }
    }
    Ok(valid)
}

/// A sub-account with the names of the accounts it shares objects with.
pub struct SubAccountView {
    pub sub: OwnedAccount,
    /// `(account id, name)` of each account in `sharingObjectsAccounts` that still exists.
    pub sharing: Vec<(i64, String)>,
}

async fn view(db: &mut impl Db, sub: OwnedAccount) -> Result<SubAccountView, ApiError> {
    let ids = &sub.settings.extra.sharing_objects_accounts;
    let mut sharing = Vec::with_capacity(ids.len());
    for &id in ids {
        if let Some(a) = store::get(db, id).await? {
            sharing.push((a.id, a.name));
        }
    }
    Ok(SubAccountView { sub, sharing })
}

pub async fn list_sub_accounts(
    cp: &ControlPlane,
    caller: &Caller,
) -> Result<Vec<SubAccountView>, ApiError> {
    check_main_caller(caller)?;
    let mut conn = cp.store.conn().await?;
    let subs = store::owned_accounts(&mut conn, caller.account.id, AccountType::Logs).await?;
    let mut out = Vec::with_capacity(subs.len());
    for sub in subs {
        out.push(view(&mut conn, sub).await?);
    }
    Ok(out)
}

async fn fetch_sub(db: &mut impl Db, main_id: i64, id: i64) -> Result<OwnedAccount, ApiError> {
    store::owned_account_of(db, main_id, AccountType::Logs, id)
        .await?
        .ok_or_else(|| ApiError::not_found(&format!("sub-account {id}")))
}

pub async fn read_sub_account(
    cp: &ControlPlane,
    caller: &Caller,
    id: i64,
) -> Result<SubAccountView, ApiError> {
    check_main_caller(caller)?;
    let mut conn = cp.store.conn().await?;
    let sub = fetch_sub(&mut conn, caller.account.id, id).await?;
    view(&mut conn, sub).await
}

/// A sub-account with what its main account needs to manage it: who owns it and the
/// volume its gateways reported per UTC day.
pub struct DetailedSubAccount {
    pub view: SubAccountView,
    pub owner_id: i64,
    /// `(day's midnight in epoch ms, bytes)`, oldest first, the last `USAGE_DAYS` days
    /// that had any.
    pub daily_bytes: Vec<(i64, i64)>,
}

async fn detailed(
    cp: &ControlPlane,
    db: &mut impl Db,
    owner_id: i64,
    sub: OwnedAccount,
) -> Result<DetailedSubAccount, ApiError> {
    let since = cp.clock.today_utc_ms() - (feed::DAILY_USAGE_DAYS - 1) * DAY_MS;
    let daily_bytes = feed::daily_bytes(db, sub.id, since).await?;
    Ok(DetailedSubAccount {
        view: view(db, sub).await?,
        owner_id,
        daily_bytes,
    })
}

pub async fn list_detailed_sub_accounts(
    cp: &ControlPlane,
    caller: &Caller,
) -> Result<Vec<DetailedSubAccount>, ApiError> {
    check_main_caller(caller)?;
    let mut conn = cp.store.conn().await?;
    let main_id = caller.account.id;
    let subs = store::owned_accounts(&mut conn, main_id, AccountType::Logs).await?;
    let mut out = Vec::with_capacity(subs.len());
    for sub in subs {
        out.push(detailed(cp, &mut conn, main_id, sub).await?);
    }
    Ok(out)
}

pub async fn read_detailed_sub_account(
    cp: &ControlPlane,
    caller: &Caller,
    id: i64,
) -> Result<DetailedSubAccount, ApiError> {
    check_main_caller(caller)?;
    let mut conn = cp.store.conn().await?;
    let main_id = caller.account.id;
    let sub = fetch_sub(&mut conn, main_id, id).await?;
    detailed(cp, &mut conn, main_id, sub).await
}

/// Changing `accessible` or `searchable` takes effect on the next request: access is read
/// from the store on every call. A rename reaches gateways (they carry account names), and
/// so does `searchable` (their read grants).
pub async fn update_sub_account(
    cp: &ControlPlane,
    caller: &Caller,
    id: i64,
    name: Option<&str>,
    fields: SubAccountFields,
) -> Result<(), ApiError> {
    check_main_caller(caller)?;
    let new_name = name.map(checked_name).transpose()?;
    let mut change = Change::begin(cp, caller).await?;
    let main_id = change.account.id;
    let current = fetch_sub(&mut change.tx, main_id, id).await?;
    let mut settings = current.settings.clone();
    let sharing = &mut settings.extra.sharing_objects_accounts;
    *sharing = main_or_its_subs(&mut change.tx, main_id, Some(id), sharing).await?;
    let given = fields.sharing_objects_accounts.is_some();
    fields.apply(&mut settings, Applying::Update)?;
    if given {
        let sharing = &settings.extra.sharing_objects_accounts;
        check_sharing_accounts(&mut change.tx, main_id, Some(id), sharing).await?;
    }
    let name = new_name.unwrap_or(&current.name);
    store::update_owned_account(&mut change.tx, id, name, &settings, cp.clock.now_secs()).await?;
    let mut version = republish_if_renamed(&mut change.tx, id, &current.name, name).await?;
    if settings.searchable != current.settings.searchable {
        let v = match version {
            Some(v) => v,
            None => feed::next_version(&mut change.tx).await?,
        };
        store::republish(&mut change.tx, id, v).await?;
        version = Some(v);
    }
    let action = match (current.settings.accessible, settings.accessible) {
        (true, false) => "sub-account.revoke-access",
        (false, true) => "sub-account.restore-access",
        _ => "sub-account.update",
    };
    change.record(action, &format!("account:{id}")).await?;
    change.commit().await?;
    if let Some(v) = version {
        cp.published(v);
    }
    Ok(())
}

/// Deletes the sub-account and everything it holds; gateways drop its tokens.
pub async fn delete_sub_account(
    cp: &ControlPlane,
    caller: &Caller,
    id: i64,
) -> Result<(), ApiError> {
    check_main_caller(caller)?;
    let mut change = Change::begin(cp, caller).await?;
    fetch_sub(&mut change.tx, change.account.id, id).await?;
    let version = delete_owned(cp, &mut change.tx, id).await?;
    change
        .record("sub-account.delete", &format!("account:{id}"))
        .await?;
    change.commit().await?;
    cp.published(version);
    Ok(())
}

/// Gateways carry an account's name with each of its tokens: a rename puts them all in
/// the feed again. Returns the feed version to publish, if it moved.
pub(super) async fn republish_if_renamed(
    tx: &mut Tx,
    id: i64,
    old: &str,
    new: &str,
) -> Result<Option<i64>, ApiError> {
    if old == new {
        return Ok(None);
    }
    let version = feed::next_version(tx).await?;
    token_store::republish_account(tx, id, version).await?;
    Ok(Some(version))
}

/// Deletes an owned account and everything it holds; gateways get the tombstones of its
/// tokens and read grants. Returns the feed version to publish.
pub(super) async fn delete_owned(cp: &ControlPlane, tx: &mut Tx, id: i64) -> Result<i64, ApiError> {
    let version = feed::next_version(tx).await?;
    token_store::remove(tx, Removal::AllOf { account_id: id }, version).await?;
    store::delete_with_contents(tx, id, version).await?;
    feed::prune_tombstones(tx, version, cp.feed_retained_versions).await?;
    Ok(version)
}

// === reach, for the page's account switcher ===

/// The accounts an admin of a main account may switch to: its sub-accounts that are
/// `accessible` and its tied metrics, tracing and security accounts — the reach
/// `auth` gives the main account's API tokens (`X-Account-Id`). Other accounts reach none.
pub async fn reachable(cp: &ControlPlane, caller: &Caller) -> Result<Vec<Account>, ApiError> {
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
