//! The disk spool (`ack = "disk"` and `"downstream"`, DESIGN §3): what makes a 200 mean
//! "safe". A directory of append-only segment files of framed entries; one entry is one
//! request's records.
//!
//! - **Writer** (a dedicated thread): takes every append waiting in its channel, writes
//!   them with one `write`, makes them durable with one `fdatasync` — group commit — and
//!   only then answers them. While one fsync runs, the next group gathers in the channel,
//!   so no request holds a lock across an fsync. After the fsync it hands the group's
//!   entries — already in memory — to the reader (the *handoff*) while the handoff budget
//!   has room, and then publishes the durable end.
//! - **Reader** (a task): the one ordered sequence of entries the batcher sees. It keeps a
//!   position in the spool and moves it only forward: a handed-off group that starts
//!   exactly at the position is passed on from memory; anything else — replay at boot, or
//!   groups the writer did not hand off because the budget was full — is read back from
//!   disk, up to the next handed-off group or the durable end. So memory and disk never
//!   reorder or deliver an entry twice within one process lifetime.
//! - **Cursor**: the batcher reports the acknowledged prefix; the cursor keeper persists it
//!   (temp file, fsync, rename) and deletes segments that are wholly acknowledged.
//!
//! Frame: `magic u32 | len u32 | crc32c(body) u32 | body`, little-endian. Boot reads no
//! frame: the reader checks every frame as it replays. A corrupt frame with valid frames
//! after it is skipped and counted; a corrupt end of the segment that was last at boot (a
//! crash mid-write) is a torn tail and is truncated when the reader reaches it.

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

/// What `open` found on disk: how much the reader will replay. Entries and records are
/// not counted at boot (that would read every frame twice); the reader counts them in
/// `tollgate_spool_replayed_records_total` as it replays.
#[derive(Debug, Default)]
pub struct Recovery {
    pub segments: usize,
    /// Bytes after the cursor, torn tails and corrupt frames included until the reader
    /// skips them.
    pub bytes: u64,
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

/// Opens (or creates) the spool in `dir` and starts the writer on a fresh segment. Up to
/// `handoff_max_bytes` of payload fsynced but not yet taken by the reader is kept in
/// memory; past it, entries are read back from disk.
pub fn open(
    dir: &Path,
    segment_bytes: u64,
    handoff_max_bytes: u64,
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
    for &id in &ids {
        let len = fs::metadata(segment_path(dir, id))?.len();
        let from = if id == cursor.position.segment {
            cursor.position.offset
        } else {
            0
        };
        recovery.bytes += len.saturating_sub(from);
    }
    // Entry seqs only need to grow in spool order (downstream acks compare them). No frame
    // is read here, so start past any seq the unread bytes could hold: a frame is longer
    // than its header.
    let next_seq = cursor.seq + 1 + recovery.bytes / HEADER as u64;
    let active = ids.last().map_or(cursor.position.segment, |last| last + 1);
    let shared = Arc::new(SpoolShared {
        unacked_bytes: AtomicU64::new(recovery.bytes),
        // Counted by the reader as it replays.
        unacked_records: AtomicU64::new(0),
        writable: AtomicBool::new(true),
    });
    let file = create_segment(dir, active)?;
    let (appends, rx) = mpsc::unbounded_channel();
    let (handoff_tx, handoff_rx) = mpsc::unbounded_channel();
    let handoff_bytes = Arc::new(AtomicU64::new(0));
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
        next_seq,
        rx,
        synced: synced_tx,
        handoff: handoff_tx,
        handoff_bytes: Arc::clone(&handoff_bytes),
        handoff_max_bytes,
        shared: Arc::clone(&shared),
        telemetry: Arc::clone(&telemetry),
        buf: Vec::with_capacity(1 << 20),
        spooled: Vec::with_capacity(64),
        done: Vec::with_capacity(64),
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
            handoff: handoff_rx,
            handoff_bytes,
            held: None,
            replay_end,
            tail: ids.last().copied(),
            shared,
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

/// One group commit's entries, handed from the writer to the reader in memory.
struct Handoff {
    /// Where the group's first frame starts and its last ends.
    start: Position,
    end: Position,
    /// Payload bytes, charged to the handoff budget until the reader takes the group.
    bytes: u64,
    entries: Vec<ReadEntry>,
}

struct Writer {
    dir: PathBuf,
    segment_bytes: u64,
    file: File,
    segment: u64,
    len: u64,
    next_seq: u64,
    rx: mpsc::UnboundedReceiver<Append>,
    synced: watch::Sender<Position>,
    handoff: mpsc::UnboundedSender<Handoff>,
    handoff_bytes: Arc<AtomicU64>,
    handoff_max_bytes: u64,
    shared: Arc<SpoolShared>,
    telemetry: Arc<Telemetry>,
    buf: Vec<u8>,
    /// Per-commit scratch, kept to reuse their allocations.
    spooled: Vec<SpooledEntry>,
    done: Vec<oneshot::Sender<Result<u64, SpoolError>>>,
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
        self.spooled.clear();
        let mut records = 0u64;
        let mut payload_bytes = 0u64;
        let first_seq = self.next_seq;
        let start = Position {
            segment: self.segment,
            offset: self.len,
        };
        for (i, append) in group.iter().enumerate() {
            let seq = first_seq + i as u64;
            let frame_start = self.buf.len();
            encode_frame(seq, &append.batch, &mut self.buf);
            let n = append.batch.payloads.len() as u64;
            records += n;
            payload_bytes += append.batch.payload_bytes() as u64;
            self.spooled.push(SpooledEntry {
                seq,
                end: Position {
                    segment: self.segment,
                    offset: self.len + self.buf.len() as u64,
                },
                frame_bytes: (self.buf.len() - frame_start) as u64,
                records: n,
            });
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
        let end = Position {
            segment: self.segment,
            offset: self.len,
        };
        // The group is durable: hand its entries on from memory if the budget has room —
        // before publishing the durable end, so a reader that sees the new end and finds no
        // handoff waiting knows those entries are only on disk.
        let room =
            self.handoff_bytes.load(Ordering::Relaxed) + payload_bytes <= self.handoff_max_bytes;
        let mut entries = Vec::with_capacity(if room { group.len() } else { 0 });
        for (append, spooled) in group.drain(..).zip(self.spooled.drain(..)) {
            self.done.push(append.done);
            if room {
                entries.push(ReadEntry {
                    batch: append.batch,
                    spooled,
                });
            }
        }
        if room {
            self.handoff_bytes
                .fetch_add(payload_bytes, Ordering::Relaxed);
            let handoff = Handoff {
                start,
                end,
                bytes: payload_bytes,
                entries,
            };
            if self.handoff.send(handoff).is_err() {
                self.handoff_bytes
                    .fetch_sub(payload_bytes, Ordering::Relaxed);
            }
        }
        self.synced.send_replace(end);
        for (i, done) in self.done.drain(..).enumerate() {
            let _ = done.send(Ok(first_seq + i as u64));
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

/// The one ordered sequence of spooled entries the batcher sees. One per spool.
pub struct Reader {
    dir: PathBuf,
    /// Everything before it has been handed on; it only moves forward.
    position: Position,
    synced: watch::Receiver<Position>,
    handoff: mpsc::UnboundedReceiver<Handoff>,
    handoff_bytes: Arc<AtomicU64>,
    /// A handed-off group that starts after `position`: what lies between is read from
    /// disk first.
    held: Option<Handoff>,
    /// Entries before this were on disk at boot: reading them is replay.
    replay_end: Position,
    /// The segment that was last at boot: a corrupt end there is a torn tail.
    tail: Option<u64>,
    shared: Arc<SpoolShared>,
    telemetry: Arc<Telemetry>,
}

/// One spooled entry on its way to the batcher.
pub struct ReadEntry {
    pub batch: RecordBatch,
    pub spooled: SpooledEntry,
}

impl Reader {
    /// The next entries after `self.position` (waiting for new ones), or `None` once the
    /// writer is gone and everything durable has been handed on, or on `stop`.
    pub async fn next(&mut self, stop: &CancellationToken) -> Option<Vec<ReadEntry>> {
        loop {
            // Read the durable end before looking for a handoff: every group the writer
            // handed off up to this end is then already in the channel.
            let synced = *self.synced.borrow_and_update();
            if self.held.is_none()
                && let Ok(group) = self.handoff.try_recv()
            {
                self.take(group);
            }
            let disk_end = match self.held.take() {
                Some(group) if group.start == self.position => {
                    self.position = group.end;
                    return Some(group.entries);
                }
                // Already read from disk (never expected): drop it.
                Some(group) if group.start < self.position => continue,
                Some(group) => {
                    let start = group.start;
                    self.held = Some(group);
                    start
                }
                None => synced,
            };
            if self.position < disk_end {
                match self.read_disk(disk_end).await {
                    Ok(Some(entries)) => return Some(entries),
                    Ok(None) => continue,
                    Err(()) => return None,
                }
            }
            tokio::select! {
                changed = self.synced.changed() => {
                    if changed.is_err() {
                        // The writer is gone: hand on what it left, then stop.
                        let last = *self.synced.borrow();
                        if self.position >= last && self.handoff.is_empty() {
                            return None;
                        }
                    }
                }
                Some(group) = self.handoff.recv() => self.take(group),
                _ = stop.cancelled() => {
                    // Stop only once caught up: a graceful stop drains what is durable.
                    if self.position >= *self.synced.borrow() {
                        return None;
                    }
                }
            }
        }
    }

    fn take(&mut self, group: Handoff) {
        self.handoff_bytes.fetch_sub(group.bytes, Ordering::Relaxed);
        self.held = Some(group);
    }

    /// Reads entries from disk from `position` towards `end`. `Ok(None)`: nothing to hand
    /// on in this step; `Err`: the read task died.
    async fn read_disk(&mut self, end: Position) -> Result<Option<Vec<ReadEntry>>, ()> {
        let dir = self.dir.clone();
        let from = self.position;
        let tail = self.tail == Some(from.segment);
        let step = tokio::task::spawn_blocking(move || read_step(&dir, from, end, tail)).await;
        let step = match step {
            Ok(Ok(step)) => step,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "spool: read failed; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
                return Ok(None);
            }
            Err(e) => {
                tracing::error!(error = %e, "spool: read task failed");
                return Err(());
            }
        };
        self.position = step.next;
        let spool = &self.telemetry.spool;
        if step.corrupt_frames > 0 {
            tracing::warn!(
                frames = step.corrupt_frames,
                "spool: skipped corrupt frames"
            );
            spool.corrupt_records.inc_by(step.corrupt_frames);
        }
        if step.torn_bytes > 0 {
            tracing::warn!(
                segment = from.segment,
                torn_bytes = step.torn_bytes,
                "spool: truncated a torn tail"
            );
            spool.torn_tails.inc();
        }
        // Skipped bytes will never be acknowledged: take them off the high-water count.
        let skipped = step.skipped_bytes + step.torn_bytes;
        if skipped > 0 {
            let _ =
                self.shared
                    .unacked_bytes
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                        Some(b.saturating_sub(skipped))
                    });
        }
        let (mut replayed, mut read_back) = (0, 0);
        for e in &step.entries {
            if e.spooled.end <= self.replay_end {
                replayed += e.spooled.records;
            } else {
                read_back += e.spooled.records;
            }
        }
        // Replayed records were not counted at boot (that would read them twice).
        let records = self
            .shared
            .unacked_records
            .fetch_add(replayed, Ordering::Relaxed)
            + replayed;
        let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        spool.records.set(gauge(records));
        spool
            .bytes
            .set(gauge(self.shared.unacked_bytes.load(Ordering::Relaxed)));
        spool.replayed_records.inc_by(replayed);
        spool.read_back_records.inc_by(read_back);
        if step.entries.is_empty() {
            Ok(None)
        } else {
            Ok(Some(step.entries))
        }
    }
}

struct Step {
    entries: Vec<ReadEntry>,
    next: Position,
    corrupt_frames: u64,
    /// Bytes of corrupt or undecodable frames passed over.
    skipped_bytes: u64,
    /// Bytes cut off a torn tail.
    torn_bytes: u64,
}

/// Reads whole frames from `from` up to `end` (a later segment: to the end of this one),
/// at most `READ_STEP_BYTES`. In the boot `tail` segment, a corrupt end with no valid frame
/// after it is truncated.
fn read_step(dir: &Path, from: Position, end: Position, tail: bool) -> io::Result<Step> {
    let mut step = Step {
        entries: Vec::new(),
        next: from,
        corrupt_frames: 0,
        skipped_bytes: 0,
        torn_bytes: 0,
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
    let limit = if from.segment < end.segment {
        file.metadata()?.len()
    } else {
        end.offset
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
                    step.skipped_bytes += frame_bytes;
                }
                handed += frame_bytes;
                offset = end;
            }
            Frame::Corrupt => match resync(&file, offset + 1, limit)? {
                Some(next) => {
                    step.corrupt_frames += 1;
                    step.skipped_bytes += next - offset;
                    offset = next;
                }
                None if tail => {
                    OpenOptions::new()
                        .write(true)
                        .open(&path)?
                        .set_len(offset)?;
                    File::open(&path)?.sync_all()?;
                    step.torn_bytes = limit - offset;
                    offset = limit;
                }
                None => {
                    step.corrupt_frames += 1;
                    step.skipped_bytes += limit - offset;
                    offset = limit;
                }
            },
        }
    }
    step.next = if offset >= limit && from.segment < end.segment {
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

    /// Segment 0 holding entries 1..=3 with the second one corrupt, then a torn fourth
    /// frame; returns the length up to the end of the third frame, and the file's length.
    fn damaged_segment(dir: &Path) -> (u64, u64) {
        let mut buf = Vec::new();
        for seq in 1..=3 {
            encode_frame(seq, &batch(&["{\"n\":1}"]), &mut buf);
        }
        let frame = buf.len() / 3;
        buf[frame + HEADER + 3] ^= 0xff; // corrupt the second frame's body
        let whole = buf.len() as u64;
        let torn = buf[..frame / 2].to_vec();
        buf.extend_from_slice(&torn); // a torn fourth frame
        fs::write(segment_path(dir, 0), &buf).unwrap();
        (whole, buf.len() as u64)
    }

    fn seqs(step: &Step) -> Vec<u64> {
        step.entries.iter().map(|e| e.spooled.seq).collect()
    }

    #[test]
    fn the_boot_tail_is_truncated_and_a_corrupt_frame_in_the_middle_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let (whole, len) = damaged_segment(dir.path());
        let next = Position {
            segment: 1,
            offset: 0,
        };
        let step = read_step(dir.path(), Position::default(), next, true).unwrap();
        assert_eq!(seqs(&step), vec![1, 3]);
        assert_eq!(step.corrupt_frames, 1);
        assert_eq!(step.torn_bytes, len - whole);
        assert_eq!(step.next, next);
        let frame = whole / 3;
        assert_eq!(step.skipped_bytes, frame, "the corrupt frame, exactly");
        assert_eq!(
            fs::metadata(segment_path(dir.path(), 0)).unwrap().len(),
            whole,
            "cut back to the last whole frame"
        );
    }

    #[test]
    fn a_corrupt_end_of_an_older_segment_is_skipped_not_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let (whole, len) = damaged_segment(dir.path());
        let next = Position {
            segment: 1,
            offset: 0,
        };
        let step = read_step(dir.path(), Position::default(), next, false).unwrap();
        assert_eq!(seqs(&step), vec![1, 3]);
        assert_eq!(step.corrupt_frames, 2);
        assert_eq!(step.torn_bytes, 0);
        assert_eq!(step.skipped_bytes, whole / 3 + (len - whole));
        assert_eq!(
            fs::metadata(segment_path(dir.path(), 0)).unwrap().len(),
            len
        );
    }

    #[test]
    fn a_step_stops_at_the_given_end() {
        let dir = tempfile::tempdir().unwrap();
        let (whole, _) = damaged_segment(dir.path());
        let end = Position {
            segment: 0,
            offset: whole / 3,
        };
        let step = read_step(dir.path(), Position::default(), end, true).unwrap();
        assert_eq!(seqs(&step), vec![1]);
        assert_eq!(step.next, end);
    }
}
