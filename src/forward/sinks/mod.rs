//! Sinks: where batches end up. One enum, so the batcher needs no trait objects and each
//! sink stays a plain struct in its own file.

pub mod blackhole;
pub mod file;
pub mod inspect;

use std::sync::Arc;

use super::record::RecordBatch;
use crate::config::SinkConfig;
use crate::model::Kind;

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
    #[error("file sink: {0}")]
    Io(#[from] std::io::Error),
    #[error("sink task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

pub enum Sink {
    File(file::FileSink),
    Blackhole(blackhole::BlackholeSink),
}

impl Sink {
    /// Builds the sink the config names.
    pub fn from_config(config: &SinkConfig) -> Result<Sink, SinkError> {
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
            SinkConfig::Blackhole {} => Sink::Blackhole(blackhole::BlackholeSink::default()),
        })
    }

    /// The `sink` label of the sink metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Sink::File(_) => "file",
            Sink::Blackhole(_) => "blackhole",
        }
    }

    /// Writes a batch; `Ok` means the sink has it. The batcher retries errors.
    pub async fn write(&mut self, batch: Arc<Batch>) -> Result<(), SinkError> {
        match self {
            Sink::File(s) => s.write(batch).await,
            Sink::Blackhole(s) => {
                s.write(&batch);
                Ok(())
            }
        }
    }

    /// Makes everything written durable (called at shutdown).
    pub async fn flush(&mut self) -> Result<(), SinkError> {
        match self {
            Sink::File(s) => s.flush().await,
            Sink::Blackhole(_) => Ok(()),
        }
    }
}
