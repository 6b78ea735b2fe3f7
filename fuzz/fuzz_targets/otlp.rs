//! OTLP decoding and validation for the three signals, protobuf and JSON, through
//! `ingest::otlp::prepare` (the decoded-size check included): never panics, and what it
//! forwards passes again whole — every record accepted, none dropped — so a payload
//! re-encoded after dropping records is still valid OTLP of the same count. For protobuf,
//! the wire walk that lets a clean request skip decoding agrees with prost: what it calls
//! clean decodes, with the records it counted, and `prepare`'s verdict is the one the
//! decoded tree gives.
#![no_main]

use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tollgate::ingest::budget::{DecodeBudget, DecodeHold};
use tollgate::ingest::otlp::{Export, Prepared, prepare};
use tollgate::ingest::request::OtlpEncoding;
use tollgate::proto::otlp::collector::logs::v1::ExportLogsServiceRequest;
use tollgate::proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use tollgate::proto::otlp::collector::trace::v1::ExportTraceServiceRequest;
use tollgate::proto::otlp_wire;

static BUDGET: LazyLock<Arc<DecodeBudget>> = LazyLock::new(DecodeBudget::unlimited);

fn check<T: Export>(body: Bytes, encoding: OtlpEncoding) {
    let tree = match encoding {
        OtlpEncoding::Protobuf => T::decode(body.clone()).ok().map(|mut t| t.retain_valid()),
        OtlpEncoding::Json => None,
    };
    if encoding == OtlpEncoding::Protobuf
        && let Some(walked) = otlp_wire::walk::<T>(&body, |_| true)
        && walked.clean
    {
        let tree = tree.as_ref().expect("a clean walk is a body prost decodes");
        assert_eq!(tree.accepted + tree.rejected, walked.records);
    }
    let hold = || DecodeHold::new(&BUDGET);
    let Ok(Prepared {
        payload,
        verdict,
        dropped,
    }) = prepare::<T>(body, encoding, &mut hold())
    else {
        return;
    };
    assert_eq!(dropped, 0, "without drop filters nothing is dropped");
    if let Some(tree) = tree {
        assert_eq!(
            verdict, tree,
            "the wire walk judges as the decoded tree does"
        );
    }
    let Some(payload) = payload else {
        assert_eq!(verdict.accepted, 0, "accepted records are forwarded");
        return;
    };
    let again = prepare::<T>(payload, encoding, &mut hold()).expect("a forwarded payload decodes");
    assert_eq!(again.verdict.accepted, verdict.accepted);
    assert_eq!(
        again.verdict.rejected, 0,
        "a forwarded payload holds no bad record"
    );
}

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
    match (which >> 1) % 3 {
        0 => check::<ExportTraceServiceRequest>(body, encoding),
        1 => check::<ExportLogsServiceRequest>(body, encoding),
        _ => check::<ExportMetricsServiceRequest>(body, encoding),
    }
});
