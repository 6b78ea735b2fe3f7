//! The disk spool (`ack = "disk"` and `"downstream"`, DESIGN §3): what makes a 200 mean
//! "safe". A directory of append-only segment files of framed entries; one entry is one
//! request's records.
//!
//! - **Writer** (a dedicated thread): takes every append waiting in its channel, writes
//!   them with one `write`, makes them durable with one `fdatasync` — group commit — and
//!   only then answers them. While one fsync runs, the next group gathers in the channel,
//!   so no request holds a lock across an fsync. It publishes the durable end.
//! - **Reader** (a task): reads entries from the cursor up to the durable end and hands
//!   them to the batcher within a memory budget. At boot it starts at the persisted
//!   cursor, so crash replay and normal flow are one path.
//! - **Cursor**: the batcher reports the acknowledged prefix; the cursor keeper persists it
//!   (temp file, fsync, rename) and deletes segments that are wholly acknowledged.
//!
//! Frame: `magic u32 | len u32 | crc32c(body) u32 | body`, little-endian. At boot a torn
//! tail of the last segment (a short frame or a CRC mismatch with no valid frame after it)
//! is truncated; a corrupt frame with valid frames after it is skipped and counted.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::record::{ContentType, Envelope, RecordBatch};
use crate::model::{AccountId, Kind, TokenId};
use crate::telemetry::Telemetry;

const MAGIC: u32 = 0x3154_4754; // "TGT1" little-endian
const HEADER: usize = 12;
/// Larger than any entry ingest can produce (a decompressed body is capped well below).
const MAX_FRAME: u32 = 1 << 30;
/// Appends taken into one group commit at most.
const MAX_GROUP: usize = 8192;
/// Bytes the reader hands over per step.
const READ_STEP_BYTES: u64 = 8 << 20;
const CURSOR_FILE: &str = "cursor.json";

/// A place in the spool: a segment and a byte offset in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Position {
    pub segment: u64,
    pub offset: u64,
}

/// What the sink has acknowledged: everything before `position`, up to entry `seq`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub position: Position,
    pub seq: u64,
}

/// One spooled entry as the batcher sees it, for acknowledging it.
#[derive(Debug, Clone, Copy)]
pub struct SpooledEntry {
    pub seq: u64,
    pub end: Position,
    pub frame_bytes: u64,
    pub records: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool I/O: {0}")]
    Io(#[from] io::Error),
    #[error("the spool is closed")]
    Closed,
}

/// State shared between the request path, the writer and the batcher: atomics only.
pub struct SpoolShared {
    /// Frame bytes written but not yet acknowledged by the sink (the high-water check).
    pub unacked_bytes: AtomicU64,
    pub unacked_records: AtomicU64,
    /// False after a failed write or fsync, until a write succeeds again.
    pub writable: AtomicBool,
}

struct Append {
    batch: RecordBatch,
    done: oneshot::Sender<Result<u64, SpoolError>>,
}

/// The request side of the spool.
#[derive(Clone)]
pub struct SpoolHandle {
    appends: mpsc::UnboundedSender<Append>,
    pub shared: Arc<SpoolShared>,
    acked: watch::Receiver<u64>,
}

impl SpoolHandle {
    /// Appends a request's records; resolves once they are fsynced, with their entry seq.
    pub async fn append(&self, batch: RecordBatch) -> Result<u64, SpoolError> {
        let (done, rx) = oneshot::channel();
        self.appends
            .send(Append { batch, done })
            .map_err(|_| SpoolError::Closed)?;
        rx.await.map_err(|_| SpoolError::Closed)?
    }

    /// Resolves once the sink has acknowledged entry `seq` (for `ack = "downstream"`).
    pub async fn acknowledged(&self, seq: u64) -> Result<(), SpoolError> {
        let mut acked = self.acked.clone();
        acked
            .wait_for(|a| *a >= seq)
            .await
            .map(|_| ())
            .map_err(|_| SpoolError::Closed)
    }
}

/// What `open` found on disk: how much the reader will replay.
#[derive(Debug, Default)]
pub struct Recovery {
    pub segments: usize,
    pub entries: u64,
    pub records: u64,
    pub bytes: u64,
    pub torn_bytes: u64,
    pub corrupt_frames: u64,
}

/// Everything `open` builds; `forward::start` wires the parts to the batcher.
pub struct Spool {
    pub handle: SpoolHandle,
    pub reader: Reader,
    pub cursor_keeper: CursorKeeper,
    pub acked_tx: watch::Sender<u64>,
    pub cursor_tx: watch::Sender<Cursor>,
    pub writer: std::thread::JoinHandle<()>,
    pub recovery: Recovery,
}

/// Opens (or creates) the spool in `dir`: recovers the last segment's tail, and starts
/// the writer on a fresh segment.
pub fn open(
    dir: &Path,
    segment_bytes: u64,
    telemetry: Arc<Telemetry>,
) -> Result<Spool, SpoolError> {
    fs::create_dir_all(dir)?;
    let cursor = load_cursor(dir)?;
    for id in segment_ids(dir)? {
        if id < cursor.position.segment {
            fs::remove_file(segment_path(dir, id))?;
        }
    }
    let ids = segment_ids(dir)?;
    let mut recovery = Recovery {
        segments: ids.len(),
        ..Recovery::default()
    };
    let mut max_seq = cursor.seq;
    for (i, &id) in ids.iter().enumerate() {
        let from = if id == cursor.position.segment {
            cursor.position.offset
        } else {
            0
        };
        let scan = scan_segment(&segment_path(dir, id), from)?;
        recovery.entries += scan.entries;
        recovery.records += scan.records;
        recovery.bytes += scan.valid_bytes;
        recovery.corrupt_frames += scan.corrupt_frames;
        max_seq = max_seq.max(scan.max_seq);
        let is_last = i + 1 == ids.len();
        if is_last && scan.valid_end < scan.len {
            let torn = scan.len - scan.valid_end;
            tracing::warn!(
                segment = id,
                torn_bytes = torn,
                "spool: truncating a torn tail"
            );
            OpenOptions::new()
                .write(true)
                .open(segment_path(dir, id))?
                .set_len(scan.valid_end)?;
            recovery.torn_bytes = torn;
            telemetry.spool.torn_tails.inc();
        }
    }
    // Corrupt frames are counted by the reader when it skips them, not here.
    let active = ids.last().map_or(cursor.position.segment, |last| last + 1);
    let shared = Arc::new(SpoolShared {
        unacked_bytes: AtomicU64::new(recovery.bytes),
        unacked_records: AtomicU64::new(recovery.records),
        writable: AtomicBool::new(true),
    });
    let file = create_segment(dir, active)?;
    let (appends, rx) = mpsc::unbounded_channel();
    let (synced_tx, synced_rx) = watch::channel(Position {
        segment: active,
        offset: 0,
    });
    let (acked_tx, acked) = watch::channel(cursor.seq);
    let (cursor_tx, cursor_rx) = watch::channel(cursor);
    let writer = Writer {
        dir: dir.to_path_buf(),
        segment_bytes,
        file,
        segment: active,
        len: 0,
        next_seq: max_seq + 1,
        rx,
        synced: synced_tx,
        shared: Arc::clone(&shared),
        telemetry: Arc::clone(&telemetry),
        buf: Vec::with_capacity(1 << 20),
    };
    let writer = std::thread::Builder::new()
        .name("tollgate-spool".to_string())
        .spawn(move || writer.run())?;
    let replay_end = Position {
        segment: active,
        offset: 0,
    };
    Ok(Spool {
        handle: SpoolHandle {
            appends,
            shared: Arc::clone(&shared),
            acked,
        },
        reader: Reader {
            dir: dir.to_path_buf(),
            position: cursor.position,
            synced: synced_rx,
            replay_end,
            telemetry: Arc::clone(&telemetry),
        },
        cursor_keeper: CursorKeeper {
            dir: dir.to_path_buf(),
            cursor: cursor_rx,
            persisted: cursor,
        },
        acked_tx,
        cursor_tx,
        writer,
        recovery,
    })
}

// === impl Writer ===

struct Writer {
    dir: PathBuf,
    segment_bytes: u64,
    file: File,
    segment: u64,
    len: u64,
    next_seq: u64,
    rx: mpsc::UnboundedReceiver<Append>,
    synced: watch::Sender<Position>,
    shared: Arc<SpoolShared>,
    telemetry: Arc<Telemetry>,
    buf: Vec<u8>,
}

impl Writer {
    /// Group commit until every `SpoolHandle` is dropped.
    fn run(mut self) {
        let mut group = Vec::with_capacity(64);
        while let Some(first) = self.rx.blocking_recv() {
            group.push(first);
            while group.len() < MAX_GROUP {
                match self.rx.try_recv() {
                    Ok(a) => group.push(a),
                    Err(_) => break,
                }
            }
            self.commit(&mut group);
        }
        tracing::info!(segment = self.segment, "spool writer closed");
    }

    fn commit(&mut self, group: &mut Vec<Append>) {
        if self.len >= self.segment_bytes
            && let Err(e) = self.roll()
        {
            tracing::error!(error = %e, "spool: cannot start a new segment");
            self.fail(group, e);
            return;
        }
        self.buf.clear();
        let mut records = 0u64;
        let first_seq = self.next_seq;
        for (i, append) in group.iter().enumerate() {
            encode_frame(first_seq + i as u64, &append.batch, &mut self.buf);
            records += append.batch.payloads.len() as u64;
        }
        let started = Instant::now();
        let written = self
            .file
            .write_all(&self.buf)
            .and_then(|()| self.file.sync_data());
        self.telemetry
            .spool
            .fsync
            .observe(started.elapsed().as_secs_f64());
        if let Err(e) = written {
            tracing::error!(error = %e, segment = self.segment, "spool: write or fsync failed");
            // Cut what may have been written, so no half frame precedes the next one. After a
            // failed fsync the page cache cannot be trusted: continue in a new segment.
            let _ = self.file.set_len(self.len);
            let _ = self.roll();
            self.fail(group, e);
            return;
        }
        self.next_seq += group.len() as u64;
        self.len += self.buf.len() as u64;
        self.shared
            .unacked_bytes
            .fetch_add(self.buf.len() as u64, Ordering::Relaxed);
        let unacked_records = self
            .shared
            .unacked_records
            .fetch_add(records, Ordering::Relaxed)
            + records;
        self.shared.writable.store(true, Ordering::Relaxed);
        let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.telemetry.spool.records.set(gauge(unacked_records));
        self.telemetry
            .spool
            .bytes
            .set(gauge(self.shared.unacked_bytes.load(Ordering::Relaxed)));
        self.synced.send_replace(Position {
            segment: self.segment,
            offset: self.len,
        });
        for (i, append) in group.drain(..).enumerate() {
            let _ = append.done.send(Ok(first_seq + i as u64));
        }
    }

    fn fail(&mut self, group: &mut Vec<Append>, e: io::Error) {
        self.shared.writable.store(false, Ordering::Relaxed);
        let kind = e.kind();
        for append in group.drain(..) {
            let _ = append
                .done
                .send(Err(SpoolError::Io(io::Error::new(kind, e.to_string()))));
        }
    }

    /// Starts the next segment. The old one is complete and durable.
    fn roll(&mut self) -> io::Result<()> {
        let next = self.segment + 1;
        self.file = create_segment(&self.dir, next)?;
        self.segment = next;
        self.len = 0;
        self.synced.send_replace(Position {
            segment: next,
            offset: 0,
        });
        Ok(())
    }
}

fn create_segment(dir: &Path, id: u64) -> io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(segment_path(dir, id))?;
    File::open(dir)?.sync_all()?;
    Ok(file)
}

// === impl Reader ===

/// Reads durable entries in spool order and hands them on. One per spool.
pub struct Reader {
    dir: PathBuf,
    position: Position,
    synced: watch::Receiver<Position>,
    /// Entries before this were on disk at boot: reading them is replay.
    replay_end: Position,
    telemetry: Arc<Telemetry>,
}

/// One entry read back from disk.
pub struct ReadEntry {
    pub batch: RecordBatch,
    pub spooled: SpooledEntry,
}

impl Reader {
    /// Reads the next entries after `self.position` (waiting for new ones), or `None` once
    /// the writer is gone and everything durable has been read, or on `stop`.
    pub async fn next(&mut self, stop: &CancellationToken) -> Option<Vec<ReadEntry>> {
        loop {
            let synced = *self.synced.borrow_and_update();
            if self.position.segment < synced.segment || self.position.offset < synced.offset {
                let dir = self.dir.clone();
                let from = self.position;
                let step = tokio::task::spawn_blocking(move || read_step(&dir, from, synced)).await;
                match step {
                    Ok(Ok(step)) => {
                        self.position = step.next;
                        if step.corrupt_frames > 0 {
                            tracing::warn!(
                                frames = step.corrupt_frames,
                                "spool: skipped corrupt frames"
                            );
                            self.telemetry
                                .spool
                                .corrupt_records
                                .inc_by(step.corrupt_frames);
                        }
                        let replayed = step
                            .entries
                            .iter()
                            .filter(|e| e.spooled.end <= self.replay_end)
                            .map(|e| e.spooled.records)
                            .sum::<u64>();
                        self.telemetry.spool.replayed_records.inc_by(replayed);
                        if !step.entries.is_empty() {
                            return Some(step.entries);
                        }
                        continue;
                    }
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "spool: read failed; retrying");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "spool: read task failed");
                        return None;
                    }
                }
            }
            tokio::select! {
                changed = self.synced.changed() => {
                    if changed.is_err() {
                        // The writer is gone: read what it left, then stop.
                        let last = *self.synced.borrow();
                        if self.position >= last {
                            return None;
                        }
                    }
                }
                _ = stop.cancelled() => {
                    // Stop only once caught up: a graceful stop drains what is durable.
                    let synced = *self.synced.borrow();
                    if self.position.segment >= synced.segment && self.position.offset >= synced.offset {
                        return None;
                    }
                }
            }
        }
    }
}

struct Step {
    entries: Vec<ReadEntry>,
    next: Position,
    corrupt_frames: u64,
}

/// Reads whole frames from `from` up to the durable end, at most `READ_STEP_BYTES`.
fn read_step(dir: &Path, from: Position, synced: Position) -> io::Result<Step> {
    let mut step = Step {
        entries: Vec::new(),
        next: from,
        corrupt_frames: 0,
    };
    let path = segment_path(dir, from.segment);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            step.next = Position {
                segment: from.segment + 1,
                offset: 0,
            };
            return Ok(step);
        }
        Err(e) => return Err(e),
    };
    let limit = if from.segment < synced.segment {
        file.metadata()?.len()
    } else {
        synced.offset
    };
    let mut offset = from.offset;
    let mut handed = 0u64;
    while offset < limit && handed < READ_STEP_BYTES {
        match read_frame(&file, offset, limit)? {
            Frame::Valid { body, end } => {
                let frame_bytes = end - offset;
                if let Ok((seq, batch)) = decode_body(body) {
                    let records = batch.payloads.len() as u64;
                    step.entries.push(ReadEntry {
                        batch,
                        spooled: SpooledEntry {
                            seq,
                            end: Position {
                                segment: from.segment,
                                offset: end,
                            },
                            frame_bytes,
                            records,
                        },
                    });
                } else {
                    step.corrupt_frames += 1;
                }
                handed += frame_bytes;
                offset = end;
            }
            Frame::Corrupt => {
                step.corrupt_frames += 1;
                offset = resync(&file, offset + 1, limit)?.unwrap_or(limit);
            }
        }
    }
    step.next = if offset >= limit && from.segment < synced.segment {
        Position {
            segment: from.segment + 1,
            offset: 0,
        }
    } else {
        Position {
            segment: from.segment,
            offset,
        }
    };
    Ok(step)
}

enum Frame {
    Valid { body: Bytes, end: u64 },
    Corrupt,
}

/// Reads and checks the frame at `offset`; anything that is not a whole valid frame
/// ending at or before `limit` is `Corrupt`.
fn read_frame(file: &File, offset: u64, limit: u64) -> io::Result<Frame> {
    if limit - offset < HEADER as u64 {
        return Ok(Frame::Corrupt);
    }
    let mut header = [0u8; HEADER];
    file.read_exact_at(&mut header, offset)?;
    let word = |i: usize| u32::from_le_bytes(header[i..i + 4].try_into().expect("4 bytes"));
    let (magic, len, crc) = (word(0), word(4), word(8));
    let end = offset + HEADER as u64 + u64::from(len);
    if magic != MAGIC || len > MAX_FRAME || end > limit {
        return Ok(Frame::Corrupt);
    }
    let mut body = vec![0u8; len as usize];
    file.read_exact_at(&mut body, offset + HEADER as u64)?;
    if crc32c::crc32c(&body) != crc {
        return Ok(Frame::Corrupt);
    }
    Ok(Frame::Valid {
        body: Bytes::from(body),
        end,
    })
}

/// The offset of the next valid frame at or after `from`, if any.
fn resync(file: &File, from: u64, limit: u64) -> io::Result<Option<u64>> {
    let magic = MAGIC.to_le_bytes();
    let mut chunk_start = from;
    let mut chunk = vec![0u8; 1 << 20];
    while chunk_start < limit {
        let n = (limit - chunk_start).min(chunk.len() as u64) as usize;
        file.read_exact_at(&mut chunk[..n], chunk_start)?;
        for i in memchr::memmem::find_iter(&chunk[..n], &magic) {
            let candidate = chunk_start + i as u64;
            if matches!(read_frame(file, candidate, limit)?, Frame::Valid { .. }) {
                return Ok(Some(candidate));
            }
        }
        // Overlap by 3 bytes so a magic split across chunks is still found.
        chunk_start += (n as u64).saturating_sub(3).max(1);
    }
    Ok(None)
}

struct SegmentScan {
    len: u64,
    valid_end: u64,
    valid_bytes: u64,
    entries: u64,
    records: u64,
    max_seq: u64,
    corrupt_frames: u64,
}

/// Walks a segment at boot: where its valid frames end, how many there are.
fn scan_segment(path: &Path, from: u64) -> io::Result<SegmentScan> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut scan = SegmentScan {
        len,
        valid_end: from.min(len),
        valid_bytes: 0,
        entries: 0,
        records: 0,
        max_seq: 0,
        corrupt_frames: 0,
    };
    let mut offset = from;
    while offset < len {
        match read_frame(&file, offset, len)? {
            Frame::Valid { body, end } => {
                // Count only what the reader will hand on: frames that also decode.
                if let Ok((seq, batch)) = decode_body(body) {
                    scan.max_seq = scan.max_seq.max(seq);
                    scan.entries += 1;
                    scan.records += batch.payloads.len() as u64;
                    scan.valid_bytes += end - offset;
                }
                scan.valid_end = end;
                offset = end;
            }
            Frame::Corrupt => match resync(&file, offset + 1, len)? {
                Some(next) => {
                    scan.corrupt_frames += 1;
                    offset = next;
                }
                None => break, // nothing valid follows: a torn tail
            },
        }
    }
    Ok(scan)
}

// === impl CursorKeeper ===

/// Persists the acknowledged cursor and deletes wholly acknowledged segments.
pub struct CursorKeeper {
    dir: PathBuf,
    cursor: watch::Receiver<Cursor>,
    persisted: Cursor,
}

impl CursorKeeper {
    /// Runs until the batcher drops its sender; persists the final cursor on the way out.
    pub async fn run(mut self) {
        // Persisting is batched: at most one cursor write per interval.
        const EVERY: Duration = Duration::from_millis(50);
        loop {
            let closed = self.cursor.changed().await.is_err();
            let cursor = *self.cursor.borrow_and_update();
            if cursor != self.persisted {
                let dir = self.dir.clone();
                let before = self.persisted;
                match tokio::task::spawn_blocking(move || persist_cursor(&dir, before, cursor))
                    .await
                {
                    Ok(Ok(())) => self.persisted = cursor,
                    Ok(Err(e)) => tracing::error!(error = %e, "spool: cannot persist the cursor"),
                    Err(e) => tracing::error!(error = %e, "spool: cursor task failed"),
                }
            }
            if closed {
                return;
            }
            tokio::time::sleep(EVERY).await;
        }
    }
}

fn persist_cursor(dir: &Path, before: Cursor, cursor: Cursor) -> io::Result<()> {
    let tmp = dir.join(format!("{CURSOR_FILE}.tmp"));
    let mut f = File::create(&tmp)?;
    f.write_all(&serde_json::to_vec(&cursor).expect("a cursor serializes"))?;
    f.sync_data()?;
    fs::rename(&tmp, dir.join(CURSOR_FILE))?;
    File::open(dir)?.sync_all()?;
    // Only now, with the cursor durable, are the segments before it garbage.
    for id in before.position.segment..cursor.position.segment {
        match fs::remove_file(segment_path(dir, id)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn load_cursor(dir: &Path) -> Result<Cursor, SpoolError> {
    match fs::read(dir.join(CURSOR_FILE)) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            SpoolError::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", dir.join(CURSOR_FILE).display()),
            ))
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // No cursor yet: start at the oldest segment, if any.
            let first = segment_ids(dir)?.first().copied().unwrap_or(0);
            Ok(Cursor {
                position: Position {
                    segment: first,
                    offset: 0,
                },
                seq: 0,
            })
        }
        Err(e) => Err(e.into()),
    }
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.seg"))
}

fn segment_ids(dir: &Path) -> io::Result<Vec<u64>> {
    let mut ids: Vec<u64> = fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".seg")?.parse().ok()
        })
        .collect();
    ids.sort_unstable();
    Ok(ids)
}

// === frame encoding ===

/// Appends one frame holding `batch` as entry `seq`.
fn encode_frame(seq: u64, batch: &RecordBatch, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0u8; HEADER]);
    let e = &batch.envelope;
    out.extend_from_slice(&seq.to_le_bytes());
    out.push(e.kind as u8);
    out.push(e.content_type.code());
    out.extend_from_slice(&e.account_id.0.to_le_bytes());
    put_str(out, &e.token_id.0);
    match &e.log_type {
        Some(t) => {
            out.push(1);
            put_str(out, t);
        }
        None => out.push(0),
    }
    out.extend_from_slice(&(batch.payloads.len() as u32).to_le_bytes());
    for p in &batch.payloads {
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        out.extend_from_slice(p);
    }
    let body_len = (out.len() - start - HEADER) as u32;
    let crc = crc32c::crc32c(&out[start + HEADER..]);
    out[start..start + 4].copy_from_slice(&MAGIC.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&body_len.to_le_bytes());
    out[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Decodes a frame body whose CRC already matched. Payloads are slices of `body`.
fn decode_body(body: Bytes) -> Result<(u64, RecordBatch), ()> {
    let mut pos = 0usize;
    let mut take = |n: usize| -> Result<std::ops::Range<usize>, ()> {
        let range = pos..pos.checked_add(n).ok_or(())?;
        if range.end > body.len() {
            return Err(());
        }
        pos = range.end;
        Ok(range)
    };
    let u64_at =
        |r: std::ops::Range<usize>| u64::from_le_bytes(body[r].try_into().expect("8 bytes"));
    let u32_at =
        |r: std::ops::Range<usize>| u32::from_le_bytes(body[r].try_into().expect("4 bytes"));
    let seq = u64_at(take(8)?);
    let kind = match body[take(1)?][0] {
        0 => Kind::Logs,
        1 => Kind::Metrics,
        2 => Kind::Traces,
        _ => return Err(()),
    };
    let content_type = ContentType::from_code(body[take(1)?][0]).ok_or(())?;
    let account_id = AccountId(u64_at(take(8)?));
    let len = u32_at(take(4)?) as usize;
    let token_id = std::str::from_utf8(&body[take(len)?])
        .map_err(|_| ())?
        .into();
    let log_type = match body[take(1)?][0] {
        0 => None,
        _ => {
            let len = u32_at(take(4)?) as usize;
            Some(
                std::str::from_utf8(&body[take(len)?])
                    .map_err(|_| ())?
                    .into(),
            )
        }
    };
    let count = u32_at(take(4)?) as usize;
    let mut payloads = Vec::with_capacity(count.min(1 << 20));
    for _ in 0..count {
        let len = u32_at(take(4)?) as usize;
        payloads.push(body.slice(take(len)?));
    }
    Ok((
        seq,
        RecordBatch {
            envelope: Envelope {
                kind,
                account_id,
                token_id: TokenId(token_id),
                log_type,
                content_type,
            },
            payloads,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(lines: &[&'static str]) -> RecordBatch {
        RecordBatch {
            envelope: Envelope {
                kind: Kind::Logs,
                account_id: AccountId(1001),
                token_id: TokenId("t-1".into()),
                log_type: Some("nginx".into()),
                content_type: ContentType::JsonObject,
            },
            payloads: lines
                .iter()
                .map(|l| Bytes::from_static(l.as_bytes()))
                .collect(),
        }
    }

    #[test]
    fn frames_round_trip() {
        let mut buf = Vec::new();
        encode_frame(42, &batch(&["{\"a\":1}", "{}"]), &mut buf);
        let body = Bytes::copy_from_slice(&buf[HEADER..]);
        let (seq, back) = decode_body(body).unwrap();
        assert_eq!(seq, 42);
        assert_eq!(
            back.payloads,
            vec![Bytes::from_static(b"{\"a\":1}"), Bytes::from_static(b"{}")]
        );
        assert_eq!(back.envelope.log_type.as_deref(), Some("nginx"));
        assert_eq!(back.envelope.account_id, AccountId(1001));
    }

    #[test]
    fn scan_finds_torn_tails_and_skips_corrupt_frames_in_the_middle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.seg");
        let mut buf = Vec::new();
        for seq in 1..=3 {
            encode_frame(seq, &batch(&["{\"n\":1}"]), &mut buf);
        }
        let frame = buf.len() / 3;
        buf[frame + HEADER + 3] ^= 0xff; // corrupt the second frame's body
        let whole = buf.len() as u64;
        let torn = buf[..frame / 2].to_vec();
        buf.extend_from_slice(&torn); // a torn fourth frame
        fs::write(&path, &buf).unwrap();
        let scan = scan_segment(&path, 0).unwrap();
        assert_eq!(scan.entries, 2);
        assert_eq!(scan.corrupt_frames, 1);
        assert_eq!(scan.max_seq, 3);
        assert_eq!(scan.valid_end, whole);
        assert!(scan.len > whole);
    }
}
