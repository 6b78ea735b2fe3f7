//! The decode paths of the metrics and traces routes:
//! - `otlp_traces/decode_and_count`: protobuf decode of a ~1 MiB `ExportTraceServiceRequest`
//!   plus the per-span checks and counts (`ingest::otlp::prepare`, what the route runs).
//! - `remote_write/decode_and_count`: snappy decode, protobuf decode and the per-series
//!   checks and counts of a 10,000-series `WriteRequest` (`ingest::remote_write::decode`).
//! - `remote_write/decode_100_regex_filters`: the same with the account's 100 enabled
//!   metrics drop filters, each a `__name__` regular expression no series matches
//!   (`remote_write::decode_filtered`): what an account with filters pays.
//!
//! Inputs are built once, deterministically, outside the timed loops. Throughput is the
//! body as received (protobuf for OTLP, snappy-compressed for remote_write).

mod common;

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use common::mix;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use prost::Message;
use tollgate::clock::Clock;
use tollgate::filters::held::{HeldFilters, MetricsFilters};
use tollgate::filters::metrics::MetricsDropFilter;
use tollgate::ingest::budget::{DecodeBudget, DecodeHold};
use tollgate::ingest::otlp::prepare;
use tollgate::ingest::remote_write;
use tollgate::ingest::request::OtlpEncoding;
use tollgate::model::AccountId;
use tollgate::proto::otlp::collector::trace::v1::ExportTraceServiceRequest;
use tollgate::proto::otlp::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use tollgate::proto::otlp::resource::v1::Resource;
use tollgate::proto::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use tollgate::proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};

const OTLP_BYTES: usize = 1 << 20;
const SERIES: usize = 10_000;
const MAX_DECOMPRESSED_BYTES: u64 = 100 << 20;

fn string_attr(key: &str, value: String) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        ..Default::default()
    }
}

fn int_attr(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..Default::default()
    }
}

/// An HTTP-server-like span with the attributes an instrumented service sends.
fn span(i: u64) -> Span {
    let r = mix(i);
    let trace = mix(i / 8); // eight spans per trace
    Span {
        trace_id: [trace.to_be_bytes(), mix(trace).to_be_bytes()].concat(),
        span_id: r.to_be_bytes().to_vec(),
        parent_span_id: if i.is_multiple_of(8) {
            Vec::new()
        } else {
            mix(i - 1).to_be_bytes().to_vec()
        },
        name: format!("GET /api/v1/orders/{}", r % 1000),
        kind: 2,
        start_time_unix_nano: 1_700_000_000_000_000_000 + i * 1_000_000,
        end_time_unix_nano: 1_700_000_000_000_000_000 + i * 1_000_000 + r % 50_000_000,
        attributes: vec![
            string_attr("http.request.method", "GET".into()),
            string_attr("url.path", format!("/api/v1/orders/{}", r % 1000)),
            int_attr(
                "http.response.status_code",
                [200, 200, 404, 500][(r % 4) as usize],
            ),
            string_attr("server.address", "orders.internal".into()),
            string_attr("user_agent.original", "okhttp/4.12.0".into()),
        ],
        status: Some(Status {
            code: 1,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// About `OTLP_BYTES` of spans in one request, in batches of 512 spans per scope.
fn traces_body() -> (Bytes, usize) {
    let mut spans = Vec::new();
    let mut approx = 0;
    let mut i = 0;
    while approx < OTLP_BYTES {
        let s = span(i);
        approx += s.encoded_len() + 3;
        spans.push(s);
        i += 1;
    }
    let n = spans.len();
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    string_attr("service.name", "orders".into()),
                    string_attr("host.name", "orders-7f9c".into()),
                ],
                ..Default::default()
            }),
            scope_spans: spans
                .chunks(512)
                .map(|chunk| ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "io.opentelemetry.okhttp".into(),
                        version: "2.1.0".into(),
                        ..Default::default()
                    }),
                    spans: chunk.to_vec(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
    };
    (Bytes::from(request.encode_to_vec()), n)
}

/// `SERIES` series as a node exporter scrape looks: ~6 labels, one sample each.
fn write_body() -> Vec<u8> {
    let timeseries = (0..SERIES as u64)
        .map(|i| {
            let r = mix(i);
            let label = |name: &str, value: String| Label::new(name, &value);
            TimeSeries {
                labels: vec![
                    label("__name__", format!("node_metric_{}", i % 200)),
                    label("cpu", (r % 16).to_string()),
                    label(
                        "instance",
                        format!("10.0.{}.{}:9100", (r >> 8) % 4, (r >> 16) % 250),
                    ),
                    label("job", "node".into()),
                    label(
                        "mode",
                        ["user", "system", "idle", "iowait"][(r % 4) as usize].into(),
                    ),
                    label("region", "eu-west-1".into()),
                ],
                samples: vec![Sample {
                    value: (r % 100_000) as f64 / 7.0,
                    timestamp: 1_700_000_000_000 + (i % 15) as i64,
                }],
                ..Default::default()
            }
        })
        .collect();
    let request = WriteRequest {
        timeseries,
        metadata: vec![],
    };
    snap::raw::Encoder::new()
        .compress_vec(&request.encode_to_vec())
        .expect("snappy compresses any input")
}

fn configure(group: &mut BenchmarkGroup<'_, WallTime>, bytes: usize) {
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Bytes(bytes as u64));
}

fn bench_decode(c: &mut Criterion) {
    let budget = DecodeBudget::unlimited();
    let hold = || DecodeHold::new(&budget);
    let (traces, spans) = traces_body();
    let prepared =
        prepare::<ExportTraceServiceRequest>(traces.clone(), OtlpEncoding::Protobuf, &mut hold())
            .expect("valid request");
    assert_eq!(prepared.verdict.accepted, spans as u64);
    assert_eq!(prepared.verdict.rejected, 0);
    eprintln!("otlp_traces: {} bytes, {spans} spans", traces.len());

    let mut group = c.benchmark_group("otlp_traces");
    configure(&mut group, traces.len());
    group.bench_function("decode_and_count", |b| {
        b.iter(|| {
            prepare::<ExportTraceServiceRequest>(
                black_box(traces.clone()),
                OtlpEncoding::Protobuf,
                &mut hold(),
            )
            .expect("valid request")
            .verdict
            .accepted
        })
    });
    group.finish();

    let write = write_body();
    let counts =
        remote_write::decode(&write, MAX_DECOMPRESSED_BYTES, &mut hold()).expect("valid request");
    assert_eq!(counts.series, SERIES as u64);
    eprintln!(
        "remote_write: {} bytes snappy, {} bytes protobuf, {} series",
        write.len(),
        counts.decoded_bytes,
        counts.series
    );
    let mut group = c.benchmark_group("remote_write");
    configure(&mut group, write.len());
    group.bench_function("decode_and_count", |b| {
        b.iter(|| {
            remote_write::decode(black_box(&write), MAX_DECOMPRESSED_BYTES, &mut hold())
                .expect("valid request")
                .samples
        })
    });
    let filters = regex_filters(100);
    let filtered =
        remote_write::decode_filtered(&write, MAX_DECOMPRESSED_BYTES, &mut hold(), Some(&filters))
            .expect("valid request");
    assert_eq!(
        filtered.counts.series, SERIES as u64,
        "no series is dropped"
    );
    group.bench_function("decode_100_regex_filters", |b| {
        b.iter(|| {
            remote_write::decode_filtered(
                black_box(&write),
                MAX_DECOMPRESSED_BYTES,
                &mut hold(),
                Some(&filters),
            )
            .expect("valid request")
            .counts
            .samples
        })
    });
    group.finish();
}

/// `n` enabled metrics filters of one account, each a `__name__` pattern that shares the
/// series' prefix and matches none of them.
fn regex_filters(n: usize) -> MetricsFilters {
    let filters: Vec<MetricsDropFilter> = (0..n)
        .map(|i| {
            serde_json::from_value(serde_json::json!({
                "id": i + 1, "account_id": 1, "active": true,
                "drop_policy": "DROP_BEFORE_PROCESSING",
                "filter": {"operator": "AND", "expression": [
                    {"name": "__name__", "value": format!("(node|process)_[a-z]+_{i}_.*"),
                     "comparisonFilter": "REGEX_MATCH"}]}
            }))
            .expect("a filter in the feed's shape")
        })
        .collect();
    let held = HeldFilters::new(Clock::system());
    held.set(vec![], filters);
    held.metrics_of(AccountId(1)).expect("enabled filters")
}

criterion_group!(benches, bench_decode);
criterion_main!(benches);
