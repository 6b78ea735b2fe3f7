//! Metrics accounts through Logz.io's API (`/v1/account-management/metrics-accounts`): the
//! metrics accounts tied to a main account, managed with the main account's API token
//! (the product documentation: metrics accounts use their main account's API tokens).
//! The same accounts the operator can tie with `/v1/admin/accounts`; each starts with one
//! enabled metrics shipping token, which gateways accept at once.

use super::accounts::insert;
use super::callers::Caller;
use super::change::Change;
use super::sub_accounts::{
    check_admin_email, check_main_caller, check_main_or_its_subs, checked_email, delete_owned,
    main_or_its_subs, republish_if_renamed,
};
use crate::control::plane::ControlPlane;
use crate::control::refusal::Refusal;
use crate::control::rules::{AccountType, NAME_CHARS, checked_name};
use crate::control::store::Db;
use crate::control::store::accounts::{
    self as store, NewAccount, OwnedAccount, SubAccountSettings,
};

/// What a create or update gives; `None` leaves a field as it is (a create needs `email`,
/// and names the account after its main account without `account_name`).
#[derive(Default)]
pub struct MetricsAccountFields {
    pub email: Option<String>,
    pub account_name: Option<String>,
    pub plan_uts: Option<i64>,
    pub authorized_accounts_ids: Option<Vec<i64>>,
}

impl MetricsAccountFields {
    fn apply(self, s: &mut SubAccountSettings) -> Result<(), Refusal> {
        if let Some(uts) = self.plan_uts {
            if uts < 0 {
                return Err(Refusal::invalid(
                    "planUts must be a number of time series >= 0",
                ));
            }
            s.extra.plan_uts = Some(uts);
        }
        if let Some(email) = self.email {
            s.email = Some(checked_email(email)?);
        }
        if let Some(ids) = self.authorized_accounts_ids {
            s.extra.authorized_accounts_ids = ids;
        }
        Ok(())
    }
}

pub async fn create(
    cp: &ControlPlane,
    caller: &Caller,
    fields: MetricsAccountFields,
) -> Result<OwnedAccount, Refusal> {
    check_main_caller(caller)?;
    let given_name = match &fields.account_name {
        Some(name) => Some(checked_name(name)?.to_string()),
        None => None,
    };
    if fields.email.is_none() {
        return Err(Refusal::invalid("email is required"));
    }
    let mut settings = SubAccountSettings::default();
    fields.apply(&mut settings)?;
    let mut change = Change::begin(cp, caller).await?;
    let main = change.account.clone();
    let name = given_name.unwrap_or_else(|| default_name(&main.name));
    check_admin_email(&mut change.tx, main.id, None, settings.email.as_deref()).await?;
    let ids = &settings.extra.authorized_accounts_ids;
    check_main_or_its_subs(&mut change.tx, main.id, None, ids, "authorizedAccountsIds").await?;
    let new = NewAccount {
        name: &name,
        account_type: AccountType::Metrics,
        owner_id: Some(main.id),
        plan: main.plan,
        trial_ends_at: None,
        settings: &settings,
        created_at: cp.clock.now_secs(),
    };
    let (id, first) = insert(cp, &mut change.tx, &new, caller.actor).await?;
    change
        .record("metrics-account.create", &format!("account:{id}"))
        .await?;
    let account = fetch(&mut change.tx, main.id, id).await?;
    change.commit().await?;
    cp.published(first.version);
    Ok(account)
}

/// Logz.io names a metrics account created without a name `<main account's name>_metrics`
/// (shortened to fit the 256 characters a name may have).
fn default_name(main_name: &str) -> String {
    const SUFFIX: &str = "_metrics";
    let keep = NAME_CHARS - SUFFIX.len();
    let mut name: String = main_name.chars().take(keep).collect();
    name.push_str(SUFFIX);
    name
}

async fn fetch(db: &mut impl Db, main_id: i64, id: i64) -> Result<OwnedAccount, Refusal> {
    let account = store::owned_account_of(db, main_id, AccountType::Metrics, id)
        .await?
        .ok_or_else(|| Refusal::not_found(&format!("metrics account {id}")))?;
    shown(db, main_id, account).await
}

/// As clients see it: without the authorized accounts deleted since it was written.
async fn shown(
    db: &mut impl Db,
    main_id: i64,
    mut account: OwnedAccount,
) -> Result<OwnedAccount, Refusal> {
    let ids = &mut account.settings.extra.authorized_accounts_ids;
    *ids = main_or_its_subs(db, main_id, None, ids).await?;
    Ok(account)
}

pub async fn list(cp: &ControlPlane, caller: &Caller) -> Result<Vec<OwnedAccount>, Refusal> {
    check_main_caller(caller)?;
    let mut conn = cp.store.conn().await?;
    let main_id = caller.account.id;
    let accounts = store::owned_accounts(&mut conn, main_id, AccountType::Metrics).await?;
    let mut out = Vec::with_capacity(accounts.len());
    for account in accounts {
        out.push(shown(&mut conn, main_id, account).await?);
    }
    Ok(out)
}

pub async fn read(cp: &ControlPlane, caller: &Caller, id: i64) -> Result<OwnedAccount, Refusal> {
    check_main_caller(caller)?;
    let mut conn = cp.store.conn().await?;
    fetch(&mut conn, caller.account.id, id).await
}

/// Renames it (gateways carry account names: a feed change), re-plans or re-shares it.
pub async fn update(
    cp: &ControlPlane,
    caller: &Caller,
    id: i64,
    fields: MetricsAccountFields,
) -> Result<OwnedAccount, Refusal> {
    check_main_caller(caller)?;
    let new_name = match &fields.account_name {
        Some(name) => Some(checked_name(name)?.to_string()),
        None => None,
    };
    let mut change = Change::begin(cp, caller).await?;
    let main_id = change.account.id;
    let current = fetch(&mut change.tx, main_id, id).await?;
    let mut settings = current.settings.clone();
    let given = fields.authorized_accounts_ids.is_some();
    fields.apply(&mut settings)?;
    let (before, after) = (current.settings.email.as_deref(), settings.email.as_deref());
    check_admin_email(&mut change.tx, main_id, before, after).await?;
    let ids = &mut settings.extra.authorized_accounts_ids;
    if given {
        check_main_or_its_subs(&mut change.tx, main_id, None, ids, "authorizedAccountsIds").await?;
    } else {
        *ids = main_or_its_subs(&mut change.tx, main_id, None, ids).await?;
    }
    let name = new_name.unwrap_or_else(|| current.name.clone());
    let now = cp.clock.now_secs();
    store::update_owned_account(&mut change.tx, id, &name, &settings, now).await?;
    let version = republish_if_renamed(&mut change.tx, id, &current.name, &name).await?;
    change
        .record("metrics-account.update", &format!("account:{id}"))
        .await?;
    let account = fetch(&mut change.tx, main_id, id).await?;
    change.commit().await?;
    if let Some(v) = version {
        cp.published(v);
    }
    Ok(account)
}

/// Deletes the metrics account and its tokens; gateways drop them.
pub async fn delete(cp: &ControlPlane, caller: &Caller, id: i64) -> Result<(), Refusal> {
    check_main_caller(caller)?;
    let mut change = Change::begin(cp, caller).await?;
    fetch(&mut change.tx, change.account.id, id).await?;
    let version = delete_owned(cp, &mut change.tx, id).await?;
    change
        .record("metrics-account.delete", &format!("account:{id}"))
        .await?;
    change.commit().await?;
    cp.published(version);
    Ok(())
}
