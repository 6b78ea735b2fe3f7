//! Who reaches what: a call without a valid credential is 401, another account is 403 by
//! `X-Account-Id` and its objects 404 by id, the admin secret reaches every account, and
//! only the operator creates main accounts.

use serde_json::json;

use crate::common::control::{Backend, ControlPlane};
use crate::{LOGS, main_account, token_ids};

crate::on_both_backends!(
    calls_without_a_valid_api_token_or_admin_secret_are_401,
    another_account_is_403_by_header_and_its_objects_404_by_id,
    the_admin_secret_reaches_every_account,
    only_the_operator_creates_main_accounts,
);

async fn calls_without_a_valid_api_token_or_admin_secret_are_401(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
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
    cp.stop().await;
}

async fn another_account_is_403_by_header_and_its_objects_404_by_id(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
    let globex = main_account(&cp, "globex", "pro").await;
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
    cp.stop().await;
}

/// The admin secret reaches every account by `X-Account-Id`, and says so when there is none.
async fn the_admin_secret_reaches_every_account(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    main_account(&cp, "acme", "pro").await;
    let globex = main_account(&cp, "globex", "pro").await;
    let globex_token = token_ids(&cp, LOGS, globex.api()).await[0].0;
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
    cp.stop().await;
}

async fn only_the_operator_creates_main_accounts(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
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
    cp.stop().await;
}
