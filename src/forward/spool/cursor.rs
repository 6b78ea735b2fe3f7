//! The acknowledged cursor: how far the sink has acknowledged the spool, persisted so a
//! restart replays only what is still unacknowledged. The keeper writes it (temp file,
//! fsync, rename) at most once per interval and then deletes the segments wholly before
//! it.
//!
//! It does not decide what is acknowledged — the batcher's `AckTracker` moves the cursor —
//! and it never reads frames.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::{SpoolError, segment_ids, segment_path};
use crate::private_files;

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

/// Persists the acknowledged cursor and deletes wholly acknowledged segments.
pub struct CursorKeeper {
    dir: PathBuf,
    cursor: watch::Receiver<Cursor>,
    persisted: Cursor,
}

impl CursorKeeper {
    /// A keeper for the spool in `dir`, starting from the `persisted` cursor, and the
    /// sender the batcher moves the cursor with.
    pub(super) fn new(dir: &Path, persisted: Cursor) -> (watch::Sender<Cursor>, CursorKeeper) {
        let (tx, cursor) = watch::channel(persisted);
        let keeper = CursorKeeper {
            dir: dir.to_path_buf(),
            cursor,
            persisted,
        };
        (tx, keeper)
    }

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
    let mut f = private_files::open_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
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

pub(super) fn load_cursor(dir: &Path) -> Result<Cursor, SpoolError> {
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
