//! The API-token API (DESIGN §4): list, create (also for a sub-account), delete. Rules
//! and changes are in `usecases::api_tokens`.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::{Authenticated, Id};
use super::json::Body;
use crate::control::plane::ControlPlane;
use crate::control::usecases::api_tokens::{self as usecase, CreatedApiToken};
use crate::control::usecases::callers::Caller;

pub fn routes() -> Router<Arc<ControlPlane>> {
    Router::new()
        .route("/v1/api-tokens", get(list).post(create))
        .route("/v1/api-tokens/sub-account", post(create_for_sub_account))
        .route("/v1/api-tokens/{id}", delete(remove))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ApiTokenModel {
    id: i64,
    name: String,
    created_at: i64,
}

/// The create answer: the only place a token's secret ever appears.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreatedModel {
    id: i64,
    name: String,
    token: String,
    created_at: i64,
}

impl From<CreatedApiToken> for CreatedModel {
    fn from(c: CreatedApiToken) -> Self {
        CreatedModel {
            id: c.id,
            name: c.name,
            token: c.token,
            created_at: c.created_at,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateRequest {
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubAccountRequest {
    name: String,
    account_id: i64,
}

async fn create(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
    Body(req): Body<CreateRequest>,
) -> Result<Json<CreatedModel>, ApiError> {
    Ok(Json(usecase::create(&cp, &caller, &req.name).await?.into()))
}

/// A main account creates an API token for one of its sub-accounts, while it is accessible.
async fn create_for_sub_account(
    State(cp): State<Arc<ControlPlane>>,
    authenticated: Authenticated,
    Body(req): Body<SubAccountRequest>,
) -> Result<Json<CreatedModel>, ApiError> {
    let caller = authenticated.acting_on(&cp, req.account_id).await?;
    let created = usecase::create_for_sub_account(&cp, &caller, &req.name).await?;
    Ok(Json(created.into()))
}

async fn list(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
) -> Result<Json<Vec<ApiTokenModel>>, ApiError> {
    let tokens = usecase::list(&cp, &caller).await?;
    Ok(Json(
        tokens
            .into_iter()
            .map(|t| ApiTokenModel {
                id: t.id,
                name: t.name,
                created_at: t.created_at,
            })
            .collect(),
    ))
}

async fn remove(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<serde_json::Value>, ApiError> {
    usecase::delete(&cp, &caller, id).await?;
    Ok(Json(serde_json::json!({})))
}
