//! One open tail: a task that reads the tap, keeps what its scope allows, and hands frames
//! to the response body through a bounded channel. The task, not the request path, does
//! the matching and rendering; when the client reads too slowly the channel fills and
//! records are dropped (and counted, and reported in a `dropped` event), never waited for.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use serde_json::{Value, json};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::time::{Instant, MissedTickBehavior};

use super::filter::Scope;
use super::render;
use super::{Asked, Granted, Tail, TailError};
use crate::forward::tap::{Next, Subscription};
use crate::model::AccountId;

/// How a tail frames what it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/event-stream`: `data: {record}` per record, named `scope`, `dropped` and `end`
    /// events, comment lines as heartbeats.
    Sse,
    /// `application/x-ndjson`: one record per line; `{"_scope": …}`, `{"_dropped": n}` and
    /// `{"_end": why}` lines; empty lines as heartbeats.
    Ndjson,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Sse => "text/event-stream",
            Format::Ndjson => "application/x-ndjson",
        }
    }

    fn record(self, record: &Value) -> Bytes {
        match self {
            Format::Sse => Bytes::from(format!("data: {record}\n\n")),
            Format::Ndjson => Bytes::from(format!("{record}\n")),
        }
    }

    fn scope(self, scope: &Value) -> Bytes {
        match self {
            Format::Sse => Bytes::from(format!("event: scope\ndata: {scope}\n\n")),
            Format::Ndjson => Bytes::from(format!("{{\"_scope\":{scope}}}\n")),
        }
    }

    fn dropped(self, n: u64) -> Bytes {
        match self {
            Format::Sse => Bytes::from(format!("event: dropped\ndata: {{\"dropped\":{n}}}\n\n")),
            Format::Ndjson => Bytes::from(format!("{{\"_dropped\":{n}}}\n")),
        }
    }

    fn end(self, reason: &str) -> Bytes {
        let reason = json!(reason);
        match self {
            Format::Sse => Bytes::from(format!("event: end\ndata: {{\"reason\":{reason}}}\n\n")),
            Format::Ndjson => Bytes::from(format!("{{\"_end\":{reason}}}\n")),
        }
    }

    fn heartbeat(self) -> Bytes {
        match self {
            Format::Sse => Bytes::from_static(b": heartbeat\n\n"),
            Format::Ndjson => Bytes::from_static(b"\n"),
        }
    }
}

/// The response body of a tail: whatever its task sends, until the task ends.
pub struct EventBody {
    rx: mpsc::Receiver<Bytes>,
}

impl Body for EventBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.rx
            .poll_recv(cx)
            .map(|frame| frame.map(|bytes| Ok(Frame::data(bytes))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// What one tail's task needs.
pub struct Open {
    pub tail: Arc<Tail>,
    pub subscription: Subscription,
    pub asked: Asked,
    pub granted: Granted,
    pub format: Format,
    /// The account the tail counts against, released when it ends.
    pub account: AccountId,
}

/// How often a tail re-checks its credential even without a grants change: expiries and
/// trial ends are instants, not feed changes.
const RECHECK: Duration = Duration::from_secs(1);

/// Starts the task; the returned body ends when it does. It opens with a `scope` event.
pub fn start(open: Open) -> EventBody {
    let (tx, rx) = mpsc::channel(open.tail.config.buffer_records);
    // The channel is empty: this first frame always fits.
    let _ = tx.try_send(open.format.scope(&open.granted.describe()));
    tokio::spawn(run(open, tx));
    EventBody { rx }
}

async fn run(open: Open, tx: mpsc::Sender<Bytes>) {
    let Open {
        tail,
        mut subscription,
        asked,
        mut granted,
        format,
        account,
    } = open;
    let kind = asked.kind;
    tail.metrics.subscribers.inc();
    let mut grants = tail.tokens.grants_changed();
    let mut heartbeat = tokio::time::interval(tail.config.heartbeat_secs);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    heartbeat.reset();
    let mut recheck = tokio::time::interval(RECHECK);
    recheck.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut dropped: u64 = 0;
    let mut behind_since: Option<Instant> = None;

    let reason: &str = loop {
        tokio::select! {
            _ = tail.stopping.cancelled() => break "shutting down",
            _ = tx.closed() => break "",
            changed = grants.changed() => {
                if changed.is_err() {
                    break "shutting down";
                }
                if let Err(e) = regrant(&tail, &asked, &mut granted, &subscription, &tx, format) {
                    break e.end_reason();
                }
            }
            _ = recheck.tick() => {
                if let Err(e) = regrant(&tail, &asked, &mut granted, &subscription, &tx, format) {
                    break e.end_reason();
                }
            }
            _ = heartbeat.tick() => {
                let _ = tx.try_send(format.heartbeat());
            }
            next = subscription.recv() => match next {
                None => break "shutting down",
                Some(Next::Lagged(batches)) => {
                    // Batches, not records: the best count there is of what was lost.
                    dropped += batches;
                    tail.metrics.dropped.inc_by(batches);
                }
                Some(Next::Batch(batch)) => {
                    if batch.envelope.kind != kind || !granted.scope.reaches(batch.envelope.account_id) {
                        continue;
                    }
                    // An expiry is an instant: no batch is shown past it, however soon the
                    // next re-check would come.
                    if granted.expires_at_ms.is_some_and(|at| super::now_ms() >= at)
                        && let Err(e) = regrant(&tail, &asked, &mut granted, &subscription, &tx, format)
                    {
                        break e.end_reason();
                    }
                    let shown = deliver(&tx, &granted.scope, &batch, format, &mut dropped);
                    tail.metrics.records.inc_by(shown.sent);
                    tail.metrics.dropped.inc_by(shown.lost);
                    if shown.sent > 0
                        && let Some(token_id) = granted.shared_token_id
                    {
                        tail.tokens.record_shared_use(token_id);
                    }
                }
            },
        }
        // Tell the client what it lost as soon as there is room to say so.
        if dropped > 0 {
            match tx.try_send(format.dropped(dropped)) {
                Ok(()) => dropped = 0,
                Err(TrySendError::Full(_)) => {}
                Err(TrySendError::Closed(_)) => break "",
            }
        }
        // A client whose buffer stays full is behind, whether or not records keep coming:
        // after `max_behind_secs` of that it gives its place back.
        if tx.capacity() == 0 {
            let since = *behind_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= tail.config.max_behind_secs {
                break "too slow";
            }
        } else {
            behind_since = None;
        }
    };
    if !reason.is_empty() {
        // Best effort: a client that stopped reading does not hold the task.
        let _ = tokio::time::timeout(Duration::from_secs(1), tx.send(format.end(reason))).await;
    }
    tail.release(account);
    tail.metrics.subscribers.dec();
}

/// Re-authorizes an open tail; when what it may read changed, tells the client in a
/// `scope` event (best effort: a client that is behind learns it from what it is shown).
fn regrant(
    tail: &Tail,
    asked: &Asked,
    granted: &mut Granted,
    subscription: &Subscription,
    tx: &mpsc::Sender<Bytes>,
    format: Format,
) -> Result<(), TailError> {
    let now = tail.authorize(asked)?;
    if now.scope != granted.scope {
        subscription.set_interest(now.interest(asked.kind));
    }
    if now.scope != granted.scope || now.expires_at_ms != granted.expires_at_ms {
        let _ = tx.try_send(format.scope(&now.describe()));
    }
    *granted = now;
    Ok(())
}

struct Shown {
    sent: u64,
    lost: u64,
}

fn deliver(
    tx: &mpsc::Sender<Bytes>,
    scope: &Scope,
    batch: &crate::forward::RecordBatch,
    format: Format,
    dropped: &mut u64,
) -> Shown {
    let mut shown = Shown { sent: 0, lost: 0 };
    for event in render::events(batch) {
        if !scope.matches(event.subject()) {
            continue;
        }
        match tx.try_send(format.record(&event.record)) {
            Ok(()) => shown.sent += 1,
            Err(_) => {
                shown.lost += 1;
                *dropped += 1;
            }
        }
    }
    shown
}
