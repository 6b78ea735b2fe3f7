//! How a request the API cannot take is refused: an unknown route or method, a header or
//! body of the wrong shape, a body not JSON or too large. Each names what is wrong.

use serde_json::json;

use crate::LOGS;
use crate::common::control::{Backend, ControlPlane};
use crate::main_account;

crate::on_both_backends!(
    unknown_routes_are_404_and_unknown_methods_405,
    headers_and_bodies_of_the_wrong_shape_are_400,
    only_json_bodies_up_to_a_mebibyte_are_read,
);

async fn unknown_routes_are_404_and_unknown_methods_405(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
    cp.get("/v1/no-such-thing")
        .token(acme.api())
        .send()
        .await
        .expect_error(404, "request/NOT_FOUND", "no such route");
    cp.request(http::Method::PATCH, LOGS)
        .token(acme.api())
        .send()
        .await
        .expect_error(405, "request/METHOD_NOT_ALLOWED", "method");
    cp.stop().await;
}

async fn headers_and_bodies_of_the_wrong_shape_are_400(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
    cp.get("/v2/whoami")
        .token(acme.api())
        .header("x-account-id", "acme")
        .send()
        .await
        .expect_error(400, "request/INVALID", "X-Account-Id");
    cp.post(LOGS)
        .token(acme.api())
        .json(json!({"name": 17}))
        .send()
        .await
        .expect_error(400, "request/INVALID", "name");
    cp.post(LOGS)
        .token(acme.api())
        .raw_body("application/json", "{not json")
        .send()
        .await
        .expect_error(400, "request/INVALID", "line 1 column 2");
    cp.post(LOGS)
        .token(acme.api())
        .json(json!({"name": "   "}))
        .send()
        .await
        .expect_error(400, "request/INVALID", "name must be 1-256 characters");
    cp.post("/v1/admin/accounts")
        .admin()
        .json(json!({"accountName": "x", "plan": "platinum"}))
        .send()
        .await
        .expect_error(400, "request/INVALID", "plan");
    cp.stop().await;
}

async fn only_json_bodies_up_to_a_mebibyte_are_read(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
    cp.post(LOGS)
        .token(acme.api())
        .raw_body("text/plain", "name=x")
        .send()
        .await
        .expect_error(415, "request/UNSUPPORTED_MEDIA_TYPE", "application/json");
    cp.post(LOGS)
        .token(acme.api())
        .raw_body("application/json", vec![b' '; (1 << 20) + 1])
        .send()
        .await
        .expect_error(413, "request/TOO_LARGE", "limited to");
    cp.stop().await;
}
