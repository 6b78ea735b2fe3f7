//! Test harness for the control plane: starts the real `tollgate::control::serve` on
//! `127.0.0.1:0` against SQLite (a file in a temporary directory) or PostgreSQL (a fresh
//! database per test, dropped at the end), and talks HTTP to it with a small JSON client.
//!
//! PostgreSQL is reached through `TOLLGATE_TEST_POSTGRES_URL` (default
//! `postgres://tollgate:tollgate@127.0.0.1:5432/postgres`, the role `.ci/run` creates): a
//! role that may `CREATE DATABASE`. Without a reachable server a test prints a SKIPPED
//! banner and returns; under `CI=true` it fails instead.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use sqlx::Connection;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tollgate::config::ControlPlaneConfig;
use tollgate::control::{Clock, ControlError};

use super::Reply;

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

/// A running control plane.
pub struct ControlPlane {
    pub addr: SocketAddr,
    pub backend: Backend,
    shutdown: CancellationToken,
    task: Option<JoinHandle<Result<(), ControlError>>>,
    client: Client<HttpConnector, Full<Bytes>>,
    /// The control plane's clock: tests of trials and expiry move it instead of sleeping.
    clock: Clock,
    _dir: tempfile::TempDir,
    _database: Option<PgDatabase>,
}

impl ControlPlane {
    /// Starts a control plane on `backend`, or returns `None` after the SKIPPED banner
    /// when PostgreSQL can't be reached outside CI.
    pub async fn start(backend: Backend, test: &str) -> Option<ControlPlane> {
        Self::start_with(backend, test, |_| {}).await
    }

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
        let (database_url, database) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}", dir.path().join("control.db").display()),
                None,
            ),
            Backend::Postgres => {
                let admin_url = postgres_url();
                match PgDatabase::create(&admin_url).await {
                    Ok((db, url)) => (url, Some(db)),
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
                }
            }
        };
        let mut config = ControlPlaneConfig {
            database_url,
            admin_secret: Some(ADMIN_SECRET.to_string()),
            feed_secret: Some(FEED_SECRET.to_string()),
            ..ControlPlaneConfig::default()
        };
        configure(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let clock = Clock::system();
        let opened = tollgate::control::ControlPlane::open_with_clock(&config, clock.clone())
            .await
            .unwrap_or_else(|e| panic!("control plane failed to open its store: {e}"));
        let task = tokio::spawn(tollgate::control::serve_with(
            opened,
            listener,
            shutdown.clone(),
        ));
        let mut cp = ControlPlane {
            addr,
            backend,
            shutdown,
            task: Some(task),
            client: Client::builder(TokioExecutor::new()).build_http(),
            clock,
            _dir: dir,
            _database: database,
        };
        cp.wait_started().await;
        Some(cp)
    }

    /// Waits for `/healthz`; a control plane that failed to start panics with its error.
    async fn wait_started(&mut self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if self.task.as_ref().is_some_and(|t| t.is_finished()) {
                let result = self.task.take().expect("checked just above").await;
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

    /// Moves the control plane's clock just past `deadline_ms` (epoch milliseconds): what
    /// happens once a trial ends or a token expires, without waiting for it.
    pub fn advance_clock_past(&self, deadline_ms: i64) {
        let left = deadline_ms + 50 - self.clock.now_ms();
        if left > 0 {
            self.clock
                .advance(Duration::from_millis(left.unsigned_abs()));
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
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

    /// Stops serving and waits for `serve` to return (its result must be Ok).
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let result = tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("control plane stops within 30 s")
                .expect("control plane task");
            result.expect("control plane served without error");
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
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
