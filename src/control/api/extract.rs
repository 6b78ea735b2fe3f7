//! What every management and feed handler needs before it can ask a use case, taken from
//! the request once: who is calling (`Caller`, `Authenticated`, `Operator`, `Gateway`)
//! and which object the path names (`Id`). A handler names them as arguments and never
//! reads a credential header itself. Axum runs them in argument order, so a handler
//! lists the caller before the id: an unauthenticated call is 401 whatever its path.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};

use super::error::ApiError;
use crate::control::plane::ControlPlane;
use crate::control::refusal::Refusal;
use crate::control::store::Actor;
use crate::control::usecases::callers::{self, Caller, Credential, Presented};

/// `Authorization: Bearer <admin secret>` or `X-API-TOKEN`, as sent.
fn presented(headers: &HeaderMap) -> Result<Presented<'_>, Refusal> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let secret = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(Refusal::Unauthenticated(
                "the Authorization header must be `Bearer <admin secret>`",
            ))?;
        return Ok(Presented::AdminSecret(secret));
    }
    let token = headers
        .get("x-api-token")
        .ok_or(Refusal::Unauthenticated(
            "an X-API-TOKEN header is required",
        ))?
        .to_str()
        .map_err(|_| Refusal::Unauthenticated("the API token is not valid"))?;
    Ok(Presented::ApiToken(token))
}

/// `X-Account-Id`: the account the call acts on, if it names one.
fn account_header(headers: &HeaderMap) -> Result<Option<i64>, Refusal> {
    let Some(value) = headers.get("x-account-id") else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok())
        .map(Some)
        .ok_or_else(|| Refusal::invalid("X-Account-Id must be an account id (an integer)"))
}

/// A checked credential, for calls that name their account in the body (an API token
/// for a sub-account, a user of another account) and may fall back to `X-Account-Id`.
pub struct Authenticated {
    credential: Credential,
    account_header: Option<i64>,
}

impl Authenticated {
    /// The caller acting on `account_id`, with the reach rules `X-Account-Id` has.
    pub async fn acting_on(self, cp: &ControlPlane, account_id: i64) -> Result<Caller, Refusal> {
        callers::acting_on(cp, self.credential, Some(account_id)).await
    }

    /// The caller acting on `X-Account-Id`'s account, or the API token's own.
    pub async fn caller(self, cp: &ControlPlane) -> Result<Caller, Refusal> {
        callers::acting_on(cp, self.credential, self.account_header).await
    }
}

impl FromRequestParts<Arc<ControlPlane>> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        cp: &Arc<ControlPlane>,
    ) -> Result<Authenticated, ApiError> {
        let credential = callers::authenticate(cp, presented(&parts.headers)?).await?;
        let account_header = account_header(&parts.headers)?;
        Ok(Authenticated {
            credential,
            account_header,
        })
    }
}

/// The caller of a management call and the account it acts on.
impl FromRequestParts<Arc<ControlPlane>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        cp: &Arc<ControlPlane>,
    ) -> Result<Caller, ApiError> {
        let authenticated = Authenticated::from_request_parts(parts, cp).await?;
        Ok(authenticated.caller(cp).await?)
    }
}

/// The operator, by the admin secret: an API token is refused (403).
pub struct Operator(pub Actor);

impl FromRequestParts<Arc<ControlPlane>> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        cp: &Arc<ControlPlane>,
    ) -> Result<Operator, ApiError> {
        let credential = callers::authenticate(cp, presented(&parts.headers)?).await?;
        Ok(Operator(callers::operator(&credential)?))
    }
}

/// A gateway, by `Authorization: Bearer <feed secret>`.
pub struct Gateway;

impl FromRequestParts<Arc<ControlPlane>> for Gateway {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        cp: &Arc<ControlPlane>,
    ) -> Result<Gateway, ApiError> {
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        callers::gateway(cp, presented)?;
        Ok(Gateway)
    }
}

/// The id of the object the path names. Ids are integers; anything else names no
/// object, so it is 404 like an id that doesn't exist.
pub struct Id(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Id, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| Refusal::NotFound("no such object".into()))?;
        raw.parse::<i64>()
            .map(Id)
            .map_err(|_| Refusal::NotFound(format!("no object has the id {raw:?}")).into())
    }
}
