//! Rate limits at the gateway (docs/volume.md, "Rate limits"): a control plane on SQLite
//! whose operator gives a main account a rate, and gateways following its feed. Past the
//! rate every route answers 503 with `Retry-After` (429 on OTLP with the switch), each
//! account of the family has a bucket of its own, other accounts go on, a change reaches
//! the gateway within the feed's 2 s, and real senders (the OpenTelemetry Python SDK, the
//! Logz.io Python handler) back off and deliver everything.

mod common;

use std::time::Duration;

use common::clients::{client_available, otel_export, otel_sdk_available, python, succeeds};
use common::control::ControlPlane;
use common::*;
use http::{Method, StatusCode};
use prost::Message;
use serde_json::{Value, json};
use tollgate::proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};

/// DESIGN §2: a control-plane change reaches gateways within 2 s.
const PROPAGATION: Duration = Duration::from_secs(2);

/// A rate whose bucket holds less than any request below: the first request after a
/// quiet second passes (through a full bucket, whole), the next one right after it is
/// refused.
const TIGHT: u64 = 100;

/// A pro main account "acme" with a tracing account and a metrics account, and a second
/// main account "other" with no rate limit.
struct Family {
    main_id: i64,
    api: String,
    logs: String,
    traces: String,
    metrics: String,
    other: String,
}

async fn family(cp: &ControlPlane) -> Family {
    let (main_id, api, logs) = cp.account("acme").await;
    let tied = |kind: &'static str| async move {
        let created = cp
            .create_account(json!({"accountName": format!("acme {kind}"), "type": kind,
                                   "ownerAccountId": main_id}))
            .await;
        created["accountToken"].as_str().unwrap().to_string()
    };
    let traces = tied("tracing").await;
    let metrics = tied("metrics").await;
    let (_, _, other) = cp.account("other").await;
    Family {
        main_id,
        api,
        logs,
        traces,
        metrics,
        other,
    }
}

/// The operator sets (or, with `null`, clears) the main account's own rate.
async fn set_rate(cp: &ControlPlane, main_id: i64, rate_limit: Value) {
    cp.put(&format!("/v1/admin/accounts/{main_id}"))
        .admin()
        .json(json!({ "rateLimit": rate_limit }))
        .send()
        .await
        .expect_ok("set the rate limit");
}

/// A control plane whose "acme" family has `rate_limit`, and a gateway (configured by
/// `configure`) that holds the family's three policies.
async fn limited(
    rate_limit: Value,
    configure: impl FnOnce(&mut tollgate::config::Config),
) -> (ControlPlane, Family, TestServer) {
    let cp = ControlPlane::sqlite().await;
    let f = family(&cp).await;
    set_rate(&cp, f.main_id, rate_limit).await;
    let server = cp.gateway(configure).await;
    policies_arrive(&server, 3.0).await;
    (cp, f, server)
}

async fn policies_arrive(server: &TestServer, n: f64) {
    wait_until("the policies reach the gateway", PROPAGATION, || async {
        server.metric("tollgate_volume_policies").await >= n
    })
    .await;
}

/// `n` logs of about 100 bytes, tagged with `tag`.
fn logs(n: usize, tag: &str) -> String {
    (0..n)
        .map(|i| format!("{{\"message\":\"{tag} {i:05} {}\"}}\n", "x".repeat(64)))
        .collect()
}

fn otlp_logs(tag: &str) -> String {
    json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"body": {"stringValue": format!("{tag} {}", "x".repeat(200))}}
    ]}]}]})
    .to_string()
}

fn otlp_spans() -> String {
    json!({"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
        "name": format!("checkout {}", "x".repeat(200)), "kind": 1,
        "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000001000000000"
    }]}]}]})
    .to_string()
}

fn remote_write() -> Vec<u8> {
    let series = TimeSeries {
        labels: vec![
            Label::new("__name__", "http_requests_total"),
            Label::new("job", &"x".repeat(200)),
        ],
        samples: vec![Sample {
            value: 1.0,
            timestamp: 1_700_000_000_000,
        }],
        ..Default::default()
    };
    let request = WriteRequest {
        timeseries: vec![series],
        metadata: vec![],
    };
    snap::raw::Encoder::new()
        .compress_vec(&request.encode_to_vec())
        .unwrap()
}

/// Sends with `send` until an answer is not a success: the first must succeed (a full
/// bucket passes a request whole), one of the next few must be refused.
async fn first_refusal<F, Fut>(what: &str, mut send: F) -> Reply
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Reply>,
{
    let first = send().await;
    assert!(first.status.is_success(), "{what}: first {:?}", first.body);
    for _ in 0..5 {
        let reply = send().await;
        if !reply.status.is_success() {
            return reply;
        }
    }
    panic!("{what}: nothing refused past the rate");
}

fn retry_after(reply: &Reply) -> u64 {
    reply
        .headers
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn past_the_rate_logs_get_503_with_retry_after_and_each_account_has_its_own_bucket() {
    let cp = ControlPlane::sqlite().await;
    let f = family(&cp).await;
    set_rate(&cp, f.main_id, json!({"bytesPerSecond": TIGHT})).await;
    let sub = cp
        .api(
            Method::POST,
            "/v1/account-management/time-based-accounts",
            &f.api,
            Some(json!({"accountName": "eu", "retentionDays": 5})),
        )
        .await;
    let sub_token = sub["accountToken"].as_str().unwrap().to_string();
    let server = cp.gateway(|_| {}).await;
    policies_arrive(&server, 4.0).await;

    let refused = first_refusal("logs", || {
        server.post_logs(Some(&f.logs), "", logs(5, "main"))
    })
    .await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        (1..=2).contains(&retry_after(&refused)),
        "a second refills this bucket"
    );
    assert_eq!(
        refused.headers["content-type"], "application/json",
        "{:?}",
        refused.body
    );
    assert_eq!(
        refused.json()["error"],
        "the account is over its rate limit; retry later"
    );
    // The sub-account has a bucket of its own, and so has an account without a rate.
    let refused_sub = first_refusal("sub-account", || {
        server.post_logs(Some(&sub_token), "", logs(5, "eu"))
    })
    .await;
    assert_eq!(refused_sub.status, StatusCode::SERVICE_UNAVAILABLE);
    for _ in 0..20 {
        let reply = server.post_logs(Some(&f.other), "", logs(5, "other")).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    }
    let refusals = server
        .metric("tollgate_volume_refused_total{reason=\"rate_limit\"}")
        .await;
    assert_eq!(refusals, 2.0);
    // What was refused was not forwarded: the retry delivers it.
    wait_until("the accepted logs reach the sink", PROPAGATION, || async {
        server.sink_records("logs").len() == 5 + 5 + 100
    })
    .await;
}

#[tokio::test]
async fn otlp_is_503_past_the_rate_or_429_with_the_switch_and_the_logs_route_stays_503() {
    let (cp, f, plain) = limited(json!({"bytesPerSecond": TIGHT}), |_| {}).await;
    let switched = cp.gateway(|c| c.volume.otlp_rate_limit_429 = true).await;
    policies_arrive(&switched, 3.0).await;
    let json = [("content-type", "application/json")];
    for (server, status, code) in [
        (&plain, StatusCode::SERVICE_UNAVAILABLE, 14),
        (&switched, StatusCode::TOO_MANY_REQUESTS, 8),
    ] {
        let refused = first_refusal("OTLP logs", || {
            server.post("/v1/logs", Some(&f.logs), &json, otlp_logs("otlp"))
        })
        .await;
        assert_eq!(refused.status, status);
        assert!(retry_after(&refused) >= 1);
        let body = refused.json();
        assert_eq!(body["code"], code, "a google.rpc.Status: {body}");
        assert!(
            body["message"].as_str().unwrap().contains("rate limit"),
            "{body}"
        );
    }
    // The switch is for OTLP only: the logs route answers 503 as every Logz.io sender
    // expects.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let refused = first_refusal("logs behind the switch", || {
        switched.post_logs(Some(&f.logs), "", logs(5, "bulk"))
    })
    .await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn remote_write_and_otlp_traces_of_tied_accounts_get_503_past_the_rate() {
    let (_cp, f, server) = limited(json!({"bytesPerSecond": TIGHT}), |_| {}).await;
    let headers = [
        ("content-type", "application/x-protobuf"),
        ("content-encoding", "snappy"),
        ("x-prometheus-remote-write-version", "0.1.0"),
    ];
    let refused = first_refusal("remote_write", || {
        server.post("/api/v1/write", Some(&f.metrics), &headers, remote_write())
    })
    .await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(retry_after(&refused) >= 1);
    let json = [("content-type", "application/json")];
    let refused = first_refusal("OTLP traces", || {
        server.post("/v1/traces", Some(&f.traces), &json, otlp_spans())
    })
    .await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(retry_after(&refused) >= 1);
    // The metrics and tracing accounts each had their own bucket: the main account's
    // first request still passes.
    let reply = server.post_logs(Some(&f.logs), "", logs(5, "main")).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn a_rate_set_or_cleared_by_the_operator_takes_effect_within_two_seconds() {
    let cp = ControlPlane::sqlite().await;
    let f = family(&cp).await;
    let server = cp.gateway(|_| {}).await;
    for _ in 0..10 {
        let reply = server.post_logs(Some(&f.logs), "", logs(5, "free")).await;
        assert_eq!(reply.status, StatusCode::OK, "no rate yet");
    }
    set_rate(&cp, f.main_id, json!({"bytesPerSecond": TIGHT})).await;
    let took = wait_until("the rate is enforced", PROPAGATION, || async {
        let a = server.post_logs(Some(&f.logs), "", logs(5, "set")).await;
        let b = server.post_logs(Some(&f.logs), "", logs(5, "set")).await;
        a.status == StatusCode::SERVICE_UNAVAILABLE || b.status == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    assert!(took <= PROPAGATION, "{took:?}");
    set_rate(&cp, f.main_id, Value::Null).await;
    wait_until("the rate is lifted", PROPAGATION, || async {
        let mut all = true;
        for _ in 0..3 {
            all &= server
                .post_logs(Some(&f.logs), "", logs(5, "cleared"))
                .await
                .status
                == StatusCode::OK;
        }
        all
    })
    .await;
}

/// Follows `OTEL_PRELUDE`.
const OTEL_SCRIPT: &str = r#"
base, traces_token, logs_token, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

# One request per span and per log record: each one after the first meets an empty bucket.
traces = TracerProvider(resource=resource)
traces.add_span_processor(SimpleSpanProcessor(recording(OTLPSpanExporter)(
    endpoint=base + "/v1/traces", headers=auth(traces_token))))
tracer = traces.get_tracer("shop")
for i in range(n):
    with tracer.start_as_current_span("checkout %d" % i):
        pass
traces.shutdown()

logs = LoggerProvider(resource=resource)
logs.add_log_record_processor(SimpleLogRecordProcessor(recording(OTLPLogExporter)(
    endpoint=base + "/v1/logs", headers=auth(logs_token))))
logger = shop_logger(logs)
for i in range(n):
    logger.info("order %d placed", i)
logs.shutdown()

"#;

/// The OpenTelemetry SDK retries 429, 502, 503 and 504 up to six times within its export
/// timeout, waiting what `Retry-After` says (else 1, 2, 4 … s).
#[tokio::test]
async fn the_opentelemetry_python_sdk_backs_off_and_delivers_every_span_and_log() {
    if !otel_sdk_available().await {
        return;
    }
    let (_cp, f, server) = limited(json!({"bytesPerSecond": TIGHT}), |_| {}).await;
    let n = 4;
    let (results, stderr) = otel_export(
        &server.dir,
        OTEL_SCRIPT,
        &[
            &format!("http://{}", server.addr),
            &f.traces,
            &f.logs,
            &n.to_string(),
        ],
    )
    .await;
    let expected = [
        vec![json!(["OTLPSpanExporter", "SUCCESS"]); n],
        vec![json!(["OTLPLogExporter", "SUCCESS"]); n],
    ]
    .concat();
    assert_eq!(results, Value::Array(expected), "{stderr}");
    for route in ["otlp_traces", "otlp_logs"] {
        let refused = server
            .metric(&format!(
                "tollgate_requests_total{{code=\"503\",route=\"{route}\"}}"
            ))
            .await;
        assert!(refused >= 1.0, "{route}: the exporter met the limit");
    }
    wait_until("every span and log in the sink", PROPAGATION, || async {
        server.sink_records("traces").len() == n && server.sink_records("logs").len() == n
    })
    .await;
}

const LOGZIO_SCRIPT: &str = r#"
import logging, sys, time
from logzio.handler import LogzioHandler

url, token, n, drain = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
retries, retry_timeout = int(sys.argv[5]), float(sys.argv[6])
handler = LogzioHandler(token, logzio_type="python", url=url, logs_drain_timeout=drain,
                        retries_no=retries, retry_timeout=retry_timeout)
logger = logging.getLogger("shop")
logger.propagate = False
logger.setLevel(logging.INFO)
logger.addHandler(handler)
# Logs keep coming while the handler drains them, so it sends several bulks.
for i in range(n):
    logger.info("order %05d %s", i, "x" * 64)
    if i % 25 == 24:
        time.sleep(0.25)
handler.flush()
"#;

/// Runs the Logz.io handler sending `n` logs to `server` with `token`; returns the
/// backup files it wrote (the bulks it gave up on).
async fn logzio_handler(
    server: &TestServer,
    token: &str,
    n: usize,
    retries: u32,
    retry_timeout_secs: f64,
) -> Vec<std::path::PathBuf> {
    let url = format!("http://{}", server.addr);
    let args = [
        url.as_str(),
        token,
        &n.to_string(),
        "0.5",
        &retries.to_string(),
        &retry_timeout_secs.to_string(),
    ];
    python(
        &server.dir,
        "ship.py",
        LOGZIO_SCRIPT,
        &args,
        Duration::from_secs(120),
    )
    .await;
    std::fs::read_dir(&server.dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("logzio-failures-"))
        })
        .collect()
}

async fn logzio_available_or_skip() -> bool {
    let available = succeeds("python3", &["-c", "import logzio.handler"]).await;
    client_available(
        "the Logz.io Python handler",
        "pip install logzio-python-handler==4.1.9",
        available,
    )
}

/// The Logz.io handler retries any answer but 200, 400 and 401 `retries_no` times (4),
/// `retry_timeout` apart (2 s, fixed; it does not read `Retry-After`): a bulk waiting for
/// the bucket less than that delivers everything.
#[tokio::test]
async fn the_logzio_python_handler_retries_503_and_delivers_every_log() {
    if !logzio_available_or_skip().await {
        return;
    }
    // A bulk is a few kB: past the burst, it waits for a full bucket, 2 s at most here.
    let rate = json!({"bytesPerSecond": 2000, "burstBytes": 4000});
    let (_cp, f, server) = limited(rate, |_| {}).await;
    let n = 400;
    let backups = logzio_handler(&server, &f.logs, n, 4, 2.0).await;
    assert!(backups.is_empty(), "gave up on bulks: {backups:?}");
    assert!(
        server
            .metric("tollgate_volume_refused_total{reason=\"rate_limit\"}")
            .await
            >= 1.0,
        "the handler met the limit"
    );
    wait_until("every log in the sink", PROPAGATION, || async {
        server.sink_records("logs").len() == n
    })
    .await;
    let mut seen: Vec<String> = server
        .sink_records("logs")
        .iter()
        .map(|r| r["message"].as_str().unwrap()[6..11].to_string())
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), n, "each log once");
}

/// What is true past the handler's retries: a bulk that waits longer than
/// `retries_no` × `retry_timeout` is written to `logzio-failures-<time>.txt` in the
/// working directory and never sent again.
#[tokio::test]
async fn the_logzio_python_handler_backs_up_to_disk_what_waits_past_its_retries() {
    if !logzio_available_or_skip().await {
        return;
    }
    // A full bucket takes 50 s: the handler's two tries 0.2 s apart cannot wait for it.
    let rate = json!({"bytesPerSecond": 100, "burstBytes": 5000});
    let (_cp, f, server) = limited(rate, |_| {}).await;
    let n = 200;
    let backups = logzio_handler(&server, &f.logs, n, 2, 0.2).await;
    assert!(!backups.is_empty(), "a bulk was given up on");
    // Counted by message: the handler appends bulks to one file a second without a
    // newline between them.
    let backed_up: usize = backups
        .iter()
        .map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .matches("order ")
                .count()
        })
        .sum();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        server.sink_records("logs").len() + backed_up,
        n,
        "each log is either delivered or in the backup file"
    );
}
