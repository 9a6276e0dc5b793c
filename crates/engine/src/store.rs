//! SQLite persistence of events, embeddings and consolidated facts.
//!
//! WAL journal with `synchronous=NORMAL` (a crash can lose the last commits but never corrupts),
//! a busy timeout, cached prepared statements, and one transaction per bulk batch or per
//! consolidation write, so a failure leaves the previous state intact.
//!
//! Shared between threads: one writer connection behind a mutex (SQLite admits one writer at a
//! time anyway, and taking turns in-process is cheaper than `SQLITE_BUSY` retries) and a small
//! pool of read-only connections. In WAL mode readers never block the writer nor each other,
//! so recall's reads proceed while remember and consolidation write. Consolidation itself is
//! serialised by a separate lock held from reading the backlog to writing its facts, so two
//! consolidations can never claim the same pending events.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::corpus::NewEvent;
use super::durability::row_checksum;
use super::error::{EngineError, Result};

/// Identifies engine stores (`PRAGMA application_id`, ASCII "PCEN"), so that another
/// application's SQLite file is refused instead of being scribbled on.
pub const APPLICATION_ID: i32 = 0x5043_454e;
/// Current schema version (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 2;

/// `events.consolidated`: not yet looked at by consolidation.
pub const PENDING: i64 = 0;
/// `events.consolidated`: part of a fact (`fact_id` set).
pub const IN_FACT: i64 = 1;
/// `events.consolidated`: examined, but its cluster was rejected as noise.
pub const REJECTED: i64 = 2;

const SCHEMA_V1: &str = "
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE facts(
    id INTEGER PRIMARY KEY,
    signature TEXT NOT NULL UNIQUE,
    terms TEXT NOT NULL,
    representative_event INTEGER NOT NULL,
    support INTEGER NOT NULL,
    cohesion REAL NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE events(
    id INTEGER PRIMARY KEY,
    session INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    text TEXT NOT NULL,
    tags TEXT NOT NULL,
    embedding BLOB NOT NULL,
    -- 0 pending, 1 linked to fact_id, 2 examined noise (PENDING, IN_FACT, REJECTED)
    consolidated INTEGER NOT NULL DEFAULT 0,
    fact_id INTEGER REFERENCES facts(id)
);
-- Partial indexes stay tiny: only the backlog, only linked events.
CREATE INDEX events_pending ON events(id) WHERE consolidated = 0;
CREATE INDEX events_fact ON events(fact_id) WHERE fact_id IS NOT NULL;
";

/// Rows per transaction in bulk loads: large enough to amortise the commit, small enough to
/// keep the WAL short.
pub const DEFAULT_BULK_BATCH: usize = 1_000;

/// An event read back for consolidation.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingEvent {
    /// Event id.
    pub id: i64,
    /// Timestamp (seconds).
    pub ts: i64,
    /// Text.
    pub text: String,
    /// Stored embedding.
    pub embedding: Vec<f32>,
}

/// A stored fact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fact {
    /// Fact id.
    pub id: i64,
    /// Unique signature (sorted top salient terms).
    pub signature: String,
    /// Salient terms, most salient first.
    pub terms: Vec<String>,
    /// Event nearest the cluster centroid when the fact was created.
    pub representative_event: i64,
    /// Number of events linked to the fact.
    pub support: i64,
    /// Mean cosine similarity of the founding cluster to its centroid.
    pub cohesion: f64,
    /// Timestamp of the newest founding event (deterministic, unlike wall time).
    pub created_at: i64,
}

/// A fact to be written by [`Store::write_facts`].
#[derive(Debug, Clone, PartialEq)]
pub struct FactDraft {
    /// Unique signature; an existing fact with the same signature absorbs the members.
    pub signature: String,
    /// Salient terms, most salient first.
    pub terms: Vec<String>,
    /// Representative event id.
    pub representative_event: i64,
    /// Mean cosine similarity to the centroid.
    pub cohesion: f64,
    /// Timestamp of the newest member.
    pub created_at: i64,
    /// Member event ids.
    pub members: Vec<i64>,
}

/// What [`Store::write_facts`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FactWriteStats {
    /// Facts inserted as new rows.
    pub created: usize,
    /// Drafts whose signature already existed (members joined the existing fact).
    pub merged: usize,
    /// Events linked to a fact.
    pub linked_events: usize,
    /// Events marked as examined-but-rejected.
    pub rejected_events: usize,
}

/// Read connections opened by default: enough for the cores of a small machine plus one
/// reader waiting on I/O.
pub const DEFAULT_READ_CONNECTIONS: usize = 4;

/// Locks a mutex; a panic while holding it leaves the data usable (an open transaction is
/// rolled back when its guard drops), so poisoning is ignored.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Idle read connections and how many exist.
#[derive(Debug, Default)]
struct PoolState {
    idle: Vec<Connection>,
    opened: usize,
}

/// A bounded pool of read-only connections, opened on first use.
#[derive(Debug)]
struct ReadPool {
    /// `None` when the database is in memory: every connection would see its own empty
    /// database, so reads go through the writer instead.
    path: Option<PathBuf>,
    max: usize,
    state: Mutex<PoolState>,
    returned: Condvar,
    /// Longest a read waits for a connection when all `max` are in use, in nanoseconds.
    wait_ns: AtomicU64,
}

/// A read connection checked out of the pool; goes back on drop.
struct Pooled<'a> {
    pool: &'a ReadPool,
    conn: Option<Connection>,
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            lock(&self.pool.state).idle.push(c);
            self.pool.returned.notify_one();
        }
    }
}

/// Read connections held out of the pool; they go back when this drops.
pub struct HeldReaders<'a> {
    _held: Vec<Pooled<'a>>,
}

impl ReadPool {
    /// A connection, waiting for one to come back when `max` are in use.
    fn get(&self) -> Result<Pooled<'_>> {
        let wait = Duration::from_nanos(self.wait_ns.load(Ordering::Relaxed));
        // Read the clock only once a wait begins: the common path stays clock-free, so
        // instruction counts do not depend on it.
        let mut until: Option<Instant> = None;
        let mut st = lock(&self.state);
        loop {
            if let Some(conn) = st.idle.pop() {
                return Ok(Pooled {
                    pool: self,
                    conn: Some(conn),
                });
            }
            if st.opened < self.max {
                st.opened += 1;
                drop(st);
                // Opened outside the lock: it reads the file header and the schema.
                return match self.open() {
                    Ok(conn) => Ok(Pooled {
                        pool: self,
                        conn: Some(conn),
                    }),
                    Err(e) => {
                        lock(&self.state).opened -= 1;
                        self.returned.notify_one();
                        Err(e)
                    }
                };
            }
            let until = *until.get_or_insert_with(|| Instant::now() + wait);
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                // Exhausted for longer than a read may wait: say so instead of queueing on.
                return Err(EngineError::Unavailable {
                    what: "store reads",
                    reason: format!(
                        "all {} read connections stayed in use for {} ms",
                        self.max,
                        wait.as_millis()
                    ),
                    retry_after: None,
                });
            }
            st = self
                .returned
                .wait_timeout(st, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// `(opened, idle, max)` connections now.
    fn usage(&self) -> (usize, usize, usize) {
        let st = lock(&self.state);
        (st.opened, st.idle.len(), self.max)
    }

    fn open(&self) -> Result<Connection> {
        let path = self.path.as_deref().unwrap_or(Path::new(":memory:"));
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )
        .map_err(|source| EngineError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        conn.busy_timeout(Duration::from_secs(5))?;
        // Read-only by contract, enforced by SQLite: a bug can never write through a reader.
        conn.pragma_update(None, "query_only", true)?;
        // No memory-mapped reads: they halved rerank's cost on a read-only store, but under
        // concurrent writes (every checkpoint that grows the file re-maps it in every reader)
        // they doubled the CPU per operation and quadrupled p99 (measured at 800 ops/s, 100k
        // events: p99 10.8 ms with a 1 GiB map, 3.9 ms without).
        Ok(conn)
    }
}

/// How long a read or a write waits for a connection unless [`Store::set_waits`] says
/// otherwise: long enough never to fail a healthy store.
const DEFAULT_WAIT: Duration = Duration::from_secs(60);

/// How often the background checkpointer copies the WAL back into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// Background WAL checkpoints, so that no writer ever pays for one.
///
/// SQLite's automatic checkpoint runs inside the commit that crosses the threshold, on the
/// writer's connection and, with `synchronous=NORMAL`, with an `fsync`: tens of milliseconds
/// during which our writer lock is held and every remember queues behind it. Instead the
/// writer's auto-checkpoint is off and this thread runs `PASSIVE` checkpoints on its own
/// connection, which never block writers or readers.
#[derive(Debug)]
struct Checkpointer {
    stop: std::sync::Arc<(Mutex<bool>, Condvar)>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    fn start(path: &Path, every: Duration) -> Result<Checkpointer> {
        let conn = Connection::open(path).map_err(|source| EngineError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        conn.busy_timeout(Duration::from_secs(5))?;
        let stop = std::sync::Arc::new((Mutex::new(false), Condvar::new()));
        let flag = std::sync::Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("engine-checkpoint".into())
            .spawn(move || loop {
                let (lock_, cv) = &*flag;
                let stopped = lock(lock_);
                let (stopped, _) = cv
                    .wait_timeout(stopped, every)
                    .unwrap_or_else(PoisonError::into_inner);
                if *stopped {
                    return;
                }
                drop(stopped);
                // Best effort: a busy or failed checkpoint is retried on the next round.
                let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
            })
            .map_err(|e| {
                EngineError::InvalidConfig(format!("cannot start the checkpoint thread: {e}"))
            })?;
        Ok(Checkpointer {
            stop,
            handle: Some(handle),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        *lock(&self.stop.0) = true;
        self.stop.1.notify_all();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The SQLite store: one writer connection and a pool of readers on one file.
#[derive(Debug)]
pub struct Store {
    /// A `parking_lot` mutex for its timed lock: a write waits at most `write_wait_ns`.
    writer: parking_lot::Mutex<Connection>,
    write_wait_ns: AtomicU64,
    readers: ReadPool,
    /// Held by a consolidation from loading its batch to committing its facts.
    consolidation: Mutex<()>,
    /// `None` for in-memory databases (no WAL).
    _checkpointer: Option<Checkpointer>,
    path: PathBuf,
    dim: usize,
}

pub(crate) fn blob_from(v: &[f32]) -> Vec<u8> {
    let mut b = Vec::with_capacity(v.len() * 4);
    for x in v {
        b.extend_from_slice(&x.to_le_bytes());
    }
    b
}

/// An event's stored columns that need encoding: the tags as JSON, the embedding as a blob,
/// and the row checksum over them (every insert writes the same three).
pub(crate) fn encode_row(ev: &NewEvent, embedding: &[f32]) -> Result<(String, Vec<u8>, i64)> {
    let tags = serde_json::to_string(&ev.tags)?;
    let blob = blob_from(embedding);
    let crc = row_checksum(
        ev.session,
        ev.ts,
        ev.text.as_bytes(),
        tags.as_bytes(),
        &blob,
    );
    Ok((tags, blob, crc))
}

pub(crate) fn vec_from(id: i64, blob: &[u8], dim: usize) -> Result<Vec<f32>> {
    if blob.len() != dim * 4 {
        return Err(EngineError::CorruptEmbedding {
            id,
            bytes: blob.len(),
            expected: dim * 4,
        });
    }
    Ok(blob
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

impl Store {
    /// Opens (creating if needed) the store at `path` for `dim`-dimensional embeddings, with
    /// [`DEFAULT_READ_CONNECTIONS`] read connections.
    ///
    /// Refuses files that are not SQLite, SQLite files of other applications, newer schema
    /// versions and stores of another dimension, each with its own error.
    pub fn open(path: &Path, dim: usize) -> Result<Store> {
        Store::open_with_readers(path, dim, DEFAULT_READ_CONNECTIONS)
    }

    /// [`Store::open`] with at most `readers` read connections (at least 1). Concurrent reads
    /// beyond that wait for a connection to come back.
    pub fn open_with_readers(path: &Path, dim: usize, readers: usize) -> Result<Store> {
        Store::open_with(path, dim, readers, Some(CHECKPOINT_EVERY))
    }

    /// [`Store::open_with_readers`] with the background checkpoint period; `None` starts no
    /// checkpoint thread, and the owner calls [`Store::checkpoint`] itself (instruction counts
    /// need that: a timer thread makes the writer's work depend on timing).
    pub fn open_with(
        path: &Path,
        dim: usize,
        readers: usize,
        checkpoint_every: Option<Duration>,
    ) -> Result<Store> {
        let p = path.to_path_buf();
        let open_err = |source: rusqlite::Error| match &source {
            rusqlite::Error::SqliteFailure(e, _) if e.code == ErrorCode::NotADatabase => {
                EngineError::NotADatabase {
                    path: p.clone(),
                    source,
                }
            }
            _ => EngineError::Open {
                path: p.clone(),
                source,
            },
        };
        let conn = Connection::open(path).map_err(open_err)?;
        // The first real read is where SQLite notices a foreign or damaged file.
        let app_id: i32 = conn
            .pragma_query_value(None, "application_id", |r| r.get(0))
            .map_err(open_err)?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(open_err)?;
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(open_err)?;
        if app_id != APPLICATION_ID && (tables > 0 || app_id != 0) {
            return Err(EngineError::ForeignDatabase {
                path: p,
                found: app_id,
            });
        }
        if version > SCHEMA_VERSION {
            return Err(EngineError::SchemaTooNew {
                path: p,
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(open_err)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") && !mode.eq_ignore_ascii_case("memory") {
            return Err(EngineError::InvalidConfig(format!(
                "{}: SQLite refused WAL journal mode (got {mode})",
                path.display()
            )));
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        // WAL is switched on above, before any reader exists (on a fresh file the pragma
        // itself can fail with "database is locked" under contention).
        let wal = mode.eq_ignore_ascii_case("wal");
        let checkpointer = if wal {
            conn.pragma_update(None, "wal_autocheckpoint", 0)
                .map_err(open_err)?;
            // After a bulk load the WAL would otherwise keep its peak size on disk.
            conn.pragma_update(None, "journal_size_limit", 64i64 << 20)
                .map_err(open_err)?;
            match checkpoint_every {
                Some(every) => Some(Checkpointer::start(path, every)?),
                None => None,
            }
        } else {
            None
        };
        let store = Store {
            writer: parking_lot::Mutex::new(conn),
            write_wait_ns: AtomicU64::new(DEFAULT_WAIT.as_nanos() as u64),
            readers: ReadPool {
                path: wal.then(|| p.clone()),
                max: readers.max(1),
                state: Mutex::new(PoolState::default()),
                returned: Condvar::new(),
                wait_ns: AtomicU64::new(DEFAULT_WAIT.as_nanos() as u64),
            },
            consolidation: Mutex::new(()),
            _checkpointer: checkpointer,
            path: p,
            dim,
        };
        store.migrate(version)?;
        store.check_dim()?;
        Ok(store)
    }

    /// Runs `f` on a read connection (the writer for in-memory databases).
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        if self.readers.path.is_none() {
            return f(&*self.writer()?);
        }
        let pooled = self.readers.get()?;
        match &pooled.conn {
            Some(c) => f(c),
            None => unreachable!("a checked-out connection is present until dropped"),
        }
    }

    /// The writer connection, exclusively, waiting at most the write wait for it.
    pub(crate) fn writer(&self) -> Result<parking_lot::MutexGuard<'_, Connection>> {
        let wait = Duration::from_nanos(self.write_wait_ns.load(Ordering::Relaxed));
        self.writer
            .try_lock_for(wait)
            .ok_or_else(|| EngineError::Unavailable {
                what: "store writes",
                reason: format!(
                    "the writer connection stayed in use for {} ms",
                    wait.as_millis()
                ),
                retry_after: None,
            })
    }

    /// How long a write waits for the writer connection and a read for a pooled one before
    /// failing with [`EngineError::Unavailable`], and how long SQLite itself retries a lock
    /// another process holds (its busy timeout) per attempt.
    pub fn set_waits(&self, write: Duration, read: Duration, busy: Duration) -> Result<()> {
        self.write_wait_ns
            .store(write.as_nanos() as u64, Ordering::Relaxed);
        self.readers
            .wait_ns
            .store(read.as_nanos() as u64, Ordering::Relaxed);
        self.writer()?.busy_timeout(busy)?;
        Ok(())
    }

    /// Read connections `(opened, idle, max)` now.
    pub fn pool_usage(&self) -> (usize, usize, usize) {
        self.readers.usage()
    }

    /// Runs `f(connection, is_writer)` on every connection the store has: the writer and
    /// all `max` read connections (opened if need be). Waits until every reader is idle, holding those it
    /// has, so `f` sees each connection alone; fault injection uses it to install SQLite
    /// hooks and limits on the engine's own connections.
    pub fn for_each_connection(
        &self,
        mut f: impl FnMut(&mut Connection, bool) -> Result<()>,
    ) -> Result<()> {
        let mut writer = self.writer()?;
        f(&mut writer, true)?;
        if self.readers.path.is_some() {
            let mut held = Vec::with_capacity(self.readers.max);
            for _ in 0..self.readers.max {
                held.push(self.readers.get()?);
            }
            for p in &mut held {
                if let Some(c) = p.conn.as_mut() {
                    f(c, false)?;
                }
            }
        }
        Ok(())
    }

    /// Checks out every read connection and keeps them until the returned guard drops:
    /// reads then wait, and fail after the read wait (the pool-exhaustion fault).
    pub fn hold_read_connections(&self) -> Result<HeldReaders<'_>> {
        let mut held = Vec::with_capacity(self.readers.max);
        if self.readers.path.is_some() {
            for _ in 0..self.readers.max {
                held.push(self.readers.get()?);
            }
        }
        Ok(HeldReaders { _held: held })
    }

    /// Serialises consolidations (and resets) of this store; see the module docs.
    pub fn consolidation_lock(&self) -> MutexGuard<'_, ()> {
        lock(&self.consolidation)
    }

    /// Brings the schema from `version` to [`SCHEMA_VERSION`], one transaction.
    fn migrate(&self, version: i64) -> Result<()> {
        if version == SCHEMA_VERSION {
            return Ok(());
        }
        let mut conn = self.writer()?;
        let tx = conn.transaction()?;
        if version < 1 {
            tx.execute_batch(SCHEMA_V1)?;
            tx.execute(
                "INSERT INTO meta(key, value) VALUES ('dim', ?1)",
                [self.dim.to_string()],
            )?;
        }
        if version < 2 {
            tx.execute_batch(crate::durability::SCHEMA_V2)?;
        }
        // Future migrations go here as `if version < N { ... }`.
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.commit()?;
        Ok(())
    }

    fn check_dim(&self) -> Result<()> {
        let stored: Option<String> = self
            .writer()?
            .query_row("SELECT value FROM meta WHERE key = 'dim'", [], |r| r.get(0))
            .optional()?;
        let stored = stored.and_then(|s| s.parse::<usize>().ok());
        match stored {
            Some(d) if d == self.dim => Ok(()),
            other => Err(EngineError::DimensionMismatch {
                path: self.path.clone(),
                stored: other.unwrap_or(0),
                configured: self.dim,
            }),
        }
    }

    /// Copies the WAL back into the database now (stores opened without a checkpoint
    /// thread).
    /// The database path.
    pub fn checkpoint(&self) -> Result<()> {
        // PASSIVE: copies what it can without waiting for readers, as the background thread.
        self.writer()?
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Embedding dimension of this store.
    pub fn dim(&self) -> usize {
        self.dim
    }

    fn count(&self, sql: &str) -> Result<u64> {
        let n: i64 = self.read(|c| Ok(c.prepare_cached(sql)?.query_row([], |r| r.get(0))?))?;
        Ok(n.max(0) as u64)
    }

    /// Number of events.
    pub fn event_count(&self) -> Result<u64> {
        self.count("SELECT count(*) FROM events")
    }

    /// Number of facts.
    pub fn fact_count(&self) -> Result<u64> {
        self.count("SELECT count(*) FROM facts")
    }

    /// Number of events not yet examined by consolidation.
    pub fn pending_count(&self) -> Result<u64> {
        self.count("SELECT count(*) FROM events WHERE consolidated = 0")
    }

    /// Largest event timestamp, if any event exists.
    pub fn max_ts(&self) -> Result<Option<i64>> {
        self.read(|c| {
            Ok(c.prepare_cached("SELECT max(ts) FROM events")?
                .query_row([], |r| r.get(0))?)
        })
    }

    /// Inserts events with explicit ids, `batch` rows per transaction.
    pub fn insert_events_bulk<'a, I>(&self, rows: I, batch: usize) -> Result<usize>
    where
        I: IntoIterator<Item = (i64, &'a NewEvent, &'a [f32])>,
    {
        let batch = batch.max(1);
        let mut rows = rows.into_iter().peekable();
        let mut written = 0;
        while rows.peek().is_some() {
            // The writer is taken per batch, so other writers get turns during a long load.
            let mut conn = self.writer()?;
            let tx = conn.transaction()?;
            {
                let mut ins = tx.prepare_cached(
                    "INSERT INTO events(id, session, ts, text, tags, embedding, crc) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?;
                for (id, ev, emb) in rows.by_ref().take(batch) {
                    let (tags, blob, crc) = encode_row(ev, emb)?;
                    ins.execute(params![id, ev.session, ev.ts, ev.text, tags, blob, crc])?;
                    written += 1;
                }
            }
            tx.commit()?;
        }
        Ok(written)
    }

    /// Inserts one event (its own implicit transaction) and returns its new id.
    pub fn insert_event(&self, ev: &NewEvent, embedding: &[f32]) -> Result<i64> {
        // Encoded before the writer is taken: the lock covers only SQLite's own work.
        let (tags, blob, crc) = encode_row(ev, embedding)?;
        let conn = self.writer()?;
        let mut ins = conn.prepare_cached(
            "INSERT INTO events(session, ts, text, tags, embedding, crc) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        ins.execute(params![ev.session, ev.ts, ev.text, tags, blob, crc])?;
        Ok(conn.last_insert_rowid())
    }

    /// Timestamp and text of one event.
    pub fn event_text(&self, id: i64) -> Result<Option<(i64, String)>> {
        self.read(|c| {
            Ok(
                c.prepare_cached("SELECT ts, text FROM events WHERE id = ?1")?
                    .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?,
            )
        })
    }

    /// Timestamp and text of each event in `ids` (aligned; `None` for unknown ids), read on
    /// one connection in one read transaction: one consistent snapshot, one pool checkout.
    pub fn event_texts(&self, ids: &[i64]) -> Result<Vec<Option<(i64, String)>>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // One statement for all ids (SQLite walks the rowid b-tree once per id internally),
        // instead of one statement execution per id. Recall always asks for the same number
        // of candidates, so the prepared statement is cached and reused.
        let mut sql = String::with_capacity(48 + ids.len() * 4);
        sql.push_str("SELECT id, ts, text FROM events WHERE id IN (");
        for i in 0..ids.len() {
            if i > 0 {
                sql.push(',');
            }
            sql.push('?');
        }
        sql.push(')');
        let mut rows: Vec<(i64, i64, String)> = self.read(|c| {
            let mut st = c.prepare_cached(&sql)?;
            let rows = st.query_map(rusqlite::params_from_iter(ids), |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })?;
        rows.sort_unstable_by_key(|r| r.0);
        Ok(ids
            .iter()
            .map(|id| {
                rows.binary_search_by_key(id, |r| r.0)
                    .ok()
                    .map(|i| (rows[i].1, std::mem::take(&mut rows[i].2)))
            })
            .collect())
    }

    /// Id, timestamp and text of the newest `limit` events, newest first (recall's lexical
    /// fallback when no query embedding is available).
    pub fn recent_texts(&self, limit: usize) -> Result<Vec<(i64, i64, String)>> {
        self.read(|c| {
            let mut st =
                c.prepare_cached("SELECT id, ts, text FROM events ORDER BY id DESC LIMIT ?1")?;
            let rows = st.query_map([limit as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// Calls `f(id, embedding)` for every event in id order (index rebuild on open).
    pub fn for_each_embedding(&self, mut f: impl FnMut(i64, &[f32])) -> Result<()> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT id, embedding FROM events ORDER BY id")?;
            let mut rows = st.query([])?;
            while let Some(r) = rows.next()? {
                let id: i64 = r.get(0)?;
                let blob = r.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?;
                f(id, &vec_from(id, blob, self.dim)?);
            }
            Ok(())
        })
    }

    /// Up to `limit` pending events (oldest first) with their embeddings.
    pub fn load_pending(&self, limit: usize) -> Result<Vec<PendingEvent>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT id, ts, text, embedding FROM events WHERE consolidated = 0 ORDER BY id LIMIT ?1",
            )?;
            let mut rows = st.query([i64::try_from(limit).unwrap_or(i64::MAX)])?;
            let mut out = Vec::with_capacity(limit.min(100_000));
            while let Some(r) = rows.next()? {
                let id: i64 = r.get(0)?;
                let blob = r.get_ref(3)?.as_blob().map_err(rusqlite::Error::from)?;
                let embedding = vec_from(id, blob, self.dim)?;
                out.push(PendingEvent {
                    id,
                    ts: r.get(1)?,
                    text: r.get(2)?,
                    embedding,
                });
            }
            Ok(out)
        })
    }

    /// Writes facts and marks events, all in ONE transaction.
    ///
    /// Each draft is `INSERT OR IGNORE`d by signature (so re-running never duplicates a fact),
    /// its members are linked and its support recounted; `rejected` events are marked as
    /// examined. `fail_after` is the test hook of
    /// [`ConsolidateOptions::fail_after_fact_writes`](super::consolidate::ConsolidateOptions):
    /// after that many fact writes an error is returned and the transaction rolls back.
    pub fn write_facts(
        &self,
        drafts: &[FactDraft],
        rejected: &[i64],
        fail_after: Option<usize>,
    ) -> Result<FactWriteStats> {
        let mut stats = FactWriteStats::default();
        let mut conn = self.writer()?;
        let tx = conn.transaction()?;
        {
            let mut ins = tx.prepare_cached(
                "INSERT OR IGNORE INTO facts(signature, terms, representative_event, support, cohesion, created_at) \
                 VALUES (?1, ?2, ?3, 0, ?4, ?5)",
            )?;
            let mut find = tx.prepare_cached("SELECT id FROM facts WHERE signature = ?1")?;
            let mut link = tx
                .prepare_cached("UPDATE events SET consolidated = 1, fact_id = ?1 WHERE id = ?2")?;
            let mut support = tx.prepare_cached(
                "UPDATE facts SET support = (SELECT count(*) FROM events WHERE fact_id = ?1) WHERE id = ?1",
            )?;
            let mut reject = tx.prepare_cached(
                "UPDATE events SET consolidated = 2, fact_id = NULL WHERE id = ?1",
            )?;
            for (written, d) in drafts.iter().enumerate() {
                if fail_after == Some(written) {
                    // Dropping `tx` without commit rolls back everything written so far.
                    return Err(EngineError::InjectedFault(written));
                }
                let terms = serde_json::to_string(&d.terms)?;
                let inserted = ins.execute(params![
                    d.signature,
                    terms,
                    d.representative_event,
                    d.cohesion,
                    d.created_at
                ])?;
                if inserted == 1 {
                    stats.created += 1;
                } else {
                    stats.merged += 1;
                }
                let fact_id: i64 = find.query_row([&d.signature], |r| r.get(0))?;
                for &m in &d.members {
                    stats.linked_events += link.execute(params![fact_id, m])?;
                }
                support.execute([fact_id])?;
            }
            for &id in rejected {
                stats.rejected_events += reject.execute([id])?;
            }
        }
        tx.commit()?;
        Ok(stats)
    }

    /// Un-marks every event and deletes all facts (one transaction; waits for a running
    /// consolidation to finish).
    pub fn reset_consolidation(&self) -> Result<()> {
        let _serial = self.consolidation_lock();
        let mut conn = self.writer()?;
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE events SET consolidated = 0, fact_id = NULL WHERE consolidated != 0 OR fact_id IS NOT NULL",
            [],
        )?;
        tx.execute("DELETE FROM facts", [])?;
        tx.commit()?;
        Ok(())
    }

    /// All facts, by id.
    pub fn facts(&self) -> Result<Vec<Fact>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT id, signature, terms, representative_event, support, cohesion, created_at \
                 FROM facts ORDER BY id",
            )?;
            let mut rows = st.query([])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let terms: String = r.get(2)?;
                out.push(Fact {
                    id: r.get(0)?,
                    signature: r.get(1)?,
                    terms: serde_json::from_str(&terms)?,
                    representative_event: r.get(3)?,
                    support: r.get(4)?,
                    cohesion: r.get(5)?,
                    created_at: r.get(6)?,
                });
            }
            Ok(out)
        })
    }

    /// `(event_id, fact_id)` for every event linked to a fact, by event id.
    pub fn fact_links(&self) -> Result<Vec<(i64, i64)>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT id, fact_id FROM events WHERE fact_id IS NOT NULL ORDER BY id",
            )?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// `(consolidated, count)` per consolidation state, for checks and reports.
    pub fn consolidation_states(&self) -> Result<Vec<(i64, u64)>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT consolidated, count(*) FROM events GROUP BY consolidated ORDER BY consolidated",
            )?;
            let rows =
                st.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)?.max(0) as u64)))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// Every event id, ascending (for reconciliation after concurrent runs).
    pub fn event_ids(&self) -> Result<Vec<i64>> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT id FROM events ORDER BY id")?;
            let rows = st.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// Every fact's recorded `support` next to the number of events actually linked to it,
    /// `(fact_id, support, linked)`; the two agree in a consistent store.
    pub fn fact_support_check(&self) -> Result<Vec<(i64, i64, i64)>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT f.id, f.support, (SELECT count(*) FROM events e WHERE e.fact_id = f.id) \
                 FROM facts f ORDER BY f.id",
            )?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(text: &str, ts: i64) -> NewEvent {
        NewEvent {
            session: 1,
            ts,
            text: text.into(),
            tags: vec!["kind:note".into()],
        }
    }

    #[test]
    fn schema_is_versioned_and_reopen_checks_dimension() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.db");
        {
            let s = Store::open(&path, 4).unwrap();
            let id = s
                .insert_event(&ev("a b", 10), &[1.0, 0.0, 0.0, 0.0])
                .unwrap();
            assert_eq!(id, 1);
            let v: i64 = s
                .writer()
                .unwrap()
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .unwrap();
            assert_eq!(v, SCHEMA_VERSION);
        }
        let s = Store::open(&path, 4).unwrap();
        assert_eq!(s.event_count().unwrap(), 1);
        assert_eq!(s.event_text(1).unwrap(), Some((10, "a b".to_owned())));
        assert_eq!(s.max_ts().unwrap(), Some(10));
        drop(s);
        let e = Store::open(&path, 8).unwrap_err();
        assert!(matches!(
            e,
            EngineError::DimensionMismatch {
                stored: 4,
                configured: 8,
                ..
            }
        ));
    }

    #[test]
    fn foreign_sqlite_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE x(a); INSERT INTO x VALUES (1);")
            .unwrap();
        let e = Store::open(&path, 4).unwrap_err();
        assert!(matches!(e, EngineError::ForeignDatabase { .. }), "{e}");
    }

    #[test]
    fn embeddings_round_trip_and_bad_blobs_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("e.db"), 3).unwrap();
        let evs = [ev("x", 1), ev("y", 2)];
        let embs = [[0.5f32, -1.0, 2.0], [0.0, 0.25, 1.0]];
        let n = s
            .insert_events_bulk(
                evs.iter()
                    .zip(&embs)
                    .enumerate()
                    .map(|(i, (e, v))| (i as i64 + 1, e, &v[..])),
                1,
            )
            .unwrap();
        assert_eq!(n, 2);
        let p = s.load_pending(10).unwrap();
        assert_eq!(p[1].embedding, embs[1].to_vec());
        s.writer()
            .unwrap()
            .execute("UPDATE events SET embedding = x'0102' WHERE id = 2", [])
            .unwrap();
        assert!(matches!(
            s.load_pending(10).unwrap_err(),
            EngineError::CorruptEmbedding {
                id: 2,
                bytes: 2,
                expected: 12
            }
        ));
    }
}
