//! STAND-IN for the lead's session layer (reverted before merging main).
#![allow(unused_variables)]
use crate::control::ControlPlane;
use crate::control::auth::Caller;
use crate::control::error::ApiError;
use crate::control::store::accounts::Account;
use crate::control::store::users::User;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::HeaderValue;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
pub async fn layer(State(cp): State<Arc<ControlPlane>>, mut req: Request, next: Next) -> Response {
    req.extensions_mut().insert(Csrf("stand-in".into()));
    next.run(req).await
}
#[derive(Clone)]
pub struct Csrf(pub String);
#[derive(Clone)]
pub struct Session {
    pub user: User,
    pub home: Account,
    secret: String,
}
impl Session {
    pub async fn caller(&self, cp: &ControlPlane, account_id: i64) -> Result<Caller, ApiError> {
        Err(ApiError::NotFound("stand-in".into()))
    }
    pub fn secret(&self) -> &str {
        &self.secret
    }
}
impl FromRequestParts<Arc<ControlPlane>> for Session {
    type Rejection = Response;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ControlPlane>,
    ) -> Result<Self, Self::Rejection> {
        Err(ApiError::Unauthorized("stand-in").into_response())
    }
}
impl axum::extract::OptionalFromRequestParts<Arc<ControlPlane>> for Session {
    type Rejection = Response;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ControlPlane>,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(None)
    }
}
pub fn login_cookie(cp: &ControlPlane, session_secret: &str) -> HeaderValue {
    HeaderValue::from_static("x")
}
pub fn logout_cookie(cp: &ControlPlane) -> HeaderValue {
    HeaderValue::from_static("x")
}
pub fn client_ip(parts: &Parts) -> std::net::IpAddr {
    std::net::IpAddr::from([127, 0, 0, 1])
}
