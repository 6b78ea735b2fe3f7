//! The control plane (DESIGN §4): where accounts manage their tokens, and the feed that
//! keeps every gateway's token table current. It runs as `tollgate control-plane` or inside
//! `tollgate serve` (`[control_plane] embedded = true`), on its own listener.
//!
//! Layers, each importing only the ones below it:
//! - `api` (the management API and the feed: one file per resource, extractors for the
//!   caller and ids, the one place a refusal becomes an HTTP answer) and `web` (the
//!   Manage Tokens page): they parse a request, call a use case and answer;
//! - `usecases`: one function per thing a person or a gateway can do, shared by the API
//!   and the page — who may (`usecases::callers`), the product's `rules` (pure), one
//!   transaction with the audit event and the feed version, then waking long polls;
//! - `plane` (the state the use cases share), `rules` and `volume` (pure product rules),
//!   `refusal` (a no, in the product's terms), `clock`, and `store` (every SQL statement,
//!   typed rows).
//!
//! This file serves them: the listener, the router from `api` and `web`, shutdown.

pub mod api;
pub mod logins;
pub mod plane;
pub mod refusal;
pub mod rules;
pub mod store;
pub mod usecases;
pub mod volume;
pub mod web;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use crate::clock::Clock;
use crate::config::ControlPlaneConfig;
pub use plane::ControlPlane;
pub use refusal::Refusal;
use usecases::users::{Invited, NewUser};

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("control plane store: {0}")]
    Store(#[from] store::StoreError),
    #[error("control plane listener: {0}")]
    Io(#[from] std::io::Error),
    /// A use case said no (the `tollgate user add` command).
    #[error("{0}")]
    Refused(#[from] Refusal),
}

/// Creates a user of `account_id` as the operator, straight on the store (`tollgate user
/// add`): how an account gets its first admin. The answer holds the one-time setup link.
pub async fn add_user(
    config: &ControlPlaneConfig,
    account_id: i64,
    new: &NewUser<'_>,
) -> Result<Invited, ControlError> {
    let cp = ControlPlane::open(config).await?;
    let caller = usecases::callers::operator_on(&cp, account_id).await?;
    Ok(usecases::users::invite(&cp, &caller, new).await?)
}

/// Opens the store and serves the API and the page on `listener` until `shutdown` is
/// cancelled.
pub async fn serve(
    config: ControlPlaneConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ControlError> {
    let cp = ControlPlane::open(&config).await?;
    serve_with(cp, config, listener, shutdown).await
}

/// Serves an opened control plane (tests keep the handle to reach the store).
pub async fn serve_with(
    cp: Arc<ControlPlane>,
    config: ControlPlaneConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ControlError> {
    let addr = listener.local_addr()?;
    cp.bound(addr);
    let page = format!("{}{}", cp.page_url(), web::BASE);
    tracing::info!(%addr, %page, "control plane listening");
    let stopping = cp.feed.stopping.clone();
    let watcher = {
        let cp = Arc::clone(&cp);
        tokio::spawn(async move { usecases::feed::watch_versions(&cp).await })
    };
    let routes = api::routes(Arc::clone(&cp)).nest(
        web::BASE,
        web::routes(Arc::clone(&cp), web::PageSettings::from_config(&config)),
    );
    let app = api::around(routes, cp).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.cancelled().await;
            stopping.cancel();
        })
        .await?;
    let _ = watcher.await;
    Ok(())
}
