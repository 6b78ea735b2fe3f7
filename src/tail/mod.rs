//! The read path: `GET /v1/tail` on the public listener streams the records
//! being ingested that the presented credential may read, as Server-Sent Events or, with
//! `Accept: application/x-ndjson`, as NDJSON.
//!
//! - An **API token** (`X-API-TOKEN`) reads its account, every sub-account `searchable`
//!   from it and its tied metrics/tracing/security accounts; `?accountIds=1,2` narrows
//!   that set, and an account outside it is a 403 naming it.
//! - A **shared token** (`?token=` or `Authorization: Bearer`) reads its account's logs
//!   that match its filters (AND or OR), until it expires.
//! - `?q=field:value` (repeatable, ANDed) narrows further; `?kind=traces|metrics` tails
//!   those instead of logs (API tokens only: shared tokens grant logs).
//!
//! Grants come from the gateway's replicated read-grant table (`tokens::grants`), so
//! authorizing costs no control-plane call; each open tail re-checks its credential on
//! every grant change and every second (expiry instants), and ends with an `end` event
//! when it no longer may read. Records come from the forward path's tap, after they are
//! accepted. Tails are capped in total and per account (503 + `Retry-After` beyond).

pub mod filter;
pub mod kafka;
pub mod page;
mod render;
mod stream;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{Either, Full};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::config::TailConfig;
use crate::forward::tap::{Interest, Tap};
use crate::model::{AccountId, Kind};
use crate::telemetry::TailMetrics;
use crate::tokens::Tokens;
use crate::tokens::grants::{FilterOp, GrantError};
use filter::{Scope, Term};
pub use stream::EventBody;
use stream::{Format, Open};

/// The path tails are served on.
pub const PATH: &str = "/v1/tail";

/// A tail's response body: an error's JSON, or the stream.
pub type TailBody = Either<Full<Bytes>, EventBody>;

pub struct Tail {
    tokens: Arc<Tokens>,
    tap: Arc<Tap>,
    config: TailConfig,
    metrics: TailMetrics,
    /// Open tails per account they are counted against; their sum is the total.
    open: Mutex<HashMap<AccountId, usize>>,
    /// Cancelled when the gateway shuts down: every stream ends with an `end` event.
    stopping: CancellationToken,
}

/// Why a tail was refused or ended. `Display` never contains a credential.
#[derive(Debug, thiserror::Error)]
pub enum TailError {
    #[error("tails are disabled on this gateway")]
    Disabled,
    #[error("GET only")]
    Method,
    #[error("{0}")]
    BadRequest(String),
    #[error("a credential is required: X-API-TOKEN, ?token= or Authorization: Bearer")]
    Missing,
    #[error("the token is not valid")]
    Unknown,
    #[error("the shared token has expired")]
    Expired,
    #[error("API tokens do not work on this account's plan (or its trial has ended)")]
    NotUsable,
    #[error("{0}")]
    Forbidden(String),
    #[error("too many open tails; retry later")]
    Busy,
    #[error("no such page")]
    NotFound,
}

impl TailError {
    fn status(&self) -> StatusCode {
        match self {
            TailError::Disabled | TailError::NotFound => StatusCode::NOT_FOUND,
            TailError::Method => StatusCode::METHOD_NOT_ALLOWED,
            TailError::BadRequest(_) => StatusCode::BAD_REQUEST,
            TailError::Missing | TailError::Unknown => StatusCode::UNAUTHORIZED,
            TailError::Expired | TailError::NotUsable | TailError::Forbidden(_) => {
                StatusCode::FORBIDDEN
            }
            TailError::Busy => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The `tollgate_tail_refused_total` reason.
    fn reason(&self) -> &'static str {
        match self {
            TailError::Disabled => "disabled",
            TailError::NotFound => "not_found",
            TailError::Method | TailError::BadRequest(_) => "bad_request",
            TailError::Missing | TailError::Unknown => "unauthorized",
            TailError::Expired => "expired",
            TailError::NotUsable | TailError::Forbidden(_) => "forbidden",
            TailError::Busy => "busy",
        }
    }

    /// What an open stream's `end` event says when its credential stops granting.
    fn end_reason(&self) -> &'static str {
        match self {
            TailError::Expired => "expired",
            TailError::Unknown => "revoked",
            TailError::NotUsable => "not usable",
            _ => "no longer granted",
        }
    }

    fn response(&self) -> Response<TailBody> {
        let body = json!({"error": self.to_string()}).to_string();
        let mut response = Response::new(Either::Left(Full::new(Bytes::from(body))));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if matches!(self, TailError::Busy) {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}

/// What a client asked for: kept by its tail's task (in memory only) to re-check.
pub struct Asked {
    pub credential: Credential,
    /// `?accountIds`: narrows an API token's reach, never widens it.
    pub account_ids: Option<Vec<AccountId>>,
    pub kind: Kind,
    pub q: Vec<Term>,
}

/// The credential presented.
pub enum Credential {
    Api(String),
    Shared(String),
}

/// What a credential may read right now.
pub struct Granted {
    pub scope: Scope,
    /// The account the tail counts against (an API token's own, a shared token's).
    pub account: AccountId,
    /// A shared token's id, for its `lastUsed`.
    pub shared_token_id: Option<u64>,
    /// A shared token's expiry, epoch milliseconds.
    pub expires_at_ms: Option<u64>,
}

impl Granted {
    /// What the tap should hand this tail: its accounts' batches of `kind` whose bytes
    /// could match.
    fn interest(&self, kind: Kind) -> Interest {
        Interest::new(self.scope.accounts.clone(), kind, self.scope.needles())
    }

    /// What the stream's `scope` event tells the client: what it is shown, and until when.
    fn describe(&self) -> serde_json::Value {
        let terms = |terms: &[Term]| {
            terms
                .iter()
                .map(|t| json!({"field": t.field, "value": t.value}))
                .collect::<Vec<_>>()
        };
        json!({
            "accountIds": self.scope.accounts,
            "filters": terms(&self.scope.filters),
            "filtersOperator": self.scope.op,
            "q": terms(&self.scope.narrowing),
            "expiresAt": self.expires_at_ms,
        })
    }
}

impl Tail {
    pub fn new(
        tokens: Arc<Tokens>,
        tap: Arc<Tap>,
        config: TailConfig,
        metrics: TailMetrics,
        stopping: CancellationToken,
    ) -> Tail {
        Tail {
            tokens,
            tap,
            config,
            metrics,
            open: Mutex::new(HashMap::new()),
            stopping,
        }
    }

    /// Whether a request is for tails: the stream or the live-tail page.
    pub fn serves(path: &str) -> bool {
        path == PATH || page::serves(path)
    }

    /// Answers `GET /v1/tail` (a stream) or the live-tail page, or the refusal's JSON.
    pub fn serve<B>(self: &Arc<Self>, req: &Request<B>) -> Response<TailBody> {
        if req.uri().path() != PATH {
            return self.page(req).unwrap_or_else(|e| e.response());
        }
        match self.open_stream(req) {
            Ok(response) => response,
            Err(e) => {
                self.metrics.refused(e.reason());
                e.response()
            }
        }
    }

    fn page<B>(&self, req: &Request<B>) -> Result<Response<TailBody>, TailError> {
        if !self.config.enabled {
            return Err(TailError::Disabled);
        }
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return Err(TailError::Method);
        }
        page::file(req.uri().path()).ok_or(TailError::NotFound)
    }

    fn open_stream<B>(self: &Arc<Self>, req: &Request<B>) -> Result<Response<TailBody>, TailError> {
        if !self.config.enabled {
            return Err(TailError::Disabled);
        }
        if req.method() != Method::GET {
            return Err(TailError::Method);
        }
        let query = Query::parse(req.uri().query().unwrap_or(""))?;
        let asked = Asked {
            credential: credential(req, query.token)?,
            account_ids: query.account_ids,
            kind: query.kind,
            q: query.q,
        };
        let granted = self.authorize(&asked)?;
        self.admit(granted.account)?;
        let format = match req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
        {
            Some(accept) if accept.contains("application/x-ndjson") => Format::Ndjson,
            _ => Format::Sse,
        };
        let body = stream::start(Open {
            tail: Arc::clone(self),
            subscription: self.tap.subscribe(granted.interest(asked.kind)),
            account: granted.account,
            granted,
            asked,
            format,
        });
        let mut response = Response::new(Either::Right(body));
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(format.content_type()),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        // Proxies that buffer (nginx) would hold the stream back.
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
        Ok(response)
    }

    /// What `asked` may read right now: at connect, and again on every grant change.
    fn authorize(&self, asked: &Asked) -> Result<Granted, TailError> {
        let Asked {
            credential,
            account_ids: narrow,
            kind,
            q,
        } = asked;
        let grants = self.tokens.grants();
        let now = now_ms();
        let granted = match credential {
            Credential::Api(secret) => {
                let reach = grants.api_token(secret, now).map_err(refusal)?;
                let accounts = match narrow {
                    None => reach.accounts,
                    Some(wanted) => {
                        if let Some(outside) = wanted.iter().find(|a| !reach.accounts.contains(a)) {
                            return Err(TailError::Forbidden(format!(
                                "this API token does not reach account {outside}"
                            )));
                        }
                        wanted.to_vec()
                    }
                };
                Granted {
                    scope: Scope {
                        accounts,
                        filters: Vec::new(),
                        op: FilterOp::And,
                        narrowing: q.to_vec(),
                    },
                    account: reach.home,
                    shared_token_id: None,
                    expires_at_ms: None,
                }
            }
            Credential::Shared(secret) => {
                let grant = grants.shared_token(secret, now).map_err(refusal)?;
                if *kind != Kind::Logs {
                    return Err(TailError::Forbidden(
                        "shared tokens grant logs only".to_owned(),
                    ));
                }
                if let Some(wanted) = narrow
                    && let Some(outside) = wanted.iter().find(|a| **a != grant.account)
                {
                    return Err(TailError::Forbidden(format!(
                        "this shared token does not reach account {outside}"
                    )));
                }
                Granted {
                    scope: Scope {
                        accounts: vec![grant.account],
                        filters: grant
                            .filters
                            .into_iter()
                            .map(|(field, value)| Term { field, value })
                            .collect(),
                        op: grant.op,
                        narrowing: q.to_vec(),
                    },
                    account: grant.account,
                    shared_token_id: Some(grant.token_id),
                    expires_at_ms: grant.expires_at_ms,
                }
            }
        };
        Ok(granted)
    }

    /// Counts a new tail against the caps, or refuses it.
    fn admit(&self, account: AccountId) -> Result<(), TailError> {
        let mut open = self.open.lock().expect("tail counts are never poisoned");
        let total: usize = open.values().sum();
        let here = open.get(&account).copied().unwrap_or(0);
        if total >= self.config.max_subscribers || here >= self.config.max_per_account {
            return Err(TailError::Busy);
        }
        *open.entry(account).or_insert(0) += 1;
        Ok(())
    }

    fn release(&self, account: AccountId) {
        let mut open = self.open.lock().expect("tail counts are never poisoned");
        if let Some(n) = open.get_mut(&account) {
            *n -= 1;
            if *n == 0 {
                open.remove(&account);
            }
        }
    }
}

fn refusal(e: GrantError) -> TailError {
    match e {
        GrantError::Unknown => TailError::Unknown,
        GrantError::Expired => TailError::Expired,
        GrantError::NotUsable => TailError::NotUsable,
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as u64
}

/// The query a tail takes.
struct Query {
    kind: Kind,
    account_ids: Option<Vec<AccountId>>,
    q: Vec<Term>,
    token: Option<String>,
}

/// At most this many `q` terms and `accountIds`: a query is not a way to make a tail's
/// matching arbitrarily expensive.
const MAX_TERMS: usize = 32;

impl Query {
    fn parse(raw: &str) -> Result<Query, TailError> {
        let mut query = Query {
            kind: Kind::Logs,
            account_ids: None,
            q: Vec::new(),
            token: None,
        };
        for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
            match key.as_ref() {
                "kind" => {
                    query.kind = match value.as_ref() {
                        "logs" => Kind::Logs,
                        "traces" => Kind::Traces,
                        "metrics" => Kind::Metrics,
                        _ => {
                            return Err(TailError::BadRequest(
                                "kind must be logs, traces or metrics".into(),
                            ));
                        }
                    }
                }
                "accountIds" => {
                    let ids = value
                        .split(',')
                        .map(|id| id.trim().parse().map(AccountId))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|_| {
                            TailError::BadRequest(
                                "accountIds must be account ids separated by commas".into(),
                            )
                        })?;
                    let mut all = query.account_ids.take().unwrap_or_default();
                    all.extend(ids);
                    all.sort_unstable();
                    all.dedup();
                    query.account_ids = Some(all);
                }
                "q" => query.q.push(
                    Term::parse(&value)
                        .ok_or_else(|| TailError::BadRequest("q must be field:value".into()))?,
                ),
                "token" => query.token = Some(value.into_owned()),
                _ => {}
            }
        }
        if query.q.len() > MAX_TERMS
            || query
                .account_ids
                .as_ref()
                .is_some_and(|a| a.len() > MAX_TERMS)
        {
            return Err(TailError::BadRequest(format!(
                "at most {MAX_TERMS} q terms and {MAX_TERMS} accountIds"
            )));
        }
        Ok(query)
    }
}

/// `X-API-TOKEN` is an API token; `?token=` or `Authorization: Bearer` a shared token.
fn credential<B>(req: &Request<B>, query_token: Option<String>) -> Result<Credential, TailError> {
    if let Some(v) = req.headers().get("x-api-token") {
        let secret = v.to_str().map_err(|_| TailError::Unknown)?;
        return Ok(Credential::Api(secret.to_owned()));
    }
    if let Some(token) = query_token {
        return Ok(Credential::Shared(token));
    }
    match req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        Some(v) => v
            .strip_prefix("Bearer ")
            .map(|t| Credential::Shared(t.trim().to_owned()))
            .ok_or(TailError::Unknown),
        None => Err(TailError::Missing),
    }
}
