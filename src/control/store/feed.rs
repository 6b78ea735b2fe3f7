//! The feed's state: its version, the tombstones of deleted tokens, the token entries
//! gateways replicate, and the usage they report back.

use futures_util::{Stream, StreamExt};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, Store, StoreError, Tx, corrupt, flag};
use crate::model::Kind;
use crate::tokens::wire::SnapshotEntry;

/// How many UTC days of volume are kept per account (today included): what the detailed
/// sub-account view shows.
pub const DAILY_USAGE_DAYS: i64 = 30;

pub async fn current_version(db: &mut impl Db) -> Result<i64, StoreError> {
    Ok(sqlx::query("SELECT version FROM feed_state WHERE id = 1")
        .fetch_one(db.connection())
        .await?
        .try_get("version")?)
}

/// `(version, oldest)`: the newest version and the oldest `since` the kept tombstones
/// can still answer.
pub async fn versions(db: &mut impl Db) -> Result<(i64, i64), StoreError> {
    let row = sqlx::query("SELECT version, oldest FROM feed_state WHERE id = 1")
        .fetch_one(db.connection())
        .await?;
    Ok((row.try_get("version")?, row.try_get("oldest")?))
}

/// Moves the feed forward by one and returns the new version; the changed rows carry it.
pub async fn next_version(tx: &mut Tx) -> Result<i64, StoreError> {
    let row =
        sqlx::query("UPDATE feed_state SET version = version + 1 WHERE id = 1 RETURNING version")
            .fetch_one(tx.connection())
            .await?;
    Ok(row.try_get("version")?)
}

/// Forgets tombstones more than `retained` versions old and moves `oldest` past them: a
/// gateway further behind than that gets 410 and refetches the snapshot.
pub async fn prune_tombstones(tx: &mut Tx, version: i64, retained: i64) -> Result<(), StoreError> {
    let horizon = version.saturating_sub(retained);
    if horizon <= 0 {
        return Ok(());
    }
    sqlx::query("DELETE FROM feed_tombstones WHERE feed_version <= $1")
        .bind(horizon)
        .execute(tx.connection())
        .await?;
    sqlx::query("UPDATE feed_state SET oldest = $1 WHERE id = 1 AND oldest < $1")
        .bind(horizon)
        .execute(tx.connection())
        .await?;
    Ok(())
}

const SELECT_ENTRIES: &str = "SELECT t.digest, t.id, t.account_id, a.name AS account_name, \
     t.kind, t.enabled FROM shipping_tokens t JOIN accounts a ON a.id = t.account_id";
const SELECT_ENTRIES_SINCE: &str = "SELECT t.digest, t.id, t.account_id, \
     a.name AS account_name, t.kind, t.enabled FROM shipping_tokens t \
     JOIN accounts a ON a.id = t.account_id WHERE t.feed_version > $1";
const SELECT_ENTRY: &str = "SELECT t.digest, t.id, t.account_id, a.name AS account_name, \
     t.kind, t.enabled FROM shipping_tokens t JOIN accounts a ON a.id = t.account_id \
     WHERE t.digest = $1";

fn entry(r: &AnyRow) -> Result<SnapshotEntry, StoreError> {
    let kind: String = r.try_get("kind")?;
    let account_id: i64 = r.try_get("account_id")?;
    Ok(SnapshotEntry {
        token: None,
        digest: Some(r.try_get("digest")?),
        token_id: r.try_get::<i64, _>("id")?.to_string(),
        account_id: u64::try_from(account_id)
            .map_err(|_| corrupt("shipping_tokens.account_id", account_id))?,
        account_name: r.try_get("account_name")?,
        kind: Kind::parse(&kind).ok_or_else(|| corrupt("shipping_tokens.kind", &kind))?,
        enabled: flag(r, "enabled")?,
    })
}

/// Every token, as the rows come: the snapshot streams them without holding the table.
pub fn entries(store: &Store) -> impl Stream<Item = Result<SnapshotEntry, StoreError>> + Send + '_ {
    sqlx::query(SELECT_ENTRIES)
        .fetch(&store.pool)
        .map(|row| entry(&row?))
}

/// Upserts and tombstoned digests (hex) since version `since`.
pub async fn changes_since(
    db: &mut impl Db,
    since: i64,
) -> Result<(Vec<SnapshotEntry>, Vec<String>), StoreError> {
    let upserts = sqlx::query(SELECT_ENTRIES_SINCE)
        .bind(since)
        .fetch_all(db.connection())
        .await?
        .iter()
        .map(entry)
        .collect::<Result<_, _>>()?;
    let deletes = sqlx::query("SELECT digest FROM feed_tombstones WHERE feed_version > $1")
        .bind(since)
        .fetch_all(db.connection())
        .await?
        .iter()
        .map(|r| r.try_get("digest"))
        .collect::<Result<_, _>>()?;
    Ok((upserts, deletes))
}

pub async fn entry_by_digest(
    db: &mut impl Db,
    digest_hex: &str,
) -> Result<Option<SnapshotEntry>, StoreError> {
    let row = sqlx::query(SELECT_ENTRY)
        .bind(digest_hex)
        .fetch_optional(db.connection())
        .await?;
    row.map(|r| entry(&r)).transpose()
}

/// Adds a gateway's volumes to the account's, in total and for the UTC day starting at
/// `day_ms`. The counters saturate at i64::MAX: an overflowing sum would fail the whole
/// report on PostgreSQL ("bigint out of range") every time the gateway retried it. An
/// unknown account adds nothing.
pub async fn add_usage(
    tx: &mut Tx,
    account_id: i64,
    kind: Kind,
    day_ms: i64,
    bytes: i64,
    records: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO account_usage (account_id, kind, bytes, records) \
         SELECT id, $2, $3, $4 FROM accounts WHERE id = $1 \
         ON CONFLICT (account_id, kind) DO UPDATE SET \
         bytes = CASE WHEN account_usage.bytes > 9223372036854775807 - excluded.bytes \
         THEN 9223372036854775807 ELSE account_usage.bytes + excluded.bytes END, \
         records = CASE WHEN account_usage.records > 9223372036854775807 - excluded.records \
         THEN 9223372036854775807 ELSE account_usage.records + excluded.records END",
    )
    .bind(account_id)
    .bind(kind.as_str())
    .bind(bytes)
    .bind(records)
    .execute(tx.connection())
    .await?;
    sqlx::query(
        "INSERT INTO account_daily_usage (account_id, kind, day, bytes, records) \
         SELECT id, $2, $5, $3, $4 FROM accounts WHERE id = $1 \
         ON CONFLICT (account_id, kind, day) DO UPDATE SET \
         bytes = CASE WHEN account_daily_usage.bytes > 9223372036854775807 - excluded.bytes \
         THEN 9223372036854775807 ELSE account_daily_usage.bytes + excluded.bytes END, \
         records = CASE WHEN account_daily_usage.records > 9223372036854775807 - excluded.records \
         THEN 9223372036854775807 ELSE account_daily_usage.records + excluded.records END",
    )
    .bind(account_id)
    .bind(kind.as_str())
    .bind(bytes)
    .bind(records)
    .bind(day_ms)
    .execute(tx.connection())
    .await?;
    Ok(())
}

/// The account's bytes per UTC day from `since_day_ms` on, oldest first, all kinds
/// together (summed here, saturating: each kind's counter may already be at i64::MAX):
/// `(day's midnight in epoch ms, bytes)`.
pub async fn daily_bytes(
    db: &mut impl Db,
    account_id: i64,
    since_day_ms: i64,
) -> Result<Vec<(i64, i64)>, StoreError> {
    let rows = sqlx::query(
        "SELECT day, bytes FROM account_daily_usage WHERE account_id = $1 AND day >= $2 \
         ORDER BY day",
    )
    .bind(account_id)
    .bind(since_day_ms)
    .fetch_all(db.connection())
    .await?;
    let mut days: Vec<(i64, i64)> = Vec::new();
    for r in &rows {
        let (day, bytes): (i64, i64) = (r.try_get("day")?, r.try_get("bytes")?);
        match days.last_mut() {
            Some((last, sum)) if *last == day => *sum = sum.saturating_add(bytes),
            _ => days.push((day, bytes)),
        }
    }
    Ok(days)
}

/// Forgets the account's daily volumes before `before_day_ms`: nothing reads them, and
/// the table would otherwise grow a row per account and day forever.
pub async fn forget_usage_before(
    tx: &mut Tx,
    account_id: i64,
    before_day_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM account_daily_usage WHERE account_id = $1 AND day < $2")
        .bind(account_id)
        .bind(before_day_ms)
        .execute(tx.connection())
        .await?;
    Ok(())
}
