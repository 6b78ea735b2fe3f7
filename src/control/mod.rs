//! The control plane (DESIGN §4): where accounts manage their tokens, and the feed that
//! keeps every gateway's token table current. It runs as `tollgate control-plane` or inside
//! `tollgate serve` (`[control_plane] embedded = true`), on its own listener.
//!
//! Layers, each importing only the ones below it:
//! - one file per resource for the management API (`accounts`, `metrics_accounts`,
//!   `shipping_tokens`, `api_tokens`, `shared_tokens`, `audit`) and the gateways' `feed`: authenticate the
//!   caller (`auth`), parse the request (`json`), call a use case, answer in Logz.io's shape;
//! - `usecases`: one function per thing that can be done to an account, shared by the API
//!   and the coming web page — authorization, the product's rules (`rules`, pure), one
//!   transaction with the audit event and the feed version, then waking long polls;
//! - `store`: every SQL statement, typed rows, `StoreError`.
//!
//! "Now" comes from the `Clock` the control plane is given. `ApiError` is the only way out.

pub mod accounts;
pub mod api_tokens;
pub mod audit;
pub mod auth;
pub mod clock;
pub mod error;
pub mod feed;
pub mod json;
pub mod metrics_accounts;
pub mod rules;
pub mod shared_tokens;
pub mod shipping_tokens;
pub mod store;
pub mod usecases;
pub mod users;
pub mod web;

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::ControlPlaneConfig;
use crate::telemetry::ControlTelemetry;
use crate::tokens::wire::Digest;
pub use clock::Clock;
pub use error::ApiError;
use store::Store;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("control plane store: {0}")]
    Store(#[from] store::StoreError),
    #[error("control plane listener: {0}")]
    Io(#[from] std::io::Error),
    /// A use case said no (the `tollgate user add` command).
    #[error("{0}")]
    Refused(#[from] ApiError),
}

/// What every handler shares: the store, the clock, the secrets' digests and the feed's
/// notifier.
pub struct ControlPlane {
    store: Store,
    clock: Clock,
    /// Digests, not the secrets: comparing digests leaks nothing about the secret.
    admin_digest: Option<Digest>,
    feed_digest: Option<Digest>,
    /// The newest committed feed version, for long polls to wake on.
    feed_version: watch::Sender<i64>,
    /// How many feed versions of deletions are kept for `changes`; older `since` → 410.
    feed_retained_versions: i64,
    telemetry: ControlTelemetry,
    /// Cancelled when serving stops, so long polls answer at once instead of holding
    /// graceful shutdown for their whole wait.
    stopping: CancellationToken,
    /// How long page sessions and setup links live.
    users: usecases::users::UserPolicy,
    logins: usecases::users::LoginLimiter,
    /// Where people open the page: `public_url`, else the listener's address once bound
    /// (before that, `http://<listen>`: the `user add` command runs without a listener).
    page_url: OnceLock<String>,
    configured_page_url: String,
    has_public_url: bool,
    /// `Secure` session cookies: the page is reached over https.
    secure_cookies: bool,
    /// Where the gateways' public listener is reached, without a trailing `/`: the start
    /// of a shared token's live-tail link. `None`: the page offers none.
    gateway_url: Option<String>,
}

impl ControlPlane {
    /// Opens and migrates the store; time is the system clock's.
    pub async fn open(config: &ControlPlaneConfig) -> Result<Arc<ControlPlane>, ControlError> {
        ControlPlane::open_with_clock(config, Clock::system()).await
    }

    /// Opens and migrates the store, reading "now" from `clock` (tests move it forward).
    pub async fn open_with_clock(
        config: &ControlPlaneConfig,
        clock: Clock,
    ) -> Result<Arc<ControlPlane>, ControlError> {
        let store = Store::open(&config.database_url).await?;
        // A store that cannot be reached fails here, first: say so as an open failure.
        let mut conn = store.conn().await.map_err(|e| match e {
            store::StoreError::Query(e) => store::StoreError::Open(e),
            other => other,
        })?;
        let version = store::feed::current_version(&mut conn).await?;
        let telemetry = ControlTelemetry::new();
        telemetry.feed_version.set(version);
        Ok(Arc::new(ControlPlane {
            store,
            clock,
            admin_digest: config.admin_secret.as_deref().map(Digest::of),
            feed_digest: config.feed_secret.as_deref().map(Digest::of),
            feed_version: watch::Sender::new(version),
            feed_retained_versions: i64::try_from(config.feed_retained_versions)
                .unwrap_or(i64::MAX),
            stopping: CancellationToken::new(),
            telemetry,
            users: usecases::users::UserPolicy {
                session_idle_secs: secs(config.session_idle_timeout_secs),
                session_max_age_secs: secs(config.session_max_age_secs),
                setup_link_ttl_secs: secs(config.setup_link_ttl_secs),
            },
            logins: usecases::users::LoginLimiter::default(),
            page_url: OnceLock::new(),
            configured_page_url: config.page_url(),
            has_public_url: config.public_url.is_some(),
            secure_cookies: config.page_url().starts_with("https://"),
            gateway_url: config
                .gateway_url
                .as_deref()
                .map(|url| url.trim_end_matches('/').to_string()),
        }))
    }

    /// Where the Manage Tokens page is reached, without a trailing `/`.
    pub fn page_url(&self) -> &str {
        self.page_url.get().unwrap_or(&self.configured_page_url)
    }

    /// Where the gateways' public listener is reached, if configured.
    pub fn gateway_url(&self) -> Option<&str> {
        self.gateway_url.as_deref()
    }

    /// The store's pool, for tools that load data in bulk (benchmarks, migrations).
    pub fn pool(&self) -> &sqlx::AnyPool {
        self.store.pool()
    }

    /// Wakes long polls after a commit that moved the feed to `version`.
    fn published(&self, version: i64) {
        self.feed_version.send_if_modified(|current| {
            let newer = version > *current;
            if newer {
                *current = version;
                self.telemetry.feed_version.set(version);
            }
            newer
        });
    }

    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .merge(accounts::routes())
            .merge(metrics_accounts::routes())
            .merge(shipping_tokens::routes())
            .merge(api_tokens::routes())
            .merge(shared_tokens::routes())
            .merge(audit::routes())
            .merge(users::routes())
            .merge(feed::routes())
            .route("/v1/openapi.json", get(openapi))
            .nest(
                "/ui",
                web::routes().layer(middleware::from_fn_with_state(
                    Arc::clone(self),
                    web::session::layer,
                )),
            )
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/metrics", get(metrics))
            .fallback(|| async { ApiError::NotFound("no such route".into()) })
            .method_not_allowed_fallback(|| async {
                ApiError::Framing {
                    status: StatusCode::METHOD_NOT_ALLOWED,
                    code: "request/METHOD_NOT_ALLOWED",
                    message: "this route does not take that method".into(),
                }
            })
            .layer(DefaultBodyLimit::max(json::MAX_BODY_BYTES))
            .layer(middleware::from_fn_with_state(Arc::clone(self), observe))
            .with_state(Arc::clone(self))
    }
}

async fn metrics(State(cp): State<Arc<ControlPlane>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        cp.telemetry.render(),
    )
}

/// Counts every call by route template and status, and refusals by `errorCode`.
async fn observe(State(cp): State<Arc<ControlPlane>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(req).await;
    cp.telemetry
        .observe(&route, response.status().as_u16(), started.elapsed());
    if let Some(error::ErrorCode(code)) = response.extensions().get::<error::ErrorCode>() {
        cp.telemetry.refused(code);
    }
    response
}

/// Sessions and setup links are kept in whole seconds: a fraction counts as a whole one, so
/// `0.5` lasts a second rather than not at all.
fn secs(value: std::time::Duration) -> i64 {
    let whole = value
        .as_secs()
        .saturating_add(u64::from(value.subsec_nanos() > 0));
    i64::try_from(whole).unwrap_or(i64::MAX)
}

/// The OpenAPI 3 document of the management API and the feed, kept in the repository.
pub const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
}

/// Creates a user of `account_id` as the operator, straight on the store (`tollgate user
/// add`): how an account gets its first admin. The answer holds the one-time setup link.
pub async fn add_user(
    config: &ControlPlaneConfig,
    account_id: i64,
    new: &usecases::users::NewUser<'_>,
) -> Result<usecases::users::Invited, ControlError> {
    let cp = ControlPlane::open(config).await?;
    let caller = auth::operator_on(&cp, account_id).await?;
    Ok(usecases::users::invite(&cp, &caller, new).await?)
}

/// Opens the store and serves the API on `listener` until `shutdown` is cancelled.
pub async fn serve(
    config: ControlPlaneConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ControlError> {
    let cp = ControlPlane::open(&config).await?;
    serve_with(cp, listener, shutdown).await
}

/// Serves an opened control plane (tests keep the handle to reach the store).
pub async fn serve_with(
    cp: Arc<ControlPlane>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ControlError> {
    let addr = listener.local_addr()?;
    if !cp.has_public_url {
        // The bound address: with port 0 (tests) links name the real port.
        let _ = cp.page_url.set(format!("http://{addr}"));
    }
    let page = format!("{}/ui", cp.page_url());
    tracing::info!(%addr, %page, "control plane listening");
    let stopping = cp.stopping.clone();
    let app = cp
        .router()
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.cancelled().await;
            stopping.cancel();
        })
        .await?;
    Ok(())
}
