//! The logs route's line splitter and enricher: never panics, every accepted line is a
//! JSON object with a `type`, and the accepted bytes stay within the budget it enforces.
//! (Two things RFC 8259's grammar allows and `serde_json::Value` refuses are accepted and
//! forwarded as sent: numbers beyond an f64, such as `1e400`, and `\u` escapes of lone
//! surrogates, such as `"\udaaa"`, which Jackson, the Logz.io listener's parser, reads.
//! Such a line is checked by serde_json's reading without decoding instead.)
#![no_main]

use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tollgate::ingest::budget::{DecodeBudget, DecodeHold};
use tollgate::ingest::json_line::scan_by_serde;
use tollgate::ingest::logs::{LINES_COST_FACTOR, split_lines};

/// What `serde_json::Value` refuses of what the grammar allows (see the module comment).
const GRAMMAR_ONLY: [&str; 4] = [
    "number out of range",
    "lone leading surrogate in hex escape",
    "unexpected end of hex escape",
    "invalid unicode code point",
];

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
            Err(e) => {
                let message = e.to_string();
                assert!(
                    GRAMMAR_ONLY.iter().any(|m| message.starts_with(m)),
                    "an accepted line is JSON: {e}"
                );
                let text = std::str::from_utf8(payload).expect("an accepted line is UTF-8");
                let keys = scan_by_serde(text, &[]).expect("an accepted line is a JSON object");
                assert!(keys.has_type, "every accepted line has a type");
            }
        }
    }
    assert!(lines.payload_bytes() <= LINES_COST_FACTOR * body.len() + (1 << 20));
});
