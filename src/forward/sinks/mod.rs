//! Sinks: where batches end up. One enum, so the batcher needs no trait objects and each
//! sink stays a plain struct in its own file.

pub mod blackhole;
pub mod file;
pub mod http;
pub mod inspect;
pub mod kafka;

use std::sync::Arc;

use super::record::RecordBatch;
use crate::config::SinkConfig;
use crate::model::Kind;
use crate::telemetry::DeadLetterMetrics;

/// Records of one kind, from one or more requests, written together.
#[derive(Debug)]
pub struct Batch {
    pub kind: Kind,
    pub parts: Vec<RecordBatch>,
}

impl Batch {
    pub fn records(&self) -> usize {
        self.parts.iter().map(|p| p.payloads.len()).sum()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("sink I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("sink task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("{0}")]
    Config(&'static str),
    /// The receiver asked for (or needs) another try later, perhaps after a set time.
    #[error("{reason}")]
    Retry {
        reason: String,
        retry_after: Option<std::time::Duration>,
    },
    #[error("kafka sink: {0}")]
    Kafka(#[from] kafka::KafkaSinkError),
}

impl SinkError {
    pub fn retry(reason: String, retry_after: Option<std::time::Duration>) -> SinkError {
        SinkError::Retry {
            reason,
            retry_after,
        }
    }

    /// The earliest the receiver wants the next try, when it said so.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            SinkError::Retry { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

pub enum Sink {
    File(file::FileSink),
    /// Boxed: it is much larger than the others, and there is one sink per process.
    Http(Box<http::HttpSink>),
    Blackhole(blackhole::BlackholeSink),
    Kafka(kafka::KafkaSink),
}

impl Sink {
    /// Builds the sink the config names. `dead_letters` counts what the HTTP sink sets
    /// aside (`tollgate_sink_dead_letter_records_total{sink="http"}`).
    pub fn from_config(
        config: &SinkConfig,
        dead_letters: DeadLetterMetrics,
    ) -> Result<Sink, SinkError> {
        Ok(match config {
            SinkConfig::File {
                path,
                max_file_bytes,
                rotate_secs,
            } => Sink::File(file::FileSink::open(
                path.clone(),
                *max_file_bytes,
                *rotate_secs,
            )?),
            SinkConfig::Http {
                url,
                headers,
                timeout_secs,
                dead_letter_dir,
            } => Sink::Http(Box::new(http::HttpSink::new(
                url,
                headers,
                *timeout_secs,
                dead_letter_dir.clone(),
                dead_letters,
            )?)),
            SinkConfig::Blackhole {} => Sink::Blackhole(blackhole::BlackholeSink::default()),
            SinkConfig::Kafka { .. } => Sink::Kafka(kafka::KafkaSink::from_config(config)?),
        })
    }

    /// The `sink` label of the sink metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Sink::File(_) => "file",
            Sink::Http(_) => "http",
            Sink::Blackhole(_) => "blackhole",
            Sink::Kafka(_) => "kafka",
        }
    }

    /// Writes a batch; `Ok` means the sink has it. The batcher retries errors.
    pub async fn write(&mut self, batch: Arc<Batch>) -> Result<(), SinkError> {
        match self {
            Sink::File(s) => s.write(batch).await,
            Sink::Http(s) => s.write(&batch).await,
            Sink::Blackhole(s) => {
                s.write(&batch);
                Ok(())
            }
            Sink::Kafka(s) => s.write(batch).await,
        }
    }

    /// Makes everything written durable (called at shutdown).
    pub async fn flush(&mut self) -> Result<(), SinkError> {
        match self {
            Sink::File(s) => s.flush().await,
            Sink::Http(_) | Sink::Blackhole(_) => Ok(()),
            Sink::Kafka(s) => s.flush().await,
        }
    }
}
