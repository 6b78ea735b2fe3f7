//! The feed gateways replicate from (DESIGN §2, §4; protocol in docs/tokens.md, "The feed
//! protocol"):
//! a versioned snapshot of shipping-token digests — with `?grants=true`, also the read
//! grants (accounts' read attributes, API and shared token digests) — a long-polled change
//! list since a version, single-digest lookups for the gateways' miss caches, usage
//! reports, and shared token resolution (superseded by the grants). Authenticated by the
//! feed secret; plaintext tokens never leave through here.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use futures_util::{Stream, TryStreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::ControlPlane;
use super::auth;
use super::clock::DAY_MS;
use super::error::ApiError;
use super::json::Body;
use super::store::feed as store;
use super::store::shared_tokens::{self as shared_store, FiltersOperator};
use super::store::{StoreError, shipping_tokens};
use super::usecases::shared_tokens as shared;
use crate::tokens::wire::{Changes, Digest, GrantChanges, SnapshotEntry, UsageReport};

pub fn routes() -> Router<Arc<ControlPlane>> {
    Router::new()
        .route("/v1/feed/snapshot", get(snapshot))
        .route("/v1/feed/changes", get(changes))
        .route("/v1/feed/tokens/{digest}", get(lookup))
        .route("/v1/feed/usage", post(usage))
        .route("/v1/feed/shared-tokens/resolve", post(resolve))
}

/// Longest a `changes` call may wait; gateways ask again right away.
const MAX_WAIT_SECS: u64 = 60;
/// Long polls also re-read the store this often, so a change committed by another
/// control-plane process on the same PostgreSQL is seen without a notification.
const RECHECK: Duration = Duration::from_secs(1);

/// Bytes of JSON per body chunk while streaming a snapshot.
const SNAPSHOT_CHUNK_BYTES: usize = 256 * 1024;

/// `?grants=true` on the snapshot and the changes: the read grants ride along. Gateways
/// from before read grants don't ask, and get the shapes they know (their parser refuses
/// unknown fields).
#[derive(Deserialize)]
struct SnapshotParams {
    #[serde(default)]
    grants: bool,
}

/// The whole table, streamed: rows go from the store to the socket in 256 KiB chunks, so
/// a million-token snapshot never sits in memory whole, however many gateways fetch it;
/// with `?grants=true` the grants' collections follow the same way. The version is read
/// first: rows committed after it may ride along and are simply applied again by the next
/// `changes`. A store error mid-stream cuts the body short, which the gateway sees as a
/// snapshot that does not parse (and keeps its table).
async fn snapshot(
    State(cp): State<Arc<ControlPlane>>,
    headers: HeaderMap,
    params: Result<Query<SnapshotParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    auth::feed(&cp, &headers)?;
    let Query(params) = params.map_err(|_| ApiError::Invalid {
        code: "feed/BAD_REQUEST",
        message: "grants must be true or false".into(),
    })?;
    let version = version_u64(store::current_version(&mut cp.store.conn().await?).await?);
    let source = cp.store.clone();
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let mut out = Chunks {
            buf: format!("{{\"version\":{version},\"tokens\":[").into_bytes(),
            tx,
        };
        if out.array(store::entries(&source)).await.is_err() {
            return;
        }
        out.buf.push(b']');
        if params.grants {
            out.buf.extend_from_slice(b",\"grants\":{\"accounts\":[");
            if out.array(store::grant_accounts(&source)).await.is_err() {
                return;
            }
            out.buf.extend_from_slice(b"],\"api_tokens\":[");
            if out.array(store::grant_api_tokens(&source)).await.is_err() {
                return;
            }
            out.buf.extend_from_slice(b"],\"shared_tokens\":[");
            if out
                .array(store::grant_shared_tokens(&source))
                .await
                .is_err()
            {
                return;
            }
            out.buf.extend_from_slice(b"]}");
        }
        out.buf.push(b'}');
        let _ = out.tx.send(Ok(Bytes::from(out.buf))).await;
    });
    let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        axum::body::Body::from_stream(chunks),
    )
        .into_response())
}

/// The snapshot's body as it is written: JSON in a buffer, sent on whenever it passes
/// `SNAPSHOT_CHUNK_BYTES`.
struct Chunks {
    buf: Vec<u8>,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
}

/// The stream stopped: the store failed (the body is cut short) or the gateway hung up.
struct Stopped;

impl Chunks {
    /// Writes `rows` as the elements of a JSON array whose brackets the caller writes.
    async fn array<T: Serialize>(
        &mut self,
        rows: impl Stream<Item = Result<T, StoreError>>,
    ) -> Result<(), Stopped> {
        let mut rows = std::pin::pin!(rows);
        let mut first = true;
        loop {
            let row = match rows.try_next().await {
                Ok(Some(row)) => row,
                Ok(None) => return Ok(()),
                Err(e) => {
                    tracing::error!(error = %e, "feed snapshot: the store failed mid-stream");
                    let _ = self.tx.send(Err(std::io::Error::other(e))).await;
                    return Err(Stopped);
                }
            };
            if !first {
                self.buf.push(b',');
            }
            first = false;
            if let Err(e) = serde_json::to_writer(&mut self.buf, &row) {
                tracing::error!(error = %e, "feed snapshot: a row does not encode");
                let _ = self.tx.send(Err(std::io::Error::other(e))).await;
                return Err(Stopped);
            }
            if self.buf.len() >= SNAPSHOT_CHUNK_BYTES {
                let chunk = std::mem::replace(
                    &mut self.buf,
                    Vec::with_capacity(SNAPSHOT_CHUNK_BYTES + 512),
                );
                if self.tx.send(Ok(Bytes::from(chunk))).await.is_err() {
                    return Err(Stopped); // the gateway hung up
                }
            }
        }
    }
}

/// Nothing new: the answer to a poll that waited it out (or was cut short by shutdown).
fn no_changes(version: i64, grants: bool) -> Changes {
    Changes {
        version: version_u64(version),
        upserts: Vec::new(),
        deletes: Vec::new(),
        grants: grants.then(GrantChanges::default),
    }
}

/// Upserts and deletes since `since`, waiting up to `wait` seconds for one to happen.
async fn changes(
    State(cp): State<Arc<ControlPlane>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<Changes>, ApiError> {
    auth::feed(&cp, &headers)?;
    let (since, wait, grants) = changes_params(query.as_deref().unwrap_or(""))?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    let mut notified = cp.feed_version.subscribe();
    let _waiting = Waiting::new(&cp.telemetry.feed_waiting);
    loop {
        let (version, oldest) = store::versions(&mut cp.store.conn().await?).await?;
        if since < oldest || since > version {
            return Err(ApiError::Gone {
                code: "feed/VERSION_GONE",
                message: format!(
                    "the feed keeps changes from version {oldest} to {version}; fetch \
                     /v1/feed/snapshot"
                ),
            });
        }
        if since < version {
            let mut conn = cp.store.conn().await?;
            let (upserts, deletes) = store::changes_since(&mut conn, since).await?;
            let grants = match grants {
                true => Some(store::grant_changes_since(&mut conn, since).await?),
                false => None,
            };
            return Ok(Json(Changes {
                version: version_u64(version),
                upserts,
                deletes,
                grants,
            }));
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Ok(Json(no_changes(version, grants)));
        }
        tokio::select! {
            _ = notified.changed() => {}
            _ = tokio::time::sleep(RECHECK.min(deadline - now)) => {}
            _ = cp.stopping.cancelled() => {
                return Ok(Json(no_changes(version, grants)));
            }
        }
    }
}

/// Counts a long poll in `tollgate_control_feed_waiting` for as long as it lives.
struct Waiting<'a>(&'a prometheus::IntGauge);

impl<'a> Waiting<'a> {
    fn new(gauge: &'a prometheus::IntGauge) -> Self {
        gauge.inc();
        Waiting(gauge)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

fn changes_params(query: &str) -> Result<(i64, u64, bool), ApiError> {
    let bad = |what: &str| ApiError::Invalid {
        code: "feed/BAD_REQUEST",
        message: what.to_string(),
    };
    let mut since = None;
    let mut wait = 30;
    let mut grants = false;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match &*key {
            "since" => {
                since = Some(
                    value
                        .parse::<i64>()
                        .ok()
                        .filter(|v| *v >= 0)
                        .ok_or_else(|| bad("since must be a feed version (an integer >= 0)"))?,
                )
            }
            "wait" => {
                wait = value
                    .parse::<u64>()
                    .ok()
                    .filter(|w| *w <= MAX_WAIT_SECS)
                    .ok_or_else(|| bad("wait must be whole seconds from 0 to 60"))?
            }
            "grants" => {
                grants = value
                    .parse::<bool>()
                    .map_err(|_| bad("grants must be true or false"))?
            }
            _ => {}
        }
    }
    Ok((since.ok_or_else(|| bad("since is required"))?, wait, grants))
}

/// One digest, for a gateway's miss cache: 200 with the entry or 404.
async fn lookup(
    State(cp): State<Arc<ControlPlane>>,
    headers: HeaderMap,
    Path(digest): Path<String>,
) -> Result<Json<SnapshotEntry>, ApiError> {
    auth::feed(&cp, &headers)?;
    let digest = Digest::from_hex(&digest).ok_or_else(|| ApiError::Invalid {
        code: "feed/BAD_REQUEST",
        message: "a digest is 64 hex characters".into(),
    })?;
    let entry = store::entry_by_digest(&mut cp.store.conn().await?, &digest.to_hex()).await?;
    let result = if entry.is_some() {
        "found"
    } else {
        "not_found"
    };
    cp.telemetry.feed_lookups.with_label_values(&[result]).inc();
    let entry = entry.ok_or_else(|| ApiError::UnknownToken("no shipping token has this digest"))?;
    Ok(Json(entry))
}

/// Last-used times only move forward (shipping tokens' and shared tokens'); volumes add
/// up. Unknown ids are ignored: the token or account was deleted after the gateway
/// counted it.
async fn usage(
    State(cp): State<Arc<ControlPlane>>,
    headers: HeaderMap,
    Body(mut report): Body<UsageReport>,
) -> Result<StatusCode, ApiError> {
    auth::feed(&cp, &headers)?;
    // Volumes count toward the UTC day the report arrives on (gateways report every few
    // seconds, so at most that much lands on the next day).
    let day_ms = cp.clock.today_utc_ms();
    // Rows are written in one order whatever order the gateway sent, so two reports about
    // the same accounts cannot deadlock each other on PostgreSQL.
    report
        .tokens
        .sort_by(|a, b| a.token_id.0.cmp(&b.token_id.0));
    report
        .accounts
        .sort_by_key(|a| (a.account_id, a.kind.index()));
    report.shared_tokens.sort_by_key(|s| s.token_id);
    let mut tx = cp.store.begin().await?;
    for t in &report.tokens {
        let Ok(id) = t.token_id.0.parse::<i64>() else {
            continue;
        };
        let last_used = i64::try_from(t.last_used).unwrap_or(i64::MAX);
        shipping_tokens::mark_used(&mut tx, id, last_used).await?;
    }
    for s in &report.shared_tokens {
        let Ok(id) = i64::try_from(s.token_id) else {
            continue; // no shared token has such an id
        };
        let last_used_ms = i64::try_from(s.last_used_ms).unwrap_or(i64::MAX);
        shared_store::mark_used(&mut tx, id, last_used_ms).await?;
    }
    for a in &report.accounts {
        let Ok(account_id) = i64::try_from(a.account_id.0) else {
            continue; // no account has such an id
        };
        let bytes = i64::try_from(a.bytes).unwrap_or(i64::MAX);
        let records = i64::try_from(a.records).unwrap_or(i64::MAX);
        store::add_usage(&mut tx, account_id, a.kind, day_ms, bytes, records).await?;
        let oldest_kept = day_ms - (store::DAILY_USAGE_DAYS - 1) * DAY_MS;
        store::forget_usage_before(&mut tx, account_id, oldest_kept).await?;
    }
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResolveRequest {
    token: String,
}

/// What a shared token may read, as the read path needs it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Access {
    account_id: i64,
    filters_operator: FiltersOperator,
    filters: Vec<FieldValue>,
    expiration_date: Option<i64>,
}

#[derive(Serialize)]
struct FieldValue {
    field: String,
    value: String,
}

/// `POST /v1/feed/shared-tokens/resolve`: what a shared token may read right now — its
/// account and current filters — or 403 once it has expired. Marks it used. Superseded
/// by the read grants in the feed (`?grants=true`), which a gateway checks without asking.
async fn resolve(
    State(cp): State<Arc<ControlPlane>>,
    headers: HeaderMap,
    Body(req): Body<ResolveRequest>,
) -> Result<Json<Access>, ApiError> {
    auth::feed(&cp, &headers)?;
    let access = shared::resolve(&cp, &req.token).await?;
    Ok(Json(Access {
        account_id: access.account_id,
        filters_operator: access.filters_operator,
        filters: access
            .filters
            .into_iter()
            .map(|f| FieldValue {
                field: f.field,
                value: f.value,
            })
            .collect(),
        expiration_date: access.expires_at_ms,
    }))
}

fn version_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}
