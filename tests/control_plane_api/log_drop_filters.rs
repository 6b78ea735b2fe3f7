//! Logz.io's log drop-filters API, called the way its Go client and Terraform provider call
//! it: string ids, a filter answered on create, activate, deactivate and delete (200, never
//! 204), `[]` from a search with nothing to find, 404 for any id that names no filter of
//! the account, every refusal naming its field; and the filters in the gateways' feed.

use serde_json::{Value, json};

use crate::common::control::{Backend, ControlPlane};
use crate::{Account, event, latest_events, main_account, tied_account};

crate::on_both_backends!(
    a_filter_is_created_active_with_a_string_id,
    search_answers_every_filter_and_an_empty_array_not_null,
    activating_and_deactivating_answer_the_filter_and_repeat_harmlessly,
    delete_answers_200_with_the_filter_and_then_404,
    unknown_and_malformed_ids_are_404_on_every_route,
    refusals_name_the_field_and_change_nothing,
    an_account_has_at_most_ten_filters,
    log_filters_belong_to_log_accounts,
    log_filters_reach_the_feed_and_deletes_leave_tombstones,
);

const FILTERS: &str = "/v1/drop-filters";

/// What Logz.io's Terraform provider sends for a filter with a string and a number.
fn nginx_filter() -> Value {
    json!({
        "logType": "nginx",
        "description": "health checks",
        "fieldConditions": [
            {"fieldName": "request.path", "value": "/healthz"},
            {"fieldName": "status", "value": 200}
        ],
        "thresholdInGB": 10.5
    })
}

async fn create(cp: &ControlPlane, account: &Account, body: Value) -> Value {
    cp.post(FILTERS)
        .token(account.api())
        .json(body)
        .send()
        .await
        .expect_ok("create a drop filter")
}

async fn search(cp: &ControlPlane, account: &Account) -> Vec<Value> {
    cp.post(&format!("{FILTERS}/search"))
        .token(account.api())
        .send()
        .await
        .expect_ok("search")
        .as_array()
        .expect("search answers an array")
        .clone()
}

fn id_of(filter: &Value) -> &str {
    filter["id"].as_str().expect("ids are strings")
}

async fn a_filter_is_created_active_with_a_string_id(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
    let created = create(&cp, &acme, nginx_filter()).await;
    let id = id_of(&created).to_string();
    assert!(id.parse::<u64>().is_ok(), "{created}");
    assert_eq!(
        created,
        json!({
            "id": id, "active": true, "logType": "nginx", "description": "health checks",
            "fieldConditions": [
                {"fieldName": "request.path", "value": "/healthz"},
                {"fieldName": "status", "value": 200}
            ],
            "thresholdInGB": 10.5
        }),
        "the value keeps its JSON type"
    );
    // Only fieldConditions is required (the Go client's `omitempty` leaves the rest out).
    let plain = create(
        &cp,
        &acme,
        json!({"fieldConditions": [{"fieldName": "level", "value": "debug"}]}),
    )
    .await;
    assert_eq!(plain["logType"], Value::Null, "every log type");
    assert_eq!(plain["description"], Value::Null);
    assert_eq!(
        plain["thresholdInGB"], 0.0,
        "no threshold: drop every match"
    );
    assert_eq!(plain["active"], true);
    assert_ne!(id_of(&plain), id);
    assert_eq!(
        latest_events(&cp, acme.api(), 2).await,
        [
            event(
                "log-drop-filter.create",
                format!("log-drop-filter:{}", id_of(&plain))
            ),
            event("log-drop-filter.create", format!("log-drop-filter:{id}")),
        ]
    );
    cp.stop().await;
}

async fn search_answers_every_filter_and_an_empty_array_not_null(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
    let reply = cp
        .post(&format!("{FILTERS}/search"))
        .token(acme.api())
        .send()
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(&reply.body[..], b"[]", "an empty array, never null");
    let first = create(&cp, &acme, nginx_filter()).await;
    cp.post(&format!("{FILTERS}/{}/deactivate", id_of(&first)))
        .token(acme.api())
        .send()
        .await
        .expect_ok("deactivate");
    let second = create(
        &cp,
        &acme,
        json!({"fieldConditions": [{"fieldName": "a", "value": "b"}]}),
    )
    .await;
    let found = search(&cp, &acme).await;
    let ids: Vec<(&str, bool)> = found
        .iter()
        .map(|f| (id_of(f), f["active"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        ids,
        [(id_of(&first), false), (id_of(&second), true)],
        "active and inactive, oldest first"
    );
    // A body, which Logz.io's search does not take, is ignored.
    let with_body = cp
        .post(&format!("{FILTERS}/search"))
        .token(acme.api())
        .json(json!({"whatever": 1}))
        .send()
        .await
        .expect_ok("search with a body");
    assert_eq!(with_body.as_array().unwrap().len(), 2);
    // Another account sees none of them.
    let other = main_account(&cp, "other", "pro").await;
    assert!(search(&cp, &other).await.is_empty());
    cp.stop().await;
}

async fn activating_and_deactivating_answer_the_filter_and_repeat_harmlessly(
    backend: Backend,
    test: &str,
) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
    let created = create(&cp, &acme, nginx_filter()).await;
    let id = id_of(&created);
    let call = |action: &'static str| {
        cp.post(&format!("{FILTERS}/{id}/{action}"))
            .token(acme.api())
            .send()
    };
    let activated = call("activate")
        .await
        .expect_ok("activate an active filter");
    assert_eq!(activated, created, "activating an active filter is 200 too");
    let mut off = created.clone();
    off["active"] = json!(false);
    assert_eq!(call("deactivate").await.expect_ok("deactivate"), off);
    assert_eq!(call("deactivate").await.expect_ok("deactivate again"), off);
    assert_eq!(search(&cp, &acme).await, [off.clone()]);
    assert_eq!(call("activate").await.expect_ok("activate"), created);
    // Only the two real changes are audited.
    assert_eq!(
        latest_events(&cp, acme.api(), 3).await,
        [
            event("log-drop-filter.activate", format!("log-drop-filter:{id}")),
            event(
                "log-drop-filter.deactivate",
                format!("log-drop-filter:{id}")
            ),
            event("log-drop-filter.create", format!("log-drop-filter:{id}")),
        ]
    );
    cp.stop().await;
}

async fn delete_answers_200_with_the_filter_and_then_404(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
    let created = create(&cp, &acme, nginx_filter()).await;
    let id = id_of(&created);
    let deleted = cp
        .delete(&format!("{FILTERS}/{id}"))
        .token(acme.api())
        .send()
        .await
        .expect_ok("delete (200, as Logz.io's client requires)");
    assert_eq!(deleted, created, "the filter as it was");
    assert!(search(&cp, &acme).await.is_empty());
    cp.delete(&format!("{FILTERS}/{id}"))
        .token(acme.api())
        .send()
        .await
        .expect_error(404, "request/NOT_FOUND", &format!("drop filter {id}"));
    assert_eq!(
        latest_events(&cp, acme.api(), 1).await,
        [event(
            "log-drop-filter.delete",
            format!("log-drop-filter:{id}")
        )]
    );
    cp.stop().await;
}

async fn unknown_and_malformed_ids_are_404_on_every_route(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
    let other = main_account(&cp, "other", "pro").await;
    let theirs = create(&cp, &other, nginx_filter()).await;
    let mine = create(&cp, &acme, nginx_filter()).await;
    for id in [
        id_of(&theirs),
        "999999",
        "-1",
        "abc",
        "1.5",
        "f54406c1-b4ad-5969",
    ] {
        for (method, path) in [
            (http::Method::POST, format!("{FILTERS}/{id}/activate")),
            (http::Method::POST, format!("{FILTERS}/{id}/deactivate")),
            (http::Method::DELETE, format!("{FILTERS}/{id}")),
        ] {
            cp.request(method.clone(), &path)
                .token(acme.api())
                .send()
                .await
                .expect_error(404, "request/NOT_FOUND", "");
        }
    }
    cp.delete(&format!("{FILTERS}/search"))
        .token(acme.api())
        .send()
        .await
        .expect_error(404, "request/NOT_FOUND", "no such object");
    // Nothing of either account changed.
    assert_eq!(search(&cp, &acme).await, [mine]);
    assert_eq!(search(&cp, &other).await, [theirs]);
    cp.stop().await;
}

async fn refusals_name_the_field_and_change_nothing(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
    let condition = json!({"fieldName": "a", "value": "b"});
    let cases = [
        (
            json!({}),
            "drop-filters/FIELD_CONDITIONS_REQUIRED",
            "fieldConditions",
        ),
        (
            json!({"logType": "x", "fieldConditions": []}),
            "drop-filters/FIELD_CONDITIONS_REQUIRED",
            "fieldConditions",
        ),
        (
            json!({"fieldConditions": [{"fieldName": "", "value": 1}]}),
            "drop-filters/FIELD_NAME_REQUIRED",
            "fieldConditions[0].fieldName",
        ),
        (
            json!({"fieldConditions": [condition, {"value": 1}]}),
            "drop-filters/FIELD_NAME_REQUIRED",
            "fieldConditions[1].fieldName",
        ),
        (
            json!({"fieldConditions": [{"fieldName": "a", "value": null}]}),
            "drop-filters/VALUE_REQUIRED",
            "fieldConditions[0].value",
        ),
        (
            json!({"fieldConditions": [{"fieldName": "a"}]}),
            "drop-filters/VALUE_REQUIRED",
            "fieldConditions[0].value",
        ),
        (
            json!({"fieldConditions": [{"fieldName": "a", "value": false}]}),
            "drop-filters/VALUE_TYPE",
            "fieldConditions[0].value",
        ),
        (
            json!({"fieldConditions": [{"fieldName": "a", "value": [1]}]}),
            "drop-filters/VALUE_TYPE",
            "fieldConditions[0].value",
        ),
        (
            json!({"fieldConditions": [condition, condition, condition, condition]}),
            "drop-filters/TOO_MANY_CONDITIONS",
            "at most 3",
        ),
        (
            json!({"fieldConditions": [condition], "thresholdInGB": -1}),
            "drop-filters/THRESHOLD_RANGE",
            "thresholdInGB",
        ),
        (
            json!({"fieldConditions": [condition], "thresholdInGB": 1000.01}),
            "drop-filters/THRESHOLD_RANGE",
            "thresholdInGB",
        ),
        (
            json!({"fieldConditions": [condition], "thresholdInGB": "10"}),
            "request/INVALID",
            "thresholdInGB",
        ),
        (
            json!({"fieldConditions": "a=b"}),
            "request/INVALID",
            "fieldConditions",
        ),
    ];
    for (body, code, message) in cases {
        cp.post(FILTERS)
            .token(acme.api())
            .json(body)
            .send()
            .await
            .expect_error(400, code, message);
    }
    cp.post(FILTERS)
        .send()
        .await
        .expect_error(401, "auth/UNAUTHORIZED", "X-API-TOKEN");
    assert!(search(&cp, &acme).await.is_empty(), "nothing was created");
    cp.stop().await;
}

async fn an_account_has_at_most_ten_filters(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
    let body = |i: usize| json!({"fieldConditions": [{"fieldName": "n", "value": i}]});
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(id_of(&create(&cp, &acme, body(i)).await).to_string());
    }
    // Inactive filters count: Logz.io's limit is on the filters an account has.
    cp.post(&format!("{FILTERS}/{}/deactivate", ids[0]))
        .token(acme.api())
        .send()
        .await
        .expect_ok("deactivate");
    cp.post(FILTERS)
        .token(acme.api())
        .json(body(10))
        .send()
        .await
        .expect_error(400, "drop-filters/LIMIT", "at most 10");
    cp.delete(&format!("{FILTERS}/{}", ids[0]))
        .token(acme.api())
        .send()
        .await
        .expect_ok("delete");
    create(&cp, &acme, body(10)).await;
    assert_eq!(search(&cp, &acme).await.len(), 10);
    cp.stop().await;
}

async fn log_filters_belong_to_log_accounts(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
    let metrics = tied_account(&cp, &acme, "metrics", "acme-metrics").await;
    cp.post(FILTERS)
        .token(acme.api())
        .account(metrics.id)
        .json(nginx_filter())
        .send()
        .await
        .expect_error(409, "drop-filters/NOT_LOGS_ACCOUNT", "metrics-management");
    // A sub-account's filters, made with the main account's API token, are its own.
    let sub = crate::sub_account(&cp, &acme, "acme-eu").await;
    let on_sub = cp
        .post(FILTERS)
        .token(acme.api())
        .account(sub)
        .json(nginx_filter())
        .send()
        .await
        .expect_ok("a sub-account's filter");
    let subs = cp
        .post(&format!("{FILTERS}/search"))
        .token(acme.api())
        .account(sub)
        .send()
        .await
        .expect_ok("the sub-account's filters");
    assert_eq!(subs, json!([on_sub]));
    assert!(
        search(&cp, &acme).await.is_empty(),
        "not the main account's"
    );
    cp.stop().await;
}

async fn log_filters_reach_the_feed_and_deletes_leave_tombstones(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
    let v0 = cp.feed_version().await;
    let created = create(&cp, &acme, nginx_filter()).await;
    let id: u64 = id_of(&created).parse().unwrap();
    let wire = json!({
        "id": id, "account_id": acme.id, "active": true, "log_type": "nginx",
        "field_conditions": [
            {"fieldName": "request.path", "value": "/healthz"},
            {"fieldName": "status", "value": 200}
        ],
        "threshold_bytes": 10_500_000_000u64
    });
    let snapshot = cp.get("/v1/feed/snapshot?filters=true").feed().send().await;
    assert_eq!(snapshot.status, 200);
    let parsed = tollgate::tokens::wire::Snapshot::parse(&snapshot.body)
        .expect("the snapshot is tollgate's Snapshot type");
    assert_eq!(parsed.filters.map(|f| f.logs.len()), Some(1));
    assert_eq!(
        snapshot.json()["filters"],
        json!({"logs": [wire], "metrics": []})
    );
    let (_, plain) = cp.feed("/v1/feed/snapshot").await;
    assert!(plain.get("filters").is_none(), "only when asked: {plain}");

    let changes = |since: u64| {
        let cp = &cp;
        async move {
            let (status, body) = cp
                .feed(&format!(
                    "/v1/feed/changes?since={since}&wait=0&filters=true"
                ))
                .await;
            assert_eq!(status, 200, "{body}");
            serde_json::from_value::<tollgate::tokens::wire::Changes>(body.clone())
                .expect("tollgate's Changes type");
            body
        }
    };
    let created_change = changes(v0).await;
    assert_eq!(created_change["filters"]["upserts"]["logs"], json!([wire]));
    let v1 = created_change["version"].as_u64().unwrap();
    let (_, without) = cp
        .feed(&format!("/v1/feed/changes?since={v0}&wait=0"))
        .await;
    assert!(
        without.get("filters").is_none(),
        "only when asked: {without}"
    );

    cp.post(&format!("{FILTERS}/{id}/deactivate"))
        .token(acme.api())
        .send()
        .await
        .expect_ok("deactivate");
    let deactivated = changes(v1).await;
    let mut off = wire.clone();
    off["active"] = json!(false);
    assert_eq!(deactivated["filters"]["upserts"]["logs"], json!([off]));
    let v2 = deactivated["version"].as_u64().unwrap();

    cp.delete(&format!("{FILTERS}/{id}"))
        .token(acme.api())
        .send()
        .await
        .expect_ok("delete");
    let deleted = changes(v2).await;
    assert_eq!(
        deleted["filters"],
        json!({"upserts": {"logs": [], "metrics": []}, "deletes": {"logs": [id], "metrics": []}})
    );
    // The read grants' changes are not confused by a filter's tombstone.
    let (status, grants) = cp
        .feed(&format!("/v1/feed/changes?since={v2}&wait=0&grants=true"))
        .await;
    assert_eq!(status, 200, "{grants}");
    let (_, snapshot) = cp.feed("/v1/feed/snapshot?filters=true").await;
    assert_eq!(snapshot["filters"], json!({"logs": [], "metrics": []}));
    for bad in [
        "/v1/feed/snapshot?filters=maybe",
        "/v1/feed/changes?since=0&filters=maybe",
    ] {
        let (status, body) = cp.feed(bad).await;
        assert_eq!(
            (status.as_u16(), &body["errorCode"]),
            (400, &json!("feed/BAD_REQUEST"))
        );
    }
    cp.stop().await;
}
