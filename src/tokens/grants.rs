//! Read grants (DESIGN §4 "Read path"): who may read which account's records, replicated
//! from the control plane's feed beside the shipping tokens, so the tail authorizes a
//! subscriber — and re-checks it on every change — without a control-plane round trip.
//!
//! `ReadGrants` is one immutable generation, published by `Tokens` through `ArcSwap` like
//! the token table; a feed delta builds the next one from a copy of the collections it
//! touches (the others are shared) off the request path. It holds digests only, never a
//! token. Time is the caller's (`now_ms`): an expiry or a trial's end needs no feed
//! change, and tests need no clock.
//!
//! An API token reaches its own account and every account its account owns that is not a
//! logs sub-account, or is one that is `searchable` (tied metrics, tracing and security
//! accounts always). It works while its main account's plan allows API tokens
//! (`api_tokens_usable_until_ms`). A shared token reaches its account through its filters
//! until it expires.

use std::collections::HashMap;
use std::sync::Arc;

use super::Digest;
use super::digest::{self, BuildDigestHasher};
pub use super::wire::FilterOp;
use super::wire::{
    AccountType, FieldValue, GrantAccount, GrantApiToken, GrantChanges, GrantSharedToken, Grants,
};
use crate::model::AccountId;

/// What an API token may read: its own account and the accounts it reaches from there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiReach {
    /// The token's own account.
    pub home: AccountId,
    /// Sorted, `home` included.
    pub accounts: Vec<AccountId>,
}

/// What a shared token may read: its account's records that match its filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedGrant {
    /// The management API's id (what `Tokens::record_shared_use` reports).
    pub token_id: u64,
    pub account: AccountId,
    /// `(field, value)`, exact matches combined by `op`; empty: every record.
    pub filters: Vec<(String, String)>,
    pub op: FilterOp,
    /// Epoch milliseconds; `None` for a legacy token, which never expires.
    pub expires_at_ms: Option<u64>,
}

/// Why a presented read credential grants nothing. `Display` never contains the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    /// Malformed, or no such token (deleted, never existed, or not replicated yet).
    #[error("token is not valid")]
    Unknown,
    /// A shared token past its expiry.
    #[error("token has expired")]
    Expired,
    /// An API token whose account's plan does not include API access (community), or
    /// whose trial has ended.
    #[error("the account's plan does not include API access")]
    NotUsable,
}

/// An account's read-relevant attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Account {
    owner: Option<AccountId>,
    account_type: AccountType,
    searchable: bool,
    usable_until_ms: Option<u64>,
}

impl Account {
    /// Whether an API token of the owner reaches this account.
    fn readable_by_owner(&self) -> bool {
        self.account_type != AccountType::Logs || self.searchable
    }
}

type ByDigest<V> = HashMap<Digest, V, BuildDigestHasher>;

/// One immutable generation of the read grants.
#[derive(Debug, Clone, Default)]
pub struct ReadGrants {
    /// The feed version this generation reflects (0: nothing loaded yet).
    pub version: u64,
    accounts: Arc<HashMap<AccountId, Account>>,
    /// Owner → the accounts it owns, sorted: derived from `accounts`, kept in step.
    owned: Arc<HashMap<AccountId, Vec<AccountId>>>,
    api_tokens: Arc<ByDigest<AccountId>>,
    shared_tokens: Arc<ByDigest<Arc<SharedGrant>>>,
}

impl ReadGrants {
    /// No grants at `version`: what a source that sends none grants.
    pub fn empty(version: u64) -> ReadGrants {
        ReadGrants {
            version,
            ..ReadGrants::default()
        }
    }

    /// What an API token may read at `now_ms`. One SHA-256 and a few hash lookups; the
    /// reach is built per call (a main account owns few accounts).
    pub fn api_token(&self, secret: &str, now_ms: u64) -> Result<ApiReach, GrantError> {
        let home = *self
            .api_tokens
            .get(&digest_of(secret)?)
            .ok_or(GrantError::Unknown)?;
        let account = self.accounts.get(&home).ok_or(GrantError::Unknown)?;
        // Owned accounts follow their main account's plan and trial.
        let main = match account.owner {
            Some(owner) => self.accounts.get(&owner).ok_or(GrantError::Unknown)?,
            None => account,
        };
        if main.usable_until_ms.is_some_and(|until| now_ms >= until) {
            return Err(GrantError::NotUsable);
        }
        let mut accounts = vec![home];
        if let Some(owned) = self.owned.get(&home) {
            accounts.extend(owned.iter().copied().filter(|id| {
                self.accounts
                    .get(id)
                    .is_some_and(Account::readable_by_owner)
            }));
        }
        accounts.sort_unstable();
        accounts.dedup();
        Ok(ApiReach { home, accounts })
    }

    /// What a shared token may read at `now_ms`.
    pub fn shared_token(&self, secret: &str, now_ms: u64) -> Result<SharedGrant, GrantError> {
        let grant = self
            .shared_tokens
            .get(&digest_of(secret)?)
            .ok_or(GrantError::Unknown)?;
        if grant.expires_at_ms.is_some_and(|at| now_ms >= at) {
            return Err(GrantError::Expired);
        }
        Ok(SharedGrant::clone(grant))
    }

    pub fn api_token_count(&self) -> usize {
        self.api_tokens.len()
    }

    pub fn shared_token_count(&self) -> usize {
        self.shared_tokens.len()
    }

    /// Builds a generation from a snapshot's grants, refusing the whole of it on the
    /// first bad row (as the token table does).
    pub fn from_wire(version: u64, grants: Grants) -> Result<ReadGrants, GrantWireError> {
        let mut built = ReadGrants {
            version,
            ..ReadGrants::default()
        };
        let accounts = Arc::make_mut(&mut built.accounts);
        for (index, row) in grants.accounts.into_iter().enumerate() {
            let (id, account) = account(row);
            if accounts.insert(id, account).is_some() {
                return Err(bad("accounts", index, "the same account appears twice"));
            }
        }
        built.owned = Arc::new(owned_index(&built.accounts));
        let api_tokens = Arc::make_mut(&mut built.api_tokens);
        for (index, row) in grants.api_tokens.into_iter().enumerate() {
            let (digest, account) = api_token(index, &row)?;
            if api_tokens.insert(digest, account).is_some() {
                return Err(bad("api_tokens", index, "the same token appears twice"));
            }
        }
        let shared_tokens = Arc::make_mut(&mut built.shared_tokens);
        for (index, row) in grants.shared_tokens.into_iter().enumerate() {
            let (digest, grant) = shared_token(index, row)?;
            if shared_tokens.insert(digest, Arc::new(grant)).is_some() {
                return Err(bad("shared_tokens", index, "the same token appears twice"));
            }
        }
        Ok(built)
    }

    /// The next generation: this one with `delta` applied (deletes first, then upserts,
    /// each replacing the row of the same key). Collections the delta does not touch are
    /// shared with this generation.
    pub fn with_delta(&self, delta: GrantDelta) -> ReadGrants {
        let mut next = ReadGrants {
            version: delta.version,
            ..self.clone()
        };
        if !delta.deleted_accounts.is_empty() || !delta.accounts.is_empty() {
            let accounts = Arc::make_mut(&mut next.accounts);
            let owned = Arc::make_mut(&mut next.owned);
            for id in &delta.deleted_accounts {
                if let Some(gone) = accounts.remove(id) {
                    disown(owned, gone.owner, *id);
                }
            }
            for (id, account) in delta.accounts {
                let owner = account.owner;
                if let Some(before) = accounts.insert(id, account) {
                    disown(owned, before.owner, id);
                }
                if let Some(owner) = owner {
                    let list = owned.entry(owner).or_default();
                    if let Err(at) = list.binary_search(&id) {
                        list.insert(at, id);
                    }
                }
            }
        }
        if !delta.deleted_api_tokens.is_empty() || !delta.api_tokens.is_empty() {
            let api_tokens = Arc::make_mut(&mut next.api_tokens);
            for digest in &delta.deleted_api_tokens {
                api_tokens.remove(digest);
            }
            api_tokens.extend(delta.api_tokens);
        }
        if !delta.deleted_shared_tokens.is_empty() || !delta.shared_tokens.is_empty() {
            let shared_tokens = Arc::make_mut(&mut next.shared_tokens);
            for digest in &delta.deleted_shared_tokens {
                shared_tokens.remove(digest);
            }
            shared_tokens.extend(
                delta
                    .shared_tokens
                    .into_iter()
                    .map(|(digest, grant)| (digest, Arc::new(grant))),
            );
        }
        next
    }

    /// The wire form, digests only: what is persisted with the token table.
    pub fn to_wire(&self) -> Grants {
        let mut accounts: Vec<GrantAccount> = self
            .accounts
            .iter()
            .map(|(id, a)| GrantAccount {
                account_id: *id,
                owner_id: a.owner,
                account_type: a.account_type,
                searchable: a.searchable,
                api_tokens_usable_until_ms: a.usable_until_ms,
            })
            .collect();
        accounts.sort_by_key(|a| a.account_id);
        Grants {
            accounts,
            api_tokens: self
                .api_tokens
                .iter()
                .map(|(digest, account)| GrantApiToken {
                    digest: digest.to_hex(),
                    account_id: *account,
                })
                .collect(),
            shared_tokens: self
                .shared_tokens
                .iter()
                .map(|(digest, g)| GrantSharedToken {
                    digest: digest.to_hex(),
                    token_id: g.token_id,
                    account_id: g.account,
                    filters: g
                        .filters
                        .iter()
                        .map(|(field, value)| FieldValue {
                            field: field.clone(),
                            value: value.clone(),
                        })
                        .collect(),
                    operator: g.op,
                    expires_at_ms: g.expires_at_ms,
                })
                .collect(),
        }
    }
}

/// What changed in the grants between two feed versions, validated.
#[derive(Debug, Default)]
pub struct GrantDelta {
    pub version: u64,
    accounts: Vec<(AccountId, Account)>,
    api_tokens: Vec<(Digest, AccountId)>,
    shared_tokens: Vec<(Digest, SharedGrant)>,
    deleted_accounts: Vec<AccountId>,
    deleted_api_tokens: Vec<Digest>,
    deleted_shared_tokens: Vec<Digest>,
}

impl GrantDelta {
    /// Validates a change answer's grants, refusing all of them on the first bad row.
    pub fn from_wire(version: u64, changes: GrantChanges) -> Result<GrantDelta, GrantWireError> {
        let (upserts, deletes) = (changes.upserts, changes.deletes);
        let hexes = |collection, list: &[String]| {
            list.iter()
                .enumerate()
                .map(|(index, hex)| {
                    Digest::from_hex(hex)
                        .ok_or_else(|| bad(collection, index, "a delete must be 64 hex chars"))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(GrantDelta {
            version,
            accounts: upserts.accounts.into_iter().map(account).collect(),
            api_tokens: upserts
                .api_tokens
                .iter()
                .enumerate()
                .map(|(index, row)| api_token(index, row))
                .collect::<Result<_, _>>()?,
            shared_tokens: upserts
                .shared_tokens
                .into_iter()
                .enumerate()
                .map(|(index, row)| shared_token(index, row))
                .collect::<Result<_, _>>()?,
            deleted_accounts: deletes.accounts,
            deleted_api_tokens: hexes("api_tokens", &deletes.api_tokens)?,
            deleted_shared_tokens: hexes("shared_tokens", &deletes.shared_tokens)?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
            && self.api_tokens.is_empty()
            && self.shared_tokens.is_empty()
            && self.deleted_accounts.is_empty()
            && self.deleted_api_tokens.is_empty()
            && self.deleted_shared_tokens.is_empty()
    }
}

/// The digest of a presented token, or `Unknown` for one that cannot be a token (checked
/// before hashing, so junk costs nothing).
fn digest_of(secret: &str) -> Result<Digest, GrantError> {
    if !digest::is_well_formed(secret) {
        return Err(GrantError::Unknown);
    }
    Ok(Digest::of(secret))
}

/// A grant in a snapshot or a change set that cannot be installed.
#[derive(Debug, thiserror::Error)]
#[error("grants.{collection}[{index}]: {problem}")]
pub struct GrantWireError {
    collection: &'static str,
    index: usize,
    problem: &'static str,
}

fn bad(collection: &'static str, index: usize, problem: &'static str) -> GrantWireError {
    GrantWireError {
        collection,
        index,
        problem,
    }
}

fn account(row: GrantAccount) -> (AccountId, Account) {
    (
        row.account_id,
        Account {
            owner: row.owner_id,
            account_type: row.account_type,
            searchable: row.searchable,
            usable_until_ms: row.api_tokens_usable_until_ms,
        },
    )
}

fn api_token(index: usize, row: &GrantApiToken) -> Result<(Digest, AccountId), GrantWireError> {
    let digest = Digest::from_hex(&row.digest)
        .ok_or_else(|| bad("api_tokens", index, "digest must be 64 hex chars"))?;
    Ok((digest, row.account_id))
}

fn shared_token(
    index: usize,
    row: GrantSharedToken,
) -> Result<(Digest, SharedGrant), GrantWireError> {
    let digest = Digest::from_hex(&row.digest)
        .ok_or_else(|| bad("shared_tokens", index, "digest must be 64 hex chars"))?;
    if row
        .filters
        .iter()
        .any(|f| f.field.is_empty() || f.value.is_empty())
    {
        return Err(bad(
            "shared_tokens",
            index,
            "a filter needs a field and a value",
        ));
    }
    Ok((
        digest,
        SharedGrant {
            token_id: row.token_id,
            account: row.account_id,
            filters: row
                .filters
                .into_iter()
                .map(|f| (f.field, f.value))
                .collect(),
            op: row.operator,
            expires_at_ms: row.expires_at_ms,
        },
    ))
}

/// Owner → owned accounts, sorted.
fn owned_index(accounts: &HashMap<AccountId, Account>) -> HashMap<AccountId, Vec<AccountId>> {
    let mut owned: HashMap<AccountId, Vec<AccountId>> = HashMap::new();
    for (id, account) in accounts {
        if let Some(owner) = account.owner {
            owned.entry(owner).or_default().push(*id);
        }
    }
    for list in owned.values_mut() {
        list.sort_unstable();
    }
    owned
}

/// Takes `id` off `owner`'s list (an account deleted or moved).
fn disown(owned: &mut HashMap<AccountId, Vec<AccountId>>, owner: Option<AccountId>, id: AccountId) {
    let Some(owner) = owner else { return };
    if let Some(list) = owned.get_mut(&owner) {
        list.retain(|a| *a != id);
        if list.is_empty() {
            owned.remove(&owner);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::wire::GrantDeletes;

    const MAIN_API: &str = "mainApiToken00000000000000000001";
    const SUB_API: &str = "subApiToken000000000000000000002";
    const SHARED: &str = "sharedToken000000000000000000003";
    const LEGACY: &str = "legacyShared00000000000000000004";

    fn row(
        id: u64,
        owner: Option<u64>,
        account_type: AccountType,
        searchable: bool,
        until: Option<u64>,
    ) -> GrantAccount {
        GrantAccount {
            account_id: AccountId(id),
            owner_id: owner.map(AccountId),
            account_type,
            searchable,
            api_tokens_usable_until_ms: until,
        }
    }

    fn api(token: &str, account: u64) -> GrantApiToken {
        GrantApiToken {
            digest: Digest::of(token).to_hex(),
            account_id: AccountId(account),
        }
    }

    fn shared(token: &str, id: u64, expires: Option<u64>) -> GrantSharedToken {
        GrantSharedToken {
            digest: Digest::of(token).to_hex(),
            token_id: id,
            account_id: AccountId(1),
            filters: vec![FieldValue {
                field: "service".into(),
                value: "web".into(),
            }],
            operator: FilterOp::Or,
            expires_at_ms: expires,
        }
    }

    /// Main account 1 (pro) owns: sub-account 2 (searchable), sub-account 3 (not),
    /// metrics 4, tracing 5, security 6. Account 9 is another main account.
    fn grants() -> ReadGrants {
        ReadGrants::from_wire(
            7,
            Grants {
                accounts: vec![
                    row(1, None, AccountType::Logs, false, None),
                    row(2, Some(1), AccountType::Logs, true, None),
                    row(3, Some(1), AccountType::Logs, false, None),
                    row(4, Some(1), AccountType::Metrics, false, None),
                    row(5, Some(1), AccountType::Tracing, false, None),
                    row(6, Some(1), AccountType::Security, false, None),
                    row(9, None, AccountType::Logs, false, Some(0)),
                ],
                api_tokens: vec![api(MAIN_API, 1), api(SUB_API, 3)],
                shared_tokens: vec![shared(SHARED, 17, Some(5_000)), shared(LEGACY, 18, None)],
            },
        )
        .unwrap()
    }

    fn ids(list: &[u64]) -> Vec<AccountId> {
        list.iter().copied().map(AccountId).collect()
    }

    #[test]
    fn an_api_token_reaches_its_account_searchable_subs_and_tied_accounts() {
        let g = grants();
        let reach = g.api_token(MAIN_API, 1_000).unwrap();
        assert_eq!(reach.home, AccountId(1));
        assert_eq!(reach.accounts, ids(&[1, 2, 4, 5, 6]));
        // A sub-account's own token reaches its account, searchable or not.
        let sub = g.api_token(SUB_API, 1_000).unwrap();
        assert_eq!((sub.home, sub.accounts), (AccountId(3), ids(&[3])));
        assert_eq!(
            g.api_token("noSuchToken00000000000000000000x", 0),
            Err(GrantError::Unknown)
        );
        assert_eq!(g.api_token("not a token", 0), Err(GrantError::Unknown));
        // A shared token is not an API token, nor the other way round.
        assert_eq!(g.api_token(SHARED, 0), Err(GrantError::Unknown));
        assert_eq!(g.shared_token(MAIN_API, 0), Err(GrantError::Unknown));
    }

    #[test]
    fn api_tokens_stop_when_the_plan_does_not_allow_them_or_the_trial_ends() {
        let g = grants().with_delta(
            GrantDelta::from_wire(
                8,
                GrantChanges {
                    upserts: Grants {
                        // The main account is on a trial that ends at 10_000; account 9 is
                        // community; its token must not work at all.
                        accounts: vec![row(1, None, AccountType::Logs, false, Some(10_000))],
                        api_tokens: vec![api("communityApiToken000000000000009", 9)],
                        ..Grants::default()
                    },
                    ..GrantChanges::default()
                },
            )
            .unwrap(),
        );
        assert!(g.api_token(MAIN_API, 9_999).is_ok());
        assert_eq!(g.api_token(MAIN_API, 10_000), Err(GrantError::NotUsable));
        // The sub-account's token follows its main account's trial.
        assert!(g.api_token(SUB_API, 9_999).is_ok());
        assert_eq!(g.api_token(SUB_API, 10_000), Err(GrantError::NotUsable));
        assert_eq!(
            g.api_token("communityApiToken000000000000009", 0),
            Err(GrantError::NotUsable)
        );
    }

    #[test]
    fn a_shared_token_carries_its_filters_until_it_expires() {
        let g = grants();
        let grant = g.shared_token(SHARED, 4_999).unwrap();
        assert_eq!(
            grant,
            SharedGrant {
                token_id: 17,
                account: AccountId(1),
                filters: vec![("service".into(), "web".into())],
                op: FilterOp::Or,
                expires_at_ms: Some(5_000),
            }
        );
        assert_eq!(g.shared_token(SHARED, 5_000), Err(GrantError::Expired));
        assert!(
            g.shared_token(LEGACY, u64::MAX).is_ok(),
            "legacy: no expiry"
        );
    }

    #[test]
    fn a_delta_moves_reach_and_shares_untouched_collections() {
        let before = grants();
        let delta = GrantDelta::from_wire(
            9,
            GrantChanges {
                upserts: Grants {
                    // Sub-account 2 made not searchable, 3 made searchable, a new
                    // sub-account 10 (searchable) and a new security account 11.
                    accounts: vec![
                        row(2, Some(1), AccountType::Logs, false, None),
                        row(3, Some(1), AccountType::Logs, true, None),
                        row(10, Some(1), AccountType::Logs, true, None),
                        row(11, Some(1), AccountType::Security, false, None),
                    ],
                    ..Grants::default()
                },
                deletes: GrantDeletes {
                    accounts: vec![AccountId(5)],
                    ..GrantDeletes::default()
                },
            },
        )
        .unwrap();
        let after = before.with_delta(delta);
        assert_eq!(after.version, 9);
        assert_eq!(
            after.api_token(MAIN_API, 0).unwrap().accounts,
            ids(&[1, 3, 4, 6, 10, 11])
        );
        // The old generation is untouched; the token maps are shared, not copied.
        assert_eq!(
            before.api_token(MAIN_API, 0).unwrap().accounts,
            ids(&[1, 2, 4, 5, 6])
        );
        assert!(Arc::ptr_eq(&before.api_tokens, &after.api_tokens));
        assert!(Arc::ptr_eq(&before.shared_tokens, &after.shared_tokens));

        // Deleting tokens and editing a shared token's filters.
        let mut edited = shared(SHARED, 17, Some(6_000));
        edited.filters.clear();
        edited.operator = FilterOp::And;
        let after = after.with_delta(
            GrantDelta::from_wire(
                10,
                GrantChanges {
                    upserts: Grants {
                        shared_tokens: vec![edited],
                        ..Grants::default()
                    },
                    deletes: GrantDeletes {
                        api_tokens: vec![Digest::of(SUB_API).to_hex()],
                        shared_tokens: vec![Digest::of(LEGACY).to_hex()],
                        ..GrantDeletes::default()
                    },
                },
            )
            .unwrap(),
        );
        assert_eq!(after.api_token(SUB_API, 0), Err(GrantError::Unknown));
        assert_eq!(after.shared_token(LEGACY, 0), Err(GrantError::Unknown));
        let grant = after.shared_token(SHARED, 5_500).unwrap();
        assert!(grant.filters.is_empty());
        assert_eq!(grant.op, FilterOp::And);
    }

    #[test]
    fn the_wire_form_round_trips_and_bad_rows_refuse_the_whole() {
        let g = grants();
        let again = ReadGrants::from_wire(7, g.to_wire()).unwrap();
        assert_eq!(
            again.api_token(MAIN_API, 0),
            g.api_token(MAIN_API, 0),
            "same reach after a round trip"
        );
        assert_eq!(again.shared_token(SHARED, 0), g.shared_token(SHARED, 0));
        let text = serde_json::to_string(&g.to_wire()).unwrap();
        assert!(
            !text.contains(MAIN_API) && !text.contains(SHARED),
            "digests only"
        );

        let mut wire = g.to_wire();
        wire.api_tokens.push(api(MAIN_API, 2));
        let err = ReadGrants::from_wire(7, wire).unwrap_err().to_string();
        assert!(
            err.contains("api_tokens[") && err.contains("twice"),
            "{err}"
        );
        let mut wire = g.to_wire();
        wire.shared_tokens[0].digest = "xyz".into();
        assert!(ReadGrants::from_wire(7, wire).is_err());
        let bad_delete = GrantChanges {
            deletes: GrantDeletes {
                api_tokens: vec!["00".into()],
                ..GrantDeletes::default()
            },
            ..GrantChanges::default()
        };
        assert!(GrantDelta::from_wire(8, bad_delete).is_err());
    }
}
