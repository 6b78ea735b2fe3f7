//! The batcher: one task that owns the sink. It groups queued records per kind until a
//! batch reaches `max_batch_bytes` or its oldest record `max_batch_age_secs`, writes it,
//! and only then releases the records' queue budget — so a slow or failing sink fills the
//! queue and turns into 503s at the front door instead of lost data.
//!
//! With the spool, it also tracks acknowledgements in spool order: batches of different
//! kinds complete out of order, and the cursor may only pass a prefix of entries that are
//! all acknowledged.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::sinks::{Batch, Sink};
use super::spool::{Cursor, SpooledEntry, Unacked};
use super::{Queued, RecordBatch};
use crate::backoff::Backoff;
use crate::config::ForwardConfig;
use crate::model::Kind;
use crate::on_wake::OnWake;
use crate::telemetry::{BatchFate, BatcherMetrics, SinkMetrics};
use prometheus::IntGauge;

/// Retry pacing for a failing sink: doubles from the first delay up to the cap.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_CAP: Duration = Duration::from_secs(5);
/// After shutdown is requested a failing sink gets this many more tries, then the
/// remaining records are reported lost (memory ack makes no promise past a crash).
const RETRIES_WHILE_CLOSING: u32 = 3;
/// Most queued entries taken from the inbox per wake-up.
const INBOX_BATCH: usize = 256;
/// Requests' records and queue budget released at a time after a flush, between yields.
const RELEASE_SLICE: usize = 256;

#[derive(Default)]
struct Pending {
    /// The records, in arrival order.
    parts: Vec<RecordBatch>,
    /// Their queue budget: one permit a `RELEASE_SLICE` of records (`merge`d as they
    /// arrive), so a flush neither walks the records first nor locks the semaphore for
    /// each one as it gives the budget back.
    permits: Vec<OwnedSemaphorePermit>,
    /// Ack tickets of the spooled items, for `AckTracker::ack`.
    tickets: Vec<u64>,
    bytes: usize,
    since: Option<Instant>,
}

/// Acknowledgement bookkeeping for spooled entries, in spool order.
pub struct AckTracker {
    /// Entries handed to the batcher and not yet past the cursor; `.1` = acknowledged.
    pending: VecDeque<(SpooledEntry, bool)>,
    /// Ticket of `pending[0]`.
    front: u64,
    next: u64,
    cursor: watch::Sender<Cursor>,
    acked_seq: watch::Sender<u64>,
    unacked: Arc<Unacked>,
}

impl AckTracker {
    pub fn new(
        cursor: watch::Sender<Cursor>,
        acked_seq: watch::Sender<u64>,
        unacked: Arc<Unacked>,
    ) -> AckTracker {
        AckTracker {
            pending: VecDeque::new(),
            front: 0,
            next: 0,
            cursor,
            acked_seq,
            unacked,
        }
    }

    fn register(&mut self, entry: SpooledEntry) -> u64 {
        self.pending.push_back((entry, false));
        self.next += 1;
        self.next - 1
    }

    /// Marks tickets acknowledged and moves the cursor over the acknowledged prefix.
    fn ack(&mut self, tickets: &[u64]) {
        for &t in tickets {
            if let Some(slot) = t
                .checked_sub(self.front)
                .and_then(|i| self.pending.get_mut(i as usize))
            {
                slot.1 = true;
            }
        }
        let mut last = None;
        let (mut bytes, mut records) = (0, 0);
        while let Some((entry, true)) = self.pending.front().copied() {
            self.pending.pop_front();
            self.front += 1;
            bytes += entry.frame_bytes;
            records += entry.records;
            last = Some(entry);
        }
        if let Some(entry) = last {
            self.unacked.acknowledged(bytes, records);
            self.cursor.send_replace(Cursor {
                position: entry.end,
                seq: entry.seq,
            });
            self.acked_seq.send_replace(entry.seq);
        }
    }
}

pub struct Batcher {
    rx: mpsc::UnboundedReceiver<Queued>,
    sink: Sink,
    sink_metrics: SinkMetrics,
    pending: [Pending; 3],
    max_batch_bytes: usize,
    max_batch_age: Duration,
    budget: Arc<Semaphore>,
    capacity: usize,
    acks: Option<AckTracker>,
    queue_bytes: IntGauge,
    closing: bool,
    /// Watched inside the retry loop too: a failing sink must not hold up shutdown.
    shutdown: CancellationToken,
}

impl Batcher {
    pub(crate) fn new(
        rx: mpsc::UnboundedReceiver<Queued>,
        sink: Sink,
        config: &ForwardConfig,
        budget: Arc<Semaphore>,
        acks: Option<AckTracker>,
        metrics: BatcherMetrics,
    ) -> Batcher {
        let capacity = budget.available_permits();
        Batcher {
            rx,
            sink_metrics: metrics.sink,
            sink,
            pending: Default::default(),
            max_batch_bytes: config.max_batch_bytes,
            max_batch_age: config.max_batch_age_secs,
            budget,
            capacity,
            acks,
            queue_bytes: metrics.queue_bytes,
            closing: false,
            shutdown: CancellationToken::new(),
        }
    }

    /// Runs until `shutdown`, then drains everything already queued into the sink.
    pub async fn run(mut self, shutdown: CancellationToken) {
        self.shutdown = shutdown.clone();
        // Everything queued since the last wake-up is taken at once: under load one pass of
        // this loop (and its timer and cancellation futures) serves many requests, not one.
        let mut inbox = Vec::with_capacity(INBOX_BATCH);
        // Both are polled only when they fire (`OnWake`): the inbox wakes this task for
        // every few requests. The timer is moved, not made again, when the oldest pending
        // record changes.
        let mut stop = OnWake::new(shutdown.cancelled_owned());
        let mut aged = OnWake::new(tokio::time::sleep_until(Instant::now()));
        let mut armed = None;
        loop {
            let deadline = self.next_deadline();
            if let Some(at) = deadline.filter(|&at| armed != Some(at)) {
                aged.change(|sleep| sleep.reset(at));
                armed = Some(at);
            }
            tokio::select! {
                biased;
                _ = &mut stop, if !self.closing => {
                    // Refuse new records (submit answers 503) but keep draining.
                    self.closing = true;
                    self.budget.close();
                    self.rx.close();
                }
                _ = &mut aged, if deadline.is_some() => {
                    armed = None;
                    self.flush_aged().await;
                }
                received = self.rx.recv_many(&mut inbox, INBOX_BATCH) => {
                    if received == 0 {
                        break; // closed and empty
                    }
                    for q in inbox.drain(..) {
                        if let Some(full) = self.push(q) {
                            self.flush_kind(full).await;
                        }
                    }
                    // The requests ready to run go first: woken by the next send, this task
                    // runs right after its sender (tokio's LIFO slot) and takes one or two
                    // records a wake; after them, it takes what they all queued.
                    if received == INBOX_BATCH {
                        continue;
                    }
                    tokio::task::yield_now().await;
                }
            }
        }
        for kind in Kind::ALL {
            self.flush_kind(kind).await;
        }
        if let Err(e) = self.sink.flush().await {
            tracing::error!(sink = self.sink.name(), error = %e, "final sink flush failed");
        }
        tracing::info!(sink = self.sink.name(), "forwarding drained");
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.pending
            .iter()
            .filter_map(|p| p.since)
            .min()
            .map(|t| t + self.max_batch_age)
    }

    /// Adds `q` to its kind's pending records; the kind, when that makes a full batch.
    /// Not `async`: the records move once, into the batch, not first into a future.
    fn push(&mut self, q: Queued) -> Option<Kind> {
        let kind = q.batch.envelope.kind;
        let ticket = match (&mut self.acks, q.spooled) {
            (Some(acks), Some(entry)) => Some(acks.register(entry)),
            _ => None,
        };
        let pending = &mut self.pending[kind.index()];
        pending.tickets.extend(ticket);
        pending.bytes += q.batch.payload_bytes();
        pending.since.get_or_insert_with(Instant::now);
        match pending.permits.last_mut() {
            Some(slice) if !pending.parts.len().is_multiple_of(RELEASE_SLICE) => {
                slice.merge(q.permit)
            }
            _ => pending.permits.push(q.permit),
        }
        pending.parts.push(q.batch);
        (pending.bytes >= self.max_batch_bytes).then_some(kind)
    }

    async fn flush_aged(&mut self) {
        let now = Instant::now();
        for kind in Kind::ALL {
            if self.pending[kind.index()]
                .since
                .is_some_and(|t| t + self.max_batch_age <= now)
            {
                self.flush_kind(kind).await;
            }
        }
    }

    /// Writes one kind's pending records, retrying a failing sink with backoff. The
    /// records' queue budget is released when this returns.
    async fn flush_kind(&mut self, kind: Kind) {
        let slot = &mut self.pending[kind.index()];
        if slot.parts.is_empty() {
            return;
        }
        // The next batch starts with this one's room: grown from empty, a batch of
        // thousands of requests would be copied a dozen times on the way.
        let room = slot.parts.capacity();
        let Pending {
            parts,
            mut permits,
            tickets,
            ..
        } = std::mem::replace(
            slot,
            Pending {
                parts: Vec::with_capacity(room),
                ..Pending::default()
            },
        );
        let batch = Arc::new(Batch { kind, parts });
        let records = batch.records();
        let mut backoff = Backoff::new(RETRY_FIRST, RETRY_CAP);
        let mut tries_left = RETRIES_WHILE_CLOSING;
        loop {
            let started = Instant::now();
            match self.sink.write(Arc::clone(&batch)).await {
                Ok(()) => {
                    self.sink_metrics.batch_written(records, started.elapsed());
                    if let Some(acks) = &mut self.acks {
                        acks.ack(&tickets);
                    }
                    break;
                }
                Err(e) => {
                    let closing = self.closing || self.shutdown.is_cancelled();
                    if closing {
                        if tries_left == 0 {
                            let fate = if self.acks.is_some() {
                                BatchFate::LeftInSpool
                            } else {
                                BatchFate::Lost
                            };
                            self.sink_metrics.batch_failed(records, &e, fate);
                            break;
                        }
                        tries_left -= 1;
                    }
                    let fate = BatchFate::Retry {
                        backoff: backoff.ceiling(),
                    };
                    self.sink_metrics.batch_failed(records, &e, fate);
                    // Full jitter (a random wait up to the backoff), but never sooner than
                    // the receiver's Retry-After.
                    let jittered = backoff.next_delay();
                    let wait = e
                        .retry_after()
                        .map_or(jittered, |after| after.max(jittered));
                    if closing {
                        tokio::time::sleep(wait.min(RETRY_FIRST)).await;
                    } else {
                        tokio::select! {
                            _ = tokio::time::sleep(wait) => {}
                            _ = self.shutdown.cancelled() => {}
                        }
                    }
                }
            }
        }
        // Give the batch's memory and queue budget back a slice at a time: released at once,
        // a default batch of ~4,300 small requests is ~3 million instructions (about 0.8 ms
        // on the machine measured), which every request in flight then waits out.
        let mut parts = Arc::try_unwrap(batch).map(|b| b.parts).unwrap_or_default();
        loop {
            parts.truncate(parts.len().saturating_sub(RELEASE_SLICE));
            permits.pop();
            if parts.is_empty() && permits.is_empty() {
                break;
            }
            tokio::task::yield_now().await;
        }
        let queued = self
            .capacity
            .saturating_sub(self.budget.available_permits());
        self.queue_bytes
            .set(i64::try_from(queued).unwrap_or(i64::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forward::record::tests::batch;
    use crate::forward::sinks::blackhole::BlackholeSink;
    use crate::telemetry::Telemetry;

    /// A flushed batch gives its requests' budget back a slice at a time, with other tasks
    /// running in between: released at once, a large batch would hold the core (one thread
    /// here, as on a gateway pinned to one core) while every request in flight waited.
    #[tokio::test]
    async fn a_large_batch_is_released_in_slices_with_other_tasks_running_between() {
        const REQUESTS: usize = 4 * RELEASE_SLICE;
        let budget = Arc::new(Semaphore::new(REQUESTS));
        let (tx, rx) = mpsc::unbounded_channel();
        for _ in 0..REQUESTS {
            let permit = Arc::clone(&budget).try_acquire_owned().unwrap();
            let queued = Queued {
                batch: batch(&["{}"]),
                permit,
                spooled: None,
            };
            tx.send(queued).unwrap();
        }
        let config = ForwardConfig {
            max_batch_bytes: 2 * REQUESTS, // reached by the last request: one flush of all
            ..ForwardConfig::default()
        };
        let metrics = Telemetry::new().forward("blackhole");
        let sink = Sink::Blackhole(BlackholeSink::default());
        let flushes = metrics.batcher.sink.clone();
        let batcher = Batcher::new(
            rx,
            sink,
            &config,
            Arc::clone(&budget),
            None,
            metrics.batcher,
        );
        // Watches the budget whenever it gets a turn, until the batch is written and
        // released.
        let watched = Arc::clone(&budget);
        let watcher = tokio::spawn(async move {
            let mut seen = Vec::new();
            while watched.available_permits() < REQUESTS {
                seen.push(watched.available_permits());
                tokio::task::yield_now().await;
            }
            seen
        });
        let stop = CancellationToken::new();
        let running = tokio::spawn(batcher.run(stop.clone()));
        let seen = watcher.await.unwrap();
        stop.cancel();
        running.await.unwrap();
        assert_eq!(
            flushes.batches_written(),
            1,
            "one batch of all {REQUESTS} requests"
        );
        assert!(
            seen.iter().any(|&free| free > 0 && free < REQUESTS),
            "other tasks ran while the budget came back (seen: {seen:?})"
        );
    }
}
