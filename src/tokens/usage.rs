//! Usage counting for the control plane (`control_plane` source): each accepted request
//! records its token's last use (epoch seconds) and its account's bytes and records per
//! kind, and each tail opened with a shared token that token's last use (epoch ms);
//! `run_flusher` sends them to `POST /v1/feed/usage` every
//! `tokens.usage_flush_interval_secs` and once at shutdown.
//!
//! The request path touches one `DashMap` shard per map (sharded locks, never one lock
//! shared by all requests) and atomics: a read lock and a `fetch_max`/`fetch_add` when the
//! token or account was seen since the last flush, a shard write lock only the first time.
//! A flush takes the counts out; a failed flush puts them back, so nothing is lost to a
//! control-plane outage (the maps stay bounded by the tokens and accounts in use).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dashmap::DashMap;
use tokio_util::sync::CancellationToken;

use super::TokenInfo;
use super::client::FeedClient;
use super::wire::{AccountVolume, SharedTokenUse, TokenUse, UsageReport};
use crate::filters::held::HeldFilters;
use crate::model::{AccountId, Kind, TokenId};
use crate::telemetry::UsageMetrics;
use crate::volume::gate::Gate;

/// Bytes and records accepted for one account and kind since the last flush.
#[derive(Default)]
struct Volume {
    bytes: AtomicU64,
    records: AtomicU64,
}

#[derive(Default)]
pub struct Usage {
    /// Token id → last use, epoch seconds.
    tokens: DashMap<TokenId, AtomicU64>,
    accounts: DashMap<(AccountId, Kind), Volume>,
    /// Shared token id → last use, epoch milliseconds.
    shared: DashMap<u64, AtomicU64>,
}

impl Usage {
    pub fn new() -> Usage {
        Usage::default()
    }

    /// Counts one accepted request of `info`'s token.
    pub fn record(&self, info: &TokenInfo, bytes: u64, records: u64) {
        self.record_at(info, bytes, records, epoch_secs(SystemTime::now()));
    }

    fn record_at(&self, info: &TokenInfo, bytes: u64, records: u64, now: u64) {
        match self.tokens.get(&info.token_id) {
            Some(last) => {
                // Most requests land in a second already recorded: no write at all.
                if last.load(Ordering::Relaxed) < now {
                    last.fetch_max(now, Ordering::Relaxed);
                }
            }
            None => {
                self.tokens
                    .entry(info.token_id.clone())
                    .or_default()
                    .fetch_max(now, Ordering::Relaxed);
            }
        }
        let key = (info.account_id, info.kind);
        let add = |v: &Volume| {
            v.bytes.fetch_add(bytes, Ordering::Relaxed);
            v.records.fetch_add(records, Ordering::Relaxed);
        };
        match self.accounts.get(&key) {
            Some(v) => add(&v),
            None => add(&self.accounts.entry(key).or_default()),
        }
    }

    /// Counts a use of a shared token (a tail, not the ingest path).
    pub fn record_shared(&self, token_id: u64) {
        self.record_shared_at(token_id, epoch_ms(SystemTime::now()));
    }

    fn record_shared_at(&self, token_id: u64, now_ms: u64) {
        self.shared
            .entry(token_id)
            .or_default()
            .fetch_max(now_ms, Ordering::Relaxed);
    }

    /// Takes everything counted so far (counts restart from zero).
    pub fn take(&self) -> UsageReport {
        let mut report = UsageReport::default();
        let seen: Vec<(TokenId, u64)> = self
            .tokens
            .iter()
            .map(|e| (e.key().clone(), e.value().load(Ordering::Relaxed)))
            .collect();
        for (token_id, last_used) in seen {
            // A use recorded after the read above stays for the next flush.
            self.tokens
                .remove_if(&token_id, |_, v| v.load(Ordering::Relaxed) == last_used);
            report.tokens.push(TokenUse {
                token_id,
                last_used,
            });
        }
        for entry in self.accounts.iter() {
            let bytes = entry.bytes.swap(0, Ordering::Relaxed);
            let records = entry.records.swap(0, Ordering::Relaxed);
            if bytes > 0 || records > 0 {
                let (account_id, kind) = *entry.key();
                report.accounts.push(AccountVolume {
                    account_id,
                    kind,
                    bytes,
                    records,
                });
            }
        }
        let shared: Vec<(u64, u64)> = self
            .shared
            .iter()
            .map(|e| (*e.key(), e.value().load(Ordering::Relaxed)))
            .collect();
        for (token_id, last_used_ms) in shared {
            self.shared
                .remove_if(&token_id, |_, v| v.load(Ordering::Relaxed) == last_used_ms);
            report.shared_tokens.push(SharedTokenUse {
                token_id,
                last_used_ms,
            });
        }
        // Accounts idle since the last flush are dropped so the map stays small.
        self.accounts.retain(|_, v| {
            v.bytes.load(Ordering::Relaxed) > 0 || v.records.load(Ordering::Relaxed) > 0
        });
        report
    }

    /// Puts back what a failed flush took.
    pub fn restore(&self, report: UsageReport) {
        for t in report.tokens {
            self.tokens
                .entry(t.token_id)
                .or_default()
                .fetch_max(t.last_used, Ordering::Relaxed);
        }
        for a in report.accounts {
            let v = self.accounts.entry((a.account_id, a.kind)).or_default();
            v.bytes.fetch_add(a.bytes, Ordering::Relaxed);
            v.records.fetch_add(a.records, Ordering::Relaxed);
        }
        for s in report.shared_tokens {
            self.record_shared_at(s.token_id, s.last_used_ms);
        }
    }
}

fn epoch_secs(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn epoch_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Sends the counts every `interval` until `shutdown`, then once more.
pub async fn run_flusher(
    usage: Arc<Usage>,
    gate: Arc<Gate>,
    filters: Arc<HeldFilters>,
    client: FeedClient,
    interval: Duration,
    metrics: UsageMetrics,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate; nothing is counted yet
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
            // An account just capped: the control plane shows it within a second or so.
            _ = gate.capped_changed() => {}
        }
        flush(&usage, &gate, &filters, &client, &metrics).await;
    }
    flush(&usage, &gate, &filters, &client, &metrics).await;
}

/// One flush, with the accounts held capped today and what the drop filters dropped; on
/// failure the counts go back for the next one.
pub async fn flush(
    usage: &Usage,
    gate: &Gate,
    filters: &HeldFilters,
    client: &FeedClient,
    metrics: &UsageMetrics,
) {
    let mut report = usage.take();
    report.capped = gate.capped();
    report.dropped = filters.take_dropped();
    if report.is_empty() {
        return;
    }
    let body = serde_json::to_vec(&report).expect("a usage report always serializes");
    match client.post_usage(body).await {
        Ok(()) => metrics.usage_sent(
            report.tokens.len(),
            report.accounts.len(),
            report.shared_tokens.len(),
        ),
        Err(e) => {
            metrics.usage_not_sent(&e);
            filters.restore_dropped(std::mem::take(&mut report.dropped));
            usage.restore(report);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(token_id: &str, account: u64, kind: Kind) -> TokenInfo {
        TokenInfo {
            digest: crate::tokens::Digest::of(token_id),
            token_id: TokenId(token_id.into()),
            account_id: AccountId(account),
            account_name: Arc::new("acme".to_string()),
            kind,
            enabled: true,
        }
    }

    #[test]
    fn counts_last_use_and_volume_and_a_failed_flush_keeps_them() {
        let usage = Usage::new();
        let logs = info("17", 1001, Kind::Logs);
        let metrics = info("18", 1001, Kind::Metrics);
        usage.record_at(&logs, 100, 2, 1_000);
        usage.record_at(&logs, 50, 1, 1_005);
        usage.record_at(&logs, 1, 1, 1_003); // out of order: last use only moves forward
        usage.record_at(&metrics, 7, 7, 1_001);

        let mut report = usage.take();
        report
            .tokens
            .sort_by(|a, b| a.token_id.0.cmp(&b.token_id.0));
        report.accounts.sort_by_key(|a| a.kind.index());
        assert_eq!(
            serde_json::to_value(&report).unwrap(),
            serde_json::json!({
                "tokens": [{"token_id": "17", "last_used": 1005},
                           {"token_id": "18", "last_used": 1001}],
                "accounts": [
                    {"account_id": 1001, "kind": "logs", "bytes": 151, "records": 4},
                    {"account_id": 1001, "kind": "metrics", "bytes": 7, "records": 7}]
            })
        );
        assert!(usage.take().is_empty(), "taken counts restart from zero");

        // The flush failed while more traffic came in: both are in the next report.
        usage.record_at(&logs, 10, 1, 1_010);
        usage.restore(report);
        let mut again = usage.take();
        again.tokens.sort_by(|a, b| a.token_id.0.cmp(&b.token_id.0));
        again.accounts.sort_by_key(|a| a.kind.index());
        assert_eq!(again.tokens[0].last_used, 1_010);
        assert_eq!(again.tokens[1].last_used, 1_001);
        assert_eq!(
            (again.accounts[0].bytes, again.accounts[0].records),
            (161, 5)
        );
        assert_eq!((again.accounts[1].bytes, again.accounts[1].records), (7, 7));
    }

    #[test]
    fn shared_token_uses_report_the_latest_and_survive_a_failed_flush() {
        let usage = Usage::new();
        usage.record_shared_at(17, 5_000);
        usage.record_shared_at(17, 4_000); // out of order: only forward
        usage.record_shared_at(18, 6_000);
        let mut report = usage.take();
        report.shared_tokens.sort_by_key(|s| s.token_id);
        assert_eq!(
            serde_json::to_value(&report).unwrap(),
            serde_json::json!({
                "tokens": [], "accounts": [],
                "shared_tokens": [{"token_id": 17, "last_used_ms": 5000},
                                  {"token_id": 18, "last_used_ms": 6000}]
            })
        );
        assert!(usage.take().is_empty());
        usage.restore(report);
        assert_eq!(usage.take().shared_tokens.len(), 2);
        // Without shared uses the field is left out: older control planes refuse it.
        let text = serde_json::to_string(&UsageReport::default()).unwrap();
        assert!(!text.contains("shared_tokens"), "{text}");
    }
}
