//! Salvage: reading what is still intact out of a damaged store, row by row.
//!
//! SQLite stops a statement at the first damaged page it meets, so the tables are read in
//! rowid ranges; a range that fails is split in halves down to single rows, and a single row
//! that still fails is counted as unreadable. Event rows must also pass their checksum: a
//! row SQLite returns but whose bytes changed is damaged, not salvaged.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, Row};

use super::verify::check_row;

/// Rows read per range query before any damage splits it.
const RANGE: i64 = 1_024;

/// An event row as stored (raw columns, verified).
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    /// Event id.
    pub id: i64,
    /// Session.
    pub session: i64,
    /// Timestamp.
    pub ts: i64,
    /// Text.
    pub text: String,
    /// Tags (JSON, as stored).
    pub tags: String,
    /// Embedding blob.
    pub embedding: Vec<u8>,
    /// Consolidation state.
    pub consolidated: i64,
    /// Linked fact.
    pub fact_id: Option<i64>,
    /// Row checksum (`None` for rows older than schema version 2).
    pub crc: Option<i64>,
    /// Idempotency key.
    pub idem_key: Option<String>,
}

/// A fact row as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct FactRow {
    /// Fact id.
    pub id: i64,
    /// Signature.
    pub signature: String,
    /// Terms (JSON, as stored).
    pub terms: String,
    /// Representative event.
    pub representative_event: i64,
    /// Support as stored (recounted after recovery).
    pub support: i64,
    /// Cohesion.
    pub cohesion: f64,
    /// Creation timestamp.
    pub created_at: i64,
}

/// Everything readable from one store file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Salvage {
    /// Intact event rows by id.
    pub events: BTreeMap<i64, EventRow>,
    /// Readable fact rows by id.
    pub facts: BTreeMap<i64, FactRow>,
    /// Event rows SQLite returned whose checksum (or types) did not match.
    pub events_damaged: u64,
    /// Rowids whose read failed even alone (damaged pages), in both tables.
    pub unreadable: u64,
    /// Highest event id the file still knows of (0 when none is readable).
    pub max_event_id: i64,
    /// Highest fact id the file still knows of.
    pub max_fact_id: i64,
    /// Why nothing at all could be read, if so.
    pub unopenable: Option<String>,
}

/// Reads everything intact from the store file at `path` (with its `-wal`, if any) without
/// writing to it.
pub fn salvage(path: &Path) -> Salvage {
    let mut out = Salvage::default();
    let conn = match open_untouched(path) {
        Ok(c) => c,
        Err(e) => {
            out.unopenable = Some(e.to_string());
            return out;
        }
    };
    let hi = upper_bound(&conn, "events");
    let events_sql = "SELECT id, session, ts, text, tags, embedding, crc, consolidated, fact_id, \
                      idem_key FROM events WHERE id BETWEEN ?1 AND ?2 ORDER BY id";
    let mut events: Vec<Option<EventRow>> = Vec::new();
    out.unreadable += read_ranges(&conn, events_sql, hi, &mut events, |r| {
        if check_row(r).is_err() {
            return Ok(None);
        }
        Ok(Some(EventRow {
            id: r.get(0)?,
            session: r.get(1)?,
            ts: r.get(2)?,
            text: r.get(3)?,
            tags: r.get(4)?,
            embedding: r.get(5)?,
            crc: r.get(6)?,
            consolidated: r.get(7)?,
            fact_id: r.get(8)?,
            idem_key: r.get(9)?,
        }))
    });
    out.events_damaged = events.iter().filter(|e| e.is_none()).count() as u64;
    out.events = events.into_iter().flatten().map(|e| (e.id, e)).collect();
    out.max_event_id = exact_max(&conn, "events")
        .unwrap_or(0)
        .max(out.events.keys().next_back().copied().unwrap_or(0));
    let hi = upper_bound(&conn, "facts");
    let facts_sql = "SELECT id, signature, terms, representative_event, support, cohesion, \
                     created_at FROM facts WHERE id BETWEEN ?1 AND ?2 ORDER BY id";
    let mut facts = Vec::new();
    out.unreadable += read_ranges(&conn, facts_sql, hi, &mut facts, |r| {
        Ok(FactRow {
            id: r.get(0)?,
            signature: r.get(1)?,
            terms: r.get(2)?,
            representative_event: r.get(3)?,
            support: r.get(4)?,
            cohesion: r.get(5)?,
            created_at: r.get(6)?,
        })
    });
    out.facts = facts.into_iter().map(|f| (f.id, f)).collect();
    out.max_fact_id = exact_max(&conn, "facts")
        .unwrap_or(0)
        .max(out.facts.keys().next_back().copied().unwrap_or(0));
    out
}

/// A connection to an existing store that changes neither it nor its WAL: read-write only
/// so that SQLite can replay the WAL into shared memory, `query_only` so nothing is written,
/// and no checkpoint on close (which would fold the WAL's valid prefix into the file and
/// delete the rest).
pub(crate) fn open_untouched(path: &Path) -> rusqlite::Result<Connection> {
    if !path.exists() {
        return Err(rusqlite::Error::InvalidPath(path.to_path_buf()));
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
    conn.pragma_update(None, "query_only", true)?;
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })?;
    Ok(conn)
}

/// `max(id)` of `table`, if the b-tree's right edge is readable.
fn exact_max(conn: &Connection, table: &str) -> Option<i64> {
    conn.query_row(
        &format!("SELECT coalesce(max(id), 0) FROM {table}"),
        [],
        |r| r.get(0),
    )
    .ok()
}

/// The highest rowid worth probing: `max(id)` when readable, otherwise a bound no table of
/// this file can exceed (a row needs well over 16 bytes of a page).
fn upper_bound(conn: &Connection, table: &str) -> i64 {
    exact_max(conn, table).unwrap_or_else(|| {
        let pages: i64 = conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap_or(0);
        let size: i64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap_or(4096);
        pages.saturating_mul(size / 16)
    })
}

/// Reads rowids `1..=hi` in ranges with `sql` (binding the range bounds), splitting failing
/// ranges; returns how many single rowids could not be read.
fn read_ranges<T>(
    conn: &Connection,
    sql: &str,
    hi: i64,
    out: &mut Vec<T>,
    mut decode: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> u64 {
    let mut unreadable = 0;
    let mut pending: Vec<(i64, i64)> = Vec::new();
    let mut lo = 1;
    while lo <= hi {
        pending.push((lo, (lo + RANGE - 1).min(hi)));
        lo += RANGE;
    }
    pending.reverse();
    while let Some((a, b)) = pending.pop() {
        match read_range(conn, sql, a, b, &mut decode) {
            Ok(rows) => out.extend(rows),
            Err(_) if a == b => unreadable += 1,
            Err(_) => {
                let mid = a + (b - a) / 2;
                // Lower half first, so rows come out in id order.
                pending.push((mid + 1, b));
                pending.push((a, mid));
            }
        }
    }
    unreadable
}

fn read_range<T>(
    conn: &Connection,
    sql: &str,
    a: i64,
    b: i64,
    decode: &mut impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    let mut st = conn.prepare_cached(sql)?;
    let mut rows = st.query([a, b])?;
    let mut got = Vec::new();
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        // A damaged interior page can point a range at rows outside it; those are read in
        // their own range.
        if (a..=b).contains(&id) {
            got.push(decode(r)?);
        }
    }
    Ok(got)
}
