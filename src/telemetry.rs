//! Every metric of DESIGN §5, written here once, and the logging setup.
//!
//! `Telemetry` owns the registry and renders it; each part gets a small struct of the
//! handles it writes (`IngestMetrics`, `TokenMetrics`, `SourceMetrics`, `ForwardMetrics`, …),
//! handed out by the composition root, never the whole `Telemetry`. Label handles are
//! resolved when `Telemetry` is built (`with_label_values` takes a lock), so the request
//! path only touches atomics. Label values come from enums' `as_str()`: no token, and no
//! raw account id, can ever become a label. Each `Telemetry` owns its registry, so several
//! servers in one test process never share counters.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::config::{LogConfig, LogFormat};
use crate::model::{AuthFailure, Kind, RejectReason, Route};

/// Status codes the ingest routes answer; each gets a pre-resolved counter per route.
const CODES: [u16; 14] = [
    200, 204, 400, 401, 403, 404, 405, 408, 411, 413, 415, 429, 500, 503,
];

/// Per-route request metrics, resolved once.
#[derive(Clone)]
pub struct RouteMetrics {
    route: Route,
    requests: IntCounterVec,
    by_code: [IntCounter; CODES.len()],
    duration: Histogram,
}

impl RouteMetrics {
    /// Counts one answered request and its latency.
    pub fn observe(&self, code: u16, elapsed: Duration) {
        match CODES.iter().position(|&c| c == code) {
            Some(i) => self.by_code[i].inc(),
            None => self
                .requests
                .with_label_values(&[self.route.as_str(), &code.to_string()])
                .inc(),
        }
        self.duration.observe(elapsed.as_secs_f64());
    }
}

/// Per-kind ingest counters.
#[derive(Clone)]
pub struct KindMetrics {
    pub bytes: IntCounter,
    pub records: IntCounter,
    rejected: [IntCounter; RejectReason::ALL.len()],
}

impl KindMetrics {
    pub fn rejected(&self, reason: RejectReason, n: u64) {
        if n > 0 {
            self.rejected[reason as usize].inc_by(n);
        }
    }
}

/// The ingest routes' metrics: requests by route and code, records by kind.
#[derive(Clone)]
pub struct IngestMetrics {
    routes: Vec<RouteMetrics>,
    kinds: Vec<KindMetrics>,
}

impl IngestMetrics {
    pub fn route(&self, route: Route) -> &RouteMetrics {
        &self.routes[route as usize]
    }

    pub fn kind(&self, kind: Kind) -> &KindMetrics {
        &self.kinds[kind.index()]
    }
}

/// The serving token table's gauges. The age gauge is computed when `/metrics` is
/// rendered, from the last confirmation stored here.
#[derive(Clone)]
pub struct TableMetrics {
    size: IntGauge,
    version: IntGauge,
    /// When the serving table was last confirmed current (epoch ms), for the age gauge.
    fresh_at_ms: Arc<AtomicU64>,
}

impl TableMetrics {
    /// Records that a token table was just built or confirmed current by its source.
    pub fn fresh(&self, size: usize, version: u64) {
        self.confirmed(size, version, SystemTime::now());
    }

    /// Records the serving table and when its source last confirmed it current: now for
    /// a fresh load or an answered poll, the file's time for a persisted snapshot.
    pub fn confirmed(&self, size: usize, version: u64, at: SystemTime) {
        self.size.set(i64::try_from(size).unwrap_or(i64::MAX));
        self.version.set(i64::try_from(version).unwrap_or(i64::MAX));
        self.fresh_at_ms
            .store(epoch_ms(at).max(1), Ordering::Relaxed);
    }
}

/// What the token table writes: refused tokens and the table it serves.
#[derive(Clone)]
pub struct TokenMetrics {
    auth_failures: Vec<IntCounter>,
    pub table: TableMetrics,
}

impl TokenMetrics {
    /// Counts a refused token. Logged at debug without the token, which the caller never passes.
    pub fn auth_failed(&self, reason: AuthFailure) {
        self.auth_failures[reason as usize].inc();
        tracing::debug!(reason = reason.as_str(), "token refused");
    }
}

/// What a token source (the file watcher, the feed follower) writes:
/// `tollgate_token_reloads_total{result}` and the table's freshness.
#[derive(Clone)]
pub struct SourceMetrics {
    pub reloads_ok: IntCounter,
    /// A failed reload keeps the previous table serving.
    pub reloads_error: IntCounter,
    pub table: TableMetrics,
}

/// The disk spool's metrics, each written by one part of the spool.
#[derive(Clone)]
pub struct SpoolMetrics {
    /// Frame bytes spooled and not yet acknowledged by the sink (`spool::Unacked`).
    pub bytes: IntGauge,
    /// Records spooled and not yet acknowledged by the sink (`spool::Unacked`).
    pub records: IntGauge,
    /// One group commit (the writer).
    pub fsync: Histogram,
    /// What the reader met on its way through the spool.
    pub read: SpoolReadMetrics,
}

/// The spool reader's counters.
#[derive(Clone)]
pub struct SpoolReadMetrics {
    pub replayed_records: IntCounter,
    /// Records read back from disk because the writer's in-memory handoff was full.
    pub read_back_records: IntCounter,
    pub corrupt_records: IntCounter,
    pub torn_tails: IntCounter,
}

/// The miss cache's outcomes: `tollgate_token_miss_lookups_total{result}`.
#[derive(Clone)]
pub struct MissMetrics {
    /// The control plane knows the digest.
    pub found: IntCounter,
    /// The control plane answered 404.
    pub unknown: IntCounter,
    /// The control plane could not be asked or answered something else; not cached.
    pub error: IntCounter,
    /// Over `tokens.miss_lookups_per_sec`: refused without asking.
    pub limited: IntCounter,
}

/// Usage reports sent to the control plane: `tollgate_usage_flushes_total{result}`.
#[derive(Clone)]
pub struct UsageMetrics {
    pub flushed: IntCounter,
    /// A failed flush keeps its counts for the next one.
    pub failed: IntCounter,
}

/// One listener's connection metrics.
#[derive(Clone)]
pub struct ConnMetrics {
    listener: &'static str,
    pub open: IntGauge,
    errors: IntCounterVec,
    /// Unread request bodies drained after an early answer, to their end.
    pub drains_complete: IntCounter,
    /// Unread request bodies past the drain's bounds: the connection was closed.
    pub drains_cut: IntCounter,
}

impl ConnMetrics {
    /// Counts a connection that ended badly; `reason` is one of a fixed set of literals.
    pub fn error(&self, reason: &'static str) {
        self.errors
            .with_label_values(&[self.listener, reason])
            .inc();
    }
}

/// Per-sink delivery metrics.
#[derive(Clone)]
pub struct SinkMetrics {
    pub batches_ok: IntCounter,
    pub batches_error: IntCounter,
    pub records: IntCounter,
    pub latency: Histogram,
}

/// What the batcher writes: its sink's delivery metrics and the queue's size.
#[derive(Clone)]
pub struct BatcherMetrics {
    pub sink: SinkMetrics,
    /// Memory held by records accepted but not yet written by the sink.
    pub queue_bytes: IntGauge,
}

/// Everything the forwarding path writes.
#[derive(Clone)]
pub struct ForwardMetrics {
    pub batcher: BatcherMetrics,
    pub spool: SpoolMetrics,
}

/// The metrics registry; it hands each part the handles it needs and renders `/metrics`.
pub struct Telemetry {
    registry: Registry,
    ingest: IngestMetrics,
    tokens: TokenMetrics,
    token_table_age: IntGauge,
    reloads_ok: IntCounter,
    reloads_error: IntCounter,
    miss_lookups: MissMetrics,
    usage_flushes: UsageMetrics,
    queue_bytes: IntGauge,
    spool: SpoolMetrics,
    connections_open: IntGaugeVec,
    connection_errors: IntCounterVec,
    connection_drains: IntCounterVec,
    /// Request body bytes being read now, against `server.max_inflight_body_bytes`.
    pub inflight_body_bytes: IntGauge,
    sink_batches: IntCounterVec,
    sink_records: IntCounterVec,
    sink_latency: HistogramVec,
    sink_dead_letters: IntCounterVec,
    tail: TailMetrics,
}

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
    pub kafka_partitions: IntGauge,
    /// `[tail] source = "kafka"`: consumer errors and messages without tollgate's headers.
    pub kafka_errors: IntCounter,
}

impl TailMetrics {
    /// `reason`: `unauthorized`, `forbidden`, `expired`, `bad_request`, `busy`, `disabled`.
    pub fn refused(&self, reason: &'static str) {
        self.refused.with_label_values(&[reason]).inc();
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    pub fn new() -> Telemetry {
        let registry = Registry::new();
        let reg = |c: Box<dyn prometheus::core::Collector>| {
            registry
                .register(c)
                .expect("metric names in telemetry.rs are unique and valid");
        };

        let requests = IntCounterVec::new(
            Opts::new(
                "tollgate_requests_total",
                "Requests answered, by route and status code.",
            ),
            &["route", "code"],
        )
        .expect("valid metric");
        let durations = HistogramVec::new(
            HistogramOpts::new(
                "tollgate_request_duration_seconds",
                "Time from request head to response, by route.",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5, 5.0, 10.0,
            ]),
            &["route"],
        )
        .expect("valid metric");
        let routes = Route::ALL
            .iter()
            .map(|&route| RouteMetrics {
                route,
                requests: requests.clone(),
                by_code: CODES
                    .map(|c| requests.with_label_values(&[route.as_str(), &c.to_string()])),
                duration: durations.with_label_values(&[route.as_str()]),
            })
            .collect();

        let ingested_bytes = IntCounterVec::new(
            Opts::new(
                "tollgate_ingested_bytes_total",
                "Accepted payload bytes (after decompression), by kind.",
            ),
            &["kind"],
        )
        .expect("valid metric");
        let ingested_records = IntCounterVec::new(
            Opts::new(
                "tollgate_ingested_records_total",
                "Accepted records, by kind.",
            ),
            &["kind"],
        )
        .expect("valid metric");
        let rejected = IntCounterVec::new(
            Opts::new(
                "tollgate_rejected_records_total",
                "Records refused inside an otherwise accepted request, by kind and reason.",
            ),
            &["kind", "reason"],
        )
        .expect("valid metric");
        let kinds = Kind::ALL
            .iter()
            .map(|&k| KindMetrics {
                bytes: ingested_bytes.with_label_values(&[k.as_str()]),
                records: ingested_records.with_label_values(&[k.as_str()]),
                rejected: RejectReason::ALL
                    .map(|r| rejected.with_label_values(&[k.as_str(), r.as_str()])),
            })
            .collect();

        let auth = IntCounterVec::new(
            Opts::new(
                "tollgate_auth_failures_total",
                "Refused shipping tokens, by reason.",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let auth_failures = AuthFailure::ALL
            .iter()
            .map(|r| auth.with_label_values(&[r.as_str()]))
            .collect();

        let token_table_size = IntGauge::new(
            "tollgate_token_table_size",
            "Tokens in the serving table (enabled and disabled).",
        )
        .expect("valid metric");
        let token_table_version = IntGauge::new(
            "tollgate_token_table_version",
            "Version of the serving token snapshot.",
        )
        .expect("valid metric");
        let token_table_age = IntGauge::new(
            "tollgate_token_table_age_seconds",
            "Seconds since the serving table was last confirmed current by its source.",
        )
        .expect("valid metric");
        let reloads = IntCounterVec::new(
            Opts::new(
                "tollgate_token_reloads_total",
                "Token table reloads; an error keeps the previous table serving.",
            ),
            &["result"],
        )
        .expect("valid metric");

        let miss_lookups = IntCounterVec::new(
            Opts::new(
                "tollgate_token_miss_lookups_total",
                "Unknown tokens looked up at the control plane, by result \
                 (found, unknown, error, limited = refused without asking).",
            ),
            &["result"],
        )
        .expect("valid metric");
        let token_miss_lookups = MissMetrics {
            found: miss_lookups.with_label_values(&["found"]),
            unknown: miss_lookups.with_label_values(&["unknown"]),
            error: miss_lookups.with_label_values(&["error"]),
            limited: miss_lookups.with_label_values(&["limited"]),
        };
        let usage_flushes_vec = IntCounterVec::new(
            Opts::new(
                "tollgate_usage_flushes_total",
                "Usage reports (last use, volume) sent to the control plane, by result.",
            ),
            &["result"],
        )
        .expect("valid metric");
        let usage_flushes = UsageMetrics {
            flushed: usage_flushes_vec.with_label_values(&["ok"]),
            failed: usage_flushes_vec.with_label_values(&["error"]),
        };

        let queue_bytes = IntGauge::new(
            "tollgate_queue_bytes",
            "Memory held by records accepted but not yet written by the sink: payload and bookkeeping.",
        )
        .expect("valid metric");
        let spool = SpoolMetrics {
            bytes: IntGauge::new(
                "tollgate_spool_bytes",
                "Bytes in the disk spool not yet acknowledged by the sink.",
            )
            .expect("valid metric"),
            records: IntGauge::new(
                "tollgate_spool_records",
                "Records in the disk spool not yet acknowledged by the sink.",
            )
            .expect("valid metric"),
            fsync: Histogram::with_opts(
                HistogramOpts::new(
                    "tollgate_spool_fsync_seconds",
                    "Time of one group commit: write plus fdatasync.",
                )
                .buckets(prometheus::exponential_buckets(0.0001, 2.0, 16).expect("valid buckets")),
            )
            .expect("valid metric"),
            read: SpoolReadMetrics {
                replayed_records: IntCounter::new(
                    "tollgate_spool_replayed_records_total",
                    "Records found unacknowledged in the spool at boot and replayed to the sink.",
                )
                .expect("valid metric"),
                read_back_records: IntCounter::new(
                    "tollgate_spool_read_back_records_total",
                    "Records read back from the spool after boot because the in-memory handoff \
                     to the batcher was full (normally they are handed on from memory).",
                )
                .expect("valid metric"),
                corrupt_records: IntCounter::new(
                    "tollgate_spool_corrupt_records_total",
                    "Spool frames skipped because they failed their CRC or framing check.",
                )
                .expect("valid metric"),
                torn_tails: IntCounter::new(
                    "tollgate_spool_torn_tails_total",
                    "Torn segment tails (a crash mid-write) truncated during replay.",
                )
                .expect("valid metric"),
            },
        };
        let connections_open = IntGaugeVec::new(
            Opts::new(
                "tollgate_connections_open",
                "Open client connections, by listener.",
            ),
            &["listener"],
        )
        .expect("valid metric");
        let connection_errors = IntCounterVec::new(
            Opts::new(
                "tollgate_connection_errors_total",
                "Connections ended by a protocol error or timeout, by listener and reason.",
            ),
            &["listener", "reason"],
        )
        .expect("valid metric");
        let inflight_body_bytes = IntGauge::new(
            "tollgate_inflight_body_bytes",
            "Request body bytes being read now (declared Content-Length, or received so far \
             without one), against server.max_inflight_body_bytes.",
        )
        .expect("valid metric");
        let connection_drains = IntCounterVec::new(
            Opts::new(
                "tollgate_connection_drains_total",
                "Request bodies left unread by an early answer (413, 401, 503) and read and \
                 discarded so the client can read the answer (lingering close), by listener \
                 and result: complete (the connection stays open), cut (over the drain's \
                 bounds: the connection was closed).",
            ),
            &["listener", "result"],
        )
        .expect("valid metric");

        let sink_batches = IntCounterVec::new(
            Opts::new(
                "tollgate_sink_batches_total",
                "Batches handed to the sink, by result.",
            ),
            &["sink", "result"],
        )
        .expect("valid metric");
        let sink_records = IntCounterVec::new(
            Opts::new(
                "tollgate_sink_records_total",
                "Records written by the sink.",
            ),
            &["sink"],
        )
        .expect("valid metric");
        let sink_latency = HistogramVec::new(
            HistogramOpts::new(
                "tollgate_sink_latency_seconds",
                "Time the sink took to write one batch.",
            )
            .buckets(prometheus::exponential_buckets(0.0001, 4.0, 10).expect("valid buckets")),
            &["sink"],
        )
        .expect("valid metric");

        reg(Box::new(requests));
        reg(Box::new(durations));
        reg(Box::new(ingested_bytes));
        reg(Box::new(ingested_records));
        reg(Box::new(rejected));
        reg(Box::new(auth));
        reg(Box::new(token_table_size.clone()));
        reg(Box::new(token_table_version.clone()));
        reg(Box::new(token_table_age.clone()));
        reg(Box::new(reloads.clone()));
        reg(Box::new(miss_lookups));
        reg(Box::new(usage_flushes_vec));
        reg(Box::new(queue_bytes.clone()));
        reg(Box::new(spool.bytes.clone()));
        reg(Box::new(spool.records.clone()));
        reg(Box::new(spool.fsync.clone()));
        reg(Box::new(spool.read.replayed_records.clone()));
        reg(Box::new(spool.read.read_back_records.clone()));
        reg(Box::new(spool.read.corrupt_records.clone()));
        reg(Box::new(spool.read.torn_tails.clone()));
        reg(Box::new(connections_open.clone()));
        reg(Box::new(connection_errors.clone()));
        reg(Box::new(connection_drains.clone()));
        reg(Box::new(inflight_body_bytes.clone()));
        reg(Box::new(sink_batches.clone()));
        reg(Box::new(sink_records.clone()));
        reg(Box::new(sink_latency.clone()));
        let sink_dead_letters = IntCounterVec::new(
            Opts::new(
                "tollgate_sink_dead_letter_records_total",
                "Records the receiver refused for good, written to a dead-letter file.",
            ),
            &["sink"],
        )
        .expect("valid metric");
        reg(Box::new(sink_dead_letters.clone()));
        let tail = TailMetrics {
            subscribers: IntGauge::new(
                "tollgate_tail_subscribers",
                "Live tails (GET /v1/tail) open now.",
            )
            .expect("valid metric"),
            records: IntCounter::new(
                "tollgate_tail_records_total",
                "Records written to live tails' clients.",
            )
            .expect("valid metric"),
            dropped: IntCounter::new(
                "tollgate_tail_dropped_total",
                "Records live tails lost because their client read too slowly.",
            )
            .expect("valid metric"),
            refused: IntCounterVec::new(
                Opts::new(
                    "tollgate_tail_refused_total",
                    "Live tails refused, by reason (unauthorized, forbidden, expired, \
                     bad_request, busy, disabled).",
                ),
                &["reason"],
            )
            .expect("valid metric"),
            kafka_partitions: IntGauge::new(
                "tollgate_tail_kafka_partitions",
                "Kafka partitions the tail source reads now (0 while nobody tails).",
            )
            .expect("valid metric"),
            kafka_errors: IntCounter::new(
                "tollgate_tail_kafka_errors_total",
                "Tail source consumer errors and messages without tollgate's headers.",
            )
            .expect("valid metric"),
        };
        reg(Box::new(tail.subscribers.clone()));
        reg(Box::new(tail.kafka_partitions.clone()));
        reg(Box::new(tail.kafka_errors.clone()));
        reg(Box::new(tail.records.clone()));
        reg(Box::new(tail.dropped.clone()));
        reg(Box::new(tail.refused.clone()));

        Telemetry {
            registry,
            ingest: IngestMetrics { routes, kinds },
            tokens: TokenMetrics {
                auth_failures,
                table: TableMetrics {
                    size: token_table_size,
                    version: token_table_version,
                    fresh_at_ms: Arc::new(AtomicU64::new(0)),
                },
            },
            token_table_age,
            reloads_ok: reloads.with_label_values(&["ok"]),
            reloads_error: reloads.with_label_values(&["error"]),
            miss_lookups: token_miss_lookups,
            usage_flushes,
            queue_bytes,
            spool,
            connections_open,
            connection_errors,
            connection_drains,
            inflight_body_bytes,
            sink_batches,
            sink_records,
            sink_latency,
            sink_dead_letters,
            tail,
        }
    }

    /// The live tails' handles.
    pub fn tail(&self) -> TailMetrics {
        self.tail.clone()
    }

    /// The ingest routes' handles.
    pub fn ingest(&self) -> IngestMetrics {
        self.ingest.clone()
    }

    /// The token table's handles.
    pub fn tokens(&self) -> TokenMetrics {
        self.tokens.clone()
    }

    /// A token source's handles (file watcher or feed follower).
    pub fn token_source(&self) -> SourceMetrics {
        SourceMetrics {
            reloads_ok: self.reloads_ok.clone(),
            reloads_error: self.reloads_error.clone(),
            table: self.tokens.table.clone(),
        }
    }

    /// The miss cache's handles.
    pub fn miss_lookups(&self) -> MissMetrics {
        self.miss_lookups.clone()
    }

    /// The usage flusher's handles.
    pub fn usage_flushes(&self) -> UsageMetrics {
        self.usage_flushes.clone()
    }

    /// The forwarding path's handles, for the sink called `sink`.
    pub fn forward(&self, sink: &'static str) -> ForwardMetrics {
        ForwardMetrics {
            batcher: BatcherMetrics {
                sink: self.sink(sink),
                queue_bytes: self.queue_bytes.clone(),
            },
            spool: self.spool(),
        }
    }

    /// The disk spool's handles.
    pub fn spool(&self) -> SpoolMetrics {
        self.spool.clone()
    }

    /// Handles for one listener's connections (`public` or `admin`).
    pub fn connections(&self, listener: &'static str) -> ConnMetrics {
        ConnMetrics {
            listener,
            open: self.connections_open.with_label_values(&[listener]),
            errors: self.connection_errors.clone(),
            drains_complete: self
                .connection_drains
                .with_label_values(&[listener, "complete"]),
            drains_cut: self.connection_drains.with_label_values(&[listener, "cut"]),
        }
    }

    /// Handles for one sink, resolved once when the sink is built.
    fn sink(&self, name: &'static str) -> SinkMetrics {
        SinkMetrics {
            batches_ok: self.sink_batches.with_label_values(&[name, "ok"]),
            batches_error: self.sink_batches.with_label_values(&[name, "error"]),
            records: self.sink_records.with_label_values(&[name]),
            latency: self.sink_latency.with_label_values(&[name]),
        }
    }

    /// The dead-letter counter of one sink.
    pub fn dead_letter_records(&self, sink: &'static str) -> IntCounter {
        self.sink_dead_letters.with_label_values(&[sink])
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> Vec<u8> {
        let fresh = self.tokens.table.fresh_at_ms.load(Ordering::Relaxed);
        if fresh > 0 {
            let age_s = now_ms().saturating_sub(fresh) / 1000;
            self.token_table_age
                .set(i64::try_from(age_s).unwrap_or(i64::MAX));
        }
        let mut out = Vec::with_capacity(16 * 1024);
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("encoding to a Vec cannot fail");
        out
    }
}

fn now_ms() -> u64 {
    epoch_ms(SystemTime::now())
}

fn epoch_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

// === control plane ===

/// The control plane's metrics, on its own listener's `/metrics`. Route labels are the
/// matched path templates (`/v1/log-shipping/tokens/{id}`), a fixed set; rule labels are
/// the `errorCode`s, also fixed.
pub struct ControlTelemetry {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    /// Refusals by `errorCode`: how often each product rule says no.
    refusals: IntCounterVec,
    pub feed_version: IntGauge,
    /// Long polls on `/v1/feed/changes` waiting right now: roughly the connected gateways.
    pub feed_waiting: IntGauge,
    /// Single-digest lookups from gateways' miss caches, `found` or `not_found`.
    pub feed_lookups: IntCounterVec,
    /// Page logins by outcome: `ok`, `failed` (unknown email or wrong password),
    /// `limited` (too many failures), `suspended`.
    pub logins: IntCounterVec,
}

impl Default for ControlTelemetry {
    fn default() -> Self {
        ControlTelemetry::new()
    }
}

impl ControlTelemetry {
    pub fn new() -> ControlTelemetry {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "tollgate_control_requests_total",
                "Control-plane requests answered, by route template and status code.",
            ),
            &["route", "code"],
        )
        .expect("valid metric");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "tollgate_control_request_duration_seconds",
                "Control-plane request latency (long polls included), by route template.",
            )
            .buckets(vec![
                0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 60.0,
            ]),
            &["route"],
        )
        .expect("valid metric");
        let refusals = IntCounterVec::new(
            Opts::new(
                "tollgate_control_refusals_total",
                "Control-plane calls refused, by errorCode (the rule or check that refused).",
            ),
            &["code"],
        )
        .expect("valid metric");
        let feed_version = IntGauge::new(
            "tollgate_control_feed_version",
            "The control plane's current token feed version.",
        )
        .expect("valid metric");
        let feed_waiting = IntGauge::new(
            "tollgate_control_feed_waiting",
            "Long polls on /v1/feed/changes waiting for a change.",
        )
        .expect("valid metric");
        let feed_lookups = IntCounterVec::new(
            Opts::new(
                "tollgate_control_feed_lookups_total",
                "Single-digest lookups from gateways' miss caches, by result.",
            ),
            &["result"],
        )
        .expect("valid metric");
        let logins = IntCounterVec::new(
            Opts::new(
                "tollgate_control_logins_total",
                "Manage Tokens page logins, by outcome (ok, failed, limited, suspended).",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(duration.clone()),
            Box::new(refusals.clone()),
            Box::new(feed_version.clone()),
            Box::new(feed_waiting.clone()),
            Box::new(feed_lookups.clone()),
            Box::new(logins.clone()),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        ControlTelemetry {
            registry,
            requests,
            duration,
            refusals,
            feed_version,
            feed_waiting,
            feed_lookups,
            logins,
        }
    }

    /// Counts one answered call. `route` is a matched template, never a raw path.
    pub fn observe(&self, route: &str, code: u16, elapsed: Duration) {
        self.requests
            .with_label_values(&[route, &code.to_string()])
            .inc();
        self.duration
            .with_label_values(&[route])
            .observe(elapsed.as_secs_f64());
    }

    pub fn refused(&self, code: &'static str) {
        self.refusals.with_label_values(&[code]).inc();
    }

    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("encoding to a Vec cannot fail");
        out
    }
}

/// Installs the global `tracing` subscriber. `RUST_LOG` overrides `log.level`.
pub fn init_logging(config: &LogConfig) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi);
    // A second init (tests) is harmless: keep the first subscriber.
    let _ = match config.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Human => builder.try_init(),
    };
}
