//! The real `tollgate` binary as a child process, for tests that need signals, `kill -9`
//! or the process's own memory and log output. It binds port 0 and the harness reads the
//! bound addresses from the `public listening addr=…` / `admin listening addr=…` lines.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::tokens_json;

/// `[forward]` and `[sink]` for a file sink under `dir/out` with the given ack mode.
pub fn file_sink_sections(dir: &Path, ack: &str) -> String {
    format!(
        "[forward]\nack = \"{ack}\"\nspool_dir = \"{dir}/spool\"\nmax_batch_age_secs = 0.01\n\
         [sink]\ntype = \"file\"\npath = \"{dir}/out\"\n",
        dir = dir.display()
    )
}

pub struct Process {
    pub child: Child,
    pub addr: String,
    pub admin: String,
    pub output: Arc<Mutex<String>>,
    pub dir: PathBuf,
}

/// Writes `tollgate.toml` (and the standard token file) in `dir`. `server_extra` goes
/// under `[server]`; `sections` holds the `[forward]` and `[sink]` tables.
pub fn write_config(dir: &Path, server_extra: &str, sections: &str) -> PathBuf {
    std::fs::write(dir.join("tokens.json"), tokens_json(1, true)).unwrap();
    let path = dir.join("tollgate.toml");
    std::fs::write(
        &path,
        format!(
            r#"
            [server]
            listen = "127.0.0.1:0"
            admin_listen = "127.0.0.1:0"
            {server_extra}
            [tokens]
            path = "{dir}/tokens.json"
            state_dir = "{dir}/state"
            watch_interval_secs = 0.05
            {sections}
            "#,
            dir = dir.display()
        ),
    )
    .unwrap();
    path
}

/// Starts `tollgate serve` in `dir` and waits for both listening lines.
pub fn spawn(dir: &Path, server_extra: &str, sections: &str, rust_log: &str) -> Process {
    let config = write_config(dir, server_extra, sections);
    spawn_with(dir, &config, rust_log)
}

/// Starts `tollgate serve --config config` in `dir` and waits for both listening lines.
pub fn spawn_with(dir: &Path, config: &Path, rust_log: &str) -> Process {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["serve", "--config"])
        .arg(config)
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
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
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
    pub fn peak_rss_kib(&self) -> u64 {
        self.status_kib("VmHWM:")
    }

    /// Resident memory now (VmRSS) in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{field} in /proc/PID/status"))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn send(
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

pub async fn get(uri: String) -> String {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let res = client.get(uri.parse().unwrap()).await.unwrap();
    String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
}
