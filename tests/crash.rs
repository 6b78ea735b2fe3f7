//! Crash safety (DESIGN §3): a load generator sends numbered lines to the real binary with
//! `ack = "disk"` and records every request answered 200; the test `kill -9`s tollgate at
//! random moments ten times, restarting it each time. At the end every line of every
//! answered request is in the sink — zero lost; duplicates are allowed and counted.

mod common;

use std::collections::HashMap;

use common::crash::kill_nine_times_ten;
use common::process::file_sink_sections;
use common::*;

#[tokio::test]
async fn kill_9_at_random_moments_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let acked = kill_nine_times_ten(dir.path(), &file_sink_sections(dir.path(), "disk")).await;

    let mut seen: HashMap<u64, u32> = HashMap::new();
    for r in sink_records(&dir.path().join("out"), "logs") {
        *seen
            .entry(r["id"].as_u64().expect("every record has its id"))
            .or_default() += 1;
    }
    let lost: Vec<u64> = acked
        .iter()
        .filter(|id| !seen.contains_key(id))
        .copied()
        .collect();
    let duplicates: u32 = seen.values().map(|n| n - 1).sum();
    eprintln!(
        "acknowledged {} lines; in the sink {} distinct, {} duplicates, {} lost",
        acked.len(),
        seen.len(),
        duplicates,
        lost.len()
    );
    assert!(
        lost.is_empty(),
        "lost {} acknowledged lines, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
}
