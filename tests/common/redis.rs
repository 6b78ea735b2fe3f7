//! A real Redis for tests: Debian's `redis-server` (`.ci/run` installs it), one process per
//! test on a port the test holds (`kafka::reserve_port`), nothing saved to disk. A test can
//! kill it, freeze it and start it again on the same port, as a fleet sees Redis go away
//! and come back. Without `redis-server` a test skips loudly, except under `CI=true`, where
//! that is a failure.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio::net::TcpSocket;

use super::kafka::reserve_port;

/// `$REDIS_SERVER_BIN`, else `redis-server` on the PATH, if it runs.
pub fn server_bin() -> Option<PathBuf> {
    let bin = std::env::var_os("REDIS_SERVER_BIN").map_or("redis-server".into(), PathBuf::from);
    let runs = Command::new(&bin)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    runs.then_some(bin)
}

pub struct Redis {
    child: Option<Child>,
    bin: PathBuf,
    port: u16,
    extra: Vec<String>,
    /// Serves TLS only (`rediss://`), with a self-signed certificate for 127.0.0.1.
    tls: bool,
    /// `redis://127.0.0.1:<port>/` (`rediss://` with TLS), without credentials.
    pub url: String,
    /// Holds the server's working directory (a cluster node's `nodes.conf`).
    dir: TempDir,
    /// Holds `port` for the server's whole life, restarts included.
    _reserved: TcpSocket,
}

/// Starts a Redis, or returns `None` (after a loud banner) when `redis-server` is missing
/// outside CI. Under `CI=true` a missing server panics.
pub fn start(test: &str) -> Option<Redis> {
    start_with(test, &[])
}

/// `start`, with more `redis-server` arguments (`--requirepass`, say).
pub fn start_with(test: &str, args: &[&str]) -> Option<Redis> {
    launch(test, args, false)
}

/// A Redis that speaks TLS only (`rediss://`), with a certificate no system trusts.
pub fn start_tls(test: &str) -> Option<Redis> {
    launch(test, &[], true)
}

fn launch(test: &str, args: &[&str], tls: bool) -> Option<Redis> {
    let Some(bin) = server_bin() else {
        super::control::skip(
            test,
            "no redis-server: `apt-get install redis-server` (or set REDIS_SERVER_BIN) to run it",
        );
        return None;
    };
    let (reserved, port) = reserve_port();
    let mut redis = Redis {
        child: None,
        bin,
        port,
        extra: args.iter().map(|a| a.to_string()).collect(),
        tls,
        url: format!(
            "{}://127.0.0.1:{port}/",
            if tls { "rediss" } else { "redis" }
        ),
        dir: tempfile::tempdir().expect("tempdir"),
        _reserved: reserved,
    };
    if tls {
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()])
            .expect("a self-signed certificate");
        let dir = redis.dir.path();
        std::fs::write(dir.join("cert.pem"), certified.cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), certified.signing_key.serialize_pem()).unwrap();
        std::fs::write(dir.join("ca.pem"), certified.cert.pem()).unwrap();
    }
    redis.launch();
    Some(redis)
}

/// A Redis Cluster of one node that holds every slot: enough for a client to speak the
/// cluster protocol, and for Redis to refuse a script whose keys span slots (CROSSSLOT).
pub fn start_cluster(test: &str) -> Option<Redis> {
    let redis = start_with(
        test,
        &[
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-announce-ip",
            "127.0.0.1",
        ],
    )?;
    redis.command::<()>(
        redis::cmd("CLUSTER")
            .arg("ADDSLOTSRANGE")
            .arg(0)
            .arg(16_383),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let info: String = redis.command(redis::cmd("CLUSTER").arg("INFO"));
        if info.contains("cluster_state:ok") {
            return Some(redis);
        }
        assert!(Instant::now() < deadline, "the cluster never became ok");
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Redis {
    fn launch(&mut self) {
        let port = self.port.to_string();
        let listen: &[&str] = if self.tls {
            &[
                "--port",
                "0",
                "--tls-port",
                &port,
                "--tls-auth-clients",
                "no",
            ]
        } else {
            &["--port", &port]
        };
        let child = Command::new(&self.bin)
            .args(listen)
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(if self.tls {
                &[
                    "--tls-cert-file",
                    "cert.pem",
                    "--tls-key-file",
                    "key.pem",
                    "--tls-ca-cert-file",
                    "ca.pem",
                ][..]
            } else {
                &[]
            })
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server never accepted connections"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `host:port`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Runs one command on its own connection: for a test's own look at the keys, never
    /// the code under test. Panics on an error.
    pub fn command<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> T {
        let mut url = self.url.clone();
        if let Some(i) = self.extra.iter().position(|a| a == "--requirepass") {
            url = format!("redis://:{}@{}/", self.extra[i + 1], self.addr());
        }
        let client = redis::Client::open(url).expect("redis url");
        let mut connection = client
            .get_connection()
            .expect("a connection to the test redis");
        cmd.query(&mut connection).expect("a redis command")
    }

    /// Kills the server (SIGKILL): connections drop and new ones are refused. Everything
    /// it held is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            resume(&child);
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server if it runs, and starts an empty one on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// Freezes the server (SIGSTOP): connections stay open and nothing answers, like a
    /// hung or partitioned Redis.
    pub fn pause(&self) {
        signal(self.child.as_ref().expect("redis running"), "STOP");
    }

    pub fn resume(&self) {
        resume(self.child.as_ref().expect("redis running"));
    }
}

fn resume(child: &Child) {
    signal(child, "CONT");
}

fn signal(child: &Child, name: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(ok.success(), "kill -{name}");
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}
