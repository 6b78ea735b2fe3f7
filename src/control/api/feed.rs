//! The feed gateways replicate from (DESIGN §2, §4; protocol in docs/tokens.md, "The feed
//! protocol"):
//! a versioned snapshot of shipping-token digests — with `?grants=true`, also the read
//! grants (accounts' read attributes, API and shared token digests), with `?volume=true`
//! the volume policies, with `?filters=true` the drop filters — a long-polled change
//! list since a version, single-digest lookups for the gateways' miss caches, usage
//! reports, and shared token resolution (superseded by the grants). Authenticated by the
//! feed secret; plaintext tokens never leave through here.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use futures_util::{Stream, TryStreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::error::ApiError;
use super::extract::Gateway;
use super::json::Body;
use crate::control::plane::ControlPlane;
use crate::control::refusal::Refusal;
use crate::control::store::shared_tokens::FiltersOperator;
use crate::control::usecases::feed as usecase;
use crate::control::usecases::shared_tokens as shared;
use crate::tokens::wire::{Changes, Digest, SnapshotEntry, UsageReport};

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
/// Bytes of JSON per body chunk while streaming a snapshot.
const SNAPSHOT_CHUNK_BYTES: usize = 256 * 1024;

/// `?grants=true` on the snapshot and the changes: the read grants ride along;
/// `?volume=true`: the accounts' volume policies; `?filters=true`: the drop filters.
/// Gateways from before any of them don't ask, and get the shapes they know (their parser
/// refuses unknown fields).
#[derive(Deserialize)]
struct SnapshotParams {
    #[serde(default)]
    grants: bool,
    #[serde(default)]
    volume: bool,
    #[serde(default)]
    filters: bool,
}

/// The whole table, streamed: rows go from the store to the socket in 256 KiB chunks, so
/// a million-token snapshot never sits in memory whole, however many gateways fetch it;
/// with `?grants=true` the grants' collections follow the same way. The version is read
/// first: rows committed after it may ride along and are simply applied again by the next
/// `changes`. A store error mid-stream cuts the body short, which the gateway sees as a
/// snapshot that does not parse (and keeps its table).
async fn snapshot(
    State(cp): State<Arc<ControlPlane>>,
    _: Gateway,
    params: Result<Query<SnapshotParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) =
        params.map_err(|_| bad_request("grants, volume and filters must be true or false"))?;
    let snapshot = usecase::snapshot(&cp).await?;
    let volumes = match params.volume {
        true => Some(snapshot.volumes().await?),
        false => None,
    };
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let version = snapshot.version;
        let mut out = Chunks {
            buf: format!("{{\"version\":{version},\"tokens\":[").into_bytes(),
            tx,
        };
        if out.array(snapshot.tokens()).await.is_err() {
            return;
        }
        out.buf.push(b']');
        if params.grants {
            out.buf.extend_from_slice(b",\"grants\":{\"accounts\":[");
            if out.array(snapshot.grant_accounts()).await.is_err() {
                return;
            }
            out.buf.extend_from_slice(b"],\"api_tokens\":[");
            if out.array(snapshot.grant_api_tokens()).await.is_err() {
                return;
            }
            out.buf.extend_from_slice(b"],\"shared_tokens\":[");
            if out.array(snapshot.grant_shared_tokens()).await.is_err() {
                return;
            }
            out.buf.extend_from_slice(b"]}");
        }
        if let Some(volumes) = volumes {
            out.buf.extend_from_slice(b",\"volumes\":");
            serde_json::to_writer(&mut out.buf, &volumes).expect("policies encode");
        }
        if params.filters {
            out.buf.extend_from_slice(b",\"filters\":{\"logs\":[");
            if out.array(snapshot.log_filters()).await.is_err() {
                return;
            }
            out.buf.extend_from_slice(b"],\"metrics\":[");
            if out.array(snapshot.metrics_filters()).await.is_err() {
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
        rows: impl Stream<Item = Result<T, Refusal>>,
    ) -> Result<(), Stopped> {
        let mut rows = std::pin::pin!(rows);
        let mut first = true;
        loop {
            let row = match rows.try_next().await {
                Ok(Some(row)) => row,
                Ok(None) => return Ok(()),
                Err(e) => {
                    tracing::error!(error = ?e, "feed snapshot: the store failed mid-stream");
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

/// Upserts and deletes since `since`, waiting up to `wait` seconds for one to happen.
async fn changes(
    State(cp): State<Arc<ControlPlane>>,
    _: Gateway,
    RawQuery(query): RawQuery,
) -> Result<Json<Changes>, ApiError> {
    let params = changes_params(query.as_deref().unwrap_or(""))?;
    let _waiting = Waiting::new(&cp.telemetry.feed_waiting);
    let wait = Duration::from_secs(params.wait);
    let changes = usecase::changes(
        &cp,
        params.since,
        wait,
        params.grants,
        params.volume,
        params.filters,
    )
    .await?;
    Ok(Json(changes))
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

/// A feed call's malformed parameter.
fn bad_request(message: &str) -> Refusal {
    Refusal::Invalid {
        code: "feed/BAD_REQUEST",
        message: message.to_string(),
    }
}

struct ChangesParams {
    since: i64,
    wait: u64,
    grants: bool,
    volume: bool,
    filters: bool,
}

fn changes_params(query: &str) -> Result<ChangesParams, Refusal> {
    let bad = bad_request;
    let mut since = None;
    let mut wait = 30;
    let mut grants = false;
    let mut volume = false;
    let mut filters = false;
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
            "volume" => {
                volume = value
                    .parse::<bool>()
                    .map_err(|_| bad("volume must be true or false"))?
            }
            "filters" => {
                filters = value
                    .parse::<bool>()
                    .map_err(|_| bad("filters must be true or false"))?
            }
            _ => {}
        }
    }
    Ok(ChangesParams {
        since: since.ok_or_else(|| bad("since is required"))?,
        wait,
        grants,
        volume,
        filters,
    })
}

/// One digest, for a gateway's miss cache: 200 with the entry or 404.
async fn lookup(
    State(cp): State<Arc<ControlPlane>>,
    _: Gateway,
    Path(digest): Path<String>,
) -> Result<Json<SnapshotEntry>, ApiError> {
    let digest =
        Digest::from_hex(&digest).ok_or_else(|| bad_request("a digest is 64 hex characters"))?;
    let entry = usecase::lookup(&cp, &digest).await?;
    let result = if entry.is_some() {
        "found"
    } else {
        "not_found"
    };
    cp.telemetry.feed_lookups.with_label_values(&[result]).inc();
    let entry = entry.ok_or(Refusal::UnknownToken("no shipping token has this digest"))?;
    Ok(Json(entry))
}

/// A gateway's usage report: last-used times and daily volumes.
async fn usage(
    State(cp): State<Arc<ControlPlane>>,
    _: Gateway,
    Body(report): Body<UsageReport>,
) -> Result<StatusCode, ApiError> {
    usecase::record_usage(&cp, report).await?;
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
    _: Gateway,
    Body(req): Body<ResolveRequest>,
) -> Result<Json<Access>, ApiError> {
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
