//! The front door: an accept loop over an already-bound listener, one task per connection,
//! HTTP/1.1 and HTTP/2 (h2c prior knowledge, or ALPN under TLS) through hyper-util's auto
//! builder. It owns the connection-level limits — header read timeout (slowloris), idle
//! keep-alive timeout, request head size — and graceful shutdown: stop accepting, let
//! in-flight requests finish within the grace period, then close.
//!
//! Both timeouts are kept here rather than by hyper: hyper's HTTP/1 header timer starts
//! when it begins waiting for a head, so it also cut idle keep-alive connections, and it
//! never ran while the auto builder waited for the first bytes (to tell HTTP/1 from h2),
//! so a silent connection was held until the idle timeout. Here, per connection:
//! - the head of the first request must be complete within `header_read_timeout` of
//!   accept (TLS handshake included); on HTTP/1.1 every later head within
//!   `header_read_timeout` of its first byte. Past it the connection is closed.
//! - with no request in progress and no head begun (HTTP/1.1), or no request in progress
//!   (h2, whose pings and settings are not requests), a connection is closed gracefully
//!   `idle_timeout` after its last request ended.
//!
//! Requests never wake the connection's task or touch its timer: they only store when
//! they began and ended. The one timer is checked when it fires, and re-armed at the
//! deadline or within the shorter of the two timeouts, whichever comes first, as a head
//! or a request may move the deadline earlier at any time.
//!
//! A body a service leaves unread is drained on HTTP/1 before the connection is reused or
//! closed, so a client that writes its whole body first still reads the answer
//! (`body.rs`).
//!
//! It knows nothing of routes: it runs whatever service `app` hands it.

pub mod admin;
pub mod body;
pub mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::on_wake::OnWake;
use crate::telemetry::ConnMetrics;
use body::{BodyBudget, Linger, RequestBody};

/// The first value of the header `name`. The headers looked up on every request
/// (`Expect`, `Content-Encoding`) are mostly absent, and a request head has a handful:
/// walking its names says so for less than hashing the name for `HeaderMap::get`
/// (callgrind, a logs-small head: ~110 instructions a lookup walking names and values,
/// ~135 hashing); a present one, or a head with many, is then found by the hash.
pub fn find_header<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Option<&'h HeaderValue> {
    if headers.keys_len() <= 8 && !headers.keys().any(|n| n == name) {
        return None;
    }
    headers.get(name)
}

/// Connection-level settings, from `[server]`.
#[derive(Debug, Clone)]
pub struct ConnLimits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_header_bytes: usize,
    /// Also bounds the drain of a body a service left unread (`body.rs`).
    pub body_read_timeout: Duration,
    pub shutdown_grace: Duration,
    /// Bytes of bodies being read, shared by every connection (`body.rs`).
    pub body_budget: Arc<BodyBudget>,
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
    F: Fn(Request<RequestBody>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // Off: `serve_connection` keeps the header timeout (see the module comment).
        .header_read_timeout(None)
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
        let accepted = Instant::now();
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
                    let conn = Conn {
                        accepted,
                        limits: &limits,
                        metrics: &metrics,
                    };
                    serve_connection(stream, &builder, service, conn, shutdown).await
                }
                Some(acceptor) => {
                    match tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(stream)) => {
                            let conn = Conn {
                                accepted,
                                limits: &limits,
                                metrics: &metrics,
                            };
                            serve_connection(stream, &builder, service, conn, shutdown).await
                        }
                        Ok(Err(e)) => metrics.tls_failed(peer, &e),
                        Err(_) => metrics.tls_timed_out(),
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

/// What `serve_connection` needs of its connection besides the bytes.
struct Conn<'a> {
    accepted: Instant,
    limits: &'a ConnLimits,
    metrics: &'a ConnMetrics,
}

/// Runs one connection to its end: closed by the client, a head too slow, idle too long,
/// or shutdown.
async fn serve_connection<IO, F, Fut, B>(
    io: IO,
    builder: &auto::Builder<TokioExecutor>,
    service: F,
    Conn {
        accepted,
        limits,
        metrics,
    }: Conn<'_>,
    shutdown: CancellationToken,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: Fn(Request<RequestBody>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let activity = Arc::new(Activity::new(accepted));
    let tracked = {
        let activity = Arc::clone(&activity);
        let linger = Arc::new(Linger {
            within: limits.body_read_timeout,
            drains: metrics.drains.clone(),
            busy: {
                let activity = Arc::clone(&activity);
                Box::new(move || Box::new(activity.hold()))
            },
        });
        let budget = Arc::clone(&limits.body_budget);
        hyper::service::service_fn(move |req: Request<Incoming>| {
            let busy = activity.begin();
            let (parts, incoming) = req.into_parts();
            let budget = Arc::clone(&budget);
            let body = RequestBody::new(incoming, parts.version, &parts.headers, &linger, budget);
            // Boxed: hyper moves the request's future as it stores it, and a handler's
            // future is kilobytes (measured: 8,000 instructions of memcpy a request).
            let response = Box::pin(service(Request::from_parts(parts, body)));
            async move {
                let response = response.await;
                drop(busy);
                Ok::<_, Infallible>(response)
            }
        })
    };
    let io = Watched {
        io,
        activity: Arc::clone(&activity),
        preface_matched: Some(0),
    };
    let conn = builder.serve_connection(TokioIo::new(io), tracked);
    tokio::pin!(conn);
    let mut stop = OnWake::new(shutdown.cancelled());
    // One timer per connection, re-armed only when it fires: requests never touch it.
    let mut check = OnWake::new(tokio::time::sleep_until(
        activity.next_check(limits, Instant::now()),
    ));
    let mut closing = false;
    loop {
        tokio::select! {
            // In this order, without the random start (a thread-local draw a poll): the
            // other two are polled only when they fire (`OnWake`).
            biased;
            result = conn.as_mut() => {
                if let Err(e) = result {
                    metrics.failed(classify(&*e), &e);
                }
                return;
            }
            _ = &mut stop, if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            _ = &mut check, if !closing => {
                let now = Instant::now();
                match activity.deadline(limits) {
                    Some(Deadline::Head(at)) if at <= now => {
                        metrics.head_timed_out();
                        return; // dropping the connection closes it
                    }
                    Some(Deadline::Idle(at)) if at <= now => {
                        conn.as_mut().graceful_shutdown();
                        closing = true;
                    }
                    _ => check.change(|sleep| sleep.reset(activity.next_check(limits, now))),
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

/// The connection's state as the timeouts see it: requests in flight, when the last one
/// began or ended, whether a head has begun, whether it speaks h2. Per connection, so no
/// state is shared between connections; written by requests, read when the timer fires.
struct Activity {
    in_flight: AtomicUsize,
    /// Requests begun on this connection.
    begun: AtomicU64,
    /// Milliseconds since `base` at the end of the last request.
    last_ms: AtomicU64,
    /// Milliseconds since `base`, plus one, at the first byte read with no request in
    /// flight (a head has begun); 0 when none has.
    head_ms: AtomicU64,
    /// The client sent the HTTP/2 preface.
    h2: AtomicBool,
    /// When the connection was accepted.
    base: Instant,
    /// `coarse_ms` then: the marks above count from it.
    base_ms: u64,
}

/// When the connection is due to close, and why.
#[derive(Debug, Clone, Copy)]
enum Deadline {
    /// A request head is late: close at once.
    Head(Instant),
    /// Idle keep-alive: close gracefully.
    Idle(Instant),
}

impl Activity {
    fn new(accepted: Instant) -> Activity {
        Activity {
            in_flight: AtomicUsize::new(0),
            begun: AtomicU64::new(0),
            last_ms: AtomicU64::new(0),
            head_ms: AtomicU64::new(0),
            h2: AtomicBool::new(false),
            base: accepted,
            base_ms: coarse_ms(),
        }
    }

    /// Milliseconds since `base`, give or take the coarse clock's tick.
    fn now_ms(&self) -> u64 {
        coarse_ms().saturating_sub(self.base_ms)
    }

    fn at_ms(&self, ms: u64) -> Instant {
        self.base + Duration::from_millis(ms)
    }

    fn begin(self: &Arc<Self>) -> BusyGuard {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.begun.fetch_add(1, Ordering::Relaxed);
        // `last_ms` waits for the end: no deadline runs while a request is in flight.
        self.head_ms.store(0, Ordering::Relaxed);
        BusyGuard(Arc::clone(self))
    }

    /// Marks the connection busy without beginning a request: a body being drained.
    fn hold(self: &Arc<Self>) -> BusyGuard {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        BusyGuard(Arc::clone(self))
    }

    /// Bytes arrived. With no request in flight they begin the next head (on HTTP/1.1;
    /// on h2 they may be pings or settings, which `deadline` ignores).
    fn read(&self) {
        if self.in_flight.load(Ordering::Relaxed) == 0 && self.head_ms.load(Ordering::Relaxed) == 0
        {
            self.head_ms
                .store(self.now_ms().saturating_add(1), Ordering::Relaxed);
        }
    }

    /// `None` while a request is in flight (the body timeout and the handler own it then).
    fn deadline(&self, limits: &ConnLimits) -> Option<Deadline> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        if self.begun.load(Ordering::Relaxed) == 0 {
            return Some(Deadline::Head(self.base + limits.header_read_timeout));
        }
        let head_ms = self.head_ms.load(Ordering::Relaxed);
        if head_ms > 0 && !self.h2.load(Ordering::Relaxed) {
            return Some(Deadline::Head(
                self.at_ms(head_ms - 1) + limits.header_read_timeout,
            ));
        }
        Some(Deadline::Idle(
            self.at_ms(self.last_ms.load(Ordering::Relaxed)) + limits.idle_timeout,
        ))
    }

    /// When to look at the deadline next: at it, or sooner, as the deadline may move
    /// earlier without the timer knowing: a head may begin on an idle connection (its
    /// deadline `header_read_timeout` later), a request may begin and end (its idle
    /// deadline `idle_timeout` after the end). Looking again within the shorter timeout
    /// of `now` catches both in time.
    fn next_check(&self, limits: &ConnLimits, now: Instant) -> Instant {
        let soon = now + limits.header_read_timeout.min(limits.idle_timeout);
        match self.deadline(limits) {
            Some(Deadline::Head(at) | Deadline::Idle(at)) => at.min(soon),
            None => soon,
        }
    }
}

/// Milliseconds on a monotonic clock, for marks that only decide timeouts of seconds, made
/// twice a request: on Linux the kernel's coarse clock (its last tick, a few milliseconds
/// behind), which costs a fraction of a precise reading.
#[cfg(target_os = "linux")]
fn coarse_ms() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse);
    let (secs, nanos) = (now.tv_sec as u64, now.tv_nsec as u64);
    secs * 1000 + nanos / 1_000_000
}

#[cfg(not(target_os = "linux"))]
fn coarse_ms() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let since = START.get_or_init(std::time::Instant::now).elapsed();
    since.as_secs() * 1000 + u64::from(since.subsec_millis())
}

/// Marks a request in flight on its connection until dropped.
struct BusyGuard(Arc<Activity>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.last_ms.store(self.0.now_ms(), Ordering::Relaxed);
    }
}

/// What an h2 client sends first (RFC 9113 §3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The connection's bytes, watched for the start of a request head and the h2 preface.
struct Watched<IO> {
    io: IO,
    activity: Arc<Activity>,
    /// Bytes of the h2 preface matched so far; `None` once the bytes differ.
    preface_matched: Option<usize>,
}

impl<IO: AsyncRead + Unpin> AsyncRead for Watched<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        let new = &buf.filled()[before..];
        if new.is_empty() {
            return polled;
        }
        if let Some(matched) = self.preface_matched {
            let n = new.len().min(H2_PREFACE.len() - matched);
            self.preface_matched = if new[..n] != H2_PREFACE[matched..matched + n] {
                None
            } else if matched + n == H2_PREFACE.len() {
                self.activity.h2.store(true, Ordering::Relaxed);
                None
            } else {
                Some(matched + n)
            };
        }
        self.activity.read();
        polled
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Watched<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header;

    #[test]
    fn find_header_answers_as_header_map_get_does() {
        let mut few = HeaderMap::new();
        few.insert(header::HOST, "a".parse().unwrap());
        few.append(header::ACCEPT, "x".parse().unwrap());
        few.append(header::ACCEPT, "y".parse().unwrap());
        let mut many = few.clone();
        for i in 0..10 {
            let name = HeaderName::from_bytes(format!("x-{i}").as_bytes()).unwrap();
            many.insert(name, "v".parse().unwrap());
        }
        for headers in [&few, &many, &HeaderMap::new()] {
            for name in [header::HOST, header::ACCEPT, header::EXPECT] {
                assert_eq!(find_header(headers, &name), headers.get(&name), "{name}");
            }
        }
        assert_eq!(find_header(&few, &header::ACCEPT).unwrap(), "x");
    }
}
