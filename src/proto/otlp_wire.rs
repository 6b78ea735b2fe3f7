//! OTLP protobuf read where it lies, building nothing: what decoding a request would cost
//! (ingest checks it against a budget before anything is decoded) and, in the same pass,
//! what ingest's rules look at in each record. A request whose records all pass — nearly
//! every one — is then forwarded as sent without prost building its tree, which took about
//! 80 % of an OTLP request's time.
//!
//! The walk is sound, not complete: it calls a request clean only if prost would decode it.
//! Whatever it is not sure of — a group, a wire type prost refuses for the field, a string
//! that is not UTF-8, a packed run cut short, a metric with two `data` fields (prost merges
//! or replaces them), deep nesting — makes it unclean, and ingest lets prost decide.

use std::sync::LazyLock;

use prost::encoding::{WireType, decode_varint};

use super::otlp_json::{OtlpMessage, Type, Wire, WireError, schema, take};

/// What ingest's rules look at in one record, read off the wire. A field sent more than
/// once counts by its last value, as prost decodes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record<'a> {
    Span {
        trace_id: &'a [u8],
        span_id: &'a [u8],
        parent_span_id: &'a [u8],
    },
    LogRecord {
        trace_id: &'a [u8],
        span_id: &'a [u8],
    },
    /// A metric: its name and how many data points its `data` holds.
    Metric { name: &'a [u8], points: u64 },
    /// A histogram's data point: how many bucket counts and explicit bounds it has.
    HistogramPoint {
        bucket_counts: u64,
        explicit_bounds: u64,
    },
}

/// The outcome of a walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Walked {
    /// About the memory decoding the request into structs would take: `MESSAGE_COST` a
    /// message, the length of strings and bytes, 8 bytes a number.
    pub cost: usize,
    /// Spans, log records or data points: what a verdict counts. Exact only when `clean`.
    pub records: u64,
    /// Prost decodes the request, and every record passed the caller's rules.
    pub clean: bool,
}

/// What decoding a message into its Rust structs takes, roughly, per message: about a
/// `KeyValue` with its `AnyValue`, the most numerous (`Span` is larger, and rarer).
pub const MESSAGE_COST: usize = 64;

/// Nesting past this is refused, as prost refuses it.
const MAX_DEPTH: usize = 100;
/// Nesting past this is left to prost (its recursion limit, not re-derived here).
const SURE_DEPTH: usize = 64;

/// Walks `wire` as an `M`, asking `passes` about every record. `None` if the walk cannot go
/// on (a broken key, length or varint, a group, nesting past prost's limit): there is no
/// cost to count, and prost names the error.
pub fn walk<M: OtlpMessage>(wire: &[u8], passes: impl FnMut(Record<'_>) -> bool) -> Option<Walked> {
    walk_or_cost::<M>(wire, passes).ok()
}

/// `walk`, telling for a body that does not walk what the part before the break costs:
/// prost decodes that much before it finds the error.
pub fn walk_or_cost<M: OtlpMessage>(
    wire: &[u8],
    passes: impl FnMut(Record<'_>) -> bool,
) -> Result<Walked, usize> {
    let root = schema().index(M::FULL_NAME);
    let mut walk = Walk {
        plans: &PLANS,
        cost: MESSAGE_COST,
        records: 0,
        clean: true,
        passes,
    };
    match walk.message(root, wire, 0) {
        Ok(_) => Ok(Walked {
            cost: walk.cost,
            records: walk.records,
            clean: walk.clean,
        }),
        Err(_) => Err(walk.cost),
    }
}

/// The part a message type plays for the rules, with the numbers of the fields they read
/// (looked up by name in the descriptors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Other,
    Span {
        trace_id: u32,
        span_id: u32,
        parent_span_id: u32,
    },
    LogRecord {
        trace_id: u32,
        span_id: u32,
    },
    /// `data` is the oneof's five fields.
    Metric {
        name: u32,
        data: [u32; 5],
    },
    /// `Gauge`, `Sum`, `Histogram`, `ExponentialHistogram`, `Summary`.
    Points {
        data_points: u32,
    },
    HistogramPoint {
        bucket_counts: u32,
        explicit_bounds: u32,
    },
}

/// How the walk reads one field, by field number: everything it needs in one small value,
/// so the loop looks nothing else up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// Not a field of the message: prost skips it.
    Unknown,
    /// A message field: its type's index in `Schema::messages`.
    Message(u32),
    String,
    /// Bytes (ids included).
    Bytes,
    /// A number (or bool, or enum): the wire type of one value; if `repeated`, it may also
    /// come packed.
    Number {
        wire: WireType,
        repeated: bool,
    },
}

/// A message type as the walk reads it: its role and its fields by number.
struct Plan {
    role: Role,
    slots: Vec<Slot>,
}

impl Plan {
    fn slot(&self, number: u32) -> Slot {
        self.slots
            .get(number as usize)
            .copied()
            .unwrap_or(Slot::Unknown)
    }
}

/// Each message type's plan, indexed like `Schema::messages`.
static PLANS: LazyLock<Vec<Plan>> = LazyLock::new(|| {
    let schema = schema();
    let mut of: Vec<Plan> = schema
        .messages
        .iter()
        .map(|m| {
            let numbers = m.fields.iter().map(|f| f.number as usize);
            let mut slots = vec![Slot::Unknown; numbers.max().map_or(0, |n| n + 1)];
            for f in &m.fields {
                slots[f.number as usize] = match f.ty {
                    Type::Message(index) => {
                        Slot::Message(u32::try_from(index).expect("a few hundred messages"))
                    }
                    Type::String => Slot::String,
                    Type::Bytes | Type::HexBytes => Slot::Bytes,
                    ty => Slot::Number {
                        wire: scalar_wire_type(ty),
                        repeated: f.repeated,
                    },
                };
            }
            Plan {
                role: Role::Other,
                slots,
            }
        })
        .collect();
    let number = |message: &str, json_name: &str| -> u32 {
        let m = &schema.messages[schema.index(message)];
        m.fields[m.by_json_name[json_name]].number
    };
    let mut set = |message: &str, role: Role| of[schema.index(message)].role = role;
    const P: &str = "opentelemetry.proto";
    let span = &format!("{P}.trace.v1.Span");
    set(
        span,
        Role::Span {
            trace_id: number(span, "traceId"),
            span_id: number(span, "spanId"),
            parent_span_id: number(span, "parentSpanId"),
        },
    );
    let log = &format!("{P}.logs.v1.LogRecord");
    set(
        log,
        Role::LogRecord {
            trace_id: number(log, "traceId"),
            span_id: number(log, "spanId"),
        },
    );
    let metric = &format!("{P}.metrics.v1.Metric");
    let data = [
        "gauge",
        "sum",
        "histogram",
        "exponentialHistogram",
        "summary",
    ];
    set(
        metric,
        Role::Metric {
            name: number(metric, "name"),
            data: data.map(|d| number(metric, d)),
        },
    );
    for points in [
        "Gauge",
        "Sum",
        "Histogram",
        "ExponentialHistogram",
        "Summary",
    ] {
        let points = &format!("{P}.metrics.v1.{points}");
        set(
            points,
            Role::Points {
                data_points: number(points, "dataPoints"),
            },
        );
    }
    let histogram_point = &format!("{P}.metrics.v1.HistogramDataPoint");
    set(
        histogram_point,
        Role::HistogramPoint {
            bucket_counts: number(histogram_point, "bucketCounts"),
            explicit_bounds: number(histogram_point, "explicitBounds"),
        },
    );
    of
});

/// What a role's rule reads from one message, gathered while walking it.
#[derive(Default)]
struct Seen<'a> {
    /// The last value of the ids (`Span`: trace, span, parent; `LogRecord`: trace, span)
    /// or of a metric's name (`[0]`).
    bytes: [&'a [u8]; 3],
    /// `Points`: data points. `HistogramPoint`: bucket counts, explicit bounds. `Metric`:
    /// `data` fields sent, data points of the last one.
    counts: [u64; 2],
}

struct Walk<F> {
    plans: &'static [Plan],
    cost: usize,
    records: u64,
    clean: bool,
    passes: F,
}

/// One field as read: its number, its value, how many numbers it holds (a packed run holds
/// many) and, for a message of `data`, the data points it holds.
struct Read<'a> {
    number: u32,
    value: Wire<'a>,
    elements: u64,
    points: u64,
}

impl<F: FnMut(Record<'_>) -> bool> Walk<F> {
    /// Walks one message. `Ok(n)`: its data points if it is a `Points` message (what its
    /// `Metric` reads), 0 otherwise.
    fn message(&mut self, index: usize, mut buf: &[u8], depth: usize) -> Result<u64, WireError> {
        if depth > MAX_DEPTH {
            return Err(WireError);
        }
        self.clean &= depth <= SURE_DEPTH;
        let plan = &self.plans[index];
        if plan.role == Role::Other {
            // Most messages (attributes and their values): checked and costed, no more.
            while !buf.is_empty() {
                self.field(plan, &mut buf, depth)?;
            }
            return Ok(0);
        }
        let mut seen = Seen::default();
        while !buf.is_empty() {
            let read = self.field(plan, &mut buf, depth)?;
            see(&plan.role, &read, &mut seen);
        }
        self.judge(&plan.role, &seen);
        Ok(match plan.role {
            Role::Points { .. } => seen.counts[0],
            _ => 0,
        })
    }

    /// Reads the next field of a `plan` message from `buf`, walking into it if it is a
    /// message: checks what prost checks and counts its cost.
    #[inline(always)]
    fn field<'a>(
        &mut self,
        plan: &Plan,
        buf: &mut &'a [u8],
        depth: usize,
    ) -> Result<Read<'a>, WireError> {
        let (number, wire_type) = key(buf)?;
        let slot = plan.slot(number);
        let (mut elements, mut points) = (1, 0);
        let value = match wire_type {
            WireType::LengthDelimited => {
                let len = usize::try_from(varint(buf)?).map_err(|_| WireError)?;
                let (bytes, rest) = buf.split_at_checked(len).ok_or(WireError)?;
                *buf = rest;
                match slot {
                    Slot::Message(child) => {
                        self.cost += MESSAGE_COST;
                        points = self.message(child as usize, bytes, depth + 1)?;
                    }
                    Slot::String => {
                        self.cost += len;
                        self.clean &= is_ascii(bytes) || std::str::from_utf8(bytes).is_ok();
                    }
                    Slot::Bytes | Slot::Unknown => self.cost += len,
                    // A packed run of numbers: a packed varint takes 1 byte on the wire
                    // and 8 decoded, so 8 a byte at most.
                    Slot::Number { wire, repeated } => {
                        self.cost += 8 * len;
                        match packed_len(wire, bytes) {
                            Some(n) if repeated => elements = n,
                            _ => self.clean = false,
                        }
                    }
                }
                Wire::Bytes(bytes)
            }
            WireType::StartGroup | WireType::EndGroup => return Err(WireError),
            scalar => {
                self.cost += 8;
                self.clean &= match slot {
                    Slot::Unknown => true,
                    Slot::Number { wire, .. } => wire == scalar,
                    _ => false,
                };
                match scalar {
                    WireType::Varint => Wire::Varint(varint(buf)?),
                    WireType::SixtyFourBit => Wire::Fixed64(take(buf)?),
                    _ => Wire::Fixed32(take(buf)?),
                }
            }
        };
        Ok(Read {
            number,
            value,
            elements,
            points,
        })
    }

    /// Asks the caller's rules about a record once all its fields are read.
    fn judge(&mut self, role: &Role, seen: &Seen<'_>) {
        let [a, b, c] = seen.bytes;
        let (record, records) = match *role {
            Role::Span { .. } => (
                Record::Span {
                    trace_id: a,
                    span_id: b,
                    parent_span_id: c,
                },
                1,
            ),
            Role::LogRecord { .. } => (
                Record::LogRecord {
                    trace_id: a,
                    span_id: b,
                },
                1,
            ),
            Role::Metric { .. } => {
                // Two `data` fields: prost merges the same kind and replaces another.
                self.clean &= seen.counts[0] <= 1;
                let points = seen.counts[1];
                (Record::Metric { name: a, points }, points)
            }
            Role::HistogramPoint { .. } => (
                Record::HistogramPoint {
                    bucket_counts: seen.counts[0],
                    explicit_bounds: seen.counts[1],
                },
                0,
            ),
            Role::Points { .. } | Role::Other => return,
        };
        self.records += records;
        self.clean &= (self.passes)(record);
    }
}

/// Notes what `role`'s rule reads from a field.
#[inline(always)]
fn see<'a>(role: &Role, read: &Read<'a>, seen: &mut Seen<'a>) {
    let number = read.number;
    let bytes = match read.value {
        Wire::Bytes(b) => b,
        _ => &[],
    };
    match *role {
        Role::Span {
            trace_id,
            span_id,
            parent_span_id,
        } => {
            if let Some(slot) = [trace_id, span_id, parent_span_id]
                .iter()
                .position(|&n| n == number)
            {
                seen.bytes[slot] = bytes;
            }
        }
        Role::LogRecord { trace_id, span_id } => {
            if let Some(slot) = [trace_id, span_id].iter().position(|&n| n == number) {
                seen.bytes[slot] = bytes;
            }
        }
        Role::Metric { name, .. } if number == name => seen.bytes[0] = bytes,
        Role::Metric { data, .. } if data.contains(&number) => {
            seen.counts[0] += 1;
            seen.counts[1] = read.points;
        }
        Role::Points { data_points } if number == data_points => seen.counts[0] += 1,
        Role::HistogramPoint {
            bucket_counts,
            explicit_bounds,
        } => {
            if number == bucket_counts {
                seen.counts[0] += read.elements;
            } else if number == explicit_bounds {
                seen.counts[1] += read.elements;
            }
        }
        Role::Metric { .. } | Role::Points { .. } | Role::Other => {}
    }
}

/// A field's key, as prost's `decode_key` reads it (the same errors), with a one-byte key
/// — field numbers up to 15, all of OTLP's — taken without the general varint loop.
#[inline(always)]
fn key(buf: &mut &[u8]) -> Result<(u32, WireType), WireError> {
    let key = varint(buf)?;
    let key = u32::try_from(key).map_err(|_| WireError)?;
    let wire_type = WireType::try_from(u64::from(key & 7)).map_err(|_| WireError)?;
    match key >> 3 {
        0 => Err(WireError),
        number => Ok((number, wire_type)),
    }
}

/// A varint, as prost's `decode_varint` reads it; one byte (most keys and lengths) without
/// its loop.
#[inline(always)]
fn varint(buf: &mut &[u8]) -> Result<u64, WireError> {
    match buf.split_first() {
        Some((&byte, rest)) if byte < 0x80 => {
            *buf = rest;
            Ok(u64::from(byte))
        }
        _ => long_varint(buf),
    }
}

#[cold]
#[inline(never)]
fn long_varint(buf: &mut &[u8]) -> Result<u64, WireError> {
    Ok(decode_varint(buf)?)
}

/// Whether `bytes` is ASCII, as nearly every string in OTLP is, read in words: attribute
/// keys and values are mostly under 16 bytes, where the standard library's check goes
/// byte by byte. Words may overlap; every byte is read at least once.
#[inline(always)]
fn is_ascii(bytes: &[u8]) -> bool {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let n = bytes.len();
    let high = if n >= 8 {
        let word = |s: &[u8]| u64::from_le_bytes(s.try_into().expect("8 bytes"));
        let mut all = word(&bytes[n - 8..]);
        for chunk in bytes.chunks_exact(8) {
            all |= word(chunk);
        }
        all & HIGH
    } else if n >= 4 {
        let word = |s: &[u8]| u32::from_le_bytes(s.try_into().expect("4 bytes"));
        u64::from(word(&bytes[..4]) | word(&bytes[n - 4..])) & HIGH
    } else {
        bytes.iter().fold(0, |all, &b| all | u64::from(b)) & HIGH
    };
    high == 0
}

/// The wire type prost expects for one value of a number field.
fn scalar_wire_type(ty: Type) -> WireType {
    match ty {
        Type::Double | Type::Fixed64 | Type::SFixed64 => WireType::SixtyFourBit,
        Type::Float | Type::Fixed32 | Type::SFixed32 => WireType::ThirtyTwoBit,
        _ => WireType::Varint,
    }
}

/// How many numbers a packed run holds, each sent as `wire`; `None` if the run is cut
/// short.
fn packed_len(wire: WireType, mut packed: &[u8]) -> Option<u64> {
    let size = match wire {
        WireType::SixtyFourBit => 8,
        WireType::ThirtyTwoBit => 4,
        _ => {
            let mut n = 0;
            while !packed.is_empty() {
                decode_varint(&mut packed).ok()?;
                n += 1;
            }
            return Some(n);
        }
    };
    packed
        .len()
        .is_multiple_of(size)
        .then_some((packed.len() / size) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::otlp::collector::logs::v1::ExportLogsServiceRequest as Logs;
    use crate::proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest as Metrics;
    use crate::proto::otlp::collector::trace::v1::ExportTraceServiceRequest as Traces;
    use crate::proto::otlp::common::v1::{AnyValue, KeyValue, any_value};
    use crate::proto::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use crate::proto::otlp::metrics::v1::metric::Data;
    use crate::proto::otlp::metrics::v1::{
        Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics,
        ScopeMetrics,
    };
    use crate::proto::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message;

    fn records<M: OtlpMessage>(wire: &[u8]) -> (Option<Walked>, Vec<String>) {
        let mut seen = Vec::new();
        let walked = walk::<M>(wire, |r| {
            seen.push(format!("{r:?}"));
            true
        });
        (walked, seen)
    }

    fn traces(spans: Vec<Span>) -> Vec<u8> {
        Traces {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec()
    }

    /// A request of one span, its encoding given (each part under 128 bytes).
    fn in_one_scope(span: Vec<u8>) -> Vec<u8> {
        let wrap = |tag: u8, inner: &[u8]| [&[tag, inner.len() as u8][..], inner].concat();
        wrap(0x0a, &wrap(0x12, &wrap(0x12, &span)))
    }

    #[test]
    fn roles_read_the_fields_the_rules_name() {
        let s = schema();
        let role = |name: &str| PLANS[s.index(&format!("opentelemetry.proto.{name}"))].role;
        assert_eq!(
            role("trace.v1.Span"),
            Role::Span {
                trace_id: 1,
                span_id: 2,
                parent_span_id: 4
            }
        );
        assert_eq!(
            role("logs.v1.LogRecord"),
            Role::LogRecord {
                trace_id: 9,
                span_id: 10
            }
        );
        assert_eq!(
            role("metrics.v1.Metric"),
            Role::Metric {
                name: 1,
                data: [5, 7, 9, 10, 11]
            }
        );
        assert_eq!(
            role("metrics.v1.HistogramDataPoint"),
            Role::HistogramPoint {
                bucket_counts: 6,
                explicit_bounds: 7
            }
        );
        assert_eq!(
            role("trace.v1.Span.Link"),
            Role::Other,
            "a link's ids are not a span's"
        );
    }

    #[test]
    fn spans_are_read_with_their_ids_and_counted() {
        let span = |t: u8, name: &str| Span {
            trace_id: vec![t; 16],
            span_id: vec![2; 8],
            name: name.into(),
            attributes: vec![KeyValue {
                key: "k".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::StringValue("v".into())),
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        let wire = traces(vec![span(1, "a"), span(3, "b")]);
        let (walked, seen) = records::<Traces>(&wire);
        let walked = walked.unwrap();
        assert_eq!((walked.records, walked.clean), (2, true));
        assert_eq!(seen.len(), 2);
        assert!(seen[1].contains("trace_id: [3, 3,"), "{seen:?}");
        assert!(seen[1].contains("parent_span_id: []"), "{seen:?}");
    }

    #[test]
    fn the_last_value_of_a_field_sent_twice_is_the_one_judged() {
        let mut wire = Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            ..Default::default()
        }
        .encode_to_vec();
        wire.extend([0x0a, 0x01, 0x07]); // trace_id again: one byte
        let wire = traces(vec![Span::decode(wire.as_slice()).unwrap()]);
        let (_, seen) = records::<Traces>(&wire);
        // prost keeps the last: re-encoding carries one trace_id of one byte.
        assert!(seen[0].contains("trace_id: [7]"), "{seen:?}");
    }

    #[test]
    fn a_failing_record_makes_the_walk_unclean() {
        let wire = traces(vec![Span::default()]);
        let walked = walk::<Traces>(&wire, |_| false).unwrap();
        assert!(!walked.clean);
    }

    #[test]
    fn what_prost_refuses_is_never_clean() {
        let valid = traces(vec![Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: "ok".into(),
            ..Default::default()
        }]);
        assert!(walk::<Traces>(&valid, |_| true).unwrap().clean);
        // The span's name (field 5) as a string that is not UTF-8, then as a varint.
        let ids = [&[0x0a, 16][..], &[1; 16], &[0x12, 8], &[2; 8]].concat();
        let bad_name = in_one_scope([&ids[..], &[0x2a, 1, 0xff]].concat());
        let wrong_type = in_one_scope([&ids[..], &[0x28, 1]].concat());
        for wire in [bad_name, wrong_type] {
            assert!(Traces::decode(wire.as_slice()).is_err());
            let walked = walk::<Traces>(&wire, |_| true).unwrap();
            assert!(!walked.clean, "{wire:x?}");
        }
        // Truncated: the walk stops.
        assert_eq!(walk::<Traces>(&[0x0a, 0x05, 0x00], |_| true), None);
    }

    #[test]
    fn log_records_are_read_with_their_ids() {
        let wire = Logs {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![LogRecord {
                        trace_id: vec![5; 16],
                        span_id: vec![6; 8],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec();
        let (walked, seen) = records::<Logs>(&wire);
        assert_eq!(walked.unwrap().records, 1);
        assert_eq!(
            seen,
            [format!(
                "{:?}",
                Record::LogRecord {
                    trace_id: &[5; 16],
                    span_id: &[6; 8]
                }
            )]
        );
    }

    #[test]
    fn metrics_count_points_and_histogram_shapes() {
        let metrics = vec![
            Metric {
                name: "g".into(),
                data: Some(Data::Gauge(Gauge {
                    data_points: vec![NumberDataPoint::default(); 3],
                })),
                ..Default::default()
            },
            Metric {
                name: "h".into(),
                data: Some(Data::Histogram(Histogram {
                    data_points: vec![HistogramDataPoint {
                        bucket_counts: vec![1, 2, 3],
                        explicit_bounds: vec![1.0, 2.0],
                        ..Default::default()
                    }],
                    aggregation_temporality: 2,
                })),
                ..Default::default()
            },
        ];
        let wire = Metrics {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec();
        let mut seen = Vec::new();
        let walked = walk::<Metrics>(&wire, |r| {
            seen.push(match r {
                Record::Metric { name, points } => format!("{} {points}", name.escape_ascii()),
                Record::HistogramPoint {
                    bucket_counts,
                    explicit_bounds,
                } => format!("point {bucket_counts}/{explicit_bounds}"),
                other => panic!("{other:?}"),
            });
            true
        })
        .unwrap();
        assert_eq!(seen, ["g 3", "point 3/2", "h 1"]);
        assert_eq!((walked.records, walked.clean), (4, true));
    }

    #[test]
    fn a_metric_with_two_data_fields_is_left_to_prost() {
        let gauge = |points: usize| {
            Gauge {
                data_points: vec![NumberDataPoint::default(); points],
            }
            .encode_to_vec()
        };
        // name "m", then `gauge` (field 5) twice: prost merges them into one of 3 points.
        let mut metric = vec![0x0a, 1, b'm'];
        for g in [gauge(1), gauge(2)] {
            metric.extend([0x2a, g.len() as u8]);
            metric.extend(g);
        }
        let wrap = |tag: u8, inner: &[u8]| [&[tag, inner.len() as u8][..], inner].concat();
        let wire = wrap(0x0a, &wrap(0x12, &wrap(0x12, &metric)));
        let walked = walk::<Metrics>(&wire, |_| true).unwrap();
        assert!(!walked.clean);
        let decoded = Metrics::decode(wire.as_slice()).unwrap();
        let m = &decoded.resource_metrics[0].scope_metrics[0].metrics[0];
        assert!(matches!(&m.data, Some(Data::Gauge(g)) if g.data_points.len() == 3));
    }

    #[test]
    fn deep_nesting_is_left_to_prost() {
        // An attribute whose value is a list holding a list … 40 deep: messages nested 85
        // deep, past what the walk is sure of and within prost's limit of 100.
        let mut value = AnyValue {
            value: Some(any_value::Value::StringValue("x".into())),
        };
        for _ in 0..40 {
            value = AnyValue {
                value: Some(any_value::Value::ArrayValue(
                    crate::proto::otlp::common::v1::ArrayValue {
                        values: vec![value],
                    },
                )),
            };
        }
        let wire = traces(vec![Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            attributes: vec![KeyValue {
                key: "deep".into(),
                value: Some(value),
                ..Default::default()
            }],
            ..Default::default()
        }]);
        let walked = walk::<Traces>(&wire, |_| true).unwrap();
        assert_eq!((walked.records, walked.clean), (1, false));
        assert!(Traces::decode(wire.as_slice()).is_ok());
    }

    #[test]
    fn ascii_is_found_in_every_byte_of_any_length() {
        for n in 0..40 {
            let ascii = vec![b'a'; n];
            assert!(is_ascii(&ascii), "{n}");
            for at in 0..n {
                let mut one_high = ascii.clone();
                one_high[at] = 0xc3;
                assert!(!is_ascii(&one_high), "{n} bytes, high at {at}");
            }
        }
    }

    #[test]
    fn cost_counts_messages_without_decoding_them() {
        // `0a 00`: one empty ResourceSpans, 2 bytes on the wire, a struct decoded.
        let empties = [0x0a, 0x00].repeat(1000);
        let walked = walk::<Traces>(&empties, |_| true).unwrap();
        assert_eq!(walked.cost, MESSAGE_COST * 1001);
        assert!(walked.cost > 30 * empties.len());
        assert_eq!((walked.records, walked.clean), (0, true));
    }
}
