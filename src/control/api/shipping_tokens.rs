//! The shipping-token API (DESIGN §4), with Logz.io's paths and shapes under
//! `/v1/log-shipping/tokens` and tollgate's metrics and tracing twins. Handlers parse,
//! call `usecases::shipping_tokens`, and answer in Logz.io's shapes.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::Id;
use super::json::{Body, Page, Pagination, lenient_bool};
use crate::control::plane::ControlPlane;
use crate::control::store::shipping_tokens::{Order, ShippingToken};
use crate::control::usecases::callers::Caller;
use crate::control::usecases::shipping_tokens as usecase;
use crate::model::Kind;

pub fn routes() -> Router<Arc<ControlPlane>> {
    let mut router = Router::new();
    for (prefix, kind) in [
        ("/v1/log-shipping", Kind::Logs),
        ("/v1/metrics-shipping", Kind::Metrics),
        ("/v1/tracing-shipping", Kind::Traces),
    ] {
        let routes = Router::new()
            .route("/tokens", post(create))
            .route("/tokens/search", post(search))
            .route("/tokens/limits", get(limits))
            .route("/tokens/{id}", get(read).put(update).delete(delete))
            .layer(Extension(kind));
        router = router.nest(prefix, routes);
    }
    router
}

/// Logz.io's shipping-token model; times in epoch seconds.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenModel {
    pub id: i64,
    pub name: String,
    pub token: String,
    pub enabled: bool,
    pub created_at: i64,
    pub created_by: String,
    pub updated_at: i64,
    pub updated_by: String,
    /// When a gateway last accepted data with it (reported on `/v1/feed/usage`).
    pub last_used: Option<i64>,
}

impl From<ShippingToken> for TokenModel {
    fn from(t: ShippingToken) -> Self {
        TokenModel {
            id: t.id,
            name: t.name,
            token: t.token,
            enabled: t.enabled,
            created_at: t.created_at,
            created_by: t.created_by,
            updated_at: t.updated_at,
            updated_by: t.updated_by,
            last_used: t.last_used,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateRequest {
    name: String,
    /// Logz.io's client sends it (as a string); a new token is enabled unless it says no.
    #[serde(default, deserialize_with = "lenient_bool")]
    enabled: Option<bool>,
}

async fn create(
    State(cp): State<Arc<ControlPlane>>,
    Extension(kind): Extension<Kind>,
    caller: Caller,
    Body(req): Body<CreateRequest>,
) -> Result<Json<TokenModel>, ApiError> {
    let token = usecase::create(&cp, &caller, kind, &req.name, req.enabled).await?;
    Ok(Json(token.into()))
}

async fn read(
    State(cp): State<Arc<ControlPlane>>,
    Extension(kind): Extension<Kind>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<TokenModel>, ApiError> {
    Ok(Json(usecase::read(&cp, &caller, kind, id).await?.into()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateRequest {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, deserialize_with = "lenient_bool")]
    enabled: Option<bool>,
}

async fn update(
    State(cp): State<Arc<ControlPlane>>,
    Extension(kind): Extension<Kind>,
    caller: Caller,
    Id(id): Id,
    Body(req): Body<UpdateRequest>,
) -> Result<Json<TokenModel>, ApiError> {
    let token = usecase::update(&cp, &caller, kind, id, req.name.as_deref(), req.enabled).await?;
    Ok(Json(token.into()))
}

async fn delete(
    State(cp): State<Arc<ControlPlane>>,
    Extension(kind): Extension<Kind>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<serde_json::Value>, ApiError> {
    usecase::delete(&cp, &caller, kind, id).await?;
    Ok(Json(serde_json::json!({})))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct SearchRequest {
    #[serde(default)]
    filter: Option<SearchFilter>,
    #[serde(default)]
    sort: Option<Vec<SortField>>,
    #[serde(default)]
    pagination: Option<Pagination>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct SearchFilter {
    #[serde(default, deserialize_with = "lenient_bool")]
    enabled: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SortField {
    field: SortBy,
    #[serde(default, deserialize_with = "lenient_bool")]
    descending: Option<bool>,
}

#[derive(Deserialize, Clone, Copy)]
enum SortBy {
    #[serde(rename = "createdAt", alias = "CREATED_AT", alias = "created_at")]
    CreatedAt,
    #[serde(rename = "name", alias = "NAME")]
    Name,
}

async fn search(
    State(cp): State<Arc<ControlPlane>>,
    Extension(kind): Extension<Kind>,
    caller: Caller,
    Body(req): Body<Option<SearchRequest>>,
) -> Result<Json<Page<TokenModel>>, ApiError> {
    let req = req.unwrap_or_default();
    let page = req.pagination.unwrap_or_default().resolve()?;
    let enabled = req.filter.and_then(|f| f.enabled);
    let order = match req.sort.as_deref().and_then(|s| s.first()) {
        None => Order::Id,
        Some(s) => {
            let descending = s.descending.unwrap_or(false);
            match s.field {
                SortBy::CreatedAt => Order::CreatedAt { descending },
                SortBy::Name => Order::Name { descending },
            }
        }
    };
    let (total, tokens) = usecase::search(
        &cp,
        &caller,
        kind,
        enabled,
        order,
        page.page_size,
        page.offset(),
    )
    .await?;
    Ok(Json(Page {
        total,
        results: tokens.into_iter().map(TokenModel::from).collect(),
        pagination: page,
    }))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Limits {
    max_allowed_tokens: i64,
    num_of_enabled_tokens: i64,
}

async fn limits(
    State(cp): State<Arc<ControlPlane>>,
    Extension(kind): Extension<Kind>,
    caller: Caller,
) -> Result<Json<Limits>, ApiError> {
    let limits = usecase::limits(&cp, &caller, kind).await?;
    Ok(Json(Limits {
        max_allowed_tokens: limits.max_allowed,
        num_of_enabled_tokens: limits.enabled,
    }))
}
