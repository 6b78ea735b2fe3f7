//! The control plane's store: one sqlx `Any` pool over SQLite (the embedded default) or
//! PostgreSQL, chosen by the URL, with the schema migrated at open. Both dialects take the
//! same queries (`$N` placeholders, integers for booleans and times), so there is one code
//! path to test twice.
//!
//! Every change runs in a transaction that first bumps its account's `revision`: that write
//! takes the row lock (PostgreSQL) or the write lock (SQLite) before any rule is checked, so
//! two concurrent changes to one account cannot both pass a limit.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Row, Transaction};

use super::error::ApiError;
use super::rules::{self, AccountType, Plan};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("src/control/migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator =
    sqlx::migrate!("src/control/migrations/postgres");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("control_plane.database_url must start with sqlite:// or postgres://")]
    UnknownScheme,
    #[error("cannot create the database directory {path}: {source}")]
    Directory {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open the database: {0}")]
    Open(#[from] sqlx::Error),
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

#[derive(Debug, Clone)]
pub struct Store {
    pub pool: AnyPool,
}

pub type Tx = Transaction<'static, Any>;

impl Store {
    /// Opens (creating a SQLite file if needed) and migrates.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let sqlite = url.starts_with("sqlite:");
        if !sqlite && !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
            return Err(StoreError::UnknownScheme);
        }
        let url = if sqlite {
            sqlite_url(url)?
        } else {
            url.to_string()
        };
        let pool = AnyPoolOptions::new()
            .max_connections(if sqlite { 4 } else { 16 })
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if sqlite {
                        // WAL lets the feed's readers run beside a writer; the busy timeout
                        // queues writers instead of failing them.
                        sqlx::query("PRAGMA journal_mode = WAL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA busy_timeout = 10000")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA foreign_keys = ON")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        let migrator = if sqlite {
            &SQLITE_MIGRATIONS
        } else {
            &POSTGRES_MIGRATIONS
        };
        migrator.run(&pool).await?;
        Ok(Store { pool })
    }

    pub async fn begin(&self) -> Result<Tx, ApiError> {
        Ok(self.pool.begin().await?)
    }
}

/// `sqlite://path` with the file (and its directory) created when missing.
fn sqlite_url(url: &str) -> Result<String, StoreError> {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = rest.split('?').next().unwrap_or_default();
    if let Some(dir) = Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Directory {
            path: dir.display().to_string(),
            source,
        })?;
    }
    if rest.contains("mode=") {
        Ok(url.to_string())
    } else if rest.contains('?') {
        Ok(format!("{url}&mode=rwc"))
    } else {
        Ok(format!("{url}?mode=rwc"))
    }
}

pub fn now_secs() -> i64 {
    now_ms() / 1000
}

pub fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970");
    i64::try_from(since.as_millis()).expect("epoch milliseconds fit in i64")
}

/// Who made a change: the audit trail's "who", and `createdBy`/`updatedBy` on tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    Admin,
    ApiToken(i64),
}

impl Actor {
    pub fn label(self) -> String {
        match self {
            Actor::Admin => "admin".to_string(),
            Actor::ApiToken(id) => format!("api-token:{id}"),
        }
    }
}

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
    /// A log management account that no other account owns.
    pub fn is_main(&self) -> bool {
        self.owner_id.is_none()
    }

    /// The plan in force now (a running trial has what pro has).
    pub fn plan_now(&self) -> Plan {
        rules::effective_plan(self.plan, self.trial_ends_at, now_secs())
    }

    /// A log management account owned by a main account.
    pub fn is_sub_account(&self) -> bool {
        self.owner_id.is_some() && self.account_type == AccountType::Logs
    }
}

const ACCOUNT_COLUMNS: &str = "a.id, a.name, a.type, a.owner_id, a.searchable, a.accessible, \
     COALESCE(o.plan, a.plan) AS plan, \
     CASE WHEN a.owner_id IS NULL THEN a.trial_ends_at ELSE o.trial_ends_at END AS trial_ends_at";

pub async fn account<'e, E>(executor: E, id: i64) -> Result<Option<Account>, ApiError>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    let sql = format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts a LEFT JOIN accounts o ON o.id = a.owner_id \
         WHERE a.id = $1"
    );
    let row = sqlx::query(&sql).bind(id).fetch_optional(executor).await?;
    row.map(|r| account_from_row(&r)).transpose()
}

fn account_from_row(r: &AnyRow) -> Result<Account, ApiError> {
    let kind: String = r.try_get("type")?;
    let plan: String = r.try_get("plan")?;
    Ok(Account {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        account_type: AccountType::parse(&kind).ok_or_else(|| corrupt("accounts.type", &kind))?,
        owner_id: r.try_get("owner_id")?,
        plan: Plan::parse(&plan).ok_or_else(|| corrupt("accounts.plan", &plan))?,
        trial_ends_at: r.try_get("trial_ends_at")?,
        searchable: r.try_get::<i64, _>("searchable")? != 0,
        accessible: r.try_get::<i64, _>("accessible")? != 0,
    })
}

/// A value no code path writes: the database was edited by hand or is from the future.
fn corrupt(column: &str, value: &str) -> ApiError {
    ApiError::Store(sqlx::Error::Decode(
        format!("unexpected {column} value {value:?}").into(),
    ))
}

/// Starts a change to `account_id`: takes its lock (see the module doc) and returns it
/// as it is inside the transaction.
pub async fn lock_account(tx: &mut Tx, account_id: i64) -> Result<Account, ApiError> {
    sqlx::query("UPDATE accounts SET revision = revision + 1 WHERE id = $1")
        .bind(account_id)
        .execute(&mut **tx)
        .await?;
    account(&mut **tx, account_id)
        .await?
        .ok_or_else(|| ApiError::not_found("account"))
}

/// Moves the feed forward by one and returns the new version; the changed rows carry it.
pub async fn next_feed_version(tx: &mut Tx) -> Result<i64, ApiError> {
    let row =
        sqlx::query("UPDATE feed_state SET version = version + 1 WHERE id = 1 RETURNING version")
            .fetch_one(&mut **tx)
            .await?;
    Ok(row.try_get("version")?)
}

/// Records who did what to which object of an account.
pub async fn audit(
    tx: &mut Tx,
    account_id: i64,
    actor: Actor,
    action: &str,
    target: &str,
) -> Result<(), ApiError> {
    sqlx::query(
        "INSERT INTO audit_events (account_id, actor, action, target, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(account_id)
    .bind(actor.label())
    .bind(action)
    .bind(target)
    .bind(now_secs())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
