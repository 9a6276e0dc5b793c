//! A store that a command will write to at its end: checked now when it exists (so a damaged
//! store fails in a second, not after a minute of measuring), created only when the first run
//! is actually saved (so a command that fails leaves no new store file behind).

use std::path::PathBuf;

use crate::baseline::sqlite::SqliteStore;
use crate::error::Error;

/// The store a saving command writes to.
pub enum PendingStore {
    /// Opened for writing (checked and migrated).
    Open(SqliteStore),
    /// Does not exist yet; created on first use.
    Later(PathBuf),
}

impl PendingStore {
    /// Opens `path` for writing if it exists; otherwise remembers it.
    pub fn prepare(path: PathBuf) -> Result<PendingStore, Error> {
        if path.exists() {
            SqliteStore::open_write(&path).map(PendingStore::Open)
        } else {
            Ok(PendingStore::Later(path))
        }
    }

    /// The open store, creating the file now if it did not exist.
    pub fn get(&mut self) -> Result<&mut SqliteStore, Error> {
        if let PendingStore::Later(path) = self {
            *self = PendingStore::Open(SqliteStore::open_write(path)?);
        }
        match self {
            PendingStore::Open(s) => Ok(s),
            PendingStore::Later(_) => unreachable!("opened just above"),
        }
    }

    /// The store's path.
    pub fn path(&self) -> &std::path::Path {
        match self {
            PendingStore::Open(s) => s.path(),
            PendingStore::Later(p) => p,
        }
    }
}
