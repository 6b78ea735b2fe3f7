//! The audit trail (DESIGN §4): every change is recorded in the same transaction as the
//! change (`store::audit`); this lists an account's events, newest first.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use sqlx::Row;

use super::ControlPlane;
use super::auth;
use super::error::ApiError;
use super::shipping_tokens::{Page, PageEcho, Pagination};

pub fn routes() -> Router<Arc<ControlPlane>> {
    Router::new().route("/v1/audit-events", get(list))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AuditEvent {
    id: i64,
    account_id: i64,
    /// "admin" or "api-token:<id>".
    actor: String,
    action: String,
    target: String,
    /// Epoch seconds.
    created_at: i64,
}

async fn list(
    State(cp): State<Arc<ControlPlane>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<Page<AuditEvent>>, ApiError> {
    let caller = auth::caller(&cp, &headers).await?;
    let mut pagination = Pagination::default();
    for (key, value) in form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes()) {
        let number = || {
            value
                .parse::<i64>()
                .map_err(|_| ApiError::invalid(format!("{key} must be an integer")))
        };
        match &*key {
            "pageNumber" => pagination.page_number = Some(number()?),
            "pageSize" => pagination.page_size = Some(number()?),
            _ => {}
        }
    }
    let (page_number, page_size) = pagination.resolve()?;
    let account_id = caller.account.id;
    let total: i64 = sqlx::query("SELECT COUNT(*) AS n FROM audit_events WHERE account_id = $1")
        .bind(account_id)
        .fetch_one(&cp.store.pool)
        .await?
        .try_get("n")?;
    let rows = sqlx::query(
        "SELECT id, account_id, actor, action, target, created_at FROM audit_events \
         WHERE account_id = $1 ORDER BY id DESC LIMIT $2 OFFSET $3",
    )
    .bind(account_id)
    .bind(page_size)
    .bind((page_number - 1).saturating_mul(page_size))
    .fetch_all(&cp.store.pool)
    .await?;
    let results = rows
        .iter()
        .map(|r| {
            Ok(AuditEvent {
                id: r.try_get("id")?,
                account_id: r.try_get("account_id")?,
                actor: r.try_get("actor")?,
                action: r.try_get("action")?,
                target: r.try_get("target")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect::<Result<_, ApiError>>()?;
    Ok(Json(Page {
        total,
        results,
        pagination: PageEcho {
            page_number,
            page_size,
        },
    }))
}
