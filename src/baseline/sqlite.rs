//! The embedded baseline store: one SQLite file (WAL, busy timeout, one transaction per write).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::baseline::{RunFilter, Saved, Store, StoredRun};
use crate::error::Error;
use crate::record::RunRecord;

/// `PRAGMA application_id` of perfcheck stores ("PCK1"), so a foreign SQLite file is refused.
const APPLICATION_ID: i64 = 0x5043_4b31;
/// Newest schema this build writes and understands.
pub const STORE_VERSION: i64 = 1;
/// How long a writer waits for another process's write to finish.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Test-only: when set to a path, `save` creates that file inside its open transaction and then
/// waits forever, so a test can kill the process mid-save.
pub const HOLD_SAVE_ENV: &str = "PERFCHECK_TEST_HOLD_SAVE";

/// Schema migrations; entry `i` moves a store from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &["CREATE TABLE runs (
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
    CREATE INDEX runs_by_commit ON runs (commit_sha, profile, machine_key);"];

/// A baseline store in one SQLite file.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path`, migrating older layouts.
    pub fn open(path: &Path) -> Result<SqliteStore, Error> {
        let err = |message: String| Error::Store {
            path: path.to_path_buf(),
            message,
        };
        check_header(path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| err(format!("cannot create folder {}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path).map_err(|e| err(e.to_string()))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| err(e.to_string()))?;
        let mut store = SqliteStore {
            conn,
            path: path.to_path_buf(),
        };
        store.enable_wal()?;
        store.migrate()?;
        Ok(store)
    }

    /// Opens the store at `path` only if the file exists: read-only commands never create a
    /// stray store because of a mistyped path.
    pub fn open_existing(path: &Path) -> Result<SqliteStore, Error> {
        if !path.exists() {
            return Err(Error::Store {
                path: path.to_path_buf(),
                message: "no such store yet (`cargo perfcheck run --save` creates it; check                           --store, PERFCHECK_STORE and perfcheck.toml)"
                    .into(),
            });
        }
        SqliteStore::open(path)
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sql_err(&self, e: rusqlite::Error) -> Error {
        let message = match &e {
            rusqlite::Error::SqliteFailure(f, _)
                if f.code == rusqlite::ErrorCode::NotADatabase
                    || f.code == rusqlite::ErrorCode::DatabaseCorrupt =>
            {
                format!("{e}: the file is damaged or not a perfcheck baseline store")
            }
            _ => e.to_string(),
        };
        Error::Store {
            path: self.path.clone(),
            message,
        }
    }

    fn enable_wal(&mut self) -> Result<(), Error> {
        // On a brand-new file two processes may race to switch the journal mode; the busy
        // timeout does not cover that pragma, so retry briefly.
        let mut last = None;
        for attempt in 0..50 {
            match self
                .conn
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
                Err(e) => return Err(self.sql_err(e)),
            }
        }
        if let Some(e) = last {
            return Err(self.sql_err(e));
        }
        self.conn
            .execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
            .map_err(|e| self.sql_err(e))
    }

    fn migrate(&mut self) -> Result<(), Error> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| sql_error(&path, e))?;
        let app: i64 = tx
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(|e| sql_error(&path, e))?;
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| sql_error(&path, e))?;
        let tables: i64 = tx
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(|e| sql_error(&path, e))?;
        if app != APPLICATION_ID && tables > 0 {
            return Err(Error::Store {
                path,
                message: "this SQLite database was not made by perfcheck (its application_id \
                          differs); pass another file with --store"
                    .into(),
            });
        }
        if version > STORE_VERSION {
            return Err(Error::Store {
                path,
                message: format!(
                    "store schema {version} was written by a newer perfcheck (this one reads up to {STORE_VERSION})"
                ),
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(sql).map_err(|e| sql_error(&path, e))?;
            tx.pragma_update(None, "user_version", i as i64 + 1)
                .map_err(|e| sql_error(&path, e))?;
        }
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(|e| sql_error(&path, e))?;
        tx.commit().map_err(|e| sql_error(&path, e))
    }

    fn insert(tx: &rusqlite::Transaction<'_>, record: &RunRecord) -> rusqlite::Result<usize> {
        let meta = StoredRun::of(record);
        let blob =
            compress(record).map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?;
        tx.prepare_cached(
            "INSERT OR IGNORE INTO runs (run_id, commit_sha, branch, dirty, profile, machine_key,
                 created_at, record_schema, record_gz)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            meta.run_id,
            meta.commit,
            meta.branch,
            meta.dirty,
            meta.profile,
            meta.machine_key,
            meta.created_at,
            record.schema,
            blob
        ])
    }
}

impl Store for SqliteStore {
    fn save(&mut self, record: &RunRecord) -> Result<Saved, Error> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| sql_error(&path, e))?;
        let n = SqliteStore::insert(&tx, record).map_err(|e| sql_error(&path, e))?;
        hold_if_asked();
        tx.commit().map_err(|e| sql_error(&path, e))?;
        Ok(if n == 1 {
            Saved::Inserted
        } else {
            Saved::AlreadyPresent
        })
    }

    fn save_all(&mut self, records: &[RunRecord]) -> Result<usize, Error> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| sql_error(&path, e))?;
        let mut inserted = 0;
        for r in records {
            inserted += SqliteStore::insert(&tx, r).map_err(|e| sql_error(&path, e))?;
        }
        tx.commit().map_err(|e| sql_error(&path, e))?;
        Ok(inserted)
    }

    fn list(&self, filter: &RunFilter) -> Result<Vec<StoredRun>, Error> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT run_id, commit_sha, branch, dirty, profile, machine_key, created_at
                 FROM runs
                 WHERE (?1 IS NULL OR commit_sha LIKE ?1 || '%')
                   AND (?2 IS NULL OR profile = ?2)
                   AND (?3 IS NULL OR machine_key = ?3)
                   AND (?4 OR dirty = 0)
                 ORDER BY created_at, id",
            )
            .map_err(|e| self.sql_err(e))?;
        let rows = stmt
            .query_map(
                params![
                    filter.commit_prefix,
                    filter.profile,
                    filter.machine_key,
                    filter.include_dirty
                ],
                |r| {
                    Ok(StoredRun {
                        run_id: r.get(0)?,
                        commit: r.get(1)?,
                        branch: r.get(2)?,
                        dirty: r.get(3)?,
                        profile: r.get(4)?,
                        machine_key: r.get(5)?,
                        created_at: r.get(6)?,
                    })
                },
            )
            .map_err(|e| self.sql_err(e))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.sql_err(e))
    }

    fn load(&self, run_id: &str) -> Result<Option<RunRecord>, Error> {
        let blob: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT record_gz FROM runs WHERE run_id = ?1",
                [run_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.sql_err(e))?;
        let Some(blob) = blob else {
            return Ok(None);
        };
        let mut json = Vec::new();
        GzDecoder::new(&blob[..])
            .read_to_end(&mut json)
            .map_err(|e| Error::Store {
                path: self.path.clone(),
                message: format!("run {run_id} is damaged: {e}"),
            })?;
        RunRecord::from_json(&json, &format!("run {run_id} in {}", self.path.display())).map(Some)
    }

    fn delete(&mut self, run_id: &str) -> Result<bool, Error> {
        let n = self
            .conn
            .execute("DELETE FROM runs WHERE run_id = ?1", [run_id])
            .map_err(|e| self.sql_err(e))?;
        Ok(n > 0)
    }
}

fn sql_error(path: &Path, e: rusqlite::Error) -> Error {
    Error::Store {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
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

fn compress(record: &RunRecord) -> std::io::Result<Vec<u8>> {
    let json = serde_json::to_vec(record)?;
    let mut enc = GzEncoder::new(
        Vec::with_capacity(json.len() / 4),
        flate2::Compression::fast(),
    );
    enc.write_all(&json)?;
    enc.finish()
}

fn hold_if_asked() {
    if let Some(marker) = std::env::var_os(HOLD_SAVE_ENV) {
        let _ = std::fs::write(marker, b"holding");
        loop {
            std::thread::park();
        }
    }
}
