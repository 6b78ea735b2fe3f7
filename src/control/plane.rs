//! `ControlPlane`: what the use cases share, and how it opens. The floor of the control
//! plane: it imports the store and nothing that serves HTTP.
//!
//! It holds the store, the clock, the credentials' digests, the feed's version notifier,
//! how long sessions live, the login limiter, the plans' default rate limits, and the
//! control plane's metrics registry (the API counts its requests there). Page-only settings live with the page
//! (`web::PageSettings`).

use std::sync::{Arc, OnceLock};

use prometheus::IntGauge;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::logins::LoginLimiter;
use super::store::{self, Store, StoreError};
use crate::clock::Clock;
use crate::config::{ControlPlaneConfig, RateLimits};
use crate::telemetry::ControlTelemetry;
use crate::tokens::wire::Digest;

/// The state every use case is given.
pub struct ControlPlane {
    pub(super) store: Store,
    pub(super) clock: Clock,
    pub(super) credentials: Credentials,
    pub(super) feed: Feed,
    pub(super) sessions: SessionPolicy,
    pub(super) logins: LoginLimiter,
    pub(super) shared_tokens: SharedTokenPolicy,
    /// Each plan's default rate limit, which the feed sends for accounts without their own.
    pub(super) rate_limits: RateLimits,
    /// Where people open the page, for the setup links users are sent: `public_url`,
    /// else the listener's address once bound.
    page_url: PageUrl,
    /// The control plane's metrics; the parts above hold handles taken from it.
    pub(super) telemetry: ControlTelemetry,
}

/// Digests, not the secrets: comparing digests leaks nothing about the secret.
pub(super) struct Credentials {
    pub admin_digest: Option<Digest>,
    pub feed_digest: Option<Digest>,
}

/// The feed's newest committed version, which long polls wake on.
pub(super) struct Feed {
    version: watch::Sender<i64>,
    gauge: IntGauge,
    /// How many feed versions of deletions are kept for `changes`; older `since` → 410.
    pub retained_versions: i64,
    /// Cancelled when serving stops, so long polls answer at once instead of holding
    /// graceful shutdown for their whole wait.
    pub stopping: CancellationToken,
}

impl Feed {
    /// A receiver that sees every version published from now on.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.version.subscribe()
    }
}

/// How long a page session and a setup link live (`[control_plane]` keys).
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    pub idle_secs: i64,
    pub max_age_secs: i64,
    pub setup_link_ttl_secs: i64,
}

/// What a shared token's expiry may be (`[control_plane]` keys).
#[derive(Debug, Clone, Copy)]
pub struct SharedTokenPolicy {
    pub max_lifetime_ms: i64,
    /// New tokens may be made without an expiry (legacy).
    pub without_expiry: bool,
}

/// `public_url` if configured; else `http://<listen>` until the listener is bound (the
/// `user add` command runs without one), then the bound address (port 0 in tests).
struct PageUrl {
    bound: OnceLock<String>,
    configured: String,
    is_public: bool,
}

impl ControlPlane {
    /// Opens and migrates the store; time is the system clock's.
    pub async fn open(config: &ControlPlaneConfig) -> Result<Arc<ControlPlane>, StoreError> {
        ControlPlane::open_with_clock(config, Clock::system()).await
    }

    /// Opens and migrates the store, reading "now" from `clock` (tests move it forward).
    pub async fn open_with_clock(
        config: &ControlPlaneConfig,
        clock: Clock,
    ) -> Result<Arc<ControlPlane>, StoreError> {
        let store = Store::open(&config.database_url).await?;
        // A store that cannot be reached fails here, first: say so as an open failure.
        let mut conn = store.conn().await.map_err(|e| match e {
            StoreError::Query(e) => StoreError::Open(e),
            other => other,
        })?;
        let version = store::feed::current_version(&mut conn).await?;
        drop(conn);
        let version = publish_rate_limits(&store, &config.rate_limits)
            .await?
            .unwrap_or(version);
        let telemetry = ControlTelemetry::new();
        telemetry.feed_version.set(version);
        Ok(Arc::new(ControlPlane {
            store,
            clock,
            credentials: Credentials {
                admin_digest: config.admin_secret.as_deref().map(Digest::of),
                feed_digest: config.feed_secret.as_deref().map(Digest::of),
            },
            feed: Feed {
                version: watch::Sender::new(version),
                gauge: telemetry.feed_version.clone(),
                retained_versions: i64::try_from(config.feed_retained_versions).unwrap_or(i64::MAX),
                stopping: CancellationToken::new(),
            },
            sessions: SessionPolicy {
                idle_secs: secs(config.session_idle_timeout_secs),
                max_age_secs: secs(config.session_max_age_secs),
                setup_link_ttl_secs: secs(config.setup_link_ttl_secs),
            },
            logins: LoginLimiter::new(telemetry.logins.clone()),
            shared_tokens: SharedTokenPolicy {
                max_lifetime_ms: i64::try_from(config.shared_token_max_lifetime_secs.as_millis())
                    .unwrap_or(i64::MAX),
                without_expiry: config.shared_tokens_without_expiry,
            },
            rate_limits: config.rate_limits,
            page_url: PageUrl {
                bound: OnceLock::new(),
                configured: config.page_url(),
                is_public: config.public_url.is_some(),
            },
            telemetry,
        }))
    }

    /// Where the Manage Tokens page is reached, without a trailing `/`.
    pub fn page_url(&self) -> &str {
        self.page_url
            .bound
            .get()
            .unwrap_or(&self.page_url.configured)
    }

    /// The listener is bound at `addr`: without a `public_url`, links name it (with port
    /// 0, the real port).
    pub(super) fn bound(&self, addr: std::net::SocketAddr) {
        if !self.page_url.is_public {
            let _ = self.page_url.bound.set(format!("http://{addr}"));
        }
    }

    /// The store's pool, for tools that load data in bulk (benchmarks, migrations).
    pub fn pool(&self) -> &sqlx::AnyPool {
        self.store.pool()
    }

    /// Wakes long polls after a commit that moved the feed to `version`.
    pub(super) fn published(&self, version: i64) {
        self.feed.version.send_if_modified(|current| {
            let newer = version > *current;
            if newer {
                *current = version;
                self.feed.gauge.set(version);
            }
            newer
        });
    }
}

/// Gateways keep the rates the feed last sent them: when the plans' defaults are not the
/// ones the store recorded, every family goes into the feed again before serving starts.
/// Every control plane on one store must be started with the same defaults.
async fn publish_rate_limits(
    store: &Store,
    rate_limits: &RateLimits,
) -> Result<Option<i64>, StoreError> {
    let json = |limits: &RateLimits| serde_json::to_string(limits).expect("rate limits encode");
    let mut tx = store.begin().await?;
    let none = json(&RateLimits::default());
    let version = store::volume::publish_rate_limits(&mut tx, &json(rate_limits), &none).await?;
    tx.commit().await?;
    Ok(version)
}

/// Sessions and setup links are kept in whole seconds: a fraction counts as a whole one, so
/// `0.5` lasts a second rather than not at all.
fn secs(value: std::time::Duration) -> i64 {
    let whole = value
        .as_secs()
        .saturating_add(u64::from(value.subsec_nanos() > 0));
    i64::try_from(whole).unwrap_or(i64::MAX)
}
