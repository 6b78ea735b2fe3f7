//! Shipping tokens: each plan's limit of enabled tokens, the last enabled one, names unique
//! per account and kind, the limits under concurrent changes, and bodies and searches as
//! Logz.io's Go client sends them.

use serde_json::{Value, json};

use crate::common::Reply;
use crate::common::control::{Backend, ControlPlane};
use crate::{LOGS, METRICS, is_secret, main_account, now_secs, tied_account, token_ids};

crate::on_both_backends!(
    a_community_account_starts_with_one_enabled_token_and_no_api_token,
    community_plan_allows_one_enabled_token,
    the_last_enabled_token_can_be_renamed_but_neither_disabled_nor_deleted,
    paid_plans_allow_fifteen_enabled_tokens,
    disabling_a_token_makes_room_for_another,
    a_paid_account_keeps_its_last_enabled_token,
    concurrent_creates_never_pass_the_plans_limit,
    concurrent_disables_leave_one_token_enabled,
    shipping_token_names_are_unique_per_account_and_kind,
    booleans_may_come_as_strings,
    search_takes_the_go_clients_filters_sorting_and_pages,
);

async fn a_community_account_starts_with_one_enabled_token_and_no_api_token(
    backend: Backend,
    test: &str,
) {
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

    // The new account's one token is enabled.
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
    cp.stop().await;
}

async fn community_plan_allows_one_enabled_token(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let id = main_account(&cp, "small", "community").await.id;
    // A second token (enabled by default) is refused.
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
    cp.stop().await;
}

async fn the_last_enabled_token_can_be_renamed_but_neither_disabled_nor_deleted(
    backend: Backend,
    test: &str,
) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let id = main_account(&cp, "small", "community").await.id;
    let first_id = cp
        .post(&format!("{LOGS}/search"))
        .admin()
        .account(id)
        .json(json!({}))
        .send()
        .await
        .expect_ok("search")["results"][0]["id"]
        .as_i64()
        .unwrap();

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

/// Creates tokens `t2` to `t15` beside the first: a paid plan's 15, all enabled. Their
/// create answers, in order.
async fn fifteen_enabled(cp: &ControlPlane, api: &str) -> Vec<Value> {
    let mut created = Vec::new();
    for n in 2..=15 {
        created.push(
            cp.post(LOGS)
                .token(api)
                .json(json!({"name": format!("t{n}")}))
                .send()
                .await
                .expect_ok("create within the limit"),
        );
    }
    created
}

async fn paid_plans_allow_fifteen_enabled_tokens(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let pro = main_account(&cp, "pro", "pro").await;
    for t in fifteen_enabled(&cp, pro.api()).await {
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

async fn disabling_a_token_makes_room_for_another(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let pro = main_account(&cp, "pro", "pro").await;
    fifteen_enabled(&cp, pro.api()).await;

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
    cp.stop().await;
}

async fn a_paid_account_keeps_its_last_enabled_token(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let pro = main_account(&cp, "pro", "pro").await;
    for name in ["second", "third"] {
        cp.create_token(pro.api(), name).await;
    }

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
    cp.stop().await;
}

/// The rules read and change an account's tokens in one transaction under the account's
/// lock: concurrent creates never pass the plan's limit.
async fn concurrent_creates_never_pass_the_plans_limit(backend: Backend, test: &str) {
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
    cp.stop().await;
}

/// As for creates: concurrent disables never leave the account without an enabled token.
async fn concurrent_disables_leave_one_token_enabled(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let pro = main_account(&cp, "busy", "pro").await;
    fifteen_enabled(&cp, pro.api()).await;
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
async fn futures_join_all<F>(calls: impl Iterator<Item = F>) -> Vec<Reply>
where
    F: std::future::Future<Output = Reply>,
{
    let mut pending: Vec<std::pin::Pin<Box<F>>> = calls.map(Box::pin).collect();
    let mut out: Vec<Option<Reply>> = (0..pending.len()).map(|_| None).collect();
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
            "already has a log shipping token named “ci”",
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
        .expect_error(409, "tokens/DUPLICATE_NAME", "named “ci”");
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
    let metrics = tied_account(&cp, &acme, "metrics", "acme-metrics").await;
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
        "already has a metrics shipping token named “ci”",
    );
    cp.stop().await;
}

/// Three more tokens created as the Go client sends them (`enabled` as a string), and the
/// first of them, "bravo", disabled the same way: the three create answers and the update's.
async fn tokens_from_the_go_client(cp: &ControlPlane, api: &str) -> (Vec<Value>, Value) {
    let mut created = Vec::new();
    for name in ["bravo", "alpha", "charlie"] {
        created.push(
            cp.post(LOGS)
                .token(api)
                .json(json!({"name": name, "enabled": "true"}))
                .send()
                .await
                .expect_ok("create"),
        );
    }
    let ids = token_ids(cp, LOGS, api).await;
    let updated = cp
        .put(&format!("{LOGS}/{}", ids[1].0))
        .token(api)
        .json(json!({"name": "bravo", "enabled": "false"}))
        .send()
        .await
        .expect_ok("update with a string boolean");
    (created, updated)
}

/// The Go client sends `enabled` on create and update, as a string.
async fn booleans_may_come_as_strings(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
    let (created, updated) = tokens_from_the_go_client(&cp, acme.api()).await;
    for t in &created {
        assert_eq!(t["enabled"], true);
    }
    assert_eq!(updated["enabled"], false);
    cp.put(&format!("{LOGS}/{}", updated["id"]))
        .token(acme.api())
        .json(json!({"enabled": "maybe"}))
        .send()
        .await
        .expect_error(400, "request/INVALID", "enabled");
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

async fn search_takes_the_go_clients_filters_sorting_and_pages(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
    tokens_from_the_go_client(&cp, acme.api()).await;

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
    cp.stop().await;
}
