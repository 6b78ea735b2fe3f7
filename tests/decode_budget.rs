//! The decode budget (`server.max_inflight_decoded_bytes`): what requests hold once their
//! body is read is taken from one budget as it is allocated. A request that cannot take
//! more is answered 503 with `Retry-After`, one that alone needs more than the budget 413,
//! and each gives everything back when it ends; small requests are never refused by it.
//! The memory test runs the real binary and reads its peak RSS.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::process::{file_sink_sections, get, send, spawn};
use common::*;
use http::StatusCode;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use prost::Message;
use tollgate::config::Ack;
use tollgate::proto::otlp::collector::trace::v1::ExportTraceServiceRequest;
use tollgate::proto::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span};
use tollgate::proto::prometheus::{Label, TimeSeries, WriteRequest};

const MIB: usize = 1024 * 1024;

/// `n` bytes of logs lines that keep their bytes as sent (they have a `type`), so a body's
/// lines hold its decompressed pieces.
fn typed_lines(n: usize) -> Vec<u8> {
    let line = format!("{{\"type\":\"t\",\"message\":\"{}\"}}\n", "x".repeat(480));
    line.repeat(n / line.len()).into_bytes()
}

/// A gzip body that decompresses to `members` times `part`: gzip members chain, so a
/// 99 MiB bomb costs one compression of 1 MiB.
fn gzip_repeated(part: &[u8], members: usize) -> Bytes {
    use std::io::Write;
    let mut member = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    member.write_all(part).unwrap();
    Bytes::from(member.finish().unwrap().repeat(members))
}

async fn refused(server: &TestServer, reason: &str) -> f64 {
    let sample = format!("tollgate_decode_refused_total{{reason=\"{reason}\"}}");
    server.metric(&sample).await
}

fn error_of(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    v["error"].as_str().unwrap().to_string()
}

/// One request holds 5 MiB of decoded lines while it waits for the sink (`ack =
/// "downstream"`, sink down): the next 5 MiB one, on any route, finds the budget taken.
#[tokio::test]
async fn a_request_that_cannot_take_the_decode_budget_is_503_and_one_past_it_413() {
    let server = TestServer::start(|c| {
        c.forward.ack = Ack::Downstream;
        c.server.max_body_bytes = MIB as u64;
        c.server.max_decompressed_bytes = 10 * MIB as u64;
        c.server.max_inflight_decoded_bytes = 10 * MIB as u64;
    })
    .await;
    // The file sink cannot write while its file is a directory.
    std::fs::create_dir_all(server.dir.join("out/logs.ndjson")).unwrap();
    let body = gzip_repeated(&typed_lines(MIB), 5);
    let holding = {
        let (url, body) = (server.url(&format!("/?token={LOGS_TOKEN}")), body.clone());
        tokio::spawn(async move {
            let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
            let req = http::Request::post(url)
                .header("content-encoding", "gzip")
                .body(Full::new(body))
                .unwrap();
            client.request(req).await.unwrap().status()
        })
    };
    let in_use = || server.metric("tollgate_inflight_decoded_bytes");
    wait_until("5 MiB of lines held", Duration::from_secs(20), || async {
        in_use().await >= (5 * MIB) as f64
    })
    .await;

    let gzipped = [("content-encoding", "gzip")];
    let reply = server.post("/", Some(LOGS_TOKEN), &gzipped, body).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.headers["retry-after"], "1");
    assert_eq!(
        error_of(&reply.body),
        "too many request bytes being decoded"
    );

    // OTLP: a span named with 5 MiB, answered as OTLP answers (UNAVAILABLE, 14).
    let traces = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: vec![1; 16],
                    span_id: vec![2; 8],
                    name: "n".repeat(5 * MIB),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let headers = [
        ("content-type", "application/x-protobuf"),
        ("content-encoding", "gzip"),
    ];
    let body = gzip(&traces.encode_to_vec());
    let reply = server
        .post("/v1/traces", Some(TRACES_TOKEN), &headers, body)
        .await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.headers["retry-after"], "1");
    let status = tollgate::proto::Status::decode(reply.body).unwrap();
    assert_eq!(status.code, 14);

    // remote_write: a label value of 5 MiB, snappy.
    let write = WriteRequest {
        timeseries: vec![TimeSeries {
            labels: vec![Label::new("__name__", &"v".repeat(5 * MIB))],
            ..Default::default()
        }],
        ..Default::default()
    };
    let reply = server.post_remote_write(METRICS_TOKEN, &write).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        error_of(&reply.body),
        "too many request bytes being decoded"
    );
    assert_eq!(refused(&server, "busy").await, 3.0);

    // The sink back, the first request is answered and gives back what it held.
    std::fs::remove_dir(server.dir.join("out/logs.ndjson")).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), holding)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    wait_until("the budget given back", Duration::from_secs(5), || async {
        in_use().await == 0.0
    })
    .await;

    // 9.5 MiB of short lines: within `max_decompressed_bytes`, but the body and its lines
    // need more than the whole budget. Never 503: retrying could not help.
    let short = "{\"type\":\"t\"}\n".repeat(19 * MIB / 2 / 13);
    let reply = server
        .post("/", Some(LOGS_TOKEN), &gzipped, gzip(short.as_bytes()))
        .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        error_of(&reply.body),
        "the memory this request takes to decode is over 10485760 bytes"
    );
    assert_eq!(refused(&server, "too_large").await, 1.0);
    assert_eq!(in_use().await, 0.0);
}

/// 64 gzip bombs at once, each a few hundred KB that decompresses to 99 MiB: half of `{}` lines
/// (refused for what their lines cost after their first pieces), half of lines that keep
/// their bytes (which take the budget until their 413 at `max_decompressed_bytes`, or
/// find it taken: 503). The gateway's peak RSS grows by at most the budget + 64 MiB, every
/// bomb is answered 413 or 503, and small requests sent meanwhile are all answered 200.
#[tokio::test]
async fn concurrent_gzip_bombs_stay_within_the_decode_budget_while_small_requests_pass() {
    let dir = tempfile::tempdir().unwrap();
    let budget_mib = 64;
    let p = spawn(
        dir.path(),
        &format!(
            "max_body_bytes = 1048576\nmax_decompressed_bytes = {}\n\
             max_inflight_decoded_bytes = {}",
            32 * MIB,
            budget_mib * MIB
        ),
        &file_sink_sections(dir.path(), "memory"),
        "info",
    );
    let empty = gzip_repeated(&b"{}\n".repeat(MIB / 3), 99);
    let typed = gzip_repeated(&typed_lines(MIB), 99);
    for bomb in [&empty, &typed] {
        assert!(bomb.len() < 512 * 1024, "{} bytes compressed", bomb.len());
    }
    let url = format!("http://{}/?token={LOGS_TOKEN}", p.addr);
    // Warm: the first requests' one-time allocations are not the bombs'.
    let (status, _) = send(url.clone(), &[], "{\"warm\":1}\n").await;
    assert_eq!(status, StatusCode::OK);
    let before = p.peak_rss_kib();

    let bombs: Vec<_> = (0..64)
        .map(|i| {
            let body = if i % 2 == 0 { &empty } else { &typed }.clone();
            let url = url.clone();
            tokio::spawn(async move {
                send(url, &[("content-encoding", "gzip".to_string())], body).await
            })
        })
        .collect();
    let small = {
        let url = url.clone();
        let bombs_done: Vec<_> = bombs.iter().map(|b| b.abort_handle()).collect();
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            while bombs_done.iter().any(|b| !b.is_finished()) || statuses.is_empty() {
                let (status, _) = send(url.clone(), &[], "{\"message\":\"small\"}\n").await;
                statuses.push(status);
            }
            statuses
        })
    };
    let mut answers = std::collections::BTreeMap::new();
    for bomb in bombs {
        let (status, body) = bomb.await.unwrap();
        assert!(
            status == StatusCode::PAYLOAD_TOO_LARGE || status == StatusCode::SERVICE_UNAVAILABLE,
            "{status}: {}",
            String::from_utf8_lossy(&body)
        );
        *answers.entry(status.as_u16()).or_insert(0) += 1;
    }
    let small = small.await.unwrap();
    let growth_mib = (p.peak_rss_kib().saturating_sub(before)) / 1024;
    let metrics = get(format!("http://{}/metrics", p.admin)).await;
    eprintln!(
        "64 bombs of {} and {} bytes: {answers:?}, peak RSS grew by {growth_mib} MiB (budget {budget_mib} MiB); \
         {} small requests meanwhile",
        empty.len(),
        typed.len(),
        small.len()
    );
    assert!(small.iter().all(|s| *s == StatusCode::OK), "{small:?}");
    assert!(
        growth_mib <= budget_mib as u64 + 64,
        "peak RSS grew by {growth_mib} MiB"
    );
    assert_eq!(
        metric_value(&metrics, "tollgate_inflight_decoded_bytes"),
        0.0
    );
}
