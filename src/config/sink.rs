//! `[sink]`: where batches go, tagged by `type` so each sink takes only its own keys.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::{ConfigError, secs};

/// Where batches go. Tagged by `type`, so each sink has only its own keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SinkConfig {
    /// Rotating NDJSON files, one set per kind, under `path`.
    File {
        #[serde(default = "default_sink_path")]
        path: PathBuf,
        /// The active file is rotated once it reaches this size…
        #[serde(default = "default_max_file_bytes")]
        max_file_bytes: u64,
        /// …or this age.
        #[serde(default = "default_rotate_secs", deserialize_with = "rotate_secs")]
        rotate_secs: Duration,
    },
    /// POSTs each batch as gzip NDJSON to `url`; retried with backoff and jitter on 408,
    /// 429, 5xx and connection errors (honouring `Retry-After`); any other refusal goes to
    /// a dead-letter file under `dead_letter_dir`.
    Http {
        url: String,
        /// Extra request headers, e.g. `Authorization`. Never logged.
        #[serde(default)]
        headers: BTreeMap<String, String>,
        /// One attempt's deadline.
        #[serde(default = "default_http_timeout", deserialize_with = "timeout_secs")]
        timeout_secs: Duration,
        #[serde(default = "default_dead_letter_dir")]
        dead_letter_dir: PathBuf,
    },
    /// Counts and drops (benchmarks). A struct variant so stray keys are refused.
    Blackhole {},
    /// Kafka: one topic per kind, key = account id, envelope in headers (DESIGN §3).
    Kafka {
        /// Bootstrap brokers, `host:port[,host:port…]` (librdkafka `bootstrap.servers`).
        #[serde(default)]
        brokers: String,
        /// Topic for log lines (one message per line).
        #[serde(default = "default_topic_logs")]
        topic_logs: String,
        /// Topic for OTLP metrics and remote_write (one message per request).
        #[serde(default = "default_topic_metrics")]
        topic_metrics: String,
        /// Topic for OTLP traces (one message per request).
        #[serde(default = "default_topic_traces")]
        topic_traces: String,
        /// librdkafka producer options (`linger.ms`, `compression.type`, `security.protocol`,
        /// `sasl.*`, `ssl.*`, …), applied over tollgate's defaults. Values may be strings,
        /// numbers or booleans.
        #[serde(default, deserialize_with = "librdkafka_options")]
        kafka: BTreeMap<String, String>,
    },
}

impl Default for SinkConfig {
    fn default() -> Self {
        SinkConfig::File {
            path: default_sink_path(),
            max_file_bytes: default_max_file_bytes(),
            rotate_secs: default_rotate_secs(),
        }
    }
}

fn default_topic_logs() -> String {
    "tollgate-logs".to_string()
}
fn default_topic_metrics() -> String {
    "tollgate-metrics".to_string()
}
fn default_topic_traces() -> String {
    "tollgate-traces".to_string()
}

/// `[sink.kafka]`: librdkafka takes every option as a string; TOML lets users write
/// `linger.ms = 5` or `enable.ssl.certificate.verification = false`.
fn librdkafka_options<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let table = toml::Table::deserialize(d)?;
    table
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(serde::de::Error::custom(format!(
                        "`{k}`: expected a string, number or boolean, found {}",
                        other.type_str()
                    )));
                }
            };
            Ok((k, v))
        })
        .collect()
}

/// A sink is read through its `type` tag, which buffers the table and so loses the key from
/// the error's path (`sink: …`): its durations name themselves in the message instead.
fn rotate_secs<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    secs(d).map_err(|e| serde::de::Error::custom(format!("rotate_secs: {e}")))
}

/// See [`rotate_secs`].
fn timeout_secs<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    secs(d).map_err(|e| serde::de::Error::custom(format!("timeout_secs: {e}")))
}

fn default_sink_path() -> PathBuf {
    PathBuf::from("data/out")
}
fn default_max_file_bytes() -> u64 {
    128 * 1024 * 1024
}
fn default_rotate_secs() -> Duration {
    Duration::from_secs(3600)
}
fn default_http_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_dead_letter_dir() -> PathBuf {
    PathBuf::from("data/dead-letter")
}

impl SinkConfig {
    /// The file sink's size, the HTTP sink's URL and headers, the Kafka sink's brokers and
    /// topics.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        match self {
            SinkConfig::File { max_file_bytes, .. } if *max_file_bytes == 0 => {
                Err(ConfigError::invalid("sink.max_file_bytes", "must be > 0"))
            }
            SinkConfig::Http { url, headers, .. } => {
                let ok = url.parse::<http::Uri>().ok().is_some_and(|u| {
                    matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some()
                });
                if !ok {
                    return Err(ConfigError::invalid(
                        "sink.url",
                        "must be an http:// or https:// URL",
                    ));
                }
                for (name, value) in headers {
                    if http::HeaderName::try_from(name.as_str()).is_err()
                        || http::HeaderValue::try_from(value.as_str()).is_err()
                    {
                        return Err(ConfigError::invalid(
                            "sink.headers",
                            format!("`{name}` is not a valid header"),
                        ));
                    }
                }
                Ok(())
            }
            SinkConfig::Kafka {
                brokers,
                topic_logs,
                topic_metrics,
                topic_traces,
                ..
            } => {
                if brokers.trim().is_empty() {
                    return Err(ConfigError::invalid(
                        "sink.brokers",
                        "is required when sink.type = \"kafka\" (e.g. \"127.0.0.1:9092\")",
                    ));
                }
                for (key, topic) in [
                    ("sink.topic_logs", topic_logs),
                    ("sink.topic_metrics", topic_metrics),
                    ("sink.topic_traces", topic_traces),
                ] {
                    if topic.trim().is_empty() {
                        return Err(ConfigError::invalid(key, "must not be empty"));
                    }
                }
                Ok(())
            }
            SinkConfig::File { .. } | SinkConfig::Blackhole {} => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::config::tests::no_env;

    #[test]
    fn http_sink_url_is_checked() {
        let c = Config::parse("[sink]\ntype = \"http\"\nurl = \"ftp://x\"\n", no_env()).unwrap();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .starts_with("sink.url")
        );
        let c = Config::parse(
            "[sink]\ntype = \"http\"\nurl = \"http://127.0.0.1:9/in\"\n",
            no_env(),
        )
        .unwrap();
        assert!(c.validate().is_ok());
    }

    #[test]
    fn sink_keys_belong_to_their_type() {
        let err =
            Config::parse("[sink]\ntype = \"blackhole\"\npath = \"x\"\n", no_env()).unwrap_err();
        assert!(err.to_string().contains("path"), "{err}");
    }
}
