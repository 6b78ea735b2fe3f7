//! The request body as the front door hands it to a service: hyper's `Incoming`, and what
//! happens to the part a service leaves unread.
//!
//! A service may answer before it reads the body (413 on `Content-Length`, 401, 503 shed)
//! and drop it. hyper then closes the connection with the rest of the body still arriving;
//! the kernel answers those bytes with a reset, and a client that writes its whole body
//! before reading (Python's `http.client`, so the Logz.io Python handler) gets
//! `BrokenPipe` instead of the answer. So, as RFC 9112 §9.6 advises and nginx does, the
//! unread rest of an HTTP/1 body is read and discarded by a task of its own (a lingering
//! drain), up to `LINGER_MAX_BYTES` and within `body_read_timeout`: a body that ends
//! within both leaves the connection open for its next request; past either the
//! connection is closed. The connection counts as busy meanwhile, so its header and idle
//! timers wait. Not drained: a body declared larger than the bound (closed at once), a
//! request with `Expect: 100-continue` (its client sends nothing before the answer, which
//! it then reads), and h2 (hyper resets just the stream, which is how h2 ends one).
//!
//! The body budget (`server.max_inflight_body_bytes`). The count of requests in flight
//! alone lets 4,096 bodies of 10 MiB each be read at once, so bodies being read also take
//! bytes from one budget: a service reserves a `Content-Length` body whole before reading
//! it (`reserve`), and a body without one takes its bytes as they arrive, failing with
//! `OverBudget` when the budget runs out mid-body. The bytes go back when the body is
//! dropped (a drain holds none: it keeps nothing). What a service keeps of a body after
//! reading it is bounded elsewhere (the forward queue's own budget).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Version, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use prometheus::IntGauge;

use crate::telemetry::DrainMetrics;

/// The most a lingering drain reads and discards: above the bodies real senders send
/// (the Logz.io handlers' 10 MiB, a 50 MiB batch), below what makes draining a cost.
pub const LINGER_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// One request's body. Dropped before its end, it drains on HTTP/1 (see the module comment).
pub struct RequestBody {
    /// `None` only once `drop` has taken it.
    inner: Option<Incoming>,
    /// `None` when the rest of the body is not to be drained.
    linger: Option<Arc<Linger>>,
    budget: Budgeted,
}

/// The bytes of bodies being read, across connections: a counter that is only ever
/// tried, never waited on, so an atomic and not a semaphore (whose release takes a lock
/// on every request).
#[derive(Debug)]
pub struct BodyBudget {
    taken: AtomicU64,
    max: u64,
    /// Bytes taken now: `tollgate_inflight_body_bytes`.
    gauge: IntGauge,
}

/// A body would take the body budget past `server.max_inflight_body_bytes`.
#[derive(Debug, thiserror::Error)]
#[error("too many request body bytes in flight")]
pub struct OverBudget;

/// One body's share of the budget: what it holds and what it has received.
struct Budgeted {
    budget: Arc<BodyBudget>,
    held: u64,
    received: u64,
}

/// How a dropped body's rest is drained: one per connection, shared by its requests.
pub struct Linger {
    pub within: Duration,
    /// Counts a body read and discarded to its end, or cut: over `LINGER_MAX_BYTES` or
    /// `within`, the connection is closed.
    pub drains: DrainMetrics,
    /// Marks the connection busy; the mark is kept until the drain ends.
    pub busy: Box<dyn Fn() -> Box<dyn Send + Sync> + Send + Sync>,
}

impl RequestBody {
    /// Wraps `inner`; `linger` applies only to an HTTP/1 request without
    /// `Expect: 100-continue`.
    pub fn new(
        inner: Incoming,
        version: Version,
        headers: &HeaderMap,
        linger: &Arc<Linger>,
        budget: Arc<BodyBudget>,
    ) -> Self {
        let expects_continue = super::find_header(headers, &header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        let lingers = version <= Version::HTTP_11 && !expects_continue;
        RequestBody {
            inner: Some(inner),
            linger: lingers.then(|| Arc::clone(linger)),
            budget: Budgeted {
                budget,
                held: 0,
                received: 0,
            },
        }
    }

    /// Takes `bytes` (a declared `Content-Length`) from the body budget before the body
    /// is read; the body then takes nothing more as it arrives.
    pub fn reserve(&mut self, bytes: u64) -> Result<(), OverBudget> {
        self.budget.hold_at_least(bytes)
    }
}

impl BodyBudget {
    pub fn new(max_bytes: u64, gauge: IntGauge) -> BodyBudget {
        BodyBudget {
            taken: AtomicU64::new(0),
            max: max_bytes,
            gauge,
        }
    }

    /// Bytes taken now.
    pub fn taken(&self) -> u64 {
        self.taken.load(Ordering::Acquire)
    }

    /// The most that may be taken at once.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Takes `bytes` if the budget has them.
    pub(crate) fn try_take(&self, bytes: u64) -> bool {
        let taken = self
            .taken
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |taken| {
                taken.checked_add(bytes).filter(|&sum| sum <= self.max)
            })
            .is_ok();
        if taken {
            self.gauge.add(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
        taken
    }

    pub(crate) fn give_back(&self, bytes: u64) {
        self.taken.fetch_sub(bytes, Ordering::AcqRel);
        self.gauge.sub(i64::try_from(bytes).unwrap_or(i64::MAX));
    }
}

impl Budgeted {
    /// Holds at least `bytes` of the budget, taking the difference from it.
    fn hold_at_least(&mut self, bytes: u64) -> Result<(), OverBudget> {
        if bytes <= self.held {
            return Ok(());
        }
        if !self.budget.try_take(bytes - self.held) {
            return Err(OverBudget);
        }
        self.held = bytes;
        Ok(())
    }

    /// Gives back all the body holds.
    fn release(&mut self) {
        if self.held > 0 {
            self.budget.give_back(std::mem::take(&mut self.held));
        }
    }
}

impl Drop for Budgeted {
    fn drop(&mut self) {
        self.release();
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    /// A read error (`hyper::Error`) or `OverBudget`.
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let frame = match std::task::ready!(Pin::new(inner).poll_frame(cx)) {
            Some(Ok(frame)) => frame,
            Some(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
            None => return Poll::Ready(None),
        };
        if let Some(data) = frame.data_ref() {
            this.budget.received += data.len() as u64;
            let received = this.budget.received;
            if let Err(e) = this.budget.hold_at_least(received) {
                return Poll::Ready(Some(Err(e.into())));
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

impl Drop for RequestBody {
    fn drop(&mut self) {
        // The drain keeps nothing, so it holds no budget.
        self.budget.release();
        let (Some(inner), Some(linger)) = (self.inner.take(), self.linger.take()) else {
            return;
        };
        if inner.is_end_stream() {
            return;
        }
        // `size_hint` counts what is left of a `Content-Length` body.
        if inner.size_hint().lower() > LINGER_MAX_BYTES {
            linger.drains.cut();
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let busy = (linger.busy)();
            runtime.spawn(async move {
                linger.drain(inner).await;
                drop(busy);
            });
        }
    }
}

impl Linger {
    /// Reads and discards `body` to its end, within the bounds. Dropping a body short of
    /// its end makes hyper close the connection once the answer is written.
    async fn drain(&self, mut body: Incoming) {
        // What is left of a `Content-Length` body: done once that much is read, without
        // waiting for the end of stream (which a client that closes after reading the
        // answer may turn into an error).
        let declared = body.size_hint().exact();
        let mut discarded = 0u64;
        let ended = tokio::time::timeout(self.within, async {
            while declared.is_none_or(|n| discarded < n) {
                match body.frame().await {
                    None => break,
                    Some(Err(_)) => return None, // the client went away: nothing to count
                    Some(Ok(frame)) => {
                        discarded += frame.data_ref().map_or(0, |d| d.len() as u64);
                        if discarded > LINGER_MAX_BYTES {
                            return Some(false);
                        }
                    }
                }
            }
            Some(true)
        })
        .await
        .unwrap_or(Some(false));
        match ended {
            Some(true) if discarded > 0 => self.drains.complete(),
            Some(false) => self.drains.cut(),
            _ => {}
        }
    }
}
