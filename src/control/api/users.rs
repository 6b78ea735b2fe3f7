//! Logz.io's user-management API (`/v1/user-management…`), so scripts and the Terraform
//! provider written for it work: create (answering, beyond Logz.io's `{id}`, the one-time
//! `setupLink` on which the user sets a password — Logz.io emails it instead), list,
//! read, update, suspend, unsuspend, delete, and the users of a main account with its
//! sub-accounts (`/recursive`). Rules and changes are in `usecases::users`.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::{Authenticated, Id};
use super::json::Body;
use crate::control::plane::ControlPlane;
use crate::control::refusal::Refusal;
use crate::control::store::users::{Role, User};
use crate::control::usecases::callers::Caller;
use crate::control::usecases::users::{self as usecase, Invited, NewUser};

pub fn routes() -> Router<Arc<ControlPlane>> {
    Router::new()
        .route("/v1/user-management", get(list).post(create))
        .route("/v1/user-management/recursive", get(list_recursive))
        .route("/v1/user-management/suspend/{id}", post(suspend))
        .route("/v1/user-management/unsuspend/{id}", post(unsuspend))
        .route(
            "/v1/user-management/{id}",
            get(read).put(update).delete(remove),
        )
        .route("/v1/user-management/{id}/setup-link", post(setup_link))
}

/// Logz.io's user model.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UserModel {
    id: i64,
    username: String,
    full_name: String,
    #[serde(rename = "accountID")]
    account_id: i64,
    role: &'static str,
    active: bool,
}

impl From<User> for UserModel {
    fn from(u: User) -> Self {
        UserModel {
            id: u.id,
            username: u.email,
            full_name: u.full_name,
            account_id: u.account_id,
            role: u.role.logzio(),
            active: u.active,
        }
    }
}

/// Logz.io's create and update body. `roles: [2|3]` is what older clients send.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserRequest {
    username: Option<String>,
    full_name: Option<String>,
    #[serde(rename = "accountID", alias = "accountId")]
    account_id: Option<i64>,
    role: Option<String>,
    roles: Option<Vec<i64>>,
}

impl UserRequest {
    fn role(&self) -> Result<Option<Role>, Refusal> {
        let invalid = || Refusal::Invalid {
            code: "users/INVALID_ROLE",
            message: "role must be USER_ROLE_READONLY, USER_ROLE_REGULAR or \
                      USER_ROLE_ACCOUNT_ADMIN"
                .into(),
        };
        match (&self.role, self.roles.as_deref()) {
            (Some(role), _) => Role::from_logzio(role)
                .or_else(|| Role::parse(role))
                .map(Some)
                .ok_or_else(invalid),
            (None, Some([2])) => Ok(Some(Role::User)),
            (None, Some([3])) => Ok(Some(Role::Admin)),
            (None, Some(_)) => Err(invalid()),
            (None, None) => Ok(None),
        }
    }
}

/// The create answer: Logz.io's `{id}`, and the setup link, shown this once.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreatedModel {
    id: i64,
    setup_link: String,
}

impl From<Invited> for CreatedModel {
    fn from(i: Invited) -> Self {
        CreatedModel {
            id: i.user.id,
            setup_link: i.setup_url,
        }
    }
}

fn required<'a>(value: &'a Option<String>, field: &str) -> Result<&'a str, ApiError> {
    value
        .as_deref()
        .ok_or_else(|| ApiError::invalid(format!("`{field}` is required")))
}

/// Creates a user of `accountID` (or of the account the caller acts on).
async fn create(
    State(cp): State<Arc<ControlPlane>>,
    authenticated: Authenticated,
    Body(req): Body<UserRequest>,
) -> Result<Json<CreatedModel>, ApiError> {
    let caller = match req.account_id {
        Some(id) => authenticated.acting_on(&cp, id).await?,
        None => authenticated.caller(&cp).await?,
    };
    let role = req
        .role()?
        .ok_or_else(|| ApiError::invalid("`role` is required"))?;
    let new = NewUser {
        email: required(&req.username, "username")?,
        full_name: required(&req.full_name, "fullName")?,
        role,
    };
    Ok(Json(usecase::invite(&cp, &caller, &new).await?.into()))
}

async fn list(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
) -> Result<Json<Vec<UserModel>>, ApiError> {
    let users = usecase::list(&cp, &caller).await?;
    Ok(Json(users.into_iter().map(UserModel::from).collect()))
}

/// The users of the main account and of all its sub-accounts.
async fn list_recursive(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
) -> Result<Json<Vec<UserModel>>, ApiError> {
    caller.require_main_account()?;
    let users = usecase::list_with_owned(&cp, &caller).await?;
    Ok(Json(users.into_iter().map(UserModel::from).collect()))
}

async fn read(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<UserModel>, ApiError> {
    Ok(Json(usecase::read(&cp, &caller, id).await?.into()))
}

/// Renames a user or changes its role. A user's email and account are fixed: a body that
/// names others is refused rather than half applied.
async fn update(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
    Id(id): Id,
    Body(req): Body<UserRequest>,
) -> Result<Json<UserModel>, ApiError> {
    let current = usecase::read(&cp, &caller, id).await?;
    if let Some(username) = &req.username
        && !username.trim().eq_ignore_ascii_case(&current.email)
    {
        return Err(Refusal::Invalid {
            code: "users/USERNAME_FIXED",
            message: "a user's username (email) cannot change: create a new user".into(),
        }
        .into());
    }
    if req.account_id.is_some_and(|a| a != current.account_id) {
        return Err(Refusal::Invalid {
            code: "users/ACCOUNT_FIXED",
            message: "a user cannot move to another account: create it there".into(),
        }
        .into());
    }
    let role = req.role()?;
    let user = usecase::update(&cp, &caller, id, req.full_name.as_deref(), role).await?;
    Ok(Json(user.into()))
}

async fn remove(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<serde_json::Value>, ApiError> {
    usecase::delete(&cp, &caller, id).await?;
    Ok(Json(serde_json::json!({})))
}

async fn suspend(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<serde_json::Value>, ApiError> {
    usecase::set_active(&cp, &caller, id, false).await?;
    Ok(Json(serde_json::json!({})))
}

async fn unsuspend(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<serde_json::Value>, ApiError> {
    usecase::set_active(&cp, &caller, id, true).await?;
    Ok(Json(serde_json::json!({})))
}

/// A new one-time setup link for a user (lost link, forgotten password); the old one
/// stops working.
async fn setup_link(
    State(cp): State<Arc<ControlPlane>>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<CreatedModel>, ApiError> {
    let invited = usecase::reissue_setup_link(&cp, &caller, id).await?;
    Ok(Json(invited.into()))
}
