//! Logz.io's metrics drop-filters API (`/v1/metrics-management/drop-filters`), in its
//! shapes: `{accountId, name, active, dropPolicy, filter: {operator, expression}}` in,
//! `{id, accountId, name, active, dropPolicy, filter, createdAt, createdBy, modifiedAt,
//! modifiedBy}` out (times as ISO 8601 UTC strings, as its fixtures have them). Deletes
//! answer 204, as Logz.io's client requires of them; search pages count from 0, as its
//! client's do. Rules and changes are in `usecases::metrics_drop_filters`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::Id;
use super::json::{Body, Page, PageEcho, lenient_bool};
use crate::control::plane::ControlPlane;
use crate::control::refusal::Refusal;
use crate::control::store::drop_filters::MetricsFilter;
use crate::control::usecases::callers::Caller;
use crate::control::usecases::metrics_drop_filters::{self as usecase, MetricsFilterInput, Search};
use crate::control::web::dates;
use crate::filters::metrics::{DropPolicy, Filter, FilterRequest};

const BASE: &str = "/v1/metrics-management/drop-filters";

pub fn routes() -> Router<Arc<ControlPlane>> {
    Router::new()
        .route(BASE, post(create))
        .route(&format!("{BASE}/bulk/create"), post(bulk_create))
        .route(&format!("{BASE}/bulk/delete"), post(bulk_delete))
        // `search` is not an id: the id routes' methods on it answer 404 like any non-id.
        .route(
            &format!("{BASE}/search"),
            post(search).get(read).put(update).delete(delete),
        )
        .route(
            &format!("{BASE}/{{id}}"),
            get(read).put(update).delete(delete),
        )
        .route(&format!("{BASE}/{{id}}/enable"), post(enable))
        .route(&format!("{BASE}/{{id}}/disable"), post(disable))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetricsFilterBody {
    #[serde(default)]
    account_id: Option<i64>,
    #[serde(default)]
    name: Option<String>,
    /// `enabled` is the older clients' name for it.
    #[serde(default, alias = "enabled", deserialize_with = "lenient_bool")]
    active: Option<bool>,
    #[serde(default)]
    drop_policy: Option<String>,
    #[serde(default)]
    filter: Option<FilterRequest>,
}

impl MetricsFilterBody {
    fn check(self) -> Result<MetricsFilterInput, Refusal> {
        let account_id = self
            .account_id
            .filter(|id| *id > 0)
            .ok_or_else(|| Refusal::Invalid {
                code: "drop-filters/ACCOUNT_REQUIRED",
                message: "accountId: must be set to a metrics account's id".into(),
            })?;
        let drop_policy = DropPolicy::check(self.drop_policy.as_deref())?;
        let filter = self.filter.ok_or_else(|| Refusal::Invalid {
            code: "drop-filters/FILTER_REQUIRED",
            message: "filter: must be set: {operator: AND, expression: [...]}".into(),
        })?;
        Ok(MetricsFilterInput {
            account_id,
            name: self.name,
            active: self.active,
            drop_policy,
            filter: filter.check()?,
        })
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MetricsFilterModel {
    id: i64,
    account_id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    active: bool,
    drop_policy: DropPolicy,
    filter: Filter,
    created_at: String,
    created_by: String,
    modified_at: String,
    modified_by: String,
}

impl From<MetricsFilter> for MetricsFilterModel {
    fn from(f: MetricsFilter) -> Self {
        MetricsFilterModel {
            id: f.id,
            account_id: f.account_id,
            name: f.name,
            active: f.active,
            drop_policy: f.drop_policy,
            filter: f.filter,
            created_at: dates::iso(f.created_at.saturating_mul(1000)),
            created_by: f.created_by,
            modified_at: dates::iso(f.modified_at.saturating_mul(1000)),
            modified_by: f.modified_by,
        }
    }
}

async fn create(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
    Body(req): Body<MetricsFilterBody>,
) -> Result<Json<MetricsFilterModel>, ApiError> {
    let input = req.check()?;
    Ok(Json(usecase::create(&cp, &caller, input).await?.into()))
}

/// Creates every filter or none; a refusal names the element (`[2] filter…`).
async fn bulk_create(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
    Body(req): Body<Vec<MetricsFilterBody>>,
) -> Result<Json<Vec<MetricsFilterModel>>, ApiError> {
    let mut inputs = Vec::with_capacity(req.len());
    for (i, body) in req.into_iter().enumerate() {
        inputs.push(body.check().map_err(|refusal| match refusal {
            Refusal::Invalid { code, message } => Refusal::Invalid {
                code,
                message: format!("[{i}] {message}"),
            },
            other => other,
        })?);
    }
    let created = usecase::bulk_create(&cp, &caller, inputs).await?;
    Ok(Json(created.into_iter().map(Into::into).collect()))
}

async fn read(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<MetricsFilterModel>, ApiError> {
    Ok(Json(usecase::read(&cp, &caller, id).await?.into()))
}

async fn update(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
    Id(id): Id,
    Body(req): Body<MetricsFilterBody>,
) -> Result<Json<MetricsFilterModel>, ApiError> {
    let input = req.check()?;
    Ok(Json(usecase::update(&cp, &caller, id, input).await?.into()))
}

async fn enable(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<MetricsFilterModel>, ApiError> {
    Ok(Json(
        usecase::set_active(&cp, &caller, id, true).await?.into(),
    ))
}

async fn disable(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<MetricsFilterModel>, ApiError> {
    Ok(Json(
        usecase::set_active(&cp, &caller, id, false).await?.into(),
    ))
}

/// 204, as Logz.io's client requires of this delete (unlike the log filters' 200).
async fn delete(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
    Id(id): Id,
) -> Result<StatusCode, ApiError> {
    usecase::delete(&cp, &caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An array of ids; one the caller does not reach fails the whole call (404), nothing
/// deleted.
async fn bulk_delete(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
    Body(ids): Body<Vec<i64>>,
) -> Result<StatusCode, ApiError> {
    usecase::bulk_delete(&cp, &caller, &ids).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct SearchBody {
    #[serde(default)]
    filter: Option<SearchFilter>,
    #[serde(default)]
    pagination: Option<SearchPagination>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct SearchFilter {
    #[serde(default)]
    account_ids: Option<Vec<i64>>,
    #[serde(default)]
    metric_names: Option<Vec<String>>,
    #[serde(default, alias = "enabled", deserialize_with = "lenient_bool")]
    active: Option<bool>,
    #[serde(default)]
    search_term: Option<String>,
}

/// Pages count from 0 here (Logz.io's client asks for page 0 first); 25 filters a page
/// unless asked, at most 1,000.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct SearchPagination {
    #[serde(default)]
    page_number: Option<i64>,
    #[serde(default)]
    page_size: Option<i64>,
}

impl SearchPagination {
    fn resolve(&self) -> Result<PageEcho, Refusal> {
        let page_number = self.page_number.unwrap_or(0);
        let page_size = self.page_size.unwrap_or(25);
        if page_number < 0 {
            return Err(Refusal::invalid("pagination.pageNumber must be >= 0"));
        }
        if !(1..=1000).contains(&page_size) {
            return Err(Refusal::invalid(
                "pagination.pageSize must be between 1 and 1000",
            ));
        }
        Ok(PageEcho {
            page_number,
            page_size,
        })
    }
}

async fn search(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
    Body(req): Body<Option<SearchBody>>,
) -> Result<Json<Page<MetricsFilterModel>>, ApiError> {
    let req = req.unwrap_or_default();
    let page = req.pagination.unwrap_or_default().resolve()?;
    let filter = req.filter.unwrap_or_default();
    let search = Search {
        account_ids: filter.account_ids.unwrap_or_default(),
        metric_names: filter.metric_names.unwrap_or_default(),
        active: filter.active,
        search_term: filter.search_term.filter(|t| !t.is_empty()),
    };
    let size = usize::try_from(page.page_size).unwrap_or(1000);
    let offset = usize::try_from(page.page_number)
        .unwrap_or(0)
        .saturating_mul(size);
    let (total, results) = usecase::search(&cp, &caller, &search, offset, size).await?;
    Ok(Json(Page {
        total: i64::try_from(total).unwrap_or(i64::MAX),
        results: results.into_iter().map(Into::into).collect(),
        pagination: page,
    }))
}
