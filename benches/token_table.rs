//! The control-plane source's costs at DESIGN's scale, 1,000,000 tokens:
//! - `table_memory`: bytes per token of a built table, counted by a counting global
//!   allocator (live bytes requested) and by RSS growth (what malloc really took), for the
//!   current layout and for a replica of the layout before it (`HashMap<Digest,
//!   Arc<TokenInfo>>` with `Arc<str>` names), printed before the timed groups. Allocation
//!   counts do not depend on the optimization level: `TOLLGATE_BENCH_MEMORY_ONLY=1` prints
//!   them and exits, so a debug build can report them too. Each layout is measured in a
//!   fresh child process.
//! - `snapshot/parse_and_build_1m`: `Snapshot::parse` + `into_table` of a 1,000,000-token
//!   feed snapshot (the JSON the control plane sends, ~190 MB), as `FeedSource` does.
//! - `delta/apply_1000_to_1m`: `TokenTable::with_delta` of 1,000 upserts (500 changed,
//!   500 new) and 100 deletes on a 1,000,000-token table: the copy-and-apply of each feed
//!   delta.
//! - `delta/apply_1_to_1m`: the same with one upsert — a token disabled in the control
//!   plane — which copies one shard of the table's 256.
//! - `authenticate/hit_spread_{idle,during_deltas}`: a table hit over 4,096 tokens spread
//!   over the table, without and with a thread applying such deltas and swapping each new
//!   table in, back to back (the worst case: a control plane changing tokens non-stop).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use common::{ACCOUNTS, SPREAD, TABLE_SIZE, token};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use tollgate::model::{AccountId, Kind, TokenId};
use tollgate::telemetry::Telemetry;
use tollgate::tokens::digest::BuildDigestHasher;
use tollgate::tokens::wire::{Snapshot, SnapshotEntry};
use tollgate::tokens::{AuthError, Delta, Digest, TokenInfo, TokenTable, Tokens};

/// Counts live heap bytes (requested sizes; malloc's own overhead shows in the RSS).
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to `System` unchanged; only counts sizes on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The `i`th token as the feed sends it: a decimal token id, as the control plane's.
fn entry(i: u64, enabled: bool) -> SnapshotEntry {
    SnapshotEntry {
        token: None,
        digest: Some(Digest::of(&token(i)).to_hex()),
        token_id: (i + 1).to_string(),
        account_id: 1000 + i % ACCOUNTS,
        account_name: format!("account-{}", i % ACCOUNTS),
        kind: Kind::Logs,
        enabled,
    }
}

fn snapshot(n: u64) -> Snapshot {
    Snapshot {
        version: 1,
        tokens: (0..n).map(|i| entry(i, true)).collect(),
        grants: None,
        volumes: None,
        filters: None,
    }
}

fn rss_bytes() -> i64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: i64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// The layout before: digest as a separate key, `Arc<str>` names.
#[allow(dead_code)] // only its size matters
struct OldInfo {
    token_id: TokenId,
    account_id: AccountId,
    account_name: Arc<str>,
    kind: Kind,
    enabled: bool,
}

/// Builds `n` tokens with `build` and reports live bytes and RSS growth per token.
fn per_token<T>(label: &str, n: u64, build: impl FnOnce() -> T) -> T {
    let (live, rss) = (LIVE.load(Ordering::Relaxed), rss_bytes());
    let built = build();
    let live = (LIVE.load(Ordering::Relaxed) - live) as f64 / n as f64;
    let rss = (rss_bytes() - rss) as f64 / n as f64;
    println!("table_memory/{label}: {live:.1} B/token allocated, {rss:.1} B/token RSS growth");
    built
}

/// Measures each layout in a fresh process of this bench (freed heap that malloc keeps
/// would otherwise make the second measurement's RSS look small).
fn report_memory() {
    for layout in ["current", "before"] {
        let status = std::process::Command::new(std::env::current_exe().expect("own path"))
            .env("TOLLGATE_BENCH_MEMORY_ONLY", layout)
            .status()
            .expect("run the memory measurement");
        assert!(status.success(), "memory measurement of {layout} failed");
    }
}

fn measure_memory(layout: &str) {
    // Each entry is generated and inserted at once, so no intermediate snapshot inflates
    // the counts; names are interned per account as `Snapshot::into_table` does.
    let names: Vec<Arc<String>> = (0..ACCOUNTS)
        .map(|a| Arc::new(format!("account-{a}")))
        .collect();
    if layout == "current" {
        measure_current(&names);
    } else {
        measure_before();
    }
}

fn measure_current(names: &[Arc<String>]) {
    let table = per_token("current_layout", TABLE_SIZE, || {
        let mut table = TokenTable::with_capacity(1, TABLE_SIZE as usize);
        for i in 0..TABLE_SIZE {
            table.insert(TokenInfo {
                digest: Digest::of(&token(i)),
                token_id: TokenId((i + 1).to_string().into()),
                account_id: AccountId(1000 + i % ACCOUNTS),
                account_name: Arc::clone(&names[(i % ACCOUNTS) as usize]),
                kind: Kind::Logs,
                enabled: true,
            });
        }
        table
    });
    drop(table);
}

fn measure_before() {
    let old_names: Vec<Arc<str>> = (0..ACCOUNTS)
        .map(|a| Arc::from(format!("account-{a}")))
        .collect();
    let old = per_token("layout_before", TABLE_SIZE, || {
        let mut map: HashMap<Digest, Arc<OldInfo>, BuildDigestHasher> =
            HashMap::with_capacity_and_hasher(TABLE_SIZE as usize, Default::default());
        for i in 0..TABLE_SIZE {
            map.insert(
                Digest::of(&token(i)),
                Arc::new(OldInfo {
                    token_id: TokenId((i + 1).to_string().into()),
                    account_id: AccountId(1000 + i % ACCOUNTS),
                    account_name: Arc::clone(&old_names[(i % ACCOUNTS) as usize]),
                    kind: Kind::Logs,
                    enabled: true,
                }),
            );
        }
        map
    });
    drop(old);
}

/// 500 changed tokens, 500 new ones and 100 deletes, spread over the table.
fn delta(version: u64) -> Delta {
    let step = TABLE_SIZE / 500;
    let mut names = tollgate::tokens::snapshot::AccountNames::default();
    let mut upserts = Vec::with_capacity(1000);
    for k in 0..500 {
        let changed = entry(k * step, version.is_multiple_of(2));
        upserts.push(changed.into_info(0, &mut names).expect("valid"));
        let new = entry(TABLE_SIZE + version * 1000 + k, true);
        upserts.push(new.into_info(0, &mut names).expect("valid"));
    }
    let deletes = (0..100).map(|k| Digest::of(&token(k * step + 1))).collect();
    Delta {
        version,
        upserts,
        deletes,
    }
}

fn authenticate_now(tokens: &Tokens, token: &str) -> Result<Arc<TokenInfo>, AuthError> {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(tokens.authenticate(Some(token), Kind::Logs)).poll(&mut cx) {
        Poll::Ready(result) => result,
        Poll::Pending => panic!("authenticate awaited for a token the table answers"),
    }
}

fn bench_table(c: &mut Criterion) {
    match std::env::var("TOLLGATE_BENCH_MEMORY_ONLY").as_deref() {
        Ok(layout @ ("current" | "before")) => {
            measure_memory(layout);
            std::process::exit(0);
        }
        Ok(_) => {
            report_memory();
            std::process::exit(0);
        }
        Err(_) => report_memory(),
    }

    let json = serde_json::to_vec(&snapshot(TABLE_SIZE)).expect("serializes");
    println!(
        "snapshot: {} tokens, {:.0} MB of JSON",
        TABLE_SIZE,
        json.len() as f64 / 1e6
    );
    let mut group = c.benchmark_group("snapshot");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(15));
    group.bench_function("parse_and_build_1m", |b| {
        b.iter(|| {
            Snapshot::parse(black_box(&json))
                .and_then(Snapshot::into_table)
                .expect("valid")
        })
    });
    group.finish();

    let table = Arc::new(
        Snapshot::parse(&json)
            .and_then(Snapshot::into_table)
            .expect("valid"),
    );
    drop(json);
    let mut group = c.benchmark_group("delta");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    group.bench_function("apply_1000_to_1m", |b| {
        b.iter_batched(|| delta(2), |d| table.with_delta(d), BatchSize::LargeInput)
    });
    // One change, as a token disabled in the control plane: copies one shard of 256.
    group.bench_function("apply_1_to_1m", |b| {
        b.iter_batched(
            || {
                let mut d = delta(2);
                d.upserts.truncate(1);
                d.deletes.clear();
                d
            },
            |d| table.with_delta(d),
            BatchSize::LargeInput,
        )
    });
    group.finish();

    let tokens = Arc::new(Tokens::new(Telemetry::new().tokens()));
    tokens.install(Arc::clone(&table));
    let spread: Vec<String> = (0..SPREAD)
        .map(|i| token(i * (TABLE_SIZE / SPREAD) + 3))
        .collect();
    assert!(authenticate_now(&tokens, &spread[0]).is_ok());
    let mut group = c.benchmark_group("authenticate");
    group
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("hit_spread_idle", |b| {
        let mut next = spread.iter().cycle();
        b.iter(|| authenticate_now(&tokens, black_box(next.next().expect("cycles"))))
    });

    // A writer thread applying deltas back to back, as `FeedSource` would if every poll
    // brought 1,000 changes; each new table is swapped in while lookups run.
    let stop = Arc::new(AtomicBool::new(false));
    let applied = Arc::new(AtomicU64::new(0));
    let writer = {
        let (tokens, stop, applied) =
            (Arc::clone(&tokens), Arc::clone(&stop), Arc::clone(&applied));
        std::thread::spawn(move || {
            let mut version = 2;
            while !stop.load(Ordering::Relaxed) {
                let current = tokens.current().expect("installed");
                let next = current.with_delta(delta(version));
                tokens.install(Arc::new(next));
                applied.fetch_add(1, Ordering::Relaxed);
                version += 1;
            }
        })
    };
    let started = std::time::Instant::now();
    group.bench_function("hit_spread_during_deltas", |b| {
        let mut next = spread.iter().cycle();
        b.iter(|| authenticate_now(&tokens, black_box(next.next().expect("cycles"))))
    });
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer thread");
    println!(
        "authenticate/hit_spread_during_deltas: {} deltas applied and swapped in meanwhile ({:.1}/s)",
        applied.load(Ordering::Relaxed),
        applied.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
    );
    group.finish();
}

criterion_group!(benches, bench_table);
criterion_main!(benches);
