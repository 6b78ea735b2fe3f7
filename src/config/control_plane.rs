//! `[control_plane]`: the control plane's listener, store, secrets and page sessions
//! (DESIGN §4), checked wherever it runs: `tollgate control-plane`, embedded in `serve`, and
//! `check-config`.

use std::net::SocketAddr;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::secrets::check_secret;
use super::server::ServerConfig;
use super::{ConfigError, Warnings, refuse_zero, secs};

/// The control plane (DESIGN §4): `tollgate control-plane`, or inside `tollgate serve`
/// when `embedded = true`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlPlaneConfig {
    /// Run the control plane inside `tollgate serve`, on `listen`.
    pub embedded: bool,
    /// The management API and the gateways' feed.
    pub listen: SocketAddr,
    /// `sqlite://path` (created if missing) or `postgres://user:pass@host/db`.
    pub database_url: String,
    /// The operator's secret (`Authorization: Bearer …`): creates main accounts and
    /// reaches every account.
    pub admin_secret: Option<String>,
    /// Gateways present it on `/v1/feed/*`.
    pub feed_secret: Option<String>,
    /// How many feed versions of deletions the control plane keeps for gateways catching
    /// up; a gateway further behind gets 410 and refetches the whole snapshot.
    pub feed_retained_versions: u64,
    /// Where people open the Manage Tokens page (`https://…` behind a TLS proxy): setup
    /// links start with it, and `https` marks the session cookie `Secure`. Default:
    /// `http://<listen>`.
    pub public_url: Option<String>,
    /// Where people reach the gateways' public listener (`https://listener.example.com`):
    /// the page's live-tail links for shared tokens start with it. Embedded, it defaults
    /// to the gateway's own listener; otherwise the page offers no live-tail link.
    pub gateway_url: Option<String>,
    /// A page session unused this long ends.
    #[serde(deserialize_with = "secs")]
    pub session_idle_timeout_secs: Duration,
    /// A page session ends this long after login, used or not.
    #[serde(deserialize_with = "secs")]
    pub session_max_age_secs: Duration,
    /// How long a user's one-time setup link works.
    #[serde(deserialize_with = "secs")]
    pub setup_link_ttl_secs: Duration,
    /// Reverse proxies in front of the page (addresses or CIDR ranges, e.g.
    /// `["10.0.0.0/8"]`): a request from one of them is counted against the address it
    /// names in `X-Forwarded-For` (the last one that is not itself a trusted proxy), so
    /// failed logins of one person do not lock out everyone behind the same proxy. Empty:
    /// the connection's address is the client's.
    pub trusted_proxies: Vec<IpNet>,
    /// The furthest a shared token's expiry may be set from now (a year): a read-only
    /// link to an account's logs should not outlive the reason it was made.
    #[serde(deserialize_with = "secs")]
    pub shared_token_max_lifetime_secs: Duration,
    /// Whether new shared tokens may be made without an expiry (`legacy: true`), as
    /// Logz.io's were before expiries were required. Off: only tokens that already have
    /// none keep having none.
    pub shared_tokens_without_expiry: bool,
    /// Each plan's rate limit at every gateway (`[control_plane.rate_limits.pro]`); a
    /// main account's `rateLimit` overrides its plan's. A plan without one is not limited.
    pub rate_limits: RateLimits,
}

/// `[control_plane.rate_limits]`: a default rate limit per plan. A running trial has
/// pro's, as it has pro's other limits; sub-accounts and tied accounts follow their main
/// account's plan, each with a bucket of its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimits {
    pub community: Option<RateLimit>,
    pub pro: Option<RateLimit>,
    pub enterprise: Option<RateLimit>,
}

/// Bytes of accepted records per second with a burst, which each gateway enforces on its
/// own (docs/volume.md, "Rate limits").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// The sustained rate.
    pub bytes_per_sec: u64,
    /// The most that passes at once after a quiet spell; default: one second of the rate.
    #[serde(default)]
    pub burst_bytes: Option<u64>,
}

impl RateLimit {
    pub fn burst(&self) -> u64 {
        self.burst_bytes.unwrap_or(self.bytes_per_sec)
    }
}

/// The largest rate or burst a gateway enforces as given: its limiter counts in 32-bit
/// units, and would silently hold a larger number at this one.
pub const MAX_RATE_BYTES: u64 = u32::MAX as u64;

/// Which number of a rate limit is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateField {
    BytesPerSec,
    Burst,
}

/// Why a gateway could not enforce `bytes_per_sec` with `burst_bytes` as given, or `None`.
/// The config's defaults and the API's overrides are checked alike.
pub fn rate_limit_problem(bytes_per_sec: u64, burst_bytes: u64) -> Option<(RateField, String)> {
    let too_large = || format!("must be at most {MAX_RATE_BYTES}");
    if bytes_per_sec == 0 {
        Some((RateField::BytesPerSec, "must be > 0".into()))
    } else if bytes_per_sec > MAX_RATE_BYTES {
        Some((RateField::BytesPerSec, too_large()))
    } else if burst_bytes < bytes_per_sec {
        Some((
            RateField::Burst,
            "must be >= the bytes per second: the bucket holds at least one second of the rate"
                .into(),
        ))
    } else if burst_bytes > MAX_RATE_BYTES {
        Some((RateField::Burst, too_large()))
    } else {
        None
    }
}

impl Default for ControlPlaneConfig {
    fn default() -> Self {
        ControlPlaneConfig {
            embedded: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 8090)),
            database_url: "sqlite://data/control.db".to_string(),
            admin_secret: None,
            feed_secret: None,
            feed_retained_versions: 100_000,
            public_url: None,
            gateway_url: None,
            session_idle_timeout_secs: Duration::from_secs(30 * 60),
            session_max_age_secs: Duration::from_secs(12 * 3600),
            setup_link_ttl_secs: Duration::from_secs(3 * 24 * 3600),
            trusted_proxies: Vec::new(),
            shared_token_max_lifetime_secs: Duration::from_secs(365 * 24 * 3600),
            shared_tokens_without_expiry: false,
            rate_limits: RateLimits::default(),
        }
    }
}

impl ControlPlaneConfig {
    /// What the control plane needs to run; the warnings are returned, not printed.
    pub fn validate(&self) -> Result<Vec<String>, ConfigError> {
        let mut warnings = Vec::new();
        let url = &self.database_url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(ConfigError::invalid(
                "control_plane.database_url",
                "must start with sqlite:// or postgres://",
            ));
        }
        for (key, secret) in [
            ("control_plane.admin_secret", &self.admin_secret),
            ("control_plane.feed_secret", &self.feed_secret),
        ] {
            match secret.as_deref() {
                None | Some("") => {
                    return Err(ConfigError::invalid(
                        key,
                        "is required to run the control plane",
                    ));
                }
                Some(secret) => check_secret(
                    key,
                    secret,
                    (!self.listen.ip().is_loopback()).then(|| {
                        format!(
                            "control_plane.listen ({}) is reachable from other machines",
                            self.listen
                        )
                    }),
                    &mut warnings,
                )?,
            }
        }
        if self.feed_retained_versions == 0 {
            return Err(ConfigError::invalid(
                "control_plane.feed_retained_versions",
                "must be > 0",
            ));
        }
        for (key, url) in [
            ("control_plane.public_url", &self.public_url),
            ("control_plane.gateway_url", &self.gateway_url),
        ] {
            if let Some(url) = url
                && !(url.starts_with("http://") || url.starts_with("https://"))
            {
                return Err(ConfigError::invalid(
                    key,
                    "must start with http:// or https://",
                ));
            }
        }
        refuse_zero(&[
            (
                "control_plane.session_idle_timeout_secs",
                self.session_idle_timeout_secs.is_zero(),
            ),
            (
                "control_plane.session_max_age_secs",
                self.session_max_age_secs.is_zero(),
            ),
            (
                "control_plane.setup_link_ttl_secs",
                self.setup_link_ttl_secs.is_zero(),
            ),
            (
                "control_plane.shared_token_max_lifetime_secs",
                self.shared_token_max_lifetime_secs.is_zero(),
            ),
        ])?;
        self.rate_limits.validate()?;
        Ok(warnings)
    }

    /// Embedded in `serve`: what [`validate`](Self::validate) checks, and a listener of
    /// its own beside the gateway's two.
    pub(super) fn validate_embedded(&self, server: &ServerConfig) -> Result<Warnings, ConfigError> {
        let warnings = self.validate()?;
        for (key, addr) in [
            ("server.listen", server.listen),
            ("server.admin_listen", server.admin_listen),
        ] {
            if addr.port() != 0 && addr == self.listen {
                return Err(ConfigError::invalid(
                    "control_plane.listen",
                    format!("is the same address as {key}"),
                ));
            }
        }
        Ok(warnings)
    }

    /// Where the page is reached: `public_url` without a trailing `/`, or `http://<listen>`.
    pub fn page_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.listen),
        }
    }
}

impl RateLimits {
    fn validate(&self) -> Result<(), ConfigError> {
        for (plan, limit) in [
            ("community", self.community),
            ("pro", self.pro),
            ("enterprise", self.enterprise),
        ] {
            let Some(limit) = limit else { continue };
            if let Some((field, why)) = rate_limit_problem(limit.bytes_per_sec, limit.burst()) {
                let key = match field {
                    RateField::BytesPerSec => "bytes_per_sec",
                    RateField::Burst => "burst_bytes",
                };
                return Err(ConfigError::invalid(
                    &format!("control_plane.rate_limits.{plan}.{key}"),
                    why,
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::RateLimit;
    use crate::config::Config;
    use crate::config::tests::no_env;

    #[test]
    fn example_control_plane_secrets_warn_on_loopback_and_are_refused_beyond_it() {
        let text = "[control_plane]\nembedded = true\nadmin_secret = \"change-me\"\n\
                    feed_secret = \"an-operator-chosen-secret\"\n";
        let c = Config::parse(text, no_env()).unwrap();
        let warnings = c.validate().unwrap();
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("control_plane.admin_secret")),
            "{warnings:?}"
        );
        let env = vec![(
            "TOLLGATE_CONTROL_PLANE__LISTEN".to_string(),
            "0.0.0.0:8090".to_string(),
        )];
        let err = Config::parse(text, env).unwrap().validate().unwrap_err();
        assert!(
            err.to_string().starts_with("control_plane.admin_secret"),
            "{err}"
        );
        let missing = Config::parse("[control_plane]\nembedded = true\n", no_env()).unwrap();
        let err = missing.validate().unwrap_err();
        assert!(
            err.to_string().starts_with("control_plane.admin_secret"),
            "{err}"
        );
    }

    #[test]
    fn weak_control_plane_secrets_warn_on_loopback_and_are_refused_on_other_addresses() {
        let strong = "k7Qw2xZp9LmN4vB8rT1yH6sD";
        for (admin, weakness) in [
            ("x", "shorter than 24 characters"),
            ("change-me-admin-secret", "documented example value"),
            ("a-23-characters-secret!", "shorter than 24 characters"),
        ] {
            let text = format!(
                "[control_plane]\nembedded = true\nadmin_secret = \"{admin}\"\n\
                 feed_secret = \"{strong}\"\n"
            );
            let warnings = Config::parse(&text, no_env()).unwrap().validate().unwrap();
            assert!(
                warnings
                    .iter()
                    .any(|w| w.starts_with("control_plane.admin_secret") && w.contains(weakness)),
                "{admin}: {warnings:?}"
            );
            for listen in ["0.0.0.0:8090", "192.0.2.7:8090", "[::]:8090"] {
                let env = vec![(
                    "TOLLGATE_CONTROL_PLANE__LISTEN".to_string(),
                    listen.to_string(),
                )];
                let err = Config::parse(&text, env).unwrap().validate().unwrap_err();
                let err = err.to_string();
                assert!(
                    err.starts_with("control_plane.admin_secret: ") && err.contains(weakness),
                    "{admin} on {listen}: {err}"
                );
            }
        }
        let text = format!(
            "[control_plane]\nembedded = true\nlisten = \"0.0.0.0:8090\"\n\
             admin_secret = \"{strong}\"\nfeed_secret = \"{strong}-feed\"\n"
        );
        let warnings = Config::parse(&text, no_env()).unwrap().validate().unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn rate_limits_are_per_plan_default_to_none_and_refusals_name_the_key() {
        let base = "[control_plane]\nadmin_secret = \"k7Qw2xZp9LmN4vB8rT1yH6sD\"\n\
                    feed_secret = \"k7Qw2xZp9LmN4vB8rT1yH6sD-feed\"\n";
        let none = Config::parse(base, no_env()).unwrap();
        assert_eq!(none.control_plane.rate_limits, Default::default());
        let text = format!(
            "{base}[control_plane.rate_limits]\npro = {{ bytes_per_sec = 1000, burst_bytes = 5000 }}\n\
             [control_plane.rate_limits.community]\nbytes_per_sec = 200\n"
        );
        let env = vec![(
            "TOLLGATE_CONTROL_PLANE__RATE_LIMITS__ENTERPRISE__BYTES_PER_SEC".to_string(),
            "9000".to_string(),
        )];
        let c = Config::parse(&text, env).unwrap();
        c.control_plane.validate().unwrap();
        let limits = c.control_plane.rate_limits;
        assert_eq!(
            limits.pro,
            Some(RateLimit {
                bytes_per_sec: 1000,
                burst_bytes: Some(5000)
            })
        );
        assert_eq!(
            limits.community.map(|l| l.burst()),
            Some(200),
            "a second's worth"
        );
        assert_eq!(limits.enterprise.map(|l| l.bytes_per_sec), Some(9000));
        for (limit, key) in [
            ("{ bytes_per_sec = 0 }", "pro.bytes_per_sec: must be > 0"),
            (
                "{ bytes_per_sec = 10, burst_bytes = 9 }",
                "pro.burst_bytes: must be >=",
            ),
            (
                "{ bytes_per_sec = 4294967296 }",
                "pro.bytes_per_sec: must be at most",
            ),
            (
                "{ bytes_per_sec = 1, burst_bytes = 4294967296 }",
                "pro.burst_bytes: must be at most",
            ),
        ] {
            let text = format!("{base}[control_plane.rate_limits]\npro = {limit}\n");
            let err = Config::parse(&text, no_env())
                .unwrap()
                .control_plane
                .validate()
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with(&format!("control_plane.rate_limits.{key}")),
                "{limit}: {err}"
            );
        }
        for (limit, key) in [
            (
                "{ bytes_per_sec = -1 }",
                "control_plane.rate_limits.pro.bytes_per_sec",
            ),
            ("{ burst_bytes = 5 }", "control_plane.rate_limits.pro"),
            (
                "{ bytes_per_sec = 5, burst = 5 }",
                "control_plane.rate_limits.pro",
            ),
        ] {
            let text = format!("{base}[control_plane.rate_limits]\npro = {limit}\n");
            let err = Config::parse(&text, no_env()).unwrap_err().to_string();
            assert!(err.starts_with(key), "{limit}: {err}");
        }
        let err = Config::parse(
            &format!("{base}[control_plane.rate_limits.trial]\n"),
            no_env(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("trial"), "{err}");
    }
}
