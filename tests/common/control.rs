//! The one test harness for the control plane: the real `tollgate::control::serve_with` on
//! a listener bound to `127.0.0.1:0`, against SQLite (a file in a temporary directory) or
//! PostgreSQL (a fresh database per test, dropped at the end), with a small JSON client and
//! an injectable clock. The API tests use it as it starts; the gateway-feed tests also take
//! it down and bring it back on the same address (an outage and a comeback), or bring it
//! back on an empty database (the gateway's feed version is then "newer than current": 410).
//!
//! The listener is bound once and held for the harness's whole life: each run serves on a
//! clone of it, so no other process can take the port while the control plane is down.
//!
//! PostgreSQL is reached through `TOLLGATE_TEST_POSTGRES_URL` (default
//! `postgres://tollgate:tollgate@127.0.0.1:5432/postgres`, the role `.ci/run` creates): a
//! role that may `CREATE DATABASE`. Without a reachable server a test prints a SKIPPED
//! banner and returns; under `CI=true` it fails instead.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use sqlx::Connection;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tollgate::config::{Config, ControlPlaneConfig, TokenSourceKind};
use tollgate::control::{Clock, ControlError};

use super::process::get;
use super::{Reply, TestServer, metric_value, wait_until};

/// The operator's admin secret every test control plane is configured with.
pub const ADMIN_SECRET: &str = "test-admin-secret-0123456789abcdef";
/// The gateways' feed secret every test control plane is configured with.
pub const FEED_SECRET: &str = "test-feed-secret-0123456789abcdef";

pub const DEFAULT_POSTGRES_URL: &str = "postgres://tollgate:tollgate@127.0.0.1:5432/postgres";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Prints the skip banner, or panics under `CI=true` where a skip is a failure.
pub fn skip(test: &str, why: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: {why}, and CI=true requires this test to run");
    }
    // Straight to stderr: the harness hides the print macros' output of passing tests.
    let _ = writeln!(
        std::io::stderr(),
        "\n==================== SKIPPED {test} ====================\n\
         {why}\n\
         (Under CI=true this is a failure, not a skip.)\n\
         =========================================================\n"
    );
}

/// A database created for one test on the PostgreSQL server, dropped when this is dropped
/// (also when the test panics).
struct PgDatabase {
    admin_url: String,
    name: String,
}

impl PgDatabase {
    async fn create(admin_url: &str) -> Result<(PgDatabase, String), sqlx::Error> {
        let mut conn = sqlx::PgConnection::connect(admin_url).await?;
        let name = format!("tollgate_test_{:016x}", rand::random::<u64>());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        let url = with_database(admin_url, &name);
        Ok((
            PgDatabase {
                admin_url: admin_url.to_string(),
                name,
            },
            url,
        ))
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime: do the async work on a thread of its own.
        let admin_url = self.admin_url.clone();
        let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin_url).await.ok()?;
                sqlx::query(&statement).execute(&mut conn).await.ok()?;
                conn.close().await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}

/// `url` with its database (the path) replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{database}", &base[..path_start]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

pub fn postgres_url() -> String {
    std::env::var("TOLLGATE_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.into())
}

/// A control plane under test: serving, or down with its port still held.
pub struct ControlPlane {
    pub addr: SocketAddr,
    pub backend: Backend,
    /// Bound once; every run serves on a clone, so the port stays ours across restarts.
    listener: std::net::TcpListener,
    /// What every (re)start serves with; only `database_url` changes, on `restart_fresh`.
    config: ControlPlaneConfig,
    /// Serving (`serve_with` running) or down (connections closed at once), never both.
    run: Run,
    client: Client<HttpConnector, Full<Bytes>>,
    /// The control plane's clock: tests of trials and expiry move it instead of sleeping.
    clock: Clock,
    /// The SQLite files' directory; `None` only once `drop` has handed it on.
    dir: Option<tempfile::TempDir>,
    database: Option<PgDatabase>,
}

/// What is answering on the control plane's address.
enum Run {
    Serving(Task<Result<(), ControlError>>),
    Down(Task<()>),
    Stopped,
}

/// A spawned task and the token that ends it.
struct Task<T> {
    stop: CancellationToken,
    handle: JoinHandle<T>,
}

impl ControlPlane {
    /// Starts a control plane on `backend`, or returns `None` after the SKIPPED banner
    /// when PostgreSQL can't be reached outside CI.
    pub async fn start(backend: Backend, test: &str) -> Option<ControlPlane> {
        Self::start_with(backend, test, |_| {}).await
    }

    /// Starts with config changes (e.g. a short feed retention) kept across restarts.
    pub async fn start_with(
        backend: Backend,
        test: &str,
        configure: impl FnOnce(&mut ControlPlaneConfig),
    ) -> Option<ControlPlane> {
        // The control plane logs a store failure's cause (the answer only says 503): show
        // it in a failing test's output.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "warn".into()),
            )
            .with_test_writer()
            .try_init();
        let dir = tempfile::tempdir().expect("tempdir");
        let (database_url, database) = match new_database(backend, dir.path()).await {
            Ok(created) => created,
            Err(e) => {
                skip(
                    test,
                    &format!(
                        "PostgreSQL is not reachable at TOLLGATE_TEST_POSTGRES_URL \
                         (default {DEFAULT_POSTGRES_URL}) with CREATEDB: {e}; \
                         `bash .ci/run` installs and starts it"
                    ),
                );
                return None;
            }
        };
        let mut config = ControlPlaneConfig {
            database_url,
            admin_secret: Some(ADMIN_SECRET.to_string()),
            feed_secret: Some(FEED_SECRET.to_string()),
            ..ControlPlaneConfig::default()
        };
        configure(&mut config);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        // Shared by every clone (one open file description), as tokio needs.
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let mut cp = ControlPlane {
            addr: listener.local_addr().expect("bound address"),
            backend,
            listener,
            config,
            run: Run::Stopped,
            client: Client::builder(TokioExecutor::new()).build_http(),
            clock: Clock::system(),
            dir: Some(dir),
            database,
        };
        cp.serve().await;
        Some(cp)
    }

    /// A control plane on SQLite, which is always there (no skip).
    pub async fn sqlite() -> ControlPlane {
        Self::sqlite_with(|_| {}).await
    }

    pub async fn sqlite_with(configure: impl FnOnce(&mut ControlPlaneConfig)) -> ControlPlane {
        Self::start_with(Backend::Sqlite, "sqlite", configure)
            .await
            .expect("SQLite needs no server, so it never skips")
    }

    /// A clone of the held listener for one run.
    fn listener(&self) -> TcpListener {
        let clone = self.listener.try_clone().expect("clone the listener");
        TcpListener::from_std(clone).expect("listener into tokio")
    }

    /// Serves on the held listener; returns once `/healthz` answers.
    async fn serve(&mut self) {
        // Opened here, not in the task, so the store is migrated before anyone calls.
        let opened =
            tollgate::control::ControlPlane::open_with_clock(&self.config, self.clock.clone())
                .await
                .unwrap_or_else(|e| panic!("control plane failed to open its store: {e}"));
        let stop = CancellationToken::new();
        let handle = tokio::spawn(tollgate::control::serve_with(
            opened,
            self.config.clone(),
            self.listener(),
            stop.clone(),
        ));
        self.run = Run::Serving(Task { stop, handle });
        self.wait_started().await;
    }

    /// Waits for `/healthz`; a control plane that failed to start panics with its error.
    async fn wait_started(&mut self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Run::Serving(task) = &mut self.run
                && task.handle.is_finished()
            {
                let result = (&mut task.handle).await;
                panic!("control plane exited at startup: {result:?}");
            }
            if self.get("/healthz").send_raw().await.is_ok() {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "control plane did not answer /healthz within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Ends whatever runs on the address: waits for `serve_with` to return (its result must
    /// be Ok), or for the outage task.
    async fn halt(&mut self) {
        match std::mem::replace(&mut self.run, Run::Stopped) {
            Run::Serving(task) => task
                .finish()
                .await
                .expect("control plane served without error"),
            Run::Down(task) => task.finish().await,
            Run::Stopped => {}
        }
    }

    /// An outage: stops serving, but keeps the port, and closes every connection as soon as
    /// it arrives, so a caller fails at once as it would on a refused connection (a port
    /// bound with nobody accepting would leave it waiting for its timeout instead).
    pub async fn go_down(&mut self) {
        self.halt().await;
        let listener = self.listener();
        let stop = CancellationToken::new();
        let handle = tokio::spawn({
            let stop = stop.clone();
            async move {
                loop {
                    tokio::select! {
                        () = stop.cancelled() => return,
                        accepted = listener.accept() => drop(accepted),
                    }
                }
            }
        });
        self.run = Run::Down(Task { stop, handle });
    }

    /// Serves again on the same address with the same database (from up or down).
    pub async fn restart(&mut self) {
        self.halt().await;
        self.serve().await;
    }

    /// Serves again on the same address and database with changed config.
    pub async fn restart_with(&mut self, configure: impl FnOnce(&mut ControlPlaneConfig)) {
        self.halt().await;
        configure(&mut self.config);
        self.serve().await;
    }

    /// Serves again on the same address with an empty database.
    pub async fn restart_fresh(&mut self) {
        self.halt().await;
        let dir = self.dir.as_ref().expect("held until drop");
        let (url, database) = new_database(self.backend, dir.path())
            .await
            .expect("a second database where the first was created");
        self.config.database_url = url;
        // The old PostgreSQL database is dropped here, after its server stopped.
        self.database = database;
        self.serve().await;
    }

    /// Stops serving for good and waits for `serve` to return (its result must be Ok).
    pub async fn stop(mut self) {
        self.halt().await;
    }

    /// Moves the control plane's clock just past `deadline_ms` (epoch milliseconds): what
    /// happens once a trial ends or a token expires, without waiting for it.
    pub fn advance_clock_past(&self, deadline_ms: i64) {
        let left = deadline_ms + 50 - self.clock.now_ms();
        if left > 0 {
            self.clock
                .advance(Duration::from_millis(left.unsigned_abs()));
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The control plane's clock, for a test that turns the UTC day on it and a gateway.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The control plane's "now", in epoch milliseconds (its clock may have been moved).
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The store's URL, for a second process on the same store (`tollgate user add`).
    pub fn database_url(&self) -> &str {
        &self.config.database_url
    }

    pub fn request(&self, method: Method, path: &str) -> Call<'_> {
        Call {
            cp: self,
            method,
            path: path.to_string(),
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn get(&self, path: &str) -> Call<'_> {
        self.request(Method::GET, path)
    }
    pub fn post(&self, path: &str) -> Call<'_> {
        self.request(Method::POST, path)
    }
    pub fn put(&self, path: &str) -> Call<'_> {
        self.request(Method::PUT, path)
    }
    pub fn delete(&self, path: &str) -> Call<'_> {
        self.request(Method::DELETE, path)
    }

    /// `POST /v1/admin/accounts` with the admin secret; panics unless 200.
    pub async fn create_account(&self, body: Value) -> Value {
        let reply = self
            .post("/v1/admin/accounts")
            .admin()
            .json(body.clone())
            .send()
            .await;
        reply.expect_ok(&format!("create account {body}"))
    }

    /// `POST /v1/user-management` as the operator: a user of `account` with `role`
    /// (Logz.io's name, e.g. `USER_ROLE_ACCOUNT_ADMIN`), its id and its setup link. A
    /// sub-account's or metrics account's `email` must be an admin made this way first.
    pub async fn create_user(&self, account: i64, email: &str, role: &str) -> (i64, String) {
        let body = json!({"username": email, "fullName": "Test User", "accountID": account,
                          "role": role});
        let created = self
            .post("/v1/user-management")
            .admin()
            .json(body)
            .send()
            .await
            .expect_ok("create user");
        let keys: Vec<&String> = created.as_object().expect("an object").keys().collect();
        assert_eq!(keys, ["id", "setupLink"], "{created}");
        (
            created["id"].as_i64().expect("id"),
            created["setupLink"]
                .as_str()
                .expect("setupLink")
                .to_string(),
        )
    }

    /// One call with the header `auth`: the status and the JSON body (`Null` if none).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        auth: (&str, &str),
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut call = self.request(method, path).header(auth.0, auth.1);
        if let Some(body) = body {
            call = call.json(body);
        }
        let reply = call.send().await;
        let body = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
        (reply.status, body)
    }

    /// A `GET` of the feed with the feed secret.
    pub async fn feed(&self, path: &str) -> (StatusCode, Value) {
        let auth = format!("Bearer {FEED_SECRET}");
        self.call(Method::GET, path, ("authorization", &auth), None)
            .await
    }

    /// A pro main logs account: (account id, API token, its first shipping token).
    pub async fn account(&self, name: &str) -> (i64, String, String) {
        let body = self
            .create_account(json!({"accountName": name, "plan": "pro", "type": "logs"}))
            .await;
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

    /// Account `account`'s log shipping tokens as the operator searches them: `{total,
    /// results}`.
    pub async fn log_tokens_of(&self, account: i64) -> Value {
        self.post("/v1/log-shipping/tokens/search")
            .admin()
            .account(account)
            .json(json!({}))
            .send()
            .await
            .expect_ok("log shipping tokens")
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

    /// A gateway following this control plane's feed, configured further by `configure`,
    /// once ready.
    pub async fn gateway(&self, configure: impl FnOnce(&mut Config)) -> TestServer {
        let url = self.url();
        let server = TestServer::start(|c| {
            use_control_plane(c, &url);
            configure(c);
        })
        .await;
        server.wait_ready().await;
        server
    }

    /// The control plane's `/metrics` text.
    pub async fn metrics(&self) -> String {
        let reply = self.get("/metrics").send().await;
        String::from_utf8(reply.body.to_vec()).expect("utf-8 metrics")
    }

    /// Waits until `n` long polls wait on the feed (see `wait_for_long_polls`).
    pub async fn wait_for_long_polls(&self, n: u32) {
        wait_for_long_polls(&self.url(), n).await;
    }

    /// The feed version the control plane serves now.
    pub async fn feed_version(&self) -> u64 {
        let (status, snap) = self.feed("/v1/feed/snapshot").await;
        assert_eq!(status, StatusCode::OK, "{snap}");
        snap["version"].as_u64().expect("version")
    }
}

impl<T> Task<T> {
    /// Cancels the task and waits for it (30 s at most).
    async fn finish(self) -> T {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.handle)
            .await
            .expect("stops within 30 s")
            .expect("the task did not panic")
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let serving = match std::mem::replace(&mut self.run, Run::Stopped) {
            Run::Serving(task) => {
                task.stop.cancel();
                Some(task.handle)
            }
            Run::Down(task) => {
                task.stop.cancel();
                None
            }
            Run::Stopped => None,
        };
        // The SQLite files go once the store they belong to has closed.
        if let Some(dir) = self.dir.take() {
            super::remove_once_finished(serving, dir);
        }
    }
}

/// A new, empty database in `dir` (SQLite) or on the PostgreSQL server: its URL, and the
/// PostgreSQL database to drop when the test ends.
async fn new_database(
    backend: Backend,
    dir: &Path,
) -> Result<(String, Option<PgDatabase>), sqlx::Error> {
    match backend {
        Backend::Sqlite => {
            let file = dir.join(format!("control-{:016x}.db", rand::random::<u64>()));
            Ok((format!("sqlite://{}", file.display()), None))
        }
        Backend::Postgres => {
            let (db, url) = PgDatabase::create(&postgres_url()).await?;
            Ok((url, Some(db)))
        }
    }
}

/// Waits until `n` long polls wait on the feed of the control plane at `url`
/// (`tollgate_control_feed_waiting`): a change committed from then on wakes them, rather
/// than being there already when they ask.
pub async fn wait_for_long_polls(url: &str, n: u32) {
    let metrics = format!("{url}/metrics");
    wait_until(
        &format!("{n} long poll(s) waiting on the feed"),
        Duration::from_secs(10),
        || async {
            let text = get(metrics.clone()).await;
            metric_value(&text, "tollgate_control_feed_waiting") == f64::from(n)
        },
    )
    .await;
}

/// Points a gateway config at the control plane at `url` with timings short enough for
/// tests: quick reconnects, frequent persists and usage flushes.
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

/// One HTTP call being built.
pub struct Call<'a> {
    cp: &'a ControlPlane,
    method: Method,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<(String, Bytes)>,
}

impl Call<'_> {
    pub fn header(mut self, name: &str, value: impl ToString) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
    /// `Authorization: Bearer <admin secret>`.
    pub fn admin(self) -> Self {
        self.bearer(ADMIN_SECRET)
    }
    /// `Authorization: Bearer <feed secret>`.
    pub fn feed(self) -> Self {
        self.bearer(FEED_SECRET)
    }
    pub fn bearer(self, secret: &str) -> Self {
        self.header("authorization", format!("Bearer {secret}"))
    }
    /// `X-API-TOKEN`.
    pub fn token(self, api_token: &str) -> Self {
        self.header("x-api-token", api_token)
    }
    /// `X-Account-Id`.
    pub fn account(self, id: i64) -> Self {
        self.header("x-account-id", id)
    }
    pub fn json(mut self, body: Value) -> Self {
        self.body = Some(("application/json".into(), Bytes::from(body.to_string())));
        self
    }
    pub fn raw_body(mut self, content_type: &str, body: impl Into<Bytes>) -> Self {
        self.body = Some((content_type.to_string(), body.into()));
        self
    }

    pub async fn send(self) -> Reply {
        let what = format!("{} {}", self.method, self.path);
        self.send_raw()
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"))
    }

    async fn send_raw(self) -> Result<Reply, String> {
        let uri = format!("http://{}{}", self.cp.addr, self.path);
        let mut builder = Request::builder().method(self.method).uri(uri);
        for (name, value) in &self.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let body = match self.body {
            Some((content_type, bytes)) => {
                builder = builder.header("content-type", content_type);
                bytes
            }
            None => Bytes::new(),
        };
        let request = builder.body(Full::new(body)).map_err(|e| e.to_string())?;
        let response =
            tokio::time::timeout(Duration::from_secs(30), self.cp.client.request(request))
                .await
                .map_err(|_| "no answer within 30 s".to_string())?
                .map_err(|e| e.to_string())?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}

impl Reply {
    /// The JSON body of a 200, else a panic showing what came back.
    pub fn expect_ok(&self, what: &str) -> Value {
        assert_eq!(
            self.status,
            http::StatusCode::OK,
            "{what}: {}",
            String::from_utf8_lossy(&self.body)
        );
        self.json()
    }

    /// Asserts an error answer: the status, the `errorCode`, a message containing
    /// `message_part`, a hex `requestId`, and a JSON content type.
    /// A success without a body to read (`204`), or with one that does not matter here.
    pub fn expect_status(&self, status: u16, what: &str) {
        assert_eq!(
            self.status.as_u16(),
            status,
            "{what}: {}",
            String::from_utf8_lossy(&self.body)
        );
    }

    pub fn expect_error(&self, status: u16, code: &str, message_part: &str) {
        let text = String::from_utf8_lossy(&self.body);
        assert_eq!(self.status.as_u16(), status, "status (body {text})");
        let content_type = self
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(
            content_type.starts_with("application/json"),
            "error content type {content_type:?} (body {text})"
        );
        let body = self.json();
        assert_eq!(body["errorCode"], code, "errorCode (body {text})");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(message_part),
            "message {message:?} should contain {message_part:?}"
        );
        let request_id = body["requestId"].as_str().unwrap_or_default();
        assert!(
            !request_id.is_empty() && request_id.bytes().all(|b| b.is_ascii_hexdigit()),
            "requestId {request_id:?}"
        );
        let keys: Vec<&String> = body
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        assert_eq!(
            keys.len(),
            3,
            "error body has exactly errorCode, message, requestId: {text}"
        );
    }
}
