//! The API-token API (DESIGN §4): list, create (also for a sub-account), delete. Rules
//! and changes are in `usecases::api_tokens`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::ControlPlane;
use super::auth;
use super::error::ApiError;
use super::json::{Body, parse_id};
use super::usecases::api_tokens::{self as usecase, CreatedApiToken};

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
    headers: HeaderMap,
    Body(req): Body<CreateRequest>,
) -> Result<Json<CreatedModel>, ApiError> {
    let caller = auth::caller(&cp, &headers).await?;
    Ok(Json(usecase::create(&cp, &caller, &req.name).await?.into()))
}

/// A main account creates an API token for one of its sub-accounts, while it is accessible.
async fn create_for_sub_account(
    State(cp): State<Arc<ControlPlane>>,
    headers: HeaderMap,
    Body(req): Body<SubAccountRequest>,
) -> Result<Json<CreatedModel>, ApiError> {
    let caller = auth::caller_acting_on(&cp, &headers, req.account_id).await?;
    let created = usecase::create_for_sub_account(&cp, &caller, &req.name).await?;
    Ok(Json(created.into()))
}

async fn list(
    State(cp): State<Arc<ControlPlane>>,
    headers: HeaderMap,
) -> Result<Json<Vec<ApiTokenModel>>, ApiError> {
    let caller = auth::caller(&cp, &headers).await?;
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
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let caller = auth::caller(&cp, &headers).await?;
    let id = parse_id(&id)?;
    usecase::delete(&cp, &caller, id).await?;
    Ok(Json(serde_json::json!({})))
}
