//! Shared tokens and token filters (DESIGN §4, "Manage Shared Tokens"): read-only access
//! to an account's logs, limited by account-level `field: value` filters combined by the
//! token's `filtersOperator`, with an expiry (7 days by default; legacy tokens may have
//! none). Filters are resolved at each use (`resolve`), so changing, detaching or deleting
//! one takes effect on the next request. Times are epoch milliseconds, as Logz.io's.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Deserializer, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::ControlPlane;
use super::auth;
use super::error::ApiError;
use super::feed;
use super::json::{Body, lenient_bool};
use super::rules;
use super::shipping_tokens::{checked_name, parse_id};
use super::store::{self, Tx, now_ms, now_secs};

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

/// Default lifetime of a new shared token.
const DEFAULT_LIFETIME_MS: i64 = 7 * 24 * 3600 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum FiltersOperator {
    #[default]
    #[serde(rename = "AND", alias = "and")]
    And,
    #[serde(rename = "OR", alias = "or")]
    Or,
}

impl FiltersOperator {
    fn as_str(self) -> &'static str {
        match self {
            FiltersOperator::And => "AND",
            FiltersOperator::Or => "OR",
        }
    }

    /// Reads the stored column, which only `as_str` ever writes.
    fn from_row(r: &AnyRow) -> Result<FiltersOperator, ApiError> {
        let stored: String = r.try_get("filters_operator")?;
        Ok(if stored == "OR" {
            FiltersOperator::Or
        } else {
            FiltersOperator::And
        })
    }
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
}

/// Distinguishes an absent field from an explicit `null` (a legacy token's "no expiry").
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    Ok(Some(Option::deserialize(d)?))
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

/// An expiry must be in the future; `None` only for a legacy token.
fn check_expiry(expiry: Option<i64>, legacy: bool) -> Result<(), ApiError> {
    match expiry {
        None if legacy => Ok(()),
        None => Err(ApiError::Invalid {
            code: "shared-tokens/EXPIRY_REQUIRED",
            message: "expirationDate is required; only legacy tokens may have none".into(),
        }),
        Some(ms) if ms <= now_ms() => Err(ApiError::Invalid {
            code: "shared-tokens/EXPIRY_IN_PAST",
            message: "expirationDate must be in the future (epoch milliseconds)".into(),
        }),
        Some(_) => Ok(()),
    }
}

async fn create(
    State(cp): State<Arc<ControlPlane>>,
    headers: HeaderMap,
    Body(req): Body<CreateRequest>,
) -> Result<Json<SharedTokenModel>, ApiError> {
    let caller = auth::caller(&cp, &headers).await?;
    let name = checked_name(&req.token_name)?;
    let legacy = req.legacy.unwrap_or(false);
    let expiry = match req.expiration_date {
        None => Some(now_ms() + DEFAULT_LIFETIME_MS),
        Some(given) => given,
    };
    check_expiry(expiry, legacy)?;
    let operator = req.filters_operator.unwrap_or_default();
    let mut tx = cp.store.begin().await?;
    let account = store::lock_account(&mut tx, caller.account.id).await?;
    let secret = auth::new_secret();
    let id: i64 = sqlx::query(
        "INSERT INTO shared_tokens (account_id, name, token, digest, filters_operator, \
         expires_at_ms, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(account.id)
    .bind(name)
    .bind(secret.as_str())
    .bind(auth::digest_hex(&secret))
    .bind(operator.as_str())
    .bind(expiry)
    .bind(now_secs())
    .fetch_one(&mut *tx)
    .await?
    .try_get("id")?;
    attach(&mut tx, account.id, id, &req.filters).await?;
    store::audit(
        &mut tx,
        account.id,
        caller.actor,
        "shared-token.create",
        &format!("shared-token:{id}"),
    )
    .await?;
    let model = fetch(&mut tx, account.id, id).await?;
    tx.commit().await?;
    Ok(Json(model))
}

/// Replaces the token's filters; each must be one of the account's filters.
async fn attach(
    tx: &mut Tx,
    account_id: i64,
    token_id: i64,
    filters: &[i64],
) -> Result<(), ApiError> {
    sqlx::query("DELETE FROM shared_token_filters WHERE shared_token_id = $1")
        .bind(token_id)
        .execute(&mut **tx)
        .await?;
    let mut seen = Vec::with_capacity(filters.len());
    for &filter in filters {
        if seen.contains(&filter) {
            continue;
        }
        seen.push(filter);
        let exists = sqlx::query("SELECT id FROM token_filters WHERE id = $1 AND account_id = $2")
            .bind(filter)
            .bind(account_id)
            .fetch_optional(&mut **tx)
            .await?
            .is_some();
        if !exists {
            return Err(ApiError::Invalid {
                code: "shared-tokens/UNKNOWN_FILTER",
                message: format!("filters: {filter} is not one of this account's token filters"),
            });
        }
        sqlx::query(
            "INSERT INTO shared_token_filters (shared_token_id, filter_id) VALUES ($1, $2)",
        )
        .bind(token_id)
        .bind(filter)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

async fn fetch(
    conn: &mut sqlx::AnyConnection,
    account_id: i64,
    id: i64,
) -> Result<SharedTokenModel, ApiError> {
    let row = sqlx::query(
        "SELECT id, name, token, filters_operator, expires_at_ms, last_used_ms FROM shared_tokens \
         WHERE id = $1 AND account_id = $2",
    )
    .bind(id)
    .bind(account_id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| ApiError::not_found(&format!("shared token {id}")))?;
    model(conn, &row).await
}

async fn model(conn: &mut sqlx::AnyConnection, r: &AnyRow) -> Result<SharedTokenModel, ApiError> {
    let id: i64 = r.try_get("id")?;
    let filters = sqlx::query(
        "SELECT filter_id FROM shared_token_filters WHERE shared_token_id = $1 ORDER BY filter_id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|f| f.try_get("filter_id"))
    .collect::<Result<_, _>>()?;
    Ok(SharedTokenModel {
        id,
        name: r.try_get("name")?,
        token: r.try_get("token")?,
        filters,
        filters_operator: FiltersOperator::from_row(r)?,
        last_used: r.try_get("last_used_ms")?,
        expiration_date: r.try_get("expires_at_ms")?,
    })
}

async fn list(
    State(cp): State<Arc<ControlPlane>>,
    headers: HeaderMap,
) -> Result<Json<Vec<SharedTokenModel>>, ApiError> {
    let caller = auth::caller(&cp, &headers).await?;
    let mut conn = cp.store.pool.acquire().await?;
    let rows = sqlx::query(
        "SELECT id, name, token, filters_operator, expires_at_ms, last_used_ms FROM shared_tokens \
         WHERE account_id = $1 ORDER BY id",
    )
    .bind(caller.account.id)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        out.push(model(&mut conn, r).await?);
    }
    Ok(Json(out))
}

async fn read(
    State(cp): State<Arc<ControlPlane>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<SharedTokenModel>, ApiError> {
    let caller = auth::caller(&cp, &headers).await?;
    let id = parse_id(&id)?;
    let mut conn = cp.store.pool.acquire().await?;
    Ok(Json(fetch(&mut conn, caller.account.id, id).await?))
}

async fn update(
    State(cp): State<Arc<ControlPlane>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(req): Body<UpdateRequest>,
) -> Result<Json<SharedTokenModel>, ApiError> {
    let caller = auth::caller(&cp, &headers).await?;
    let id = parse_id(&id)?;
    let mut tx = cp.store.begin().await?;
    let account = store::lock_account(&mut tx, caller.account.id).await?;
    let current = fetch(&mut tx, account.id, id).await?;
    let expiry = match req.expiration_date {
        None => current.expiration_date,
        Some(given) => {
            // A legacy token (no expiry) may keep having none; others need a future one.
            check_expiry(given, current.expiration_date.is_none())?;
            given
        }
    };
    let operator = req.filters_operator.unwrap_or(current.filters_operator);
    sqlx::query("UPDATE shared_tokens SET filters_operator = $1, expires_at_ms = $2 WHERE id = $3")
        .bind(operator.as_str())
        .bind(expiry)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if let Some(filters) = &req.filters {
        attach(&mut tx, account.id, id, filters).await?;
    }
    store::audit(
        &mut tx,
        account.id,
        caller.actor,
        "shared-token.update",
        &format!("shared-token:{id}"),
    )
    .await?;
    let model = fetch(&mut tx, account.id, id).await?;
    tx.commit().await?;
    Ok(Json(model))
}

async fn delete_token(
    State(cp): State<Arc<ControlPlane>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let caller = auth::caller(&cp, &headers).await?;
    let id = parse_id(&id)?;
    let mut tx = cp.store.begin().await?;
    let account = store::lock_account(&mut tx, caller.account.id).await?;
    fetch(&mut tx, account.id, id).await?;
    sqlx::query("DELETE FROM shared_token_filters WHERE shared_token_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM shared_tokens WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    store::audit(
        &mut tx,
        account.id,
        caller.actor,
        "shared-token.delete",
        &format!("shared-token:{id}"),
    )
    .await?;
    tx.commit().await?;
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateFilter {
    #[serde(default)]
    description: String,
    field: String,
    value: String,
}

fn filter_model(r: &AnyRow) -> Result<FilterModel, ApiError> {
    Ok(FilterModel {
        id: r.try_get("id")?,
        description: r.try_get("description")?,
        field: r.try_get("field")?,
        value: r.try_get("value")?,
    })
}

async fn create_filter(
    State(cp): State<Arc<ControlPlane>>,
    headers: HeaderMap,
    Body(req): Body<CreateFilter>,
) -> Result<Json<FilterModel>, ApiError> {
    let caller = auth::caller(&cp, &headers).await?;
    rules::check_filter_term("field", &req.field)?;
    rules::check_filter_term("value", &req.value)?;
    if req.description.chars().count() > 256 || req.description.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "description must be at most 256 characters without control characters",
        ));
    }
    let mut tx = cp.store.begin().await?;
    let account = store::lock_account(&mut tx, caller.account.id).await?;
    let row = sqlx::query(
        "INSERT INTO token_filters (account_id, description, field, value) VALUES ($1, $2, $3, $4) \
         RETURNING id, description, field, value",
    )
    .bind(account.id)
    .bind(req.description.as_str())
    .bind(req.field.as_str())
    .bind(req.value.as_str())
    .fetch_one(&mut *tx)
    .await?;
    let filter = filter_model(&row)?;
    store::audit(
        &mut tx,
        account.id,
        caller.actor,
        "token-filter.create",
        &format!("token-filter:{}", filter.id),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(filter))
}

async fn list_filters(
    State(cp): State<Arc<ControlPlane>>,
    headers: HeaderMap,
) -> Result<Json<Vec<FilterModel>>, ApiError> {
    let caller = auth::caller(&cp, &headers).await?;
    let rows = sqlx::query(
        "SELECT id, description, field, value FROM token_filters WHERE account_id = $1 ORDER BY id",
    )
    .bind(caller.account.id)
    .fetch_all(&cp.store.pool)
    .await?;
    Ok(Json(
        rows.iter().map(filter_model).collect::<Result<_, _>>()?,
    ))
}

async fn read_filter(
    State(cp): State<Arc<ControlPlane>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<FilterModel>, ApiError> {
    let caller = auth::caller(&cp, &headers).await?;
    let id = parse_id(&id)?;
    let row = sqlx::query(
        "SELECT id, description, field, value FROM token_filters WHERE id = $1 AND account_id = $2",
    )
    .bind(id)
    .bind(caller.account.id)
    .fetch_optional(&cp.store.pool)
    .await?
    .ok_or_else(|| ApiError::not_found(&format!("token filter {id}")))?;
    Ok(Json(filter_model(&row)?))
}

/// Deleting a filter detaches it from every shared token that used it.
async fn delete_filter(
    State(cp): State<Arc<ControlPlane>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let caller = auth::caller(&cp, &headers).await?;
    let id = parse_id(&id)?;
    let mut tx = cp.store.begin().await?;
    let account = store::lock_account(&mut tx, caller.account.id).await?;
    sqlx::query(
        "DELETE FROM shared_token_filters WHERE filter_id = $1 AND filter_id IN \
                 (SELECT id FROM token_filters WHERE account_id = $2)",
    )
    .bind(id)
    .bind(account.id)
    .execute(&mut *tx)
    .await?;
    let deleted = sqlx::query("DELETE FROM token_filters WHERE id = $1 AND account_id = $2")
        .bind(id)
        .bind(account.id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if deleted == 0 {
        return Err(ApiError::not_found(&format!("token filter {id}")));
    }
    store::audit(
        &mut tx,
        account.id,
        caller.actor,
        "token-filter.delete",
        &format!("token-filter:{id}"),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

// === resolution, for the read path ===

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    token: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Access {
    account_id: i64,
    filters_operator: FiltersOperator,
    filters: Vec<FieldValue>,
    expiration_date: Option<i64>,
}

#[derive(Serialize)]
pub struct FieldValue {
    field: String,
    value: String,
}

/// `POST /v1/feed/shared-tokens/resolve` (feed secret): what a shared token may read right
/// now — its account and current filters — or 403 once it has expired. Marks it used.
pub async fn resolve(
    State(cp): State<Arc<ControlPlane>>,
    headers: HeaderMap,
    Body(req): Body<ResolveRequest>,
) -> Result<Json<Access>, ApiError> {
    feed::authorize(&cp, &headers)?;
    let row = sqlx::query(
        "SELECT id, account_id, filters_operator, expires_at_ms FROM shared_tokens WHERE digest = $1",
    )
    .bind(auth::digest_hex(&req.token))
    .fetch_optional(&cp.store.pool)
    .await?
    .ok_or_else(|| ApiError::NotFound("no shared token matches".into()))?;
    let id: i64 = row.try_get("id")?;
    let expiry: Option<i64> = row.try_get("expires_at_ms")?;
    let now = now_ms();
    if expiry.is_some_and(|e| e <= now) {
        return Err(ApiError::forbidden(
            "shared-tokens/EXPIRED",
            "this shared token has expired",
        ));
    }
    let filters = sqlx::query(
        "SELECT f.field, f.value FROM token_filters f JOIN shared_token_filters s \
         ON s.filter_id = f.id WHERE s.shared_token_id = $1 ORDER BY f.id",
    )
    .bind(id)
    .fetch_all(&cp.store.pool)
    .await?
    .iter()
    .map(|r| {
        Ok(FieldValue {
            field: r.try_get("field")?,
            value: r.try_get("value")?,
        })
    })
    .collect::<Result<_, ApiError>>()?;
    sqlx::query("UPDATE shared_tokens SET last_used_ms = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&cp.store.pool)
        .await?;
    Ok(Json(Access {
        account_id: row.try_get("account_id")?,
        filters_operator: FiltersOperator::from_row(&row)?,
        filters,
        expiration_date: expiry,
    }))
}
