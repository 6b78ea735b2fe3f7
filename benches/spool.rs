//! The spool's physical price and what group commit buys back (DESIGN §3, §7):
//! - `fsync/write_4k_fdatasync`: a plain `write` + `fdatasync` loop on the same disk — the
//!   floor every durable append pays once;
//! - `group_commit/appenders_N`: N concurrent requests appending ~250-byte entries through
//!   the spool; one fsync covers every append waiting for it, so throughput grows with N;
//! - `handoff/appenders_128`: the same 128 appenders with the reader draining what they
//!   append — group commit, then the in-memory handoff to the reader (the disk path's
//!   steady state): time until the reader has every entry;
//! - `replay/100k_entries`: reopening a spool holding 100,000 unacknowledged entries and
//!   reading them all back, as after a crash (records/s).
//!
//! The spool directory is under `target/` (the same disk as the project), not tmpfs.

use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio_util::sync::CancellationToken;
use tollgate::forward::spool;
use tollgate::forward::{ContentType, Envelope, Payloads, RecordBatch};
use tollgate::model::{AccountId, Kind, TokenId};
use tollgate::telemetry::Telemetry;

const LINE: &[u8] = br#"{"@timestamp":"2026-11-24T00:00:00.000Z","level":"info","service":"checkout","host":"web-17","message":"GET /api/v1/cart/42 200 12ms user=7f3a9c request_id=9b1d2e7a-41c3-4f8e-9a6b-0c5d3e2f1a4b","latency_ms":12}"#;

fn batch() -> RecordBatch {
    RecordBatch {
        envelope: Envelope {
            kind: Kind::Logs,
            account_id: AccountId(1001),
            token_id: TokenId("t-logs-1".into()),
            log_type: Some("nginx".into()),
            content_type: ContentType::JsonObject,
        },
        payloads: Payloads::from_buf([Bytes::from_static(LINE)]),
    }
}

fn bench_dir(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/bench-spool")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn fsync_floor(c: &mut Criterion) {
    let dir = bench_dir("fsync");
    let mut f = std::fs::File::create(dir.join("plain")).unwrap();
    let block = vec![b'x'; 4096];
    let mut g = c.benchmark_group("fsync");
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Bytes(4096));
    g.bench_function("write_4k_fdatasync", |b| {
        b.iter(|| {
            f.write_all(&block).unwrap();
            f.sync_data().unwrap();
        })
    });
    g.finish();
}

fn group_commit(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut g = c.benchmark_group("group_commit");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    g.throughput(Throughput::Elements(1));
    for appenders in [1usize, 16, 128] {
        let dir = bench_dir(&format!("group-{appenders}"));
        let opened = rt.block_on(async {
            spool::open(&dir, 64 << 20, 64 << 20, Telemetry::new().spool()).unwrap()
        });
        let handle = opened.handle.clone();
        g.bench_function(format!("appenders_{appenders}"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let per_task = iters.div_ceil(appenders as u64);
                    let started = Instant::now();
                    let tasks: Vec<_> = (0..appenders)
                        .map(|_| {
                            let handle = handle.clone();
                            tokio::spawn(async move {
                                for _ in 0..per_task {
                                    black_box(handle.append(batch()).await.unwrap());
                                }
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.unwrap();
                    }
                    started
                        .elapsed()
                        .mul_f64(iters as f64 / (per_task * appenders as u64) as f64)
                })
            })
        });
        drop(handle);
        drop(opened);
    }
    g.finish();
}

fn handoff(c: &mut Criterion) {
    const APPENDERS: u64 = 128;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = bench_dir("handoff");
    let opened = rt.block_on(async {
        spool::open(&dir, 64 << 20, 64 << 20, Telemetry::new().spool()).unwrap()
    });
    let handle = opened.handle.clone();
    // The reader runs as it does in tollgate, and reports how many entries it has seen.
    let (seen_tx, seen) = tokio::sync::watch::channel(0u64);
    let mut reader = opened.reader;
    let stop = CancellationToken::new();
    let reader_task = {
        let stop = stop.clone();
        rt.spawn(async move {
            let mut n = 0u64;
            while let Some(entries) = reader.next(&stop).await {
                n += entries.len() as u64;
                seen_tx.send_replace(n);
            }
        })
    };
    let mut g = c.benchmark_group("handoff");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    g.throughput(Throughput::Elements(1));
    g.bench_function(format!("appenders_{APPENDERS}"), |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let per_task = iters.div_ceil(APPENDERS);
                let target = *seen.borrow() + per_task * APPENDERS;
                let started = Instant::now();
                for _ in 0..APPENDERS {
                    let handle = handle.clone();
                    tokio::spawn(async move {
                        for _ in 0..per_task {
                            black_box(handle.append(batch()).await.unwrap());
                        }
                    });
                }
                let mut seen = seen.clone();
                seen.wait_for(|n| *n >= target).await.unwrap();
                started
                    .elapsed()
                    .mul_f64(iters as f64 / (per_task * APPENDERS) as f64)
            })
        })
    });
    g.finish();
    stop.cancel();
    drop(handle);
    drop(opened.handle);
    rt.block_on(reader_task).unwrap();
}

fn replay(c: &mut Criterion) {
    const ENTRIES: u64 = 100_000;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = bench_dir("replay");
    rt.block_on(async {
        let s = spool::open(&dir, 64 << 20, 64 << 20, Telemetry::new().spool()).unwrap();
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let h = s.handle.clone();
                tokio::spawn(async move {
                    for _ in 0..ENTRIES / 64 {
                        h.append(batch()).await.unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    let expected = (ENTRIES / 64) * 64;
    let mut g = c.benchmark_group("replay");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements(expected));
    g.bench_function("100k_entries", |b| {
        b.iter(|| {
            rt.block_on(async {
                // No cursor is ever persisted here, so every open replays everything.
                let s = spool::open(&dir, 64 << 20, 64 << 20, Telemetry::new().spool()).unwrap();
                let mut reader = s.reader;
                let stop = CancellationToken::new();
                let mut read = 0u64;
                while read < expected {
                    let entries = reader.next(&stop).await.expect("entries to replay");
                    read += entries.len() as u64;
                }
                black_box(read)
            })
        })
    });
    g.finish();
}

criterion_group!(benches, fsync_floor, group_commit, handoff, replay);
criterion_main!(benches);
