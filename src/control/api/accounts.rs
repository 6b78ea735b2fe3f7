//! The account API (DESIGN §4): the operator creates main accounts and their tied
//! metrics, tracing and security accounts (`/v1/admin/accounts`); a caller asks who it is
//! (`/v2/whoami`); the operator reads and sets a main account's daily volume and rate
//! limit (`/v1/admin/accounts/{id}`). Sub-accounts are in `sub_accounts`; rules and changes in
//! `usecases::accounts`.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::{Id, Operator};
use super::json::{Body, present};
use crate::control::plane::ControlPlane;
use crate::control::rules::{AccountType, Plan};
use crate::control::usecases::accounts::{
    self as usecase, AccountRequest, MainChange, MainSettings,
};
use crate::control::usecases::callers::Caller;
use crate::control::volume::RateLimit;

pub fn routes() -> Router<Arc<ControlPlane>> {
    Router::new()
        .route("/v1/admin/accounts", post(create_account))
        .route("/v2/whoami", get(whoami))
        .route(
            "/v1/admin/accounts/{id}",
            get(read_main_account).put(update_main_account),
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
    /// Over the plan's default; main log accounts only.
    #[serde(default)]
    rate_limit: Option<RateLimitInput>,
}

/// `rateLimit` as sent: `burstBytes` may be left out (one second of the rate).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RateLimitInput {
    bytes_per_second: u64,
    #[serde(default)]
    burst_bytes: Option<u64>,
}

impl RateLimitInput {
    fn checked(self) -> Result<RateLimit, ApiError> {
        Ok(RateLimit::checked(self.bytes_per_second, self.burst_bytes)?)
    }
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
        rate_limit: req.rate_limit.map(RateLimitInput::checked).transpose()?,
    };
    let created = usecase::create_account(&cp, actor, request).await?;
    Ok(Json(CreatedAccount {
        account_id: created.account_id,
        account_token: created.account_token,
        api_token: created.api_token,
    }))
}

/// A main account's daily volume and rate limit, as the operator sets and reads them.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MainAccountModel {
    account_id: i64,
    /// The plan's daily volume; `null`: none set.
    #[serde(rename = "totalTimeBasedDailyGB")]
    total_time_based_daily_gb: Option<f64>,
    /// What the sub-accounts' fixed and reserved volumes leave to share.
    #[serde(rename = "sharedGB")]
    shared_gb: Option<f64>,
    /// The account's own rate limit; `null`: its plan's default (if any) applies.
    rate_limit: Option<RateLimit>,
}

impl From<MainSettings> for MainAccountModel {
    fn from(s: MainSettings) -> Self {
        MainAccountModel {
            account_id: s.volume.account_id,
            total_time_based_daily_gb: s.volume.daily_volume_gb,
            shared_gb: s.volume.shared_gb,
            rate_limit: s.rate_limit,
        }
    }
}

/// Each field may be left out (unchanged) or `null` (cleared).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UpdateMainAccount {
    #[serde(
        default,
        rename = "totalTimeBasedDailyGB",
        deserialize_with = "present"
    )]
    total_time_based_daily_gb: Option<Option<f64>>,
    #[serde(default, deserialize_with = "present")]
    rate_limit: Option<Option<RateLimitInput>>,
}

/// `GET /v1/admin/accounts/{id}`: a main account's volume and rate limit, for the operator.
async fn read_main_account(
    State(cp): State<Arc<ControlPlane>>,
    Operator(_): Operator,
    Id(id): Id,
) -> Result<Json<MainAccountModel>, ApiError> {
    Ok(Json(usecase::main_settings_of(&cp, id).await?.into()))
}

/// `PUT /v1/admin/accounts/{id}`: the operator sets a main account's volume, rate limit
/// or both.
async fn update_main_account(
    State(cp): State<Arc<ControlPlane>>,
    Operator(actor): Operator,
    Id(id): Id,
    Body(req): Body<UpdateMainAccount>,
) -> Result<Json<MainAccountModel>, ApiError> {
    let change = MainChange {
        daily_volume_gb: req.total_time_based_daily_gb,
        rate_limit: req
            .rate_limit
            .map(|r| r.map(RateLimitInput::checked).transpose())
            .transpose()?,
    };
    let settings = usecase::update_main_account(&cp, actor, id, change).await?;
    Ok(Json(settings.into()))
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
