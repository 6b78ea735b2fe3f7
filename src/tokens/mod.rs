//! The token table (DESIGN §2): an immutable map `digest -> Arc<TokenInfo>` published
//! through `ArcSwap`. `authenticate` does a syntax check, one SHA-256, one atomic load and
//! one hash lookup — no lock, no await. Sources build whole new tables off the request path
//! and swap them in with `install`.

pub mod digest;
pub mod file;
pub mod persist;
pub mod snapshot;

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwapOption;

use crate::model::{AccountId, AuthFailure, Kind, TokenId};
use crate::telemetry::Telemetry;
use digest::BuildDigestHasher;
pub use digest::Digest;

/// What the gateway knows about one token. The token itself is not here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub token_id: TokenId,
    pub account_id: AccountId,
    pub account_name: Arc<str>,
    pub kind: Kind,
    /// Disabled tokens stay in the table: "disabled" and "unknown" get different answers
    /// (a message naming the reason on the logs route, 403 vs 401 on OTLP).
    pub enabled: bool,
}

/// One immutable generation of the token table.
#[derive(Debug, Default)]
pub struct TokenTable {
    pub version: u64,
    entries: HashMap<Digest, Arc<TokenInfo>, BuildDigestHasher>,
}

impl TokenTable {
    pub fn new(version: u64, entries: HashMap<Digest, Arc<TokenInfo>, BuildDigestHasher>) -> Self {
        TokenTable { version, entries }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, digest: &Digest) -> Option<&Arc<TokenInfo>> {
        self.entries.get(digest)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Digest, &Arc<TokenInfo>)> {
        self.entries.iter()
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
    telemetry: Arc<Telemetry>,
}

impl Tokens {
    pub fn new(telemetry: Arc<Telemetry>) -> Tokens {
        Tokens {
            current: ArcSwapOption::empty(),
            telemetry,
        }
    }

    /// Checks a presented token for `kind`: syntax, digest, lookup, enabled, kind.
    /// Failures are counted here, so every route counts them the same way.
    pub fn authenticate(
        &self,
        token: Option<&str>,
        kind: Kind,
    ) -> Result<Arc<TokenInfo>, AuthError> {
        let result = self.lookup(token, kind);
        if let Err(e) = &result
            && let Some(reason) = e.failure()
        {
            self.telemetry.auth_failed(reason);
        }
        result
    }

    fn lookup(&self, token: Option<&str>, kind: Kind) -> Result<Arc<TokenInfo>, AuthError> {
        let token = token.filter(|t| !t.is_empty()).ok_or(AuthError::Missing)?;
        if !digest::is_well_formed(token) {
            return Err(AuthError::Malformed);
        }
        let digest = Digest::of(token);
        let guard = self.current.load();
        let table = guard.as_ref().ok_or(AuthError::NotReady)?;
        let info = table.get(&digest).ok_or(AuthError::Unknown)?;
        if !info.enabled {
            return Err(AuthError::Disabled);
        }
        if info.kind != kind {
            return Err(AuthError::WrongKind { expected: kind });
        }
        Ok(Arc::clone(info))
    }

    /// Publishes a new table; readers see it on their next load.
    pub fn install(&self, table: Arc<TokenTable>) {
        self.telemetry.token_table_fresh(table.len(), table.version);
        self.current.store(Some(table));
    }

    /// The serving table, if any (for persisting and for `/readyz`).
    pub fn current(&self) -> Option<Arc<TokenTable>> {
        self.current.load_full()
    }

    pub fn is_loaded(&self) -> bool {
        self.current.load().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table_with(token: &str, kind: Kind, enabled: bool) -> TokenTable {
        let mut entries = HashMap::default();
        entries.insert(
            Digest::of(token),
            Arc::new(TokenInfo {
                token_id: TokenId("t-1".into()),
                account_id: AccountId(7),
                account_name: "acme".into(),
                kind,
                enabled,
            }),
        );
        TokenTable::new(1, entries)
    }

    #[test]
    fn authenticate_tells_every_failure_apart() {
        let tokens = Tokens::new(Arc::new(Telemetry::new()));
        let good = "aaaaaaaaaaaaaaaaaaaaaaaa";
        assert_eq!(
            tokens.authenticate(Some(good), Kind::Logs),
            Err(AuthError::NotReady)
        );
        tokens.install(Arc::new(table_with(good, Kind::Logs, true)));
        assert_eq!(
            tokens.authenticate(None, Kind::Logs),
            Err(AuthError::Missing)
        );
        assert_eq!(
            tokens.authenticate(Some(""), Kind::Logs),
            Err(AuthError::Missing)
        );
        assert_eq!(
            tokens.authenticate(Some("short"), Kind::Logs),
            Err(AuthError::Malformed)
        );
        assert_eq!(
            tokens.authenticate(Some("bbbbbbbbbbbbbbbbbbbbbbbb"), Kind::Logs),
            Err(AuthError::Unknown)
        );
        assert_eq!(
            tokens.authenticate(Some(good), Kind::Traces),
            Err(AuthError::WrongKind {
                expected: Kind::Traces
            })
        );
        assert_eq!(
            tokens
                .authenticate(Some(good), Kind::Logs)
                .unwrap()
                .account_id,
            AccountId(7)
        );
        tokens.install(Arc::new(table_with(good, Kind::Logs, false)));
        assert_eq!(
            tokens.authenticate(Some(good), Kind::Logs),
            Err(AuthError::Disabled)
        );
    }
}
