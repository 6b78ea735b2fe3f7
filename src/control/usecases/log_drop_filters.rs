//! Log drop filters through Logz.io's API (`/v1/drop-filters`): a log account's rules for
//! the logs its gateways drop before the spool (DESIGN §9, docs/drop-filters.md), at most
//! `MAX_FILTERS_PER_ACCOUNT` of them, managed by the account's admins. A filter is created
//! active; it can be switched off and on and deleted, not edited (Logz.io's API has no
//! update: Terraform re-creates it). Every change records an audit event and moves the
//! feed, so gateways see it within the propagation bound.

use std::collections::HashMap;

use super::callers::Caller;
use super::change::Change;
use crate::control::plane::ControlPlane;
use crate::control::refusal::Refusal;
use crate::control::rules::AccountType;
use crate::control::store::accounts::Account;
use crate::control::store::drop_filters::{self as store, Dropped, LogFilter, Stamp, Table};
use crate::control::store::{Db, feed};
use crate::filters::logs::{LogRule, MAX_FILTERS_PER_ACCOUNT};

/// Log filters belong to accounts that take logs.
fn check_logs_account(account: &Account) -> Result<(), Refusal> {
    if account.account_type == AccountType::Logs {
        return Ok(());
    }
    Err(Refusal::rule(
        "drop-filters/NOT_LOGS_ACCOUNT",
        format!(
            "account {} is a {} account: log drop filters belong to log accounts (metrics \
             accounts have /v1/metrics-management/drop-filters)",
            account.id,
            account.account_type.as_str()
        ),
    ))
}

/// A change to a filter: now, who makes it, and the feed version it moves to.
pub(super) async fn stamp(change: &mut Change<'_>) -> Result<Stamp, Refusal> {
    Ok(Stamp {
        at: change.cp.clock.now_secs(),
        by: change.actor.label(),
        feed_version: feed::next_version(&mut change.tx).await?,
    })
}

async fn fetch(db: &mut impl Db, account_id: i64, id: i64) -> Result<LogFilter, Refusal> {
    store::log_filter_of(db, account_id, id)
        .await?
        .ok_or_else(|| Refusal::not_found(&format!("drop filter {id}")))
}

/// Creates an active filter.
pub async fn create(
    cp: &ControlPlane,
    caller: &Caller,
    rule: LogRule,
) -> Result<LogFilter, Refusal> {
    let mut change = Change::begin(cp, caller).await?;
    check_logs_account(&change.account)?;
    let account_id = change.account.id;
    let existing = store::log_filters(&mut change.tx, account_id).await?.len();
    if existing >= MAX_FILTERS_PER_ACCOUNT {
        return Err(Refusal::Invalid {
            code: "drop-filters/LIMIT",
            message: format!(
                "an account has at most {MAX_FILTERS_PER_ACCOUNT} drop filters, active or not; \
                 delete one first"
            ),
        });
    }
    let stamp = stamp(&mut change).await?;
    let id = store::insert_log(&mut change.tx, account_id, &rule, &stamp).await?;
    change
        .record("log-drop-filter.create", &format!("log-drop-filter:{id}"))
        .await?;
    change.commit().await?;
    cp.published(stamp.feed_version);
    Ok(LogFilter {
        id,
        account_id,
        active: true,
        rule,
    })
}

/// The account's filters, active or not, oldest first.
pub async fn list(cp: &ControlPlane, caller: &Caller) -> Result<Vec<LogFilter>, Refusal> {
    caller.require_admin()?;
    check_logs_account(&caller.account)?;
    let mut conn = cp.store.conn().await?;
    Ok(store::log_filters(&mut conn, caller.account.id).await?)
}

/// What each of the account's filters dropped today (UTC), by filter id, as gateways
/// reported it; a filter that dropped nothing is absent.
pub async fn dropped_today(
    cp: &ControlPlane,
    caller: &Caller,
) -> Result<HashMap<i64, Dropped>, Refusal> {
    caller.require_admin()?;
    check_logs_account(&caller.account)?;
    let mut conn = cp.store.conn().await?;
    let today = cp.clock.today_utc_ms();
    Ok(store::dropped_on(&mut conn, Table::Logs, caller.account.id, today).await?)
}

/// Activates or deactivates the filter; asking for the state it is in changes nothing and
/// answers it all the same (Logz.io's clients retry these calls).
pub async fn set_active(
    cp: &ControlPlane,
    caller: &Caller,
    id: i64,
    active: bool,
) -> Result<LogFilter, Refusal> {
    let mut change = Change::begin(cp, caller).await?;
    let mut filter = fetch(&mut change.tx, change.account.id, id).await?;
    if filter.active == active {
        return Ok(filter);
    }
    let stamp = stamp(&mut change).await?;
    store::set_active(&mut change.tx, Table::Logs, id, active, &stamp).await?;
    let action = match active {
        true => "log-drop-filter.activate",
        false => "log-drop-filter.deactivate",
    };
    change
        .record(action, &format!("log-drop-filter:{id}"))
        .await?;
    change.commit().await?;
    cp.published(stamp.feed_version);
    filter.active = active;
    Ok(filter)
}

/// Deletes the filter and answers it as it was (Logz.io's answer); gateways get its
/// tombstone.
pub async fn delete(cp: &ControlPlane, caller: &Caller, id: i64) -> Result<LogFilter, Refusal> {
    let mut change = Change::begin(cp, caller).await?;
    let filter = fetch(&mut change.tx, change.account.id, id).await?;
    let version = feed::next_version(&mut change.tx).await?;
    store::delete(&mut change.tx, Table::Logs, id, version).await?;
    feed::prune_tombstones(&mut change.tx, version, cp.feed.retained_versions).await?;
    change
        .record("log-drop-filter.delete", &format!("log-drop-filter:{id}"))
        .await?;
    change.commit().await?;
    cp.published(version);
    Ok(filter)
}
