//! Reading the audit trail: an account's events, newest first.

use crate::control::ControlPlane;
use crate::control::auth::Caller;
use crate::control::error::ApiError;
use crate::control::store::audit::{self, AuditEvent};

pub async fn list(
    cp: &ControlPlane,
    caller: &Caller,
    limit: i64,
    offset: i64,
) -> Result<(i64, Vec<AuditEvent>), ApiError> {
    caller.require_admin()?;
    let mut conn = cp.store.conn().await?;
    Ok(audit::page(&mut conn, caller.account.id, limit, offset).await?)
}
