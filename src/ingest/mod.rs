//! The ingest routes: the service the public listener runs. It sheds load before any body
//! is read (requests in flight, and a declared body's bytes against the body budget), dispatches on `(method, path)`, turns every error into its one HTTP answer
//! (`error.rs`), and counts each request by route and status. Once read, what a body and
//! its decoded form hold is taken from the decode budget (`budget.rs`).
//!
//! | route | file |
//! |---|---|
//! | `POST /?token=T&type=X` (Logz.io bulk) | `logs/` |
//! | `POST /v1/logs`, `/v1/metrics`, `/v1/traces` (OTLP/HTTP) | `otlp.rs` |
//! | `POST /api/v1/write` (Prometheus remote_write 1.0) | `remote_write.rs` |

pub mod body;
pub mod budget;
pub mod error;
pub mod json_line;
pub mod logs;
pub mod otlp;
pub mod remote_write;
pub mod request;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use http::{Method, Request, Response};
use tracing::Instrument;

use crate::filters::held::HeldFilters;
use crate::forward::Forwarder;
use crate::model::{Kind, Route};
use crate::server::body::RequestBody;
use crate::telemetry::IngestMetrics;
use crate::tokens::{TokenInfo, Tokens};
use crate::volume::gate::{Admission, Gate, Refused};
pub use body::Limits;
pub use error::{Body, Dialect, IngestError};

/// What an account may send, as the routes ask it (DESIGN §9): its drop filters, then its
/// rate limit and daily volume.
pub struct AccountRules {
    pub filters: Arc<HeldFilters>,
    /// Rate limits, daily volume and `LogSize` per account.
    pub gate: Arc<Gate>,
    /// Answer a rate limit with 429 on the OTLP routes instead of 503.
    pub otlp_429: bool,
}

/// What the routes need: the token table, the forward handle, the limits, the accounts'
/// rules.
pub struct Ingest {
    tokens: Arc<Tokens>,
    forward: Forwarder,
    limits: Limits,
    /// Requests in flight, at most `max_in_flight`; past it a 503 before the body is read.
    /// An atomic, not a semaphore: it is only tried, and a semaphore's release locks.
    in_flight: AtomicUsize,
    max_in_flight: usize,
    metrics: IngestMetrics,
    rules: AccountRules,
}

impl Ingest {
    pub fn new(
        tokens: Arc<Tokens>,
        forward: Forwarder,
        limits: Limits,
        max_concurrent_requests: usize,
        metrics: IngestMetrics,
        rules: AccountRules,
    ) -> Ingest {
        Ingest {
            tokens,
            forward,
            limits,
            in_flight: AtomicUsize::new(0),
            max_in_flight: max_concurrent_requests,
            metrics,
            rules,
        }
    }

    /// Asks the gate whether `info`'s account may send `bytes` (`records` records) of
    /// `kind` now, and what becomes of them.
    fn admit(
        &self,
        info: &TokenInfo,
        kind: Kind,
        bytes: u64,
        records: u64,
    ) -> Result<Admission, IngestError> {
        self.rules
            .gate
            .admit(info.account_id, kind, bytes, records)
            .map_err(|refused| match refused {
                Refused::RateLimited { retry_after } => IngestError::RateLimited {
                    retry_after,
                    otlp_429: self.rules.otlp_429,
                },
                Refused::Capped { retry_after } => IngestError::Capped { retry_after },
            })
    }

    /// Answers one request. Never fails: every error becomes its response here. Not an
    /// `async fn`, which would keep the request twice in its future (as its argument and
    /// as the local it is moved to), and the future owns the `Arc`: the listener boxes it
    /// as it is, and the smaller it is the less is copied (~3 KB a request before).
    #[allow(clippy::manual_async_fn)] // on purpose: see above
    pub fn serve(
        self: Arc<Self>,
        mut req: Request<RequestBody>,
    ) -> impl Future<Output = Response<Body>> + Send + 'static {
        async move {
            let started = Instant::now();
            let route = match req.uri().path() {
                "/" => Route::Logs,
                "/v1/logs" => Route::OtlpLogs,
                "/v1/metrics" => Route::OtlpMetrics,
                "/v1/traces" => Route::OtlpTraces,
                "/api/v1/write" => Route::RemoteWrite,
                _ => Route::Unmatched,
            };
            let dialect = Dialect::of(route, req.headers());
            // Made only when a subscriber may take debug spans (one load of the global
            // level): making a span that is off still asks the subscriber, every request.
            let span = if tracing::level_enabled!(tracing::Level::DEBUG) {
                tracing::debug_span!(
                    "request",
                    route = route.as_str(),
                    token_id = tracing::field::Empty
                )
            } else {
                tracing::Span::none()
            };
            let retry_after = self.limits.retry_after;
            // The declared `Content-Length`, as hyper read it. A body over `max_body_bytes`
            // is left to its 413; it is never read.
            let declared = http_body::Body::size_hint(req.body())
                .exact()
                .filter(|&n| n <= self.limits.max_body_bytes)
                .unwrap_or(0);
            let logs = route == Route::Logs && req.method() == Method::POST;
            let result = match InFlight::enter(&self.in_flight, self.max_in_flight) {
                None => Err(IngestError::Shed { retry_after }),
                Some(_in_flight) => match req.body_mut().reserve(declared) {
                    Err(_) => Err(IngestError::OverBudget { retry_after }),
                    // The logs route, most requests, is awaited here rather than through
                    // `dispatch`: a layer fewer, of a future that held the request twice.
                    Ok(()) if span.is_disabled() && logs => logs::handle(req, &self).await,
                    // Instrumented only when the span is on: the wrapper is a move of the
                    // whole request future, paid by every request otherwise.
                    Ok(()) if span.is_disabled() => self.dispatch(route, req).await,
                    Ok(()) => Box::pin(self.dispatch(route, req).instrument(span.clone())).await,
                },
            };
            let response = result.unwrap_or_else(|e| e.response(dialect));
            let elapsed = started.elapsed();
            let code = response.status().as_u16();
            self.metrics.route(route).observe(code, elapsed);
            tracing::debug!(parent: &span, code, elapsed_us = elapsed.as_micros() as u64, "answered");
            response
        }
    }

    async fn dispatch(
        &self,
        route: Route,
        req: Request<RequestBody>,
    ) -> Result<Response<Body>, IngestError> {
        // Every handler's future is boxed: unboxed, the largest of them sets the size of
        // every request's future, which is moved as it is polled. (Logs come here only
        // with the request span on: `serve` awaits them itself.)
        match (route, req.method()) {
            (Route::Unmatched, _) => Err(IngestError::NotFound),
            (_, method) if method != Method::POST => Err(IngestError::MethodNotAllowed),
            (Route::Logs, _) => Box::pin(logs::handle(req, self)).await,
            (Route::OtlpLogs, _) => Box::pin(otlp::handle(req, self, otlp::Signal::Logs)).await,
            (Route::OtlpMetrics, _) => {
                Box::pin(otlp::handle(req, self, otlp::Signal::Metrics)).await
            }
            (Route::OtlpTraces, _) => Box::pin(otlp::handle(req, self, otlp::Signal::Traces)).await,
            (Route::RemoteWrite, _) => Box::pin(remote_write::handle(req, self)).await,
        }
    }
}

/// Names the request's token in its span. The span is a debug one, off at the default
/// levels, where finding the current span would cost more than the rest of this: a level
/// check stands in for it.
fn record_token(info: &TokenInfo) {
    if tracing::level_enabled!(tracing::Level::DEBUG) {
        tracing::Span::current().record("token_id", tracing::field::display(&info.token_id));
    }
}

/// One request counted in flight until dropped.
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    /// Counts a request in, unless `max` are in flight already.
    fn enter(count: &'a AtomicUsize, max: usize) -> Option<InFlight<'a>> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| InFlight(count))
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::model::{AccountId, TokenId};
    use crate::tokens::Digest;

    /// What a subscriber wrote, shared with the test.
    #[derive(Clone, Default)]
    struct Written(Arc<Mutex<Vec<u8>>>);

    impl Write for Written {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_token_is_named_in_the_request_span_when_debug_is_on_and_not_looked_up_otherwise() {
        let info = TokenInfo {
            digest: Digest::of("sampleLogsToken0000000000000001"),
            token_id: TokenId("42".into()),
            account_id: AccountId(7),
            account_name: Arc::new("acme".to_string()),
            kind: Kind::Logs,
            enabled: true,
        };
        let logged = |level| {
            let written = Written::default();
            let sink = written.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(level)
                .with_ansi(false)
                .with_writer(move || sink.clone())
                .finish();
            tracing::subscriber::with_default(subscriber, || {
                let span = tracing::debug_span!("request", token_id = tracing::field::Empty);
                let _entered = span.enter();
                record_token(&info);
                tracing::warn!("answered");
            });
            String::from_utf8(written.0.lock().unwrap().clone()).unwrap()
        };
        assert!(logged(tracing::Level::DEBUG).contains("request{token_id=42}"));
        let quiet = logged(tracing::Level::WARN);
        assert!(
            quiet.contains("answered") && !quiet.contains("token_id"),
            "{quiet}"
        );
    }
}
