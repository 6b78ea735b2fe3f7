//! The Prometheus remote_write 1.0 route against the real server, with payloads built by
//! prost and snappy-compressed by `snap`: 204 and what reaches the sink, every refusal
//! of DESIGN §1 (400, 401, 403, 413, 415, 503), and the counters.

mod common;

use std::time::Duration;

use common::*;
use http::{StatusCode, header};
use prost::Message;
use serde_json::json;
use tollgate::proto::prometheus::{Label, MetricMetadata, Sample, TimeSeries, WriteRequest};

const PATH: &str = "/api/v1/write";
/// The headers Prometheus sends with every remote_write request.
const HEADERS: [(&str, &str); 3] = [
    ("content-type", "application/x-protobuf"),
    ("content-encoding", "snappy"),
    ("x-prometheus-remote-write-version", "0.1.0"),
];

fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
    TimeSeries {
        labels: labels.iter().map(|(n, v)| Label::new(n, v)).collect(),
        samples: samples
            .iter()
            .map(|&(timestamp, value)| Sample { value, timestamp })
            .collect(),
        ..Default::default()
    }
}

fn snappy(req: &WriteRequest) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap()
}

fn write_request() -> WriteRequest {
    WriteRequest {
        timeseries: vec![
            series(
                &[
                    ("__name__", "http_requests_total"),
                    ("code", "200"),
                    ("job", "api"),
                ],
                &[(1_700_000_000_000, 10.0), (1_700_000_015_000, 12.0)],
            ),
            series(
                &[("__name__", "up"), ("job", "api")],
                &[(1_700_000_000_000, 1.0), (1_700_000_015_000, f64::NAN)],
            ),
        ],
        metadata: vec![],
    }
}

#[tokio::test]
async fn series_reach_the_sink_one_line_each_with_metadata_and_the_answer_is_204() {
    let server = TestServer::start(|_| {}).await;
    let reply = server
        .post(
            PATH,
            Some(METRICS_TOKEN),
            &HEADERS,
            snappy(&write_request()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert!(reply.body.is_empty());
    assert_eq!(
        server
            .metric("tollgate_ingested_records_total{kind=\"metrics\"}")
            .await,
        4.0,
        "samples are the records"
    );
    assert_eq!(
        server
            .metric("tollgate_requests_total{code=\"204\",route=\"remote_write\"}")
            .await,
        1.0
    );

    // Prometheus also sends metadata-only requests.
    let metadata = WriteRequest {
        timeseries: vec![],
        metadata: vec![MetricMetadata {
            r#type: 1,
            metric_family_name: "http_requests_total".into(),
            help: "Requests served.".into(),
            unit: String::new(),
        }],
    };
    let reply = server
        .post(PATH, Some(METRICS_TOKEN), &HEADERS, snappy(&metadata))
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);

    eventually(Duration::from_secs(10), || async {
        server.sink_records("metrics").len() >= 3
    })
    .await;
    let records = server.sink_records("metrics");
    assert_eq!(
        records,
        [
            json!({"_account_id": 1001, "_token_id": "t-metrics-1", "_kind": "metrics",
                "labels": {"__name__": "http_requests_total", "code": "200", "job": "api"},
                "samples": [{"timestamp": 1_700_000_000_000u64, "value": 10.0},
                            {"timestamp": 1_700_000_015_000u64, "value": 12.0}]}),
            json!({"_account_id": 1001, "_token_id": "t-metrics-1", "_kind": "metrics",
                "labels": {"__name__": "up", "job": "api"},
                "samples": [{"timestamp": 1_700_000_000_000u64, "value": 1.0},
                            {"timestamp": 1_700_000_015_000u64, "value": "NaN"}]}),
            json!({"_account_id": 1001, "_token_id": "t-metrics-1", "_kind": "metrics",
                "metadata": {"type": "counter", "metricFamilyName": "http_requests_total",
                    "help": "Requests served.", "unit": ""}}),
        ]
    );
}

#[tokio::test]
async fn bad_snappy_bad_protobuf_and_bad_series_are_400_and_nothing_is_forwarded() {
    let server = TestServer::start(|_| {}).await;
    let no_name = WriteRequest {
        timeseries: vec![
            series(&[("__name__", "ok")], &[(1, 1.0)]),
            series(&[("job", "x")], &[(1, 1.0)]),
        ],
        metadata: vec![],
    };
    let duplicate = WriteRequest {
        timeseries: vec![series(
            &[("__name__", "a"), ("job", "x"), ("job", "y")],
            &[(1, 1.0)],
        )],
        metadata: vec![],
    };
    let cases: [(&str, Vec<u8>, &str); 4] = [
        (
            "not snappy",
            b"\xff\xff\xff\xff\xff\xff".to_vec(),
            "body is not snappy block-compressed",
        ),
        (
            "snappy but not a WriteRequest",
            snap::raw::Encoder::new()
                .compress_vec(b"\x0a\xff\xff\xff\xff\x0f")
                .unwrap(),
            "body is not a protobuf WriteRequest",
        ),
        (
            "series without __name__",
            snappy(&no_name),
            "series 1: a series must have a non-empty __name__ label",
        ),
        (
            "repeated label name",
            snappy(&duplicate),
            "series 0: label names must be unique",
        ),
    ];
    for (what, body, message) in cases {
        let reply = server.post(PATH, Some(METRICS_TOKEN), &HEADERS, body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{what}");
        let error = reply.json()["error"].as_str().unwrap().to_string();
        assert!(error.starts_with(message), "{what}: {error}");
    }
    assert_eq!(
        server
            .metric("tollgate_ingested_records_total{kind=\"metrics\"}")
            .await,
        0.0
    );
    // A good request after the bad ones: once its two series are in the sink, the sink
    // holds nothing else.
    let reply = server
        .post(
            PATH,
            Some(METRICS_TOKEN),
            &HEADERS,
            snappy(&write_request()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    eventually(Duration::from_secs(10), || async {
        !server.sink_records("metrics").is_empty()
    })
    .await;
    let records = server.sink_records("metrics");
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["labels"]["__name__"], "http_requests_total");
}

#[tokio::test]
async fn other_encodings_content_types_and_remote_write_2_are_415() {
    let server = TestServer::start(|_| {}).await;
    let body = snappy(&write_request());
    let cases: [&[(&str, &str)]; 4] = [
        &[("content-type", "application/x-protobuf")],
        &[
            ("content-type", "application/x-protobuf"),
            ("content-encoding", "gzip"),
        ],
        &[
            (
                "content-type",
                "application/x-protobuf;proto=io.prometheus.write.v2.Request",
            ),
            ("content-encoding", "snappy"),
            ("x-prometheus-remote-write-version", "2.0.0"),
        ],
        &[
            ("content-type", "application/json"),
            ("content-encoding", "snappy"),
        ],
    ];
    for headers in cases {
        let reply = server
            .post(PATH, Some(METRICS_TOKEN), headers, body.clone())
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{headers:?}"
        );
        assert!(
            reply.json()["error"]
                .as_str()
                .unwrap()
                .starts_with("unsupported")
        );
    }
}

#[tokio::test]
async fn unknown_tokens_are_401_and_disabled_or_wrong_kind_403() {
    let server = TestServer::start(|_| {}).await;
    let body = snappy(&write_request());
    let cases = [
        (None, StatusCode::UNAUTHORIZED, "missing"),
        (Some("bad token!"), StatusCode::UNAUTHORIZED, "malformed"),
        (Some(UNKNOWN_TOKEN), StatusCode::UNAUTHORIZED, "unknown"),
        (Some(DISABLED_TOKEN), StatusCode::FORBIDDEN, "disabled"),
        (Some(LOGS_TOKEN), StatusCode::FORBIDDEN, "wrong_kind"),
        (Some(TRACES_TOKEN), StatusCode::FORBIDDEN, "wrong_kind"),
    ];
    for (token, code, reason) in cases {
        let counter = format!("tollgate_auth_failures_total{{reason=\"{reason}\"}}");
        let before = server.metric(&counter).await;
        let reply = server.post(PATH, token, &HEADERS, body.clone()).await;
        assert_eq!(reply.status, code, "{token:?}");
        let error = reply.json()["error"].as_str().unwrap().to_string();
        assert!(token.is_none_or(|t| !error.contains(t)));
        assert_eq!(server.metric(&counter).await, before + 1.0, "{reason}");
    }
}

#[tokio::test]
async fn over_the_body_or_decompressed_limit_is_413() {
    let server = TestServer::start(|c| {
        c.server.max_body_bytes = 1000;
        c.server.max_decompressed_bytes = 5000;
    })
    .await;
    let long_series = WriteRequest {
        timeseries: vec![series(&[("__name__", "padding")], &[(1, 1.0); 1000])],
        metadata: vec![],
    };
    // Over max_body_bytes as sent: random-ish bytes that snappy cannot shrink.
    let incompressible: Vec<u8> = (0..3000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let reply = server
        .post(PATH, Some(METRICS_TOKEN), &HEADERS, incompressible)
        .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);

    // Under it on the wire, over max_decompressed_bytes once decoded.
    let body = snappy(&long_series);
    assert!(body.len() < 1000, "{}", body.len());
    let reply = server.post(PATH, Some(METRICS_TOKEN), &HEADERS, body).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        reply.json()["error"],
        "decompressed body is over 5000 bytes"
    );
}

#[tokio::test]
async fn full_queue_is_503_with_retry_after() {
    let server = TestServer::start(|c| {
        c.forward.ack = tollgate::config::Ack::Memory;
        c.forward.queue_max_bytes = 100;
    })
    .await;
    std::fs::create_dir_all(server.dir.join("out/metrics.ndjson")).unwrap();
    let body = snappy(&write_request());
    let first = server
        .post(PATH, Some(METRICS_TOKEN), &HEADERS, body.clone())
        .await;
    assert_eq!(first.status, StatusCode::NO_CONTENT);
    let second = server.post(PATH, Some(METRICS_TOKEN), &HEADERS, body).await;
    assert_eq!(second.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(second.headers.get(header::RETRY_AFTER).unwrap(), "1");
    assert_eq!(second.json()["error"], "the forwarding queue is full");
}
