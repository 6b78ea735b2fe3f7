//! Shipping tokens (DESIGN §4): create (enabled unless asked otherwise), rename, enable,
//! disable, delete, search, and the plan's limit. Every change moves the feed version in
//! its transaction, so gateways see exactly the committed state.

use super::callers::{self, Caller};
use super::change::Change;
use crate::control::plane::ControlPlane;
use crate::control::refusal::Refusal;
use crate::control::rules::{self, checked_name};
use crate::control::store::accounts::Account;
use crate::control::store::shipping_tokens::{
    self as store, NewToken, Order, Removal, Search, ShippingToken, TokenUpdate,
};
use crate::control::store::{Actor, Db, Tx, feed};
use crate::model::Kind;

/// The audit trail's name for a token of `kind`.
fn noun(kind: Kind) -> &'static str {
    match kind {
        Kind::Logs => "log-shipping-token",
        Kind::Metrics => "metrics-shipping-token",
        Kind::Traces => "tracing-shipping-token",
    }
}

/// An account holds tokens of its type's kind only.
fn check_kind(account: &Account, kind: Kind) -> Result<(), Refusal> {
    let holds = account.account_type.shipping_kind();
    if holds != kind {
        return Err(Refusal::rule(
            "tokens/ACCOUNT_TYPE",
            format!(
                "account {} is a {} account: it holds {} shipping tokens, not {}",
                account.id,
                account.account_type.as_str(),
                holds.as_str(),
                kind.as_str()
            ),
        ));
    }
    Ok(())
}

pub async fn create(
    cp: &ControlPlane,
    caller: &Caller,
    kind: Kind,
    name: &str,
    enabled: Option<bool>,
) -> Result<ShippingToken, Refusal> {
    check_kind(&caller.account, kind)?;
    let name = checked_name(name)?;
    let mut change = Change::begin(cp, caller).await?;
    let taken = store::named(&mut change.tx, change.account.id, kind, name).await?;
    rules::check_name_free(kind, name, taken.is_some())?;
    let enabled = enabled.unwrap_or(true);
    if enabled {
        check_may_enable_another(cp, &mut change.tx, &change.account).await?;
    }
    let created = insert(
        cp,
        &mut change.tx,
        change.account.id,
        kind,
        name,
        enabled,
        caller.actor,
    )
    .await?;
    let target = format!("{}:{}", noun(kind), created.id);
    let action = format!("{}.create", noun(kind));
    change.record(&action, &target).await?;
    let token = fetch(&mut change.tx, change.account.id, kind, created.id).await?;
    change.commit().await?;
    cp.published(created.version);
    Ok(token)
}

/// A token just inserted: its secret (shown to the account) and the feed version it carries.
pub(super) struct Created {
    pub id: i64,
    pub token: String,
    pub version: i64,
}

/// Inserts a token at a new feed version. Also how accounts get their first token.
pub(super) async fn insert(
    cp: &ControlPlane,
    tx: &mut Tx,
    account_id: i64,
    kind: Kind,
    name: &str,
    enabled: bool,
    actor: Actor,
) -> Result<Created, Refusal> {
    let version = feed::next_version(tx).await?;
    let secret = callers::new_secret();
    let id = store::insert(
        tx,
        &NewToken {
            account_id,
            kind,
            name,
            secret: &secret,
            digest_hex: &callers::digest_hex(&secret),
            enabled,
            actor,
            now: cp.clock.now_secs(),
            feed_version: version,
        },
    )
    .await?;
    Ok(Created {
        id,
        token: secret,
        version,
    })
}

pub async fn read(
    cp: &ControlPlane,
    caller: &Caller,
    kind: Kind,
    id: i64,
) -> Result<ShippingToken, Refusal> {
    caller.require_admin()?;
    let mut conn = cp.store.conn().await?;
    fetch(&mut conn, caller.account.id, kind, id).await
}

/// Renames, enables or disables a token — any of them at once, as Logz.io's `PUT` does.
/// Enabling counts against the plan's limit; the last enabled token cannot be disabled.
pub async fn update(
    cp: &ControlPlane,
    caller: &Caller,
    kind: Kind,
    id: i64,
    name: Option<&str>,
    enabled: Option<bool>,
) -> Result<ShippingToken, Refusal> {
    let name = name.map(checked_name).transpose()?;
    let mut change = Change::begin(cp, caller).await?;
    let current = fetch(&mut change.tx, change.account.id, kind, id).await?;
    if let Some(name) = name.filter(|n| *n != current.name) {
        let taken = store::named(&mut change.tx, change.account.id, kind, name).await?;
        rules::check_name_free(kind, name, taken.is_some_and(|other| other != id))?;
    }
    let enabled = enabled.unwrap_or(current.enabled);
    if enabled != current.enabled {
        if enabled {
            check_may_enable_another(cp, &mut change.tx, &change.account).await?;
        } else {
            rules::check_may_lose_enabled(
                store::enabled_count(&mut change.tx, change.account.id).await?,
            )?;
        }
    }
    let version = feed::next_version(&mut change.tx).await?;
    store::update(
        &mut change.tx,
        &TokenUpdate {
            id,
            name: name.unwrap_or(&current.name),
            enabled,
            actor: caller.actor,
            now: cp.clock.now_secs(),
            feed_version: version,
        },
    )
    .await?;
    let action = match (enabled == current.enabled, enabled) {
        (true, _) => "update",
        (false, true) => "enable",
        (false, false) => "disable",
    };
    let action = format!("{}.{action}", noun(kind));
    let target = format!("{}:{id}", noun(kind));
    change.record(&action, &target).await?;
    let token = fetch(&mut change.tx, change.account.id, kind, id).await?;
    change.commit().await?;
    cp.published(version);
    Ok(token)
}

/// Deletes a token (not the last enabled one); gateways get its tombstone.
pub async fn delete(
    cp: &ControlPlane,
    caller: &Caller,
    kind: Kind,
    id: i64,
) -> Result<(), Refusal> {
    let mut change = Change::begin(cp, caller).await?;
    let current = fetch(&mut change.tx, change.account.id, kind, id).await?;
    if current.enabled {
        rules::check_may_lose_enabled(
            store::enabled_count(&mut change.tx, change.account.id).await?,
        )?;
    }
    let version = feed::next_version(&mut change.tx).await?;
    store::remove(&mut change.tx, Removal::Token(id), version).await?;
    feed::prune_tombstones(&mut change.tx, version, cp.feed.retained_versions).await?;
    let action = format!("{}.delete", noun(kind));
    let target = format!("{}:{id}", noun(kind));
    change.record(&action, &target).await?;
    change.commit().await?;
    cp.published(version);
    Ok(())
}

/// Replaces token `id` with a new token of the same name and state, in one change: from
/// then on shippers that send with the old one are refused. Any plan may, the community
/// plan's one token included, since the number of enabled tokens does not change. Answers
/// the new token and the old one.
pub async fn rotate(
    cp: &ControlPlane,
    caller: &Caller,
    kind: Kind,
    id: i64,
) -> Result<(ShippingToken, ShippingToken), Refusal> {
    check_kind(&caller.account, kind)?;
    let mut change = Change::begin(cp, caller).await?;
    let old = fetch(&mut change.tx, change.account.id, kind, id).await?;
    let gone = feed::next_version(&mut change.tx).await?;
    store::remove(&mut change.tx, Removal::Token(id), gone).await?;
    feed::prune_tombstones(&mut change.tx, gone, cp.feed.retained_versions).await?;
    let created = insert(
        cp,
        &mut change.tx,
        change.account.id,
        kind,
        &old.name,
        old.enabled,
        caller.actor,
    )
    .await?;
    change
        .record(
            &format!("{}.rotate", noun(kind)),
            &format!("{}:{id}", noun(kind)),
        )
        .await?;
    change
        .record(
            &format!("{}.create", noun(kind)),
            &format!("{}:{}", noun(kind), created.id),
        )
        .await?;
    let new = fetch(&mut change.tx, change.account.id, kind, created.id).await?;
    change.commit().await?;
    cp.published(created.version);
    Ok((new, old))
}

/// A page of the account's tokens of `kind`, optionally only enabled or disabled ones.
pub async fn search(
    cp: &ControlPlane,
    caller: &Caller,
    kind: Kind,
    enabled: Option<bool>,
    order: Order,
    limit: i64,
    offset: i64,
) -> Result<(i64, Vec<ShippingToken>), Refusal> {
    caller.require_admin()?;
    let mut conn = cp.store.conn().await?;
    let search = Search {
        account_id: caller.account.id,
        kind,
        enabled,
        order,
        limit,
        offset,
    };
    Ok(store::search(&mut conn, &search).await?)
}

/// The plan's limit on enabled tokens and how many are enabled now.
pub struct Limits {
    pub max_allowed: i64,
    pub enabled: i64,
}

pub async fn limits(cp: &ControlPlane, caller: &Caller, kind: Kind) -> Result<Limits, Refusal> {
    caller.require_admin()?;
    check_kind(&caller.account, kind)?;
    let account = &caller.account;
    let mut conn = cp.store.conn().await?;
    Ok(Limits {
        max_allowed: rules::max_enabled_tokens(account.plan_at(cp.clock.now_secs())),
        enabled: store::enabled_count(&mut conn, account.id).await?,
    })
}

/// The plan's limit on enabled tokens, checked before one more is enabled.
async fn check_may_enable_another(
    cp: &ControlPlane,
    tx: &mut Tx,
    account: &Account,
) -> Result<(), Refusal> {
    let enabled_now = store::enabled_count(tx, account.id).await?;
    rules::check_may_enable_another(account.plan_at(cp.clock.now_secs()), enabled_now)
}

/// One token of the account; another account's token is "not found", like an unknown id.
async fn fetch(
    db: &mut impl Db,
    account_id: i64,
    kind: Kind,
    id: i64,
) -> Result<ShippingToken, Refusal> {
    store::get(db, account_id, kind, id)
        .await?
        .ok_or_else(|| Refusal::not_found(&format!("{} shipping token {id}", kind.as_str())))
}
