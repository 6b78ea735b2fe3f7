//! The Kafka sink (DESIGN §3): one topic per kind, one message per payload (a log line for
//! logs, a whole request body for OTLP and remote_write), key = the account id in decimal so
//! an account's data stays ordered in one partition, the envelope in headers. A batch is
//! written only once every one of its messages has a delivery report from the broker
//! (`acks=all`, idempotent producer); any failure fails the whole batch and the batcher
//! retries it (at-least-once: a retry may duplicate messages that did arrive).

use std::collections::BTreeMap;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};

use super::{Batch, SinkError};
use crate::config::SinkConfig;
use crate::model::Kind;

/// Producer options tollgate sets before applying `[sink.kafka]`. The first two are the
/// delivery guarantee and cannot be weakened from the config (see `check_options`).
const DEFAULTS: &[(&str, &str)] = &[
    ("acks", "all"),
    ("enable.idempotence", "true"),
    ("linger.ms", "5"),
    ("batch.size", "1000000"),
    ("compression.type", "lz4"),
    // A broker outage fails a batch after this long; the batcher then retries it with
    // backoff while the spool holds the records.
    ("message.timeout.ms", "30000"),
    ("socket.keepalive.enable", "true"),
];

/// Options whose values carry tollgate's delivery guarantee.
const GUARANTEES: &[(&str, &[&str])] =
    &[("acks", &["all", "-1"]), ("enable.idempotence", &["true"])];

#[derive(Debug, thiserror::Error)]
pub enum KafkaSinkError {
    #[error("cannot create the producer: {0}")]
    Create(#[source] KafkaError),
    #[error("enqueue to {topic}: {source}")]
    Enqueue {
        topic: String,
        #[source]
        source: KafkaError,
    },
    #[error("delivery to {topic}: {source}")]
    Delivery {
        topic: String,
        #[source]
        source: KafkaError,
    },
    #[error("the producer dropped a delivery report")]
    Canceled,
}

impl KafkaSinkError {
    /// Errors about the producer's identity (id, epoch, sequence) that retrying with the
    /// same producer does not clear.
    fn needs_new_producer(&self) -> bool {
        let (KafkaSinkError::Delivery { source, .. } | KafkaSinkError::Enqueue { source, .. }) =
            self
        else {
            return false;
        };
        matches!(
            source.rdkafka_error_code(),
            Some(
                RDKafkaErrorCode::ProducerFenced
                    | RDKafkaErrorCode::InvalidProducerEpoch
                    | RDKafkaErrorCode::UnknownProducerId
                    | RDKafkaErrorCode::InvalidProducerIdMapping
                    | RDKafkaErrorCode::OutOfOrderSequenceNumber
                    | RDKafkaErrorCode::Fatal
            )
        )
    }
}

pub struct KafkaSink {
    config: ClientConfig,
    producer: FutureProducer,
    /// Indexed by `Kind::index()`.
    topics: [String; 3],
}

/// The producer config for `brokers` and `[sink.kafka]`, over tollgate's defaults.
pub fn client_config(brokers: &str, options: &BTreeMap<String, String>) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers);
    for (k, v) in DEFAULTS {
        config.set(*k, *v);
    }
    for (k, v) in options {
        config.set(k, v);
    }
    config
}

/// Checks `[sink.kafka]` without connecting: every option must be one librdkafka knows with a
/// value it accepts, and the delivery guarantee must stay. `Err((option, message))`.
pub fn check_options(
    brokers: &str,
    options: &BTreeMap<String, String>,
) -> Result<(), (String, String)> {
    for (key, allowed) in GUARANTEES {
        if let Some(v) = options.get(*key)
            && !allowed.contains(&v.as_str())
        {
            return Err((
                key.to_string(),
                format!(
                    "tollgate requires {key} = {:?}: a record is acknowledged only once the broker has it",
                    allowed[0]
                ),
            ));
        }
    }
    let config = client_config(brokers, options);
    match config.create_native_config() {
        Ok(_) => Ok(()),
        Err(KafkaError::ClientConfig(_, message, key, _)) => Err((key, message)),
        Err(e) => Err(("?".to_string(), e.to_string())),
    }
}

impl KafkaSink {
    /// Creates the producer. It connects in the background: an unreachable broker fails
    /// writes (which the batcher retries), not startup.
    pub fn from_config(config: &SinkConfig) -> Result<KafkaSink, KafkaSinkError> {
        let SinkConfig::Kafka {
            brokers,
            topic_logs,
            topic_metrics,
            topic_traces,
            kafka,
        } = config
        else {
            unreachable!("KafkaSink::from_config called with another sink's config");
        };
        let config = client_config(brokers, kafka);
        let producer = config.create().map_err(KafkaSinkError::Create)?;
        let mut topics: [String; 3] = Default::default();
        topics[Kind::Logs.index()] = topic_logs.clone();
        topics[Kind::Metrics.index()] = topic_metrics.clone();
        topics[Kind::Traces.index()] = topic_traces.clone();
        Ok(KafkaSink {
            config,
            producer,
            topics,
        })
    }

    /// Produces every record of the batch and waits for all delivery reports. `Ok` only if
    /// the broker acknowledged each one.
    pub async fn write(&mut self, batch: Arc<Batch>) -> Result<(), SinkError> {
        match self.produce_all(&batch).await {
            Ok(()) => Ok(()),
            Err(e) => {
                self.recover(&e)?;
                Err(e.into())
            }
        }
    }

    async fn produce_all(&self, batch: &Batch) -> Result<(), KafkaSinkError> {
        let topic = self.topics[batch.kind.index()].as_str();
        let mut in_flight: VecDeque<DeliveryFuture> = VecDeque::with_capacity(batch.records());
        let mut first_error: Option<KafkaSinkError> = None;
        'parts: for part in &batch.parts {
            let env = &part.envelope;
            let key = env.account_id.0.to_string();
            let mut headers = OwnedHeaders::new_with_capacity(5)
                .insert(Header {
                    key: "account_id",
                    value: Some(key.as_str()),
                })
                .insert(Header {
                    key: "token_id",
                    value: Some(&*env.token_id.0),
                })
                .insert(Header {
                    key: "kind",
                    value: Some(env.kind.as_str()),
                });
            if let Some(log_type) = &env.log_type {
                headers = headers.insert(Header {
                    key: "log_type",
                    value: Some(&**log_type),
                });
            }
            let headers = headers.insert(Header {
                key: "content_type",
                value: Some(env.content_type.as_str()),
            });
            for payload in &part.payloads {
                let mut record = FutureRecord::to(topic)
                    .key(key.as_str())
                    .payload(payload.as_ref())
                    .headers(headers.clone());
                loop {
                    match self.producer.send_result(record) {
                        Ok(delivery) => {
                            in_flight.push_back(delivery);
                            break;
                        }
                        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                            // The local queue is full: wait for the oldest report to free room.
                            record = r;
                            match in_flight.pop_front() {
                                Some(oldest) => {
                                    if let Err(e) = settle(oldest, topic).await {
                                        first_error.get_or_insert(e);
                                    }
                                }
                                None => tokio::time::sleep(Duration::from_millis(5)).await,
                            }
                            if first_error.is_some() {
                                break 'parts;
                            }
                        }
                        Err((source, _)) => {
                            first_error = Some(KafkaSinkError::Enqueue {
                                topic: topic.to_string(),
                                source,
                            });
                            break 'parts;
                        }
                    }
                }
            }
        }
        // Every enqueued message is awaited, even after a failure, so none is left in the
        // producer's queue when the batcher retries the batch.
        for delivery in in_flight {
            if let Err(e) = settle(delivery, topic).await {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }

    /// An idempotent producer can end up in a state it never leaves by itself: a fatal
    /// error, or a broker that fences its producer id after an outage (seen with Tansu:
    /// every later batch fails with `ProducerFenced`). Start a fresh producer (a new
    /// producer id) then; the batcher's retry of this batch goes through it.
    fn recover(&mut self, error: &KafkaSinkError) -> Result<(), SinkError> {
        let fatal = self.producer.client().fatal_error();
        if fatal.is_none() && !error.needs_new_producer() {
            return Ok(());
        }
        tracing::warn!(sink = "kafka", error = %error, fatal = ?fatal,
            "the producer cannot recover by itself; starting a new one");
        self.producer = self
            .config
            .create()
            .map_err(|e| SinkError::from(KafkaSinkError::Create(e)))?;
        Ok(())
    }

    /// Every `write` already waited for its delivery reports; this only drains stragglers
    /// of a failed batch (bounded, so shutdown cannot hang on a dead broker).
    pub async fn flush(&mut self) -> Result<(), SinkError> {
        let producer = self.producer.clone();
        tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(5)))
            .await?
            .map_err(|e| {
                SinkError::from(KafkaSinkError::Delivery {
                    topic: "*".to_string(),
                    source: e,
                })
            })
    }
}

async fn settle(delivery: DeliveryFuture, topic: &str) -> Result<(), KafkaSinkError> {
    match delivery.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((source, _))) => Err(KafkaSinkError::Delivery {
            topic: topic.to_string(),
            source,
        }),
        Err(_) => Err(KafkaSinkError::Canceled),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn user_options_override_defaults() {
        let c = client_config("b:9092", &opts(&[("linger.ms", "50")]));
        assert_eq!(c.get("linger.ms"), Some("50"));
        assert_eq!(c.get("acks"), Some("all"));
        assert_eq!(c.get("bootstrap.servers"), Some("b:9092"));
    }

    #[test]
    fn unknown_option_is_named() {
        let (key, _) = check_options("b:9092", &opts(&[("linger.mss", "5")])).unwrap_err();
        assert_eq!(key, "linger.mss");
    }

    #[test]
    fn bad_value_is_named() {
        let (key, _) =
            check_options("b:9092", &opts(&[("compression.type", "brotli")])).unwrap_err();
        assert_eq!(key, "compression.type");
    }

    #[test]
    fn weakening_acks_is_refused() {
        let (key, _) = check_options("b:9092", &opts(&[("acks", "1")])).unwrap_err();
        assert_eq!(key, "acks");
        assert!(check_options("b:9092", &opts(&[("acks", "-1")])).is_ok());
    }
}
