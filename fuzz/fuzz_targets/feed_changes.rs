//! A change-feed answer, as a gateway parses and applies it: never panics; what parses
//! applies to a table (every upsert present afterwards, deletes applied first) and to
//! read grants.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::tokens::TokenTable;
use tollgate::tokens::feed::{ParsedChanges, parse_changes};
use tollgate::tokens::grants::ReadGrants;

fuzz_target!(|data: &[u8]| {
    let Ok(ParsedChanges { delta, grants, .. }) = parse_changes(data) else {
        return;
    };
    let version = delta.version;
    let upserted: Vec<_> = delta.upserts.iter().map(|info| info.digest).collect();
    let table = TokenTable::default().with_delta(delta);
    assert_eq!(table.version, version);
    assert!(table.len() <= upserted.len());
    for digest in &upserted {
        assert!(table.get(digest).is_some(), "an upsert is in the table");
    }
    if let Some(grants) = grants {
        let _ = ReadGrants::empty(0).with_delta(grants);
    }
});
