//! `[tail]`: what live tails on the public listener (`GET /v1/tail`) may cost.

use std::time::Duration;

use serde::Deserialize;

use super::sink::SinkConfig;
use super::{ConfigError, refuse_zero, secs};

/// Live tails on the public listener (`GET /v1/tail`): what they may cost.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TailConfig {
    /// Serve `GET /v1/tail` at all.
    pub enabled: bool,
    /// Where tails read records: what this gateway accepted (`local`), or the Kafka
    /// sink's topics (`kafka`): what every gateway of a fleet writing there accepted.
    pub source: TailSource,
    /// Open tails on this gateway, all accounts together; more are 503 + `Retry-After`.
    pub max_subscribers: usize,
    /// Open tails reading one account (an API token's own account, a shared token's).
    pub max_per_account: usize,
    /// Records a tail may have waiting to be written to its client; past this it loses
    /// records (and is told how many).
    pub buffer_records: usize,
    /// How long a tail's buffer may stay full (its client not keeping up) before it is
    /// disconnected.
    #[serde(deserialize_with = "secs")]
    pub max_behind_secs: Duration,
    /// A comment line this often keeps proxies from cutting an idle stream.
    #[serde(deserialize_with = "secs")]
    pub heartbeat_secs: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TailSource {
    /// A tap on this gateway's forward path.
    Local,
    /// The `[sink]`'s Kafka topics, read from their end by one consumer per gateway while
    /// a tail is open.
    Kafka,
}

impl Default for TailConfig {
    fn default() -> Self {
        TailConfig {
            enabled: true,
            source: TailSource::Local,
            max_subscribers: 64,
            max_per_account: 8,
            buffer_records: 1000,
            max_behind_secs: Duration::from_secs(10),
            heartbeat_secs: Duration::from_secs(15),
        }
    }
}

impl TailConfig {
    /// Every cap and period must be > 0; a Kafka source reads the Kafka sink's topics, so
    /// it needs that sink.
    pub(super) fn validate(&self, sink: &SinkConfig) -> Result<(), ConfigError> {
        refuse_zero(&[
            ("tail.max_subscribers", self.max_subscribers == 0),
            ("tail.max_per_account", self.max_per_account == 0),
            ("tail.buffer_records", self.buffer_records == 0),
            ("tail.max_behind_secs", self.max_behind_secs.is_zero()),
            ("tail.heartbeat_secs", self.heartbeat_secs.is_zero()),
        ])?;
        if self.source == TailSource::Kafka && !matches!(sink, SinkConfig::Kafka { .. }) {
            return Err(ConfigError::invalid(
                "tail.source",
                "\"kafka\" reads the Kafka sink's topics: it needs sink.type = \"kafka\"",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::TailSource;
    use crate::config::Config;
    use crate::config::tests::no_env;

    #[test]
    fn a_kafka_tail_source_needs_the_kafka_sink() {
        let c = Config::parse("[tail]\nsource = \"kafka\"\n", no_env()).unwrap();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.starts_with("tail.source"), "{err}");
        let c = Config::parse(
            "[tail]\nsource = \"kafka\"\n[sink]\ntype = \"kafka\"\nbrokers = \"127.0.0.1:9092\"\n",
            no_env(),
        )
        .unwrap();
        assert_eq!(c.tail.source, TailSource::Kafka);
        c.validate().unwrap();
    }
}
