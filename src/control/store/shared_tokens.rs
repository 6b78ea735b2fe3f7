//! The `shared_tokens`, `token_filters` and `shared_token_filters` tables: read-only
//! tokens, the account's `field: value` filters, and which filters each token carries.
//! Times here are epoch milliseconds, as Logz.io's shared-token API has them.
//!
//! Gateways replicate each token with its filters (read grants): every change to what a
//! token grants — its expiry, operator, filters, or a filter it uses being deleted —
//! sets the token's `feed_version`; a deleted token leaves a tombstone.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, Ids, StoreError, Tx, corrupt, next_id};

/// How a shared token combines its filters; spelled as Logz.io's API and the column do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum FiltersOperator {
    #[default]
    #[serde(rename = "AND", alias = "and")]
    And,
    #[serde(rename = "OR", alias = "or")]
    Or,
}

impl FiltersOperator {
    pub fn as_str(self) -> &'static str {
        match self {
            FiltersOperator::And => "AND",
            FiltersOperator::Or => "OR",
        }
    }

    fn from_row(r: &AnyRow) -> Result<FiltersOperator, StoreError> {
        let stored: String = r.try_get("filters_operator")?;
        match stored.as_str() {
            "AND" => Ok(FiltersOperator::And),
            "OR" => Ok(FiltersOperator::Or),
            _ => Err(corrupt("shared_tokens.filters_operator", stored)),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SharedToken {
    pub id: i64,
    pub account_id: i64,
    pub name: String,
    pub token: String,
    /// Ids of its filters, ascending.
    pub filters: Vec<i64>,
    pub filters_operator: FiltersOperator,
    pub last_used_ms: Option<i64>,
    /// `None` only for a legacy token.
    pub expires_at_ms: Option<i64>,
}

const SELECT_TOKEN: &str = "SELECT id, account_id, name, token, filters_operator, \
     expires_at_ms, last_used_ms FROM shared_tokens WHERE id = $1 AND account_id = $2";
const SELECT_TOKENS: &str = "SELECT id, account_id, name, token, filters_operator, \
     expires_at_ms, last_used_ms FROM shared_tokens WHERE account_id = $1 ORDER BY id";
const SELECT_BY_DIGEST: &str = "SELECT id, account_id, name, token, filters_operator, \
     expires_at_ms, last_used_ms FROM shared_tokens WHERE digest = $1";

async fn with_filters(db: &mut impl Db, r: &AnyRow) -> Result<SharedToken, StoreError> {
    let id: i64 = r.try_get("id")?;
    let filters = sqlx::query(
        "SELECT filter_id FROM shared_token_filters WHERE shared_token_id = $1 ORDER BY filter_id",
    )
    .bind(id)
    .fetch_all(db.connection())
    .await?
    .iter()
    .map(|f| f.try_get("filter_id"))
    .collect::<Result<_, _>>()?;
    Ok(SharedToken {
        id,
        account_id: r.try_get("account_id")?,
        name: r.try_get("name")?,
        token: r.try_get("token")?,
        filters,
        filters_operator: FiltersOperator::from_row(r)?,
        last_used_ms: r.try_get("last_used_ms")?,
        expires_at_ms: r.try_get("expires_at_ms")?,
    })
}

pub async fn get(
    db: &mut impl Db,
    account_id: i64,
    id: i64,
) -> Result<Option<SharedToken>, StoreError> {
    let row = sqlx::query(SELECT_TOKEN)
        .bind(id)
        .bind(account_id)
        .fetch_optional(db.connection())
        .await?;
    match row {
        Some(r) => Ok(Some(with_filters(db, &r).await?)),
        None => Ok(None),
    }
}

pub async fn list(db: &mut impl Db, account_id: i64) -> Result<Vec<SharedToken>, StoreError> {
    let rows = sqlx::query(SELECT_TOKENS)
        .bind(account_id)
        .fetch_all(db.connection())
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        out.push(with_filters(db, r).await?);
    }
    Ok(out)
}

/// The token a gateway presents, found by its digest.
pub async fn find(db: &mut impl Db, digest_hex: &str) -> Result<Option<SharedToken>, StoreError> {
    let row = sqlx::query(SELECT_BY_DIGEST)
        .bind(digest_hex)
        .fetch_optional(db.connection())
        .await?;
    match row {
        Some(r) => Ok(Some(with_filters(db, &r).await?)),
        None => Ok(None),
    }
}

pub struct NewSharedToken<'a> {
    pub account_id: i64,
    pub name: &'a str,
    pub secret: &'a str,
    pub digest_hex: &'a str,
    pub filters_operator: FiltersOperator,
    pub expires_at_ms: Option<i64>,
    pub now_secs: i64,
    pub feed_version: i64,
}

pub async fn insert(tx: &mut Tx, new: &NewSharedToken<'_>) -> Result<i64, StoreError> {
    let id = next_id(tx, Ids::SharedTokens).await?;
    sqlx::query(
        "INSERT INTO shared_tokens (id, account_id, name, token, digest, filters_operator, \
         expires_at_ms, created_at, feed_version) VALUES ($8, $1, $2, $3, $4, $5, $6, $7, $9)",
    )
    .bind(new.account_id)
    .bind(new.name)
    .bind(new.secret)
    .bind(new.digest_hex)
    .bind(new.filters_operator.as_str())
    .bind(new.expires_at_ms)
    .bind(new.now_secs)
    .bind(id)
    .bind(new.feed_version)
    .execute(tx.connection())
    .await?;
    Ok(id)
}

/// Sets what the token grants (its filters are `attach`ed separately, in the same change).
pub async fn update(
    tx: &mut Tx,
    id: i64,
    filters_operator: FiltersOperator,
    expires_at_ms: Option<i64>,
    feed_version: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE shared_tokens SET filters_operator = $1, expires_at_ms = $2, \
         feed_version = $4 WHERE id = $3",
    )
    .bind(filters_operator.as_str())
    .bind(expires_at_ms)
    .bind(id)
    .bind(feed_version)
    .execute(tx.connection())
    .await?;
    Ok(())
}

/// Takes all filters off a token (before `attach` puts the new set on).
pub async fn detach_all(tx: &mut Tx, token_id: i64) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM shared_token_filters WHERE shared_token_id = $1")
        .bind(token_id)
        .execute(tx.connection())
        .await?;
    Ok(())
}

pub async fn attach(tx: &mut Tx, token_id: i64, filter_id: i64) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO shared_token_filters (shared_token_id, filter_id) VALUES ($1, $2)")
        .bind(token_id)
        .bind(filter_id)
        .execute(tx.connection())
        .await?;
    Ok(())
}

/// Deletes the token, leaving its tombstone at `feed_version`.
pub async fn delete(tx: &mut Tx, id: i64, feed_version: i64) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO feed_tombstones (feed_version, item, collection) \
         SELECT $2, digest, 'shared_tokens' FROM shared_tokens WHERE id = $1",
    )
    .bind(id)
    .bind(feed_version)
    .execute(tx.connection())
    .await?;
    detach_all(tx, id).await?;
    sqlx::query("DELETE FROM shared_tokens WHERE id = $1")
        .bind(id)
        .execute(tx.connection())
        .await?;
    Ok(())
}

/// Last-used times only move forward (gateways report uses late and out of order). An
/// unknown id matches nothing: the token was deleted after it was used.
pub async fn mark_used(db: &mut impl Db, id: i64, used_ms: i64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE shared_tokens SET last_used_ms = $1 \
         WHERE id = $2 AND (last_used_ms IS NULL OR last_used_ms < $1)",
    )
    .bind(used_ms)
    .bind(id)
    .execute(db.connection())
    .await?;
    Ok(())
}

// === token filters ===

#[derive(Debug, Clone)]
pub struct Filter {
    pub id: i64,
    pub description: String,
    pub field: String,
    pub value: String,
}

fn filter(r: &AnyRow) -> Result<Filter, StoreError> {
    Ok(Filter {
        id: r.try_get("id")?,
        description: r.try_get("description")?,
        field: r.try_get("field")?,
        value: r.try_get("value")?,
    })
}

pub async fn insert_filter(
    tx: &mut Tx,
    account_id: i64,
    description: &str,
    field: &str,
    value: &str,
) -> Result<Filter, StoreError> {
    let id = next_id(tx, Ids::TokenFilters).await?;
    sqlx::query(
        "INSERT INTO token_filters (id, account_id, description, field, value) \
         VALUES ($5, $1, $2, $3, $4)",
    )
    .bind(account_id)
    .bind(description)
    .bind(field)
    .bind(value)
    .bind(id)
    .execute(tx.connection())
    .await?;
    Ok(Filter {
        id,
        description: description.to_string(),
        field: field.to_string(),
        value: value.to_string(),
    })
}

pub async fn filter_of(
    db: &mut impl Db,
    account_id: i64,
    id: i64,
) -> Result<Option<Filter>, StoreError> {
    let row = sqlx::query(
        "SELECT id, description, field, value FROM token_filters WHERE id = $1 AND account_id = $2",
    )
    .bind(id)
    .bind(account_id)
    .fetch_optional(db.connection())
    .await?;
    row.map(|r| filter(&r)).transpose()
}

pub async fn filters(db: &mut impl Db, account_id: i64) -> Result<Vec<Filter>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, description, field, value FROM token_filters WHERE account_id = $1 ORDER BY id",
    )
    .bind(account_id)
    .fetch_all(db.connection())
    .await?;
    rows.iter().map(filter).collect()
}

/// The filters a token carries now, in id order: what it may read.
pub async fn filters_of_token(db: &mut impl Db, token_id: i64) -> Result<Vec<Filter>, StoreError> {
    let rows = sqlx::query(
        "SELECT f.id, f.description, f.field, f.value FROM token_filters f \
         JOIN shared_token_filters s ON s.filter_id = f.id \
         WHERE s.shared_token_id = $1 ORDER BY f.id",
    )
    .bind(token_id)
    .fetch_all(db.connection())
    .await?;
    rows.iter().map(filter).collect()
}

/// Deletes the account's filter `id` and detaches it from every token that used it,
/// which change at `feed_version`; `false` when the account has no such filter.
pub async fn delete_filter(
    tx: &mut Tx,
    account_id: i64,
    id: i64,
    feed_version: i64,
) -> Result<bool, StoreError> {
    sqlx::query(
        "UPDATE shared_tokens SET feed_version = $3 WHERE account_id = $2 AND id IN \
         (SELECT shared_token_id FROM shared_token_filters WHERE filter_id = $1)",
    )
    .bind(id)
    .bind(account_id)
    .bind(feed_version)
    .execute(tx.connection())
    .await?;
    sqlx::query(
        "DELETE FROM shared_token_filters WHERE filter_id = $1 AND filter_id IN \
         (SELECT id FROM token_filters WHERE account_id = $2)",
    )
    .bind(id)
    .bind(account_id)
    .execute(tx.connection())
    .await?;
    let deleted = sqlx::query("DELETE FROM token_filters WHERE id = $1 AND account_id = $2")
        .bind(id)
        .bind(account_id)
        .execute(tx.connection())
        .await?
        .rows_affected();
    Ok(deleted > 0)
}
