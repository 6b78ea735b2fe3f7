//! The audit trail: every change an account's credentials make, by whom, newest first,
//! paged, and seen only by that account.

use serde_json::{Value, json};

use crate::common::control::{Backend, ControlPlane};
use crate::{Account, LOGS, main_account, now_secs, token_ids};

crate::on_both_backends!(
    audit_events_list_every_change_newest_first,
    audit_events_are_paged,
    an_account_sees_only_its_own_audit_events,
);

/// What `changes` did: the ids its events name.
struct Trail {
    api_id: i64,
    token_id: i64,
    filter: Value,
    shared: Value,
}

/// Changes by the account's API token and by the operator, and a refused one: a shipping
/// token created, disabled, renamed by the operator and deleted, a filter and a shared token
/// created, and the last enabled token's deletion refused.
async fn changes(cp: &ControlPlane, acme: &Account) -> Trail {
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
    let token_id = t["id"].as_i64().unwrap();
    cp.put(&format!("{LOGS}/{token_id}"))
        .token(api)
        .json(json!({"enabled": false}))
        .send()
        .await
        .expect_ok("disable");
    cp.put(&format!("{LOGS}/{token_id}"))
        .admin()
        .account(acme.id)
        .json(json!({"name": "y"}))
        .send()
        .await
        .expect_ok("rename by the operator");
    cp.delete(&format!("{LOGS}/{token_id}"))
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
    cp.delete(&format!("{LOGS}/{}", token_ids(cp, LOGS, api).await[0].0))
        .token(api)
        .send()
        .await
        .expect_error(409, "tokens/LAST_ENABLED", "last one");
    Trail {
        api_id,
        token_id,
        filter,
        shared,
    }
}

async fn audit_events_list_every_change_newest_first(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
    let Trail {
        api_id,
        token_id,
        filter,
        shared,
    } = changes(&cp, &acme).await;

    let page = cp
        .get("/v1/audit-events?pageNumber=1&pageSize=25")
        .token(acme.api())
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
    let tok = format!("log-shipping-token:{token_id}");
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
    cp.stop().await;
}

async fn audit_events_are_paged(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
    changes(&cp, &acme).await;
    let api = acme.api();
    let page = cp
        .get("/v1/audit-events?pageNumber=1&pageSize=25")
        .token(api)
        .send()
        .await
        .expect_ok("audit");
    let events = page["results"].as_array().unwrap();
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
    cp.stop().await;
}

async fn an_account_sees_only_its_own_audit_events(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
    changes(&cp, &acme).await;
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
