//! Accounts (DESIGN §4): the operator creates main accounts and their tied metrics,
//! tracing and security accounts (`/v1/admin/accounts`); a main account manages its
//! sub-accounts with Logz.io's time-based-accounts API. Every new account starts with one
//! enabled shipping token of its kind, and with a first API token where its type and plan
//! allow one.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::auth::{self, Caller};
use super::error::ApiError;
use super::json::{Body, lenient_bool};
use super::rules::{self, AccountType, Plan};
use super::shipping_tokens::{self, checked_name, parse_id};
use super::store::{self, Actor, Tx, now_secs};
use super::{ControlPlane, api_tokens};

pub fn routes() -> Router<Arc<ControlPlane>> {
    Router::new()
        .route("/v1/admin/accounts", post(create_account))
        .route("/v2/whoami", get(whoami))
        .route(
            "/v1/account-management/time-based-accounts",
            get(list_sub_accounts).post(create_sub_account),
        )
        .route(
            "/v1/account-management/time-based-accounts/{id}",
            get(read_sub_account)
                .put(update_sub_account)
                .delete(delete_sub_account),
        )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateAccount {
    account_name: String,
    #[serde(default)]
    plan: Option<Plan>,
    #[serde(default, rename = "type")]
    account_type: Option<AccountType>,
    #[serde(default)]
    owner_account_id: Option<i64>,
    /// Epoch seconds; main accounts only.
    #[serde(default)]
    trial_ends_at: Option<i64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreatedAccount {
    account_id: i64,
    account_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_token: Option<String>,
}

/// `POST /v1/admin/accounts`: the operator only.
async fn create_account(
    State(cp): State<Arc<ControlPlane>>,
    headers: HeaderMap,
    Body(req): Body<CreateAccount>,
) -> Result<Json<CreatedAccount>, ApiError> {
    auth::admin(&cp, &headers).await?;
    let name = checked_name(&req.account_name)?.to_string();
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
    let new = NewAccount {
        name,
        account_type,
        owner_id: owner.as_ref().map(|o| o.id),
        plan: req.plan.unwrap_or(Plan::Community),
        trial_ends_at: req.trial_ends_at,
        settings: SubAccountSettings::default(),
    };
    let (account_id, account_token, version) = insert_account(&mut tx, &new, Actor::Admin).await?;
    let plan = match &owner {
        Some(o) => o.plan_now(),
        None => rules::effective_plan(new.plan, new.trial_ends_at, now_secs()),
    };
    let api_token = if rules::check_may_create_api_token(account_type, plan).is_ok() {
        Some(
            api_tokens::insert(&mut tx, account_id, "default", Actor::Admin)
                .await?
                .token,
        )
    } else {
        None
    };
    tx.commit().await?;
    cp.published(version);
    Ok(Json(CreatedAccount {
        account_id,
        account_token,
        api_token,
    }))
}

/// An existing main account (a log management account no one owns), for tying another to it.
async fn main_account(tx: &mut Tx, id: i64) -> Result<store::Account, ApiError> {
    let account = store::account(&mut **tx, id)
        .await?
        .ok_or_else(|| ApiError::Invalid {
            code: "accounts/OWNER_NOT_MAIN",
            message: format!("ownerAccountId {id} is not an account"),
        })?;
    if !account.is_main() || account.account_type != AccountType::Logs {
        return Err(ApiError::Invalid {
            code: "accounts/OWNER_NOT_MAIN",
            message: format!("account {id} is not a main log management account"),
        });
    }
    Ok(account)
}

struct NewAccount {
    name: String,
    account_type: AccountType,
    owner_id: Option<i64>,
    plan: Plan,
    trial_ends_at: Option<i64>,
    settings: SubAccountSettings,
}

/// Inserts the account and its first shipping token; returns (id, token, feed version).
///
/// `max_daily_gb` is bound as a number with a flag for NULL (here and in the update):
/// sqlx 0.8's Any driver sends a NULL `f64` to PostgreSQL as `float4`, the statement is
/// prepared once per connection with that type, and the next non-NULL `f64` on that
/// connection then fails ("incorrect binary data format in bind parameter").
async fn insert_account(
    tx: &mut Tx,
    new: &NewAccount,
    actor: Actor,
) -> Result<(i64, String, i64), ApiError> {
    let s = &new.settings;
    let row = sqlx::query(
        "INSERT INTO accounts (name, type, plan, trial_ends_at, owner_id, email, retention_days, \
         max_daily_gb, searchable, accessible, settings, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $13 = 1 THEN $8 END, $9, $10, $11, $12) \
         RETURNING id",
    )
    .bind(new.name.as_str())
    .bind(new.account_type.as_str())
    .bind(new.plan.as_str())
    .bind(new.trial_ends_at)
    .bind(new.owner_id)
    .bind(s.email.clone())
    .bind(s.retention_days)
    .bind(s.max_daily_gb.unwrap_or(0.0))
    .bind(i64::from(s.searchable))
    .bind(i64::from(s.accessible))
    .bind(s.extra_json())
    .bind(now_secs())
    .bind(i64::from(s.max_daily_gb.is_some()))
    .fetch_one(&mut **tx)
    .await?;
    let id: i64 = row.try_get("id")?;
    let kind = new.account_type.shipping_kind();
    let first = shipping_tokens::insert(tx, id, kind, "default", true, actor).await?;
    store::audit(tx, id, actor, "account.create", &format!("account:{id}")).await?;
    Ok((id, first.token, first.version))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WhoAmI {
    account_id: i64,
    account_name: String,
}

/// `GET /v2/whoami`: the account this call acts on.
async fn whoami(
    State(cp): State<Arc<ControlPlane>>,
    headers: HeaderMap,
) -> Result<Json<WhoAmI>, ApiError> {
    let caller = auth::caller(&cp, &headers).await?;
    Ok(Json(WhoAmI {
        account_id: caller.account.id,
        account_name: caller.account.name,
    }))
}

// === sub-accounts (Logz.io time-based accounts) ===

/// The sub-account fields Logz.io's API carries. `searchable` and `accessible` are
/// enforced; the rest is stored and served back so Logz.io clients round-trip.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubAccountSettings {
    email: Option<String>,
    retention_days: Option<i64>,
    #[serde(rename = "maxDailyGB")]
    max_daily_gb: Option<f64>,
    searchable: bool,
    accessible: bool,
    sharing_objects_accounts: Vec<i64>,
    doc_size_setting: bool,
    utilization_settings: UtilizationSettings,
    is_flexible: bool,
    #[serde(rename = "reservedDailyGB")]
    reserved_daily_gb: Option<f64>,
}

impl Default for SubAccountSettings {
    fn default() -> Self {
        SubAccountSettings {
            email: None,
            retention_days: None,
            max_daily_gb: None,
            searchable: false,
            accessible: true,
            sharing_objects_accounts: Vec::new(),
            doc_size_setting: false,
            utilization_settings: UtilizationSettings::default(),
            is_flexible: false,
            reserved_daily_gb: None,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UtilizationSettings {
    #[serde(default)]
    frequency_minutes: Option<i64>,
    #[serde(default, deserialize_with = "lenient_bool")]
    utilization_enabled: Option<bool>,
}

/// What lives in the `settings` JSON column (the rest has columns of its own).
#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ExtraSettings {
    sharing_objects_accounts: Vec<i64>,
    doc_size_setting: bool,
    utilization_settings: UtilizationSettings,
    is_flexible: bool,
    #[serde(rename = "reservedDailyGB")]
    reserved_daily_gb: Option<f64>,
}

impl SubAccountSettings {
    fn extra_json(&self) -> String {
        serde_json::to_string(&ExtraSettings {
            sharing_objects_accounts: self.sharing_objects_accounts.clone(),
            doc_size_setting: self.doc_size_setting,
            utilization_settings: self.utilization_settings.clone(),
            is_flexible: self.is_flexible,
            reserved_daily_gb: self.reserved_daily_gb,
        })
        .expect("settings serialise")
    }
}

/// A create or update body, as Logz.io's API takes it; every field optional on update.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubAccountRequest {
    #[serde(default)]
    account_name: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    retention_days: Option<i64>,
    #[serde(default, rename = "maxDailyGB")]
    max_daily_gb: Option<f64>,
    #[serde(default, deserialize_with = "lenient_bool")]
    searchable: Option<bool>,
    #[serde(default, deserialize_with = "lenient_bool")]
    accessible: Option<bool>,
    #[serde(default)]
    sharing_objects_accounts: Option<Vec<i64>>,
    #[serde(default, deserialize_with = "lenient_bool")]
    doc_size_setting: Option<bool>,
    #[serde(default)]
    utilization_settings: Option<UtilizationSettings>,
    #[serde(default, deserialize_with = "lenient_bool")]
    is_flexible: Option<bool>,
    #[serde(default, rename = "reservedDailyGB")]
    reserved_daily_gb: Option<f64>,
}

impl SubAccountRequest {
    /// Applies the given fields over `s`, checking each.
    fn apply(self, s: &mut SubAccountSettings) -> Result<(), ApiError> {
        // Logz.io's Go client sends 0 for numbers it was not given: 0 means "unchanged".
        if let Some(days) = self.retention_days.filter(|d| *d != 0) {
            if !(1..=3650).contains(&days) {
                return Err(ApiError::invalid(
                    "retentionDays must be between 1 and 3650",
                ));
            }
            s.retention_days = Some(days);
        }
        for (field, value) in [
            ("maxDailyGB", self.max_daily_gb),
            ("reservedDailyGB", self.reserved_daily_gb),
        ] {
            if let Some(v) = value
                && !(v.is_finite() && v >= 0.0)
            {
                return Err(ApiError::invalid(format!("{field} must be a number >= 0")));
            }
        }
        if let Some(email) = self.email {
            if email.len() > 256 || email.chars().any(char::is_control) {
                return Err(ApiError::invalid("email must be at most 256 characters"));
            }
            s.email = Some(email);
        }
        let given = |v: Option<f64>| v.filter(|v| *v != 0.0);
        s.max_daily_gb = given(self.max_daily_gb).or(s.max_daily_gb);
        s.reserved_daily_gb = given(self.reserved_daily_gb).or(s.reserved_daily_gb);
        s.searchable = self.searchable.unwrap_or(s.searchable);
        s.accessible = self.accessible.unwrap_or(s.accessible);
        s.doc_size_setting = self.doc_size_setting.unwrap_or(s.doc_size_setting);
        s.is_flexible = self.is_flexible.unwrap_or(s.is_flexible);
        if let Some(u) = self.utilization_settings {
            s.utilization_settings = u;
        }
        if let Some(ids) = self.sharing_objects_accounts {
            s.sharing_objects_accounts = ids;
        }
        Ok(())
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SubAccountModel {
    account_id: i64,
    account_name: String,
    /// Its first enabled log shipping token.
    account_token: Option<String>,
    email: Option<String>,
    retention_days: Option<i64>,
    #[serde(rename = "maxDailyGB")]
    max_daily_gb: Option<f64>,
    searchable: bool,
    accessible: bool,
    sharing_objects_accounts: Vec<SharingAccount>,
    doc_size_setting: bool,
    utilization_settings: UtilizationSettings,
    is_flexible: bool,
    #[serde(rename = "reservedDailyGB")]
    reserved_daily_gb: Option<f64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SharingAccount {
    account_id: i64,
    account_name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreatedSubAccount {
    account_id: i64,
    account_token: String,
}

/// Sub-account calls act on a main account, with its API token or the operator's secret.
fn main_caller(caller: &Caller) -> Result<(), ApiError> {
    auth::require_main_account(caller)?;
    if !caller.account.is_main() || caller.account.account_type != AccountType::Logs {
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

async fn create_sub_account(
    State(cp): State<Arc<ControlPlane>>,
    headers: HeaderMap,
    Body(req): Body<SubAccountRequest>,
) -> Result<Json<CreatedSubAccount>, ApiError> {
    let caller = auth::caller(&cp, &headers).await?;
    main_caller(&caller)?;
    let name = checked_name(
        req.account_name
            .as_deref()
            .ok_or_else(|| ApiError::invalid("accountName is required"))?,
    )?
    .to_string();
    let mut settings = SubAccountSettings::default();
    req.apply(&mut settings)?;
    let mut tx = cp.store.begin().await?;
    let main = store::lock_account(&mut tx, caller.account.id).await?;
    check_sharing_accounts(&mut tx, main.id, None, &settings.sharing_objects_accounts).await?;
    let new = NewAccount {
        name,
        account_type: AccountType::Logs,
        owner_id: Some(main.id),
        plan: main.plan,
        trial_ends_at: None,
        settings,
    };
    let (account_id, account_token, version) = insert_account(&mut tx, &new, caller.actor).await?;
    store::audit(
        &mut tx,
        main.id,
        caller.actor,
        "sub-account.create",
        &format!("account:{account_id}"),
    )
    .await?;
    tx.commit().await?;
    cp.published(version);
    Ok(Json(CreatedSubAccount {
        account_id,
        account_token,
    }))
}

/// `sharingObjectsAccounts` may name the main account and its other sub-accounts only.
async fn check_sharing_accounts(
    tx: &mut Tx,
    main_id: i64,
    this: Option<i64>,
    ids: &[i64],
) -> Result<(), ApiError> {
    for &id in ids {
        let ok = id == main_id
            || (Some(id) != this
                && store::account(&mut **tx, id)
                    .await?
                    .is_some_and(|a| a.owner_id == Some(main_id) && a.is_sub_account()));
        if !ok {
            return Err(ApiError::invalid(format!(
                "sharingObjectsAccounts: account {id} is not this main account or one of its other sub-accounts"
            )));
        }
    }
    Ok(())
}

const SUB_COLUMNS: &str = "a.id, a.name, a.email, a.retention_days, a.max_daily_gb, a.searchable, \
     a.accessible, a.settings, (SELECT t.token FROM shipping_tokens t WHERE t.account_id = a.id \
     AND t.enabled = 1 ORDER BY t.id LIMIT 1) AS account_token";

async fn sub_model(
    conn: &mut sqlx::AnyConnection,
    r: &AnyRow,
) -> Result<SubAccountModel, ApiError> {
    let settings: String = r.try_get("settings")?;
    let extra: ExtraSettings = serde_json::from_str(&settings).unwrap_or_default();
    let mut sharing = Vec::with_capacity(extra.sharing_objects_accounts.len());
    for id in extra.sharing_objects_accounts {
        if let Some(a) = store::account(&mut *conn, id).await? {
            sharing.push(SharingAccount {
                account_id: a.id,
                account_name: a.name,
            });
        }
    }
    Ok(SubAccountModel {
        account_id: r.try_get("id")?,
        account_name: r.try_get("name")?,
        account_token: r.try_get("account_token")?,
        email: r.try_get("email")?,
        retention_days: r.try_get("retention_days")?,
        max_daily_gb: r.try_get("max_daily_gb")?,
        searchable: r.try_get::<i64, _>("searchable")? != 0,
        accessible: r.try_get::<i64, _>("accessible")? != 0,
        sharing_objects_accounts: sharing,
        doc_size_setting: extra.doc_size_setting,
        utilization_settings: extra.utilization_settings,
        is_flexible: extra.is_flexible,
        reserved_daily_gb: extra.reserved_daily_gb,
    })
}

async fn list_sub_accounts(
    State(cp): State<Arc<ControlPlane>>,
    headers: HeaderMap,
) -> Result<Json<Vec<SubAccountModel>>, ApiError> {
    let caller = auth::caller(&cp, &headers).await?;
    main_caller(&caller)?;
    let mut conn = cp.store.pool.acquire().await?;
    let rows = sqlx::query(&format!(
        "SELECT {SUB_COLUMNS} FROM accounts a WHERE a.owner_id = $1 AND a.type = 'logs' ORDER BY a.id"
    ))
    .bind(caller.account.id)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        out.push(sub_model(&mut conn, r).await?);
    }
    Ok(Json(out))
}

async fn fetch_sub(
    conn: &mut sqlx::AnyConnection,
    main_id: i64,
    id: i64,
) -> Result<SubAccountModel, ApiError> {
    let row = sqlx::query(&format!(
        "SELECT {SUB_COLUMNS} FROM accounts a WHERE a.id = $1 AND a.owner_id = $2 AND a.type = 'logs'"
    ))
    .bind(id)
    .bind(main_id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| ApiError::not_found(&format!("sub-account {id}")))?;
    sub_model(conn, &row).await
}

async fn read_sub_account(
    State(cp): State<Arc<ControlPlane>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<SubAccountModel>, ApiError> {
    let caller = auth::caller(&cp, &headers).await?;
    main_caller(&caller)?;
    let id = parse_id(&id)?;
    let mut conn = cp.store.pool.acquire().await?;
    Ok(Json(fetch_sub(&mut conn, caller.account.id, id).await?))
}

/// Changing `accessible` or `searchable` takes effect on the next request: access is read
/// from the store on every call.
async fn update_sub_account(
    State(cp): State<Arc<ControlPlane>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(req): Body<SubAccountRequest>,
) -> Result<StatusCode, ApiError> {
    let caller = auth::caller(&cp, &headers).await?;
    main_caller(&caller)?;
    let id = parse_id(&id)?;
    let new_name = req
        .account_name
        .as_deref()
        .map(checked_name)
        .transpose()?
        .map(str::to_string);
    let mut tx = cp.store.begin().await?;
    let main = store::lock_account(&mut tx, caller.account.id).await?;
    let current = fetch_sub(&mut tx, main.id, id).await?;
    let mut settings = SubAccountSettings {
        email: current.email,
        retention_days: current.retention_days,
        max_daily_gb: current.max_daily_gb,
        searchable: current.searchable,
        accessible: current.accessible,
        sharing_objects_accounts: current
            .sharing_objects_accounts
            .iter()
            .map(|a| a.account_id)
            .collect(),
        doc_size_setting: current.doc_size_setting,
        utilization_settings: current.utilization_settings,
        is_flexible: current.is_flexible,
        reserved_daily_gb: current.reserved_daily_gb,
    };
    req.apply(&mut settings)?;
    check_sharing_accounts(
        &mut tx,
        main.id,
        Some(id),
        &settings.sharing_objects_accounts,
    )
    .await?;
    let renamed = new_name
        .as_ref()
        .is_some_and(|n| *n != current.account_name);
    sqlx::query(
        "UPDATE accounts SET name = $1, email = $2, retention_days = $3, \
         max_daily_gb = CASE WHEN $9 = 1 THEN $4 END, searchable = $5, accessible = $6, \
         settings = $7 WHERE id = $8",
    )
    .bind(new_name.unwrap_or(current.account_name))
    .bind(settings.email.clone())
    .bind(settings.retention_days)
    .bind(settings.max_daily_gb.unwrap_or(0.0))
    .bind(i64::from(settings.searchable))
    .bind(i64::from(settings.accessible))
    .bind(settings.extra_json())
    .bind(id)
    .bind(i64::from(settings.max_daily_gb.is_some()))
    .execute(&mut *tx)
    .await?;
    // Gateways carry the account name with each token: a rename is a feed change.
    let version = if renamed {
        let version = store::next_feed_version(&mut tx).await?;
        sqlx::query("UPDATE shipping_tokens SET feed_version = $1 WHERE account_id = $2")
            .bind(version)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        Some(version)
    } else {
        None
    };
    let action = match (current.accessible, settings.accessible) {
        (true, false) => "sub-account.revoke-access",
        (false, true) => "sub-account.restore-access",
        _ => "sub-account.update",
    };
    store::audit(
        &mut tx,
        main.id,
        caller.actor,
        action,
        &format!("account:{id}"),
    )
    .await?;
    tx.commit().await?;
    if let Some(v) = version {
        cp.published(v);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes the sub-account and everything it holds; gateways drop its tokens.
async fn delete_sub_account(
    State(cp): State<Arc<ControlPlane>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let caller = auth::caller(&cp, &headers).await?;
    main_caller(&caller)?;
    let id = parse_id(&id)?;
    let mut tx = cp.store.begin().await?;
    let main = store::lock_account(&mut tx, caller.account.id).await?;
    fetch_sub(&mut tx, main.id, id).await?;
    let version =
        shipping_tokens::remove(&mut tx, cp.feed_retained_versions, "account_id = $1", id).await?;
    for statement in [
        "DELETE FROM shared_token_filters WHERE shared_token_id IN \
         (SELECT id FROM shared_tokens WHERE account_id = $1)",
        "DELETE FROM shared_tokens WHERE account_id = $1",
        "DELETE FROM token_filters WHERE account_id = $1",
        "DELETE FROM api_tokens WHERE account_id = $1",
        "DELETE FROM account_usage WHERE account_id = $1",
        "DELETE FROM accounts WHERE id = $1",
    ] {
        sqlx::query(statement).bind(id).execute(&mut *tx).await?;
    }
    store::audit(
        &mut tx,
        main.id,
        caller.actor,
        "sub-account.delete",
        &format!("account:{id}"),
    )
    .await?;
    tx.commit().await?;
    cp.published(version);
    Ok(StatusCode::NO_CONTENT)
}
