//! The account API (DESIGN §4): the operator creates main accounts and their tied
//! metrics, tracing and security accounts (`/v1/admin/accounts`); a caller asks who it is
//! (`/v2/whoami`). Sub-accounts are in `sub_accounts`; rules and changes in
//! `usecases::accounts`.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::Operator;
use super::json::Body;
use crate::control::plane::ControlPlane;
use crate::control::rules::{AccountType, Plan};
use crate::control::usecases::accounts::{self as usecase, AccountRequest};
use crate::control::usecases::callers::Caller;

pub fn routes() -> Router<Arc<ControlPlane>> {
    Router::new()
        .route("/v1/admin/accounts", post(create_account))
        .route("/v2/whoami", get(whoami))
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
    Operator(actor): Operator,
    Body(req): Body<CreateAccount>,
) -> Result<Json<CreatedAccount>, ApiError> {
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
    State(_cp): State<Arc<ControlPlane>>,
    caller: Caller,
) -> Result<Json<WhoAmI>, ApiError> {
    Ok(Json(WhoAmI {
        account_id: caller.account.id,
        account_name: caller.account.name,
    }))
}
