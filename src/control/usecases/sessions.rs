//! What a user does for itself on the page: set a password through its setup link, log
//! in (a session, with failed attempts limited), be recognised by its session, log out.
//! Passwords are argon2id hashes, computed off the async workers.

use std::net::IpAddr;
use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use super::callers;
use super::change::audit;
use crate::control::logins::LOGIN_WINDOW;
use crate::control::plane::ControlPlane;
use crate::control::refusal::Refusal;
use crate::control::rules;
use crate::control::store::accounts::{self as account_store, Account};
use crate::control::store::users::{self as store, User};
use crate::control::store::{Actor, Db};

/// A session's `last_seen_at` is written at most this often: a page load is not a write.
const TOUCH_EVERY_SECS: i64 = 60;

/// The user a setup link is for, while the link works.
pub async fn setup_target(cp: &ControlPlane, link_secret: &str) -> Result<User, Refusal> {
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
) -> Result<User, Refusal> {
    rules::check_password(password)?;
    let hash = hash_password(password.to_owned()).await?;
    let digest = callers::digest_hex(link_secret);
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
    // A new password ends every session the old one (or a stolen cookie) opened.
    store::delete_sessions(&mut tx, user_id).await?;
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

async fn live_link(cp: &ControlPlane, db: &mut impl Db, link_secret: &str) -> Result<i64, Refusal> {
    let (user_id, expires_at) = store::link(db, &callers::digest_hex(link_secret))
        .await?
        .ok_or_else(unknown_link)?;
    if cp.clock.now_secs() >= expires_at {
        return Err(Refusal::Gone {
            code: "users/SETUP_LINK_EXPIRED",
            message: "this setup link has expired: ask an admin of the account for a new one"
                .into(),
        });
    }
    Ok(user_id)
}

fn unknown_link() -> Refusal {
    Refusal::NotFound(
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

/// Logs a user in. An unknown email and a wrong password get the same answer, after the
/// same work (a hash is verified either way).
pub async fn login(
    cp: &ControlPlane,
    email: &str,
    password: &str,
    client: IpAddr,
) -> Result<LoggedIn, Refusal> {
    let email = email.trim().to_lowercase();
    let outcome = |o: &str| cp.logins.outcome(o);
    let Some(attempt) = cp.logins.attempt(&email, client) else {
        outcome("limited");
        return Err(Refusal::TooManyAttempts {
            retry_after_secs: LOGIN_WINDOW.as_secs(),
        });
    };
    let found = store::by_email(&mut cp.store.conn().await?, &email).await?;
    let (user, hash) = match found {
        Some((user, Some(hash))) => (Some(user), hash),
        _ => (None, DUMMY_HASH.clone()),
    };
    let matches = verify_password(password.to_owned(), hash).await;
    let Some(user) = user.filter(|_| matches) else {
        outcome("failed");
        return Err(Refusal::Unauthenticated(
            "the email or password is not correct",
        ));
    };
    attempt.succeeded();
    if !user.active {
        outcome("suspended");
        return Err(Refusal::forbidden(
            "auth/USER_SUSPENDED",
            "this user is suspended: ask an admin of the account",
        ));
    }
    let secret = callers::new_secret();
    let now = cp.clock.now_secs();
    let mut tx = cp.store.begin().await?;
    // Sessions past their limits are refused anyway; forgetting them here bounds the table.
    let policy = cp.sessions;
    store::prune_sessions(&mut tx, now - policy.idle_secs, now - policy.max_age_secs).await?;
    store::insert_session(&mut tx, &callers::digest_hex(&secret), user.id, now).await?;
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
) -> Result<Option<(User, Account)>, Refusal> {
    let digest = callers::digest_hex(session_secret);
    let mut conn = cp.store.conn().await?;
    let Some(row) = store::session(&mut conn, &digest).await? else {
        return Ok(None);
    };
    let now = cp.clock.now_secs();
    let policy = cp.sessions;
    if now - row.last_seen_at >= policy.idle_secs || now - row.created_at >= policy.max_age_secs {
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
pub async fn logout(cp: &ControlPlane, session_secret: &str) -> Result<(), Refusal> {
    let digest = callers::digest_hex(session_secret);
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
async fn hash_password(password: String) -> Result<String, Refusal> {
    tokio::task::spawn_blocking(move || hash_with_salt(&password))
        .await
        .map_err(|_| Refusal::invalid("hashing the password failed"))?
        .map_err(|_| Refusal::invalid("hashing the password failed"))
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
