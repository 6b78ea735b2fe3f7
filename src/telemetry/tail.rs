//! Live tails' metrics and events (`GET /v1/tail`), and the Kafka tail source's.

use std::fmt::Display;

use prometheus::{IntCounter, IntCounterVec, IntGauge, Registry};

use super::{counter, counter_vec, gauge};

/// Where the Kafka source's events happen, as a `tracing` target.
const KAFKA: &str = "tollgate::tail::kafka";

/// Live tails (`GET /v1/tail`).
#[derive(Clone)]
pub struct TailMetrics {
    /// Tails open now.
    pub subscribers: IntGauge,
    /// Records written to tails' clients.
    pub records: IntCounter,
    /// Records a tail lost because its client read too slowly.
    pub dropped: IntCounter,
    /// Tails refused, by `reason`.
    refused: IntCounterVec,
    /// `[tail] source = "kafka"`: partitions its consumer reads now (0 while nobody tails).
    kafka_partitions: IntGauge,
    /// `[tail] source = "kafka"`: consumer errors and messages without tollgate's headers.
    kafka_errors: IntCounter,
}

impl TailMetrics {
    pub(super) fn register(registry: &Registry) -> TailMetrics {
        TailMetrics {
            subscribers: gauge(
                registry,
                "tollgate_tail_subscribers",
                "Live tails (GET /v1/tail) open now.",
            ),
            records: counter(
                registry,
                "tollgate_tail_records_total",
                "Records written to live tails' clients.",
            ),
            dropped: counter(
                registry,
                "tollgate_tail_dropped_total",
                "Records live tails lost because their client read too slowly.",
            ),
            refused: counter_vec(
                registry,
                "tollgate_tail_refused_total",
                "Live tails refused, by reason (unauthorized, forbidden, expired, \
                 bad_request, busy, disabled).",
                &["reason"],
            ),
            kafka_partitions: gauge(
                registry,
                "tollgate_tail_kafka_partitions",
                "Kafka partitions the tail source reads now (0 while nobody tails).",
            ),
            kafka_errors: counter(
                registry,
                "tollgate_tail_kafka_errors_total",
                "Tail source consumer errors and messages without tollgate's headers.",
            ),
        }
    }

    /// `reason`: `unauthorized`, `forbidden`, `expired`, `bad_request`, `busy`, `disabled`.
    pub fn refused(&self, reason: &'static str) {
        self.refused.with_label_values(&[reason]).inc();
    }

    /// The Kafka source started reading `partitions` partitions.
    pub fn kafka_reading(&self, partitions: usize) {
        self.kafka_partitions
            .set(i64::try_from(partitions).unwrap_or(i64::MAX));
        tracing::info!(
            target: KAFKA,
            partitions,
            "tail source: reading the Kafka topics"
        );
    }

    /// The Kafka source stopped reading (nobody tails, an error, or shutdown).
    pub fn kafka_idle(&self) {
        self.kafka_partitions.set(0);
    }

    /// The Kafka source could not read its topics; it tries again after a backoff.
    pub fn kafka_failed(&self, error: &dyn Display) {
        self.kafka_errors.inc();
        tracing::warn!(
            target: KAFKA,
            error = %error,
            "tail source: cannot read the Kafka topics; retrying"
        );
    }

    /// The Kafka consumer handed back an error instead of a message.
    pub fn kafka_consumer_error(&self, error: &dyn Display) {
        self.kafka_errors.inc();
        tracing::debug!(target: KAFKA, error = %error, "tail source: consumer error");
    }

    /// A message on the topics lacks tollgate's headers (or a payload): not shown.
    pub fn kafka_message_without_headers(&self) {
        self.kafka_errors.inc();
    }
}
