//! The miss cache (DESIGN §2): what the gateway does with a well-formed token whose digest
//! its table does not hold, with the `control_plane` source. The control plane is asked
//! (`GET /v1/feed/tokens/{digest}`) through a `moka` cache whose `try_get_with` makes
//! concurrent requests for one digest share a single lookup. Answers are remembered —
//! "known" for `tokens.miss_positive_ttl_secs` (the feed brings the token into the table
//! meanwhile), "unknown" for `tokens.miss_negative_ttl_secs` — and a global rate limit
//! (`governor`, lock-free) caps the lookups sent: over it, the token is refused as unknown
//! at once instead of waiting, so a flood of random tokens costs the control plane at most
//! `tokens.miss_lookups_per_sec`. Failed lookups are not cached.
//!
//! The TTL is checked against `tokio::time::Instant` when an answer is read (so tests can
//! pause time); moka's own expiry uses the same TTLs to free the memory.

use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashSet;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use moka::Expiry;
use moka::future::Cache;
use tokio::time::Instant;

use super::client::{FeedClient, FeedError};
use super::snapshot::AccountNames;
use super::wire::SnapshotEntry;
use super::{Digest, TokenInfo};
use crate::config::TokensConfig;
use crate::telemetry::MissMetrics;

/// Where misses are looked up: the control plane's feed (a trait so the cache's rules can
/// be unit-tested without a network; the integration tests use the real control plane).
pub trait Lookup: Send + Sync + 'static {
    fn lookup(
        &self,
        digest: Digest,
    ) -> Pin<Box<dyn Future<Output = Result<Option<SnapshotEntry>, FeedError>> + Send + '_>>;
}

impl Lookup for FeedClient {
    fn lookup(
        &self,
        digest: Digest,
    ) -> Pin<Box<dyn Future<Output = Result<Option<SnapshotEntry>, FeedError>> + Send + '_>> {
        Box::pin(FeedClient::lookup(self, digest))
    }
}

/// One remembered answer: the token's entry, or `None` for "the control plane does not
/// know it".
#[derive(Clone)]
struct Answer {
    info: Option<Arc<TokenInfo>>,
    expires: Instant,
}

/// Why a lookup produced no answer worth caching.
#[derive(Debug, thiserror::Error)]
enum MissError {
    #[error("over tokens.miss_lookups_per_sec")]
    Limited,
    #[error(transparent)]
    Feed(#[from] FeedError),
    #[error("the control plane answered for another digest")]
    WrongDigest,
}

/// Marks a digest as being looked up for as long as the lookup runs (also if it is dropped).
struct InFlight<'a> {
    set: &'a DashSet<Digest>,
    digest: Digest,
}

impl<'a> InFlight<'a> {
    fn enter(set: &'a DashSet<Digest>, digest: Digest) -> InFlight<'a> {
        set.insert(digest);
        InFlight { set, digest }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.set.remove(&self.digest);
    }
}

/// Tells moka how long each answer lives: positive and negative answers differ.
struct AnswerExpiry {
    positive: Duration,
    negative: Duration,
}

impl Expiry<Digest, Answer> for AnswerExpiry {
    fn expire_after_create(
        &self,
        _key: &Digest,
        value: &Answer,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(if value.info.is_some() {
            self.positive
        } else {
            self.negative
        })
    }
}

/// The settings of the cache, from `[tokens]`.
#[derive(Debug, Clone)]
pub struct MissSettings {
    pub lookups_per_sec: NonZeroU32,
    pub positive_ttl: Duration,
    pub negative_ttl: Duration,
    pub capacity: u64,
}

impl MissSettings {
    pub fn from_config(c: &TokensConfig) -> MissSettings {
        MissSettings {
            lookups_per_sec: NonZeroU32::new(c.miss_lookups_per_sec).unwrap_or(NonZeroU32::MIN),
            positive_ttl: c.miss_positive_ttl_secs,
            negative_ttl: c.miss_negative_ttl_secs,
            capacity: c.miss_cache_capacity,
        }
    }
}

pub struct MissCache {
    cache: Cache<Digest, Answer>,
    /// Global: one token bucket for every request, checked with one atomic CAS.
    limiter: DefaultDirectRateLimiter,
    /// Digests being looked up now: a request for one of them joins the lookup even when
    /// the budget is spent (joining costs the control plane nothing).
    in_flight: DashSet<Digest>,
    source: Arc<dyn Lookup>,
    settings: MissSettings,
    metrics: MissMetrics,
}

impl MissCache {
    pub fn new(source: Arc<dyn Lookup>, settings: MissSettings, metrics: MissMetrics) -> Self {
        let cache = Cache::builder()
            .max_capacity(settings.capacity)
            .expire_after(AnswerExpiry {
                positive: settings.positive_ttl,
                negative: settings.negative_ttl,
            })
            .build();
        MissCache {
            cache,
            limiter: RateLimiter::direct(Quota::per_second(settings.lookups_per_sec)),
            in_flight: DashSet::new(),
            source,
            settings,
            metrics,
        }
    }

    /// The entry of a digest the table does not hold, if the control plane knows it.
    /// `None` means "refuse as unknown": the control plane said so (now or within the
    /// negative TTL), could not be asked, or the lookup budget is spent.
    pub async fn resolve(&self, digest: Digest) -> Option<Arc<TokenInfo>> {
        if let Some(answer) = self.cache.get(&digest).await {
            if answer.expires > Instant::now() {
                return answer.info;
            }
            self.cache.invalidate(&digest).await;
        }
        // The budget is checked before the single-flight machinery, so a flood of random
        // tokens is refused for the price of a set probe and one CAS each.
        let paid = if self.in_flight.contains(&digest) {
            false // joining is free; should the lookup end first, `ask` charges the budget
        } else if self.take_from_budget() {
            true
        } else {
            return None;
        };
        match self
            .cache
            .try_get_with(digest, self.ask(digest, paid))
            .await
        {
            Ok(answer) => answer.info,
            Err(e) => {
                tracing::debug!(error = %e, "unknown token not resolved");
                None
            }
        }
    }

    /// One lookup's worth of the budget, if any is left; counted as `limited` if not.
    fn take_from_budget(&self) -> bool {
        let taken = self.limiter.check().is_ok();
        if !taken {
            self.metrics.limited();
        }
        taken
    }

    /// One lookup at the control plane (run once per digest however many requests wait).
    /// `paid`: the caller took it from the budget already; a caller that came to join a
    /// lookup which ended before it arrived has not, and is charged here.
    async fn ask(&self, digest: Digest, paid: bool) -> Result<Answer, MissError> {
        if !paid && !self.take_from_budget() {
            return Err(MissError::Limited);
        }
        let _in_flight = InFlight::enter(&self.in_flight, digest);
        let entry = match self.source.lookup(digest).await {
            Ok(entry) => entry,
            Err(e) => {
                self.metrics.lookup_failed(&e);
                return Err(e.into());
            }
        };
        let info = match entry {
            None => {
                self.metrics.unknown();
                None
            }
            Some(entry) => {
                let info = match entry.into_info(0, &mut AccountNames::default()) {
                    Ok(info) => info,
                    Err(e) => {
                        self.metrics.answer_unusable();
                        return Err(FeedError::from(e).into());
                    }
                };
                if info.digest != digest {
                    self.metrics.answer_unusable();
                    return Err(MissError::WrongDigest);
                }
                self.metrics.found();
                Some(Arc::new(info))
            }
        };
        let ttl = if info.is_some() {
            self.settings.positive_ttl
        } else {
            self.settings.negative_ttl
        };
        Ok(Answer {
            info,
            expires: Instant::now() + ttl,
        })
    }

    /// Drops the answers about `digests` (the table now speaks for them).
    pub async fn forget(&self, digests: &[Digest]) {
        for digest in digests {
            self.cache.invalidate(digest).await;
        }
    }

    /// Drops every answer (a new snapshot replaced the table).
    pub fn forget_all(&self) {
        self.cache.invalidate_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::model::Kind;
    use crate::telemetry::Telemetry;

    /// Answers from a fixed set of known tokens, counting the calls; each call first waits
    /// for `release` so concurrent callers really overlap.
    struct Known {
        tokens: Vec<String>,
        calls: AtomicUsize,
        release: tokio::sync::Semaphore,
    }

    impl Lookup for Known {
        fn lookup(
            &self,
            digest: Digest,
        ) -> Pin<Box<dyn Future<Output = Result<Option<SnapshotEntry>, FeedError>> + Send + '_>>
        {
            Box::pin(async move {
                self.calls.fetch_add(1, Ordering::SeqCst);
                let _permit = self.release.acquire().await.expect("never closed");
                Ok(self
                    .tokens
                    .iter()
                    .find(|t| Digest::of(t) == digest)
                    .map(|t| SnapshotEntry {
                        token: None,
                        digest: Some(Digest::of(t).to_hex()),
                        token_id: "17".into(),
                        account_id: 1001,
                        account_name: "acme".into(),
                        kind: Kind::Logs,
                        enabled: true,
                    }))
            })
        }
    }

    impl Known {
        /// Holds every lookup at the control plane until `release_all`.
        fn hold(&self) {
            self.release
                .forget_permits(self.release.available_permits());
        }

        fn release_all(&self) {
            self.release.add_permits(1000);
        }

        /// Returns once a lookup has reached the control plane, then lets the other
        /// spawned callers run up to their own waiting point.
        async fn until_asked(&self) {
            while self.calls.load(Ordering::SeqCst) == 0 {
                tokio::task::yield_now().await;
            }
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
        }
    }

    fn spawn_resolve(
        cache: &Arc<MissCache>,
        digest: Digest,
    ) -> tokio::task::JoinHandle<Option<Arc<TokenInfo>>> {
        let cache = Arc::clone(cache);
        tokio::spawn(async move { cache.resolve(digest).await })
    }

    const KNOWN: &str = "knownToken000000000000001";

    fn cache(per_sec: u32) -> (MissCache, Arc<Known>, MissMetrics) {
        let known = Arc::new(Known {
            tokens: vec![KNOWN.to_string()],
            calls: AtomicUsize::new(0),
            release: tokio::sync::Semaphore::new(1_000_000),
        });
        let telemetry = Telemetry::new();
        let settings = MissSettings {
            lookups_per_sec: NonZeroU32::new(per_sec).unwrap(),
            positive_ttl: Duration::from_secs(10),
            negative_ttl: Duration::from_secs(2),
            capacity: 1000,
        };
        let metrics = telemetry.miss_lookups();
        let cache = MissCache::new(known.clone(), settings, metrics.clone());
        (cache, known, metrics)
    }

    #[tokio::test(start_paused = true)]
    async fn answers_live_for_their_ttl_positive_longer_than_negative() {
        let (cache, known, _) = cache(1000);
        let unknown = Digest::of("unknownToken00000000000001");
        assert!(cache.resolve(unknown).await.is_none());
        assert!(cache.resolve(Digest::of(KNOWN)).await.is_some());
        assert_eq!(known.calls.load(Ordering::SeqCst), 2);

        // Within both TTLs: answered from the cache.
        tokio::time::advance(Duration::from_millis(1900)).await;
        assert!(cache.resolve(unknown).await.is_none());
        assert_eq!(
            cache
                .resolve(Digest::of(KNOWN))
                .await
                .unwrap()
                .token_id
                .0
                .as_ref(),
            "17"
        );
        assert_eq!(known.calls.load(Ordering::SeqCst), 2);

        // Past the negative TTL only: the unknown digest is asked about again.
        tokio::time::advance(Duration::from_millis(200)).await;
        assert!(cache.resolve(unknown).await.is_none());
        assert!(cache.resolve(Digest::of(KNOWN)).await.is_some());
        assert_eq!(known.calls.load(Ordering::SeqCst), 3);

        // Past the positive TTL too.
        tokio::time::advance(Duration::from_secs(8)).await;
        assert!(cache.resolve(Digest::of(KNOWN)).await.is_some());
        assert_eq!(known.calls.load(Ordering::SeqCst), 4);

        // Forgetting (a delta touched the digest) asks again at once.
        cache.forget(&[Digest::of(KNOWN)]).await;
        assert!(cache.resolve(Digest::of(KNOWN)).await.is_some());
        assert_eq!(known.calls.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn concurrent_misses_for_one_digest_share_one_lookup() {
        let (cache, known, metrics) = cache(1000);
        let cache = Arc::new(cache);
        // Hold every lookup until all callers are waiting on it.
        known.hold();
        let digest = Digest::of("unknownToken00000000000002");
        let waiters: Vec<_> = (0..50).map(|_| spawn_resolve(&cache, digest)).collect();
        known.until_asked().await;
        known.release_all();
        for w in waiters {
            assert!(w.await.unwrap().is_none());
        }
        assert_eq!(known.calls.load(Ordering::SeqCst), 1);
        assert_eq!(metrics.unknown_total(), 1);
    }

    #[tokio::test]
    async fn a_lookup_under_way_is_joined_even_with_the_budget_spent() {
        let (cache, known, metrics) = cache(1);
        let cache = Arc::new(cache);
        known.hold();
        // The one lookup the budget allows, held at the control plane…
        let first = spawn_resolve(&cache, Digest::of(KNOWN));
        known.until_asked().await;
        // …is joined by later requests for the same token, while another token is refused.
        let joiners: Vec<_> = (0..20)
            .map(|_| spawn_resolve(&cache, Digest::of(KNOWN)))
            .collect();
        assert!(
            cache
                .resolve(Digest::of("otherToken0000000000000009"))
                .await
                .is_none()
        );
        known.until_asked().await;
        known.release_all();
        assert!(first.await.unwrap().is_some());
        for j in joiners {
            assert!(j.await.unwrap().is_some(), "a joiner was refused");
        }
        assert_eq!(known.calls.load(Ordering::SeqCst), 1);
        assert_eq!(metrics.limited_total(), 1);
        assert!(cache.in_flight.is_empty());
    }

    #[tokio::test]
    async fn over_the_rate_limit_misses_are_refused_without_asking() {
        let (cache, known, metrics) = cache(5);
        for i in 0..100 {
            let digest = Digest::of(&format!("randomToken{i:020}"));
            assert!(cache.resolve(digest).await.is_none());
        }
        let calls = known.calls.load(Ordering::SeqCst);
        // The bucket holds 5; the test may take long enough for a refill or two.
        assert!((5..=7).contains(&calls), "{calls} lookups");
        assert_eq!(metrics.unknown_total() as usize, calls);
        assert_eq!(metrics.limited_total() as usize, 100 - calls);
    }
}
