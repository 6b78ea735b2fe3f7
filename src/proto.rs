//! Wire messages shared by `ingest` (which decodes and validates them) and `forward` (whose
//! file sink turns stored payloads into inspectable JSON). Definitions only: no I/O, no
//! policy, so both sides may import it like `model`.
//!
//! - OTLP: the official generated messages of `opentelemetry-proto` (prost), and
//!   [`otlp_json`], their OTLP/JSON encoding by the proto3 JSON rules (camelCase keys, hex
//!   trace/span ids, enums as integers, 64-bit integers and doubles as numbers or strings),
//!   and [`otlp_wire`], their protobuf walked without decoding (cost, records, soundness).
//! - `google.rpc.Status`: the body of every OTLP error answer.
//! - Prometheus remote_write 1.0 (`prometheus.WriteRequest`, from Prometheus's
//!   `prompb/types.proto` and `remote.proto`), defined here with prost derive: no
//!   well-kept crate publishes them. Field numbers are the wire contract; keep them.

/// The OTLP messages: `otlp::collector::{logs,metrics,trace}::v1` (requests, responses)
/// and `otlp::{logs,metrics,trace,common,resource}::v1` (the data).
pub use opentelemetry_proto::tonic as otlp;

pub mod otlp_flat;
pub mod otlp_json;
pub mod otlp_wire;

/// `google.rpc.Status`, the error body of OTLP/HTTP. `details` (field 3) is never sent.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Status {
    /// A `google.rpc.Code` (3 invalid argument, 7 permission denied, 14 unavailable, …).
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

/// Prometheus remote_write 1.0 messages.
pub mod prometheus {
    use bytes::Bytes;
    use serde::Serialize;

    /// `prometheus.WriteRequest`: what one remote_write POST carries (snappy block format).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WriteRequest {
        #[prost(message, repeated, tag = "1")]
        pub timeseries: Vec<TimeSeries>,
        /// Sent by Prometheus in its own requests (often with no series at all).
        #[prost(message, repeated, tag = "3")]
        pub metadata: Vec<MetricMetadata>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        /// Sorted by name, names unique, `__name__` among them (the 1.0 spec's MUSTs).
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
        #[prost(message, repeated, tag = "3")]
        pub exemplars: Vec<Exemplar>,
        /// Native histograms (sent only when the sender enables them).
        #[prost(message, repeated, tag = "4")]
        pub histograms: Vec<Histogram>,
    }

    /// Name and value are protobuf strings read as `Bytes`: decoded from a `Bytes` buffer
    /// they are slices of it, so a 10,000-series request costs no allocation per label.
    /// The price: prost does not check their UTF-8; `ingest::remote_write` does.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Label {
        #[prost(bytes = "bytes", tag = "1")]
        pub name: Bytes,
        #[prost(bytes = "bytes", tag = "2")]
        pub value: Bytes,
    }

    impl Label {
        /// A label with copies of `name` and `value` (for building requests).
        pub fn new(name: &str, value: &str) -> Label {
            Label {
                name: Bytes::copy_from_slice(name.as_bytes()),
                value: Bytes::copy_from_slice(value.as_bytes()),
            }
        }
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sample {
        /// May be NaN: Prometheus's staleness marker is a special NaN.
        #[prost(double, tag = "1")]
        pub value: f64,
        /// Milliseconds since the epoch.
        #[prost(int64, tag = "2")]
        pub timestamp: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Exemplar {
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        #[prost(double, tag = "2")]
        pub value: f64,
        #[prost(int64, tag = "3")]
        pub timestamp: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MetricMetadata {
        /// `MetricType`: 0 unknown, 1 counter, 2 gauge, 3 histogram, 4 gaugehistogram,
        /// 5 summary, 6 info, 7 stateset.
        #[prost(int32, tag = "1")]
        pub r#type: i32,
        #[prost(string, tag = "2")]
        pub metric_family_name: String,
        #[prost(string, tag = "4")]
        pub help: String,
        #[prost(string, tag = "5")]
        pub unit: String,
    }

    /// A native histogram sample. Serializes (for the file sink) with camelCase keys;
    /// floats that JSON cannot hold are written as strings (`"NaN"`, `"+Inf"`, `"-Inf"`).
    #[derive(Clone, PartialEq, prost::Message, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Histogram {
        #[prost(oneof = "histogram::Count", tags = "1, 2")]
        #[serde(flatten)]
        pub count: Option<histogram::Count>,
        #[prost(double, tag = "3")]
        #[serde(serialize_with = "float::one")]
        pub sum: f64,
        #[prost(sint32, tag = "4")]
        pub schema: i32,
        #[prost(double, tag = "5")]
        #[serde(serialize_with = "float::one")]
        pub zero_threshold: f64,
        #[prost(oneof = "histogram::ZeroCount", tags = "6, 7")]
        #[serde(flatten)]
        pub zero_count: Option<histogram::ZeroCount>,
        #[prost(message, repeated, tag = "8")]
        pub negative_spans: Vec<BucketSpan>,
        #[prost(sint64, repeated, tag = "9")]
        pub negative_deltas: Vec<i64>,
        #[prost(double, repeated, tag = "10")]
        #[serde(serialize_with = "float::many")]
        pub negative_counts: Vec<f64>,
        #[prost(message, repeated, tag = "11")]
        pub positive_spans: Vec<BucketSpan>,
        #[prost(sint64, repeated, tag = "12")]
        pub positive_deltas: Vec<i64>,
        #[prost(double, repeated, tag = "13")]
        #[serde(serialize_with = "float::many")]
        pub positive_counts: Vec<f64>,
        #[prost(int32, tag = "14")]
        pub reset_hint: i32,
        #[prost(int64, tag = "15")]
        pub timestamp: i64,
    }

    pub mod histogram {
        use serde::Serialize;

        #[derive(Clone, Copy, PartialEq, prost::Oneof, Serialize)]
        #[serde(rename_all = "camelCase")]
        pub enum Count {
            #[prost(uint64, tag = "1")]
            CountInt(u64),
            #[prost(double, tag = "2")]
            CountFloat(#[serde(serialize_with = "super::float::one")] f64),
        }

        #[derive(Clone, Copy, PartialEq, prost::Oneof, Serialize)]
        #[serde(rename_all = "camelCase")]
        pub enum ZeroCount {
            #[prost(uint64, tag = "6")]
            ZeroCountInt(u64),
            #[prost(double, tag = "7")]
            ZeroCountFloat(#[serde(serialize_with = "super::float::one")] f64),
        }
    }

    #[derive(Clone, Copy, PartialEq, prost::Message, Serialize)]
    pub struct BucketSpan {
        #[prost(sint32, tag = "1")]
        pub offset: i32,
        #[prost(uint32, tag = "2")]
        pub length: u32,
    }

    /// JSON has no NaN or infinity; Prometheus's own JSON API writes them as strings.
    pub mod float {
        use serde::Serializer;
        use serde::ser::SerializeSeq;

        pub fn one<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
            if v.is_finite() {
                s.serialize_f64(*v)
            } else if v.is_nan() {
                s.serialize_str("NaN")
            } else if *v > 0.0 {
                s.serialize_str("+Inf")
            } else {
                s.serialize_str("-Inf")
            }
        }

        pub fn many<S: Serializer>(vs: &[f64], s: S) -> Result<S::Ok, S::Error> {
            struct One(f64);
            impl serde::Serialize for One {
                fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                    one(&self.0, s)
                }
            }
            let mut seq = s.serialize_seq(Some(vs.len()))?;
            for v in vs {
                seq.serialize_element(&One(*v))?;
            }
            seq.end()
        }
    }
}
