//! `[volume]`: where the fleet counts each account's day, and what a capped account's
//! logs get (docs/volume.md).

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, refuse_zero, secs};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VolumeConfig {
    /// Redis that the gateways of a fleet count in (`redis://host:port/db`,
    /// `rediss://` for TLS; no Sentinel: see docs/volume.md); unset: counted in this
    /// process, a fleet of one.
    pub redis_url: Option<String>,
    /// Redis Cluster nodes, instead of `redis_url`.
    pub redis_cluster_nodes: Vec<String>,
    /// The largest lease a gateway takes of an account's day at once. A smaller
    /// allowance gets smaller leases (1/32 of it, at least 16 KiB).
    pub lease_bytes: u64,
    /// What a capped account's logs get: `accept` (200, counted, not forwarded, as
    /// Logz.io stops indexing) or `refuse` (503 + `Retry-After` until the UTC day turns).
    pub over_cap: OverCap,
    /// Answer an account over its rate limit with 429 on the OTLP routes, as the OTLP
    /// spec says, instead of 503 (which every sender retries; DESIGN §1).
    pub otlp_rate_limit_429: bool,
    /// How long one call to the bank may take before it counts as an outage.
    #[serde(deserialize_with = "secs")]
    pub bank_timeout_secs: Duration,
    /// How soon a failed call to the bank is tried again (requests go on meanwhile).
    #[serde(deserialize_with = "secs")]
    pub retry_secs: Duration,
    /// How often each gateway checks whether an account's utilization record is due
    /// (the first gateway of the fleet to claim an interval writes it).
    #[serde(deserialize_with = "secs")]
    pub utilization_check_secs: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverCap {
    Accept,
    Refuse,
}

impl Default for VolumeConfig {
    fn default() -> Self {
        VolumeConfig {
            redis_url: None,
            redis_cluster_nodes: Vec::new(),
            lease_bytes: 4 * 1024 * 1024,
            over_cap: OverCap::Accept,
            otlp_rate_limit_429: false,
            bank_timeout_secs: Duration::from_millis(500),
            retry_secs: Duration::from_secs(1),
            utilization_check_secs: Duration::from_secs(5),
        }
    }
}

impl VolumeConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        refuse_zero(&[
            ("volume.lease_bytes", self.lease_bytes == 0),
            ("volume.bank_timeout_secs", self.bank_timeout_secs.is_zero()),
            ("volume.retry_secs", self.retry_secs.is_zero()),
            (
                "volume.utilization_check_secs",
                self.utilization_check_secs.is_zero(),
            ),
        ])?;
        if self.redis_url.is_some() && !self.redis_cluster_nodes.is_empty() {
            return Err(ConfigError::invalid(
                "volume.redis_cluster_nodes",
                "give redis_url or redis_cluster_nodes, not both",
            ));
        }
        Ok(())
    }
}
