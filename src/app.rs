//! The composition root: builds every part from `Config`, wires them, runs them, and
//! shuts them down in order. `run` takes listeners that are already bound, so the binary
//! and the integration tests (which bind `127.0.0.1:0`) run exactly the same code.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::future::{self, FutureExt};
use http_body_util::Either;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::{
    Config, ConfigError, ControlPlaneConfig, ServerConfig, SinkConfig, TailSource, TokenSourceKind,
    TokensConfig, VolumeConfig,
};
use crate::control::{ControlError, ControlPlane};
use crate::filters::held::HeldFilters;
use crate::forward::tap::Tap;
use crate::forward::{self, sinks::Sink};
use crate::ingest::budget::DecodeBudget;
use crate::ingest::{AccountRules, Ingest, Limits};
use crate::server::body::BodyBudget;
use crate::server::{self, ConnLimits, admin};
use crate::tail::Tail;
use crate::tail::kafka::KafkaTailSource;
use crate::telemetry::Telemetry;
use crate::tokens::Tokens;
use crate::tokens::client::FeedClient;
use crate::tokens::feed::{FeedSource, FollowSettings};
use crate::tokens::file::FileSource;
use crate::tokens::miss::{MissCache, MissSettings};
use crate::tokens::usage::{self, Usage};
use crate::volume::bank::{Bank, LocalBank};
use crate::volume::gate::Gate;
use crate::volume::redis::RedisBank;
use crate::volume::utilization;

/// The listeners `run` serves on.
pub struct Listeners {
    pub public: TcpListener,
    pub admin: TcpListener,
    /// The embedded control plane's; `run` binds `control_plane.listen` when it is `None`.
    pub control: Option<TcpListener>,
    /// What UTC day it is for account volume (and the embedded control plane's "now"):
    /// the system clock, except in tests that turn the day.
    pub clock: Clock,
}

impl Listeners {
    /// Binds the addresses the config names (the binary's path; tests bind their own).
    pub async fn bind(config: &Config) -> std::io::Result<Listeners> {
        Ok(Listeners {
            public: TcpListener::bind(config.server.listen).await?,
            admin: TcpListener::bind(config.server.admin_listen).await?,
            control: None,
            clock: Clock::system(),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Tls(#[from] server::tls::TlsError),
    #[error("sink: {0}")]
    Sink(#[from] forward::sinks::SinkError),
    #[error(transparent)]
    Forward(#[from] forward::StartError),
    #[error("token feed: {0}")]
    Feed(#[from] crate::tokens::client::FeedError),
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error("volume: {0}")]
    Volume(#[from] crate::volume::bank::BankError),
}

/// Everything `check-config` and `serve` check before starting: the config's own rules,
/// then what only a part can judge (librdkafka's options), so both refuse the same files.
pub fn validate(config: &Config) -> Result<Vec<String>, ConfigError> {
    let warnings = config.validate()?;
    if let SinkConfig::Kafka { brokers, kafka, .. } = &config.sink {
        forward::sinks::kafka::check_options(brokers, kafka).map_err(|(option, message)| {
            ConfigError::invalid(&format!("sink.kafka.\"{option}\""), message)
        })?;
    }
    Ok(warnings)
}

/// What `check-config` checks: what `serve` would, plus a `[control_plane]` section that
/// `serve` would not run (not embedded) but `tollgate control-plane` would.
pub fn check(config: &Config) -> Result<Vec<String>, ConfigError> {
    let mut warnings = validate(config)?;
    if config.control_plane_section && !config.control_plane.embedded {
        warnings.extend(config.control_plane.validate()?);
    }
    Ok(warnings)
}

/// Runs the control plane alone (`tollgate control-plane`) until `shutdown` resolves; a
/// failure to start (the store, the listener) returns at once.
pub async fn run_control_plane(
    config: ControlPlaneConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AppError> {
    for warning in config.validate()? {
        tracing::warn!("{warning}");
    }
    let listener = TcpListener::bind(config.listen).await?;
    let stop = CancellationToken::new();
    let serving = crate::control::serve(config, listener, stop.clone());
    tokio::pin!(serving);
    tokio::select! {
        result = &mut serving => return Ok(result?),
        () = shutdown => stop.cancel(),
    }
    Ok(serving.await?)
}

/// Runs the gateway until `shutdown` resolves, then drains: stop accepting, finish
/// in-flight requests, write everything queued to the sink, flush it.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AppError> {
    let running = start(config, listeners).await?;
    shutdown.await;
    running.drain().await;
    Ok(())
}

/// Every part of a running gateway, each with the token that stops it, in the order
/// `drain` stops them.
struct Running {
    draining: Arc<AtomicBool>,
    /// The public listener and the live tails.
    public_stop: CancellationToken,
    public: JoinHandle<()>,
    tail_source: Option<JoinHandle<()>>,
    /// Stops after the public listener drained, so its last report holds every request.
    usage_stop: CancellationToken,
    tokens: TokenSource,
    forward: forward::ForwardTask,
    /// The admin listener, the token source and the volume bank's task.
    background: CancellationToken,
    admin: JoinHandle<()>,
    volume: JoinHandle<()>,
    /// The embedded control plane stops last, so the gateway's final usage report lands.
    control_stop: CancellationToken,
    control: Option<JoinHandle<Result<(), ControlError>>>,
}

/// Builds and starts every part from the config; nothing is served before each part it
/// needs is up (the embedded control plane's store is migrated before the token source
/// asks it for a snapshot).
async fn start(config: Config, listeners: Listeners) -> Result<Running, AppError> {
    for warning in validate(&config)? {
        tracing::warn!("{warning}");
    }
    let telemetry = Arc::new(Telemetry::new());
    let background = CancellationToken::new();
    let usage_stop = CancellationToken::new();
    let control_stop = CancellationToken::new();
    let control = start_embedded_control_plane(
        &config,
        listeners.control,
        &listeners.public,
        listeners.clock.clone(),
        control_stop.clone(),
    )
    .await?;
    let v = &config.volume;
    let gate = Arc::new(Gate::new(
        v.lease_bytes,
        v.over_cap,
        listeners.clock.clone(),
        telemetry.volume(),
    ));
    let filters = Arc::new(HeldFilters::new(listeners.clock.clone()));
    let tokens = start_token_source(
        &config.tokens,
        &telemetry,
        Arc::clone(&gate),
        Arc::clone(&filters),
        background.clone(),
        usage_stop.clone(),
    )
    .await?;

    // Live tails read this gateway's accepted batches, or what the Kafka topics receive
    // from every gateway (then the forward path does not offer its own: they come back).
    let tap = Arc::new(Tap::default());
    let kafka_tail = match config.tail.source {
        TailSource::Local => None,
        TailSource::Kafka => KafkaTailSource::for_sink(&config.sink),
    };
    let local_tap = kafka_tail.is_none().then(|| Arc::clone(&tap));
    let sink = Sink::from_config(&config.sink, telemetry.dead_letter_records("http"))?;
    let forward_metrics = telemetry.forward(sink.name());
    let (forwarder, forward) = forward::start(&config.forward, sink, forward_metrics, local_tap)?;
    let writable = forwarder.clone();
    let volume = start_volume(v, &gate, &filters, forwarder.clone(), background.clone()).await?;

    let s = &config.server;
    let ingest = Arc::new(Ingest::new(
        Arc::clone(&tokens.tokens),
        forwarder,
        ingest_limits(&config, &telemetry),
        s.max_concurrent_requests,
        telemetry.ingest(),
        AccountRules {
            filters,
            gate,
            otlp_429: config.volume.otlp_rate_limit_429,
        },
    ));
    let tls = match &s.tls {
        Some(t) => Some(server::tls::acceptor(&t.cert_path, &t.key_path)?),
        None => None,
    };
    let limits = conn_limits(s, &telemetry);

    let draining = Arc::new(AtomicBool::new(false));
    let ready = readiness(Arc::clone(&tokens.tokens), writable, Arc::clone(&draining));

    tracing::info!(addr = %listeners.public.local_addr()?, tls = tls.is_some(), "public listening");
    tracing::info!(addr = %listeners.admin.local_addr()?, "admin listening");

    let public_stop = CancellationToken::new();
    let tail_source = kafka_tail.map(|source| {
        tokio::spawn(source.run(Arc::clone(&tap), telemetry.tail(), public_stop.clone()))
    });
    let tail = Arc::new(Tail::new(
        Arc::clone(&tokens.tokens),
        tap,
        config.tail.clone(),
        telemetry.tail(),
        public_stop.clone(),
    ));
    let public = serve_public(
        listeners.public,
        tls,
        ingest,
        tail,
        limits.clone(),
        &telemetry,
        public_stop.clone(),
    );
    let admin = serve_admin(
        listeners.admin,
        telemetry,
        ready,
        limits,
        background.clone(),
    );
    Ok(Running {
        draining,
        public_stop,
        public,
        tail_source,
        usage_stop,
        tokens,
        forward,
        background,
        admin,
        volume,
        control_stop,
        control,
    })
}

/// Ready while the token table is loaded, the forward path takes records, and the
/// gateway is not draining.
fn readiness(
    tokens: Arc<Tokens>,
    forward: forward::Forwarder,
    draining: Arc<AtomicBool>,
) -> admin::Readiness {
    Arc::new(move || {
        tokens.is_loaded() && forward.is_writable() && !draining.load(Ordering::Relaxed)
    })
}

/// The admin listener: `/metrics`, `/healthz`, `/readyz`.
fn serve_admin(
    listener: TcpListener,
    telemetry: Arc<Telemetry>,
    ready: admin::Readiness,
    limits: ConnLimits,
    stop: CancellationToken,
) -> JoinHandle<()> {
    let metrics = telemetry.connections("admin");
    tokio::spawn(server::serve(
        listener,
        None,
        move |req| {
            let response = admin::handle(&req, &telemetry, &ready);
            async move { response }
        },
        limits,
        metrics,
        stop,
    ))
}

/// What the ingest routes allow a request, with the decode budget they share.
fn ingest_limits(config: &Config, telemetry: &Telemetry) -> Limits {
    let s = &config.server;
    Limits {
        max_body_bytes: s.max_body_bytes,
        max_decompressed_bytes: s.max_decompressed_bytes,
        max_line_bytes: s.max_line_bytes,
        body_read_timeout: s.body_read_timeout_secs,
        retry_after: config.forward.retry_after_secs,
        decode_budget: Arc::new(DecodeBudget::new(
            s.max_inflight_decoded_bytes,
            config.forward.retry_after_secs,
            telemetry.decode_budget(),
        )),
    }
}

/// What every connection of both listeners is held to, with the body budget they share.
fn conn_limits(s: &ServerConfig, telemetry: &Telemetry) -> ConnLimits {
    ConnLimits {
        header_read_timeout: s.header_read_timeout_secs,
        idle_timeout: s.idle_timeout_secs,
        max_header_bytes: s.max_header_bytes,
        body_read_timeout: s.body_read_timeout_secs,
        shutdown_grace: s.shutdown_grace_secs,
        body_budget: Arc::new(BodyBudget::new(
            s.max_inflight_body_bytes,
            telemetry.inflight_body_bytes(),
        )),
    }
}

impl Running {
    /// Stops the parts in order: readiness off, the public listener drained (in-flight
    /// requests answered), the last usage report, everything queued written to the sink,
    /// the admin listener and token source, the embedded control plane last.
    async fn drain(self) {
        tracing::info!("shutting down: draining in-flight requests");
        self.draining.store(true, Ordering::Relaxed);
        self.public_stop.cancel();
        if let Err(e) = self.public.await {
            tracing::error!(error = %e, "public listener task failed");
        }
        if let Some(task) = self.tail_source {
            let _ = task.await;
        }
        self.usage_stop.cancel();
        if let Some(task) = self.tokens.usage {
            let _ = task.await;
        }
        self.forward.close().await;
        self.background.cancel();
        let _ = self.admin.await;
        let _ = self.tokens.follower.await;
        let _ = self.volume.await;
        self.control_stop.cancel();
        if let Some(task) = self.control {
            match task.await {
                Ok(Err(e)) => tracing::error!(error = %e, "control plane failed"),
                Err(e) => tracing::error!(error = %e, "control plane task failed"),
                Ok(Ok(())) => {}
            }
        }
        tracing::info!("stopped");
    }
}

/// With `control_plane.embedded`, opens the embedded control plane's store and serves it
/// on its listener (bound here from `control_plane.listen` when the caller bound none). Live-tail links on its page
/// point at this gateway: loopback when the gateway listens on every address.
async fn start_embedded_control_plane(
    config: &Config,
    listener: Option<TcpListener>,
    public: &TcpListener,
    clock: Clock,
    stop: CancellationToken,
) -> Result<Option<JoinHandle<Result<(), ControlError>>>, AppError> {
    if !config.control_plane.embedded {
        return Ok(None);
    }
    let listener = match listener {
        Some(l) => l,
        None => TcpListener::bind(config.control_plane.listen).await?,
    };
    let mut cp_config = config.control_plane.clone();
    if cp_config.gateway_url.is_none() {
        let mut addr = public.local_addr()?;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let scheme = if config.server.tls.is_some() {
            "https"
        } else {
            "http"
        };
        cp_config.gateway_url = Some(format!("{scheme}://{addr}"));
    }
    let cp = ControlPlane::open_with_clock(&cp_config, clock)
        .await
        .map_err(ControlError::from)?;
    Ok(Some(tokio::spawn(crate::control::serve_with(
        cp, cp_config, listener, stop,
    ))))
}

/// The gateway's token table and the tasks that keep it current.
pub struct TokenSource {
    pub tokens: Arc<Tokens>,
    /// Follows the file or the feed until the `background` token given to
    /// `start_token_source` is cancelled (the state is persisted once more).
    pub follower: JoinHandle<()>,
    /// Reports usage to the control plane until its `usage_stop`; `None` for a file.
    pub usage: Option<JoinHandle<()>>,
}

/// Builds the token table from its source (`tokens.source`), loads it (the file, or the
/// persisted snapshot then the feed), and starts what keeps it current: the file watcher,
/// or the feed follower and the usage flusher. Tests start a gateway's follower with it.
/// The public listener: the ingest routes, and the live tails.
fn serve_public(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    ingest: Arc<Ingest>,
    tail: Arc<Tail>,
    limits: ConnLimits,
    telemetry: &Telemetry,
    stop: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(server::serve(
        listener,
        tls,
        // The ingest future as it is (no `async` block around it that would hold the
        // request too): it is boxed and copied once a request.
        move |req| {
            if Tail::serves(req.uri().path()) {
                future::Either::Left(future::ready(tail.serve(&req)))
            } else {
                let answer = Arc::clone(&ingest).serve(req);
                future::Either::Right(answer.map(|response| response.map(Either::Left)))
            }
        },
        limits,
        telemetry.connections("public"),
        stop,
    ))
}

/// The volume gate's background work: taking leases from the bank, writing the
/// utilization records this gateway wins, and counting the drop filters' thresholds
/// fleet-wide. The bank is Redis when `[volume]` names one (reached lazily: the gateway
/// starts while Redis is down), else this process.
async fn start_volume(
    v: &VolumeConfig,
    gate: &Arc<Gate>,
    filters: &Arc<HeldFilters>,
    forwarder: forward::Forwarder,
    stop: CancellationToken,
) -> Result<JoinHandle<()>, AppError> {
    let (gate, filters) = (Arc::clone(gate), Arc::clone(filters));
    if v.redis_url.is_none() && v.redis_cluster_nodes.is_empty() {
        let bank = Arc::new(LocalBank::default());
        return Ok(spawn_volume(v, bank, gate, filters, forwarder, stop));
    }
    let bank = Arc::new(RedisBank::connect(v).await?);
    Ok(spawn_volume(v, bank, gate, filters, forwarder, stop))
}

/// How often a gateway adds what its drop filters let through to the fleet's counts.
const THRESHOLD_SYNC: std::time::Duration = std::time::Duration::from_secs(1);

fn spawn_volume<B: Bank>(
    v: &VolumeConfig,
    bank: Arc<B>,
    gate: Arc<Gate>,
    filters: Arc<HeldFilters>,
    forwarder: forward::Forwarder,
    stop: CancellationToken,
) -> JoinHandle<()> {
    let leases = Arc::clone(&gate).run(Arc::clone(&bank), v.retry_secs, stop.clone());
    let thresholds = filters.run(Arc::clone(&bank), THRESHOLD_SYNC, stop.clone());
    let records = utilization::run(gate, bank, forwarder, v.utilization_check_secs, stop);
    tokio::spawn(async move {
        tokio::join!(leases, thresholds, records);
    })
}

pub async fn start_token_source(
    t: &TokensConfig,
    telemetry: &Telemetry,
    gate: Arc<Gate>,
    filters: Arc<HeldFilters>,
    background: CancellationToken,
    usage_stop: CancellationToken,
) -> Result<TokenSource, AppError> {
    match t.source {
        TokenSourceKind::File => {
            let tokens = Arc::new(Tokens::new(telemetry.tokens()));
            let mut source = FileSource::new(
                t.path.clone(),
                t.state_dir.clone(),
                t.watch_interval_secs,
                Arc::clone(&tokens),
                gate,
                filters,
                telemetry.token_source(),
            );
            source.boot().await;
            Ok(TokenSource {
                tokens,
                follower: tokio::spawn(source.run(background)),
                usage: None,
            })
        }
        TokenSourceKind::ControlPlane => {
            let client = FeedClient::new(
                t.url.as_deref().unwrap_or_default(),
                t.feed_secret.as_deref().unwrap_or_default(),
                t.request_timeout_secs,
            )?;
            let misses = MissCache::new(
                Arc::new(client.clone()),
                MissSettings::from_config(t),
                telemetry.miss_lookups(),
            );
            let usage = Arc::new(Usage::new());
            let tokens = Arc::new(Tokens::with_control_plane(
                telemetry.tokens(),
                misses,
                Arc::clone(&usage),
            ));
            let source = FeedSource::new(
                client.clone(),
                Arc::clone(&tokens),
                Arc::clone(&gate),
                Arc::clone(&filters),
                telemetry.token_source(),
                t.state_dir.clone(),
                FollowSettings::from_config(t),
            );
            source.boot().await;
            let flusher = tokio::spawn(usage::run_flusher(
                usage,
                gate,
                filters,
                client,
                t.usage_flush_interval_secs,
                telemetry.usage_flushes(),
                usage_stop,
            ));
            Ok(TokenSource {
                tokens,
                follower: tokio::spawn(source.run(background)),
                usage: Some(flusher),
            })
        }
    }
}
