//! Logz.io's metrics drop-filters API, called the way its Go client calls it: a filter on a
//! metrics account the main account owns, created alone or in bulk (answered in request
//! order), read, replaced, enabled and disabled, deleted alone or in bulk (204, all or
//! nothing), searched with a filter and pages counted from 0; every refusal naming its
//! field; and the filters in the gateways' feed, gone with their metrics account.

use serde_json::{Value, json};

use crate::common::control::{Backend, ControlPlane};
use crate::{Account, event, latest_events, main_account, tied_account};

crate::on_both_backends!(
    a_filter_is_created_on_an_owned_metrics_account_in_logz_io_shape,
    bulk_create_answers_in_request_order_and_is_all_or_nothing,
    put_replaces_the_definition_and_enable_disable_repeat_harmlessly,
    deletes_are_204_and_bulk_delete_is_all_or_nothing,
    search_filters_and_pages_from_zero,
    only_metrics_accounts_the_caller_reaches_take_filters,
    refusals_name_the_field_and_change_nothing,
    a_metrics_account_has_at_most_a_thousand_filters,
    metrics_filters_reach_the_feed_and_leave_with_their_account,
);

const FILTERS: &str = "/v1/metrics-management/drop-filters";

/// What Logz.io's Go client sends (its README's example), for the metric `name`.
fn cpu_filter(account: i64, name: &str) -> Value {
    json!({
        "accountId": account,
        "name": format!("drop-{name}"),
        "active": true,
        "filter": {
            "operator": "AND",
            "expression": [{"name": "__name__", "value": name, "comparisonFilter": "EQ"}]
        }
    })
}

/// A pro main account and a metrics account it owns.
async fn acme(cp: &ControlPlane) -> (Account, Account) {
    let main = main_account(cp, "acme", "pro").await;
    let metrics = tied_account(cp, &main, "metrics", "acme-metrics").await;
    (main, metrics)
}

async fn create(cp: &ControlPlane, main: &Account, body: Value) -> Value {
    cp.post(FILTERS)
        .token(main.api())
        .json(body)
        .send()
        .await
        .expect_ok("create a metrics drop filter")
}

async fn search(cp: &ControlPlane, main: &Account, body: Value) -> Value {
    cp.post(&format!("{FILTERS}/search"))
        .token(main.api())
        .json(body)
        .send()
        .await
        .expect_ok("search")
}

fn ids(page: &Value) -> Vec<i64> {
    page["results"]
        .as_array()
        .expect("results is an array")
        .iter()
        .map(|f| f["id"].as_i64().unwrap())
        .collect()
}

fn is_iso_utc(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 20 && s.ends_with('Z') && s.as_bytes()[10] == b'T')
}

async fn a_filter_is_created_on_an_owned_metrics_account_in_logz_io_shape(
    backend: Backend,
    test: &str,
) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let (main, metrics) = acme(&cp).await;
    let created = create(&cp, &main, cpu_filter(metrics.id, "CpuUsage")).await;
    let id = created["id"]
        .as_i64()
        .expect("metrics filter ids are integers");
    for time in ["createdAt", "modifiedAt"] {
        assert!(is_iso_utc(&created[time]), "{time}: {created}");
    }
    let token_id = cp
        .get("/v1/api-tokens")
        .token(main.api())
        .send()
        .await
        .json()[0]["id"]
        .as_i64()
        .unwrap();
    let by = format!("api-token:{token_id}");
    let mut expected = json!({
        "id": id, "accountId": metrics.id, "name": "drop-CpuUsage", "active": true,
        "dropPolicy": "DROP_BEFORE_PROCESSING",
        "filter": {"operator": "AND", "expression": [
            {"name": "__name__", "value": "CpuUsage", "comparisonFilter": "EQ"}]},
        "createdBy": by, "modifiedBy": by,
    });
    expected["createdAt"] = created["createdAt"].clone();
    expected["modifiedAt"] = created["modifiedAt"].clone();
    assert_eq!(created, expected);
    let read = cp
        .get(&format!("{FILTERS}/{id}"))
        .token(main.api())
        .send()
        .await
        .expect_ok("read");
    assert_eq!(read, created);
    // The older client's lowercase spellings are taken and served in uppercase; nested
    // groups are kept as sent.
    let lower = create(
        &cp,
        &main,
        json!({"accountId": metrics.id, "dropPolicy": "drop_before_storing", "filter": {
        "operator": "and",
        "expression": [
            {"name": "__name__", "value": "http_.*", "comparisonFilter": "regex_match"},
            {"operator": "and", "expression": [
                {"name": "code", "value": "2..", "comparisonFilter": "regex_no_match"}]}
        ]}}),
    )
    .await;
    assert_eq!(lower["dropPolicy"], "DROP_BEFORE_STORING");
    assert!(lower.get("name").is_none(), "no name given: {lower}");
    assert_eq!(
        lower["filter"],
        json!({"operator": "AND", "expression": [
            {"name": "__name__", "value": "http_.*", "comparisonFilter": "REGEX_MATCH"},
            {"operator": "AND", "expression": [
                {"name": "code", "value": "2..", "comparisonFilter": "REGEX_NO_MATCH"}]}]})
    );
    // In the main account's trail, where its admins read what happens to its accounts.
    assert_eq!(
        latest_events(&cp, main.api(), 2).await,
        [
            event(
                "metrics-drop-filter.create",
                format!("metrics-drop-filter:{}", lower["id"])
            ),
            event(
                "metrics-drop-filter.create",
                format!("metrics-drop-filter:{id}")
            ),
        ]
    );
    cp.stop().await;
}

async fn bulk_create_answers_in_request_order_and_is_all_or_nothing(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let (main, metrics) = acme(&cp).await;
    let second = tied_account(&cp, &main, "metrics", "acme-metrics-2").await;
    let bulk = |body: Value| {
        cp.post(&format!("{FILTERS}/bulk/create"))
            .token(main.api())
            .json(body)
            .send()
    };
    let created = bulk(json!([
        cpu_filter(second.id, "zeta"),
        cpu_filter(metrics.id, "alpha"),
        cpu_filter(second.id, "mu"),
    ]))
    .await
    .expect_ok("bulk create");
    let names: Vec<(&str, i64)> = created
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap(),
                f["accountId"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("drop-zeta", second.id),
            ("drop-alpha", metrics.id),
            ("drop-mu", second.id)
        ]
    );
    let mut bad = cpu_filter(metrics.id, "x");
    bad["filter"]["expression"][0] =
        json!({"name": "job", "value": "(", "comparisonFilter": "REGEX_MATCH"});
    bulk(json!([cpu_filter(metrics.id, "ok"), bad]))
        .await
        .expect_error(
            400,
            "drop-filters/INVALID_REGEX",
            "[1] filter.expression[0].value",
        );
    let other = main_account(&cp, "other", "pro").await;
    let theirs = tied_account(&cp, &other, "metrics", "other-metrics").await;
    bulk(json!([
        cpu_filter(metrics.id, "ok"),
        cpu_filter(theirs.id, "x")
    ]))
    .await
    .expect_error(403, "auth/FORBIDDEN", "accountId");
    bulk(json!([]))
        .await
        .expect_error(400, "drop-filters/EMPTY_BULK", "at least one");
    assert_eq!(
        search(&cp, &main, json!({})).await["total"],
        3,
        "a refused bulk creates nothing"
    );
    cp.stop().await;
}

async fn put_replaces_the_definition_and_enable_disable_repeat_harmlessly(
    backend: Backend,
    test: &str,
) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let (main, metrics) = acme(&cp).await;
    let created = create(&cp, &main, cpu_filter(metrics.id, "CpuUsage")).await;
    let id = created["id"].as_i64().unwrap();
    let put = |body: Value| {
        cp.put(&format!("{FILTERS}/{id}"))
            .token(main.api())
            .json(body)
            .send()
    };
    let mut replacement = cpu_filter(metrics.id, "UpdatedCpuUsage");
    replacement["active"] = json!(false);
    replacement["dropPolicy"] = json!("DROP_BEFORE_STORING");
    let updated = put(replacement.clone()).await.expect_ok("update");
    assert_eq!(updated["name"], "drop-UpdatedCpuUsage");
    assert_eq!(updated["active"], false);
    assert_eq!(updated["dropPolicy"], "DROP_BEFORE_STORING");
    assert_eq!(updated["filter"], replacement["filter"]);
    assert_eq!(updated["createdAt"], created["createdAt"]);
    // Absent `active` keeps the state; absent `dropPolicy` is the default again.
    let mut kept = cpu_filter(metrics.id, "UpdatedCpuUsage");
    kept.as_object_mut().unwrap().remove("active");
    let again = put(kept).await.expect_ok("update without active");
    assert_eq!(
        (&again["active"], &again["dropPolicy"]),
        (&json!(false), &json!("DROP_BEFORE_PROCESSING"))
    );
    let second = tied_account(&cp, &main, "metrics", "acme-metrics-2").await;
    put(cpu_filter(second.id, "x")).await.expect_error(
        400,
        "drop-filters/ACCOUNT_CHANGED",
        "accountId",
    );

    let call = |action: &'static str| {
        cp.post(&format!("{FILTERS}/{id}/{action}"))
            .token(main.api())
            .send()
    };
    assert_eq!(
        call("disable").await.expect_ok("disable a disabled filter")["active"],
        false
    );
    assert_eq!(call("enable").await.expect_ok("enable")["active"], true);
    assert_eq!(
        call("enable").await.expect_ok("enable again")["active"],
        true
    );
    let events = latest_events(&cp, main.api(), 4).await;
    let target = format!("metrics-drop-filter:{id}");
    assert_eq!(
        events,
        [
            event("metrics-drop-filter.enable", target.clone()),
            event("metrics-drop-filter.update", target.clone()),
            event("metrics-drop-filter.update", target.clone()),
            event("metrics-drop-filter.create", target),
        ],
        "repeats change nothing and leave no event"
    );
    cp.stop().await;
}

async fn deletes_are_204_and_bulk_delete_is_all_or_nothing(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let (main, metrics) = acme(&cp).await;
    let mut made = Vec::new();
    for name in ["a", "b", "c"] {
        made.push(
            create(&cp, &main, cpu_filter(metrics.id, name)).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let bulk_delete = |ids: Value| {
        cp.post(&format!("{FILTERS}/bulk/delete"))
            .token(main.api())
            .json(ids)
            .send()
    };
    bulk_delete(json!([made[0], 999_999]))
        .await
        .expect_error(404, "request/NOT_FOUND", "999999");
    assert_eq!(
        ids(&search(&cp, &main, json!({})).await),
        made,
        "nothing deleted"
    );
    bulk_delete(json!([]))
        .await
        .expect_error(400, "drop-filters/EMPTY_BULK", "");
    bulk_delete(json!([made[0], made[1]]))
        .await
        .expect_status(204, "bulk delete");
    assert_eq!(ids(&search(&cp, &main, json!({})).await), [made[2]]);
    let one = format!("{FILTERS}/{}", made[2]);
    cp.delete(&one)
        .token(main.api())
        .send()
        .await
        .expect_status(204, "delete");
    cp.get(&one).token(main.api()).send().await.expect_error(
        404,
        "request/NOT_FOUND",
        "metrics drop filter",
    );
    cp.delete(&one).token(main.api()).send().await.expect_error(
        404,
        "request/NOT_FOUND",
        "metrics drop filter",
    );
    assert_eq!(
        latest_events(&cp, main.api(), 1).await,
        [event(
            "metrics-drop-filter.delete",
            format!("metrics-drop-filter:{}", made[2])
        )]
    );
    cp.stop().await;
}

async fn search_filters_and_pages_from_zero(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let (main, metrics) = acme(&cp).await;
    let second = tied_account(&cp, &main, "metrics", "acme-metrics-2").await;
    let empty = search(&cp, &main, json!({})).await;
    assert_eq!(
        empty,
        json!({"total": 0, "results": [], "pagination": {"pageNumber": 0, "pageSize": 25}})
    );
    let mut made = Vec::new();
    for (account, metric) in [
        (metrics.id, "cpu"),
        (metrics.id, "memory"),
        (second.id, "cpu"),
        (second.id, "disk"),
        (metrics.id, "network"),
    ] {
        made.push(
            create(&cp, &main, cpu_filter(account, metric)).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    cp.post(&format!("{FILTERS}/{}/disable", made[3]))
        .token(main.api())
        .send()
        .await
        .expect_ok("disable");
    // No body at all: everything, first page.
    let all = cp
        .post(&format!("{FILTERS}/search"))
        .token(main.api())
        .send()
        .await
        .expect_ok("search without a body");
    assert_eq!((all["total"].as_i64(), ids(&all)), (Some(5), made.clone()));
    let page = |number: i64| json!({"pagination": {"pageNumber": number, "pageSize": 2}});
    let first = search(&cp, &main, page(0)).await;
    assert_eq!(ids(&first), &made[..2], "page 0 is the first");
    assert_eq!(first["pagination"], json!({"pageNumber": 0, "pageSize": 2}));
    assert_eq!(first["total"], 5);
    assert_eq!(ids(&search(&cp, &main, page(2)).await), &made[4..]);
    assert!(ids(&search(&cp, &main, page(3)).await).is_empty());
    let filtered = |filter: Value| {
        let cp = &cp;
        let main = &main;
        async move { ids(&search(cp, main, json!({"filter": filter})).await) }
    };
    assert_eq!(
        filtered(json!({"accountIds": [second.id]})).await,
        [made[2], made[3]]
    );
    assert_eq!(
        filtered(json!({"metricNames": ["cpu"]})).await,
        [made[0], made[2]]
    );
    assert_eq!(filtered(json!({"active": false})).await, [made[3]]);
    assert_eq!(
        filtered(json!({"active": "true", "searchTerm": "DROP-C"})).await,
        [made[0], made[2]]
    );
    assert_eq!(
        filtered(json!({"accountIds": [metrics.id], "metricNames": ["cpu", "network"]})).await,
        [made[0], made[4]]
    );
    assert!(filtered(json!({"accountIds": [999_999]})).await.is_empty());
    for (pagination, message) in [
        (json!({"pageNumber": -1}), "pageNumber"),
        (json!({"pageSize": 0}), "pageSize"),
        (json!({"pageSize": 1001}), "pageSize"),
    ] {
        cp.post(&format!("{FILTERS}/search"))
            .token(main.api())
            .json(json!({"pagination": pagination}))
            .send()
            .await
            .expect_error(400, "request/INVALID", message);
    }
    // Another main account finds none of them.
    let other = main_account(&cp, "other", "pro").await;
    assert_eq!(search(&cp, &other, json!({})).await["total"], 0);
    cp.stop().await;
}

async fn only_metrics_accounts_the_caller_reaches_take_filters(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let (main, metrics) = acme(&cp).await;
    let other = main_account(&cp, "other", "pro").await;
    let theirs = tied_account(&cp, &other, "metrics", "other-metrics").await;
    let their_filter = create(&cp, &other, cpu_filter(theirs.id, "cpu")).await;
    for account in [theirs.id, 999_999] {
        cp.post(FILTERS)
            .token(main.api())
            .json(cpu_filter(account, "cpu"))
            .send()
            .await
            .expect_error(403, "auth/FORBIDDEN", "does not reach");
    }
    cp.post(FILTERS)
        .token(main.api())
        .json(cpu_filter(main.id, "cpu"))
        .send()
        .await
        .expect_error(400, "drop-filters/NOT_METRICS_ACCOUNT", "accountId");
    // Another main account's filter is not there, on every route.
    let id = their_filter["id"].as_i64().unwrap();
    for id in [id.to_string(), "abc".into(), "1.5".into(), "-3".into()] {
        let path = format!("{FILTERS}/{id}");
        for call in [
            cp.get(&path),
            cp.put(&path).json(cpu_filter(metrics.id, "x")),
            cp.delete(&path),
            cp.post(&format!("{path}/enable")),
            cp.post(&format!("{path}/disable")),
        ] {
            call.token(main.api())
                .send()
                .await
                .expect_error(404, "request/NOT_FOUND", "");
        }
    }
    for method in [http::Method::GET, http::Method::PUT, http::Method::DELETE] {
        cp.request(method, &format!("{FILTERS}/search"))
            .token(main.api())
            .json(cpu_filter(metrics.id, "x"))
            .send()
            .await
            .expect_error(404, "request/NOT_FOUND", "no such object");
    }
    // The operator acts through the main account, or on the metrics account itself.
    let by_operator = cp
        .post(FILTERS)
        .admin()
        .account(main.id)
        .json(cpu_filter(metrics.id, "cpu"))
        .send()
        .await
        .expect_ok("the operator, on the main account");
    assert_eq!(by_operator["createdBy"], "admin");
    let on_metrics = cp
        .get(&format!("{FILTERS}/{}", by_operator["id"]))
        .admin()
        .account(metrics.id)
        .send()
        .await
        .expect_ok("the operator, on the metrics account");
    assert_eq!(on_metrics, by_operator);
    assert_eq!(
        search(&cp, &other, json!({})).await["results"],
        json!([their_filter]),
        "theirs untouched"
    );
    cp.stop().await;
}

async fn refusals_name_the_field_and_change_nothing(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let (main, metrics) = acme(&cp).await;
    let with = |expression: Value| json!({"accountId": metrics.id, "filter": {"operator": "AND", "expression": [expression]}});
    let cond = |name: &str, value: &str, comparison: &str| json!({"name": name, "value": value, "comparisonFilter": comparison});
    let mut nameless = cpu_filter(metrics.id, "cpu");
    nameless["name"] = json!("");
    let mut unknown_policy = cpu_filter(metrics.id, "cpu");
    unknown_policy["dropPolicy"] = json!("DROP_LATER");
    let cases = [
        (
            json!({"filter": cpu_filter(0, "x")["filter"]}),
            "drop-filters/ACCOUNT_REQUIRED",
            "accountId",
        ),
        (
            json!({"accountId": metrics.id}),
            "drop-filters/FILTER_REQUIRED",
            "filter",
        ),
        (
            json!({"accountId": metrics.id, "filter": {"expression": [cond("a", "b", "EQ")]}}),
            "drop-filters/OPERATOR_REQUIRED",
            "filter.operator",
        ),
        (
            json!({"accountId": metrics.id, "filter": {"operator": "OR", "expression": [cond("a", "b", "EQ")]}}),
            "drop-filters/UNKNOWN_OPERATOR",
            "filter.operator",
        ),
        (
            json!({"accountId": metrics.id, "filter": {"operator": "AND", "expression": []}}),
            "drop-filters/EXPRESSION_REQUIRED",
            "filter.expression",
        ),
        (
            with(cond("", "b", "EQ")),
            "drop-filters/LABEL_NAME_REQUIRED",
            "filter.expression[0].name",
        ),
        (
            with(cond("a", "", "EQ")),
            "drop-filters/VALUE_REQUIRED",
            "filter.expression[0].value",
        ),
        (
            with(cond("a", "b", "LIKE")),
            "drop-filters/UNKNOWN_COMPARISON",
            "filter.expression[0].comparisonFilter",
        ),
        (
            with(cond("a", "[a-", "REGEX_MATCH")),
            "drop-filters/INVALID_REGEX",
            "filter.expression[0].value",
        ),
        (
            with(cond("a", "a)|(b", "REGEX_NO_MATCH")),
            "drop-filters/INVALID_REGEX",
            "filter.expression[0].value",
        ),
        (
            with(
                json!({"operator": "AND", "expression": [cond("a", "(?:x{1000}){1000}", "REGEX_MATCH")]}),
            ),
            "drop-filters/INVALID_REGEX",
            "filter.expression[0].expression[0].value",
        ),
        (
            with(json!({"name": "a", "value": 5, "comparisonFilter": "EQ"})),
            "request/INVALID",
            "filter.expression[0].value",
        ),
        (
            unknown_policy,
            "drop-filters/UNKNOWN_DROP_POLICY",
            "dropPolicy",
        ),
        (nameless, "drop-filters/NAME_FORM", "name"),
    ];
    for (body, code, message) in cases {
        cp.post(FILTERS)
            .token(main.api())
            .json(body)
            .send()
            .await
            .expect_error(400, code, message);
    }
    cp.post(FILTERS)
        .json(cpu_filter(metrics.id, "cpu"))
        .send()
        .await
        .expect_error(401, "auth/UNAUTHORIZED", "");
    assert_eq!(
        search(&cp, &main, json!({})).await["total"],
        0,
        "nothing was created"
    );
    cp.stop().await;
}

async fn a_metrics_account_has_at_most_a_thousand_filters(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let (main, metrics) = acme(&cp).await;
    let second = tied_account(&cp, &main, "metrics", "acme-metrics-2").await;
    let many: Vec<Value> = (0..1000)
        .map(|i| cpu_filter(metrics.id, &format!("m{i}")))
        .collect();
    let made = cp
        .post(&format!("{FILTERS}/bulk/create"))
        .token(main.api())
        .json(Value::Array(many))
        .send()
        .await
        .expect_ok("a thousand filters");
    assert_eq!(made.as_array().unwrap().len(), 1000);
    cp.post(FILTERS)
        .token(main.api())
        .json(cpu_filter(metrics.id, "one-more"))
        .send()
        .await
        .expect_error(400, "drop-filters/LIMIT", "at most 1000");
    // The limit is per metrics account.
    create(&cp, &main, cpu_filter(second.id, "elsewhere")).await;
    cp.stop().await;
}

async fn metrics_filters_reach_the_feed_and_leave_with_their_account(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let (main, metrics) = acme(&cp).await;
    let v0 = cp.feed_version().await;
    let created = create(&cp, &main, cpu_filter(metrics.id, "CpuUsage")).await;
    let id = created["id"].as_u64().unwrap();
    let wire = json!({
        "id": id, "account_id": metrics.id, "active": true,
        "drop_policy": "DROP_BEFORE_PROCESSING", "filter": created["filter"],
    });
    let (_, snapshot) = cp.feed("/v1/feed/snapshot?filters=true").await;
    assert_eq!(snapshot["filters"], json!({"logs": [], "metrics": [wire]}));
    let (_, changes) = cp
        .feed(&format!("/v1/feed/changes?since={v0}&wait=0&filters=true"))
        .await;
    assert_eq!(changes["filters"]["upserts"]["metrics"], json!([wire]));
    let v1 = changes["version"].as_u64().unwrap();
    // A log filter of a sub-account, to be deleted with it.
    let sub = crate::sub_account(&cp, &main, "acme-eu").await;
    let log_filter = cp
        .post("/v1/drop-filters")
        .token(main.api())
        .account(sub)
        .json(json!({"fieldConditions": [{"fieldName": "a", "value": "b"}]}))
        .send()
        .await
        .expect_ok("a sub-account's log filter");
    let log_id: u64 = log_filter["id"].as_str().unwrap().parse().unwrap();
    let (_, after_log) = cp
        .feed(&format!("/v1/feed/changes?since={v1}&wait=0&filters=true"))
        .await;
    let v2 = after_log["version"].as_u64().unwrap();
    cp.delete(&format!(
        "/v1/account-management/metrics-accounts/{}",
        metrics.id
    ))
    .token(main.api())
    .send()
    .await
    .expect_ok("delete the metrics account");
    cp.delete(&format!("{}/{sub}", crate::SUBS))
        .token(main.api())
        .send()
        .await
        .expect_status(204, "delete the sub-account");
    let (_, gone) = cp
        .feed(&format!(
            "/v1/feed/changes?since={v2}&wait=0&filters=true&grants=true"
        ))
        .await;
    assert_eq!(
        gone["filters"]["deletes"],
        json!({"logs": [log_id], "metrics": [id]}),
        "{gone}"
    );
    let deleted_accounts = &gone["grants"]["deletes"]["accounts"];
    assert_eq!(deleted_accounts.as_array().map(Vec::len), Some(2), "{gone}");
    let (_, snapshot) = cp.feed("/v1/feed/snapshot?filters=true").await;
    assert_eq!(snapshot["filters"], json!({"logs": [], "metrics": []}));
    cp.stop().await;
}
