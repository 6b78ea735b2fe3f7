//! The control plane's feed at scale: a SQLite store holding
//! 1,000,000 shipping tokens over 10,000 accounts, then
//! - `feed/snapshot_fetch_1m`: `GET /v1/feed/snapshot` over loopback HTTP (store query +
//!   JSON encoding + transfer), what a gateway pays at boot or after a 410;
//! - `feed/snapshot_fetch_and_build_1m`: the same plus `Snapshot::parse` + `into_table`, the
//!   gateway's whole cost to go from nothing to a serving table;
//! - `feed/changes_1000`: `GET /v1/feed/changes` returning a 1,000-token delta.
//!
//! Rows are bulk-inserted straight into the store (the API would take an hour for a
//! million), in the exact shape the API writes them.

use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;
use tollgate::config::ControlPlaneConfig;
use tollgate::control::ControlPlane;
use tollgate::tokens::Digest;
use tollgate::tokens::wire::Snapshot;

const TOKENS: i64 = 1_000_000;
const ACCOUNTS: i64 = 10_000;
const DELTA: i64 = 1_000;
const FEED: &str = "bench-feed-secret-000000001";

struct Fixture {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    /// The feed version just before the last `DELTA` tokens changed.
    before_delta: i64,
    _stop: CancellationToken,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = ControlPlaneConfig {
        embedded: false,
        listen: "127.0.0.1:0".parse().expect("addr"),
        database_url: format!("sqlite://{}/control.db", dir.path().display()),
        admin_secret: Some("bench-admin-secret-00000001".into()),
        feed_secret: Some(FEED.into()),
        feed_retained_versions: 100_000,
        ..ControlPlaneConfig::default()
    };
    let cp = ControlPlane::open(&config).await.expect("open");
    let pool = cp.pool().clone();
    let mut tx = pool.begin().await.expect("begin");
    for a in 0..ACCOUNTS {
        sqlx::query(
            "INSERT INTO accounts (id, name, type, plan, created_at) VALUES ($1, $2, 'logs', 'pro', 0)",
        )
        .bind(a + 1)
        .bind(format!("account-{a}"))
        .execute(&mut *tx)
        .await
        .expect("insert account");
    }
    // Multi-row inserts: SQLite allows 32,766 parameters per statement.
    const ROWS: i64 = 2_000;
    for chunk in 0..TOKENS / ROWS {
        let mut sql = String::from(
            "INSERT INTO shipping_tokens (id, account_id, kind, name, token, digest, enabled, \
             created_at, created_by, updated_at, updated_by, feed_version) VALUES ",
        );
        for r in 0..ROWS {
            let i = chunk * ROWS + r;
            let token = format!("benchToken{i:022}");
            let version = if i >= TOKENS - DELTA { 2 } else { 1 };
            if r > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "({id}, {account}, 'logs', 'default', '{token}', '{digest}', 1, 0, 'admin', 0, 'admin', {version})",
                id = i + 1,
                account = i % ACCOUNTS + 1,
                digest = Digest::of(&token).to_hex(),
            ));
        }
        sqlx::query(&sql)
            .execute(&mut *tx)
            .await
            .expect("insert tokens");
    }
    sqlx::query("UPDATE feed_state SET version = 2 WHERE id = 1")
        .execute(&mut *tx)
        .await
        .expect("version");
    // Rows inserted with their own ids: later creates must start past them.
    for (name, last) in [("accounts", ACCOUNTS), ("shipping_tokens", TOKENS)] {
        sqlx::query("UPDATE id_sequences SET last = $1 WHERE name = $2")
            .bind(last)
            .bind(name)
            .execute(&mut *tx)
            .await
            .expect("id sequences");
    }
    tx.commit().await.expect("commit");
    // Reopen so the control plane reads the version the rows carry.
    let cp = ControlPlane::open(&config).await.expect("reopen");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let stop = CancellationToken::new();
    tokio::spawn(tollgate::control::serve_with(
        cp,
        config,
        listener,
        stop.clone(),
    ));
    Fixture {
        base,
        client: Client::builder(TokioExecutor::new()).build_http(),
        before_delta: 1,
        _stop: stop,
        _dir: dir,
    }
}

async fn get(f: &Fixture, path: &str) -> Bytes {
    let req = http::Request::get(format!("{}{path}", f.base))
        .header("authorization", format!("Bearer {FEED}"))
        .body(Full::new(Bytes::new()))
        .expect("request");
    let res = f.client.request(req).await.expect("answer");
    assert_eq!(res.status(), http::StatusCode::OK);
    res.into_body().collect().await.expect("body").to_bytes()
}

fn feed(c: &mut Criterion) {
    let rt = Runtime::new().expect("runtime");
    let f = rt.block_on(fixture());
    let size = rt.block_on(get(&f, "/v1/feed/snapshot")).len();
    println!(
        "snapshot of {TOKENS} tokens: {:.1} MiB of JSON",
        size as f64 / 1048576.0
    );

    let mut group = c.benchmark_group("feed");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(30));
    group.bench_function("snapshot_fetch_1m", |b| {
        b.iter(|| rt.block_on(get(&f, "/v1/feed/snapshot")))
    });
    group.bench_function("snapshot_fetch_and_build_1m", |b| {
        b.iter(|| {
            let body = rt.block_on(get(&f, "/v1/feed/snapshot"));
            let table = Snapshot::parse(&body)
                .expect("parse")
                .into_table()
                .expect("build");
            assert_eq!(table.len() as i64, TOKENS);
            table
        })
    });
    let path = format!("/v1/feed/changes?since={}&wait=0", f.before_delta);
    group.bench_function("changes_1000", |b| {
        b.iter(|| {
            let body = rt.block_on(get(&f, &path));
            assert!(body.len() > 100 * DELTA as usize);
            body
        })
    });
    group.finish();
}

criterion_group!(benches, feed);
criterion_main!(benches);
