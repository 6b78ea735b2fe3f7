//! One function per thing that can be done to an account — create a shipping token,
//! rename it, disable it, create an API token, revoke a sub-account's access, … — shared
//! by the management API and the Manage Tokens page, so no product rule is written twice.
//!
//! Each runs the same steps: may this caller do this to this account (`auth::Caller`),
//! do the product's rules allow it (`rules`, pure), then one transaction that locks the
//! account, changes it, records the audit event and, for what gateways replicate (shipping
//! tokens, and the read grants: accounts' `searchable`, API tokens, shared tokens), moves
//! the feed version; after the commit, long-polling gateways are woken
//! (`ControlPlane::published`).
//! They take and return typed values; the HTTP shapes live with the API handlers.

pub mod accounts;
pub mod api_tokens;
pub mod audit;
pub mod metrics_accounts;
pub mod shared_tokens;
pub mod shipping_tokens;
pub mod users;

use super::ControlPlane;
use super::auth::Caller;
use super::error::ApiError;
use super::store::accounts::{self as account_store, Account};
use super::store::{Actor, Tx, audit as audit_store};

/// One change to the account a caller acts on: its transaction, with the account locked
/// (so two changes cannot both pass a limit), and who makes it. Dropped without `commit`,
/// nothing of it happened.
struct Change<'a> {
    cp: &'a ControlPlane,
    tx: Tx,
    /// The account as it is inside the transaction.
    account: Account,
    actor: Actor,
}

impl<'a> Change<'a> {
    /// Every change needs an admin of the account: the product's "Admin Access Required".
    async fn begin(cp: &'a ControlPlane, caller: &Caller) -> Result<Change<'a>, ApiError> {
        caller.require_admin()?;
        let mut tx = cp.store.begin().await?;
        let account = account_store::lock(&mut tx, caller.account.id)
            .await?
            .ok_or_else(|| ApiError::not_found("account"))?;
        // The caller's reach was checked before the lock; a sub-account made inaccessible
        // since then must not take this change.
        if let Some(home) = &caller.home
            && home.id != account.id
            && account.is_sub_account()
            && !account.accessible
        {
            return Err(ApiError::forbidden(
                "auth/NOT_ACCESSIBLE",
                format!(
                    "sub-account {} is not accessible from the main account",
                    account.id
                ),
            ));
        }
        Ok(Change {
            cp,
            tx,
            account,
            actor: caller.actor,
        })
    }

    /// The audit event of this change, on its account.
    async fn record(&mut self, action: &str, target: &str) -> Result<(), ApiError> {
        let account_id = self.account.id;
        audit(
            self.cp,
            &mut self.tx,
            account_id,
            self.actor,
            action,
            target,
        )
        .await
    }

    async fn commit(self) -> Result<(), ApiError> {
        Ok(self.tx.commit().await?)
    }
}

/// Records who did what to which object, in the change's transaction (also for a change
/// that creates its account, which has no `Change` to lock yet).
async fn audit(
    cp: &ControlPlane,
    tx: &mut Tx,
    account_id: i64,
    actor: Actor,
    action: &str,
    target: &str,
) -> Result<(), ApiError> {
    audit_store::record(tx, account_id, actor, action, target, cp.clock.now_secs()).await?;
    Ok(())
}
