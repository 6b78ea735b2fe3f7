//! One function per thing that can be done to an account — create a shipping token,
//! rename it, disable it, create an API token, revoke a sub-account's access, … — shared
//! by the management API and the Manage Tokens page, so no product rule is written twice.
//!
//! Each runs the same steps: may this caller do this to this account (`callers::Caller`),
//! do the product's rules allow it (`rules`, pure), then one transaction that locks the
//! account, changes it, records the audit event and, for what gateways replicate (shipping
//! tokens, the read grants: accounts' `searchable`, API tokens, shared tokens; and drop
//! filters), moves
//! the feed version; after the commit, long-polling gateways are woken
//! (`ControlPlane::published`). `change` holds that transaction's frame.
//! They take and return typed values; the HTTP shapes live with the API handlers.

pub mod accounts;
pub mod api_tokens;
pub mod audit;
pub mod callers;
mod change;
pub mod feed;
pub mod log_drop_filters;
pub mod metrics_accounts;
pub mod metrics_drop_filters;
pub mod sessions;
pub mod shared_tokens;
pub mod shipping_tokens;
pub mod sub_accounts;
pub mod users;
pub mod volume_overview;
