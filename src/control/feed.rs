//! The feed gateways replicate from (DESIGN §2, §4; protocol in README "Feed protocol"):
//! a versioned snapshot of shipping-token digests, a long-polled change list since a
//! version, single-digest lookups for the gateways' miss caches, usage reports, and shared
//! token resolution for the read path. Authenticated by the feed secret; plaintext tokens
//! never leave through here.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::error::ApiError;
use super::json::Body;
use super::store::{Store, Tx};
use super::{ControlPlane, shared_tokens};
use crate::model::Kind;
use crate::tokens::Digest;
use crate::tokens::snapshot::SnapshotEntry;

pub fn routes() -> Router<Arc<ControlPlane>> {
    Router::new()
        .route("/v1/feed/snapshot", get(snapshot))
        .route("/v1/feed/changes", get(changes))
        .route("/v1/feed/tokens/{digest}", get(lookup))
        .route("/v1/feed/usage", post(usage))
        .route(
            "/v1/feed/shared-tokens/resolve",
            post(shared_tokens::resolve),
        )
}

/// Longest a `changes` call may wait; gateways ask again right away.
const MAX_WAIT_SECS: u64 = 60;
/// Long polls also re-read the store this often, so a change committed by another
/// control-plane process on the same PostgreSQL is seen without a notification.
const RECHECK: Duration = Duration::from_secs(1);

pub fn authorize(cp: &ControlPlane, headers: &HeaderMap) -> Result<(), ApiError> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match (presented, &cp.feed_digest) {
        (Some(secret), Some(expected)) if Digest::of(secret) == *expected => Ok(()),
        _ => Err(ApiError::FeedUnauthorized(
            "the feed needs `Authorization: Bearer <feed secret>`",
        )),
    }
}

pub async fn current_version(store: &Store) -> Result<i64, ApiError> {
    Ok(sqlx::query("SELECT version FROM feed_state WHERE id = 1")
        .fetch_one(&store.pool)
        .await?
        .try_get("version")?)
}

const ENTRY_SELECT: &str = "SELECT t.digest, t.id, t.account_id, a.name AS account_name, t.kind, \
     t.enabled FROM shipping_tokens t JOIN accounts a ON a.id = t.account_id";

fn entry(r: &AnyRow) -> Result<SnapshotEntry, ApiError> {
    let kind: String = r.try_get("kind")?;
    let account_id: i64 = r.try_get("account_id")?;
    Ok(SnapshotEntry {
        token: None,
        digest: Some(r.try_get("digest")?),
        token_id: r.try_get::<i64, _>("id")?.to_string(),
        account_id: u64::try_from(account_id)
            .map_err(|_| ApiError::invalid("negative account id in the store"))?,
        account_name: r.try_get("account_name")?,
        kind: Kind::parse(&kind).ok_or_else(|| ApiError::invalid("unknown kind in the store"))?,
        enabled: r.try_get::<i64, _>("enabled")? != 0,
    })
}

/// Bytes of JSON per body chunk while streaming a snapshot.
const SNAPSHOT_CHUNK_BYTES: usize = 256 * 1024;

/// The whole table, streamed: rows go from the store to the socket in 256 KiB chunks, so
/// a million-token snapshot never sits in memory whole, however many gateways fetch it.
/// The version is read first: rows committed after it may ride along and are simply
/// applied again by the next `changes`. A store error mid-stream cuts the body short,
/// which the gateway sees as a snapshot that does not parse (and keeps its table).
async fn snapshot(
    State(cp): State<Arc<ControlPlane>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&cp, &headers)?;
    let version = version_u64(current_version(&cp.store).await?);
    let pool = cp.store.pool.clone();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let mut buf = format!("{{\"version\":{version},\"tokens\":[").into_bytes();
        let mut rows = sqlx::query(ENTRY_SELECT).fetch(&pool);
        let mut first = true;
        loop {
            let row = match rows.try_next().await {
                Ok(Some(row)) => row,
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(error = %e, "feed snapshot: the store failed mid-stream");
                    let _ = tx.send(Err(std::io::Error::other(e))).await;
                    return;
                }
            };
            let written = entry(&row).map_err(|e| std::io::Error::other(e.to_string()));
            let written = written.and_then(|e| {
                if !first {
                    buf.push(b',');
                }
                first = false;
                serde_json::to_writer(&mut buf, &e).map_err(std::io::Error::other)
            });
            if let Err(e) = written {
                tracing::error!(error = %e, "feed snapshot: a row does not encode");
                let _ = tx.send(Err(e)).await;
                return;
            }
            if buf.len() >= SNAPSHOT_CHUNK_BYTES {
                let chunk =
                    std::mem::replace(&mut buf, Vec::with_capacity(SNAPSHOT_CHUNK_BYTES + 512));
                if tx.send(Ok(Bytes::from(chunk))).await.is_err() {
                    return; // the gateway hung up
                }
            }
        }
        buf.extend_from_slice(b"]}");
        let _ = tx.send(Ok(Bytes::from(buf))).await;
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

#[derive(Debug, Serialize, Deserialize)]
pub struct Changes {
    pub version: u64,
    pub upserts: Vec<SnapshotEntry>,
    /// Digests (hex) of tokens deleted since `since`.
    pub deletes: Vec<String>,
}

impl Changes {
    /// Nothing new: the answer to a poll that waited it out (or was cut short by shutdown).
    fn none(version: i64) -> Changes {
        Changes {
            version: version_u64(version),
            upserts: Vec::new(),
            deletes: Vec::new(),
        }
    }
}

/// Upserts and deletes since `since`, waiting up to `wait` seconds for one to happen.
async fn changes(
    State(cp): State<Arc<ControlPlane>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<Changes>, ApiError> {
    authorize(&cp, &headers)?;
    let (since, wait) = changes_params(query.as_deref().unwrap_or(""))?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    let mut notified = cp.feed_version.subscribe();
    let _waiting = Waiting::new(&cp.telemetry.feed_waiting);
    loop {
        let (version, oldest) = versions(&cp.store).await?;
        if since < oldest || since > version {
            return Err(ApiError::Gone(format!(
                "the feed keeps changes from version {oldest} to {version}; fetch /v1/feed/snapshot"
            )));
        }
        if since < version {
            return Ok(Json(changes_since(&cp.store, since, version).await?));
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Ok(Json(Changes::none(version)));
        }
        tokio::select! {
            _ = notified.changed() => {}
            _ = tokio::time::sleep(RECHECK.min(deadline - now)) => {}
            _ = cp.stopping.cancelled() => {
                return Ok(Json(Changes::none(version)));
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

fn changes_params(query: &str) -> Result<(i64, u64), ApiError> {
    let bad = |what: &str| ApiError::Invalid {
        code: "feed/BAD_REQUEST",
        message: what.to_string(),
    };
    let mut since = None;
    let mut wait = 30;
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
            _ => {}
        }
    }
    Ok((since.ok_or_else(|| bad("since is required"))?, wait))
}

async fn versions(store: &Store) -> Result<(i64, i64), ApiError> {
    let row = sqlx::query("SELECT version, oldest FROM feed_state WHERE id = 1")
        .fetch_one(&store.pool)
        .await?;
    Ok((row.try_get("version")?, row.try_get("oldest")?))
}

async fn changes_since(store: &Store, since: i64, version: i64) -> Result<Changes, ApiError> {
    let rows = sqlx::query(&format!("{ENTRY_SELECT} WHERE t.feed_version > $1"))
        .bind(since)
        .fetch_all(&store.pool)
        .await?;
    let deletes = sqlx::query("SELECT digest FROM feed_tombstones WHERE feed_version > $1")
        .bind(since)
        .fetch_all(&store.pool)
        .await?
        .iter()
        .map(|r| r.try_get("digest"))
        .collect::<Result<_, _>>()?;
    Ok(Changes {
        version: version_u64(version),
        upserts: rows.iter().map(entry).collect::<Result<_, _>>()?,
        deletes,
    })
}

/// Forgets tombstones more than `retained` versions old and moves `oldest` past them: a
/// gateway further behind than that gets 410 and refetches the snapshot.
pub async fn prune_tombstones(tx: &mut Tx, version: i64, retained: i64) -> Result<(), ApiError> {
    let horizon = version.saturating_sub(retained);
    if horizon <= 0 {
        return Ok(());
    }
    sqlx::query("DELETE FROM feed_tombstones WHERE feed_version <= $1")
        .bind(horizon)
        .execute(&mut **tx)
        .await?;
    sqlx::query("UPDATE feed_state SET oldest = $1 WHERE id = 1 AND oldest < $1")
        .bind(horizon)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// One digest, for a gateway's miss cache: 200 with the entry or 404.
async fn lookup(
    State(cp): State<Arc<ControlPlane>>,
    headers: HeaderMap,
    Path(digest): Path<String>,
) -> Result<Json<SnapshotEntry>, ApiError> {
    authorize(&cp, &headers)?;
    let digest = Digest::from_hex(&digest).ok_or_else(|| ApiError::Invalid {
        code: "feed/BAD_REQUEST",
        message: "a digest is 64 hex characters".into(),
    })?;
    let row = sqlx::query(&format!("{ENTRY_SELECT} WHERE t.digest = $1"))
        .bind(digest.to_hex())
        .fetch_optional(&cp.store.pool)
        .await?;
    let result = if row.is_some() { "found" } else { "not_found" };
    cp.telemetry.feed_lookups.with_label_values(&[result]).inc();
    let row = row.ok_or_else(|| ApiError::UnknownToken("no shipping token has this digest"))?;
    Ok(Json(entry(&row)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsageReport {
    #[serde(default)]
    tokens: Vec<TokenUsage>,
    #[serde(default)]
    accounts: Vec<AccountUsage>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenUsage {
    token_id: String,
    /// Epoch seconds.
    last_used: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountUsage {
    account_id: i64,
    kind: Kind,
    bytes: i64,
    records: i64,
}

/// Last-used times only move forward; volumes add up. Unknown ids are ignored: the token
/// or account was deleted after the gateway counted it.
async fn usage(
    State(cp): State<Arc<ControlPlane>>,
    headers: HeaderMap,
    Body(report): Body<UsageReport>,
) -> Result<StatusCode, ApiError> {
    authorize(&cp, &headers)?;
    let mut tx = cp.store.begin().await?;
    for t in &report.tokens {
        let Ok(id) = t.token_id.parse::<i64>() else {
            continue;
        };
        sqlx::query(
            "UPDATE shipping_tokens SET last_used = $1 \
             WHERE id = $2 AND (last_used IS NULL OR last_used < $1)",
        )
        .bind(t.last_used)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    }
    // The counters saturate at i64::MAX: an overflowing sum would fail the whole report on
    // PostgreSQL ("bigint out of range") every time the gateway retried it.
    for a in &report.accounts {
        if a.bytes < 0 || a.records < 0 {
            return Err(ApiError::invalid("usage bytes and records must be >= 0"));
        }
        sqlx::query(
            "INSERT INTO account_usage (account_id, kind, bytes, records) \
             SELECT id, $2, $3, $4 FROM accounts WHERE id = $1 \
             ON CONFLICT (account_id, kind) DO UPDATE SET \
             bytes = CASE WHEN account_usage.bytes > 9223372036854775807 - excluded.bytes \
             THEN 9223372036854775807 ELSE account_usage.bytes + excluded.bytes END, \
             records = CASE WHEN account_usage.records > 9223372036854775807 - excluded.records \
             THEN 9223372036854775807 ELSE account_usage.records + excluded.records END",
        )
        .bind(a.account_id)
        .bind(a.kind.as_str())
        .bind(a.bytes)
        .bind(a.records)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

fn version_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}
