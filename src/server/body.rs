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

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Version, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use prometheus::IntCounter;

/// The most a lingering drain reads and discards: above the bodies real senders send
/// (the Logz.io handlers' 10 MiB, a 50 MiB batch), below what makes draining a cost.
pub const LINGER_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// One request's body. Dropped before its end, it drains on HTTP/1 (see the module comment).
pub struct RequestBody {
    /// `None` only once `drop` has taken it.
    inner: Option<Incoming>,
    /// `None` when the rest of the body is not to be drained.
    linger: Option<Linger>,
}

/// How a dropped body's rest is drained, and what must live as long as the drain.
pub struct Linger {
    pub within: Duration,
    /// The rest of a body read and discarded to its end.
    pub complete: IntCounter,
    /// Over `LINGER_MAX_BYTES` or `within`: the connection is closed.
    pub cut: IntCounter,
    /// Kept until the drain ends: the connection's busy mark.
    pub hold: Box<dyn Send + Sync>,
}

impl RequestBody {
    /// Wraps `inner`; `linger` applies only to an HTTP/1 request without
    /// `Expect: 100-continue`.
    pub fn new(inner: Incoming, version: Version, headers: &HeaderMap, linger: Linger) -> Self {
        let expects_continue = headers
            .get(header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        let lingers = version <= Version::HTTP_11 && !expects_continue;
        RequestBody {
            inner: Some(inner),
            linger: lingers.then_some(linger),
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.inner.as_mut() {
            Some(inner) => Pin::new(inner).poll_frame(cx),
            None => Poll::Ready(None),
        }
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
        let (Some(inner), Some(linger)) = (self.inner.take(), self.linger.take()) else {
            return;
        };
        if inner.is_end_stream() {
            return;
        }
        // `size_hint` counts what is left of a `Content-Length` body.
        if inner.size_hint().lower() > LINGER_MAX_BYTES {
            linger.cut.inc();
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(linger.drain(inner));
        }
    }
}

impl Linger {
    /// Reads and discards `body` to its end, within the bounds. Dropping a body short of
    /// its end makes hyper close the connection once the answer is written.
    async fn drain(self, mut body: Incoming) {
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
            Some(true) if discarded > 0 => self.complete.inc(),
            Some(false) => self.cut.inc(),
            _ => {}
        }
    }
}
