//! Every rule of the control plane (DESIGN §4, the management API decisions) through the
//! real HTTP API, against SQLite and against PostgreSQL: one body per rule, run once per
//! backend. Each refusal is checked for its status, `errorCode` and message.

mod common;

use std::time::Duration;

use common::control::{Backend, ControlPlane, use_control_plane};
use common::{TestServer, eventually};
use serde_json::{Value, json};

on_both_backends!(
    community_plan_allows_one_enabled_token,
    paid_plans_allow_fifteen_enabled_tokens,
    trial_has_pro_until_it_ends,
    api_tokens_need_a_paid_plan_or_trial,
    tied_accounts_follow_their_main_account,
    sub_accounts_and_revocable_access,
    credentials_and_reach,
    requests_shaped_like_logzio_go_client,
    shared_tokens_and_filters,
    shared_token_expiry_is_enforced,
    audit_events_newest_first,
    feed_carries_digests_and_usage,
    optional_numbers_alternate_with_absent_ones,
    limits_hold_under_concurrent_changes,
    shipping_token_names_are_unique_per_account_and_kind,
    ids_are_never_handed_out_twice,
    detailed_sub_account_views_carry_what_a_gateway_accepted,
    sub_account_fields_round_trip_and_are_validated,
    metrics_accounts_are_managed_with_the_main_accounts_api_token,
);

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

/// The first (default) log shipping token's id of the account `api` acts on.
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

const LOGS: &str = "/v1/log-shipping/tokens";
const METRICS: &str = "/v1/metrics-shipping/tokens";
const TRACES: &str = "/v1/tracing-shipping/tokens";

fn is_secret(token: &Value) -> bool {
    token
        .as_str()
        .is_some_and(|t| t.len() == 32 && t.bytes().all(|b| b.is_ascii_alphanumeric()))
}

async fn community_plan_allows_one_enabled_token(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let created = cp
        .create_account(json!({"accountName": "small", "plan": "community"}))
        .await;
    assert!(is_secret(&created["accountToken"]), "{created}");
    assert!(
        created.get("apiToken").is_none(),
        "community has no API token: {created}"
    );
    let id = created["accountId"].as_i64().unwrap();

    // The admin secret manages community accounts; it must name the account.
    cp.get(&format!("{LOGS}/limits"))
        .admin()
        .send()
        .await
        .expect_error(400, "request/ACCOUNT_REQUIRED", "X-Account-Id");
    let limits = cp
        .get(&format!("{LOGS}/limits"))
        .admin()
        .account(id)
        .send()
        .await
        .expect_ok("limits");
    assert_eq!(
        limits,
        json!({"maxAllowedTokens": 1, "numOfEnabledTokens": 1})
    );

    // The new account's one token is enabled; a second (enabled by default) is refused.
    let page = cp
        .post(&format!("{LOGS}/search"))
        .admin()
        .account(id)
        .json(json!({}))
        .send()
        .await
        .expect_ok("search");
    assert_eq!(page["total"], 1);
    let first = &page["results"][0];
    assert_eq!(first["enabled"], true);
    assert_eq!(first["token"], created["accountToken"]);
    assert_eq!(first["createdBy"], "admin");
    assert!(first["createdAt"].as_i64().unwrap() >= now_secs() - 60);
    assert!(first["lastUsed"].is_null());
    let first_id = first["id"].as_i64().unwrap();
    cp.post(LOGS)
        .admin()
        .account(id)
        .json(json!({"name": "second"}))
        .send()
        .await
        .expect_error(
            409,
            "tokens/ENABLED_LIMIT",
            "community plan allows 1 enabled",
        );
    // A token created disabled is within the limit; enabling it is not.
    let spare = cp
        .post(LOGS)
        .admin()
        .account(id)
        .json(json!({"name": "spare", "enabled": false}))
        .send()
        .await
        .expect_ok("create disabled");
    assert_eq!(spare["enabled"], false);
    cp.put(&format!("{LOGS}/{}", spare["id"]))
        .admin()
        .account(id)
        .json(json!({"enabled": true}))
        .send()
        .await
        .expect_error(
            409,
            "tokens/ENABLED_LIMIT",
            "community plan allows 1 enabled",
        );
    cp.delete(&format!("{LOGS}/{}", spare["id"]))
        .admin()
        .account(id)
        .send()
        .await
        .expect_ok("delete the disabled one");

    // The last enabled token can be neither disabled nor deleted.
    cp.put(&format!("{LOGS}/{first_id}"))
        .admin()
        .account(id)
        .json(json!({"enabled": false}))
        .send()
        .await
        .expect_error(409, "tokens/LAST_ENABLED", "at least one enabled");
    cp.delete(&format!("{LOGS}/{first_id}"))
        .admin()
        .account(id)
        .send()
        .await
        .expect_error(409, "tokens/LAST_ENABLED", "at least one enabled");

    // Renaming it is fine and leaves it enabled.
    let renamed = cp
        .put(&format!("{LOGS}/{first_id}"))
        .admin()
        .account(id)
        .json(json!({"name": "renamed"}))
        .send()
        .await
        .expect_ok("rename");
    assert_eq!(renamed["name"], "renamed");
    assert_eq!(renamed["enabled"], true);
    assert_eq!(renamed["updatedBy"], "admin");
    let read = cp
        .get(&format!("{LOGS}/{first_id}"))
        .admin()
        .account(id)
        .send()
        .await
        .expect_ok("read");
    assert_eq!(read, renamed);
    cp.stop().await;
}

async fn paid_plans_allow_fifteen_enabled_tokens(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let pro = main_account(&cp, "pro", "pro").await;
    for n in 2..=15 {
        let t = cp
            .post(LOGS)
            .token(pro.api())
            .json(json!({"name": format!("t{n}")}))
            .send()
            .await
            .expect_ok("create within the limit");
        assert_eq!(t["enabled"], true, "created enabled by default");
        assert!(t["createdBy"].as_str().unwrap().starts_with("api-token:"));
    }
    cp.post(LOGS)
        .token(pro.api())
        .json(json!({"name": "sixteenth"}))
        .send()
        .await
        .expect_error(
            409,
            "tokens/ENABLED_LIMIT",
            "pro plan allows 15 enabled shipping tokens",
        );
    let limits = cp
        .get(&format!("{LOGS}/limits"))
        .token(pro.api())
        .send()
        .await
        .expect_ok("limits");
    assert_eq!(
        limits,
        json!({"maxAllowedTokens": 15, "numOfEnabledTokens": 15})
    );

    // Disabling one makes room; enabling it again while full is refused.
    let ids = token_ids(&cp, LOGS, pro.api()).await;
    let (victim, _) = ids[1];
    cp.put(&format!("{LOGS}/{victim}"))
        .token(pro.api())
        .json(json!({"enabled": false}))
        .send()
        .await
        .expect_ok("disable");
    let extra = cp
        .post(LOGS)
        .token(pro.api())
        .json(json!({"name": "sixteenth"}))
        .send()
        .await
        .expect_ok("room after disabling one");
    cp.put(&format!("{LOGS}/{victim}"))
        .token(pro.api())
        .json(json!({"enabled": true}))
        .send()
        .await
        .expect_error(409, "tokens/ENABLED_LIMIT", "pro plan allows 15");
    // A disabled token can be deleted; an enabled one while others remain enabled too.
    cp.delete(&format!("{LOGS}/{victim}"))
        .token(pro.api())
        .send()
        .await
        .expect_ok("delete disabled");
    let deleted = cp
        .delete(&format!("{LOGS}/{}", extra["id"]))
        .token(pro.api())
        .send()
        .await
        .expect_ok("delete enabled");
    assert_eq!(deleted, json!({}));
    cp.get(&format!("{LOGS}/{victim}"))
        .token(pro.api())
        .send()
        .await
        .expect_error(404, "request/NOT_FOUND", "not found");

    // Disable all but one: the last enabled one stays.
    let ids = token_ids(&cp, LOGS, pro.api()).await;
    let (last, rest) = ids.split_last().unwrap();
    for (id, _) in rest {
        cp.put(&format!("{LOGS}/{id}"))
            .token(pro.api())
            .json(json!({"enabled": false}))
            .send()
            .await
            .expect_ok("disable");
    }
    cp.put(&format!("{LOGS}/{}", last.0))
        .token(pro.api())
        .json(json!({"enabled": false}))
        .send()
        .await
        .expect_error(409, "tokens/LAST_ENABLED", "this is the last one");
    cp.delete(&format!("{LOGS}/{}", last.0))
        .token(pro.api())
        .send()
        .await
        .expect_error(409, "tokens/LAST_ENABLED", "this is the last one");

    // Enterprise has the same 15.
    let ent = main_account(&cp, "ent", "enterprise").await;
    let limits = cp
        .get(&format!("{LOGS}/limits"))
        .token(ent.api())
        .send()
        .await
        .expect_ok("limits");
    assert_eq!(
        limits,
        json!({"maxAllowedTokens": 15, "numOfEnabledTokens": 1})
    );
    cp.stop().await;
}

async fn trial_has_pro_until_it_ends(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let ends = now_secs() + 3;
    let trial = account(
        &cp,
        json!({"accountName": "trial", "plan": "community", "trialEndsAt": ends}),
    )
    .await;
    // During the trial: pro's limits and API tokens.
    let limits = cp
        .get(&format!("{LOGS}/limits"))
        .token(trial.api())
        .send()
        .await
        .expect_ok("limits during trial");
    assert_eq!(limits["maxAllowedTokens"], 15);
    cp.post(LOGS)
        .token(trial.api())
        .json(json!({"name": "second"}))
        .send()
        .await
        .expect_ok("a second enabled token during the trial");
    let second_api = cp
        .post("/v1/api-tokens")
        .token(trial.api())
        .json(json!({"name": "ci"}))
        .send()
        .await
        .expect_ok("API token during the trial");

    cp.advance_clock_past(ends * 1000);

    // After it: every API token of the account is refused, naming the reason.
    for token in [trial.api(), second_api["token"].as_str().unwrap()] {
        cp.get("/v2/whoami").token(token).send().await.expect_error(
            403,
            "api-tokens/TRIAL_ENDED",
            "trial has ended",
        );
    }
    // Community again: limit 1 (the two enabled stay, a third is refused), no API tokens.
    let limits = cp
        .get(&format!("{LOGS}/limits"))
        .admin()
        .account(trial.id)
        .send()
        .await
        .expect_ok("limits after trial");
    assert_eq!(
        limits,
        json!({"maxAllowedTokens": 1, "numOfEnabledTokens": 2})
    );
    cp.post(LOGS)
        .admin()
        .account(trial.id)
        .json(json!({"name": "third"}))
        .send()
        .await
        .expect_error(409, "tokens/ENABLED_LIMIT", "community plan allows 1");
    cp.post("/v1/api-tokens")
        .admin()
        .account(trial.id)
        .json(json!({"name": "late"}))
        .send()
        .await
        .expect_error(409, "api-tokens/PLAN", "pro and enterprise");
    cp.stop().await;
}

async fn api_tokens_need_a_paid_plan_or_trial(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let community = main_account(&cp, "c", "community").await;
    cp.post("/v1/api-tokens")
        .admin()
        .account(community.id)
        .json(json!({"name": "nope"}))
        .send()
        .await
        .expect_error(
            409,
            "api-tokens/PLAN",
            "pro and enterprise plans and during a trial",
        );
    let listed = cp
        .get("/v1/api-tokens")
        .admin()
        .account(community.id)
        .send()
        .await
        .expect_ok("list");
    assert_eq!(listed, json!([]));

    let pro = main_account(&cp, "p", "pro").await;
    assert!(is_secret(&json!(pro.api())));
    let listed = cp
        .get("/v1/api-tokens")
        .token(pro.api())
        .send()
        .await
        .expect_ok("list");
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["name"], "default");
    assert!(listed[0]["createdAt"].as_i64().unwrap() >= now_secs() - 60);
    assert!(
        listed[0].get("token").is_none(),
        "the secret is only in the create answer"
    );

    let created = cp
        .post("/v1/api-tokens")
        .token(pro.api())
        .json(json!({"name": "terraform"}))
        .send()
        .await
        .expect_ok("create");
    assert_eq!(created["name"], "terraform");
    assert!(is_secret(&created["token"]));
    let new_token = created["token"].as_str().unwrap();
    let who = cp
        .get("/v2/whoami")
        .token(new_token)
        .send()
        .await
        .expect_ok("whoami");
    assert_eq!(who, json!({"accountId": pro.id, "accountName": "p"}));
    let listed = cp
        .get("/v1/api-tokens")
        .token(new_token)
        .send()
        .await
        .expect_ok("list");
    assert_eq!(listed.as_array().unwrap().len(), 2);

    // Deleting a token ends it at once; another account's token id is not found.
    let other = main_account(&cp, "other", "pro").await;
    cp.delete(&format!("/v1/api-tokens/{}", created["id"]))
        .token(other.api())
        .send()
        .await
        .expect_error(404, "request/NOT_FOUND", "not found");
    let deleted = cp
        .delete(&format!("/v1/api-tokens/{}", created["id"]))
        .token(pro.api())
        .send()
        .await
        .expect_ok("delete");
    assert_eq!(deleted, json!({}));
    let target = format!("api-token:{}", created["id"]);
    assert_eq!(
        latest_events(&cp, pro.api(), 2).await,
        [
            event("api-token.delete", target.clone()),
            event("api-token.create", target)
        ]
    );
    cp.get("/v2/whoami")
        .token(new_token)
        .send()
        .await
        .expect_error(401, "auth/UNAUTHORIZED", "not valid");
    cp.delete(&format!("/v1/api-tokens/{}", created["id"]))
        .token(pro.api())
        .send()
        .await
        .expect_error(404, "request/NOT_FOUND", "not found");
    cp.stop().await;
}

async fn tied_accounts_follow_their_main_account(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let main = main_account(&cp, "acme", "pro").await;
    cp.post("/v1/admin/accounts")
        .admin()
        .json(json!({"accountName": "m", "type": "metrics"}))
        .send()
        .await
        .expect_error(400, "accounts/OWNER_REQUIRED", "ownerAccountId is required");
    let metrics = account(
        &cp,
        json!({"accountName": "acme-metrics", "type": "metrics", "ownerAccountId": main.id}),
    )
    .await;
    let tracing = account(
        &cp,
        json!({"accountName": "acme-tracing", "type": "tracing", "ownerAccountId": main.id}),
    )
    .await;
    let security = account(
        &cp,
        json!({"accountName": "acme-security", "type": "security", "ownerAccountId": main.id}),
    )
    .await;
    // Metrics and tracing accounts have no API tokens; security accounts have their own.
    assert!(metrics.api_token.is_none());
    assert!(tracing.api_token.is_none());
    assert!(security.api_token.is_some());
    cp.post("/v1/api-tokens")
        .token(main.api())
        .account(metrics.id)
        .json(json!({"name": "x"}))
        .send()
        .await
        .expect_error(
            409,
            "api-tokens/ACCOUNT_TYPE",
            "metrics accounts have no API tokens",
        );

    // The main account's token manages them, by X-Account-Id.
    let who = cp
        .get("/v2/whoami")
        .token(main.api())
        .account(metrics.id)
        .send()
        .await
        .expect_ok("whoami as metrics");
    assert_eq!(who["accountId"], metrics.id);
    let page = cp
        .post(&format!("{METRICS}/search"))
        .token(main.api())
        .account(metrics.id)
        .json(json!({}))
        .send()
        .await
        .expect_ok("metrics tokens");
    assert_eq!(page["results"][0]["token"], metrics.shipping_token.as_str());
    cp.post(METRICS)
        .token(main.api())
        .account(metrics.id)
        .json(json!({"name": "second metrics"}))
        .send()
        .await
        .expect_ok("a second metrics token on a pro main account");
    cp.post(TRACES)
        .token(main.api())
        .account(tracing.id)
        .json(json!({"name": "second traces"}))
        .send()
        .await
        .expect_ok("tracing token");
    // Each account holds its own kind only.
    cp.post(LOGS)
        .token(main.api())
        .account(metrics.id)
        .json(json!({"name": "wrong"}))
        .send()
        .await
        .expect_error(409, "tokens/ACCOUNT_TYPE", "metrics account");
    cp.post(METRICS)
        .token(main.api())
        .json(json!({"name": "wrong"}))
        .send()
        .await
        .expect_error(409, "tokens/ACCOUNT_TYPE", "logs account");
    // A security account holds log shipping tokens, managed with its own API token too.
    cp.post(LOGS)
        .token(security.api_token.as_deref().unwrap())
        .json(json!({"name": "siem"}))
        .send()
        .await
        .expect_ok("security account's own token");
    cp.get("/v2/whoami")
        .token(main.api())
        .account(security.id)
        .send()
        .await
        .expect_ok("main reaches its security account");
    // ...but a security account's token doesn't reach the main account.
    cp.get("/v2/whoami")
        .token(security.api_token.as_deref().unwrap())
        .account(main.id)
        .send()
        .await
        .expect_error(403, "auth/FORBIDDEN", "does not reach");

    // Tied accounts follow the main account's plan: a community main's metrics account has 1.
    let small = main_account(&cp, "small", "community").await;
    let small_metrics = account(
        &cp,
        json!({"accountName": "small-metrics", "type": "metrics", "ownerAccountId": small.id}),
    )
    .await;
    let limits = cp
        .get(&format!("{METRICS}/limits"))
        .admin()
        .account(small_metrics.id)
        .send()
        .await
        .expect_ok("limits");
    assert_eq!(
        limits,
        json!({"maxAllowedTokens": 1, "numOfEnabledTokens": 1})
    );
    cp.post(METRICS)
        .admin()
        .account(small_metrics.id)
        .json(json!({"name": "second"}))
        .send()
        .await
        .expect_error(409, "tokens/ENABLED_LIMIT", "community plan allows 1");
    cp.stop().await;
}

async fn sub_accounts_and_revocable_access(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let main = main_account(&cp, "acme", "pro").await;
    const SUBS: &str = "/v1/account-management/time-based-accounts";
    let created = cp
        .post(SUBS)
        .token(main.api())
        .json(json!({
            "accountName": "acme-eu", "email": "ops@acme.test", "retentionDays": 7,
            "maxDailyGB": 2.5, "searchable": true, "accessible": true,
            "sharingObjectsAccounts": [main.id],
            "utilizationSettings": {"frequencyMinutes": 5, "utilizationEnabled": true},
            "isFlexible": false, "docSizeSetting": false
        }))
        .send()
        .await
        .expect_ok("create sub-account");
    let sub = created["accountId"].as_i64().unwrap();
    assert!(is_secret(&created["accountToken"]));
    let model = cp
        .get(&format!("{SUBS}/{sub}"))
        .token(main.api())
        .send()
        .await
        .expect_ok("read");
    assert_eq!(model["accountName"], "acme-eu");
    assert_eq!(model["accountToken"], created["accountToken"]);
    assert_eq!(model["email"], "ops@acme.test");
    assert_eq!(model["retentionDays"], 7);
    assert_eq!(model["maxDailyGB"], 2.5);
    assert_eq!(model["searchable"], true);
    assert_eq!(model["accessible"], true);
    assert_eq!(
        model["sharingObjectsAccounts"],
        json!([{"accountId": main.id, "accountName": "acme"}])
    );
    assert_eq!(model["utilizationSettings"]["frequencyMinutes"], 5);
    let list = cp
        .get(SUBS)
        .token(main.api())
        .send()
        .await
        .expect_ok("list");
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["accountId"], sub);

    // The main account's token manages the accessible sub-account...
    let who = cp
        .get("/v2/whoami")
        .token(main.api())
        .account(sub)
        .send()
        .await
        .expect_ok("whoami as sub");
    assert_eq!(who, json!({"accountId": sub, "accountName": "acme-eu"}));
    cp.post(LOGS)
        .token(main.api())
        .account(sub)
        .json(json!({"name": "from main"}))
        .send()
        .await
        .expect_ok("main manages sub's tokens");
    let sub_api = cp
        .post("/v1/api-tokens/sub-account")
        .token(main.api())
        .json(json!({"name": "sub's own", "accountId": sub}))
        .send()
        .await
        .expect_ok("API token for the sub-account");
    let sub_api = sub_api["token"].as_str().unwrap().to_string();

    // ...loses it the moment access is revoked...
    let revoked = cp
        .put(&format!("{SUBS}/{sub}"))
        .token(main.api())
        .json(json!({"accessible": false}))
        .send()
        .await;
    assert_eq!(revoked.status, 204, "{:?}", revoked.body);
    assert_eq!(
        latest_events(&cp, main.api(), 1).await,
        [event("sub-account.revoke-access", format!("account:{sub}"))]
    );
    cp.get("/v2/whoami")
        .token(main.api())
        .account(sub)
        .send()
        .await
        .expect_error(403, "auth/NOT_ACCESSIBLE", "not accessible");
    cp.post(LOGS)
        .token(main.api())
        .account(sub)
        .json(json!({"name": "refused"}))
        .send()
        .await
        .expect_error(403, "auth/NOT_ACCESSIBLE", "not accessible");
    cp.post("/v1/api-tokens/sub-account")
        .token(main.api())
        .json(json!({"name": "refused", "accountId": sub}))
        .send()
        .await
        .expect_error(403, "auth/NOT_ACCESSIBLE", "not accessible");
    // (the sub-account's own token still works on its own account)
    cp.get("/v2/whoami")
        .token(&sub_api)
        .send()
        .await
        .expect_ok("sub's own token");
    // ...and regains it when restored (a string boolean, as Logz.io's client sends).
    let restored = cp
        .put(&format!("{SUBS}/{sub}"))
        .token(main.api())
        .json(json!({"accessible": "true"}))
        .send()
        .await;
    assert_eq!(restored.status, 204);
    assert_eq!(
        latest_events(&cp, main.api(), 1).await,
        [event(
            "sub-account.restore-access",
            format!("account:{sub}")
        )]
    );
    cp.get("/v2/whoami")
        .token(main.api())
        .account(sub)
        .send()
        .await
        .expect_ok("access restored");

    // Only a main account's token configures sub-accounts.
    cp.post(SUBS)
        .token(&sub_api)
        .json(json!({"accountName": "nested"}))
        .send()
        .await
        .expect_error(
            403,
            "auth/MAIN_ACCOUNT_REQUIRED",
            "main account's API token",
        );
    cp.put(&format!("{SUBS}/{sub}"))
        .token(&sub_api)
        .json(json!({"accessible": true}))
        .send()
        .await
        .expect_error(
            403,
            "auth/MAIN_ACCOUNT_REQUIRED",
            "main account's API token",
        );
    let security = account(
        &cp,
        json!({"accountName": "sec", "type": "security", "ownerAccountId": main.id}),
    )
    .await;
    cp.post(SUBS)
        .token(security.api())
        .json(json!({"accountName": "nested"}))
        .send()
        .await
        .expect_error(
            403,
            "auth/MAIN_ACCOUNT_REQUIRED",
            "main account's API token",
        );
    cp.post(SUBS)
        .token(main.api())
        .json(json!({"email": "no-name@acme.test"}))
        .send()
        .await
        .expect_error(400, "request/INVALID", "accountName");
    // Another main account's token neither sees nor reaches it.
    let other = main_account(&cp, "globex", "pro").await;
    cp.get(&format!("{SUBS}/{sub}"))
        .token(other.api())
        .send()
        .await
        .expect_error(404, "request/NOT_FOUND", "not found");
    cp.get("/v2/whoami")
        .token(other.api())
        .account(sub)
        .send()
        .await
        .expect_error(403, "auth/FORBIDDEN", "does not reach");

    // The sub-account follows its main account's plan.
    let limits = cp
        .get(&format!("{LOGS}/limits"))
        .token(&sub_api)
        .send()
        .await
        .expect_ok("limits");
    assert_eq!(limits["maxAllowedTokens"], 15);

    // Deleting it removes it and its tokens.
    let deleted = cp
        .delete(&format!("{SUBS}/{sub}"))
        .token(main.api())
        .send()
        .await;
    assert_eq!(deleted.status, 204);
    cp.get(&format!("{SUBS}/{sub}"))
        .token(main.api())
        .send()
        .await
        .expect_error(404, "request/NOT_FOUND", "not found");
    cp.get("/v2/whoami")
        .token(&sub_api)
        .send()
        .await
        .expect_error(401, "auth/UNAUTHORIZED", "not valid");
    let list = cp
        .get(SUBS)
        .token(main.api())
        .send()
        .await
        .expect_ok("list");
    assert_eq!(list, json!([]));
    cp.stop().await;
}

async fn credentials_and_reach(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
    let globex = main_account(&cp, "globex", "pro").await;

    cp.get("/v2/whoami")
        .send()
        .await
        .expect_error(401, "auth/UNAUTHORIZED", "X-API-TOKEN");
    cp.get("/v2/whoami")
        .token("notARealTokenAtAll0000000000000")
        .send()
        .await
        .expect_error(401, "auth/UNAUTHORIZED", "not valid");
    cp.get("/v2/whoami")
        .bearer("wrong admin secret")
        .account(acme.id)
        .send()
        .await
        .expect_error(401, "auth/UNAUTHORIZED", "admin secret");
    // A shipping token is not an API token.
    cp.get("/v2/whoami")
        .token(&acme.shipping_token)
        .send()
        .await
        .expect_error(401, "auth/UNAUTHORIZED", "not valid");
    // Another account: 403 by X-Account-Id, 404 for its objects by id.
    cp.get("/v2/whoami")
        .token(acme.api())
        .account(globex.id)
        .send()
        .await
        .expect_error(403, "auth/FORBIDDEN", "does not reach");
    cp.get("/v2/whoami")
        .token(acme.api())
        .account(999_999)
        .send()
        .await
        .expect_error(403, "auth/FORBIDDEN", "does not reach");
    let globex_token = token_ids(&cp, LOGS, globex.api()).await[0].0;
    for call in [
        cp.get(&format!("{LOGS}/{globex_token}")),
        cp.put(&format!("{LOGS}/{globex_token}"))
            .json(json!({"name": "mine now"})),
        cp.delete(&format!("{LOGS}/{globex_token}")),
    ] {
        call.token(acme.api())
            .send()
            .await
            .expect_error(404, "request/NOT_FOUND", "not found");
    }
    cp.get(&format!("{LOGS}/not-a-number"))
        .token(acme.api())
        .send()
        .await
        .expect_error(404, "request/NOT_FOUND", "not-a-number");
    cp.get(&format!("{LOGS}/{globex_token}"))
        .admin()
        .account(globex.id)
        .send()
        .await
        .expect_ok("the admin reaches every account");
    cp.get("/v2/whoami")
        .admin()
        .account(999_999)
        .send()
        .await
        .expect_error(404, "request/NOT_FOUND", "account not found");
    cp.get("/v2/whoami")
        .token(acme.api())
        .header("x-account-id", "acme")
        .send()
        .await
        .expect_error(400, "request/INVALID", "X-Account-Id");
    // Only the operator creates main accounts.
    cp.post("/v1/admin/accounts")
        .token(acme.api())
        .json(json!({"accountName": "mine"}))
        .send()
        .await
        .expect_error(403, "auth/ADMIN_REQUIRED", "admin secret");
    cp.post("/v1/admin/accounts")
        .json(json!({"accountName": "mine"}))
        .send()
        .await
        .expect_error(401, "auth/UNAUTHORIZED", "X-API-TOKEN");

    // Framing: unknown route, method, invalid body, content type, size.
    cp.get("/v1/no-such-thing")
        .token(acme.api())
        .send()
        .await
        .expect_error(404, "request/NOT_FOUND", "no such route");
    cp.request(http::Method::PATCH, LOGS)
        .token(acme.api())
        .send()
        .await
        .expect_error(405, "request/METHOD_NOT_ALLOWED", "method");
    cp.post(LOGS)
        .token(acme.api())
        .json(json!({"name": 17}))
        .send()
        .await
        .expect_error(400, "request/INVALID", "name");
    cp.post(LOGS)
        .token(acme.api())
        .raw_body("application/json", "{not json")
        .send()
        .await
        .expect_error(400, "request/INVALID", "line 1 column 2");
    cp.post(LOGS)
        .token(acme.api())
        .json(json!({"name": "   "}))
        .send()
        .await
        .expect_error(400, "request/INVALID", "name must be 1-256 characters");
    cp.post(LOGS)
        .token(acme.api())
        .raw_body("text/plain", "name=x")
        .send()
        .await
        .expect_error(415, "request/UNSUPPORTED_MEDIA_TYPE", "application/json");
    cp.post(LOGS)
        .token(acme.api())
        .raw_body("application/json", vec![b' '; (1 << 20) + 1])
        .send()
        .await
        .expect_error(413, "request/TOO_LARGE", "limited to");
    cp.post("/v1/admin/accounts")
        .admin()
        .json(json!({"accountName": "x", "plan": "platinum"}))
        .send()
        .await
        .expect_error(400, "request/INVALID", "plan");
    cp.stop().await;
}

async fn requests_shaped_like_logzio_go_client(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
    // The Go client sends `enabled` on create, as a string.
    for name in ["bravo", "alpha", "charlie"] {
        let t = cp
            .post(LOGS)
            .token(acme.api())
            .json(json!({"name": name, "enabled": "true"}))
            .send()
            .await
            .expect_ok("create");
        assert_eq!(t["enabled"], true);
    }
    let ids = token_ids(&cp, LOGS, acme.api()).await;
    // Booleans as strings on update.
    let updated = cp
        .put(&format!("{LOGS}/{}", ids[1].0))
        .token(acme.api())
        .json(json!({"name": "bravo", "enabled": "false"}))
        .send()
        .await
        .expect_ok("update with a string boolean");
    assert_eq!(updated["enabled"], false);
    cp.put(&format!("{LOGS}/{}", ids[1].0))
        .token(acme.api())
        .json(json!({"enabled": "maybe"}))
        .send()
        .await
        .expect_error(400, "request/INVALID", "enabled");

    // `sort: null`, `pagination: {}`, a string boolean in the filter.
    let page = cp
        .post(&format!("{LOGS}/search"))
        .token(acme.api())
        .json(json!({"filter": {"enabled": "true"}, "sort": null, "pagination": {}}))
        .send()
        .await
        .expect_ok("search as the Go client sends it");
    assert_eq!(page["total"], 3);
    assert_eq!(page["pagination"], json!({"pageNumber": 1, "pageSize": 25}));
    assert!(
        page["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["enabled"] == true)
    );
    let page = cp
        .post(&format!("{LOGS}/search"))
        .token(acme.api())
        .json(json!({"filter": {"enabled": "false"}}))
        .send()
        .await
        .expect_ok("disabled ones");
    assert_eq!(page["total"], 1);
    assert_eq!(page["results"][0]["name"], "bravo");
    // Sorting by name, descending as a string, paged.
    let page = cp
        .post(&format!("{LOGS}/search"))
        .token(acme.api())
        .json(json!({"sort": [{"field": "name", "descending": "true"}],
                     "pagination": {"pageNumber": 1, "pageSize": 2}}))
        .send()
        .await
        .expect_ok("sorted");
    assert_eq!(page["total"], 4);
    let names: Vec<&str> = page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default", "charlie"]);
    let page = cp
        .post(&format!("{LOGS}/search"))
        .token(acme.api())
        .json(json!({"sort": [{"field": "name", "descending": false}],
                     "pagination": {"pageNumber": 2, "pageSize": 2}}))
        .send()
        .await
        .expect_ok("second page");
    let names: Vec<&str> = page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["charlie", "default"]);
    // An empty body is a search for everything.
    let page = cp
        .post(&format!("{LOGS}/search"))
        .token(acme.api())
        .raw_body("application/json", "")
        .send()
        .await
        .expect_ok("empty body");
    assert_eq!(page["total"], 4);
    cp.post(&format!("{LOGS}/search"))
        .token(acme.api())
        .json(json!({"pagination": {"pageSize": 1001}}))
        .send()
        .await
        .expect_error(400, "request/INVALID", "pageSize");

    // Sub-account bodies as logzio_terraform_client's CreateOrUpdateSubAccount marshals them
    // today: string booleans, numbers as `*float32`/`*int32` with omitempty (left out when
    // unset), `email` omitempty, `retentionDays` a plain int32 (always sent).
    let created = cp
        .post("/v1/account-management/time-based-accounts")
        .token(acme.api())
        .json(json!({
            "accountName": "strings", "maxDailyGB": 1, "retentionDays": 5,
            "searchable": "false", "accessible": "true", "sharingObjectsAccounts": [],
            "docSizeSetting": "false",
            "utilizationSettings": {"frequencyMinutes": 5, "utilizationEnabled": "true"},
            "isFlexible": "false", "reservedDailyGB": 0
        }))
        .send()
        .await
        .expect_ok("sub-account with string booleans");
    let model = cp
        .get(&format!(
            "/v1/account-management/time-based-accounts/{}",
            created["accountId"]
        ))
        .token(acme.api())
        .send()
        .await
        .expect_ok("read");
    assert_eq!(model["searchable"], false);
    assert_eq!(model["accessible"], true);
    assert_eq!(model["utilizationSettings"]["utilizationEnabled"], true);
    assert_eq!(model["retentionDays"], 5);
    assert_eq!(model["reservedDailyGB"], 0.0, "a 0 sent is a 0 kept");
    // Its update sends "" for unset string booleans, 0 for an unset retentionDays, and
    // leaves the unset pointer numbers out.
    let id = created["accountId"].as_i64().unwrap();
    let updated = cp
        .put(&format!("/v1/account-management/time-based-accounts/{id}"))
        .token(acme.api())
        .json(json!({
            "accountName": "strings", "retentionDays": 0,
            "searchable": "", "accessible": "", "docSizeSetting": "", "isFlexible": ""
        }))
        .send()
        .await;
    assert_eq!(updated.status, 204, "{:?}", updated.body);
    let after = cp
        .get(&format!("/v1/account-management/time-based-accounts/{id}"))
        .token(acme.api())
        .send()
        .await
        .expect_ok("read");
    assert_eq!(after, model, "unset fields kept their values");
    let disabled = cp
        .post(LOGS)
        .token(acme.api())
        .json(json!({"name": "spare", "enabled": "false"}))
        .send()
        .await
        .expect_ok("create disabled, as a string");
    assert_eq!(disabled["enabled"], false);
    cp.stop().await;
}

async fn shared_tokens_and_filters(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
    let api = acme.api();
    let before = now_ms();
    let token = cp
        .post("/v1/shared-tokens")
        .token(api)
        .json(json!({"tokenName": "dashboards"}))
        .send()
        .await
        .expect_ok("create with defaults");
    let seven_days = 7 * 24 * 3600 * 1000;
    let expiry = token["expirationDate"].as_i64().unwrap();
    assert!(
        (before + seven_days..=now_ms() + seven_days).contains(&expiry),
        "default expiry is 7 days: {token}"
    );
    assert_eq!(token["filtersOperator"], "AND");
    assert_eq!(token["filters"], json!([]));
    assert!(token["lastUsed"].is_null());
    assert_eq!(token["name"], "dashboards");
    assert!(is_secret(&token["token"]));
    let id = token["id"].as_i64().unwrap();
    let secret = token["token"].as_str().unwrap().to_string();

    // Legacy tokens may have no expiry; others must have a future one.
    let legacy = cp
        .post("/v1/shared-tokens")
        .token(api)
        .json(json!({"tokenName": "old", "expirationDate": null, "legacy": true}))
        .send()
        .await
        .expect_ok("legacy");
    assert!(legacy["expirationDate"].is_null());
    cp.post("/v1/shared-tokens")
        .token(api)
        .json(json!({"tokenName": "never", "expirationDate": null}))
        .send()
        .await
        .expect_error(400, "shared-tokens/EXPIRY_REQUIRED", "only legacy tokens");
    cp.post("/v1/shared-tokens")
        .token(api)
        .json(json!({"tokenName": "past", "expirationDate": now_ms() - 1000}))
        .send()
        .await
        .expect_error(400, "shared-tokens/EXPIRY_IN_PAST", "in the future");

    // Edit the expiry.
    let later = now_ms() + 30 * 24 * 3600 * 1000;
    let edited = cp
        .put(&format!("/v1/shared-tokens/{id}"))
        .token(api)
        .json(json!({"expirationDate": later}))
        .send()
        .await
        .expect_ok("edit expiry");
    assert_eq!(edited["expirationDate"], later);
    cp.put(&format!("/v1/shared-tokens/{id}"))
        .token(api)
        .json(json!({"expirationDate": now_ms() - 1}))
        .send()
        .await
        .expect_error(400, "shared-tokens/EXPIRY_IN_PAST", "in the future");

    // Filters: exact field: value pairs; no wildcard can be written.
    let env = cp
        .post("/v1/shared-tokens/filters")
        .token(api)
        .json(json!({"description": "test env", "field": "env", "value": "test"}))
        .send()
        .await
        .expect_ok("filter");
    assert_eq!(env["field"], "env");
    assert_eq!(env["value"], "test");
    assert_eq!(env["description"], "test env");
    let team = cp
        .post("/v1/shared-tokens/filters")
        .token(api)
        .json(json!({"description": "team", "field": "team.name", "value": "ops@acme-1"}))
        .send()
        .await
        .expect_ok("filter with every allowed character class");
    for (field, value, named) in [
        ("env", "te*t", "value"),
        ("env", "*", "value"),
        ("env", "a b", "value"),
        ("env", "prod?", "value"),
        ("en*", "x", "field"),
        ("", "x", "field"),
        ("env", "", "value"),
    ] {
        cp.post("/v1/shared-tokens/filters")
            .token(api)
            .json(json!({"description": "bad", "field": field, "value": value}))
            .send()
            .await
            .expect_error(400, "filters/INVALID_TERM", named);
    }
    let filters = cp
        .get("/v1/shared-tokens/filters")
        .token(api)
        .send()
        .await
        .expect_ok("list filters");
    assert_eq!(filters, json!([env, team]));
    let read = cp
        .get(&format!("/v1/shared-tokens/filters/{}", env["id"]))
        .token(api)
        .send()
        .await
        .expect_ok("read filter");
    assert_eq!(read, env);

    let resolve = |secret: String| {
        let cp = &cp;
        async move {
            cp.post("/v1/feed/shared-tokens/resolve")
                .feed()
                .json(json!({"token": secret}))
                .send()
                .await
        }
    };
    let access = resolve(secret.clone())
        .await
        .expect_ok("resolve, no filters");
    assert_eq!(access["accountId"], acme.id);
    assert_eq!(access["filters"], json!([]));
    assert_eq!(access["filtersOperator"], "AND");
    assert_eq!(access["expirationDate"], later);

    // Attach: visible at once to resolution.
    let attached = cp
        .put(&format!("/v1/shared-tokens/{id}"))
        .token(api)
        .json(json!({"filters": [env["id"]]}))
        .send()
        .await
        .expect_ok("attach");
    assert_eq!(attached["filters"], json!([env["id"]]));
    assert_eq!(
        attached["expirationDate"], later,
        "expiry kept when not given"
    );
    let access = resolve(secret.clone()).await.expect_ok("resolve");
    assert_eq!(
        access["filters"],
        json!([{"field": "env", "value": "test"}])
    );
    let attached = cp
        .put(&format!("/v1/shared-tokens/{id}"))
        .token(api)
        .json(json!({"filters": [env["id"], team["id"]], "filtersOperator": "OR"}))
        .send()
        .await
        .expect_ok("attach two, OR");
    assert_eq!(attached["filtersOperator"], "OR");
    let access = resolve(secret.clone()).await.expect_ok("resolve");
    assert_eq!(access["filtersOperator"], "OR");
    assert_eq!(
        access["filters"],
        json!([{"field": "env", "value": "test"}, {"field": "team.name", "value": "ops@acme-1"}])
    );
    // Resolution marks the token used.
    let listed = cp
        .get("/v1/shared-tokens")
        .token(api)
        .send()
        .await
        .expect_ok("list");
    let listed_token = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .unwrap();
    assert!(listed_token["lastUsed"].as_i64().unwrap() >= before);
    assert_eq!(listed.as_array().unwrap().len(), 2);

    // Deleting a filter detaches it everywhere, at once.
    let deleted = cp
        .delete(&format!("/v1/shared-tokens/filters/{}", env["id"]))
        .token(api)
        .send()
        .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(
        latest_events(&cp, api, 1).await,
        [event(
            "token-filter.delete",
            format!("token-filter:{}", env["id"])
        )]
    );
    let access = resolve(secret.clone()).await.expect_ok("resolve");
    assert_eq!(
        access["filters"],
        json!([{"field": "team.name", "value": "ops@acme-1"}])
    );
    let read = cp
        .get(&format!("/v1/shared-tokens/{id}"))
        .token(api)
        .send()
        .await
        .expect_ok("read");
    assert_eq!(read["filters"], json!([team["id"]]));
    cp.get(&format!("/v1/shared-tokens/filters/{}", env["id"]))
        .token(api)
        .send()
        .await
        .expect_error(404, "request/NOT_FOUND", "not found");
    // Detach.
    let detached = cp
        .put(&format!("/v1/shared-tokens/{id}"))
        .token(api)
        .json(json!({"filters": []}))
        .send()
        .await
        .expect_ok("detach");
    assert_eq!(detached["filters"], json!([]));
    assert_eq!(
        latest_events(&cp, api, 1).await,
        [event("shared-token.update", format!("shared-token:{id}"))]
    );
    assert_eq!(
        resolve(secret.clone()).await.expect_ok("resolve")["filters"],
        json!([])
    );

    // Unknown or another account's filter ids are refused.
    let globex = main_account(&cp, "globex", "pro").await;
    let foreign = cp
        .post("/v1/shared-tokens/filters")
        .token(globex.api())
        .json(json!({"description": "", "field": "env", "value": "prod"}))
        .send()
        .await
        .expect_ok("globex filter");
    for bad in [foreign["id"].clone(), json!(987_654)] {
        cp.put(&format!("/v1/shared-tokens/{id}"))
            .token(api)
            .json(json!({"filters": [bad]}))
            .send()
            .await
            .expect_error(
                400,
                "shared-tokens/UNKNOWN_FILTER",
                "not one of this account's",
            );
        cp.post("/v1/shared-tokens")
            .token(api)
            .json(json!({"tokenName": "x", "filters": [bad]}))
            .send()
            .await
            .expect_error(
                400,
                "shared-tokens/UNKNOWN_FILTER",
                "not one of this account's",
            );
    }
    // Another account's shared token and filter are not found.
    cp.get(&format!("/v1/shared-tokens/{id}"))
        .token(globex.api())
        .send()
        .await
        .expect_error(404, "request/NOT_FOUND", "not found");
    cp.delete(&format!("/v1/shared-tokens/filters/{}", team["id"]))
        .token(globex.api())
        .send()
        .await
        .expect_error(404, "request/NOT_FOUND", "not found");

    // Resolution needs the feed secret; unknown tokens are 404.
    cp.post("/v1/feed/shared-tokens/resolve")
        .token(api)
        .json(json!({"token": secret}))
        .send()
        .await
        .expect_error(401, "feed/UNAUTHORIZED", "feed secret");
    resolve("noSuchSharedToken000000000000000".into())
        .await
        .expect_error(404, "request/NOT_FOUND", "no shared token");

    // Delete: 204, then gone everywhere.
    let deleted = cp
        .delete(&format!("/v1/shared-tokens/{id}"))
        .token(api)
        .send()
        .await;
    assert_eq!(deleted.status, 204);
    cp.get(&format!("/v1/shared-tokens/{id}"))
        .token(api)
        .send()
        .await
        .expect_error(404, "request/NOT_FOUND", "not found");
    resolve(secret)
        .await
        .expect_error(404, "request/NOT_FOUND", "no shared token");
    cp.stop().await;
}

async fn shared_token_expiry_is_enforced(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
    let expires = now_ms() + 1500;
    let token = cp
        .post("/v1/shared-tokens")
        .token(acme.api())
        .json(json!({"tokenName": "brief", "expirationDate": expires}))
        .send()
        .await
        .expect_ok("create");
    let secret = token["token"].as_str().unwrap();
    cp.post("/v1/feed/shared-tokens/resolve")
        .feed()
        .json(json!({"token": secret}))
        .send()
        .await
        .expect_ok("before expiry");
    cp.advance_clock_past(expires);
    cp.post("/v1/feed/shared-tokens/resolve")
        .feed()
        .json(json!({"token": secret}))
        .send()
        .await
        .expect_error(403, "shared-tokens/EXPIRED", "expired");
    // Extending the expiry brings it back.
    cp.put(&format!("/v1/shared-tokens/{}", token["id"]))
        .token(acme.api())
        .json(json!({"expirationDate": now_ms() + 60_000}))
        .send()
        .await
        .expect_ok("extend");
    cp.post("/v1/feed/shared-tokens/resolve")
        .feed()
        .json(json!({"token": secret}))
        .send()
        .await
        .expect_ok("after extending");
    cp.stop().await;
}

async fn audit_events_newest_first(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
    let api = acme.api();
    let api_id = cp
        .get("/v1/api-tokens")
        .token(api)
        .send()
        .await
        .expect_ok("list")[0]["id"]
        .as_i64()
        .unwrap();
    let t = cp
        .post(LOGS)
        .token(api)
        .json(json!({"name": "x"}))
        .send()
        .await
        .expect_ok("create");
    let tid = t["id"].as_i64().unwrap();
    cp.put(&format!("{LOGS}/{tid}"))
        .token(api)
        .json(json!({"enabled": false}))
        .send()
        .await
        .expect_ok("disable");
    cp.put(&format!("{LOGS}/{tid}"))
        .admin()
        .account(acme.id)
        .json(json!({"name": "y"}))
        .send()
        .await
        .expect_ok("rename by the operator");
    cp.delete(&format!("{LOGS}/{tid}"))
        .token(api)
        .send()
        .await
        .expect_ok("delete");
    let filter = cp
        .post("/v1/shared-tokens/filters")
        .token(api)
        .json(json!({"description": "", "field": "env", "value": "prod"}))
        .send()
        .await
        .expect_ok("filter");
    let shared = cp
        .post("/v1/shared-tokens")
        .token(api)
        .json(json!({"tokenName": "s", "filters": [filter["id"]]}))
        .send()
        .await
        .expect_ok("shared");
    // A refused change is not an event.
    cp.delete(&format!("{LOGS}/{}", token_ids(&cp, LOGS, api).await[0].0))
        .token(api)
        .send()
        .await
        .expect_error(409, "tokens/LAST_ENABLED", "last one");

    let page = cp
        .get("/v1/audit-events?pageNumber=1&pageSize=25")
        .token(api)
        .send()
        .await
        .expect_ok("audit");
    let events = page["results"].as_array().unwrap();
    let me = format!("api-token:{api_id}");
    let got: Vec<[String; 3]> = events
        .iter()
        .map(|e| ["actor", "action", "target"].map(|k| e[k].as_str().unwrap().to_string()))
        .collect();
    let ev =
        |actor: &str, action: &str, target: String| [actor.to_string(), action.to_string(), target];
    let tok = format!("log-shipping-token:{tid}");
    let want_newest = [
        ev(
            &me,
            "shared-token.create",
            format!("shared-token:{}", shared["id"]),
        ),
        ev(
            &me,
            "token-filter.create",
            format!("token-filter:{}", filter["id"]),
        ),
        ev(&me, "log-shipping-token.delete", tok.clone()),
        ev("admin", "log-shipping-token.update", tok.clone()),
        ev(&me, "log-shipping-token.disable", tok.clone()),
        ev(&me, "log-shipping-token.create", tok),
    ];
    assert_eq!(&got[..want_newest.len()], &want_newest[..], "newest first");
    // The account's creation (and its first API token) are the oldest events, by the admin.
    let oldest: Vec<&str> = got.iter().rev().take(2).map(|e| e[1].as_str()).collect();
    assert!(oldest.contains(&"account.create"), "{got:?}");
    assert!(got.iter().rev().take(2).all(|e| e[0] == "admin"), "{got:?}");
    assert_eq!(page["total"].as_u64().unwrap() as usize, events.len());
    assert!(events.iter().all(|e| e["accountId"] == acme.id));
    let ids: Vec<i64> = events.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "ids descend: {ids:?}");
    let times: Vec<i64> = events
        .iter()
        .map(|e| e["createdAt"].as_i64().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "times descend: {times:?}"
    );
    assert!(times[0] <= now_secs() && times[0] >= now_secs() - 60);

    // Paging.
    let page2 = cp
        .get("/v1/audit-events?pageNumber=2&pageSize=2")
        .token(api)
        .send()
        .await
        .expect_ok("page 2");
    assert_eq!(page2["pagination"], json!({"pageNumber": 2, "pageSize": 2}));
    assert_eq!(page2["results"][0]["id"], events[2]["id"]);
    cp.get("/v1/audit-events?pageSize=0")
        .token(api)
        .send()
        .await
        .expect_error(400, "request/INVALID", "pageSize");
    // Another account sees none of these.
    let globex = main_account(&cp, "globex", "pro").await;
    let theirs = cp
        .get("/v1/audit-events")
        .token(globex.api())
        .send()
        .await
        .expect_ok("globex audit");
    assert!(
        theirs["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["accountId"] == globex.id)
    );
    cp.stop().await;
}

async fn feed_carries_digests_and_usage(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
    let digest = |t: &str| tollgate::tokens::Digest::of(t).to_hex();

    cp.get("/v1/feed/snapshot")
        .send()
        .await
        .expect_error(401, "feed/UNAUTHORIZED", "feed secret");
    cp.get("/v1/feed/snapshot")
        .bearer(common::control::ADMIN_SECRET)
        .send()
        .await
        .expect_error(401, "feed/UNAUTHORIZED", "feed secret");
    let snapshot = cp.get("/v1/feed/snapshot").feed().send().await;
    assert_eq!(snapshot.status, 200);
    let text = String::from_utf8_lossy(&snapshot.body).to_string();
    assert!(
        !text.contains(&acme.shipping_token),
        "no plaintext token in the feed"
    );
    let parsed = tollgate::tokens::wire::Snapshot::parse(&snapshot.body)
        .expect("the snapshot is tollgate's Snapshot type");
    let body = snapshot.json();
    let version = body["version"].as_u64().unwrap();
    let entry = body["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["digest"] == digest(&acme.shipping_token).as_str())
        .expect("the account's token is in the snapshot")
        .clone();
    drop(parsed);
    assert_eq!(entry["account_id"], acme.id);
    assert_eq!(entry["account_name"], "acme");
    assert_eq!(entry["kind"], "logs");
    assert_eq!(entry["enabled"], true);
    let token_id = entry["token_id"].as_str().unwrap().to_string();

    // Miss lookups.
    let found = cp
        .get(&format!("/v1/feed/tokens/{}", digest(&acme.shipping_token)))
        .feed()
        .send()
        .await
        .expect_ok("lookup");
    assert_eq!(found, entry);
    cp.get(&format!("/v1/feed/tokens/{}", digest("unknown")))
        .feed()
        .send()
        .await
        .expect_error(404, "feed/UNKNOWN_TOKEN", "digest");
    cp.get("/v1/feed/tokens/xyz")
        .feed()
        .send()
        .await
        .expect_error(400, "feed/BAD_REQUEST", "64 hex");

    // A long poll returns as soon as a change commits.
    let poll = {
        let url = format!("/v1/feed/changes?since={version}&wait=20");
        let started = std::time::Instant::now();
        let waiting = cp.get(&url).feed().send();
        let change = async {
            cp.wait_for_long_polls(1).await;
            cp.post(LOGS)
                .token(acme.api())
                .json(json!({"name": "new"}))
                .send()
                .await
                .expect_ok("create")
        };
        let (reply, created) = tokio::join!(waiting, change);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "woke on the change"
        );
        (reply.expect_ok("changes"), created)
    };
    let (changes, created) = poll;
    assert!(changes["version"].as_u64().unwrap() > version);
    let upserts = changes["upserts"].as_array().unwrap();
    assert!(
        upserts
            .iter()
            .any(|e| e["digest"] == digest(created["token"].as_str().unwrap()).as_str()),
        "{changes}"
    );
    // Deletes carry digests.
    let v2 = changes["version"].as_u64().unwrap();
    cp.delete(&format!("{LOGS}/{}", created["id"]))
        .token(acme.api())
        .send()
        .await
        .expect_ok("delete");
    let changes = cp
        .get(&format!("/v1/feed/changes?since={v2}&wait=0"))
        .feed()
        .send()
        .await
        .expect_ok("changes");
    assert_eq!(
        changes["deletes"],
        json!([digest(created["token"].as_str().unwrap())])
    );
    let v3 = changes["version"].as_u64().unwrap();
    let quiet = cp
        .get(&format!("/v1/feed/changes?since={v3}&wait=0"))
        .feed()
        .send()
        .await
        .expect_ok("nothing new");
    assert_eq!(quiet, json!({"version": v3, "upserts": [], "deletes": []}));
    cp.get(&format!("/v1/feed/changes?since={}&wait=0", v3 + 100))
        .feed()
        .send()
        .await
        .expect_error(410, "feed/VERSION_GONE", "snapshot");
    cp.get("/v1/feed/changes?since=abc")
        .feed()
        .send()
        .await
        .expect_error(400, "feed/BAD_REQUEST", "since");
    cp.get("/v1/feed/changes?since=1&wait=61")
        .feed()
        .send()
        .await
        .expect_error(400, "feed/BAD_REQUEST", "wait");

    // Usage: last-used moves forward only and shows in the listing; unknown ids ignored.
    let report = |last_used: i64| {
        json!({"tokens": [{"token_id": token_id, "last_used": last_used},
                          {"token_id": "999999", "last_used": last_used}],
               "accounts": [{"account_id": acme.id, "kind": "logs", "bytes": 100, "records": 2},
                            {"account_id": 999_999, "kind": "logs", "bytes": 1, "records": 1}]})
    };
    let t = now_secs() - 5;
    for last_used in [t, t - 100] {
        let r = cp
            .post("/v1/feed/usage")
            .feed()
            .json(report(last_used))
            .send()
            .await;
        assert_eq!(r.status, 204, "{:?}", r.body);
    }
    let listed = cp
        .get(&format!("{LOGS}/{token_id}"))
        .token(acme.api())
        .send()
        .await
        .expect_ok("read");
    assert_eq!(listed["lastUsed"], t);
    cp.post("/v1/feed/usage")
        .json(report(t))
        .send()
        .await
        .expect_error(401, "feed/UNAUTHORIZED", "feed secret");
    // Volumes add up and saturate instead of overflowing the store's 64-bit counters.
    for _ in 0..2 {
        let r = cp
            .post("/v1/feed/usage")
            .feed()
            .json(json!({"accounts": [{"account_id": acme.id, "kind": "logs",
                                       "bytes": i64::MAX, "records": i64::MAX}]}))
            .send()
            .await;
        assert_eq!(r.status, 204, "{:?}", r.body);
    }
    cp.post("/v1/feed/usage")
        .feed()
        .json(json!({"accounts": [{"account_id": acme.id, "kind": "logs", "bytes": -1, "records": 0}]}))
        .send()
        .await
        .expect_error(400, "request/INVALID", ">= 0");
    cp.stop().await;
}

/// Sub-account numbers given and not given, alternating on the same statements: a NULL
/// must not fix the parameter's type for the next call on the same pooled connection
/// (PostgreSQL prepares each statement once per connection).
async fn optional_numbers_alternate_with_absent_ones(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let main = main_account(&cp, "acme", "enterprise").await;
    const SUBS: &str = "/v1/account-management/time-based-accounts";
    for round in 0..10 {
        let mut body = json!({"accountName": format!("sub{round}")});
        if round % 2 == 1 {
            body["maxDailyGB"] = json!(1.5);
            body["reservedDailyGB"] = json!(0.5);
        }
        let created = cp
            .post(SUBS)
            .token(main.api())
            .json(body)
            .send()
            .await
            .expect_ok("create sub-account");
        let id = created["accountId"].as_i64().unwrap();
        let model = cp
            .get(&format!("{SUBS}/{id}"))
            .token(main.api())
            .send()
            .await
            .expect_ok("read");
        if round % 2 == 1 {
            assert_eq!(model["maxDailyGB"], 1.5);
            assert_eq!(model["reservedDailyGB"], 0.5);
        } else {
            assert!(model["maxDailyGB"].is_null(), "{model}");
        }
        // Update the other way round: set it where it was absent, keep it where given.
        let update = if round % 2 == 1 {
            json!({"searchable": true})
        } else {
            json!({"maxDailyGB": 2.25})
        };
        let updated = cp
            .put(&format!("{SUBS}/{id}"))
            .token(main.api())
            .json(update)
            .send()
            .await;
        assert_eq!(updated.status, 204, "{:?}", updated.body);
        let model = cp
            .get(&format!("{SUBS}/{id}"))
            .token(main.api())
            .send()
            .await
            .expect_ok("read");
        let want = if round % 2 == 1 { 1.5 } else { 2.25 };
        assert_eq!(model["maxDailyGB"], want, "{model}");
    }
    cp.stop().await;
}

/// The rules read and change an account's tokens in one transaction under the account's
/// lock: concurrent creates never pass the plan's limit, and concurrent disables never
/// leave the account without an enabled token.
async fn limits_hold_under_concurrent_changes(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let pro = main_account(&cp, "busy", "pro").await;
    let creates = (0..24).map(|n| {
        cp.post(LOGS)
            .token(pro.api())
            .json(json!({"name": format!("c{n}")}))
            .send()
    });
    let replies = futures_join_all(creates).await;
    let created = replies.iter().filter(|r| r.status == 200).count();
    for r in replies.iter().filter(|r| r.status != 200) {
        r.expect_error(409, "tokens/ENABLED_LIMIT", "pro plan allows 15");
    }
    assert_eq!(created, 14, "15 enabled in all, the first included");
    let limits = cp
        .get(&format!("{LOGS}/limits"))
        .token(pro.api())
        .send()
        .await
        .expect_ok("limits");
    assert_eq!(
        limits,
        json!({"maxAllowedTokens": 15, "numOfEnabledTokens": 15})
    );

    let ids = token_ids(&cp, LOGS, pro.api()).await;
    let disables = ids.iter().map(|(id, _)| {
        cp.put(&format!("{LOGS}/{id}"))
            .token(pro.api())
            .json(json!({"enabled": false}))
            .send()
    });
    let replies = futures_join_all(disables).await;
    let disabled = replies.iter().filter(|r| r.status == 200).count();
    for r in replies.iter().filter(|r| r.status != 200) {
        r.expect_error(409, "tokens/LAST_ENABLED", "last one");
    }
    assert_eq!(disabled, 14, "exactly one stays enabled");
    let limits = cp
        .get(&format!("{LOGS}/limits"))
        .token(pro.api())
        .send()
        .await
        .expect_ok("limits");
    assert_eq!(limits["numOfEnabledTokens"], 1);
    cp.stop().await;
}

/// Polls the calls together, so their requests overlap at the server; replies in order.
async fn futures_join_all<F>(calls: impl Iterator<Item = F>) -> Vec<common::Reply>
where
    F: std::future::Future<Output = common::Reply>,
{
    let mut pending: Vec<std::pin::Pin<Box<F>>> = calls.map(Box::pin).collect();
    let mut out: Vec<Option<common::Reply>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (i, f) in pending.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(r) => out[i] = Some(r),
                    std::task::Poll::Pending => all = false,
                }
            }
        }
        if all {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.into_iter()
        .map(|r| r.expect("every call answered"))
        .collect()
}

/// Logz.io refuses a second log shipping token with a name the account already uses, on
/// create and on rename; clients create "if absent" by name. Exact comparison after trimming.
async fn shipping_token_names_are_unique_per_account_and_kind(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
    let other = main_account(&cp, "other", "pro").await;
    let create =
        |api: &str, name: &str| cp.post(LOGS).token(api).json(json!({"name": name})).send();
    let ci = create(acme.api(), "ci").await.expect_ok("first ci");
    for name in ["ci", "  ci  "] {
        create(acme.api(), name).await.expect_error(
            409,
            "tokens/DUPLICATE_NAME",
            "already has a logs shipping token named \"ci\"",
        );
    }
    // Another account, another case: different names.
    create(other.api(), "ci")
        .await
        .expect_ok("ci in another account");
    let upper = create(acme.api(), "CI")
        .await
        .expect_ok("CI is another name");
    // Renaming onto a taken name is refused; keeping one's own name is not a rename.
    cp.put(&format!("{LOGS}/{}", upper["id"]))
        .token(acme.api())
        .json(json!({"name": "ci"}))
        .send()
        .await
        .expect_error(409, "tokens/DUPLICATE_NAME", "named \"ci\"");
    let kept = cp
        .put(&format!("{LOGS}/{}", ci["id"]))
        .token(acme.api())
        .json(json!({"name": "ci", "enabled": false}))
        .send()
        .await
        .expect_ok("same name, disabled");
    assert_eq!(kept["name"], "ci");
    assert_eq!(kept["enabled"], false);
    let mut names: Vec<String> = cp
        .post(&format!("{LOGS}/search"))
        .token(acme.api())
        .json(json!({}))
        .send()
        .await
        .expect_ok("search")["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["CI", "ci", "default"]);
    // Once deleted, the name is free again.
    cp.delete(&format!("{LOGS}/{}", ci["id"]))
        .token(acme.api())
        .send()
        .await
        .expect_ok("delete ci");
    create(acme.api(), "ci").await.expect_ok("ci again");
    // Per kind: a tied metrics account's metrics tokens follow the same rule.
    let metrics = account(
        &cp,
        json!({"accountName": "acme-metrics", "type": "metrics", "ownerAccountId": acme.id}),
    )
    .await;
    let create_metrics = || {
        cp.post(METRICS)
            .token(acme.api())
            .account(metrics.id)
            .json(json!({"name": "ci", "enabled": false}))
            .send()
    };
    create_metrics().await.expect_ok("ci among metrics tokens");
    create_metrics().await.expect_error(
        409,
        "tokens/DUPLICATE_NAME",
        "already has a metrics shipping token named \"ci\"",
    );
    cp.stop().await;
}

/// Deleting the newest object of any resource never makes its id the next one's: a
/// client (a Terraform state) still holding the old id must not adopt a new object.
async fn ids_are_never_handed_out_twice(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
    let api = acme.api();
    // (create path, body, id field, delete path prefix)
    let resources = [
        (LOGS, json!({"name": "t"}), "id", LOGS),
        (
            "/v1/api-tokens",
            json!({"name": "t"}),
            "id",
            "/v1/api-tokens",
        ),
        (
            "/v1/shared-tokens",
            json!({"tokenName": "t"}),
            "id",
            "/v1/shared-tokens",
        ),
        (
            "/v1/shared-tokens/filters",
            json!({"field": "env", "value": "prod"}),
            "id",
            "/v1/shared-tokens/filters",
        ),
        (
            "/v1/account-management/time-based-accounts",
            json!({"accountName": "sub", "retentionDays": 7}),
            "accountId",
            "/v1/account-management/time-based-accounts",
        ),
    ];
    for (path, body, field, delete_prefix) in resources {
        let mut deleted = Vec::new();
        for round in 0..3 {
            let created = cp
                .post(path)
                .token(api)
                .json(body.clone())
                .send()
                .await
                .expect_ok(path);
            let id = created[field].as_i64().expect("an id");
            assert!(
                deleted.iter().all(|old| id > *old),
                "{path}: round {round} got id {id} after deleting {deleted:?}"
            );
            let reply = cp
                .delete(&format!("{delete_prefix}/{id}"))
                .token(api)
                .send()
                .await;
            assert!(
                reply.status.is_success(),
                "{path}: delete {id}: {:?}",
                reply.body
            );
            deleted.push(id);
        }
    }
    // And after a restart of the store: the high-water mark is in the database.
    let before_restart = cp
        .post(LOGS)
        .token(api)
        .json(json!({"name": "r"}))
        .send()
        .await
        .expect_ok("create")["id"]
        .as_i64()
        .unwrap();
    cp.delete(&format!("{LOGS}/{before_restart}"))
        .token(api)
        .send()
        .await
        .expect_ok("delete");
    let mut cp = cp;
    cp.restart().await;
    let after_restart = cp
        .post(LOGS)
        .token(api)
        .json(json!({"name": "r"}))
        .send()
        .await
        .expect_ok("create after restart")["id"]
        .as_i64()
        .unwrap();
    assert!(
        after_restart > before_restart,
        "{after_restart} after {before_restart}"
    );
    cp.stop().await;
}

/// The UTC day's midnight of `ms`, in epoch milliseconds.
fn day_of(ms: i64) -> i64 {
    ms - ms.rem_euclid(86_400_000)
}

/// Logz.io's detailed views (`…/time-based-accounts/detailed[/{id}]`), with the bytes a
/// real gateway accepted for the sub-account as `dailyUsagesList`.
async fn detailed_sub_account_views_carry_what_a_gateway_accepted(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    const SUBS: &str = "/v1/account-management/time-based-accounts";
    let main = main_account(&cp, "acme", "pro").await;
    let created = cp
        .post(SUBS)
        .token(main.api())
        .json(
            json!({"accountName": "acme-eu", "retentionDays": 7, "maxDailyGB": 1.5,
                     "searchable": true, "sharingObjectsAccounts": [main.id]}),
        )
        .send()
        .await
        .expect_ok("create sub-account");
    let sub = created["accountId"].as_i64().unwrap();
    let token = created["accountToken"].as_str().unwrap().to_string();
    let detailed = |id: i64| {
        cp.get(&format!("{SUBS}/detailed/{id}"))
            .token(main.api())
            .send()
    };
    let before = detailed(sub).await.expect_ok("detailed before traffic");
    let relation = &before["subAccountRelation"];
    assert_eq!(relation["ownerAccountId"], main.id);
    assert_eq!(relation["subAccountId"], sub);
    assert_eq!(relation["searchable"], true);
    assert_eq!(relation["accessible"], true);
    assert_eq!(relation["type"], "SUB_ACCOUNT");
    let created_ms = relation["createdDate"].as_i64().unwrap();
    assert!((now_ms() - created_ms).abs() < 60_000, "{relation}");
    assert_eq!(relation["lastUpdatedDate"], created_ms);
    let account = &before["account"];
    assert_eq!(account["accountId"], sub);
    assert_eq!(account["accountName"], "acme-eu");
    assert_eq!(account["accountToken"], token.as_str());
    assert_eq!(account["active"], true);
    assert_eq!(account["maxDailyGB"], 1.5);
    assert_eq!(account["retentionDays"], 7);
    assert_eq!(
        before["sharingObjectsAccounts"],
        json!([{"accountId": main.id, "accountName": "acme"}])
    );
    assert_eq!(before["isCapped"], false);
    assert_eq!(before["dailyUsagesList"], json!({"usage": []}));

    // A gateway following this control plane accepts the sub-account's logs and reports
    // their bytes; the view shows them on today's UTC day.
    let url = cp.url();
    let gateway = TestServer::start(|c| use_control_plane(c, &url)).await;
    gateway.wait_ready().await;
    let first_day = day_of(now_ms());
    eventually(Duration::from_secs(5), || async {
        gateway
            .post_logs(Some(&token), "", "{\"msg\":\"hello\"}\nplain line\n")
            .await
            .status
            == 200
    })
    .await;
    let accepted = gateway
        .metric("tollgate_ingested_bytes_total{kind=\"logs\"}")
        .await as i64;
    assert!(accepted > 0);
    eventually(Duration::from_secs(5), || async {
        let usage = detailed(sub).await.expect_ok("detailed")["dailyUsagesList"]["usage"].clone();
        usage
            .as_array()
            .is_some_and(|days| days.len() == 1 && days[0]["bytes"] == accepted)
    })
    .await;
    let after = detailed(sub).await.expect_ok("detailed after traffic");
    let day = after["dailyUsagesList"]["usage"][0]["date"]
        .as_i64()
        .unwrap();
    assert!((first_day..=day_of(now_ms())).contains(&day), "{after}");
    let list = cp
        .get(&format!("{SUBS}/detailed"))
        .token(main.api())
        .send()
        .await
        .expect_ok("detailed list");
    assert_eq!(list, json!([after]));

    // A settings change moves lastUpdatedDate; unknown ids and non-main callers are refused.
    let renamed = cp
        .put(&format!("{SUBS}/{sub}"))
        .token(main.api())
        .json(json!({"accountName": "acme-europe"}))
        .send()
        .await;
    assert_eq!(renamed.status, 204, "{:?}", renamed.body);
    let updated = detailed(sub).await.expect_ok("detailed after rename");
    assert_eq!(updated["account"]["accountName"], "acme-europe");
    assert!(
        updated["subAccountRelation"]["lastUpdatedDate"]
            .as_i64()
            .unwrap()
            >= created_ms
    );
    detailed(sub + 1000)
        .await
        .expect_error(404, "request/NOT_FOUND", "sub-account");
    cp.get(&format!("{SUBS}/detailed"))
        .admin()
        .account(sub)
        .send()
        .await
        .expect_error(409, "accounts/NOT_MAIN_ACCOUNT", "not a main");
    cp.stop().await;
}

/// Every Logz.io sub-account field a client sets comes back as set (0 included), and the
/// server refuses what Logz.io refuses, naming the field, changing nothing.
async fn sub_account_fields_round_trip_and_are_validated(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    const SUBS: &str = "/v1/account-management/time-based-accounts";
    let main = main_account(&cp, "acme", "pro").await;
    let created = cp
        .post(SUBS)
        .token(main.api())
        .json(json!({
            "accountName": "eu", "email": "ops@acme.test", "retentionDays": 7,
            "maxDailyGB": 0, "reservedDailyGB": 0, "softLimitGB": 2, "snapSearchRetentionDays": 3,
            "isFlexible": "true", "docSizeSetting": "true",
            "utilizationSettings": {"frequencyMinutes": 10, "utilizationEnabled": "true"}
        }))
        .send()
        .await
        .expect_ok("create");
    let id = created["accountId"].as_i64().unwrap();
    let read = || cp.get(&format!("{SUBS}/{id}")).token(main.api()).send();
    let model = read().await.expect_ok("read");
    for (field, want) in [
        ("email", json!("ops@acme.test")),
        ("retentionDays", json!(7)),
        ("maxDailyGB", json!(0.0)),
        ("reservedDailyGB", json!(0.0)),
        ("softLimitGB", json!(2.0)),
        ("snapSearchRetentionDays", json!(3)),
        ("isFlexible", json!(true)),
        ("docSizeSetting", json!(true)),
        (
            "utilizationSettings",
            json!({"frequencyMinutes": 10, "utilizationEnabled": true}),
        ),
        ("isCapped", json!(false)),
        ("isOwner", json!(false)),
        ("sharedGB", Value::Null),
        ("totalTimeBasedDailyGB", Value::Null),
    ] {
        assert_eq!(model[field], want, "{field} in {model}");
    }
    let detailed = cp
        .get(&format!("{SUBS}/detailed/{id}"))
        .token(main.api())
        .send()
        .await
        .expect_ok("detailed");
    assert_eq!(detailed["softLimitGB"], 2.0);
    assert_eq!(detailed["snapSearchRetentionDays"], 3);
    assert_eq!(detailed["account"]["softLimitGB"], 2.0);

    // An update changes what it names, 0 included, and keeps the rest.
    let updated = cp
        .put(&format!("{SUBS}/{id}"))
        .token(main.api())
        .json(
            json!({"accountName": "eu", "retentionDays": 0, "maxDailyGB": 4,
                     "reservedDailyGB": 1.5, "softLimitGB": 0}),
        )
        .send()
        .await;
    assert_eq!(updated.status, 204, "{:?}", updated.body);
    let model = read().await.expect_ok("read after update");
    assert_eq!(
        model["retentionDays"], 7,
        "0 is the Go client's unset retention"
    );
    assert_eq!(model["maxDailyGB"], 4.0);
    assert_eq!(model["reservedDailyGB"], 1.5);
    assert_eq!(model["softLimitGB"], 0.0);
    assert_eq!(model["snapSearchRetentionDays"], 3);

    // Refusals name the field; a refused update changes nothing.
    for (body, field) in [
        (
            json!({"accountName": "x", "email": "", "retentionDays": 7}),
            "email",
        ),
        (
            json!({"accountName": "x", "email": "not-an-address", "retentionDays": 7}),
            "email",
        ),
        (
            json!({"accountName": "x", "retentionDays": 0}),
            "retentionDays",
        ),
        (
            json!({"accountName": "x", "retentionDays": 7, "maxDailyGB": -1}),
            "maxDailyGB",
        ),
        (
            json!({"accountName": "x", "retentionDays": 7, "softLimitGB": -0.5}),
            "softLimitGB",
        ),
        (
            json!({"accountName": "x", "retentionDays": 7, "snapSearchRetentionDays": -1}),
            "snapSearchRetentionDays",
        ),
        (
            json!({"accountName": "x", "retentionDays": 7, "maxDailyGB": 2, "reservedDailyGB": 3}),
            "reservedDailyGB",
        ),
    ] {
        cp.post(SUBS)
            .token(main.api())
            .json(body)
            .send()
            .await
            .expect_error(400, "request/INVALID", field);
    }
    cp.put(&format!("{SUBS}/{id}"))
        .token(main.api())
        .json(json!({"reservedDailyGB": 5}))
        .send()
        .await
        .expect_error(400, "request/INVALID", "reservedDailyGB");
    assert_eq!(read().await.expect_ok("unchanged"), model);
    let subs = cp
        .get(SUBS)
        .token(main.api())
        .send()
        .await
        .expect_ok("list");
    assert_eq!(
        subs.as_array().map(Vec::len),
        Some(1),
        "no refused create left one: {subs}"
    );
    cp.put(&format!("{SUBS}/{id}"))
        .token(main.api())
        .json(json!({"utilizationSettings": {"frequencyMinutes": -5}}))
        .send()
        .await
        .expect_error(400, "request/INVALID", "frequencyMinutes");

    // An account another one shares with is deleted: the other's list forgets it, and an
    // update that does not name the list still goes through.
    let other = cp
        .post(SUBS)
        .token(main.api())
        .json(json!({"accountName": "us", "retentionDays": 7,
                     "sharingObjectsAccounts": [id, main.id]}))
        .send()
        .await
        .expect_ok("second sub-account")["accountId"]
        .as_i64()
        .unwrap();
    let deleted = cp
        .delete(&format!("{SUBS}/{id}"))
        .token(main.api())
        .send()
        .await;
    assert_eq!(deleted.status, 204);
    let renamed = cp
        .put(&format!("{SUBS}/{other}"))
        .token(main.api())
        .json(json!({"accountName": "us-east"}))
        .send()
        .await;
    assert_eq!(renamed.status, 204, "{:?}", renamed.body);
    let model = cp
        .get(&format!("{SUBS}/{other}"))
        .token(main.api())
        .send()
        .await
        .expect_ok("read");
    assert_eq!(model["accountName"], "us-east");
    assert_eq!(
        model["sharingObjectsAccounts"],
        json!([{"accountId": main.id, "accountName": "acme"}])
    );
    cp.stop().await;
}

/// One OTLP/HTTP JSON metrics request with one gauge point.
const OTLP_GAUGE: &str = r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"queue_depth",
"gauge":{"dataPoints":[{"asInt":"4","timeUnixNano":"1700000000000000000"}]}}]}]}]}"#;

/// Logz.io's metrics-accounts API over tollgate's tied metrics accounts: created with the
/// main account's API token, its token accepted by a gateway at once, updated, refused
/// where Logz.io refuses, deleted (and then refused by the gateway).
async fn metrics_accounts_are_managed_with_the_main_accounts_api_token(
    backend: Backend,
    test: &str,
) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    const ACCOUNTS: &str = "/v1/account-management/metrics-accounts";
    let main = main_account(&cp, "acme", "pro").await;
    let other = main_account(&cp, "other", "pro").await;
    let sub = cp
        .post("/v1/account-management/time-based-accounts")
        .token(main.api())
        .json(json!({"accountName": "acme-eu", "retentionDays": 7}))
        .send()
        .await
        .expect_ok("sub-account")["accountId"]
        .as_i64()
        .unwrap();
    let created = cp
        .post(ACCOUNTS)
        .token(main.api())
        .json(
            json!({"email": "ops@acme.test", "accountName": "acme-metrics", "planUts": 100,
                     "authorizedAccountsIds": [main.id, sub]}),
        )
        .send()
        .await
        .expect_ok("create");
    let id = created["Id"]
        .as_i64()
        .expect("Id, capitalised as Logz.io's");
    assert!(is_secret(&created["token"]), "{created}");
    assert_eq!(created["accountName"], "acme-metrics");
    assert_eq!(created["planUts"], 100);
    assert_eq!(created["authorizedAccountsIds"], json!([main.id, sub]));
    assert!((now_ms() - created["createdAt"].as_i64().unwrap()).abs() < 60_000);
    let read = |id: i64| cp.get(&format!("{ACCOUNTS}/{id}")).token(main.api()).send();
    assert_eq!(read(id).await.expect_ok("read"), created);
    let list = cp
        .get(ACCOUNTS)
        .token(main.api())
        .send()
        .await
        .expect_ok("list");
    assert_eq!(list, json!([created]));
    // Another main account does not see it.
    cp.get(&format!("{ACCOUNTS}/{id}"))
        .token(other.api())
        .send()
        .await
        .expect_error(404, "request/NOT_FOUND", "metrics account");

    // Its token is a metrics shipping token a gateway accepts at once.
    let token = created["token"].as_str().unwrap().to_string();
    let url = cp.url();
    let gateway = TestServer::start(|c| use_control_plane(c, &url)).await;
    gateway.wait_ready().await;
    let json_type = [("content-type", "application/json")];
    eventually(Duration::from_secs(5), || async {
        gateway
            .post("/v1/metrics", Some(&token), &json_type, OTLP_GAUGE)
            .await
            .status
            == 200
    })
    .await;
    assert_eq!(
        gateway
            .metric("tollgate_ingested_records_total{kind=\"metrics\"}")
            .await,
        1.0
    );

    // Updates answer the account; refusals name the field and change nothing.
    let updated = cp
        .put(&format!("{ACCOUNTS}/{id}"))
        .token(main.api())
        .json(
            json!({"accountName": "acme-prom", "planUts": 200, "authorizedAccountsIds": [main.id]}),
        )
        .send()
        .await
        .expect_ok("update");
    assert_eq!(updated["accountName"], "acme-prom");
    assert_eq!(updated["planUts"], 200);
    assert_eq!(updated["authorizedAccountsIds"], json!([main.id]));
    assert_eq!(read(id).await.expect_ok("read after update"), updated);
    for (body, field) in [
        (
            json!({"accountName": "m", "authorizedAccountsIds": []}),
            "email",
        ),
        (json!({"email": "", "accountName": "m"}), "email"),
        (json!({"email": "ops@acme.test"}), "accountName"),
        (
            json!({"email": "ops@acme.test", "accountName": "m", "planUts": -1}),
            "planUts",
        ),
        (
            json!({"email": "ops@acme.test", "accountName": "m", "authorizedAccountsIds": [other.id]}),
            "authorizedAccountsIds",
        ),
    ] {
        cp.post(ACCOUNTS)
            .token(main.api())
            .json(body)
            .send()
            .await
            .expect_error(400, "request/INVALID", field);
    }
    let list = cp
        .get(ACCOUNTS)
        .token(main.api())
        .send()
        .await
        .expect_ok("list");
    assert_eq!(list, json!([updated]), "no refused create left an account");
    // A sub-account it was shared with is deleted: reads forget it, updates still pass.
    let shared = cp
        .put(&format!("{ACCOUNTS}/{id}"))
        .token(main.api())
        .json(json!({"authorizedAccountsIds": [main.id, sub]}))
        .send()
        .await
        .expect_ok("share with the sub-account");
    assert_eq!(shared["authorizedAccountsIds"], json!([main.id, sub]));
    let deleted = cp
        .delete(&format!("/v1/account-management/time-based-accounts/{sub}"))
        .token(main.api())
        .send()
        .await;
    assert_eq!(deleted.status, 204);
    let after = read(id).await.expect_ok("read after the sub-account went");
    assert_eq!(after["authorizedAccountsIds"], json!([main.id]));
    let updated = cp
        .put(&format!("{ACCOUNTS}/{id}"))
        .token(main.api())
        .json(json!({"accountName": "acme-prom"}))
        .send()
        .await
        .expect_ok("rename only");
    assert_eq!(updated["authorizedAccountsIds"], json!([main.id]));
    // The operator acts through the main account, not through the metrics account itself.
    cp.get(ACCOUNTS)
        .admin()
        .account(id)
        .send()
        .await
        .expect_error(409, "accounts/NOT_MAIN_ACCOUNT", "not a main");

    // Deleting it answers 200 (Logz.io's client reads 204 as "not found") and its token
    // stops working at the gateway.
    let deleted = cp
        .delete(&format!("{ACCOUNTS}/{id}"))
        .token(main.api())
        .send()
        .await
        .expect_ok("delete");
    assert_eq!(deleted, json!({}));
    read(id)
        .await
        .expect_error(404, "request/NOT_FOUND", "metrics account");
    eventually(Duration::from_secs(5), || async {
        gateway
            .post("/v1/metrics", Some(&token), &json_type, OTLP_GAUGE)
            .await
            .status
            == 401
    })
    .await;
    cp.stop().await;
}
