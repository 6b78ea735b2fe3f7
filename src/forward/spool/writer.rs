//! The spool writer: a dedicated thread that owns the active segment file. It takes every
//! append waiting in its channel, writes them with one `write`, makes them durable with one
//! `fdatasync` — group commit — and only then answers them. While one fsync runs, the next
//! group gathers in the channel, so no request holds a lock across an fsync. An idle
//! writer sleeps until the append that starts a group wakes it (`SpoolHandle::append`).
//! Its thread is nicer than the request workers', so under load on a shared core the groups
//! grow (`NICER_THAN_WORKERS`).
//! After the fsync it hands the group's entries — already in memory — to the reader (the
//! *handoff*) while the handoff budget has room, and then publishes the durable end.
//!
//! The active segment is zero-filled a *runway* ahead of its end, so that most groups
//! overwrite bytes the file already has: `fdatasync` then writes the data alone, without
//! the journal commit a growing file needs for its new size (about half the fsync's time
//! and CPU on ext4; docs/performance/request-path-2026-12-07.md). A segment is cut back to
//! its frames when it is closed — rolled, or the writer stopped — and a runway left by a
//! crash is cut by the reader at boot (`reader::read_step`).
//!
//! It only ever appends frames (and cuts its runway): it never reads a segment back and
//! never deletes one.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use prometheus::Histogram;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, oneshot, watch};

use super::frame::encode_frame;
use super::{Position, ReadEntry, SpoolError, SpooledEntry, Unacked, segment_path};
use crate::forward::record::RecordBatch;
use crate::private_files;
use crate::thread_priority::lower_this_threads_priority;

/// Appends taken into one group commit at most.
const MAX_GROUP: usize = 8192;

/// How long the writer sleeps, with nothing to write, before it looks again without being
/// woken: a bound on a lost wake-up, and how soon it sees the spool closed.
const IDLE_LOOK: Duration = Duration::from_millis(100);

/// How much nicer (lower in scheduling priority) the writer's thread is than the thread
/// that opened the spool. Where it shares a core with the request workers, the writer then
/// gets the core back a little later after an fsync, so under load the requests that ran
/// meanwhile join its next group: larger groups, fewer fsyncs a request. Where the core is
/// idle it runs at once. The measurements behind the value are in
/// docs/performance/request-path-2026-12-05.md.
const NICER_THAN_WORKERS: i32 = 5;

/// How far ahead of its end the active segment is zero-filled: grown a runway at a time,
/// so the file's size (and the journal commit that goes with it) changes once every
/// thousands of requests rather than at every group.
pub(super) const RUNWAY: u64 = 1 << 20;

/// What the runway is written from.
static ZEROS: [u8; 64 << 10] = [0; 64 << 10];

/// Capacity the frame buffer keeps between groups: enough for the usual group, not the
/// largest one seen.
const KEEP_BUF_BYTES: usize = 4 << 20;

/// One request's records on their way to the writer, and where to answer it.
pub(super) struct Append {
    pub(super) batch: RecordBatch,
    pub(super) done: oneshot::Sender<Result<u64, SpoolError>>,
}

/// One group commit's entries, handed from the writer to the reader in memory.
pub(super) struct Handoff {
    /// Where the group's first frame starts and its last ends.
    pub(super) start: Position,
    pub(super) end: Position,
    /// Memory the entries hold (`RecordBatch::held_bytes`), charged to the handoff budget
    /// until the reader takes the group.
    pub(super) bytes: u64,
    pub(super) entries: Vec<ReadEntry>,
}

/// Stops the writer thread and waits for it: `ForwardTask::close` calls it once the public
/// listener is drained, so a clean stop leaves every segment cut to its frames.
pub struct WriterStop {
    pub(super) stopping: Arc<AtomicBool>,
    pub(super) thread: std::thread::JoinHandle<()>,
}

impl WriterStop {
    /// Appends counted in before this are still written and answered; later ones are
    /// answered `SpoolError::Closed`.
    pub async fn stop(self) {
        self.stopping.store(true, Ordering::Release);
        self.thread.thread().unpark();
        let thread = self.thread;
        match tokio::task::spawn_blocking(move || thread.join()).await {
            Ok(Ok(())) => {}
            _ => tracing::error!("spool writer thread failed"),
        }
    }
}

pub(super) struct Writer {
    pub(super) dir: PathBuf,
    pub(super) segment_bytes: u64,
    pub(super) file: File,
    pub(super) segment: u64,
    /// Where the active segment's frames end…
    pub(super) len: u64,
    /// …and where its runway ends: the file's length.
    pub(super) zeroed: u64,
    pub(super) next_seq: u64,
    pub(super) rx: mpsc::UnboundedReceiver<Append>,
    /// Appends counted in by `SpoolHandle::append` and not yet taken.
    pub(super) pending: Arc<AtomicUsize>,
    pub(super) synced: watch::Sender<Position>,
    pub(super) handoff: mpsc::UnboundedSender<Handoff>,
    pub(super) handoff_bytes: Arc<AtomicU64>,
    pub(super) handoff_max_bytes: u64,
    pub(super) unacked: Arc<Unacked>,
    pub(super) writable: Arc<AtomicBool>,
    /// Set by `WriterStop::stop`: the writer finishes what is counted in and exits.
    pub(super) stopping: Arc<AtomicBool>,
    pub(super) fsync_seconds: Histogram,
    pub(super) buf: Vec<u8>,
    /// Per-commit scratch, kept to reuse their allocations.
    pub(super) spooled: Vec<SpooledEntry>,
    pub(super) done: Vec<oneshot::Sender<Result<u64, SpoolError>>>,
}

impl Writer {
    /// Group commit until every `SpoolHandle` is dropped. With nothing to write it sleeps
    /// until the append that starts a group wakes it (`SpoolHandle::append`), not at the
    /// first send: the channel does not wake it.
    pub(super) fn run(mut self) {
        lower_this_threads_priority(NICER_THAN_WORKERS, "tollgate-spool");
        let mut group = Vec::with_capacity(64);
        loop {
            match self.rx.try_recv() {
                Ok(first) => group.push(first),
                // Counted but not received yet: a send is under way. It will not wake this
                // thread (only a group's first append does), so look again at once.
                Err(TryRecvError::Empty) if self.pending.load(Ordering::Acquire) > 0 => {
                    std::thread::yield_now();
                    continue;
                }
                Err(TryRecvError::Empty) if self.stopping.load(Ordering::Acquire) => break,
                Err(TryRecvError::Empty) => {
                    std::thread::park_timeout(IDLE_LOOK);
                    continue;
                }
                Err(TryRecvError::Disconnected) => break,
            }
            while group.len() < MAX_GROUP {
                match self.rx.try_recv() {
                    Ok(a) => group.push(a),
                    Err(_) => break,
                }
            }
            self.pending.fetch_sub(group.len(), Ordering::AcqRel);
            self.commit(&mut group);
        }
        // So the segment ends at its last frame, as a closed one does.
        self.cut_runway();
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
        let mut held_bytes = 0u64;
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
            held_bytes += append.batch.held_bytes() as u64;
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
        let frames_end = self.len + self.buf.len() as u64;
        let written = self.file.write_all_at(&self.buf, self.len).and_then(|()| {
            self.extend_runway(frames_end);
            self.file.sync_data()
        });
        let frames_len = self.buf.len() as u64;
        // A group of large requests grows the buffer to its size: give that back rather
        // than hold the largest group's size for the life of the process.
        self.buf.clear();
        self.buf.shrink_to(KEEP_BUF_BYTES);
        self.fsync_seconds.observe(started.elapsed().as_secs_f64());
        if let Err(e) = written {
            tracing::error!(error = %e, segment = self.segment, "spool: write or fsync failed");
            // After a failed fsync the page cache cannot be trusted: continue in a new
            // segment. The roll cuts this one at its last good frame, so no half frame
            // stays in it.
            let _ = self.roll();
            self.fail(group, e);
            return;
        }
        self.next_seq += group.len() as u64;
        self.len += frames_len;
        self.unacked.appended(frames_len, records);
        self.writable.store(true, Ordering::Relaxed);
        let end = Position {
            segment: self.segment,
            offset: self.len,
        };
        // The group is durable: hand its entries on from memory if the budget has room —
        // before publishing the durable end, so a reader that sees the new end and finds no
        // handoff waiting knows those entries are only on disk.
        let room =
            self.handoff_bytes.load(Ordering::Relaxed) + held_bytes <= self.handoff_max_bytes;
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
            self.handoff_bytes.fetch_add(held_bytes, Ordering::Relaxed);
            let handoff = Handoff {
                start,
                end,
                bytes: held_bytes,
                entries,
            };
            if self.handoff.send(handoff).is_err() {
                self.handoff_bytes.fetch_sub(held_bytes, Ordering::Relaxed);
            }
        }
        self.synced.send_replace(end);
        for (i, done) in self.done.drain(..).enumerate() {
            let _ = done.send(Ok(first_seq + i as u64));
        }
    }

    fn fail(&mut self, group: &mut Vec<Append>, e: io::Error) {
        self.writable.store(false, Ordering::Relaxed);
        let kind = e.kind();
        for append in group.drain(..) {
            let _ = append
                .done
                .send(Err(SpoolError::Io(io::Error::new(kind, e.to_string()))));
        }
    }

    /// Zero-fills the active segment past `frames_end` to the next whole runway, if the
    /// frames reach beyond the current one. Made durable by the group's fsync. A runway is
    /// only a saving: if the zeros cannot be written (a disk nearly full), the group goes
    /// on without them, as long as its own frames fit.
    fn extend_runway(&mut self, frames_end: u64) {
        if frames_end < self.zeroed {
            return;
        }
        let to = (frames_end / RUNWAY + 1) * RUNWAY;
        let mut at = frames_end;
        while at < to {
            let n = (to - at).min(ZEROS.len() as u64) as usize;
            if self.file.write_all_at(&ZEROS[..n], at).is_err() {
                break;
            }
            at += n as u64;
        }
        self.zeroed = at;
    }

    /// Cuts the active segment's runway and makes its length durable. A cut that fails
    /// (after a failed write or fsync, say) is only logged: a zero end is cut at the next
    /// boot, in any segment.
    fn cut_runway(&mut self) {
        let cut = self
            .file
            .set_len(self.len)
            .and_then(|()| self.file.sync_all());
        self.zeroed = self.len;
        if let Err(e) = cut {
            tracing::warn!(error = %e, segment = self.segment, "spool: cannot cut the runway");
        }
    }

    /// Starts the next segment. The old one is complete and durable, and cut to its frames.
    fn roll(&mut self) -> io::Result<()> {
        self.cut_runway();
        let next = self.segment + 1;
        self.file = create_segment(&self.dir, next)?;
        self.segment = next;
        self.len = 0;
        self.zeroed = 0;
        self.synced.send_replace(Position {
            segment: next,
            offset: 0,
        });
        Ok(())
    }
}

pub(super) fn create_segment(dir: &Path, id: u64) -> io::Result<File> {
    // Written at explicit offsets (the runway lies past the end of the frames), not appended.
    let file = private_files::open_options()
        .create(true)
        .write(true)
        .open(segment_path(dir, id))?;
    File::open(dir)?.sync_all()?;
    Ok(file)
}
