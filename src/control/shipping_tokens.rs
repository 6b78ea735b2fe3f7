//! Shipping tokens (DESIGN §4), with Logz.io's paths and shapes under
//! `/v1/log-shipping/tokens` and tollgate's metrics and tracing twins. Every change moves
//! the feed version in the same transaction, so gateways see exactly the committed state.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::auth::{self, Caller};
use super::error::ApiError;
use super::json::{Body, lenient_bool};
use super::store::{self, Account, Actor, Tx, now_secs};
use super::{ControlPlane, rules};
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

const COLUMNS: &str =
    "id, name, token, enabled, created_at, created_by, updated_at, updated_by, last_used";

fn model(r: &AnyRow) -> Result<TokenModel, ApiError> {
    Ok(TokenModel {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        token: r.try_get("token")?,
        enabled: r.try_get::<i64, _>("enabled")? != 0,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
        updated_at: r.try_get("updated_at")?,
        updated_by: r.try_get("updated_by")?,
        last_used: r.try_get("last_used")?,
    })
}

fn noun(kind: Kind) -> &'static str {
    match kind {
        Kind::Logs => "log-shipping-token",
        Kind::Metrics => "metrics-shipping-token",
        Kind::Traces => "tracing-shipping-token",
    }
}

/// An account holds tokens of its type's kind only.
fn check_kind(caller: &Caller, kind: Kind) -> Result<(), ApiError> {
    let holds = caller.account.account_type.shipping_kind();
    if holds != kind {
        return Err(ApiError::rule(
            "tokens/ACCOUNT_TYPE",
            format!(
                "account {} is a {} account: it holds {} shipping tokens, not {}",
                caller.account.id,
                caller.account.account_type.as_str(),
                holds.as_str(),
                kind.as_str()
            ),
        ));
    }
    Ok(())
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
    headers: HeaderMap,
    Body(req): Body<CreateRequest>,
) -> Result<Json<TokenModel>, ApiError> {
    let caller = auth::caller(&cp, &headers).await?;
    check_kind(&caller, kind)?;
    let name = checked_name(&req.name)?;
    let mut tx = cp.store.begin().await?;
    let account = store::lock_account(&mut tx, caller.account.id).await?;
    let enabled = req.enabled.unwrap_or(true);
    if enabled {
        check_may_enable_another(&mut tx, &account).await?;
    }
    let NewToken { id, version, .. } =
        insert(&mut tx, account.id, kind, name, enabled, caller.actor).await?;
    store::audit(
        &mut tx,
        account.id,
        caller.actor,
        &format!("{}.create", noun(kind)),
        &format!("{}:{id}", noun(kind)),
    )
    .await?;
    let token = fetch(&mut tx, account.id, kind, id).await?;
    tx.commit().await?;
    cp.published(version);
    Ok(Json(token))
}

/// A token just inserted: its secret (shown to the account) and the feed version it carries.
pub struct NewToken {
    pub id: i64,
    pub token: String,
    pub version: i64,
}

/// Inserts a new token. Also how accounts get their first token.
pub async fn insert(
    tx: &mut Tx,
    account_id: i64,
    kind: Kind,
    name: &str,
    enabled: bool,
    actor: Actor,
) -> Result<NewToken, ApiError> {
    let version = store::next_feed_version(tx).await?;
    let secret = auth::new_secret();
    let now = now_secs();
    let row = sqlx::query(
        "INSERT INTO shipping_tokens (account_id, kind, name, token, digest, enabled, created_at, \
         created_by, updated_at, updated_by, feed_version) \
         VALUES ($1, $2, $3, $4, $5, $9, $6, $7, $6, $7, $8) RETURNING id",
    )
    .bind(account_id)
    .bind(kind.as_str())
    .bind(name)
    .bind(secret.as_str())
    .bind(auth::digest_hex(&secret))
    .bind(now)
    .bind(actor.label())
    .bind(version)
    .bind(i64::from(enabled))
    .fetch_one(&mut **tx)
    .await?;
    Ok(NewToken {
        id: row.try_get("id")?,
        token: secret,
        version,
    })
}

async fn read(
    State(cp): State<Arc<ControlPlane>>,
    Extension(kind): Extension<Kind>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<TokenModel>, ApiError> {
    let caller = auth::caller(&cp, &headers).await?;
    let id = parse_id(&id)?;
    let mut conn = cp.store.pool.acquire().await?;
    Ok(Json(fetch(&mut conn, caller.account.id, kind, id).await?))
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
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(req): Body<UpdateRequest>,
) -> Result<Json<TokenModel>, ApiError> {
    let caller = auth::caller(&cp, &headers).await?;
    let id = parse_id(&id)?;
    let name = req.name.as_deref().map(checked_name).transpose()?;
    let mut tx = cp.store.begin().await?;
    let account = store::lock_account(&mut tx, caller.account.id).await?;
    let current = fetch(&mut tx, account.id, kind, id).await?;
    let enabled = req.enabled.unwrap_or(current.enabled);
    if enabled != current.enabled {
        if enabled {
            check_may_enable_another(&mut tx, &account).await?;
        } else {
            rules::check_may_lose_enabled(enabled_count(&mut tx, account.id).await?)?;
        }
    }
    let version = store::next_feed_version(&mut tx).await?;
    sqlx::query(
        "UPDATE shipping_tokens SET name = $1, enabled = $2, updated_at = $3, updated_by = $4, \
         feed_version = $5 WHERE id = $6",
    )
    .bind(name.unwrap_or(&current.name))
    .bind(i64::from(enabled))
    .bind(now_secs())
    .bind(caller.actor.label())
    .bind(version)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    let action = match (enabled == current.enabled, enabled) {
        (true, _) => "update",
        (false, true) => "enable",
        (false, false) => "disable",
    };
    store::audit(
        &mut tx,
        account.id,
        caller.actor,
        &format!("{}.{action}", noun(kind)),
        &format!("{}:{id}", noun(kind)),
    )
    .await?;
    let token = fetch(&mut tx, account.id, kind, id).await?;
    tx.commit().await?;
    cp.published(version);
    Ok(Json(token))
}

async fn delete(
    State(cp): State<Arc<ControlPlane>>,
    Extension(kind): Extension<Kind>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let caller = auth::caller(&cp, &headers).await?;
    let id = parse_id(&id)?;
    let mut tx = cp.store.begin().await?;
    let account = store::lock_account(&mut tx, caller.account.id).await?;
    let current = fetch(&mut tx, account.id, kind, id).await?;
    if current.enabled {
        rules::check_may_lose_enabled(enabled_count(&mut tx, account.id).await?)?;
    }
    let version = remove(&mut tx, cp.feed_retained_versions, "id = $1", id).await?;
    store::audit(
        &mut tx,
        account.id,
        caller.actor,
        &format!("{}.delete", noun(kind)),
        &format!("{}:{id}", noun(kind)),
    )
    .await?;
    tx.commit().await?;
    cp.published(version);
    Ok(Json(serde_json::json!({})))
}

/// Deletes the shipping tokens `condition` (on `$1`) selects, leaving tombstones so
/// gateways drop them; returns the feed version of the change.
pub async fn remove(
    tx: &mut Tx,
    retained: i64,
    condition: &str,
    value: i64,
) -> Result<i64, ApiError> {
    let version = store::next_feed_version(tx).await?;
    sqlx::query(&format!(
        "INSERT INTO feed_tombstones (feed_version, digest) \
         SELECT $2, digest FROM shipping_tokens WHERE {condition}"
    ))
    .bind(value)
    .bind(version)
    .execute(&mut **tx)
    .await?;
    sqlx::query(&format!("DELETE FROM shipping_tokens WHERE {condition}"))
        .bind(value)
        .execute(&mut **tx)
        .await?;
    super::feed::prune_tombstones(tx, version, retained).await?;
    Ok(version)
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

/// Logz.io's pagination: `pageNumber` from 1, `pageSize` up to 1,000 (default 25).
#[derive(Deserialize, Serialize, Default, Clone, Copy)]
#[serde(rename_all = "camelCase")]
pub struct Pagination {
    #[serde(default)]
    pub page_number: Option<i64>,
    #[serde(default)]
    pub page_size: Option<i64>,
}

impl Pagination {
    /// The page asked for, or 400 naming the bound it breaks.
    pub fn resolve(self) -> Result<(i64, i64), ApiError> {
        let number = self.page_number.unwrap_or(1);
        let size = self.page_size.unwrap_or(25);
        if number < 1 {
            return Err(ApiError::invalid("pagination.pageNumber must be >= 1"));
        }
        if !(1..=1000).contains(&size) {
            return Err(ApiError::invalid(
                "pagination.pageSize must be between 1 and 1000",
            ));
        }
        Ok((number, size))
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub total: i64,
    pub results: Vec<T>,
    pub pagination: PageEcho,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PageEcho {
    pub page_number: i64,
    pub page_size: i64,
}

async fn search(
    State(cp): State<Arc<ControlPlane>>,
    Extension(kind): Extension<Kind>,
    headers: HeaderMap,
    Body(req): Body<Option<SearchRequest>>,
) -> Result<Json<Page<TokenModel>>, ApiError> {
    let caller = auth::caller(&cp, &headers).await?;
    let req = req.unwrap_or_default();
    let (page_number, page_size) = req.pagination.unwrap_or_default().resolve()?;
    let enabled = req.filter.and_then(|f| f.enabled);
    let order = match req.sort.as_deref().and_then(|s| s.first()) {
        None => "id".to_string(),
        Some(s) => {
            let column = match s.field {
                SortBy::CreatedAt => "created_at",
                SortBy::Name => "name",
            };
            let direction = if s.descending.unwrap_or(false) {
                "DESC"
            } else {
                "ASC"
            };
            format!("{column} {direction}, id {direction}")
        }
    };
    // `$3 < 0` stands for "any": one statement for both filters.
    let filter = "account_id = $1 AND kind = $2 AND ($3 < 0 OR enabled = $3)";
    let enabled = enabled.map_or(-1, i64::from);
    let total: i64 = sqlx::query(&format!(
        "SELECT COUNT(*) AS n FROM shipping_tokens WHERE {filter}"
    ))
    .bind(caller.account.id)
    .bind(kind.as_str())
    .bind(enabled)
    .fetch_one(&cp.store.pool)
    .await?
    .try_get("n")?;
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM shipping_tokens WHERE {filter} ORDER BY {order} LIMIT $4 OFFSET $5"
    ))
    .bind(caller.account.id)
    .bind(kind.as_str())
    .bind(enabled)
    .bind(page_size)
    .bind((page_number - 1).saturating_mul(page_size))
    .fetch_all(&cp.store.pool)
    .await?;
    Ok(Json(Page {
        total,
        results: rows.iter().map(model).collect::<Result<_, _>>()?,
        pagination: PageEcho {
            page_number,
            page_size,
        },
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
    headers: HeaderMap,
) -> Result<Json<Limits>, ApiError> {
    let caller = auth::caller(&cp, &headers).await?;
    check_kind(&caller, kind)?;
    let account = &caller.account;
    let mut conn = cp.store.pool.acquire().await?;
    Ok(Json(Limits {
        max_allowed_tokens: rules::max_enabled_tokens(account.plan_now()),
        num_of_enabled_tokens: enabled_count(&mut conn, account.id).await?,
    }))
}

/// The plan's limit on enabled tokens, checked before one more is enabled.
async fn check_may_enable_another(
    conn: &mut sqlx::AnyConnection,
    account: &Account,
) -> Result<(), ApiError> {
    let enabled_now = enabled_count(conn, account.id).await?;
    rules::check_may_enable_another(account.plan_now(), enabled_now)
}

async fn enabled_count(conn: &mut sqlx::AnyConnection, account_id: i64) -> Result<i64, ApiError> {
    Ok(sqlx::query(
        "SELECT COUNT(*) AS n FROM shipping_tokens WHERE account_id = $1 AND enabled = 1",
    )
    .bind(account_id)
    .fetch_one(conn)
    .await?
    .try_get("n")?)
}

/// One token of the account; another account's token is "not found", like an unknown id.
async fn fetch(
    conn: &mut sqlx::AnyConnection,
    account_id: i64,
    kind: Kind,
    id: i64,
) -> Result<TokenModel, ApiError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM shipping_tokens WHERE id = $1 AND account_id = $2 AND kind = $3"
    ))
    .bind(id)
    .bind(account_id)
    .bind(kind.as_str())
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| ApiError::not_found(&format!("{} shipping token {id}", kind.as_str())))?;
    model(&row)
}

/// Ids in paths: anything that is not one is simply not found.
pub fn parse_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .map_err(|_| ApiError::NotFound(format!("no object has the id {raw:?}")))
}

/// Names are 1-256 characters without control characters.
pub fn checked_name(name: &str) -> Result<&str, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 256 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "name must be 1-256 characters without control characters",
        ));
    }
    Ok(name)
}
