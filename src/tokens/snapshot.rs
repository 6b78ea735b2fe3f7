//! The token snapshot wire format (DESIGN §6), shared by the file source, the persisted
//! last-good copy and the control-plane feed. Validation happens while building the table:
//! a snapshot with one bad entry is refused whole, so a bad file never half-replaces a
//! good table. Error messages name the entry by index and token id, never by token.

use std::collections::HashMap;
use std::sync::Arc;

use super::digest;
use super::grants::{GrantWireError, ReadGrants};
use super::wire::{Digest, Snapshot, SnapshotEntry};
use super::{TokenInfo, TokenTable};
use crate::model::{AccountId, TokenId};

/// Accounts share one name allocation however many tokens they have.
#[derive(Default)]
pub struct AccountNames(HashMap<String, Arc<String>>);

impl AccountNames {
    fn intern(&mut self, name: &str) -> Arc<String> {
        if let Some(n) = self.0.get(name) {
            return Arc::clone(n);
        }
        let n = Arc::new(name.to_string());
        self.0.insert(name.to_string(), Arc::clone(&n));
        n
    }
}

impl SnapshotEntry {
    /// Checks one entry (at `index` of its list, for the error) and converts it: the
    /// shared validation of snapshots, feed deltas and miss lookups.
    pub fn into_info(
        self,
        index: usize,
        names: &mut AccountNames,
    ) -> Result<TokenInfo, SnapshotError> {
        let bad = |problem| SnapshotError::Entry {
            index,
            token_id: self.token_id.clone(),
            problem,
        };
        let digest = match (&self.token, &self.digest) {
            (Some(token), None) if digest::is_well_formed(token) => Digest::of(token),
            (Some(_), None) => return Err(bad("token must be 16-64 chars of [A-Za-z0-9_-]")),
            (None, Some(hex)) => {
                Digest::from_hex(hex).ok_or_else(|| bad("digest must be 64 hex chars"))?
            }
            _ => return Err(bad("needs exactly one of `token` or `digest`")),
        };
        if self.token_id.is_empty() {
            return Err(bad("token_id must not be empty"));
        }
        Ok(TokenInfo {
            digest,
            token_id: TokenId(self.token_id.as_str().into()),
            account_id: AccountId(self.account_id),
            account_name: names.intern(&self.account_name),
            kind: self.kind,
            enabled: self.enabled,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("not a token snapshot: {0}")]
    Syntax(#[from] serde_json::Error),
    #[error("tokens[{index}] (token_id {token_id:?}): {problem}")]
    Entry {
        index: usize,
        token_id: String,
        problem: &'static str,
    },
    #[error(transparent)]
    Grant(#[from] GrantWireError),
}

impl Snapshot {
    pub fn parse(bytes: &[u8]) -> Result<Snapshot, SnapshotError> {
        Ok(serde_json::from_slice(bytes)?)
    }

    /// Builds the table and, when the snapshot carries them, the read grants (at the
    /// snapshot's version), refusing the whole snapshot on the first bad entry.
    pub fn into_state(mut self) -> Result<(TokenTable, Option<ReadGrants>), SnapshotError> {
        let grants = self
            .grants
            .take()
            .map(|g| ReadGrants::from_wire(self.version, g))
            .transpose()?;
        Ok((self.into_table()?, grants))
    }

    /// Builds the table, refusing the whole snapshot on the first bad entry. Grants, if
    /// any, are not looked at (`into_state` builds them).
    pub fn into_table(self) -> Result<TokenTable, SnapshotError> {
        let mut table = TokenTable::with_capacity(self.version, self.tokens.len());
        let mut names = AccountNames::default();
        for (index, e) in self.tokens.into_iter().enumerate() {
            let info = e.into_info(index, &mut names)?;
            let token_id = info.token_id.0.to_string();
            if !table.insert(info) {
                return Err(SnapshotError::Entry {
                    index,
                    token_id,
                    problem: "the same token appears twice",
                });
            }
        }
        Ok(table)
    }

    /// The digest-only form of a table and its grants: what a gateway persists. The
    /// version is the newer of the two (a change to grants alone leaves the table's).
    pub fn from_state(table: &TokenTable, grants: Option<&ReadGrants>) -> Snapshot {
        let mut snapshot = Snapshot::from_table(table);
        if let Some(grants) = grants {
            snapshot.version = snapshot.version.max(grants.version);
            snapshot.grants = Some(grants.to_wire());
        }
        snapshot
    }

    /// The digest-only form of a table: what is persisted and what the feed carries.
    pub fn from_table(table: &TokenTable) -> Snapshot {
        let tokens = table
            .iter()
            .map(|info| SnapshotEntry {
                token: None,
                digest: Some(info.digest.to_hex()),
                token_id: info.token_id.0.to_string(),
                account_id: info.account_id.0,
                account_name: info.account_name.to_string(),
                kind: info.kind,
                enabled: info.enabled,
            })
            .collect();
        Snapshot {
            version: table.version,
            tokens,
            grants: None,
            volumes: None,
            filters: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Kind;

    #[test]
    fn plain_and_digest_entries_build_one_table() {
        let digest = Digest::of("metrics-token-0000000001").to_hex();
        let json = format!(
            r#"{{"version": 7, "tokens": [
              {{"token": "logs-token-00000000001", "token_id": "t-1", "account_id": 1001,
                "account_name": "acme", "kind": "logs", "enabled": true}},
              {{"digest": "{digest}", "token_id": "t-2", "account_id": 1001,
                "account_name": "acme", "kind": "metrics", "enabled": false}}]}}"#
        );
        let table = Snapshot::parse(json.as_bytes())
            .unwrap()
            .into_table()
            .unwrap();
        assert_eq!(table.version, 7);
        assert_eq!(table.len(), 2);
        let t2 = table.get(&Digest::of("metrics-token-0000000001")).unwrap();
        assert!(!t2.enabled);
        assert_eq!(t2.kind, Kind::Metrics);
    }

    #[test]
    fn bad_entries_refuse_the_whole_snapshot_without_echoing_the_token() {
        let json = r#"{"version": 1, "tokens": [
            {"token": "bad token with spaces!", "token_id": "t-9", "account_id": 1, "kind": "logs"}]}"#;
        let err = Snapshot::parse(json.as_bytes())
            .unwrap()
            .into_table()
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("tokens[0]") && msg.contains("t-9"), "{msg}");
        assert!(!msg.contains("spaces"), "{msg}");
    }

    #[test]
    fn duplicate_tokens_are_refused() {
        let json = r#"{"version": 1, "tokens": [
            {"token": "aaaaaaaaaaaaaaaa", "token_id": "t-1", "account_id": 1, "kind": "logs"},
            {"token": "aaaaaaaaaaaaaaaa", "token_id": "t-2", "account_id": 1, "kind": "logs"}]}"#;
        assert!(
            Snapshot::parse(json.as_bytes())
                .unwrap()
                .into_table()
                .is_err()
        );
    }

    #[test]
    fn persisted_form_holds_digests_only_and_round_trips() {
        let json = r#"{"version": 3, "tokens": [
            {"token": "aaaaaaaaaaaaaaaa", "token_id": "t-1", "account_id": 1, "kind": "logs"}]}"#;
        let table = Snapshot::parse(json.as_bytes())
            .unwrap()
            .into_table()
            .unwrap();
        let out = serde_json::to_string(&Snapshot::from_table(&table)).unwrap();
        assert!(!out.contains("aaaaaaaaaaaaaaaa"));
        let again = Snapshot::parse(out.as_bytes())
            .unwrap()
            .into_table()
            .unwrap();
        assert_eq!(again.version, 3);
        assert!(again.get(&Digest::of("aaaaaaaaaaaaaaaa")).is_some());
    }
}
