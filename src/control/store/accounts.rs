//! The `accounts` table: main accounts, their sub-accounts and tied accounts, with the
//! plan each one follows (its main account's, for tied accounts) resolved in the query.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, Ids, StoreError, Tx, corrupt, flag, next_id};
use crate::control::rules::{self, AccountType, Plan};
use crate::control::volume::RateLimit;

/// An account with the plan that governs it (its main account's, for tied accounts).
#[derive(Debug, Clone)]
pub struct Account {
    pub id: i64,
    pub name: String,
    pub account_type: AccountType,
    pub owner_id: Option<i64>,
    pub plan: Plan,
    pub trial_ends_at: Option<i64>,
    pub searchable: bool,
    pub accessible: bool,
}

impl Account {
    /// An account no other account owns (see `is_main_logs` for a main account proper).
    pub fn is_main(&self) -> bool {
        self.owner_id.is_none()
    }

    /// A main log management account: the one that owns sub-accounts and tied accounts.
    pub fn is_main_logs(&self) -> bool {
        self.is_main() && self.account_type == AccountType::Logs
    }

    /// A log management account owned by a main account.
    pub fn is_sub_account(&self) -> bool {
        self.owner_id.is_some() && self.account_type == AccountType::Logs
    }

    /// The plan in force at `now_secs` (a running trial has what pro has).
    pub fn plan_at(&self, now_secs: i64) -> Plan {
        rules::effective_plan(self.plan, self.trial_ends_at, now_secs)
    }
}

const SELECT_ACCOUNT: &str = "SELECT a.id, a.name, a.type, a.owner_id, a.searchable, \
     a.accessible, COALESCE(o.plan, a.plan) AS plan, \
     CASE WHEN a.owner_id IS NULL THEN a.trial_ends_at ELSE o.trial_ends_at END AS trial_ends_at \
     FROM accounts a LEFT JOIN accounts o ON o.id = a.owner_id WHERE a.id = $1";

fn account(r: &AnyRow) -> Result<Account, StoreError> {
    let kind: String = r.try_get("type")?;
    let plan: String = r.try_get("plan")?;
    Ok(Account {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        account_type: AccountType::parse(&kind).ok_or_else(|| corrupt("accounts.type", &kind))?,
        owner_id: r.try_get("owner_id")?,
        plan: Plan::parse(&plan).ok_or_else(|| corrupt("accounts.plan", &plan))?,
        trial_ends_at: r.try_get("trial_ends_at")?,
        searchable: flag(r, "searchable")?,
        accessible: flag(r, "accessible")?,
    })
}

pub async fn get(db: &mut impl Db, id: i64) -> Result<Option<Account>, StoreError> {
    let row = sqlx::query(SELECT_ACCOUNT)
        .bind(id)
        .fetch_optional(db.connection())
        .await?;
    row.map(|r| account(&r)).transpose()
}

/// Starts a change to account `id`: takes its lock (see the module doc of `store`) and
/// returns it as it is inside the transaction; `None` when there is no such account.
pub async fn lock(tx: &mut Tx, id: i64) -> Result<Option<Account>, StoreError> {
    sqlx::query("UPDATE accounts SET revision = revision + 1 WHERE id = $1")
        .bind(id)
        .execute(tx.connection())
        .await?;
    get(tx, id).await
}

/// The Logz.io sub-account fields. `searchable` and `accessible` are enforced; the rest
/// is stored and served back so Logz.io clients round-trip.
#[derive(Debug, Clone, PartialEq)]
pub struct SubAccountSettings {
    pub email: Option<String>,
    pub retention_days: Option<i64>,
    pub max_daily_gb: Option<f64>,
    pub searchable: bool,
    pub accessible: bool,
    pub extra: ExtraSettings,
}

impl Default for SubAccountSettings {
    fn default() -> Self {
        SubAccountSettings {
            email: None,
            retention_days: None,
            max_daily_gb: None,
            searchable: false,
            accessible: true,
            extra: ExtraSettings::default(),
        }
    }
}

/// What lives in the `settings` JSON column (the rest has columns of its own).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExtraSettings {
    pub sharing_objects_accounts: Vec<i64>,
    pub doc_size_setting: bool,
    pub utilization_settings: UtilizationSettings,
    pub is_flexible: bool,
    #[serde(rename = "reservedDailyGB")]
    pub reserved_daily_gb: Option<f64>,
    #[serde(rename = "softLimitGB")]
    pub soft_limit_gb: Option<f64>,
    pub snap_search_retention_days: Option<i64>,
    /// Metrics accounts: Logz.io's plan in unique time series.
    pub plan_uts: Option<i64>,
    /// Metrics accounts: the log accounts (the main one, its sub-accounts) it is shared with.
    pub authorized_accounts_ids: Vec<i64>,
    /// Main accounts: the operator's rate limit over the plan's default, for the main
    /// account and each account it owns.
    pub rate_limit: Option<RateLimit>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UtilizationSettings {
    #[serde(default)]
    pub frequency_minutes: Option<i64>,
    #[serde(default)]
    pub utilization_enabled: Option<bool>,
}

impl ExtraSettings {
    fn to_json(&self) -> String {
        serde_json::to_string(self).expect("settings serialise")
    }
}

/// An account to insert; tied accounts carry their owner's plan for the record only.
pub struct NewAccount<'a> {
    pub name: &'a str,
    pub account_type: AccountType,
    pub owner_id: Option<i64>,
    pub plan: Plan,
    pub trial_ends_at: Option<i64>,
    pub settings: &'a SubAccountSettings,
    pub created_at: i64,
}

/// Inserts the account; returns its id.
///
/// `max_daily_gb` is bound as a number with a flag for NULL (here and in the update):
/// sqlx 0.8's Any driver sends a NULL `f64` to PostgreSQL as `float4`, the statement is
/// prepared once per connection with that type, and the next non-NULL `f64` on that
/// connection then fails ("incorrect binary data format in bind parameter").
///
/// Gateways replicate accounts' read-relevant attributes (read grants): the row carries
/// `feed_version`.
pub async fn insert(
    tx: &mut Tx,
    new: &NewAccount<'_>,
    feed_version: i64,
) -> Result<i64, StoreError> {
    let s = new.settings;
    let id = next_id(tx, Ids::Accounts).await?;
    sqlx::query(
        "INSERT INTO accounts (id, name, type, plan, trial_ends_at, owner_id, email, \
         retention_days, max_daily_gb, searchable, accessible, settings, created_at, \
         feed_version) \
         VALUES ($14, $1, $2, $3, $4, $5, $6, $7, CASE WHEN $13 = 1 THEN $8 END, $9, $10, $11, \
         $12, $15)",
    )
    .bind(new.name)
    .bind(new.account_type.as_str())
    .bind(new.plan.as_str())
    .bind(new.trial_ends_at)
    .bind(new.owner_id)
    .bind(s.email.clone())
    .bind(s.retention_days)
    .bind(s.max_daily_gb.unwrap_or(0.0))
    .bind(i64::from(s.searchable))
    .bind(i64::from(s.accessible))
    .bind(s.extra.to_json())
    .bind(new.created_at)
    .bind(i64::from(s.max_daily_gb.is_some()))
    .bind(id)
    .bind(feed_version)
    .execute(tx.connection())
    .await?;
    Ok(id)
}

/// Puts the account's read-relevant attributes (`searchable`, plan, trial) into the feed
/// again at `feed_version`.
pub async fn republish(tx: &mut Tx, id: i64, feed_version: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE accounts SET feed_version = $1 WHERE id = $2")
        .bind(feed_version)
        .bind(id)
        .execute(tx.connection())
        .await?;
    Ok(())
}

/// An account a main account owns, of one type: a sub-account (`AccountType::Logs`) or
/// a tied metrics account, as Logz.io's APIs show them.
#[derive(Debug, Clone)]
pub struct OwnedAccount {
    pub id: i64,
    pub name: String,
    /// Its first enabled shipping token.
    pub account_token: Option<String>,
    pub settings: SubAccountSettings,
    /// Epoch seconds.
    pub created_at: i64,
    /// Epoch seconds of the last change to its settings; `None` if never changed.
    pub updated_at: Option<i64>,
}

const SELECT_OWNED: &str = "SELECT a.id, a.name, a.email, a.retention_days, \
     a.max_daily_gb, a.searchable, a.accessible, a.settings, a.created_at, a.updated_at, \
     (SELECT t.token FROM shipping_tokens t WHERE t.account_id = a.id AND t.enabled = 1 \
     ORDER BY t.id LIMIT 1) AS account_token \
     FROM accounts a WHERE a.owner_id = $1 AND a.type = $2 ORDER BY a.id";

const SELECT_ONE_OWNED: &str = "SELECT a.id, a.name, a.email, a.retention_days, \
     a.max_daily_gb, a.searchable, a.accessible, a.settings, a.created_at, a.updated_at, \
     (SELECT t.token FROM shipping_tokens t WHERE t.account_id = a.id AND t.enabled = 1 \
     ORDER BY t.id LIMIT 1) AS account_token \
     FROM accounts a WHERE a.owner_id = $1 AND a.type = $2 AND a.id = $3";

fn owned_account(r: &AnyRow) -> Result<OwnedAccount, StoreError> {
    let json: String = r.try_get("settings")?;
    let extra: ExtraSettings =
        serde_json::from_str(&json).map_err(|_| corrupt("accounts.settings", &json))?;
    Ok(OwnedAccount {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        account_token: r.try_get("account_token")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        settings: SubAccountSettings {
            email: r.try_get("email")?,
            retention_days: r.try_get("retention_days")?,
            max_daily_gb: r.try_get("max_daily_gb")?,
            searchable: flag(r, "searchable")?,
            accessible: flag(r, "accessible")?,
            extra,
        },
    })
}

/// The accounts of `account_type` that `main_id` owns, by id.
pub async fn owned_accounts(
    db: &mut impl Db,
    main_id: i64,
    account_type: AccountType,
) -> Result<Vec<OwnedAccount>, StoreError> {
    let rows = sqlx::query(SELECT_OWNED)
        .bind(main_id)
        .bind(account_type.as_str())
        .fetch_all(db.connection())
        .await?;
    rows.iter().map(owned_account).collect()
}

/// Account `id`, if `main_id` owns it and it is of `account_type`.
pub async fn owned_account_of(
    db: &mut impl Db,
    main_id: i64,
    account_type: AccountType,
    id: i64,
) -> Result<Option<OwnedAccount>, StoreError> {
    let row = sqlx::query(SELECT_ONE_OWNED)
        .bind(main_id)
        .bind(account_type.as_str())
        .bind(id)
        .fetch_optional(db.connection())
        .await?;
    row.map(|r| owned_account(&r)).transpose()
}

pub async fn update_owned_account(
    tx: &mut Tx,
    id: i64,
    name: &str,
    s: &SubAccountSettings,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE accounts SET name = $1, email = $2, retention_days = $3, \
         max_daily_gb = CASE WHEN $9 = 1 THEN $4 END, searchable = $5, accessible = $6, \
         settings = $7, updated_at = $10 WHERE id = $8",
    )
    .bind(name)
    .bind(s.email.clone())
    .bind(s.retention_days)
    .bind(s.max_daily_gb.unwrap_or(0.0))
    .bind(i64::from(s.searchable))
    .bind(i64::from(s.accessible))
    .bind(s.extra.to_json())
    .bind(id)
    .bind(i64::from(s.max_daily_gb.is_some()))
    .bind(now)
    .execute(tx.connection())
    .await?;
    Ok(())
}

/// A main account's plan volume in GB a day (its `max_daily_gb`); `None`: none set.
pub async fn daily_volume_gb(db: &mut impl Db, id: i64) -> Result<Option<f64>, StoreError> {
    let row = sqlx::query("SELECT max_daily_gb FROM accounts WHERE id = $1")
        .bind(id)
        .fetch_optional(db.connection())
        .await?;
    Ok(match row {
        Some(r) => r.try_get("max_daily_gb")?,
        None => None,
    })
}

/// Sets a main account's plan volume (bound with a NULL flag, as `insert` explains).
pub async fn set_daily_volume_gb(
    tx: &mut Tx,
    id: i64,
    gb: Option<f64>,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE accounts SET max_daily_gb = CASE WHEN $2 = 1 THEN $1 END, updated_at = $3 \
         WHERE id = $4",
    )
    .bind(gb.unwrap_or(0.0))
    .bind(i64::from(gb.is_some()))
    .bind(now)
    .bind(id)
    .execute(tx.connection())
    .await?;
    Ok(())
}

/// The account's `settings`; `None` when there is no such account.
pub async fn extra_settings(
    db: &mut impl Db,
    id: i64,
) -> Result<Option<ExtraSettings>, StoreError> {
    let row = sqlx::query("SELECT settings FROM accounts WHERE id = $1")
        .bind(id)
        .fetch_optional(db.connection())
        .await?;
    let Some(r) = row else {
        return Ok(None);
    };
    let json: String = r.try_get("settings")?;
    serde_json::from_str(&json)
        .map(Some)
        .map_err(|_| corrupt("accounts.settings", &json))
}

/// Replaces the account's `settings`.
pub async fn set_extra_settings(
    tx: &mut Tx,
    id: i64,
    extra: &ExtraSettings,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE accounts SET settings = $1, updated_at = $2 WHERE id = $3")
        .bind(extra.to_json())
        .bind(now)
        .bind(id)
        .execute(tx.connection())
        .await?;
    Ok(())
}

/// Deletes an account and everything it holds but its shipping tokens, which go first
/// through `shipping_tokens::remove` so gateways get their tombstones. The account, its
/// API tokens, its shared tokens and its drop filters leave theirs at `feed_version`.
pub async fn delete_with_contents(
    tx: &mut Tx,
    id: i64,
    feed_version: i64,
) -> Result<(), StoreError> {
    for tombstones in [
        "INSERT INTO feed_tombstones (feed_version, item, collection) \
         SELECT $2, digest, 'api_tokens' FROM api_tokens WHERE account_id = $1",
        "INSERT INTO feed_tombstones (feed_version, item, collection) \
         SELECT $2, digest, 'shared_tokens' FROM shared_tokens WHERE account_id = $1",
        "INSERT INTO feed_tombstones (feed_version, item, collection) \
         SELECT $2, CAST(id AS TEXT), 'log_drop_filters' FROM log_drop_filters \
         WHERE account_id = $1",
        "INSERT INTO feed_tombstones (feed_version, item, collection) \
         SELECT $2, CAST(id AS TEXT), 'metrics_drop_filters' FROM metrics_drop_filters \
         WHERE account_id = $1",
        "INSERT INTO feed_tombstones (feed_version, item, collection) \
         SELECT $2, CAST(id AS TEXT), 'accounts' FROM accounts WHERE id = $1",
    ] {
        sqlx::query(tombstones)
            .bind(id)
            .bind(feed_version)
            .execute(tx.connection())
            .await?;
    }
    for statement in [
        "DELETE FROM shared_token_filters WHERE shared_token_id IN \
         (SELECT id FROM shared_tokens WHERE account_id = $1)",
        "DELETE FROM shared_tokens WHERE account_id = $1",
        "DELETE FROM token_filters WHERE account_id = $1",
        "DELETE FROM api_tokens WHERE account_id = $1",
        "DELETE FROM user_sessions WHERE user_id IN (SELECT id FROM users WHERE account_id = $1)",
        "DELETE FROM user_setup_links WHERE user_id IN \
         (SELECT id FROM users WHERE account_id = $1)",
        "DELETE FROM users WHERE account_id = $1",
        "DELETE FROM account_usage WHERE account_id = $1",
        "DELETE FROM account_daily_usage WHERE account_id = $1",
        "DELETE FROM account_volume_days WHERE account_id = $1",
        "DELETE FROM drop_filter_days WHERE kind = 'logs' AND filter_id IN \
         (SELECT id FROM log_drop_filters WHERE account_id = $1)",
        "DELETE FROM drop_filter_days WHERE kind = 'metrics' AND filter_id IN \
         (SELECT id FROM metrics_drop_filters WHERE account_id = $1)",
        "DELETE FROM log_drop_filters WHERE account_id = $1",
        "DELETE FROM metrics_drop_filters WHERE account_id = $1",
        "DELETE FROM accounts WHERE id = $1",
    ] {
        sqlx::query(statement)
            .bind(id)
            .execute(tx.connection())
            .await?;
    }
    Ok(())
}
