//! What gateways ask of the control plane (DESIGN §2, §4): the snapshot of shipping-token
//! digests and read grants, the changes since a version (waiting for one), one digest for
//! a miss cache, and their usage reports. The caller has shown the feed secret
//! (`callers::gateway`); the wire shapes are `tokens::wire`'s.

use std::time::Duration;

use futures_util::{Stream, TryStreamExt};

use crate::control::clock::DAY_MS;
use crate::control::plane::ControlPlane;
use crate::control::refusal::Refusal;
use crate::control::store::feed as store;
use crate::control::store::shared_tokens as shared_store;
use crate::control::store::{Store, shipping_tokens};
use crate::tokens::wire::{
    Changes, Digest, GrantAccount, GrantApiToken, GrantChanges, GrantSharedToken, SnapshotEntry,
    UsageReport,
};

/// Long polls also re-read the store this often, so a change committed by another
/// control-plane process on the same PostgreSQL is seen without a notification.
const RECHECK: Duration = Duration::from_secs(1);

/// The whole table as of `version`, read row by row so it never sits in memory whole.
/// Rows committed after `version` may ride along; the next `changes` applies them again.
pub struct Snapshot {
    pub version: u64,
    store: Store,
}

impl Snapshot {
    pub fn tokens(&self) -> impl Stream<Item = Result<SnapshotEntry, Refusal>> + Send + '_ {
        store::entries(&self.store).map_err(Refusal::from)
    }

    pub fn grant_accounts(&self) -> impl Stream<Item = Result<GrantAccount, Refusal>> + Send + '_ {
        store::grant_accounts(&self.store).map_err(Refusal::from)
    }

    pub fn grant_api_tokens(
        &self,
    ) -> impl Stream<Item = Result<GrantApiToken, Refusal>> + Send + '_ {
        store::grant_api_tokens(&self.store).map_err(Refusal::from)
    }

    pub fn grant_shared_tokens(
        &self,
    ) -> impl Stream<Item = Result<GrantSharedToken, Refusal>> + Send + '_ {
        store::grant_shared_tokens(&self.store).map_err(Refusal::from)
    }
}

/// The snapshot's version, read first, and its rows to stream.
pub async fn snapshot(cp: &ControlPlane) -> Result<Snapshot, Refusal> {
    let version = store::current_version(&mut cp.store.conn().await?).await?;
    Ok(Snapshot {
        version: version_u64(version),
        store: cp.store.clone(),
    })
}

/// Upserts and deletes since `since` (with `grants`, the read grants' too), waiting up to
/// `wait` for one to happen; nothing new when the wait runs out or serving stops. A
/// `since` the feed no longer keeps is gone: the gateway must fetch a snapshot.
pub async fn changes(
    cp: &ControlPlane,
    since: i64,
    wait: Duration,
    grants: bool,
) -> Result<Changes, Refusal> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut notified = cp.feed.subscribe();
    loop {
        let (version, oldest) = store::versions(&mut cp.store.conn().await?).await?;
        if since < oldest || since > version {
            return Err(Refusal::Gone {
                code: "feed/VERSION_GONE",
                message: format!(
                    "the feed keeps changes from version {oldest} to {version}; fetch \
                     /v1/feed/snapshot"
                ),
            });
        }
        if since < version {
            let mut conn = cp.store.conn().await?;
            let (upserts, deletes) = store::changes_since(&mut conn, since).await?;
            let grants = match grants {
                true => Some(store::grant_changes_since(&mut conn, since).await?),
                false => None,
            };
            return Ok(Changes {
                version: version_u64(version),
                upserts,
                deletes,
                grants,
            });
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Ok(no_changes(version, grants));
        }
        tokio::select! {
            _ = notified.changed() => {}
            _ = tokio::time::sleep(RECHECK.min(deadline - now)) => {}
            _ = cp.feed.stopping.cancelled() => return Ok(no_changes(version, grants)),
        }
    }
}

/// Nothing new: the answer to a poll that waited it out (or was cut short by shutdown).
fn no_changes(version: i64, grants: bool) -> Changes {
    Changes {
        version: version_u64(version),
        upserts: Vec::new(),
        deletes: Vec::new(),
        grants: grants.then(GrantChanges::default),
    }
}

/// One digest, for a gateway's miss cache.
pub async fn lookup(cp: &ControlPlane, digest: &Digest) -> Result<Option<SnapshotEntry>, Refusal> {
    let mut conn = cp.store.conn().await?;
    Ok(store::entry_by_digest(&mut conn, &digest.to_hex()).await?)
}

/// Records a gateway's usage report. Last-used times only move forward (shipping tokens'
/// and shared tokens'); volumes add up, on the UTC day the report arrives (gateways report
/// every few seconds, so at most that much lands on the next day). Unknown ids are
/// ignored: the token or account was deleted after the gateway counted it.
pub async fn record_usage(cp: &ControlPlane, mut report: UsageReport) -> Result<(), Refusal> {
    let day_ms = cp.clock.today_utc_ms();
    // Rows are written in one order whatever order the gateway sent, so two reports about
    // the same accounts cannot deadlock each other on PostgreSQL.
    report
        .tokens
        .sort_by(|a, b| a.token_id.0.cmp(&b.token_id.0));
    report
        .accounts
        .sort_by_key(|a| (a.account_id, a.kind.index()));
    report.shared_tokens.sort_by_key(|s| s.token_id);
    let mut tx = cp.store.begin().await?;
    for t in &report.tokens {
        let Ok(id) = t.token_id.0.parse::<i64>() else {
            continue;
        };
        let last_used = i64::try_from(t.last_used).unwrap_or(i64::MAX);
        shipping_tokens::mark_used(&mut tx, id, last_used).await?;
    }
    for s in &report.shared_tokens {
        let Ok(id) = i64::try_from(s.token_id) else {
            continue; // no shared token has such an id
        };
        let last_used_ms = i64::try_from(s.last_used_ms).unwrap_or(i64::MAX);
        shared_store::mark_used(&mut tx, id, last_used_ms).await?;
    }
    for a in &report.accounts {
        let Ok(account_id) = i64::try_from(a.account_id.0) else {
            continue; // no account has such an id
        };
        let bytes = i64::try_from(a.bytes).unwrap_or(i64::MAX);
        let records = i64::try_from(a.records).unwrap_or(i64::MAX);
        store::add_usage(&mut tx, account_id, a.kind, day_ms, bytes, records).await?;
        let oldest_kept = day_ms - (store::DAILY_USAGE_DAYS - 1) * DAY_MS;
        store::forget_usage_before(&mut tx, account_id, oldest_kept).await?;
    }
    tx.commit().await?;
    Ok(())
}

fn version_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}
