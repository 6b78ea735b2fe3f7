//! The inspectable JSON form of payloads that are not JSON objects already, for the file
//! sink. Records keep their protocol bytes through the queue (so a sink can forward the
//! original body); only here are they turned into lines a person or `jq` can read:
//!
//! - OTLP (protobuf or JSON): one line per request, the `Export*ServiceRequest` in OTLP/JSON
//!   (lowerCamelCase keys, hex trace/span ids, enums as integers, 64-bit integers as
//!   strings, NaN and infinities as `"NaN"`, `"Infinity"`, `"-Infinity"`), re-serialized by
//!   `proto::otlp_json` so the line is compact and carries no field the client made up.
//! - remote_write: one line per series, `{"labels":{name: value, …},"samples":[{"timestamp":
//!   ms,"value":v}, …]}` plus `"exemplars"` and `"histograms"` when present; one line per
//!   metadata entry, `{"metadata":{"type":"counter","metricFamilyName":…,"help":…,"unit":…}}`.
//!   Values JSON cannot hold (NaN, the staleness marker, and infinities) are strings, as in
//!   Prometheus's own JSON API.

use prost::Message;
use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, SerializeStruct, Serializer};

use crate::forward::record::ContentType;
use crate::model::Kind;
use crate::proto::otlp::collector::logs::v1::ExportLogsServiceRequest;
use crate::proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use crate::proto::otlp::collector::trace::v1::ExportTraceServiceRequest;
use crate::proto::otlp_json::{self, OtlpMessage};
use crate::proto::prometheus::{
    Exemplar, Histogram, Label, MetricMetadata, Sample, TimeSeries, WriteRequest, float,
};

/// Why a stored payload could not be shown as JSON. Ingest decoded it before accepting
/// it, so this means a payload changed on the way (or a new content type without a form).
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("protobuf: {0}")]
    Protobuf(#[from] prost::DecodeError),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("otlp/json: {0}")]
    OtlpJson(#[from] otlp_json::JsonError),
    #[error("snappy: {0}")]
    Snappy(#[from] snap::Error),
}

/// Writes the OTLP request in `payload` as one compact OTLP/JSON object into `out`.
pub fn otlp(
    kind: Kind,
    content_type: ContentType,
    payload: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), InspectError> {
    fn write<T: OtlpMessage>(
        content_type: ContentType,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), InspectError> {
        let message: T = match content_type {
            ContentType::OtlpJson => otlp_json::decode(payload)?,
            _ => T::decode(payload)?,
        };
        otlp_json::encode(&message, out);
        Ok(())
    }
    match kind {
        Kind::Logs => write::<ExportLogsServiceRequest>(content_type, payload, out),
        Kind::Metrics => write::<ExportMetricsServiceRequest>(content_type, payload, out),
        Kind::Traces => write::<ExportTraceServiceRequest>(content_type, payload, out),
    }
}

/// Decodes a snappy `WriteRequest` and calls `line` with one JSON object per series and
/// per metadata entry. Nothing is emitted unless the whole payload decodes.
pub fn remote_write(payload: &[u8], mut line: impl FnMut(&[u8])) -> Result<(), InspectError> {
    let decoded = snap::raw::Decoder::new().decompress_vec(payload)?;
    let request = WriteRequest::decode(decoded.as_slice())?;
    let mut buf = Vec::with_capacity(256);
    for series in &request.timeseries {
        buf.clear();
        serde_json::to_writer(&mut buf, &SeriesJson(series))?;
        line(&buf);
    }
    for metadata in &request.metadata {
        buf.clear();
        serde_json::to_writer(&mut buf, &MetadataLine(metadata))?;
        line(&buf);
    }
    Ok(())
}

struct SeriesJson<'a>(&'a TimeSeries);

impl Serialize for SeriesJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = self.0;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("labels", &LabelsJson(&t.labels))?;
        map.serialize_entry("samples", &SamplesJson(&t.samples))?;
        if !t.exemplars.is_empty() {
            map.serialize_entry("exemplars", &ExemplarsJson(&t.exemplars))?;
        }
        if !t.histograms.is_empty() {
            map.serialize_entry("histograms", &t.histograms as &Vec<Histogram>)?;
        }
        map.end()
    }
}

struct LabelsJson<'a>(&'a [Label]);

impl Serialize for LabelsJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for l in self.0 {
            // UTF-8 was checked at ingest; lossy only guards a payload changed on the way.
            map.serialize_entry(
                &*String::from_utf8_lossy(&l.name),
                &*String::from_utf8_lossy(&l.value),
            )?;
        }
        map.end()
    }
}

struct Value(f64);

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        float::one(&self.0, s)
    }
}

struct SamplesJson<'a>(&'a [Sample]);

impl Serialize for SamplesJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for sample in self.0 {
            seq.serialize_element(&Point {
                timestamp: sample.timestamp,
                value: sample.value,
                labels: None,
            })?;
        }
        seq.end()
    }
}

struct ExemplarsJson<'a>(&'a [Exemplar]);

impl Serialize for ExemplarsJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for e in self.0 {
            seq.serialize_element(&Point {
                timestamp: e.timestamp,
                value: e.value,
                labels: Some(&e.labels),
            })?;
        }
        seq.end()
    }
}

/// A sample, or an exemplar (a sample with labels).
struct Point<'a> {
    timestamp: i64,
    value: f64,
    labels: Option<&'a [Label]>,
}

impl Serialize for Point<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Point", 3)?;
        if let Some(labels) = self.labels {
            st.serialize_field("labels", &LabelsJson(labels))?;
        }
        st.serialize_field("timestamp", &self.timestamp)?;
        st.serialize_field("value", &Value(self.value))?;
        st.end()
    }
}

struct MetadataLine<'a>(&'a MetricMetadata);

impl Serialize for MetadataLine<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Inner<'a>(&'a MetricMetadata);
        impl Serialize for Inner<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let m = self.0;
                let kind = match m.r#type {
                    1 => "counter",
                    2 => "gauge",
                    3 => "histogram",
                    4 => "gaugehistogram",
                    5 => "summary",
                    6 => "info",
                    7 => "stateset",
                    _ => "unknown",
                };
                let mut st = s.serialize_struct("MetricMetadata", 4)?;
                st.serialize_field("type", kind)?;
                st.serialize_field("metricFamilyName", &m.metric_family_name)?;
                st.serialize_field("help", &m.help)?;
                st.serialize_field("unit", &m.unit)?;
                st.end()
            }
        }
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry("metadata", &Inner(self.0))?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_write_series_become_lines_with_non_finite_values_as_strings() {
        let req = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![Label::new("__name__", "up"), Label::new("job", "x")],
                samples: vec![
                    Sample {
                        value: 1.5,
                        timestamp: 10,
                    },
                    Sample {
                        value: f64::NAN,
                        timestamp: 20,
                    },
                ],
                ..Default::default()
            }],
            metadata: vec![MetricMetadata {
                r#type: 2,
                metric_family_name: "up".into(),
                help: "h".into(),
                unit: String::new(),
            }],
        };
        let payload = snap::raw::Encoder::new()
            .compress_vec(&req.encode_to_vec())
            .unwrap();
        let mut lines = Vec::new();
        remote_write(&payload, |l| {
            lines.push(serde_json::from_slice::<serde_json::Value>(l).unwrap())
        })
        .unwrap();
        assert_eq!(
            lines,
            [
                serde_json::json!({"labels": {"__name__": "up", "job": "x"},
                    "samples": [{"timestamp": 10, "value": 1.5}, {"timestamp": 20, "value": "NaN"}]}),
                serde_json::json!({"metadata": {"type": "gauge", "metricFamilyName": "up",
                    "help": "h", "unit": ""}}),
            ]
        );
    }
}
