//! Shared tokens and their filters: defaults and expiry, exact `field: value` filters,
//! attached filters reaching the gateways' resolution at once, other accounts' objects out
//! of reach, and resolution only with the feed secret.

use serde_json::{Value, json};

use crate::common::Reply;
use crate::common::control::{Backend, ControlPlane};
use crate::{event, is_secret, latest_events, main_account, now_ms};

crate::on_both_backends!(
    a_shared_token_defaults_to_seven_days_and_no_filters,
    only_legacy_shared_tokens_may_never_expire,
    new_shared_tokens_need_an_expiry_within_the_lifetime,
    removing_a_tokens_last_filter_widens_it_and_says_so,
    a_shared_tokens_expiry_moves_but_never_into_the_past,
    filters_are_exact_field_value_pairs,
    attached_filters_reach_resolution_at_once,
    deleting_a_filter_detaches_it_everywhere_at_once,
    another_accounts_filters_and_shared_tokens_are_out_of_reach,
    resolution_needs_the_feed_secret_and_a_live_token,
    shared_token_expiry_is_enforced,
);

const SEVEN_DAYS_MS: i64 = 7 * 24 * 3600 * 1000;
const THIRTY_DAYS_MS: i64 = 30 * 24 * 3600 * 1000;

/// Creates a shared token from `body`: its create answer, id and secret.
async fn shared_token(cp: &ControlPlane, api: &str, body: Value) -> (Value, i64, String) {
    let token = cp
        .post("/v1/shared-tokens")
        .token(api)
        .json(body)
        .send()
        .await
        .expect_ok("create");
    let id = token["id"].as_i64().unwrap();
    let secret = token["token"].as_str().unwrap().to_string();
    (token, id, secret)
}

async fn filter(
    cp: &ControlPlane,
    api: &str,
    description: &str,
    field: &str,
    value: &str,
) -> Value {
    cp.post("/v1/shared-tokens/filters")
        .token(api)
        .json(json!({"description": description, "field": field, "value": value}))
        .send()
        .await
        .expect_ok("filter")
}

/// The standard filters: `env: test` and `team.name: ops@acme-1` (every allowed
/// character class).
async fn env_and_team(cp: &ControlPlane, api: &str) -> (Value, Value) {
    (
        filter(cp, api, "test env", "env", "test").await,
        filter(cp, api, "team", "team.name", "ops@acme-1").await,
    )
}

/// What a gateway asks with the feed secret when a shared token is presented.
async fn resolve(cp: &ControlPlane, secret: &str) -> Reply {
    cp.post("/v1/feed/shared-tokens/resolve")
        .feed()
        .json(json!({"token": secret}))
        .send()
        .await
}

async fn a_shared_token_defaults_to_seven_days_and_no_filters(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
    let before = now_ms();
    let (token, _, _) = shared_token(&cp, acme.api(), json!({"tokenName": "dashboards"})).await;
    let expiry = token["expirationDate"].as_i64().unwrap();
    assert!(
        (before + SEVEN_DAYS_MS..=now_ms() + SEVEN_DAYS_MS).contains(&expiry),
        "default expiry is 7 days: {token}"
    );
    assert_eq!(token["filtersOperator"], "AND");
    assert_eq!(token["filters"], json!([]));
    assert!(token["lastUsed"].is_null());
    assert_eq!(token["name"], "dashboards");
    assert!(is_secret(&token["token"]));
    cp.stop().await;
}

/// Where the operator allows them, legacy tokens may have no expiry; others must have a
/// future one.
async fn only_legacy_shared_tokens_may_never_expire(backend: Backend, test: &str) {
    let Some(cp) =
        ControlPlane::start_with(backend, test, |c| c.shared_tokens_without_expiry = true).await
    else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
    let api = acme.api();
    shared_token(&cp, api, json!({"tokenName": "dashboards"})).await;
    let (legacy, _, _) = shared_token(
        &cp,
        api,
        json!({"tokenName": "old", "expirationDate": null, "legacy": true}),
    )
    .await;
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
    let listed = cp
        .get("/v1/shared-tokens")
        .token(api)
        .send()
        .await
        .expect_ok("list");
    assert_eq!(listed.as_array().unwrap().len(), 2);
    cp.stop().await;
}

async fn a_shared_tokens_expiry_moves_but_never_into_the_past(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
    let api = acme.api();
    let (_, id, _) = shared_token(&cp, api, json!({"tokenName": "dashboards"})).await;
    let later = now_ms() + THIRTY_DAYS_MS;
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
    cp.stop().await;
}

/// Filters are exact `field: value` pairs; no wildcard can be written.
async fn filters_are_exact_field_value_pairs(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
    let api = acme.api();
    let (env, team) = env_and_team(&cp, api).await;
    assert_eq!(env["field"], "env");
    assert_eq!(env["value"], "test");
    assert_eq!(env["description"], "test env");
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
    cp.stop().await;
}

async fn attached_filters_reach_resolution_at_once(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
    let api = acme.api();
    let before = now_ms();
    let later = now_ms() + THIRTY_DAYS_MS;
    let (_, id, secret) = shared_token(
        &cp,
        api,
        json!({"tokenName": "dashboards", "expirationDate": later}),
    )
    .await;
    let (env, team) = env_and_team(&cp, api).await;
    let access = resolve(&cp, &secret).await.expect_ok("resolve, no filters");
    assert_eq!(access["accountId"], acme.id);
    assert_eq!(access["filters"], json!([]));
    assert_eq!(access["filtersOperator"], "AND");
    assert_eq!(access["expirationDate"], later);

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
    let access = resolve(&cp, &secret).await.expect_ok("resolve");
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
    let access = resolve(&cp, &secret).await.expect_ok("resolve");
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
    cp.stop().await;
}

async fn deleting_a_filter_detaches_it_everywhere_at_once(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
    let api = acme.api();
    let (env, team) = env_and_team(&cp, api).await;
    let (_, id, secret) = shared_token(
        &cp,
        api,
        json!({"tokenName": "dashboards", "filters": [env["id"], team["id"]],
               "filtersOperator": "OR"}),
    )
    .await;

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
    let access = resolve(&cp, &secret).await.expect_ok("resolve");
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
        [event("shared-token.widen", format!("shared-token:{id}"))],
        "detaching the last filter widens the token to every log"
    );
    assert_eq!(
        resolve(&cp, &secret).await.expect_ok("resolve")["filters"],
        json!([])
    );
    cp.stop().await;
}

/// Unknown or another account's filter ids are refused; another account's shared token and
/// filter are not found.
async fn another_accounts_filters_and_shared_tokens_are_out_of_reach(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
    let api = acme.api();
    let (_, team) = env_and_team(&cp, api).await;
    let (_, id, _) = shared_token(&cp, api, json!({"tokenName": "dashboards"})).await;
    let globex = main_account(&cp, "globex", "pro").await;
    let foreign = filter(&cp, globex.api(), "", "env", "prod").await;
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
    cp.stop().await;
}

/// Resolution needs the feed secret; unknown and deleted tokens are 404.
async fn resolution_needs_the_feed_secret_and_a_live_token(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
    let api = acme.api();
    let (_, id, secret) = shared_token(&cp, api, json!({"tokenName": "dashboards"})).await;
    cp.post("/v1/feed/shared-tokens/resolve")
        .token(api)
        .json(json!({"token": secret}))
        .send()
        .await
        .expect_error(401, "feed/UNAUTHORIZED", "feed secret");
    resolve(&cp, "noSuchSharedToken000000000000000")
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
    resolve(&cp, &secret)
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
    let (_, id, secret) = shared_token(
        &cp,
        acme.api(),
        json!({"tokenName": "brief", "expirationDate": expires}),
    )
    .await;
    resolve(&cp, &secret).await.expect_ok("before expiry");
    cp.advance_clock_past(expires);
    resolve(&cp, &secret)
        .await
        .expect_error(403, "shared-tokens/EXPIRED", "expired");
    // Extending the expiry brings it back.
    cp.put(&format!("/v1/shared-tokens/{id}"))
        .token(acme.api())
        .json(json!({"expirationDate": now_ms() + 60_000}))
        .send()
        .await
        .expect_ok("extend");
    resolve(&cp, &secret).await.expect_ok("after extending");
    cp.stop().await;
}

/// By default no new token is made without an expiry, legacy or not, and none expires
/// more than a year (`shared_token_max_lifetime_secs`) from now, on create or update.
async fn new_shared_tokens_need_an_expiry_within_the_lifetime(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
    let api = acme.api();
    cp.post("/v1/shared-tokens")
        .token(api)
        .json(json!({"tokenName": "old", "expirationDate": null, "legacy": true}))
        .send()
        .await
        .expect_error(
            400,
            "shared-tokens/EXPIRY_REQUIRED",
            "where the operator allows them",
        );
    let year_ms = 365 * 24 * 3600 * 1000;
    cp.post("/v1/shared-tokens")
        .token(api)
        .json(json!({"tokenName": "forever", "expirationDate": now_ms() + year_ms + 60_000}))
        .send()
        .await
        .expect_error(
            400,
            "shared-tokens/EXPIRY_TOO_FAR",
            "at most 365 days from now",
        );
    let (_, id, _) = shared_token(
        &cp,
        api,
        json!({"tokenName": "a year", "expirationDate": now_ms() + year_ms - 60_000}),
    )
    .await;
    cp.put(&format!("/v1/shared-tokens/{id}"))
        .token(api)
        .json(json!({"expirationDate": now_ms() + 2 * year_ms}))
        .send()
        .await
        .expect_error(400, "shared-tokens/EXPIRY_TOO_FAR", "365 days");
    cp.stop().await;
}

/// Without filters a token reads every log of its account, as in Logz.io: removing its
/// last filter (an edit, or deleting the filter) is audited as widening access, and every
/// answer says whether a token reads everything.
async fn removing_a_tokens_last_filter_widens_it_and_says_so(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
    let api = acme.api();
    let env = filter(&cp, api, "env", "env", "test").await["id"]
        .as_i64()
        .unwrap();
    let region = filter(&cp, api, "region", "region", "eu").await["id"]
        .as_i64()
        .unwrap();
    let (created, edited, _) =
        shared_token(&cp, api, json!({"tokenName": "edited", "filters": [env]})).await;
    assert_eq!(created["readsAllLogs"], false);
    let (_, orphaned, _) = shared_token(
        &cp,
        api,
        json!({"tokenName": "orphaned", "filters": [region]}),
    )
    .await;

    let answer = cp
        .put(&format!("/v1/shared-tokens/{edited}"))
        .token(api)
        .json(json!({"filters": []}))
        .send()
        .await
        .expect_ok("remove the last filter");
    assert_eq!(answer["readsAllLogs"], true, "{answer}");
    assert_eq!(
        latest_events(&cp, api, 1).await,
        [event(
            "shared-token.widen",
            format!("shared-token:{edited}")
        )]
    );

    cp.delete(&format!("/v1/shared-tokens/filters/{region}"))
        .token(api)
        .send()
        .await
        .expect_status(204, "delete the filter");
    assert_eq!(
        latest_events(&cp, api, 2).await,
        [
            event("shared-token.widen", format!("shared-token:{orphaned}")),
            event("token-filter.delete", format!("token-filter:{region}")),
        ]
    );
    let read = cp
        .get(&format!("/v1/shared-tokens/{orphaned}"))
        .token(api)
        .send()
        .await
        .expect_ok("read");
    assert_eq!(read["readsAllLogs"], true);
    cp.stop().await;
}
