//! The forwarding path's metrics and events: the queue, the disk spool, the sink's
//! deliveries and what the HTTP sink sets aside.

use std::fmt::Display;
use std::path::Path;
use std::time::Duration;

use http::StatusCode;
use prometheus::{
    Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge, Registry, exponential_buckets,
};

use super::{counter, counter_vec, gauge, histogram, histogram_vec};

/// Where the events below happen, as `tracing` targets.
const READER: &str = "tollgate::forward::spool::reader";
const BATCHER: &str = "tollgate::forward::batcher";
const HTTP_SINK: &str = "tollgate::forward::sinks::http";

/// The disk spool's metrics, each written by one part of the spool.
#[derive(Clone)]
pub struct SpoolMetrics {
    /// Frame bytes spooled and not yet acknowledged by the sink (`spool::Unacked`).
    pub bytes: IntGauge,
    /// Records spooled and not yet acknowledged by the sink (`spool::Unacked`).
    pub records: IntGauge,
    /// `forward.spool_max_bytes` (0 with `ack = "memory"`): what an alert compares
    /// `bytes` with.
    pub max_bytes: IntGauge,
    /// One group commit (the writer).
    pub fsync: Histogram,
    /// What the reader met on its way through the spool.
    pub read: SpoolReadMetrics,
}

impl SpoolMetrics {
    fn register(registry: &Registry) -> SpoolMetrics {
        SpoolMetrics {
            bytes: gauge(
                registry,
                "tollgate_spool_bytes",
                "Bytes in the disk spool not yet acknowledged by the sink.",
            ),
            records: gauge(
                registry,
                "tollgate_spool_records",
                "Records in the disk spool not yet acknowledged by the sink.",
            ),
            max_bytes: gauge(
                registry,
                "tollgate_spool_max_bytes",
                "forward.spool_max_bytes: past it, requests are refused with 503 (0 with ack = memory).",
            ),
            fsync: histogram(
                registry,
                "tollgate_spool_fsync_seconds",
                "Time of one group commit: write plus fdatasync.",
                exponential_buckets(0.0001, 2.0, 16),
            ),
            read: SpoolReadMetrics::register(registry),
        }
    }
}

/// The spool reader's counters, written by its events.
#[derive(Clone)]
pub struct SpoolReadMetrics {
    replayed_records: IntCounter,
    /// Records read back from disk because the writer's in-memory handoff was full.
    read_back_records: IntCounter,
    corrupt_records: IntCounter,
    torn_tails: IntCounter,
}

impl SpoolReadMetrics {
    fn register(registry: &Registry) -> SpoolReadMetrics {
        SpoolReadMetrics {
            replayed_records: counter(
                registry,
                "tollgate_spool_replayed_records_total",
                "Records found unacknowledged in the spool at boot and replayed to the sink.",
            ),
            read_back_records: counter(
                registry,
                "tollgate_spool_read_back_records_total",
                "Records read back from the spool after boot because the in-memory handoff \
                 to the batcher was full (normally they are handed on from memory).",
            ),
            corrupt_records: counter(
                registry,
                "tollgate_spool_corrupt_records_total",
                "Spool frames skipped because they failed their CRC or framing check.",
            ),
            torn_tails: counter(
                registry,
                "tollgate_spool_torn_tails_total",
                "Torn segment tails (a crash mid-write) truncated during replay.",
            ),
        }
    }

    /// The reader passed over frames that failed their CRC or framing check.
    pub fn corrupt_frames_skipped(&self, frames: u64) {
        tracing::warn!(target: READER, frames, "spool: skipped corrupt frames");
        self.corrupt_records.inc_by(frames);
    }

    /// The reader cut a segment's torn end (a crash mid-write) at boot.
    pub fn torn_tail_truncated(&self, segment: u64, torn_bytes: u64) {
        tracing::warn!(
            target: READER,
            segment,
            torn_bytes,
            "spool: truncated a torn tail"
        );
        self.torn_tails.inc();
    }

    /// Records read from disk: `replayed`, unacknowledged at boot; `read_back`, spooled
    /// since but past the in-memory handoff.
    pub fn records_read(&self, replayed: u64, read_back: u64) {
        self.replayed_records.inc_by(replayed);
        self.read_back_records.inc_by(read_back);
    }
}

/// What the batcher does with a batch its sink failed to write.
#[derive(Debug, Clone, Copy)]
pub enum BatchFate {
    /// Written again after a wait of up to `backoff`.
    Retry { backoff: Duration },
    /// Given up at shutdown: the records stay in the spool for the next start.
    LeftInSpool,
    /// Given up at shutdown with `ack = memory`: the records are lost.
    Lost,
}

/// Per-sink delivery metrics, written by the batcher's events.
#[derive(Clone)]
pub struct SinkMetrics {
    /// The `sink` label, also logged.
    name: &'static str,
    batches_ok: IntCounter,
    batches_error: IntCounter,
    records: IntCounter,
    latency: Histogram,
}

impl SinkMetrics {
    /// The sink wrote a batch of `records` in `took`.
    pub fn batch_written(&self, records: usize, took: Duration) {
        self.latency.observe(took.as_secs_f64());
        self.batches_ok.inc();
        self.records.inc_by(records as u64);
    }

    /// The sink failed to write a batch of `records`; `fate` says what happens to it.
    pub fn batch_failed(&self, records: usize, error: &dyn Display, fate: BatchFate) {
        self.batches_error.inc();
        let sink = self.name;
        match fate {
            BatchFate::Retry { backoff } => tracing::warn!(
                target: BATCHER,
                sink,
                records,
                error = %error,
                backoff_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
                "sink write failed; retrying"
            ),
            BatchFate::LeftInSpool => tracing::warn!(
                target: BATCHER,
                sink,
                records,
                error = %error,
                "sink still failing at shutdown; records stay in the spool for the next start"
            ),
            BatchFate::Lost => tracing::error!(
                target: BATCHER,
                sink,
                records,
                error = %error,
                "sink still failing at shutdown; records lost (ack = memory)"
            ),
        }
    }
}

#[cfg(test)]
impl SinkMetrics {
    pub fn batches_written(&self) -> u64 {
        self.batches_ok.get()
    }
}

/// What the HTTP sink writes when a receiver refuses a batch for good.
#[derive(Clone)]
pub struct DeadLetterMetrics {
    records: IntCounter,
}

impl DeadLetterMetrics {
    /// The receiver answered `status` (`response`, an excerpt of its body): the batch's
    /// `records` were written to the dead-letter file at `path` instead.
    pub fn dead_lettered(&self, status: StatusCode, response: &str, records: usize, path: &Path) {
        self.records.inc_by(records as u64);
        tracing::warn!(
            target: HTTP_SINK,
            %status,
            response = %response,
            records,
            path = %path.display(),
            "http sink: receiver refused the batch for good; written to the dead-letter file"
        );
    }
}

/// What the batcher writes: its sink's delivery metrics and the queue's size.
#[derive(Clone)]
pub struct BatcherMetrics {
    pub sink: SinkMetrics,
    /// Memory held by records accepted but not yet written by the sink.
    pub queue_bytes: IntGauge,
    /// `forward.queue_max_bytes`, what `queue_bytes` may reach.
    pub queue_max_bytes: IntGauge,
}

/// Everything the forwarding path writes.
#[derive(Clone)]
pub struct ForwardMetrics {
    pub batcher: BatcherMetrics,
    pub spool: SpoolMetrics,
}

/// The forwarding path's metrics; the per-sink series are resolved when a sink's handles
/// are handed out.
pub(super) struct ForwardTelemetry {
    queue_bytes: IntGauge,
    queue_max_bytes: IntGauge,
    spool: SpoolMetrics,
    sink_batches: IntCounterVec,
    sink_records: IntCounterVec,
    sink_latency: HistogramVec,
    sink_dead_letters: IntCounterVec,
}

impl ForwardTelemetry {
    pub(super) fn register(registry: &Registry) -> ForwardTelemetry {
        ForwardTelemetry {
            queue_bytes: gauge(
                registry,
                "tollgate_queue_bytes",
                "Memory held by records accepted but not yet written by the sink: payload and bookkeeping.",
            ),
            queue_max_bytes: gauge(
                registry,
                "tollgate_queue_max_bytes",
                "forward.queue_max_bytes: what tollgate_queue_bytes may reach before requests wait or are refused.",
            ),
            spool: SpoolMetrics::register(registry),
            sink_batches: counter_vec(
                registry,
                "tollgate_sink_batches_total",
                "Batches handed to the sink, by result.",
                &["sink", "result"],
            ),
            sink_records: counter_vec(
                registry,
                "tollgate_sink_records_total",
                "Records written by the sink.",
                &["sink"],
            ),
            sink_latency: histogram_vec(
                registry,
                "tollgate_sink_latency_seconds",
                "Time the sink took to write one batch.",
                &["sink"],
                exponential_buckets(0.0001, 4.0, 10),
            ),
            sink_dead_letters: counter_vec(
                registry,
                "tollgate_sink_dead_letter_records_total",
                "Records the receiver refused for good, written to a dead-letter file.",
                &["sink"],
            ),
        }
    }

    /// The forwarding path's handles, for the sink called `sink`.
    pub(super) fn handles(&self, sink: &'static str) -> ForwardMetrics {
        ForwardMetrics {
            batcher: BatcherMetrics {
                sink: SinkMetrics {
                    name: sink,
                    batches_ok: self.sink_batches.with_label_values(&[sink, "ok"]),
                    batches_error: self.sink_batches.with_label_values(&[sink, "error"]),
                    records: self.sink_records.with_label_values(&[sink]),
                    latency: self.sink_latency.with_label_values(&[sink]),
                },
                queue_bytes: self.queue_bytes.clone(),
                queue_max_bytes: self.queue_max_bytes.clone(),
            },
            spool: self.spool(),
        }
    }

    pub(super) fn spool(&self) -> SpoolMetrics {
        self.spool.clone()
    }

    pub(super) fn dead_letters(&self, sink: &'static str) -> DeadLetterMetrics {
        DeadLetterMetrics {
            records: self.sink_dead_letters.with_label_values(&[sink]),
        }
    }
}
