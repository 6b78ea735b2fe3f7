//! The Manage Tokens page: server-rendered, assets embedded, served under `/ui` by the
//! control plane. Every handler calls the same use cases as the API; `session` resolves
//! the user and guards every form with a CSRF token.

pub mod session;

use std::sync::Arc;

use axum::Router;

use super::ControlPlane;

/// The page's routes, relative to `/ui`; `ControlPlane::router` wraps them in `session::layer`.
pub fn routes() -> Router<Arc<ControlPlane>> {
    Router::new()
}
