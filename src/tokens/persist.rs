//! The last good snapshot on disk, so a restarted gateway serves before (or without) its
//! source: write a temp file, fsync it, rename it over the old one, fsync the directory.
//! A crash at any point leaves either the old file or the new one, never half of one.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::TokenTable;
use super::grants::ReadGrants;
use super::snapshot::SnapshotError;
use super::wire::{DropFilters, Snapshot, VolumePolicy};
use crate::private_files;
use crate::thread_priority::{TO_LOWEST, lower_this_threads_priority};

const FILE_NAME: &str = "tokens.snapshot.json";

pub fn path_in(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE_NAME)
}

#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: {source}")]
    Snapshot {
        path: PathBuf,
        source: SnapshotError,
    },
}

/// What a gateway serves, as loaded back at boot.
pub struct Persisted {
    pub table: TokenTable,
    /// `None` when the file holds no grants (the `file` source, or a file written before
    /// grants existed).
    pub grants: Option<ReadGrants>,
    /// The accounts' volume policies and drop filters the gateway held, `None` in a file
    /// written before they were persisted.
    pub rules: Option<Rules>,
}

/// The accounts' rules a control-plane gateway holds beside its table, persisted with it
/// so that a gateway restarted while its control plane is away still enforces them.
#[derive(Default)]
pub struct Rules {
    pub volumes: Vec<VolumePolicy>,
    pub filters: DropFilters,
}

/// `save` on a thread of its own at the lowest CPU priority (nice 19), resolving when it
/// is done; a failure is logged (the previous file stays). Serializing a 1,000,000-token
/// table takes seconds of CPU; at normal priority, on a busy machine, that time would be
/// taken from the runtime workers (and show in request latency). At nice 19 it runs in the
/// time requests leave idle.
pub async fn save_in_background(
    state_dir: PathBuf,
    table: Arc<TokenTable>,
    grants: Option<Arc<ReadGrants>>,
    rules: Option<Arc<Rules>>,
) {
    let (done, result) = tokio::sync::oneshot::channel();
    let started = std::thread::Builder::new()
        .name("tollgate-persist".into())
        .spawn(move || {
            lower_this_threads_priority(TO_LOWEST, "tollgate-persist");
            let saved = save(&state_dir, &table, grants.as_deref(), rules.as_deref());
            let _ = done.send(saved.map_err(|e| e.to_string()));
        });
    let outcome = match started {
        Ok(_) => result
            .await
            .unwrap_or_else(|_| Err("the persist thread panicked".into())),
        Err(e) => Err(format!("could not start the persist thread: {e}")),
    };
    if let Err(e) = outcome {
        tracing::warn!(error = %e, "could not persist token snapshot");
    }
}

/// Persists the digest-only form of `table` (and `grants` and `rules`, when the source
/// has them) under `state_dir`. Blocking: call it through `save_in_background`, never on
/// the request path.
pub fn save(
    state_dir: &Path,
    table: &TokenTable,
    grants: Option<&ReadGrants>,
    rules: Option<&Rules>,
) -> Result<(), PersistError> {
    let path = path_in(state_dir);
    let io_err = |source| PersistError::Io {
        path: path.clone(),
        source,
    };
    private_files::create_dir_all(state_dir).map_err(io_err)?;
    let tmp = state_dir.join(format!("{FILE_NAME}.tmp"));
    let mut snapshot = Snapshot::from_state(table, grants);
    if let Some(rules) = rules {
        snapshot.volumes = Some(rules.volumes.clone());
        snapshot.filters = Some(rules.filters.clone());
    }
    let bytes = serde_json::to_vec(&snapshot).expect("a snapshot always serializes");
    let mut f = private_files::open_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(io_err)?;
    f.write_all(&bytes).map_err(io_err)?;
    f.sync_data().map_err(io_err)?;
    drop(f);
    fs::rename(&tmp, &path).map_err(io_err)?;
    File::open(state_dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err)?;
    Ok(())
}

/// Loads the persisted table and grants, `Ok(None)` when there is none yet.
pub fn load(state_dir: &Path) -> Result<Option<Persisted>, PersistError> {
    let path = path_in(state_dir);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(PersistError::Io { path, source }),
    };
    let parsed = Snapshot::parse(&bytes).and_then(|mut snapshot| {
        let rules = match (snapshot.volumes.take(), snapshot.filters.take()) {
            (None, None) => None,
            (volumes, filters) => Some(Rules {
                volumes: volumes.unwrap_or_default(),
                filters: filters.unwrap_or_default(),
            }),
        };
        let (table, grants) = snapshot.into_state()?;
        Ok(Persisted {
            table,
            grants,
            rules,
        })
    });
    parsed
        .map(Some)
        .map_err(|source| PersistError::Snapshot { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_then_load_round_trips_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().is_none());
        let json = r#"{"version": 9, "tokens": [
            {"token": "aaaaaaaaaaaaaaaa", "token_id": "t-1", "account_id": 1, "kind": "logs"}]}"#;
        let table = Snapshot::parse(json.as_bytes())
            .unwrap()
            .into_table()
            .unwrap();
        save(dir.path(), &table, None, None).unwrap();
        let loaded = load(dir.path()).unwrap().unwrap();
        assert_eq!(loaded.table.version, 9);
        assert_eq!(loaded.table.len(), 1);
        assert!(
            loaded.grants.is_none(),
            "a table without grants loads without"
        );
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(FILE_NAME)]);
        let text = fs::read_to_string(path_in(dir.path())).unwrap();
        assert!(
            !text.contains("aaaaaaaaaaaaaaaa"),
            "only digests are persisted"
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_state_directory_and_snapshot_are_readable_by_the_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let state_dir = tmp.path().join("data");
        let table = Snapshot::parse(br#"{"version": 1, "tokens": []}"#)
            .unwrap()
            .into_table()
            .unwrap();
        save(&state_dir, &table, None, None).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&state_dir), 0o700);
        assert_eq!(mode(&path_in(&state_dir)), 0o600);
    }

    #[test]
    fn grants_are_persisted_with_the_table_as_digests() {
        let dir = tempfile::tempdir().unwrap();
        let api = "apiTokenSecret000000000000000001";
        let json = format!(
            r#"{{"version": 4, "tokens": [], "grants": {{
                "accounts": [{{"account_id": 1, "owner_id": null, "type": "logs",
                               "searchable": false, "api_tokens_usable_until_ms": null}}],
                "api_tokens": [{{"digest": "{}", "account_id": 1}}]}}}}"#,
            crate::tokens::Digest::of(api).to_hex()
        );
        let (table, grants) = Snapshot::parse(json.as_bytes())
            .unwrap()
            .into_state()
            .unwrap();
        let mut grants = grants.expect("grants");
        // Grants moved on without a token change: the newer version is persisted.
        grants.version = 6;
        save(dir.path(), &table, Some(&grants), None).unwrap();
        let loaded = load(dir.path()).unwrap().unwrap();
        assert_eq!(loaded.table.version, 6);
        let grants = loaded.grants.expect("grants come back");
        assert_eq!(grants.api_token(api, 0).unwrap().accounts.len(), 1);
        assert!(
            !fs::read_to_string(path_in(dir.path()))
                .unwrap()
                .contains(api)
        );
    }

    #[test]
    fn the_accounts_rules_are_persisted_with_the_table() {
        let dir = tempfile::tempdir().unwrap();
        let table = Snapshot::parse(br#"{"version": 3, "tokens": []}"#)
            .unwrap()
            .into_table()
            .unwrap();
        let rules = Rules {
            volumes: vec![
                serde_json::from_value(serde_json::json!({"account_id": 7,
                    "account_name": "acme", "main_id": 7, "reserved_bytes": 0,
                    "cap_bytes": 1000, "plan_bytes": 1000}))
                .unwrap(),
            ],
            filters: serde_json::from_value(serde_json::json!({"logs": [{"id": 1,
                "account_id": 7, "active": true,
                "field_conditions": [{"fieldName": "level", "value": "debug"}]}]}))
            .unwrap(),
        };
        save(dir.path(), &table, None, Some(&rules)).unwrap();
        let loaded = load(dir.path()).unwrap().unwrap().rules.expect("rules");
        assert_eq!(loaded.volumes, rules.volumes);
        assert_eq!(loaded.filters, rules.filters);
        // A file from before rules were persisted loads without them.
        save(dir.path(), &table, None, None).unwrap();
        assert!(load(dir.path()).unwrap().unwrap().rules.is_none());
    }
}
