//! The bulk path of DESIGN §7 on a ~1 MiB NDJSON body of ~250-byte JSON logs: line
//! splitting, gunzip, the two together (the in-process "bulk path ceiling" the server is
//! compared against), and the file sink's encoding of the split records.
//!
//! Inputs are built once, deterministically, outside the timed loops. Throughput is the
//! uncompressed body size (payload bytes for the sink encode), so the numbers compare.

mod common;

use std::hint::black_box;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::mix;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use flate2::Compression;
use flate2::write::GzEncoder;
use tollgate::forward::sinks::file::encode;
use tollgate::forward::{ContentType, Envelope};
use tollgate::ingest::body::{Encoding, decompress};
use tollgate::ingest::budget::{DecodeBudget, DecodeHold};
use tollgate::ingest::logs::{Lines, Splitter, split_lines};
use tollgate::model::{AccountId, Kind, TokenId};

const BODY_BYTES: usize = 1 << 20;
const MAX_LINE_BYTES: usize = 500_000;
const MAX_DECOMPRESSED_BYTES: u64 = 100 << 20;
const LOG_TYPE: &str = "nginx";
const LOADTEST_BULK_BODY: &str = "loadtest/data/bulk.ndjson.gz";

const HOSTS: [&str; 6] = ["web-01", "web-02", "web-03", "api-01", "api-02", "edge-01"];
const METHODS: [&str; 4] = ["GET", "GET", "POST", "PUT"];
const PATHS: [&str; 5] = [
    "/api/v1/orders",
    "/api/v1/items",
    "/api/v2/cart/checkout",
    "/static/js/app.bundle.js",
    "/healthz",
];
const STATUSES: [u16; 8] = [200, 200, 200, 200, 201, 304, 404, 502];
const AGENTS: [&str; 3] = [
    "Mozilla/5.0 (X11; Linux x86_64) Firefox/126.0",
    "curl/8.5.0",
    "okhttp/4.12.0",
];

fn pick<T: Copy>(options: &[T], r: u64) -> T {
    options[(r % options.len() as u64) as usize]
}

/// One access-log-like JSON object of about 250 bytes. With `own_type` it carries its own
/// `type` field (kept as a slice of the body); without, ingest adds the request's type.
fn log_line(i: u64, own_type: bool) -> String {
    let r = mix(i);
    let (method, path, status) = (
        pick(&METHODS, r),
        pick(&PATHS, r >> 8),
        pick(&STATUSES, r >> 16),
    );
    let id = (r >> 24) % 1_000_000;
    let type_field = if own_type { r#""type":"nginx","# } else { "" };
    format!(
        concat!(
            r#"{{{}"@timestamp":"2025-03-14T09:{:02}:{:02}.{:03}Z","host":"{}","#,
            r#""client_ip":"10.{}.{}.{}","method":"{}","path":"{}/{}","status":{},"#,
            r#""bytes_sent":{},"duration_ms":{}.{},"user_agent":"{}","#,
            r#""message":"{} {} {}"}}"#
        ),
        type_field,
        (i / 60_000) % 60,
        (i / 1000) % 60,
        i % 1000,
        pick(&HOSTS, r >> 4),
        (r >> 32) % 256,
        (r >> 40) % 256,
        (r >> 48) % 256,
        method,
        path,
        id,
        status,
        (r >> 12) % 100_000,
        (r >> 20) % 500,
        (r >> 28) % 10,
        pick(&AGENTS, r >> 36),
        method,
        path,
        status,
    )
}

/// About `BODY_BYTES` of newline-terminated log lines.
fn ndjson_body(own_type: bool) -> Bytes {
    let mut body = String::with_capacity(BODY_BYTES + 512);
    let mut i = 0;
    while body.len() < BODY_BYTES {
        body.push_str(&log_line(i, own_type));
        body.push('\n');
        i += 1;
    }
    Bytes::from(body)
}

fn gzip(data: &[u8]) -> Bytes {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder
        .write_all(data)
        .expect("writing to a Vec cannot fail");
    Bytes::from(encoder.finish().expect("writing to a Vec cannot fail"))
}

/// Few, long-enough samples: each iteration handles a whole ~1 MiB body.
/// The bulk path in process, as the route runs it: gzip decoded a piece at a time, each
/// piece split + validated + enriched as it comes.
fn gunzip_and_split(gz: &Bytes, budget: &Arc<DecodeBudget>) -> Lines {
    Splitter::new(LOG_TYPE, MAX_LINE_BYTES)
        .split_compressed(
            gz.clone(),
            Encoding::Gzip,
            MAX_DECOMPRESSED_BYTES,
            &mut DecodeHold::new(budget),
        )
        .expect("valid gzip, within the lines' budget")
}

fn split(body: &Bytes, budget: &Arc<DecodeBudget>) -> Lines {
    split_lines(body, LOG_TYPE, MAX_LINE_BYTES, &mut DecodeHold::new(budget))
        .expect("within the lines' budget")
}

fn gunzip(gz: &Bytes, budget: &Arc<DecodeBudget>) -> Bytes {
    decompress(
        gz.clone(),
        Encoding::Gzip,
        MAX_DECOMPRESSED_BYTES,
        &mut DecodeHold::new(budget),
    )
    .expect("valid gzip")
}

fn configure(group: &mut BenchmarkGroup<'_, WallTime>, bytes: usize) {
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Bytes(bytes as u64));
}

fn bench_bulk_path(c: &mut Criterion) {
    let body = ndjson_body(false);
    let typed_body = ndjson_body(true);
    let gz = gzip(&body);
    let budget = DecodeBudget::unlimited();
    let lines = split(&body, &budget);
    assert!(lines.counts.all_accepted(), "{:?}", lines.counts);
    assert!(split(&typed_body, &budget).counts.all_accepted());
    assert_eq!(gunzip(&gz, &budget), body);
    assert_eq!(gunzip_and_split(&gz, &budget).payloads, lines.payloads);

    // One group per pair of benches, so each group stays under ~15 s on a 2-core machine.
    let mut group = c.benchmark_group("split_lines");
    configure(&mut group, body.len());
    group.bench_function("type_added", |b| {
        b.iter(|| split(black_box(&body), &budget))
    });
    group.throughput(Throughput::Bytes(typed_body.len() as u64));
    group.bench_function("own_type", |b| {
        b.iter(|| split(black_box(&typed_body), &budget))
    });
    group.finish();

    // DESIGN §7's bulk-path ceiling: in-process gzip decode + line split of one body.
    let mut group = c.benchmark_group("bulk_path");
    configure(&mut group, body.len());
    group.bench_function("gunzip", |b| b.iter(|| gunzip(black_box(&gz), &budget)));
    group.bench_function("gunzip_and_split", |b| {
        b.iter(|| gunzip_and_split(black_box(&gz), &budget))
    });
    // The very body loadtest/run.sh sends in logs-bulk (it writes the file), so the server's
    // MB/s per core can be read against the in-process number for the same bytes.
    match std::fs::read(LOADTEST_BULK_BODY) {
        Ok(gz) => {
            let gz = Bytes::from(gz);
            let decoded = gunzip(&gz, &budget);
            assert!(split(&decoded, &budget).counts.all_accepted());
            group.throughput(Throughput::Bytes(decoded.len() as u64));
            group.bench_function("loadtest_body", |b| {
                b.iter(|| gunzip_and_split(black_box(&gz), &budget))
            });
        }
        Err(e) => eprintln!(
            "bulk_path/loadtest_body skipped: {LOADTEST_BULK_BODY}: {e} (loadtest/run.sh writes it)"
        ),
    }
    group.finish();

    let envelope = Envelope {
        kind: Kind::Logs,
        account_id: AccountId(1001),
        token_id: TokenId("t-logs-1".into()),
        log_type: Some(LOG_TYPE.into()),
        content_type: ContentType::JsonObject,
    };
    let mut group = c.benchmark_group("file_sink");
    configure(&mut group, lines.payload_bytes());
    group.bench_function("encode_batch", |b| {
        // Reused across iterations, as the sink reuses its buffer across batches.
        let mut out = Vec::with_capacity(2 * BODY_BYTES);
        b.iter(|| {
            out.clear();
            encode(&envelope, black_box(&lines.payloads), &mut out);
            out.len()
        })
    });
    group.finish();
}

criterion_group!(benches, bench_bulk_path);
criterion_main!(benches);
