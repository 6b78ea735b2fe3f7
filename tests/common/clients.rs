//! Off-the-shelf senders as child processes: whether one is installed, and the loud skip
//! (a failure under `CI=true`) when it is not.

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

/// The start of an OpenTelemetry Python SDK script: the SDK's imports, a `resource`, a
/// `recording(Exporter)` that notes each export's `[exporter, result]` in `results`,
/// `auth(token)` and `shop_logger(logger_provider)`.
const OTEL_PRELUDE: &str = r#"
import json, logging, sys
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

resource = Resource.create({"service.name": "python-shop"})
results = []

def recording(cls):
    """The real exporter, noting each export's result."""
    class Recording(cls):
        def export(self, *args, **kwargs):
            result = super().export(*args, **kwargs)
            results.append([cls.__name__, result.name])
            return result
    return Recording

def auth(token):
    return {"Authorization": "Bearer " + token}

def shop_logger(provider):
    """The `shop` logger, its records going to `provider` only."""
    logger = logging.getLogger("shop")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(LoggingHandler(level=logging.INFO, logger_provider=provider))
    return logger
"#;

/// `true` when the test may go on; otherwise explains the skip (or fails under CI).
pub fn client_available(what: &str, install: &str, available: bool) -> bool {
    if available {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{what} is not installed, and CI=true requires this test to run: {install}");
    }
    // Written to stderr directly, not with eprintln!: the test harness captures (and hides)
    // the macros' output of passing tests, and a skip must be seen.
    let _ = writeln!(
        std::io::stderr(),
        "\n========================================================================\n\
         SKIPPED: {what} is not installed, so this real-client test did not run.\n\
         Install it with: {install}\n\
         (Under CI=true this is a failure, not a skip.)\n\
         ========================================================================"
    );
    false
}

pub async fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

/// Runs the Python `script` as `dir/name` with `args`, working in `dir`, for at most
/// `limit`; it must exit 0. Returns its stdout and stderr.
pub async fn python(
    dir: &Path,
    name: &str,
    script: &str,
    args: &[&str],
    limit: Duration,
) -> (String, String) {
    let path = dir.join(name);
    std::fs::write(&path, script).expect("write the script");
    let output = tokio::time::timeout(
        limit,
        Command::new("python3")
            .arg(&path)
            .args(args)
            .current_dir(dir)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("{name} finished within {limit:?}"))
    .expect("python3 ran");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{name}: {stdout}\n{stderr}");
    (stdout, stderr)
}

/// Whether the OpenTelemetry Python SDK and its OTLP/HTTP exporter are installed; if not,
/// the skip is said (or fails under CI).
pub async fn otel_sdk_available() -> bool {
    let available = succeeds(
        "python3",
        &[
            "-c",
            "import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http",
        ],
    )
    .await;
    client_available(
        "the OpenTelemetry Python SDK with its OTLP/HTTP exporter",
        "pip install opentelemetry-sdk opentelemetry-exporter-otlp-proto-http",
        available,
    )
}

/// Runs an OpenTelemetry SDK `script`, which follows `OTEL_PRELUDE`, with `args`; returns
/// the `results` it noted and its stderr.
pub async fn otel_export(dir: &Path, script: &str, args: &[&str]) -> (serde_json::Value, String) {
    let script = format!("{OTEL_PRELUDE}{script}\nprint(json.dumps(results))\n");
    let limit = Duration::from_secs(120);
    let (stdout, stderr) = python(dir, "export.py", &script, args, limit).await;
    let results = serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("no results line ({e}): {stdout}\n{stderr}"));
    (results, stderr)
}

/// Starts Prometheus (Debian's) on `config`, keeping its data under `dir/tsdb` and its log
/// in `dir/prometheus.log`; killed when the handle drops.
pub fn prometheus(dir: &Path, config: &Path) -> tokio::process::Child {
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        // Prometheus needs a listen address of its own; nothing here talks to it, so port 0.
        .arg("--web.listen-address=127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("prometheus starts")
}
