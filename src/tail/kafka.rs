//! `[tail] source = "kafka"`: in a fleet of gateways writing to Kafka, a tail must see what
//! *every* gateway accepted, not only its own. One consumer per gateway reads the Kafka
//! sink's topics from their end and offers what it reads to the same tap the local
//! forward path would; the tails fan out from there. The consumer runs only while a tail
//! is open (and `LINGER` after the last one closes), so an idle gateway reads nothing.
//!
//! Each message carries its envelope in headers (DESIGN §3: `account_id`, `token_id`,
//! `kind`, `log_type`, `content_type`); one without them was not written by tollgate and
//! is skipped (counted in `tollgate_tail_kafka_errors_total`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::config::SinkConfig;
use crate::forward::tap::Tap;
use crate::forward::{ContentType, Envelope, Payloads, RecordBatch};
use crate::model::{AccountId, Kind, TokenId};
use crate::telemetry::TailMetrics;

/// How long the consumer keeps reading after the last tail closes: a client that
/// reconnects does not pay for a new consumer.
const LINGER: Duration = Duration::from_secs(10);

/// Messages gathered into one tap batch when they are already waiting: a burst reaches
/// the tails as a few batches, not thousands.
const MAX_GATHER: usize = 1000;

/// `[sink.kafka]` options that say how to reach the brokers, which a consumer needs too;
/// the rest are producer settings.
const CONNECTION_OPTIONS: &[&str] = &["security.", "sasl.", "ssl.", "client.", "broker."];

/// Where the tail source reads: the Kafka sink's brokers and topics.
pub struct KafkaTailSource {
    config: ClientConfig,
    topics: Vec<String>,
}

impl KafkaTailSource {
    /// The source for `sink`, or `None` if the sink is not Kafka (`check-config` refuses
    /// `source = "kafka"` then).
    pub fn for_sink(sink: &SinkConfig) -> Option<KafkaTailSource> {
        let SinkConfig::Kafka {
            brokers,
            topic_logs,
            topic_metrics,
            topic_traces,
            kafka,
        } = sink
        else {
            return None;
        };
        Some(KafkaTailSource {
            config: consumer_config(brokers, kafka),
            topics: vec![
                topic_logs.clone(),
                topic_metrics.clone(),
                topic_traces.clone(),
            ],
        })
    }

    /// Reads while someone tails, until `stop`.
    pub async fn run(self, tap: Arc<Tap>, metrics: TailMetrics, stop: CancellationToken) {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tap.until_watched() => {}
            }
            let result = self.read_while_watched(&tap, &metrics, &stop).await;
            metrics.kafka_idle();
            match result {
                Ok(()) => backoff.reset(),
                Err(e) => {
                    metrics.kafka_failed(&e);
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(backoff.next_delay()) => {}
                    }
                }
            }
        }
    }

    async fn read_while_watched(
        &self,
        tap: &Tap,
        metrics: &TailMetrics,
        stop: &CancellationToken,
    ) -> Result<(), KafkaError> {
        let consumer: Arc<StreamConsumer> = Arc::new(self.config.create()?);
        let assignment = {
            let consumer = Arc::clone(&consumer);
            let topics = self.topics.clone();
            tokio::task::spawn_blocking(move || at_the_end(&consumer, &topics))
                .await
                .expect("metadata lookup does not panic")?
        };
        consumer.assign(&assignment)?;
        metrics.kafka_reading(assignment.count());

        let mut unwatched_since: Option<Instant> = None;
        let mut check = tokio::time::interval(Duration::from_secs(1));
        check.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = check.tick() => {
                    if tap.is_watched() {
                        unwatched_since = None;
                    } else if unwatched_since.get_or_insert_with(Instant::now).elapsed() >= LINGER {
                        tracing::info!("tail source: no tail open; stopped reading Kafka");
                        return Ok(());
                    }
                }
                first = consumer.recv() => {
                    let mut gathered = Gathered::default();
                    gathered.take(first, tap, metrics);
                    // What is already waiting joins this round, without waiting for more.
                    for _ in 1..MAX_GATHER {
                        match consumer.recv().now_or_never() {
                            Some(next) => gathered.take(next, tap, metrics),
                            None => break,
                        }
                    }
                    gathered.flush(tap);
                }
            }
        }
    }
}

/// Every partition of `topics`, each from its current end: a tail shows what arrives
/// from now on.
fn at_the_end(
    consumer: &StreamConsumer,
    topics: &[String],
) -> Result<TopicPartitionList, KafkaError> {
    let mut list = TopicPartitionList::new();
    for topic in topics {
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
        for t in metadata.topics() {
            for p in t.partitions() {
                list.add_partition_offset(t.name(), p.id(), Offset::End)?;
            }
        }
    }
    Ok(list)
}

/// Messages read in one round, as tap batches: consecutive messages with the same
/// envelope share one batch.
#[derive(Default)]
struct Gathered {
    current: Option<RecordBatch>,
}

impl Gathered {
    fn take(
        &mut self,
        message: Result<BorrowedMessage<'_>, KafkaError>,
        tap: &Tap,
        metrics: &TailMetrics,
    ) {
        let message = match message {
            Ok(m) => m,
            Err(e) => {
                metrics.kafka_consumer_error(&e);
                return;
            }
        };
        let (Some(envelope), Some(payload)) = (envelope(&message), message.payload()) else {
            metrics.kafka_message_without_headers();
            return;
        };
        let payload = Bytes::copy_from_slice(payload);
        if let Some(batch) = &mut self.current
            && same(&batch.envelope, &envelope)
        {
            batch.payloads.push(payload);
            return;
        }
        self.flush(tap);
        self.current = Some(RecordBatch {
            envelope,
            payloads: Payloads::from_buf([payload]),
        });
    }

    fn flush(&mut self, tap: &Tap) {
        if let Some(batch) = self.current.take() {
            tap.offer(batch);
        }
    }
}

fn same(a: &Envelope, b: &Envelope) -> bool {
    a.kind == b.kind
        && a.account_id == b.account_id
        && a.token_id == b.token_id
        && a.log_type == b.log_type
        && a.content_type == b.content_type
}

/// The envelope the Kafka sink wrote into the message's headers.
fn envelope(message: &BorrowedMessage<'_>) -> Option<Envelope> {
    let headers = message.headers()?;
    let mut account_id = None;
    let mut token_id = None;
    let mut kind = None;
    let mut log_type = None;
    let mut content_type = None;
    for header in headers.iter() {
        let Some(value) = header.value.and_then(|v| std::str::from_utf8(v).ok()) else {
            continue;
        };
        match header.key {
            "account_id" => account_id = value.parse().ok().map(AccountId),
            "token_id" => token_id = Some(TokenId(value.into())),
            "kind" => kind = Kind::parse(value),
            "log_type" => log_type = Some(value.into()),
            "content_type" => content_type = ContentType::parse(value),
            _ => {}
        }
    }
    Some(Envelope {
        kind: kind?,
        account_id: account_id?,
        token_id: token_id?,
        log_type,
        content_type: content_type?,
    })
}

/// A consumer that only reads what it is assigned: no group membership, no commits.
fn consumer_config(brokers: &str, sink_options: &BTreeMap<String, String>) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("group.id", "tollgate-tail")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false");
    for (k, v) in sink_options {
        if CONNECTION_OPTIONS
            .iter()
            .any(|prefix| k.starts_with(prefix))
        {
            config.set(k, v);
        }
    }
    config
}
