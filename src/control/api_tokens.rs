//! API tokens (DESIGN §4): they authenticate the management API as an admin of their
//! account. Only pro, enterprise and trial accounts have them, and only log management
//! (main and sub) and security accounts — metrics and tracing accounts are managed with
//! their main account's. The secret is shown once, in the create answer; the store keeps
//! its digest.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::auth::{self, Caller};
use super::error::ApiError;
use super::json::Body;
use super::shipping_tokens::{checked_name, parse_id};
use super::store::{self, Account, Actor, Tx, now_secs};
use super::{ControlPlane, rules};

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

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedApiToken {
    id: i64,
    name: String,
    pub token: String,
    created_at: i64,
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

/// Inserts an API token; the answer is the only place its secret ever appears.
pub async fn insert(
    tx: &mut Tx,
    account_id: i64,
    name: &str,
    actor: Actor,
) -> Result<CreatedApiToken, ApiError> {
    let secret = auth::new_secret();
    let created_at = now_secs();
    let row = sqlx::query(
        "INSERT INTO api_tokens (account_id, name, digest, created_at, created_by) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(account_id)
    .bind(name)
    .bind(auth::digest_hex(&secret))
    .bind(created_at)
    .bind(actor.label())
    .fetch_one(&mut **tx)
    .await?;
    let id: i64 = row.try_get("id")?;
    store::audit(
        tx,
        account_id,
        actor,
        "api-token.create",
        &format!("api-token:{id}"),
    )
    .await?;
    Ok(CreatedApiToken {
        id,
        name: name.to_string(),
        token: secret,
        created_at,
    })
}

/// Checks the plan and type rules for `account`, then creates the token.
async fn create_in(
    cp: &ControlPlane,
    caller: &Caller,
    account_id: i64,
    name: &str,
) -> Result<Json<CreatedApiToken>, ApiError> {
    let name = checked_name(name)?;
    let mut tx = cp.store.begin().await?;
    let account: Account = store::lock_account(&mut tx, account_id).await?;
    rules::check_may_create_api_token(account.account_type, account.plan_now())?;
    let created = insert(&mut tx, account.id, name, caller.actor).await?;
    tx.commit().await?;
    Ok(Json(created))
}

async fn create(
    State(cp): State<Arc<ControlPlane>>,
    headers: HeaderMap,
    Body(req): Body<CreateRequest>,
) -> Result<Json<CreatedApiToken>, ApiError> {
    let caller = auth::caller(&cp, &headers).await?;
    create_in(&cp, &caller, caller.account.id, &req.name).await
}

/// A main account creates an API token for one of its sub-accounts, while it is accessible.
async fn create_for_sub_account(
    State(cp): State<Arc<ControlPlane>>,
    mut headers: HeaderMap,
    Body(req): Body<SubAccountRequest>,
) -> Result<Json<CreatedApiToken>, ApiError> {
    // Resolve as if the call named the sub-account: the same reach rules apply.
    headers.insert("x-account-id", req.account_id.into());
    let caller = auth::caller(&cp, &headers).await?;
    auth::require_main_account(&caller)?;
    if !caller.account.is_sub_account() {
        return Err(ApiError::invalid(format!(
            "account {} is not a sub-account",
            req.account_id
        )));
    }
    create_in(&cp, &caller, caller.account.id, &req.name).await
}

async fn list(
    State(cp): State<Arc<ControlPlane>>,
    headers: HeaderMap,
) -> Result<Json<Vec<ApiTokenModel>>, ApiError> {
    let caller = auth::caller(&cp, &headers).await?;
    let rows = sqlx::query(
        "SELECT id, name, created_at FROM api_tokens WHERE account_id = $1 ORDER BY id",
    )
    .bind(caller.account.id)
    .fetch_all(&cp.store.pool)
    .await?;
    let tokens = rows
        .iter()
        .map(|r| {
            Ok(ApiTokenModel {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect::<Result<_, ApiError>>()?;
    Ok(Json(tokens))
}

async fn remove(
    State(cp): State<Arc<ControlPlane>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let caller = auth::caller(&cp, &headers).await?;
    let id = parse_id(&id)?;
    let mut tx = cp.store.begin().await?;
    store::lock_account(&mut tx, caller.account.id).await?;
    let deleted = sqlx::query("DELETE FROM api_tokens WHERE id = $1 AND account_id = $2")
        .bind(id)
        .bind(caller.account.id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if deleted == 0 {
        return Err(ApiError::not_found(&format!("API token {id}")));
    }
    store::audit(
        &mut tx,
        caller.account.id,
        caller.actor,
        "api-token.delete",
        &format!("api-token:{id}"),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(serde_json::json!({})))
}
