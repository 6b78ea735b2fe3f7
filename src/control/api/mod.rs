//! The management API and the gateways' feed, in Logz.io's paths and shapes (DESIGN §4).
//! One file per resource: each handler takes the caller and the ids from `extract`, a
//! body from `json`, calls one use case and answers in the resource's shape. A refusal
//! becomes an HTTP answer in `error` and nowhere else. `openapi.json` documents it all.

mod accounts;
mod api_tokens;
mod audit;
pub mod error;
mod extract;
mod feed;
pub mod json;
mod log_drop_filters;
mod metrics_accounts;
mod metrics_drop_filters;
mod shared_tokens;
mod shipping_tokens;
mod sub_accounts;
mod users;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::control::plane::ControlPlane;
use crate::control::refusal::Refusal;
use error::{ApiError, ErrorCode};

/// Every API and feed route, with the health and metrics routes of the control plane's
/// listener.
pub fn routes(cp: Arc<ControlPlane>) -> Router {
    Router::new()
        .merge(accounts::routes())
        .merge(sub_accounts::routes())
        .merge(metrics_accounts::routes())
        .merge(shipping_tokens::routes())
        .merge(api_tokens::routes())
        .merge(shared_tokens::routes())
        .merge(log_drop_filters::routes())
        .merge(metrics_drop_filters::routes())
        .merge(audit::routes())
        .merge(users::routes())
        .merge(feed::routes())
        .route("/v1/openapi.json", get(openapi))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .with_state(cp)
}

/// What wraps every route of the listener, the page's included: unknown routes and
/// methods answered in the API's shape, the body limit, and the request metrics.
pub fn around(routes: Router, cp: Arc<ControlPlane>) -> Router {
    routes
        .fallback(|| async { Refusal::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async {
            ApiError::Framing {
                status: StatusCode::METHOD_NOT_ALLOWED,
                code: "request/METHOD_NOT_ALLOWED",
                message: "this route does not take that method".into(),
            }
        })
        .layer(DefaultBodyLimit::max(json::MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(cp, observe))
}

async fn metrics(State(cp): State<Arc<ControlPlane>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        cp.telemetry.render(),
    )
}

/// Counts every call by route template and status, and refusals by `errorCode`.
async fn observe(State(cp): State<Arc<ControlPlane>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(req).await;
    cp.telemetry
        .observe(&route, response.status().as_u16(), started.elapsed());
    if let Some(ErrorCode(code)) = response.extensions().get::<ErrorCode>() {
        cp.telemetry.refused(code);
    }
    response
}

/// The OpenAPI 3 document of the management API and the feed, kept in the repository.
const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}
