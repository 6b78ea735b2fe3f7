//! Every rule of the control plane (DESIGN §4, the management API decisions) through the
//! real HTTP API, against SQLite and against PostgreSQL: one test per behaviour, each run
//! once per backend (`on_both_backends!`). Each refusal is checked for its status,
//! `errorCode` and message. One test binary: a module per resource, and below, what they
//! share.

#[path = "../common/mod.rs"]
mod common;

mod access;
mod accounts;
mod admin_email;
mod api_tokens;
mod audit;
mod feed;
mod framing;
mod ids;
mod log_drop_filters;
mod metrics_accounts;
mod metrics_drop_filters;
mod rate_limits;
mod shared_tokens;
mod shipping_tokens;
mod sub_accounts;
mod volume;

use common::TestServer;
use common::control::{ControlPlane, use_control_plane};
use serde_json::{Value, json};

const LOGS: &str = "/v1/log-shipping/tokens";
const METRICS: &str = "/v1/metrics-shipping/tokens";
const TRACES: &str = "/v1/tracing-shipping/tokens";
const SUBS: &str = "/v1/account-management/time-based-accounts";

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

struct Account {
    id: i64,
    shipping_token: String,
    api_token: Option<String>,
}

impl Account {
    fn api(&self) -> &str {
        self.api_token
            .as_deref()
            .expect("this account has an API token")
    }
}

async fn account(cp: &ControlPlane, body: Value) -> Account {
    let created = cp.create_account(body).await;
    Account {
        id: created["accountId"].as_i64().expect("accountId"),
        shipping_token: created["accountToken"]
            .as_str()
            .expect("accountToken")
            .to_string(),
        api_token: created["apiToken"].as_str().map(str::to_string),
    }
}

async fn main_account(cp: &ControlPlane, name: &str, plan: &str) -> Account {
    account(cp, json!({"accountName": name, "plan": plan})).await
}

/// An account of `kind` (metrics, tracing, security) tied to the main account `owner`.
async fn tied_account(cp: &ControlPlane, owner: &Account, kind: &str, name: &str) -> Account {
    account(
        cp,
        json!({"accountName": name, "type": kind, "ownerAccountId": owner.id}),
    )
    .await
}

/// A sub-account `name` of `main`, made with its API token: its id.
async fn sub_account(cp: &ControlPlane, main: &Account, name: &str) -> i64 {
    cp.post(SUBS)
        .token(main.api())
        .json(json!({"accountName": name, "retentionDays": 7}))
        .send()
        .await
        .expect_ok("sub-account")["accountId"]
        .as_i64()
        .expect("accountId")
}

/// The shipping tokens under `path` of the account `api` acts on, in the search's default
/// order: (id, enabled).
async fn token_ids(cp: &ControlPlane, path: &str, api: &str) -> Vec<(i64, bool)> {
    let page = cp
        .post(&format!("{path}/search"))
        .token(api)
        .json(json!({"pagination": {"pageSize": 1000}}))
        .send()
        .await
        .expect_ok("search tokens");
    page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["id"].as_i64().unwrap(), t["enabled"].as_bool().unwrap()))
        .collect()
}

/// The sub-account `id` as `GET …/{id}` answers it (`what` names the read if it fails).
async fn read_sub(cp: &ControlPlane, main: &Account, id: i64, what: &str) -> Value {
    cp.get(&format!("{SUBS}/{id}"))
        .token(main.api())
        .send()
        .await
        .expect_ok(what)
}

/// The newest audit events of the account `api` acts on, as (action, target).
async fn latest_events(cp: &ControlPlane, api: &str, n: usize) -> Vec<(String, String)> {
    let page = cp
        .get(&format!("/v1/audit-events?pageSize={n}"))
        .token(api)
        .send()
        .await
        .expect_ok("audit events");
    page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["target"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn event(action: &str, target: String) -> (String, String) {
    (action.to_string(), target)
}

/// A gateway following `cp`'s feed, ready (it has its first token table).
async fn gateway_following(cp: &ControlPlane) -> TestServer {
    let url = cp.url();
    let gateway = TestServer::start(|c| use_control_plane(c, &url)).await;
    gateway.wait_ready().await;
    gateway
}

fn is_secret(token: &Value) -> bool {
    token
        .as_str()
        .is_some_and(|t| t.len() == 32 && t.bytes().all(|b| b.is_ascii_alphanumeric()))
}
