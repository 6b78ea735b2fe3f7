//! The token table's metrics and events: refused tokens, the serving table, its sources
//! (the file watcher and the feed follower), the miss cache and the usage reports.

use std::fmt::Display;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus::{IntCounter, IntGauge, Registry};

use super::{counter_vec, gauge};
use crate::model::AuthFailure;

/// Where the events below happen, as `tracing` targets.
const TELEMETRY: &str = "tollgate::telemetry";
const FEED: &str = "tollgate::tokens::feed";
const FILE: &str = "tollgate::tokens::file";
const MISS: &str = "tollgate::tokens::miss";
const USAGE: &str = "tollgate::tokens::usage";

/// The serving token table's gauges. The age gauge is computed when `/metrics` is
/// rendered, from the last confirmation stored here.
#[derive(Clone)]
pub struct TableMetrics {
    size: IntGauge,
    version: IntGauge,
    age: IntGauge,
    /// When the serving table was last confirmed current (epoch ms), for the age gauge.
    fresh_at_ms: Arc<AtomicU64>,
}

impl TableMetrics {
    pub(super) fn register(registry: &Registry) -> TableMetrics {
        TableMetrics {
            size: gauge(
                registry,
                "tollgate_token_table_size",
                "Tokens in the serving table (enabled and disabled).",
            ),
            version: gauge(
                registry,
                "tollgate_token_table_version",
                "Version of the serving token snapshot.",
            ),
            age: gauge(
                registry,
                "tollgate_token_table_age_seconds",
                "Seconds since the serving table was last confirmed current by its source.",
            ),
            fresh_at_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Records that a token table was just built or confirmed current by its source.
    pub fn fresh(&self, size: usize, version: u64) {
        self.confirmed(size, version, SystemTime::now());
    }

    /// Records the serving table and when its source last confirmed it current: now for
    /// a fresh load or an answered poll, the file's time for a persisted snapshot.
    pub fn confirmed(&self, size: usize, version: u64, at: SystemTime) {
        self.size.set(i64::try_from(size).unwrap_or(i64::MAX));
        self.version.set(i64::try_from(version).unwrap_or(i64::MAX));
        self.fresh_at_ms
            .store(epoch_ms(at).max(1), Ordering::Relaxed);
    }

    /// Sets the age gauge from the last confirmation (nothing before the first one).
    pub(super) fn update_age(&self) {
        let fresh = self.fresh_at_ms.load(Ordering::Relaxed);
        if fresh > 0 {
            let age_s = epoch_ms(SystemTime::now()).saturating_sub(fresh) / 1000;
            self.age.set(i64::try_from(age_s).unwrap_or(i64::MAX));
        }
    }
}

fn epoch_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// What the token table writes: refused tokens and the table it serves.
#[derive(Clone)]
pub struct TokenMetrics {
    auth_failures: Vec<IntCounter>,
    pub table: TableMetrics,
}

impl TokenMetrics {
    pub(super) fn register(registry: &Registry, table: TableMetrics) -> TokenMetrics {
        let auth = counter_vec(
            registry,
            "tollgate_auth_failures_total",
            "Refused shipping tokens, by reason.",
            &["reason"],
        );
        TokenMetrics {
            auth_failures: AuthFailure::ALL
                .iter()
                .map(|r| auth.with_label_values(&[r.as_str()]))
                .collect(),
            table,
        }
    }

    /// Counts a refused token. Logged at debug without the token, which the caller never passes.
    pub fn auth_failed(&self, reason: AuthFailure) {
        self.auth_failures[reason as usize].inc();
        tracing::debug!(target: TELEMETRY, reason = reason.as_str(), "token refused");
    }
}

/// What a token source (the file watcher, the feed follower) writes:
/// `tollgate_token_reloads_total{result}` and the table's freshness.
#[derive(Clone)]
pub struct SourceMetrics {
    reloads_ok: IntCounter,
    /// A failed reload keeps the previous table serving.
    reloads_error: IntCounter,
    pub table: TableMetrics,
}

impl SourceMetrics {
    pub(super) fn register(registry: &Registry, table: TableMetrics) -> SourceMetrics {
        let reloads = counter_vec(
            registry,
            "tollgate_token_reloads_total",
            "Token table reloads; an error keeps the previous table serving.",
            &["result"],
        );
        SourceMetrics {
            reloads_ok: reloads.with_label_values(&["ok"]),
            reloads_error: reloads.with_label_values(&["error"]),
            table,
        }
    }

    /// The feed follower built a table from the control plane's snapshot.
    pub fn snapshot_loaded(
        &self,
        version: u64,
        tokens: usize,
        api_tokens: usize,
        shared_tokens: usize,
    ) {
        tracing::info!(
            target: FEED,
            version,
            tokens,
            api_tokens,
            shared_tokens,
            "token snapshot loaded from the control plane"
        );
        self.reloads_ok.inc();
    }

    /// The feed follower applied a change to a copy of the table.
    pub fn delta_applied(&self, version: u64, upserts: usize, deletes: usize, tokens: usize) {
        tracing::debug!(
            target: FEED,
            version,
            upserts,
            deletes,
            tokens,
            "token delta applied"
        );
        self.reloads_ok.inc();
    }

    /// A feed call failed; the follower tries again in `retry_in`.
    pub fn feed_failed(&self, error: &dyn Display, failures: u32, retry_in: Duration) {
        self.reloads_error.inc();
        tracing::warn!(
            target: FEED,
            error = %error,
            failures,
            retry_in_ms = u64::try_from(retry_in.as_millis()).unwrap_or(u64::MAX),
            "control plane feed failed; the current token table keeps serving"
        );
    }

    /// The file watcher built a table from the token file.
    pub fn file_loaded(&self, version: u64, tokens: usize, path: &Path) {
        tracing::info!(
            target: FILE,
            version,
            tokens,
            path = %path.display(),
            "token table loaded"
        );
        self.reloads_ok.inc();
    }

    /// The token file could not be read or parsed.
    pub fn file_not_loaded(&self, path: &Path, error: &str) {
        self.reloads_error.inc();
        tracing::warn!(
            target: FILE,
            path = %path.display(),
            error,
            "token file not loaded; the previous table keeps serving"
        );
    }
}

/// The miss cache's outcomes: `tollgate_token_miss_lookups_total{result}`.
#[derive(Clone)]
pub struct MissMetrics {
    found: IntCounter,
    unknown: IntCounter,
    error: IntCounter,
    limited: IntCounter,
}

impl MissMetrics {
    pub(super) fn register(registry: &Registry) -> MissMetrics {
        let lookups = counter_vec(
            registry,
            "tollgate_token_miss_lookups_total",
            "Unknown tokens looked up at the control plane, by result \
             (found, unknown, error, limited = refused without asking).",
            &["result"],
        );
        MissMetrics {
            found: lookups.with_label_values(&["found"]),
            unknown: lookups.with_label_values(&["unknown"]),
            error: lookups.with_label_values(&["error"]),
            limited: lookups.with_label_values(&["limited"]),
        }
    }

    /// The control plane knows the digest.
    pub fn found(&self) {
        self.found.inc();
    }

    /// The control plane answered 404.
    pub fn unknown(&self) {
        self.unknown.inc();
    }

    /// Over `tokens.miss_lookups_per_sec`: refused without asking.
    pub fn limited(&self) {
        self.limited.inc();
    }

    /// The control plane could not be asked or answered something else; not cached.
    pub fn lookup_failed(&self, error: &dyn Display) {
        self.error.inc();
        tracing::warn!(target: MISS, error = %error, "miss lookup at the control plane failed");
    }

    /// The control plane answered with an entry that is not valid for the digest asked
    /// about; not cached. Logged where the request gives up (`unknown token not resolved`).
    pub fn answer_unusable(&self) {
        self.error.inc();
    }
}

#[cfg(test)]
impl MissMetrics {
    pub fn unknown_total(&self) -> u64 {
        self.unknown.get()
    }

    pub fn limited_total(&self) -> u64 {
        self.limited.get()
    }
}

/// Usage reports sent to the control plane: `tollgate_usage_flushes_total{result}`.
#[derive(Clone)]
pub struct UsageMetrics {
    flushed: IntCounter,
    failed: IntCounter,
}

impl UsageMetrics {
    pub(super) fn register(registry: &Registry) -> UsageMetrics {
        let flushes = counter_vec(
            registry,
            "tollgate_usage_flushes_total",
            "Usage reports (last use, volume) sent to the control plane, by result.",
            &["result"],
        );
        UsageMetrics {
            flushed: flushes.with_label_values(&["ok"]),
            failed: flushes.with_label_values(&["error"]),
        }
    }

    /// The control plane took a report of this many tokens, accounts and shared tokens.
    pub fn usage_sent(&self, tokens: usize, accounts: usize, shared_tokens: usize) {
        self.flushed.inc();
        tracing::debug!(
            target: USAGE,
            tokens,
            accounts,
            shared_tokens,
            "usage sent to the control plane"
        );
    }

    /// A report failed; its counts are kept for the next one.
    pub fn usage_not_sent(&self, error: &dyn Display) {
        self.failed.inc();
        tracing::warn!(target: USAGE, error = %error, "usage not sent; kept for the next flush");
    }
}
