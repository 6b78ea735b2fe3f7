//! The read path (`GET /v1/tail`) against a real gateway following a real control plane's
//! feed: what an API token and a shared token may read, filters and `q`, changes that
//! reach open streams within 2 s (searchable flipped, a filter edited, a token deleted,
//! expiry), caps, slow readers, and no credential in any answer.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::TestServer;
use common::control::{ControlPlane, use_control_plane};
use common::kafka;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tollgate::config::{Ack, Config, TailSource};

/// Within this, a change on the control plane must have reached an open stream.
const PROPAGATION: Duration = Duration::from_secs(2);

async fn gateway(
    cp: &ControlPlane,
    configure: impl FnOnce(&mut tollgate::config::Config),
) -> TestServer {
    let url = cp.url();
    let server = TestServer::start(move |c| {
        use_control_plane(c, &url);
        c.forward.ack = Ack::Memory;
        configure(c);
    })
    .await;
    server.wait_ready().await;
    server
}

/// An open tail: its events as they arrive.
struct Stream {
    body: Incoming,
    buffer: String,
}

/// One thing a tail sent: a record (`data`), or a named event (`dropped`, `end`).
#[derive(Debug)]
enum Event {
    Record(Value),
    Named(String, Value),
}

impl Stream {
    /// The next event, or `None` if none comes within `within` (or the stream ended).
    async fn next(&mut self, within: Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = None;
                let mut data = None;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        name = Some(v.to_string());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data = Some(serde_json::from_str::<Value>(v).expect("data is JSON"));
                    }
                }
                match (name, data) {
                    (Some(n), Some(d)) => return Some(Event::Named(n, d)),
                    (None, Some(d)) => return Some(Event::Record(d)),
                    _ => continue, // a heartbeat comment
                }
            }
            let frame = tokio::time::timeout_at(deadline, self.body.frame())
                .await
                .ok()??;
            if let Ok(data) = frame.expect("stream frame").into_data() {
                self.buffer
                    .push_str(std::str::from_utf8(&data).expect("utf-8"));
            }
        }
    }

    /// The next record, skipping named events; `None` within `within`.
    async fn record(&mut self, within: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await? {
                Event::Record(r) => return Some(r),
                Event::Named(..) => continue,
            }
        }
    }

    /// The next `scope` event's data (what the stream shows), skipping records.
    async fn scope(&mut self, within: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(Event::Named(name, data)) if name == "scope" => return data,
                Some(_) => continue,
                None => panic!("no scope event within {within:?}"),
            }
        }
    }

    /// Waits for the `end` event and returns its reason.
    async fn end(&mut self, within: Duration) -> String {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(Event::Named(name, data)) if name == "end" => {
                    return data["reason"].as_str().unwrap().to_string();
                }
                Some(_) => continue,
                None => panic!("no end event within {within:?}"),
            }
        }
    }
}

/// Opens `GET /v1/tail?{query}` with `headers`: the status and, on 200, the stream.
async fn open(
    server: &TestServer,
    query: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, Option<Stream>, String) {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut req = Request::get(server.url(&format!("/v1/tail?{query}")));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = client
        .request(req.body(Full::new(Bytes::new())).unwrap())
        .await
        .expect("tail answers");
    let status = res.status();
    if status != StatusCode::OK {
        let body = res.into_body().collect().await.unwrap().to_bytes();
        return (status, None, String::from_utf8_lossy(&body).into_owned());
    }
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    (
        status,
        Some(Stream {
            body: res.into_body(),
            buffer: String::new(),
        }),
        String::new(),
    )
}

async fn ship(server: &TestServer, token: &str, lines: &[Value]) {
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let reply = server.post_logs(Some(token), "type=app", body).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
}

/// A filter `field: value` of the account: its id.
async fn filter(cp: &ControlPlane, api: &str, field: &str, value: &str) -> i64 {
    cp.post("/v1/shared-tokens/filters")
        .token(api)
        .json(json!({"description": format!("{field} is {value}"), "field": field, "value": value}))
        .send()
        .await
        .expect_ok("filter")["id"]
        .as_i64()
        .unwrap()
}

async fn shared(
    cp: &ControlPlane,
    api: &str,
    filters: &[i64],
    op: &str,
    expires_in_ms: i64,
) -> (i64, String) {
    let created = cp
        .post("/v1/shared-tokens")
        .token(api)
        .json(
            json!({"tokenName": "share", "filters": filters, "filtersOperator": op,
                     "expirationDate": cp.now_ms() + expires_in_ms}),
        )
        .send()
        .await
        .expect_ok("shared token");
    (
        created["id"].as_i64().unwrap(),
        created["token"].as_str().unwrap().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_token_reads_its_account_and_searchable_sub_accounts() {
    let cp = ControlPlane::sqlite().await;
    let (main, api, main_token) = cp.account("main").await;
    cp.create_user(main, "ops@example.com", "USER_ROLE_ACCOUNT_ADMIN")
        .await;
    let sub = cp
        .post("/v1/account-management/time-based-accounts")
        .token(&api)
        .json(
            json!({"accountName": "sub", "email": "ops@example.com", "maxDailyGB": 1,
                     "retentionDays": 5, "searchable": true, "accessible": true}),
        )
        .send()
        .await
        .expect_ok("sub-account");
    let (sub_id, sub_token) = (
        sub["accountId"].as_i64().unwrap(),
        sub["accountToken"].as_str().unwrap().to_string(),
    );
    let (other, _, other_token) = cp.account("other").await;
    let server = gateway(&cp, |_| {}).await;

    let (status, stream, _) = open(&server, "", &[("x-api-token", &api)]).await;
    assert_eq!(status, 200);
    let mut stream = stream.unwrap();
    ship(&server, &other_token, &[json!({"msg": "not yours"})]).await;
    ship(
        &server,
        &main_token,
        &[json!({"msg": "main", "env": "test"})],
    )
    .await;
    ship(&server, &sub_token, &[json!({"msg": "sub"})]).await;
    let first = stream
        .record(Duration::from_secs(5))
        .await
        .expect("main's record");
    assert_eq!(
        first,
        // The record as forwarded: the logs route adds `type` when the shipper did not.
        json!({"msg": "main", "env": "test", "type": "app",
               "_account_id": main, "_type": "app", "_kind": "logs"})
    );
    let second = stream
        .record(Duration::from_secs(5))
        .await
        .expect("sub's record");
    assert_eq!(second["_account_id"], sub_id);

    // `accountIds` narrows; outside the reach is a 403 naming the account.
    let (status, narrowed, _) = open(
        &server,
        &format!("accountIds={sub_id}"),
        &[("x-api-token", &api)],
    )
    .await;
    assert_eq!(status, 200);
    let mut narrowed = narrowed.unwrap();
    let (status, _, body) = open(
        &server,
        &format!("accountIds={sub_id},{other}"),
        &[("x-api-token", &api)],
    )
    .await;
    assert_eq!(status, 403);
    assert!(body.contains(&format!("account {other}")), "{body}");
    assert!(!body.contains(&api), "no credential in a body");

    // The sub-account made not searchable: it stops streaming within 2 s.
    cp.put(&format!(
        "/v1/account-management/time-based-accounts/{sub_id}"
    ))
    .token(&api)
    .json(
        json!({"accountName": "sub", "email": "ops@example.com", "maxDailyGB": 1,
                     "retentionDays": 5, "searchable": false, "accessible": true}),
    )
    .send()
    .await;
    // The stream has applied the change once it says what it shows now.
    let scope = stream.scope(PROPAGATION).await;
    assert!(
        !scope["accountIds"]
            .as_array()
            .expect("accountIds")
            .contains(&json!(sub_id)),
        "{scope}"
    );
    ship(&server, &sub_token, &[json!({"msg": "hidden now"})]).await;
    ship(&server, &main_token, &[json!({"msg": "still main"})]).await;
    let next = stream
        .record(Duration::from_secs(5))
        .await
        .expect("main still streams");
    assert_eq!(
        next["msg"], "still main",
        "the sub-account's record must not come first"
    );
    assert_eq!(narrowed.end(PROPAGATION * 2).await, "no longer granted");

    // Deleting the API token ends the stream.
    let tokens = cp
        .get("/v1/api-tokens")
        .token(&api)
        .send()
        .await
        .expect_ok("api tokens");
    let id = tokens[0]["id"].as_i64().unwrap();
    let (_, second_api_token) = {
        let created = cp
            .post("/v1/api-tokens")
            .token(&api)
            .json(json!({"name": "spare"}))
            .send()
            .await
            .expect_ok("spare");
        (
            created["id"].as_i64().unwrap(),
            created["token"].as_str().unwrap().to_string(),
        )
    };
    cp.delete(&format!("/v1/api-tokens/{id}"))
        .token(&second_api_token)
        .send()
        .await
        .expect_ok("delete");
    assert_eq!(stream.end(PROPAGATION * 2).await, "revoked");
    let (status, _, _) = open(&server, "", &[("x-api-token", &api)]).await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_token_reads_only_what_its_filters_allow() {
    let cp = ControlPlane::sqlite().await;
    let (account, api, token) = cp.account("acme").await;
    let env = filter(&cp, &api, "env", "test").await;
    let region = filter(&cp, &api, "kubernetes.region", "eu").await;
    let (and_id, and_token) = shared(&cp, &api, &[env, region], "AND", 3_600_000).await;
    let (_, or_token) = shared(&cp, &api, &[env, region], "OR", 3_600_000).await;
    let server = gateway(&cp, |_| {}).await;

    let (_, and_stream, _) = open(&server, &format!("token={and_token}"), &[]).await;
    let mut and_stream = and_stream.unwrap();
    // It opens by saying what it shows.
    let scope = and_stream.scope(Duration::from_secs(1)).await;
    assert_eq!(scope["accountIds"], json!([account]));
    assert_eq!(
        scope["filters"],
        json!([{"field": "env", "value": "test"}, {"field": "kubernetes.region", "value": "eu"}])
    );
    assert_eq!(scope["filtersOperator"], "AND");
    assert!(scope["expiresAt"].as_u64().unwrap() > 0, "{scope}");
    let (_, or_stream, _) = open(
        &server,
        "",
        &[("authorization", &format!("Bearer {or_token}"))],
    )
    .await;
    let mut or_stream = or_stream.unwrap();
    let (_, narrowed, _) = open(&server, &format!("token={or_token}&q=level:error"), &[]).await;
    let mut narrowed = narrowed.unwrap();
    ship(
        &server,
        &token,
        &[
            json!({"n": 1, "env": "test", "kubernetes": {"region": "us"}}),
            json!({"n": 2, "env": "prod", "kubernetes": {"region": "eu"}, "level": "error"}),
            json!({"n": 3, "env": "test", "kubernetes": {"region": "eu"}}),
            json!({"n": 4, "env": "prod", "kubernetes": {"region": "us"}, "level": "error"}),
        ],
    )
    .await;
    assert_eq!(
        and_stream.record(Duration::from_secs(5)).await.unwrap()["n"],
        3
    );
    for n in [1, 2, 3] {
        assert_eq!(
            or_stream.record(Duration::from_secs(5)).await.unwrap()["n"],
            n
        );
    }
    assert_eq!(
        narrowed.record(Duration::from_secs(5)).await.unwrap()["n"],
        2
    );
    assert!(
        or_stream.record(Duration::from_millis(300)).await.is_none(),
        "n=4 matches no filter"
    );

    // A shared token reads logs only, and only its own account.
    let (status, _, _) = open(&server, &format!("token={and_token}&kind=traces"), &[]).await;
    assert_eq!(status, 403);
    let (status, _, body) = open(
        &server,
        &format!("token={and_token}&accountIds={}", account + 1),
        &[],
    )
    .await;
    assert_eq!(status, 403, "{body}");

    // Editing its filters applies to the open stream within 2 s.
    cp.put(&format!("/v1/shared-tokens/{and_id}"))
        .token(&api)
        .json(json!({"filters": [env], "filtersOperator": "AND", "expirationDate": cp.now_ms() + 3_600_000}))
        .send()
        .await
        .expect_ok("edit");
    let scope = and_stream.scope(PROPAGATION).await;
    assert_eq!(scope["filters"], json!([{"field": "env", "value": "test"}]));
    ship(
        &server,
        &token,
        &[json!({"n": 5, "env": "test", "kubernetes": {"region": "us"}})],
    )
    .await;
    assert_eq!(
        and_stream.record(Duration::from_secs(5)).await.unwrap()["n"],
        5
    );

    // Deleting it ends the stream.
    cp.delete(&format!("/v1/shared-tokens/{and_id}"))
        .token(&api)
        .send()
        .await;
    assert_eq!(and_stream.end(PROPAGATION * 2).await, "revoked");
    let (status, _, _) = open(&server, &format!("token={and_token}"), &[]).await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_shared_token_is_refused_and_an_open_stream_ends_at_expiry() {
    let cp = ControlPlane::sqlite().await;
    let (_, api, _) = cp.account("acme").await;
    let (_, soon) = shared(&cp, &api, &[], "AND", 1_500).await;
    let server = gateway(&cp, |_| {}).await;
    let (status, stream, _) = open(&server, &format!("token={soon}"), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(stream.unwrap().end(Duration::from_secs(4)).await, "expired");
    let (status, _, body) = open(&server, &format!("token={soon}"), &[]).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("expired"), "{body}");
    assert!(
        server
            .metric(r#"tollgate_tail_refused_total{reason="expired"}"#)
            .await
            >= 1.0
    );
}

/// Records keep coming up to and past a shared token's expiry: none sent after the
/// instant is shown (each batch is checked against it, not only a periodic re-check).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_sent_after_a_shared_tokens_expiry_is_shown() {
    let cp = ControlPlane::sqlite().await;
    let (_, api, token) = cp.account("acme").await;
    let (_, soon) = shared(&cp, &api, &[], "AND", 1_500).await;
    let server = gateway(&cp, |_| {}).await;
    let (status, stream, _) = open(&server, &format!("token={soon}"), &[]).await;
    assert_eq!(status, 200);
    let mut stream = stream.unwrap();
    let scope = stream.scope(Duration::from_secs(5)).await;
    let expires_at = scope["expiresAt"]
        .as_i64()
        .expect("the stream says when it expires");
    let shipping = {
        let server = &server;
        async move {
            let mut seq = 0;
            while cp.now_ms() < expires_at + 1_000 {
                seq += 1;
                ship(
                    server,
                    &token,
                    &[json!({"seq": seq, "sent_ms": cp.now_ms()})],
                )
                .await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            seq
        }
    };
    let reading = async {
        let mut shown = Vec::new();
        let reason = loop {
            match stream.next(Duration::from_secs(5)).await {
                Some(Event::Record(r)) => shown.push(r),
                Some(Event::Named(name, data)) if name == "end" => {
                    break data["reason"].as_str().unwrap().to_string();
                }
                Some(Event::Named(..)) => {}
                None => panic!("no end event"),
            }
        };
        (shown, reason)
    };
    let (sent, (shown, reason)) = tokio::join!(shipping, reading);
    assert_eq!(reason, "expired");
    assert!(sent > 0 && !shown.is_empty(), "records flowed: {sent} sent");
    let late: Vec<&Value> = shown
        .iter()
        .filter(|r| r["sent_ms"].as_i64().unwrap() >= expires_at)
        .collect();
    assert!(late.is_empty(), "shown after the expiry: {late:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_caps_and_slow_readers() {
    let cp = ControlPlane::sqlite().await;
    let (_, api, token) = cp.account("acme").await;
    let server = gateway(&cp, |c| {
        c.tail.max_per_account = 2;
        c.tail.buffer_records = 4;
        c.tail.max_behind_secs = Duration::from_secs(1);
    })
    .await;
    for (query, headers, status) in [
        ("", vec![], 401),
        ("token=not-a-token", vec![], 401),
        ("kind=spans", vec![("x-api-token", api.as_str())], 400),
        ("q=novalue", vec![("x-api-token", api.as_str())], 400),
        ("accountIds=x", vec![("x-api-token", api.as_str())], 400),
    ] {
        let (got, _, body) = open(&server, query, &headers).await;
        assert_eq!(got.as_u16(), status, "{query}: {body}");
        assert!(
            !body.contains("not-a-token") && !body.contains(&api),
            "{body}"
        );
        assert!(
            serde_json::from_str::<Value>(&body).unwrap()["error"].is_string(),
            "{body}"
        );
    }
    // Two tails per account here; the third is 503 with Retry-After.
    let (_, slow, _) = open(&server, "", &[("x-api-token", &api)]).await;
    let (_, second, _) = open(&server, "", &[("x-api-token", &api)]).await;
    let (status, _, body) = open(&server, "", &[("x-api-token", &api)]).await;
    assert_eq!(status, 503, "{body}");
    drop(second);
    common::eventually(Duration::from_secs(5), || async {
        server.metric("tollgate_tail_subscribers").await == 1.0
    })
    .await;
    // A reader that never reads: ingest keeps answering 200 while the tail loses records,
    // and once its buffer has stayed full for `max_behind_secs` it is disconnected.
    let _slow = slow.unwrap();
    let line = json!({"pad": "x".repeat(10_000)});
    let batch: Vec<Value> = (0..100).map(|_| line.clone()).collect();
    let started = std::time::Instant::now();
    while server.metric("tollgate_tail_subscribers").await != 0.0 {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "a reader that stays behind is disconnected"
        );
        ship(&server, &token, &batch).await;
    }
    assert!(server.metric("tollgate_tail_dropped_total").await > 0.0);
    // Its place is free again.
    let (status, _, _) = open(&server, "", &[("x-api-token", &api)]).await;
    assert_eq!(status, 200);
    // No credential in any metric's name or label.
    let metrics = server.get_admin("/metrics").await.body;
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(metrics.contains("tollgate_tail_refused_total"));
    assert!(!metrics.contains(&api) && !metrics.contains("not-a-token"));
}

/// A trial's end stops its API token from reading: an open stream ends at that instant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_trial_ends_the_api_tokens_stream() {
    let cp = ControlPlane::sqlite().await;
    let ends_at = cp.now_ms() / 1000 + 2;
    let trial = cp
        .create_account(
            json!({"accountName": "trial", "plan": "community", "trialEndsAt": ends_at}),
        )
        .await;
    let api = trial["apiToken"].as_str().unwrap().to_string();
    let server = gateway(&cp, |_| {}).await;
    let (status, stream, body) = open(&server, "", &[("x-api-token", &api)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        stream.unwrap().end(Duration::from_secs(5)).await,
        "not usable"
    );
    let (status, _, body) = open(&server, "", &[("x-api-token", &api)]).await;
    assert_eq!(status, 403, "{body}");
}

/// `Accept: application/x-ndjson`: the same stream, one JSON value per line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ndjson_frames_scope_records_and_end_as_lines() {
    let cp = ControlPlane::sqlite().await;
    let (account, api, token) = cp.account("acme").await;
    let env = filter(&cp, &api, "env", "prod").await;
    let (id, secret) = shared(&cp, &api, &[env], "OR", 3_600_000).await;
    let server = gateway(&cp, |_| {}).await;
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let res = client
        .request(
            Request::get(server.url("/v1/tail"))
                .header("authorization", format!("Bearer {secret}"))
                .header("accept", "application/x-ndjson")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/x-ndjson");
    let mut body = res.into_body();
    let mut text = String::new();
    let mut lines = Vec::new();
    let mut next_line = async || -> Value {
        loop {
            if let Some(end) = text.find('\n') {
                let line: String = text.drain(..=end).collect();
                if !line.trim().is_empty() {
                    return serde_json::from_str(&line).expect("each line is JSON");
                }
                continue;
            }
            let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
                .await
                .expect("a line within 5 s")
                .expect("the stream is open")
                .unwrap();
            text.push_str(std::str::from_utf8(&frame.into_data().unwrap()).unwrap());
        }
    };
    lines.push(next_line().await);
    ship(
        &server,
        &token,
        &[json!({"env": "dev"}), json!({"env": "prod", "n": 1})],
    )
    .await;
    lines.push(next_line().await);
    // Its use moves the shared token's `lastUsed` (through the gateway's usage report).
    common::eventually(Duration::from_secs(5), || async {
        let read = cp
            .get(&format!("/v1/shared-tokens/{id}"))
            .token(&api)
            .send()
            .await
            .expect_ok("read");
        read["lastUsed"].as_i64().is_some()
    })
    .await;
    cp.delete(&format!("/v1/shared-tokens/{id}"))
        .token(&api)
        .send()
        .await;
    lines.push(next_line().await);
    assert_eq!(
        lines,
        [
            json!({"_scope": {"accountIds": [account], "filters": [{"field": "env", "value": "prod"}],
                              "filtersOperator": "OR", "q": [], "expiresAt": lines[0]["_scope"]["expiresAt"]}}),
            json!({"env": "prod", "n": 1, "type": "app", "_account_id": account, "_type": "app", "_kind": "logs"}),
            json!({"_end": "revoked"}),
        ]
    );
    assert!(lines[0]["_scope"]["expiresAt"].as_u64().is_some());
}

/// `[tail] source = "kafka"`: two gateways write to one broker; a tail on one of them shows
/// what either accepted, each record once, and a gateway nobody tails reads nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kafka_source_shows_what_every_gateway_ingested() {
    let Some(broker) = kafka::start("a_kafka_source_shows_what_every_gateway_ingested") else {
        return;
    };
    let cp = ControlPlane::sqlite().await;
    let (account, api, token) = cp.account("acme").await;
    let (_, _, other_token) = cp.account("other").await;
    let through_kafka = |c: &mut Config| {
        c.sink = broker.sink();
        c.tail.source = TailSource::Kafka;
    };
    let tailed = gateway(&cp, through_kafka).await;
    let other = gateway(&cp, through_kafka).await;

    let (status, stream, _) = open(&tailed, "", &[("x-api-token", &api)]).await;
    assert_eq!(status, 200);
    let mut stream = stream.unwrap();
    // The consumer starts with the first tail; it reads from the topics' end once assigned.
    common::eventually(Duration::from_secs(20), || async {
        tailed.metric("tollgate_tail_kafka_partitions").await > 0.0
    })
    .await;
    ship(&other, &other_token, &[json!({"n": 0})]).await;
    ship(&other, &token, &[json!({"n": 1, "via": "other"})]).await;
    ship(&tailed, &token, &[json!({"n": 2, "via": "tailed"})]).await;
    let mut seen = Vec::new();
    for _ in 0..2 {
        let record = stream
            .record(Duration::from_secs(10))
            .await
            .expect("a record through Kafka");
        assert_eq!(record["_account_id"], account);
        seen.push(record["n"].as_i64().unwrap());
    }
    seen.sort_unstable();
    assert_eq!(seen, [1, 2], "each gateway's record, once");
    assert!(
        stream.record(Duration::from_millis(700)).await.is_none(),
        "no second copy of the tailed gateway's own record, nothing of another account"
    );
    assert_eq!(
        other.metric("tollgate_tail_kafka_partitions").await,
        0.0,
        "a gateway nobody tails reads nothing"
    );
}

/// The page a shared link opens: static, strict about what it loads, holding no secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_tail_page_is_static_and_strict() {
    let cp = ControlPlane::sqlite().await;
    let server = gateway(&cp, |_| {}).await;
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let get = |path: &str, method: http::Method| {
        client.request(
            Request::builder()
                .method(method)
                .uri(server.url(path))
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
    };
    for (path, content_type, holds) in [
        ("/tail", "text/html; charset=utf-8", "Live tail"),
        (
            "/tail/tail.js",
            "text/javascript; charset=utf-8",
            "location.hash",
        ),
        ("/tail/tail.css", "text/css; charset=utf-8", ".records"),
    ] {
        let res = get(path, http::Method::GET).await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let headers = res.headers().clone();
        assert_eq!(headers["content-type"], content_type, "{path}");
        let policy = headers["content-security-policy"].to_str().unwrap();
        assert!(policy.contains("default-src 'none'") && policy.contains("script-src 'self'"));
        assert_eq!(headers["referrer-policy"], "no-referrer");
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert!(String::from_utf8_lossy(&body).contains(holds), "{path}");
    }
    let res = get("/tail/other.js", http::Method::GET).await.unwrap();
    assert_eq!(res.status(), 404);
    let res = get("/tail", http::Method::POST).await.unwrap();
    assert_eq!(res.status(), 405);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert!(serde_json::from_slice::<Value>(&body).unwrap()["error"].is_string());
}
