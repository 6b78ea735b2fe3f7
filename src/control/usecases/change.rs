//! The frame of one change to an account: its transaction with the account locked, who
//! makes it, and the audit event every change records.

use super::callers::Caller;
use crate::control::plane::ControlPlane;
use crate::control::refusal::Refusal;
use crate::control::store::accounts::{self as account_store, Account};
use crate::control::store::{Actor, Tx, audit as audit_store};

/// One change to the account a caller acts on: its transaction, with the account locked
/// (so two changes cannot both pass a limit), and who makes it. Dropped without `commit`,
/// nothing of it happened.
pub(super) struct Change<'a> {
    pub cp: &'a ControlPlane,
    pub tx: Tx,
    /// The account as it is inside the transaction.
    pub account: Account,
    pub actor: Actor,
}

impl<'a> Change<'a> {
    /// Every change needs an admin of the account: the product's "Admin Access Required".
    pub async fn begin(cp: &'a ControlPlane, caller: &Caller) -> Result<Change<'a>, Refusal> {
        caller.require_admin()?;
        let mut tx = cp.store.begin().await?;
        let account = account_store::lock(&mut tx, caller.account.id)
            .await?
            .ok_or_else(|| Refusal::not_found("account"))?;
        // The caller's reach was checked before the lock; a sub-account made inaccessible
        // since then must not take this change.
        if let Some(home) = &caller.home
            && home.id != account.id
            && account.is_sub_account()
            && !account.accessible
        {
            return Err(Refusal::forbidden(
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
    pub async fn record(&mut self, action: &str, target: &str) -> Result<(), Refusal> {
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

    pub async fn commit(self) -> Result<(), Refusal> {
        Ok(self.tx.commit().await?)
    }
}

/// Records who did what to which object, in the change's transaction (also for a change
/// that creates its account, which has no `Change` to lock yet).
pub(super) async fn audit(
    cp: &ControlPlane,
    tx: &mut Tx,
    account_id: i64,
    actor: Actor,
    action: &str,
    target: &str,
) -> Result<(), Refusal> {
    audit_store::record(tx, account_id, actor, action, target, cp.clock.now_secs()).await?;
    Ok(())
}
