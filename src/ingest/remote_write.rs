//! `POST /api/v1/write` — Prometheus remote_write 1.0 (DESIGN §1), top to bottom: headers,
//! token, body, decode, check, submit, reply.
//!
//! - The body is a `prometheus.WriteRequest` in protobuf, snappy block-compressed, with
//!   `Content-Encoding: snappy`. Another encoding, another `Content-Type`, or a remote_write
//!   2.x request (`proto=io.prometheus.write.v2.Request`, version header `2.*`) is a 415 —
//!   what the 2.0 spec tells 1.0-only receivers to answer.
//! - The token comes from `Authorization: Bearer` only and must be a metrics token.
//! - remote_write has no partial success, and senders drop a request answered with 4xx,
//!   so a request breaking any rule is a 400 as a whole: a series has no labels, an empty
//!   label name, a repeated label name, or no non-empty `__name__` (Prometheus's own
//!   receiver refuses the same). Label names are not otherwise restricted (Prometheus 3
//!   allows UTF-8 names).
//! - Success is 204 with an empty body, as Prometheus's own receiver answers. The body is
//!   forwarded as sent (still snappy-compressed): one payload per request.

use std::ops::Range;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode, header};
use http_body_util::Full;
use prost::Message;
use prost::encoding::{DecodeContext, WireType, decode_key, decode_varint, skip_field};

use super::Ingest;
use super::body::{off_the_runtime_if_large, read_raw_body};
use super::budget::DecodeHold;
use super::error::{Body, IngestError};
use super::request::bearer_token;
use crate::filters::held::MetricsFilters;
use crate::filters::metrics::{Labels, METRIC_NAME};
use crate::forward::{ContentType, Envelope, Payloads, RecordBatch};
use crate::model::Kind;
use crate::proto::prometheus::{Exemplar, Histogram, Label, MetricMetadata, TimeSeries};
use crate::server::body::RequestBody;

pub async fn handle(req: Request<RequestBody>, cx: &Ingest) -> Result<Response<Body>, IngestError> {
    check_headers(req.headers())?;
    let info = cx
        .tokens
        .authenticate(bearer_token(req.headers()), Kind::Metrics)
        .await?;
    super::record_token(&info);
    let raw = read_raw_body(req.into_body(), &cx.limits)
        .await?
        .into_owned();
    // What the body and its decoded form hold, until the answer: given back when it drops.
    let mut hold = DecodeHold::new(&cx.limits.decode_budget);
    hold.grow(raw.len())?;
    let max = cx.limits.max_decompressed_bytes;
    let filters = cx.rules.filters.metrics_of(info.account_id);
    let Filtered { counts, kept } = {
        let raw = raw.clone();
        off_the_runtime_if_large(raw.len(), &mut hold, move |hold| {
            decode_filtered(&raw, max, hold, filters.as_ref())
        })
        .await?
    };
    cx.admit(&info, Kind::Metrics, counts.decoded_bytes, counts.samples)?;
    if counts.series > 0 || counts.metadata > 0 {
        cx.forward
            .submit(RecordBatch {
                envelope: Envelope {
                    kind: Kind::Metrics,
                    account_id: info.account_id,
                    token_id: info.token_id.clone(),
                    log_type: None,
                    content_type: ContentType::RemoteWriteSnappy,
                },
                payloads: Payloads::from_buf([kept.unwrap_or(raw)]),
            })
            .await?;
    }
    let metrics = cx.metrics.kind(Kind::Metrics);
    metrics.records.inc_by(counts.samples);
    metrics.bytes.inc_by(counts.decoded_bytes);
    metrics.dropped_by_filter.inc_by(counts.dropped_samples);
    // Dropped series are not in the account's volume (DESIGN §9).
    cx.tokens
        .record_usage(&info, counts.decoded_bytes, counts.samples);
    Ok(Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Full::new(Bytes::new()))
        .expect("static response is valid"))
}

/// What one request carried, less what drop filters dropped. `samples` counts float
/// samples and native histogram samples: the records of
/// `tollgate_ingested_records_total{kind="metrics"}` on this route.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteCounts {
    pub series: u64,
    pub samples: u64,
    pub metadata: u64,
    /// The protobuf size after snappy decoding (and after dropping).
    pub decoded_bytes: u64,
    /// Samples of the series a drop filter dropped.
    pub dropped_samples: u64,
}

/// A decoded request: its counts, and the payload to forward in place of the body when a
/// drop filter dropped series from it.
pub struct Filtered {
    pub counts: WriteCounts,
    pub kept: Option<Bytes>,
}

/// A remote_write series' labels, for drop filters: checked UTF-8 by then.
impl Labels for [Label] {
    fn label(&self, name: &str) -> Option<&str> {
        let label = self.iter().find(|l| l.name == name.as_bytes())?;
        std::str::from_utf8(&label.value).ok()
    }
}

/// `Content-Encoding: snappy` (required), `Content-Type: application/x-protobuf` (when
/// sent) with no `proto` parameter but 1.0's, and a 0.x/1.x version header (when sent).
fn check_headers(headers: &HeaderMap) -> Result<(), IngestError> {
    let unsupported = |what, expected| Err(IngestError::Unsupported { what, expected });
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok());
    if !encoding.is_some_and(|e| e.trim().eq_ignore_ascii_case("snappy")) {
        return unsupported("Content-Encoding", "snappy");
    }
    if let Some(value) = headers.get(header::CONTENT_TYPE) {
        let value = value.to_str().unwrap_or("");
        let mut parts = value.split(';').map(str::trim);
        let media_ok = parts
            .next()
            .is_some_and(|m| m.eq_ignore_ascii_case("application/x-protobuf"));
        let proto_ok = parts.all(|p| match p.split_once('=') {
            Some((k, v)) if k.trim().eq_ignore_ascii_case("proto") => {
                v.trim().trim_matches('"') == "prometheus.WriteRequest"
            }
            _ => true,
        });
        if !media_ok || !proto_ok {
            return unsupported(
                "Content-Type",
                "application/x-protobuf (remote_write 1.0: prometheus.WriteRequest)",
            );
        }
    }
    if let Some(version) = headers.get("x-prometheus-remote-write-version") {
        let version = version.to_str().unwrap_or("");
        if !(version.starts_with("0.") || version.starts_with("1.")) {
            return unsupported("remote_write version", "0.1.0 (remote_write 1.0)");
        }
    }
    Ok(())
}

/// What decoding a series can hold per byte of it, at most: an empty native histogram is
/// two bytes on the wire and a `Histogram` in memory, and the `Vec` it lands in may hold
/// up to twice what it uses (a label is two bytes and two `Bytes`, an exemplar two bytes
/// and less).
const SERIES_COST_FACTOR: usize = max(
    std::mem::size_of::<Histogram>(),
    max(
        std::mem::size_of::<Label>(),
        std::mem::size_of::<Exemplar>(),
    ),
);

const fn max(a: usize, b: usize) -> usize {
    if a > b { a } else { b }
}

/// Snappy-decodes (refusing, before allocating, a declared length over `max_decompressed`),
/// then decodes and checks the `WriteRequest` one series at a time: a request never
/// holds more than its decompressed bytes and one decoded series, however many tiny
/// series it packs (a 2 MB body of one-label series would otherwise become gigabytes of
/// structs before the first check). Both are counted in `hold` before they are allocated:
/// a series as the most its bytes can become (`SERIES_COST_FACTOR`).
pub fn decode(
    raw: &[u8],
    max_decompressed: u64,
    hold: &mut DecodeHold<'_>,
) -> Result<WriteCounts, IngestError> {
    decode_filtered(raw, max_decompressed, hold, None).map(|f| f.counts)
}

/// `decode`, dropping the series that `filters` drop: the payload to forward is then the
/// request without them, compressed again. A `WriteRequest` is a sequence of fields, so
/// leaving a series' bytes out leaves a valid request.
pub fn decode_filtered(
    raw: &[u8],
    max_decompressed: u64,
    hold: &mut DecodeHold<'_>,
    filters: Option<&MetricsFilters>,
) -> Result<Filtered, IngestError> {
    let not_snappy = |_| IngestError::BadPayload("body is not snappy block-compressed".into());
    let len = snap::raw::decompress_len(raw).map_err(not_snappy)?;
    if len as u64 > max_decompressed {
        return Err(IngestError::TooLarge {
            what: "decompressed body",
            limit: max_decompressed,
        });
    }
    hold.grow(len)?;
    let decoded = Bytes::from(
        snap::raw::Decoder::new()
            .decompress_vec(raw)
            .map_err(not_snappy)?,
    );
    let (counts, dropped) = decode_series(decoded.clone(), hold, filters)?;
    let kept = if dropped.is_empty() {
        None
    } else {
        let mut kept = Vec::with_capacity(counts.decoded_bytes as usize);
        let mut at = 0;
        for range in dropped {
            kept.extend_from_slice(&decoded[at..range.start]);
            at = range.end;
        }
        kept.extend_from_slice(&decoded[at..]);
        let compressed = snap::raw::Encoder::new()
            .compress_vec(&kept)
            .expect("a buffer within snappy's limits compresses");
        Some(Bytes::from(compressed))
    };
    hold.shrink(len);
    Ok(Filtered { counts, kept })
}

/// Decodes and checks `decoded` one series at a time, holding room in `hold` for the
/// largest series so far; returns the counts and the byte ranges of the series `filters`
/// drop, in order.
fn decode_series(
    decoded: Bytes,
    hold: &mut DecodeHold<'_>,
    filters: Option<&MetricsFilters>,
) -> Result<(WriteCounts, Vec<Range<usize>>), IngestError> {
    let not_protobuf = |e: prost::DecodeError| {
        IngestError::BadPayload(format!("body is not a protobuf WriteRequest: {e}"))
    };
    let mut counts = WriteCounts {
        decoded_bytes: decoded.len() as u64,
        ..WriteCounts::default()
    };
    // `WriteRequest` field by field; decoding from `Bytes` makes every label a slice of
    // `decoded`, not a copy.
    let total = decoded.len();
    let mut buf = decoded;
    let mut series_room = 0;
    let mut dropped = Vec::new();
    while !buf.is_empty() {
        let start = total - buf.len();
        let (number, wire_type) = decode_key(&mut buf).map_err(not_protobuf)?;
        if wire_type != WireType::LengthDelimited || !matches!(number, 1 | 3) {
            skip_field(wire_type, number, &mut buf, DecodeContext::default())
                .map_err(not_protobuf)?;
            continue;
        }
        let len = usize::try_from(decode_varint(&mut buf).map_err(not_protobuf)?)
            .ok()
            .filter(|len| *len <= buf.len())
            .ok_or_else(|| {
                IngestError::BadPayload("body is not a protobuf WriteRequest: truncated".into())
            })?;
        let field = buf.split_to(len);
        if number == 3 {
            MetricMetadata::decode(field).map_err(not_protobuf)?;
            counts.metadata += 1;
            continue;
        }
        let cost = field.len().saturating_mul(SERIES_COST_FACTOR);
        if cost > series_room {
            hold.grow(cost - series_room)?;
            series_room = cost;
        }
        let series = TimeSeries::decode(field).map_err(not_protobuf)?;
        if let Some(why) = series_error(&series) {
            return Err(IngestError::BadPayload(format!(
                "series {}: {why}",
                counts.series
            )));
        }
        let samples = (series.samples.len() + series.histograms.len()) as u64;
        if let Some(filters) = filters {
            let name = series.labels.label(METRIC_NAME).unwrap_or("");
            let end = total - buf.len();
            if filters.drops(name, &series.labels[..], samples, (end - start) as u64) {
                dropped.push(start..end);
                counts.dropped_samples += samples;
                counts.decoded_bytes -= (end - start) as u64;
                continue;
            }
        }
        counts.series += 1;
        counts.samples += samples;
    }
    hold.shrink(series_room);
    Ok((counts, dropped))
}

fn series_error(series: &TimeSeries) -> Option<&'static str> {
    let labels = &series.labels;
    if labels.is_empty() {
        return Some("a series must have labels");
    }
    if labels.iter().any(|l| l.name.is_empty()) {
        return Some("label names must not be empty");
    }
    let utf8 =
        |l: &Label| std::str::from_utf8(&l.name).is_ok() && std::str::from_utf8(&l.value).is_ok();
    let exemplar_labels = series.exemplars.iter().flat_map(|e| &e.labels);
    if !labels.iter().chain(exemplar_labels).all(utf8) {
        return Some("label names and values must be UTF-8");
    }
    if !labels
        .iter()
        .any(|l| l.name == "__name__" && !l.value.is_empty())
    {
        return Some("a series must have a non-empty __name__ label");
    }
    // Senders sort labels by name (the spec says they MUST): check that in one pass, and
    // only sort a copy of the names for the rare sender that does not.
    let sorted = labels.windows(2).all(|w| w[0].name < w[1].name);
    if !sorted {
        let mut names: Vec<&[u8]> = labels.iter().map(|l| &l.name[..]).collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return Some("label names must be unique");
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::budget::DecodeBudget;
    use crate::ingest::budget::tests::budget;
    use crate::proto::prometheus::Sample;
    use crate::proto::prometheus::WriteRequest;

    /// `decode` with a budget nothing exceeds.
    fn decode(raw: &[u8], max_decompressed: u64) -> Result<WriteCounts, IngestError> {
        let budget = DecodeBudget::unlimited();
        super::decode(raw, max_decompressed, &mut DecodeHold::new(&budget))
    }

    #[test]
    fn a_series_of_empty_histograms_is_counted_as_what_it_becomes_before_it_is_decoded() {
        // One series: a label, then 100,000 empty native histograms (two bytes each,
        // hundreds once decoded).
        let mut series = vec![0x0a, 0x05, 0x0a, 0x01, b'a', 0x12, 0x00];
        series.extend([0x22, 0x00].repeat(100_000));
        let mut body = vec![0x0a];
        prost::encoding::encode_varint(series.len() as u64, &mut body);
        body.extend(series);
        let raw = snap::raw::Encoder::new().compress_vec(&body).unwrap();
        let small = budget(16 << 20);
        let mut hold = DecodeHold::new(&small);
        assert!(matches!(
            super::decode(&raw, 1 << 20, &mut hold),
            Err(IngestError::TooLarge { limit, .. }) if limit == 16 << 20
        ));
        // Within a budget that has room for it, it is decoded (and has no `__name__`).
        let budget = budget(256 << 20);
        let mut hold = DecodeHold::new(&budget);
        assert!(matches!(
            super::decode(&raw, 1 << 20, &mut hold),
            Err(IngestError::BadPayload(_))
        ));
        assert!(budget.taken() > 16 << 20);
        drop(hold);
        assert_eq!(budget.taken(), 0);
    }

    fn label(name: &str, value: &str) -> Label {
        Label::new(name, value)
    }

    fn series(labels: Vec<Label>, samples: usize) -> TimeSeries {
        TimeSeries {
            labels,
            samples: vec![
                Sample {
                    value: 1.0,
                    timestamp: 1
                };
                samples
            ],
            ..Default::default()
        }
    }

    fn snappy(req: &WriteRequest) -> Vec<u8> {
        snap::raw::Encoder::new()
            .compress_vec(&req.encode_to_vec())
            .unwrap()
    }

    #[test]
    fn counts_series_and_samples() {
        let req = WriteRequest {
            timeseries: vec![
                series(vec![label("__name__", "up"), label("job", "a")], 2),
                series(vec![label("job", "b"), label("__name__", "up")], 3),
            ],
            metadata: vec![],
        };
        let counts = decode(&snappy(&req), 1 << 20).unwrap();
        assert_eq!((counts.series, counts.samples), (2, 5));
    }

    #[test]
    fn bad_series_fail_the_whole_request() {
        for labels in [
            vec![],
            vec![label("job", "a")],
            vec![label("__name__", "")],
            vec![label("__name__", "up"), label("", "x")],
            vec![
                label("__name__", "up"),
                label("job", "a"),
                label("job", "b"),
            ],
            vec![
                label("job", "a"),
                label("__name__", "up"),
                label("job", "b"),
            ],
            vec![
                label("__name__", "up"),
                Label {
                    name: Bytes::from_static(b"job"),
                    value: Bytes::from_static(b"not utf-8 \xff"),
                },
            ],
        ] {
            let req = WriteRequest {
                timeseries: vec![series(labels.clone(), 1)],
                metadata: vec![],
            };
            assert!(
                matches!(
                    decode(&snappy(&req), 1 << 20),
                    Err(IngestError::BadPayload(_))
                ),
                "{labels:?}"
            );
        }
    }

    #[test]
    fn bad_snappy_bad_protobuf_and_oversize() {
        assert!(matches!(
            decode(b"\xff\xff\xff\xff\xff", 1 << 20),
            Err(IngestError::BadPayload(_))
        ));
        let not_proto = snap::raw::Encoder::new()
            .compress_vec(b"\xff\xff\xff")
            .unwrap();
        assert!(matches!(
            decode(&not_proto, 1 << 20),
            Err(IngestError::BadPayload(_))
        ));
        let big = snap::raw::Encoder::new()
            .compress_vec(&vec![0u8; 10_000])
            .unwrap();
        assert!(matches!(
            decode(&big, 1000),
            Err(IngestError::TooLarge { .. })
        ));
    }

    #[test]
    fn headers_must_say_snappy_protobuf_1_0() {
        let mut h = HeaderMap::new();
        assert!(check_headers(&h).is_err(), "snappy is required");
        h.insert(header::CONTENT_ENCODING, "snappy".parse().unwrap());
        assert!(check_headers(&h).is_ok());
        h.insert(
            header::CONTENT_TYPE,
            "application/x-protobuf".parse().unwrap(),
        );
        h.insert(
            "x-prometheus-remote-write-version",
            "0.1.0".parse().unwrap(),
        );
        assert!(check_headers(&h).is_ok());
        h.insert(
            header::CONTENT_TYPE,
            "application/x-protobuf;proto=io.prometheus.write.v2.Request"
                .parse()
                .unwrap(),
        );
        assert!(check_headers(&h).is_err());
        h.insert(
            header::CONTENT_TYPE,
            "application/x-protobuf".parse().unwrap(),
        );
        h.insert(
            "x-prometheus-remote-write-version",
            "2.0.0".parse().unwrap(),
        );
        assert!(check_headers(&h).is_err());
        h.insert(
            "x-prometheus-remote-write-version",
            "0.1.0".parse().unwrap(),
        );
        h.insert(header::CONTENT_ENCODING, "gzip".parse().unwrap());
        assert!(check_headers(&h).is_err());
    }
}
