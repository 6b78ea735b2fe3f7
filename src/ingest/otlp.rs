//! `POST /v1/logs`, `/v1/metrics`, `/v1/traces` — OTLP/HTTP (DESIGN §1), top to bottom:
//! content type, token, body, decode, check, submit, reply.
//!
//! - Bodies are `Export{Logs,Metrics,Trace}ServiceRequest` in `application/x-protobuf` or
//!   `application/json` (OTLP/JSON: lowerCamelCase keys, hex trace/span ids, enums as
//!   integers, 64-bit integers and doubles as numbers or strings, `"NaN"`, `"Infinity"`,
//!   `"-Infinity"`; see `proto::otlp_json`), optionally gzip- or deflate-compressed.
//!   Anything else is a 415.
//! - The token comes from `Authorization: Bearer` only, and must be of the signal's kind:
//!   logs for `/v1/logs`, metrics for `/v1/metrics`, traces for `/v1/traces`.
//! - Records are log records, data points and spans. Each is checked against the rules
//!   below; the ones that break a rule are dropped and reported in `partial_success`
//!   (`rejected_*` and `error_message`) of a 200, which clients must not retry. The rest
//!   are forwarded as one payload: the body as sent when nothing was dropped, otherwise the
//!   request re-encoded (same encoding) without the dropped records and emptied containers.
//! - A body that does not decode is a 400 whose body is a `google.rpc.Status`; every answer,
//!   success or error, has the request's `Content-Type`. In JSON that includes a value of the
//!   wrong form in any field (`"asInt": "abc"`): the message names the field's path.
//!
//! Rules (what a receiver can check without guessing at the sender's intent):
//! - span: `trace_id` is 16 bytes and `span_id` 8 bytes, neither all zero (the OTLP spec
//!   calls such ids invalid); `parent_span_id` is empty or 8 bytes.
//! - log record: `trace_id` is empty or 16 bytes, `span_id` empty or 8 bytes (both optional).
//! - metric: its `name` is not empty (otherwise all its data points are rejected); a
//!   histogram data point with bucket counts has one more of them than explicit bounds.

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use prost::Message;
use serde_json::Value;

use super::Ingest;
use super::body::{off_the_runtime_if_large, read_body};
use super::budget::DecodeHold;
use super::error::{Body, IngestError};
use super::request::{OtlpEncoding, bearer_token};
use crate::filters::held::{LogFilters, MetricsFilters};
use crate::filters::metrics::Labels;
use crate::forward::{ContentType, Envelope, Payloads, RecordBatch};
use crate::model::{Kind, RejectReason};
use crate::proto::otlp::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use crate::proto::otlp::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use crate::proto::otlp::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use crate::proto::otlp::common::v1::{KeyValue, any_value};
use crate::proto::otlp::logs::v1::LogRecord;
use crate::proto::otlp::metrics::v1::Metric;
use crate::proto::otlp::metrics::v1::metric::Data;
use crate::proto::otlp::trace::v1::Span;
use crate::proto::otlp_flat;
use crate::proto::otlp_json::{self, OtlpMessage};
use crate::proto::otlp_wire::{self, Record};
use crate::server::body::RequestBody;
use crate::volume::gate::Admission;

/// The three OTLP signals, one per route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Logs,
    Metrics,
    Traces,
}

pub async fn handle(
    req: Request<RequestBody>,
    cx: &Ingest,
    signal: Signal,
) -> Result<Response<Body>, IngestError> {
    match signal {
        Signal::Logs => export::<ExportLogsServiceRequest>(req, cx).await,
        Signal::Metrics => export::<ExportMetricsServiceRequest>(req, cx).await,
        Signal::Traces => export::<ExportTraceServiceRequest>(req, cx).await,
    }
}

async fn export<T: Export>(
    req: Request<RequestBody>,
    cx: &Ingest,
) -> Result<Response<Body>, IngestError> {
    let encoding = OtlpEncoding::from_headers(req.headers()).ok_or(IngestError::Unsupported {
        what: "Content-Type",
        expected: "application/x-protobuf or application/json",
    })?;
    let info = cx
        .tokens
        .authenticate(bearer_token(req.headers()), T::KIND)
        .await?;
    super::record_token(&info);
    let (parts, body) = req.into_parts();
    // What the body and its decoded form hold, until the answer: given back when it drops.
    let mut hold = DecodeHold::new(&cx.limits.decode_budget);
    let body = read_body(&parts.headers, body, &cx.limits, &mut hold).await?;
    let drops = match T::KIND {
        Kind::Logs => cx.rules.filters.logs_of(info.account_id).map(Drops::Logs),
        Kind::Metrics => cx
            .rules
            .filters
            .metrics_of(info.account_id)
            .map(Drops::Metrics),
        Kind::Traces => None,
    };
    let Prepared {
        payload,
        verdict,
        dropped,
    } = off_the_runtime_if_large(body.len(), &mut hold, move |hold| {
        prepare_filtered::<T>(body, encoding, hold, drops.as_ref())
    })
    .await?;
    let payload_bytes = payload.as_ref().map_or(0, Bytes::len);
    // OTLP logs count toward the daily volume as the bulk route's do; `LogSize` is added
    // on the bulk route only, whose records are JSON objects.
    let admission = cx.admit(&info, T::KIND, payload_bytes as u64, verdict.accepted)?;
    let payload = payload.filter(|_| admission != Admission::Capped);
    if let Some(payload) = payload {
        cx.forward
            .submit(RecordBatch {
                envelope: Envelope {
                    kind: T::KIND,
                    account_id: info.account_id,
                    token_id: info.token_id.clone(),
                    log_type: None,
                    content_type: stored_as(encoding),
                },
                payloads: Payloads::from_buf([payload]),
            })
            .await?;
    }
    let metrics = cx.metrics.kind(T::KIND);
    metrics.records.inc_by(verdict.accepted);
    metrics.bytes.inc_by(payload_bytes as u64);
    metrics.rejected(RejectReason::Invalid, verdict.rejected);
    metrics.dropped_by_filter.inc_by(dropped);
    // Dropped records are not in the account's volume (DESIGN §9).
    cx.tokens
        .record_usage(&info, payload_bytes as u64, verdict.accepted);
    Ok(export_response::<T>(encoding, &verdict))
}

/// Where the request's encoding travels with its records.
fn stored_as(encoding: OtlpEncoding) -> ContentType {
    match encoding {
        OtlpEncoding::Protobuf => ContentType::OtlpProtobuf,
        OtlpEncoding::Json => ContentType::OtlpJson,
    }
}

/// How many records of a request were accepted and rejected, and the first rule broken.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    pub accepted: u64,
    pub rejected: u64,
    pub first_error: Option<&'static str>,
}

impl Verdict {
    /// Counts one record; `true` keeps it.
    fn judge(&mut self, error: Option<&'static str>) -> bool {
        self.judge_many(1, error)
    }

    fn judge_many(&mut self, n: u64, error: Option<&'static str>) -> bool {
        match error {
            None => {
                self.accepted += n;
                true
            }
            Some(e) => {
                self.rejected += n;
                self.first_error.get_or_insert(e);
                false
            }
        }
    }
}

/// A decoded and checked request: what to forward (nothing when no record was accepted),
/// the verdict, and how many valid records drop filters dropped (not in `verdict`: the
/// answer reports them as accepted).
#[derive(Debug)]
pub struct Prepared {
    pub payload: Option<Bytes>,
    pub verdict: Verdict,
    pub dropped: u64,
}

/// An account's drop filters for the signal of its request.
pub enum Drops {
    Logs(LogFilters),
    Metrics(MetricsFilters),
}

/// Checks `body` and drops the records that break a rule. Protobuf is first walked on the
/// wire (`otlp_wire`): when prost would decode it and every record passes — nearly always —
/// it is forwarded as it came without being decoded. Otherwise it is decoded, and
/// re-encoded only if records were dropped. What decoding and re-encoding hold is counted
/// in `hold` first, as the walk (or the count of JSON containers) costs it.
pub fn prepare<T: Export>(
    body: Bytes,
    encoding: OtlpEncoding,
    hold: &mut DecodeHold<'_>,
) -> Result<Prepared, IngestError> {
    prepare_filtered::<T>(body, encoding, hold, None)
}

/// `prepare`, then dropping the records `drops` drop: a request of an account with drop
/// filters is always decoded, and re-encoded when a record was dropped.
pub fn prepare_filtered<T: Export>(
    body: Bytes,
    encoding: OtlpEncoding,
    hold: &mut DecodeHold<'_>,
    drops: Option<&Drops>,
) -> Result<Prepared, IngestError> {
    let budget = DECODED_FACTOR * body.len() + DECODED_FLOOR;
    let (cost, walked) = match encoding {
        OtlpEncoding::Protobuf => {
            // A body that does not walk is left to prost to name the error, after
            // decoding what comes before the break: that part's cost counts.
            match otlp_wire::walk_or_cost::<T>(&body, |r| record_error(&r).is_none()) {
                Ok(walked) => (walked.cost, Some(walked)),
                Err(cost_before_break) => (cost_before_break, None),
            }
        }
        OtlpEncoding::Json => (
            otlp_json::json_containers(&body) * JSON_CONTAINER_COST,
            None,
        ),
    };
    if cost > budget {
        return Err(IngestError::TooLarge {
            what: "the decoded form of this request (at most 16 times the body + 1 MiB: send \
                   fewer records per request)",
            limit: budget as u64,
        });
    }
    if let Some(walked) = walked.filter(|w| w.clean && drops.is_none()) {
        let verdict = Verdict {
            accepted: walked.records,
            ..Verdict::default()
        };
        let payload = (walked.records > 0).then_some(body);
        return Ok(Prepared {
            payload,
            verdict,
            dropped: 0,
        });
    }
    hold.grow(cost)?;
    let mut export = decode::<T>(&body, encoding)?;
    let mut verdict = export.retain_valid();
    let dropped = drops.map_or(0, |d| export.drop_filtered(d));
    verdict.accepted -= dropped;
    let payload = if verdict.accepted == 0 {
        None
    } else if verdict.rejected == 0 && dropped == 0 {
        Some(body)
    } else {
        // Fewer records than the body: re-encoded, they take about as much.
        hold.grow(body.len())?;
        Some(Bytes::from(match encoding {
            OtlpEncoding::Protobuf => export.encode_to_vec(),
            OtlpEncoding::Json => {
                let mut json = Vec::with_capacity(body.len());
                otlp_json::encode(&export, &mut json);
                json
            }
        }))
    };
    drop(export);
    hold.shrink(cost);
    Ok(Prepared {
        payload,
        verdict,
        dropped,
    })
}

/// A request's decoded form may take at most this many times its (decompressed) body in
/// memory, plus `DECODED_FLOOR`, as counted before anything is decoded. Protobuf is
/// counted by `otlp_wire::walk`: a real request counts 3–6 times its wire size, a body of
/// empty messages (`0a 00` repeated) 32. OTLP/JSON is parsed into a JSON tree first, so
/// each object or array counts `JSON_CONTAINER_COST` (a tree node, its map, the message it
/// becomes): a real request counts up to ~10 times its text, `[{},{},…]` 85.
const DECODED_FACTOR: usize = 16;
const DECODED_FLOOR: usize = 1 << 20;
const JSON_CONTAINER_COST: usize = 256;

fn decode<T: Export>(body: &Bytes, encoding: OtlpEncoding) -> Result<T, IngestError> {
    match encoding {
        OtlpEncoding::Protobuf => T::decode(body.clone()).map_err(|e| {
            IngestError::BadPayload(format!("body is not a protobuf {}: {e}", T::MESSAGE))
        }),
        OtlpEncoding::Json => otlp_json::decode(body).map_err(|e| {
            IngestError::BadPayload(format!("body is not an OTLP/JSON {}: {e}", T::MESSAGE))
        }),
    }
}

/// The 200 answer: an `Export*ServiceResponse`, with `partial_success` when records were
/// rejected. In JSON, `rejected_*` (an int64) is a string, as proto3 JSON writes it.
fn export_response<T: Export>(encoding: OtlpEncoding, verdict: &Verdict) -> Response<Body> {
    let body = if verdict.rejected == 0 {
        match encoding {
            OtlpEncoding::Protobuf => Vec::new(),
            OtlpEncoding::Json => b"{}".to_vec(),
        }
    } else {
        let rejected = i64::try_from(verdict.rejected).unwrap_or(i64::MAX);
        let message = format!(
            "{rejected} {} rejected: {}",
            T::RECORDS,
            verdict.first_error.unwrap_or("invalid")
        );
        match encoding {
            OtlpEncoding::Protobuf => T::partial_success(rejected, message),
            OtlpEncoding::Json => {
                let mut partial = serde_json::Map::new();
                partial.insert(T::REJECTED_KEY.into(), rejected.to_string().into());
                partial.insert("errorMessage".into(), message.into());
                serde_json::to_vec(&serde_json::json!({ "partialSuccess": partial }))
                    .expect("a JSON value serializes")
            }
        }
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, encoding.content_type())
        .body(Full::new(Bytes::from(body)))
        .expect("static response is valid")
}

/// What differs between the three signals' requests.
pub trait Export: OtlpMessage + Send + 'static {
    const KIND: Kind;
    const MESSAGE: &'static str;
    /// What the records are called in `error_message`.
    const RECORDS: &'static str;
    /// The OTLP/JSON key of the response's rejected count.
    const REJECTED_KEY: &'static str;
    /// Drops the records that break a rule (and containers left empty); counts both.
    fn retain_valid(&mut self) -> Verdict;
    /// Drops the records `drops` drop (and containers left empty); returns how many.
    fn drop_filtered(&mut self, _drops: &Drops) -> u64 {
        0
    }
    /// The protobuf response carrying a partial success.
    fn partial_success(rejected: i64, error_message: String) -> Vec<u8>;
}

impl Export for ExportTraceServiceRequest {
    const KIND: Kind = Kind::Traces;
    const MESSAGE: &'static str = "ExportTraceServiceRequest";
    const RECORDS: &'static str = "spans";
    const REJECTED_KEY: &'static str = "rejectedSpans";

    fn retain_valid(&mut self) -> Verdict {
        let mut verdict = Verdict::default();
        for resource in &mut self.resource_spans {
            for scope in &mut resource.scope_spans {
                scope.spans.retain(|s| verdict.judge(span_error(s)));
            }
            resource.scope_spans.retain(|s| !s.spans.is_empty());
        }
        self.resource_spans.retain(|r| !r.scope_spans.is_empty());
        verdict
    }

    fn partial_success(rejected_spans: i64, error_message: String) -> Vec<u8> {
        ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans,
                error_message,
            }),
        }
        .encode_to_vec()
    }
}

impl Export for ExportLogsServiceRequest {
    const KIND: Kind = Kind::Logs;
    const MESSAGE: &'static str = "ExportLogsServiceRequest";
    const RECORDS: &'static str = "log records";
    const REJECTED_KEY: &'static str = "rejectedLogRecords";

    fn retain_valid(&mut self) -> Verdict {
        let mut verdict = Verdict::default();
        for resource in &mut self.resource_logs {
            for scope in &mut resource.scope_logs {
                scope.log_records.retain(|r| verdict.judge(log_error(r)));
            }
            resource.scope_logs.retain(|s| !s.log_records.is_empty());
        }
        self.resource_logs.retain(|r| !r.scope_logs.is_empty());
        verdict
    }

    fn drop_filtered(&mut self, drops: &Drops) -> u64 {
        let Drops::Logs(filters) = drops else {
            return 0;
        };
        let mut dropped = 0;
        for resource in &mut self.resource_logs {
            let fields = otlp_flat::attributes(resource.resource.as_ref());
            for scope in &mut resource.scope_logs {
                scope.log_records.retain(|r| {
                    let record = Value::Object(otlp_flat::log_record(&fields, r));
                    let drop = filters.drops(otlp_flat::LOG_TYPE, &record, r.encoded_len() as u64);
                    dropped += u64::from(drop);
                    !drop
                });
            }
            resource.scope_logs.retain(|s| !s.log_records.is_empty());
        }
        self.resource_logs.retain(|r| !r.scope_logs.is_empty());
        dropped
    }

    fn partial_success(rejected_log_records: i64, error_message: String) -> Vec<u8> {
        ExportLogsServiceResponse {
            partial_success: Some(ExportLogsPartialSuccess {
                rejected_log_records,
                error_message,
            }),
        }
        .encode_to_vec()
    }
}

impl Export for ExportMetricsServiceRequest {
    const KIND: Kind = Kind::Metrics;
    const MESSAGE: &'static str = "ExportMetricsServiceRequest";
    const RECORDS: &'static str = "data points";
    const REJECTED_KEY: &'static str = "rejectedDataPoints";

    fn retain_valid(&mut self) -> Verdict {
        let mut verdict = Verdict::default();
        for resource in &mut self.resource_metrics {
            for scope in &mut resource.scope_metrics {
                scope
                    .metrics
                    .retain_mut(|m| retain_valid_points(m, &mut verdict));
            }
            resource.scope_metrics.retain(|s| !s.metrics.is_empty());
        }
        self.resource_metrics
            .retain(|r| !r.scope_metrics.is_empty());
        verdict
    }

    fn drop_filtered(&mut self, drops: &Drops) -> u64 {
        let Drops::Metrics(filters) = drops else {
            return 0;
        };
        let mut dropped = 0;
        for resource in &mut self.resource_metrics {
            let attributes = resource
                .resource
                .as_ref()
                .map(|r| r.attributes.as_slice())
                .unwrap_or_default();
            for scope in &mut resource.scope_metrics {
                scope.metrics.retain_mut(|m| {
                    let points = data_points(m);
                    dropped += drop_points(m, attributes, filters);
                    points == 0 || data_points(m) > 0
                });
            }
            resource.scope_metrics.retain(|s| !s.metrics.is_empty());
        }
        self.resource_metrics
            .retain(|r| !r.scope_metrics.is_empty());
        dropped
    }

    fn partial_success(rejected_data_points: i64, error_message: String) -> Vec<u8> {
        ExportMetricsServiceResponse {
            partial_success: Some(ExportMetricsPartialSuccess {
                rejected_data_points,
                error_message,
            }),
        }
        .encode_to_vec()
    }
}

/// The rule a record read off the wire breaks, if any: the same rules as below, which
/// judge decoded records.
fn record_error(record: &Record<'_>) -> Option<&'static str> {
    match *record {
        Record::Span {
            trace_id,
            span_id,
            parent_span_id,
        } => span_ids_error(trace_id, span_id, parent_span_id),
        Record::LogRecord { trace_id, span_id } => log_ids_error(trace_id, span_id),
        Record::Metric { name, .. } => metric_name_error(name),
        Record::HistogramPoint {
            bucket_counts,
            explicit_bounds,
        } => histogram_shape_error(bucket_counts, explicit_bounds),
    }
}

fn span_error(span: &Span) -> Option<&'static str> {
    span_ids_error(&span.trace_id, &span.span_id, &span.parent_span_id)
}

fn span_ids_error(trace_id: &[u8], span_id: &[u8], parent_span_id: &[u8]) -> Option<&'static str> {
    if !is_valid_id(trace_id, 16) {
        Some("trace_id must be 16 bytes, not all zero")
    } else if !is_valid_id(span_id, 8) {
        Some("span_id must be 8 bytes, not all zero")
    } else if !(parent_span_id.is_empty() || parent_span_id.len() == 8) {
        Some("parent_span_id must be empty or 8 bytes")
    } else {
        None
    }
}

fn log_error(record: &LogRecord) -> Option<&'static str> {
    log_ids_error(&record.trace_id, &record.span_id)
}

fn log_ids_error(trace_id: &[u8], span_id: &[u8]) -> Option<&'static str> {
    if !(trace_id.is_empty() || trace_id.len() == 16) {
        Some("trace_id must be empty or 16 bytes")
    } else if !(span_id.is_empty() || span_id.len() == 8) {
        Some("span_id must be empty or 8 bytes")
    } else {
        None
    }
}

fn is_valid_id(id: &[u8], len: usize) -> bool {
    id.len() == len && id.iter().any(|&b| b != 0)
}

fn metric_name_error(name: &[u8]) -> Option<&'static str> {
    name.is_empty().then_some("metric name must not be empty")
}

/// Judges a metric's data points; `false` drops the metric (no name, or none left).
fn retain_valid_points(metric: &mut Metric, verdict: &mut Verdict) -> bool {
    let points = data_points(metric);
    if let Some(error) = metric_name_error(metric.name.as_bytes()) {
        verdict.judge_many(points, Some(error));
        return false;
    }
    match &mut metric.data {
        Some(Data::Histogram(h)) => {
            h.data_points.retain(|p| {
                verdict.judge(histogram_shape_error(
                    p.bucket_counts.len() as u64,
                    p.explicit_bounds.len() as u64,
                ))
            });
            points == 0 || !h.data_points.is_empty()
        }
        _ => {
            verdict.judge_many(points, None);
            true
        }
    }
}

/// Drops the data points of `metric` that `filters` drop, matching the metric's name and
/// each point's attributes (then its resource's) as labels; returns how many.
fn drop_points(metric: &mut Metric, resource: &[KeyValue], filters: &MetricsFilters) -> u64 {
    let name = metric.name.as_str();
    let mut dropped = 0;
    let mut keep = |attributes: &[KeyValue], bytes: usize| {
        let labels = PointLabels {
            point: attributes,
            resource,
        };
        let drop = filters.drops(name, &labels, 1, bytes as u64);
        dropped += u64::from(drop);
        !drop
    };
    match &mut metric.data {
        Some(Data::Gauge(g)) => g
            .data_points
            .retain(|p| keep(&p.attributes, p.encoded_len())),
        Some(Data::Sum(s)) => s
            .data_points
            .retain(|p| keep(&p.attributes, p.encoded_len())),
        Some(Data::Histogram(h)) => h
            .data_points
            .retain(|p| keep(&p.attributes, p.encoded_len())),
        Some(Data::ExponentialHistogram(e)) => e
            .data_points
            .retain(|p| keep(&p.attributes, p.encoded_len())),
        Some(Data::Summary(s)) => s
            .data_points
            .retain(|p| keep(&p.attributes, p.encoded_len())),
        None => {}
    }
    dropped
}

/// A data point's labels as drop filters read them: its attributes, then its resource's.
struct PointLabels<'a> {
    point: &'a [KeyValue],
    resource: &'a [KeyValue],
}

impl Labels for PointLabels<'_> {
    fn label(&self, name: &str) -> Option<&str> {
        let kv = self
            .point
            .iter()
            .chain(self.resource)
            .find(|kv| kv.key == name)?;
        match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s),
            // Labels are strings: only string attributes are matched.
            _ => None,
        }
    }
}

fn histogram_shape_error(bucket_counts: u64, explicit_bounds: u64) -> Option<&'static str> {
    let ok = bucket_counts == 0 || bucket_counts == explicit_bounds + 1;
    (!ok).then_some("histogram bucket_counts must have one more entry than explicit_bounds")
}

fn data_points(metric: &Metric) -> u64 {
    let n = match &metric.data {
        Some(Data::Gauge(g)) => g.data_points.len(),
        Some(Data::Sum(s)) => s.data_points.len(),
        Some(Data::Histogram(h)) => h.data_points.len(),
        Some(Data::ExponentialHistogram(e)) => e.data_points.len(),
        Some(Data::Summary(s)) => s.data_points.len(),
        None => 0,
    };
    n as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::budget::DecodeBudget;
    use crate::ingest::budget::tests::budget;
    use crate::proto::otlp::metrics::v1::{
        Gauge, Histogram, HistogramDataPoint, NumberDataPoint, ResourceMetrics, ScopeMetrics,
    };
    use crate::proto::otlp::trace::v1::{ResourceSpans, ScopeSpans};

    /// `prepare` with a budget nothing exceeds.
    fn prepare<T: Export>(body: Bytes, encoding: OtlpEncoding) -> Result<Prepared, IngestError> {
        let budget = DecodeBudget::unlimited();
        super::prepare::<T>(body, encoding, &mut DecodeHold::new(&budget))
    }

    fn span(trace_id: Vec<u8>, span_id: Vec<u8>, name: &str) -> Span {
        Span {
            trace_id,
            span_id,
            name: name.into(),
            ..Default::default()
        }
    }

    fn traces(spans: Vec<Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn valid_request_is_forwarded_as_sent() {
        let body = Bytes::from(traces(vec![span(vec![1; 16], vec![2; 8], "a")]).encode_to_vec());
        let p = prepare::<ExportTraceServiceRequest>(body.clone(), OtlpEncoding::Protobuf).unwrap();
        assert_eq!(p.verdict.accepted, 1);
        assert_eq!(p.payload.unwrap().as_ptr(), body.as_ptr(), "no copy");
    }

    #[test]
    fn invalid_spans_are_dropped_and_the_rest_re_encoded() {
        let req = traces(vec![
            span(vec![1; 16], vec![2; 8], "good"),
            span(vec![0; 16], vec![2; 8], "zero trace id"),
            span(vec![1; 15], vec![2; 8], "short trace id"),
            span(vec![1; 16], vec![], "no span id"),
        ]);
        let p = prepare::<ExportTraceServiceRequest>(
            Bytes::from(req.encode_to_vec()),
            OtlpEncoding::Protobuf,
        )
        .unwrap();
        assert_eq!(
            p.verdict,
            Verdict {
                accepted: 1,
                rejected: 3,
                first_error: Some("trace_id must be 16 bytes, not all zero"),
            }
        );
        let kept = ExportTraceServiceRequest::decode(p.payload.unwrap()).unwrap();
        let names: Vec<_> = kept.resource_spans[0].scope_spans[0]
            .spans
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(names, ["good"]);
    }

    #[test]
    fn nothing_valid_means_nothing_to_forward() {
        let req = traces(vec![span(vec![0; 16], vec![0; 8], "x")]);
        let p = prepare::<ExportTraceServiceRequest>(
            Bytes::from(req.encode_to_vec()),
            OtlpEncoding::Protobuf,
        )
        .unwrap();
        assert!(p.payload.is_none());
        assert_eq!(p.verdict.rejected, 1);
    }

    #[test]
    fn otlp_json_uses_hex_ids_and_string_or_number_int64() {
        let json = r#"{"resourceSpans":[{"resource":{"attributes":[
            {"key":"service.name","value":{"stringValue":"svc"}}]},
          "scopeSpans":[{"scope":{"name":"lib"},"spans":[
            {"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"eee19b7ec3c1b174",
             "name":"a","kind":2,"startTimeUnixNano":"1544712660000000000",
             "endTimeUnixNano":1544712661000000000,
             "attributes":[{"key":"n","value":{"intValue":"42"}}]}]}]}]}"#;
        let p =
            prepare::<ExportTraceServiceRequest>(Bytes::from(json), OtlpEncoding::Json).unwrap();
        assert_eq!(p.verdict.accepted, 1);
        let req: ExportTraceServiceRequest = serde_json::from_str(json).unwrap();
        let s = &req.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(hex::encode(&s.trace_id), "5b8efff798038103d269b633813fc60c");
        assert_eq!(s.start_time_unix_nano, 1_544_712_660_000_000_000);
        assert_eq!(s.end_time_unix_nano, 1_544_712_661_000_000_000);
        let out = serde_json::to_value(&req).unwrap();
        let s = &out["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(s["traceId"], "5b8efff798038103d269b633813fc60c");
        assert_eq!(s["spanId"], "eee19b7ec3c1b174");
        assert_eq!(s["kind"], 2);
        assert_eq!(s["startTimeUnixNano"], "1544712660000000000");
    }

    #[test]
    fn a_body_broken_after_millions_of_empty_messages_is_refused_before_prost_decodes_them() {
        // One empty `ResourceSpans` every two bytes, then a key with no value: prost would
        // build every one of them before it finds the break.
        let mut body = [0x0a, 0x00].repeat(1 << 20);
        body.push(0x0a);
        assert!(matches!(
            prepare::<ExportTraceServiceRequest>(Bytes::from(body), OtlpEncoding::Protobuf),
            Err(IngestError::TooLarge { .. })
        ));
    }

    #[test]
    fn the_decoded_form_is_taken_from_the_budget_and_given_back() {
        let spans = (0..2000)
            .map(|i| span(vec![1; 16], if i == 0 { vec![] } else { vec![2; 8] }, "s"))
            .collect();
        let body = Bytes::from(traces(spans).encode_to_vec());
        let budget = budget(1 << 20);
        let mut hold = DecodeHold::new(&budget);
        let p = super::prepare::<ExportTraceServiceRequest>(
            body.clone(),
            OtlpEncoding::Protobuf,
            &mut hold,
        )
        .unwrap();
        assert_eq!(p.verdict.rejected, 1);
        // The tree is gone; the re-encoded payload is still held.
        assert_eq!(hold.used(), body.len() as u64);
        // With the budget taken by another request, decoding waits for it: 503.
        let mut other = DecodeHold::new(&budget);
        other.grow(1 << 20).unwrap();
        let mut hold = DecodeHold::new(&budget);
        hold.grow(crate::ingest::budget::UNCOUNTED_BYTES as usize)
            .unwrap();
        assert!(matches!(
            super::prepare::<ExportTraceServiceRequest>(body, OtlpEncoding::Protobuf, &mut hold),
            Err(IngestError::DecodeBusy { .. })
        ));
    }

    #[test]
    fn undecodable_bodies_are_bad_payloads() {
        for (body, encoding) in [
            (&b"\xff\xff\xff\xff"[..], OtlpEncoding::Protobuf),
            (b"{\"resourceSpans\": 7}", OtlpEncoding::Json),
            (b"not json", OtlpEncoding::Json),
        ] {
            assert!(matches!(
                prepare::<ExportTraceServiceRequest>(Bytes::from_static(body), encoding),
                Err(IngestError::BadPayload(_))
            ));
        }
    }

    #[test]
    fn metrics_count_data_points_and_reject_by_rule() {
        let gauge = Metric {
            name: "g".into(),
            data: Some(Data::Gauge(Gauge {
                data_points: vec![NumberDataPoint::default(); 3],
            })),
            ..Default::default()
        };
        let nameless = Metric {
            name: String::new(),
            ..gauge.clone()
        };
        let histogram = Metric {
            name: "h".into(),
            data: Some(Data::Histogram(Histogram {
                data_points: vec![
                    HistogramDataPoint {
                        bucket_counts: vec![1, 2],
                        explicit_bounds: vec![1.0],
                        ..Default::default()
                    },
                    HistogramDataPoint {
                        bucket_counts: vec![1, 2],
                        explicit_bounds: vec![1.0, 2.0],
                        ..Default::default()
                    },
                ],
                aggregation_temporality: 2,
            })),
            ..Default::default()
        };
        let mut req = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![gauge, nameless, histogram],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let v = req.retain_valid();
        assert_eq!((v.accepted, v.rejected), (4, 4));
        assert_eq!(req.resource_metrics[0].scope_metrics[0].metrics.len(), 2);
    }
}
