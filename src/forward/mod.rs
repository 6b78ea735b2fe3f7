//! Forwarding (DESIGN §3): `Forwarder::submit` takes a request's records and resolves when
//! the `[forward] ack` policy is met; a background batcher owns the sink.
//!
//! This is the seam the durable spool slots into: a route only ever calls `submit` and
//! awaits it, so `ack = "disk"` (append + group fsync) and `ack = "downstream"` change what
//! `submit` waits for, not the routes. Today `ack = "memory"` is the one mode: `submit`
//! resolves once the records are queued, and the queue is bounded in bytes.

pub mod batcher;
pub mod record;
pub mod sinks;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::ForwardConfig;
use crate::telemetry::Telemetry;
pub use record::{ContentType, Envelope, RecordBatch};
use sinks::Sink;

/// Why `submit` refused records. Both are "retry later": 503 with `Retry-After`, never 500.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("the forwarding queue is full")]
    Full { retry_after: Duration },
    #[error("tollgate is shutting down")]
    ShuttingDown { retry_after: Duration },
}

/// Records waiting for the batcher, with the queue budget they hold until the sink has
/// written them.
pub(crate) struct Queued {
    pub batch: RecordBatch,
    pub _permit: OwnedSemaphorePermit,
}

/// The handle routes submit through. Cheap to clone.
#[derive(Clone)]
pub struct Forwarder {
    tx: mpsc::UnboundedSender<Queued>,
    /// Queue budget in payload bytes: the channel is unbounded, this bounds it.
    budget: Arc<Semaphore>,
    /// The whole budget; a request larger than it takes all of it (an empty queue).
    capacity: u32,
    retry_after: Duration,
}

impl Forwarder {
    /// Queues a request's records; resolves when the ack policy is met.
    pub async fn submit(&self, batch: RecordBatch) -> Result<(), SubmitError> {
        if batch.payloads.is_empty() {
            return Ok(());
        }
        let bytes = u32::try_from(batch.payload_bytes().max(1))
            .unwrap_or(u32::MAX)
            .min(self.capacity);
        let permit = Arc::clone(&self.budget)
            .try_acquire_many_owned(bytes)
            .map_err(|e| match e {
                tokio::sync::TryAcquireError::NoPermits => SubmitError::Full {
                    retry_after: self.retry_after,
                },
                tokio::sync::TryAcquireError::Closed => SubmitError::ShuttingDown {
                    retry_after: self.retry_after,
                },
            })?;
        self.tx
            .send(Queued {
                batch,
                _permit: permit,
            })
            .map_err(|_| SubmitError::ShuttingDown {
                retry_after: self.retry_after,
            })
    }
}

/// The running batcher; `close` drains everything queued into the sink and flushes it.
pub struct ForwardTask {
    join: JoinHandle<()>,
    shutdown: CancellationToken,
}

impl ForwardTask {
    pub async fn close(self) {
        self.shutdown.cancel();
        if let Err(e) = self.join.await {
            tracing::error!(error = %e, "forwarding task failed");
        }
    }
}

/// Starts the batcher in front of `sink` and returns the handle routes submit through.
pub fn start(
    config: &ForwardConfig,
    sink: Sink,
    telemetry: Arc<Telemetry>,
) -> (Forwarder, ForwardTask) {
    let (tx, rx) = mpsc::unbounded_channel();
    // Permits are taken per request as a u32, so the budget is capped at u32::MAX bytes.
    let capacity = usize::try_from(config.queue_max_bytes)
        .unwrap_or(usize::MAX)
        .min(u32::MAX as usize);
    let budget = Arc::new(Semaphore::new(capacity));
    let shutdown = CancellationToken::new();
    let batcher = batcher::Batcher::new(rx, sink, config, Arc::clone(&budget), capacity, telemetry);
    let join = tokio::spawn(batcher.run(shutdown.clone()));
    (
        Forwarder {
            tx,
            budget,
            capacity: u32::try_from(capacity).unwrap_or(u32::MAX),
            retry_after: config.retry_after_secs,
        },
        ForwardTask { join, shutdown },
    )
}
