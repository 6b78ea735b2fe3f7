//! Account volume at the gateway (docs/volume.md), one gateway counting in its own process:
//! a control plane on SQLite, a gateway following its feed, logs sent over HTTP. A capped
//! account's logs are accepted and not forwarded until the UTC day turns, other accounts go
//! on, the detailed view says `isCapped`, `LogSize` is added exactly when asked, and a
//! rate limit answers 503 with `Retry-After`.

mod common;

use std::time::Duration;

use common::control::ControlPlane;
use common::*;
use http::{Method, StatusCode};
use serde_json::{Value, json};

/// DESIGN §2: a control-plane change reaches gateways within 2 s.
const PROPAGATION: Duration = Duration::from_secs(2);
const DAY: Duration = Duration::from_secs(86_400);

/// A main account with a plan volume and a sub-account `eu` created with `sub` settings:
/// (main's shipping token, the sub-account's id, its shipping token, the API token).
async fn plan_with_sub(
    cp: &ControlPlane,
    plan_gb: f64,
    sub: Value,
) -> (String, i64, String, String) {
    let (_, api, main_token) = volume::plan(cp, plan_gb).await;
    let (sub_id, sub_token) = volume::sub(cp, &api, "eu", sub).await;
    (main_token, sub_id, sub_token, api)
}

/// `n` logs of one size (about 100 bytes each), tagged with `tag`.
fn logs(n: usize, tag: &str) -> String {
    (0..n)
        .map(|i| format!("{{\"message\":\"{tag} {i:05} {}\"}}\n", "x".repeat(64)))
        .collect()
}

/// Sends `requests` bodies of `lines` logs with `token`; every one must be accepted.
async fn send(server: &TestServer, token: &str, requests: usize, lines: usize, tag: &str) {
    for _ in 0..requests {
        let reply = server.post_logs(Some(token), "", logs(lines, tag)).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        // Leave the background refill a moment, as real traffic does between requests.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn forwarded(server: &TestServer, tag: &str) -> usize {
    server
        .sink_records("logs")
        .iter()
        .filter(|r| r["message"].as_str().is_some_and(|m| m.starts_with(tag)))
        .count()
}

#[tokio::test]
async fn a_capped_account_is_accepted_not_forwarded_until_the_day_turns() {
    let cp = ControlPlane::sqlite().await;
    // 200 kB a day: about 2,000 logs of ~100 bytes.
    let (main_token, sub_id, sub_token, api) =
        plan_with_sub(&cp, 1.0, json!({"maxDailyGB": 0.0002})).await;
    let server = cp.gateway(|_| {}).await;
    wait_until("the policy reaches the gateway", PROPAGATION, || async {
        server.metric("tollgate_volume_policies").await >= 2.0
    })
    .await;

    send(&server, &sub_token, 60, 100, "eu").await;
    send(&server, &main_token, 5, 100, "main").await;
    wait_until("the accepted logs reach the sink", PROPAGATION, || async {
        forwarded(&server, "main") == 500
    })
    .await;
    let line = server
        .metric("tollgate_ingested_bytes_total{kind=\"logs\"}")
        .await
        / server
            .metric("tollgate_ingested_records_total{kind=\"logs\"}")
            .await;
    let forwarded_bytes = forwarded(&server, "eu") as f64 * line;
    let request = 100.0 * line;
    assert!(
        (200_000.0..=200_000.0 + 2.0 * request).contains(&forwarded_bytes),
        "the cap, and at most the request that crossed it and one more: {forwarded_bytes}"
    );
    let capped = server
        .metric("tollgate_volume_capped_records_total{kind=\"logs\"}")
        .await;
    assert_eq!(
        capped + forwarded(&server, "eu") as f64,
        6_000.0,
        "every log past the cap is counted"
    );

    // The control plane shows it within 5 s of the gateway capping it.
    let detailed = format!("/v1/account-management/time-based-accounts/detailed/{sub_id}");
    wait_until(
        "isCapped on the detailed view",
        Duration::from_secs(5),
        || async { cp.api(Method::GET, &detailed, &api, None).await["isCapped"] == true },
    )
    .await;
    let list = cp
        .api(
            Method::GET,
            "/v1/account-management/time-based-accounts",
            &api,
            None,
        )
        .await;
    assert_eq!(list[0]["isCapped"], true);

    // The UTC day turns: the account is forwarded again.
    server.clock.advance(DAY);
    cp.clock().advance(DAY);
    send(&server, &sub_token, 1, 100, "tomorrow").await;
    wait_until("the new day's logs are forwarded", PROPAGATION, || async {
        forwarded(&server, "tomorrow") == 100
    })
    .await;
    assert_eq!(
        cp.api(Method::GET, &detailed, &api, None).await["isCapped"],
        false,
        "a new day starts uncapped"
    );
}

#[tokio::test]
async fn refusing_past_the_cap_answers_503_until_the_day_ends() {
    let cp = ControlPlane::sqlite().await;
    let (_, _, sub_token, _) = plan_with_sub(&cp, 1.0, json!({"maxDailyGB": 0.00005})).await;
    let server = cp
        .gateway(|c| {
            c.volume.over_cap = tollgate::config::OverCap::Refuse;
        })
        .await;
    wait_until("the policy reaches the gateway", PROPAGATION, || async {
        server.metric("tollgate_volume_policies").await >= 1.0
    })
    .await;
    let mut refused = None;
    for _ in 0..40 {
        let reply = server.post_logs(Some(&sub_token), "", logs(50, "eu")).await;
        if reply.status != StatusCode::OK {
            refused = Some(reply);
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let reply = refused.expect("the cap is reached within 40 requests of 5 kB");
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    let retry: u64 = reply.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=86_400).contains(&retry),
        "seconds to the UTC day's end: {retry}"
    );
    assert!(
        reply.json()["error"]
            .as_str()
            .unwrap()
            .contains("daily volume")
    );
    assert_eq!(
        server
            .metric("tollgate_volume_refused_total{reason=\"capped\"}")
            .await,
        1.0
    );
}

#[tokio::test]
async fn log_size_is_added_exactly_when_doc_size_setting_is_on() {
    let cp = ControlPlane::sqlite().await;
    let (main_token, sub_id, sub_token, api) =
        plan_with_sub(&cp, 1.0, json!({"maxDailyGB": 0.5, "docSizeSetting": true})).await;
    let server = cp.gateway(|_| {}).await;
    wait_until("the policy reaches the gateway", PROPAGATION, || async {
        server.metric("tollgate_volume_policies").await >= 1.0
    })
    .await;
    send(&server, &sub_token, 1, 3, "sized").await;
    send(&server, &main_token, 1, 3, "plain").await;
    wait_until("both reach the sink", PROPAGATION, || async {
        forwarded(&server, "sized") == 3 && forwarded(&server, "plain") == 3
    })
    .await;
    for r in server.sink_records("logs") {
        let message = r["message"].as_str().unwrap();
        if message.starts_with("sized") {
            let size = r["LogSize"]
                .as_u64()
                .expect("LogSize on a sized account's log");
            let line = format!("{{\"message\":\"{message}\",\"type\":\"http-bulk\"}}");
            assert_eq!(size as usize, line.len(), "the log's size as accepted");
        } else {
            assert!(
                r.get("LogSize").is_none(),
                "no LogSize without docSizeSetting: {r}"
            );
        }
    }

    // Turned off: the gateway stops adding it within the propagation bound.
    cp.api(
        Method::PUT,
        &format!("/v1/account-management/time-based-accounts/{sub_id}"),
        &api,
        Some(
            json!({"accountName": "eu", "retentionDays": 5, "maxDailyGB": 0.5,
            "searchable": true, "accessible": true, "docSizeSetting": false,
            "sharingObjectsAccounts": []}),
        ),
    )
    .await;
    wait_until(
        "docSizeSetting off reaches the gateway",
        PROPAGATION,
        || async {
            send(&server, &sub_token, 1, 1, "later").await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            server.sink_records("logs").iter().any(|r| {
                r["message"].as_str().unwrap().starts_with("later") && r.get("LogSize").is_none()
            })
        },
    )
    .await;
}

#[tokio::test]
async fn one_utilization_record_is_written_per_interval() {
    let cp = ControlPlane::sqlite().await;
    let (_, sub_id, sub_token, _) = plan_with_sub(
        &cp,
        1.0,
        json!({"maxDailyGB": 0.5, "utilizationSettings":
            {"utilizationEnabled": true, "frequencyMinutes": 10}}),
    )
    .await;
    let server = cp
        .gateway(|c| {
            c.volume.utilization_check_secs = Duration::from_millis(50);
        })
        .await;
    send(&server, &sub_token, 1, 10, "eu").await;
    let records = || {
        server
            .sink_records("logs")
            .into_iter()
            .filter(|r| r["type"] == "logzio_account_utilization")
            .collect::<Vec<_>>()
    };
    wait_until("the first interval's record", PROPAGATION, || async {
        records().len() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let first = records();
    assert_eq!(
        first.len(),
        1,
        "one record per interval, however often checked"
    );
    let r = &first[0];
    assert_eq!(r["account_id"], sub_id);
    assert_eq!(r["account_name"], "eu");
    assert_eq!(r["plan_volume_in_GB"], 0.5);
    assert!(r["volume_in_GB"].as_f64().unwrap() > 0.0, "{r}");

    server.clock.advance(Duration::from_secs(600));
    wait_until("the next interval's record", PROPAGATION, || async {
        records().len() == 2
    })
    .await;
    assert_eq!(
        server
            .metric("tollgate_volume_utilization_records_total")
            .await,
        2.0
    );
}

#[tokio::test]
async fn crossing_the_soft_limit_leaves_one_audit_event_a_day_and_drops_nothing() {
    let cp = ControlPlane::sqlite().await;
    // A soft limit of 50 kB under a volume of 500 MB.
    let (_, sub_id, sub_token, api) =
        plan_with_sub(&cp, 1.0, json!({"maxDailyGB": 0.5, "softLimitGB": 0.00005})).await;
    let server = cp.gateway(|_| {}).await;
    send(&server, &sub_token, 10, 100, "eu").await;
    let soft_limit_events = || async {
        let page = cp
            .api(
                Method::GET,
                "/v1/audit-events?pageNumber=1&pageSize=100",
                &api,
                None,
            )
            .await;
        page["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "volume.soft-limit")
            .cloned()
            .collect::<Vec<_>>()
    };
    wait_until("the soft-limit event", Duration::from_secs(3), || async {
        soft_limit_events().await.len() == 1
    })
    .await;
    let event = &soft_limit_events().await[0];
    assert_eq!(event["actor"], "gateways");
    assert_eq!(event["target"], format!("account:{sub_id}"));
    send(&server, &sub_token, 10, 100, "more").await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(soft_limit_events().await.len(), 1, "one event a day");
    wait_until("nothing dropped", PROPAGATION, || async {
        forwarded(&server, "eu") + forwarded(&server, "more") == 2_000
    })
    .await;
    let metrics = cp.metrics().await;
    assert_eq!(
        metric_value(
            &metrics,
            "tollgate_control_volume_days_marked_total{mark=\"soft_limit\"}"
        ),
        1.0
    );
}

#[tokio::test]
async fn a_token_files_volume_policies_cap_an_account_without_a_control_plane() {
    let server = TestServer::start(|_| {}).await;
    // Account 1001 may send 20 kB a day; 2002 has no policy.
    let mut file: Value = serde_json::from_str(&tokens_json(2, true)).unwrap();
    file["volumes"] = json!([{"account_id": 1001, "account_name": "acme", "main_id": 1001,
        "reserved_bytes": 20000, "cap_bytes": 20000}]);
    std::fs::write(server.dir.join("tokens.json"), file.to_string()).unwrap();
    wait_until("the file's policy is loaded", PROPAGATION, || async {
        server.metric("tollgate_volume_policies").await == 1.0
    })
    .await;
    send(&server, LOGS_TOKEN, 40, 10, "acme").await; // about 1 kB a request
    send(&server, OTHER_ACCOUNT_TOKEN, 10, 10, "globex").await;
    wait_until("the other account's logs arrive", PROPAGATION, || async {
        forwarded(&server, "globex") == 100
    })
    .await;
    let acme = forwarded(&server, "acme");
    let line = server
        .metric("tollgate_ingested_bytes_total{kind=\"logs\"}")
        .await
        / server
            .metric("tollgate_ingested_records_total{kind=\"logs\"}")
            .await;
    let bytes = acme as f64 * line;
    assert!(
        (20_000.0..=20_000.0 + 10.0 * line).contains(&bytes),
        "20 kB and the request that crossed it: {bytes} bytes"
    );
    assert_eq!(
        server
            .metric("tollgate_volume_capped_records_total{kind=\"logs\"}")
            .await,
        (400 - acme) as f64
    );
}
