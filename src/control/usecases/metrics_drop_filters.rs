//! Metrics drop filters through Logz.io's API (`/v1/metrics-management/drop-filters`): a
//! metrics account's rules for the series its gateways drop (DESIGN §9,
//! docs/drop-filters.md), managed by the main account's admins (with its API token, as
//! Logz.io's metrics accounts are) or by whoever acts on the metrics account itself. A
//! request names the metrics account in `accountId`; filters by id are found among the
//! metrics accounts the caller reaches, and any other id is 404. Every change records an
//! audit event in the main account's trail and moves the feed.

use std::collections::{BTreeSet, HashMap};

use super::callers::Caller;
use super::change::{Change, audit};
use super::log_drop_filters::stamp;
use crate::control::plane::ControlPlane;
use crate::control::refusal::Refusal;
use crate::control::rules::{AccountType, checked_name};
use crate::control::store::accounts::{self as account_store, Account};
use crate::control::store::drop_filters::{
    self as store, Dropped, MetricsDefinition, MetricsFilter, Table,
};
use crate::control::store::{Db, feed};
use crate::filters::metrics::{
    Comparison, DropPolicy, Expression, Filter, MAX_FILTERS_PER_ACCOUNT, METRIC_NAME,
};

/// A filter as a create or an update gives it, its expression already checked.
pub struct MetricsFilterInput {
    pub account_id: i64,
    pub name: Option<String>,
    /// `None`: a new filter is active; an update keeps the state it has.
    pub active: Option<bool>,
    pub drop_policy: DropPolicy,
    pub filter: Filter,
}

/// The main account whose audit trail records changes to `account`'s filters.
fn trail(account: &Account) -> i64 {
    account.owner_id.unwrap_or(account.id)
}

/// The metrics account `account_id`, if the caller reaches it: the account the call acts
/// on, or one it owns. Any other account (or none) is 403, as `X-Account-Id` answers it,
/// so ids cannot be probed.
async fn target(db: &mut impl Db, caller: &Caller, account_id: i64) -> Result<Account, Refusal> {
    let reached = caller.account.id;
    match account_store::get(db, account_id).await? {
        Some(a) if a.id == reached || a.owner_id == Some(reached) => {
            if a.account_type == AccountType::Metrics {
                return Ok(a);
            }
            Err(Refusal::Invalid {
                code: "drop-filters/NOT_METRICS_ACCOUNT",
                message: format!("accountId: account {account_id} is not a metrics account"),
            })
        }
        _ => Err(Refusal::forbidden(
            "auth/FORBIDDEN",
            format!("accountId: this caller does not reach account {account_id}"),
        )),
    }
}

fn checked_filter_name(name: Option<&str>) -> Result<Option<&str>, Refusal> {
    name.map(|n| {
        checked_name(n).map_err(|_| Refusal::Invalid {
            code: "drop-filters/NAME_FORM",
            message: "name must be 1-256 characters without control characters".into(),
        })
    })
    .transpose()
}

/// The audit event of a change to filter `id`, in account `trail`'s audit trail.
async fn record(change: &mut Change<'_>, trail: i64, action: &str, id: i64) -> Result<(), Refusal> {
    let target = format!("metrics-drop-filter:{id}");
    audit(
        change.cp,
        &mut change.tx,
        trail,
        change.actor,
        action,
        &target,
    )
    .await
}

async fn fetch(db: &mut impl Db, reach: i64, id: i64) -> Result<MetricsFilter, Refusal> {
    store::metrics_filter_of(db, reach, id)
        .await?
        .ok_or_else(|| Refusal::not_found(&format!("metrics drop filter {id}")))
}

pub async fn create(
    cp: &ControlPlane,
    caller: &Caller,
    input: MetricsFilterInput,
) -> Result<MetricsFilter, Refusal> {
    let mut created = bulk_create(cp, caller, vec![input]).await?;
    Ok(created.pop().expect("one filter in, one out"))
}

/// Creates every filter or none, answered in request order. Each metrics account named is
/// locked (in id order) before its count is checked, so concurrent creates cannot pass the
/// limit together.
pub async fn bulk_create(
    cp: &ControlPlane,
    caller: &Caller,
    inputs: Vec<MetricsFilterInput>,
) -> Result<Vec<MetricsFilter>, Refusal> {
    if inputs.is_empty() {
        return Err(Refusal::Invalid {
            code: "drop-filters/EMPTY_BULK",
            message: "the array must hold at least one filter".into(),
        });
    }
    for input in &inputs {
        checked_filter_name(input.name.as_deref())?;
    }
    let mut change = Change::begin(cp, caller).await?;
    let mut targets = Vec::with_capacity(inputs.len());
    for input in &inputs {
        targets.push(target(&mut change.tx, caller, input.account_id).await?);
    }
    let named: BTreeSet<i64> = targets.iter().map(|t| t.id).collect();
    for &account_id in &named {
        if account_id != change.account.id {
            account_store::lock(&mut change.tx, account_id).await?;
        }
        let have = store::count_metrics(&mut change.tx, account_id).await?;
        let adding = targets.iter().filter(|t| t.id == account_id).count();
        if usize::try_from(have)
            .unwrap_or(usize::MAX)
            .saturating_add(adding)
            > MAX_FILTERS_PER_ACCOUNT
        {
            return Err(Refusal::Invalid {
                code: "drop-filters/LIMIT",
                message: format!(
                    "a metrics account has at most {MAX_FILTERS_PER_ACCOUNT} drop filters; \
                     account {account_id} has {have}"
                ),
            });
        }
    }
    let stamp = stamp(&mut change).await?;
    let mut created = Vec::with_capacity(inputs.len());
    for (input, account) in inputs.iter().zip(&targets) {
        let definition = MetricsDefinition {
            name: input.name.as_deref(),
            active: input.active.unwrap_or(true),
            drop_policy: input.drop_policy,
            filter: &input.filter,
        };
        let id = store::insert_metrics(&mut change.tx, account.id, &definition, &stamp).await?;
        record(
            &mut change,
            trail(account),
            "metrics-drop-filter.create",
            id,
        )
        .await?;
        created.push(fetch(&mut change.tx, account.id, id).await?);
    }
    change.commit().await?;
    cp.published(stamp.feed_version);
    Ok(created)
}

pub async fn read(cp: &ControlPlane, caller: &Caller, id: i64) -> Result<MetricsFilter, Refusal> {
    caller.require_admin()?;
    let mut conn = cp.store.conn().await?;
    fetch(&mut conn, caller.account.id, id).await
}

/// Replaces the filter's definition. Its metrics account stays: an `accountId` naming
/// another is refused. Absent `active` keeps the state; absent `name` and `dropPolicy`
/// are reset, as a full shape says.
pub async fn update(
    cp: &ControlPlane,
    caller: &Caller,
    id: i64,
    input: MetricsFilterInput,
) -> Result<MetricsFilter, Refusal> {
    let name = checked_filter_name(input.name.as_deref())?;
    let mut change = Change::begin(cp, caller).await?;
    let current = fetch(&mut change.tx, change.account.id, id).await?;
    if input.account_id != current.account_id {
        return Err(Refusal::Invalid {
            code: "drop-filters/ACCOUNT_CHANGED",
            message: format!(
                "accountId: filter {id} belongs to metrics account {}; create a filter on \
                 account {} instead",
                current.account_id, input.account_id
            ),
        });
    }
    let stamp = stamp(&mut change).await?;
    let definition = MetricsDefinition {
        name,
        active: input.active.unwrap_or(current.active),
        drop_policy: input.drop_policy,
        filter: &input.filter,
    };
    store::update_metrics(&mut change.tx, id, &definition, &stamp).await?;
    let account = trail(&change.account);
    record(&mut change, account, "metrics-drop-filter.update", id).await?;
    let updated = fetch(&mut change.tx, change.account.id, id).await?;
    change.commit().await?;
    cp.published(stamp.feed_version);
    Ok(updated)
}

/// Enables or disables the filter; asking for the state it is in changes nothing.
pub async fn set_active(
    cp: &ControlPlane,
    caller: &Caller,
    id: i64,
    active: bool,
) -> Result<MetricsFilter, Refusal> {
    let mut change = Change::begin(cp, caller).await?;
    let current = fetch(&mut change.tx, change.account.id, id).await?;
    if current.active == active {
        return Ok(current);
    }
    let stamp = stamp(&mut change).await?;
    store::set_active(&mut change.tx, Table::Metrics, id, active, &stamp).await?;
    let action = match active {
        true => "metrics-drop-filter.enable",
        false => "metrics-drop-filter.disable",
    };
    let account = trail(&change.account);
    record(&mut change, account, action, id).await?;
    let updated = fetch(&mut change.tx, change.account.id, id).await?;
    change.commit().await?;
    cp.published(stamp.feed_version);
    Ok(updated)
}

pub async fn delete(cp: &ControlPlane, caller: &Caller, id: i64) -> Result<(), Refusal> {
    bulk_delete(cp, caller, &[id]).await
}

/// Deletes every filter named or none: one id the caller does not reach fails it whole.
pub async fn bulk_delete(cp: &ControlPlane, caller: &Caller, ids: &[i64]) -> Result<(), Refusal> {
    if ids.is_empty() {
        return Err(Refusal::Invalid {
            code: "drop-filters/EMPTY_BULK",
            message: "the array must hold at least one filter id".into(),
        });
    }
    let mut change = Change::begin(cp, caller).await?;
    let ids: BTreeSet<i64> = ids.iter().copied().collect();
    for &id in &ids {
        fetch(&mut change.tx, change.account.id, id).await?;
    }
    let version = feed::next_version(&mut change.tx).await?;
    let account = trail(&change.account);
    for &id in &ids {
        store::delete(&mut change.tx, Table::Metrics, id, version).await?;
        record(&mut change, account, "metrics-drop-filter.delete", id).await?;
    }
    feed::prune_tombstones(&mut change.tx, version, cp.feed.retained_versions).await?;
    change.commit().await?;
    cp.published(version);
    Ok(())
}

/// What each filter of the metrics account the caller acts on dropped today (UTC), by
/// filter id, as gateways reported it; a filter that dropped nothing is absent.
pub async fn dropped_today(
    cp: &ControlPlane,
    caller: &Caller,
) -> Result<HashMap<i64, Dropped>, Refusal> {
    caller.require_admin()?;
    let mut conn = cp.store.conn().await?;
    let today = cp.clock.today_utc_ms();
    Ok(store::dropped_on(&mut conn, Table::Metrics, caller.account.id, today).await?)
}

/// What a search keeps; every part given must hold.
#[derive(Debug, Default)]
pub struct Search {
    pub account_ids: Vec<i64>,
    /// Filters with an `EQ` condition on `__name__` naming one of these.
    pub metric_names: Vec<String>,
    pub active: Option<bool>,
    /// Part of the filter's name, in any case.
    pub search_term: Option<String>,
}

impl Search {
    fn keeps(&self, f: &MetricsFilter) -> bool {
        (self.account_ids.is_empty() || self.account_ids.contains(&f.account_id))
            && (self.metric_names.is_empty() || names_metric(&f.filter, &self.metric_names))
            && self.active.is_none_or(|a| a == f.active)
            && self.search_term.as_deref().is_none_or(|term| {
                let name = f.name.as_deref().unwrap_or_default().to_lowercase();
                name.contains(&term.to_lowercase())
            })
    }
}

fn names_metric(filter: &Filter, names: &[String]) -> bool {
    filter.expression.iter().any(|e| match e {
        Expression::Group(g) => names_metric(g, names),
        Expression::Condition(c) => {
            c.name == METRIC_NAME
                && c.comparison_filter == Comparison::Eq
                && names.contains(&c.value)
        }
    })
}

/// One page of the filters the caller reaches that `search` keeps, by id: the total and
/// the page (`offset`, `limit`).
pub async fn search(
    cp: &ControlPlane,
    caller: &Caller,
    search: &Search,
    offset: usize,
    limit: usize,
) -> Result<(usize, Vec<MetricsFilter>), Refusal> {
    caller.require_admin()?;
    let mut conn = cp.store.conn().await?;
    let mut kept = store::metrics_filters(&mut conn, caller.account.id).await?;
    kept.retain(|f| search.keeps(f));
    let total = kept.len();
    Ok((total, kept.into_iter().skip(offset).take(limit).collect()))
}
