//! Snapshots: a consistent, compact copy of the store beside it (`<db>.snapshot`), the
//! second source [`recover`](super::recover::recover) rebuilds from.
//!
//! Written with `VACUUM INTO` on a connection of its own: it runs in one read transaction,
//! so the copy is exactly one committed state, and in WAL mode it blocks neither remembers
//! nor recalls. The copy goes to a temporary name, is synced, then renamed over the previous
//! snapshot, so a crash mid-snapshot leaves the old snapshot intact.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;
use serde::Serialize;

use crate::error::{EngineError, Result};
use crate::Engine;

/// Where the snapshot of the store at `db` lives: `<db>.snapshot`.
pub fn snapshot_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".snapshot");
    PathBuf::from(name)
}

/// What [`Engine::snapshot`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnapshotInfo {
    /// The snapshot file.
    pub path: PathBuf,
    /// Events in the snapshot.
    pub events: u64,
    /// Facts in the snapshot.
    pub facts: u64,
    /// Highest event id in the snapshot (0 when empty).
    pub max_event_id: i64,
    /// Size of the snapshot file.
    pub bytes: u64,
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> EngineError {
    EngineError::InvalidConfig(format!("snapshot: cannot {what} {}: {e}", path.display()))
}

/// Writes the snapshot of the store at `db` (see the module docs).
pub fn write_snapshot(db: &Path) -> Result<SnapshotInfo> {
    let target = snapshot_path(db);
    let mut tmp = target.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("remove the leftover", &tmp, e)),
    }
    let conn = Connection::open(db).map_err(|source| EngineError::Open {
        path: db.to_path_buf(),
        source,
    })?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let tmp_str = tmp.to_str().ok_or_else(|| {
        EngineError::InvalidConfig(format!("snapshot: path {tmp:?} is not UTF-8"))
    })?;
    conn.execute("VACUUM INTO ?1", [tmp_str])?;
    drop(conn);
    let (events, facts, max_event_id) = {
        let snap = Connection::open_with_flags(&tmp, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let n = |sql: &str| snap.query_row(sql, [], |r| r.get::<_, i64>(0));
        (
            n("SELECT count(*) FROM events")?.max(0) as u64,
            n("SELECT count(*) FROM facts")?.max(0) as u64,
            n("SELECT coalesce(max(id), 0) FROM events")?,
        )
    };
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_err("sync", &tmp, e))?;
    std::fs::rename(&tmp, &target).map_err(|e| io_err("rename onto", &target, e))?;
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        // The rename is durable only once the directory entry is.
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_err("sync the directory of", &target, e))?;
    }
    let bytes = std::fs::metadata(&target)
        .map_err(|e| io_err("stat", &target, e))?
        .len();
    Ok(SnapshotInfo {
        path: target,
        events,
        facts,
        max_event_id,
        bytes,
    })
}

impl Engine {
    /// Writes a consistent copy of the store to `<db>.snapshot` (replacing the previous
    /// one), for [`recover`](crate::durability::recover). Remembers and recalls go on
    /// meanwhile; the copy holds exactly the commits made before it started.
    pub fn snapshot(&self) -> Result<SnapshotInfo> {
        write_snapshot(self.store.path())
    }
}
