//! The Drop filters tab over HTTP, as a browser drives it, on SQLite and PostgreSQL: log
//! filters made, listed with what gateways reported they dropped today, switched off and on,
//! and deleted on a log account; metrics filters on a metrics account reached from its main
//! account; the API's refusals shown on the tab with what was typed kept; and the tab
//! closed to anyone but admins. Every change is checked through the management API, and
//! every POST is answered with a 303 back to the tab.

mod common;

use common::control::{Backend, ControlPlane};
use common::page::{Browser, escape};
use http::Method;
use serde_json::{Value, json};

on_both_backends!(
    log_filters_are_made_listed_switched_and_deleted_on_the_page,
    metrics_filters_are_managed_on_the_metrics_account_from_its_main_account,
    refusals_come_back_to_the_tab_with_what_was_typed,
    only_admins_see_or_change_drop_filters,
);

const ADMIN: &str = "USER_ROLE_ACCOUNT_ADMIN";
const USER: &str = "USER_ROLE_REGULAR";

async fn log_filters(cp: &ControlPlane, api: &str) -> Vec<Value> {
    let found = cp
        .api(Method::POST, "/v1/drop-filters/search", api, None)
        .await;
    found.as_array().expect("an array").clone()
}

/// A metrics account tied to main account `main`.
async fn metrics_account(cp: &ControlPlane, main: i64) -> i64 {
    let created = cp
        .create_account(
            json!({"accountName": "acme-metrics", "type": "metrics", "ownerAccountId": main}),
        )
        .await;
    created["accountId"].as_i64().expect("accountId")
}

/// What gateways report a filter dropped, on the control plane's today.
async fn report_dropped(cp: &ControlPlane, kind: &str, id: i64, records: u64, bytes: u64) {
    cp.post("/v1/feed/usage")
        .feed()
        .json(json!({"dropped": [
            {"kind": kind, "filter_id": id, "records": records, "bytes": bytes}
        ]}))
        .send()
        .await
        .expect_status(204, "usage report");
}

async fn log_filters_are_made_listed_switched_and_deleted_on_the_page(
    backend: Backend,
    test: &str,
) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let (account, api, _) = cp.account("acme").await;
    let mut admin = Browser::signed_in(&cp, account, "ann@example.com", ADMIN).await;
    let tab = format!("/ui/accounts/{account}/drop-filters");
    admin
        .get(&tab)
        .await
        .shows(&[
            "Drop filters",
            "No log drop filters: every log is kept.",
            "0 of 10 filters",
            // The form says how a value is compared.
            "matches that number and never the text",
        ])
        .lacks(&["Metrics drop filters belong"]);

    let landed = admin
        .submit(
            &format!("{tab}/logs"),
            &[
                ("logType", "nginx"),
                ("field1", "status"),
                ("value1", "500"),
                ("field2", "env"),
                ("value2", "test"),
                ("field3", "code"),
                ("value3", "200"),
                ("text3", "1"),
                ("thresholdInGB", "2.5"),
                ("description", "noisy errors"),
            ],
        )
        .await;
    assert_eq!(landed.status(), 200);
    let filters = log_filters(&cp, &api).await;
    assert_eq!(filters.len(), 1, "{filters:?}");
    let f = &filters[0];
    assert_eq!(f["logType"], "nginx");
    assert_eq!(f["active"], true, "new filters are active");
    assert_eq!(f["thresholdInGB"], 2.5);
    assert_eq!(f["description"], "noisy errors");
    assert_eq!(
        f["fieldConditions"],
        json!([
            {"fieldName": "status", "value": 500},
            {"fieldName": "env", "value": "test"},
            {"fieldName": "code", "value": "200"},
        ]),
        "a number is a number unless asked for text"
    );
    let id: i64 = f["id"].as_str().unwrap().parse().unwrap();
    landed
        .told(
            "Log drop filter “noisy errors” (status = 500 AND env = \"test\" AND code = \"200\" \
             on logs of type nginx) created",
        )
        .shows(&[
            &format!("id=\"drop-filter-{id}\""),
            &format!("data-focus=\"drop-filter-{id}\""),
            "status = 500",
            &escape("env = \"test\""),
            "after 2.5 GB a day",
            "1 of 10 filters",
        ]);
    // A reload shows the tab, not the message again: the flash was shown once.
    admin.get(&tab).await.lacks(&["id=\"flash\""]);

    // Gateways report what it dropped today: the row says so.
    report_dropped(&cp, "logs", id, 3, 120).await;
    report_dropped(&cp, "logs", id, 2, 1_380).await;
    admin
        .get(&tab)
        .await
        .shows(&["<strong>5</strong> logs", "1.5 kB"]);

    let off = admin
        .submit(&format!("{tab}/logs/{id}/active"), &[("active", "false")])
        .await;
    off.told("deactivated: matching logs are kept")
        .shows(&["aria-checked=\"false\""]);
    assert_eq!(log_filters(&cp, &api).await[0]["active"], false);
    admin
        .submit(&format!("{tab}/logs/{id}/active"), &[("active", "true")])
        .await
        .told("activated: matching logs are dropped");
    assert_eq!(log_filters(&cp, &api).await[0]["active"], true);

    // The confirmation says what stops being dropped.
    admin
        .get(&tab)
        .await
        .shows(&["These logs stop being dropped: gateways store them"]);
    admin
        .submit(&format!("{tab}/logs/{id}/delete"), &[])
        .await
        .told("deleted: those logs are kept")
        .shows(&["No log drop filters"]);
    assert!(log_filters(&cp, &api).await.is_empty());
}

async fn metrics_filters_are_managed_on_the_metrics_account_from_its_main_account(
    backend: Backend,
    test: &str,
) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let (account, api, _) = cp.account("acme").await;
    let metrics = metrics_account(&cp, account).await;
    let mut admin = Browser::signed_in(&cp, account, "ann@example.com", ADMIN).await;
    // The main account's tab leads to its metrics account's filters.
    let tab = format!("/ui/accounts/{metrics}/drop-filters");
    admin
        .get(&format!("/ui/accounts/{account}/drop-filters"))
        .await
        .shows(&[
            "Metrics drop filters belong to each metrics account",
            &format!("href=\"{tab}\""),
        ]);
    admin.get(&tab).await.shows(&[
        "Metrics drop filters",
        "No metrics drop filters: every data point is kept.",
        "REGEX_NO_MATCH",
    ]);

    admin
        .submit(
            &format!("{tab}/metrics"),
            &[
                ("name", "dev histograms"),
                ("label1", "__name__"),
                ("comparison1", "REGEX_MATCH"),
                ("value1", ".*_bucket"),
                ("label2", "env"),
                ("comparison2", "EQ"),
                ("value2", "dev"),
                ("label3", ""),
                ("comparison3", "EQ"),
                ("value3", ""),
                ("dropPolicy", "DROP_BEFORE_STORING"),
            ],
        )
        .await
        .told("Metrics drop filter “dev histograms” created")
        .shows(&[
            &escape(r#"__name__ =~ ".*_bucket" AND env = "dev""#),
            "before storing",
        ]);
    let found = cp
        .api(
            Method::POST,
            "/v1/metrics-management/drop-filters/search",
            &api,
            Some(json!({"filter": {"accountIds": [metrics]}})),
        )
        .await;
    let f = &found["results"][0];
    assert_eq!(f["name"], "dev histograms", "{found}");
    assert_eq!(f["accountId"], metrics);
    assert_eq!(f["active"], true);
    assert_eq!(f["dropPolicy"], "DROP_BEFORE_STORING");
    assert_eq!(
        f["filter"],
        json!({"operator": "AND", "expression": [
            {"name": "__name__", "value": ".*_bucket", "comparisonFilter": "REGEX_MATCH"},
            {"name": "env", "value": "dev", "comparisonFilter": "EQ"},
        ]})
    );
    let id = f["id"].as_i64().unwrap();

    report_dropped(&cp, "metrics", id, 1, 64).await;
    admin
        .get(&tab)
        .await
        .shows(&["<strong>1</strong> data point", "64 bytes"]);

    admin
        .submit(
            &format!("{tab}/metrics/{id}/active"),
            &[("active", "false")],
        )
        .await
        .told("disabled: matching data points are kept");
    let path = format!("/v1/metrics-management/drop-filters/{id}");
    assert_eq!(
        cp.api(Method::GET, &path, &api, None).await["active"],
        false
    );
    admin
        .submit(&format!("{tab}/metrics/{id}/active"), &[("active", "true")])
        .await
        .told("enabled: matching data points are dropped");
    assert_eq!(cp.api(Method::GET, &path, &api, None).await["active"], true);

    admin
        .submit(&format!("{tab}/metrics/{id}/delete"), &[])
        .await
        .told("Metrics drop filter “dev histograms” deleted");
    let gone = cp
        .get(&format!("/v1/metrics-management/drop-filters/{id}"))
        .token(&api)
        .send()
        .await;
    assert_eq!(gone.status, 404);
}

async fn refusals_come_back_to_the_tab_with_what_was_typed(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let (account, api, _) = cp.account("acme").await;
    let metrics = metrics_account(&cp, account).await;
    let mut admin = Browser::signed_in(&cp, account, "ann@example.com", ADMIN).await;
    let tab = format!("/ui/accounts/{account}/drop-filters");
    admin.get(&tab).await;

    // A value without its field name: the API's check, in its words, in the form, with
    // what was typed kept.
    let refused = admin
        .submit(
            &format!("{tab}/logs"),
            &[("logType", "nginx"), ("field1", ""), ("value1", "orphan")],
        )
        .await;
    refused
        .refusal_shown(
            400,
            "drop-filters/FIELD_NAME_REQUIRED",
            "fieldConditions[0].fieldName: must not be empty",
        )
        .shows(&[
            "data-focus=\"new-log-drop-filter\"",
            "value=\"orphan\"",
            "value=\"nginx\"",
        ]);
    let refused = admin
        .submit(
            &format!("{tab}/logs"),
            &[
                ("field1", "env"),
                ("value1", "x"),
                ("thresholdInGB", "5000"),
            ],
        )
        .await;
    refused.refusal_shown(400, "drop-filters/THRESHOLD_RANGE", "thresholdInGB");
    // The eleventh filter: the account's limit.
    for i in 0..10 {
        let value = i.to_string();
        admin
            .submit(
                &format!("{tab}/logs"),
                &[("field1", "n"), ("value1", &value)],
            )
            .await
            .told("created");
    }
    admin
        .get(&tab)
        .await
        .shows(&["10 of 10 filters", "delete one before adding another"]);
    admin
        .submit(
            &format!("{tab}/logs"),
            &[("field1", "n"), ("value1", "eleven")],
        )
        .await
        .refusal_shown(400, "drop-filters/LIMIT", "at most 10 drop filters");
    assert_eq!(log_filters(&cp, &api).await.len(), 10, "nothing more made");
    // An unknown filter is the API's 404, on the tab.
    admin
        .submit(&format!("{tab}/logs/999999/delete"), &[])
        .await
        .refusal_shown(404, "request/NOT_FOUND", "drop filter 999999 not found");

    let metrics_tab = format!("/ui/accounts/{metrics}/drop-filters");
    admin
        .submit(
            &format!("{metrics_tab}/metrics"),
            &[
                ("label1", "__name__"),
                ("comparison1", "REGEX_MATCH"),
                ("value1", "(unclosed"),
            ],
        )
        .await
        .refusal_shown(
            400,
            "drop-filters/INVALID_REGEX",
            "filter.expression[0].value: is not a valid regular expression",
        )
        .shows(&[
            "value=\"(unclosed\"",
            "<option value=\"REGEX_MATCH\" selected>",
        ]);
    admin
        .submit(
            &format!("{metrics_tab}/metrics"),
            &[
                ("label1", "__name__"),
                ("comparison1", "LIKE"),
                ("value1", "up"),
            ],
        )
        .await
        .refusal_shown(400, "drop-filters/UNKNOWN_COMPARISON", "must be one of EQ");
    // Log filters belong to log accounts: asking a metrics account for one is the API's
    // refusal too.
    admin
        .submit(
            &format!("{metrics_tab}/logs"),
            &[("field1", "env"), ("value1", "x")],
        )
        .await
        .refusal_shown(
            409,
            "drop-filters/NOT_LOGS_ACCOUNT",
            "log drop filters belong to log accounts",
        );
}

async fn only_admins_see_or_change_drop_filters(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let (account, api, _) = cp.account("acme").await;
    cp.api(
        Method::POST,
        "/v1/drop-filters",
        &api,
        Some(json!({"fieldConditions": [{"fieldName": "env", "value": "dev"}]})),
    )
    .await;
    let mut admin = Browser::signed_in(&cp, account, "ann@example.com", ADMIN).await;
    admin
        .get(&format!("/ui/accounts/{account}/logs"))
        .await
        .shows(&[&format!("href=\"/ui/accounts/{account}/drop-filters\"")]);
    let mut user = Browser::signed_in(&cp, account, "bob@example.com", USER).await;
    let tab = format!("/ui/accounts/{account}/drop-filters");
    user.get(&format!("/ui/accounts/{account}/shared"))
        .await
        .lacks(&["Drop filters", &format!("href=\"{tab}\"")]);
    user.get(&tab).await.refused(
        403,
        "auth/ADMIN_ROLE_REQUIRED",
        "only the account's admins may do this",
    );
    let id = log_filters(&cp, &api).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for (path, fields) in [
        (
            format!("{tab}/logs"),
            vec![("field1", "a"), ("value1", "b")],
        ),
        (format!("{tab}/logs/{id}/active"), vec![("active", "false")]),
        (format!("{tab}/logs/{id}/delete"), vec![]),
    ] {
        let answer = user.post(&path, &fields).await;
        assert_eq!(answer.status(), 303, "{path}: {}", answer.html);
        let landed = user.get(answer.location()).await;
        assert!(
            landed.html.contains("auth/ADMIN_ROLE_REQUIRED"),
            "{path}: {}",
            landed.html
        );
    }
    let filters = log_filters(&cp, &api).await;
    assert_eq!(filters.len(), 1, "{filters:?}");
    assert_eq!(filters[0]["active"], true, "nothing changed");
}
