//! API tokens: only on a paid plan or during a trial, the secret shown once, acting on
//! their account, and gone the moment they are deleted.

use serde_json::{Value, json};

use crate::common::control::{Backend, ControlPlane};
use crate::{event, is_secret, latest_events, main_account, now_secs};

crate::on_both_backends!(
    api_tokens_need_a_paid_plan_or_trial,
    a_new_api_token_acts_on_its_account,
    a_deleted_api_token_ends_at_once,
);

async fn create_api_token(cp: &ControlPlane, api: &str, name: &str) -> Value {
    cp.post("/v1/api-tokens")
        .token(api)
        .json(json!({"name": name}))
        .send()
        .await
        .expect_ok("create")
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

    // A pro account starts with one, listed without its secret.
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
    cp.stop().await;
}

async fn a_new_api_token_acts_on_its_account(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let pro = main_account(&cp, "p", "pro").await;
    let created = create_api_token(&cp, pro.api(), "terraform").await;
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
    cp.stop().await;
}

/// Deleting a token ends it at once; another account's token id is not found.
async fn a_deleted_api_token_ends_at_once(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let pro = main_account(&cp, "p", "pro").await;
    let created = create_api_token(&cp, pro.api(), "terraform").await;
    let new_token = created["token"].as_str().unwrap();
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
