//! Crash safety (DESIGN §3): a load generator sends numbered lines to the real binary with
//! `ack = "disk"` and records every request answered 200; the test `kill -9`s tollgate at
//! random moments ten times, restarting it each time. At the end every line of every
//! answered request is in the sink — zero lost; duplicates are allowed and counted.

mod common;

use common::crash::{assert_none_lost, kill_nine_times_ten};
use common::process::file_sink_sections;
use common::*;

#[tokio::test]
async fn kill_9_at_random_moments_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let acked = kill_nine_times_ten(dir.path(), &file_sink_sections(dir.path(), "disk")).await;

    let delivered = sink_records(&dir.path().join("out"), "logs")
        .into_iter()
        .map(|r| r["id"].as_u64().expect("every record has its id"));
    assert_none_lost(acked.iter().copied(), delivered, "file sink");
}
