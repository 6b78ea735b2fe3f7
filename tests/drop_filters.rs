//! Drop filters at the gateway (docs/drop-filters.md): a filter made through Logz.io's
//! APIs on a real control plane reaches gateways following its feed within 2 s; the logs,
//! series and data points it matches are answered as accepted, counted, and not
//! forwarded, the others are; deactivating it lets them through again; a threshold lets
//! the day's first bytes through, counted across gateways in Redis. The last test ships
//! with real senders: Logz.io's Python handler and Prometheus, to two gateways.

mod common;

use std::time::Duration;

use common::clients::{client_available, python, succeeds};
use common::control::ControlPlane;
use common::*;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use tollgate::proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};

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

const DROPPED_METRICS: &str =
    "tollgate_dropped_records_total{kind=\"metrics\",reason=\"drop_filter\"}";
const DROPPED_LOGS: &str = "tollgate_dropped_records_total{kind=\"logs\",reason=\"drop_filter\"}";

/// A metrics account of "acme"'s: its id and shipping token.
async fn metrics_account(cp: &ControlPlane, main_id: i64) -> (i64, String) {
    let created = cp
        .create_account(json!({"accountName": "acme metrics", "type": "metrics",
                               "ownerAccountId": main_id}))
        .await;
    (
        created["accountId"].as_i64().expect("an account id"),
        created["accountToken"].as_str().unwrap().to_string(),
    )
}

/// A metrics filter on `account`: every condition `(label, value, comparison)` must hold.
async fn metrics_filter(
    cp: &ControlPlane,
    api: &str,
    account: i64,
    conditions: &[(&str, &str, &str)],
) -> i64 {
    let expression: Vec<Value> = conditions
        .iter()
        .map(|(name, value, comparison)| {
            json!({"name": name, "value": value, "comparisonFilter": comparison})
        })
        .collect();
    let f = cp
        .api(
            Method::POST,
            "/v1/metrics-management/drop-filters",
            api,
            Some(json!({"accountId": account, "name": "noise",
                        "filter": {"operator": "AND", "expression": expression}})),
        )
        .await;
    f["id"].as_i64().expect("an integer id")
}

fn series(labels: &[(&str, &str)], samples: usize) -> TimeSeries {
    TimeSeries {
        labels: labels.iter().map(|(n, v)| Label::new(n, v)).collect(),
        samples: (0..samples)
            .map(|i| Sample {
                value: i as f64,
                timestamp: 1_700_000_000_000 + i as i64,
            })
            .collect(),
        ..Default::default()
    }
}

async fn remote_write(server: &TestServer, token: &str, write: &WriteRequest) -> StatusCode {
    server.post_remote_write(token, write).await.status
}

async fn otlp(server: &TestServer, path: &str, token: &str, body: Value) -> Reply {
    server
        .post(
            path,
            Some(token),
            &[("content-type", "application/json")],
            body.to_string(),
        )
        .await
}

fn names(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .filter_map(|r| r["labels"]["__name__"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn metrics_filters_drop_matching_series_and_data_points() {
    let cp = ControlPlane::sqlite().await;
    let (main_id, api, _) = cp.account("acme").await;
    let (account, token) = metrics_account(&cp, main_id).await;
    let server = cp.gateway(|_| {}).await;
    let id = metrics_filter(
        &cp,
        &api,
        account,
        &[
            ("__name__", "cpu_.*", "REGEX_MATCH"),
            ("env", "prod", "NOT_EQ"),
        ],
    )
    .await;
    let probe = WriteRequest {
        timeseries: vec![series(&[("__name__", "cpu_probe"), ("env", "dev")], 1)],
        metadata: vec![],
    };
    wait_until("the filter reaches the gateway", PROPAGATION, || async {
        assert_eq!(
            remote_write(&server, &token, &probe).await,
            StatusCode::NO_CONTENT
        );
        server.metric(DROPPED_METRICS).await >= 1.0
    })
    .await;
    let before = server.metric(DROPPED_METRICS).await;

    // remote_write: the matching series go, the rest of the request is forwarded.
    let write = WriteRequest {
        timeseries: vec![
            series(&[("__name__", "cpu_seconds"), ("env", "dev")], 3),
            series(&[("__name__", "cpu_seconds"), ("env", "prod")], 2),
            series(&[("__name__", "memory_bytes"), ("env", "dev")], 2),
            series(&[("__name__", "cpu"), ("env", "dev")], 1),
        ],
        metadata: vec![],
    };
    assert_eq!(
        remote_write(&server, &token, &write).await,
        StatusCode::NO_CONTENT
    );
    // Every series dropped: nothing is forwarded, and the answer is the same.
    let all_dropped = WriteRequest {
        timeseries: vec![series(&[("__name__", "cpu_idle")], 4)],
        metadata: vec![],
    };
    assert_eq!(
        remote_write(&server, &token, &all_dropped).await,
        StatusCode::NO_CONTENT
    );

    // OTLP metrics: data points are matched by the metric's name and their attributes,
    // then their resource's.
    let gauge = |name: &str, envs: &[&str]| {
        let points: Vec<Value> = envs
            .iter()
            .map(|env| {
                json!({"asDouble": 1.0, "timeUnixNano": "1700000000000000000",
                              "attributes": [{"key": "env", "value": {"stringValue": env}}]})
            })
            .collect();
        json!({"name": name, "gauge": {"dataPoints": points}})
    };
    let reply = otlp(
        &server,
        "/v1/metrics",
        &token,
        json!({"resourceMetrics": [{"scopeMetrics": [{"metrics": [
            gauge("cpu_load", &["dev", "prod", "test"]),
            gauge("disk_free", &["dev"]),
        ]}]}]}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "{}", "dropped points are not rejected ones");

    wait_until("the rest arrives", PROPAGATION, || async {
        let records = server.sink_records("metrics");
        names(&records).iter().filter(|n| *n != "cpu_probe").count() >= 3
            && records.iter().any(|r| r.get("resourceMetrics").is_some())
    })
    .await;
    let records = server.sink_records("metrics");
    let mut forwarded: Vec<String> = names(&records)
        .into_iter()
        .filter(|n| n != "cpu_probe")
        .collect();
    forwarded.sort();
    assert_eq!(
        forwarded,
        ["cpu", "cpu_seconds", "memory_bytes"],
        "cpu_seconds{{env=prod}}, memory_bytes and cpu (the pattern is anchored) pass"
    );
    let prod = records
        .iter()
        .find(|r| r["labels"]["__name__"] == "cpu_seconds")
        .unwrap();
    assert_eq!(prod["labels"]["env"], "prod");
    let kept: Vec<(String, usize)> = records
        .iter()
        .filter_map(|r| r["resourceMetrics"][0]["scopeMetrics"][0]["metrics"].as_array())
        .flatten()
        .map(|m| {
            let points = m["gauge"]["dataPoints"].as_array().unwrap().len();
            (m["name"].as_str().unwrap().to_owned(), points)
        })
        .collect();
    assert_eq!(
        kept,
        [("cpu_load".to_owned(), 1), ("disk_free".to_owned(), 1)]
    );
    assert_eq!(
        server.metric(DROPPED_METRICS).await - before,
        (3 + 4 + 2) as f64,
        "cpu_seconds{{env=dev}}'s and cpu_idle's samples, cpu_load's dev and test points"
    );

    // Disabled, the filter drops nothing.
    cp.api(
        Method::POST,
        &format!("/v1/metrics-management/drop-filters/{id}/disable"),
        &api,
        None,
    )
    .await;
    wait_until("disabled, the series pass again", PROPAGATION, || async {
        remote_write(&server, &token, &all_dropped).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        names(&server.sink_records("metrics")).contains(&"cpu_idle".to_owned())
    })
    .await;
}

#[tokio::test]
async fn log_filters_drop_matching_otlp_log_records() {
    let cp = ControlPlane::sqlite().await;
    let (_, api, token) = cp.account("acme").await;
    let server = cp.gateway(|_| {}).await;
    // OTLP logs are of type "otlp"; their fields are their resource's and own attributes.
    create(
        &cp,
        &api,
        json!({"logType": "otlp", "fieldConditions": [
            {"fieldName": "service.name", "value": "checkout"},
            {"fieldName": "level", "value": "debug"}]}),
    )
    .await;
    let export = |service: &str, levels: &[&str], tag: &str| {
        let records: Vec<Value> = levels
            .iter()
            .enumerate()
            .map(|(i, level)| {
                json!({"body": {"stringValue": format!("{tag} {i}")},
                "attributes": [{"key": "level", "value": {"stringValue": level}}]})
            })
            .collect();
        json!({"resourceLogs": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
            "scopeLogs": [{"logRecords": records}]}]})
    };
    wait_until("the filter reaches the gateway", PROPAGATION, || async {
        let r = otlp(
            &server,
            "/v1/logs",
            &token,
            export("checkout", &["debug"], "probe"),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        server.metric(DROPPED_LOGS).await >= 1.0
    })
    .await;
    let before = server.metric(DROPPED_LOGS).await;
    let r = otlp(
        &server,
        "/v1/logs",
        &token,
        export("checkout", &["debug", "info", "debug"], "mixed"),
    )
    .await;
    assert_eq!((r.status, &r.body[..]), (StatusCode::OK, &b"{}"[..]));
    otlp(
        &server,
        "/v1/logs",
        &token,
        export("cart", &["debug"], "cart"),
    )
    .await;
    wait_until("the kept records arrive", PROPAGATION, || async {
        let records = server.sink_records("logs");
        records.iter().any(|r| r.to_string().contains("cart 0"))
            && records.iter().any(|r| r.to_string().contains("mixed"))
    })
    .await;
    let bodies: Vec<String> = server
        .sink_records("logs")
        .iter()
        .filter_map(|r| r["resourceLogs"][0]["scopeLogs"][0]["logRecords"].as_array())
        .flatten()
        .map(|l| l["body"]["stringValue"].as_str().unwrap().to_owned())
        .filter(|body| !body.starts_with("probe"))
        .collect();
    assert_eq!(bodies, ["mixed 1", "cart 0"]);
    assert_eq!(server.metric(DROPPED_LOGS).await - before, 2.0);
}

#[tokio::test]
async fn a_threshold_is_counted_across_gateways_in_redis() {
    let Some(redis) = common::redis::start("a_threshold_is_counted_across_gateways_in_redis")
    else {
        return;
    };
    let cp = ControlPlane::sqlite().await;
    let (_, api, token) = cp.account("acme").await;
    let with_redis =
        |c: &mut tollgate::config::Config| c.volume.redis_url = Some(redis.url.clone());
    let a = cp.gateway(with_redis).await;
    let b = cp.gateway(with_redis).await;
    create(
        &cp,
        &api,
        json!({"fieldConditions": [{"fieldName": "level", "value": "debug"}],
               "thresholdInGB": 0.000001}),
    )
    .await;
    tokio::time::sleep(PROPAGATION + Duration::from_millis(200)).await;
    let line = logs(1, "debug", "on-a").len() - 1 + "\"type\":\"http-bulk\",".len();
    // Gateway a lets about 600 of the day's 1,000 bytes through and adds them to the
    // fleet's count within a second.
    let on_a = 600 / line;
    a.post_logs(Some(&token), "", logs(on_a, "debug", "on-a"))
        .await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    b.post_logs(Some(&token), "", logs(100, "debug", "on-b"))
        .await;
    wait_until("a's logs arrive", PROPAGATION, || async {
        forwarded(&a, "on-a") == on_a
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let passed_b = forwarded(&b, "on-b");
    let room = 1_000usize.saturating_sub(on_a * line);
    assert!(
        (room / line..=room / line + 1).contains(&passed_b),
        "b lets through only what is left of the fleet's threshold: {passed_b} logs of \
         {line} bytes, {room} bytes left"
    );
}

const LOGZIO_LEVELS: &str = r#"
import logging, sys
from logzio.handler import LogzioHandler

url, token, n, tag = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
handler = LogzioHandler(token, logzio_type="python", url=url, logs_drain_timeout=0.5)
logger = logging.getLogger("shop")
logger.propagate = False
logger.setLevel(logging.DEBUG)
logger.addHandler(handler)
for i in range(n):
    logger.debug("%s debug %04d", tag, i)
    logger.info("%s info %04d", tag, i)
handler.flush()
"#;

fn prometheus_config(
    dir: &std::path::Path,
    scrape: &str,
    write_to: &[String],
    token: &str,
) -> std::path::PathBuf {
    let path = dir.join("prometheus.yml");
    let writes: String = write_to
        .iter()
        .map(|to| {
            format!(
                r#"  - url: "http://{to}/api/v1/write"
    authorization:
      credentials: "{token}"
    queue_config:
      batch_send_deadline: 1s
      min_backoff: 100ms
      max_backoff: 1s
"#
            )
        })
        .collect();
    std::fs::write(
        &path,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: tollgate\n    \
             static_configs:\n      - targets: [\"{scrape}\"]\nremote_write:\n{writes}"
        ),
    )
    .unwrap();
    path
}

fn count_named(server: &TestServer, name: &str) -> usize {
    server
        .sink_records("metrics")
        .iter()
        .filter(|r| r["labels"]["__name__"] == name)
        .count()
}

/// Logz.io's Python handler and Prometheus ship to two gateways of one control plane: a
/// log filter and a metrics filter made through the APIs drop exactly what they match at
/// both, and deactivated, let it through again.
#[tokio::test]
async fn real_shippers_through_two_gateways() {
    let logzio = succeeds("python3", &["-c", "import logzio.handler"]).await;
    if !client_available(
        "the Logz.io Python handler",
        "pip install logzio-python-handler==4.1.9",
        logzio,
    ) {
        return;
    }
    let prometheus = succeeds("prometheus", &["--version"]).await;
    if !client_available("Prometheus", "apt-get install -y prometheus", prometheus) {
        return;
    }
    let cp = ControlPlane::sqlite().await;
    let (main_id, api, token) = cp.account("acme").await;
    let (metrics_id, metrics_token) = metrics_account(&cp, main_id).await;
    let gateways = [cp.gateway(|_| {}).await, cp.gateway(|_| {}).await];

    // Prometheus scrapes the first gateway's own metrics and writes them to both.
    let targets: Vec<String> = gateways.iter().map(|g| g.addr.to_string()).collect();
    let config = prometheus_config(
        &gateways[0].dir,
        &gateways[0].admin.to_string(),
        &targets,
        &metrics_token,
    );
    let mut prom = common::clients::prometheus(&gateways[0].dir, &config);
    for g in &gateways {
        wait_until(
            "Prometheus writes to the gateway",
            Duration::from_secs(60),
            || async {
                count_named(g, "up") >= 1 && count_named(g, "tollgate_requests_total") >= 1
            },
        )
        .await;
    }

    let log_filter = create(
        &cp,
        &api,
        json!({"logType": "python", "fieldConditions": [{"fieldName": "log_level", "value": "DEBUG"}]}),
    )
    .await;
    let metrics = metrics_filter(
        &cp,
        &api,
        metrics_id,
        &[("__name__", "tollgate_requests_total", "EQ")],
    )
    .await;
    tokio::time::sleep(PROPAGATION).await;
    // From here on, neither gateway forwards a matching series.
    let requests_seen: Vec<usize> = gateways
        .iter()
        .map(|g| count_named(g, "tollgate_requests_total"))
        .collect();
    let up_seen: Vec<usize> = gateways.iter().map(|g| count_named(g, "up")).collect();
    for (i, g) in gateways.iter().enumerate() {
        let url = format!("http://{}", g.addr);
        let tag = format!("gw{i}");
        python(
            &g.dir,
            "ship.py",
            LOGZIO_LEVELS,
            &[&url, &token, "20", &tag],
            Duration::from_secs(60),
        )
        .await;
    }
    for (i, g) in gateways.iter().enumerate() {
        wait_until(
            "the info logs and more scrapes arrive",
            Duration::from_secs(10),
            || async {
                forwarded(g, &format!("gw{i} info")) == 20 && count_named(g, "up") >= up_seen[i] + 3
            },
        )
        .await;
        assert_eq!(
            forwarded(g, &format!("gw{i} debug")),
            0,
            "gateway {i} drops the debug logs"
        );
        assert_eq!(
            count_named(g, "tollgate_requests_total"),
            requests_seen[i],
            "gateway {i} drops the series"
        );
        assert!(g.metric(DROPPED_LOGS).await >= 20.0);
        assert!(g.metric(DROPPED_METRICS).await >= 1.0);
    }

    cp.api(
        Method::POST,
        &format!("/v1/drop-filters/{log_filter}/deactivate"),
        &api,
        None,
    )
    .await;
    cp.api(
        Method::POST,
        &format!("/v1/metrics-management/drop-filters/{metrics}/disable"),
        &api,
        None,
    )
    .await;
    tokio::time::sleep(PROPAGATION).await;
    for (i, g) in gateways.iter().enumerate() {
        let url = format!("http://{}", g.addr);
        let tag = format!("again{i}");
        python(
            &g.dir,
            "ship.py",
            LOGZIO_LEVELS,
            &[&url, &token, "5", &tag],
            Duration::from_secs(60),
        )
        .await;
        wait_until(
            "everything passes again",
            Duration::from_secs(10),
            || async {
                forwarded(g, &format!("again{i} debug")) == 5
                    && count_named(g, "tollgate_requests_total") > requests_seen[i]
            },
        )
        .await;
    }
    let _ = prom.kill().await;
}

/// The filters (and volume policies) a gateway holds are persisted with its table: a
/// gateway restarted while its control plane is away still drops what it dropped.
#[tokio::test]
async fn a_gateway_restarted_without_its_control_plane_keeps_its_filters() {
    let mut cp = ControlPlane::sqlite().await;
    let url = cp.url();
    let (_, api, token) = cp.account("acme").await;
    let server = cp.gateway(|_| {}).await;
    create(
        &cp,
        &api,
        json!({"fieldConditions": [{"fieldName": "level", "value": "debug"}]}),
    )
    .await;
    wait_until("the filter reaches the gateway", PROPAGATION, || async {
        server
            .post_logs(Some(&token), "", logs(1, "debug", "probe"))
            .await;
        server.metric(DROPPED_LOGS).await >= 1.0
    })
    .await;
    // The persister writes within its interval after a change; shutting down writes too.
    let dir = server.shutdown().await;
    let persisted = std::fs::read_to_string(dir.path().join("state/tokens.snapshot.json")).unwrap();
    assert!(persisted.contains("\"fieldName\":\"level\""), "{persisted}");
    cp.go_down().await;
    let server = TestServer::start_in(dir, |c| common::control::use_control_plane(c, &url)).await;
    server.wait_ready().await;
    server
        .post_logs(Some(&token), "", logs(5, "debug", "after"))
        .await;
    server
        .post_logs(Some(&token), "", logs(5, "info", "after-info"))
        .await;
    wait_until("the other logs arrive", PROPAGATION, || async {
        forwarded(&server, "after-info") == 5
    })
    .await;
    assert_eq!(forwarded(&server, "after "), 0, "still dropped");
    assert_eq!(server.metric(DROPPED_LOGS).await, 5.0);
}
