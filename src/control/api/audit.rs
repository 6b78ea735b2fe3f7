//! The audit trail's API (DESIGN §4): an account's events, newest first. Every change
//! records its event in its own transaction (`usecases`).

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::error::ApiError;
use super::json::{Page, Pagination};
use crate::control::plane::ControlPlane;
use crate::control::usecases::audit as usecase;
use crate::control::usecases::callers::Caller;

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
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<Page<AuditEvent>>, ApiError> {
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
    let page = pagination.resolve()?;
    let (total, events) = usecase::list(&cp, &caller, page.page_size, page.offset()).await?;
    let results = events
        .into_iter()
        .map(|e| AuditEvent {
            id: e.id,
            account_id: e.account_id,
            actor: e.actor,
            action: e.action,
            target: e.target,
            created_at: e.created_at,
        })
        .collect();
    Ok(Json(Page {
        total,
        results,
        pagination: page,
    }))
}
