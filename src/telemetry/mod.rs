//! Every metric of DESIGN §5, written here once, the events that log and count together,
//! and the logging setup.
//!
//! `Telemetry` owns the registry and renders it; each part gets a small struct of the
//! handles it writes (`IngestMetrics`, `TokenMetrics`, `SourceMetrics`, `ForwardMetrics`, …),
//! handed out by the composition root, never the whole `Telemetry`. One file per part
//! builds that part's metrics, each registered by the call that creates it (`counter`,
//! `gauge`, …), so none can be built and left out of `/metrics`.
//!
//! What a part logs and counts together is one event, a method of its handles
//! (`SourceMetrics::feed_failed`, `SinkMetrics::batch_failed`), as in Vector's internal
//! events: the log line and its counter cannot drift apart, and the counters an event
//! writes are private to it. An event logs under the target of the module it happens in
//! (`tollgate::tokens::feed`), so `RUST_LOG` filters and a JSON line's `target` name
//! where it happened, not this module.
//!
//! Label handles are resolved when `Telemetry` is built or a part's handles are handed
//! out (`with_label_values` takes a lock), so the request path only touches atomics.
//! Label values come from enums' `as_str()`: no token, and no raw account id, can ever
//! become a label. Each `Telemetry` owns its registry, so several servers in one test
//! process never share counters.

mod control;
mod forward;
mod ingest;
mod server;
mod tail;
mod tokens;
mod volume;

use prometheus::core::Collector;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::config::{LogConfig, LogFormat};

pub use control::{ControlTelemetry, TOP_ACCOUNTS};
pub use forward::{
    BatchFate, BatcherMetrics, DeadLetterMetrics, ForwardMetrics, SinkMetrics, SpoolMetrics,
    SpoolReadMetrics,
};
pub use ingest::{DecodeMetrics, IngestMetrics, KindMetrics, RouteMetrics};
pub use server::{ConnMetrics, DrainMetrics};
pub use tail::TailMetrics;
pub use tokens::{MissMetrics, SourceMetrics, TableMetrics, TokenMetrics, UsageMetrics};
pub use volume::VolumeMetrics;

/// The metrics registry; it hands each part the handles it needs and renders `/metrics`.
pub struct Telemetry {
    registry: Registry,
    ingest: IngestMetrics,
    decode: DecodeMetrics,
    tokens: TokenMetrics,
    source: SourceMetrics,
    misses: MissMetrics,
    usage: UsageMetrics,
    forward: forward::ForwardTelemetry,
    server: server::ServerTelemetry,
    tail: TailMetrics,
    volume: VolumeMetrics,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    pub fn new() -> Telemetry {
        let registry = Registry::new();
        let table = TableMetrics::register(&registry);
        Telemetry {
            ingest: IngestMetrics::register(&registry),
            decode: DecodeMetrics::register(&registry),
            tokens: TokenMetrics::register(&registry, table.clone()),
            source: SourceMetrics::register(&registry, table),
            misses: MissMetrics::register(&registry),
            usage: UsageMetrics::register(&registry),
            forward: forward::ForwardTelemetry::register(&registry),
            server: server::ServerTelemetry::register(&registry),
            tail: TailMetrics::register(&registry),
            volume: VolumeMetrics::register(&registry),
            registry,
        }
    }

    /// The live tails' handles.
    pub fn tail(&self) -> TailMetrics {
        self.tail.clone()
    }

    /// Account volume's handles.
    pub fn volume(&self) -> VolumeMetrics {
        self.volume.clone()
    }

    /// The ingest routes' handles.
    pub fn ingest(&self) -> IngestMetrics {
        self.ingest.clone()
    }

    /// The decode budget's handles.
    pub fn decode_budget(&self) -> DecodeMetrics {
        self.decode.clone()
    }

    /// The token table's handles.
    pub fn tokens(&self) -> TokenMetrics {
        self.tokens.clone()
    }

    /// A token source's handles (file watcher or feed follower).
    pub fn token_source(&self) -> SourceMetrics {
        self.source.clone()
    }

    /// The miss cache's handles.
    pub fn miss_lookups(&self) -> MissMetrics {
        self.misses.clone()
    }

    /// The usage flusher's handles.
    pub fn usage_flushes(&self) -> UsageMetrics {
        self.usage.clone()
    }

    /// The forwarding path's handles, for the sink called `sink`.
    pub fn forward(&self, sink: &'static str) -> ForwardMetrics {
        self.forward.handles(sink)
    }

    /// The disk spool's handles.
    pub fn spool(&self) -> SpoolMetrics {
        self.forward.spool()
    }

    /// The dead-letter handles of one sink.
    pub fn dead_letter_records(&self, sink: &'static str) -> DeadLetterMetrics {
        self.forward.dead_letters(sink)
    }

    /// Handles for one listener's connections (`public` or `admin`).
    pub fn connections(&self, listener: &'static str) -> ConnMetrics {
        self.server.connections(listener)
    }

    /// Request body bytes being read now, against `server.max_inflight_body_bytes`.
    pub fn inflight_body_bytes(&self) -> IntGauge {
        self.server.inflight_body_bytes()
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> Vec<u8> {
        self.tokens.table.update_age();
        encode(&self.registry)
    }
}

/// The text exposition of everything in `registry`.
fn encode(registry: &Registry) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 * 1024);
    TextEncoder::new()
        .encode(&registry.gather(), &mut out)
        .expect("encoding to a Vec cannot fail");
    out
}

// === building and registering in one call ===

/// Registers `metric` in `registry` and hands it back: every metric is built through
/// here, so none can be built and forgotten.
fn register<M: Collector + Clone + 'static>(
    registry: &Registry,
    metric: prometheus::Result<M>,
) -> M {
    metric
        .and_then(|m| registry.register(Box::new(m.clone())).map(|()| m))
        .expect("names, labels, buckets and help texts written in telemetry are valid, and each name is registered once per registry")
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    register(registry, IntCounter::new(name, help))
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    register(registry, IntCounterVec::new(Opts::new(name, help), labels))
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    register(registry, IntGauge::new(name, help))
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    register(registry, IntGaugeVec::new(Opts::new(name, help), labels))
}

/// `buckets`: a list (`Ok(vec![..])`) or what `prometheus::exponential_buckets` makes.
fn histogram(
    registry: &Registry,
    name: &str,
    help: &str,
    buckets: prometheus::Result<Vec<f64>>,
) -> Histogram {
    let histogram =
        buckets.and_then(|b| Histogram::with_opts(HistogramOpts::new(name, help).buckets(b)));
    register(registry, histogram)
}

/// `buckets` as for `histogram`.
fn histogram_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: prometheus::Result<Vec<f64>>,
) -> HistogramVec {
    let histogram =
        buckets.and_then(|b| HistogramVec::new(HistogramOpts::new(name, help).buckets(b), labels));
    register(registry, histogram)
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
