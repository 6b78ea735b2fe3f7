//! The OTLP/HTTP routes against the real server, with payloads built by the official
//! prost messages (protobuf) and their serde form (OTLP/JSON): every status code of
//! DESIGN §1 that applies, partial success, both encodings, gzip, the token-kind matrix
//! across every route, and what reaches the sink.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::{StatusCode, header};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use serde_json::json;
use tollgate::proto::Status;
use tollgate::proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: vec![KeyValue {
            key: "service.name".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue("checkout".into())),
            }),
            ..Default::default()
        }],
        ..Default::default()
    })
}

fn span(name: &str, trace_id: Vec<u8>, span_id: Vec<u8>) -> Span {
    Span {
        trace_id,
        span_id,
        name: name.into(),
        kind: 2,
        start_time_unix_nano: 1_700_000_000_000_000_000,
        end_time_unix_nano: 1_700_000_000_500_000_000,
        ..Default::default()
    }
}

fn good_span(name: &str, n: u8) -> Span {
    span(name, vec![n; 16], vec![n; 8])
}

fn traces(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn logs(bodies: &[&str]) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(),
            scope_logs: vec![ScopeLogs {
                log_records: bodies
                    .iter()
                    .map(|b| LogRecord {
                        time_unix_nano: 1_700_000_000_000_000_000,
                        severity_number: 9,
                        severity_text: "INFO".into(),
                        body: Some(AnyValue {
                            value: Some(any_value::Value::StringValue((*b).into())),
                        }),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn metrics(name: &str, points: usize) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: name.into(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: (0..points)
                            .map(|i| NumberDataPoint {
                                time_unix_nano: 1_700_000_000_000_000_000 + i as u64,
                                value: Some(number_data_point::Value::AsDouble(i as f64)),
                                ..Default::default()
                            })
                            .collect(),
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn content_type(reply: &Reply) -> &str {
    reply
        .headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap())
        .unwrap_or("")
}

/// The `google.rpc.Status` of an error answer, decoded per its `Content-Type`.
fn status_of(reply: &Reply) -> Status {
    match content_type(reply) {
        PROTOBUF => Status::decode(reply.body.clone()).expect("a protobuf google.rpc.Status"),
        JSON => {
            let v = reply.json();
            Status {
                code: v["code"].as_i64().expect("code") as i32,
                message: v["message"].as_str().expect("message").to_string(),
            }
        }
        other => panic!("unexpected Content-Type {other:?}"),
    }
}

fn span_names(records: &[serde_json::Value]) -> Vec<String> {
    records
        .iter()
        .flat_map(|r| r["resourceSpans"].as_array().unwrap().clone())
        .flat_map(|rs| rs["scopeSpans"].as_array().unwrap().clone())
        .flat_map(|ss| ss["spans"].as_array().unwrap().clone())
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

async fn wait_for_records(server: &TestServer, kind: &str, n: usize) -> Vec<serde_json::Value> {
    eventually(Duration::from_secs(10), || async {
        server.sink_records(kind).len() >= n
    })
    .await;
    server.sink_records(kind)
}

#[tokio::test]
async fn protobuf_spans_logs_and_metrics_reach_the_sink_as_otlp_json_with_metadata() {
    let server = TestServer::start(|_| {}).await;
    let cases: [(&str, &str, Vec<u8>); 3] = [
        (
            "/v1/traces",
            TRACES_TOKEN,
            traces(vec![good_span("GET /cart", 1), good_span("SELECT", 2)]).encode_to_vec(),
        ),
        (
            "/v1/logs",
            LOGS_TOKEN,
            logs(&["started", "ready", "done"]).encode_to_vec(),
        ),
        (
            "/v1/metrics",
            METRICS_TOKEN,
            metrics("queue_depth", 4).encode_to_vec(),
        ),
    ];
    for (path, token, body) in cases {
        let reply = server
            .post(path, Some(token), &[("content-type", PROTOBUF)], body)
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert_eq!(content_type(&reply), PROTOBUF, "{path}");
        // An Export*ServiceResponse with no partial_success: the empty message.
        let response = ExportTraceServiceResponse::decode(reply.body.clone()).unwrap();
        assert_eq!(response.partial_success, None, "{path}");
    }
    for (kind, n) in [("traces", 2.0), ("logs", 3.0), ("metrics", 4.0)] {
        assert_eq!(
            server
                .metric(&format!(
                    "tollgate_ingested_records_total{{kind=\"{kind}\"}}"
                ))
                .await,
            n,
            "{kind}"
        );
    }
    assert_eq!(
        server
            .metric("tollgate_requests_total{code=\"200\",route=\"otlp_traces\"}")
            .await,
        1.0
    );

    let traces = wait_for_records(&server, "traces", 1).await;
    assert_eq!(traces.len(), 1, "one record per request");
    let t = &traces[0];
    assert_eq!(t["_account_id"], 1001);
    assert_eq!(t["_token_id"], "t-traces-1");
    assert_eq!(t["_kind"], "traces");
    assert!(t.get("_type").is_none());
    assert_eq!(span_names(&traces), ["GET /cart", "SELECT"]);
    let s = &t["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
    assert_eq!(s["traceId"], "01010101010101010101010101010101", "hex ids");
    assert_eq!(s["spanId"], "0101010101010101");
    assert_eq!(s["startTimeUnixNano"], "1700000000000000000");
    assert_eq!(
        t["resourceSpans"][0]["resource"]["attributes"][0]["value"]["stringValue"],
        "checkout"
    );

    let logs = wait_for_records(&server, "logs", 1).await;
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0]["_token_id"], "t-logs-1");
    let records = logs[0]["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
        .as_array()
        .unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(records[1]["body"]["stringValue"], "ready");

    let metrics = wait_for_records(&server, "metrics", 1).await;
    assert_eq!(metrics.len(), 1);
    assert_eq!(metrics[0]["_kind"], "metrics");
    let m = &metrics[0]["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0];
    assert_eq!(m["name"], "queue_depth");
    assert_eq!(m["gauge"]["dataPoints"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn json_requests_get_json_answers_and_gzip_is_decoded() {
    let server = TestServer::start(|_| {}).await;
    let json_body = serde_json::to_vec(&traces(vec![good_span("json span", 3)])).unwrap();
    let reply = server
        .post(
            "/v1/traces",
            Some(TRACES_TOKEN),
            &[("content-type", "application/json; charset=utf-8")],
            json_body.clone(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(content_type(&reply), JSON);
    assert_eq!(reply.json(), json!({}));

    // A hand-written OTLP/JSON body, as a non-Rust client writes it: hex ids in upper
    // case, integers as numbers, unknown fields (to be ignored).
    let handwritten = json!({"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": "EEE19B7EC3C1B174",
        "name": "handwritten", "kind": 1, "startTimeUnixNano": 1544712660000000000u64,
        "endTimeUnixNano": "1544712661000000000", "someFutureField": true}]}]}]});
    let reply = server
        .post(
            "/v1/traces",
            Some(TRACES_TOKEN),
            &[("content-type", JSON)],
            handwritten.to_string(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);

    let gz = gzip(&traces(vec![good_span("gzipped protobuf", 4)]).encode_to_vec());
    let reply = server
        .post(
            "/v1/traces",
            Some(TRACES_TOKEN),
            &[("content-type", PROTOBUF), ("content-encoding", "gzip")],
            gz,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = server
        .post(
            "/v1/traces",
            Some(TRACES_TOKEN),
            &[("content-type", JSON), ("content-encoding", "gzip")],
            gzip(&json_body),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);

    let records = wait_for_records(&server, "traces", 4).await;
    let mut names = span_names(&records);
    names.sort();
    assert_eq!(
        names,
        ["gzipped protobuf", "handwritten", "json span", "json span"]
    );
    let handwritten = records
        .iter()
        .find(|r| span_names(std::slice::from_ref(r)) == ["handwritten"])
        .unwrap();
    let s = &handwritten["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
    assert_eq!(s["traceId"], "5b8efff798038103d269b633813fc60c");
    assert_eq!(s["startTimeUnixNano"], "1544712660000000000");
    assert!(s.get("someFutureField").is_none());
}

#[tokio::test]
async fn invalid_records_get_partial_success_and_only_valid_ones_reach_the_sink() {
    let server = TestServer::start(|_| {}).await;
    let mixed = traces(vec![
        good_span("kept", 5),
        span("zero trace id", vec![0; 16], vec![1; 8]),
        span("short span id", vec![1; 16], vec![1; 4]),
        good_span("kept too", 6),
    ]);

    let reply = server
        .post(
            "/v1/traces",
            Some(TRACES_TOKEN),
            &[("content-type", PROTOBUF)],
            mixed.encode_to_vec(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let partial = ExportTraceServiceResponse::decode(reply.body.clone())
        .unwrap()
        .partial_success
        .expect("partial_success is set");
    assert_eq!(partial.rejected_spans, 2);
    assert_eq!(
        partial.error_message,
        "2 spans rejected: trace_id must be 16 bytes, not all zero"
    );

    let reply = server
        .post(
            "/v1/traces",
            Some(TRACES_TOKEN),
            &[("content-type", JSON)],
            serde_json::to_vec(&mixed).unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(content_type(&reply), JSON);
    assert_eq!(
        reply.json(),
        json!({"partialSuccess": {"rejectedSpans": "2",
            "errorMessage": "2 spans rejected: trace_id must be 16 bytes, not all zero"}})
    );

    // Nothing valid: still a 200 (retrying cannot help), nothing forwarded.
    let reply = server
        .post(
            "/v1/traces",
            Some(TRACES_TOKEN),
            &[("content-type", PROTOBUF)],
            traces(vec![span("bad", vec![], vec![])]).encode_to_vec(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let partial = ExportTraceServiceResponse::decode(reply.body.clone())
        .unwrap()
        .partial_success
        .unwrap();
    assert_eq!(partial.rejected_spans, 1);

    // Metrics: a nameless metric's data points are all rejected.
    let mut both = metrics("good", 2);
    both.resource_metrics[0].scope_metrics[0]
        .metrics
        .push(metrics("", 3).resource_metrics[0].scope_metrics[0].metrics[0].clone());
    let reply = server
        .post(
            "/v1/metrics",
            Some(METRICS_TOKEN),
            &[("content-type", JSON)],
            serde_json::to_vec(&both).unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.json()["partialSuccess"]["rejectedDataPoints"],
        json!("3")
    );

    assert_eq!(
        server
            .metric("tollgate_rejected_records_total{kind=\"traces\",reason=\"invalid\"}")
            .await,
        5.0
    );
    assert_eq!(
        server
            .metric("tollgate_ingested_records_total{kind=\"traces\"}")
            .await,
        4.0
    );
    let records = wait_for_records(&server, "traces", 2).await;
    assert_eq!(
        records.len(),
        2,
        "the all-invalid request forwarded nothing"
    );
    assert_eq!(
        span_names(&records),
        ["kept", "kept too", "kept", "kept too"]
    );
    let metrics = wait_for_records(&server, "metrics", 1).await;
    let kept = metrics[0]["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
        .as_array()
        .unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0]["name"], "good");
}

#[tokio::test]
async fn undecodable_bodies_are_400_with_a_google_rpc_status_in_the_request_encoding() {
    let server = TestServer::start(|_| {}).await;
    let reply = server
        .post(
            "/v1/logs",
            Some(LOGS_TOKEN),
            &[("content-type", PROTOBUF)],
            &b"\x0a\xff\xff\xff\xff\x0f"[..],
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(content_type(&reply), PROTOBUF);
    let status = status_of(&reply);
    assert_eq!(status.code, 3, "INVALID_ARGUMENT");
    assert!(
        status
            .message
            .starts_with("body is not a protobuf ExportLogsServiceRequest"),
        "{}",
        status.message
    );

    for body in ["{not json", "{\"resourceLogs\": 42}"] {
        let reply = server
            .post(
                "/v1/logs",
                Some(LOGS_TOKEN),
                &[("content-type", JSON)],
                body,
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(content_type(&reply), JSON);
        assert_eq!(status_of(&reply).code, 3);
    }

    let reply = server
        .post(
            "/v1/logs",
            Some(LOGS_TOKEN),
            &[("content-type", PROTOBUF), ("content-encoding", "gzip")],
            "not gzip",
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(status_of(&reply).code, 3);
    assert!(server.sink_records("logs").is_empty());
}

/// Posts OTLP/JSON `body` to `route` with the route's token.
async fn post_json(server: &TestServer, route: &str, body: String) -> Reply {
    let token = match route {
        "/v1/logs" => LOGS_TOKEN,
        "/v1/metrics" => METRICS_TOKEN,
        _ => TRACES_TOKEN,
    };
    server
        .post(route, Some(token), &[("content-type", JSON)], body)
        .await
}

fn gauge_json(points: &str) -> String {
    format!(
        r#"{{"resourceMetrics":[{{"scopeMetrics":[{{"metrics":[{{"name":"g",
        "gauge":{{"dataPoints":[{points}]}}}}]}}]}}]}}"#
    )
}

#[tokio::test]
async fn json_numbers_take_every_proto3_form_and_reach_the_sink_with_their_values() {
    let server = TestServer::start(|_| {}).await;
    let points = r#"{"asDouble":"NaN","timeUnixNano":"1700000000000000000"},
        {"asDouble":"Infinity","timeUnixNano":1700000000000000001},
        {"asDouble":"-Infinity"}, {"asDouble":"1.5"}, {"asDouble":2.5},
        {"asInt":"-9223372036854775808"}, {"asInt":7}"#;
    let reply = post_json(&server, "/v1/metrics", gauge_json(points)).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.json(), json!({}), "nothing rejected");

    let histogram = r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"h",
        "histogram":{"aggregationTemporality":2,"dataPoints":[{"count":3,"sum":"NaN",
        "bucketCounts":["1",2],"explicitBounds":["1.5"],"min":"-Infinity","max":4,
        "exemplars":[{"asDouble":"Infinity","timeUnixNano":5}]}]}}]}]}]}"#;
    let reply = post_json(&server, "/v1/metrics", histogram.into()).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);

    let spans = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"s",
        "traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708",
        "startTimeUnixNano":1700000000000000000,"endTimeUnixNano":"1700000000000000001",
        "droppedAttributesCount":"1","attributes":[
        {"key":"d","value":{"doubleValue":"NaN"}},{"key":"s","value":{"intValue":"7"}},
        {"key":"n","value":{"intValue":8}}]}]}]}]}"#;
    let reply = post_json(&server, "/v1/traces", spans.into()).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);

    let logs = r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":5,
        "observedTimeUnixNano":"6","severityNumber":9,"body":{"doubleValue":"-Infinity"}}]}]}]}"#;
    let reply = post_json(&server, "/v1/logs", logs.into()).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);

    let metrics = wait_for_records(&server, "metrics", 2).await;
    let points =
        &metrics[0]["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["gauge"]["dataPoints"];
    let values: Vec<_> = points
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.get("asDouble").or(p.get("asInt")).cloned())
        .collect();
    assert_eq!(
        values,
        [
            Some(json!("NaN")),
            Some(json!("Infinity")),
            Some(json!("-Infinity")),
            Some(json!(1.5)),
            Some(json!(2.5)),
            Some(json!("-9223372036854775808")),
            Some(json!("7")),
        ]
    );
    assert_eq!(points[1]["timeUnixNano"], "1700000000000000001");
    let h = &metrics[1]["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["histogram"];
    let p = &h["dataPoints"][0];
    assert_eq!(h["aggregationTemporality"], 2);
    assert_eq!(
        (&p["count"], &p["sum"], &p["min"], &p["max"]),
        (&json!("3"), &json!("NaN"), &json!("-Infinity"), &json!(4.0))
    );
    assert_eq!(p["bucketCounts"], json!(["1", "2"]));
    assert_eq!(p["explicitBounds"], json!([1.5]));
    assert_eq!(p["exemplars"][0]["asDouble"], "Infinity");
    assert_eq!(p["exemplars"][0]["timeUnixNano"], "5");

    let traces = wait_for_records(&server, "traces", 1).await;
    let span = &traces[0]["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
    assert_eq!(span["endTimeUnixNano"], "1700000000000000001");
    assert_eq!(span["droppedAttributesCount"], 1);
    assert_eq!(span["attributes"][0]["value"]["doubleValue"], "NaN");
    assert_eq!(span["attributes"][1]["value"]["intValue"], "7");
    assert_eq!(span["attributes"][2]["value"]["intValue"], "8");

    let logs = wait_for_records(&server, "logs", 1).await;
    let record = &logs[0]["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0];
    assert_eq!(record["body"]["doubleValue"], "-Infinity");
    assert_eq!(record["observedTimeUnixNano"], "6");
}

#[tokio::test]
async fn json_numbers_proto3_does_not_allow_are_400_naming_the_field() {
    let server = TestServer::start(|_| {}).await;
    let point = "resourceMetrics[0].scopeMetrics[0].metrics[0].gauge.dataPoints[0]";
    let span = "resourceSpans[0].scopeSpans[0].spans[0]";
    let cases = [
        (
            "/v1/metrics",
            gauge_json(r#"{"asDouble":true}"#),
            format!("{point}.asDouble"),
        ),
        (
            "/v1/metrics",
            gauge_json(r#"{"asDouble":"1,5"}"#),
            format!("{point}.asDouble"),
        ),
        (
            "/v1/metrics",
            gauge_json(r#"{"asInt":"abc"}"#),
            format!("{point}.asInt"),
        ),
        (
            "/v1/metrics",
            gauge_json(r#"{"asInt":"-9223372036854775809"}"#),
            format!("{point}.asInt"),
        ),
        (
            "/v1/metrics",
            gauge_json(r#"{"asInt":1,"timeUnixNano":"soon"}"#),
            format!("{point}.timeUnixNano"),
        ),
        (
            "/v1/traces",
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[
                {"key":"k","value":{"intValue":"1.5"}}]}]}]}]}"#
                .to_string(),
            format!("{span}.attributes[0].value.intValue"),
        ),
        (
            "/v1/logs",
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":-1}]}]}]}"#
                .to_string(),
            "resourceLogs[0].scopeLogs[0].logRecords[0].timeUnixNano".to_string(),
        ),
    ];
    for (route, body, field) in &cases {
        let reply = post_json(&server, route, body.clone()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{field}");
        assert_eq!(content_type(&reply), JSON);
        let status = status_of(&reply);
        assert_eq!(status.code, 3, "INVALID_ARGUMENT");
        assert!(
            status.message.contains(&format!("{field}: ")),
            "{field}: {}",
            status.message
        );
    }
    assert_eq!(
        server
            .metric("tollgate_requests_total{code=\"400\",route=\"otlp_metrics\"}")
            .await,
        5.0
    );
    assert!(server.sink_records("metrics").is_empty());
    assert!(server.sink_records("traces").is_empty());
}

#[tokio::test]
async fn other_content_types_and_encodings_are_415() {
    let server = TestServer::start(|_| {}).await;
    let body = traces(vec![good_span("x", 1)]).encode_to_vec();
    for headers in [
        vec![],
        vec![("content-type", "text/plain")],
        vec![("content-type", "application/grpc")],
        vec![("content-type", PROTOBUF), ("content-encoding", "br")],
    ] {
        let reply = server
            .post("/v1/traces", Some(TRACES_TOKEN), &headers, body.clone())
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{headers:?}"
        );
        assert_eq!(status_of(&reply).code, 3);
    }
}

#[tokio::test]
async fn token_failures_are_401_and_refusals_403_with_a_status_body_naming_no_token() {
    let server = TestServer::start(|_| {}).await;
    let body = logs(&["x"]).encode_to_vec();
    let cases = [
        (None, StatusCode::UNAUTHORIZED, 16, "missing"),
        (Some("short"), StatusCode::UNAUTHORIZED, 16, "malformed"),
        (Some(UNKNOWN_TOKEN), StatusCode::UNAUTHORIZED, 16, "unknown"),
        (Some(DISABLED_TOKEN), StatusCode::FORBIDDEN, 7, "disabled"),
        (Some(METRICS_TOKEN), StatusCode::FORBIDDEN, 7, "wrong_kind"),
    ];
    for (token, code, rpc_code, reason) in cases {
        let counter = format!("tollgate_auth_failures_total{{reason=\"{reason}\"}}");
        let before = server.metric(&counter).await;
        let reply = server
            .post(
                "/v1/logs",
                token,
                &[("content-type", PROTOBUF)],
                body.clone(),
            )
            .await;
        assert_eq!(reply.status, code, "{reason}");
        assert_eq!(content_type(&reply), PROTOBUF);
        let status = status_of(&reply);
        assert_eq!(status.code, rpc_code, "{reason}");
        if let Some(t) = token {
            assert!(!status.message.contains(t));
        }
        assert_eq!(server.metric(&counter).await, before + 1.0, "{reason}");
    }
    // The token is read from the Authorization header only, never the query.
    let reply = server
        .post(
            &format!("/v1/logs?token={LOGS_TOKEN}"),
            None,
            &[("content-type", JSON)],
            "{}",
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(status_of(&reply).message, "token is missing");
    assert!(server.sink_records("logs").is_empty());
}

/// Every token kind on every ingest route: the matching kind is accepted; a mismatch is
/// 401 on the Logz.io logs route, 403 on OTLP and remote_write, and counted as
/// `wrong_kind` each time.
#[tokio::test]
async fn kind_mismatch_matrix_is_401_on_the_logs_route_and_403_elsewhere() {
    let server = TestServer::start(|_| {}).await;
    let write = snap::raw::Encoder::new()
        .compress_vec(
            &WriteRequest {
                timeseries: vec![TimeSeries {
                    labels: vec![Label::new("__name__", "up")],
                    samples: vec![Sample {
                        value: 1.0,
                        timestamp: 1,
                    }],
                    ..Default::default()
                }],
                metadata: vec![],
            }
            .encode_to_vec(),
        )
        .unwrap();
    let tokens = [
        (LOGS_TOKEN, "logs"),
        (METRICS_TOKEN, "metrics"),
        (TRACES_TOKEN, "traces"),
    ];
    let mut mismatches = 0.0;
    let before = server
        .metric("tollgate_auth_failures_total{reason=\"wrong_kind\"}")
        .await;
    for (token, kind) in tokens {
        let routes: [(&str, &str, Reply); 5] = [
            (
                "logs",
                "logzio",
                server.post_logs(Some(token), "", "{\"a\":1}\n").await,
            ),
            (
                "logs",
                "/v1/logs",
                server
                    .post(
                        "/v1/logs",
                        Some(token),
                        &[("content-type", PROTOBUF)],
                        logs(&["x"]).encode_to_vec(),
                    )
                    .await,
            ),
            (
                "metrics",
                "/v1/metrics",
                server
                    .post(
                        "/v1/metrics",
                        Some(token),
                        &[("content-type", PROTOBUF)],
                        metrics("m", 1).encode_to_vec(),
                    )
                    .await,
            ),
            (
                "traces",
                "/v1/traces",
                server
                    .post(
                        "/v1/traces",
                        Some(token),
                        &[("content-type", PROTOBUF)],
                        traces(vec![good_span("s", 1)]).encode_to_vec(),
                    )
                    .await,
            ),
            (
                "metrics",
                "/api/v1/write",
                server
                    .post(
                        "/api/v1/write",
                        Some(token),
                        &[
                            ("content-type", PROTOBUF),
                            ("content-encoding", "snappy"),
                            ("x-prometheus-remote-write-version", "0.1.0"),
                        ],
                        Bytes::from(write.clone()),
                    )
                    .await,
            ),
        ];
        for (route_kind, route, reply) in routes {
            let expected = match (route_kind == kind, route) {
                (true, "/api/v1/write") => StatusCode::NO_CONTENT,
                (true, _) => StatusCode::OK,
                (false, "logzio") => StatusCode::UNAUTHORIZED,
                (false, _) => StatusCode::FORBIDDEN,
            };
            assert_eq!(reply.status, expected, "{kind} token on {route}");
            if route_kind != kind {
                mismatches += 1.0;
            }
        }
    }
    assert_eq!(mismatches, 10.0);
    assert_eq!(
        server
            .metric("tollgate_auth_failures_total{reason=\"wrong_kind\"}")
            .await,
        before + mismatches
    );
}

#[tokio::test]
async fn body_over_the_limit_is_413_and_wrong_method_405() {
    let server = TestServer::start(|c| {
        c.server.max_body_bytes = 2000;
        c.server.max_decompressed_bytes = 4000;
    })
    .await;
    let many: Vec<Span> = (0..100).map(|i| good_span("padding span", i + 1)).collect();
    let big = traces(many).encode_to_vec();
    assert!(big.len() > 4000);
    let reply = server
        .post(
            "/v1/traces",
            Some(TRACES_TOKEN),
            &[("content-type", PROTOBUF)],
            big.clone(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(status_of(&reply).code, 8, "RESOURCE_EXHAUSTED");

    // Small on the wire, over the cap once decompressed: 413 too, never 429.
    let gz = gzip(&big);
    assert!(gz.len() < 2000);
    let reply = server
        .post(
            "/v1/traces",
            Some(TRACES_TOKEN),
            &[("content-type", PROTOBUF), ("content-encoding", "gzip")],
            gz,
        )
        .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);

    let reply = server
        .request(
            http::Request::get(server.url("/v1/traces"))
                .header(header::CONTENT_TYPE, JSON)
                .body(http_body_util::Full::new(Bytes::new()))
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(status_of(&reply).code, 12);
}

#[tokio::test]
async fn full_queue_is_503_with_retry_after_and_a_status_body() {
    // The sink cannot write (its active file's path is a directory), so the first
    // request's records stay queued and hold the whole budget.
    let server = TestServer::start(|c| {
        c.forward.ack = tollgate::config::Ack::Memory;
        c.forward.queue_max_bytes = 200;
    })
    .await;
    std::fs::create_dir_all(server.dir.join("out/traces.ndjson")).unwrap();
    let body = traces(vec![good_span("a", 1), good_span("b", 2)]).encode_to_vec();
    let first = server
        .post(
            "/v1/traces",
            Some(TRACES_TOKEN),
            &[("content-type", PROTOBUF)],
            body.clone(),
        )
        .await;
    assert_eq!(first.status, StatusCode::OK);
    let second = server
        .post(
            "/v1/traces",
            Some(TRACES_TOKEN),
            &[("content-type", PROTOBUF)],
            body,
        )
        .await;
    assert_eq!(second.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(second.headers.get(header::RETRY_AFTER).unwrap(), "1");
    let status = status_of(&second);
    assert_eq!(status.code, 14, "UNAVAILABLE");
    assert_eq!(status.message, "the forwarding queue is full");
}

#[tokio::test]
async fn no_token_table_yet_is_503_not_401() {
    let server = TestServer::start(|c| c.tokens.path = "/nonexistent/tokens.json".into()).await;
    let reply = server
        .post(
            "/v1/traces",
            Some(TRACES_TOKEN),
            &[("content-type", JSON)],
            "{}",
        )
        .await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(reply.headers.contains_key(header::RETRY_AFTER));
    assert_eq!(status_of(&reply).code, 14);
}
