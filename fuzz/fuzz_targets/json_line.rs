//! The logs route's line check: its quick reading agrees with serde_json's on every input
//! (valid or not, the same `type`, reserved fields and kept values), and neither panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::ingest::json_line::{scan, scan_by_serde};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let wanted: [Box<str>; 4] = ["type".into(), "a".into(), "message".into(), "b.c".into()];
    for wanted in [&wanted[..0], &wanted[..]] {
        assert_eq!(scan(text, wanted), scan_by_serde(text, wanted), "{text:?}");
    }
});
