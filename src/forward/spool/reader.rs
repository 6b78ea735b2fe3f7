//! The spool reader: the one ordered sequence of entries the batcher sees. It keeps a
//! position in the spool and moves it only forward: a handed-off group that starts exactly
//! at the position is passed on from memory; anything else — replay at boot, or groups the
//! writer did not hand off because the budget was full — is read back from disk, up to the
//! next handed-off group or the durable end. So memory and disk never reorder or deliver an
//! entry twice within one process lifetime.
//!
//! Boot reads no frame: the reader checks every frame as it replays. A corrupt frame with
//! valid frames after it is skipped and counted; a corrupt end of the segment that was last
//! at boot (a crash mid-write) is a torn tail and is truncated when the reader reaches it.
//! An end of only zeros, in any segment, is the writer's runway (a crash before it cut
//! it): cut too, and counted neither torn nor corrupt — zeros are never a frame.
//! The reader never appends and never deletes a segment.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::frame::{Frame, all_zeros, decode_body, read_frame, resync};
use super::writer::Handoff;
use super::{Position, ReadEntry, SpooledEntry, Unacked, segment_path};
use crate::telemetry::SpoolReadMetrics;

/// Bytes the reader hands over per step. A step is decoded whole before the queue's budget
/// is asked for, so this much (and its bookkeeping) is held outside that budget.
const READ_STEP_BYTES: u64 = 1 << 20;

/// The one ordered sequence of spooled entries the batcher sees. One per spool.
pub struct Reader {
    pub(super) dir: PathBuf,
    /// Everything before it has been handed on; it only moves forward.
    pub(super) position: Position,
    pub(super) synced: watch::Receiver<Position>,
    pub(super) handoff: mpsc::UnboundedReceiver<Handoff>,
    pub(super) handoff_bytes: Arc<AtomicU64>,
    /// A handed-off group that starts after `position`: what lies between is read from
    /// disk first.
    pub(super) held: Option<Handoff>,
    /// Entries before this were on disk at boot: reading them is replay.
    pub(super) replay_end: Position,
    /// The segment that was last at boot: a corrupt end there is a torn tail.
    pub(super) tail: Option<u64>,
    pub(super) unacked: Arc<Unacked>,
    pub(super) metrics: SpoolReadMetrics,
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
        if step.corrupt_frames > 0 {
            self.metrics.corrupt_frames_skipped(step.corrupt_frames);
        }
        if step.torn_bytes > 0 {
            self.metrics
                .torn_tail_truncated(from.segment, step.torn_bytes);
        }
        self.unacked
            .skipped(step.skipped_bytes + step.torn_bytes + step.runway_bytes);
        let (mut replayed, mut read_back) = (0, 0);
        for e in &step.entries {
            if e.spooled.end <= self.replay_end {
                replayed += e.spooled.records;
            } else {
                read_back += e.spooled.records;
            }
        }
        if replayed > 0 {
            self.unacked.replayed(replayed);
        }
        self.metrics.records_read(replayed, read_back);
        if step.entries.is_empty() {
            Ok(None)
        } else {
            Ok(Some(step.entries))
        }
    }
}

pub(super) struct Step {
    pub(super) entries: Vec<ReadEntry>,
    pub(super) next: Position,
    pub(super) corrupt_frames: u64,
    /// Bytes of corrupt or undecodable frames passed over.
    pub(super) skipped_bytes: u64,
    /// Bytes cut off a torn tail.
    pub(super) torn_bytes: u64,
    /// Zeros cut off the end: the writer's runway, not a torn write.
    pub(super) runway_bytes: u64,
}

/// Reads whole frames from `from` up to `end` (a later segment: to the end of this one),
/// at most `READ_STEP_BYTES`. In the boot `tail` segment, a corrupt end with no valid frame
/// after it is truncated.
pub(super) fn read_step(dir: &Path, from: Position, end: Position, tail: bool) -> io::Result<Step> {
    let mut step = Step {
        entries: Vec::new(),
        next: from,
        corrupt_frames: 0,
        skipped_bytes: 0,
        torn_bytes: 0,
        runway_bytes: 0,
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
            Frame::Corrupt if all_zeros(&file, offset, limit)? => {
                cut(&path, offset)?;
                step.runway_bytes = limit - offset;
                offset = limit;
            }
            Frame::Corrupt => match resync(&file, offset + 1, limit)? {
                Some(next) => {
                    step.corrupt_frames += 1;
                    step.skipped_bytes += next - offset;
                    offset = next;
                }
                None if tail => {
                    cut(&path, offset)?;
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

/// Cuts the segment at `path` to `len` bytes, durably.
fn cut(path: &Path, len: u64) -> io::Result<()> {
    OpenOptions::new().write(true).open(path)?.set_len(len)?;
    File::open(path)?.sync_all()
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::forward::record::tests::batch;
    use crate::forward::spool::frame::{HEADER, encode_frame};

    /// Frames of entries 1 to `last`, one small record each, all the same length.
    fn frames(last: u64) -> Vec<u8> {
        let mut buf = Vec::new();
        for seq in 1..=last {
            encode_frame(seq, &batch(&["{\"n\":1}"]), &mut buf);
        }
        buf
    }

    /// The start of the segment after segment 0: where reading segment 0 to its end stops.
    const NEXT: Position = Position {
        segment: 1,
        offset: 0,
    };

    /// Writes segment 0: three frames, the second with a corrupt body, then half a fourth
    /// frame; returns the length up to the end of the third frame, and the file's length.
    fn damaged_segment(dir: &Path) -> (u64, u64) {
        let mut buf = frames(3);
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
        let step = read_step(dir.path(), Position::default(), NEXT, true).unwrap();
        assert_eq!(seqs(&step), vec![1, 3]);
        assert_eq!(step.corrupt_frames, 1);
        assert_eq!(step.torn_bytes, len - whole);
        assert_eq!(step.next, NEXT);
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
        let step = read_step(dir.path(), Position::default(), NEXT, false).unwrap();
        assert_eq!(seqs(&step), vec![1, 3]);
        assert_eq!(step.corrupt_frames, 2);
        assert_eq!(step.torn_bytes, 0);
        assert_eq!(step.skipped_bytes, whole / 3 + (len - whole));
        assert_eq!(
            fs::metadata(segment_path(dir.path(), 0)).unwrap().len(),
            len
        );
    }

    /// What a crash leaves of the writer's active segment: its frames, then the zeros of
    /// its runway; in the boot tail, or in an older segment (a second crash before the
    /// reader got there).
    #[test]
    fn a_zero_end_is_the_runway_cut_and_counted_neither_torn_nor_corrupt() {
        for tail in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let mut buf = frames(3);
            let whole = buf.len() as u64;
            buf.resize(buf.len() + 5000, 0);
            fs::write(segment_path(dir.path(), 0), &buf).unwrap();
            let step = read_step(dir.path(), Position::default(), NEXT, tail).unwrap();
            assert_eq!(seqs(&step), vec![1, 2, 3]);
            assert_eq!((step.corrupt_frames, step.skipped_bytes), (0, 0));
            assert_eq!(step.torn_bytes, 0, "a runway is not a torn write");
            assert_eq!(step.runway_bytes, 5000);
            assert_eq!(step.next, NEXT);
            assert_eq!(
                fs::metadata(segment_path(dir.path(), 0)).unwrap().len(),
                whole
            );
        }
    }

    /// Zeros after a torn frame: the torn tail is cut whole, and counted once.
    #[test]
    fn a_torn_frame_before_the_runway_is_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut buf = frames(2);
        let whole = buf.len() as u64;
        let torn = buf[..buf.len() / 4].to_vec();
        buf.extend_from_slice(&torn);
        buf.resize(buf.len() + 5000, 0);
        fs::write(segment_path(dir.path(), 0), &buf).unwrap();
        let step = read_step(dir.path(), Position::default(), NEXT, true).unwrap();
        assert_eq!(seqs(&step), vec![1, 2]);
        assert_eq!(step.torn_bytes, buf.len() as u64 - whole);
        assert_eq!(step.runway_bytes, 0);
        assert_eq!(
            fs::metadata(segment_path(dir.path(), 0)).unwrap().len(),
            whole
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
