//! The front door: an accept loop over an already-bound listener, one task per connection,
//! HTTP/1.1 and HTTP/2 (h2c prior knowledge, or ALPN under TLS) through hyper-util's auto
//! builder. It owns the connection-level limits — header read timeout (slowloris), idle
//! keep-alive timeout, request head size — and graceful shutdown: stop accepting, let
//! in-flight requests finish within the grace period, then close.
//!
//! It knows nothing of routes: it runs whatever service `app` hands it.

pub mod admin;
pub mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::telemetry::ConnMetrics;

/// Connection-level settings, from `[server]`.
#[derive(Debug, Clone)]
pub struct ConnLimits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_header_bytes: usize,
    pub shutdown_grace: Duration,
}

/// Serves `service` on `listener` until `shutdown` is cancelled, then drains.
pub async fn serve<F, Fut, B>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    service: F,
    limits: ConnLimits,
    metrics: ConnMetrics,
    shutdown: CancellationToken,
) where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    let builder = Arc::new(builder);
    let connections = TaskTracker::new();

    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning; the listener lives on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let builder = Arc::clone(&builder);
        let service = service.clone();
        let tls = tls.clone();
        let limits = limits.clone();
        let metrics = metrics.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            metrics.open.inc();
            match tls {
                None => {
                    serve_connection(stream, &builder, service, &limits, &metrics, shutdown).await
                }
                Some(acceptor) => {
                    match tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(stream)) => {
                            serve_connection(stream, &builder, service, &limits, &metrics, shutdown)
                                .await
                        }
                        Ok(Err(e)) => {
                            metrics.error("tls");
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        }
                        Err(_) => metrics.error("tls_timeout"),
                    }
                }
            }
            metrics.open.dec();
        });
    }

    drop(listener);
    connections.close();
    if tokio::time::timeout(limits.shutdown_grace, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "shutdown grace period over; closing remaining connections"
        );
    }
}

/// Runs one connection to its end: closed by the client, idle too long, or shutdown.
async fn serve_connection<IO, F, Fut, B>(
    io: IO,
    builder: &auto::Builder<TokioExecutor>,
    service: F,
    limits: &ConnLimits,
    metrics: &ConnMetrics,
    shutdown: CancellationToken,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let activity = Arc::new(Activity::new());
    let tracked = {
        let activity = Arc::clone(&activity);
        hyper::service::service_fn(move |req| {
            let busy = activity.begin();
            let response = service(req);
            async move {
                let response = response.await;
                drop(busy);
                Ok::<_, Infallible>(response)
            }
        })
    };
    let conn = builder.serve_connection(TokioIo::new(io), tracked);
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        let idle_deadline = activity.idle_deadline(limits.idle_timeout);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    let reason = classify(&*e);
                    metrics.error(reason);
                    tracing::debug!(reason, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = shutdown.cancelled(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            _ = tokio::time::sleep_until(idle_deadline.unwrap_or_else(Instant::now)), if !closing && idle_deadline.is_some() => {
                if activity.is_idle_for(limits.idle_timeout) {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

/// The bounded set of `reason` labels for `tollgate_connection_errors_total`.
fn classify(e: &(dyn std::error::Error + 'static)) -> &'static str {
    match e.downcast_ref::<hyper::Error>() {
        Some(h) if h.is_timeout() => "timeout",
        Some(h) if h.is_parse() || h.is_parse_too_large() => "parse",
        Some(h) if h.is_incomplete_message() || h.is_canceled() => "incomplete",
        Some(_) => "protocol",
        None => "io",
    }
}

/// When a connection last finished a request and how many it has in flight. Per
/// connection, so no state is shared between connections.
struct Activity {
    in_flight: AtomicUsize,
    /// Milliseconds since `base` at the last request start or end.
    last_ms: AtomicU64,
    base: Instant,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            in_flight: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
            base: Instant::now(),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn begin(self: &Arc<Self>) -> BusyGuard {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.touch();
        BusyGuard(Arc::clone(self))
    }

    /// When the connection will have been idle for `idle`, if nothing is in flight.
    fn idle_deadline(&self, idle: Duration) -> Option<Instant> {
        (self.in_flight.load(Ordering::Relaxed) == 0)
            .then(|| self.base + Duration::from_millis(self.last_ms.load(Ordering::Relaxed)) + idle)
    }

    fn is_idle_for(&self, idle: Duration) -> bool {
        self.idle_deadline(idle)
            .is_some_and(|d| d <= Instant::now())
    }
}

/// Marks a request in flight on its connection until dropped.
struct BusyGuard(Arc<Activity>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}
