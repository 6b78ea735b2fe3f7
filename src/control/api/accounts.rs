//! The account API (DESIGN §4): the operator creates main accounts and their tied
//! metrics, tracing and security accounts (`/v1/admin/accounts`); a caller asks who it is
//! (`/v2/whoami`); the operator reads and sets a main account's daily volume
//! (`/v1/admin/accounts/{id}`). Sub-accounts are in `sub_accounts`; rules and changes in
//! `usecases::accounts`.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::{Id, Operator};
use super::json::Body;
use crate::control::plane::ControlPlane;
use crate::control::rules::{AccountType, Plan};
use crate::control::usecases::accounts::{self as usecase, AccountRequest, MainVolume};
use crate::control::usecases::callers::Caller;

pub fn routes() -> Router<Arc<ControlPlane>> {
    Router::new()
        .route("/v1/admin/accounts", post(create_account))
        .route("/v2/whoami", get(whoami))
        .route(
            "/v1/admin/accounts/{id}",
            get(read_main_volume).put(set_main_volume),
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
    /// The plan's daily volume in GB; main log accounts only.
    #[serde(default, rename = "totalTimeBasedDailyGB")]
    total_time_based_daily_gb: Option<f64>,
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
    Operator(actor): Operator,
    Body(req): Body<CreateAccount>,
) -> Result<Json<CreatedAccount>, ApiError> {
    let request = AccountRequest {
        name: &req.account_name,
        plan: req.plan,
        account_type: req.account_type,
        owner_account_id: req.owner_account_id,
        trial_ends_at: req.trial_ends_at,
        daily_volume_gb: req.total_time_based_daily_gb,
    };
    let created = usecase::create_account(&cp, actor, request).await?;
    Ok(Json(CreatedAccount {
        account_id: created.account_id,
        account_token: created.account_token,
        api_token: created.api_token,
    }))
}

/// A main account's daily volume, as the operator sets and reads it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MainVolumeModel {
    account_id: i64,
    /// The plan's daily volume; `null`: none set.
    #[serde(rename = "totalTimeBasedDailyGB")]
    total_time_based_daily_gb: Option<f64>,
    /// What the sub-accounts' fixed and reserved volumes leave to share.
    #[serde(rename = "sharedGB")]
    shared_gb: Option<f64>,
}

impl From<MainVolume> for MainVolumeModel {
    fn from(v: MainVolume) -> Self {
        MainVolumeModel {
            account_id: v.account_id,
            total_time_based_daily_gb: v.daily_volume_gb,
            shared_gb: v.shared_gb,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetMainVolume {
    /// `null` clears it.
    #[serde(rename = "totalTimeBasedDailyGB")]
    total_time_based_daily_gb: Option<f64>,
}

/// `GET /v1/admin/accounts/{id}`: a main account's volume, for the operator.
async fn read_main_volume(
    State(cp): State<Arc<ControlPlane>>,
    Operator(_): Operator,
    Id(id): Id,
) -> Result<Json<MainVolumeModel>, ApiError> {
    Ok(Json(usecase::main_volume_of(&cp, id).await?.into()))
}

/// `PUT /v1/admin/accounts/{id}`: the operator sets a main account's volume.
async fn set_main_volume(
    State(cp): State<Arc<ControlPlane>>,
    Operator(actor): Operator,
    Id(id): Id,
    Body(req): Body<SetMainVolume>,
) -> Result<Json<MainVolumeModel>, ApiError> {
    let volume = usecase::set_main_volume(&cp, actor, id, req.total_time_based_daily_gb).await?;
    Ok(Json(volume.into()))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WhoAmI {
    account_id: i64,
    account_name: String,
}

/// `GET /v2/whoami`: the account this call acts on.
async fn whoami(
    State(_cp): State<Arc<ControlPlane>>,
    caller: Caller,
) -> Result<Json<WhoAmI>, ApiError> {
    Ok(Json(WhoAmI {
        account_id: caller.account.id,
        account_name: caller.account.name,
    }))
}
