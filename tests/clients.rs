//! Off-the-shelf clients against the real server: the OpenTelemetry Python SDK's OTLP/HTTP
//! exporters (PyPI `opentelemetry-sdk`, `opentelemetry-exporter-otlp-proto-http`) and a
//! Prometheus server (Debian `prometheus`) remote-writing what it scrapes from tollgate's
//! own `/metrics`. `.ci/run` installs both. A missing client skips its test, loudly, on a
//! developer machine; under `CI=true` it fails it, so CI cannot pass without running them.

mod common;

use std::path::Path;
use std::time::Duration;

use common::clients::{client_available, otel_export, otel_sdk_available, succeeds};
use common::*;

/// Follows `OTEL_PRELUDE`.
const OTEL_SCRIPT: &str = r#"
base, traces_token, logs_token, metrics_token = sys.argv[1:5]

traces = TracerProvider(resource=resource)
traces.add_span_processor(SimpleSpanProcessor(recording(OTLPSpanExporter)(
    endpoint=base + "/v1/traces", headers=auth(traces_token), compression=Compression.Gzip)))
tracer = traces.get_tracer("shop")
with tracer.start_as_current_span("checkout"):
    with tracer.start_as_current_span("charge card"):
        pass
traces.shutdown()

logs = LoggerProvider(resource=resource)
logs.add_log_record_processor(SimpleLogRecordProcessor(recording(OTLPLogExporter)(
    endpoint=base + "/v1/logs", headers=auth(logs_token))))
logger = shop_logger(logs)
logger.info("order placed")
logs.shutdown()

reader = PeriodicExportingMetricReader(recording(OTLPMetricExporter)(
    endpoint=base + "/v1/metrics", headers=auth(metrics_token)), export_interval_millis=3600000)
meters = MeterProvider(resource=resource, metric_readers=[reader])
meters.get_meter("shop").create_counter("orders_total").add(3, {"region": "eu"})
meters.shutdown()

# A metrics token on the traces route: 403, which the exporter must not retry.
refused = TracerProvider(resource=resource)
refused.add_span_processor(SimpleSpanProcessor(recording(OTLPSpanExporter)(
    endpoint=base + "/v1/traces", headers=auth(metrics_token))))
with refused.get_tracer("shop").start_as_current_span("refused"):
    pass
refused.shutdown()

"#;

#[tokio::test]
async fn opentelemetry_python_sdk_exports_spans_logs_and_metrics_over_otlp_http() {
    if !otel_sdk_available().await {
        return;
    }
    let server = TestServer::start(|_| {}).await;
    let (results, stderr) = otel_export(
        &server.dir,
        OTEL_SCRIPT,
        &[
            &format!("http://{}", server.addr),
            TRACES_TOKEN,
            LOGS_TOKEN,
            METRICS_TOKEN,
        ],
    )
    .await;
    assert_eq!(
        results,
        serde_json::json!([
            ["OTLPSpanExporter", "SUCCESS"],
            ["OTLPSpanExporter", "SUCCESS"],
            ["OTLPLogExporter", "SUCCESS"],
            ["OTLPMetricExporter", "SUCCESS"],
            ["OTLPSpanExporter", "FAILURE"],
        ]),
        "{stderr}"
    );
    assert_eq!(
        server
            .metric("tollgate_requests_total{code=\"403\",route=\"otlp_traces\"}")
            .await,
        1.0,
        "the 403 was not retried"
    );

    eventually(Duration::from_secs(10), || async {
        server.sink_records("traces").len() >= 2
            && !server.sink_records("logs").is_empty()
            && !server.sink_records("metrics").is_empty()
    })
    .await;
    let traces = server.sink_records("traces");
    let mut names: Vec<String> = traces
        .iter()
        .map(|r| {
            assert_eq!(r["_account_id"], 1001);
            assert_eq!(r["_token_id"], "t-traces-1");
            let rs = &r["resourceSpans"][0];
            assert_eq!(
                rs["resource"]["attributes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|a| a["key"] == "service.name")
                    .unwrap()["value"]["stringValue"],
                "python-shop"
            );
            rs["scopeSpans"][0]["spans"][0]["name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    names.sort();
    assert_eq!(names, ["charge card", "checkout"]);

    let logs = server.sink_records("logs");
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0]["_token_id"], "t-logs-1");
    let record = &logs[0]["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0];
    assert_eq!(record["body"]["stringValue"], "order placed");
    assert_eq!(record["severityText"], "INFO");

    let metrics = server.sink_records("metrics");
    assert_eq!(metrics.len(), 1);
    assert_eq!(metrics[0]["_token_id"], "t-metrics-1");
    let metric = &metrics[0]["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0];
    assert_eq!(metric["name"], "orders_total");
    assert_eq!(metric["sum"]["dataPoints"][0]["asInt"], "3");
}

fn prometheus_config(dir: &Path, scrape: &str, write_to: &str) -> std::path::PathBuf {
    let path = dir.join("prometheus.yml");
    std::fs::write(
        &path,
        format!(
            r#"global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: tollgate
    static_configs:
      - targets: ["{scrape}"]
remote_write:
  - url: "http://{write_to}/api/v1/write"
    authorization:
      credentials: "{METRICS_TOKEN}"
    queue_config:
      batch_send_deadline: 1s
      min_backoff: 100ms
      max_backoff: 1s
    metadata_config:
      send_interval: 1s
"#
        ),
    )
    .unwrap();
    path
}

#[tokio::test]
async fn prometheus_remote_writes_what_it_scrapes() {
    let available = succeeds("prometheus", &["--version"]).await;
    if !client_available("Prometheus", "apt-get install -y prometheus", available) {
        return;
    }
    let server = TestServer::start(|_| {}).await;
    let config = prometheus_config(
        &server.dir,
        &server.admin.to_string(),
        &server.addr.to_string(),
    );
    let mut prometheus = common::clients::prometheus(&server.dir, &config);

    let arrived = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            let records = server.sink_records("metrics");
            let up = records.iter().any(|r| {
                r["labels"]["__name__"] == "up"
                    && r["labels"]["job"] == "tollgate"
                    && r["samples"][0]["value"] == 1.0
            });
            let own = records
                .iter()
                .any(|r| r["labels"]["__name__"] == "tollgate_requests_total");
            if up && own {
                return records;
            }
            if let Ok(Some(status)) = prometheus.try_wait() {
                panic!("prometheus exited early ({status})");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    let _ = prometheus.kill().await;
    let log = std::fs::read_to_string(server.dir.join("prometheus.log")).unwrap_or_default();
    let records = arrived.unwrap_or_else(|_| {
        panic!("no scraped series reached the sink within 2 minutes; prometheus log:\n{log}")
    });
    for r in &records {
        assert_eq!(r["_account_id"], 1001);
        assert_eq!(r["_token_id"], "t-metrics-1");
        assert_eq!(r["_kind"], "metrics");
    }
    assert!(
        server
            .metric("tollgate_requests_total{code=\"204\",route=\"remote_write\"}")
            .await
            >= 1.0
    );
    for code in ["400", "401", "403", "415"] {
        assert_eq!(
            server
                .metric(&format!(
                    "tollgate_requests_total{{code=\"{code}\",route=\"remote_write\"}}"
                ))
                .await,
            0.0,
            "{code}: {log}"
        );
    }
}
