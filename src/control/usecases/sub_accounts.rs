//! Sub-accounts (Logz.io's time-based accounts), managed by their main account: create,
//! list (plain and detailed, with daily usage), read, update, delete. Also what they share
//! with the tied metrics accounts (`metrics_accounts`): the main caller's check, owned
//! accounts' insert, rename and delete.

use super::accounts::{MainVolume, allocation, insert, pool};
use super::callers::Caller;
use super::change::Change;
use crate::clock::DAY_MS;
use crate::control::plane::ControlPlane;
use crate::control::refusal::Refusal;
use crate::control::rules::{AccountType, checked_name};
use crate::control::store::accounts::{
    self as store, NewAccount, OwnedAccount, SubAccountSettings, UtilizationSettings,
};
use crate::control::store::shipping_tokens::{self as token_store, Removal};
use crate::control::store::users as user_store;
use crate::control::store::volume as volume_store;
use crate::control::store::{Db, Tx, feed};
use crate::control::volume;

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
    /// The field a volume refusal names: the one among those given that moves the most.
    fn volume_field(&self) -> &'static str {
        if self.reserved_daily_gb.is_some() {
            "reservedDailyGB"
        } else if self.max_daily_gb.is_some() {
            "maxDailyGB"
        } else {
            "isFlexible"
        }
    }

    /// Applies the given fields over `s`, checking each (400 naming the field).
    ///
    /// Numbers given are kept as given, 0 included (Logz.io's Go client sends them as
    /// pointers, left out when unset). `retentionDays` is the exception: the client sends
    /// it always, 0 when unset, so on an update 0 keeps the current value; a new
    /// sub-account given 0 is refused, as every retention is at least a day.
    fn apply(self, s: &mut SubAccountSettings, applying: Applying) -> Result<(), Refusal> {
        match self.retention_days {
            Some(0) if applying == Applying::Update => {}
            Some(days) if !(1..=3650).contains(&days) => {
                return Err(Refusal::invalid("retentionDays must be between 1 and 3650"));
            }
            Some(days) => s.retention_days = Some(days),
            None => {}
        }
        for (field, value) in [
            ("maxDailyGB", self.max_daily_gb),
            ("reservedDailyGB", self.reserved_daily_gb),
            ("softLimitGB", self.soft_limit_gb),
        ] {
            if let Some(gb) = value {
                volume::checked_gb(field, gb)?;
            }
        }
        if let Some(u) = &self.utilization_settings {
            volume::check_utilization(u.utilization_enabled, u.frequency_minutes)?;
        }
        if let Some(days) = self.snap_search_retention_days
            && !(0..=3650).contains(&days)
        {
            return Err(Refusal::invalid(
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
        // A flexible account's `maxDailyGB` of 0 means no cap (docs/volume.md): nothing
        // to exceed.
        let cap = s
            .max_daily_gb
            .filter(|max| !extra.is_flexible || *max > 0.0);
        if let (Some(reserved), Some(max)) = (extra.reserved_daily_gb, cap)
            && reserved > max
        {
            return Err(Refusal::invalid(
                "reservedDailyGB must not be more than maxDailyGB",
            ));
        }
        Ok(())
    }
}

/// An email address, as Logz.io takes one for a sub-account's or metrics account's admin
/// (`check_admin_email` then asks the store whether it is one).
pub(super) fn checked_email(email: String) -> Result<String, Refusal> {
    let (local, domain) = email.split_once('@').unwrap_or_default();
    if local.is_empty()
        || domain.is_empty()
        || email.len() > 256
        || email.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(Refusal::invalid(
            "email must be an email address (an admin user of the main account)",
        ));
    }
    Ok(email)
}

/// Logz.io refuses an account whose `email` is not an existing admin user of the main
/// account: it becomes the new account's admin. Checked when an account is created and
/// when an update changes the address (`current` is the stored one; a case change is no
/// change, as users' emails are compared lower-cased), so an update that keeps it goes
/// through whoever that user is now. One answer for an unknown user, another role, a
/// suspended admin and another account's admin: the refusal says nothing of who exists.
pub(super) async fn check_admin_email(
    tx: &mut Tx,
    main_id: i64,
    current: Option<&str>,
    email: Option<&str>,
) -> Result<(), Refusal> {
    let Some(email) = email else {
        return Ok(());
    };
    let lower = email.to_lowercase();
    if current.is_some_and(|c| c.to_lowercase() == lower)
        || user_store::is_active_admin(tx, main_id, &lower).await?
    {
        return Ok(());
    }
    Err(Refusal::Invalid {
        code: "accounts/EMAIL_NOT_ADMIN",
        message: format!("email: {email} is not an active admin user of the main account"),
    })
}

/// Sub-account and metrics-account calls act on a main account, with its API token or the
/// operator's secret. The handlers ask before parsing a path id, so a caller that may not
/// make the call learns that first.
pub fn check_main_caller(caller: &Caller) -> Result<(), Refusal> {
    caller.require_admin()?;
    caller.require_main_account()?;
    if !caller.account.is_main_logs() {
        return Err(Refusal::rule(
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
) -> Result<CreatedSubAccount, Refusal> {
    check_main_caller(caller)?;
    let name = checked_name(name.ok_or_else(|| Refusal::invalid("accountName is required"))?)?;
    let mut settings = SubAccountSettings::default();
    let volume_field = fields.volume_field();
    fields.apply(&mut settings, Applying::Create)?;
    let mut change = Change::begin(cp, caller).await?;
    let main_id = change.account.id;
    check_admin_email(&mut change.tx, main_id, None, settings.email.as_deref()).await?;
    check_volume_fits(&mut change.tx, main_id, None, &settings, volume_field).await?;
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

/// The sub-accounts' fixed and reserved volumes, sub-account `this` (`None`: a new one)
/// with `settings`, must fit the main account's plan volume.
async fn check_volume_fits(
    tx: &mut Tx,
    main_id: i64,
    this: Option<i64>,
    settings: &SubAccountSettings,
    field: &str,
) -> Result<(), Refusal> {
    let plan = store::daily_volume_gb(tx, main_id).await?;
    let others = store::owned_accounts(tx, main_id, AccountType::Logs).await?;
    let allocations = others
        .iter()
        .filter(|other| Some(other.id) != this)
        .map(|other| allocation(&other.settings))
        .chain(std::iter::once(allocation(settings)));
    volume::check_fits(plan, allocations, field)
}

/// `sharingObjectsAccounts` may name the main account and its other sub-accounts only.
async fn check_sharing_accounts(
    tx: &mut Tx,
    main_id: i64,
    this: Option<i64>,
    ids: &[i64],
) -> Result<(), Refusal> {
    check_main_or_its_subs(tx, main_id, this, ids, "sharingObjectsAccounts").await
}

/// `field` may name the main account and its sub-accounts other than `this` only.
pub(super) async fn check_main_or_its_subs(
    tx: &mut Tx,
    main_id: i64,
    this: Option<i64>,
    ids: &[i64],
    field: &str,
) -> Result<(), Refusal> {
    let valid = main_or_its_subs(tx, main_id, this, ids).await?;
    if let Some(id) = ids.iter().find(|id| !valid.contains(id)) {
        return Err(Refusal::invalid(format!(
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
) -> Result<Vec<i64>, Refusal> {
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

/// A sub-account with the names of the accounts it shares objects with, and its main
/// account's volume.
pub struct SubAccountView {
    pub sub: OwnedAccount,
    /// `(account id, name)` of each account in `sharingObjectsAccounts` that still exists.
    pub sharing: Vec<(i64, String)>,
    /// The plan volume and shared pool a flexible sub-account draws on.
    pub pool: MainVolume,
    /// A gateway holds it capped today (`isCapped`).
    pub capped_today: bool,
}

/// A main account manages a sub-account's settings whether or not it may access it (it
/// must be able to give access back), but sees nothing inside one it may not access: not
/// its shipping token, not its users.
async fn view(
    db: &mut impl Db,
    mut sub: OwnedAccount,
    pool: MainVolume,
    today_ms: i64,
) -> Result<SubAccountView, Refusal> {
    if !sub.settings.accessible {
        sub.account_token = None;
    }
    let ids = &sub.settings.extra.sharing_objects_accounts;
    let mut sharing = Vec::with_capacity(ids.len());
    for &id in ids {
        if let Some(a) = store::get(db, id).await? {
            sharing.push((a.id, a.name));
        }
    }
    let day = volume_store::day_state(db, sub.id, today_ms).await?;
    Ok(SubAccountView {
        sub,
        sharing,
        pool,
        capped_today: day.capped_at_ms.is_some(),
    })
}

/// A main account's sub-accounts and the volume they share, read once for a listing.
pub(super) async fn subs_and_pool(
    db: &mut impl Db,
    main_id: i64,
) -> Result<(Vec<OwnedAccount>, MainVolume), Refusal> {
    let subs = store::owned_accounts(db, main_id, AccountType::Logs).await?;
    let plan = store::daily_volume_gb(db, main_id).await?;
    let pool = MainVolume::of(main_id, plan, &subs);
    Ok((subs, pool))
}

pub async fn list_sub_accounts(
    cp: &ControlPlane,
    caller: &Caller,
) -> Result<Vec<SubAccountView>, Refusal> {
    check_main_caller(caller)?;
    let mut conn = cp.store.conn().await?;
    let (subs, pool) = subs_and_pool(&mut conn, caller.account.id).await?;
    let mut out = Vec::with_capacity(subs.len());
    for sub in subs {
        out.push(view(&mut conn, sub, pool, cp.clock.today_utc_ms()).await?);
    }
    Ok(out)
}

async fn fetch_sub(db: &mut impl Db, main_id: i64, id: i64) -> Result<OwnedAccount, Refusal> {
    store::owned_account_of(db, main_id, AccountType::Logs, id)
        .await?
        .ok_or_else(|| Refusal::not_found(&format!("sub-account {id}")))
}

pub async fn read_sub_account(
    cp: &ControlPlane,
    caller: &Caller,
    id: i64,
) -> Result<SubAccountView, Refusal> {
    check_main_caller(caller)?;
    let mut conn = cp.store.conn().await?;
    let sub = fetch_sub(&mut conn, caller.account.id, id).await?;
    let pool = pool(&mut conn, caller.account.id).await?;
    view(&mut conn, sub, pool, cp.clock.today_utc_ms()).await
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
    sub: OwnedAccount,
    pool: MainVolume,
) -> Result<DetailedSubAccount, Refusal> {
    let since = cp.clock.today_utc_ms() - (feed::DAILY_USAGE_DAYS - 1) * DAY_MS;
    let daily_bytes = feed::daily_bytes(db, sub.id, since).await?;
    Ok(DetailedSubAccount {
        view: view(db, sub, pool, cp.clock.today_utc_ms()).await?,
        owner_id: pool.account_id,
        daily_bytes,
    })
}

pub async fn list_detailed_sub_accounts(
    cp: &ControlPlane,
    caller: &Caller,
) -> Result<Vec<DetailedSubAccount>, Refusal> {
    check_main_caller(caller)?;
    let mut conn = cp.store.conn().await?;
    let (subs, pool) = subs_and_pool(&mut conn, caller.account.id).await?;
    let mut out = Vec::with_capacity(subs.len());
    for sub in subs {
        out.push(detailed(cp, &mut conn, sub, pool).await?);
    }
    Ok(out)
}

pub async fn read_detailed_sub_account(
    cp: &ControlPlane,
    caller: &Caller,
    id: i64,
) -> Result<DetailedSubAccount, Refusal> {
    check_main_caller(caller)?;
    let mut conn = cp.store.conn().await?;
    let main_id = caller.account.id;
    let sub = fetch_sub(&mut conn, main_id, id).await?;
    let pool = pool(&mut conn, main_id).await?;
    detailed(cp, &mut conn, sub, pool).await
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
) -> Result<(), Refusal> {
    check_main_caller(caller)?;
    let new_name = name.map(checked_name).transpose()?;
    let mut change = Change::begin(cp, caller).await?;
    let main_id = change.account.id;
    let current = fetch_sub(&mut change.tx, main_id, id).await?;
    let mut settings = current.settings.clone();
    let sharing = &mut settings.extra.sharing_objects_accounts;
    *sharing = main_or_its_subs(&mut change.tx, main_id, Some(id), sharing).await?;
    let given = fields.sharing_objects_accounts.is_some();
    let volume_field = fields.volume_field();
    fields.apply(&mut settings, Applying::Update)?;
    let (before, after) = (current.settings.email.as_deref(), settings.email.as_deref());
    check_admin_email(&mut change.tx, main_id, before, after).await?;
    // Only a change that takes more of the plan can break it: any other update of an
    // account goes through whatever the plan is now.
    if allocation(&settings).reserved_gb() > allocation(&current.settings).reserved_gb() {
        check_volume_fits(&mut change.tx, main_id, Some(id), &settings, volume_field).await?;
    }
    if given {
        let sharing = &settings.extra.sharing_objects_accounts;
        check_sharing_accounts(&mut change.tx, main_id, Some(id), sharing).await?;
    }
    let name = new_name.unwrap_or(&current.name);
    store::update_owned_account(&mut change.tx, id, name, &settings, cp.clock.now_secs()).await?;
    let mut version = republish_if_renamed(&mut change.tx, id, &current.name, name).await?;
    // Gateways hold the read grants (`searchable`) and the plan's volume policies.
    let republish = settings.searchable != current.settings.searchable
        || volume_policy_changed(&current.settings, &settings);
    if republish {
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
) -> Result<(), Refusal> {
    check_main_caller(caller)?;
    let mut change = Change::begin(cp, caller).await?;
    fetch_sub(&mut change.tx, change.account.id, id).await?;
    let version = delete_owned(cp, &mut change.tx, id).await?;
    // Its volume goes back to the plan's pool, which gateways hold with the main account.
    store::republish(&mut change.tx, change.account.id, version).await?;
    change
        .record("sub-account.delete", &format!("account:{id}"))
        .await?;
    change.commit().await?;
    cp.published(version);
    Ok(())
}

/// Whether gateways' volume policy of the account (or of its plan's pool) changes.
fn volume_policy_changed(old: &SubAccountSettings, new: &SubAccountSettings) -> bool {
    let policy = |s: &SubAccountSettings| {
        (
            s.max_daily_gb,
            s.extra.is_flexible,
            s.extra.reserved_daily_gb,
            s.extra.doc_size_setting,
            s.extra.utilization_settings.clone(),
        )
    };
    policy(old) != policy(new)
}

/// Gateways carry an account's name with each of its tokens: a rename puts them all in
/// the feed again. Returns the feed version to publish, if it moved.
pub(super) async fn republish_if_renamed(
    tx: &mut Tx,
    id: i64,
    old: &str,
    new: &str,
) -> Result<Option<i64>, Refusal> {
    if old == new {
        return Ok(None);
    }
    let version = feed::next_version(tx).await?;
    token_store::republish_account(tx, id, version).await?;
    Ok(Some(version))
}

/// Deletes an owned account and everything it holds; gateways get the tombstones of its
/// tokens and read grants. Returns the feed version to publish.
pub(super) async fn delete_owned(cp: &ControlPlane, tx: &mut Tx, id: i64) -> Result<i64, Refusal> {
    let version = feed::next_version(tx).await?;
    token_store::remove(tx, Removal::AllOf { account_id: id }, version).await?;
    store::delete_with_contents(tx, id, version).await?;
    feed::prune_tombstones(tx, version, cp.feed.retained_versions).await?;
    Ok(version)
}
