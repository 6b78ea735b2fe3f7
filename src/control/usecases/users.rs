//! STAND-IN for the lead's users use cases (reverted before merging main).
#![allow(unused_variables)]
use crate::control::ControlPlane;
use crate::control::auth::Caller;
use crate::control::error::ApiError;
use crate::control::store::users::{Role, User};
pub struct NewUser<'a> {
    pub email: &'a str,
    pub full_name: &'a str,
    pub role: Role,
}
pub struct Invited {
    pub user: User,
    pub setup_url: String,
}
fn stub<T>() -> Result<T, ApiError> {
    Err(ApiError::NotFound("stand-in".into()))
}
pub async fn invite(
    cp: &ControlPlane,
    caller: &Caller,
    new: &NewUser<'_>,
) -> Result<Invited, ApiError> {
    stub()
}
pub async fn list(cp: &ControlPlane, caller: &Caller) -> Result<Vec<User>, ApiError> {
    stub()
}
pub async fn update(
    cp: &ControlPlane,
    caller: &Caller,
    id: i64,
    full_name: Option<&str>,
    role: Option<Role>,
) -> Result<User, ApiError> {
    stub()
}
pub async fn set_active(
    cp: &ControlPlane,
    caller: &Caller,
    id: i64,
    active: bool,
) -> Result<User, ApiError> {
    stub()
}
pub async fn delete(cp: &ControlPlane, caller: &Caller, id: i64) -> Result<(), ApiError> {
    stub()
}
pub async fn setup_target(cp: &ControlPlane, link_secret: &str) -> Result<User, ApiError> {
    stub()
}
pub async fn complete_setup(
    cp: &ControlPlane,
    link_secret: &str,
    password: &str,
) -> Result<User, ApiError> {
    stub()
}
pub struct LoggedIn {
    pub session_secret: String,
    pub user: User,
}
pub async fn login(
    cp: &ControlPlane,
    email: &str,
    password: &str,
    client: std::net::IpAddr,
) -> Result<LoggedIn, ApiError> {
    stub()
}
pub async fn logout(cp: &ControlPlane, session_secret: &str) -> Result<(), ApiError> {
    stub()
}
