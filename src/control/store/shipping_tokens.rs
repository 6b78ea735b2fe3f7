//! The `shipping_tokens` table. Every change here carries the feed version its use case
//! took (`feed::next_version`), and a delete leaves tombstones, so gateways replicate
//! exactly the committed state.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Actor, Db, Ids, StoreError, Tx, corrupt, flag, next_id};
use crate::model::Kind;

/// A shipping token as its account sees it; times in epoch seconds.
#[derive(Debug, Clone)]
pub struct ShippingToken {
    pub id: i64,
    pub kind: Kind,
    pub name: String,
    pub token: String,
    pub enabled: bool,
    pub created_at: i64,
    pub created_by: String,
    pub updated_at: i64,
    pub updated_by: String,
    /// When a gateway last accepted data with it (reported on `/v1/feed/usage`).
    pub last_used: Option<i64>,
}

fn token(r: &AnyRow) -> Result<ShippingToken, StoreError> {
    let kind: String = r.try_get("kind")?;
    Ok(ShippingToken {
        id: r.try_get("id")?,
        kind: Kind::parse(&kind).ok_or_else(|| corrupt("shipping_tokens.kind", &kind))?,
        name: r.try_get("name")?,
        token: r.try_get("token")?,
        enabled: flag(r, "enabled")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
        updated_at: r.try_get("updated_at")?,
        updated_by: r.try_get("updated_by")?,
        last_used: r.try_get("last_used")?,
    })
}

/// A token to insert: its secret and digest are made by the caller (`auth::new_secret`).
pub struct NewToken<'a> {
    pub account_id: i64,
    pub kind: Kind,
    pub name: &'a str,
    pub secret: &'a str,
    pub digest_hex: &'a str,
    pub enabled: bool,
    pub actor: Actor,
    pub now: i64,
    pub feed_version: i64,
}

pub async fn insert(tx: &mut Tx, new: &NewToken<'_>) -> Result<i64, StoreError> {
    let id = next_id(tx, Ids::ShippingTokens).await?;
    sqlx::query(
        "INSERT INTO shipping_tokens (id, account_id, kind, name, token, digest, enabled, \
         created_at, created_by, updated_at, updated_by, feed_version) \
         VALUES ($10, $1, $2, $3, $4, $5, $9, $6, $7, $6, $7, $8)",
    )
    .bind(new.account_id)
    .bind(new.kind.as_str())
    .bind(new.name)
    .bind(new.secret)
    .bind(new.digest_hex)
    .bind(new.now)
    .bind(new.actor.label())
    .bind(new.feed_version)
    .bind(i64::from(new.enabled))
    .bind(id)
    .execute(tx.connection())
    .await?;
    Ok(id)
}

/// One token of the account and kind; another account's token is `None`, like an
/// unknown id.
pub async fn get(
    db: &mut impl Db,
    account_id: i64,
    kind: Kind,
    id: i64,
) -> Result<Option<ShippingToken>, StoreError> {
    let row = sqlx::query(
        "SELECT id, kind, name, token, enabled, created_at, created_by, updated_at, updated_by, \
         last_used FROM shipping_tokens WHERE id = $1 AND account_id = $2 AND kind = $3",
    )
    .bind(id)
    .bind(account_id)
    .bind(kind.as_str())
    .fetch_optional(db.connection())
    .await?;
    row.map(|r| token(&r)).transpose()
}

/// The id of the account's token of `kind` named exactly `name`, if there is one.
pub async fn named(
    db: &mut impl Db,
    account_id: i64,
    kind: Kind,
    name: &str,
) -> Result<Option<i64>, StoreError> {
    let row = sqlx::query(
        "SELECT id FROM shipping_tokens WHERE account_id = $1 AND kind = $2 AND name = $3 \
         ORDER BY id LIMIT 1",
    )
    .bind(account_id)
    .bind(kind.as_str())
    .bind(name)
    .fetch_optional(db.connection())
    .await?;
    row.map(|r| r.try_get("id")).transpose().map_err(Into::into)
}

/// What a rename, enable or disable writes.
pub struct TokenUpdate<'a> {
    pub id: i64,
    pub name: &'a str,
    pub enabled: bool,
    pub actor: Actor,
    pub now: i64,
    pub feed_version: i64,
}

pub async fn update(tx: &mut Tx, u: &TokenUpdate<'_>) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE shipping_tokens SET name = $1, enabled = $2, updated_at = $3, updated_by = $4, \
         feed_version = $5 WHERE id = $6",
    )
    .bind(u.name)
    .bind(i64::from(u.enabled))
    .bind(u.now)
    .bind(u.actor.label())
    .bind(u.feed_version)
    .bind(u.id)
    .execute(tx.connection())
    .await?;
    Ok(())
}

/// Enabled tokens of the account, every kind: what the plan's limit counts.
pub async fn enabled_count(db: &mut impl Db, account_id: i64) -> Result<i64, StoreError> {
    Ok(sqlx::query(
        "SELECT COUNT(*) AS n FROM shipping_tokens WHERE account_id = $1 AND enabled = 1",
    )
    .bind(account_id)
    .fetch_one(db.connection())
    .await?
    .try_get("n")?)
}

/// Which tokens a removal takes: one, or all of an account's. Each has its fixed pair of
/// statements (tombstones first, then the rows).
#[derive(Debug, Clone, Copy)]
pub enum Removal {
    Token(i64),
    AllOf { account_id: i64 },
}

/// Deletes the tokens `which` names, leaving their tombstones at `feed_version` so
/// gateways drop them.
pub async fn remove(tx: &mut Tx, which: Removal, feed_version: i64) -> Result<(), StoreError> {
    let (tombstones, delete, key) = match which {
        Removal::Token(id) => (
            "INSERT INTO feed_tombstones (feed_version, item, collection) \
             SELECT $2, digest, 'shipping_tokens' FROM shipping_tokens WHERE id = $1",
            "DELETE FROM shipping_tokens WHERE id = $1",
            id,
        ),
        Removal::AllOf { account_id } => (
            "INSERT INTO feed_tombstones (feed_version, item, collection) \
             SELECT $2, digest, 'shipping_tokens' FROM shipping_tokens WHERE account_id = $1",
            "DELETE FROM shipping_tokens WHERE account_id = $1",
            account_id,
        ),
    };
    sqlx::query(tombstones)
        .bind(key)
        .bind(feed_version)
        .execute(tx.connection())
        .await?;
    sqlx::query(delete)
        .bind(key)
        .execute(tx.connection())
        .await?;
    Ok(())
}

/// Puts every token of the account into the feed again at `feed_version`: gateways carry
/// the account's name with each token, so a rename is a change to all of them.
pub async fn republish_account(
    tx: &mut Tx,
    account_id: i64,
    feed_version: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE shipping_tokens SET feed_version = $1 WHERE account_id = $2")
        .bind(feed_version)
        .bind(account_id)
        .execute(tx.connection())
        .await?;
    Ok(())
}

/// The orders a search may ask for. Each is a fixed statement: no SQL is assembled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Id,
    CreatedAt { descending: bool },
    Name { descending: bool },
}

/// `enabled`: `None` for any. Returns the total matching and the page asked for.
pub struct Search {
    pub account_id: i64,
    pub kind: Kind,
    pub enabled: Option<bool>,
    pub order: Order,
    pub limit: i64,
    pub offset: i64,
}

// `$3 < 0` stands for "any": one statement for both filters.
const SEARCH_COUNT: &str = "SELECT COUNT(*) AS n FROM shipping_tokens \
     WHERE account_id = $1 AND kind = $2 AND ($3 < 0 OR enabled = $3)";

macro_rules! search_page {
    ($order:literal) => {
        concat!(
            "SELECT id, kind, name, token, enabled, created_at, created_by, updated_at, \
             updated_by, last_used FROM shipping_tokens \
             WHERE account_id = $1 AND kind = $2 AND ($3 < 0 OR enabled = $3) ORDER BY ",
            $order,
            " LIMIT $4 OFFSET $5"
        )
    };
}

pub async fn search(db: &mut impl Db, s: &Search) -> Result<(i64, Vec<ShippingToken>), StoreError> {
    let enabled = s.enabled.map_or(-1, i64::from);
    let total: i64 = sqlx::query(SEARCH_COUNT)
        .bind(s.account_id)
        .bind(s.kind.as_str())
        .bind(enabled)
        .fetch_one(db.connection())
        .await?
        .try_get("n")?;
    let page: &'static str = match s.order {
        Order::Id => search_page!("id"),
        Order::CreatedAt { descending: false } => search_page!("created_at ASC, id ASC"),
        Order::CreatedAt { descending: true } => search_page!("created_at DESC, id DESC"),
        Order::Name { descending: false } => search_page!("name ASC, id ASC"),
        Order::Name { descending: true } => search_page!("name DESC, id DESC"),
    };
    let rows = sqlx::query(page)
        .bind(s.account_id)
        .bind(s.kind.as_str())
        .bind(enabled)
        .bind(s.limit)
        .bind(s.offset)
        .fetch_all(db.connection())
        .await?;
    Ok((total, rows.iter().map(token).collect::<Result<_, _>>()?))
}

/// Last-used times only move forward. An unknown id matches nothing: the token was
/// deleted after the gateway counted it.
pub async fn mark_used(tx: &mut Tx, id: i64, last_used: i64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE shipping_tokens SET last_used = $1 \
         WHERE id = $2 AND (last_used IS NULL OR last_used < $1)",
    )
    .bind(last_used)
    .bind(id)
    .execute(tx.connection())
    .await?;
    Ok(())
}
