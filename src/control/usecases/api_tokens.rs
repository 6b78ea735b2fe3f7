//! API tokens (DESIGN §4): they authenticate the management API as an admin of their
//! account. Only pro, enterprise and trial accounts have them, and only log management
//! (main and sub) and security accounts — metrics and tracing accounts are managed with
//! their main account's. The secret is shown once, in the create answer; the store keeps
//! its digest, which gateways replicate (read grants): creating and deleting one moves
//! the feed.

use super::callers::{self, Caller};
use super::change::{Change, audit};
use crate::control::plane::ControlPlane;
use crate::control::refusal::Refusal;
use crate::control::rules::{self, checked_name};
use crate::control::store::api_tokens::{self as store, ApiToken, NewApiToken};
use crate::control::store::{Actor, Tx, feed};

/// How many of a token's last characters the page shows (GitHub and GitLab show four).
pub const SUFFIX_CHARS: usize = 4;

/// A token just created: the only time its secret is ever shown.
pub struct CreatedApiToken {
    pub id: i64,
    pub name: String,
    pub token: String,
    pub created_at: i64,
}

/// Creates a token in the account the caller acts on.
pub async fn create(
    cp: &ControlPlane,
    caller: &Caller,
    name: &str,
) -> Result<CreatedApiToken, Refusal> {
    let name = checked_name(name)?;
    let mut change = Change::begin(cp, caller).await?;
    rules::check_may_create_api_token(
        change.account.account_type,
        change.account.plan_at(cp.clock.now_secs()),
    )?;
    let version = feed::next_version(&mut change.tx).await?;
    let created = insert(
        cp,
        &mut change.tx,
        change.account.id,
        name,
        caller.actor,
        version,
    )
    .await?;
    change.commit().await?;
    cp.published(version);
    Ok(created)
}

/// A main account creates a token for one of its sub-accounts, while it is accessible
/// (`caller` acts on the sub-account: `callers::caller_acting_on`).
pub async fn create_for_sub_account(
    cp: &ControlPlane,
    caller: &Caller,
    name: &str,
) -> Result<CreatedApiToken, Refusal> {
    caller.require_main_account()?;
    if !caller.account.is_sub_account() {
        return Err(Refusal::invalid(format!(
            "account {} is not a sub-account",
            caller.account.id
        )));
    }
    create(cp, caller, name).await
}

/// Inserts a token at feed version `version` (taken by the caller's change) with its
/// audit event. Also how accounts get their first API token.
pub(super) async fn insert(
    cp: &ControlPlane,
    tx: &mut Tx,
    account_id: i64,
    name: &str,
    actor: Actor,
    version: i64,
) -> Result<CreatedApiToken, Refusal> {
    let secret = callers::new_secret();
    let created_at = cp.clock.now_secs();
    let id = store::insert(
        tx,
        &NewApiToken {
            account_id,
            name,
            digest_hex: &callers::digest_hex(&secret),
            suffix: &secret[secret.len().saturating_sub(SUFFIX_CHARS)..],
            actor,
            now: created_at,
            feed_version: version,
        },
    )
    .await?;
    let target = format!("api-token:{id}");
    audit(cp, tx, account_id, actor, "api-token.create", &target).await?;
    Ok(CreatedApiToken {
        id,
        name: name.to_string(),
        token: secret,
        created_at,
    })
}

pub async fn list(cp: &ControlPlane, caller: &Caller) -> Result<Vec<ApiToken>, Refusal> {
    caller.require_admin()?;
    let mut conn = cp.store.conn().await?;
    Ok(store::list(&mut conn, caller.account.id).await?)
}

/// Deletes a token; gateways get its tombstone (an open tail with it ends).
pub async fn delete(cp: &ControlPlane, caller: &Caller, id: i64) -> Result<(), Refusal> {
    let mut change = Change::begin(cp, caller).await?;
    let version = feed::next_version(&mut change.tx).await?;
    if !store::delete(&mut change.tx, change.account.id, id, version).await? {
        return Err(Refusal::not_found(&format!("API token {id}")));
    }
    feed::prune_tombstones(&mut change.tx, version, cp.feed.retained_versions).await?;
    let target = format!("api-token:{id}");
    change.record("api-token.delete", &target).await?;
    change.commit().await?;
    cp.published(version);
    Ok(())
}
