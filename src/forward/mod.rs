//! Forwarding (DESIGN §3): `Forwarder::submit` takes a request's records and resolves when
//! the `[forward] ack` policy is met; background tasks own the spool, the batcher and the
//! sink. Routes only ever call `submit` and await it.
//!
//! - `memory`: resolves once the records are queued in memory (bounded in bytes).
//! - `disk`: resolves once the records are appended to the spool and fsynced (group
//!   commit); the spool reader feeds the batcher — from memory while it keeps up, from
//!   disk to replay or catch up — so a crash loses nothing acknowledged.
//! - `downstream`: as `disk`, then waits until the sink has acknowledged the records.

pub mod batcher;
pub mod record;
pub mod sinks;
pub mod spool;
pub mod tap;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Ack, ForwardConfig};
use crate::telemetry::ForwardMetrics;
pub use record::{ContentType, Envelope, Payloads, RecordBatch};
use sinks::Sink;
use spool::{SpoolError, SpoolHandle, SpooledEntry};
use tap::Tap;

/// Why `submit` refused records. All are "retry later": 503 with `Retry-After`, never 500.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("the forwarding queue is full")]
    Full { retry_after: Duration },
    #[error("the spool is over its high-water mark")]
    SpoolFull { retry_after: Duration },
    #[error("the spool is not writable")]
    SpoolUnavailable { retry_after: Duration },
    #[error("tollgate is shutting down")]
    ShuttingDown { retry_after: Duration },
}

impl SubmitError {
    pub fn retry_after(&self) -> Duration {
        match self {
            SubmitError::Full { retry_after }
            | SubmitError::SpoolFull { retry_after }
            | SubmitError::SpoolUnavailable { retry_after }
            | SubmitError::ShuttingDown { retry_after } => *retry_after,
        }
    }
}

/// Records on their way to the batcher, holding their share of the memory budget until
/// the sink has written them; `spooled` says where they are in the spool, if anywhere.
pub(crate) struct Queued {
    pub batch: RecordBatch,
    pub permit: OwnedSemaphorePermit,
    pub spooled: Option<SpooledEntry>,
}

/// The batcher's inbox and the memory budget that bounds it.
#[derive(Clone)]
struct Queue {
    tx: mpsc::UnboundedSender<Queued>,
    budget: Arc<Semaphore>,
    /// The whole budget; an entry larger than it takes all of it (an empty queue).
    capacity: u32,
    /// `tollgate_queue_bytes`: set when an entry takes its share (here) and when the
    /// batcher gives it back, so a stalled sink shows as a full queue.
    level: prometheus::IntGauge,
}

impl Queue {
    fn permits_for(&self, batch: &RecordBatch) -> u32 {
        u32::try_from(batch.held_bytes())
            .unwrap_or(u32::MAX)
            .min(self.capacity)
    }

    /// Publishes how much of the budget is taken.
    fn show_level(&self) {
        let taken = (self.capacity as usize).saturating_sub(self.budget.available_permits());
        self.level.set(i64::try_from(taken).unwrap_or(i64::MAX));
    }
}

#[derive(Clone)]
enum Path {
    Memory(Queue),
    Spool {
        spool: SpoolHandle,
        max_bytes: u64,
        downstream: bool,
    },
}

/// The handle routes submit through. Cheap to clone.
#[derive(Clone)]
pub struct Forwarder {
    path: Path,
    retry_after: Duration,
    /// Accepted batches for live tails; one atomic load per request while nobody tails.
    /// `None` when tails read Kafka instead (`[tail] source = "kafka"`).
    tap: Option<Arc<Tap>>,
}

impl Forwarder {
    /// Hands over a request's records; resolves when the ack policy is met.
    pub async fn submit(&self, batch: RecordBatch) -> Result<(), SubmitError> {
        if batch.payloads.is_empty() {
            return Ok(());
        }
        let Some(tap) = self.tap.as_ref().filter(|tap| tap.is_watched()) else {
            return self.accept(batch).await;
        };
        let readers = tap.readers(&batch);
        if readers.is_empty() {
            return self.accept(batch).await;
        }
        // Tailed: the batch goes to its readers once accepted (a refused one was never
        // ingested).
        let tapped = Arc::new(batch.clone());
        self.accept(batch).await?;
        readers.hand(tapped);
        Ok(())
    }

    async fn accept(&self, batch: RecordBatch) -> Result<(), SubmitError> {
        let retry_after = self.retry_after;
        match &self.path {
            Path::Memory(queue) => {
                let permit = Arc::clone(&queue.budget)
                    .try_acquire_many_owned(queue.permits_for(&batch))
                    .map_err(|e| match e {
                        tokio::sync::TryAcquireError::NoPermits => {
                            SubmitError::Full { retry_after }
                        }
                        tokio::sync::TryAcquireError::Closed => {
                            SubmitError::ShuttingDown { retry_after }
                        }
                    })?;
                queue.show_level();
                queue
                    .tx
                    .send(Queued {
                        batch,
                        permit,
                        spooled: None,
                    })
                    .map_err(|_| SubmitError::ShuttingDown { retry_after })
            }
            Path::Spool {
                spool,
                max_bytes,
                downstream,
            } => {
                if !spool.is_writable() {
                    return Err(SubmitError::SpoolUnavailable { retry_after });
                }
                if spool.unacked_bytes() >= *max_bytes {
                    return Err(SubmitError::SpoolFull { retry_after });
                }
                let seq = spool.append(batch).await.map_err(|e| match e {
                    SpoolError::Closed => SubmitError::ShuttingDown { retry_after },
                    SpoolError::Io(_) => SubmitError::SpoolUnavailable { retry_after },
                })?;
                if *downstream {
                    spool
                        .acknowledged(seq)
                        .await
                        .map_err(|_| SubmitError::ShuttingDown { retry_after })?;
                }
                Ok(())
            }
        }
    }

    /// False while the spool cannot be written (a failed write or fsync): `/readyz` is 503.
    pub fn is_writable(&self) -> bool {
        match &self.path {
            Path::Memory(_) => true,
            Path::Spool { spool, .. } => spool.is_writable(),
        }
    }
}

/// The running background parts; `close` drains them in order.
pub struct ForwardTask {
    writer: Option<spool::WriterStop>,
    reader: Option<(JoinHandle<()>, CancellationToken)>,
    batcher: (JoinHandle<()>, CancellationToken),
    cursor_keeper: Option<JoinHandle<()>>,
}

impl ForwardTask {
    /// Stops the spool writer (the routes are drained: nothing more is appended), stops
    /// reading the spool once caught up, writes what the batcher holds to the sink,
    /// flushes it and persists the cursor. In `memory` mode, drains the queue. Records
    /// still in the spool (a sink that keeps failing) stay there for the next start.
    pub async fn close(self) {
        if let Some(writer) = self.writer {
            writer.stop().await;
        }
        if let Some((reader, stop)) = self.reader {
            stop.cancel();
            if let Err(e) = reader.await {
                tracing::error!(error = %e, "spool reader failed");
            }
        }
        let (batcher, stop) = self.batcher;
        stop.cancel();
        if let Err(e) = batcher.await {
            tracing::error!(error = %e, "batcher failed");
        }
        if let Some(keeper) = self.cursor_keeper
            && let Err(e) = keeper.await
        {
            tracing::error!(error = %e, "cursor keeper failed");
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("forward.spool_dir: {0}")]
    Spool(#[from] SpoolError),
}

/// Starts the forwarding path for `config.ack` in front of `sink`; accepted batches go to
/// `tap` while someone tails.
pub fn start(
    config: &ForwardConfig,
    sink: Sink,
    metrics: ForwardMetrics,
    tap: Option<Arc<Tap>>,
) -> Result<(Forwarder, ForwardTask), StartError> {
    let ForwardMetrics {
        batcher: batcher_metrics,
        spool: spool_metrics,
    } = metrics;
    let (tx, rx) = mpsc::unbounded_channel();
    // Permits are taken per entry as a u32, so the budget is capped at u32::MAX bytes.
    let capacity = u32::try_from(config.queue_max_bytes).unwrap_or(u32::MAX);
    batcher_metrics.queue_max_bytes.set(i64::from(capacity));
    if config.ack == Ack::Disk {
        let max = i64::try_from(config.spool_max_bytes).unwrap_or(i64::MAX);
        spool_metrics.max_bytes.set(max);
    }
    let queue = Queue {
        tx,
        budget: Arc::new(Semaphore::new(capacity as usize)),
        capacity,
        level: batcher_metrics.queue_bytes.clone(),
    };
    let batcher_stop = CancellationToken::new();
    let retry_after = config.retry_after_secs;

    if config.ack == Ack::Memory {
        let batcher = batcher::Batcher::new(
            rx,
            sink,
            config,
            queue.budget.clone(),
            None,
            batcher_metrics,
        );
        let batcher = tokio::spawn(batcher.run(batcher_stop.clone()));
        let forwarder = Forwarder {
            path: Path::Memory(queue),
            retry_after,
            tap,
        };
        let task = ForwardTask {
            writer: None,
            reader: None,
            batcher: (batcher, batcher_stop),
            cursor_keeper: None,
        };
        return Ok((forwarder, task));
    }

    // Entries fsynced and waiting for the batcher's queue stay in memory up to a quarter
    // of the queue's budget: enough to ride out scheduling lag; past it (a slow sink) they
    // are read back from disk when the queue has room.
    let spool = spool::open(
        &config.spool_dir,
        config.spool_segment_bytes,
        config.queue_max_bytes / 4,
        spool_metrics,
    )?;
    let r = &spool.recovery;
    if r.bytes > 0 {
        tracing::info!(
            bytes = r.bytes,
            segments = r.segments,
            "spool: replaying unacknowledged records to the sink"
        );
    }
    let acks = batcher::AckTracker::new(spool.cursor_tx, spool.acked_tx, spool.unacked);
    let batcher = batcher::Batcher::new(
        rx,
        sink,
        config,
        queue.budget.clone(),
        Some(acks),
        batcher_metrics,
    );
    let batcher = tokio::spawn(batcher.run(batcher_stop.clone()));
    let reader_stop = CancellationToken::new();
    let reader = tokio::spawn(feed(spool.reader, queue, reader_stop.clone()));
    let cursor_keeper = tokio::spawn(spool.cursor_keeper.run());
    let forwarder = Forwarder {
        path: Path::Spool {
            spool: spool.handle,
            max_bytes: config.spool_max_bytes,
            downstream: config.ack == Ack::Downstream,
        },
        retry_after,
        tap,
    };
    let task = ForwardTask {
        writer: Some(spool.writer),
        reader: Some((reader, reader_stop)),
        batcher: (batcher, batcher_stop),
        cursor_keeper: Some(cursor_keeper),
    };
    Ok((forwarder, task))
}

/// Moves spooled entries to the batcher, in spool order, as the memory budget allows.
async fn feed(mut reader: spool::Reader, queue: Queue, stop: CancellationToken) {
    while let Some(entries) = reader.next(&stop).await {
        for entry in entries {
            let permits = queue.permits_for(&entry.batch);
            // The budget almost always has room: take it without building a future.
            let permit = match Arc::clone(&queue.budget).try_acquire_many_owned(permits) {
                Ok(p) => p,
                Err(tokio::sync::TryAcquireError::Closed) => return,
                Err(tokio::sync::TryAcquireError::NoPermits) => tokio::select! {
                    biased;
                    p = Arc::clone(&queue.budget).acquire_many_owned(permits) => match p {
                        Ok(p) => p,
                        Err(_) => return,
                    },
                    // Shutting down while the sink is slow: what is unread stays in the spool.
                    _ = stop.cancelled() => return,
                },
            };
            queue.show_level();
            let queued = Queued {
                batch: entry.batch,
                permit,
                spooled: Some(entry.spooled),
            };
            if queue.tx.send(queued).is_err() {
                return;
            }
        }
    }
}
