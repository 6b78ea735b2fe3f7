//! Who is calling and which account the call acts on (DESIGN §4 "Management API").
//!
//! Two credentials: `X-API-TOKEN` (acts as an admin of its account) and the operator's
//! `Authorization: Bearer <admin secret>` (reaches every account). An API token acts on its
//! own account, or on the account `X-Account-Id` names when it reaches it: a sub-account
//! `accessible` from the token's main account, or a metrics/tracing/security account tied
//! to it. Everything is read per request, so revoking access or ending a trial takes
//! effect on the next call.

use axum::http::HeaderMap;
use rand::Rng;
use rand::distr::Alphanumeric;
use sqlx::Row;

use super::ControlPlane;
use super::error::ApiError;
use super::rules;
use super::store::{self, Account, Actor, now_secs};
use crate::tokens::Digest;

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
}

enum Credential {
    Admin,
    ApiToken { id: i64, home: Account },
}

/// Authenticates and resolves the account the call acts on.
pub async fn caller(cp: &ControlPlane, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let credential = credential(cp, headers).await?;
    let named = account_header(headers)?;
    match credential {
        Credential::Admin => {
            let id = named.ok_or_else(|| ApiError::Invalid {
                code: "request/ACCOUNT_REQUIRED",
                message: "the admin secret acts on the account named by the X-Account-Id header"
                    .into(),
            })?;
            let account = store::account(&cp.store.pool, id)
                .await?
                .ok_or_else(|| ApiError::not_found("account"))?;
            Ok(Caller {
                actor: Actor::Admin,
                home: None,
                account,
            })
        }
        Credential::ApiToken { id, home } => {
            let account = match named {
                None => home.clone(),
                Some(target) if target == home.id => home.clone(),
                Some(target) => reach(cp, &home, target).await?,
            };
            Ok(Caller {
                actor: Actor::ApiToken(id),
                home: Some(home),
                account,
            })
        }
    }
}

/// The operator alone: creating main accounts.
pub async fn admin(cp: &ControlPlane, headers: &HeaderMap) -> Result<(), ApiError> {
    match credential(cp, headers).await? {
        Credential::Admin => Ok(()),
        Credential::ApiToken { .. } => Err(ApiError::forbidden(
            "auth/ADMIN_REQUIRED",
            "only the operator's admin secret may do this",
        )),
    }
}

/// Calls that configure accounts (sub-accounts, their access) need the main account's API
/// token or the operator.
pub fn require_main_account(caller: &Caller) -> Result<(), ApiError> {
    match &caller.home {
        None => Ok(()),
        Some(home) if home.is_main() && home.account_type == rules::AccountType::Logs => Ok(()),
        Some(_) => Err(ApiError::forbidden(
            "auth/MAIN_ACCOUNT_REQUIRED",
            "this call needs the main account's API token",
        )),
    }
}

async fn credential(cp: &ControlPlane, headers: &HeaderMap) -> Result<Credential, ApiError> {
    if let Some(value) = headers.get(axum::http::header::AUTHORIZATION) {
        let secret = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(ApiError::Unauthorized(
                "the Authorization header must be `Bearer <admin secret>`",
            ))?;
        return match &cp.admin_digest {
            Some(d) if *d == Digest::of(secret) => Ok(Credential::Admin),
            _ => Err(ApiError::Unauthorized("the admin secret is not valid")),
        };
    }
    let token = headers
        .get("x-api-token")
        .ok_or(ApiError::Unauthorized("an X-API-TOKEN header is required"))?
        .to_str()
        .map_err(|_| ApiError::Unauthorized("the API token is not valid"))?;
    let row = sqlx::query("SELECT id, account_id FROM api_tokens WHERE digest = $1")
        .bind(digest_hex(token))
        .fetch_optional(&cp.store.pool)
        .await?
        .ok_or(ApiError::Unauthorized("the API token is not valid"))?;
    let id: i64 = row.try_get("id")?;
    let home = store::account(&cp.store.pool, row.try_get("account_id")?)
        .await?
        .ok_or(ApiError::Unauthorized("the API token is not valid"))?;
    rules::check_api_token_usable(home.plan, home.trial_ends_at, now_secs())?;
    Ok(Credential::ApiToken { id, home })
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
async fn reach(cp: &ControlPlane, home: &Account, target: i64) -> Result<Account, ApiError> {
    let refused = || {
        ApiError::forbidden(
            "auth/FORBIDDEN",
            format!("this API token does not reach account {target}"),
        )
    };
    let account = store::account(&cp.store.pool, target)
        .await?
        .ok_or_else(refused)?;
    if !home.is_main() || home.account_type != rules::AccountType::Logs {
        return Err(refused());
    }
    if account.owner_id != Some(home.id) {
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
