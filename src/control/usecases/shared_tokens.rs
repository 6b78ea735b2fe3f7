//! Shared tokens and token filters (DESIGN §4, "Manage Shared Tokens"): read-only access
//! to an account's logs, limited by account-level `field: value` filters combined by the
//! token's operator, with an expiry (7 days by default; legacy tokens may have none).
//! Gateways replicate each token with its filters (read grants), so every change to what a
//! token grants — creating, editing or deleting it, deleting a filter it uses — moves the
//! feed, and open tails see it within the propagation bound. Times are epoch milliseconds,
//! as Logz.io's.

use super::callers::{self, Caller};
use super::change::Change;
use crate::control::plane::ControlPlane;
use crate::control::refusal::Refusal;
use crate::control::rules::{self, checked_name};
use crate::control::store::shared_tokens::{
    self as store, Filter, FiltersOperator, NewSharedToken, SharedToken,
};
use crate::control::store::{Db, Tx, feed};

/// Default lifetime of a new shared token.
const DEFAULT_LIFETIME_MS: i64 = 7 * 24 * 3600 * 1000;

/// What a new shared token is made of.
pub struct NewShared<'a> {
    pub name: &'a str,
    pub filters: &'a [i64],
    pub filters_operator: Option<FiltersOperator>,
    /// Absent: the default lifetime; `Some(None)`: no expiry (legacy tokens only).
    pub expiration: Option<Option<i64>>,
    pub legacy: bool,
}

/// An expiry must be in the future and within the configured lifetime; `None` only where
/// `may_have_none` (a legacy token that has none, or a new one where the operator allows).
fn check_expiry(
    cp: &ControlPlane,
    expiry: Option<i64>,
    may_have_none: bool,
) -> Result<(), Refusal> {
    let now = cp.clock.now_ms();
    let latest = now.saturating_add(cp.shared_tokens.max_lifetime_ms);
    match expiry {
        None if may_have_none => Ok(()),
        None => Err(Refusal::Invalid {
            code: "shared-tokens/EXPIRY_REQUIRED",
            message: "expirationDate is required; only legacy tokens may have none, and new \
                      ones only where the operator allows them"
                .into(),
        }),
        Some(ms) if ms <= now => Err(Refusal::Invalid {
            code: "shared-tokens/EXPIRY_IN_PAST",
            message: "the expiration date (expirationDate) must be in the future".into(),
        }),
        Some(ms) if ms > latest => Err(Refusal::Invalid {
            code: "shared-tokens/EXPIRY_TOO_FAR",
            message: format!(
                "expirationDate may be at most {} days from now",
                cp.shared_tokens.max_lifetime_ms / (24 * 3600 * 1000)
            ),
        }),
        Some(_) => Ok(()),
    }
}

pub async fn create(
    cp: &ControlPlane,
    caller: &Caller,
    new: NewShared<'_>,
) -> Result<SharedToken, Refusal> {
    let name = checked_name(new.name)?;
    let expiry = match new.expiration {
        None => Some(cp.clock.now_ms() + DEFAULT_LIFETIME_MS),
        Some(given) => given,
    };
    check_expiry(cp, expiry, new.legacy && cp.shared_tokens.without_expiry)?;
    let mut change = Change::begin(cp, caller).await?;
    let version = feed::next_version(&mut change.tx).await?;
    let secret = callers::new_secret();
    let id = store::insert(
        &mut change.tx,
        &NewSharedToken {
            account_id: change.account.id,
            name,
            secret: &secret,
            digest_hex: &callers::digest_hex(&secret),
            filters_operator: new.filters_operator.unwrap_or_default(),
            expires_at_ms: expiry,
            now_secs: cp.clock.now_secs(),
            feed_version: version,
        },
    )
    .await?;
    attach(&mut change.tx, change.account.id, id, new.filters).await?;
    let target = format!("shared-token:{id}");
    change.record("shared-token.create", &target).await?;
    let token = fetch(&mut change.tx, change.account.id, id).await?;
    change.commit().await?;
    cp.published(version);
    Ok(token)
}

/// Replaces the token's filters; each must be one of the account's filters.
async fn attach(
    tx: &mut Tx,
    account_id: i64,
    token_id: i64,
    filters: &[i64],
) -> Result<(), Refusal> {
    store::detach_all(tx, token_id).await?;
    let mut seen = Vec::with_capacity(filters.len());
    for &filter in filters {
        if seen.contains(&filter) {
            continue;
        }
        seen.push(filter);
        if store::filter_of(tx, account_id, filter).await?.is_none() {
            return Err(Refusal::Invalid {
                code: "shared-tokens/UNKNOWN_FILTER",
                message: format!("filters: {filter} is not one of this account's token filters"),
            });
        }
        store::attach(tx, token_id, filter).await?;
    }
    Ok(())
}

async fn fetch(db: &mut impl Db, account_id: i64, id: i64) -> Result<SharedToken, Refusal> {
    store::get(db, account_id, id)
        .await?
        .ok_or_else(|| Refusal::not_found(&format!("shared token {id}")))
}

pub async fn list(cp: &ControlPlane, caller: &Caller) -> Result<Vec<SharedToken>, Refusal> {
    let mut conn = cp.store.conn().await?;
    Ok(store::list(&mut conn, caller.account.id).await?)
}

pub async fn read(cp: &ControlPlane, caller: &Caller, id: i64) -> Result<SharedToken, Refusal> {
    let mut conn = cp.store.conn().await?;
    fetch(&mut conn, caller.account.id, id).await
}

/// What an edit may change; `None` keeps the current value.
pub struct SharedChange {
    pub filters: Option<Vec<i64>>,
    pub filters_operator: Option<FiltersOperator>,
    /// `Some(None)`: no expiry, which only a legacy token may keep.
    pub expiration: Option<Option<i64>>,
}

pub async fn update(
    cp: &ControlPlane,
    caller: &Caller,
    id: i64,
    edit: SharedChange,
) -> Result<SharedToken, Refusal> {
    let mut change = Change::begin(cp, caller).await?;
    let current = fetch(&mut change.tx, change.account.id, id).await?;
    let expiry = match edit.expiration {
        None => current.expires_at_ms,
        Some(given) => {
            // A legacy token (no expiry) may keep having none; others need a future one.
            check_expiry(cp, given, current.expires_at_ms.is_none())?;
            given
        }
    };
    let operator = edit.filters_operator.unwrap_or(current.filters_operator);
    let version = feed::next_version(&mut change.tx).await?;
    store::update(&mut change.tx, id, operator, expiry, version).await?;
    if let Some(filters) = &edit.filters {
        attach(&mut change.tx, change.account.id, id, filters).await?;
    }
    // Without filters a token reads every log of its account (Logz.io's meaning): an
    // edit that removes the last one widens access, and the audit trail says so.
    let widened = !current.filters.is_empty() && edit.filters.as_ref().is_some_and(Vec::is_empty);
    let action = if widened {
        "shared-token.widen"
    } else {
        "shared-token.update"
    };
    let target = format!("shared-token:{id}");
    change.record(action, &target).await?;
    let token = fetch(&mut change.tx, change.account.id, id).await?;
    change.commit().await?;
    cp.published(version);
    Ok(token)
}

pub async fn delete(cp: &ControlPlane, caller: &Caller, id: i64) -> Result<(), Refusal> {
    let mut change = Change::begin(cp, caller).await?;
    fetch(&mut change.tx, change.account.id, id).await?;
    let version = feed::next_version(&mut change.tx).await?;
    store::delete(&mut change.tx, id, version).await?;
    feed::prune_tombstones(&mut change.tx, version, cp.feed.retained_versions).await?;
    let target = format!("shared-token:{id}");
    change.record("shared-token.delete", &target).await?;
    change.commit().await?;
    cp.published(version);
    Ok(())
}

// === token filters ===

pub async fn create_filter(
    cp: &ControlPlane,
    caller: &Caller,
    description: &str,
    field: &str,
    value: &str,
) -> Result<Filter, Refusal> {
    rules::check_filter_term("field", field)?;
    rules::check_filter_term("value", value)?;
    if description.chars().count() > 256 || description.chars().any(char::is_control) {
        return Err(Refusal::invalid(
            "description must be at most 256 characters without control characters",
        ));
    }
    let mut change = Change::begin(cp, caller).await?;
    let filter =
        store::insert_filter(&mut change.tx, change.account.id, description, field, value).await?;
    let target = format!("token-filter:{}", filter.id);
    change.record("token-filter.create", &target).await?;
    change.commit().await?;
    Ok(filter)
}

pub async fn list_filters(cp: &ControlPlane, caller: &Caller) -> Result<Vec<Filter>, Refusal> {
    caller.require_admin()?;
    let mut conn = cp.store.conn().await?;
    Ok(store::filters(&mut conn, caller.account.id).await?)
}

/// The filters the account's shared tokens carry, for every role that sees the tokens:
/// a token's filter logic is part of what it reads (the page's Shared tokens tab). The
/// filters no token uses are an admin's to list (`list_filters`).
pub async fn filters_in_use(cp: &ControlPlane, caller: &Caller) -> Result<Vec<Filter>, Refusal> {
    let mut conn = cp.store.conn().await?;
    let used: Vec<i64> = store::list(&mut conn, caller.account.id)
        .await?
        .into_iter()
        .flat_map(|t| t.filters)
        .collect();
    let mut filters = store::filters(&mut conn, caller.account.id).await?;
    filters.retain(|f| used.contains(&f.id));
    Ok(filters)
}

pub async fn read_filter(cp: &ControlPlane, caller: &Caller, id: i64) -> Result<Filter, Refusal> {
    caller.require_admin()?;
    let mut conn = cp.store.conn().await?;
    store::filter_of(&mut conn, caller.account.id, id)
        .await?
        .ok_or_else(|| Refusal::not_found(&format!("token filter {id}")))
}

/// Deleting a filter detaches it from every shared token that used it: those tokens
/// change in the feed. (A filter's field and value cannot be edited, so creating one
/// changes no token until it is attached.)
pub async fn delete_filter(cp: &ControlPlane, caller: &Caller, id: i64) -> Result<(), Refusal> {
    let mut change = Change::begin(cp, caller).await?;
    // Tokens whose only filter this is read every log of the account once it is gone.
    let widened: Vec<i64> = store::list(&mut change.tx, change.account.id)
        .await?
        .into_iter()
        .filter(|t| t.filters == [id])
        .map(|t| t.id)
        .collect();
    let version = feed::next_version(&mut change.tx).await?;
    if !store::delete_filter(&mut change.tx, change.account.id, id, version).await? {
        return Err(Refusal::not_found(&format!("token filter {id}")));
    }
    let target = format!("token-filter:{id}");
    change.record("token-filter.delete", &target).await?;
    for token in widened {
        change
            .record("shared-token.widen", &format!("shared-token:{token}"))
            .await?;
    }
    change.commit().await?;
    cp.published(version);
    Ok(())
}

// === resolution, for the read path ===

/// What a shared token may read right now.
pub struct Access {
    pub account_id: i64,
    pub filters_operator: FiltersOperator,
    pub filters: Vec<Filter>,
    pub expires_at_ms: Option<i64>,
}

/// Resolves a presented shared token (a gateway asks, with the feed secret): its account
/// and current filters, or 403 once it has expired. Marks it used. Superseded by the read
/// grants in the feed, which let a gateway answer without asking; kept for callers that
/// have no feed follower.
pub async fn resolve(cp: &ControlPlane, secret: &str) -> Result<Access, Refusal> {
    let mut conn = cp.store.conn().await?;
    let token = store::find(&mut conn, &callers::digest_hex(secret))
        .await?
        .ok_or_else(|| Refusal::NotFound("no shared token matches".into()))?;
    let now = cp.clock.now_ms();
    if token.expires_at_ms.is_some_and(|e| e <= now) {
        return Err(Refusal::forbidden(
            "shared-tokens/EXPIRED",
            "this shared token has expired",
        ));
    }
    let filters = store::filters_of_token(&mut conn, token.id).await?;
    store::mark_used(&mut conn, token.id, now).await?;
    Ok(Access {
        account_id: token.account_id,
        filters_operator: token.filters_operator,
        filters,
        expires_at_ms: token.expires_at_ms,
    })
}
