//! Ids across every resource: deleting the newest object never makes its id the next one's,
//! so a client (a Terraform state) still holding the old id never adopts a new object.

use serde_json::json;

use crate::common::control::{Backend, ControlPlane};
use crate::{LOGS, SUBS, main_account};

crate::on_both_backends!(
    ids_are_never_handed_out_twice,
    ids_are_not_handed_out_again_after_a_restart,
);

async fn ids_are_never_handed_out_twice(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
    let api = acme.api();
    // (create path, body, id field, delete path prefix)
    let resources = [
        (LOGS, json!({"name": "t"}), "id", LOGS),
        (
            "/v1/api-tokens",
            json!({"name": "t"}),
            "id",
            "/v1/api-tokens",
        ),
        (
            "/v1/shared-tokens",
            json!({"tokenName": "t"}),
            "id",
            "/v1/shared-tokens",
        ),
        (
            "/v1/shared-tokens/filters",
            json!({"field": "env", "value": "prod"}),
            "id",
            "/v1/shared-tokens/filters",
        ),
        (
            SUBS,
            json!({"accountName": "sub", "retentionDays": 7}),
            "accountId",
            SUBS,
        ),
    ];
    for (path, body, field, delete_prefix) in resources {
        let mut deleted = Vec::new();
        for round in 0..3 {
            let created = cp
                .post(path)
                .token(api)
                .json(body.clone())
                .send()
                .await
                .expect_ok(path);
            let id = created[field].as_i64().expect("an id");
            assert!(
                deleted.iter().all(|old| id > *old),
                "{path}: round {round} got id {id} after deleting {deleted:?}"
            );
            let reply = cp
                .delete(&format!("{delete_prefix}/{id}"))
                .token(api)
                .send()
                .await;
            assert!(
                reply.status.is_success(),
                "{path}: delete {id}: {:?}",
                reply.body
            );
            deleted.push(id);
        }
    }
    cp.stop().await;
}

/// The high-water mark is in the database, not in the process.
async fn ids_are_not_handed_out_again_after_a_restart(backend: Backend, test: &str) {
    let Some(mut cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
    let api = acme.api();
    let before_restart = cp
        .post(LOGS)
        .token(api)
        .json(json!({"name": "r"}))
        .send()
        .await
        .expect_ok("create")["id"]
        .as_i64()
        .unwrap();
    cp.delete(&format!("{LOGS}/{before_restart}"))
        .token(api)
        .send()
        .await
        .expect_ok("delete");
    cp.restart().await;
    let after_restart = cp
        .post(LOGS)
        .token(api)
        .json(json!({"name": "r"}))
        .send()
        .await
        .expect_ok("create after restart")["id"]
        .as_i64()
        .unwrap();
    assert!(
        after_restart > before_restart,
        "{after_restart} after {before_restart}"
    );
    cp.stop().await;
}
