//! Reading the audit trail: an account's events, newest first.

use super::callers::Caller;
use crate::control::plane::ControlPlane;
use crate::control::refusal::Refusal;
use crate::control::store::audit::{self, AuditEvent};

pub async fn list(
    cp: &ControlPlane,
    caller: &Caller,
    limit: i64,
    offset: i64,
) -> Result<(i64, Vec<AuditEvent>), Refusal> {
    caller.require_admin()?;
    let mut conn = cp.store.conn().await?;
    Ok(audit::page(&mut conn, caller.account.id, limit, offset).await?)
}
