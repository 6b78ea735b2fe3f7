//! Logz.io's metrics-accounts API (`/v1/account-management/metrics-accounts`), in its
//! shapes: `{email, accountName, planUts, authorizedAccountsIds}` in, `{Id, accountName,
//! token, createdAt, planUts, authorizedAccountsIds}` out (`Id` capitalised, as Logz.io's
//! JSON has it; `createdAt` in epoch ms). Rules and changes are in
//! `usecases::metrics_accounts`.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::Id;
use super::json::Body;
use crate::control::plane::ControlPlane;
use crate::control::store::accounts::OwnedAccount;
use crate::control::usecases::callers::Caller;
use crate::control::usecases::metrics_accounts::{self as usecase, MetricsAccountFields};
use crate::control::usecases::sub_accounts::check_main_caller;

pub fn routes() -> Router<Arc<ControlPlane>> {
    Router::new()
        .route(
            "/v1/account-management/metrics-accounts",
            get(list).post(create),
        )
        .route(
            "/v1/account-management/metrics-accounts/{id}",
            get(read).put(update).delete(delete),
        )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetricsAccountRequest {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    account_name: Option<String>,
    #[serde(default)]
    plan_uts: Option<i64>,
    #[serde(default)]
    authorized_accounts_ids: Option<Vec<i64>>,
}

impl From<MetricsAccountRequest> for MetricsAccountFields {
    fn from(r: MetricsAccountRequest) -> Self {
        MetricsAccountFields {
            email: r.email,
            account_name: r.account_name,
            plan_uts: r.plan_uts,
            authorized_accounts_ids: r.authorized_accounts_ids,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MetricsAccountModel {
    #[serde(rename = "Id")]
    id: i64,
    account_name: String,
    /// Its first enabled metrics shipping token.
    token: Option<String>,
    /// Epoch milliseconds.
    created_at: i64,
    plan_uts: Option<i64>,
    authorized_accounts_ids: Vec<i64>,
}

impl From<OwnedAccount> for MetricsAccountModel {
    fn from(a: OwnedAccount) -> Self {
        MetricsAccountModel {
            id: a.id,
            account_name: a.name,
            token: a.account_token,
            created_at: a.created_at.saturating_mul(1000),
            plan_uts: a.settings.extra.plan_uts,
            authorized_accounts_ids: a.settings.extra.authorized_accounts_ids,
        }
    }
}

async fn create(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
    Body(req): Body<MetricsAccountRequest>,
) -> Result<Json<MetricsAccountModel>, ApiError> {
    Ok(Json(
        usecase::create(&cp, &caller, req.into()).await?.into(),
    ))
}

async fn list(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
) -> Result<Json<Vec<MetricsAccountModel>>, ApiError> {
    let accounts = usecase::list(&cp, &caller).await?;
    Ok(Json(accounts.into_iter().map(Into::into).collect()))
}

async fn read(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<MetricsAccountModel>, ApiError> {
    check_main_caller(&caller)?;
    Ok(Json(usecase::read(&cp, &caller, id).await?.into()))
}

async fn update(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
    Id(id): Id,
    Body(req): Body<MetricsAccountRequest>,
) -> Result<Json<MetricsAccountModel>, ApiError> {
    check_main_caller(&caller)?;
    Ok(Json(
        usecase::update(&cp, &caller, id, req.into()).await?.into(),
    ))
}

/// 200 with `{}`: Logz.io's client takes a 204 here for "not found".
async fn delete(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<serde_json::Value>, ApiError> {
    check_main_caller(&caller)?;
    usecase::delete(&cp, &caller, id).await?;
    Ok(Json(serde_json::json!({})))
}
