//! The file sink (the embedded default): one NDJSON file set per kind under its directory.
//! `logs.ndjson` is the active file; it is rotated to `logs-<epoch ms>.ndjson` by size or
//! age. Each line is the record's JSON object with the metadata fields `_account_id`,
//! `_token_id`, `_kind` (and `_type` for Logz.io logs) written first — set by tollgate after
//! authentication; ingest has already removed any field of those names the client sent.
//! OTLP requests are written as one OTLP/JSON line each, remote_write requests as one line
//! per series (see `inspect.rs`); OTLP logs share `logs.ndjson` with Logz.io logs and are
//! told apart by their `resourceLogs` key.
//!
//! On open, a torn last line (a crash mid-write) is cut back to the last newline, so half
//! a record is never glued to the next one.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{Batch, SinkError, inspect};
use crate::forward::record::{ContentType, Envelope};
use crate::model::Kind;
use crate::private_files;

pub struct FileSink {
    /// Only the batcher task touches this; the mutex exists to move it into
    /// `spawn_blocking` and back, and is never contended.
    state: Arc<Mutex<State>>,
}

struct State {
    dir: PathBuf,
    max_file_bytes: u64,
    rotate_after: Duration,
    files: [Option<ActiveFile>; 3],
    /// Reused encode buffer: one allocation for the sink's lifetime, not one per batch.
    buf: Vec<u8>,
}

struct ActiveFile {
    file: File,
    written: u64,
    opened: Instant,
}

impl FileSink {
    pub fn open(
        dir: PathBuf,
        max_file_bytes: u64,
        rotate_after: Duration,
    ) -> Result<FileSink, SinkError> {
        // Every account's records: readable by their owner only, like the spool they come from.
        private_files::create_dir_all(&dir)?;
        Ok(FileSink {
            state: Arc::new(Mutex::new(State {
                dir,
                max_file_bytes,
                rotate_after,
                files: [None, None, None],
                buf: Vec::with_capacity(1 << 20),
            })),
        })
    }

    pub async fn write(&mut self, batch: Arc<Batch>) -> Result<(), SinkError> {
        let state = Arc::clone(&self.state);
        tokio::task::spawn_blocking(move || {
            let mut state = state
                .lock()
                .expect("file sink state is never poisoned: no panics while held");
            state.write(&batch)
        })
        .await??;
        Ok(())
    }

    pub async fn flush(&mut self) -> Result<(), SinkError> {
        let state = Arc::clone(&self.state);
        tokio::task::spawn_blocking(move || {
            let state = state
                .lock()
                .expect("file sink state is never poisoned: no panics while held");
            for f in state.files.iter().flatten() {
                f.file.sync_data()?;
            }
            Ok::<_, io::Error>(())
        })
        .await??;
        Ok(())
    }
}

/// Capacity the encode buffer keeps between batches.
const KEEP_BUF_BYTES: usize = 4 << 20;

impl State {
    fn write(&mut self, batch: &Batch) -> io::Result<()> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        for part in &batch.parts {
            encode(&part.envelope, &part.payloads, &mut buf);
        }
        let result = self.append(batch.kind, &buf);
        // One large request makes a large batch: keep a few MiB of the buffer, not that.
        buf.clear();
        buf.shrink_to(KEEP_BUF_BYTES);
        self.buf = buf;
        result
    }

    fn append(&mut self, kind: Kind, bytes: &[u8]) -> io::Result<()> {
        let due = self.files[kind.index()].as_ref().is_some_and(|f| {
            f.written > 0
                && (f.written >= self.max_file_bytes || f.opened.elapsed() >= self.rotate_after)
        });
        if due {
            self.files[kind.index()] = None;
            rotate(&self.dir, kind)?;
        }
        if self.files[kind.index()].is_none() {
            self.files[kind.index()] = Some(open_active(&active_path(&self.dir, kind))?);
        }
        let active = self.files[kind.index()]
            .as_mut()
            .expect("opened just above");
        active.file.write_all(bytes)?;
        active.written += bytes.len() as u64;
        Ok(())
    }
}

fn active_path(dir: &Path, kind: Kind) -> PathBuf {
    dir.join(format!("{}.ndjson", kind.as_str()))
}

fn rotate(dir: &Path, kind: Kind) -> io::Result<()> {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let mut target = dir.join(format!("{}-{ms}.ndjson", kind.as_str()));
    let mut n = 1;
    while target.exists() {
        target = dir.join(format!("{}-{ms}-{n}.ndjson", kind.as_str()));
        n += 1;
    }
    fs::rename(active_path(dir, kind), target)
}

/// Opens the active file for appending, cutting a torn last line back to the last newline.
fn open_active(path: &Path) -> io::Result<ActiveFile> {
    let mut file = private_files::open_options()
        .create(true)
        .read(true)
        .append(true)
        .open(path)?;
    let len = file.metadata()?.len();
    let keep = complete_prefix_len(&mut file, len)?;
    if keep < len {
        tracing::warn!(path = %path.display(), cut_bytes = len - keep, "cut a torn last line");
        file.set_len(keep)?;
    }
    Ok(ActiveFile {
        file,
        written: keep,
        opened: Instant::now(),
    })
}

/// The length of the file up to and including its last newline.
fn complete_prefix_len(file: &mut File, len: u64) -> io::Result<u64> {
    const CHUNK: u64 = 64 * 1024;
    let mut end = len;
    let mut chunk = vec![0u8; CHUNK as usize];
    while end > 0 {
        let start = end.saturating_sub(CHUNK);
        let n = (end - start) as usize;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut chunk[..n])?;
        if let Some(i) = memchr::memrchr(b'\n', &chunk[..n]) {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// Appends one NDJSON line per record: the metadata fields, then the record's own. Logs
/// are JSON objects already (ingest guarantees it), so splicing after their `{` is exact;
/// OTLP and remote_write payloads are converted first (`inspect.rs` has the forms).
pub fn encode(envelope: &Envelope, payloads: &[bytes::Bytes], out: &mut Vec<u8>) {
    let prefix = metadata_prefix(envelope);
    let mut scratch = Vec::new();
    for payload in payloads {
        let converted = match envelope.content_type {
            ContentType::JsonObject => {
                splice(&prefix, payload, out);
                Ok(())
            }
            ContentType::OtlpProtobuf | ContentType::OtlpJson => {
                scratch.clear();
                inspect::otlp(envelope.kind, envelope.content_type, payload, &mut scratch)
                    .map(|()| splice(&prefix, &scratch, out))
            }
            ContentType::RemoteWriteSnappy => {
                inspect::remote_write(payload, |line| splice(&prefix, line, out))
            }
        };
        if let Err(e) = converted {
            // Never drop a record silently: keep its bytes, hex-encoded, beside the error.
            tracing::error!(error = %e, content_type = envelope.content_type.as_str(),
                "file sink could not convert a record; writing it raw");
            let raw = serde_json::json!({
                "_error": e.to_string(),
                "_content_type": envelope.content_type.as_str(),
                "_payload_hex": hex::encode(payload),
            });
            splice(
                &prefix,
                &serde_json::to_vec(&raw).expect("a JSON value serializes"),
                out,
            );
        }
    }
}

/// `{"_account_id":…,"_token_id":…,"_kind":…[,"_type":…]`, without the closing brace.
fn metadata_prefix(envelope: &Envelope) -> Vec<u8> {
    let mut prefix = Vec::with_capacity(96);
    prefix.extend_from_slice(b"{\"_account_id\":");
    prefix.extend_from_slice(envelope.account_id.0.to_string().as_bytes());
    prefix.extend_from_slice(b",\"_token_id\":");
    serde_json::to_writer(&mut prefix, &*envelope.token_id.0)
        .expect("writing to a Vec cannot fail");
    prefix.extend_from_slice(b",\"_kind\":\"");
    prefix.extend_from_slice(envelope.kind.as_str().as_bytes());
    prefix.push(b'"');
    if let Some(log_type) = &envelope.log_type {
        prefix.extend_from_slice(b",\"_type\":");
        serde_json::to_writer(&mut prefix, &**log_type).expect("writing to a Vec cannot fail");
    }
    prefix
}

/// Writes `prefix` then the JSON object `object` without its `{`, and a newline.
fn splice(prefix: &[u8], object: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(prefix);
    let rest = object.strip_prefix(b"{").unwrap_or(object);
    if !rest.trim_ascii_start().starts_with(b"}") {
        out.push(b',');
    }
    out.extend_from_slice(rest);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forward::record::{Payloads, RecordBatch};
    use crate::model::{AccountId, TokenId};
    use bytes::Bytes;

    fn envelope() -> Envelope {
        Envelope {
            kind: Kind::Logs,
            account_id: AccountId(1001),
            token_id: TokenId("t-\"1".into()),
            log_type: Some("nginx".into()),
            content_type: ContentType::JsonObject,
        }
    }

    #[test]
    fn encode_puts_metadata_first_and_keeps_valid_json() {
        let mut out = Vec::new();
        encode(
            &envelope(),
            &[Bytes::from_static(b"{\"a\":1}"), Bytes::from_static(b"{ }")],
            &mut out,
        );
        let lines: Vec<serde_json::Value> = out
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["_account_id"], 1001);
        assert_eq!(lines[0]["_token_id"], "t-\"1");
        assert_eq!(lines[0]["_type"], "nginx");
        assert_eq!(lines[0]["a"], 1);
        assert_eq!(lines[1]["_kind"], "logs");
    }

    #[test]
    fn reopening_cuts_a_torn_last_line_and_rotation_keeps_every_line() {
        let dir = tempfile::tempdir().unwrap();
        let active = dir.path().join("logs.ndjson");
        fs::write(&active, b"{\"whole\":1}\n{\"torn\":").unwrap();
        let mut state = State {
            dir: dir.path().to_path_buf(),
            max_file_bytes: 10,
            rotate_after: Duration::from_secs(3600),
            files: [None, None, None],
            buf: Vec::new(),
        };
        let batch = Batch {
            kind: Kind::Logs,
            parts: vec![RecordBatch {
                envelope: envelope(),
                payloads: Payloads::from_buf([Bytes::from_static(b"{\"n\":2}")]),
            }],
        };
        state.write(&batch).unwrap();
        state.write(&batch).unwrap(); // over max_file_bytes: rotates first
        let mut all = String::new();
        for e in fs::read_dir(dir.path()).unwrap() {
            all.push_str(&fs::read_to_string(e.unwrap().path()).unwrap());
        }
        assert!(!all.contains("torn"));
        assert_eq!(all.lines().count(), 3, "{all}");
        assert!(
            all.lines()
                .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
        );
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            2,
            "one rotated file + active"
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_sink_directory_is_0700_and_its_files_0600() {
        use std::os::unix::fs::PermissionsExt;
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("out");
        let sink = FileSink::open(dir.clone(), 1 << 20, Duration::from_secs(3600)).unwrap();
        let batch = Batch {
            kind: Kind::Logs,
            parts: vec![RecordBatch {
                envelope: envelope(),
                payloads: Payloads::from_buf([Bytes::from_static(b"{\"n\":1}")]),
            }],
        };
        sink.state.lock().unwrap().write(&batch).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700, "the directory");
        assert_eq!(mode(&dir.join("logs.ndjson")), 0o600, "the active file");
    }
}
