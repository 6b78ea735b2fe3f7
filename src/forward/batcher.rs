//! The batcher: one task that owns the sink. It groups queued records per kind until a
//! batch reaches `max_batch_bytes` or its oldest record `max_batch_age_secs`, writes it,
//! and only then releases the records' queue budget — so a slow or failing sink fills the
//! queue and turns into 503s at the front door instead of lost data.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Queued;
use super::sinks::{Batch, Sink};
use crate::config::ForwardConfig;
use crate::model::Kind;
use crate::telemetry::{SinkMetrics, Telemetry};

/// Retry pacing for a failing sink: doubles from the first delay up to the cap.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_CAP: Duration = Duration::from_secs(5);
/// After shutdown is requested a failing sink gets this many more tries, then the
/// remaining records are reported lost (memory ack makes no promise past a crash).
const RETRIES_WHILE_CLOSING: u32 = 3;

#[derive(Default)]
struct Pending {
    items: Vec<Queued>,
    bytes: usize,
    since: Option<Instant>,
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
    telemetry: Arc<Telemetry>,
    closing: bool,
}

impl Batcher {
    pub(crate) fn new(
        rx: mpsc::UnboundedReceiver<Queued>,
        sink: Sink,
        config: &ForwardConfig,
        budget: Arc<Semaphore>,
        capacity: usize,
        telemetry: Arc<Telemetry>,
    ) -> Batcher {
        Batcher {
            rx,
            sink_metrics: telemetry.sink(sink.name()),
            sink,
            pending: Default::default(),
            max_batch_bytes: config.max_batch_bytes,
            max_batch_age: config.max_batch_age_secs,
            budget,
            capacity,
            telemetry,
            closing: false,
        }
    }

    /// Runs until `shutdown`, then drains everything already queued into the sink.
    pub async fn run(mut self, shutdown: CancellationToken) {
        loop {
            let deadline = self.next_deadline();
            tokio::select! {
                _ = shutdown.cancelled(), if !self.closing => {
                    // Refuse new records (submit answers 503) but keep draining.
                    self.closing = true;
                    self.budget.close();
                    self.rx.close();
                }
                queued = self.rx.recv() => match queued {
                    Some(q) => self.push(q).await,
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    self.flush_aged().await;
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

    async fn push(&mut self, q: Queued) {
        let kind = q.batch.envelope.kind;
        let pending = &mut self.pending[kind.index()];
        pending.bytes += q.batch.payload_bytes();
        pending.since.get_or_insert_with(Instant::now);
        pending.items.push(q);
        if pending.bytes >= self.max_batch_bytes {
            self.flush_kind(kind).await;
        }
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
        let pending = std::mem::take(&mut self.pending[kind.index()]);
        if pending.items.is_empty() {
            return;
        }
        let (parts, permits): (Vec<_>, Vec<_>) = pending
            .items
            .into_iter()
            .map(|q| (q.batch, q._permit))
            .unzip();
        let batch = Arc::new(Batch { kind, parts });
        let records = batch.records();
        let mut delay = RETRY_FIRST;
        let mut tries_left = RETRIES_WHILE_CLOSING;
        loop {
            let started = Instant::now();
            match self.sink.write(Arc::clone(&batch)).await {
                Ok(()) => {
                    self.sink_metrics
                        .latency
                        .observe(started.elapsed().as_secs_f64());
                    self.sink_metrics.batches_ok.inc();
                    self.sink_metrics.records.inc_by(records as u64);
                    break;
                }
                Err(e) => {
                    self.sink_metrics.batches_error.inc();
                    if self.closing {
                        if tries_left == 0 {
                            tracing::error!(sink = self.sink.name(), records, error = %e,
                                "sink still failing at shutdown; records lost");
                            break;
                        }
                        tries_left -= 1;
                    }
                    tracing::warn!(sink = self.sink.name(), records, error = %e,
                        retry_in_ms = delay.as_millis() as u64, "sink write failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(RETRY_CAP);
                }
            }
        }
        drop(permits);
        let queued = self
            .capacity
            .saturating_sub(self.budget.available_permits());
        self.telemetry
            .queue_bytes
            .set(i64::try_from(queued).unwrap_or(i64::MAX));
    }
}
