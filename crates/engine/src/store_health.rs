//! Offline health check of an engine store on disk (for the CLI): what it holds and
//! whether it is intact, without changing it and without starting an engine.
//!
//! Distinct from a live engine's health: this reads the file itself, so it also works on a
//! store that `Engine::open` refuses as damaged.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rusqlite::Connection;
use serde::Serialize;

use crate::durability::salvage::open_untouched;
use crate::durability::snapshot_path;
use crate::durability::verify::check_row;
use crate::durability::wal::{self, WalScan};
use crate::EngineConfig;

/// The health of a stored engine; `problems` is empty exactly when `ok` is true.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoreHealth {
    /// The database checked.
    pub path: PathBuf,
    /// No problem found.
    pub ok: bool,
    /// Every problem found, one sentence each.
    pub problems: Vec<String>,
    /// `PRAGMA user_version`.
    pub schema_version: Option<i64>,
    /// Events stored.
    pub events: Option<u64>,
    /// Facts stored.
    pub facts: Option<u64>,
    /// Events not consolidated yet.
    pub pending: Option<u64>,
    /// `PRAGMA quick_check`: `ok`, or SQLite's first findings.
    pub quick_check: String,
    /// Event rows whose checksum (or column types) do not match what was written.
    pub rows_failing_checksum: Option<u64>,
    /// Rows the vector index rebuilt on open would hold (embeddings of the configured
    /// dimension); equals `events` in a consistent store.
    pub index_vectors: Option<u64>,
    /// Facts whose recorded support differs from their linked events, plus events both
    /// pending and linked: 0 in a consistent store.
    pub consolidation_mismatches: Option<u64>,
    /// Size of the `-wal` file (0 when absent).
    pub wal_bytes: u64,
    /// Frame-level scan of the WAL, when there is one.
    pub wal: Option<WalScan>,
    /// Seconds since the snapshot (`<db>.snapshot`) was written, if there is one.
    pub snapshot_age_s: Option<u64>,
}

/// Checks the store at `path` for an engine configured with `config` (its `dim`). Never
/// fails: what cannot be read is a problem in the result.
pub fn check_store(path: impl AsRef<Path>, config: &EngineConfig) -> StoreHealth {
    let path = path.as_ref();
    let mut h = StoreHealth {
        path: path.to_path_buf(),
        ok: false,
        problems: Vec::new(),
        schema_version: None,
        events: None,
        facts: None,
        pending: None,
        quick_check: String::new(),
        rows_failing_checksum: None,
        index_vectors: None,
        consolidation_mismatches: None,
        wal_bytes: std::fs::metadata(wal::wal_path(path)).map_or(0, |m| m.len()),
        wal: None,
        snapshot_age_s: std::fs::metadata(snapshot_path(path))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .map(|d| d.as_secs()),
    };
    // Scanned before SQLite sees the file, as `Engine::open` does.
    match wal::scan(path) {
        Ok(scan) => h.wal = scan,
        Err(e) => h.problems.push(e.to_string()),
    }
    if let Err(e) = wal::check(path) {
        h.problems.push(e.to_string());
    }
    match open_untouched(path) {
        Ok(conn) => inspect(&conn, config, &mut h),
        Err(e) => h.problems.push(format!(
            "{}: cannot be read as an SQLite database: {e}",
            path.display()
        )),
    }
    h.ok = h.problems.is_empty();
    h
}

/// The embedding dimension recorded in the store at `path`, read without changing it.
pub fn stored_dim(path: impl AsRef<Path>) -> Option<usize> {
    let conn = open_untouched(path.as_ref()).ok()?;
    let v: String = conn
        .query_row("SELECT value FROM meta WHERE key = 'dim'", [], |r| r.get(0))
        .ok()?;
    v.parse().ok()
}

fn count(conn: &Connection, sql: &str) -> rusqlite::Result<u64> {
    conn.query_row(sql, [], |r| r.get::<_, i64>(0))
        .map(|n| n.max(0) as u64)
}

fn inspect(conn: &Connection, config: &EngineConfig, h: &mut StoreHealth) {
    let problem = |h: &mut StoreHealth, what: &str, e: rusqlite::Error| {
        h.problems.push(format!("{what}: {e}"));
    };
    match conn.pragma_query_value(None, "user_version", |r| r.get(0)) {
        Ok(v) => h.schema_version = Some(v),
        Err(e) => problem(h, "reading the schema version", e),
    }
    match conn
        .prepare("PRAGMA quick_check(20)")
        .and_then(|mut st| st.query_map([], |r| r.get::<_, String>(0))?.collect())
    {
        Ok(lines) => {
            let lines: Vec<String> = lines;
            h.quick_check = lines.join("; ");
            if h.quick_check != "ok" {
                h.problems.push(format!("quick_check: {}", h.quick_check));
            }
        }
        Err(e) => {
            h.quick_check = format!("failed: {e}");
            problem(h, "quick_check", e);
        }
    }
    let counted = |h: &mut StoreHealth, sql: &str, what: &str| match count(conn, sql) {
        Ok(n) => Some(n),
        Err(e) => {
            problem(h, what, e);
            None
        }
    };
    h.events = counted(h, "SELECT count(*) FROM events", "counting events");
    h.facts = counted(h, "SELECT count(*) FROM facts", "counting facts");
    h.pending = counted(
        h,
        "SELECT count(*) FROM events WHERE consolidated = 0",
        "counting pending events",
    );
    match count(
        conn,
        &format!(
            "SELECT count(*) FROM events WHERE length(embedding) = {}",
            config.dim * 4
        ),
    ) {
        Ok(n) => {
            h.index_vectors = Some(n);
            if let Some(events) = h.events.filter(|&e| e != n) {
                h.problems.push(format!(
                    "{} of {events} events have no embedding of dimension {} (the index would hold {n})",
                    events - n,
                    config.dim
                ));
            }
        }
        Err(e) => problem(h, "counting embeddings", e),
    }
    match count(
        conn,
        "SELECT (SELECT count(*) FROM facts f \
                 WHERE f.support != (SELECT count(*) FROM events e WHERE e.fact_id = f.id)) \
              + (SELECT count(*) FROM events WHERE consolidated = 0 AND fact_id IS NOT NULL)",
    ) {
        Ok(n) => {
            h.consolidation_mismatches = Some(n);
            if n > 0 {
                h.problems
                    .push(format!("{n} fact support or event link mismatch(es)"));
            }
        }
        Err(e) => problem(h, "checking fact support", e),
    }
    let verified = conn
        .prepare("SELECT id, session, ts, text, tags, embedding, crc FROM events")
        .and_then(|mut st| {
            let mut rows = st.query([])?;
            let mut bad = 0u64;
            while let Some(r) = rows.next()? {
                bad += u64::from(check_row(r).is_err());
            }
            Ok(bad)
        });
    match verified {
        Ok(bad) => {
            h.rows_failing_checksum = Some(bad);
            if bad > 0 {
                h.problems
                    .push(format!("{bad} event row(s) fail their checksum"));
            }
        }
        Err(e) => problem(h, "verifying event rows", e),
    }
}
