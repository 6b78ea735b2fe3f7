//! The `log_drop_filters` and `metrics_drop_filters` tables: an account's log filters and
//! a metrics account's metrics filters, each with its definition as JSON in Logz.io's
//! shape (`filters::logs`, `filters::metrics`), and the feed's reads of them.
//!
//! Gateways replicate both: every change sets the row's `feed_version`, and a delete
//! leaves a tombstone whose item is the id in decimal (collections `LOG_FILTERS` and
//! `METRICS_FILTERS`; an account's deletion writes them in `accounts`).

use std::collections::HashMap;

use futures_util::{Stream, StreamExt};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, Ids, Store, StoreError, Tx, corrupt, flag, next_id};
use crate::filters::logs::{FieldCondition, LogDropFilter, LogRule};
use crate::filters::metrics::{DropPolicy, Filter, MetricsDropFilter};
use crate::model::AccountId;
use crate::tokens::wire::{DropFilterChanges, DropFilterDeletes, DropFilters};

/// The tombstones' collections.
pub const LOG_FILTERS: &str = "log_drop_filters";
pub const METRICS_FILTERS: &str = "metrics_drop_filters";

/// Who changed a filter and when (epoch seconds), and the feed version it moves to.
pub struct Stamp {
    pub at: i64,
    pub by: String,
    pub feed_version: i64,
}

/// Which of the two tables a statement about one filter is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Logs,
    Metrics,
}

impl Table {
    /// The filter's kind in `drop_filter_days`.
    fn kind(self) -> &'static str {
        match self {
            Table::Logs => "logs",
            Table::Metrics => "metrics",
        }
    }

    /// `(set active, tombstone, delete)` statements, each naming the filter by `$1`.
    fn statements(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Table::Logs => (
                "UPDATE log_drop_filters SET active = $2, updated_at = $3, updated_by = $4, \
                 feed_version = $5 WHERE id = $1",
                "INSERT INTO feed_tombstones (feed_version, item, collection) \
                 SELECT $2, CAST(id AS TEXT), 'log_drop_filters' FROM log_drop_filters \
                 WHERE id = $1",
                "DELETE FROM log_drop_filters WHERE id = $1",
            ),
            Table::Metrics => (
                "UPDATE metrics_drop_filters SET active = $2, modified_at = $3, \
                 modified_by = $4, feed_version = $5 WHERE id = $1",
                "INSERT INTO feed_tombstones (feed_version, item, collection) \
                 SELECT $2, CAST(id AS TEXT), 'metrics_drop_filters' FROM metrics_drop_filters \
                 WHERE id = $1",
                "DELETE FROM metrics_drop_filters WHERE id = $1",
            ),
        }
    }
}

/// Switches filter `id` on or off.
pub async fn set_active(
    tx: &mut Tx,
    table: Table,
    id: i64,
    active: bool,
    stamp: &Stamp,
) -> Result<(), StoreError> {
    sqlx::query(table.statements().0)
        .bind(id)
        .bind(i64::from(active))
        .bind(stamp.at)
        .bind(stamp.by.as_str())
        .bind(stamp.feed_version)
        .execute(tx.connection())
        .await?;
    Ok(())
}

/// Deletes filter `id`, leaving its tombstone at `feed_version`.
pub async fn delete(
    tx: &mut Tx,
    table: Table,
    id: i64,
    feed_version: i64,
) -> Result<(), StoreError> {
    let (_, tombstone, delete) = table.statements();
    sqlx::query(tombstone)
        .bind(id)
        .bind(feed_version)
        .execute(tx.connection())
        .await?;
    sqlx::query(delete)
        .bind(id)
        .execute(tx.connection())
        .await?;
    sqlx::query("DELETE FROM drop_filter_days WHERE kind = $1 AND filter_id = $2")
        .bind(table.kind())
        .bind(id)
        .execute(tx.connection())
        .await?;
    Ok(())
}

/// What one filter dropped on one day, as gateways report it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dropped {
    pub records: i64,
    pub bytes: i64,
}

/// Adds what a gateway dropped with filter `id` on the UTC day at `day_ms` (ignored when
/// the filter is gone), and forgets the filter's earlier days: only today is shown.
pub async fn add_dropped(
    tx: &mut Tx,
    table: Table,
    id: i64,
    day_ms: i64,
    dropped: Dropped,
) -> Result<(), StoreError> {
    let insert = match table {
        Table::Logs => ADD_DROPPED_LOGS,
        Table::Metrics => ADD_DROPPED_METRICS,
    };
    sqlx::query(insert)
        .bind(table.kind())
        .bind(id)
        .bind(day_ms)
        .bind(dropped.records)
        .bind(dropped.bytes)
        .execute(tx.connection())
        .await?;
    sqlx::query("DELETE FROM drop_filter_days WHERE kind = $1 AND filter_id = $2 AND day < $3")
        .bind(table.kind())
        .bind(id)
        .bind(day_ms)
        .execute(tx.connection())
        .await?;
    Ok(())
}

/// Saturating sums: a counter at its ceiling stays there.
const ADD_DROPPED_LOGS: &str = "INSERT INTO drop_filter_days (kind, filter_id, day, records, \
     bytes) SELECT $1, id, $3, $4, $5 FROM log_drop_filters WHERE id = $2 \
     ON CONFLICT (kind, filter_id, day) DO UPDATE SET \
     records = CASE WHEN drop_filter_days.records > 9223372036854775807 - excluded.records \
     THEN 9223372036854775807 ELSE drop_filter_days.records + excluded.records END, \
     bytes = CASE WHEN drop_filter_days.bytes > 9223372036854775807 - excluded.bytes \
     THEN 9223372036854775807 ELSE drop_filter_days.bytes + excluded.bytes END";
const ADD_DROPPED_METRICS: &str = "INSERT INTO drop_filter_days (kind, filter_id, day, \
     records, bytes) SELECT $1, id, $3, $4, $5 FROM metrics_drop_filters WHERE id = $2 \
     ON CONFLICT (kind, filter_id, day) DO UPDATE SET \
     records = CASE WHEN drop_filter_days.records > 9223372036854775807 - excluded.records \
     THEN 9223372036854775807 ELSE drop_filter_days.records + excluded.records END, \
     bytes = CASE WHEN drop_filter_days.bytes > 9223372036854775807 - excluded.bytes \
     THEN 9223372036854775807 ELSE drop_filter_days.bytes + excluded.bytes END";

/// What each of `account_id`'s filters in `table` dropped on the UTC day at `day_ms`, by
/// filter id; a filter that dropped nothing is absent.
pub async fn dropped_on(
    db: &mut impl Db,
    table: Table,
    account_id: i64,
    day_ms: i64,
) -> Result<HashMap<i64, Dropped>, StoreError> {
    let select = match table {
        Table::Logs => {
            "SELECT d.filter_id, d.records, d.bytes FROM drop_filter_days d \
             JOIN log_drop_filters f ON f.id = d.filter_id \
             WHERE d.kind = $1 AND f.account_id = $2 AND d.day = $3"
        }
        Table::Metrics => {
            "SELECT d.filter_id, d.records, d.bytes FROM drop_filter_days d \
             JOIN metrics_drop_filters f ON f.id = d.filter_id \
             WHERE d.kind = $1 AND f.account_id = $2 AND d.day = $3"
        }
    };
    let rows = sqlx::query(select)
        .bind(table.kind())
        .bind(account_id)
        .bind(day_ms)
        .fetch_all(db.connection())
        .await?;
    rows.iter()
        .map(|r| {
            let dropped = Dropped {
                records: r.try_get("records")?,
                bytes: r.try_get("bytes")?,
            };
            Ok((r.try_get("filter_id")?, dropped))
        })
        .collect()
}

fn feed_id(id: i64, column: &'static str) -> Result<u64, StoreError> {
    u64::try_from(id).map_err(|_| corrupt(column, id))
}

fn feed_account(id: i64, column: &'static str) -> Result<AccountId, StoreError> {
    feed_id(id, column).map(AccountId)
}

// === log filters ===

/// A log filter as the management API shows it.
#[derive(Debug, Clone)]
pub struct LogFilter {
    pub id: i64,
    pub account_id: i64,
    pub active: bool,
    pub rule: LogRule,
}

const SELECT_LOG: &str = "SELECT id, account_id, active, log_type, description, \
     field_conditions, threshold_gb FROM log_drop_filters WHERE id = $1 AND account_id = $2";
const SELECT_LOGS: &str = "SELECT id, account_id, active, log_type, description, \
     field_conditions, threshold_gb FROM log_drop_filters WHERE account_id = $1 ORDER BY id";
const SELECT_LOG_FEED: &str = "SELECT id, account_id, active, log_type, description, \
     field_conditions, threshold_gb FROM log_drop_filters ORDER BY id";
const SELECT_LOG_FEED_SINCE: &str = "SELECT id, account_id, active, log_type, description, \
     field_conditions, threshold_gb FROM log_drop_filters WHERE feed_version > $1 ORDER BY id";

fn log_filter(r: &AnyRow) -> Result<LogFilter, StoreError> {
    let conditions: String = r.try_get("field_conditions")?;
    let field_conditions: Vec<FieldCondition> = serde_json::from_str(&conditions)
        .map_err(|_| corrupt("log_drop_filters.field_conditions", &conditions))?;
    Ok(LogFilter {
        id: r.try_get("id")?,
        account_id: r.try_get("account_id")?,
        active: flag(r, "active")?,
        rule: LogRule {
            log_type: r.try_get("log_type")?,
            description: r.try_get("description")?,
            field_conditions,
            threshold_gb: r.try_get("threshold_gb")?,
        },
    })
}

/// Inserts an active filter; returns its id.
pub async fn insert_log(
    tx: &mut Tx,
    account_id: i64,
    rule: &LogRule,
    stamp: &Stamp,
) -> Result<i64, StoreError> {
    let id = next_id(tx, Ids::LogDropFilters).await?;
    let conditions =
        serde_json::to_string(&rule.field_conditions).expect("conditions encode as JSON");
    sqlx::query(
        "INSERT INTO log_drop_filters (id, account_id, active, log_type, description, \
         field_conditions, threshold_gb, created_at, created_by, updated_at, updated_by, \
         feed_version) VALUES ($1, $2, 1, $3, $4, $5, $6, $7, $8, $7, $8, $9)",
    )
    .bind(id)
    .bind(account_id)
    .bind(rule.log_type.clone())
    .bind(rule.description.clone())
    .bind(conditions)
    .bind(rule.threshold_gb)
    .bind(stamp.at)
    .bind(stamp.by.as_str())
    .bind(stamp.feed_version)
    .execute(tx.connection())
    .await?;
    Ok(id)
}

/// The account's log filters, oldest first.
pub async fn log_filters(db: &mut impl Db, account_id: i64) -> Result<Vec<LogFilter>, StoreError> {
    let rows = sqlx::query(SELECT_LOGS)
        .bind(account_id)
        .fetch_all(db.connection())
        .await?;
    rows.iter().map(log_filter).collect()
}

/// The account's log filter `id`, if it has one.
pub async fn log_filter_of(
    db: &mut impl Db,
    account_id: i64,
    id: i64,
) -> Result<Option<LogFilter>, StoreError> {
    let row = sqlx::query(SELECT_LOG)
        .bind(id)
        .bind(account_id)
        .fetch_optional(db.connection())
        .await?;
    row.map(|r| log_filter(&r)).transpose()
}

fn log_feed_row(r: &AnyRow) -> Result<LogDropFilter, StoreError> {
    let f = log_filter(r)?;
    Ok(LogDropFilter {
        id: feed_id(f.id, "log_drop_filters.id")?,
        account_id: feed_account(f.account_id, "log_drop_filters.account_id")?,
        active: f.active,
        log_type: f.rule.log_type,
        field_conditions: f.rule.field_conditions,
        threshold_bytes: gb_to_bytes(f.rule.threshold_gb),
    })
}

/// GB to bytes as the volume rules count them (10^9 to a GB). Saturating: thresholds were
/// checked finite and in range when set.
fn gb_to_bytes(gb: f64) -> u64 {
    (gb * crate::control::volume::BYTES_PER_GB).round() as u64
}

/// Every log filter, as the rows come (the feed's snapshot).
pub fn log_feed(
    store: &Store,
) -> impl Stream<Item = Result<LogDropFilter, StoreError>> + Send + '_ {
    rows_as(store, SELECT_LOG_FEED, log_feed_row)
}

/// Every row of `statement`, as it comes, made into `T` by `row`.
fn rows_as<'a, T: Send + 'static>(
    store: &'a Store,
    statement: &'static str,
    row: fn(&AnyRow) -> Result<T, StoreError>,
) -> impl Stream<Item = Result<T, StoreError>> + Send + 'a {
    sqlx::query(statement)
        .fetch(&store.pool)
        .map(move |r| row(&r?))
}

/// The rows of `statement` (filters changed since `$1`), made into `T` by `row`.
async fn changed_since<T>(
    db: &mut impl Db,
    statement: &'static str,
    since: i64,
    row: fn(&AnyRow) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let rows = sqlx::query(statement)
        .bind(since)
        .fetch_all(db.connection())
        .await?;
    rows.iter().map(row).collect()
}

// === metrics filters ===

/// A metrics filter as the management API shows it.
#[derive(Debug, Clone)]
pub struct MetricsFilter {
    pub id: i64,
    pub account_id: i64,
    pub name: Option<String>,
    pub active: bool,
    pub drop_policy: DropPolicy,
    pub filter: Filter,
    pub created_at: i64,
    pub created_by: String,
    pub modified_at: i64,
    pub modified_by: String,
}

/// What a create or a full update sets.
pub struct MetricsDefinition<'a> {
    pub name: Option<&'a str>,
    pub active: bool,
    pub drop_policy: DropPolicy,
    pub filter: &'a Filter,
}

/// The filters of the metrics accounts `$2` reaches: its own (a metrics account) or those
/// of the accounts it owns (a main account).
const SELECT_METRICS: &str = "SELECT f.id, f.account_id, f.name, f.active, f.drop_policy, \
     f.filter, f.created_at, f.created_by, f.modified_at, f.modified_by \
     FROM metrics_drop_filters f JOIN accounts a ON a.id = f.account_id \
     WHERE f.id = $1 AND (a.id = $2 OR a.owner_id = $2)";
const SELECT_METRICS_ALL: &str = "SELECT f.id, f.account_id, f.name, f.active, \
     f.drop_policy, f.filter, f.created_at, f.created_by, f.modified_at, f.modified_by \
     FROM metrics_drop_filters f JOIN accounts a ON a.id = f.account_id \
     WHERE a.id = $1 OR a.owner_id = $1 ORDER BY f.id";
const SELECT_METRICS_FEED: &str = "SELECT id, account_id, name, active, drop_policy, filter, \
     created_at, created_by, modified_at, modified_by FROM metrics_drop_filters ORDER BY id";
const SELECT_METRICS_FEED_SINCE: &str = "SELECT id, account_id, name, active, drop_policy, \
     filter, created_at, created_by, modified_at, modified_by FROM metrics_drop_filters \
     WHERE feed_version > $1 ORDER BY id";

fn metrics_filter(r: &AnyRow) -> Result<MetricsFilter, StoreError> {
    let policy: String = r.try_get("drop_policy")?;
    let drop_policy = DropPolicy::check(Some(&policy))
        .map_err(|_| corrupt("metrics_drop_filters.drop_policy", &policy))?;
    let filter: String = r.try_get("filter")?;
    let filter = serde_json::from_str(&filter)
        .map_err(|_| corrupt("metrics_drop_filters.filter", &filter))?;
    Ok(MetricsFilter {
        id: r.try_get("id")?,
        account_id: r.try_get("account_id")?,
        name: r.try_get("name")?,
        active: flag(r, "active")?,
        drop_policy,
        filter,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
        modified_at: r.try_get("modified_at")?,
        modified_by: r.try_get("modified_by")?,
    })
}

pub async fn insert_metrics(
    tx: &mut Tx,
    account_id: i64,
    new: &MetricsDefinition<'_>,
    stamp: &Stamp,
) -> Result<i64, StoreError> {
    let id = next_id(tx, Ids::MetricsDropFilters).await?;
    sqlx::query(
        "INSERT INTO metrics_drop_filters (id, account_id, name, active, drop_policy, filter, \
         created_at, created_by, modified_at, modified_by, feed_version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $7, $8, $9)",
    )
    .bind(id)
    .bind(account_id)
    .bind(new.name)
    .bind(i64::from(new.active))
    .bind(new.drop_policy.as_str())
    .bind(serde_json::to_string(new.filter).expect("a filter encodes as JSON"))
    .bind(stamp.at)
    .bind(stamp.by.as_str())
    .bind(stamp.feed_version)
    .execute(tx.connection())
    .await?;
    Ok(id)
}

/// Filter `id`, if it belongs to a metrics account `reach` reaches (itself, or one it
/// owns).
pub async fn metrics_filter_of(
    db: &mut impl Db,
    reach: i64,
    id: i64,
) -> Result<Option<MetricsFilter>, StoreError> {
    let row = sqlx::query(SELECT_METRICS)
        .bind(id)
        .bind(reach)
        .fetch_optional(db.connection())
        .await?;
    row.map(|r| metrics_filter(&r)).transpose()
}

/// Every filter of the metrics accounts `reach` reaches, oldest first.
pub async fn metrics_filters(
    db: &mut impl Db,
    reach: i64,
) -> Result<Vec<MetricsFilter>, StoreError> {
    let rows = sqlx::query(SELECT_METRICS_ALL)
        .bind(reach)
        .fetch_all(db.connection())
        .await?;
    rows.iter().map(metrics_filter).collect()
}

/// How many filters the metrics account has, enabled or not.
pub async fn count_metrics(db: &mut impl Db, account_id: i64) -> Result<i64, StoreError> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM metrics_drop_filters WHERE account_id = $1")
        .bind(account_id)
        .fetch_one(db.connection())
        .await?;
    Ok(row.try_get("n")?)
}

/// Replaces the filter's definition (a `PUT`).
pub async fn update_metrics(
    tx: &mut Tx,
    id: i64,
    new: &MetricsDefinition<'_>,
    stamp: &Stamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE metrics_drop_filters SET name = $2, active = $3, drop_policy = $4, \
         filter = $5, modified_at = $6, modified_by = $7, feed_version = $8 WHERE id = $1",
    )
    .bind(id)
    .bind(new.name)
    .bind(i64::from(new.active))
    .bind(new.drop_policy.as_str())
    .bind(serde_json::to_string(new.filter).expect("a filter encodes as JSON"))
    .bind(stamp.at)
    .bind(stamp.by.as_str())
    .bind(stamp.feed_version)
    .execute(tx.connection())
    .await?;
    Ok(())
}

fn metrics_feed_row(r: &AnyRow) -> Result<MetricsDropFilter, StoreError> {
    let f = metrics_filter(r)?;
    Ok(MetricsDropFilter {
        id: feed_id(f.id, "metrics_drop_filters.id")?,
        account_id: feed_account(f.account_id, "metrics_drop_filters.account_id")?,
        active: f.active,
        drop_policy: f.drop_policy,
        filter: f.filter,
    })
}

/// Every metrics filter, as the rows come (the feed's snapshot).
pub fn metrics_feed(
    store: &Store,
) -> impl Stream<Item = Result<MetricsDropFilter, StoreError>> + Send + '_ {
    rows_as(store, SELECT_METRICS_FEED, metrics_feed_row)
}

/// The filters changed and deleted since version `since`: the feed's change answer.
pub async fn changes_since(db: &mut impl Db, since: i64) -> Result<DropFilterChanges, StoreError> {
    let (logs, metrics) = deleted_since(db, since).await?;
    Ok(DropFilterChanges {
        upserts: DropFilters {
            logs: changed_since(db, SELECT_LOG_FEED_SINCE, since, log_feed_row).await?,
            metrics: changed_since(db, SELECT_METRICS_FEED_SINCE, since, metrics_feed_row).await?,
        },
        deletes: DropFilterDeletes { logs, metrics },
    })
}

/// Ids of the log and metrics filters deleted since version `since`.
async fn deleted_since(db: &mut impl Db, since: i64) -> Result<(Vec<u64>, Vec<u64>), StoreError> {
    let rows = sqlx::query(
        "SELECT item, collection FROM feed_tombstones WHERE feed_version > $1 \
         AND collection IN ('log_drop_filters', 'metrics_drop_filters')",
    )
    .bind(since)
    .fetch_all(db.connection())
    .await?;
    let (mut logs, mut metrics) = (Vec::new(), Vec::new());
    for r in &rows {
        let item: String = r.try_get("item")?;
        let collection: String = r.try_get("collection")?;
        let id = item
            .parse::<u64>()
            .map_err(|_| corrupt("feed_tombstones.item", &item))?;
        match collection.as_str() {
            LOG_FILTERS => logs.push(id),
            _ => metrics.push(id),
        }
    }
    Ok((logs, metrics))
}
