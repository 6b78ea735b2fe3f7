//! A main account with a daily volume and two sub-accounts, usage reported as gateways
//! report it, and days marked capped or past the soft limit: what the Volume tab's tests
//! (HTTP and browser) start from.

use serde_json::{Value, json};
use tollgate::control::store::{Store, volume};

use super::control::ControlPlane;

pub const ADMIN: &str = "USER_ROLE_ACCOUNT_ADMIN";
pub const SUBS: &str = "/v1/account-management/time-based-accounts";
pub const DAY_MS: i64 = 86_400_000;
pub const GB: u64 = 1_000_000_000;

/// A pro main account with 100 GB a day: `fixed` has 30 GB, `flexible` reserves 20 GB
/// and is capped at 50 (a soft limit at 40), which leaves a 50 GB pool.
pub struct Acme {
    pub main: i64,
    pub api: String,
    pub fixed: i64,
    pub flexible: i64,
}

pub async fn acme(cp: &ControlPlane) -> Acme {
    let created = cp
        .create_account(json!({"accountName": "acme", "plan": "pro", "totalTimeBasedDailyGB": 100}))
        .await;
    let main = created["accountId"].as_i64().unwrap();
    let api = created["apiToken"].as_str().unwrap().to_string();
    // The sub-accounts' admin email is a user of the main account, as Logz.io asks.
    cp.create_user(main, "ann@example.com", ADMIN).await;
    let sub = |name: &str, volume: Value| {
        let mut body = json!({"accountName": name, "email": "ann@example.com", "retentionDays": 7});
        body.as_object_mut()
            .unwrap()
            .extend(volume.as_object().unwrap().clone());
        let call = cp.post(SUBS).token(&api).json(body);
        async move {
            call.send().await.expect_ok("sub-account")["accountId"]
                .as_i64()
                .unwrap()
        }
    };
    let fixed = sub("acme-eu", json!({"maxDailyGB": 30})).await;
    let flexible = sub(
        "acme-us",
        json!({"isFlexible": true, "reservedDailyGB": 20, "maxDailyGB": 50, "softLimitGB": 40}),
    )
    .await;
    Acme {
        main,
        api,
        fixed,
        flexible,
    }
}

/// A gateway's usage report: `bytes` of logs for `account`, on the control plane's today.
pub async fn report_usage(cp: &ControlPlane, account: i64, bytes: u64) {
    cp.post("/v1/feed/usage")
        .feed()
        .json(json!({"accounts": [
            {"account_id": account, "kind": "logs", "bytes": bytes, "records": 1}
        ]}))
        .send()
        .await
        .expect_status(204, "usage report");
}

/// A gateway's usage report that it holds `account` capped today.
pub async fn report_capped(cp: &ControlPlane, account: i64) {
    cp.post("/v1/feed/usage")
        .feed()
        .json(json!({ "capped": [account] }))
        .send()
        .await
        .expect_status(204, "usage report");
}

/// What gateways report about a day beyond its bytes.
#[derive(Clone, Copy)]
pub enum Mark {
    Capped,
    SoftLimit,
}

/// Marks `account`'s day through the store, as the control plane does when a gateway
/// reports it (the tests share the control plane's SQLite file): for a day already over,
/// which no report can reach.
pub async fn mark_day(cp: &ControlPlane, account: i64, day_ms: i64, mark: Mark) {
    let store = Store::open(cp.database_url())
        .await
        .expect("open the store");
    let mut tx = store.begin().await.expect("a transaction");
    let at = day_ms + 14 * 3_600_000 + 5 * 60_000;
    let marked = match mark {
        Mark::Capped => volume::mark_capped(&mut tx, account, day_ms, at).await,
        Mark::SoftLimit => volume::mark_soft_limit(&mut tx, account, day_ms, at).await,
    };
    assert!(marked.expect("marked"), "the day was not marked yet");
    tx.commit().await.expect("commit");
}

pub fn today_ms(cp: &ControlPlane) -> i64 {
    let now = cp.now_ms();
    now - now.rem_euclid(DAY_MS)
}

/// A sub-account as the API reads it back.
pub async fn sub_account(cp: &ControlPlane, acme: &Acme, id: i64) -> Value {
    cp.get(&format!("{SUBS}/{id}"))
        .token(&acme.api)
        .send()
        .await
        .expect_ok("read the sub-account")
}

/// A pro main account (`acme`) whose plan volume the operator sets to `plan_gb`:
/// (its id, API token, first shipping token).
pub async fn plan(cp: &ControlPlane, plan_gb: f64) -> (i64, String, String) {
    let (main_id, api, token) = cp.account("acme").await;
    cp.put(&format!("/v1/admin/accounts/{main_id}"))
        .admin()
        .json(json!({ "totalTimeBasedDailyGB": plan_gb }))
        .send()
        .await
        .expect_ok("plan volume");
    (main_id, api, token)
}

/// A sub-account named `name` of the plan `api` manages, created with the volume
/// `settings` over plain defaults: (its id, its shipping token).
pub async fn sub(cp: &ControlPlane, api: &str, name: &str, settings: Value) -> (i64, String) {
    let mut body = json!({"accountName": name, "retentionDays": 5, "searchable": true,
        "accessible": true, "sharingObjectsAccounts": []});
    body.as_object_mut()
        .unwrap()
        .extend(settings.as_object().unwrap().clone());
    let created = cp
        .post(SUBS)
        .token(api)
        .json(body)
        .send()
        .await
        .expect_ok("sub-account");
    (
        created["accountId"].as_i64().expect("accountId"),
        created["accountToken"]
            .as_str()
            .expect("accountToken")
            .to_string(),
    )
}
