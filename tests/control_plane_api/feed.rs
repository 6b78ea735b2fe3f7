//! The feed for gateways: only with the feed secret, digests and never tokens, miss
//! lookups, long polls that wake on a commit, and usage reports.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::control::{ADMIN_SECRET, Backend, ControlPlane};
use crate::{LOGS, main_account, now_secs};

crate::on_both_backends!(
    the_feed_needs_the_feed_secret,
    the_snapshot_carries_digests_not_tokens,
    a_miss_lookup_finds_a_token_by_its_digest,
    a_long_poll_wakes_on_a_commit_and_deletes_carry_digests,
    changes_refuse_versions_the_feed_never_had_and_bad_parameters,
    usage_moves_last_used_forward_only,
    usage_volumes_saturate_and_negative_ones_are_refused,
);

fn digest(token: &str) -> String {
    tollgate::tokens::Digest::of(token).to_hex()
}

/// The snapshot's entry for `token`.
async fn snapshot_entry(cp: &ControlPlane, token: &str) -> Value {
    let snapshot = cp.get("/v1/feed/snapshot").feed().send().await;
    assert_eq!(snapshot.status, 200);
    snapshot.json()["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["digest"] == digest(token).as_str())
        .expect("the account's token is in the snapshot")
        .clone()
}

async fn the_feed_needs_the_feed_secret(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    cp.get("/v1/feed/snapshot")
        .send()
        .await
        .expect_error(401, "feed/UNAUTHORIZED", "feed secret");
    cp.get("/v1/feed/snapshot")
        .bearer(ADMIN_SECRET)
        .send()
        .await
        .expect_error(401, "feed/UNAUTHORIZED", "feed secret");
    cp.stop().await;
}

async fn the_snapshot_carries_digests_not_tokens(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
    let snapshot = cp.get("/v1/feed/snapshot").feed().send().await;
    assert_eq!(snapshot.status, 200);
    let text = String::from_utf8_lossy(&snapshot.body).to_string();
    assert!(
        !text.contains(&acme.shipping_token),
        "no plaintext token in the feed"
    );
    tollgate::tokens::wire::Snapshot::parse(&snapshot.body)
        .expect("the snapshot is tollgate's Snapshot type");
    let entry = snapshot_entry(&cp, &acme.shipping_token).await;
    assert_eq!(entry["account_id"], acme.id);
    assert_eq!(entry["account_name"], "acme");
    assert_eq!(entry["kind"], "logs");
    assert_eq!(entry["enabled"], true);
    cp.stop().await;
}

async fn a_miss_lookup_finds_a_token_by_its_digest(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
    let entry = snapshot_entry(&cp, &acme.shipping_token).await;
    let found = cp
        .get(&format!("/v1/feed/tokens/{}", digest(&acme.shipping_token)))
        .feed()
        .send()
        .await
        .expect_ok("lookup");
    assert_eq!(found, entry);
    cp.get(&format!("/v1/feed/tokens/{}", digest("unknown")))
        .feed()
        .send()
        .await
        .expect_error(404, "feed/UNKNOWN_TOKEN", "digest");
    cp.get("/v1/feed/tokens/xyz")
        .feed()
        .send()
        .await
        .expect_error(400, "feed/BAD_REQUEST", "64 hex");
    cp.stop().await;
}

async fn a_long_poll_wakes_on_a_commit_and_deletes_carry_digests(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
    let version = cp.feed_version().await;

    // A long poll returns as soon as a change commits.
    let url = format!("/v1/feed/changes?since={version}&wait=20");
    let started = std::time::Instant::now();
    let waiting = cp.get(&url).feed().send();
    let change = async {
        cp.wait_for_long_polls(1).await;
        cp.post(LOGS)
            .token(acme.api())
            .json(json!({"name": "new"}))
            .send()
            .await
            .expect_ok("create")
    };
    let (reply, created) = tokio::join!(waiting, change);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "woke on the change"
    );
    let changes = reply.expect_ok("changes");
    assert!(changes["version"].as_u64().unwrap() > version);
    let upserts = changes["upserts"].as_array().unwrap();
    assert!(
        upserts
            .iter()
            .any(|e| e["digest"] == digest(created["token"].as_str().unwrap()).as_str()),
        "{changes}"
    );

    // Deletes carry digests.
    let v2 = changes["version"].as_u64().unwrap();
    cp.delete(&format!("{LOGS}/{}", created["id"]))
        .token(acme.api())
        .send()
        .await
        .expect_ok("delete");
    let changes = cp
        .get(&format!("/v1/feed/changes?since={v2}&wait=0"))
        .feed()
        .send()
        .await
        .expect_ok("changes");
    assert_eq!(
        changes["deletes"],
        json!([digest(created["token"].as_str().unwrap())])
    );
    cp.stop().await;
}

async fn changes_refuse_versions_the_feed_never_had_and_bad_parameters(
    backend: Backend,
    test: &str,
) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    main_account(&cp, "acme", "pro").await;
    let version = cp.feed_version().await;
    let quiet = cp
        .get(&format!("/v1/feed/changes?since={version}&wait=0"))
        .feed()
        .send()
        .await
        .expect_ok("nothing new");
    assert_eq!(
        quiet,
        json!({"version": version, "upserts": [], "deletes": []})
    );
    cp.get(&format!("/v1/feed/changes?since={}&wait=0", version + 100))
        .feed()
        .send()
        .await
        .expect_error(410, "feed/VERSION_GONE", "snapshot");
    cp.get("/v1/feed/changes?since=abc")
        .feed()
        .send()
        .await
        .expect_error(400, "feed/BAD_REQUEST", "since");
    cp.get("/v1/feed/changes?since=1&wait=61")
        .feed()
        .send()
        .await
        .expect_error(400, "feed/BAD_REQUEST", "wait");
    cp.stop().await;
}

/// Last-used moves forward only and shows in the listing; unknown ids are ignored.
async fn usage_moves_last_used_forward_only(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
    let token_id = snapshot_entry(&cp, &acme.shipping_token).await["token_id"]
        .as_str()
        .unwrap()
        .to_string();
    let report = |last_used: i64| {
        json!({"tokens": [{"token_id": token_id, "last_used": last_used},
                          {"token_id": "999999", "last_used": last_used}],
               "accounts": [{"account_id": acme.id, "kind": "logs", "bytes": 100, "records": 2},
                            {"account_id": 999_999, "kind": "logs", "bytes": 1, "records": 1}]})
    };
    let t = now_secs() - 5;
    for last_used in [t, t - 100] {
        let r = cp
            .post("/v1/feed/usage")
            .feed()
            .json(report(last_used))
            .send()
            .await;
        assert_eq!(r.status, 204, "{:?}", r.body);
    }
    let listed = cp
        .get(&format!("{LOGS}/{token_id}"))
        .token(acme.api())
        .send()
        .await
        .expect_ok("read");
    assert_eq!(listed["lastUsed"], t);
    cp.post("/v1/feed/usage")
        .json(report(t))
        .send()
        .await
        .expect_error(401, "feed/UNAUTHORIZED", "feed secret");
    cp.stop().await;
}

/// Volumes add up and saturate instead of overflowing the store's 64-bit counters.
async fn usage_volumes_saturate_and_negative_ones_are_refused(backend: Backend, test: &str) {
    let Some(cp) = ControlPlane::start(backend, test).await else {
        return;
    };
    let acme = main_account(&cp, "acme", "pro").await;
    for _ in 0..2 {
        let r = cp
            .post("/v1/feed/usage")
            .feed()
            .json(json!({"accounts": [{"account_id": acme.id, "kind": "logs",
                                       "bytes": i64::MAX, "records": i64::MAX}]}))
            .send()
            .await;
        assert_eq!(r.status, 204, "{:?}", r.body);
    }
    cp.post("/v1/feed/usage")
        .feed()
        .json(json!({"accounts": [{"account_id": acme.id, "kind": "logs", "bytes": -1, "records": 0}]}))
        .send()
        .await
        .expect_error(400, "request/INVALID", ">= 0");
    cp.stop().await;
}
