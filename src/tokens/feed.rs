//! The `control_plane` token source: the follower side of the feed protocol
//! (docs/tokens.md "The feed protocol", DESIGN §2 and §4 "Feed for gateways"), over the
//! feed client (`client.rs`).
//!
//! Boot serves the persisted snapshot at once when there is one (fail-static), then the
//! follower fetches `/v1/feed/snapshot` and long-polls `/v1/feed/changes?since=V`, both
//! with `grants=true`: the read grants (`grants.rs`) ride the same feed and are installed
//! beside the table, each only when a change touches it. Each
//! delta is applied on a blocking thread to a copy of the serving table — of the shards it
//! touches; the rest are shared — and swapped in (`Tokens::install`): requests never wait
//! for it. A failed call is retried after an
//! exponential backoff with full jitter; a 410 (our version is older than what the control
//! plane keeps, or newer than its current one after a database reset) refetches the
//! snapshot. Whatever fails, the last good table keeps serving, and
//! `tollgate_token_table_age_seconds` grows until the control plane answers again.
//!
//! The table and the grants are persisted together by their own task, at most once per `tokens.persist_interval_secs`
//! and once more at shutdown, by a thread at nice 19: writing 1,000,000 tokens takes about
//! a second of CPU, which must come from idle time, not from requests, and a burst of
//! deltas must not mean a burst of rewrites. A crash loses at most that interval of
//! changes, which the boot-time snapshot fetch brings back anyway.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::client::{FeedClient, FeedError};
use super::grants::{GrantDelta, ReadGrants};
use super::snapshot::{AccountNames, SnapshotError};
use super::wire::{Changes, DropFilterChanges, DropFilters, Snapshot, VolumeChanges};
use super::{Delta, Digest, TokenTable, Tokens, persist};
use crate::backoff::Backoff;
use crate::config::TokensConfig;
use crate::filters::held::HeldFilters;
use crate::telemetry::SourceMetrics;
use crate::volume::gate::Gate;

/// A change-feed answer, validated: the token delta, and the grants' and volume policies'
/// changes when the answer has them.
pub struct ParsedChanges {
    pub delta: Delta,
    pub grants: Option<GrantDelta>,
    pub volumes: Option<VolumeChanges>,
    pub filters: Option<DropFilterChanges>,
}

/// Parses and validates a change-feed answer. Public for the `feed_changes` fuzz target.
#[doc(hidden)]
pub fn parse_changes(body: &[u8]) -> Result<ParsedChanges, FeedError> {
    let changes: Changes =
        serde_json::from_slice(body).map_err(|e| FeedError::Body(e.to_string()))?;
    let grants = changes
        .grants
        .map(|g| GrantDelta::from_wire(changes.version, g))
        .transpose()
        .map_err(SnapshotError::from)?;
    let mut names = AccountNames::default();
    let upserts = changes
        .upserts
        .into_iter()
        .enumerate()
        .map(|(i, e)| e.into_info(i, &mut names))
        .collect::<Result<Vec<_>, _>>()?;
    let deletes = changes
        .deletes
        .iter()
        .map(|hex| Digest::from_hex(hex))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| FeedError::Body("a delete is not a 64-hex-char digest".into()))?;
    let delta = Delta {
        version: changes.version,
        upserts,
        deletes,
    };
    Ok(ParsedChanges {
        delta,
        grants,
        volumes: changes.volumes,
        filters: changes.filters,
    })
}

/// The follower's timing knobs, from `[tokens]`.
#[derive(Debug, Clone)]
pub struct FollowSettings {
    pub poll_wait: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    pub persist_interval: Duration,
}

impl FollowSettings {
    pub fn from_config(c: &TokensConfig) -> FollowSettings {
        FollowSettings {
            poll_wait: c.poll_wait_secs,
            backoff_initial: c.backoff_initial_secs,
            backoff_max: c.backoff_max_secs,
            persist_interval: c.persist_interval_secs,
        }
    }
}

/// What one step of the follower achieved.
enum Step {
    /// A new table, new grants or both are serving, at this feed version.
    Installed(u64),
    /// Nothing to apply; the control plane's version is this (moved only if it bumped
    /// its version without a change we follow: no reason to copy anything for that).
    Unchanged(u64),
}

/// What the persister writes: the serving table, grants and accounts' rules, together.
#[derive(Clone)]
struct Serving {
    table: Arc<TokenTable>,
    grants: Arc<ReadGrants>,
    rules: Arc<persist::Rules>,
}

/// The follower: keeps `tokens` in step with the control plane until shutdown.
pub struct FeedSource {
    client: FeedClient,
    tokens: Arc<Tokens>,
    /// Takes the accounts' volume policies the feed carries.
    gate: Arc<Gate>,
    /// Takes the accounts' drop filters the feed carries.
    filters: Arc<HeldFilters>,
    metrics: SourceMetrics,
    state_dir: PathBuf,
    settings: FollowSettings,
}

impl FeedSource {
    pub fn new(
        client: FeedClient,
        tokens: Arc<Tokens>,
        gate: Arc<Gate>,
        filters: Arc<HeldFilters>,
        metrics: SourceMetrics,
        state_dir: PathBuf,
        settings: FollowSettings,
    ) -> FeedSource {
        FeedSource {
            client,
            tokens,
            gate,
            filters,
            metrics,
            state_dir,
            settings,
        }
    }

    /// Boot: serve the persisted snapshot at once if there is one (fail-static). The
    /// control plane is not waited for: `run` fetches its snapshot in the background, and
    /// a gateway with nothing persisted stays not-ready (503, retry) until it arrives.
    pub async fn boot(&self) {
        let state_dir = self.state_dir.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            let modified = std::fs::metadata(persist::path_in(&state_dir))
                .and_then(|m| m.modified())
                .ok();
            persist::load(&state_dir).map(|t| t.map(|t| (t, modified)))
        })
        .await;
        match loaded {
            Ok(Ok(Some((persisted, modified)))) => {
                let persist::Persisted {
                    table,
                    grants,
                    rules,
                } = persisted;
                tracing::info!(
                    version = table.version,
                    tokens = table.len(),
                    api_tokens = grants.as_ref().map(ReadGrants::api_token_count),
                    shared_tokens = grants.as_ref().map(ReadGrants::shared_token_count),
                    "serving persisted token snapshot until the control plane answers"
                );
                self.tokens
                    .install_as_of(Arc::new(table), modified.unwrap_or(SystemTime::UNIX_EPOCH));
                if let Some(grants) = grants {
                    self.tokens.install_grants(Arc::new(grants));
                }
                if let Some(rules) = rules {
                    self.gate.set_policies(rules.volumes);
                    self.filters.set(rules.filters.logs, rules.filters.metrics);
                }
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "persisted token snapshot ignored"),
            Err(e) => tracing::error!(error = %e, "loading persisted snapshot panicked"),
        }
    }

    /// Follows the feed until `shutdown`, then persists the last table once more.
    pub async fn run(self, shutdown: CancellationToken) {
        let (persist_tx, persist_rx) = watch::channel(None);
        let persister = tokio::spawn(persist_loop(
            self.state_dir.clone(),
            self.settings.persist_interval,
            persist_rx,
            shutdown.clone(),
        ));
        let mut backoff = Backoff::new(self.settings.backoff_initial, self.settings.backoff_max);
        // Always start from a full snapshot: a persisted version may come from a control
        // plane whose database was reset since, which a `since` could not reveal.
        let mut need_snapshot = true;
        // The feed version we are at; `poll_changes` asks for what came after it.
        let mut since = 0;
        loop {
            let step = async {
                if need_snapshot {
                    self.fetch_snapshot().await
                } else {
                    self.poll_changes(since).await
                }
            };
            let outcome = tokio::select! {
                _ = shutdown.cancelled() => break,
                outcome = step => outcome,
            };
            match outcome {
                Ok(step) => {
                    if backoff.failures() > 0 {
                        tracing::info!("control plane feed reachable again");
                    }
                    backoff.reset();
                    need_snapshot = false;
                    match step {
                        Step::Installed(version) => {
                            since = version;
                            persist_tx.send_replace(self.serving());
                        }
                        Step::Unchanged(version) => since = version,
                    }
                }
                Err(FeedError::Gone) => {
                    tracing::info!(
                        version = self.tokens.current().map(|t| t.version),
                        "change feed answered 410: refetching the snapshot"
                    );
                    need_snapshot = true;
                }
                Err(e) => {
                    // A delta we cannot read or apply: start over from a snapshot.
                    if matches!(e, FeedError::Body(_) | FeedError::Snapshot(_)) {
                        need_snapshot = true;
                    }
                    let delay = backoff.next_delay();
                    self.metrics.feed_failed(&e, backoff.failures(), delay);
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
        // The sender lives until the persister has seen the shutdown and saved what is
        // pending (a closed channel would hide whether something is).
        if let Err(e) = persister.await {
            tracing::error!(error = %e, "token snapshot persister panicked");
        }
        drop(persist_tx);
    }

    /// What is serving now, for the persister.
    fn serving(&self) -> Option<Serving> {
        let (logs, metrics) = self.filters.all();
        Some(Serving {
            table: self.tokens.current()?,
            grants: self.tokens.grants(),
            rules: Arc::new(persist::Rules {
                volumes: self.gate.policies(),
                filters: DropFilters { logs, metrics },
            }),
        })
    }

    async fn fetch_snapshot(&self) -> Result<Step, FeedError> {
        let body = self.client.snapshot().await?;
        let (table, grants, (volumes, filters)) = tokio::task::spawn_blocking(move || {
            let mut snapshot = Snapshot::parse(&body)?;
            let volumes = snapshot.volumes.take();
            let filters = snapshot.filters.take();
            snapshot
                .into_state()
                .map(|(table, grants)| (table, grants, (volumes, filters)))
        })
        .await
        .map_err(|e| FeedError::Body(format!("snapshot build panicked: {e}")))??;
        // A control plane from before volume policies or drop filters sends none:
        // nothing is limited or dropped.
        self.gate.set_policies(volumes.unwrap_or_default());
        let filters = filters.unwrap_or_default();
        self.filters.set(filters.logs, filters.metrics);
        let table = Arc::new(table);
        // A control plane from before read grants sends none: it grants no reads.
        let grants = grants.unwrap_or_else(|| ReadGrants::empty(table.version));
        self.metrics.snapshot_loaded(
            table.version,
            table.len(),
            grants.api_token_count(),
            grants.shared_token_count(),
        );
        let version = table.version;
        retire(self.tokens.install(table)).await;
        self.tokens.install_grants(Arc::new(grants));
        // Answers about digests may be superseded by the snapshot: forget them all.
        if let Some(misses) = self.tokens.misses() {
            misses.forget_all();
        }
        Ok(Step::Installed(version))
    }

    async fn poll_changes(&self, since: u64) -> Result<Step, FeedError> {
        let current = self
            .tokens
            .current()
            .expect("a snapshot is installed before changes are polled");
        let body = self.client.changes(since, self.settings.poll_wait).await?;
        let ParsedChanges {
            delta,
            grants,
            volumes,
            filters,
        } = tokio::task::spawn_blocking(move || parse_changes(&body))
            .await
            .map_err(|e| FeedError::Body(format!("delta parse panicked: {e}")))??;
        if delta.version < since {
            // The control plane went back in time without a 410: trust nothing we hold.
            return Err(FeedError::Gone);
        }
        let version = delta.version;
        let mut rules_changed = false;
        if let Some(volumes) = volumes.filter(|v| !v.is_empty()) {
            self.gate.apply(volumes);
            rules_changed = true;
        }
        if let Some(f) = filters.filter(|f| !f.is_empty()) {
            let (upserts, deletes) = (f.upserts, f.deletes);
            self.filters.apply(
                upserts.logs,
                &deletes.logs,
                upserts.metrics,
                &deletes.metrics,
            );
            rules_changed = true;
        }
        let grants_applied = match grants.filter(|g| !g.is_empty()) {
            Some(grants) => {
                self.apply_grants(grants).await?;
                true
            }
            None => false,
        };
        if delta.is_empty() {
            self.metrics.table.fresh(current.len(), version);
            // Changed grants or rules are persisted like a changed table.
            return Ok(if grants_applied || rules_changed {
                Step::Installed(version)
            } else {
                Step::Unchanged(version)
            });
        }
        let touched: Vec<Digest> = delta.digests().collect();
        let (upserts, deletes) = (delta.upserts.len(), delta.deletes.len());
        let table = tokio::task::spawn_blocking(move || current.with_delta(delta))
            .await
            .map_err(|e| FeedError::Body(format!("delta apply panicked: {e}")))?;
        let table = Arc::new(table);
        let version = table.version;
        self.metrics
            .delta_applied(table.version, upserts, deletes, table.len());
        retire(self.tokens.install(table)).await;
        // The table now answers for these digests; a cached miss answer must not outlive
        // a delete (propagation bound) or shadow nothing forever.
        if let Some(misses) = self.tokens.misses() {
            misses.forget(&touched).await;
        }
        Ok(Step::Installed(version))
    }

    /// Applies a grants delta to a copy of the serving grants (the collections it
    /// touches) and installs it, waking open tails.
    async fn apply_grants(&self, delta: GrantDelta) -> Result<(), FeedError> {
        let current = self.tokens.grants();
        let next = tokio::task::spawn_blocking(move || current.with_delta(delta))
            .await
            .map_err(|e| FeedError::Body(format!("grants delta apply panicked: {e}")))?;
        tracing::debug!(
            version = next.version,
            api_tokens = next.api_token_count(),
            shared_tokens = next.shared_token_count(),
            "read grants delta applied"
        );
        self.tokens.install_grants(Arc::new(next));
        Ok(())
    }
}

/// Frees a replaced table on a blocking thread: after a snapshot, or a delta touching
/// every shard, dropping 1,000,000 entries touches each one's reference count (tens of ms)
/// and must not stall a runtime worker. (A request still
/// holding the old table frees it itself if it is the last; that is rare and brief.)
async fn retire(table: Option<Arc<TokenTable>>) {
    if let Some(table) = table {
        let _ = tokio::task::spawn_blocking(move || drop(table)).await;
    }
}

/// Persists the newest table and grants sent on `tables`, at most once per `interval`,
/// and once more at shutdown if newer ones are pending.
async fn persist_loop(
    state_dir: PathBuf,
    interval: Duration,
    mut tables: watch::Receiver<Option<Serving>>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            biased;
            changed = tables.changed() => if changed.is_err() { break },
            _ = shutdown.cancelled() => break,
        }
        let table = tables.borrow_and_update().clone();
        save(&state_dir, table).await;
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.cancelled() => break,
        }
    }
    if tables.has_changed().unwrap_or(false) {
        let table = tables.borrow_and_update().clone();
        save(&state_dir, table).await;
    }
}

async fn save(state_dir: &std::path::Path, serving: Option<Serving>) {
    let Some(Serving {
        table,
        grants,
        rules,
    }) = serving
    else {
        return;
    };
    persist::save_in_background(state_dir.to_path_buf(), table, Some(grants), Some(rules)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_answers_are_validated_whole() {
        let digest = Digest::of("aaaaaaaaaaaaaaaaaaaaaaaa").to_hex();
        let good = format!(
            r#"{{"version": 4, "upserts": [{{"digest": "{digest}", "token_id": "17",
                "account_id": 1001, "account_name": "acme", "kind": "logs", "enabled": false}}],
                "deletes": ["{digest}"]}}"#
        );
        let ParsedChanges { delta, grants, .. } = parse_changes(good.as_bytes()).unwrap();
        assert!(grants.is_none(), "an answer without grants has none");
        assert_eq!(delta.version, 4);
        assert_eq!(delta.upserts.len(), 1);
        assert!(!delta.upserts[0].enabled);
        assert_eq!(delta.deletes, vec![Digest::from_hex(&digest).unwrap()]);

        let bad_delete = r#"{"version": 4, "upserts": [], "deletes": ["xyz"]}"#;
        assert!(parse_changes(bad_delete.as_bytes()).is_err());
        let bad_upsert = r#"{"version": 4, "upserts": [{"digest": "00", "token_id": "1",
            "account_id": 1, "kind": "logs"}], "deletes": []}"#;
        assert!(parse_changes(bad_upsert.as_bytes()).is_err());

        let with_grants = format!(
            r#"{{"version": 5, "upserts": [], "deletes": [], "grants": {{
                "upserts": {{"api_tokens": [{{"digest": "{digest}", "account_id": 7}}]}},
                "deletes": {{"accounts": [3], "shared_tokens": ["{digest}"]}}}}}}"#
        );
        let ParsedChanges { delta, grants, .. } = parse_changes(with_grants.as_bytes()).unwrap();
        assert!(delta.is_empty());
        let grants = grants.expect("grants");
        assert_eq!(grants.version, 5);
        assert!(!grants.is_empty());
        let bad_grant = r#"{"version": 5, "upserts": [], "deletes": [],
            "grants": {"deletes": {"api_tokens": ["xyz"]}}}"#;
        assert!(matches!(
            parse_changes(bad_grant.as_bytes()),
            Err(FeedError::Snapshot(_))
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn persisting_is_debounced_and_flushed_at_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = watch::channel(None);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(persist_loop(
            dir.path().to_path_buf(),
            Duration::from_secs(10),
            rx,
            shutdown.clone(),
        ));
        let table = |v| {
            Some(Serving {
                table: Arc::new(TokenTable::with_capacity(v, 0)),
                grants: Arc::new(ReadGrants::default()),
                rules: Arc::new(persist::Rules::default()),
            })
        };
        let persisted = || persist::load(dir.path()).unwrap().map(|t| t.table.version);
        tx.send_replace(table(1));
        // The first table is written at once…
        while persisted() != Some(1) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // …later ones wait out the interval, and only the newest is written.
        tx.send_replace(table(2));
        tx.send_replace(table(3));
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(persisted(), Some(1));
        while persisted() != Some(3) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // A change pending at shutdown is written before the task ends.
        tx.send_replace(table(4));
        shutdown.cancel();
        task.await.unwrap();
        assert_eq!(persisted(), Some(4));
    }
}
