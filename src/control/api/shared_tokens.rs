//! The shared-token and token-filter API (DESIGN §4, "Manage Shared Tokens"), in
//! Logz.io's shapes; times are epoch milliseconds. Rules and changes are in
//! `usecases::shared_tokens`; a gateway resolves a token through the feed (`feed.rs`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::Id;
use super::json::{Body, lenient_bool, present};
use crate::control::plane::ControlPlane;
use crate::control::store::shared_tokens::{Filter, FiltersOperator, SharedToken};
use crate::control::usecases::callers::Caller;
use crate::control::usecases::shared_tokens::{self as usecase, NewShared, SharedChange};

pub fn routes() -> Router<Arc<ControlPlane>> {
    Router::new()
        .route("/v1/shared-tokens", get(list).post(create))
        .route(
            "/v1/shared-tokens/filters",
            get(list_filters).post(create_filter),
        )
        .route(
            "/v1/shared-tokens/filters/{id}",
            get(read_filter).delete(delete_filter),
        )
        .route(
            "/v1/shared-tokens/{id}",
            get(read).put(update).delete(delete_token),
        )
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SharedTokenModel {
    id: i64,
    name: String,
    token: String,
    filters: Vec<i64>,
    filters_operator: FiltersOperator,
    last_used: Option<i64>,
    expiration_date: Option<i64>,
    /// No filter: the token reads every log of its account (Logz.io's meaning), said in
    /// every answer so an edit that removes the last filter cannot go unnoticed.
    reads_all_logs: bool,
}

impl From<SharedToken> for SharedTokenModel {
    fn from(t: SharedToken) -> Self {
        SharedTokenModel {
            reads_all_logs: t.filters.is_empty(),
            id: t.id,
            name: t.name,
            token: t.token,
            filters: t.filters,
            filters_operator: t.filters_operator,
            last_used: t.last_used_ms,
            expiration_date: t.expires_at_ms,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateRequest {
    token_name: String,
    #[serde(default)]
    filters: Vec<i64>,
    #[serde(default)]
    filters_operator: Option<FiltersOperator>,
    #[serde(default, deserialize_with = "present")]
    expiration_date: Option<Option<i64>>,
    /// Tokens marked legacy may have no expiry (Logz.io's tokens from before August 2024).
    #[serde(default, deserialize_with = "lenient_bool")]
    legacy: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateRequest {
    #[serde(default)]
    filters: Option<Vec<i64>>,
    #[serde(default)]
    filters_operator: Option<FiltersOperator>,
    #[serde(default, deserialize_with = "present")]
    expiration_date: Option<Option<i64>>,
}

async fn create(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
    Body(req): Body<CreateRequest>,
) -> Result<Json<SharedTokenModel>, ApiError> {
    let new = NewShared {
        name: &req.token_name,
        filters: &req.filters,
        filters_operator: req.filters_operator,
        expiration: req.expiration_date,
        legacy: req.legacy.unwrap_or(false),
    };
    Ok(Json(usecase::create(&cp, &caller, new).await?.into()))
}

async fn list(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
) -> Result<Json<Vec<SharedTokenModel>>, ApiError> {
    let tokens = usecase::list(&cp, &caller).await?;
    Ok(Json(tokens.into_iter().map(Into::into).collect()))
}

async fn read(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<SharedTokenModel>, ApiError> {
    Ok(Json(usecase::read(&cp, &caller, id).await?.into()))
}

async fn update(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
    Id(id): Id,
    Body(req): Body<UpdateRequest>,
) -> Result<Json<SharedTokenModel>, ApiError> {
    let change = SharedChange {
        filters: req.filters,
        filters_operator: req.filters_operator,
        expiration: req.expiration_date,
    };
    Ok(Json(
        usecase::update(&cp, &caller, id, change).await?.into(),
    ))
}

async fn delete_token(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
    Id(id): Id,
) -> Result<StatusCode, ApiError> {
    usecase::delete(&cp, &caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// === token filters ===

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FilterModel {
    id: i64,
    description: String,
    field: String,
    value: String,
}

impl From<Filter> for FilterModel {
    fn from(f: Filter) -> Self {
        FilterModel {
            id: f.id,
            description: f.description,
            field: f.field,
            value: f.value,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateFilter {
    #[serde(default)]
    description: String,
    field: String,
    value: String,
}

async fn create_filter(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
    Body(req): Body<CreateFilter>,
) -> Result<Json<FilterModel>, ApiError> {
    let filter =
        usecase::create_filter(&cp, &caller, &req.description, &req.field, &req.value).await?;
    Ok(Json(filter.into()))
}

async fn list_filters(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
) -> Result<Json<Vec<FilterModel>>, ApiError> {
    let filters = usecase::list_filters(&cp, &caller).await?;
    Ok(Json(filters.into_iter().map(Into::into).collect()))
}

async fn read_filter(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<FilterModel>, ApiError> {
    Ok(Json(usecase::read_filter(&cp, &caller, id).await?.into()))
}

async fn delete_filter(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
    Id(id): Id,
) -> Result<StatusCode, ApiError> {
    usecase::delete_filter(&cp, &caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
