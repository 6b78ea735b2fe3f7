//! One scenario, three gateways (docs/operations.md, "The fleet, through failures"): real
//! processes on loopback — two control planes on one PostgreSQL (one in this process, one
//! the `tollgate control-plane` binary), three `tollgate serve` gateways with `ack =
//! "disk"`, the Kafka sink on Tansu, live tails read from Kafka and volume counted in one
//! Redis. Numbered logs are sent to the three gateways all along, and meanwhile, in order:
//!
//! 1. a shipping token is disabled: each gateway refuses it within 2 s (timed per gateway);
//! 2. a gateway is killed with `kill -9` and restarted: every acknowledged log reaches
//!    Kafka (counted by id at the end), duplicates are counted;
//! 3. the control plane the gateways follow is killed: they serve on and follow the other
//!    one (a change made there reaches each of them); the killed one restarts and serves;
//! 4. a live tail on one gateway shows logs shipped to all three;
//! 5. an account with a 2 MB day sent to all three is capped fleet-wide within the
//!    stated overshoot.
//!
//! It prints one report with the numbers (docs/operations.md quotes a run). Without
//! PostgreSQL, Redis or the broker it skips loudly, except under `CI=true`.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::control::{ADMIN_SECRET, Backend, ControlPlane, FEED_SECRET};
use common::kafka::{self, Broker};
use common::process::{Process, get, send, spawn_with};
use common::*;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::net::TcpSocket;

const TEST: &str = "three_gateways_two_control_planes_through_failures";
/// DESIGN §2: a change reaches every connected gateway within 2 s.
const PROPAGATION: Duration = Duration::from_secs(2);
const LINES_PER_REQUEST: u64 = 5;
/// The capped account's day: 2 MB (0.002 GB).
const CAP_BYTES: u64 = 2_000_000;
const LEASE_BYTES: u64 = 32 * 1024;

/// The `tollgate control-plane` binary on a port held for its whole life, so the
/// gateways' `tokens.url` stays right across its kill and restart.
struct ControlPlaneProcess {
    child: Child,
    config: PathBuf,
    addr: String,
    _reserved: TcpSocket,
}

impl ControlPlaneProcess {
    fn start(dir: &Path, database_url: &str) -> ControlPlaneProcess {
        let (reserved, port) = kafka::reserve_port();
        let config = dir.join("control-plane.toml");
        std::fs::write(
            &config,
            format!(
                "[control_plane]\nlisten = \"127.0.0.1:{port}\"\ndatabase_url = \
                 \"{database_url}\"\nadmin_secret = \"{ADMIN_SECRET}\"\nfeed_secret = \
                 \"{FEED_SECRET}\"\n"
            ),
        )
        .unwrap();
        let child = launch_control_plane(&config);
        ControlPlaneProcess {
            child,
            config,
            addr: format!("127.0.0.1:{port}"),
            _reserved: reserved,
        }
    }

    fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn restart(&mut self) {
        self.child = launch_control_plane(&self.config);
    }
}

impl Drop for ControlPlaneProcess {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// Starts the control plane and waits for its listening line.
fn launch_control_plane(config: &Path) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["control-plane", "--config"])
        .arg(config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the control plane starts");
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("control plane listening") {
                let _ = tx.send(());
            }
        }
    });
    if rx.recv_timeout(Duration::from_secs(30)).is_err() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the control plane process did not listen within 30 s");
    }
    child
}

/// A gateway's config: following both control planes (`first` first), `ack = "disk"`,
/// the Kafka sink, tails from Kafka, volume counted in Redis.
fn gateway_config(dir: &Path, control_planes: &str, broker: &Broker, redis_url: &str) -> PathBuf {
    let path = dir.join("tollgate.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
[tokens]
source = "control_plane"
url = "{control_planes}"
feed_secret = "{FEED_SECRET}"
state_dir = "{dir}/state"
request_timeout_secs = 2
backoff_initial_secs = 0.05
backoff_max_secs = 0.5
usage_flush_interval_secs = 0.5
[forward]
ack = "disk"
spool_dir = "{dir}/spool"
max_batch_age_secs = 0.01
[tail]
source = "kafka"
[volume]
redis_url = "{redis_url}"
lease_bytes = {LEASE_BYTES}
retry_secs = 0.05
{sink}"#,
            dir = dir.display(),
            sink = broker.sink_section(),
        ),
    )
    .unwrap();
    path
}

/// Sends numbered logs tagged with the gateway's index over one keep-alive connection
/// to whatever address `addr` holds, until `stop`; records the ids answered 200.
async fn load(
    gw: usize,
    addr: Arc<Mutex<String>>,
    token: String,
    next: Arc<AtomicU64>,
    acked: Arc<Mutex<BTreeSet<u64>>>,
    stop: Arc<AtomicBool>,
) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    while !stop.load(Ordering::Relaxed) {
        let first = next.fetch_add(LINES_PER_REQUEST, Ordering::Relaxed);
        let ids: Vec<u64> = (first..first + LINES_PER_REQUEST).collect();
        let body: String = ids
            .iter()
            .map(|i| format!("{{\"id\":{i},\"gw\":{gw}}}\n"))
            .collect();
        let url = format!("http://{}/?token={token}&type=fleet", addr.lock().unwrap());
        let req = Request::post(url)
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        match tokio::time::timeout(Duration::from_secs(5), client.request(req)).await {
            Ok(Ok(res)) if res.status() == StatusCode::OK => acked.lock().unwrap().extend(ids),
            Ok(Ok(_)) => tokio::time::sleep(Duration::from_millis(5)).await,
            _ => tokio::time::sleep(Duration::from_millis(20)).await, // killed: try on
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// POSTs `body` to the logs route of the gateway at `addr` with `token`: the status.
async fn post_logs(addr: &str, token: &str, body: String) -> StatusCode {
    send(
        format!("http://{addr}/?token={token}&type=fleet"),
        &[],
        body,
    )
    .await
    .0
}

/// How long until every gateway answers `token` with `want`, each timed on its own.
async fn each_answers(addrs: &[String], token: &str, want: StatusCode) -> Vec<Duration> {
    let started = Instant::now();
    let mut took = Vec::new();
    for addr in addrs {
        loop {
            if post_logs(addr, token, "{\"probe\":true}\n".into()).await == want {
                took.push(started.elapsed());
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{addr} never answered {want} for the token"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    took
}

/// Reads a live tail of `addr` (the account's API token) until logs tagged by each of
/// `gateways` gateways showed up; how long that took.
async fn tail_sees_every_gateway(addr: &str, api: &str, gateways: usize) -> Duration {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let req = Request::get(format!("http://{addr}/v1/tail"))
        .header("x-api-token", api)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let started = Instant::now();
    let res = client.request(req).await.expect("the tail answers");
    assert_eq!(res.status(), StatusCode::OK);
    let mut body = res.into_body();
    let (mut buffer, mut seen) = (String::new(), BTreeSet::new());
    while seen.len() < gateways {
        let frame = tokio::time::timeout(Duration::from_secs(30), body.frame())
            .await
            .expect("the tail shows records within 30 s")
            .expect("the stream goes on")
            .expect("a frame");
        if let Ok(data) = frame.into_data() {
            buffer.push_str(std::str::from_utf8(&data).unwrap());
        }
        while let Some(end) = buffer.find('\n') {
            let line: String = buffer.drain(..=end).collect();
            if let Some(record) = line.strip_prefix("data: ")
                && let Ok(record) = serde_json::from_str::<Value>(record)
                && let Some(gw) = record["gw"].as_u64()
            {
                seen.insert(gw);
            }
        }
    }
    started.elapsed()
}

fn addrs(gateways: &[Process]) -> Vec<String> {
    gateways.iter().map(|g| g.addr.clone()).collect()
}

async fn metric(p: &Process, sample: &str) -> f64 {
    metric_value(&get(format!("http://{}/metrics", p.admin)).await, sample)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_gateways_two_control_planes_through_failures() {
    let Some(broker) = kafka::start(TEST) else {
        return;
    };
    let Some(redis) = common::redis::start(TEST) else {
        return;
    };
    let Some(cp_a) = ControlPlane::start(Backend::Postgres, TEST).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut cp_b = ControlPlaneProcess::start(dir.path(), cp_a.database_url());
    let (_, api, token) = cp_a.account("acme").await;
    let (capped_id, _, capped_token) = cp_a.account("capped").await;
    cp_a.put(&format!("/v1/admin/accounts/{capped_id}"))
        .admin()
        .json(json!({"totalTimeBasedDailyGB": CAP_BYTES as f64 / 1e9}))
        .send()
        .await
        .expect_ok("the capped account's daily volume");
    let (probe_id, probe) = cp_a.create_token(&api, "probe").await;

    // The gateways follow B first, A when B is unavailable.
    let control_planes = format!("http://{},http://{}", cp_b.addr, cp_a.addr);
    let mut gateways = Vec::new();
    let mut configs = Vec::new();
    for i in 0..3 {
        let gdir = dir.path().join(format!("gateway-{i}"));
        std::fs::create_dir_all(&gdir).unwrap();
        let config = gateway_config(&gdir, &control_planes, &broker, &redis.url);
        gateways.push(spawn_with(&gdir, &config, "info"));
        configs.push((gdir, config));
    }
    each_answers(&addrs(&gateways), &probe, StatusCode::OK).await;

    // Load on all three, all along.
    let next = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let targets: Vec<Arc<Mutex<String>>> = gateways
        .iter()
        .map(|g| Arc::new(Mutex::new(g.addr.clone())))
        .collect();
    let loaders: Vec<_> = (0..6)
        .map(|c| {
            tokio::spawn(load(
                c % 3,
                Arc::clone(&targets[c % 3]),
                token.clone(),
                Arc::clone(&next),
                Arc::clone(&acked),
                Arc::clone(&stop),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;

    // 1. A token disabled: refused by each gateway, each timed.
    cp_a.set_enabled(&api, probe_id, "probe", false).await;
    let disabled = each_answers(&addrs(&gateways), &probe, StatusCode::UNAUTHORIZED).await;
    for (i, took) in disabled.iter().enumerate() {
        assert!(
            *took <= PROPAGATION,
            "gateway {i} refused the token after {took:?}"
        );
    }

    // 2. A gateway killed with kill -9 under load, and restarted.
    let acked_before_kill = acked.lock().unwrap().len();
    gateways[1].signal("KILL");
    gateways[1].wait_exit();
    let killed_at = Instant::now();
    let (gdir, config) = &configs[1];
    gateways[1] = spawn_with(gdir, config, "info");
    *targets[1].lock().unwrap() = gateways[1].addr.clone();
    let restarted_in = killed_at.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;

    // 3. The control plane the gateways follow is killed: they serve on, and a change made
    // on the other reaches each of them; the killed one comes back and serves.
    cp_b.kill_9();
    let acked_when_cp_died = acked.lock().unwrap().len();
    tokio::time::sleep(Duration::from_secs(1)).await;
    cp_a.set_enabled(&api, probe_id, "probe", true).await;
    let followed = each_answers(&addrs(&gateways), &probe, StatusCode::OK).await;
    let served_without_b = acked.lock().unwrap().len() - acked_when_cp_died;
    assert!(served_without_b > 0, "the gateways served on without it");
    cp_b.restart();
    let health = get(format!("http://{}/healthz", cp_b.addr)).await;
    assert_eq!(health, "ok\n", "the restarted control plane serves");

    // 4. A live tail on one gateway shows logs shipped to all three.
    let tail_took = tail_sees_every_gateway(&gateways[0].addr, &api, 3).await;

    // 5. An account with a 2 MB day, sent 10 kB requests round robin: capped fleet-wide.
    let pad = "x".repeat(1_950);
    let request: String = (0..5)
        .map(|i| format!("{{\"cap\":{i},\"pad\":\"{pad}\"}}\n"))
        .collect();
    let mut sent = 0u64;
    for i in 0..300 {
        let status = post_logs(&addrs(&gateways)[i % 3], &capped_token, request.clone()).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "a capped account's logs are accepted"
        );
        sent += request.len() as u64;
    }
    let mut capped_at = Vec::new();
    for g in &gateways {
        capped_at.push(metric(g, "tollgate_volume_capped_accounts").await);
    }

    // The end: load stops, every gateway drains its spool, and Kafka is read whole.
    stop.store(true, Ordering::Relaxed);
    for l in loaders {
        l.await.unwrap();
    }
    for g in &gateways {
        common::crash::wait_drained(g).await;
    }
    let records = broker.consume("tollgate-logs");
    let mut ids = Vec::new();
    let (mut capped_bytes, mut capped_lines) = (0u64, 0usize);
    for r in &records {
        let v = r.json();
        if let Some(id) = v["id"].as_u64() {
            ids.push(id);
        } else if v.get("cap").is_some() {
            capped_bytes += r.payload.len() as u64;
            capped_lines += 1;
        }
    }
    let acked = acked.lock().unwrap().clone();
    let line = capped_bytes as f64 / capped_lines.max(1) as f64;
    let bound = 3.0 * (LEASE_BYTES as f64 / 2.0 + 5.0 * line);
    let overshoot = capped_bytes as f64 - CAP_BYTES as f64;

    let ms = |d: &Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
    eprintln!(
        "\n=== the fleet, through failures (3 gateways, 2 control planes on PostgreSQL, Kafka \
         on Tansu, Redis) ===\n\
         1. token disabled → refused by gateway 0/1/2 after {}\n\
         2. gateway 1 kill -9 and restart ({} to restart; {acked_before_kill} logs acknowledged \
            before): {} acknowledged in all, {} in Kafka (lost and duplicates: the next line)\n\
         3. control plane B kill -9: {served_without_b} logs acknowledged without it; a change \
            on A reached gateway 0/1/2 after {}; B restarted and serves\n\
         4. a live tail on gateway 0 saw logs of all three gateways within {}\n\
         5. capped account: {sent} bytes sent, {capped_bytes} forwarded for a day of {CAP_BYTES} \
            (overshoot {overshoot:.0} bytes, bound {bound:.0}); capped at {:?} gateways\n",
        disabled.iter().map(ms).collect::<Vec<_>>().join(" / "),
        ms(&restarted_in),
        acked.len(),
        ids.len(),
        followed.iter().map(ms).collect::<Vec<_>>().join(" / "),
        ms(&tail_took),
        capped_at,
    );
    common::crash::assert_none_lost(acked.iter().copied(), ids, "the fleet's Kafka topic");
    assert!(acked.len() > 1_000, "too little load to prove anything");
    assert!(
        overshoot <= bound && capped_bytes < sent,
        "the cap holds fleet-wide: {capped_bytes} forwarded of {CAP_BYTES}, bound {bound}"
    );
    assert!(
        capped_bytes as f64 >= 0.9 * CAP_BYTES as f64,
        "the day's volume is forwarded: {capped_bytes}"
    );
    drop(cp_b);
}
