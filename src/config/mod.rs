//! Typed configuration (DESIGN §6): TOML with a default for every key, environment
//! overrides `TOLLGATE_<SECTION>__<KEY>`, and `validate()` whose errors name the key.
//! `serve` and `check-config` share all of it, so a file that checks also starts.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Everything tollgate reads from its config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub tokens: TokensConfig,
    pub forward: ForwardConfig,
    pub sink: SinkConfig,
    pub control_plane: ControlPlaneConfig,
    pub tail: TailConfig,
    pub log: LogConfig,
    /// The file (or an environment override) has a `[control_plane]` section: then
    /// `check-config` checks it as `tollgate control-plane` would, embedded or not.
    #[serde(skip)]
    pub control_plane_section: bool,
}

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

/// The front door: listeners, limits and timeouts (DESIGN §1).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Public ingest listener.
    pub listen: SocketAddr,
    /// Admin listener: `/metrics`, `/healthz`, `/readyz`. Keep it off the public network.
    pub admin_listen: SocketAddr,
    /// Largest request body accepted as sent (before decompression); larger is 413.
    pub max_body_bytes: u64,
    /// Largest body after decompression (gzip bomb guard); larger is 413.
    pub max_decompressed_bytes: u64,
    /// Longest log line; a longer one is counted as oversized and dropped.
    pub max_line_bytes: usize,
    /// Largest request head (request line + headers) a client may send.
    pub max_header_bytes: usize,
    /// A request head must be complete within this (slowloris guard): the first request's
    /// from accept (TLS handshake included), a later one's (HTTP/1.1) from its first byte.
    #[serde(deserialize_with = "secs")]
    pub header_read_timeout_secs: Duration,
    /// A client must send its whole body within this time, or gets 408.
    #[serde(deserialize_with = "secs")]
    pub body_read_timeout_secs: Duration,
    /// A keep-alive connection (HTTP/1.1 or h2) with no request in progress this long
    /// after its last one ended is closed.
    #[serde(deserialize_with = "secs")]
    pub idle_timeout_secs: Duration,
    /// Requests in flight at once; more are shed with 503 before their body is read.
    pub max_concurrent_requests: usize,
    /// Bytes of request bodies being read at once, across requests: a body with
    /// `Content-Length` takes its length before it is read, one without takes its bytes as
    /// they arrive; past it, 503 (before the body is read, or mid-body).
    pub max_inflight_body_bytes: u64,
    /// How long shutdown waits for in-flight requests before closing connections.
    #[serde(deserialize_with = "secs")]
    pub shutdown_grace_secs: Duration,
    /// TLS on the public listener; plain HTTP (with h2c) when absent.
    pub tls: Option<TlsConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8070)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
            max_body_bytes: 10 * 1024 * 1024,
            max_decompressed_bytes: 100 * 1024 * 1024,
            max_line_bytes: 500_000,
            max_header_bytes: 64 * 1024,
            header_read_timeout_secs: Duration::from_secs(10),
            body_read_timeout_secs: Duration::from_secs(30),
            idle_timeout_secs: Duration::from_secs(90),
            max_concurrent_requests: 4096,
            max_inflight_body_bytes: 512 * 1024 * 1024,
            shutdown_grace_secs: Duration::from_secs(30),
            tls: None,
        }
    }
}

/// PEM files for the public listener's certificate chain and private key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
}

/// Where the token table comes from (DESIGN §2).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokensConfig {
    pub source: TokenSourceKind,
    /// File source: a JSON snapshot, watched and reloaded on change.
    pub path: PathBuf,
    /// File source: how often the file is checked for a change.
    #[serde(deserialize_with = "secs")]
    pub watch_interval_secs: Duration,
    /// Control-plane source: the control plane's base URL (`http://host:port`).
    pub url: Option<String>,
    /// Control-plane source: the secret presented on `/v1/feed/*`. Never logged.
    pub feed_secret: Option<String>,
    /// The last good snapshot is persisted here and served at boot (fail-static).
    pub state_dir: PathBuf,
    /// Control-plane source: how long one change-feed long poll may wait for news (0..=60;
    /// the control plane caps it at 60). Shorter costs more idle round trips; the age gauge
    /// is reset by every answered poll, so it also bounds how stale "fresh" can look.
    #[serde(deserialize_with = "secs")]
    pub poll_wait_secs: Duration,
    /// Control-plane source: deadline of a snapshot fetch, a miss lookup or a usage flush
    /// (a long poll gets `poll_wait_secs` on top).
    #[serde(deserialize_with = "secs")]
    pub request_timeout_secs: Duration,
    /// Control-plane source: first reconnect delay after a failure; doubles per failure.
    /// Each actual wait is uniform in [0, delay] (full jitter), so a fleet that lost the
    /// control plane together does not come back in lockstep.
    #[serde(deserialize_with = "secs")]
    pub backoff_initial_secs: Duration,
    /// Control-plane source: the reconnect delay stops doubling here.
    #[serde(deserialize_with = "secs")]
    pub backoff_max_secs: Duration,
    /// Control-plane source: the table is persisted at most this often (and at shutdown).
    /// Writing 1,000,000 tokens takes about a second, so not on every delta.
    #[serde(deserialize_with = "secs")]
    pub persist_interval_secs: Duration,
    /// Control-plane source: lookups of unknown tokens sent to the control plane per second,
    /// across all requests. Past it an unknown token is refused (401) without asking, so a
    /// flood of random tokens costs the control plane at most this rate.
    pub miss_lookups_per_sec: u32,
    /// Control-plane source: how long a token the control plane knows is served from the
    /// miss cache (until the feed brings it into the table).
    #[serde(deserialize_with = "secs")]
    pub miss_positive_ttl_secs: Duration,
    /// Control-plane source: how long an answer "unknown" is remembered; a token created
    /// meanwhile is accepted as soon as the feed brings it, whatever this says.
    #[serde(deserialize_with = "secs")]
    pub miss_negative_ttl_secs: Duration,
    /// Control-plane source: most digests the miss cache holds.
    pub miss_cache_capacity: u64,
    /// Control-plane source: per-token last use and per-account volume are sent to the
    /// control plane this often (and once at shutdown).
    #[serde(deserialize_with = "secs")]
    pub usage_flush_interval_secs: Duration,
}

impl Default for TokensConfig {
    fn default() -> Self {
        TokensConfig {
            source: TokenSourceKind::File,
            path: PathBuf::from("config/tokens.json"),
            watch_interval_secs: Duration::from_millis(250),
            url: None,
            feed_secret: None,
            state_dir: PathBuf::from("data"),
            poll_wait_secs: Duration::from_secs(30),
            request_timeout_secs: Duration::from_secs(10),
            backoff_initial_secs: Duration::from_millis(250),
            backoff_max_secs: Duration::from_secs(30),
            persist_interval_secs: Duration::from_secs(10),
            miss_lookups_per_sec: 50,
            miss_positive_ttl_secs: Duration::from_secs(10),
            miss_negative_ttl_secs: Duration::from_secs(5),
            miss_cache_capacity: 100_000,
            usage_flush_interval_secs: Duration::from_secs(10),
        }
    }
}

impl TokensConfig {
    /// The keys `source = "control_plane"` needs, checked only for that source.
    fn validate_control_plane(&self, warnings: &mut Warnings) -> Result<(), ConfigError> {
        let url_ok = self.url.as_deref().is_some_and(|url| {
            url.parse::<http::Uri>().ok().is_some_and(|u| {
                matches!(u.scheme_str(), Some("http" | "https"))
                    && u.host().is_some()
                    && u.query().is_none()
            })
        });
        if !url_ok {
            return Err(ConfigError::invalid(
                "tokens.url",
                "is required when tokens.source = \"control_plane\": an http:// or https:// \
                 base URL such as \"http://127.0.0.1:8090\"",
            ));
        }
        let secret_ok = self.feed_secret.as_deref().is_some_and(|s| {
            !s.trim().is_empty() && http::HeaderValue::try_from(format!("Bearer {s}")).is_ok()
        });
        if !secret_ok {
            return Err(ConfigError::invalid(
                "tokens.feed_secret",
                "is required when tokens.source = \"control_plane\" (printable, not empty)",
            ));
        }
        let url = self.url.as_deref().unwrap_or_default();
        let host = url.parse::<http::Uri>().ok();
        let host = host.as_ref().and_then(http::Uri::host).unwrap_or_default();
        let exposed = !is_loopback_host(host.trim_start_matches('[').trim_end_matches(']'));
        check_secret(
            "tokens.feed_secret",
            self.feed_secret.as_deref().unwrap_or_default(),
            exposed.then(|| format!("tokens.url ({url}) is not a loopback address")),
            warnings,
        )?;
        if self.poll_wait_secs > Duration::from_secs(60) {
            return Err(ConfigError::invalid(
                "tokens.poll_wait_secs",
                "must be <= 60 (the control plane caps a long poll at 60 s)",
            ));
        }
        for (key, value) in [
            ("tokens.request_timeout_secs", self.request_timeout_secs),
            ("tokens.backoff_initial_secs", self.backoff_initial_secs),
            ("tokens.persist_interval_secs", self.persist_interval_secs),
            ("tokens.miss_positive_ttl_secs", self.miss_positive_ttl_secs),
            ("tokens.miss_negative_ttl_secs", self.miss_negative_ttl_secs),
            (
                "tokens.usage_flush_interval_secs",
                self.usage_flush_interval_secs,
            ),
        ] {
            if value.is_zero() {
                return Err(ConfigError::invalid(key, "must be > 0"));
            }
        }
        if self.backoff_max_secs < self.backoff_initial_secs {
            return Err(ConfigError::invalid(
                "tokens.backoff_max_secs",
                "must be >= tokens.backoff_initial_secs",
            ));
        }
        if self.miss_lookups_per_sec == 0 {
            return Err(ConfigError::invalid(
                "tokens.miss_lookups_per_sec",
                "must be > 0",
            ));
        }
        if self.miss_cache_capacity == 0 {
            return Err(ConfigError::invalid(
                "tokens.miss_cache_capacity",
                "must be > 0",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenSourceKind {
    File,
    ControlPlane,
}

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
        #[serde(default = "default_rotate_secs", deserialize_with = "secs")]
        rotate_secs: Duration,
    },
    /// POSTs each batch as gzip NDJSON to `url`; retried with backoff and jitter on 408,
    /// 429, 5xx and connection errors (honouring `Retry-After`); any other refusal goes to
    /// a dead-letter file under `dead_letter_dir`.
    Http {
        url: String,
        /// Extra request headers, e.g. `Authorization`. Never logged.
        #[serde(default)]
        headers: std::collections::BTreeMap<String, String>,
        /// One attempt's deadline.
        #[serde(default = "default_http_timeout", deserialize_with = "secs")]
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

/// A secret that other machines can try must have at least this many characters: a
/// random one of 24 letters and digits is past guessing over HTTP.
pub const MIN_SECRET_CHARS: usize = 24;

/// The example secrets `config/` and the docs show; never good enough beyond loopback.
const EXAMPLE_SECRETS: &[&str] = &[
    "change-me",
    "change-me-too",
    "change-me-admin-secret",
    "change-me-feed-secret",
];

/// The strength rule for `control_plane.admin_secret`, `control_plane.feed_secret` and
/// the gateway's `tokens.feed_secret`: an example value or one shorter than
/// [`MIN_SECRET_CHARS`] is refused when `exposed` says why other machines can reach what
/// it guards, and only warned about on loopback.
fn check_secret(
    key: &str,
    secret: &str,
    exposed: Option<String>,
    warnings: &mut Warnings,
) -> Result<(), ConfigError> {
    let weakness = if EXAMPLE_SECRETS.contains(&secret) {
        "is a documented example value".to_string()
    } else if secret.chars().count() < MIN_SECRET_CHARS {
        format!("is shorter than {MIN_SECRET_CHARS} characters")
    } else {
        return Ok(());
    };
    let env = format!("TOLLGATE_{}", key.to_ascii_uppercase().replace('.', "__"));
    match exposed {
        Some(why) => Err(ConfigError::invalid(
            key,
            format!(
                "{weakness} while {why}: set your own of at least {MIN_SECRET_CHARS} \
                 characters ({env})"
            ),
        )),
        None => {
            warnings.push(format!(
                "{key} {weakness}: set your own of at least {MIN_SECRET_CHARS} characters \
                 ({env}) before exposing it beyond this machine"
            ));
            Ok(())
        }
    }
}

/// `localhost` or a loopback address (a URL's host, brackets removed).
fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The control plane (DESIGN §4): `tollgate control-plane`, or inside `tollgate serve`
/// when `embedded = true`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlPlaneConfig {
    /// Run the control plane inside `tollgate serve`, on `listen`.
    pub embedded: bool,
    /// The management API and the gateways' feed.
    pub listen: SocketAddr,
    /// `sqlite://path` (created if missing) or `postgres://user:pass@host/db`.
    pub database_url: String,
    /// The operator's secret (`Authorization: Bearer …`): creates main accounts and
    /// reaches every account.
    pub admin_secret: Option<String>,
    /// Gateways present it on `/v1/feed/*`.
    pub feed_secret: Option<String>,
    /// How many feed versions of deletions the control plane keeps for gateways catching
    /// up; a gateway further behind gets 410 and refetches the whole snapshot.
    pub feed_retained_versions: u64,
    /// Where people open the Manage Tokens page (`https://…` behind a TLS proxy): setup
    /// links start with it, and `https` marks the session cookie `Secure`. Default:
    /// `http://<listen>`.
    pub public_url: Option<String>,
    /// Where people reach the gateways' public listener (`https://listener.example.com`):
    /// the page's live-tail links for shared tokens start with it. Embedded, it defaults
    /// to the gateway's own listener; otherwise the page offers no live-tail link.
    pub gateway_url: Option<String>,
    /// A page session unused this long ends.
    pub session_idle_timeout_secs: u64,
    /// A page session ends this long after login, used or not.
    pub session_max_age_secs: u64,
    /// How long a user's one-time setup link works.
    pub setup_link_ttl_secs: u64,
}

impl Default for ControlPlaneConfig {
    fn default() -> Self {
        ControlPlaneConfig {
            embedded: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 8090)),
            database_url: "sqlite://data/control.db".to_string(),
            admin_secret: None,
            feed_secret: None,
            feed_retained_versions: 100_000,
            public_url: None,
            gateway_url: None,
            session_idle_timeout_secs: 30 * 60,
            session_max_age_secs: 12 * 3600,
            setup_link_ttl_secs: 3 * 24 * 3600,
        }
    }
}

impl ControlPlaneConfig {
    /// What the control plane needs to run; the warnings are returned, not printed.
    pub fn validate(&self) -> Result<Vec<String>, ConfigError> {
        let mut warnings = Vec::new();
        let url = &self.database_url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(ConfigError::invalid(
                "control_plane.database_url",
                "must start with sqlite:// or postgres://",
            ));
        }
        for (key, secret) in [
            ("control_plane.admin_secret", &self.admin_secret),
            ("control_plane.feed_secret", &self.feed_secret),
        ] {
            match secret.as_deref() {
                None | Some("") => {
                    return Err(ConfigError::invalid(
                        key,
                        "is required to run the control plane",
                    ));
                }
                Some(secret) => check_secret(
                    key,
                    secret,
                    (!self.listen.ip().is_loopback()).then(|| {
                        format!(
                            "control_plane.listen ({}) is reachable from other machines",
                            self.listen
                        )
                    }),
                    &mut warnings,
                )?,
            }
        }
        if self.feed_retained_versions == 0 {
            return Err(ConfigError::invalid(
                "control_plane.feed_retained_versions",
                "must be > 0",
            ));
        }
        for (key, url) in [
            ("control_plane.public_url", &self.public_url),
            ("control_plane.gateway_url", &self.gateway_url),
        ] {
            if let Some(url) = url
                && !(url.starts_with("http://") || url.starts_with("https://"))
            {
                return Err(ConfigError::invalid(
                    key,
                    "must start with http:// or https://",
                ));
            }
        }
        for (key, secs) in [
            (
                "control_plane.session_idle_timeout_secs",
                self.session_idle_timeout_secs,
            ),
            (
                "control_plane.session_max_age_secs",
                self.session_max_age_secs,
            ),
            (
                "control_plane.setup_link_ttl_secs",
                self.setup_link_ttl_secs,
            ),
        ] {
            if secs == 0 {
                return Err(ConfigError::invalid(key, "must be > 0"));
            }
        }
        Ok(warnings)
    }

    /// Where the page is reached: `public_url` without a trailing `/`, or `http://<listen>`.
    pub fn page_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.listen),
        }
    }
}

/// Process log output. `RUST_LOG`, when set, overrides `level`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter: `info`, `debug`, `tollgate=debug,hyper=info`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Human,
            level: "info".to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Human,
    Json,
}

/// A config that could not be read or is not valid; the message names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
}

impl ConfigError {
    pub fn invalid(key: &str, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.to_string(),
            message: message.into(),
        }
    }
}

/// Non-fatal findings of `validate()`: printed by `check-config` and logged by `serve`.
pub type Warnings = Vec<String>;

impl Config {
    /// Reads `path`, applies `TOLLGATE_<SECTION>__<KEY>` overrides from `env`, and parses.
    /// `env` is passed in (not read here) so tests never have to mutate the process env.
    pub fn load(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, env).map_err(|e| match e {
            ConfigError::Syntax { message, .. } => ConfigError::Syntax {
                path: path.to_path_buf(),
                message,
            },
            other => other,
        })
    }

    /// Parses TOML text plus environment overrides. Errors name the offending key.
    pub fn parse(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| ConfigError::Syntax {
                    path: PathBuf::new(),
                    message: e.to_string(),
                })?;
        apply_env_overrides(&mut table, env)?;
        let control_plane_section = table.contains_key("control_plane");
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                let key = e.path().to_string();
                ConfigError::Invalid {
                    key,
                    message: e.into_inner().to_string(),
                }
            })?;
        Ok(Config {
            control_plane_section,
            ..config
        })
    }

    /// Checks what types alone cannot. Errors name the key; warnings are advice.
    pub fn validate(&self) -> Result<Warnings, ConfigError> {
        let mut warnings = Warnings::new();
        let s = &self.server;
        if s.listen == s.admin_listen && s.listen.port() != 0 {
            return Err(ConfigError::invalid(
                "server.admin_listen",
                "must differ from server.listen",
            ));
        }
        for (key, value) in [
            ("server.max_body_bytes", s.max_body_bytes),
            ("server.max_decompressed_bytes", s.max_decompressed_bytes),
            ("server.max_line_bytes", s.max_line_bytes as u64),
            (
                "server.max_concurrent_requests",
                s.max_concurrent_requests as u64,
            ),
            ("server.max_inflight_body_bytes", s.max_inflight_body_bytes),
            ("forward.queue_max_bytes", self.forward.queue_max_bytes),
            (
                "forward.spool_segment_bytes",
                self.forward.spool_segment_bytes,
            ),
            ("forward.spool_max_bytes", self.forward.spool_max_bytes),
            (
                "forward.max_batch_bytes",
                self.forward.max_batch_bytes as u64,
            ),
            ("tail.max_subscribers", self.tail.max_subscribers as u64),
            ("tail.max_per_account", self.tail.max_per_account as u64),
            ("tail.buffer_records", self.tail.buffer_records as u64),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(key, "must be > 0"));
            }
        }
        if s.max_decompressed_bytes < s.max_body_bytes {
            return Err(ConfigError::invalid(
                "server.max_decompressed_bytes",
                "must be >= server.max_body_bytes",
            ));
        }
        if s.max_inflight_body_bytes < s.max_body_bytes {
            return Err(ConfigError::invalid(
                "server.max_inflight_body_bytes",
                "must be >= server.max_body_bytes",
            ));
        }
        if s.max_header_bytes < 8192 {
            return Err(ConfigError::invalid(
                "server.max_header_bytes",
                "must be >= 8192 (hyper's smallest read buffer)",
            ));
        }
        for (key, value) in [
            (
                "server.header_read_timeout_secs",
                s.header_read_timeout_secs,
            ),
            ("server.body_read_timeout_secs", s.body_read_timeout_secs),
            ("server.idle_timeout_secs", s.idle_timeout_secs),
            (
                "forward.max_batch_age_secs",
                self.forward.max_batch_age_secs,
            ),
            ("tail.max_behind_secs", self.tail.max_behind_secs),
            ("tail.heartbeat_secs", self.tail.heartbeat_secs),
        ] {
            if value.is_zero() {
                return Err(ConfigError::invalid(key, "must be > 0"));
            }
        }
        if let Some(tls) = &s.tls {
            for (key, path) in [
                ("server.tls.cert_path", &tls.cert_path),
                ("server.tls.key_path", &tls.key_path),
            ] {
                if !path.is_file() {
                    return Err(ConfigError::invalid(
                        key,
                        format!("{} is not a readable file", path.display()),
                    ));
                }
            }
        }
        match self.tokens.source {
            TokenSourceKind::File => {
                if self.tokens.path.as_os_str().is_empty() {
                    return Err(ConfigError::invalid(
                        "tokens.path",
                        "is required when tokens.source = \"file\"",
                    ));
                }
            }
            TokenSourceKind::ControlPlane => self.tokens.validate_control_plane(&mut warnings)?,
        }
        if self.forward.ack == Ack::Memory {
            warnings.push(
                "forward.ack = \"memory\": a 200 means queued in memory; records not yet \
                 written by the sink are lost if the process crashes"
                    .to_string(),
            );
        }
        match &self.sink {
            SinkConfig::File { max_file_bytes, .. } if *max_file_bytes == 0 => {
                return Err(ConfigError::invalid("sink.max_file_bytes", "must be > 0"));
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
            }
            _ => {}
        }
        if let SinkConfig::Kafka {
            brokers,
            topic_logs,
            topic_metrics,
            topic_traces,
            ..
        } = &self.sink
        {
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
        }
        if self.tail.source == TailSource::Kafka && !matches!(self.sink, SinkConfig::Kafka { .. }) {
            return Err(ConfigError::invalid(
                "tail.source",
                "\"kafka\" reads the Kafka sink's topics: it needs sink.type = \"kafka\"",
            ));
        }
        if self.control_plane.embedded {
            warnings.extend(self.control_plane.validate()?);
            for (key, addr) in [
                ("server.listen", self.server.listen),
                ("server.admin_listen", self.server.admin_listen),
            ] {
                if addr.port() != 0 && addr == self.control_plane.listen {
                    return Err(ConfigError::invalid(
                        "control_plane.listen",
                        format!("is the same address as {key}"),
                    ));
                }
            }
        }
        Ok(warnings)
    }
}

/// `TOLLGATE_SERVER__MAX_BODY_BYTES=1024` sets `server.max_body_bytes`. Each `__` is one
/// level; the value is read as a TOML value when it parses as one, else as a string.
fn apply_env_overrides(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    for (name, raw) in env {
        let Some(rest) = name.strip_prefix("TOLLGATE_") else {
            continue;
        };
        if !rest.contains("__") {
            continue;
        }
        let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        if path.iter().any(String::is_empty) {
            return Err(ConfigError::invalid(&name, "empty key segment"));
        }
        let value = parse_env_value(&raw);
        let (last, parents) = path.split_last().expect("split always yields a segment");
        let mut node = &mut *table;
        for segment in parents {
            let entry = node
                .entry(segment.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            node = entry.as_table_mut().ok_or_else(|| {
                ConfigError::invalid(&name, format!("`{segment}` is not a table"))
            })?;
        }
        node.insert(last.clone(), value);
    }
    Ok(())
}

fn parse_env_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

/// Durations are written in seconds (`_secs` keys), fractions allowed: `0.25`.
fn secs<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Secs {
        Int(u64),
        Float(f64),
    }
    match Secs::deserialize(d)? {
        Secs::Int(n) => Ok(Duration::from_secs(n)),
        Secs::Float(f) => Duration::try_from_secs_f64(f)
            .map_err(|_| serde::de::Error::custom("expected a non-negative number of seconds")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env() -> Vec<(String, String)> {
        Vec::new()
    }

    #[test]
    fn empty_file_gives_defaults_that_validate() {
        let c = Config::parse("", no_env()).unwrap();
        assert_eq!(c.server.listen.port(), 8070);
        assert_eq!(c.server.max_line_bytes, 500_000);
        assert_eq!(c.forward.ack, Ack::Disk);
        assert!(c.validate().unwrap().is_empty());
    }

    #[test]
    fn memory_ack_must_be_chosen_explicitly_and_warns() {
        let c = Config::parse("[forward]\nack = \"memory\"\n", no_env()).unwrap();
        let warnings = c.validate().unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("lost if the process crashes"));
    }

    #[test]
    fn example_control_plane_secrets_warn_on_loopback_and_are_refused_beyond_it() {
        let text = "[control_plane]\nembedded = true\nadmin_secret = \"change-me\"\n\
                    feed_secret = \"an-operator-chosen-secret\"\n";
        let c = Config::parse(text, no_env()).unwrap();
        let warnings = c.validate().unwrap();
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("control_plane.admin_secret")),
            "{warnings:?}"
        );
        let env = vec![(
            "TOLLGATE_CONTROL_PLANE__LISTEN".to_string(),
            "0.0.0.0:8090".to_string(),
        )];
        let err = Config::parse(text, env).unwrap().validate().unwrap_err();
        assert!(
            err.to_string().starts_with("control_plane.admin_secret"),
            "{err}"
        );
        let missing = Config::parse("[control_plane]\nembedded = true\n", no_env()).unwrap();
        let err = missing.validate().unwrap_err();
        assert!(
            err.to_string().starts_with("control_plane.admin_secret"),
            "{err}"
        );
    }

    #[test]
    fn weak_control_plane_secrets_warn_on_loopback_and_are_refused_on_other_addresses() {
        let strong = "k7Qw2xZp9LmN4vB8rT1yH6sD";
        for (admin, weakness) in [
            ("x", "shorter than 24 characters"),
            ("change-me-admin-secret", "documented example value"),
            ("a-23-characters-secret!", "shorter than 24 characters"),
        ] {
            let text = format!(
                "[control_plane]\nembedded = true\nadmin_secret = \"{admin}\"\n\
                 feed_secret = \"{strong}\"\n"
            );
            let warnings = Config::parse(&text, no_env()).unwrap().validate().unwrap();
            assert!(
                warnings
                    .iter()
                    .any(|w| w.starts_with("control_plane.admin_secret") && w.contains(weakness)),
                "{admin}: {warnings:?}"
            );
            for listen in ["0.0.0.0:8090", "192.0.2.7:8090", "[::]:8090"] {
                let env = vec![(
                    "TOLLGATE_CONTROL_PLANE__LISTEN".to_string(),
                    listen.to_string(),
                )];
                let err = Config::parse(&text, env).unwrap().validate().unwrap_err();
                let err = err.to_string();
                assert!(
                    err.starts_with("control_plane.admin_secret: ") && err.contains(weakness),
                    "{admin} on {listen}: {err}"
                );
            }
        }
        let text = format!(
            "[control_plane]\nembedded = true\nlisten = \"0.0.0.0:8090\"\n\
             admin_secret = \"{strong}\"\nfeed_secret = \"{strong}-feed\"\n"
        );
        let warnings = Config::parse(&text, no_env()).unwrap().validate().unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn a_weak_gateway_feed_secret_is_refused_toward_a_control_plane_off_loopback() {
        let tokens = |url: &str, secret: &str| {
            format!(
                "[tokens]\nsource = \"control_plane\"\nurl = \"{url}\"\n\
                 feed_secret = \"{secret}\"\n"
            )
        };
        for url in [
            "http://127.0.0.1:8090",
            "http://localhost:8090",
            "http://[::1]:8090",
        ] {
            let warnings = Config::parse(&tokens(url, "change-me-too"), no_env())
                .unwrap()
                .validate()
                .unwrap();
            assert!(
                warnings.iter().any(|w| w.starts_with("tokens.feed_secret")),
                "{url}: {warnings:?}"
            );
        }
        let err = Config::parse(&tokens("http://control-plane:8090", "s3cret"), no_env())
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("tokens.feed_secret: is shorter"), "{err}");
        let strong = tokens("https://control-plane:8090", "k7Qw2xZp9LmN4vB8rT1yH6sD");
        assert!(
            Config::parse(&strong, no_env())
                .unwrap()
                .validate()
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_control_plane_section_is_noticed_with_or_without_embedded() {
        assert!(!Config::parse("", no_env()).unwrap().control_plane_section);
        let c = Config::parse("[control_plane]\nlisten = \"0.0.0.0:8090\"\n", no_env()).unwrap();
        assert!(c.control_plane_section && !c.control_plane.embedded);
        let env = vec![(
            "TOLLGATE_CONTROL_PLANE__ADMIN_SECRET".to_string(),
            "x".to_string(),
        )];
        assert!(Config::parse("", env).unwrap().control_plane_section);
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::parse("[server]\nmax_bodybytes = 1\n", no_env()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("server"), "{msg}");
        assert!(msg.contains("max_bodybytes"), "{msg}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let err = Config::parse("[server]\nmax_body_bytes = \"big\"\n", no_env()).unwrap_err();
        assert!(
            err.to_string().starts_with("server.max_body_bytes"),
            "{err}"
        );
    }

    #[test]
    fn env_overrides_nested_keys_with_typed_values() {
        let env = vec![
            (
                "TOLLGATE_SERVER__MAX_BODY_BYTES".to_string(),
                "1024".to_string(),
            ),
            (
                "TOLLGATE_SERVER__HEADER_READ_TIMEOUT_SECS".to_string(),
                "0.5".to_string(),
            ),
            ("TOLLGATE_SINK__TYPE".to_string(), "blackhole".to_string()),
            ("TOLLGATE_UNRELATED".to_string(), "x".to_string()),
        ];
        let c = Config::parse("[server]\nmax_body_bytes = 5\n", env).unwrap();
        assert_eq!(c.server.max_body_bytes, 1024);
        assert_eq!(
            c.server.header_read_timeout_secs,
            Duration::from_millis(500)
        );
        assert!(matches!(c.sink, SinkConfig::Blackhole {}));
    }

    #[test]
    fn invalid_ack_value_names_the_key() {
        let err = Config::parse("[forward]\nack = \"sometimes\"\n", no_env()).unwrap_err();
        assert!(err.to_string().starts_with("forward.ack"), "{err}");
    }

    #[test]
    fn zero_limits_are_refused() {
        let c = Config::parse("[server]\nmax_line_bytes = 0\n", no_env()).unwrap();
        let err = c.validate().unwrap_err();
        assert!(
            err.to_string().starts_with("server.max_line_bytes"),
            "{err}"
        );
    }

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
    fn control_plane_source_needs_url_and_secret_and_names_them() {
        let c = Config::parse("[tokens]\nsource = \"control_plane\"\n", no_env()).unwrap();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .starts_with("tokens.url")
        );
        let c = Config::parse(
            "[tokens]\nsource = \"control_plane\"\nurl = \"http://127.0.0.1:8090\"\n",
            no_env(),
        )
        .unwrap();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.starts_with("tokens.feed_secret"), "{err}");
        let ok = "[tokens]\nsource = \"control_plane\"\nurl = \"http://127.0.0.1:8090\"\n\
                  feed_secret = \"s3cret\"\n";
        assert!(Config::parse(ok, no_env()).unwrap().validate().is_ok());
        let c = Config::parse(&format!("{ok}poll_wait_secs = 61\n"), no_env()).unwrap();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.starts_with("tokens.poll_wait_secs"), "{err}");
        let c = Config::parse(&format!("{ok}miss_lookups_per_sec = 0\n"), no_env()).unwrap();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.starts_with("tokens.miss_lookups_per_sec"), "{err}");
    }

    #[test]
    fn sink_keys_belong_to_their_type() {
        let err =
            Config::parse("[sink]\ntype = \"blackhole\"\npath = \"x\"\n", no_env()).unwrap_err();
        assert!(err.to_string().contains("path"), "{err}");
    }
}
