//! The feed's wire types (DESIGN §6): what the control plane sends gateways and what
//! gateways report back, defined once for both sides. This is the one module of `tokens`
//! that `control` imports; it holds shapes only — validation and table building live in
//! `snapshot.rs`, the HTTP exchange in `feed.rs` and `control/feed.rs`.

use serde::{Deserialize, Deserializer, Serialize};

pub use super::digest::Digest;
use crate::model::{AccountId, Kind, TokenId};

/// A whole token table: a snapshot file, the persisted last-good copy, or
/// `GET /v1/feed/snapshot` (which the control plane streams in this shape).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    pub version: u64,
    pub tokens: Vec<SnapshotEntry>,
}

/// One token: exactly one of `token` (plain text, local files only) or `digest`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    pub token_id: String,
    pub account_id: u64,
    #[serde(default)]
    pub account_name: String,
    pub kind: Kind,
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

/// `GET /v1/feed/changes`: upserts and deletes since the version the gateway holds.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Changes {
    pub version: u64,
    pub upserts: Vec<SnapshotEntry>,
    /// Digests (hex) of tokens deleted since `since`.
    pub deletes: Vec<String>,
}

/// The body of `POST /v1/feed/usage`: what a gateway accepted since its last report.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UsageReport {
    #[serde(default)]
    pub tokens: Vec<TokenUse>,
    #[serde(default)]
    pub accounts: Vec<AccountVolume>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TokenUse {
    pub token_id: TokenId,
    /// Epoch seconds.
    pub last_used: u64,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AccountVolume {
    pub account_id: AccountId,
    pub kind: Kind,
    #[serde(deserialize_with = "count")]
    pub bytes: u64,
    #[serde(deserialize_with = "count")]
    pub records: u64,
}

impl UsageReport {
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty() && self.accounts.is_empty()
    }
}

/// A volume counter; a negative one is refused with a message that says so, rather than
/// serde's "expected u64".
fn count<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let n = i128::deserialize(d)?;
    u64::try_from(n).map_err(|_| {
        serde::de::Error::custom("usage bytes and records must be >= 0 and fit in 64 bits")
    })
}
