//! The logs route's line splitter and enricher: never panics, every accepted line is a
//! JSON object with a `type`, and the accepted bytes stay within the budget it enforces.
//! (JSON numbers beyond an f64, such as `1e400`, are valid JSON: accepted and forwarded
//! as sent, though `serde_json::Value` cannot hold them.)
#![no_main]

use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tollgate::ingest::budget::{DecodeBudget, DecodeHold};
use tollgate::ingest::logs::{LINES_COST_FACTOR, split_lines};

static BUDGET: LazyLock<Arc<DecodeBudget>> = LazyLock::new(DecodeBudget::unlimited);

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);
    let Ok(lines) = split_lines(&body, "fuzz", 4096, &mut DecodeHold::new(&BUDGET)) else {
        return;
    };
    let counted = lines.counts.successful_lines as usize;
    assert_eq!(lines.payloads.len(), counted);
    for payload in &lines.payloads {
        match serde_json::from_slice::<serde_json::Value>(payload) {
            Ok(value) => {
                assert!(value.is_object(), "an accepted line is an object");
                assert!(
                    value.get("type").is_some(),
                    "every accepted line has a type"
                );
            }
            Err(e) => assert!(
                e.to_string().starts_with("number out of range"),
                "an accepted line is JSON: {e}"
            ),
        }
    }
    assert!(lines.payload_bytes() <= LINES_COST_FACTOR * body.len() + (1 << 20));
});
