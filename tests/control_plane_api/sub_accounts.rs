//! Sub-accounts (Logz.io's time-based accounts): configured only with a main account's API
//! token, access revoked and restored, every field round-tripped and validated, bodies as
//! the Terraform client marshals them, and the detailed views with what a gateway accepted.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::control::{Backend, ControlPlane};
use crate::common::eventually;
use crate::{
    Account, LOGS, SUBS, event, gateway_following, is_secret, latest_events, main_account, now_ms,
    read_sub, tied_account,
};

crate::on_both_backends!(
    a_sub_account_reads_back_as_created,
    revoking_access_locks_the_main_accounts_token_out_until_restored,
    only_a_main_accounts_api_token_configures_sub_accounts,
    another_main_account_neither_sees_nor_reaches_a_sub_account,
    a_sub_account_follows_its_main_accounts_plan,
    deleting_a_sub_account_removes_it_and_its_tokens,
    sub_account_bodies_shaped_like_the_terraform_client_round_trip,
    optional_numbers_alternate_with_absent_ones,
    every_sub_account_field_set_comes_back_as_set,
    a_sub_account_update_changes_what_it_names_and_keeps_the_rest,
    refused_sub_account_fields_are_named_and_change_nothing,
    a_deleted_sub_account_drops_out_of_the_lists_it_was_shared_in,
    the_detailed_view_shows_a_new_sub_account,
    the_detailed_view_carries_the_bytes_a_gateway_accepted,
    the_detailed_view_follows_updates_and_refuses_strangers,
);

/// Creates "acme-eu" under `main` with every setting given, its `email` the main account's
/// admin it makes first: its id and the create answer.
async fn acme_eu(cp: &ControlPlane, main: &Account) -> (i64, Value) {
    cp.create_user(main.id, "ops@acme.test", "USER_ROLE_ACCOUNT_ADMIN")
        .await;
    let created = cp
        .post(SUBS)
        .token(main.api())
        .json(json!({
            "accountName": "acme-eu", "email": "ops@acme.test", "retentionDays": 7,
            "maxDailyGB": 2.5, "searchable": true, "accessible": true,
            "sharingObjectsAccounts": [main.id],
            "utilizationSettings": {"frequencyMinutes": 30, "utilizationEnabled": true},
            "isFlexible": false, "docSizeSetting": false
        }))
        .send()
        .await
        .expect_ok("create sub-account");
    (created["accountId"].as_i64().unwrap(), created)
}

/// An API token of the sub-account `sub`, made with its main account's token.
async fn sub_api_token(cp: &ControlPlane, main: &Account, sub: i64) -> String {
    let sub_api = cp
        .post("/v1/api-tokens/sub-account")
        .token(main.api())
        .json(json!({"name": "sub's own", "accountId": sub}))
        .send()
        .await
        .expect_ok("API token for the sub-account");
    sub_api["token"].as_str().unwrap().to_string()
}

async fn a_sub_account_reads_back_as_created(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let main = main_account(&cp, "acme", "pro").await;
    let (sub, created) = acme_eu(&cp, &main).await;
    assert!(is_secret(&created["accountToken"]));
    let model = read_sub(&cp, &main, sub, "read").await;
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
    assert_eq!(model["utilizationSettings"]["frequencyMinutes"], 30);
    let list = cp
        .get(SUBS)
        .token(main.api())
        .send()
        .await
        .expect_ok("list");
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["accountId"], sub);
    cp.stop().await;
}

async fn revoking_access_locks_the_main_accounts_token_out_until_restored(
    backend: Backend,
    test: &str,
) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let main = main_account(&cp, "acme", "pro").await;
    let (sub, _) = acme_eu(&cp, &main).await;

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
    let sub_api = sub_api_token(&cp, &main, sub).await;

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
    cp.stop().await;
}

async fn only_a_main_accounts_api_token_configures_sub_accounts(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let main = main_account(&cp, "acme", "pro").await;
    let (sub, _) = acme_eu(&cp, &main).await;
    let sub_api = sub_api_token(&cp, &main, sub).await;
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
    let security = tied_account(&cp, &main, "security", "sec").await;
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
    cp.stop().await;
}

async fn another_main_account_neither_sees_nor_reaches_a_sub_account(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let main = main_account(&cp, "acme", "pro").await;
    let (sub, _) = acme_eu(&cp, &main).await;
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
    cp.stop().await;
}

async fn a_sub_account_follows_its_main_accounts_plan(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let main = main_account(&cp, "acme", "pro").await;
    let (sub, _) = acme_eu(&cp, &main).await;
    let sub_api = sub_api_token(&cp, &main, sub).await;
    let limits = cp
        .get(&format!("{LOGS}/limits"))
        .token(&sub_api)
        .send()
        .await
        .expect_ok("limits");
    assert_eq!(limits["maxAllowedTokens"], 15);
    cp.stop().await;
}

async fn deleting_a_sub_account_removes_it_and_its_tokens(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let main = main_account(&cp, "acme", "pro").await;
    let (sub, _) = acme_eu(&cp, &main).await;
    let sub_api = sub_api_token(&cp, &main, sub).await;
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

/// Sub-account bodies as logzio_terraform_client's CreateOrUpdateSubAccount marshals them
/// today: string booleans, numbers as `*float32`/`*int32` with omitempty (left out when
/// unset), `email` omitempty, `retentionDays` a plain int32 (always sent).
async fn sub_account_bodies_shaped_like_the_terraform_client_round_trip(
    backend: Backend,
    test: &str,
) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
    let created = cp
        .post(SUBS)
        .token(acme.api())
        .json(json!({
            "accountName": "strings", "maxDailyGB": 1, "retentionDays": 5,
            "searchable": "false", "accessible": "true", "sharingObjectsAccounts": [],
            "docSizeSetting": "false",
            "utilizationSettings": {"frequencyMinutes": 30, "utilizationEnabled": "true"},
            "isFlexible": "false", "reservedDailyGB": 0
        }))
        .send()
        .await
        .expect_ok("sub-account with string booleans");
    let id = created["accountId"].as_i64().unwrap();
    let model = read_sub(&cp, &acme, id, "read").await;
    assert_eq!(model["searchable"], false);
    assert_eq!(model["accessible"], true);
    assert_eq!(model["utilizationSettings"]["utilizationEnabled"], true);
    assert_eq!(model["retentionDays"], 5);
    assert_eq!(model["reservedDailyGB"], 0.0, "a 0 sent is a 0 kept");
    // Its update sends "" for unset string booleans, 0 for an unset retentionDays, and
    // leaves the unset pointer numbers out.
    let updated = cp
        .put(&format!("{SUBS}/{id}"))
        .token(acme.api())
        .json(json!({
            "accountName": "strings", "retentionDays": 0,
            "searchable": "", "accessible": "", "docSizeSetting": "", "isFlexible": ""
        }))
        .send()
        .await;
    assert_eq!(updated.status, 204, "{:?}", updated.body);
    let after = read_sub(&cp, &acme, id, "read").await;
    assert_eq!(after, model, "unset fields kept their values");
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
        let model = read_sub(&cp, &main, id, "read").await;
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
        let model = read_sub(&cp, &main, id, "read").await;
        let want = if round % 2 == 1 { 1.5 } else { 2.25 };
        assert_eq!(model["maxDailyGB"], want, "{model}");
    }
    cp.stop().await;
}

/// Creates "eu" under `main` with every Logz.io field set, zeros included, its `email` the
/// main account's admin it makes first: its id.
async fn eu_with_every_field(cp: &ControlPlane, main: &Account) -> i64 {
    cp.create_user(main.id, "ops@acme.test", "USER_ROLE_ACCOUNT_ADMIN")
        .await;
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
    created["accountId"].as_i64().unwrap()
}

/// Updates `id` as the Go client does: 0 for an unset `retentionDays`, a 0 among the
/// numbers it names.
async fn update_numbers(cp: &ControlPlane, main: &Account, id: i64) {
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
}

/// Every Logz.io sub-account field a client sets comes back as set, 0 included.
async fn every_sub_account_field_set_comes_back_as_set(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let main = main_account(&cp, "acme", "pro").await;
    let id = eu_with_every_field(&cp, &main).await;
    let model = read_sub(&cp, &main, id, "read").await;
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
    cp.stop().await;
}

async fn a_sub_account_update_changes_what_it_names_and_keeps_the_rest(
    backend: Backend,
    test: &str,
) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let main = main_account(&cp, "acme", "pro").await;
    let id = eu_with_every_field(&cp, &main).await;
    update_numbers(&cp, &main, id).await;
    let model = read_sub(&cp, &main, id, "read after update").await;
    assert_eq!(
        model["retentionDays"], 7,
        "0 is the Go client's unset retention"
    );
    assert_eq!(model["maxDailyGB"], 4.0);
    assert_eq!(model["reservedDailyGB"], 1.5);
    assert_eq!(model["softLimitGB"], 0.0);
    assert_eq!(model["snapSearchRetentionDays"], 3);
    cp.stop().await;
}

/// The server refuses what Logz.io refuses, naming the field, changing nothing.
async fn refused_sub_account_fields_are_named_and_change_nothing(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let main = main_account(&cp, "acme", "pro").await;
    let id = eu_with_every_field(&cp, &main).await;
    update_numbers(&cp, &main, id).await;
    let model = read_sub(&cp, &main, id, "read after update").await;
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
    assert_eq!(read_sub(&cp, &main, id, "unchanged").await, model);
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
    cp.stop().await;
}

/// An account another one shares with is deleted: the other's list forgets it, and an
/// update that does not name the list still goes through.
async fn a_deleted_sub_account_drops_out_of_the_lists_it_was_shared_in(
    backend: Backend,
    test: &str,
) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let main = main_account(&cp, "acme", "pro").await;
    let id = eu_with_every_field(&cp, &main).await;
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
    let model = read_sub(&cp, &main, other, "read").await;
    assert_eq!(model["accountName"], "us-east");
    assert_eq!(
        model["sharingObjectsAccounts"],
        json!([{"accountId": main.id, "accountName": "acme"}])
    );
    cp.stop().await;
}

/// The UTC day's midnight of `ms`, in epoch milliseconds.
fn day_of(ms: i64) -> i64 {
    ms - ms.rem_euclid(86_400_000)
}

/// Creates the searchable "acme-eu" under `main` for the detailed views: its id and its
/// shipping token.
async fn searchable_acme_eu(cp: &ControlPlane, main: &Account) -> (i64, String) {
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
    (
        created["accountId"].as_i64().unwrap(),
        created["accountToken"].as_str().unwrap().to_string(),
    )
}

/// Logz.io's detailed view (`…/time-based-accounts/detailed/{id}`).
async fn detailed(cp: &ControlPlane, main: &Account, id: i64) -> crate::common::Reply {
    cp.get(&format!("{SUBS}/detailed/{id}"))
        .token(main.api())
        .send()
        .await
}

async fn the_detailed_view_shows_a_new_sub_account(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let main = main_account(&cp, "acme", "pro").await;
    let (sub, token) = searchable_acme_eu(&cp, &main).await;
    let before = detailed(&cp, &main, sub)
        .await
        .expect_ok("detailed before traffic");
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
    cp.stop().await;
}

/// A gateway following this control plane accepts the sub-account's logs and reports their
/// bytes; the detailed views show them on today's UTC day as `dailyUsagesList`.
async fn the_detailed_view_carries_the_bytes_a_gateway_accepted(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let main = main_account(&cp, "acme", "pro").await;
    let (sub, token) = searchable_acme_eu(&cp, &main).await;
    let gateway = gateway_following(&cp).await;
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
        let usage =
            detailed(&cp, &main, sub).await.expect_ok("detailed")["dailyUsagesList"]["usage"]
                .clone();
        usage
            .as_array()
            .is_some_and(|days| days.len() == 1 && days[0]["bytes"] == accepted)
    })
    .await;
    let after = detailed(&cp, &main, sub)
        .await
        .expect_ok("detailed after traffic");
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
    cp.stop().await;
}

/// A settings change moves lastUpdatedDate; unknown ids and non-main callers are refused.
async fn the_detailed_view_follows_updates_and_refuses_strangers(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let main = main_account(&cp, "acme", "pro").await;
    let (sub, _) = searchable_acme_eu(&cp, &main).await;
    let created_ms =
        detailed(&cp, &main, sub).await.expect_ok("detailed")["subAccountRelation"]["createdDate"]
            .as_i64()
            .unwrap();
    let renamed = cp
        .put(&format!("{SUBS}/{sub}"))
        .token(main.api())
        .json(json!({"accountName": "acme-europe"}))
        .send()
        .await;
    assert_eq!(renamed.status, 204, "{:?}", renamed.body);
    let updated = detailed(&cp, &main, sub)
        .await
        .expect_ok("detailed after rename");
    assert_eq!(updated["account"]["accountName"], "acme-europe");
    assert!(
        updated["subAccountRelation"]["lastUpdatedDate"]
            .as_i64()
            .unwrap()
            >= created_ms
    );
    detailed(&cp, &main, sub + 1000)
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
