//! The `audit_events` table: who did what to which object of an account, written in the
//! same transaction as the change it records.

use sqlx::Row;

use super::{Actor, Db, StoreError, Tx};

#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub id: i64,
    pub account_id: i64,
    /// `Actor::label`: "admin" or "api-token:<id>".
    pub actor: String,
    pub action: String,
    pub target: String,
    /// Epoch seconds.
    pub created_at: i64,
}

pub async fn record(
    tx: &mut Tx,
    account_id: i64,
    actor: Actor,
    action: &str,
    target: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_events (account_id, actor, action, target, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(account_id)
    .bind(actor.label())
    .bind(action)
    .bind(target)
    .bind(now)
    .execute(tx.connection())
    .await?;
    Ok(())
}

/// The account's events, newest first: the total and one page.
pub async fn page(
    db: &mut impl Db,
    account_id: i64,
    limit: i64,
    offset: i64,
) -> Result<(i64, Vec<AuditEvent>), StoreError> {
    let total: i64 = sqlx::query("SELECT COUNT(*) AS n FROM audit_events WHERE account_id = $1")
        .bind(account_id)
        .fetch_one(db.connection())
        .await?
        .try_get("n")?;
    let rows = sqlx::query(
        "SELECT id, account_id, actor, action, target, created_at FROM audit_events \
         WHERE account_id = $1 ORDER BY id DESC LIMIT $2 OFFSET $3",
    )
    .bind(account_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(db.connection())
    .await?;
    let events = rows
        .iter()
        .map(|r| {
            Ok(AuditEvent {
                id: r.try_get("id")?,
                account_id: r.try_get("account_id")?,
                actor: r.try_get("actor")?,
                action: r.try_get("action")?,
                target: r.try_get("target")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    Ok((total, events))
}
