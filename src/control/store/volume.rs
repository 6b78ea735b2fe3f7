//! Volume as the fleet sees it: the log accounts' volume settings the feed sends gateways
//! (whole plans: a sub-account's change moves its main account's pool), and what gateways
//! reported about an account's UTC day beyond its bytes: capped, and past its soft limit.
//! Each mark is set once a day; the first report to set it is told so.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::accounts::ExtraSettings;
use super::{Db, StoreError, Tx, corrupt};

/// A log account's volume settings. A main account's `max_daily_gb` is its plan's volume.
#[derive(Debug, Clone)]
pub struct VolumeRow {
    pub id: i64,
    pub name: String,
    pub owner_id: Option<i64>,
    pub max_daily_gb: Option<f64>,
    pub extra: ExtraSettings,
}

impl VolumeRow {
    /// The main account whose plan this account draws on.
    pub fn main_id(&self) -> i64 {
        self.owner_id.unwrap_or(self.id)
    }
}

const SELECT_VOLUME_ROWS: &str = "SELECT id, name, owner_id, max_daily_gb, settings      FROM accounts WHERE type = 'logs' ORDER BY COALESCE(owner_id, id), id";

const SELECT_VOLUME_ROWS_SINCE: &str = "SELECT id, name, owner_id, max_daily_gb, settings      FROM accounts WHERE type = 'logs' AND COALESCE(owner_id, id) IN      (SELECT COALESCE(owner_id, id) FROM accounts WHERE type = 'logs' AND feed_version > $1)      ORDER BY COALESCE(owner_id, id), id";

fn volume_row(r: &AnyRow) -> Result<VolumeRow, StoreError> {
    let json: String = r.try_get("settings")?;
    Ok(VolumeRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        owner_id: r.try_get("owner_id")?,
        max_daily_gb: r.try_get("max_daily_gb")?,
        extra: serde_json::from_str(&json).map_err(|_| corrupt("accounts.settings", &json))?,
    })
}

/// Every log account's volume settings, plan by plan.
pub async fn volume_rows(db: &mut impl Db) -> Result<Vec<VolumeRow>, StoreError> {
    sqlx::query(SELECT_VOLUME_ROWS)
        .fetch_all(db.connection())
        .await?
        .iter()
        .map(volume_row)
        .collect()
}

/// The volume settings of every plan one of whose log accounts changed since `since`.
pub async fn volume_rows_since(db: &mut impl Db, since: i64) -> Result<Vec<VolumeRow>, StoreError> {
    sqlx::query(SELECT_VOLUME_ROWS_SINCE)
        .bind(since)
        .fetch_all(db.connection())
        .await?
        .iter()
        .map(volume_row)
        .collect()
}

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

/// The account's `softLimitGB`, if it has one.
pub async fn soft_limit_gb(db: &mut impl Db, id: i64) -> Result<Option<f64>, StoreError> {
    let row = sqlx::query("SELECT settings FROM accounts WHERE id = $1")
        .bind(id)
        .fetch_optional(db.connection())
        .await?;
    let Some(r) = row else {
        return Ok(None);
    };
    let json: String = r.try_get("settings")?;
    let extra: ExtraSettings =
        serde_json::from_str(&json).map_err(|_| corrupt("accounts.settings", &json))?;
    Ok(extra.soft_limit_gb)
}

/// The account's log bytes counted on the day starting at `day_ms`.
pub async fn log_bytes_on(db: &mut impl Db, id: i64, day_ms: i64) -> Result<i64, StoreError> {
    let row = sqlx::query(
        "SELECT bytes FROM account_daily_usage WHERE account_id = $1 AND kind = 'logs' \
         AND day = $2",
    )
    .bind(id)
    .bind(day_ms)
    .fetch_optional(db.connection())
    .await?;
    Ok(match row {
        Some(r) => r.try_get("bytes")?,
        None => 0,
    })
}
