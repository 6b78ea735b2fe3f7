//! Log drop filters at the gateway (docs/drop-filters.md): a filter made through Logz.io's
//! API on a real control plane reaches a gateway following its feed within 2 s; the logs
//! it matches are answered as accepted, counted, and not forwarded, the others are;
//! deactivating it lets them through again; a threshold lets the day's first bytes through.

mod common;

use std::time::Duration;

use common::control::ControlPlane;
use common::*;
use http::{Method, StatusCode};
use serde_json::{Value, json};

const PROPAGATION: Duration = Duration::from_secs(2);

/// `n` logs of type-independent shape, with `level` and a tag in the message.
fn logs(n: usize, level: &str, tag: &str) -> String {
    (0..n)
        .map(|i| format!("{{\"level\":\"{level}\",\"message\":\"{tag} {i:04}\"}}\n"))
        .collect()
}

fn forwarded(server: &TestServer, tag: &str) -> usize {
    server
        .sink_records("logs")
        .iter()
        .filter(|r| r["message"].as_str().is_some_and(|m| m.starts_with(tag)))
        .count()
}

async fn create(cp: &ControlPlane, api: &str, body: Value) -> String {
    let f = cp
        .api(Method::POST, "/v1/drop-filters", api, Some(body))
        .await;
    f["id"].as_str().expect("a string id").to_string()
}

#[tokio::test]
async fn a_filter_drops_the_matching_logs_at_the_gateway_until_it_is_deactivated() {
    let cp = ControlPlane::sqlite().await;
    let (_, api, token) = cp.account("acme").await;
    let server = cp.gateway(|_| {}).await;
    let id = create(
        &cp,
        &api,
        json!({"logType": "nginx", "fieldConditions": [{"fieldName": "level", "value": "debug"}]}),
    )
    .await;
    // Within the propagation bound the debug logs of type nginx stop reaching the sink.
    wait_until("the filter reaches the gateway", PROPAGATION, || async {
        let r = server
            .post_logs(Some(&token), "type=nginx", logs(1, "debug", "probe"))
            .await;
        assert_eq!(r.status, StatusCode::OK);
        server
            .metric("tollgate_dropped_records_total{kind=\"logs\",reason=\"drop_filter\"}")
            .await
            >= 1.0
    })
    .await;
    let before = server
        .metric("tollgate_dropped_records_total{kind=\"logs\",reason=\"drop_filter\"}")
        .await;
    let reply = server
        .post_logs(Some(&token), "type=nginx", logs(20, "debug", "dropped"))
        .await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "a dropped log is answered as accepted"
    );
    for (query, level, tag) in [
        ("type=nginx", "info", "info"),
        ("type=apache", "debug", "apache"),
    ] {
        let r = server
            .post_logs(Some(&token), query, logs(20, level, tag))
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    wait_until("the other logs arrive", PROPAGATION, || async {
        forwarded(&server, "info") == 20 && forwarded(&server, "apache") == 20
    })
    .await;
    assert_eq!(forwarded(&server, "dropped"), 0);
    assert_eq!(
        server
            .metric("tollgate_dropped_records_total{kind=\"logs\",reason=\"drop_filter\"}")
            .await
            - before,
        20.0
    );

    cp.api(
        Method::POST,
        &format!("/v1/drop-filters/{id}/deactivate"),
        &api,
        None,
    )
    .await;
    wait_until("deactivated, the logs pass again", PROPAGATION, || async {
        server
            .post_logs(Some(&token), "type=nginx", logs(1, "debug", "again"))
            .await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        forwarded(&server, "again") >= 1
    })
    .await;
}

#[tokio::test]
async fn a_threshold_lets_the_days_first_matching_bytes_through() {
    let cp = ControlPlane::sqlite().await;
    let (_, api, token) = cp.account("acme").await;
    let server = cp.gateway(|_| {}).await;
    // 1,000 bytes a day: about 25 of these 40-byte logs.
    create(
        &cp,
        &api,
        json!({"fieldConditions": [{"fieldName": "level", "value": "debug"}],
               "thresholdInGB": 0.000001}),
    )
    .await;
    // Nothing shows a threshold's filter before it drops: wait out the propagation bound.
    tokio::time::sleep(PROPAGATION + Duration::from_millis(200)).await;
    server
        .post_logs(Some(&token), "", logs(100, "debug", "counted"))
        .await;
    wait_until(
        "the logs under the threshold arrive",
        PROPAGATION,
        || async { forwarded(&server, "counted") > 0 },
    )
    .await;
    let passed = forwarded(&server, "counted");
    let line = logs(1, "debug", "counted").len() - 1 + "\"type\":\"http-bulk\",".len();
    assert!(
        (1_000 / line..=1_000 / line + 1).contains(&passed),
        "the first 1,000 bytes of matching logs pass: {passed} of {line} bytes"
    );
}
