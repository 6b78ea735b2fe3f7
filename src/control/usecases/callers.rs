//! Who is calling and which account the call acts on (DESIGN §4 "Management API"), and
//! the gateways' feed secret. The API reads the credentials from headers
//! (`api::extract`); what they grant is decided here.
//!
//! Two credentials for the management API: an API token (acts as an admin of its
//! account) and the operator's admin secret (reaches every account). The Manage Tokens page's users (`web::session` resolves their cookie) act
//! with their role: an admin reaches what its account's API token reaches, other roles
//! their own account only. An API token acts on its own account, or on the account `X-Account-Id` names
//! when it reaches it: a sub-account `accessible` from the token's main account, or a
//! metrics/tracing/security account tied to it. Everything is read per request, so
//! revoking access or ending a trial takes effect on the next call. The feed takes the
//! feed secret only.

use rand::Rng;
use rand::distr::Alphanumeric;

use crate::control::plane::ControlPlane;
use crate::control::refusal::Refusal;
use crate::control::rules;
use crate::control::store::accounts::{self, Account};
use crate::control::store::users::{Role, User};
use crate::control::store::{Actor, api_tokens};
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
    pub fn require_admin(&self) -> Result<(), Refusal> {
        if self.role == Role::Admin {
            return Ok(());
        }
        Err(Refusal::forbidden(
            "auth/ADMIN_ROLE_REQUIRED",
            "only the account's admins may do this",
        ))
    }

    /// Calls that configure accounts (sub-accounts, their access) need the main account's
    /// API token or the operator.
    pub fn require_main_account(&self) -> Result<(), Refusal> {
        match &self.home {
            None => Ok(()),
            Some(home) if home.is_main_logs() => Ok(()),
            Some(_) => Err(Refusal::forbidden(
                "auth/MAIN_ACCOUNT_REQUIRED",
                "this call needs the main account's API token",
            )),
        }
    }
}

/// A credential as presented, not yet checked: the API reads it from headers.
pub enum Presented<'a> {
    /// `Authorization: Bearer <admin secret>`.
    AdminSecret(&'a str),
    /// `X-API-TOKEN`.
    ApiToken(&'a str),
}

/// A checked credential: whom the call comes from, before the account it acts on.
pub enum Credential {
    Operator,
    ApiToken { id: i64, home: Account },
}

/// Checks a presented credential: the admin secret against its digest, an API token
/// against the store and its account's plan (a trial's tokens stop with the trial).
pub async fn authenticate(
    cp: &ControlPlane,
    presented: Presented<'_>,
) -> Result<Credential, Refusal> {
    let token = match presented {
        Presented::AdminSecret(secret) => {
            return match &cp.credentials.admin_digest {
                Some(d) if *d == Digest::of(secret) => Ok(Credential::Operator),
                _ => Err(Refusal::Unauthenticated("the admin secret is not valid")),
            };
        }
        Presented::ApiToken(token) => token,
    };
    let invalid = || Refusal::Unauthenticated("the API token is not valid");
    let mut conn = cp.store.conn().await?;
    let found = api_tokens::find(&mut conn, &digest_hex(token))
        .await?
        .ok_or_else(invalid)?;
    let home = accounts::get(&mut conn, found.account_id)
        .await?
        .ok_or_else(invalid)?;
    let now = cp.clock.now_secs();
    rules::check_api_token_usable(home.plan, home.trial_ends_at, now)?;
    // At most one write a minute per token: "last used" for the page, not an access log.
    if found.last_used.is_none_or(|t| now - t >= 60) {
        api_tokens::mark_used(&mut conn, found.id, now).await?;
    }
    Ok(Credential::ApiToken { id: found.id, home })
}

/// The caller a credential makes, acting on `named` (`X-Account-Id`, or an account a
/// body names) or, without one, on the API token's own account. The operator must name
/// one.
pub async fn acting_on(
    cp: &ControlPlane,
    credential: Credential,
    named: Option<i64>,
) -> Result<Caller, Refusal> {
    match credential {
        Credential::Operator => {
            let id = named.ok_or_else(|| Refusal::Invalid {
                code: "request/ACCOUNT_REQUIRED",
                message: "the admin secret acts on the account named by the X-Account-Id header"
                    .into(),
            })?;
            let mut conn = cp.store.conn().await?;
            let account = accounts::get(&mut conn, id)
                .await?
                .ok_or_else(|| Refusal::not_found("account"))?;
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
) -> Result<Caller, Refusal> {
    let account = if account_id == home.id {
        home.clone()
    } else if user.role == Role::Admin {
        reach(cp, home, account_id, "this user").await?
    } else {
        return Err(Refusal::forbidden(
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
pub async fn operator_on(cp: &ControlPlane, account_id: i64) -> Result<Caller, Refusal> {
    acting_on(cp, Credential::Operator, Some(account_id)).await
}

/// The operator alone: creating main accounts.
pub fn operator(credential: &Credential) -> Result<Actor, Refusal> {
    match credential {
        Credential::Operator => Ok(Actor::Operator),
        Credential::ApiToken { .. } => Err(Refusal::forbidden(
            "auth/ADMIN_REQUIRED",
            "only the operator's admin secret may do this",
        )),
    }
}

/// A gateway, with the feed secret (`None`: none presented).
pub fn gateway(cp: &ControlPlane, presented: Option<&str>) -> Result<(), Refusal> {
    match (presented, &cp.credentials.feed_digest) {
        (Some(secret), Some(expected)) if Digest::of(secret) == *expected => Ok(()),
        _ => Err(Refusal::FeedUnauthenticated(
            "the feed needs `Authorization: Bearer <feed secret>`",
        )),
    }
}

/// Whether `home`'s API token reaches account `target`; an account that doesn't exist is
/// answered like one that isn't reachable, so ids can't be probed.
async fn reach(
    cp: &ControlPlane,
    home: &Account,
    target: i64,
    who: &str,
) -> Result<Account, Refusal> {
    let refused = || {
        Refusal::forbidden(
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
        return Err(Refusal::forbidden(
            "auth/NOT_ACCESSIBLE",
            format!("sub-account {target} is not accessible from the main account"),
        ));
    }
    Ok(account)
}
