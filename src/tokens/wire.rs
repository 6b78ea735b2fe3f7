//! The feed's wire types (DESIGN §6): what the control plane sends gateways and what
//! gateways report back, defined once for both sides. This is the one module of `tokens`
//! that `control` imports; it holds shapes only — validation and table building live in
//! `snapshot.rs`, the HTTP exchange in `client.rs` and `control/feed.rs`.

use serde::{Deserialize, Deserializer, Serialize};

pub use super::digest::Digest;
pub use crate::filters::held::FilterDrops;
pub use crate::filters::logs::LogDropFilter;
pub use crate::filters::metrics::MetricsDropFilter;
pub use crate::model::AccountType;
use crate::model::{AccountId, Kind, TokenId};
pub use crate::volume::policy::{Rate, VolumePolicy};

/// A whole token table: a snapshot file, the persisted last-good copy, or
/// `GET /v1/feed/snapshot` (which the control plane streams in this shape).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    pub version: u64,
    pub tokens: Vec<SnapshotEntry>,
    /// The read grants, when the feed was asked for them (`?grants=true`). Absent from
    /// token files (the `file` source has no grants) and from snapshots persisted before
    /// grants existed, which load as "no grants" rather than "no read access at all".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grants: Option<Grants>,
    /// The accounts' volume policies, when the feed was asked for them (`?volume=true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<Vec<VolumePolicy>>,
    /// Every drop filter, active or not, when the feed was asked for them
    /// (`?filters=true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<DropFilters>,
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
    /// The read grants' changes since `since`, when asked for (`?grants=true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grants: Option<GrantChanges>,
    /// The volume policies' changes since `since`, when asked for (`?volume=true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<VolumeChanges>,
    /// The drop filters' changes since `since`, when asked for (`?filters=true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<DropFilterChanges>,
}

/// The volume policies of the plans that changed: every policy of each family in
/// `families` (main account ids) replaces what the gateway held for that family, and
/// `deletes` are deleted accounts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeChanges {
    #[serde(default)]
    pub families: Vec<AccountId>,
    #[serde(default)]
    pub policies: Vec<VolumePolicy>,
    #[serde(default)]
    pub deletes: Vec<AccountId>,
}

impl VolumeChanges {
    pub fn is_empty(&self) -> bool {
        self.families.is_empty() && self.deletes.is_empty()
    }
}

// === drop filters ===

/// The accounts' drop filters (DESIGN §9), each whole: a log filter belongs to the account
/// whose logs it drops, a metrics filter to a metrics account. Inactive filters ride
/// along with `active: false`, so switching one off and on is an upsert like any edit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropFilters {
    #[serde(default)]
    pub logs: Vec<LogDropFilter>,
    #[serde(default)]
    pub metrics: Vec<MetricsDropFilter>,
}

/// The drop filters' part of a change answer: filters changed since `since` (whole, as
/// in a snapshot) and the ids of those deleted, their accounts' deletions included.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropFilterChanges {
    #[serde(default)]
    pub upserts: DropFilters,
    #[serde(default)]
    pub deletes: DropFilterDeletes,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropFilterDeletes {
    /// Ids of deleted log filters.
    #[serde(default)]
    pub logs: Vec<u64>,
    /// Ids of deleted metrics filters.
    #[serde(default)]
    pub metrics: Vec<u64>,
}

impl DropFilterChanges {
    pub fn is_empty(&self) -> bool {
        let (u, d) = (&self.upserts, &self.deletes);
        u.logs.is_empty() && u.metrics.is_empty() && d.logs.is_empty() && d.metrics.is_empty()
    }
}

// === read grants ===

/// What the read path needs to authorize a tail without asking the control plane: the
/// accounts' read-relevant attributes, API token digests and shared tokens (DESIGN §4
/// "Read path"). Each collection is keyed like its deletes: accounts by id, tokens by
/// digest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    #[serde(default)]
    pub accounts: Vec<GrantAccount>,
    #[serde(default)]
    pub api_tokens: Vec<GrantApiToken>,
    #[serde(default)]
    pub shared_tokens: Vec<GrantSharedToken>,
}

/// An account as far as reading goes: an API token of `owner_id`'s reaches it when it is
/// not a logs account or is `searchable`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantAccount {
    pub account_id: AccountId,
    /// The main account of a sub-account or a tied account; `None` for a main account.
    pub owner_id: Option<AccountId>,
    #[serde(rename = "type")]
    pub account_type: AccountType,
    pub searchable: bool,
    /// Main accounts: until when (epoch ms, exclusive) their API tokens — and those of the
    /// accounts they own — work: `None` for ever (pro, enterprise), a trial's end, or 0
    /// (community). Owned accounts follow their main account's and carry `None`.
    pub api_tokens_usable_until_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantApiToken {
    /// SHA-256 hex of the token.
    pub digest: String,
    pub account_id: AccountId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantSharedToken {
    /// SHA-256 hex of the token.
    pub digest: String,
    /// The id the management API shows (and the usage report names).
    pub token_id: u64,
    pub account_id: AccountId,
    /// Exact `field: value` matches, combined by `operator`; empty: every record.
    pub filters: Vec<FieldValue>,
    pub operator: FilterOp,
    /// Epoch milliseconds; `None` only for a legacy token, which never expires.
    pub expires_at_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldValue {
    pub field: String,
    pub value: String,
}

/// How a shared token combines its filters, spelled as the management API does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FilterOp {
    #[serde(rename = "AND")]
    And,
    #[serde(rename = "OR")]
    Or,
}

/// The read grants' part of a change answer: rows changed since `since` (whole rows, as
/// in a snapshot) and what was deleted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantChanges {
    #[serde(default)]
    pub upserts: Grants,
    #[serde(default)]
    pub deletes: GrantDeletes,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantDeletes {
    /// Ids of deleted accounts.
    #[serde(default)]
    pub accounts: Vec<AccountId>,
    /// Digests (hex) of deleted API tokens.
    #[serde(default)]
    pub api_tokens: Vec<String>,
    /// Digests (hex) of deleted shared tokens.
    #[serde(default)]
    pub shared_tokens: Vec<String>,
}

impl GrantChanges {
    pub fn is_empty(&self) -> bool {
        let (u, d) = (&self.upserts, &self.deletes);
        u.accounts.is_empty()
            && u.api_tokens.is_empty()
            && u.shared_tokens.is_empty()
            && d.accounts.is_empty()
            && d.api_tokens.is_empty()
            && d.shared_tokens.is_empty()
    }
}

/// The body of `POST /v1/feed/usage`: what a gateway accepted since its last report.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UsageReport {
    #[serde(default)]
    pub tokens: Vec<TokenUse>,
    #[serde(default)]
    pub accounts: Vec<AccountVolume>,
    /// Left out when empty, so a control plane from before read grants still takes the
    /// report.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shared_tokens: Vec<SharedTokenUse>,
    /// The accounts this gateway holds capped today. Left out when empty, as above.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capped: Vec<AccountId>,
    /// What each drop filter dropped since the last report. Left out when empty, as above.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<FilterDrops>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TokenUse {
    pub token_id: TokenId,
    /// Epoch seconds.
    pub last_used: u64,
}

/// A shared token used to open or keep a tail: its `lastUsed` on the control plane.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SharedTokenUse {
    pub token_id: u64,
    /// Epoch milliseconds, as shared tokens' times are.
    pub last_used_ms: u64,
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
        self.tokens.is_empty()
            && self.accounts.is_empty()
            && self.shared_tokens.is_empty()
            && self.capped.is_empty()
            && self.dropped.is_empty()
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
