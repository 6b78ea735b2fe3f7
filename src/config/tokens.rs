//! `[tokens]`: where the token table comes from (DESIGN §2), and what the control-plane
//! source needs to reach its feed.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::secrets::{check_secret, is_loopback_host};
use super::{ConfigError, Warnings, refuse_zero, secs};

/// Where the token table comes from (DESIGN §2).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokensConfig {
    pub source: TokenSourceKind,
    /// File source: a JSON snapshot, watched and reloaded on change.
    pub path: PathBuf,
    /// File source: how often the file is checked for a change.
    #[serde(deserialize_with = "secs")]
    pub watch_interval_secs: Duration,
    /// Control-plane source: the control plane's base URL (`http://host:port`), or the
    /// base URLs of several control planes on one store, separated by commas: the gateway
    /// follows one and moves to the next when it is unavailable.
    pub url: Option<String>,
    /// Control-plane source: the secret presented on `/v1/feed/*`. Never logged.
    pub feed_secret: Option<String>,
    /// The last good snapshot is persisted here and served at boot (fail-static).
    pub state_dir: PathBuf,
    /// Control-plane source: how long one change-feed long poll may wait for news (0..=60;
    /// the control plane caps it at 60). Shorter costs more idle round trips; the age gauge
    /// is reset by every answered poll, so it also bounds how stale "fresh" can look.
    #[serde(deserialize_with = "secs")]
    pub poll_wait_secs: Duration,
    /// Control-plane source: deadline of a snapshot fetch, a miss lookup or a usage flush
    /// (a long poll gets `poll_wait_secs` on top).
    #[serde(deserialize_with = "secs")]
    pub request_timeout_secs: Duration,
    /// Control-plane source: first reconnect delay after a failure; doubles per failure.
    /// Each actual wait is uniform in [0, delay] (full jitter), so a fleet that lost the
    /// control plane together does not come back in lockstep.
    #[serde(deserialize_with = "secs")]
    pub backoff_initial_secs: Duration,
    /// Control-plane source: the reconnect delay stops doubling here.
    #[serde(deserialize_with = "secs")]
    pub backoff_max_secs: Duration,
    /// Control-plane source: the table is persisted at most this often (and at shutdown).
    /// Writing 1,000,000 tokens takes about a second, so not on every delta.
    #[serde(deserialize_with = "secs")]
    pub persist_interval_secs: Duration,
    /// Control-plane source: lookups of unknown tokens sent to the control plane per second,
    /// across all requests. Past it an unknown token is refused (401) without asking, so a
    /// flood of random tokens costs the control plane at most this rate.
    pub miss_lookups_per_sec: u32,
    /// Control-plane source: how long a token the control plane knows is served from the
    /// miss cache (until the feed brings it into the table).
    #[serde(deserialize_with = "secs")]
    pub miss_positive_ttl_secs: Duration,
    /// Control-plane source: how long an answer "unknown" is remembered; a token created
    /// meanwhile is accepted as soon as the feed brings it, whatever this says.
    #[serde(deserialize_with = "secs")]
    pub miss_negative_ttl_secs: Duration,
    /// Control-plane source: most digests the miss cache holds.
    pub miss_cache_capacity: u64,
    /// Control-plane source: per-token last use and per-account volume are sent to the
    /// control plane this often (and once at shutdown).
    #[serde(deserialize_with = "secs")]
    pub usage_flush_interval_secs: Duration,
}

impl Default for TokensConfig {
    fn default() -> Self {
        TokensConfig {
            source: TokenSourceKind::File,
            path: PathBuf::from("config/tokens.json"),
            watch_interval_secs: Duration::from_millis(250),
            url: None,
            feed_secret: None,
            state_dir: PathBuf::from("data"),
            poll_wait_secs: Duration::from_secs(30),
            request_timeout_secs: Duration::from_secs(10),
            backoff_initial_secs: Duration::from_millis(250),
            backoff_max_secs: Duration::from_secs(30),
            persist_interval_secs: Duration::from_secs(10),
            miss_lookups_per_sec: 50,
            miss_positive_ttl_secs: Duration::from_secs(10),
            miss_negative_ttl_secs: Duration::from_secs(5),
            miss_cache_capacity: 100_000,
            usage_flush_interval_secs: Duration::from_secs(10),
        }
    }
}

/// The base URLs `tokens.url` names: one, or several separated by commas.
pub fn base_urls(url: &str) -> impl Iterator<Item = &str> {
    url.split(',').map(str::trim).filter(|u| !u.is_empty())
}

impl TokensConfig {
    /// A file source needs its path; the control-plane source its URL, secret and timings.
    pub(super) fn validate(&self, warnings: &mut Warnings) -> Result<(), ConfigError> {
        match self.source {
            TokenSourceKind::File => {
                if self.path.as_os_str().is_empty() {
                    return Err(ConfigError::invalid(
                        "tokens.path",
                        "is required when tokens.source = \"file\"",
                    ));
                }
                Ok(())
            }
            TokenSourceKind::ControlPlane => self.validate_control_plane(warnings),
        }
    }

    /// The keys `source = "control_plane"` needs, checked only for that source.
    fn validate_control_plane(&self, warnings: &mut Warnings) -> Result<(), ConfigError> {
        let base_ok = |url: &str| {
            url.parse::<http::Uri>().ok().is_some_and(|u| {
                matches!(u.scheme_str(), Some("http" | "https"))
                    && u.host().is_some()
                    && u.query().is_none()
            })
        };
        let url_ok = self
            .url
            .as_deref()
            .is_some_and(|url| base_urls(url).next().is_some() && base_urls(url).all(base_ok));
        if !url_ok {
            return Err(ConfigError::invalid(
                "tokens.url",
                "is required when tokens.source = \"control_plane\": an http:// or https:// \
                 base URL such as \"http://127.0.0.1:8090\", or several separated by commas",
            ));
        }
        let secret_ok = self.feed_secret.as_deref().is_some_and(|s| {
            !s.trim().is_empty() && http::HeaderValue::try_from(format!("Bearer {s}")).is_ok()
        });
        if !secret_ok {
            return Err(ConfigError::invalid(
                "tokens.feed_secret",
                "is required when tokens.source = \"control_plane\" (printable, not empty)",
            ));
        }
        let url = self.url.as_deref().unwrap_or_default();
        let exposed = base_urls(url).find(|base| {
            let host = base.parse::<http::Uri>().ok();
            let host = host.as_ref().and_then(http::Uri::host).unwrap_or_default();
            !is_loopback_host(host.trim_start_matches('[').trim_end_matches(']'))
        });
        check_secret(
            "tokens.feed_secret",
            self.feed_secret.as_deref().unwrap_or_default(),
            exposed.map(|base| format!("tokens.url ({base}) is not a loopback address")),
            warnings,
        )?;
        if self.poll_wait_secs > Duration::from_secs(60) {
            return Err(ConfigError::invalid(
                "tokens.poll_wait_secs",
                "must be <= 60 (the control plane caps a long poll at 60 s)",
            ));
        }
        refuse_zero(&[
            (
                "tokens.request_timeout_secs",
                self.request_timeout_secs.is_zero(),
            ),
            (
                "tokens.backoff_initial_secs",
                self.backoff_initial_secs.is_zero(),
            ),
            (
                "tokens.persist_interval_secs",
                self.persist_interval_secs.is_zero(),
            ),
            (
                "tokens.miss_positive_ttl_secs",
                self.miss_positive_ttl_secs.is_zero(),
            ),
            (
                "tokens.miss_negative_ttl_secs",
                self.miss_negative_ttl_secs.is_zero(),
            ),
            (
                "tokens.usage_flush_interval_secs",
                self.usage_flush_interval_secs.is_zero(),
            ),
        ])?;
        if self.backoff_max_secs < self.backoff_initial_secs {
            return Err(ConfigError::invalid(
                "tokens.backoff_max_secs",
                "must be >= tokens.backoff_initial_secs",
            ));
        }
        refuse_zero(&[
            (
                "tokens.miss_lookups_per_sec",
                self.miss_lookups_per_sec == 0,
            ),
            ("tokens.miss_cache_capacity", self.miss_cache_capacity == 0),
        ])?;
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenSourceKind {
    File,
    ControlPlane,
}

#[cfg(test)]
mod tests {
    use super::base_urls;
    use crate::config::Config;
    use crate::config::tests::no_env;

    #[test]
    fn a_weak_gateway_feed_secret_is_refused_toward_a_control_plane_off_loopback() {
        let tokens = |url: &str, secret: &str| {
            format!(
                "[tokens]\nsource = \"control_plane\"\nurl = \"{url}\"\n\
                 feed_secret = \"{secret}\"\n"
            )
        };
        for url in [
            "http://127.0.0.1:8090",
            "http://localhost:8090",
            "http://[::1]:8090",
        ] {
            let warnings = Config::parse(&tokens(url, "change-me-too"), no_env())
                .unwrap()
                .validate()
                .unwrap();
            assert!(
                warnings.iter().any(|w| w.starts_with("tokens.feed_secret")),
                "{url}: {warnings:?}"
            );
        }
        let err = Config::parse(&tokens("http://control-plane:8090", "s3cret"), no_env())
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("tokens.feed_secret: is shorter"), "{err}");
        let strong = tokens("https://control-plane:8090", "k7Qw2xZp9LmN4vB8rT1yH6sD");
        assert!(
            Config::parse(&strong, no_env())
                .unwrap()
                .validate()
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn control_plane_source_needs_url_and_secret_and_names_them() {
        let c = Config::parse("[tokens]\nsource = \"control_plane\"\n", no_env()).unwrap();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .starts_with("tokens.url")
        );
        let c = Config::parse(
            "[tokens]\nsource = \"control_plane\"\nurl = \"http://127.0.0.1:8090\"\n",
            no_env(),
        )
        .unwrap();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.starts_with("tokens.feed_secret"), "{err}");
        let ok = "[tokens]\nsource = \"control_plane\"\nurl = \"http://127.0.0.1:8090\"\n\
                  feed_secret = \"s3cret\"\n";
        assert!(Config::parse(ok, no_env()).unwrap().validate().is_ok());
        let c = Config::parse(&format!("{ok}poll_wait_secs = 61\n"), no_env()).unwrap();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.starts_with("tokens.poll_wait_secs"), "{err}");
        let c = Config::parse(&format!("{ok}miss_lookups_per_sec = 0\n"), no_env()).unwrap();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.starts_with("tokens.miss_lookups_per_sec"), "{err}");
    }

    #[test]
    fn several_control_planes_are_named_by_commas_and_each_is_checked() {
        let urls = |url: &str| {
            let toml = format!(
                "[tokens]\nsource = \"control_plane\"\nurl = \"{url}\"\n\
                 feed_secret = \"a-long-enough-secret-for-the-feed-0001\"\n"
            );
            Config::parse(&toml, no_env()).unwrap().validate()
        };
        assert!(urls("http://127.0.0.1:8090, http://127.0.0.1:8091").is_ok());
        for bad in [
            "http://127.0.0.1:8090,ftp://x",
            ",",
            "http://127.0.0.1:8090,x",
        ] {
            let err = urls(bad).unwrap_err().to_string();
            assert!(err.starts_with("tokens.url"), "{bad}: {err}");
        }
        assert_eq!(
            base_urls(" http://a ,,http://b").collect::<Vec<_>>(),
            ["http://a", "http://b"]
        );
        // One control plane off loopback is enough for a weak secret to be refused.
        let weak = "[tokens]\nsource = \"control_plane\"\n\
                    url = \"http://127.0.0.1:1,http://10.0.0.5:1\"\nfeed_secret = \"s3cret\"\n";
        let err = Config::parse(weak, no_env())
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("(http://10.0.0.5:1)"), "{err}");
    }
}
