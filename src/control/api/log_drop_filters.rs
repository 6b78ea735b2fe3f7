//! Logz.io's log drop-filters API (`/v1/drop-filters`), in its shapes: create `{logType,
//! description, fieldConditions: [{fieldName, value}], thresholdInGB}`, and every answer
//! the filter `{id (a string), active, logType, description, fieldConditions,
//! thresholdInGB}`. Search takes no body and answers an array (`[]` when there is none);
//! activate, deactivate and delete answer 200 with the filter, as Logz.io's clients
//! expect (they take a 204 for a failure). Rules and changes are in
//! `usecases::log_drop_filters`.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::Serialize;

use super::error::ApiError;
use super::extract::Id;
use super::json::Body;
use crate::control::plane::ControlPlane;
use crate::control::refusal::Refusal;
use crate::control::store::drop_filters::LogFilter;
use crate::control::usecases::callers::Caller;
use crate::control::usecases::log_drop_filters as usecase;
use crate::filters::logs::{FieldCondition, LogFilterRequest};

pub fn routes() -> Router<Arc<ControlPlane>> {
    Router::new()
        .route("/v1/drop-filters", post(create))
        // `search` is not an id: a DELETE of it answers 404 like any other non-id.
        .route("/v1/drop-filters/search", post(search).delete(delete))
        .route("/v1/drop-filters/{id}", axum::routing::delete(delete))
        .route("/v1/drop-filters/{id}/activate", post(activate))
        .route("/v1/drop-filters/{id}/deactivate", post(deactivate))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LogFilterModel {
    /// A string, as Logz.io's ids are (its clients type it so).
    id: String,
    active: bool,
    log_type: Option<String>,
    description: Option<String>,
    field_conditions: Vec<FieldCondition>,
    #[serde(rename = "thresholdInGB")]
    threshold_in_gb: f64,
}

impl From<LogFilter> for LogFilterModel {
    fn from(f: LogFilter) -> Self {
        LogFilterModel {
            id: f.id.to_string(),
            active: f.active,
            log_type: f.rule.log_type,
            description: f.rule.description,
            field_conditions: f.rule.field_conditions,
            threshold_in_gb: f.rule.threshold_gb,
        }
    }
}

async fn create(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
    Body(req): Body<LogFilterRequest>,
) -> Result<Json<LogFilterModel>, ApiError> {
    let rule = req.check().map_err(Refusal::from)?;
    Ok(Json(usecase::create(&cp, &caller, rule).await?.into()))
}

/// The account's filters, active or not. Any body is ignored (Logz.io's takes none).
async fn search(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
) -> Result<Json<Vec<LogFilterModel>>, ApiError> {
    let filters = usecase::list(&cp, &caller).await?;
    Ok(Json(filters.into_iter().map(Into::into).collect()))
}

async fn activate(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<LogFilterModel>, ApiError> {
    Ok(Json(
        usecase::set_active(&cp, &caller, id, true).await?.into(),
    ))
}

async fn deactivate(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<LogFilterModel>, ApiError> {
    Ok(Json(
        usecase::set_active(&cp, &caller, id, false).await?.into(),
    ))
}

/// 200 with the filter as it was (Logz.io's answer; its client takes a 204 for a failure).
async fn delete(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<LogFilterModel>, ApiError> {
    Ok(Json(usecase::delete(&cp, &caller, id).await?.into()))
}
