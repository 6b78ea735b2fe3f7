//! What the fleet reported about an account's UTC day beyond its bytes: capped, and past
//! its soft limit. Each is set once a day; the first report to set it is told so.

use sqlx::Row;

use super::{Db, StoreError, Tx};

/// One account's day, as gateways reported it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayState {
    /// Epoch ms a gateway first reported it capped that day.
    pub capped_at_ms: Option<i64>,
    /// Epoch ms its volume first crossed its soft limit that day.
    pub soft_limit_at_ms: Option<i64>,
}

/// The account's day starting at `day_ms`; an account never reported is in neither state.
pub async fn day_state(
    db: &mut impl Db,
    account_id: i64,
    day_ms: i64,
) -> Result<DayState, StoreError> {
    let row = sqlx::query(
        "SELECT capped_at, soft_limit_at FROM account_volume_days \
         WHERE account_id = $1 AND day = $2",
    )
    .bind(account_id)
    .bind(day_ms)
    .fetch_optional(db.connection())
    .await?;
    let Some(r) = row else {
        return Ok(DayState::default());
    };
    Ok(DayState {
        capped_at_ms: r.try_get("capped_at")?,
        soft_limit_at_ms: r.try_get("soft_limit_at")?,
    })
}

/// Marks the account capped on `day_ms` at `at_ms`; true if it was not yet. An unknown
/// account is never marked.
pub async fn mark_capped(
    tx: &mut Tx,
    account_id: i64,
    day_ms: i64,
    at_ms: i64,
) -> Result<bool, StoreError> {
    mark(tx, MARK_CAPPED, account_id, day_ms, at_ms).await
}

/// Marks the account past its soft limit on `day_ms` at `at_ms`; true if it was not yet.
pub async fn mark_soft_limit(
    tx: &mut Tx,
    account_id: i64,
    day_ms: i64,
    at_ms: i64,
) -> Result<bool, StoreError> {
    mark(tx, MARK_SOFT_LIMIT, account_id, day_ms, at_ms).await
}

const MARK_CAPPED: [&str; 2] = [
    "INSERT INTO account_volume_days (account_id, day) SELECT id, $2 FROM accounts \
     WHERE id = $1 ON CONFLICT (account_id, day) DO NOTHING",
    "UPDATE account_volume_days SET capped_at = $3 \
     WHERE account_id = $1 AND day = $2 AND capped_at IS NULL",
];

const MARK_SOFT_LIMIT: [&str; 2] = [
    MARK_CAPPED[0],
    "UPDATE account_volume_days SET soft_limit_at = $3 \
     WHERE account_id = $1 AND day = $2 AND soft_limit_at IS NULL",
];

/// Makes sure the day's row exists, then sets the column if it is still NULL: the row
/// count says whether this call set it, whichever control plane of a fleet runs it.
async fn mark(
    tx: &mut Tx,
    [insert, update]: [&str; 2],
    account_id: i64,
    day_ms: i64,
    at_ms: i64,
) -> Result<bool, StoreError> {
    sqlx::query(insert)
        .bind(account_id)
        .bind(day_ms)
        .execute(tx.connection())
        .await?;
    let done = sqlx::query(update)
        .bind(account_id)
        .bind(day_ms)
        .bind(at_ms)
        .execute(tx.connection())
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Forgets the account's days before `before_day_ms`, as its daily volumes are.
pub async fn forget_days_before(
    tx: &mut Tx,
    account_id: i64,
    before_day_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM account_volume_days WHERE account_id = $1 AND day < $2")
        .bind(account_id)
        .bind(before_day_ms)
        .execute(tx.connection())
        .await?;
    Ok(())
}
