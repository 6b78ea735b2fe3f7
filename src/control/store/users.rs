//! STAND-IN for the lead's users store (reverted before merging main).
use super::accounts::Account;
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    User,
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
}
#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub account_id: i64,
    pub email: String,
    pub full_name: String,
    pub role: Role,
    pub active: bool,
    pub created_at: i64,
    pub has_password: bool,
}
#[allow(dead_code)]
fn _unused(_: Account) {}
