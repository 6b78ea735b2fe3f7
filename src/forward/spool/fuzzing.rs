//! The frame reader driven on arbitrary segment bytes, for the `spool_segment` fuzz target
//! (`fuzz/`). Not an API: it exists so the target runs the reader's own code, not a copy.

use std::fs;
use std::io;
use std::path::Path;

use super::frame::MAGIC;
use super::reader::read_step;
use super::{Position, segment_path};

/// What reading one segment found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Scan {
    /// Each entry's seq, the offset its frame ends at, and its record count, in order.
    pub entries: Vec<(u64, u64, u64)>,
    /// Bytes of the frames handed on.
    pub frame_bytes: u64,
    pub corrupt_frames: u64,
    pub skipped_bytes: u64,
    pub torn_bytes: u64,
    /// Zeros cut off the end: the writer's runway.
    pub runway_bytes: u64,
}

/// Writes `bytes` as segment 0 of `dir`.
pub fn write_segment(dir: &Path, bytes: &[u8]) -> io::Result<()> {
    fs::write(segment_path(dir, 0), bytes)
}

/// The length of segment 0 of `dir`.
pub fn segment_len(dir: &Path) -> io::Result<u64> {
    Ok(fs::metadata(segment_path(dir, 0))?.len())
}

/// Reads segment 0 of `dir` to its end, step by step, as the reader replays the last
/// segment found at boot: a corrupt end with no valid frame after it, or an end of only
/// zeros (the writer's runway), is truncated.
pub fn replay_boot_segment(dir: &Path) -> io::Result<Scan> {
    let end = Position {
        segment: 1,
        offset: 0,
    };
    let mut from = Position::default();
    let mut scan = Scan::default();
    while from.segment == 0 {
        let step = read_step(dir, from, end, true)?;
        assert!(step.next > from, "a read step must move forward");
        for e in &step.entries {
            scan.entries.push((
                e.spooled.seq,
                e.spooled.end.offset,
                e.batch.payloads.len() as u64,
            ));
            scan.frame_bytes += e.spooled.frame_bytes;
        }
        scan.corrupt_frames += step.corrupt_frames;
        scan.skipped_bytes += step.skipped_bytes;
        scan.torn_bytes += step.torn_bytes;
        scan.runway_bytes += step.runway_bytes;
        from = step.next;
    }
    Ok(scan)
}

/// Appends a frame with a valid header and checksum around any `body`, so a fuzzer
/// reaches the body decoder.
pub fn frame(body: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(body).to_le_bytes());
    out.extend_from_slice(body);
}
