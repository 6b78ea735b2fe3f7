//! Who is calling and which account the call acts on (DESIGN §4 "Management API"), and
//! the gateways' feed secret.
//!
//! Two credentials for the management API: `X-API-TOKEN` (acts as an admin of its
//! account) and the operator's `Authorization: Bearer <admin secret>` (reaches every
//! account). The Manage Tokens page's users (`web::session` resolves their cookie) act
//! with their role: an admin reaches what its account's API token reaches, other roles
//! their own account only. An API token acts on its own account, or on the account `X-Account-Id` names
//! when it reaches it: a sub-account `accessible` from the token's main account, or a
//! metrics/tracing/security account tied to it. Everything is read per request, so
//! revoking access or ending a trial takes effect on the next call. The feed takes
//! `Authorization: Bearer <feed secret>` only.

use axum::http::{HeaderMap, header};
use rand::Rng;
use rand::distr::Alphanumeric;

use super::ControlPlane;
use super::error::ApiError;
use super::rules;
use super::store::accounts::{self, Account};
use super::store::users::{Role, User};
use super::store::{Actor, api_tokens};
use crate::tokens::wire::Digest;

/// A 32-character `[A-Za-z0-9]` secret from the thread-local CSPRNG (ChaCha, seeded and
/// reseeded from the OS): shipping, API and shared tokens alike.
pub fn new_secret() -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// The SHA-256 hex the store keeps and the feed carries.
pub fn digest_hex(secret: &str) -> String {
    Digest::of(secret).to_hex()
}

/// The authenticated caller and the account the call acts on.
#[derive(Debug, Clone)]
pub struct Caller {
    pub actor: Actor,
    /// The account an API token belongs to; `None` for the operator.
    pub home: Option<Account>,
    /// The account the call acts on.
    pub account: Account,
    /// `Admin` for the operator and API tokens; a user's own role.
    pub role: Role,
}

impl Caller {
    /// Only account admins create, delete or manage tokens and users (the product's
    /// "Admin Access Required"); users and read-only users see shared tokens only.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.role == Role::Admin {
            return Ok(());
        }
        Err(ApiError::forbidden(
            "auth/ADMIN_ROLE_REQUIRED",
            "only the account's admins may do this",
        ))
    }

    /// Calls that configure accounts (sub-accounts, their access) need the main account's
    /// API token or the operator.
    pub fn require_main_account(&self) -> Result<(), ApiError> {
        match &self.home {
            None => Ok(()),
            Some(home) if home.is_main_logs() => Ok(()),
            Some(_) => Err(ApiError::forbidden(
                "auth/MAIN_ACCOUNT_REQUIRED",
                "this call needs the main account's API token",
            )),
        }
    }
}

enum Credential {
    Operator,
    ApiToken { id: i64, home: Account },
}

/// Authenticates and resolves the account the call acts on.
pub async fn caller(cp: &ControlPlane, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let credential = credential(cp, headers).await?;
    let named = account_header(headers)?;
    caller_for(cp, credential, named).await
}

/// Like `caller`, acting on `account_id` as if `X-Account-Id` named it: the same reach
/// rules apply (creating an API token for a sub-account).
pub async fn caller_acting_on(
    cp: &ControlPlane,
    headers: &HeaderMap,
    account_id: i64,
) -> Result<Caller, ApiError> {
    let credential = credential(cp, headers).await?;
    caller_for(cp, credential, Some(account_id)).await
}

async fn caller_for(
    cp: &ControlPlane,
    credential: Credential,
    named: Option<i64>,
) -> Result<Caller, ApiError> {
    match credential {
        Credential::Operator => {
            let id = named.ok_or_else(|| ApiError::Invalid {
                code: "request/ACCOUNT_REQUIRED",
                message: "the admin secret acts on the account named by the X-Account-Id header"
                    .into(),
            })?;
            let mut conn = cp.store.conn().await?;
            let account = accounts::get(&mut conn, id)
                .await?
                .ok_or_else(|| ApiError::not_found("account"))?;
            Ok(Caller {
                actor: Actor::Operator,
                home: None,
                account,
                role: Role::Admin,
            })
        }
        Credential::ApiToken { id, home } => {
            let account = match named {
                None => home.clone(),
                Some(target) if target == home.id => home.clone(),
                Some(target) => reach(cp, &home, target, "this API token").await?,
            };
            Ok(Caller {
                actor: Actor::ApiToken(id),
                home: Some(home),
                account,
                role: Role::Admin,
            })
        }
    }
}

/// A logged-in user acting on `account_id`: its own account, or, for an admin, what its
/// account's API token would reach with `X-Account-Id`.
pub async fn user_caller(
    cp: &ControlPlane,
    user: &User,
    home: &Account,
    account_id: i64,
) -> Result<Caller, ApiError> {
    let account = if account_id == home.id {
        home.clone()
    } else if user.role == Role::Admin {
        reach(cp, home, account_id, "this user").await?
    } else {
        return Err(ApiError::forbidden(
            "auth/FORBIDDEN",
            format!("this user does not reach account {account_id}"),
        ));
    };
    Ok(Caller {
        actor: Actor::User(user.id),
        home: Some(home.clone()),
        account,
        role: user.role,
    })
}

/// The operator acting on `account_id` without a request: the `tollgate user add` command,
/// run by whoever holds the control plane's config.
pub async fn operator_on(cp: &ControlPlane, account_id: i64) -> Result<Caller, ApiError> {
    caller_for(cp, Credential::Operator, Some(account_id)).await
}

/// The operator alone: creating main accounts.
pub async fn operator(cp: &ControlPlane, headers: &HeaderMap) -> Result<Actor, ApiError> {
    match credential(cp, headers).await? {
        Credential::Operator => Ok(Actor::Operator),
        Credential::ApiToken { .. } => Err(ApiError::forbidden(
            "auth/ADMIN_REQUIRED",
            "only the operator's admin secret may do this",
        )),
    }
}

/// A gateway, with the feed secret.
pub fn feed(cp: &ControlPlane, headers: &HeaderMap) -> Result<(), ApiError> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match (presented, &cp.feed_digest) {
        (Some(secret), Some(expected)) if Digest::of(secret) == *expected => Ok(()),
        _ => Err(ApiError::FeedUnauthorized(
            "the feed needs `Authorization: Bearer <feed secret>`",
        )),
    }
}

async fn credential(cp: &ControlPlane, headers: &HeaderMap) -> Result<Credential, ApiError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let secret = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(ApiError::Unauthorized(
                "the Authorization header must be `Bearer <admin secret>`",
            ))?;
        return match &cp.admin_digest {
            Some(d) if *d == Digest::of(secret) => Ok(Credential::Operator),
            _ => Err(ApiError::Unauthorized("the admin secret is not valid")),
        };
    }
    let token = headers
        .get("x-api-token")
        .ok_or(ApiError::Unauthorized("an X-API-TOKEN header is required"))?
        .to_str()
        .map_err(|_| ApiError::Unauthorized("the API token is not valid"))?;
    let mut conn = cp.store.conn().await?;
    let found = api_tokens::find(&mut conn, &digest_hex(token))
        .await?
        .ok_or(ApiError::Unauthorized("the API token is not valid"))?;
    let home = accounts::get(&mut conn, found.account_id)
        .await?
        .ok_or(ApiError::Unauthorized("the API token is not valid"))?;
    let now = cp.clock.now_secs();
    rules::check_api_token_usable(home.plan, home.trial_ends_at, now)?;
    // At most one write a minute per token: "last used" for the page, not an access log.
    if found.last_used.is_none_or(|t| now - t >= 60) {
        api_tokens::mark_used(&mut conn, found.id, now).await?;
    }
    Ok(Credential::ApiToken { id: found.id, home })
}

fn account_header(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(value) = headers.get("x-account-id") else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok())
        .map(Some)
        .ok_or_else(|| ApiError::invalid("X-Account-Id must be an account id (an integer)"))
}

/// Whether `home`'s API token reaches account `target`; an account that doesn't exist is
/// answered like one that isn't reachable, so ids can't be probed.
async fn reach(
    cp: &ControlPlane,
    home: &Account,
    target: i64,
    who: &str,
) -> Result<Account, ApiError> {
    let refused = || {
        ApiError::forbidden(
            "auth/FORBIDDEN",
            format!("{who} does not reach account {target}"),
        )
    };
    let mut conn = cp.store.conn().await?;
    let account = accounts::get(&mut conn, target)
        .await?
        .ok_or_else(refused)?;
    if !home.is_main_logs() || account.owner_id != Some(home.id) {
        return Err(refused());
    }
    if account.is_sub_account() && !account.accessible {
        return Err(ApiError::forbidden(
            "auth/NOT_ACCESSIBLE",
            format!("sub-account {target} is not accessible from the main account"),
        ));
    }
    Ok(account)
}
