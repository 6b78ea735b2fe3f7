//! The account API (DESIGN §4): the operator creates main accounts and their tied
//! metrics, tracing and security accounts (`/v1/admin/accounts`); a main account manages
//! its sub-accounts with Logz.io's time-based-accounts API. Rules and changes are in
//! `usecases::accounts`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::ControlPlane;
use super::auth;
use super::error::ApiError;
use super::json::{Body, lenient_bool, parse_id};
use super::rules::{AccountType, Plan};
use super::store::accounts::UtilizationSettings;
use super::usecases::accounts::{
    self as usecase, AccountRequest, DetailedSubAccount, SubAccountFields, SubAccountView,
    check_main_caller,
};

pub fn routes() -> Router<Arc<ControlPlane>> {
    Router::new()
        .route("/v1/admin/accounts", post(create_account))
        .route("/v2/whoami", get(whoami))
        .route(
            "/v1/account-management/time-based-accounts",
            get(list_sub_accounts).post(create_sub_account),
        )
        .route(
            "/v1/account-management/time-based-accounts/detailed",
            get(list_detailed_sub_accounts),
        )
        .route(
            "/v1/account-management/time-based-accounts/detailed/{id}",
            get(read_detailed_sub_account),
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
    let actor = auth::operator(&cp, &headers).await?;
    let request = AccountRequest {
        name: &req.account_name,
        plan: req.plan,
        account_type: req.account_type,
        owner_account_id: req.owner_account_id,
        trial_ends_at: req.trial_ends_at,
    };
    let created = usecase::create_account(&cp, actor, request).await?;
    Ok(Json(CreatedAccount {
        account_id: created.account_id,
        account_token: created.account_token,
        api_token: created.api_token,
    }))
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
    utilization_settings: Option<UtilizationRequest>,
    #[serde(default, deserialize_with = "lenient_bool")]
    is_flexible: Option<bool>,
    #[serde(default, rename = "reservedDailyGB")]
    reserved_daily_gb: Option<f64>,
    #[serde(default, rename = "softLimitGB")]
    soft_limit_gb: Option<f64>,
    #[serde(default)]
    snap_search_retention_days: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UtilizationRequest {
    #[serde(default)]
    frequency_minutes: Option<i64>,
    #[serde(default, deserialize_with = "lenient_bool")]
    utilization_enabled: Option<bool>,
}

impl SubAccountRequest {
    /// The name apart, the fields the use case applies.
    fn split(self) -> (Option<String>, SubAccountFields) {
        let fields = SubAccountFields {
            email: self.email,
            retention_days: self.retention_days,
            max_daily_gb: self.max_daily_gb,
            searchable: self.searchable,
            accessible: self.accessible,
            sharing_objects_accounts: self.sharing_objects_accounts,
            doc_size_setting: self.doc_size_setting,
            utilization_settings: self.utilization_settings.map(|u| UtilizationSettings {
                frequency_minutes: u.frequency_minutes,
                utilization_enabled: u.utilization_enabled,
            }),
            is_flexible: self.is_flexible,
            reserved_daily_gb: self.reserved_daily_gb,
            soft_limit_gb: self.soft_limit_gb,
            snap_search_retention_days: self.snap_search_retention_days,
        };
        (self.account_name, fields)
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
    #[serde(rename = "softLimitGB")]
    soft_limit_gb: Option<f64>,
    snap_search_retention_days: Option<i64>,
    /// tollgate caps no account's volume.
    is_capped: bool,
    /// Flexible volume sharing is not modelled: `null`.
    #[serde(rename = "sharedGB")]
    shared_gb: Option<f64>,
    #[serde(rename = "totalTimeBasedDailyGB")]
    total_time_based_daily_gb: Option<f64>,
    /// Whether this is the main account; a sub-account never is.
    is_owner: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SharingAccount {
    account_id: i64,
    account_name: String,
}

impl From<SubAccountView> for SubAccountModel {
    fn from(v: SubAccountView) -> Self {
        let s = v.sub.settings;
        SubAccountModel {
            account_id: v.sub.id,
            account_name: v.sub.name,
            account_token: v.sub.account_token,
            email: s.email,
            retention_days: s.retention_days,
            max_daily_gb: s.max_daily_gb,
            searchable: s.searchable,
            accessible: s.accessible,
            sharing_objects_accounts: v
                .sharing
                .into_iter()
                .map(|(account_id, account_name)| SharingAccount {
                    account_id,
                    account_name,
                })
                .collect(),
            doc_size_setting: s.extra.doc_size_setting,
            utilization_settings: s.extra.utilization_settings,
            is_flexible: s.extra.is_flexible,
            reserved_daily_gb: s.extra.reserved_daily_gb,
            soft_limit_gb: s.extra.soft_limit_gb,
            snap_search_retention_days: s.extra.snap_search_retention_days,
            is_capped: false,
            shared_gb: None,
            total_time_based_daily_gb: None,
            is_owner: false,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreatedSubAccount {
    account_id: i64,
    account_token: String,
}

async fn create_sub_account(
    State(cp): State<Arc<ControlPlane>>,
    headers: HeaderMap,
    Body(req): Body<SubAccountRequest>,
) -> Result<Json<CreatedSubAccount>, ApiError> {
    let caller = auth::caller(&cp, &headers).await?;
    let (name, fields) = req.split();
    let created = usecase::create_sub_account(&cp, &caller, name.as_deref(), fields).await?;
    Ok(Json(CreatedSubAccount {
        account_id: created.account_id,
        account_token: created.account_token,
    }))
}

async fn list_sub_accounts(
    State(cp): State<Arc<ControlPlane>>,
    headers: HeaderMap,
) -> Result<Json<Vec<SubAccountModel>>, ApiError> {
    let caller = auth::caller(&cp, &headers).await?;
    let subs = usecase::list_sub_accounts(&cp, &caller).await?;
    Ok(Json(subs.into_iter().map(Into::into).collect()))
}

async fn read_sub_account(
    State(cp): State<Arc<ControlPlane>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<SubAccountModel>, ApiError> {
    let caller = auth::caller(&cp, &headers).await?;
    check_main_caller(&caller)?;
    let id = parse_id(&id)?;
    Ok(Json(
        usecase::read_sub_account(&cp, &caller, id).await?.into(),
    ))
}

async fn update_sub_account(
    State(cp): State<Arc<ControlPlane>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(req): Body<SubAccountRequest>,
) -> Result<StatusCode, ApiError> {
    let caller = auth::caller(&cp, &headers).await?;
    check_main_caller(&caller)?;
    let id = parse_id(&id)?;
    let (name, fields) = req.split();
    usecase::update_sub_account(&cp, &caller, id, name.as_deref(), fields).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_sub_account(
    State(cp): State<Arc<ControlPlane>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let caller = auth::caller(&cp, &headers).await?;
    check_main_caller(&caller)?;
    let id = parse_id(&id)?;
    usecase::delete_sub_account(&cp, &caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// === detailed views ===

/// Logz.io's detailed sub-account: the relation to its main account, the account, and the
/// volume tollgate's gateways reported per UTC day. Fields tollgate does not keep
/// (`esIndexPrefix`, `lastUpdaterUserId`) are `null`; it caps no account, so `isCapped`
/// is false.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DetailedModel {
    sub_account_relation: Relation,
    account: AccountView,
    sharing_objects_accounts: Vec<SharingAccount>,
    utilization_settings: UtilizationSettings,
    daily_usages_list: DailyUsages,
    doc_size_setting: bool,
    snap_search_retention_days: Option<i64>,
    is_capped: bool,
    #[serde(rename = "softLimitGB")]
    soft_limit_gb: Option<f64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Relation {
    owner_account_id: i64,
    sub_account_id: i64,
    searchable: bool,
    accessible: bool,
    /// Epoch milliseconds, as Logz.io's.
    created_date: i64,
    last_updated_date: i64,
    last_updater_user_id: Option<i64>,
    #[serde(rename = "type")]
    relation: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AccountView {
    account_id: i64,
    account_name: String,
    account_token: Option<String>,
    active: bool,
    es_index_prefix: Option<String>,
    is_flexible: bool,
    #[serde(rename = "reservedDailyGB")]
    reserved_daily_gb: Option<f64>,
    #[serde(rename = "maxDailyGB")]
    max_daily_gb: Option<f64>,
    retention_days: Option<i64>,
    #[serde(rename = "softLimitGB")]
    soft_limit_gb: Option<f64>,
}

#[derive(Serialize)]
struct DailyUsages {
    usage: Vec<DayBytes>,
}

#[derive(Serialize)]
struct DayBytes {
    /// The UTC day's midnight, epoch milliseconds.
    date: i64,
    bytes: i64,
}

impl From<DetailedSubAccount> for DetailedModel {
    fn from(d: DetailedSubAccount) -> Self {
        let sub = &d.view.sub;
        let created_ms = sub.created_at.saturating_mul(1000);
        let settings = &sub.settings;
        let relation = Relation {
            owner_account_id: d.owner_id,
            sub_account_id: sub.id,
            searchable: settings.searchable,
            accessible: settings.accessible,
            created_date: created_ms,
            last_updated_date: sub
                .updated_at
                .map_or(created_ms, |t| t.saturating_mul(1000)),
            last_updater_user_id: None,
            relation: "SUB_ACCOUNT",
        };
        let account = AccountView {
            account_id: sub.id,
            account_name: sub.name.clone(),
            account_token: sub.account_token.clone(),
            // tollgate has no deactivated accounts: one that exists is active.
            active: true,
            es_index_prefix: None,
            is_flexible: settings.extra.is_flexible,
            reserved_daily_gb: settings.extra.reserved_daily_gb,
            max_daily_gb: settings.max_daily_gb,
            retention_days: settings.retention_days,
            soft_limit_gb: settings.extra.soft_limit_gb,
        };
        let model = SubAccountModel::from(d.view);
        DetailedModel {
            sub_account_relation: relation,
            account,
            sharing_objects_accounts: model.sharing_objects_accounts,
            utilization_settings: model.utilization_settings,
            daily_usages_list: DailyUsages {
                usage: d
                    .daily_bytes
                    .into_iter()
                    .map(|(date, bytes)| DayBytes { date, bytes })
                    .collect(),
            },
            doc_size_setting: model.doc_size_setting,
            snap_search_retention_days: model.snap_search_retention_days,
            is_capped: false,
            soft_limit_gb: model.soft_limit_gb,
        }
    }
}

async fn list_detailed_sub_accounts(
    State(cp): State<Arc<ControlPlane>>,
    headers: HeaderMap,
) -> Result<Json<Vec<DetailedModel>>, ApiError> {
    let caller = auth::caller(&cp, &headers).await?;
    let subs = usecase::list_detailed_sub_accounts(&cp, &caller).await?;
    Ok(Json(subs.into_iter().map(Into::into).collect()))
}

async fn read_detailed_sub_account(
    State(cp): State<Arc<ControlPlane>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<DetailedModel>, ApiError> {
    let caller = auth::caller(&cp, &headers).await?;
    check_main_caller(&caller)?;
    let id = parse_id(&id)?;
    let sub = usecase::read_detailed_sub_account(&cp, &caller, id).await?;
    Ok(Json(sub.into()))
}
