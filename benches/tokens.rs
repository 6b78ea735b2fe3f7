//! The token check of DESIGN §7 against a table of 1,000,000 tokens: `Digest::of` alone
//! (the "~100 ns" hash), `TokenTable::get` alone (the "~20–50 ns" lookup), then
//! `Tokens::authenticate` for a hit and a miss, which pay the syntax check, one SHA-256,
//! one atomic load and one lookup. `authenticate/hit_spread` cycles through 4,096 tokens
//! spread over the table, so the lookup pays the cache misses real traffic does.
//!
//! The table is built once, before any timing, through `Snapshot::into_table`: the same
//! path the file source, the persisted snapshot and the feed take.

mod common;

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use common::{ACCOUNTS, SPREAD, TABLE_SIZE, mix, token};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use tollgate::model::Kind;
use tollgate::telemetry::Telemetry;
use tollgate::tokens::wire::{Snapshot, SnapshotEntry};
use tollgate::tokens::{AuthError, Digest, TokenInfo, Tokens};

/// Builds a 1M-token table from digest entries, as the control-plane feed delivers it.
fn install_table() -> Tokens {
    let tokens = (0..TABLE_SIZE)
        .map(|i| SnapshotEntry {
            token: None,
            digest: Some(Digest::of(&token(i)).to_hex()),
            token_id: format!("t-{i}"),
            account_id: 1000 + i % ACCOUNTS,
            account_name: format!("account-{}", i % ACCOUNTS),
            kind: Kind::Logs,
            enabled: true,
        })
        .collect();
    let table = Snapshot {
        version: 1,
        tokens,
        grants: None,
        volumes: None,
        filters: None,
    }
    .into_table()
    .expect("generated snapshot is valid");
    assert_eq!(table.len() as u64, TABLE_SIZE);
    let tokens = Tokens::new(Telemetry::new().tokens());
    tokens.install(Arc::new(table));
    tokens
}

/// Polls `authenticate` once: a token the table knows must be answered without awaiting
/// (DESIGN §7: no await on the hit path), so a `Pending` here is a bug, not a slow path.
fn authenticate_now(tokens: &Tokens, token: &str, kind: Kind) -> Result<Arc<TokenInfo>, AuthError> {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(tokens.authenticate(Some(token), kind)).poll(&mut cx) {
        Poll::Ready(result) => result,
        Poll::Pending => panic!("authenticate awaited for a token the table answers"),
    }
}

fn bench_tokens(c: &mut Criterion) {
    let tokens = install_table();
    let hit = token(TABLE_SIZE / 2 + 12_345);
    // Same length and alphabet as a real token, so the miss pays the same SHA-256.
    let miss = format!("bad_{:016x}{:012x}", mix(u64::MAX), 0);
    assert!(authenticate_now(&tokens, &hit, Kind::Logs).is_ok());
    assert_eq!(
        authenticate_now(&tokens, &miss, Kind::Logs),
        Err(AuthError::Unknown)
    );
    let spread: Vec<String> = (0..SPREAD)
        .map(|i| token(i * (TABLE_SIZE / SPREAD)))
        .collect();

    // Three groups, so none runs much over ~12 s on a 2-core machine.
    let mut group = c.benchmark_group("digest");
    configure(&mut group);
    group.bench_function("of_32_chars", |b| b.iter(|| Digest::of(black_box(&hit))));
    group.finish();

    // The lookup alone, digest precomputed: DESIGN §7's "~20–50 ns" for the table.
    let table = tokens.current().expect("installed above");
    let hit_digest = Digest::of(&hit);
    let mut group = c.benchmark_group("token_table");
    configure(&mut group);
    group.bench_function("get_hit", |b| {
        b.iter(|| table.get(black_box(&hit_digest)).is_some())
    });
    group.finish();

    let mut group = c.benchmark_group("authenticate");
    configure(&mut group);
    group.bench_function("hit", |b| {
        b.iter(|| authenticate_now(&tokens, black_box(hit.as_str()), Kind::Logs))
    });
    group.bench_function("hit_spread", |b| {
        let mut next = spread.iter().cycle();
        b.iter(|| {
            let token = next.next().expect("cycle over a non-empty list never ends");
            authenticate_now(&tokens, black_box(token.as_str()), Kind::Logs)
        })
    });
    group.bench_function("miss", |b| {
        b.iter(|| authenticate_now(&tokens, black_box(miss.as_str()), Kind::Logs))
    });
    group.finish();
}

fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
}

criterion_group!(benches, bench_tokens);
criterion_main!(benches);
