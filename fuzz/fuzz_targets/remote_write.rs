//! remote_write: snappy, then the `WriteRequest` one series at a time: never panics.
#![no_main]

use std::sync::{Arc, LazyLock};

use libfuzzer_sys::fuzz_target;
use tollgate::ingest::budget::{DecodeBudget, DecodeHold};
use tollgate::ingest::remote_write::decode;

static BUDGET: LazyLock<Arc<DecodeBudget>> = LazyLock::new(DecodeBudget::unlimited);

fuzz_target!(|data: &[u8]| {
    if let Ok(counts) = decode(data, 1 << 20, &mut DecodeHold::new(&BUDGET)) {
        assert!(counts.decoded_bytes <= 1 << 20);
    }
});
