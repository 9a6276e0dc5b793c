//! The engine's error type.

use std::path::PathBuf;

/// Everything that can go wrong inside the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The file exists but is not an SQLite database (or is damaged beyond SQLite's header check).
    #[error("{}: not an SQLite database (or the file is corrupt): {source}", path.display())]
    NotADatabase {
        /// The database path that was given.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The database could not be opened or prepared at all (permissions, a directory, ...).
    #[error("{}: cannot open the engine store: {source}", path.display())]
    Open {
        /// The database path that was given.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// A valid SQLite database that belongs to some other application.
    #[error(
        "{}: an SQLite database of another application (application_id {found:#010x}, tables present), not a perfcheck engine store",
        path.display()
    )]
    ForeignDatabase {
        /// The database path that was given.
        path: PathBuf,
        /// The `PRAGMA application_id` found in the file.
        found: i32,
    },
    /// The store was written by a newer version of the engine.
    #[error("{}: engine store schema version {found} is newer than the supported version {supported}", path.display())]
    SchemaTooNew {
        /// The database path that was given.
        path: PathBuf,
        /// `PRAGMA user_version` found in the file.
        found: i64,
        /// The newest version this build understands.
        supported: i64,
    },
    /// The store holds embeddings of another dimension than the configuration asks for.
    #[error("{}: store was created with embedding dimension {stored}, the configuration asks for {configured}", path.display())]
    DimensionMismatch {
        /// The database path that was given.
        path: PathBuf,
        /// Dimension recorded in the store.
        stored: usize,
        /// Dimension in the `EngineConfig`.
        configured: usize,
    },
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// `load_corpus` was called on a store that already holds events.
    #[error("load_corpus needs an empty store, but it already holds {0} events")]
    StoreNotEmpty(u64),
    /// A stored embedding blob has the wrong length.
    #[error("event {id}: stored embedding has {bytes} bytes, expected {expected}")]
    CorruptEmbedding {
        /// Event id.
        id: i64,
        /// Blob length found.
        bytes: usize,
        /// Blob length expected (`4 * dim`).
        expected: usize,
    },
    /// The vector index returned an id that the store does not have.
    #[error("event {0} is in the vector index but not in the store")]
    MissingEvent(i64),
    /// Fault injected by `ConsolidateOptions::fail_after_fact_writes` (tests only).
    #[error("injected fault after {0} fact writes (test hook)")]
    InjectedFault(usize),
    /// Any other SQLite error.
    #[error("engine store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// JSON encoding or decoding failed.
    #[error("engine json: {0}")]
    Json(#[from] serde_json::Error),
    /// A dependency (the store's reads or writes, the embedder) is unavailable: its circuit
    /// breaker is open, the read pool stayed exhausted, or the embedder failed. Nothing was
    /// written; the caller may retry after `retry_after`.
    #[error("{what} unavailable: {reason}")]
    Unavailable {
        /// Which dependency (`store writes`, `store reads`, `embedder`).
        what: &'static str,
        /// Why (the breaker is open after N failures, the last error, ...).
        reason: String,
        /// When trying again makes sense (the breaker's remaining cool-down), if known.
        retry_after: Option<std::time::Duration>,
    },
    /// An operation ran out of its deadline while retrying a transient error (the store
    /// stayed locked). Nothing was written.
    #[error("{op} gave up after {:.1} ms and {attempts} attempt(s) (deadline exceeded): {last}", after.as_secs_f64() * 1e3)]
    DeadlineExceeded {
        /// The operation (`remember`, `consolidate`).
        op: &'static str,
        /// How long it tried.
        after: std::time::Duration,
        /// How many calls it made.
        attempts: u32,
        /// The last transient error.
        last: String,
    },
    /// An operation needs more memory than its budget allows even at its smallest; it did
    /// nothing (see [`crate::MemoryBudget`]).
    #[error("{op} needs at least {needed} bytes, over its memory budget of {budget} bytes")]
    MemoryBudget {
        /// The operation (`consolidation`).
        op: &'static str,
        /// The least it needs.
        needed: usize,
        /// Its budget.
        budget: usize,
    },
    /// The store (or its WAL) is damaged; nothing was served from it. `recover` rebuilds a
    /// store from what is still intact.
    #[error("{}: the engine store is damaged: {detail}", path.display())]
    Corrupt {
        /// The damaged file (the database or its `-wal`).
        path: PathBuf,
        /// What was found, with the first damaged rows or pages.
        detail: String,
    },
}

/// Result alias for engine operations.
pub type Result<T> = std::result::Result<T, EngineError>;
