//! The control plane's side of the feed (DESIGN §4 "Feed for gateways"), through the real
//! HTTP API on 127.0.0.1:0 with a SQLite store: long polls wake on a commit, deletions
//! travel as tombstones, a `since` past the retention window is 410, lookups and usage
//! reports work, and the secret is enforced.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tollgate::tokens::Digest;

use common::control::{ADMIN_SECRET as ADMIN, ControlPlane as Cp, FEED_SECRET as FEED};

async fn start(retained_versions: u64) -> Cp {
    Cp::sqlite_with(|c| c.feed_retained_versions = retained_versions).await
}

fn digest(token: &str) -> String {
    Digest::of(token).to_hex()
}

#[tokio::test]
async fn snapshot_carries_digests_only_and_changes_follow_every_commit() {
    let cp = start(1000).await;
    let (account, api, first) = cp.account("acme").await;

    let (status, snap) = cp.feed("/v1/feed/snapshot").await;
    assert_eq!(status, StatusCode::OK);
    let text = snap.to_string();
    assert!(!text.contains(&first), "the feed must never carry a token");
    let tokens = snap["tokens"].as_array().expect("tokens");
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0]["digest"], digest(&first));
    assert_eq!(tokens[0]["account_id"], account);
    assert_eq!(tokens[0]["account_name"], "acme");
    assert_eq!(tokens[0]["kind"], "logs");
    let v0 = snap["version"].as_u64().expect("version");

    // A long poll started before the change answers soon after the commit.
    let waiter = {
        let base = cp.url();
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        tokio::spawn(async move {
            let req = Request::get(format!("{base}/v1/feed/changes?since={v0}&wait=30"))
                .header("authorization", format!("Bearer {FEED}"))
                .body(Full::new(Bytes::new()))
                .expect("request");
            let res = client.request(req).await.expect("answer");
            let at = Instant::now();
            let bytes = res.into_body().collect().await.expect("body").to_bytes();
            (at, serde_json::from_slice::<Value>(&bytes).expect("json"))
        })
    };
    cp.wait_for_long_polls(1).await;
    let committed = Instant::now();
    let (status, created) = cp
        .call(
            Method::POST,
            "/v1/log-shipping/tokens",
            ("x-api-token", &api),
            Some(json!({"name": "second"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let (answered, changes) = waiter.await.expect("poll task");
    assert!(
        answered.duration_since(committed) < Duration::from_secs(1),
        "the long poll should wake on the commit, took {:?}",
        answered.duration_since(committed)
    );
    let second = created["token"].as_str().expect("token");
    let upserts = changes["upserts"].as_array().expect("upserts");
    assert_eq!(upserts.len(), 1, "{changes}");
    assert_eq!(upserts[0]["digest"], digest(second));
    assert_eq!(upserts[0]["enabled"], true);
    let v1 = changes["version"].as_u64().expect("version");
    assert!(v1 > v0);

    // Disable, then delete: an upsert with enabled=false, then a tombstone.
    let id = created["id"].as_i64().expect("id");
    let (status, _) = cp
        .call(
            Method::PUT,
            &format!("/v1/log-shipping/tokens/{id}"),
            ("x-api-token", &api),
            Some(json!({"enabled": "false"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, changes) = cp
        .feed(&format!("/v1/feed/changes?since={v1}&wait=0"))
        .await;
    assert_eq!(changes["upserts"][0]["enabled"], false, "{changes}");
    let v2 = changes["version"].as_u64().expect("version");
    let (status, _) = cp
        .call(
            Method::DELETE,
            &format!("/v1/log-shipping/tokens/{id}"),
            ("x-api-token", &api),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, changes) = cp
        .feed(&format!("/v1/feed/changes?since={v2}&wait=0"))
        .await;
    assert_eq!(changes["deletes"], json!([digest(second)]), "{changes}");
    assert_eq!(changes["upserts"], json!([]));

    // Nothing new: an empty answer at the same version after the wait.
    let v3 = changes["version"].as_u64().expect("version");
    let (status, idle) = cp
        .feed(&format!("/v1/feed/changes?since={v3}&wait=0"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(idle, json!({"version": v3, "upserts": [], "deletes": []}));
    cp.stop().await;
}

#[tokio::test]
async fn a_since_older_than_the_retained_tombstones_is_410() {
    let cp = start(2).await;
    let (_, api, _) = cp.account("acme").await;
    let (_, snap) = cp.feed("/v1/feed/snapshot").await;
    let v0 = snap["version"].as_u64().expect("version");
    for i in 0..3 {
        let (_, t) = cp
            .call(
                Method::POST,
                "/v1/log-shipping/tokens",
                ("x-api-token", &api),
                Some(json!({"name": format!("t{i}")})),
            )
            .await;
        let id = t["id"].as_i64().expect("id");
        let (status, _) = cp
            .call(
                Method::DELETE,
                &format!("/v1/log-shipping/tokens/{id}"),
                ("x-api-token", &api),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, body) = cp
        .feed(&format!("/v1/feed/changes?since={v0}&wait=0"))
        .await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert_eq!(body["errorCode"], "feed/VERSION_GONE");
    // A version the control plane never had (its database was reset) is also 410.
    let (status, _) = cp.feed("/v1/feed/changes?since=999999&wait=0").await;
    assert_eq!(status, StatusCode::GONE);
    // The snapshot is always there to start over from.
    let (status, snap) = cp.feed("/v1/feed/snapshot").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(snap["tokens"].as_array().expect("tokens").len(), 1);
    cp.stop().await;
}

#[tokio::test]
async fn feed_refuses_a_wrong_secret_and_bad_parameters() {
    let cp = start(1000).await;
    let (status, body) = cp
        .call(
            Method::GET,
            "/v1/feed/snapshot",
            ("authorization", "Bearer wrong-secret-000000"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["errorCode"], "feed/UNAUTHORIZED");
    assert!(body["requestId"].is_string());
    for path in [
        "/v1/feed/changes",
        "/v1/feed/changes?since=abc",
        "/v1/feed/changes?since=0&wait=61",
        "/v1/feed/tokens/not-hex",
    ] {
        let (status, body) = cp.feed(path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["errorCode"], "feed/BAD_REQUEST", "{path}");
    }
    cp.stop().await;
}

#[tokio::test]
async fn lookups_and_usage_reports_reach_the_token_listing() {
    let cp = start(1000).await;
    let (account, api, first) = cp.account("acme").await;
    let (status, entry) = cp
        .feed(&format!("/v1/feed/tokens/{}", digest(&first)))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(entry["account_id"], account);
    let token_id = entry["token_id"].as_str().expect("token_id").to_string();
    let (status, body) = cp
        .feed(&format!(
            "/v1/feed/tokens/{}",
            digest("noSuchToken000000000000000001")
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["errorCode"], "feed/UNKNOWN_TOKEN");

    let report = |last_used: i64| {
        json!({"tokens": [{"token_id": token_id, "last_used": last_used}],
               "accounts": [{"account_id": account, "kind": "logs", "bytes": 100, "records": 2}]})
    };
    let feed_auth = ("authorization", format!("Bearer {FEED}"));
    for at in [1_800_000_000, 1_700_000_000] {
        let (status, _) = cp
            .call(
                Method::POST,
                "/v1/feed/usage",
                (feed_auth.0, &feed_auth.1),
                Some(report(at)),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    let (_, listed) = cp
        .call(
            Method::GET,
            &format!("/v1/log-shipping/tokens/{token_id}"),
            ("x-api-token", &api),
            None,
        )
        .await;
    assert_eq!(
        listed["lastUsed"], 1_800_000_000,
        "last-used only moves forward: {listed}"
    );

    let text = cp.metrics().await;
    assert_eq!(
        common::metric_value(
            &text,
            "tollgate_control_feed_lookups_total{result=\"found\"}"
        ),
        1.0
    );
    assert_eq!(
        common::metric_value(
            &text,
            "tollgate_control_feed_lookups_total{result=\"not_found\"}"
        ),
        1.0
    );
    assert!(
        text.contains("tollgate_control_requests_total{code=\"204\",route=\"/v1/feed/usage\"} 2"),
        "{text}"
    );
    assert!(!text.contains(&first), "no token in metrics");
    cp.stop().await;
}

/// `tollgate control-plane` as a process: it logs its address, serves, and exits 0 on
/// SIGTERM at once even while a gateway's long poll is waiting.
#[tokio::test]
async fn control_plane_binary_serves_and_stops_promptly_with_a_long_poll_waiting() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("cp.toml");
    std::fs::write(
        &config,
        format!(
            "[control_plane]\nlisten = \"127.0.0.1:0\"\ndatabase_url = \"sqlite://{}/control.db\"\n\
             admin_secret = \"{ADMIN}\"\nfeed_secret = \"{FEED}\"\n",
            dir.path().display()
        ),
    )
    .expect("write config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["control-plane", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tollgate starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line.split("control plane listening addr=").nth(1) {
                let _ = tx.send(
                    addr.split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string(),
                );
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("a `control plane listening addr=` line");
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let health = client
        .get(format!("http://{addr}/healthz").parse().expect("uri"))
        .await
        .expect("healthz answers");
    assert_eq!(health.status(), StatusCode::OK);

    let poll = {
        let client = client.clone();
        let uri = format!("http://{addr}/v1/feed/changes?since=0&wait=60");
        tokio::spawn(async move {
            let req = Request::get(uri)
                .header("authorization", format!("Bearer {FEED}"))
                .body(Full::new(Bytes::new()))
                .expect("request");
            client.request(req).await.map(|r| r.status())
        })
    };
    common::control::wait_for_long_polls(&format!("http://{addr}"), 1).await;
    let signalled = Instant::now();
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(ok.success());
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(10),
            "the control plane did not exit within 10 s of SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status:?}");
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "a waiting long poll must not hold shutdown for its whole wait: {:?}",
        signalled.elapsed()
    );
    let answered = poll
        .await
        .expect("poll task")
        .expect("the long poll got an answer");
    assert_eq!(answered, StatusCode::OK);
}
