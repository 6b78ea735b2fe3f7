//! `[forward]`: what a 200 promises, and how much the spool and the queue toward the sink
//! may hold (DESIGN §3). Where batches go is `[sink]` (`sink.rs`).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, Warnings, refuse_zero, secs};

/// What a 200 promises, and how records reach the sink (DESIGN §3).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardConfig {
    /// What a 200 promises: `disk` (appended to the spool and fsynced), `downstream` (the
    /// sink acknowledged it) or `memory` (queued in memory; lost on a crash).
    pub ack: Ack,
    /// The spool's directory (`disk` and `downstream`).
    pub spool_dir: PathBuf,
    /// A spool segment is closed and a new one started past this size.
    pub spool_segment_bytes: u64,
    /// High-water mark: past this many spooled-but-unacknowledged bytes, 503 + Retry-After.
    pub spool_max_bytes: u64,
    /// Bytes of records in memory between the spool (or the routes) and the sink. With
    /// `ack = "memory"` it is the whole buffer: past it, 503 + Retry-After.
    pub queue_max_bytes: u64,
    /// A batch is handed to the sink once it holds this many payload bytes…
    pub max_batch_bytes: usize,
    /// …or once its oldest record is this old.
    #[serde(deserialize_with = "secs")]
    pub max_batch_age_secs: Duration,
    /// The `Retry-After` sent with 503 when the queue is full.
    #[serde(deserialize_with = "secs")]
    pub retry_after_secs: Duration,
}

impl Default for ForwardConfig {
    fn default() -> Self {
        ForwardConfig {
            ack: Ack::Disk,
            spool_dir: PathBuf::from("data/spool"),
            spool_segment_bytes: 64 * 1024 * 1024,
            spool_max_bytes: 1024 * 1024 * 1024,
            queue_max_bytes: 256 * 1024 * 1024,
            max_batch_bytes: 1024 * 1024,
            max_batch_age_secs: Duration::from_millis(200),
            retry_after_secs: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ack {
    Disk,
    Downstream,
    Memory,
}

impl ForwardConfig {
    /// Every size and the batch age must be > 0; `ack = "memory"` is allowed, with a warning.
    pub(super) fn validate(&self, warnings: &mut Warnings) -> Result<(), ConfigError> {
        refuse_zero(&[
            ("forward.queue_max_bytes", self.queue_max_bytes == 0),
            ("forward.spool_segment_bytes", self.spool_segment_bytes == 0),
            ("forward.spool_max_bytes", self.spool_max_bytes == 0),
            ("forward.max_batch_bytes", self.max_batch_bytes == 0),
            (
                "forward.max_batch_age_secs",
                self.max_batch_age_secs.is_zero(),
            ),
        ])?;
        if self.ack == Ack::Memory {
            warnings.push(
                "forward.ack = \"memory\": a 200 means queued in memory; records not yet \
                 written by the sink are lost if the process crashes"
                    .to_string(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::config::tests::no_env;

    #[test]
    fn memory_ack_must_be_chosen_explicitly_and_warns() {
        let c = Config::parse("[forward]\nack = \"memory\"\n", no_env()).unwrap();
        let warnings = c.validate().unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("lost if the process crashes"));
    }

    #[test]
    fn invalid_ack_value_names_the_key() {
        let err = Config::parse("[forward]\nack = \"sometimes\"\n", no_env()).unwrap_err();
        assert!(err.to_string().starts_with("forward.ack"), "{err}");
    }
}
