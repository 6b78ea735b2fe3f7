//! Body decompression with its cap: never panics, never returns more than the cap. And a
//! logs body split as it is decompressed, in pieces whose ends cut its lines anywhere,
//! gives the lines the whole decompressed body gives.
#![no_main]

use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tollgate::ingest::body::{Encoding, decompress};
use tollgate::ingest::budget::{DecodeBudget, DecodeHold};
use tollgate::ingest::logs::{Splitter, split_lines};

const CAP: u64 = 1 << 20;
const MAX_LINE_BYTES: usize = 64;

static BUDGET: LazyLock<Arc<DecodeBudget>> = LazyLock::new(DecodeBudget::unlimited);

fuzz_target!(|data: &[u8]| {
    let Some((&which, raw)) = data.split_first() else {
        return;
    };
    let encoding = match which % 3 {
        0 => Encoding::Gzip,
        1 => Encoding::Deflate,
        _ => Encoding::Identity,
    };
    let raw = Bytes::copy_from_slice(raw);
    let hold = || DecodeHold::new(&BUDGET);
    let Ok(out) = decompress(raw.clone(), encoding, CAP, &mut hold()) else {
        return;
    };
    assert!(out.len() as u64 <= CAP);
    if encoding == Encoding::Identity {
        return;
    }
    let whole = split_lines(&out, "fuzz", MAX_LINE_BYTES, &mut hold());
    let pieces = Splitter::new("fuzz", MAX_LINE_BYTES)
        .with_piece_bytes(usize::from(which / 3 % 16) + 1)
        .split_compressed(raw, encoding, CAP, &mut hold());
    match (whole, pieces) {
        (Ok(whole), Ok(pieces)) => {
            assert_eq!(whole.counts, pieces.counts);
            assert_eq!(whole.payloads, pieces.payloads);
        }
        (whole, pieces) => assert_eq!(whole.is_ok(), pieces.is_ok()),
    }
});
