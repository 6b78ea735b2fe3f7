//! Account users (Logz.io's user management), as their admins manage them: invite one
//! with a role and a one-time setup link, change its name or role, suspend, delete.
//! Suspending, deleting or changing the role of a user ends its sessions in the same
//! transaction. What a user does for itself is in `sessions`.

use super::callers::{self, Caller};
use super::change::Change;
use crate::control::plane::ControlPlane;
use crate::control::refusal::Refusal;
use crate::control::rules::{self, checked_email, checked_name};
use crate::control::store::Db;
use crate::control::store::users::{self as store, Role, User, UserUpdate};

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
) -> Result<Invited, Refusal> {
    let email = checked_email(new.email)?;
    let full_name = checked_name(new.full_name)?;
    let mut change = Change::begin(cp, caller).await?;
    if store::email_taken(&mut change.tx, &email).await? {
        return Err(Refusal::rule(
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
/// to reset. The user's sessions end with it: a link is reissued when the account may be
/// in other hands.
pub async fn reissue_setup_link(
    cp: &ControlPlane,
    caller: &Caller,
    id: i64,
) -> Result<Invited, Refusal> {
    let mut change = Change::begin(cp, caller).await?;
    let user = fetch(&mut change.tx, change.account.id, id).await?;
    store::delete_sessions(&mut change.tx, id).await?;
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
) -> Result<String, Refusal> {
    let secret = callers::new_secret();
    let expires_at = cp.clock.now_secs() + cp.sessions.setup_link_ttl_secs;
    store::replace_link(
        &mut change.tx,
        user_id,
        &callers::digest_hex(&secret),
        expires_at,
    )
    .await?;
    Ok(format!("{}/ui/setup/{secret}", cp.page_url()))
}

/// The caller's account's users.
pub async fn list(cp: &ControlPlane, caller: &Caller) -> Result<Vec<User>, Refusal> {
    caller.require_admin()?;
    Ok(store::list(&mut cp.store.conn().await?, caller.account.id).await?)
}

/// The users of the caller's (main) account and of every account it owns.
pub async fn list_with_owned(cp: &ControlPlane, caller: &Caller) -> Result<Vec<User>, Refusal> {
    caller.require_admin()?;
    Ok(store::list_with_owned(&mut cp.store.conn().await?, caller.account.id).await?)
}

pub async fn read(cp: &ControlPlane, caller: &Caller, id: i64) -> Result<User, Refusal> {
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
) -> Result<User, Refusal> {
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
) -> Result<User, Refusal> {
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
pub async fn delete(cp: &ControlPlane, caller: &Caller, id: i64) -> Result<(), Refusal> {
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
async fn fetch(db: &mut impl Db, account_id: i64, id: i64) -> Result<User, Refusal> {
    match store::get(db, id).await? {
        Some(user) if user.account_id == account_id => Ok(user),
        _ => Err(Refusal::not_found(&format!("user {id}"))),
    }
}
