//! `ack = "disk"` and `"downstream"` against the real server and a real disk: what a 200
//! promises, replay after a restart, torn tails, the high-water mark.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use http::{StatusCode, header};
use tollgate::config::{Ack, Config};

fn disk(c: &mut Config) {
    c.forward.ack = Ack::Disk;
}

/// Makes the file sink fail: its active logs file's path becomes a directory.
fn break_sink(dir: &Path) {
    std::fs::create_dir_all(dir.join("out/logs.ndjson")).unwrap();
}

fn mend_sink(dir: &Path) {
    std::fs::remove_dir(dir.join("out/logs.ndjson")).unwrap();
}

fn segments(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir.join("spool"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}

fn numbered(from: usize, to: usize) -> String {
    (from..to).map(|i| format!("{{\"id\":{i}}}\n")).collect()
}

fn ids(records: &[serde_json::Value]) -> Vec<u64> {
    let mut ids: Vec<u64> = records.iter().map(|r| r["id"].as_u64().unwrap()).collect();
    ids.sort_unstable();
    ids
}

#[tokio::test]
async fn disk_ack_delivers_to_the_sink_and_the_spool_drains_to_zero() {
    let server = TestServer::start(|c| {
        disk(c);
        c.forward.spool_segment_bytes = 4096; // several segments, so deletion is exercised
    })
    .await;
    for i in 0..20 {
        let reply = server
            .post_logs(Some(LOGS_TOKEN), "", numbered(i * 10, i * 10 + 10))
            .await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    eventually(Duration::from_secs(5), || async {
        server.metric("tollgate_spool_bytes").await == 0.0
            && server.sink_records("logs").len() == 200
    })
    .await;
    assert!(server.metric("tollgate_spool_fsync_seconds_count").await >= 1.0);
    // A sink that keeps up gets every entry from memory: nothing is read back from disk.
    assert_eq!(
        server
            .metric("tollgate_spool_read_back_records_total")
            .await,
        0.0
    );
    // Wholly acknowledged segments are deleted once the cursor passes them.
    eventually(Duration::from_secs(5), || async {
        segments(&server.dir).len() <= 2
    })
    .await;
    let dir = server.shutdown().await;
    assert_eq!(
        ids(&sink_records(&dir.join("out"), "logs")),
        (0..200).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn acknowledged_records_survive_a_restart_while_the_sink_is_down() {
    let server = TestServer::start(disk).await;
    break_sink(&server.dir);
    for i in 0..5 {
        let reply = server
            .post_logs(Some(LOGS_TOKEN), "", numbered(i * 3, i * 3 + 3))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "a 200 needs only the spool, not the sink"
        );
    }
    assert!(server.metric("tollgate_spool_records").await >= 15.0);
    let dir = server.shutdown().await;
    assert!(sink_records(&dir.join("out"), "logs").is_empty());

    mend_sink(&dir);
    let server = TestServer::start_in(dir, disk).await;
    eventually(Duration::from_secs(5), || async {
        server.sink_records("logs").len() >= 15
    })
    .await;
    assert_eq!(
        server.metric("tollgate_spool_replayed_records_total").await,
        15.0
    );
    let dir = server.shutdown().await;
    assert_eq!(
        ids(&sink_records(&dir.join("out"), "logs")),
        (0..15).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn past_the_in_memory_handoff_entries_are_read_back_from_disk_in_order_once_each() {
    // A 4 KiB queue (and a 1 KiB handoff budget) against a sink that is down: most entries
    // cannot wait in memory and must come back from disk, after the ones that did.
    let server = TestServer::start(|c| {
        disk(c);
        c.forward.queue_max_bytes = 4096;
        c.forward.spool_segment_bytes = 8192; // and across segment rolls
    })
    .await;
    break_sink(&server.dir);
    let pad = "p".repeat(200);
    for i in 0..120 {
        let reply = server
            .post_logs(
                Some(LOGS_TOKEN),
                "",
                format!("{{\"id\":{i},\"pad\":\"{pad}\"}}\n"),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    mend_sink(&server.dir);
    eventually(Duration::from_secs(10), || async {
        server.metric("tollgate_spool_bytes").await == 0.0
    })
    .await;
    assert!(
        server
            .metric("tollgate_spool_read_back_records_total")
            .await
            > 0.0,
        "the disk path was taken"
    );
    let dir = server.shutdown().await;
    // The sink's order is the order the batcher saw: exactly the spool order, no repeats.
    let sunk: Vec<u64> = sink_records(&dir.join("out"), "logs")
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .collect();
    assert_eq!(sunk, (0..120).collect::<Vec<_>>());
}

/// A server that has spooled entries 0, 1, 2 while its sink is down.
async fn three_entries_spooled() -> TestServer {
    let server = TestServer::start(disk).await;
    break_sink(&server.dir);
    for i in 0..3 {
        let reply = server
            .post_logs(Some(LOGS_TOKEN), "", numbered(i, i + 1))
            .await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    server
}

/// The last segment in `dir` that holds anything.
fn last_segment(dir: &Path) -> std::path::PathBuf {
    segments(dir)
        .into_iter()
        .rev()
        .find(|p| std::fs::metadata(p).unwrap().len() > 0)
        .expect("a segment holds the entries")
}

/// Spools entries 0, 1, 2 while the sink is down and stops the server: returns its dir
/// and the segment that holds them.
async fn three_entries_left_in_the_spool() -> (ServerDir, std::path::PathBuf) {
    let dir = three_entries_spooled().await.shutdown().await;
    let last = last_segment(&dir);
    (dir, last)
}

/// Mends the sink of the server that ran in `dir` and starts it again; returns once the
/// three entries it left are in the sink.
async fn restarted_with_three_delivered(dir: ServerDir) -> TestServer {
    mend_sink(&dir);
    let server = TestServer::start_in(dir, disk).await;
    eventually(Duration::from_secs(5), || async {
        server.sink_records("logs").len() >= 3
    })
    .await;
    server
}

#[tokio::test]
async fn a_torn_tail_is_truncated_and_everything_before_it_replayed() {
    let (dir, last) = three_entries_left_in_the_spool().await;
    let bytes = std::fs::read(&last).unwrap();
    let mut torn = bytes.clone();
    torn.extend_from_slice(&bytes[..bytes.len() / 5]);
    torn.extend_from_slice(b"\x00garbage\xff\xfe");
    std::fs::write(&last, &torn).unwrap();

    let server = restarted_with_three_delivered(dir).await;
    assert_eq!(server.metric("tollgate_spool_torn_tails_total").await, 1.0);
    assert_eq!(
        std::fs::metadata(&last).unwrap().len(),
        bytes.len() as u64,
        "cut back to the last whole frame"
    );
    assert_eq!(
        server
            .post_logs(Some(LOGS_TOKEN), "", numbered(3, 4))
            .await
            .status,
        StatusCode::OK
    );
    let dir = server.shutdown().await;
    assert_eq!(
        ids(&sink_records(&dir.join("out"), "logs")),
        vec![0, 1, 2, 3]
    );
}

/// Copies `from` into `to`, recursively: what the disk holds at that moment.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A crash leaves the active segment's zero-filled runway after its frames: the next start
/// cuts it and replays every acknowledged entry, with nothing counted torn or corrupt.
#[tokio::test]
async fn after_a_crash_the_runway_is_cut_and_every_acknowledged_entry_replayed() {
    let server = three_entries_spooled().await;
    // The disk as a crash would leave it: taken while the server runs.
    let image = ServerDir::new();
    copy_dir(&server.dir, &image);
    drop(server.shutdown().await);
    let last = last_segment(&image);
    let bytes = std::fs::read(&last).unwrap();
    let frames = bytes.iter().rposition(|&b| b != 0).unwrap() + 1;
    assert!(frames < bytes.len(), "the runway follows the frames");

    let server = restarted_with_three_delivered(image).await;
    assert_eq!(server.metric("tollgate_spool_torn_tails_total").await, 0.0);
    assert_eq!(
        server.metric("tollgate_spool_corrupt_records_total").await,
        0.0
    );
    assert_eq!(
        server.metric("tollgate_spool_replayed_records_total").await,
        3.0
    );
    assert_eq!(
        std::fs::metadata(&last).unwrap().len(),
        frames as u64,
        "cut to its frames"
    );
    let dir = server.shutdown().await;
    assert_eq!(ids(&sink_records(&dir.join("out"), "logs")), vec![0, 1, 2]);
}

#[tokio::test]
async fn a_corrupt_frame_in_the_middle_is_skipped_and_counted() {
    let (dir, last) = three_entries_left_in_the_spool().await;
    let mut bytes = std::fs::read(&last).unwrap();
    let frame = bytes.len() / 3; // three equal-sized frames
    bytes[frame + 20] ^= 0xff; // flip a bit inside the second frame's body
    std::fs::write(&last, &bytes).unwrap();

    mend_sink(&dir);
    let server = TestServer::start_in(dir, disk).await;
    eventually(Duration::from_secs(5), || async {
        server.sink_records("logs").len() >= 2
    })
    .await;
    assert_eq!(
        server.metric("tollgate_spool_corrupt_records_total").await,
        1.0
    );
    let dir = server.shutdown().await;
    assert_eq!(ids(&sink_records(&dir.join("out"), "logs")), vec![0, 2]);
}

#[tokio::test]
async fn over_the_high_water_mark_requests_get_503_with_retry_after_never_500() {
    let server = TestServer::start(|c| {
        disk(c);
        c.forward.spool_max_bytes = 2000;
    })
    .await;
    break_sink(&server.dir);
    let line = format!("{{\"pad\":\"{}\"}}\n", "p".repeat(300));
    let mut codes = Vec::new();
    for _ in 0..20 {
        let reply = server.post_logs(Some(LOGS_TOKEN), "", line.clone()).await;
        if reply.status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(reply.headers.get(header::RETRY_AFTER).unwrap(), "1");
            assert_eq!(
                reply.json()["error"],
                "the spool is over its high-water mark"
            );
        }
        codes.push(reply.status.as_u16());
    }
    let accepted = codes.iter().filter(|&&c| c == 200).count();
    assert!((5..=7).contains(&accepted), "{codes:?}");
    assert!(codes[accepted..].iter().all(|&c| c == 503), "{codes:?}");

    // The sink comes back: the spool drains and requests are accepted again.
    mend_sink(&server.dir);
    eventually(Duration::from_secs(10), || async {
        server
            .post_logs(Some(LOGS_TOKEN), "", line.clone())
            .await
            .status
            == StatusCode::OK
    })
    .await;
    eventually(Duration::from_secs(10), || async {
        server.sink_records("logs").len() > accepted
    })
    .await;
}

#[tokio::test]
async fn downstream_ack_answers_only_after_the_sink_has_the_records() {
    let server = TestServer::start(|c| c.forward.ack = Ack::Downstream).await;
    // Sink down: no answer until it is back.
    break_sink(&server.dir);
    let url = server.url(&format!("/?token={LOGS_TOKEN}"));
    let pending = tokio::spawn(async move {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Full<bytes::Bytes>>();
        let req = http::Request::post(url)
            .body(http_body_util::Full::new(bytes::Bytes::from_static(
                b"{\"id\":1}\n",
            )))
            .unwrap();
        client.request(req).await.unwrap().status()
    });
    // The sink refused the batch and two retries of it: the request is still unanswered.
    wait_until(
        "three failed sink writes",
        Duration::from_secs(5),
        || async {
            server
                .metric("tollgate_sink_batches_total{result=\"error\",sink=\"file\"}")
                .await
                >= 3.0
        },
    )
    .await;
    assert!(!pending.is_finished(), "answered while the sink was down");
    mend_sink(&server.dir);
    let status = tokio::time::timeout(Duration::from_secs(10), pending)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        ids(&server.sink_records("logs")),
        vec![1],
        "in the sink when the 200 arrives"
    );

    // Sink up: the record is in the sink the moment the 200 arrives.
    let reply = server.post_logs(Some(LOGS_TOKEN), "", "{\"id\":2}\n").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(ids(&server.sink_records("logs")), vec![1, 2]);
}
