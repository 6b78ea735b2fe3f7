//! Test harness: starts the real gateway (`app::run`) on listeners bound to `127.0.0.1:0`,
//! in a temporary directory with its own token file, state dir and file sink, and talks
//! HTTP to it with a real client.
#![allow(dead_code)] // each test binary uses a different part of the harness

/// Runs each listed body (`async fn name(backend: Backend, test: &str)`) once against
/// SQLite and once against PostgreSQL, as `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Sqlite, concat!("sqlite::", stringify!($name))).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Postgres, concat!("postgres::", stringify!($name))).await;
                }
            )*
        }
    };
}

pub mod clients;
pub mod control;
pub mod crash;
pub mod kafka;
pub mod page;
pub mod process;
pub mod redis;
pub mod volume;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tollgate::app::{self, Listeners};
use tollgate::clock::Clock;
use tollgate::config::Config;

pub const LOGS_TOKEN: &str = "testLogsToken00000000000000001";
pub const DISABLED_TOKEN: &str = "testDisabledToken0000000000002";
pub const METRICS_TOKEN: &str = "testMetricsToken00000000000003";
pub const OTHER_ACCOUNT_TOKEN: &str = "testOtherAccount00000000000004";
pub const TRACES_TOKEN: &str = "testTracesToken000000000000005";
pub const UNKNOWN_TOKEN: &str = "testUnknownToken00000000000099";
pub const ALL_TOKENS: [&str; 6] = [
    LOGS_TOKEN,
    DISABLED_TOKEN,
    METRICS_TOKEN,
    OTHER_ACCOUNT_TOKEN,
    TRACES_TOKEN,
    UNKNOWN_TOKEN,
];

/// The token file every test server starts with.
pub fn tokens_json(version: u64, logs_token_enabled: bool) -> String {
    serde_json::json!({
        "version": version,
        "tokens": [
            {"token": LOGS_TOKEN, "token_id": "t-logs-1", "account_id": 1001,
             "account_name": "acme", "kind": "logs", "enabled": logs_token_enabled},
            {"token": DISABLED_TOKEN, "token_id": "t-logs-2", "account_id": 1001,
             "account_name": "acme", "kind": "logs", "enabled": false},
            {"token": METRICS_TOKEN, "token_id": "t-metrics-1", "account_id": 1001,
             "account_name": "acme", "kind": "metrics", "enabled": true},
            {"token": OTHER_ACCOUNT_TOKEN, "token_id": "t-logs-3", "account_id": 2002,
             "account_name": "globex", "kind": "logs", "enabled": true},
            {"token": TRACES_TOKEN, "token_id": "t-traces-1", "account_id": 1001,
             "account_name": "acme", "kind": "traces", "enabled": true},
        ]
    })
    .to_string()
}

/// A config for a test server rooted at `dir`: small batch age so records reach the sink
/// quickly, everything else at its default.
pub fn test_config(dir: &Path) -> Config {
    let text = format!(
        r#"
        [server]
        listen = "127.0.0.1:0"
        admin_listen = "127.0.0.1:0"
        [tokens]
        path = "{dir}/tokens.json"
        state_dir = "{dir}/state"
        watch_interval_secs = 0.05
        [forward]
        ack = "disk"
        spool_dir = "{dir}/spool"
        max_batch_age_secs = 0.01
        [sink]
        type = "file"
        path = "{dir}/out"
        "#,
        dir = dir.display()
    );
    Config::parse(&text, Vec::new()).expect("test config parses")
}

/// A test server's directory (token file, state, spool, file sink): a temporary one,
/// removed when its owner drops it. A running `TestServer` owns it; `shutdown` hands it
/// back, still there, for a restart over the same state or a look at what was written.
pub struct ServerDir(TempDir);

impl ServerDir {
    pub fn new() -> ServerDir {
        ServerDir(tempfile::tempdir().expect("tempdir"))
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Default for ServerDir {
    fn default() -> Self {
        Self::new()
    }
}

impl std::ops::Deref for ServerDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        self.0.path()
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub dir: PathBuf,
    /// Owns `dir`: removed once the server has stopped (see `Drop`).
    owned_dir: Option<ServerDir>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), app::AppError>>>,
    client: Client<HttpConnector, Full<Bytes>>,
    /// The server's clock: a test turns the UTC day with `clock.advance`.
    pub clock: Clock,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

impl TestServer {
    /// Starts a server in a fresh temporary directory with the standard token file.
    pub async fn start(configure: impl FnOnce(&mut Config)) -> TestServer {
        let public = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::start_on(public, configure).await
    }

    /// Starts a server in `dir` as it is (for restarts over the same state).
    pub async fn start_in(dir: ServerDir, configure: impl FnOnce(&mut Config)) -> TestServer {
        let public = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::run(dir, public, configure).await
    }

    /// Starts a server like `start`, on `public`, bound beforehand: for a test that must
    /// tell something else the address first (a control plane's `gateway_url`).
    pub async fn start_on(public: TcpListener, configure: impl FnOnce(&mut Config)) -> TestServer {
        let dir = ServerDir::new();
        std::fs::write(dir.join("tokens.json"), tokens_json(1, true)).unwrap();
        Self::run(dir, public, configure).await
    }

    async fn run(
        dir: ServerDir,
        public: TcpListener,
        configure: impl FnOnce(&mut Config),
    ) -> TestServer {
        let mut config = test_config(&dir);
        configure(&mut config);
        let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = public.local_addr().unwrap();
        let admin_addr = admin.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let clock = Clock::system();
        let task = tokio::spawn(app::run(
            config,
            Listeners {
                public,
                admin,
                control: None,
                clock: clock.clone(),
            },
            async {
                let _ = stopped.await;
            },
        ));
        let mut server = TestServer {
            addr,
            admin: admin_addr,
            dir: dir.to_path_buf(),
            owned_dir: Some(dir),
            stop: Some(stop),
            task: Some(task),
            client: Client::builder(TokioExecutor::new()).build_http(),
            clock,
        };
        server.wait_started().await;
        server
    }

    /// Waits for the `/healthz` answer; a server that failed to start panics with its error.
    async fn wait_started(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.task.as_ref().is_some_and(|t| t.is_finished()) {
                let result = self.task.take().expect("checked just above").await;
                panic!("server exited at startup: {result:?}");
            }
            let up = tokio::time::timeout(
                Duration::from_secs(1),
                self.client
                    .get(format!("http://{}/healthz", self.admin).parse().unwrap()),
            )
            .await;
            if matches!(up, Ok(Ok(r)) if r.status() == StatusCode::OK) {
                return;
            }
            assert!(Instant::now() < deadline, "admin listener never came up");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{}", self.addr, path_and_query)
    }

    pub async fn request(&self, req: Request<Full<Bytes>>) -> Reply {
        let res = self.client.request(req).await.expect("request failed");
        let (parts, body) = res.into_parts();
        let body = body.collect().await.expect("response body").to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// POSTs `body` to the logs route with `?token=` (when given) and extra query.
    pub async fn post_logs(
        &self,
        token: Option<&str>,
        query: &str,
        body: impl Into<Bytes>,
    ) -> Reply {
        let mut pq = String::from("/?");
        if let Some(t) = token {
            pq.push_str("token=");
            pq.push_str(t);
            pq.push('&');
        }
        pq.push_str(query);
        self.request(
            Request::post(self.url(&pq))
                .body(Full::new(body.into()))
                .unwrap(),
        )
        .await
    }

    /// POSTs `body` to `path` with a bearer token (when given) and extra headers.
    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        let mut req = Request::post(self.url(path));
        if let Some(t) = token {
            req = req.header(http::header::AUTHORIZATION, format!("Bearer {t}"));
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        self.request(req.body(Full::new(body.into())).unwrap())
            .await
    }

    /// POSTs `write` to `/api/v1/write` as Prometheus does: protobuf, snappy-compressed.
    pub async fn post_remote_write(
        &self,
        token: &str,
        write: &tollgate::proto::prometheus::WriteRequest,
    ) -> Reply {
        use prost::Message;
        let body = snap::raw::Encoder::new()
            .compress_vec(&write.encode_to_vec())
            .unwrap();
        let headers = [
            ("content-type", "application/x-protobuf"),
            ("content-encoding", "snappy"),
        ];
        self.post("/api/v1/write", Some(token), &headers, body)
            .await
    }

    pub async fn get_admin(&self, path: &str) -> Reply {
        self.request(
            Request::get(format!("http://{}{}", self.admin, path))
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
    }

    /// The value of one sample on `/metrics`, 0 when absent (counters not yet touched).
    pub async fn metric(&self, sample: &str) -> f64 {
        let text = String::from_utf8(self.get_admin("/metrics").await.body.to_vec()).unwrap();
        metric_value(&text, sample)
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.get_admin("/readyz").await.status != StatusCode::OK {
            assert!(Instant::now() < deadline, "never became ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the server the way SIGTERM does, waits for it to drain and flush, and hands
    /// back its directory.
    pub async fn shutdown(mut self) -> ServerDir {
        self.stop_and_wait().await;
        self.owned_dir
            .take()
            .expect("a running server owns its directory")
    }

    /// Signals shutdown without waiting for it (see `shutdown`).
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    async fn stop_and_wait(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("server task panicked")
                .expect("server failed");
        }
    }

    /// Every record the file sink wrote for `kind`, in file order.
    pub fn sink_records(&self, kind: &str) -> Vec<serde_json::Value> {
        sink_records(&self.dir.join("out"), kind)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(dir) = self.owned_dir.take() {
            remove_once_finished(self.task.take(), dir);
        }
    }
}

/// Drops `dir` once `task` (a server told to stop) has finished, so no server writes into
/// a removed directory: at once if it has, else from a task that waits for it. A test that
/// ends first ends its runtime, which ends both.
pub fn remove_once_finished<T: Send + 'static, D: Send + 'static>(
    task: Option<JoinHandle<T>>,
    dir: D,
) {
    let Some(task) = task.filter(|t| !t.is_finished()) else {
        return;
    };
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn(async move {
                let _ = task.await;
                drop(dir);
            });
        }
        Err(_) => drop(dir),
    }
}

pub fn metric_value(text: &str, sample: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == sample).then(|| value.parse::<f64>().expect("numeric sample"))
        })
        .unwrap_or(0.0)
}

/// Reads `<kind>.ndjson` and its rotated siblings under `dir`.
pub fn sink_records(dir: &Path, kind: &str) -> Vec<serde_json::Value> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy().to_string();
                name.starts_with(&format!("{kind}.")) || name.starts_with(&format!("{kind}-"))
            })
            .collect(),
        Err(_) => return Vec::new(),
    };
    files.sort();
    files
        .iter()
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(|l| {
                    serde_json::from_str(l).unwrap_or_else(|e| panic!("bad sink line {l:?}: {e}"))
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Polls `check` until it holds or `within` passes; returns how long it took.
pub async fn eventually<F, Fut>(within: Duration, check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    wait_until("condition", within, check).await
}

/// Polls `check` every 20 ms until it holds; returns how long it took. Panics naming
/// `what` once `within` has passed: a test waits for the condition a sleep would guess at
/// (a gauge on `/metrics`, an HTTP state, a file), bounded by a deadline.
pub async fn wait_until<F, Fut>(what: &str, within: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}
