//! The Logz.io-compatible logs route against the real server: every row of DESIGN §1's
//! status table that applies to it, per-line counts, encodings, and what reaches the sink.

mod common;

use std::io::Write;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::{Request, StatusCode, header};
use http_body_util::Full;
use serde_json::json;

fn error_of(reply: &Reply) -> String {
    assert_eq!(
        reply
            .headers
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap()),
        Some("application/json")
    );
    reply.json()["error"]
        .as_str()
        .expect("an error message")
        .to_string()
}

#[tokio::test]
async fn accepted_lines_reach_the_sink_with_metadata_the_client_cannot_forge() {
    let server = TestServer::start(|_| {}).await;
    let body =
        "{\"msg\":\"hello\",\"_account_id\":666,\"_token_id\":\"forged\"}\nplain text line\n";
    let reply = server.post_logs(Some(LOGS_TOKEN), "type=nginx", body).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply.body.is_empty(),
        "200 has an empty body, as the listener sends"
    );
    assert_eq!(
        server
            .metric("tollgate_ingested_records_total{kind=\"logs\"}")
            .await,
        2.0
    );

    let dir = server.dir.clone();
    let server_dir = TestServer::shutdown(server).await;
    assert_eq!(server_dir.path(), dir);
    let records = sink_records(&dir.join("out"), "logs");
    assert_eq!(records.len(), 2);
    for r in &records {
        assert_eq!(r["_account_id"], 1001);
        assert_eq!(r["_token_id"], "t-logs-1");
        assert_eq!(r["_kind"], "logs");
        assert_eq!(r["_type"], "nginx");
        assert_eq!(r["type"], "nginx");
    }
    assert_eq!(records[0]["msg"], "hello");
    assert_eq!(records[1]["message"], "plain text line");
}

#[tokio::test]
async fn bearer_header_carries_the_token_too() {
    let server = TestServer::start(|_| {}).await;
    let reply = server
        .request(
            Request::post(server.url("/?type=app"))
                .header(header::AUTHORIZATION, format!("Bearer {LOGS_TOKEN}"))
                .body(Full::new(Bytes::from_static(b"{\"a\":1}\n")))
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn every_token_failure_is_401_with_a_message_naming_the_reason() {
    let server = TestServer::start(|_| {}).await;
    let cases = [
        (None, "Logging token is missing", "missing"),
        (Some("short"), "Logging token is not valid", "malformed"),
        (
            Some("has spaces in it ....."),
            "Logging token is not valid",
            "malformed",
        ),
        (Some(UNKNOWN_TOKEN), "Logging token is not valid", "unknown"),
        (
            Some(DISABLED_TOKEN),
            "Logging token is disabled",
            "disabled",
        ),
        (
            Some(METRICS_TOKEN),
            "Logging token is not a logs token",
            "wrong_kind",
        ),
    ];
    for (token, message, reason) in cases {
        let before = server
            .metric(&format!(
                "tollgate_auth_failures_total{{reason=\"{reason}\"}}"
            ))
            .await;
        let reply = server
            .post_logs(
                token.map(|t| t.replace(' ', "%20")).as_deref(),
                "",
                "{\"a\":1}\n",
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(error_of(&reply), message);
        let after = server
            .metric(&format!(
                "tollgate_auth_failures_total{{reason=\"{reason}\"}}"
            ))
            .await;
        assert_eq!(after, before + 1.0, "{reason} counted");
        if let Some(t) = token {
            assert!(
                !String::from_utf8_lossy(&reply.body).contains(t),
                "token echoed"
            );
        }
    }
    assert_eq!(
        server
            .metric("tollgate_requests_total{code=\"401\",route=\"logs\"}")
            .await,
        cases.len() as f64
    );
    assert!(server.sink_records("logs").is_empty());
}

#[tokio::test]
async fn mixed_body_gets_400_with_per_line_counts_and_valid_lines_are_kept() {
    let server = TestServer::start(|c| c.server.max_line_bytes = 1000).await;
    let oversized = format!("{{\"big\":\"{}\"}}", "x".repeat(2000));
    let body = format!(
        "{{\"n\":1}}\nplain text\n{{not json\n\n{oversized}\r\n{{\"n\":2,\"type\":\"own\"}}\r\n   \n"
    );
    let reply = server.post_logs(Some(LOGS_TOKEN), "type=app", body).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.json(),
        json!({"malformedLines": 1, "successfulLines": 3, "oversizedLines": 1, "emptyLogLines": 2})
    );
    let m = |reason: &str| {
        format!("tollgate_rejected_records_total{{kind=\"logs\",reason=\"{reason}\"}}")
    };
    assert_eq!(server.metric(&m("malformed")).await, 1.0);
    assert_eq!(server.metric(&m("oversized")).await, 1.0);
    assert_eq!(server.metric(&m("empty")).await, 2.0);

    let dir = server.shutdown().await;
    let records = sink_records(&dir.join("out"), "logs");
    assert_eq!(records.len(), 3);
    assert_eq!(records[0]["n"], 1);
    assert_eq!(records[0]["type"], "app");
    assert_eq!(records[1]["message"], "plain text");
    assert_eq!(records[2]["n"], 2);
    assert_eq!(records[2]["type"], "own", "a log's own type is kept");
    assert_eq!(records[2]["_type"], "app");
}

#[tokio::test]
async fn bodies_with_and_without_a_final_newline_both_get_200() {
    let server = TestServer::start(|_| {}).await;
    for body in ["{\"a\":1}\n{\"a\":2}\n", "{\"a\":1}\n{\"a\":2}"] {
        let reply = server.post_logs(Some(LOGS_TOKEN), "", body).await;
        assert_eq!(reply.status, StatusCode::OK, "{body:?}");
    }
    let dir = server.shutdown().await;
    let records = sink_records(&dir.join("out"), "logs");
    assert_eq!(records.len(), 4);
    assert!(
        records.iter().all(|r| r["type"] == "http-bulk"),
        "default type"
    );
}

#[tokio::test]
async fn gzip_and_deflate_bodies_are_decoded() {
    let server = TestServer::start(|_| {}).await;
    let lines: String = (0..100).map(|i| format!("{{\"i\":{i}}}\n")).collect();
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    zlib.write_all(lines.as_bytes()).unwrap();
    let deflated = zlib.finish().unwrap();
    for (encoding, body) in [("gzip", gzip(lines.as_bytes())), ("deflate", deflated)] {
        let reply = server
            .request(
                Request::post(server.url(&format!("/?token={LOGS_TOKEN}")))
                    .header(header::CONTENT_ENCODING, encoding)
                    .body(Full::new(Bytes::from(body)))
                    .unwrap(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{encoding}");
    }
    let dir = server.shutdown().await;
    let records = sink_records(&dir.join("out"), "logs");
    assert_eq!(records.len(), 200);
    assert_eq!(records[99]["i"], 99);
    assert_eq!(records[199]["i"], 99);
}

#[tokio::test]
async fn bad_gzip_is_400_and_unknown_encoding_is_415() {
    let server = TestServer::start(|_| {}).await;
    let post = |encoding: &'static str, body: &'static [u8]| {
        Request::post(server.url(&format!("/?token={LOGS_TOKEN}")))
            .header(header::CONTENT_ENCODING, encoding)
            .body(Full::new(Bytes::from_static(body)))
            .unwrap()
    };
    let reply = server.request(post("gzip", b"definitely not gzip")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_of(&reply), "body is not valid gzip");
    let reply = server.request(post("br", b"{}")).await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(error_of(&reply).contains("Content-Encoding"));
}

#[tokio::test]
async fn body_over_the_limit_is_413_with_or_without_content_length() {
    let server = TestServer::start(|c| {
        c.server.max_body_bytes = 1000;
        c.server.max_decompressed_bytes = 1000;
    })
    .await;
    let big = vec![b'x'; 5000];
    let reply = server.post_logs(Some(LOGS_TOKEN), "", big.clone()).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_of(&reply), "body is over 1000 bytes");

    // Streamed without Content-Length: the cap applies while reading.
    let chunks = futures_stream(big);
    let reply = server
        .request_streaming(format!("/?token={LOGS_TOKEN}"), chunks)
        .await;
    assert_eq!(reply, StatusCode::PAYLOAD_TOO_LARGE);
}

fn futures_stream(data: Vec<u8>) -> Vec<Bytes> {
    data.chunks(512).map(Bytes::copy_from_slice).collect()
}

trait Streaming {
    async fn request_streaming(&self, path: String, chunks: Vec<Bytes>) -> StatusCode;
}

impl Streaming for TestServer {
    /// Sends a chunked body (no Content-Length) over raw HTTP/1.1.
    async fn request_streaming(&self, path: String, chunks: Vec<Bytes>) -> StatusCode {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let head = format!("POST {path} HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n");
        s.write_all(head.as_bytes()).await.unwrap();
        for c in chunks {
            if s.write_all(format!("{:x}\r\n", c.len()).as_bytes())
                .await
                .is_err()
                || s.write_all(&c).await.is_err()
                || s.write_all(b"\r\n").await.is_err()
            {
                break; // the server answered and closed early: fine
            }
        }
        let _ = s.write_all(b"0\r\n\r\n").await;
        let mut buf = vec![0u8; 4096];
        let n = s.read(&mut buf).await.unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        let code: u16 = text[9..12].parse().unwrap();
        StatusCode::from_u16(code).unwrap()
    }
}

#[tokio::test]
async fn gzip_over_the_decompressed_cap_is_413_not_429() {
    let server = TestServer::start(|c| {
        c.server.max_body_bytes = 1 << 20;
        c.server.max_decompressed_bytes = 1 << 20;
    })
    .await;
    let bomb = gzip(&vec![0u8; 10 << 20]);
    assert!(bomb.len() < 20 << 10, "10 MiB of zeros compress to ~10 KiB");
    let reply = server
        .request(
            Request::post(server.url(&format!("/?token={LOGS_TOKEN}")))
                .header(header::CONTENT_ENCODING, "gzip")
                .body(Full::new(Bytes::from(bomb)))
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_of(&reply), "decompressed body is over 1048576 bytes");
}

#[tokio::test]
async fn wrong_method_is_405_and_unknown_path_is_404() {
    let server = TestServer::start(|_| {}).await;
    let reply = server
        .request(
            Request::get(server.url("/"))
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(error_of(&reply).contains("POST"));
    let reply = server.post_logs(Some(LOGS_TOKEN), "", "x").await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = server
        .request(
            Request::post(server.url("/nope"))
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(error_of(&reply), "no such route");
    assert_eq!(
        server
            .metric("tollgate_requests_total{code=\"404\",route=\"unmatched\"}")
            .await,
        1.0
    );
}

#[tokio::test]
async fn type_param_is_bounded_and_many_query_params_are_harmless() {
    let server = TestServer::start(|_| {}).await;
    let long_type = format!("type={}", "t".repeat(10 * 1024));
    let reply = server
        .post_logs(Some(LOGS_TOKEN), &long_type, "{\"a\":1}\n")
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_of(&reply), "type is longer than 256 bytes");

    let many: Vec<String> = (0..1000).map(|i| format!("p{i}=v{i}")).collect();
    let reply = server
        .post_logs(Some(LOGS_TOKEN), &many.join("&"), "{\"a\":1}\n")
        .await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn full_queue_answers_503_with_retry_after_never_500() {
    // The sink cannot write (its active file's path is a directory), so the first
    // request's records stay queued and hold the whole budget.
    let server = TestServer::start(|c| {
        c.forward.ack = tollgate::config::Ack::Memory;
        c.forward.queue_max_bytes = 1000;
    })
    .await;
    std::fs::create_dir_all(server.dir.join("out/logs.ndjson")).unwrap();
    let line = format!("{{\"pad\":\"{}\"}}\n", "p".repeat(600));
    let first = server.post_logs(Some(LOGS_TOKEN), "", line.clone()).await;
    assert_eq!(first.status, StatusCode::OK);
    let second = server.post_logs(Some(LOGS_TOKEN), "", line).await;
    assert_eq!(second.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(second.headers.get(header::RETRY_AFTER).unwrap(), "1");
    assert_eq!(error_of(&second), "the forwarding queue is full");
    eventually(Duration::from_secs(5), || async {
        server
            .metric("tollgate_sink_batches_total{result=\"error\",sink=\"file\"}")
            .await
            >= 1.0
    })
    .await;
}

#[tokio::test]
async fn no_token_table_yet_is_503_not_401() {
    let server = TestServer::start(|c| c.tokens.path = "/nonexistent/tokens.json".into()).await;
    assert_eq!(
        server.get_admin("/readyz").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(server.get_admin("/healthz").await.status, StatusCode::OK);
    let reply = server.post_logs(Some(LOGS_TOKEN), "", "{\"a\":1}\n").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(reply.headers.contains_key(header::RETRY_AFTER));
    assert_eq!(error_of(&reply), "token table is not loaded yet");
}

#[tokio::test]
async fn admin_listener_serves_metrics_health_and_readiness() {
    let server = TestServer::start(|_| {}).await;
    server.wait_ready().await;
    assert_eq!(server.get_admin("/healthz").await.json()["status"], "ok");
    let metrics = server.get_admin("/metrics").await;
    let text = String::from_utf8_lossy(&metrics.body);
    for name in [
        "tollgate_requests_total",
        "tollgate_request_duration_seconds",
        "tollgate_ingested_bytes_total",
        "tollgate_ingested_records_total",
        "tollgate_rejected_records_total",
        "tollgate_auth_failures_total",
        "tollgate_token_table_size",
        "tollgate_token_table_version",
        "tollgate_token_table_age_seconds",
        "tollgate_token_reloads_total",
        "tollgate_sink_batches_total",
        "tollgate_sink_latency_seconds",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics");
    }
    let tokens: serde_json::Value = serde_json::from_str(&tokens_json(1, true)).unwrap();
    let table_size = tokens["tokens"].as_array().unwrap().len() as f64;
    assert_eq!(server.metric("tollgate_token_table_size").await, table_size);
    assert_eq!(
        server.get_admin("/nope").await.status,
        StatusCode::NOT_FOUND
    );
}
