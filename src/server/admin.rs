//! The admin listener: `/metrics` (Prometheus text), `/healthz` (the process answers),
//! `/readyz` (a token table is loaded, the spool is writable, and the gateway is not
//! draining). Separate from the public listener so scrapes and probes never queue behind
//! ingest traffic.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;

use crate::telemetry::Telemetry;

/// Answers whether the gateway should receive traffic now.
pub type Readiness = Arc<dyn Fn() -> bool + Send + Sync>;

pub fn handle<B>(
    req: &Request<B>,
    telemetry: &Telemetry,
    ready: &Readiness,
) -> Response<Full<Bytes>> {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => Response::builder()
            .header(header::CONTENT_TYPE, "text/plain; version=0.0.4")
            .body(Full::new(Bytes::from(telemetry.render()))),
        (&Method::GET, "/healthz") => json(StatusCode::OK, r#"{"status":"ok"}"#),
        (&Method::GET, "/readyz") if ready() => json(StatusCode::OK, r#"{"status":"ready"}"#),
        (&Method::GET, "/readyz") => {
            json(StatusCode::SERVICE_UNAVAILABLE, r#"{"status":"not ready"}"#)
        }
        (_, "/metrics" | "/healthz" | "/readyz") => json(
            StatusCode::METHOD_NOT_ALLOWED,
            r#"{"error":"method not allowed: use GET"}"#,
        ),
        _ => json(StatusCode::NOT_FOUND, r#"{"error":"no such route"}"#),
    }
    .expect("static responses are valid")
}

fn json(status: StatusCode, body: &'static str) -> http::Result<Response<Full<Bytes>>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
}
