//! The token snapshot (the file source and the persisted state), with its read grants:
//! never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::tokens::wire::Snapshot;

fuzz_target!(|data: &[u8]| {
    if let Ok(snapshot) = Snapshot::parse(data) {
        let _ = snapshot.into_state();
    }
});
