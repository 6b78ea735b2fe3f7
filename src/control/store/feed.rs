//! The feed's state: its version, the tombstones of deleted rows, the token entries and
//! read grants gateways replicate, and the usage they report back.
//!
//! Every replicated row (shipping token, account, API token, shared token) carries the
//! feed version of its last change in `feed_version`; a deleted one leaves a tombstone in
//! `feed_tombstones`, named by its collection and key. The statements that write them
//! live with each table; the ones that read them for gateways are here.

use futures_util::{Stream, StreamExt, TryStreamExt};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, Store, StoreError, Tx, corrupt, flag};
use crate::control::rules::{self, Plan};
use crate::model::{AccountId, Kind};
use crate::tokens::wire::{
    AccountType, FieldValue, FilterOp, GrantAccount, GrantApiToken, GrantChanges, GrantDeletes,
    GrantSharedToken, Grants, SnapshotEntry,
};

/// The `collection` of a shipping token's tombstone. The others are `accounts` (the item
/// is the account id, in decimal), `api_tokens` and `shared_tokens` (the token's digest),
/// and the drop filters' (`drop_filters`), each written by the statement that deletes the
/// row.
const SHIPPING_TOKENS: &str = "shipping_tokens";

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
    let deletes =
        sqlx::query("SELECT item FROM feed_tombstones WHERE feed_version > $1 AND collection = $2")
            .bind(since)
            .bind(SHIPPING_TOKENS)
            .fetch_all(db.connection())
            .await?
            .iter()
            .map(|r| r.try_get("item"))
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

// === read grants ===

const SELECT_GRANT_ACCOUNTS: &str =
    "SELECT id, owner_id, type, searchable, plan, trial_ends_at FROM accounts";
const SELECT_GRANT_ACCOUNTS_SINCE: &str = "SELECT id, owner_id, type, searchable, plan, \
     trial_ends_at FROM accounts WHERE feed_version > $1";
const SELECT_GRANT_API_TOKENS: &str = "SELECT digest, account_id FROM api_tokens";
const SELECT_GRANT_API_TOKENS_SINCE: &str =
    "SELECT digest, account_id FROM api_tokens WHERE feed_version > $1";
/// One row per shared token and filter (one with NULLs for a token without filters),
/// ordered so a token's rows are adjacent: `grouped` folds them into one grant.
const SELECT_GRANT_SHARED: &str = "SELECT s.id, s.digest, s.account_id, s.filters_operator, \
     s.expires_at_ms, f.field, f.value FROM shared_tokens s \
     LEFT JOIN shared_token_filters sf ON sf.shared_token_id = s.id \
     LEFT JOIN token_filters f ON f.id = sf.filter_id ORDER BY s.id, f.id";
const SELECT_GRANT_SHARED_SINCE: &str = "SELECT s.id, s.digest, s.account_id, \
     s.filters_operator, s.expires_at_ms, f.field, f.value FROM shared_tokens s \
     LEFT JOIN shared_token_filters sf ON sf.shared_token_id = s.id \
     LEFT JOIN token_filters f ON f.id = sf.filter_id WHERE s.feed_version > $1 \
     ORDER BY s.id, f.id";

fn account_id(value: i64, column: &'static str) -> Result<AccountId, StoreError> {
    u64::try_from(value)
        .map(AccountId)
        .map_err(|_| corrupt(column, value))
}

fn grant_account(r: &AnyRow) -> Result<GrantAccount, StoreError> {
    let kind: String = r.try_get("type")?;
    let account_type = AccountType::parse(&kind).ok_or_else(|| corrupt("accounts.type", &kind))?;
    let owner: Option<i64> = r.try_get("owner_id")?;
    let usable_until = match owner {
        // Owned accounts follow their main account's plan and trial.
        Some(_) => None,
        None => {
            let plan: String = r.try_get("plan")?;
            let plan = Plan::parse(&plan).ok_or_else(|| corrupt("accounts.plan", &plan))?;
            rules::api_tokens_usable_until_ms(plan, r.try_get("trial_ends_at")?)
        }
    };
    Ok(GrantAccount {
        account_id: account_id(r.try_get("id")?, "accounts.id")?,
        owner_id: owner
            .map(|o| account_id(o, "accounts.owner_id"))
            .transpose()?,
        account_type,
        searchable: flag(r, "searchable")?,
        api_tokens_usable_until_ms: usable_until,
    })
}

fn grant_api_token(r: &AnyRow) -> Result<GrantApiToken, StoreError> {
    Ok(GrantApiToken {
        digest: r.try_get("digest")?,
        account_id: account_id(r.try_get("account_id")?, "api_tokens.account_id")?,
    })
}

/// One row of `SELECT_GRANT_SHARED`: the token (without filters) and the row's filter.
fn shared_row(r: &AnyRow) -> Result<(GrantSharedToken, Option<FieldValue>), StoreError> {
    let id: i64 = r.try_get("id")?;
    let operator: String = r.try_get("filters_operator")?;
    let operator = match operator.as_str() {
        "AND" => FilterOp::And,
        "OR" => FilterOp::Or,
        _ => return Err(corrupt("shared_tokens.filters_operator", operator)),
    };
    let expires: Option<i64> = r.try_get("expires_at_ms")?;
    let token = GrantSharedToken {
        digest: r.try_get("digest")?,
        token_id: u64::try_from(id).map_err(|_| corrupt("shared_tokens.id", id))?,
        account_id: account_id(r.try_get("account_id")?, "shared_tokens.account_id")?,
        filters: Vec::new(),
        operator,
        // An expiry before 1970 is as expired as any past instant.
        expires_at_ms: expires.map(|ms| u64::try_from(ms).unwrap_or(0)),
    };
    let field: Option<String> = r.try_get("field")?;
    let value: Option<String> = r.try_get("value")?;
    let filter = field
        .zip(value)
        .map(|(field, value)| FieldValue { field, value });
    Ok((token, filter))
}

/// Folds `SELECT_GRANT_SHARED` rows (a token's rows adjacent) into one grant per token,
/// as they come.
fn grouped<S>(rows: S) -> impl Stream<Item = Result<GrantSharedToken, StoreError>> + Send
where
    S: Stream<Item = Result<AnyRow, StoreError>> + Send + Unpin,
{
    futures_util::stream::unfold(
        (rows, None::<GrantSharedToken>, false),
        |(mut rows, mut pending, done)| async move {
            if done {
                return None;
            }
            loop {
                let (token, filter) = match rows.next().await {
                    Some(Ok(row)) => match shared_row(&row) {
                        Ok(parsed) => parsed,
                        Err(e) => return Some((Err(e), (rows, None, true))),
                    },
                    Some(Err(e)) => return Some((Err(e), (rows, None, true))),
                    None => return pending.take().map(|last| (Ok(last), (rows, None, true))),
                };
                match &mut pending {
                    Some(current) if current.token_id == token.token_id => {
                        current.filters.extend(filter);
                    }
                    _ => {
                        let mut token = token;
                        token.filters.extend(filter);
                        if let Some(finished) = pending.replace(token) {
                            return Some((Ok(finished), (rows, pending, false)));
                        }
                    }
                }
            }
        },
    )
}

/// Every account's read-relevant attributes, as the rows come.
pub fn grant_accounts(
    store: &Store,
) -> impl Stream<Item = Result<GrantAccount, StoreError>> + Send + '_ {
    sqlx::query(SELECT_GRANT_ACCOUNTS)
        .fetch(&store.pool)
        .map(|row| grant_account(&row?))
}

/// Every API token's digest and account, as the rows come.
pub fn grant_api_tokens(
    store: &Store,
) -> impl Stream<Item = Result<GrantApiToken, StoreError>> + Send + '_ {
    sqlx::query(SELECT_GRANT_API_TOKENS)
        .fetch(&store.pool)
        .map(|row| grant_api_token(&row?))
}

/// Every shared token with its filters, as the rows come.
pub fn grant_shared_tokens(
    store: &Store,
) -> impl Stream<Item = Result<GrantSharedToken, StoreError>> + Send + '_ {
    grouped(
        sqlx::query(SELECT_GRANT_SHARED)
            .fetch(&store.pool)
            .map_err(StoreError::from),
    )
}

/// The grants' rows changed since version `since` and their tombstones.
pub async fn grant_changes_since(db: &mut impl Db, since: i64) -> Result<GrantChanges, StoreError> {
    let accounts = sqlx::query(SELECT_GRANT_ACCOUNTS_SINCE)
        .bind(since)
        .fetch_all(db.connection())
        .await?
        .iter()
        .map(grant_account)
        .collect::<Result<_, _>>()?;
    let api_tokens = sqlx::query(SELECT_GRANT_API_TOKENS_SINCE)
        .bind(since)
        .fetch_all(db.connection())
        .await?
        .iter()
        .map(grant_api_token)
        .collect::<Result<_, _>>()?;
    let shared_rows = sqlx::query(SELECT_GRANT_SHARED_SINCE)
        .bind(since)
        .fetch_all(db.connection())
        .await?;
    let shared_tokens = grouped(futures_util::stream::iter(shared_rows.into_iter().map(Ok)))
        .try_collect()
        .await?;
    let mut deletes = GrantDeletes::default();
    let tombstones = sqlx::query(
        "SELECT item, collection FROM feed_tombstones WHERE feed_version > $1 \
         AND collection IN ('accounts', 'api_tokens', 'shared_tokens')",
    )
    .bind(since)
    .fetch_all(db.connection())
    .await?;
    for r in &tombstones {
        let item: String = r.try_get("item")?;
        let collection: String = r.try_get("collection")?;
        match collection.as_str() {
            "accounts" => {
                let id = item
                    .parse::<u64>()
                    .map_err(|_| corrupt("feed_tombstones.item", &item))?;
                deletes.accounts.push(AccountId(id));
            }
            "api_tokens" => deletes.api_tokens.push(item),
            "shared_tokens" => deletes.shared_tokens.push(item),
            _ => return Err(corrupt("feed_tombstones.collection", collection)),
        }
    }
    Ok(GrantChanges {
        upserts: Grants {
            accounts,
            api_tokens,
            shared_tokens,
        },
        deletes,
    })
}
