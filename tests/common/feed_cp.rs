//! A real control plane for the gateway's `control_plane` token source tests:
//! `tollgate::control::serve_with` on 127.0.0.1 with a SQLite file in a temporary
//! directory, stoppable and restartable on the same address (so a gateway pointed at it
//! sees an outage and a comeback), or restarted on a fresh database (so the gateway's feed
//! version is "newer than current": 410). `control.rs` is the API tests' harness; this one
//! differs in keeping its address across restarts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tollgate::config::{Config, ControlPlaneConfig, TokenSourceKind};

pub const ADMIN_SECRET: &str = "test-admin-secret-000000001";
pub const FEED_SECRET: &str = "test-feed-secret-0000000001";

pub struct ControlPlane {
    pub addr: SocketAddr,
    /// Holds `control.db`; kept across restarts unless `restart_fresh` is used.
    pub dir: PathBuf,
    client: Client<HttpConnector, Full<Bytes>>,
    running: Option<(CancellationToken, JoinHandle<()>)>,
    /// What every (re)start serves with, but the address and the database.
    config: ControlPlaneConfig,
}

impl ControlPlane {
    /// Starts on a free port with a new database.
    pub async fn start() -> ControlPlane {
        Self::start_with(|_| {}).await
    }

    /// Starts with config changes (e.g. a short feed retention) kept across restarts.
    pub async fn start_with(configure: impl FnOnce(&mut ControlPlaneConfig)) -> ControlPlane {
        let dir = tempfile::tempdir().expect("tempdir").keep();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let mut config = ControlPlaneConfig {
            admin_secret: Some(ADMIN_SECRET.into()),
            feed_secret: Some(FEED_SECRET.into()),
            ..ControlPlaneConfig::default()
        };
        configure(&mut config);
        let mut cp = ControlPlane {
            addr: listener.local_addr().expect("addr"),
            dir,
            client: Client::builder(TokioExecutor::new()).build_http(),
            running: None,
            config,
        };
        cp.serve(listener).await;
        cp
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    async fn serve(&mut self, listener: TcpListener) {
        let config = ControlPlaneConfig {
            listen: self.addr,
            database_url: format!("sqlite://{}/control.db", self.dir.display()),
            ..self.config.clone()
        };
        let stop = CancellationToken::new();
        // Opened here, not in the task, so the store is migrated before we return.
        let cp = tollgate::control::ControlPlane::open(&config)
            .await
            .expect("open the control plane's store");
        let task = tokio::spawn({
            let stop = stop.clone();
            async move {
                tollgate::control::serve_with(cp, listener, stop)
                    .await
                    .expect("control plane serves");
            }
        });
        self.running = Some((stop, task));
    }

    /// Stops serving and waits until the listener is closed.
    pub async fn stop(&mut self) {
        if let Some((stop, task)) = self.running.take() {
            stop.cancel();
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("control plane stops within 10 s")
                .expect("control plane task");
        }
    }

    /// Serves again on the same address, with the same database.
    pub async fn restart(&mut self) {
        self.stop().await;
        let listener = TcpListener::bind(self.addr)
            .await
            .expect("rebind the control plane's address");
        self.serve(listener).await;
    }

    /// Serves again on the same address with an empty database.
    pub async fn restart_fresh(&mut self) {
        self.stop().await;
        self.dir = tempfile::tempdir().expect("tempdir").keep();
        let listener = TcpListener::bind(self.addr)
            .await
            .expect("rebind the control plane's address");
        self.serve(listener).await;
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        auth: (&str, &str),
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.url()))
            .header(auth.0, auth.1);
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let res = self
            .client
            .request(req.body(Full::new(Bytes::from(body))).expect("request"))
            .await
            .expect("the control plane answers");
        let status = res.status();
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// A feed call with the feed secret.
    pub async fn feed(&self, path: &str) -> (StatusCode, Value) {
        let auth = format!("Bearer {FEED_SECRET}");
        self.call(Method::GET, path, ("authorization", &auth), None)
            .await
    }

    /// A pro main logs account: (account id, API token, its first shipping token).
    pub async fn account(&self, name: &str) -> (i64, String, String) {
        let (status, body) = self
            .call(
                Method::POST,
                "/v1/admin/accounts",
                ("authorization", &format!("Bearer {ADMIN_SECRET}")),
                Some(json!({"accountName": name, "plan": "pro", "type": "logs"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        (
            body["accountId"].as_i64().expect("accountId"),
            body["apiToken"].as_str().expect("apiToken").to_string(),
            body["accountToken"]
                .as_str()
                .expect("accountToken")
                .to_string(),
        )
    }

    /// A management API call with `X-API-TOKEN`; asserts a 2xx answer.
    pub async fn api(&self, method: Method, path: &str, api: &str, body: Option<Value>) -> Value {
        let (status, value) = self
            .call(method.clone(), path, ("x-api-token", api), body)
            .await;
        assert!(status.is_success(), "{method} {path}: {status} {value}");
        value
    }

    /// Creates a log shipping token: (id, token).
    pub async fn create_token(&self, api: &str, name: &str) -> (i64, String) {
        let t = self
            .api(
                Method::POST,
                "/v1/log-shipping/tokens",
                api,
                Some(json!({"name": name})),
            )
            .await;
        (
            t["id"].as_i64().expect("id"),
            t["token"].as_str().expect("token").to_string(),
        )
    }

    pub async fn set_enabled(&self, api: &str, id: i64, name: &str, enabled: bool) {
        self.api(
            Method::PUT,
            &format!("/v1/log-shipping/tokens/{id}"),
            api,
            Some(json!({"name": name, "enabled": enabled})),
        )
        .await;
    }

    /// The control plane's `/metrics` text.
    pub async fn metrics(&self) -> String {
        let res = self
            .client
            .get(format!("{}/metrics", self.url()).parse().expect("uri"))
            .await
            .expect("metrics answer");
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        String::from_utf8(bytes.to_vec()).expect("utf-8 metrics")
    }

    /// The feed version the control plane serves now.
    pub async fn feed_version(&self) -> u64 {
        let (status, snap) = self
            .call(
                Method::GET,
                "/v1/feed/snapshot",
                ("authorization", &format!("Bearer {FEED_SECRET}")),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{snap}");
        snap["version"].as_u64().expect("version")
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        if let Some((stop, _)) = self.running.take() {
            stop.cancel();
        }
    }
}

/// Points a gateway config at `cp` with timings short enough for tests: quick reconnects,
/// frequent persists and usage flushes.
pub fn use_control_plane(config: &mut Config, url: &str) {
    let t = &mut config.tokens;
    t.source = TokenSourceKind::ControlPlane;
    t.url = Some(url.to_string());
    t.feed_secret = Some(FEED_SECRET.to_string());
    t.poll_wait_secs = Duration::from_secs(10);
    t.request_timeout_secs = Duration::from_secs(5);
    t.backoff_initial_secs = Duration::from_millis(20);
    t.backoff_max_secs = Duration::from_millis(300);
    t.persist_interval_secs = Duration::from_millis(100);
    t.usage_flush_interval_secs = Duration::from_millis(200);
}
