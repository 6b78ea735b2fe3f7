//! The real `tollgate` binary as a process: signals, what it writes to its log, and its
//! memory under a gzip bomb. Each test binds port 0 and reads the bound address from the
//! `public listening addr=…` log line.

mod common;

use std::time::Duration;

use common::process::{file_sink_sections, get, send, spawn};
use common::*;
use http::StatusCode;

#[tokio::test]
async fn sigterm_drains_flushes_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = spawn(
        dir.path(),
        "",
        &file_sink_sections(dir.path(), "disk"),
        "info",
    );
    let (status, _) = send(
        format!("http://{}/?token={LOGS_TOKEN}", p.addr),
        &[],
        "{\"n\":1}\nsecond\n",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    p.signal("TERM");
    assert!(p.wait_exit().success());
    let out = p.output.lock().unwrap().clone();
    assert!(
        out.contains("shutting down") && out.contains("forwarding drained"),
        "{out}"
    );
    assert_eq!(sink_records(&p.dir.join("out"), "logs").len(), 2);
}

/// The spool writer runs nicer than the request workers (its groups grow under load on a
/// shared core); the workers keep the process's priority.
#[tokio::test]
async fn the_spool_writer_is_nicer_than_the_request_workers() {
    let dir = tempfile::tempdir().unwrap();
    let p = spawn(
        dir.path(),
        "",
        &file_sink_sections(dir.path(), "disk"),
        "info",
    );
    // Answered once fsynced: the writer has started and set its priority.
    let (status, _) = send(format!("http://{}/?token={LOGS_TOKEN}", p.addr), &[], "{}").await;
    assert_eq!(status, StatusCode::OK);
    let nice_of = |name: &str| -> Vec<i64> {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", p.pid())).unwrap();
        let mut nices = Vec::new();
        for task in tasks {
            let task = task.unwrap().path();
            let comm = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
            if comm.trim() == name {
                let stat = std::fs::read_to_string(task.join("stat")).unwrap();
                // Field 19, nice; the fields after the command's ')' start at field 3.
                let after = &stat[stat.rfind(')').unwrap() + 2..];
                nices.push(after.split(' ').nth(16).unwrap().parse().unwrap());
            }
        }
        nices
    };
    let workers = nice_of("tokio-rt-worker");
    let writer = nice_of("tollgate-spool");
    assert!(!workers.is_empty() && workers.iter().all(|&n| n == workers[0]));
    assert_eq!(
        writer,
        vec![(workers[0] + 5).min(19)],
        "workers at {workers:?}"
    );
}

#[tokio::test]
async fn tokens_never_appear_in_logs_metrics_or_error_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = spawn(
        dir.path(),
        "",
        &file_sink_sections(dir.path(), "disk"),
        "debug",
    );
    let base = format!("http://{}", p.addr);
    for token in ALL_TOKENS {
        for body in ["{\"a\":1}\n", "{broken\n"] {
            let (_, reply) = send(format!("{base}/?token={token}&type=t"), &[], body).await;
            assert!(!String::from_utf8_lossy(&reply).contains(token));
            let auth = vec![("authorization", format!("Bearer {token}"))];
            let (_, reply) = send(format!("{base}/?type=t"), &auth, body).await;
            assert!(!String::from_utf8_lossy(&reply).contains(token));
        }
        // The OTLP and remote_write routes, accepted or refused, in both OTLP encodings.
        for (path, content_type, encoding) in [
            ("/v1/traces", "application/json", "identity"),
            ("/v1/logs", "application/x-protobuf", "identity"),
            ("/api/v1/write", "application/x-protobuf", "snappy"),
        ] {
            let headers = vec![
                ("authorization", format!("Bearer {token}")),
                ("content-type", content_type.to_string()),
                ("content-encoding", encoding.to_string()),
            ];
            let (_, reply) = send(format!("{base}{path}"), &headers, "{}").await;
            assert!(!String::from_utf8_lossy(&reply).contains(token));
        }
    }
    // A token file that fails to load must not echo its tokens in the error either.
    std::fs::write(
        dir.path().join("tokens.json"),
        format!("{{\"version\": 2, \"tokens\": [{{\"token\": \"{LOGS_TOKEN}!\", \"token_id\": \"t\", \"account_id\": 1, \"kind\": \"logs\"}}]}}"),
    )
    .unwrap();
    let metrics_url = format!("http://{}/metrics", p.admin);
    eventually(Duration::from_secs(5), || async {
        metric_value(
            &get(metrics_url.clone()).await,
            "tollgate_token_reloads_total{result=\"error\"}",
        ) >= 1.0
    })
    .await;
    let metrics = get(metrics_url).await;
    p.signal("TERM");
    p.wait_exit();
    let out = p.output.lock().unwrap().clone();
    assert!(out.contains("token refused"), "debug logging was on: {out}");
    assert!(out.contains("t-logs-1"), "token ids are logged instead");
    for token in ALL_TOKENS {
        assert!(!out.contains(token), "token found in the log output");
        assert!(!metrics.contains(token), "token found in /metrics");
    }
}

/// A gateway taking 1 MiB bodies that decompress to at most 32 MiB.
fn spawn_for_small_bombs(dir: &std::path::Path) -> common::process::Process {
    spawn(
        dir,
        "max_body_bytes = 1048576\nmax_decompressed_bytes = 33554432",
        &file_sink_sections(dir, "disk"),
        "info",
    )
}

/// A small gzip body of millions of `{}` lines decodes into a line each: refused (413)
/// once the lines would cost 4 × the decompressed body, not after gigabytes.
#[tokio::test]
async fn a_body_of_tiny_lines_costs_a_bounded_multiple_of_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let p = spawn_for_small_bombs(dir.path());
    let tiny = gzip("{}\n".repeat((32 << 20) / 3).as_bytes());
    assert!(tiny.len() < 1 << 20, "{} bytes compressed", tiny.len());
    let before = p.peak_rss_kib();
    let (status, body) = send(
        format!("http://{}/?token={LOGS_TOKEN}", p.addr),
        &[("content-encoding", "gzip".to_string())],
        tiny,
    )
    .await;
    let growth_mib = (p.peak_rss_kib().saturating_sub(before)) / 1024;
    eprintln!("peak RSS grew by {growth_mib} MiB for 32 MiB of `{{}}` lines: {status}");
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        String::from_utf8_lossy(&body).contains("the memory for this body's lines"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    // The body (32 MiB) plus at most 4 × 32 MiB of lines (a growing Vec may hold twice
    // what it uses while it doubles). Unbounded, 11 million lines cost over a gigabyte.
    assert!(growth_mib < 300, "peak RSS grew by {growth_mib} MiB");
}

/// OTLP bodies of empty messages (`0a 00` repeated: an empty ResourceSpans every two
/// bytes; `[{},{},…]` in JSON) are refused (413) before they are decoded into structs
/// that take tens of times their size.
#[tokio::test]
async fn otlp_bodies_of_empty_messages_are_refused_before_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let p = spawn_for_small_bombs(dir.path());
    let protobuf = gzip(&[0x0a, 0x00].repeat(16 << 20));
    let mut json = b"{\"resourceSpans\":[{}".to_vec();
    json.extend(b",{}".repeat((32 << 20) / 3 - 10));
    json.extend(b"]}");
    let json = gzip(&json);
    let before = p.peak_rss_kib();
    for (content_type, body) in [
        ("application/x-protobuf", protobuf),
        ("application/json", json),
    ] {
        assert!(body.len() < 1 << 20, "{} bytes compressed", body.len());
        let (status, answer) = send(
            format!("http://{}/v1/traces", p.addr),
            &[
                ("content-encoding", "gzip".to_string()),
                ("content-type", content_type.to_string()),
                ("authorization", format!("Bearer {TRACES_TOKEN}")),
            ],
            body,
        )
        .await;
        let growth_mib = (p.peak_rss_kib().saturating_sub(before)) / 1024;
        eprintln!("{content_type}: {status}, peak RSS grew by {growth_mib} MiB for 32 MiB");
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{content_type}");
        assert!(
            String::from_utf8_lossy(&answer).contains("decoded form of this request"),
            "{content_type}"
        );
        // The body (32 MiB) and its gzip; unbounded, this took gigabytes.
        assert!(
            growth_mib < 160,
            "{content_type}: peak RSS grew by {growth_mib} MiB"
        );
    }
}

/// remote_write is checked one series at a time: a body packing millions of one-label
/// series costs about its decompressed size, not the gigabytes of every series decoded.
#[tokio::test]
async fn remote_write_is_decoded_one_series_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let p = spawn(
        dir.path(),
        "max_body_bytes = 4194304\nmax_decompressed_bytes = 33554432",
        &file_sink_sections(dir.path(), "disk"),
        "info",
    );
    // A series with the one label `__name__="a"` and no sample, 17 bytes on the wire.
    let series = [
        &[0x0a, 0x0f, 0x0a, 0x0d, 0x0a, 0x08][..],
        b"__name__",
        &[0x12, 0x01, b'a'],
    ]
    .concat();
    let body = snap::raw::Encoder::new()
        .compress_vec(&series.repeat((32 << 20) / series.len() - 1))
        .unwrap();
    assert!(body.len() < 4 << 20, "{} bytes compressed", body.len());
    let before = p.peak_rss_kib();
    let (status, answer) = send(
        format!("http://{}/api/v1/write", p.addr),
        &[
            ("content-encoding", "snappy".to_string()),
            ("content-type", "application/x-protobuf".to_string()),
            ("authorization", format!("Bearer {METRICS_TOKEN}")),
        ],
        body,
    )
    .await;
    let growth_mib = (p.peak_rss_kib().saturating_sub(before)) / 1024;
    eprintln!("remote_write: {status}, peak RSS grew by {growth_mib} MiB for 32 MiB of series");
    assert_eq!(
        status,
        StatusCode::NO_CONTENT,
        "{}",
        String::from_utf8_lossy(&answer)
    );
    // The decompressed body (32 MiB), the compressed one, the spool's copy.
    assert!(growth_mib < 128, "peak RSS grew by {growth_mib} MiB");
}

/// After a burst of large requests (`ack = "disk"`) the gateway gives the memory back:
/// the spool's frame buffer does not keep the largest group's size.
#[tokio::test]
async fn memory_taken_by_a_burst_is_given_back() {
    let dir = tempfile::tempdir().unwrap();
    let p = spawn(
        dir.path(),
        "max_body_bytes = 4194304\nmax_decompressed_bytes = 67108864",
        &file_sink_sections(dir.path(), "disk"),
        "info",
    );
    let line = format!("{{\"message\":\"{}\"}}\n", "x".repeat(90));
    let body = gzip(line.repeat((48 << 20) / line.len()).as_bytes());
    let before = p.rss_kib() / 1024;
    let url = format!("http://{}/?token={LOGS_TOKEN}", p.addr);
    let gzipped = [("content-encoding", "gzip".to_string())];
    let sends = (0..2).map(|_| send(url.clone(), &gzipped, body.clone()));
    for (status, _) in futures_util::future::join_all(sends).await {
        assert_eq!(status, StatusCode::OK);
    }
    // Given back within 3 s: the records leave the spool, and jemalloc returns freed pages
    // within its 1 s decay (src/main.rs).
    let took = wait_until(
        &format!("RSS back under {} MiB ({before} MiB before)", before + 48),
        Duration::from_secs(3),
        || async { p.rss_kib() / 1024 < before + 48 },
    )
    .await;
    let (idle, peak) = (p.rss_kib() / 1024, p.peak_rss_kib() / 1024);
    eprintln!(
        "RSS {before} MiB before, peak {peak} MiB, {idle} MiB {took:?} after two 48 MiB bodies"
    );
    assert!(
        idle < before + 48,
        "{idle} MiB idle after the burst (was {before})"
    );
}

/// While the sink is down, the records queued for it cost what the queue's budget counts
/// (their payload and bookkeeping), so the budget bounds the memory. An OTLP request is
/// forwarded as the bytes it came in: those are copied out of the connection's read buffer
/// rather than kept as a slice of it, which held the whole buffer (8 KiB or more for a
/// 500-byte request) for as long as the record waited.
#[tokio::test]
async fn records_queued_for_a_stalled_sink_cost_about_their_size() {
    use http_body_util::Full;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    use prost::Message;
    use tollgate::proto::otlp::collector::trace::v1::ExportTraceServiceRequest;
    use tollgate::proto::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span};

    // A sink that takes connections (into the listen backlog) and never answers.
    let stalled = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let queue_mib = 8;
    let sections = format!(
        "[forward]\nack = \"memory\"\nqueue_max_bytes = {}\n\
         [sink]\ntype = \"http\"\nurl = \"http://{}/\"\ntimeout_secs = 600\n",
        queue_mib << 20,
        stalled.local_addr().unwrap()
    );
    let p = spawn(dir.path(), "", &sections, "info");
    let before = p.rss_kib() / 1024;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<bytes::Bytes>>();
    let url = format!("http://{}/v1/traces", p.addr);
    let body = bytes::Bytes::from(
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span {
                        trace_id: vec![1; 16],
                        span_id: vec![2; 8],
                        name: "x".repeat(450),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec(),
    );
    // Four keep-alive connections send one span a request until the queue is full (503).
    let senders = (0..4).map(|_| {
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        tokio::spawn(async move {
            let mut accepted = 0u64;
            loop {
                let req = http::Request::post(&url)
                    .header("content-type", "application/x-protobuf")
                    .header("authorization", format!("Bearer {TRACES_TOKEN}"))
                    .body(Full::new(body.clone()))
                    .unwrap();
                match client.request(req).await.unwrap().status() {
                    StatusCode::OK => accepted += 1,
                    StatusCode::SERVICE_UNAVAILABLE => return accepted,
                    other => panic!("{other}"),
                }
            }
        })
    });
    let accepted: u64 = futures_util::future::join_all(senders)
        .await
        .into_iter()
        .map(Result::unwrap)
        .sum();
    let held = p.rss_kib() / 1024;
    let metrics = get(format!("http://{}/metrics", p.admin)).await;
    let queued_mib = metric_value(&metrics, "tollgate_queue_bytes") as u64 >> 20;
    eprintln!(
        "{accepted} requests of {} bytes queued for a stalled sink, {queued_mib} MiB by the \
         queue's count: RSS {before} -> {held} MiB",
        body.len()
    );
    assert!(
        queued_mib >= queue_mib - 1,
        "the queue filled: {queued_mib} MiB"
    );
    assert!(
        held < before + 2 * queue_mib,
        "{held} MiB resident with {queued_mib} MiB queued (was {before})"
    );
}

#[tokio::test]
async fn gzip_bomb_is_refused_without_inflating_it_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let p = spawn(
        dir.path(),
        "max_body_bytes = 1048576\nmax_decompressed_bytes = 4194304",
        &file_sink_sections(dir.path(), "disk"),
        "info",
    );
    let bomb = gzip(&vec![0u8; 128 << 20]);
    assert!(
        bomb.len() < 1 << 20,
        "128 MiB of zeros: {} bytes compressed",
        bomb.len()
    );
    let before = p.peak_rss_kib();
    for _ in 0..3 {
        let (status, body) = send(
            format!("http://{}/?token={LOGS_TOKEN}", p.addr),
            &[("content-encoding", "gzip".to_string())],
            bomb.clone(),
        )
        .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(String::from_utf8_lossy(&body).contains("decompressed body is over 4194304 bytes"));
    }
    let growth_mib = (p.peak_rss_kib().saturating_sub(before)) / 1024;
    eprintln!("peak RSS grew by {growth_mib} MiB for three 128 MiB bombs (cap 4 MiB)");
    assert!(growth_mib < 64, "peak RSS grew by {growth_mib} MiB");
}
