//! remote_write: snappy, then the `WriteRequest` one series at a time: never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::ingest::remote_write::decode;

fuzz_target!(|data: &[u8]| {
    if let Ok(counts) = decode(data, 1 << 20) {
        assert!(counts.decoded_bytes <= 1 << 20);
    }
});
