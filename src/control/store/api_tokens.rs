//! The `api_tokens` table. Only digests are stored: an API token's secret is shown once,
//! in the answer that creates it. Gateways replicate the digests (read grants): a row
//! carries the feed version of its creation, a delete leaves a tombstone.

use sqlx::Row;

use super::{Actor, Db, Ids, StoreError, Tx, next_id};

#[derive(Debug, Clone)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
    /// Who made it, as the audit trail names actors (`user:<id>`, `api-token:<id>`, …).
    pub created_by: String,
    /// Its last characters; `None` for tokens made before they were kept.
    pub suffix: Option<String>,
    /// Epoch seconds; written at most once a minute (`mark_used`).
    pub last_used: Option<i64>,
}

pub struct NewApiToken<'a> {
    pub account_id: i64,
    pub name: &'a str,
    pub digest_hex: &'a str,
    /// The secret's last characters, shown to tell tokens apart.
    pub suffix: &'a str,
    pub actor: Actor,
    pub now: i64,
    pub feed_version: i64,
}

pub async fn insert(tx: &mut Tx, new: &NewApiToken<'_>) -> Result<i64, StoreError> {
    let id = next_id(tx, Ids::ApiTokens).await?;
    sqlx::query(
        "INSERT INTO api_tokens (id, account_id, name, digest, created_at, created_by, \
         feed_version, suffix) VALUES ($6, $1, $2, $3, $4, $5, $7, $8)",
    )
    .bind(new.account_id)
    .bind(new.name)
    .bind(new.digest_hex)
    .bind(new.now)
    .bind(new.actor.label())
    .bind(id)
    .bind(new.feed_version)
    .bind(new.suffix)
    .execute(tx.connection())
    .await?;
    Ok(id)
}

pub async fn list(db: &mut impl Db, account_id: i64) -> Result<Vec<ApiToken>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, name, created_at, created_by, suffix, last_used FROM api_tokens \
         WHERE account_id = $1 ORDER BY id",
    )
    .bind(account_id)
    .fetch_all(db.connection())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ApiToken {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                created_at: r.try_get("created_at")?,
                created_by: r.try_get("created_by")?,
                suffix: r.try_get("suffix")?,
                last_used: r.try_get("last_used")?,
            })
        })
        .collect()
}

/// Deletes the account's token `id`, leaving its tombstone at `feed_version`; `false`
/// when it has none with that id.
pub async fn delete(
    tx: &mut Tx,
    account_id: i64,
    id: i64,
    feed_version: i64,
) -> Result<bool, StoreError> {
    sqlx::query(
        "INSERT INTO feed_tombstones (feed_version, item, collection) \
         SELECT $3, digest, 'api_tokens' FROM api_tokens WHERE id = $1 AND account_id = $2",
    )
    .bind(id)
    .bind(account_id)
    .bind(feed_version)
    .execute(tx.connection())
    .await?;
    let deleted = sqlx::query("DELETE FROM api_tokens WHERE id = $1 AND account_id = $2")
        .bind(id)
        .bind(account_id)
        .execute(tx.connection())
        .await?
        .rows_affected();
    Ok(deleted > 0)
}

/// The token with this digest.
pub struct Found {
    pub id: i64,
    pub account_id: i64,
    pub last_used: Option<i64>,
}

pub async fn find(db: &mut impl Db, digest_hex: &str) -> Result<Option<Found>, StoreError> {
    let row = sqlx::query("SELECT id, account_id, last_used FROM api_tokens WHERE digest = $1")
        .bind(digest_hex)
        .fetch_optional(db.connection())
        .await?;
    row.map(|r| {
        Ok(Found {
            id: r.try_get("id")?,
            account_id: r.try_get("account_id")?,
            last_used: r.try_get("last_used")?,
        })
    })
    .transpose()
}

pub async fn mark_used(db: &mut impl Db, id: i64, now: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE api_tokens SET last_used = $2 WHERE id = $1")
        .bind(id)
        .bind(now)
        .execute(db.connection())
        .await?;
    Ok(())
}
