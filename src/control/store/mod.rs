//! The control plane's store, and every SQL statement of the control plane: one file per
//! resource under this folder, each returning typed rows and `StoreError`, nothing else.
//!
//! One sqlx `Any` pool over SQLite (the embedded default) or PostgreSQL, chosen by the
//! URL, with the schema migrated at open. Both dialects take the same statements (`$N`
//! placeholders, integers for booleans and times), so there is one code path to test
//! twice. Statements are constants: none is assembled at run time.
//!
//! Every change to an account runs in a transaction that first bumps the account's
//! `revision` (`accounts::lock`, through `usecases::Change`): that write takes the row
//! lock (PostgreSQL) or the write lock (SQLite) before any rule is checked, so two
//! concurrent changes to one account cannot both pass a limit. (Creating a main account
//! locks nothing yet to lock; usage reports only add to counters.)

pub mod accounts;
pub mod api_tokens;
pub mod audit;
pub mod drop_filters;
pub mod feed;
mod migrate;
pub mod shared_tokens;
pub mod shipping_tokens;
pub mod users;
pub mod volume;

use std::path::Path;

use sqlx::AnyConnection;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, Row, Transaction};

use crate::control::refusal::Refusal;
use crate::private_files;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("control_plane.database_url must start with sqlite:// or postgres://")]
    UnknownScheme,
    #[error("cannot create the database directory {path}: {source}")]
    Directory {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot create the database file {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open the database: {0}")]
    Open(sqlx::Error),
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A statement failed (connection lost, lock timeout, constraint): the caller may retry.
    #[error("a store statement failed: {0}")]
    Query(#[from] sqlx::Error),
    /// A row holds a value no code path writes: the database was edited by hand or is
    /// from a newer version. Treated like a failed statement (503), never as bad input.
    #[error("unexpected {column} value {value:?} in the store")]
    Corrupt { column: &'static str, value: String },
}

/// Whatever failed, the caller sees "unavailable, retry"; the cause is logged where the
/// refusal is answered.
impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Refusal {
        Refusal::Unavailable(Box::new(e))
    }
}

/// A row that cannot be read: one policy for every table.
fn corrupt(column: &'static str, value: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        column,
        value: value.to_string(),
    }
}

/// Booleans are stored as 0/1 in both dialects.
fn flag(row: &AnyRow, column: &'static str) -> Result<bool, StoreError> {
    match row.try_get::<i64, _>(column)? {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(corrupt(column, other)),
    }
}

#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
}

/// A transaction: every change of a use case, committed or dropped (rolled back) whole.
pub struct Tx(Transaction<'static, Any>);

/// A pooled connection, for reads outside a transaction.
pub struct Conn(PoolConnection<Any>);

/// Where a read may run: inside a change's transaction or on a connection of its own.
pub trait Db: Send {
    fn connection(&mut self) -> &mut AnyConnection;
}

impl Db for Tx {
    fn connection(&mut self) -> &mut AnyConnection {
        &mut self.0
    }
}

impl Db for Conn {
    fn connection(&mut self) -> &mut AnyConnection {
        &mut self.0
    }
}

impl Tx {
    pub async fn commit(self) -> Result<(), StoreError> {
        Ok(self.0.commit().await?)
    }
}

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
            .await
            .map_err(StoreError::Open)?;
        migrate::run(&pool, sqlite).await?;
        Ok(Store { pool })
    }

    pub async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(Tx(self.pool.begin().await?))
    }

    pub async fn conn(&self) -> Result<Conn, StoreError> {
        Ok(Conn(self.pool.acquire().await?))
    }

    /// The pool, for tools that load data in bulk (benchmarks, migrations).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

/// `sqlite://path` with the file (and its directory) created when missing, readable by
/// the owner only: the store holds every token's digest and the users' password hashes.
/// SQLite gives its `-wal` and `-shm` files the database file's mode.
fn sqlite_url(url: &str) -> Result<String, StoreError> {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = rest.split('?').next().unwrap_or_default();
    if let Some(dir) = Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        private_files::create_dir_all(dir).map_err(|source| StoreError::Directory {
            path: dir.display().to_string(),
            source,
        })?;
    }
    if rest.contains("mode=") {
        return Ok(url.to_string());
    }
    if !(path.is_empty() || path.starts_with(':')) {
        private_files::open_options()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|source| StoreError::File {
                path: path.to_string(),
                source,
            })?;
    }
    if rest.contains('?') {
        Ok(format!("{url}&mode=rwc"))
    } else {
        Ok(format!("{url}?mode=rwc"))
    }
}

/// The tables whose rows can be deleted, and so whose ids must never come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ids {
    Accounts,
    ShippingTokens,
    ApiTokens,
    SharedTokens,
    TokenFilters,
    Users,
    LogDropFilters,
    MetricsDropFilters,
}

impl Ids {
    fn table(self) -> &'static str {
        match self {
            Ids::Accounts => "accounts",
            Ids::ShippingTokens => "shipping_tokens",
            Ids::ApiTokens => "api_tokens",
            Ids::SharedTokens => "shared_tokens",
            Ids::TokenFilters => "token_filters",
            Ids::Users => "users",
            Ids::LogDropFilters => "log_drop_filters",
            Ids::MetricsDropFilters => "metrics_drop_filters",
        }
    }
}

/// A new id for a row of `ids`' table, never handed out before even if every row with a
/// larger one was deleted (SQLite alone would reuse the largest; a client still holding
/// the deleted id would adopt the new object). Taken in the inserting transaction, so an
/// insert that rolls back leaves a gap, never a repeat.
async fn next_id(tx: &mut Tx, ids: Ids) -> Result<i64, StoreError> {
    let row = sqlx::query("UPDATE id_sequences SET last = last + 1 WHERE name = $1 RETURNING last")
        .bind(ids.table())
        .fetch_one(tx.connection())
        .await?;
    Ok(row.try_get("last")?)
}

/// Who made a change: the audit trail's "who", and `createdBy`/`updatedBy` on tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// The operator, with the admin secret.
    Operator,
    ApiToken(i64),
    /// An account user, logged in on the page.
    User(i64),
    /// The gateways, reporting what they counted (a soft limit crossed).
    Gateways,
}

impl Actor {
    /// How the store writes it (`"admin"` for the operator, as it always has).
    pub fn label(self) -> String {
        match self {
            Actor::Operator => "admin".to_string(),
            Actor::ApiToken(id) => format!("api-token:{id}"),
            Actor::User(id) => format!("user:{id}"),
            Actor::Gateways => "gateways".to_string(),
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[tokio::test]
    async fn a_created_sqlite_store_is_readable_by_the_owner_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let db = dir.join("control.db");
        let store = Store::open(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&db), 0o600);
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
        drop(store);
    }

    /// A store migrated by a build whose migration files had other comments opens: the
    /// edited migrations are re-signed, not refused as modified.
    #[tokio::test]
    async fn a_store_migrated_before_a_comment_edit_opens() {
        let tmp = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", tmp.path().join("control.db").display());
        let store = Store::open(&url).await.unwrap();
        let released = hex::decode(
            "0c05ec0154f71cab939f94ccd83e1a9831b83f6d54f840c7a27f97a7c679dbdeaf48bf32198304f4f2f7688d837e79af",
        )
        .unwrap();
        let checksum = |store: &Store| {
            let pool = store.pool().clone();
            async move {
                let row = sqlx::query("SELECT checksum FROM _sqlx_migrations WHERE version = 2")
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                row.try_get::<Vec<u8>, _>("checksum").unwrap()
            }
        };
        let current = checksum(&store).await;
        assert_ne!(current, released);
        sqlx::query("UPDATE _sqlx_migrations SET checksum = $1 WHERE version = 2")
            .bind(released)
            .execute(store.pool())
            .await
            .unwrap();
        drop(store);
        let reopened = Store::open(&url).await.expect("re-signed, not refused");
        assert_eq!(checksum(&reopened).await, current);
    }
}
