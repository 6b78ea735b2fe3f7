//! The gateway's HTTP client for the control plane's feed (`/v1/feed/*`, docs/tokens.md
//! "The feed protocol"), shared by the follower (`feed.rs`), the miss cache (`miss.rs`)
//! and the usage flusher (`usage.rs`). It sends the calls with the feed secret, bounds
//! each by a timeout and its answer's size, and turns a refusal into a `FeedError` that
//! names the `errorCode`; what an answer means is its caller's business. Parsing a
//! snapshot or a delta is left to the caller too: at 1,000,000 tokens it belongs on a
//! blocking thread.
//!
//! `tokens.url` may name several control planes of one store (comma-separated): calls go
//! to one of them, and when it cannot be reached, does not answer in time or answers 502,
//! 503 or 504, the next call goes to the next one. All clones move together, and the
//! callers' own backoff paces the tries. Control planes on one store serve the same
//! versions, so a follower simply goes on.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

use super::Digest;
use super::snapshot::SnapshotError;
use super::wire::SnapshotEntry;
use crate::config::base_urls;

/// Largest feed answer read (a 1,000,000-token snapshot is ~200 MB of JSON).
const MAX_FEED_BODY_BYTES: usize = 1 << 30;

/// Why a feed call failed. `Display` never contains the feed secret or a token.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("control plane not reachable: {0}")]
    Connect(String),
    #[error("control plane did not answer within {0:?}")]
    Timeout(Duration),
    /// 410 on the change feed: refetch the snapshot.
    #[error("control plane no longer has the changes since our version")]
    Gone,
    #[error("control plane answered {status} ({error_code})")]
    Status {
        status: StatusCode,
        error_code: String,
    },
    #[error("control plane answer unreadable: {0}")]
    Body(String),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}

/// An HTTP client for `/v1/feed/*`, cloned for the follower, the miss cache and the usage
/// flusher: one connection pool to the control plane per gateway.
#[derive(Clone)]
pub struct FeedClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// The control planes' base URLs without a trailing slash, and which one is in use.
    bases: Arc<[String]>,
    current: Arc<AtomicUsize>,
    authorization: HeaderValue,
    timeout: Duration,
}

/// `{"errorCode": ...}` of a refusal: the only part of an error body that is logged.
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(rename = "errorCode")]
    error_code: String,
}

impl FeedClient {
    /// `url` (one base URL, or several separated by commas) and `secret` were checked by
    /// `Config::validate`.
    pub fn new(url: &str, secret: &str, timeout: Duration) -> Result<FeedClient, FeedError> {
        let mut authorization = HeaderValue::try_from(format!("Bearer {secret}"))
            .map_err(|_| FeedError::Connect("tokens.feed_secret is not a valid header".into()))?;
        authorization.set_sensitive(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(Arc::new(rustls::crypto::ring::default_provider()))
            .map_err(|e| FeedError::Connect(format!("TLS roots: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(FeedClient {
            client: Client::builder(TokioExecutor::new()).build(connector),
            bases: base_urls(url)
                .map(|u| u.trim_end_matches('/').to_string())
                .collect(),
            current: Arc::new(AtomicUsize::new(0)),
            authorization,
            timeout,
        })
    }

    /// Sends one request and reads the whole answer within `timeout`.
    async fn call(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<(StatusCode, Bytes), FeedError> {
        let at = self.current.load(Ordering::Relaxed) % self.bases.len().max(1);
        let base = self.bases.get(at).map_or("", String::as_str);
        let answer = self
            .call_one(base, method, path_and_query, body, timeout)
            .await;
        let unavailable = match &answer {
            Err(FeedError::Connect(_) | FeedError::Timeout(_)) => true,
            Ok((status, _)) => matches!(status.as_u16(), 502..=504),
            Err(_) => false,
        };
        if unavailable && self.bases.len() > 1 {
            let next = (at + 1) % self.bases.len();
            if self
                .current
                .compare_exchange(at, next, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                tracing::warn!(
                    from = at + 1,
                    to = next + 1,
                    of = self.bases.len(),
                    "control plane unavailable: the next call goes to the next one in tokens.url"
                );
            }
        }
        answer
    }

    /// Sends one request to the control plane at `base`.
    async fn call_one(
        &self,
        base: &str,
        method: Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<(StatusCode, Bytes), FeedError> {
        let uri: Uri = format!("{base}{path_and_query}")
            .parse()
            .map_err(|_| FeedError::Connect("tokens.url does not form a valid URL".into()))?;
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, self.authorization.clone());
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .expect("a request to a parsed URI with valid headers is valid");
        let exchange = async {
            let response = self
                .client
                .request(req)
                .await
                .map_err(|e| FeedError::Connect(error_chain(&e)))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_FEED_BODY_BYTES)
                .collect()
                .await
                .map_err(|e| FeedError::Body(e.to_string()))?
                .to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| FeedError::Timeout(timeout))?
    }

    /// `GET /v1/feed/snapshot?grants=true&volume=true&filters=true` (the raw answer: parsing 1,000,000 tokens
    /// belongs on a blocking thread).
    pub async fn snapshot(&self) -> Result<Bytes, FeedError> {
        let (status, body) = self
            .call(
                Method::GET,
                "/v1/feed/snapshot?grants=true&volume=true&filters=true",
                None,
                self.timeout,
            )
            .await?;
        expect_ok(status, &body)?;
        Ok(body)
    }

    /// `GET /v1/feed/changes?since=V&wait=S&grants=true&volume=true&filters=true`: the raw answer, or
    /// `Gone` on 410.
    pub(super) async fn changes(&self, since: u64, wait: Duration) -> Result<Bytes, FeedError> {
        let path = format!(
            "/v1/feed/changes?since={since}&wait={}&grants=true&volume=true&filters=true",
            wait.as_secs()
        );
        let (status, body) = self
            .call(Method::GET, &path, None, wait + self.timeout)
            .await?;
        if status == StatusCode::GONE {
            return Err(FeedError::Gone);
        }
        expect_ok(status, &body)?;
        Ok(body)
    }

    /// `GET /v1/feed/tokens/{digest}`: the entry, or `None` when the control plane does
    /// not know the digest (404).
    pub async fn lookup(&self, digest: Digest) -> Result<Option<SnapshotEntry>, FeedError> {
        let path = format!("/v1/feed/tokens/{}", digest.to_hex());
        let (status, body) = self.call(Method::GET, &path, None, self.timeout).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        expect_ok(status, &body)?;
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| FeedError::Body(e.to_string()))
    }

    /// `POST /v1/feed/usage` with a JSON body; 2xx is success.
    pub async fn post_usage(&self, body: Vec<u8>) -> Result<(), FeedError> {
        let (status, answer) = self
            .call(Method::POST, "/v1/feed/usage", Some(body), self.timeout)
            .await?;
        expect_ok(status, &answer)
    }
}

fn expect_ok(status: StatusCode, body: &[u8]) -> Result<(), FeedError> {
    if status.is_success() {
        return Ok(());
    }
    let error_code = serde_json::from_slice::<ErrorBody>(body)
        .map(|e| e.error_code)
        .unwrap_or_else(|_| "no errorCode".to_string());
    Err(FeedError::Status { status, error_code })
}

/// The error and its causes on one line (hyper's top-level message alone says little).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}
