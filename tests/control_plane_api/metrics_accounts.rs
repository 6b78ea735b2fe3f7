//! Logz.io's metrics-accounts API over tollgate's tied metrics accounts: created with the
//! main account's API token, its token accepted by a gateway at once, updated, refused
//! where Logz.io refuses, deleted (and then refused by the gateway).

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::control::{Backend, ControlPlane};
use crate::common::{Reply, eventually};
use crate::{Account, SUBS, gateway_following, is_secret, main_account, now_ms};

crate::on_both_backends!(
    a_metrics_account_is_created_with_the_main_accounts_api_token,
    a_metrics_accounts_token_ships_at_once_and_stops_when_it_is_deleted,
    metrics_account_updates_answer_the_account_and_refusals_change_nothing,
    a_metrics_account_without_a_name_is_named_after_its_main_account,
    a_deleted_sub_account_drops_out_of_a_metrics_accounts_authorized_ids,
    the_operator_manages_metrics_accounts_through_the_main_account,
);

const ACCOUNTS: &str = "/v1/account-management/metrics-accounts";

/// One OTLP/HTTP JSON metrics request with one gauge point.
const OTLP_GAUGE: &str = r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"queue_depth",
"gauge":{"dataPoints":[{"asInt":"4","timeUnixNano":"1700000000000000000"}]}}]}]}]}"#;

/// A pro main account "acme" with its admin ops@acme.test, a sub-account, and a metrics
/// account shared with both.
struct Acme {
    main: Account,
    sub: i64,
    /// The metrics account's create answer.
    created: Value,
    id: i64,
}

async fn acme(cp: &ControlPlane) -> Acme {
    let main = main_account(cp, "acme", "pro").await;
    cp.create_user(main.id, "ops@acme.test", "USER_ROLE_ACCOUNT_ADMIN")
        .await;
    let sub = cp
        .post(SUBS)
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
    Acme {
        main,
        sub,
        created,
        id,
    }
}

async fn read(cp: &ControlPlane, main: &Account, id: i64) -> Reply {
    cp.get(&format!("{ACCOUNTS}/{id}"))
        .token(main.api())
        .send()
        .await
}

async fn a_metrics_account_is_created_with_the_main_accounts_api_token(
    backend: Backend,
    test: &str,
) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let other = main_account(&cp, "other", "pro").await;
    let Acme {
        main,
        sub,
        created,
        id,
    } = acme(&cp).await;
    assert!(is_secret(&created["token"]), "{created}");
    assert_eq!(created["accountName"], "acme-metrics");
    assert_eq!(created["planUts"], 100);
    assert_eq!(created["authorizedAccountsIds"], json!([main.id, sub]));
    assert!((now_ms() - created["createdAt"].as_i64().unwrap()).abs() < 60_000);
    assert_eq!(read(&cp, &main, id).await.expect_ok("read"), created);
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
    cp.stop().await;
}

/// Its token is a metrics shipping token a gateway accepts at once. Deleting the account
/// answers 200 (Logz.io's client reads 204 as "not found") and its token stops working at
/// the gateway.
async fn a_metrics_accounts_token_ships_at_once_and_stops_when_it_is_deleted(
    backend: Backend,
    test: &str,
) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let Acme {
        main, created, id, ..
    } = acme(&cp).await;
    let token = created["token"].as_str().unwrap().to_string();
    let gateway = gateway_following(&cp).await;
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

    let deleted = cp
        .delete(&format!("{ACCOUNTS}/{id}"))
        .token(main.api())
        .send()
        .await
        .expect_ok("delete");
    assert_eq!(deleted, json!({}));
    read(&cp, &main, id)
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

async fn metrics_account_updates_answer_the_account_and_refusals_change_nothing(
    backend: Backend,
    test: &str,
) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let other = main_account(&cp, "other", "pro").await;
    let Acme { main, id, .. } = acme(&cp).await;
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
    assert_eq!(
        read(&cp, &main, id).await.expect_ok("read after update"),
        updated
    );
    for (body, field) in [
        (
            json!({"accountName": "m", "authorizedAccountsIds": []}),
            "email",
        ),
        (json!({"email": "", "accountName": "m"}), "email"),
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
    cp.stop().await;
}

/// Logz.io names a metrics account created without `accountName` after its main account,
/// as its Go client's tests expect.
async fn a_metrics_account_without_a_name_is_named_after_its_main_account(
    backend: Backend,
    test: &str,
) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let Acme { main, .. } = acme(&cp).await;
    let created = cp
        .post(ACCOUNTS)
        .token(main.api())
        .json(json!({"email": "ops@acme.test", "planUts": 100}))
        .send()
        .await
        .expect_ok("create without a name");
    assert_eq!(created["accountName"], "acme_metrics");
    let id = created["Id"].as_i64().unwrap();
    assert_eq!(read(&cp, &main, id).await.expect_ok("read"), created);
    // A main account's longest name still leaves a name that fits.
    let long = main_account(&cp, &"x".repeat(256), "pro").await;
    cp.create_user(long.id, "ops@long.test", "USER_ROLE_ACCOUNT_ADMIN")
        .await;
    let created = cp
        .post(ACCOUNTS)
        .token(long.api())
        .json(json!({"email": "ops@long.test"}))
        .send()
        .await
        .expect_ok("create under a long-named main account");
    let name = created["accountName"].as_str().unwrap();
    assert_eq!(name, format!("{}_metrics", "x".repeat(248)));
    cp.stop().await;
}

/// A sub-account it was shared with is deleted: reads forget it, updates still pass.
async fn a_deleted_sub_account_drops_out_of_a_metrics_accounts_authorized_ids(
    backend: Backend,
    test: &str,
) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let Acme { main, sub, id, .. } = acme(&cp).await;
    let shared = cp
        .put(&format!("{ACCOUNTS}/{id}"))
        .token(main.api())
        .json(json!({"authorizedAccountsIds": [main.id, sub]}))
        .send()
        .await
        .expect_ok("share with the sub-account");
    assert_eq!(shared["authorizedAccountsIds"], json!([main.id, sub]));
    let deleted = cp
        .delete(&format!("{SUBS}/{sub}"))
        .token(main.api())
        .send()
        .await;
    assert_eq!(deleted.status, 204);
    let after = read(&cp, &main, id)
        .await
        .expect_ok("read after the sub-account went");
    assert_eq!(after["authorizedAccountsIds"], json!([main.id]));
    let updated = cp
        .put(&format!("{ACCOUNTS}/{id}"))
        .token(main.api())
        .json(json!({"accountName": "acme-prom"}))
        .send()
        .await
        .expect_ok("rename only");
    assert_eq!(updated["authorizedAccountsIds"], json!([main.id]));
    cp.stop().await;
}

/// The operator acts through the main account, not through the metrics account itself.
async fn the_operator_manages_metrics_accounts_through_the_main_account(
    backend: Backend,
    test: &str,
) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let Acme { id, .. } = acme(&cp).await;
    cp.get(ACCOUNTS)
        .admin()
        .account(id)
        .send()
        .await
        .expect_error(409, "accounts/NOT_MAIN_ACCOUNT", "not a main");
    cp.stop().await;
}
