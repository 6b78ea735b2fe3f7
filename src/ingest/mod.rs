//! The ingest routes: the service the public listener runs. It sheds load before any body
//! is read, dispatches on `(method, path)`, turns every error into its one HTTP answer
//! (`error.rs`), and counts each request by route and status.

pub mod body;
pub mod error;
pub mod logs;

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Method, Request, Response};
use hyper::body::Incoming;
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::forward::Forwarder;
use crate::model::Route;
use crate::telemetry::Telemetry;
use crate::tokens::Tokens;
pub use body::Limits;
pub use error::{Body, IngestError};

/// What the routes need: the token table, the forward handle, the limits. Nothing else.
pub struct Ingest {
    tokens: Arc<Tokens>,
    forward: Forwarder,
    limits: Limits,
    /// Caps requests in flight; a failed `try_acquire` is a 503 before the body is read.
    in_flight: Semaphore,
    retry_after: Duration,
    telemetry: Arc<Telemetry>,
}

impl Ingest {
    pub fn new(
        tokens: Arc<Tokens>,
        forward: Forwarder,
        limits: Limits,
        max_concurrent_requests: usize,
        retry_after: Duration,
        telemetry: Arc<Telemetry>,
    ) -> Ingest {
        Ingest {
            tokens,
            forward,
            limits,
            in_flight: Semaphore::new(max_concurrent_requests),
            retry_after,
            telemetry,
        }
    }

    /// Answers one request. Never fails: every error becomes its response here.
    pub async fn serve(&self, req: Request<Incoming>) -> Response<Body> {
        let started = Instant::now();
        let route = match req.uri().path() {
            "/" => Route::Logs,
            _ => Route::Unmatched,
        };
        let span = tracing::debug_span!(
            "request",
            route = route.as_str(),
            token_id = tracing::field::Empty
        );
        let result = match self.in_flight.try_acquire() {
            Ok(_permit) => self.dispatch(route, req).instrument(span.clone()).await,
            Err(_) => Err(IngestError::Shed {
                retry_after: self.retry_after,
            }),
        };
        let response = result.unwrap_or_else(|e| e.response(route));
        let elapsed = started.elapsed();
        let code = response.status().as_u16();
        self.telemetry.route(route).observe(code, elapsed);
        tracing::debug!(parent: &span, code, elapsed_us = elapsed.as_micros() as u64, "answered");
        response
    }

    async fn dispatch(
        &self,
        route: Route,
        req: Request<Incoming>,
    ) -> Result<Response<Body>, IngestError> {
        match (route, req.method()) {
            (Route::Logs, &Method::POST) => logs::handle(req, self).await,
            (Route::Logs, _) => Err(IngestError::MethodNotAllowed),
            (Route::Unmatched, _) => Err(IngestError::NotFound),
        }
    }
}
