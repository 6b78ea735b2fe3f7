//! The `users`, `user_setup_links` and `user_sessions` tables. Secrets (setup links,
//! session cookies) are stored as digests only; passwords as argon2id hashes.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, Ids, StoreError, Tx, corrupt, flag, next_id};

/// Logz.io's user roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Manages every tab of its account (and reaches what the account's API token reaches).
    Admin,
    /// Sees and uses the account's shared tokens.
    User,
    /// Like `User` on the page; Logz.io's read-only role.
    ReadOnly,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
            Role::ReadOnly => "read-only",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "user" => Some(Role::User),
            "read-only" => Some(Role::ReadOnly),
            _ => None,
        }
    }

    /// The name Logz.io's user-management API uses.
    pub fn logzio(self) -> &'static str {
        match self {
            Role::Admin => "USER_ROLE_ACCOUNT_ADMIN",
            Role::User => "USER_ROLE_REGULAR",
            Role::ReadOnly => "USER_ROLE_READONLY",
        }
    }

    pub fn from_logzio(s: &str) -> Option<Role> {
        [Role::Admin, Role::User, Role::ReadOnly]
            .into_iter()
            .find(|r| r.logzio() == s)
    }
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub account_id: i64,
    /// Lower-cased.
    pub email: String,
    pub full_name: String,
    pub role: Role,
    /// False: suspended.
    pub active: bool,
    /// Epoch seconds.
    pub created_at: i64,
    /// False until the user has set a password through a setup link.
    pub has_password: bool,
}

/// A `SELECT` of whole user rows, ending with `$tail`.
macro_rules! select_users {
    ($tail:literal) => {
        concat!(
            "SELECT id, account_id, email, full_name, role, active, created_at, password_hash \
             FROM users ",
            $tail
        )
    };
}

fn user(r: &AnyRow) -> Result<User, StoreError> {
    let role: String = r.try_get("role")?;
    Ok(User {
        id: r.try_get("id")?,
        account_id: r.try_get("account_id")?,
        email: r.try_get("email")?,
        full_name: r.try_get("full_name")?,
        role: Role::parse(&role).ok_or_else(|| corrupt("users.role", &role))?,
        active: flag(r, "active")?,
        created_at: r.try_get("created_at")?,
        has_password: r.try_get::<Option<String>, _>("password_hash")?.is_some(),
    })
}

pub struct NewUser<'a> {
    pub account_id: i64,
    pub email: &'a str,
    pub full_name: &'a str,
    pub role: Role,
    pub now: i64,
}

pub async fn insert(tx: &mut Tx, new: &NewUser<'_>) -> Result<i64, StoreError> {
    let id = next_id(tx, Ids::Users).await?;
    sqlx::query(
        "INSERT INTO users (id, account_id, email, full_name, role, active, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, 1, $6, $6)",
    )
    .bind(id)
    .bind(new.account_id)
    .bind(new.email)
    .bind(new.full_name)
    .bind(new.role.as_str())
    .bind(new.now)
    .execute(tx.connection())
    .await?;
    Ok(id)
}

pub async fn get(db: &mut impl Db, id: i64) -> Result<Option<User>, StoreError> {
    const SQL: &str = select_users!("WHERE id = $1");
    sqlx::query(SQL)
        .bind(id)
        .fetch_optional(db.connection())
        .await?
        .map(|r| user(&r))
        .transpose()
}

/// The user with `email` (lower-cased by the caller) and its password hash, for login.
pub async fn by_email(
    db: &mut impl Db,
    email: &str,
) -> Result<Option<(User, Option<String>)>, StoreError> {
    const SQL: &str = select_users!("WHERE email = $1");
    let Some(row) = sqlx::query(SQL)
        .bind(email)
        .fetch_optional(db.connection())
        .await?
    else {
        return Ok(None);
    };
    Ok(Some((user(&row)?, row.try_get("password_hash")?)))
}

pub async fn email_taken(db: &mut impl Db, email: &str) -> Result<bool, StoreError> {
    Ok(sqlx::query("SELECT 1 AS one FROM users WHERE email = $1")
        .bind(email)
        .fetch_optional(db.connection())
        .await?
        .is_some())
}

/// The account's users, oldest first.
pub async fn list(db: &mut impl Db, account_id: i64) -> Result<Vec<User>, StoreError> {
    const SQL: &str = select_users!("WHERE account_id = $1 ORDER BY id");
    sqlx::query(SQL)
        .bind(account_id)
        .fetch_all(db.connection())
        .await?
        .iter()
        .map(user)
        .collect()
}

/// The users of a main account and of every account it owns that it may access (not a
/// sub-account made inaccessible), oldest first.
pub async fn list_with_owned(db: &mut impl Db, main_id: i64) -> Result<Vec<User>, StoreError> {
    const SQL: &str = select_users!(
        "WHERE account_id = $1 OR account_id IN (SELECT id FROM accounts WHERE owner_id = $1 \
         AND (type <> 'logs' OR accessible = 1)) ORDER BY id"
    );
    sqlx::query(SQL)
        .bind(main_id)
        .fetch_all(db.connection())
        .await?
        .iter()
        .map(user)
        .collect()
}

/// How many active admins the account has: the last one may not be removed.
pub async fn active_admins(db: &mut impl Db, account_id: i64) -> Result<i64, StoreError> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM users WHERE account_id = $1 AND role = 'admin' AND active = 1",
    )
    .bind(account_id)
    .fetch_one(db.connection())
    .await?;
    Ok(row.try_get("n")?)
}

/// Whether `email` (lower-cased by the caller) is an active admin of the account.
pub async fn is_active_admin(
    db: &mut impl Db,
    account_id: i64,
    email: &str,
) -> Result<bool, StoreError> {
    const SQL: &str = "SELECT 1 AS one FROM users \
                       WHERE account_id = $1 AND email = $2 AND role = 'admin' AND active = 1";
    Ok(sqlx::query(SQL)
        .bind(account_id)
        .bind(email)
        .fetch_optional(db.connection())
        .await?
        .is_some())
}

pub struct UserUpdate<'a> {
    pub id: i64,
    pub full_name: &'a str,
    pub role: Role,
    pub active: bool,
    pub now: i64,
}

pub async fn update(tx: &mut Tx, u: &UserUpdate<'_>) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE users SET full_name = $2, role = $3, active = $4, updated_at = $5 WHERE id = $1",
    )
    .bind(u.id)
    .bind(u.full_name)
    .bind(u.role.as_str())
    .bind(i64::from(u.active))
    .bind(u.now)
    .execute(tx.connection())
    .await?;
    Ok(())
}

pub async fn set_password(tx: &mut Tx, id: i64, hash: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(hash)
        .bind(now)
        .execute(tx.connection())
        .await?;
    Ok(())
}

/// Deletes the user with its links and sessions.
pub async fn delete(tx: &mut Tx, id: i64) -> Result<(), StoreError> {
    for statement in [
        "DELETE FROM user_sessions WHERE user_id = $1",
        "DELETE FROM user_setup_links WHERE user_id = $1",
        "DELETE FROM users WHERE id = $1",
    ] {
        sqlx::query(statement)
            .bind(id)
            .execute(tx.connection())
            .await?;
    }
    Ok(())
}

// === setup links ===

/// The user's new setup link; any older one stops working.
pub async fn replace_link(
    tx: &mut Tx,
    user_id: i64,
    digest_hex: &str,
    expires_at: i64,
) -> Result<(), StoreError> {
    delete_links(tx, user_id).await?;
    sqlx::query("INSERT INTO user_setup_links (digest, user_id, expires_at) VALUES ($1, $2, $3)")
        .bind(digest_hex)
        .bind(user_id)
        .bind(expires_at)
        .execute(tx.connection())
        .await?;
    Ok(())
}

/// The user a link is for and when it expires.
pub async fn link(db: &mut impl Db, digest_hex: &str) -> Result<Option<(i64, i64)>, StoreError> {
    sqlx::query("SELECT user_id, expires_at FROM user_setup_links WHERE digest = $1")
        .bind(digest_hex)
        .fetch_optional(db.connection())
        .await?
        .map(|r| Ok((r.try_get("user_id")?, r.try_get("expires_at")?)))
        .transpose()
}

/// Uses a link up: true when it existed (and so this transaction is the one that used it).
pub async fn take_link(tx: &mut Tx, digest_hex: &str) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM user_setup_links WHERE digest = $1")
        .bind(digest_hex)
        .execute(tx.connection())
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn delete_links(tx: &mut Tx, user_id: i64) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM user_setup_links WHERE user_id = $1")
        .bind(user_id)
        .execute(tx.connection())
        .await?;
    Ok(())
}

// === sessions ===

#[derive(Debug, Clone, Copy)]
pub struct SessionRow {
    pub user_id: i64,
    pub created_at: i64,
    pub last_seen_at: i64,
}

pub async fn insert_session(
    db: &mut impl Db,
    digest_hex: &str,
    user_id: i64,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO user_sessions (digest, user_id, created_at, last_seen_at) \
         VALUES ($1, $2, $3, $3)",
    )
    .bind(digest_hex)
    .bind(user_id)
    .bind(now)
    .execute(db.connection())
    .await?;
    Ok(())
}

pub async fn session(db: &mut impl Db, digest_hex: &str) -> Result<Option<SessionRow>, StoreError> {
    sqlx::query("SELECT user_id, created_at, last_seen_at FROM user_sessions WHERE digest = $1")
        .bind(digest_hex)
        .fetch_optional(db.connection())
        .await?
        .map(|r| {
            Ok(SessionRow {
                user_id: r.try_get("user_id")?,
                created_at: r.try_get("created_at")?,
                last_seen_at: r.try_get("last_seen_at")?,
            })
        })
        .transpose()
}

pub async fn touch_session(db: &mut impl Db, digest_hex: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE user_sessions SET last_seen_at = $2 WHERE digest = $1")
        .bind(digest_hex)
        .bind(now)
        .execute(db.connection())
        .await?;
    Ok(())
}

pub async fn delete_session(db: &mut impl Db, digest_hex: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM user_sessions WHERE digest = $1")
        .bind(digest_hex)
        .execute(db.connection())
        .await?;
    Ok(())
}

/// Ends every session of the user: suspended, deleted, or its role changed.
pub async fn delete_sessions(tx: &mut Tx, user_id: i64) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM user_sessions WHERE user_id = $1")
        .bind(user_id)
        .execute(tx.connection())
        .await?;
    Ok(())
}

/// Forgets sessions idle since before `idle_before` or started before `started_before`.
pub async fn prune_sessions(
    db: &mut impl Db,
    idle_before: i64,
    started_before: i64,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM user_sessions WHERE last_seen_at < $1 OR created_at < $2")
        .bind(idle_before)
        .bind(started_before)
        .execute(db.connection())
        .await?;
    Ok(())
}
