//! The spool's frame reader on arbitrary segment bytes, as it replays the last segment
//! found at boot: never panics, accounts for every byte (frames handed on + skipped +
//! torn + runway = the file), entries in order, and a second replay of what it left finds
//! the same entries and nothing more to cut. Odd first byte: the rest is split into
//! bodies, each wrapped in a frame with a valid checksum, so the body decoder is reached;
//! its second bit adds a zero-filled runway after them, as the writer leaves one.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tollgate::forward::spool::fuzzing::{frame, replay_boot_segment, segment_len, write_segment};

/// One directory per process, on tmpfs when there is one (the target writes every input).
fn dir() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = std::path::Path::new("/dev/shm");
        if shm.is_dir() {
            tempfile::Builder::new()
                .prefix("tollgate-fuzz-")
                .tempdir_in(shm)
                .expect("a temp dir")
        } else {
            tempfile::Builder::new()
                .prefix("tollgate-fuzz-")
                .tempdir()
                .expect("a temp dir")
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, raw)) = data.split_first() else {
        return;
    };
    let segment = if mode & 1 == 0 {
        raw.to_vec()
    } else {
        // Bodies separated by 0xFF; a trailing `mode >> 2` bytes of the last frame
        // are cut off, as a crash mid-write would.
        let mut out = Vec::new();
        for body in raw.split(|&b| b == 0xFF) {
            frame(body, &mut out);
        }
        let cut = usize::from(mode >> 2).min(out.len());
        out.truncate(out.len() - cut);
        if mode & 2 != 0 {
            out.resize(out.len() + 300, 0);
        }
        out
    };
    let dir = dir().path();
    write_segment(dir, &segment).expect("write the segment");
    let first = replay_boot_segment(dir).expect("replay");
    let len = segment.len() as u64;
    assert_eq!(
        first.frame_bytes + first.skipped_bytes + first.torn_bytes + first.runway_bytes,
        len,
        "every byte is handed on, skipped or cut"
    );
    assert_eq!(
        segment_len(dir).expect("stat"),
        len - first.torn_bytes - first.runway_bytes
    );
    let mut last_end = 0;
    for &(_, end, _) in &first.entries {
        assert!(
            end > last_end && end <= len,
            "entries in order, inside the file"
        );
        last_end = end;
    }
    let second = replay_boot_segment(dir).expect("replay again");
    assert_eq!(second.entries, first.entries);
    assert_eq!(
        (second.torn_bytes, second.runway_bytes),
        (0, 0),
        "a replayed segment has no torn tail or runway left"
    );
});
