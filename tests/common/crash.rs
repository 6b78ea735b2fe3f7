//! The kill -9 loop shared by the file-sink and Kafka-sink crash tests: a load generator
//! sends numbered lines over keep-alive connections to the real binary, records every
//! request answered 200, and tollgate is killed at random moments ten times.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rand::{Rng, SeedableRng};

use super::process::{Process, get, spawn};
use super::{LOGS_TOKEN, eventually, metric_value};

const LINES_PER_REQUEST: u64 = 5;
const CONNECTIONS: usize = 4;

/// Sends numbered lines over one keep-alive connection until `stop`; records what got 200.
pub async fn load(
    addr: String,
    next: Arc<AtomicU64>,
    acked: Arc<Mutex<BTreeSet<u64>>>,
    stop: Arc<AtomicBool>,
) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let url = format!("http://{addr}/?token={LOGS_TOKEN}&type=crash");
    while !stop.load(Ordering::Relaxed) {
        let first = next.fetch_add(LINES_PER_REQUEST, Ordering::Relaxed);
        let ids: Vec<u64> = (first..first + LINES_PER_REQUEST).collect();
        let body: String = ids.iter().map(|i| format!("{{\"id\":{i}}}\n")).collect();
        let req = Request::post(url.clone())
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        match tokio::time::timeout(Duration::from_secs(5), client.request(req)).await {
            Ok(Ok(res)) if res.status() == StatusCode::OK => acked.lock().unwrap().extend(ids),
            Ok(Ok(_)) => {}
            _ => tokio::time::sleep(Duration::from_millis(5)).await, // killed: try until stopped
        }
    }
}

pub async fn wait_drained(p: &Process) {
    let url = format!("http://{}/metrics", p.admin);
    eventually(Duration::from_secs(30), || async {
        let text = get(url.clone()).await;
        metric_value(&text, "tollgate_spool_records") == 0.0
            && metric_value(&text, "tollgate_spool_bytes") == 0.0
    })
    .await;
}

/// Runs the kill -9 loop against a spool in `dir`, using `sections` for `[forward]`/`[sink]`,
/// then restarts once more, lets the spool drain and returns the ids answered 200.
pub async fn kill_nine_times_ten(dir: &std::path::Path, sections: &str) -> BTreeSet<u64> {
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    eprintln!("crash test seed {seed} (rerun with CRASH_SEED={seed})");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let next = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    for round in 0..10 {
        let mut p = spawn(dir, "", sections, "info");
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..CONNECTIONS)
            .map(|_| {
                tokio::spawn(load(
                    p.addr.clone(),
                    Arc::clone(&next),
                    Arc::clone(&acked),
                    Arc::clone(&stop),
                ))
            })
            .collect();
        let before = acked.lock().unwrap().len();
        // A random moment under load is the point: the kill must land anywhere.
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..700))).await;
        p.signal("KILL");
        p.wait_exit();
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            c.await.unwrap();
        }
        eprintln!(
            "round {round}: {} lines acknowledged before kill -9",
            acked.lock().unwrap().len() - before
        );
    }
    let mut p = spawn(dir, "", sections, "info");
    wait_drained(&p).await;
    p.signal("TERM");
    assert!(p.wait_exit().success());
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 100,
        "the load generator got too few 200s to prove anything"
    );
    acked
}

/// Checks that every acknowledged id was delivered (duplicates allowed, counted), and says so.
pub fn assert_none_lost(
    acked: impl IntoIterator<Item = u64>,
    delivered: impl IntoIterator<Item = u64>,
    sink: &str,
) {
    let acked: BTreeSet<u64> = acked.into_iter().collect();
    let mut seen: std::collections::HashMap<u64, u32> = std::collections::HashMap::new();
    for id in delivered {
        *seen.entry(id).or_default() += 1;
    }
    let lost: Vec<u64> = acked
        .iter()
        .filter(|id| !seen.contains_key(id))
        .copied()
        .collect();
    let duplicates: u32 = seen.values().map(|n| n - 1).sum();
    eprintln!(
        "{sink}: acknowledged {} lines; delivered {} distinct, {} duplicates, {} lost",
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
