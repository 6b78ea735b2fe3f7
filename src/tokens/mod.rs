//! The token table (DESIGN §2): an immutable map `digest -> Arc<TokenInfo>` published
//! through `ArcSwap`. `authenticate` does a syntax check, one SHA-256, one atomic load and
//! one hash lookup — no lock, no await — for every token the table knows. Only a digest
//! the table does not know may go further: with the `control_plane` source it is looked up
//! through the miss cache (`miss.rs`), the one branch that awaits. Sources build whole new
//! tables (or apply a delta to a copy) off the request path and swap them in with `install`.
//!
//! Beside the table, `Tokens` publishes the read grants (`grants.rs`) the same way: one
//! immutable `ReadGrants` behind `ArcSwap`, replaced whole by the `control_plane` source,
//! with a `watch` channel that tells open tails to re-check.
//!
//! The sources: `file.rs` watches a local snapshot; with the control plane, `feed.rs`
//! follows its feed, `miss.rs` asks it about digests the table lacks and `usage.rs`
//! reports last uses and volumes to it, each through the one feed client in `client.rs`.
//! `persist.rs` keeps the last table on disk for a fail-static boot.

pub mod client;
pub mod digest;
pub mod feed;
pub mod file;
pub mod grants;
pub mod miss;
pub mod persist;
pub mod snapshot;
pub mod usage;
pub mod wire;

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::{ArcSwap, ArcSwapOption};
use tokio::sync::watch;

use crate::model::{AccountId, AuthFailure, Kind, TokenId};
use crate::telemetry::TokenMetrics;
use digest::BuildDigestHasher;
pub use digest::Digest;
use grants::ReadGrants;
use miss::MissCache;
use usage::Usage;

/// What the gateway knows about one token. The token itself is not here.
///
/// Sized for DESIGN's 1,000,000-token tables (≤ 150 B per token): the table holds one
/// pointer per token and finds the key through it (`Slot`), names are shared per account
/// and held through a thin pointer. `benches/token_table.rs` measures it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// The table's key, stored once, here.
    pub digest: Digest,
    pub token_id: TokenId,
    pub account_id: AccountId,
    /// One allocation per account, shared by all its tokens; `Arc<String>` rather than
    /// `Arc<str>` because a thin pointer saves 8 bytes in every `TokenInfo`.
    pub account_name: Arc<String>,
    pub kind: Kind,
    /// Disabled tokens stay in the table: "disabled" and "unknown" get different answers
    /// (a message naming the reason on the logs route, 403 vs 401 on OTLP).
    pub enabled: bool,
}

/// A table entry: the `Arc<TokenInfo>` alone (8 bytes a bucket instead of 40 with the
/// digest as a separate key), hashed and compared by the digest inside it, and found by a
/// `&Digest` through `Borrow`. At 1,000,000 tokens the map has 2^21 buckets, so this is
/// the difference between ~19 and ~86 bytes per token.
#[derive(Debug, Clone)]
struct Slot(Arc<TokenInfo>);

impl Hash for Slot {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.digest.hash(state);
    }
}

impl PartialEq for Slot {
    fn eq(&self, other: &Slot) -> bool {
        self.0.digest == other.0.digest
    }
}

impl Eq for Slot {}

/// Consistent with `Hash` and `Eq` above: both use the digest alone.
impl Borrow<Digest> for Slot {
    fn borrow(&self) -> &Digest {
        &self.0.digest
    }
}

/// One shard of a table: a set of slots keyed by digest.
type Shard = HashSet<Slot, BuildDigestHasher>;

/// Shards per table. A delta copies only the shards it touches, so a change to one token
/// copies ~1/256 of the table (~4,000 entries at 1,000,000 tokens) instead of all of it.
const SHARDS: usize = 256;

/// The shard of a digest: its last byte. The hasher uses the first eight bytes, so the
/// bucket index inside a shard stays uniformly spread.
fn shard_of(digest: &Digest) -> usize {
    usize::from(digest.0[31])
}

/// One immutable generation of the token table: copy-on-write shards, each shared with
/// the generations before and after it until a delta touches it.
#[derive(Debug)]
pub struct TokenTable {
    pub version: u64,
    shards: Box<[Arc<Shard>]>,
}

impl Default for TokenTable {
    fn default() -> Self {
        TokenTable::with_capacity(0, 0)
    }
}

impl TokenTable {
    /// An empty table with room for `capacity` tokens.
    pub fn with_capacity(version: u64, capacity: usize) -> Self {
        let per_shard = capacity.div_ceil(SHARDS);
        TokenTable {
            version,
            shards: (0..SHARDS)
                .map(|_| {
                    Arc::new(Shard::with_capacity_and_hasher(
                        per_shard,
                        Default::default(),
                    ))
                })
                .collect(),
        }
    }

    /// The shard of `digest`, for changing: copied first if another table shares it.
    fn shard_mut(&mut self, digest: &Digest) -> &mut Shard {
        Arc::make_mut(&mut self.shards[shard_of(digest)])
    }

    /// Adds a token; `false` (and no change) if its digest is already in the table.
    pub fn insert(&mut self, info: TokenInfo) -> bool {
        let shard = self.shard_mut(&info.digest);
        if shard.contains(&info.digest) {
            return false;
        }
        shard.insert(Slot(Arc::new(info)))
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|shard| shard.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(|shard| shard.is_empty())
    }

    pub fn get(&self, digest: &Digest) -> Option<&Arc<TokenInfo>> {
        self.shards[shard_of(digest)]
            .get(digest)
            .map(|slot| &slot.0)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<TokenInfo>> {
        self.shards
            .iter()
            .flat_map(|shard| shard.iter().map(|slot| &slot.0))
    }

    /// A new table: this one with `delta` applied (deletes first, then upserts, each
    /// upsert replacing the entry of the same digest). Shards the delta does not touch are
    /// shared with this table; touched ones are copied (their unchanged entries share
    /// their `Arc<TokenInfo>`). Cost grows with the shards touched, up to a copy of the
    /// whole map (tens of ms at 1,000,000 tokens) for a delta touching them all: call it
    /// off the request path.
    pub fn with_delta(&self, delta: Delta) -> TokenTable {
        let mut table = TokenTable {
            version: delta.version,
            shards: self.shards.clone(),
        };
        for digest in &delta.deletes {
            table.shard_mut(digest).remove(digest);
        }
        for info in delta.upserts {
            let digest = info.digest;
            table.shard_mut(&digest).replace(Slot(Arc::new(info)));
        }
        table
    }
}

/// What changed between two versions of the control plane's table (already validated).
#[derive(Debug, Default)]
pub struct Delta {
    pub version: u64,
    pub upserts: Vec<TokenInfo>,
    pub deletes: Vec<Digest>,
}

impl Delta {
    /// Every digest the delta touches (for forgetting miss-cache answers about them).
    pub fn digests(&self) -> impl Iterator<Item = Digest> + '_ {
        self.deletes
            .iter()
            .copied()
            .chain(self.upserts.iter().map(|info| info.digest))
    }

    pub fn is_empty(&self) -> bool {
        self.upserts.is_empty() && self.deletes.is_empty()
    }
}

/// Why a presented token was refused. `Display` never contains the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("token is missing")]
    Missing,
    #[error("token is not valid")]
    Malformed,
    #[error("token is not valid")]
    Unknown,
    #[error("token is disabled")]
    Disabled,
    #[error("token is not a {expected} token")]
    WrongKind { expected: Kind },
    /// No table has been loaded yet: not the shipper's fault, so a 503 (retry), not a 401.
    #[error("token table is not loaded yet")]
    NotReady,
}

impl AuthError {
    /// The metric label, or `None` for `NotReady`, which is not a token failure.
    pub fn failure(self) -> Option<AuthFailure> {
        match self {
            AuthError::Missing => Some(AuthFailure::Missing),
            AuthError::Malformed => Some(AuthFailure::Malformed),
            AuthError::Unknown => Some(AuthFailure::Unknown),
            AuthError::Disabled => Some(AuthFailure::Disabled),
            AuthError::WrongKind { .. } => Some(AuthFailure::WrongKind),
            AuthError::NotReady => None,
        }
    }
}

/// The serving token table and the one way to consult it.
pub struct Tokens {
    current: ArcSwapOption<TokenTable>,
    metrics: TokenMetrics,
    /// `control_plane` source only: where an unknown digest is asked about.
    misses: Option<MissCache>,
    /// `control_plane` source only: per-token last use and per-account volume, flushed to
    /// the control plane by `usage::run_flusher`.
    usage: Option<Arc<Usage>>,
    /// The read grants; empty until the `control_plane` source installs some (the `file`
    /// source has none, so every read credential is unknown there).
    grants: ArcSwap<ReadGrants>,
    /// Counts the grants installed: a tail waits on it to re-check its credential.
    grants_installed: watch::Sender<u64>,
}

impl Tokens {
    /// A table with no miss lookups and no usage counting (the `file` source).
    pub fn new(metrics: TokenMetrics) -> Tokens {
        Tokens {
            current: ArcSwapOption::empty(),
            metrics,
            misses: None,
            usage: None,
            grants: ArcSwap::from_pointee(ReadGrants::default()),
            grants_installed: watch::Sender::new(0),
        }
    }

    /// A table backed by the control plane: unknown digests go to `misses`, and accepted
    /// traffic is counted in `usage`.
    pub fn with_control_plane(
        metrics: TokenMetrics,
        misses: MissCache,
        usage: Arc<Usage>,
    ) -> Tokens {
        Tokens {
            misses: Some(misses),
            usage: Some(usage),
            ..Tokens::new(metrics)
        }
    }

    /// Checks a presented token for `kind`: syntax, digest, lookup, enabled, kind.
    /// Failures are counted here, so every route counts them the same way.
    ///
    /// A token the table knows (enabled, disabled, wrong kind) is answered without
    /// awaiting: the returned future is ready on its first poll (`benches/tokens.rs`
    /// checks this). Only an unknown digest, with a miss cache configured, awaits.
    pub async fn authenticate(
        &self,
        token: Option<&str>,
        kind: Kind,
    ) -> Result<Arc<TokenInfo>, AuthError> {
        let result = match self.lookup(token) {
            Ok(Found::Known(info)) => check(info, kind),
            Ok(Found::Unknown(digest)) => match &self.misses {
                // Boxed: the miss path's future is large, and only misses should pay
                // for it (the hit path's future stays small and never awaits).
                Some(misses) => match Box::pin(misses.resolve(digest)).await {
                    Some(info) => check(info, kind),
                    None => Err(AuthError::Unknown),
                },
                None => Err(AuthError::Unknown),
            },
            Err(e) => Err(e),
        };
        if let Err(e) = &result
            && let Some(reason) = e.failure()
        {
            self.metrics.auth_failed(reason);
        }
        result
    }

    fn lookup(&self, token: Option<&str>) -> Result<Found, AuthError> {
        let token = token.filter(|t| !t.is_empty()).ok_or(AuthError::Missing)?;
        if !digest::is_well_formed(token) {
            return Err(AuthError::Malformed);
        }
        let digest = Digest::of(token);
        let guard = self.current.load();
        let table = guard.as_ref().ok_or(AuthError::NotReady)?;
        Ok(match table.get(&digest) {
            Some(info) => Found::Known(Arc::clone(info)),
            None => Found::Unknown(digest),
        })
    }

    /// Counts accepted traffic for the control plane's usage report (a no-op for the
    /// `file` source). Call it once per accepted request.
    pub fn record_usage(&self, info: &TokenInfo, bytes: u64, records: u64) {
        if let Some(usage) = &self.usage {
            usage.record(info, bytes, records);
        }
    }

    /// The miss cache, when the source has one (sources forget answers a delta supersedes).
    pub fn misses(&self) -> Option<&MissCache> {
        self.misses.as_ref()
    }

    /// Publishes a new table, just confirmed current by its source; readers see it on
    /// their next load.
    /// Returns the table it replaced: freeing a 1,000,000-token table touches every
    /// entry (~50 ms), which a source should do on a blocking thread.
    pub fn install(&self, table: Arc<TokenTable>) -> Option<Arc<TokenTable>> {
        self.install_as_of(table, SystemTime::now())
    }

    /// Publishes a table last confirmed current at `confirmed_at` (a persisted snapshot
    /// served at boot is as old as its file, and `tollgate_token_table_age_seconds` says so).
    pub fn install_as_of(
        &self,
        table: Arc<TokenTable>,
        confirmed_at: SystemTime,
    ) -> Option<Arc<TokenTable>> {
        self.metrics
            .table
            .confirmed(table.len(), table.version, confirmed_at);
        self.current.swap(Some(table))
    }

    /// The serving table, if any (for persisting and for `/readyz`).
    pub fn current(&self) -> Option<Arc<TokenTable>> {
        self.current.load_full()
    }

    pub fn is_loaded(&self) -> bool {
        self.current.load().is_some()
    }

    /// The serving read grants: one atomic load, no lock. An empty table before the
    /// first snapshot (and always with the `file` source).
    pub fn grants(&self) -> Arc<ReadGrants> {
        self.grants.load_full()
    }

    /// Changes whenever new grants are installed (the value counts installs): a tail
    /// re-checks its credential against `grants()` when it does.
    pub fn grants_changed(&self) -> watch::Receiver<u64> {
        self.grants_installed.subscribe()
    }

    /// Publishes new grants and wakes every `grants_changed` receiver. Returns the
    /// generation it replaced.
    pub fn install_grants(&self, grants: Arc<ReadGrants>) -> Arc<ReadGrants> {
        let old = self.grants.swap(grants);
        self.grants_installed
            .send_modify(|installs| *installs = installs.wrapping_add(1));
        old
    }

    /// Counts a use of shared token `token_id` (a tail opened or kept with it) for the
    /// usage report, which moves its `lastUsed` on the control plane. A no-op for the
    /// `file` source.
    pub fn record_shared_use(&self, token_id: u64) {
        if let Some(usage) = &self.usage {
            usage.record_shared(token_id);
        }
    }
}

/// What the table says about a well-formed token.
enum Found {
    Known(Arc<TokenInfo>),
    Unknown(Digest),
}

/// The verdict on a token whose entry was found (in the table or the miss cache).
fn check(info: Arc<TokenInfo>, kind: Kind) -> Result<Arc<TokenInfo>, AuthError> {
    if !info.enabled {
        return Err(AuthError::Disabled);
    }
    if info.kind != kind {
        return Err(AuthError::WrongKind { expected: kind });
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::Telemetry;

    fn info(token: &str, id: &str, account: u64, kind: Kind, enabled: bool) -> TokenInfo {
        TokenInfo {
            digest: Digest::of(token),
            token_id: TokenId(id.into()),
            account_id: AccountId(account),
            account_name: Arc::new("acme".to_string()),
            kind,
            enabled,
        }
    }

    fn table_with(token: &str, kind: Kind, enabled: bool) -> TokenTable {
        let mut table = TokenTable::with_capacity(1, 1);
        assert!(table.insert(info(token, "t-1", 7, kind, enabled)));
        assert!(!table.insert(info(token, "t-9", 7, kind, enabled)));
        table
    }

    #[tokio::test]
    async fn authenticate_tells_every_failure_apart() {
        let tokens = Tokens::new(Telemetry::new().tokens());
        let good = "aaaaaaaaaaaaaaaaaaaaaaaa";
        assert_eq!(
            tokens.authenticate(Some(good), Kind::Logs).await,
            Err(AuthError::NotReady)
        );
        tokens.install(Arc::new(table_with(good, Kind::Logs, true)));
        assert_eq!(
            tokens.authenticate(None, Kind::Logs).await,
            Err(AuthError::Missing)
        );
        assert_eq!(
            tokens.authenticate(Some(""), Kind::Logs).await,
            Err(AuthError::Missing)
        );
        assert_eq!(
            tokens.authenticate(Some("short"), Kind::Logs).await,
            Err(AuthError::Malformed)
        );
        assert_eq!(
            tokens
                .authenticate(Some("bbbbbbbbbbbbbbbbbbbbbbbb"), Kind::Logs)
                .await,
            Err(AuthError::Unknown)
        );
        assert_eq!(
            tokens.authenticate(Some(good), Kind::Traces).await,
            Err(AuthError::WrongKind {
                expected: Kind::Traces
            })
        );
        assert_eq!(
            tokens
                .authenticate(Some(good), Kind::Logs)
                .await
                .unwrap()
                .account_id,
            AccountId(7)
        );
        tokens.install(Arc::new(table_with(good, Kind::Logs, false)));
        assert_eq!(
            tokens.authenticate(Some(good), Kind::Logs).await,
            Err(AuthError::Disabled)
        );
    }

    #[test]
    fn grants_start_empty_and_each_install_wakes_receivers() {
        let tokens = Tokens::new(Telemetry::new().tokens());
        let secret = "sharedToken000000000000000000003";
        assert_eq!(
            tokens.grants().shared_token(secret, 0),
            Err(grants::GrantError::Unknown),
            "nothing is granted before the first snapshot"
        );
        let mut changed = tokens.grants_changed();
        assert!(!changed.has_changed().unwrap());
        let wire = wire::Grants {
            shared_tokens: vec![wire::GrantSharedToken {
                digest: Digest::of(secret).to_hex(),
                token_id: 3,
                account_id: AccountId(1),
                filters: vec![],
                operator: wire::FilterOp::And,
                expires_at_ms: None,
            }],
            ..wire::Grants::default()
        };
        tokens.install_grants(Arc::new(ReadGrants::from_wire(2, wire).unwrap()));
        assert!(changed.has_changed().unwrap());
        assert_eq!(*changed.borrow_and_update(), 1);
        assert_eq!(tokens.grants().shared_token(secret, 0).unwrap().token_id, 3);
        // The file source counts no usage: recording a use is a no-op there.
        tokens.record_shared_use(3);
    }

    #[test]
    fn a_delta_deletes_then_upserts_and_shares_untouched_entries() {
        let a = "aaaaaaaaaaaaaaaaaaaaaaaa";
        let b = "bbbbbbbbbbbbbbbbbbbbbbbb";
        let c = "cccccccccccccccccccccccc";
        let mut table = table_with(a, Kind::Logs, true);
        table.insert(info(b, "t-2", 7, Kind::Logs, true));
        let next = table.with_delta(Delta {
            version: 5,
            // `b` is deleted and re-added in one delta: the upsert wins.
            upserts: vec![
                info(b, "t-2", 8, Kind::Metrics, false),
                info(c, "t-3", 8, Kind::Metrics, true),
            ],
            deletes: vec![Digest::of(a), Digest::of(b)],
        });
        assert_eq!(next.version, 5);
        assert_eq!(next.len(), 2);
        assert!(next.get(&Digest::of(a)).is_none());
        assert!(!next.get(&Digest::of(b)).unwrap().enabled);
        assert_eq!(next.get(&Digest::of(c)).unwrap().kind, Kind::Metrics);
        // The old generation is untouched: readers holding it see a consistent table.
        assert_eq!(table.version, 1);
        assert!(table.get(&Digest::of(a)).is_some());
        assert!(table.get(&Digest::of(b)).unwrap().enabled);

        let untouched = table.with_delta(Delta {
            version: 6,
            upserts: vec![info(c, "t-3", 8, Kind::Metrics, true)],
            deletes: vec![],
        });
        assert!(Arc::ptr_eq(
            table.get(&Digest::of(a)).unwrap(),
            untouched.get(&Digest::of(a)).unwrap()
        ));
    }

    #[test]
    fn a_delta_copies_only_the_shards_it_touches() {
        let mut table = TokenTable::with_capacity(1, 10_000);
        for i in 0..10_000 {
            table.insert(info(&format!("token{i:020}"), "t", 1, Kind::Logs, true));
        }
        assert_eq!(table.len(), 10_000);
        let changed = "token00000000000000000042";
        let next = table.with_delta(Delta {
            version: 2,
            upserts: vec![info(changed, "t", 1, Kind::Logs, false)],
            deletes: vec![Digest::of("token00000000000000000043")],
        });
        assert_eq!(next.len(), 9_999);
        assert!(!next.get(&Digest::of(changed)).unwrap().enabled);
        let shared = table
            .shards
            .iter()
            .zip(next.shards.iter())
            .filter(|(a, b)| Arc::ptr_eq(a, b))
            .count();
        let touched = usize::from(
            shard_of(&Digest::of(changed)) != shard_of(&Digest::of("token00000000000000000043")),
        ) + 1;
        assert_eq!(shared, SHARDS - touched);
        assert_eq!(next.iter().count(), 9_999);
    }
}
