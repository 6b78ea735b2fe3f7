//! The `file` token source: a JSON snapshot on local disk, checked every
//! `tokens.watch_interval_secs` and reloaded when its size, mtime or inode changes.
//! Polling instead of inotify keeps it correct for editors that replace the file, for
//! bind mounts and for network filesystems, at the cost of one `stat` per interval.
//!
//! A file that does not parse — garbage, or caught half-written — is counted in
//! `tollgate_token_reloads_total{result="error"}` and the previous table keeps serving.
//!
//! The file may carry the accounts' volume policies and drop filters too (`volumes`,
//! `filters`, the feed's shapes): caps, `LogSize`, utilization records and drop filters
//! for a gateway without a control plane.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use super::wire::{DropFilters, Snapshot, VolumePolicy};
use super::{TokenTable, Tokens, persist};
use crate::filters::held::HeldFilters;
use crate::telemetry::SourceMetrics;
use crate::volume::gate::Gate;

/// What identifies one version of the file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

pub struct FileSource {
    path: PathBuf,
    state_dir: PathBuf,
    interval: Duration,
    tokens: Arc<Tokens>,
    /// Takes the file's volume policies.
    gate: Arc<Gate>,
    /// Takes the file's drop filters.
    filters: Arc<HeldFilters>,
    metrics: SourceMetrics,
    /// The version of the file last tried, loaded or not: an unchanged bad file is not
    /// re-parsed every interval.
    last_seen: Option<Fingerprint>,
    /// The version of the file the serving table came from.
    last_loaded: Option<Fingerprint>,
    /// The file could not be stat'ed at the last check: reported once, not every interval.
    missing: bool,
}

impl FileSource {
    pub fn new(
        path: PathBuf,
        state_dir: PathBuf,
        interval: Duration,
        tokens: Arc<Tokens>,
        gate: Arc<Gate>,
        filters: Arc<HeldFilters>,
        metrics: SourceMetrics,
    ) -> FileSource {
        FileSource {
            path,
            state_dir,
            interval,
            tokens,
            gate,
            filters,
            metrics,
            last_seen: None,
            last_loaded: None,
            missing: false,
        }
    }

    /// Boot: serve the persisted snapshot at once if there is one (fail-static), then
    /// load the file over it. Either may fail; the watcher keeps trying the file.
    pub async fn boot(&mut self) {
        let state_dir = self.state_dir.clone();
        match tokio::task::spawn_blocking(move || persist::load(&state_dir)).await {
            // Grants, if the state dir holds some from a `control_plane` source, are not
            // served: this source has none.
            Ok(Ok(Some(persist::Persisted { table, .. }))) => {
                tracing::info!(
                    version = table.version,
                    tokens = table.len(),
                    "serving persisted token snapshot"
                );
                self.tokens.install(Arc::new(table));
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "persisted token snapshot ignored"),
            Err(e) => tracing::error!(error = %e, "loading persisted snapshot panicked"),
        }
        self.check().await;
    }

    /// Watches the file until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => self.check().await,
            }
        }
    }

    /// Reloads if the file changed since it was last tried.
    async fn check(&mut self) {
        let current = match std::fs::metadata(&self.path) {
            Ok(meta) => Some(fingerprint(&meta)),
            Err(e) => {
                if !self.missing {
                    self.missing = true;
                    self.reload_failed(&e.to_string());
                }
                self.last_seen = None;
                return;
            }
        };
        self.missing = false;
        if current == self.last_seen {
            if current == self.last_loaded
                && let Some(table) = self.tokens.current()
            {
                // The file still holds what we serve: the table is current.
                self.metrics.table.fresh(table.len(), table.version);
            }
            return;
        }
        self.last_seen = current;
        let path = self.path.clone();
        let loaded = tokio::task::spawn_blocking(move || load_table(&path)).await;
        match loaded {
            Ok(Ok((table, volumes, filters))) => {
                let table = Arc::new(table);
                self.gate.set_policies(volumes.unwrap_or_default());
                let filters = filters.unwrap_or_default();
                self.filters.set(filters.logs, filters.metrics);
                self.metrics
                    .file_loaded(table.version, table.len(), &self.path);
                self.tokens.install(Arc::clone(&table));
                self.last_loaded = current;
                persist::save_in_background(self.state_dir.clone(), table, None, None).await;
            }
            Ok(Err(message)) => self.reload_failed(&message),
            Err(e) => self.reload_failed(&e.to_string()),
        }
    }

    fn reload_failed(&self, message: &str) {
        self.metrics.file_not_loaded(&self.path, message);
    }
}

fn fingerprint(meta: &std::fs::Metadata) -> Fingerprint {
    use std::os::unix::fs::MetadataExt;
    Fingerprint {
        len: meta.len(),
        modified: meta.modified().ok(),
        inode: meta.ino(),
    }
}

/// What a token file holds: the table, and the volume policies and drop filters if any.
type Loaded = (TokenTable, Option<Vec<VolumePolicy>>, Option<DropFilters>);

fn load_table(path: &std::path::Path) -> Result<Loaded, String> {
    let bytes = std::fs::read(path).map_err(|e: io::Error| e.to_string())?;
    let mut snapshot = Snapshot::parse(&bytes).map_err(|e| e.to_string())?;
    let volumes = snapshot.volumes.take();
    let filters = snapshot.filters.take();
    let table = snapshot.into_table().map_err(|e| e.to_string())?;
    Ok((table, volumes, filters))
}
