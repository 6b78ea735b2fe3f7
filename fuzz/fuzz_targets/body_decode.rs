//! Body decompression with its cap: never panics, never returns more than the cap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::ingest::body::{Encoding, decompress};

const CAP: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&which, raw)) = data.split_first() else {
        return;
    };
    let encoding = match which % 3 {
        0 => Encoding::Gzip,
        1 => Encoding::Deflate,
        _ => Encoding::Identity,
    };
    if let Ok(out) = decompress(raw, encoding, CAP) {
        assert!(out.len() as u64 <= CAP);
    }
});
