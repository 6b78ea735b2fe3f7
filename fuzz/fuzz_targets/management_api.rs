//! The management API's JSON bodies, through the control plane's real router on a SQLite
//! store: whatever the body, the answer is never a 5xx, and every refusal is a JSON body
//! with an `errorCode`. The first byte picks the route (and the credential), the rest is
//! the body.
#![no_main]

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request};
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use tollgate::config::ControlPlaneConfig;
use tollgate::control::ControlPlane;
use tower::ServiceExt;

const ADMIN_SECRET: &str = "fuzz-admin-secret-0123456789abcdef";

/// Every route that takes a body, with an id that exists for the `{id}` ones (1: the
/// fuzz account and its first objects).
const ROUTES: &[(Method, &str)] = &[
    (Method::POST, "/v1/admin/accounts"),
    (Method::POST, "/v1/account-management/time-based-accounts"),
    (Method::PUT, "/v1/account-management/time-based-accounts/2"),
    (Method::POST, "/v1/account-management/metrics-accounts"),
    (Method::PUT, "/v1/account-management/metrics-accounts/3"),
    (Method::POST, "/v1/log-shipping/tokens"),
    (Method::POST, "/v1/metrics-shipping/tokens/search"),
    (Method::PUT, "/v1/log-shipping/tokens/1"),
    (Method::POST, "/v1/api-tokens"),
    (Method::POST, "/v1/api-tokens/sub-account"),
    (Method::POST, "/v1/shared-tokens"),
    (Method::PUT, "/v1/shared-tokens/1"),
    (Method::POST, "/v1/shared-tokens/filters"),
    (Method::POST, "/v1/user-management"),
    (Method::PUT, "/v1/user-management/1"),
    (Method::POST, "/v1/feed/usage"),
    (Method::POST, "/v1/feed/shared-tokens/resolve"),
    (Method::POST, "/v1/drop-filters"),
    (Method::POST, "/v1/metrics-management/drop-filters"),
    (
        Method::POST,
        "/v1/metrics-management/drop-filters/bulk/create",
    ),
    (
        Method::POST,
        "/v1/metrics-management/drop-filters/bulk/delete",
    ),
    (Method::POST, "/v1/metrics-management/drop-filters/search"),
    (Method::PUT, "/v1/metrics-management/drop-filters/1"),
];

struct Fixture {
    runtime: tokio::runtime::Runtime,
    router: Router,
    api_token: String,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let shm = std::path::Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::Builder::new()
                .prefix("tollgate-fuzz-")
                .tempdir_in(shm)
        } else {
            tempfile::Builder::new().prefix("tollgate-fuzz-").tempdir()
        }
        .expect("a temp dir");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let config = ControlPlaneConfig {
            database_url: format!("sqlite://{}/control.db", dir.path().display()),
            admin_secret: Some(ADMIN_SECRET.into()),
            feed_secret: Some(ADMIN_SECRET.into()),
            ..ControlPlaneConfig::default()
        };
        let (router, api_token) = runtime.block_on(async {
            let cp: Arc<ControlPlane> = ControlPlane::open(&config).await.expect("open");
            let router = tollgate::control::api::around(
                tollgate::control::api::routes(Arc::clone(&cp)),
                Arc::clone(&cp),
            );
            let (status, body) = call(
                &router,
                Method::POST,
                "/v1/admin/accounts",
                ("authorization", format!("Bearer {ADMIN_SECRET}")),
                br#"{"accountName":"fuzz","plan":"pro"}"#.to_vec(),
            )
            .await;
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
            let created: serde_json::Value = serde_json::from_slice(&body).expect("json");
            let api_token = created["apiToken"].as_str().expect("apiToken").to_string();
            (router, api_token)
        });
        Fixture {
            runtime,
            router,
            api_token,
            _dir: dir,
        }
    })
}

async fn call(
    router: &Router,
    method: Method,
    path: &str,
    credential: (&str, String),
    body: Vec<u8>,
) -> (u16, Vec<u8>) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .header(credential.0, credential.1)
        .body(Body::from(body))
        .expect("a request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    (status, body.to_vec())
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let fixture = fixture();
    let (method, path) = &ROUTES[usize::from(which) % ROUTES.len()];
    let credential = if path.starts_with("/v1/admin") || path.starts_with("/v1/feed") {
        ("authorization", format!("Bearer {ADMIN_SECRET}"))
    } else {
        ("x-api-token", fixture.api_token.clone())
    };
    let (status, answer) = fixture.runtime.block_on(call(
        &fixture.router,
        method.clone(),
        path,
        credential,
        body.to_vec(),
    ));
    assert!(
        status < 500,
        "{method} {path} answered {status}: {}",
        String::from_utf8_lossy(&answer)
    );
    if status >= 400 {
        let error: serde_json::Value = serde_json::from_slice(&answer).expect("a JSON refusal");
        assert!(error["errorCode"].is_string(), "{error}");
    }
});
