//! Sub-accounts through Logz.io's time-based-accounts API
//! (`/v1/account-management/time-based-accounts`), managed with the main account's API
//! token: create, list, read, update, delete, and the detailed views with daily usage.
//! Rules and changes are in `usecases::sub_accounts`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::Id;
use super::json::{Body, lenient_bool};
use crate::control::plane::ControlPlane;
use crate::control::store::accounts::UtilizationSettings;
use crate::control::usecases::callers::Caller;
use crate::control::usecases::sub_accounts::{
    self as usecase, DetailedSubAccount, SubAccountFields, SubAccountView, check_main_caller,
};

pub fn routes() -> Router<Arc<ControlPlane>> {
    Router::new()
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
    /// A gateway holds the account capped today: its logs are accepted and not forwarded
    /// until the UTC day turns (docs/volume.md).
    is_capped: bool,
    /// A flexible account's shared pool; `null` for a fixed account (as in Logz.io) or
    /// when the main account has no plan volume.
    #[serde(rename = "sharedGB")]
    shared_gb: Option<f64>,
    /// The plan volume a flexible account draws on; `null` as `sharedGB` is.
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
        let flexible = s.extra.is_flexible;
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
            is_capped: v.capped_today,
            shared_gb: v.pool.shared_gb.filter(|_| flexible),
            total_time_based_daily_gb: v.pool.daily_volume_gb.filter(|_| flexible),
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
    caller: Caller,
    Body(req): Body<SubAccountRequest>,
) -> Result<Json<CreatedSubAccount>, ApiError> {
    let (name, fields) = req.split();
    let created = usecase::create_sub_account(&cp, &caller, name.as_deref(), fields).await?;
    Ok(Json(CreatedSubAccount {
        account_id: created.account_id,
        account_token: created.account_token,
    }))
}

async fn list_sub_accounts(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
) -> Result<Json<Vec<SubAccountModel>>, ApiError> {
    let subs = usecase::list_sub_accounts(&cp, &caller).await?;
    Ok(Json(subs.into_iter().map(Into::into).collect()))
}

async fn read_sub_account(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<SubAccountModel>, ApiError> {
    check_main_caller(&caller)?;
    Ok(Json(
        usecase::read_sub_account(&cp, &caller, id).await?.into(),
    ))
}

async fn update_sub_account(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
    Id(id): Id,
    Body(req): Body<SubAccountRequest>,
) -> Result<StatusCode, ApiError> {
    check_main_caller(&caller)?;
    let (name, fields) = req.split();
    usecase::update_sub_account(&cp, &caller, id, name.as_deref(), fields).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_sub_account(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
    Id(id): Id,
) -> Result<StatusCode, ApiError> {
    check_main_caller(&caller)?;
    usecase::delete_sub_account(&cp, &caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// === detailed views ===

/// Logz.io's detailed sub-account: the relation to its main account, the account, and the
/// volume tollgate's gateways reported per UTC day. Fields tollgate does not keep
/// (`esIndexPrefix`, `lastUpdaterUserId`) are `null`; `isCapped` says whether a gateway
/// holds the account capped today.
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
    /// The same value under the key Logz.io's Go client reads in the detailed view.
    soft_limit: Option<f64>,
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
            is_capped: model.is_capped,
            soft_limit_gb: model.soft_limit_gb,
            soft_limit: model.soft_limit_gb,
        }
    }
}

async fn list_detailed_sub_accounts(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
) -> Result<Json<Vec<DetailedModel>>, ApiError> {
    let subs = usecase::list_detailed_sub_accounts(&cp, &caller).await?;
    Ok(Json(subs.into_iter().map(Into::into).collect()))
}

async fn read_detailed_sub_account(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<DetailedModel>, ApiError> {
    check_main_caller(&caller)?;
    let sub = usecase::read_detailed_sub_account(&cp, &caller, id).await?;
    Ok(Json(sub.into()))
}
