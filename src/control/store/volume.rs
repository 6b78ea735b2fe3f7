//! Volume as the fleet sees it: the accounts' volume settings and rate limits the feed
//! sends gateways (whole plans: a sub-account's change moves its main account's pool),
//! and what gateways reported about an account's UTC day beyond its bytes: capped, and
//! past its soft limit. Each mark is set once a day; the first report to set it is told so.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::accounts::ExtraSettings;
use super::{Db, StoreError, Tx, corrupt};
use crate::control::rules::{AccountType, Plan};
use crate::control::volume::RateLimit;

/// An account's volume settings, with what it follows of its main account. A main
/// account's `max_daily_gb` is its plan's volume; tied accounts (metrics, tracing,
/// security) have no volume, only the rate.
#[derive(Debug, Clone)]
pub struct VolumeRow {
    pub id: i64,
    pub name: String,
    pub account_type: AccountType,
    pub owner_id: Option<i64>,
    pub max_daily_gb: Option<f64>,
    pub extra: ExtraSettings,
    /// The main account's plan and trial end (epoch seconds).
    pub plan: Plan,
    pub trial_ends_at: Option<i64>,
    /// The main account's own rate limit, over its plan's.
    pub main_rate_limit: Option<RateLimit>,
}

impl VolumeRow {
    /// The main account whose plan this account draws on.
    pub fn main_id(&self) -> i64 {
        self.owner_id.unwrap_or(self.id)
    }
}

/// Every account with its main account's plan, trial and settings, family by family.
const SELECT_VOLUME_ROWS: &str = "SELECT a.id, a.name, a.type, a.owner_id, a.max_daily_gb, \
     a.settings, COALESCE(o.plan, a.plan) AS plan, \
     CASE WHEN a.owner_id IS NULL THEN a.trial_ends_at ELSE o.trial_ends_at END AS trial_ends_at, \
     o.settings AS main_settings \
     FROM accounts a LEFT JOIN accounts o ON o.id = a.owner_id \
     ORDER BY COALESCE(a.owner_id, a.id), a.id";

/// The same, for the families one of whose accounts changed since `$1`.
const SELECT_VOLUME_ROWS_SINCE: &str = "SELECT a.id, a.name, a.type, a.owner_id, \
     a.max_daily_gb, a.settings, COALESCE(o.plan, a.plan) AS plan, \
     CASE WHEN a.owner_id IS NULL THEN a.trial_ends_at ELSE o.trial_ends_at END AS trial_ends_at, \
     o.settings AS main_settings \
     FROM accounts a LEFT JOIN accounts o ON o.id = a.owner_id \
     WHERE COALESCE(a.owner_id, a.id) IN \
     (SELECT COALESCE(owner_id, id) FROM accounts WHERE feed_version > $1) \
     ORDER BY COALESCE(a.owner_id, a.id), a.id";

fn volume_row(r: &AnyRow) -> Result<VolumeRow, StoreError> {
    let settings = |column: &str| -> Result<Option<ExtraSettings>, StoreError> {
        let json: Option<String> = r.try_get(column)?;
        json.map(|json| {
            serde_json::from_str(&json).map_err(|_| corrupt("accounts.settings", &json))
        })
        .transpose()
    };
    let extra = settings("settings")?.unwrap_or_default();
    let owner_id: Option<i64> = r.try_get("owner_id")?;
    let main_rate_limit = match owner_id {
        None => extra.rate_limit,
        Some(_) => settings("main_settings")?.and_then(|main| main.rate_limit),
    };
    let kind: String = r.try_get("type")?;
    let plan: String = r.try_get("plan")?;
    Ok(VolumeRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        account_type: AccountType::parse(&kind).ok_or_else(|| corrupt("accounts.type", &kind))?,
        owner_id,
        max_daily_gb: r.try_get("max_daily_gb")?,
        extra,
        plan: Plan::parse(&plan).ok_or_else(|| corrupt("accounts.plan", &plan))?,
        trial_ends_at: r.try_get("trial_ends_at")?,
        main_rate_limit,
    })
}

/// Every account's volume settings, family by family.
pub async fn volume_rows(db: &mut impl Db) -> Result<Vec<VolumeRow>, StoreError> {
    sqlx::query(SELECT_VOLUME_ROWS)
        .fetch_all(db.connection())
        .await?
        .iter()
        .map(volume_row)
        .collect()
}

/// The volume settings of every family one of whose accounts changed since `since`.
pub async fn volume_rows_since(db: &mut impl Db, since: i64) -> Result<Vec<VolumeRow>, StoreError> {
    sqlx::query(SELECT_VOLUME_ROWS_SINCE)
        .bind(since)
        .fetch_all(db.connection())
        .await?
        .iter()
        .map(volume_row)
        .collect()
}

/// Records `rate_limits` (the plans' default rate limits as JSON; none recorded reads as
/// `none`) as the ones the feed carries. When they differ from the recorded ones, every
/// main account's family goes into the feed again at a new version, which is returned.
pub async fn publish_rate_limits(
    tx: &mut Tx,
    rate_limits: &str,
    none: &str,
) -> Result<Option<i64>, StoreError> {
    let row = sqlx::query("SELECT rate_limits FROM feed_state WHERE id = 1")
        .fetch_one(tx.connection())
        .await?;
    let recorded: Option<String> = row.try_get("rate_limits")?;
    if recorded.as_deref().unwrap_or(none) == rate_limits {
        return Ok(None);
    }
    let version = super::feed::next_version(tx).await?;
    sqlx::query("UPDATE accounts SET feed_version = $1 WHERE owner_id IS NULL")
        .bind(version)
        .execute(tx.connection())
        .await?;
    sqlx::query("UPDATE feed_state SET rate_limits = $1 WHERE id = 1")
        .bind(rate_limits)
        .execute(tx.connection())
        .await?;
    Ok(Some(version))
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
    let extra = super::accounts::extra_settings(db, id).await?;
    Ok(extra.and_then(|e| e.soft_limit_gb))
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

/// One account's bytes of one kind on a day, for the operators' top accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountDay {
    pub account_id: i64,
    pub account_name: String,
    pub kind: String,
    pub bytes: i64,
}

/// The `limit` accounts that sent the most bytes of any kind on the day at `day_ms`, most
/// first.
pub async fn top_accounts_on(
    db: &mut impl Db,
    day_ms: i64,
    limit: i64,
) -> Result<Vec<AccountDay>, StoreError> {
    let rows = sqlx::query(
        "SELECT u.account_id, a.name, u.kind, u.bytes FROM account_daily_usage u \
         JOIN accounts a ON a.id = u.account_id WHERE u.day = $1 \
         ORDER BY u.bytes DESC, u.account_id LIMIT $2",
    )
    .bind(day_ms)
    .bind(limit)
    .fetch_all(db.connection())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AccountDay {
                account_id: r.try_get("account_id")?,
                account_name: r.try_get("name")?,
                kind: r.try_get("kind")?,
                bytes: r.try_get("bytes")?,
            })
        })
        .collect()
}
