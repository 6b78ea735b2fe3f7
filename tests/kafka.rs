//! The Kafka sink against a real Kafka-API broker (Tansu, see `common::kafka`): topics,
//! keys, headers and one message per log line; `ack = "downstream"`; crash safety under
//! kill -9; a broker outage under load; and the sink's throughput.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::crash::{assert_none_lost, kill_nine_times_ten};
use common::kafka::{self, Broker};
use common::process::{get, spawn};
use common::*;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tollgate::config::{Ack, Config, SinkConfig};

fn kafka_sink(c: &mut Config, broker: &Broker) {
    c.sink = broker.sink();
}

fn ids(records: &[kafka::Record]) -> Vec<u64> {
    let mut ids: Vec<u64> = records
        .iter()
        .map(|r| r.json()["id"].as_u64().unwrap())
        .collect();
    ids.sort_unstable();
    ids
}

const SPAN_JSON: &str = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"GET /cart","kind":2,"startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}"#;

#[tokio::test]
async fn records_reach_their_topic_with_key_headers_and_one_message_per_line() {
    let Some(broker) = kafka::start("records_reach_their_topic") else {
        return;
    };
    let server = TestServer::start(|c| kafka_sink(c, &broker)).await;

    let reply = server
        .post_logs(
            Some(LOGS_TOKEN),
            "type=nginx",
            "{\"id\":1,\"msg\":\"a\"}\n{\"id\":2,\"msg\":\"b\"}\n{\"id\":3}\n",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = server
        .post_logs(Some(OTHER_ACCOUNT_TOKEN), "type=app", "{\"id\":4}\n")
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = server
        .post(
            "/v1/traces",
            Some(TRACES_TOKEN),
            &[("content-type", "application/json")],
            SPAN_JSON,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);

    let mut logs = Vec::new();
    eventually(Duration::from_secs(20), || {
        logs = broker.consume("tollgate-logs");
        let n = logs.len();
        async move { n >= 4 }
    })
    .await;
    assert_eq!(ids(&logs), vec![1, 2, 3, 4], "one message per log line");
    for r in &logs {
        let id = r.json()["id"].as_u64().unwrap();
        let (account, token_id, log_type) = if id == 4 {
            ("2002", "t-logs-3", "app")
        } else {
            ("1001", "t-logs-1", "nginx")
        };
        assert_eq!(r.key, account, "key = account id in decimal");
        let expected = BTreeMap::from([
            ("account_id".to_string(), account.to_string()),
            ("token_id".to_string(), token_id.to_string()),
            ("kind".to_string(), "logs".to_string()),
            ("log_type".to_string(), log_type.to_string()),
            ("content_type".to_string(), "application/json".to_string()),
        ]);
        assert_eq!(r.headers, expected);
        // Each message is one log line, readable alone, without its newline.
        assert!(!r.payload.ends_with(b"\n"));
    }
    // One account's lines stay ordered in one partition.
    let acme: Vec<_> = logs.iter().filter(|r| r.key == "1001").collect();
    assert!(acme.iter().all(|r| r.partition == acme[0].partition));
    let acme_ids: Vec<u64> = acme
        .iter()
        .map(|r| r.json()["id"].as_u64().unwrap())
        .collect();
    assert_eq!(acme_ids, vec![1, 2, 3]);

    let mut traces = Vec::new();
    eventually(Duration::from_secs(20), || {
        traces = broker.consume("tollgate-traces");
        let n = traces.len();
        async move { n >= 1 }
    })
    .await;
    assert_eq!(traces.len(), 1, "one message per OTLP request");
    assert_eq!(
        traces[0].payload,
        SPAN_JSON.as_bytes(),
        "the request as sent"
    );
    assert_eq!(traces[0].key, "1001");
    assert_eq!(traces[0].headers["kind"], "traces");
    assert_eq!(traces[0].headers["token_id"], "t-traces-1");
    assert_eq!(
        traces[0].headers["content_type"],
        "application/json;proto=otlp"
    );
    assert!(!traces[0].headers.contains_key("log_type"));
    assert!(broker.consume("tollgate-metrics").is_empty());
    let ok_batches = server
        .metric("tollgate_sink_batches_total{result=\"ok\",sink=\"kafka\"}")
        .await;
    assert!(ok_batches >= 1.0, "{ok_batches}");
    server.shutdown().await;
}

#[tokio::test]
async fn topics_are_configurable() {
    let Some(broker) = kafka::start("topics_are_configurable") else {
        return;
    };
    broker.create_topic("custom-logs");
    let server = TestServer::start(|c| {
        kafka_sink(c, &broker);
        if let SinkConfig::Kafka { topic_logs, .. } = &mut c.sink {
            *topic_logs = "custom-logs".to_string();
        }
        c.forward.ack = Ack::Downstream;
    })
    .await;
    let reply = server.post_logs(Some(LOGS_TOKEN), "", "{\"id\":7}\n").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(ids(&broker.consume("custom-logs")), vec![7]);
    assert!(broker.consume("tollgate-logs").is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn downstream_ack_answers_only_after_the_broker_has_the_records() {
    let Some(broker) = kafka::start("downstream_ack") else {
        return;
    };
    let server = TestServer::start(|c| {
        kafka_sink(c, &broker);
        c.forward.ack = Ack::Downstream;
    })
    .await;
    for round in 0..5u64 {
        let body: String = (round * 10..round * 10 + 10)
            .map(|i| format!("{{\"id\":{i}}}\n"))
            .collect();
        let reply = server.post_logs(Some(LOGS_TOKEN), "", body).await;
        assert_eq!(reply.status, StatusCode::OK);
        // No waiting: the 200 means the broker already has every line.
        let expected: Vec<u64> = (0..round * 10 + 10).collect();
        assert_eq!(ids(&broker.consume("tollgate-logs")), expected);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn kill_9_at_random_moments_loses_nothing_acknowledged_with_the_kafka_sink() {
    let Some(broker) = kafka::start("kafka crash test") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sections = format!(
        "[forward]\nack = \"disk\"\nspool_dir = \"{}/spool\"\nmax_batch_age_secs = 0.01\n{}",
        dir.path().display(),
        broker.sink_section()
    );
    let acked = kill_nine_times_ten(dir.path(), &sections).await;

    let delivered = broker
        .consume("tollgate-logs")
        .into_iter()
        .map(|r| r.json()["id"].as_u64().expect("every record has its id"));
    assert_none_lost(acked.iter().copied(), delivered, "kafka sink");
}

/// One keep-alive connection posting numbered lines until `stop`; counts the requests
/// answered 200 in `answered_ok` as they come, and returns the ids answered 200 and the
/// status codes seen, in order.
async fn outage_load(
    addr: String,
    next: Arc<AtomicU64>,
    answered_ok: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    started: Instant,
) -> (Vec<u64>, Vec<(Duration, u16, Option<String>)>) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let url = format!("http://{addr}/?token={LOGS_TOKEN}&type=outage");
    let mut acked = Vec::new();
    let mut codes = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let first = next.fetch_add(5, Ordering::Relaxed);
        let body: String = (first..first + 5)
            .map(|i| format!("{{\"id\":{i},\"pad\":\"{}\"}}\n", "x".repeat(200)))
            .collect();
        let req = Request::post(url.clone())
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let res = client.request(req).await.expect("tollgate answers");
        let status = res.status().as_u16();
        let retry_after = res
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_string());
        let _ = res.into_body().collect().await;
        codes.push((started.elapsed(), status, retry_after));
        match status {
            200 => {
                acked.extend(first..first + 5);
                answered_ok.fetch_add(1, Ordering::Relaxed);
            }
            // Honour Retry-After loosely: the client backs off a little.
            503 => tokio::time::sleep(Duration::from_millis(50)).await,
            _ => {}
        }
    }
    (acked, codes)
}

#[tokio::test]
#[ignore = "takes about a minute (a 40 s broker outage, then the catch-up); \
            run it with `cargo test --test kafka -- --ignored`, as .ci/run does"]
async fn a_broker_outage_fills_the_spool_then_503s_and_everything_arrives_after() {
    let Some(broker) = kafka::start("kafka outage test") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sections = format!(
        "[forward]\nack = \"disk\"\nspool_dir = \"{}/spool\"\nmax_batch_age_secs = 0.01\n\
         spool_max_bytes = 2000000\nspool_segment_bytes = 65536\n{}\
         \"message.timeout.ms\" = 5000\n",
        dir.path().display(),
        broker.sink_section()
    );
    let p = spawn(dir.path(), "", &sections, "info");
    let metrics_url = format!("http://{}/metrics", p.admin);
    // Warm up: the producer has connected once the first request's lines left the spool.
    let (status, _) = common::process::send(
        format!("http://{}/?token={LOGS_TOKEN}", p.addr),
        &[],
        "{\"id\":\"warm-up\"}\n",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    eventually(Duration::from_secs(20), || async {
        metric_value(&get(metrics_url.clone()).await, "tollgate_spool_bytes") == 0.0
    })
    .await;
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let answered_ok = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..2)
        .map(|_| {
            tokio::spawn(outage_load(
                p.addr.clone(),
                Arc::clone(&next),
                Arc::clone(&answered_ok),
                Arc::clone(&stop),
                started,
            ))
        })
        .collect();
    let answered_ok_past = |past: u64| {
        let answered_ok = Arc::clone(&answered_ok);
        move || {
            let past_it = answered_ok.load(Ordering::Relaxed) > past;
            async move { past_it }
        }
    };

    wait_until(
        "100 requests answered 200 with the broker up",
        Duration::from_secs(20),
        answered_ok_past(100),
    )
    .await;
    let before_outage = started.elapsed();
    broker.pause();
    eprintln!("outage: broker stopped at {before_outage:?}");
    // The outage's length is the scenario: longer than `message.timeout.ms`, so produce
    // requests time out and are retried while the spool fills.
    tokio::time::sleep(Duration::from_secs(40)).await;
    let outage_end = started.elapsed();
    let spool_at_peak = metric_value(&get(metrics_url.clone()).await, "tollgate_spool_bytes");
    broker.resume();
    eprintln!("outage: broker back at {outage_end:?}, spool {spool_at_peak} bytes");
    // Keep the load on until the backlog is back under the high-water mark, then a little.
    let recovered = eventually(Duration::from_secs(60), || async {
        metric_value(&get(metrics_url.clone()).await, "tollgate_spool_bytes") < 1_000_000.0
    })
    .await;
    eprintln!(
        "outage: spool under half the high-water mark {recovered:?} after the broker came back"
    );
    // Accepted again: 100 more requests answered 200.
    wait_until(
        "100 more requests answered 200 after the broker came back",
        Duration::from_secs(20),
        answered_ok_past(answered_ok.load(Ordering::Relaxed) + 100),
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    let mut codes = Vec::new();
    for c in clients {
        let (a, c) = c.await.unwrap();
        acked.extend(a);
        codes.extend(c);
    }
    codes.sort_by_key(|c| c.0);

    let stopped = Instant::now();
    loop {
        let text = get(metrics_url.clone()).await;
        if metric_value(&text, "tollgate_spool_bytes") == 0.0
            && metric_value(&text, "tollgate_spool_records") == 0.0
        {
            break;
        }
        if stopped.elapsed() > Duration::from_secs(60) {
            let out = p.output.lock().unwrap().clone();
            let tail: Vec<&str> = out.lines().rev().take(40).collect();
            panic!(
                "the spool did not drain: {} bytes left; tollgate's last lines:\n{}",
                metric_value(&text, "tollgate_spool_bytes"),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let drained = stopped.elapsed();
    eprintln!("outage: spool drained to 0 within {drained:?} after the load stopped");

    // Never a 500; every 503 carries Retry-After.
    assert!(codes.iter().all(|c| c.1 == 200 || c.1 == 503), "{codes:?}");
    assert!(
        codes
            .iter()
            .filter(|c| c.1 == 503)
            .all(|c| c.2.as_deref() == Some("1"))
    );
    let during = |c: &&(Duration, u16, Option<String>)| c.0 > before_outage && c.0 < outage_end;
    let ok_during = codes.iter().filter(during).filter(|c| c.1 == 200).count();
    let first_503 = codes.iter().find(|c| c.1 == 503).map(|c| c.0);
    let n503 = codes.iter().filter(|c| c.1 == 503).count();
    eprintln!(
        "outage: {} requests, {} answered 200 while the broker was down (spool had room), \
         first 503 at {first_503:?}, {n503} 503s in all",
        codes.len(),
        ok_during
    );
    assert!(ok_during > 0, "no 200 while the spool had room");
    let first_503 = first_503.expect("no 503 past the high-water mark");
    assert!(first_503 > before_outage && first_503 < outage_end);
    let last_503 = codes.iter().rev().find(|c| c.1 == 503).unwrap().0;
    let ok_after = codes
        .iter()
        .filter(|c| c.0 > last_503 && c.1 == 200)
        .count();
    assert!(
        ok_after > 0,
        "never accepted again after the broker came back"
    );

    let delivered = broker
        .consume("tollgate-logs")
        .into_iter()
        .filter_map(|r| r.json()["id"].as_u64());
    assert_none_lost(
        acked.iter().copied(),
        delivered,
        "kafka sink after an outage",
    );
}
