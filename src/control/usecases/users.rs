//! Account users (Logz.io's user management): invite one with a role and a one-time setup
//! link, change its name or role, suspend, delete; and what a user does for itself — set a
//! password through the link, log in (a session), log out. Suspending, deleting or
//! changing the role of a user ends its sessions in the same transaction.

use std::net::IpAddr;
use std::sync::LazyLock;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use moka::sync::Cache;

use super::{Change, audit};
use crate::control::ControlPlane;
use crate::control::auth::{self, Caller};
use crate::control::error::ApiError;
use crate::control::rules::{self, checked_email, checked_name};
use crate::control::store::accounts::{self as account_store, Account};
use crate::control::store::users::{self as store, Role, User, UserUpdate};
use crate::control::store::{Actor, Db};

/// How long a page session and a setup link live (`[control_plane]` keys).
#[derive(Debug, Clone, Copy)]
pub struct UserPolicy {
    pub session_idle_secs: i64,
    pub session_max_age_secs: i64,
    pub setup_link_ttl_secs: i64,
}

/// A session's `last_seen_at` is written at most this often: a page load is not a write.
const TOUCH_EVERY_SECS: i64 = 60;

// === managing users (admins) ===

pub struct NewUser<'a> {
    pub email: &'a str,
    pub full_name: &'a str,
    pub role: Role,
}

/// A user and the link it sets its password on; the link is shown once.
pub struct Invited {
    pub user: User,
    pub setup_url: String,
}

/// Creates a user of the caller's account, active, without a password, and its setup link.
pub async fn invite(
    cp: &ControlPlane,
    caller: &Caller,
    new: &NewUser<'_>,
) -> Result<Invited, ApiError> {
    let email = checked_email(new.email)?;
    let full_name = checked_name(new.full_name)?;
    let mut change = Change::begin(cp, caller).await?;
    if store::email_taken(&mut change.tx, &email).await? {
        return Err(ApiError::rule(
            "users/EMAIL_TAKEN",
            format!("a user with the email {email} already exists"),
        ));
    }
    let id = store::insert(
        &mut change.tx,
        &store::NewUser {
            account_id: change.account.id,
            email: &email,
            full_name,
            role: new.role,
            now: cp.clock.now_secs(),
        },
    )
    .await?;
    let setup_url = new_setup_link(cp, &mut change, id).await?;
    change.record("user.create", &format!("user:{id}")).await?;
    let user = fetch(&mut change.tx, change.account.id, id).await?;
    change.commit().await?;
    Ok(Invited { user, setup_url })
}

/// A new setup link for a user (the old one stops working): a lost link, or a password
/// to reset.
pub async fn reissue_setup_link(
    cp: &ControlPlane,
    caller: &Caller,
    id: i64,
) -> Result<Invited, ApiError> {
    let mut change = Change::begin(cp, caller).await?;
    let user = fetch(&mut change.tx, change.account.id, id).await?;
    let setup_url = new_setup_link(cp, &mut change, id).await?;
    change
        .record("user.setup-link", &format!("user:{id}"))
        .await?;
    change.commit().await?;
    Ok(Invited { user, setup_url })
}

async fn new_setup_link(
    cp: &ControlPlane,
    change: &mut Change<'_>,
    user_id: i64,
) -> Result<String, ApiError> {
    let secret = auth::new_secret();
    let expires_at = cp.clock.now_secs() + cp.users.setup_link_ttl_secs;
    store::replace_link(
        &mut change.tx,
        user_id,
        &auth::digest_hex(&secret),
        expires_at,
    )
    .await?;
    Ok(format!("{}/ui/setup/{secret}", cp.page_url()))
}

/// The caller's account's users.
pub async fn list(cp: &ControlPlane, caller: &Caller) -> Result<Vec<User>, ApiError> {
    caller.require_admin()?;
    Ok(store::list(&mut cp.store.conn().await?, caller.account.id).await?)
}

/// The users of the caller's (main) account and of every account it owns.
pub async fn list_with_owned(cp: &ControlPlane, caller: &Caller) -> Result<Vec<User>, ApiError> {
    caller.require_admin()?;
    Ok(store::list_with_owned(&mut cp.store.conn().await?, caller.account.id).await?)
}

pub async fn read(cp: &ControlPlane, caller: &Caller, id: i64) -> Result<User, ApiError> {
    caller.require_admin()?;
    fetch(&mut cp.store.conn().await?, caller.account.id, id).await
}

/// Renames a user or changes its role; a new role ends its sessions.
pub async fn update(
    cp: &ControlPlane,
    caller: &Caller,
    id: i64,
    full_name: Option<&str>,
    role: Option<Role>,
) -> Result<User, ApiError> {
    let full_name = full_name.map(checked_name).transpose()?;
    let mut change = Change::begin(cp, caller).await?;
    let user = fetch(&mut change.tx, change.account.id, id).await?;
    let role = role.unwrap_or(user.role);
    let new_role = role != user.role;
    if new_role && user.role == Role::Admin && user.active {
        let left = store::active_admins(&mut change.tx, change.account.id).await? - 1;
        rules::check_keeps_an_admin(left)?;
    }
    store::update(
        &mut change.tx,
        &UserUpdate {
            id,
            full_name: full_name.unwrap_or(&user.full_name),
            role,
            active: user.active,
            now: cp.clock.now_secs(),
        },
    )
    .await?;
    if new_role {
        store::delete_sessions(&mut change.tx, id).await?;
    }
    change.record("user.update", &format!("user:{id}")).await?;
    let user = fetch(&mut change.tx, change.account.id, id).await?;
    change.commit().await?;
    Ok(user)
}

/// Suspends (ending its sessions at once) or reactivates a user.
pub async fn set_active(
    cp: &ControlPlane,
    caller: &Caller,
    id: i64,
    active: bool,
) -> Result<User, ApiError> {
    let mut change = Change::begin(cp, caller).await?;
    let user = fetch(&mut change.tx, change.account.id, id).await?;
    if !active && user.active && user.role == Role::Admin {
        let left = store::active_admins(&mut change.tx, change.account.id).await? - 1;
        rules::check_keeps_an_admin(left)?;
    }
    store::update(
        &mut change.tx,
        &UserUpdate {
            id,
            full_name: &user.full_name,
            role: user.role,
            active,
            now: cp.clock.now_secs(),
        },
    )
    .await?;
    if !active {
        store::delete_sessions(&mut change.tx, id).await?;
    }
    let action = if active {
        "user.unsuspend"
    } else {
        "user.suspend"
    };
    change.record(action, &format!("user:{id}")).await?;
    let user = fetch(&mut change.tx, change.account.id, id).await?;
    change.commit().await?;
    Ok(user)
}

/// Deletes a user, its setup link and its sessions.
pub async fn delete(cp: &ControlPlane, caller: &Caller, id: i64) -> Result<(), ApiError> {
    let mut change = Change::begin(cp, caller).await?;
    let user = fetch(&mut change.tx, change.account.id, id).await?;
    if user.active && user.role == Role::Admin {
        let left = store::active_admins(&mut change.tx, change.account.id).await? - 1;
        rules::check_keeps_an_admin(left)?;
    }
    store::delete(&mut change.tx, id).await?;
    change.record("user.delete", &format!("user:{id}")).await?;
    change.commit().await
}

/// One user of the account; another account's user is "not found", like an unknown id.
async fn fetch(db: &mut impl Db, account_id: i64, id: i64) -> Result<User, ApiError> {
    match store::get(db, id).await? {
        Some(user) if user.account_id == account_id => Ok(user),
        _ => Err(ApiError::not_found(&format!("user {id}"))),
    }
}

// === what a user does for itself ===

/// The user a setup link is for, while the link works.
pub async fn setup_target(cp: &ControlPlane, link_secret: &str) -> Result<User, ApiError> {
    let mut conn = cp.store.conn().await?;
    let user_id = live_link(cp, &mut conn, link_secret).await?;
    store::get(&mut conn, user_id)
        .await?
        .ok_or_else(unknown_link)
}

/// Sets the password of the link's user and uses the link up (one use only).
pub async fn complete_setup(
    cp: &ControlPlane,
    link_secret: &str,
    password: &str,
) -> Result<User, ApiError> {
    rules::check_password(password)?;
    let hash = hash_password(password.to_owned()).await?;
    let digest = auth::digest_hex(link_secret);
    let mut tx = cp.store.begin().await?;
    let user_id = live_link(cp, &mut tx, link_secret).await?;
    // Two submissions of one link race here: only the one whose delete took the row goes on.
    if !store::take_link(&mut tx, &digest).await? {
        return Err(unknown_link());
    }
    let user = store::get(&mut tx, user_id)
        .await?
        .ok_or_else(unknown_link)?;
    store::set_password(&mut tx, user_id, &hash, cp.clock.now_secs()).await?;
    let target = format!("user:{user_id}");
    audit(
        cp,
        &mut tx,
        user.account_id,
        Actor::User(user_id),
        "user.set-password",
        &target,
    )
    .await?;
    tx.commit().await?;
    Ok(User {
        has_password: true,
        ..user
    })
}

async fn live_link(
    cp: &ControlPlane,
    db: &mut impl Db,
    link_secret: &str,
) -> Result<i64, ApiError> {
    let (user_id, expires_at) = store::link(db, &auth::digest_hex(link_secret))
        .await?
        .ok_or_else(unknown_link)?;
    if cp.clock.now_secs() >= expires_at {
        return Err(ApiError::Gone {
            code: "users/SETUP_LINK_EXPIRED",
            message: "this setup link has expired: ask an admin of the account for a new one"
                .into(),
        });
    }
    Ok(user_id)
}

fn unknown_link() -> ApiError {
    ApiError::NotFound(
        "this setup link is not valid or was already used: ask an admin of the account for a \
         new one"
            .into(),
    )
}

/// A new session: the cookie's secret (shown to the browser only) and whose it is.
pub struct LoggedIn {
    pub session_secret: String,
    pub user: User,
}

/// Failed logins counted per email and per client address over a window; past the limit
/// every attempt is refused, the right password included, until the window ends.
pub struct LoginLimiter {
    by_email: Cache<String, u32>,
    by_client: Cache<IpAddr, u32>,
}

/// Failures allowed per email, and per client address, within `LOGIN_WINDOW`.
const EMAIL_FAILURES: u32 = 5;
const CLIENT_FAILURES: u32 = 20;
const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Bounds the limiter's memory under a flood of distinct emails or addresses.
const LIMITER_ENTRIES: u64 = 100_000;

impl Default for LoginLimiter {
    fn default() -> Self {
        LoginLimiter {
            by_email: failures(),
            by_client: failures(),
        }
    }
}

fn failures<K: std::hash::Hash + Eq + Send + Sync + 'static>() -> Cache<K, u32> {
    Cache::builder()
        .max_capacity(LIMITER_ENTRIES)
        .time_to_live(LOGIN_WINDOW)
        .build()
}

impl LoginLimiter {
    fn limited(&self, email: &str, client: IpAddr) -> bool {
        self.by_email.get(email).unwrap_or(0) >= EMAIL_FAILURES
            || self.by_client.get(&client).unwrap_or(0) >= CLIENT_FAILURES
    }

    fn failed(&self, email: &str, client: IpAddr) {
        // Not atomic per key: concurrent failures may count once, which only loosens the
        // limit by the concurrency of one client.
        self.by_email
            .insert(email.to_owned(), self.by_email.get(email).unwrap_or(0) + 1);
        self.by_client
            .insert(client, self.by_client.get(&client).unwrap_or(0) + 1);
    }

    fn succeeded(&self, email: &str) {
        self.by_email.invalidate(email);
    }
}

/// Logs a user in. An unknown email and a wrong password get the same answer, after the
/// same work (a hash is verified either way).
pub async fn login(
    cp: &ControlPlane,
    email: &str,
    password: &str,
    client: IpAddr,
) -> Result<LoggedIn, ApiError> {
    let email = email.trim().to_lowercase();
    let outcome = |o: &str| cp.telemetry.logins.with_label_values(&[o]).inc();
    if cp.logins.limited(&email, client) {
        outcome("limited");
        return Err(ApiError::TooManyAttempts {
            retry_after_secs: LOGIN_WINDOW.as_secs(),
        });
    }
    let found = store::by_email(&mut cp.store.conn().await?, &email).await?;
    let (user, hash) = match found {
        Some((user, Some(hash))) => (Some(user), hash),
        _ => (None, DUMMY_HASH.clone()),
    };
    let matches = verify_password(password.to_owned(), hash).await;
    let Some(user) = user.filter(|_| matches) else {
        cp.logins.failed(&email, client);
        outcome("failed");
        return Err(ApiError::Unauthorized(
            "the email or password is not correct",
        ));
    };
    cp.logins.succeeded(&email);
    if !user.active {
        outcome("suspended");
        return Err(ApiError::forbidden(
            "auth/USER_SUSPENDED",
            "this user is suspended: ask an admin of the account",
        ));
    }
    let secret = auth::new_secret();
    let now = cp.clock.now_secs();
    let mut tx = cp.store.begin().await?;
    // Sessions past their limits are refused anyway; forgetting them here bounds the table.
    let policy = cp.users;
    store::prune_sessions(
        &mut tx,
        now - policy.session_idle_secs,
        now - policy.session_max_age_secs,
    )
    .await?;
    store::insert_session(&mut tx, &auth::digest_hex(&secret), user.id, now).await?;
    let target = format!("user:{}", user.id);
    audit(
        cp,
        &mut tx,
        user.account_id,
        Actor::User(user.id),
        "user.login",
        &target,
    )
    .await?;
    tx.commit().await?;
    outcome("ok");
    Ok(LoggedIn {
        session_secret: secret,
        user,
    })
}

/// The user and home account of a live session; `None` when the session is unknown,
/// idle or old past its limits, or its user is suspended or gone.
pub async fn session(
    cp: &ControlPlane,
    session_secret: &str,
) -> Result<Option<(User, Account)>, ApiError> {
    let digest = auth::digest_hex(session_secret);
    let mut conn = cp.store.conn().await?;
    let Some(row) = store::session(&mut conn, &digest).await? else {
        return Ok(None);
    };
    let now = cp.clock.now_secs();
    let policy = cp.users;
    if now - row.last_seen_at >= policy.session_idle_secs
        || now - row.created_at >= policy.session_max_age_secs
    {
        store::delete_session(&mut conn, &digest).await?;
        return Ok(None);
    }
    let Some(user) = store::get(&mut conn, row.user_id).await? else {
        return Ok(None);
    };
    if !user.active {
        return Ok(None);
    }
    let Some(home) = account_store::get(&mut conn, user.account_id).await? else {
        return Ok(None);
    };
    if now - row.last_seen_at >= TOUCH_EVERY_SECS {
        store::touch_session(&mut conn, &digest, now).await?;
    }
    Ok(Some((user, home)))
}

/// Ends a session (unknown sessions end quietly).
pub async fn logout(cp: &ControlPlane, session_secret: &str) -> Result<(), ApiError> {
    let digest = auth::digest_hex(session_secret);
    let mut tx = cp.store.begin().await?;
    if let Some(row) = store::session(&mut tx, &digest).await? {
        store::delete_session(&mut tx, &digest).await?;
        if let Some(user) = store::get(&mut tx, row.user_id).await? {
            let target = format!("user:{}", user.id);
            audit(
                cp,
                &mut tx,
                user.account_id,
                Actor::User(user.id),
                "user.logout",
                &target,
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

// === passwords ===

/// Verified against when the email is unknown or has no password yet, so that answer
/// takes as long as a wrong password.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    hash_with_salt("not a password anyone has").expect("hashing a fixed input cannot fail")
});

fn hash_with_salt(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// argon2id (the crate's defaults: 19 MiB, 2 passes) off the async workers.
async fn hash_password(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || hash_with_salt(&password))
        .await
        .map_err(|_| ApiError::invalid("hashing the password failed"))?
        .map_err(|_| ApiError::invalid("hashing the password failed"))
}

async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}
