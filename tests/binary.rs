//! The real `tollgate` binary as a process: signals, what it writes to its log, and its
//! memory under a gzip bomb. Each test binds port 0 and reads the bound address from the
//! `public listening addr=…` log line.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

struct Process {
    child: Child,
    addr: String,
    admin: String,
    output: Arc<Mutex<String>>,
    dir: PathBuf,
}

fn write_config(dir: &Path, extra: &str) -> PathBuf {
    std::fs::write(dir.join("tokens.json"), tokens_json(1, true)).unwrap();
    let path = dir.join("tollgate.toml");
    std::fs::write(
        &path,
        format!(
            r#"
            [server]
            listen = "127.0.0.1:0"
            admin_listen = "127.0.0.1:0"
            {extra}
            [tokens]
            path = "{dir}/tokens.json"
            state_dir = "{dir}/state"
            watch_interval_secs = 0.05
            [forward]
            ack = "memory"
            max_batch_age_secs = 0.01
            [sink]
            type = "file"
            path = "{dir}/out"
            "#,
            dir = dir.display()
        ),
    )
    .unwrap();
    path
}

fn spawn(dir: &Path, extra: &str, rust_log: &str) -> Process {
    let config = write_config(dir, extra);
    let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", rust_log)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tollgate starts");
    let output = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = mpsc::channel();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let output = Arc::clone(&output);
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                for (tag, marker) in [("public", "public listening"), ("admin", "admin listening")]
                {
                    if line.contains(marker) {
                        let addr = line
                            .split("addr=")
                            .nth(1)
                            .unwrap()
                            .split_whitespace()
                            .next()
                            .unwrap();
                        let _ = tx.send((tag, addr.to_string()));
                    }
                }
                let mut out = output.lock().unwrap();
                out.push_str(&line);
                out.push('\n');
            }
        });
    }
    let mut addr = String::new();
    let mut admin = String::new();
    for _ in 0..2 {
        let (tag, a) = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("no listening line; output:\n{}", output.lock().unwrap()));
        if tag == "public" { addr = a } else { admin = a }
    }
    Process {
        child,
        addr,
        admin,
        output,
        dir: dir.to_path_buf(),
    }
}

impl Process {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    fn wait_exit(&mut self) -> std::process::ExitStatus {
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!(
            "did not exit within 10 s; output:\n{}",
            self.output.lock().unwrap()
        );
    }

    /// Peak resident memory (VmHWM) in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/PID/status")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn send(
    uri: String,
    headers: &[(&str, String)],
    body: impl Into<Bytes>,
) -> (StatusCode, Bytes) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut req = Request::post(uri).body(Full::new(body.into())).unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(
            header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    let res = client.request(req).await.unwrap();
    let status = res.status();
    (status, res.into_body().collect().await.unwrap().to_bytes())
}

async fn get(uri: String) -> String {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let res = client.get(uri.parse().unwrap()).await.unwrap();
    String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
}

#[tokio::test]
async fn sigterm_drains_flushes_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = spawn(dir.path(), "", "info");
    let (status, _) = send(
        format!("http://{}/?token={LOGS_TOKEN}", p.addr),
        &[],
        "{\"n\":1}\nsecond\n",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    p.signal("TERM");
    assert!(p.wait_exit().success());
    let out = p.output.lock().unwrap().clone();
    assert!(
        out.contains("shutting down") && out.contains("forwarding drained"),
        "{out}"
    );
    assert_eq!(sink_records(&p.dir.join("out"), "logs").len(), 2);
}

#[tokio::test]
async fn tokens_never_appear_in_logs_metrics_or_error_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = spawn(dir.path(), "", "debug");
    let base = format!("http://{}", p.addr);
    for token in ALL_TOKENS {
        for body in ["{\"a\":1}\n", "{broken\n"] {
            let (_, reply) = send(format!("{base}/?token={token}&type=t"), &[], body).await;
            assert!(!String::from_utf8_lossy(&reply).contains(token));
            let auth = vec![("authorization", format!("Bearer {token}"))];
            let (_, reply) = send(format!("{base}/?type=t"), &auth, body).await;
            assert!(!String::from_utf8_lossy(&reply).contains(token));
        }
        // The OTLP and remote_write routes, accepted or refused, in both OTLP encodings.
        for (path, content_type, encoding) in [
            ("/v1/traces", "application/json", "identity"),
            ("/v1/logs", "application/x-protobuf", "identity"),
            ("/api/v1/write", "application/x-protobuf", "snappy"),
        ] {
            let headers = vec![
                ("authorization", format!("Bearer {token}")),
                ("content-type", content_type.to_string()),
                ("content-encoding", encoding.to_string()),
            ];
            let (_, reply) = send(format!("{base}{path}"), &headers, "{}").await;
            assert!(!String::from_utf8_lossy(&reply).contains(token));
        }
    }
    // A token file that fails to load must not echo its tokens in the error either.
    std::fs::write(
        dir.path().join("tokens.json"),
        format!("{{\"version\": 2, \"tokens\": [{{\"token\": \"{LOGS_TOKEN}!\", \"token_id\": \"t\", \"account_id\": 1, \"kind\": \"logs\"}}]}}"),
    )
    .unwrap();
    let metrics_url = format!("http://{}/metrics", p.admin);
    eventually(Duration::from_secs(5), || async {
        metric_value(
            &get(metrics_url.clone()).await,
            "tollgate_token_reloads_total{result=\"error\"}",
        ) >= 1.0
    })
    .await;
    let metrics = get(metrics_url).await;
    p.signal("TERM");
    p.wait_exit();
    let out = p.output.lock().unwrap().clone();
    assert!(out.contains("token refused"), "debug logging was on: {out}");
    assert!(out.contains("t-logs-1"), "token ids are logged instead");
    for token in ALL_TOKENS {
        assert!(!out.contains(token), "token found in the log output");
        assert!(!metrics.contains(token), "token found in /metrics");
    }
}

#[tokio::test]
async fn gzip_bomb_is_refused_without_inflating_it_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let p = spawn(
        dir.path(),
        "max_body_bytes = 1048576\nmax_decompressed_bytes = 4194304",
        "info",
    );
    let bomb = gzip(&vec![0u8; 128 << 20]);
    assert!(
        bomb.len() < 1 << 20,
        "128 MiB of zeros: {} bytes compressed",
        bomb.len()
    );
    let before = p.peak_rss_kib();
    for _ in 0..3 {
        let (status, body) = send(
            format!("http://{}/?token={LOGS_TOKEN}", p.addr),
            &[("content-encoding", "gzip".to_string())],
            bomb.clone(),
        )
        .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(String::from_utf8_lossy(&body).contains("decompressed body is over 4194304 bytes"));
    }
    let growth_mib = (p.peak_rss_kib().saturating_sub(before)) / 1024;
    eprintln!("peak RSS grew by {growth_mib} MiB for three 128 MiB bombs (cap 4 MiB)");
    assert!(growth_mib < 64, "peak RSS grew by {growth_mib} MiB");
}
