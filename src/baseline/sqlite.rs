//! The embedded baseline store: one SQLite file (WAL, busy timeout, one transaction per write).
//!
//! Guarantees, and how they are kept:
//! - Reads never write: [`SqliteStore::open_read`] opens the file read-only and never migrates,
//!   so it works on a read-only mount, without write permission and on a full disk (falling
//!   back to SQLite's `immutable` mode when the WAL index cannot be created).
//! - Damage is noticed: every row carries a checksum of its searchable columns (verified for
//!   every row whenever runs are listed or searched), one of its compressed record and one of
//!   the record itself (verified whenever the record is read). A store opened for writing
//!   first passes `PRAGMA integrity_check` (not `quick_check`: that one does not compare the
//!   indexes with the table, so a write could build on a damaged index) and a check of every
//!   row's checksums, so nothing is ever written into a damaged store.
//! - Nothing is dropped silently: saving a run whose id is taken by a different run is an
//!   error; importing one renames it by its content; the same run twice is recognised by its
//!   content checksum.

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use crate::baseline::checksum::{canonical, meta_sum, sha256_hex};
use crate::baseline::{Imported, RunFilter, Saved, Store, StoredRun};
use crate::error::Error;
use crate::record::RunRecord;

/// `PRAGMA application_id` of perfcheck stores ("PCK1"), so a foreign SQLite file is refused.
const APPLICATION_ID: i64 = 0x5043_4b31;
/// Newest schema this build writes and understands.
pub const STORE_VERSION: i64 = 2;
/// How long a writer waits for another process's write to finish.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// Test-only: when set to a path, `save` creates that file inside its open transaction and then
/// waits forever, so a test can kill the process mid-save.
pub const HOLD_SAVE_ENV: &str = "PERFCHECK_TEST_HOLD_SAVE";

/// Schema 1: the first layout (no checksums).
const SCHEMA_1: &str = "CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL UNIQUE,
        commit_sha TEXT,
        branch TEXT,
        dirty INTEGER NOT NULL,
        profile TEXT NOT NULL,
        machine_key TEXT NOT NULL,
        created_at TEXT NOT NULL,
        record_schema INTEGER NOT NULL,
        record_gz BLOB NOT NULL
    );
    CREATE INDEX runs_by_commit ON runs (commit_sha, profile, machine_key);";

/// Schema 2: checksums, and the record last so that searching the other columns never reads
/// the record's overflow pages.
const SCHEMA_2_TABLE: &str = "CREATE TABLE runs_v2 (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL UNIQUE,
        commit_sha TEXT,
        branch TEXT,
        dirty INTEGER NOT NULL,
        profile TEXT NOT NULL,
        machine_key TEXT NOT NULL,
        created_at TEXT NOT NULL,
        record_schema INTEGER NOT NULL,
        record_sha256 TEXT NOT NULL,
        meta_sha256 TEXT NOT NULL,
        gz_sha256 TEXT NOT NULL,
        record_gz BLOB NOT NULL
    )";

/// The searchable columns and checksums of schema 2, in [`Row`] order.
const META_COLUMNS: &str =
    "id, run_id, commit_sha, branch, dirty, profile, machine_key, created_at, \
                            record_schema, record_sha256, meta_sha256, gz_sha256";
/// The same for a schema-1 store (no checksums).
const META_COLUMNS_V1: &str = "id, run_id, commit_sha, branch, dirty, profile, machine_key, \
                               created_at, record_schema, NULL, NULL, NULL";

/// How the store was opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Read-only: no migration, no write.
    Read,
    /// Checked (integrity_check, row checksums) and migrated; may write.
    Write,
}

/// A baseline store in one SQLite file.
pub struct SqliteStore {
    /// A `RefCell` so that a read-only store can swap an `immutable` connection for a normal
    /// one when a writer appears (see [`SqliteStore::open_read`]).
    conn: RefCell<Connection>,
    /// Whether `conn` reads the file in SQLite's `immutable` mode (no locks, no WAL).
    immutable: Cell<bool>,
    path: PathBuf,
    mode: Mode,
    /// Schema of the file as opened (after migration when opened for writing).
    version: i64,
    /// The schema the file had before this process migrated it, if it did.
    migrated_from: Option<i64>,
}

/// One row's searchable part, decoded leniently so a damaged value is reported, not a panic.
struct Row {
    rowid: i64,
    meta: StoredRun,
    record_schema: i64,
    record_sha: Option<String>,
    meta_sha: Option<String>,
    gz_sha: Option<String>,
}

/// A stored run that failed its checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// The run's id as stored (it may itself be damaged), or `row N`.
    pub run: String,
    /// What did not match.
    pub problem: String,
}

/// What [`SqliteStore::salvage`] could read back.
pub struct Salvage {
    /// Runs whose checksums match.
    pub intact: Vec<RunRecord>,
    /// Runs (or parts of the file) that could not be read intact.
    pub damaged: Vec<Damage>,
}

impl SqliteStore {
    /// Opens an existing store read-only. Never creates, migrates or writes anything, so it
    /// works on a read-only mount, without write permission and on a full disk.
    pub fn open_read(path: &Path) -> Result<SqliteStore, Error> {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(no_store(path)),
            Err(e) => {
                return Err(Error::Store {
                    path: path.to_path_buf(),
                    message: format!("cannot read: {e}"),
                })
            }
        };
        check_header(path)?;
        if meta.len() == 0 {
            // An empty file is an empty store; answer from memory rather than touch the file.
            let conn = Connection::open_in_memory().map_err(|e| sql_error(path, e))?;
            conn.execute_batch(&format!(
                "{SCHEMA_2_TABLE}; ALTER TABLE runs_v2 RENAME TO runs;"
            ))
            .map_err(|e| sql_error(path, e))?;
            let store = SqliteStore {
                conn: RefCell::new(conn),
                immutable: Cell::new(false),
                path: path.to_path_buf(),
                mode: Mode::Read,
                version: STORE_VERSION,
                migrated_from: None,
            };
            return Ok(store);
        }
        let (conn, immutable) = read_connection(path)?;
        let header = probe(&conn).map_err(|e| damage_aware(path, e))?;
        let version = check_identity(path, header)?;
        Ok(SqliteStore {
            conn: RefCell::new(conn),
            immutable: Cell::new(immutable),
            path: path.to_path_buf(),
            mode: Mode::Read,
            version,
            migrated_from: None,
        })
    }

    /// Runs a read, repeating it on a normal read-only connection if it ran on an
    /// `immutable` one and a writer appeared meanwhile (its WAL file now exists).
    fn read<T>(&self, f: impl Fn(&SqliteStore) -> Result<T, Error>) -> Result<T, Error> {
        self.leave_immutable_if_written()?;
        let out = f(self);
        if self.leave_immutable_if_written()? {
            return f(self);
        }
        out
    }

    fn leave_immutable_if_written(&self) -> Result<bool, Error> {
        if !self.immutable.get() || !wal_path(&self.path).exists() {
            return Ok(false);
        }
        let conn = Connection::open_with_flags(&self.path, read_flags())
            .map_err(|e| damage_aware(&self.path, e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| sql_error(&self.path, e))?;
        *self.conn.borrow_mut() = conn;
        self.immutable.set(false);
        Ok(true)
    }

    fn conn(&self) -> std::cell::Ref<'_, Connection> {
        self.conn.borrow()
    }

    /// Opens (creating if needed) the store at `path` for writing: checks it (`PRAGMA
    /// integrity_check` and every row's checksum) and migrates older layouts. A damaged store is
    /// refused, with the way to recover what is intact.
    pub fn open_write(path: &Path) -> Result<SqliteStore, Error> {
        let err = |message: String| Error::Store {
            path: path.to_path_buf(),
            message,
        };
        check_header(path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| err(format!("cannot create folder {}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path).map_err(|e| damage_aware(path, e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| sql_error(path, e))?;
        let mut store = SqliteStore {
            conn: RefCell::new(conn),
            immutable: Cell::new(false),
            path: path.to_path_buf(),
            mode: Mode::Write,
            version: 0,
            migrated_from: None,
        };
        let header = probe(&store.conn()).map_err(|e| damage_aware(path, e))?;
        let version = check_identity(path, header)?;
        store.version = version;
        // Every check before the first write: a damaged store is left exactly as it was.
        if header.tables > 0 {
            store.integrity_check()?;
            let damaged = store.damaged_rows()?;
            if !damaged.is_empty() {
                return Err(store.damaged(&damaged));
            }
        }
        store.enable_wal()?;
        if version < STORE_VERSION || header.app != APPLICATION_ID {
            store.migrate()?;
        }
        Ok(store)
    }

    /// Opens an existing store for writing; a missing file is an error, not a new store.
    pub fn open_existing_write(path: &Path) -> Result<SqliteStore, Error> {
        if !path.exists() {
            return Err(no_store(path));
        }
        SqliteStore::open_write(path)
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema this process migrated the file from, if it migrated it (say so once).
    pub fn migrated_from(&self) -> Option<i64> {
        self.migrated_from
    }

    /// Checks the whole file (`PRAGMA integrity_check`) and every stored run completely
    /// (searchable columns and record); what is damaged.
    pub fn verify(&self) -> Result<Vec<Damage>, Error> {
        self.read(SqliteStore::verify_now)
    }

    fn verify_now(&self) -> Result<Vec<Damage>, Error> {
        let mut damaged = Vec::new();
        let problems: Vec<String> = self
            .conn()
            .prepare("PRAGMA integrity_check")
            .and_then(|mut s| s.query_map([], |r| r.get::<_, String>(0))?.collect())
            .map_err(|e| damage_aware(&self.path, e))?;
        if problems != ["ok"] {
            damaged.push(Damage {
                run: "the file".into(),
                problem: format!("SQLite's integrity_check found: {}", problems.join("; ")),
            });
        }
        let rows = self.rows()?;
        for row in &rows {
            if let Err(problem) = self
                .check_row(row)
                .and_then(|_| self.load_row(row).map(|_| ()))
            {
                damaged.push(Damage {
                    run: row.label(),
                    problem,
                });
            }
        }
        Ok(damaged)
    }

    /// Reads back every run that is intact, and names what is not: the first step of
    /// recovering a damaged store (export these, import them into a new store).
    pub fn salvage(&self) -> Salvage {
        // Best effort by nature: a swap that fails leaves the immutable view, still intact.
        let _ = self.leave_immutable_if_written();
        let out = self.salvage_now();
        match self.leave_immutable_if_written() {
            Ok(true) => self.salvage_now(),
            _ => out,
        }
    }

    fn salvage_now(&self) -> Salvage {
        let mut out = Salvage {
            intact: Vec::new(),
            damaged: Vec::new(),
        };
        let rowids = match self.rowids() {
            Ok(ids) => ids,
            Err((ids, e)) => {
                out.damaged.push(Damage {
                    run: "the runs table".into(),
                    problem: format!("could not be read past {} rows: {e}", ids.len()),
                });
                ids
            }
        };
        for rowid in rowids {
            let row = match self.row_by_rowid(rowid) {
                Ok(row) => row,
                Err(problem) => {
                    out.damaged.push(Damage {
                        run: format!("row {rowid}"),
                        problem,
                    });
                    continue;
                }
            };
            match self.check_row(&row).and_then(|_| self.load_row(&row)) {
                Ok(rec) => out.intact.push(rec),
                Err(problem) => out.damaged.push(Damage {
                    run: row.label(),
                    problem,
                }),
            }
        }
        out
    }

    fn writable(&self) -> Result<(), Error> {
        match self.mode {
            Mode::Write => Ok(()),
            Mode::Read => Err(Error::Store {
                path: self.path.clone(),
                message: "opened read-only; this is a bug in perfcheck (a write on a read path)"
                    .into(),
            }),
        }
    }

    fn integrity_check(&self) -> Result<(), Error> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("PRAGMA integrity_check")
            .map_err(|e| damage_aware(&self.path, e))?;
        let problems: Vec<String> = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| damage_aware(&self.path, e))?;
        if problems.len() == 1 && problems[0] == "ok" {
            return Ok(());
        }
        let first: Vec<&str> = problems.iter().take(3).map(String::as_str).collect();
        Err(self.damaged(&[Damage {
            run: "the file".into(),
            problem: format!("SQLite's integrity_check found: {}", first.join("; ")),
        }]))
    }

    fn enable_wal(&mut self) -> Result<(), Error> {
        // On a brand-new file two processes may race to switch the journal mode; the busy
        // timeout does not cover that pragma, so retry briefly.
        let mut last = None;
        for attempt in 0..100 {
            match self
                .conn()
                .query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
            {
                Ok(_) => {
                    last = None;
                    break;
                }
                Err(e) if is_busy(&e) => {
                    last = Some(e);
                    std::thread::sleep(Duration::from_millis(20 * (attempt + 1).min(10)));
                }
                Err(e) => return Err(damage_aware(&self.path, e)),
            }
        }
        if let Some(e) = last {
            return Err(damage_aware(&self.path, e));
        }
        self.conn()
            .execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
            .map_err(|e| damage_aware(&self.path, e))
    }

    /// Brings the file to [`STORE_VERSION`] in one transaction (concurrent openers wait, then
    /// find it migrated).
    fn migrate(&mut self) -> Result<(), Error> {
        let path = self.path.clone();
        let tx = self
            .conn
            .get_mut()
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| damage_aware(&path, e))?;
        let header = probe(&tx).map_err(|e| damage_aware(&path, e))?;
        let version = check_identity(&path, header)?;
        if version == 0 {
            tx.execute_batch(SCHEMA_1)
                .map_err(|e| sql_error(&path, e))?;
            tx.pragma_update(None, "user_version", 1)
                .map_err(|e| sql_error(&path, e))?;
        }
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(|e| sql_error(&path, e))?;
        tx.commit().map_err(|e| sql_error(&path, e))?;
        self.version = version.max(1);
        if self.version == 1 {
            self.migrate_1_to_2()?;
            // A brand-new file is created, not migrated: nothing to announce.
            if version == 1 {
                self.migrated_from = Some(1);
            }
        }
        Ok(())
    }

    /// Schema 1 -> 2: re-encodes every record canonically and adds both checksums.
    fn migrate_1_to_2(&mut self) -> Result<(), Error> {
        let path = self.path.clone();
        let tx = self
            .conn
            .get_mut()
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| damage_aware(&path, e))?;
        let v: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| damage_aware(&path, e))?;
        if v != 1 {
            // Another process migrated it while this one waited.
            self.version = v;
            return Ok(());
        }
        tx.execute_batch(SCHEMA_2_TABLE)
            .map_err(|e| sql_error(&path, e))?;
        let old: Vec<(i64, String, Vec<u8>)> = {
            let mut stmt = tx
                .prepare("SELECT id, run_id, record_gz FROM runs ORDER BY id")
                .map_err(|e| damage_aware(&path, e))?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(|e| damage_aware(&path, e))?;
            rows
        };
        for (id, run_id, gz) in old {
            let record = decompress(&gz)
                .map_err(|e| e.to_string())
                .and_then(|json| {
                    RunRecord::from_json(&json, &format!("run {run_id}")).map_err(|e| e.to_string())
                })
                .map_err(|problem| {
                    let d = Damage {
                        run: run_id.clone(),
                        problem: format!("cannot be migrated: {problem}"),
                    };
                    damaged_error(&path, &[d])
                })?;
            insert_row(&tx, "runs_v2", Some(id), &record).map_err(|e| sql_error(&path, e))?;
        }
        tx.execute_batch(
            "DROP TABLE runs;
             ALTER TABLE runs_v2 RENAME TO runs;
             CREATE INDEX runs_by_commit ON runs (commit_sha, profile, machine_key);",
        )
        .map_err(|e| sql_error(&path, e))?;
        tx.pragma_update(None, "user_version", 2)
            .map_err(|e| sql_error(&path, e))?;
        tx.commit().map_err(|e| sql_error(&path, e))?;
        self.version = 2;
        Ok(())
    }

    fn meta_columns(&self) -> &'static str {
        if self.version >= 2 {
            META_COLUMNS
        } else {
            META_COLUMNS_V1
        }
    }

    /// Every row's searchable part, in storage order. Reads bypass the indexes (`NOT
    /// INDEXED`): a damaged index entry must not hide a run, and the table is small.
    fn rows(&self) -> Result<Vec<Row>, Error> {
        let sql = format!(
            "SELECT {} FROM runs NOT INDEXED ORDER BY id",
            self.meta_columns()
        );
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&sql)
            .map_err(|e| damage_aware(&self.path, e))?;
        let mut rows = stmt.query([]).map_err(|e| damage_aware(&self.path, e))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(|e| damage_aware(&self.path, e))? {
            match decode_row(r) {
                Ok(row) => out.push(row),
                Err(problem) => {
                    let rowid = r.get::<_, i64>(0).unwrap_or(-1);
                    return Err(self.damaged(&[Damage {
                        run: format!("row {rowid}"),
                        problem,
                    }]));
                }
            }
        }
        Ok(out)
    }

    fn rowids(&self) -> Result<Vec<i64>, (Vec<i64>, rusqlite::Error)> {
        let mut ids = Vec::new();
        let conn = self.conn();
        let mut stmt = match conn.prepare("SELECT id FROM runs NOT INDEXED ORDER BY id") {
            Ok(s) => s,
            Err(e) => return Err((ids, e)),
        };
        let mut rows = match stmt.query([]) {
            Ok(r) => r,
            Err(e) => return Err((ids, e)),
        };
        loop {
            match rows.next() {
                Ok(Some(r)) => match r.get::<_, i64>(0) {
                    Ok(id) => ids.push(id),
                    Err(e) => return Err((ids, e)),
                },
                Ok(None) => return Ok(ids),
                Err(e) => return Err((ids, e)),
            }
        }
    }

    fn row_by_rowid(&self, rowid: i64) -> Result<Row, String> {
        let sql = format!("SELECT {} FROM runs WHERE id = ?1", self.meta_columns());
        self.conn()
            .query_row(&sql, [rowid], |r| Ok(decode_row(r)))
            .map_err(|e| e.to_string())?
    }

    /// Rows whose searchable columns or compressed record do not match their checksums (what
    /// a write must not build on; cheaper than decompressing every record).
    fn damaged_rows(&self) -> Result<Vec<Damage>, Error> {
        Ok(self
            .rows()?
            .iter()
            .filter_map(|row| {
                let checked = self.check_row(row).and_then(|_| self.blob(row).map(|_| ()));
                checked.err().map(|problem| Damage {
                    run: row.label(),
                    problem,
                })
            })
            .collect())
    }

    /// Verifies a row's searchable columns against their checksum (schema 2 stores).
    fn check_row(&self, row: &Row) -> Result<(), String> {
        let (Some(record_sha), Some(meta_sha), Some(gz_sha)) =
            (&row.record_sha, &row.meta_sha, &row.gz_sha)
        else {
            return Ok(()); // a schema-1 store read without migrating: no checksums yet
        };
        if &meta_sum(&row.meta, row.record_schema, record_sha, gz_sha) != meta_sha {
            return Err(
                "its searchable columns (commit, profile, machine, dirty, ...) do not match \
                 their checksum"
                    .into(),
            );
        }
        Ok(())
    }

    /// Reads and verifies one row's record.
    fn blob(&self, row: &Row) -> Result<Vec<u8>, String> {
        let gz: Vec<u8> = self
            .conn()
            .query_row(
                "SELECT record_gz FROM runs WHERE id = ?1",
                [row.rowid],
                |r| match r.get_ref(0)? {
                    ValueRef::Blob(b) => Ok(Ok(b.to_vec())),
                    other => Ok(Err(format!(
                        "its record is stored as {:?}, not a blob",
                        other.data_type()
                    ))),
                },
            )
            .map_err(|e| e.to_string())??;
        if let Some(sum) = &row.gz_sha {
            if &sha256_hex(&gz) != sum {
                return Err("its compressed record does not match its checksum".into());
            }
        }
        Ok(gz)
    }

    /// Reads and verifies one row's record.
    fn load_row(&self, row: &Row) -> Result<RunRecord, String> {
        let gz = self.blob(row)?;
        let json =
            decompress(&gz).map_err(|e| format!("its record cannot be decompressed: {e}"))?;
        if let Some(sum) = &row.record_sha {
            if &sha256_hex(&json) != sum {
                return Err("its record does not match its checksum".into());
            }
        }
        let record = RunRecord::from_json(&json, &format!("run {}", row.meta.run_id))
            .map_err(|e| format!("its record cannot be read: {e}"))?;
        if StoredRun::of(&record) != row.meta {
            return Err("its record disagrees with its searchable columns".into());
        }
        Ok(record)
    }

    fn damaged(&self, damage: &[Damage]) -> Error {
        damaged_error(&self.path, damage)
    }
}

impl Row {
    fn label(&self) -> String {
        if self.meta.run_id.is_empty() {
            format!("row {}", self.rowid)
        } else {
            self.meta.run_id.clone()
        }
    }
}

impl Store for SqliteStore {
    fn save(&mut self, record: &RunRecord) -> Result<Saved, Error> {
        super::ensure_fair(record)?;
        self.writable()?;
        let path = self.path.clone();
        let (_, sum) = canonical(record)?;
        let tx = self
            .conn
            .get_mut()
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| damage_aware(&path, e))?;
        let saved = match stored_sum(&tx, &record.run_id).map_err(|e| damage_aware(&path, e))? {
            Some(s) if s == sum => Saved::AlreadyPresent,
            Some(_) => {
                return Err(Error::Store {
                    path,
                    message: format!(
                        "a different run with id {} is already stored; nothing was saved",
                        record.run_id
                    ),
                })
            }
            None => {
                insert_row(&tx, "runs", None, record).map_err(|e| damage_aware(&path, e))?;
                hold_if_asked();
                Saved::Inserted
            }
        };
        tx.commit().map_err(|e| damage_aware(&path, e))?;
        // Read it back: a save that did not store what it was given must never look like one.
        match stored_sum(&self.conn(), &record.run_id).map_err(|e| damage_aware(&path, e))? {
            Some(s) if s == sum => Ok(saved),
            _ => Err(Error::Store {
                path,
                message: format!(
                    "run {} was not stored (read-back found no match)",
                    record.run_id
                ),
            }),
        }
    }

    fn save_all(&mut self, records: &[RunRecord]) -> Result<Imported, Error> {
        records.iter().try_for_each(super::ensure_fair)?;
        self.writable()?;
        let path = self.path.clone();
        let tx = self
            .conn
            .get_mut()
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| damage_aware(&path, e))?;
        let mut out = Imported::default();
        for r in records {
            let (_, sum) = canonical(r)?;
            match stored_sum(&tx, &r.run_id).map_err(|e| damage_aware(&path, e))? {
                None => {
                    insert_row(&tx, "runs", None, r).map_err(|e| damage_aware(&path, e))?;
                    out.inserted.push(r.run_id.clone());
                }
                Some(s) if s == sum => out.already += 1,
                Some(_) => {
                    // A different run under the same id (runs saved in the same second by an
                    // older perfcheck): keep both, naming this one by its content.
                    let mut renamed = r.clone();
                    renamed.run_id = format!("{}-{}", r.run_id, &sum[..8]);
                    let (_, sum2) = canonical(&renamed)?;
                    match stored_sum(&tx, &renamed.run_id).map_err(|e| damage_aware(&path, e))? {
                        None => {
                            insert_row(&tx, "runs", None, &renamed)
                                .map_err(|e| damage_aware(&path, e))?;
                            out.renamed.push((r.run_id.clone(), renamed.run_id.clone()));
                            out.inserted.push(renamed.run_id);
                        }
                        Some(s) if s == sum2 => out.already += 1,
                        Some(_) => {
                            return Err(Error::Store {
                                path,
                                message: format!(
                                "runs {} and {} are both taken by other runs; nothing was imported",
                                r.run_id, renamed.run_id
                            ),
                            })
                        }
                    }
                }
            }
        }
        tx.commit().map_err(|e| damage_aware(&path, e))?;
        Ok(out)
    }

    fn list(&self, filter: &RunFilter) -> Result<Vec<StoredRun>, Error> {
        self.read(|s| s.list_now(filter))
    }

    fn load(&self, run_id: &str) -> Result<Option<RunRecord>, Error> {
        self.read(|s| s.load_now(run_id))
    }

    fn delete(&mut self, run_id: &str) -> Result<bool, Error> {
        self.writable()?;
        let n = self
            .conn()
            .execute("DELETE FROM runs WHERE run_id = ?1", [run_id])
            .map_err(|e| damage_aware(&self.path, e))?;
        Ok(n > 0)
    }
}

impl SqliteStore {
    fn list_now(&self, filter: &RunFilter) -> Result<Vec<StoredRun>, Error> {
        let rows = self.rows()?;
        let damaged: Vec<Damage> = rows
            .iter()
            .filter_map(|row| {
                self.check_row(row).err().map(|problem| Damage {
                    run: row.label(),
                    problem,
                })
            })
            .collect();
        // A damaged row could be any commit's run: answering without it could quietly use
        // fewer baseline runs, or find none, so the whole answer is refused.
        if !damaged.is_empty() {
            return Err(self.damaged(&damaged));
        }
        let mut runs: Vec<(i64, StoredRun)> = rows
            .into_iter()
            .filter(|row| filter.matches(&row.meta))
            .map(|row| (row.rowid, row.meta))
            .collect();
        runs.sort_by(|a, b| a.1.created_at.cmp(&b.1.created_at).then(a.0.cmp(&b.0)));
        Ok(runs.into_iter().map(|(_, m)| m).collect())
    }

    fn load_now(&self, run_id: &str) -> Result<Option<RunRecord>, Error> {
        let rows = self.rows()?;
        let Some(row) = rows.iter().find(|r| r.meta.run_id == run_id) else {
            return Ok(None);
        };
        self.check_row(row)
            .and_then(|_| self.load_row(row))
            .map(Some)
            .map_err(|problem| {
                self.damaged(&[Damage {
                    run: row.label(),
                    problem,
                }])
            })
    }
}

/// The file's identity fields, read without a transaction.
#[derive(Clone, Copy)]
struct Header {
    app: i64,
    version: i64,
    tables: i64,
}

/// One statement, so all three come from one snapshot: read separately, they could straddle
/// another process's creation of the store (tables present, application_id not yet seen).
fn probe(conn: &Connection) -> rusqlite::Result<Header> {
    conn.query_row(
        "SELECT (SELECT application_id FROM pragma_application_id()),
                (SELECT user_version FROM pragma_user_version()),
                (SELECT count(*) FROM sqlite_master)",
        [],
        |r| {
            Ok(Header {
                app: r.get(0)?,
                version: r.get(1)?,
                tables: r.get(2)?,
            })
        },
    )
}

/// Refuses foreign, newer or inconsistent files; returns the schema version.
fn check_identity(path: &Path, h: Header) -> Result<i64, Error> {
    let err = |message: String| Error::Store {
        path: path.to_path_buf(),
        message,
    };
    if h.tables == 0 && h.version == 0 {
        return Ok(0); // a new, empty file
    }
    if h.app != APPLICATION_ID {
        return Err(err(
            "this SQLite database was not made by perfcheck (its application_id differs); pass \
             another file with --store"
                .into(),
        ));
    }
    if h.version > STORE_VERSION {
        return Err(err(format!(
            "store schema {} was written by a newer perfcheck (this one reads up to {STORE_VERSION})",
            h.version
        )));
    }
    if h.version < 1 || h.tables == 0 {
        return Err(damaged_error(
            path,
            &[Damage {
                run: "the file header".into(),
                problem: format!(
                    "schema version {} with {} tables is not a state perfcheck writes",
                    h.version, h.tables
                ),
            }],
        ));
    }
    Ok(h.version)
}

/// The record checksum stored under `run_id`, if any (through the unique index: writes trust
/// the index because `integrity_check` passed when the store was opened).
fn stored_sum(conn: &Connection, run_id: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT record_sha256 FROM runs WHERE run_id = ?1",
        [run_id],
        |r| r.get(0),
    )
    .optional()
}

fn insert_row(
    conn: &Connection,
    table: &str,
    rowid: Option<i64>,
    record: &RunRecord,
) -> rusqlite::Result<usize> {
    let (json, sum) =
        canonical(record).map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?;
    let blob = compress(&json).map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?;
    let meta = StoredRun::of(record);
    let schema = i64::from(record.schema);
    let gz_sha = sha256_hex(&blob);
    let meta_sha = meta_sum(&meta, schema, &sum, &gz_sha);
    conn.prepare_cached(&format!(
        "INSERT INTO {table} (id, run_id, commit_sha, branch, dirty, profile, machine_key,
             created_at, record_schema, record_sha256, meta_sha256, gz_sha256, record_gz)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
    ))?
    .execute(params![
        rowid,
        meta.run_id,
        meta.commit,
        meta.branch,
        meta.dirty,
        meta.profile,
        meta.machine_key,
        meta.created_at,
        schema,
        sum,
        meta_sha,
        gz_sha,
        blob
    ])
}

/// Decodes a row of [`META_COLUMNS`] without trusting the stored types.
fn decode_row(r: &rusqlite::Row<'_>) -> Result<Row, String> {
    let int = |i: usize| -> Result<i64, String> {
        match r.get_ref(i).map_err(|e| e.to_string())? {
            ValueRef::Integer(v) => Ok(v),
            other => Err(format!(
                "column {i} holds {:?}, not an integer",
                other.data_type()
            )),
        }
    };
    let text = |i: usize| -> Result<Option<String>, String> {
        match r.get_ref(i).map_err(|e| e.to_string())? {
            ValueRef::Null => Ok(None),
            ValueRef::Text(t) => std::str::from_utf8(t)
                .map(|s| Some(s.to_owned()))
                .map_err(|_| format!("column {i} is not valid UTF-8")),
            other => Err(format!(
                "column {i} holds {:?}, not text",
                other.data_type()
            )),
        }
    };
    let required = |i: usize| -> Result<String, String> {
        text(i)?.ok_or_else(|| format!("column {i} is empty"))
    };
    let rowid = int(0)?;
    let run_id = required(1).map_err(|e| format!("row {rowid}: {e}"))?;
    let at = |e: String| format!("run {run_id}: {e}");
    let meta = StoredRun {
        commit: text(2).map_err(at)?,
        branch: text(3).map_err(at)?,
        dirty: match int(4).map_err(at)? {
            0 => false,
            1 => true,
            v => return Err(at(format!("dirty flag {v} is neither 0 nor 1"))),
        },
        profile: required(5).map_err(at)?,
        machine_key: required(6).map_err(at)?,
        created_at: required(7).map_err(at)?,
        run_id: run_id.clone(),
    };
    Ok(Row {
        rowid,
        meta,
        record_schema: int(8).map_err(at)?,
        record_sha: text(9).map_err(at)?,
        meta_sha: text(10).map_err(at)?,
        gz_sha: text(11).map_err(at)?,
    })
}

fn sql_error(path: &Path, e: rusqlite::Error) -> Error {
    Error::Store {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// A SQLite error, recognising the codes that mean damage.
fn damage_aware(path: &Path, e: rusqlite::Error) -> Error {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::NotADatabase
                || f.code == rusqlite::ErrorCode::DatabaseCorrupt =>
        {
            damaged_error(
                path,
                &[Damage {
                    run: "the file".into(),
                    problem: e.to_string(),
                }],
            )
        }
        _ => sql_error(path, e),
    }
}

/// The error for a damaged store: what is damaged, that nothing was written, how to recover.
fn damaged_error(path: &Path, damage: &[Damage]) -> Error {
    let what: Vec<String> = damage
        .iter()
        .take(5)
        .map(|d| format!("{}: {}", d.run, d.problem))
        .collect();
    let more = damage.len().saturating_sub(5);
    let p = path.display();
    Error::Damaged {
        path: path.to_path_buf(),
        message: format!(
            "{}{}. Nothing was written. To recover the intact runs: `cargo perfcheck baseline \
             export --skip-damaged --store {p} -o intact.json`, then `cargo perfcheck baseline \
             import intact.json --store NEW.sqlite` and use the new file (keep this one to \
             inspect)",
            what.join("; "),
            if more > 0 {
                format!(" (and {more} more)")
            } else {
                String::new()
            }
        ),
    }
}

/// The error for a store file that does not exist (read commands never create one).
fn no_store(path: &Path) -> Error {
    Error::Store {
        path: path.to_path_buf(),
        message: "no such store yet (`cargo perfcheck run --save` creates it; check --store, \
                  PERFCHECK_STORE and perfcheck.toml)"
            .into(),
    }
}

fn read_flags() -> OpenFlags {
    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX
}

fn wal_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push("-wal");
    PathBuf::from(p)
}

/// A read-only connection that leaves the folder as it found it. With no WAL file beside the
/// store no connection has it open, so SQLite's `immutable` mode reads the file as it is and
/// creates nothing (a normal read-only connection would leave `-wal` and `-shm` files behind,
/// and cannot open at all on a read-only mount or a full disk). With a WAL file, a writer may
/// be active: a normal read-only connection sees its committed work.
fn read_connection(path: &Path) -> Result<(Connection, bool), Error> {
    let (conn, immutable) = if wal_path(path).exists() {
        match Connection::open_with_flags(path, read_flags()).and_then(|c| probe(&c).map(|_| c)) {
            Ok(c) => (c, false),
            // The WAL index cannot be created (read-only folder or mount, full disk): nobody
            // can be writing through this path either.
            Err(e) if needs_immutable(&e) => (open_immutable(path)?, true),
            Err(e) => return Err(damage_aware(path, e)),
        }
    } else {
        (open_immutable(path)?, true)
    };
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| sql_error(path, e))?;
    Ok((conn, immutable))
}

fn open_immutable(path: &Path) -> Result<Connection, Error> {
    Connection::open_with_flags(immutable_uri(path), read_flags())
        .map_err(|e| damage_aware(path, e))
}

fn needs_immutable(e: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode as C;
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if matches!(f.code, C::CannotOpen | C::ReadOnly | C::SystemIoFailure | C::DiskFull))
}

/// `file:<path>?immutable=1`, with the characters that a URI path cannot hold escaped.
fn immutable_uri(path: &Path) -> String {
    let mut uri = String::from("file:");
    for b in path.as_os_str().as_encoded_bytes() {
        match *b {
            b'%' | b'?' | b'#' => uri.push_str(&format!("%{b:02X}")),
            b if b.is_ascii() => uri.push(char::from(b)),
            b => uri.push_str(&format!("%{b:02X}")),
        }
    }
    uri.push_str("?immutable=1");
    uri
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.code == rusqlite::ErrorCode::DatabaseBusy || f.code == rusqlite::ErrorCode::DatabaseLocked)
}

/// Refuses, before SQLite touches it, a non-empty file that is not a SQLite database.
fn check_header(path: &Path) -> Result<(), Error> {
    let mut head = [0u8; 16];
    let n = match std::fs::File::open(path) {
        Ok(mut f) => f.read(&mut head).map_err(|e| Error::Store {
            path: path.to_path_buf(),
            message: format!("cannot read: {e}"),
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(Error::Store {
                path: path.to_path_buf(),
                message: format!("cannot open: {e}"),
            })
        }
    };
    // An empty file is a new store; anything else must carry SQLite's 16-byte header.
    if n > 0 && head[..n] != b"SQLite format 3\0"[..] {
        return Err(Error::Store {
            path: path.to_path_buf(),
            message: "not a SQLite database (expected a perfcheck baseline store); pass another \
                      file with --store or move this one away"
                .into(),
        });
    }
    Ok(())
}

fn compress(json: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = GzEncoder::new(
        Vec::with_capacity(json.len() / 4),
        flate2::Compression::fast(),
    );
    enc.write_all(json)?;
    enc.finish()
}

fn decompress(gz: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut json = Vec::new();
    GzDecoder::new(gz).read_to_end(&mut json)?;
    Ok(json)
}

fn hold_if_asked() {
    if let Some(marker) = std::env::var_os(HOLD_SAVE_ENV) {
        let _ = std::fs::write(marker, b"holding");
        loop {
            std::thread::park();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn immutable_uri_escapes_what_a_uri_path_cannot_hold() {
        assert_eq!(
            immutable_uri(Path::new("/tmp/a b/50%?#.sqlite")),
            "file:/tmp/a b/50%25%3F%23.sqlite?immutable=1"
        );
        assert_eq!(
            immutable_uri(Path::new("/tmp/é")),
            "file:/tmp/%C3%A9?immutable=1"
        );
    }
}
