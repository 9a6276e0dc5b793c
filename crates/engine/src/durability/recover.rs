//! Recovery of a damaged store: move it aside, rebuild from what is intact, count the rest.
//!
//! # What is kept, what is lost, how it is counted
//!
//! Two sources are read with [`salvage`]: the damaged file (with its WAL; SQLite applies
//! the WAL frames up to the first damaged one) and the snapshot `<db>.snapshot`
//! ([`Engine::snapshot`](crate::Engine::snapshot)), if one exists. An event is taken from
//! the damaged file when its row is readable and passes its checksum (it is newer: its
//! consolidation state is the latest), otherwise from the snapshot.
//!
//! The engine never deletes events and ids are handed out densely (`max + 1`), so the
//! events that existed are exactly ids `1..=highest_event_id`, the highest id either source
//! still knows of, and `events_salvaged + events_from_snapshot + events_lost` equals it.
//! Events newer than both the snapshot and every id readable in the damaged file (commits
//! in WAL frames after a damaged frame, rows of a damaged right-most page) are invisible to
//! both sources: they are neither restored nor counted.
//!
//! Facts are derived data. A fact is kept when readable in either source and at least one
//! of its events survives; its support is recounted. Events linked to a fact that was not
//! kept become pending again (`events_unlinked`), so consolidation re-examines them.
//! `facts_lost = highest_fact_id - facts kept` (fact ids are dense too: facts are only
//! deleted all at once, by `reset_consolidation`).

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::params;
use serde::Serialize;

use super::salvage::{salvage, EventRow, FactRow, Salvage};
use super::snapshot::snapshot_path;
use crate::error::{EngineError, Result};
use crate::store::Store;
use crate::{Engine, EngineConfig};

/// What [`recover`] did; see the module docs for exactly what each count means.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RecoveryReport {
    /// Where the damaged database was moved (its WAL, if any, beside it with `-wal`).
    pub damaged_path: PathBuf,
    /// The snapshot read, if one existed.
    pub snapshot: Option<PathBuf>,
    /// Highest event id either source knows of: the number of events that existed.
    pub highest_event_id: i64,
    /// Events restored from the damaged file.
    pub events_salvaged: u64,
    /// Events restored from the snapshot (unreadable or damaged in the file).
    pub events_from_snapshot: u64,
    /// Events neither source could supply.
    pub events_lost: u64,
    /// Rows of the damaged file SQLite returned but whose checksum failed (each is then
    /// restored from the snapshot or counted lost).
    pub events_damaged: u64,
    /// Row ids in the damaged file that could not be read at all (damaged pages).
    pub rows_unreadable: u64,
    /// Highest fact id either source knows of.
    pub highest_fact_id: i64,
    /// Facts kept (readable, with at least one surviving event).
    pub facts_kept: u64,
    /// `highest_fact_id - facts_kept`.
    pub facts_lost: u64,
    /// Events whose fact was lost, pending again.
    pub events_unlinked: u64,
    /// Events in the rebuilt store (and vectors in its index).
    pub events_after: u64,
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> EngineError {
    EngineError::InvalidConfig(format!("recover: cannot {what} {}: {e}", path.display()))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Moves the damaged store at `path` aside (`<db>.corrupt-<unix seconds>`, kept), rebuilds
/// a store at `path` from its intact rows and the snapshot, and opens it (rebuilding the
/// vector index from the event table).
pub fn recover(path: impl AsRef<Path>, config: EngineConfig) -> Result<(Engine, RecoveryReport)> {
    let path = path.as_ref();
    config.validate()?;
    let aside = move_aside(path)?;
    let damaged = salvage(&aside);
    let snap_file = snapshot_path(path);
    let snapshot = snap_file.exists().then(|| salvage(&snap_file));
    let mut report = RecoveryReport {
        damaged_path: aside,
        snapshot: snapshot.as_ref().map(|_| snap_file.clone()),
        events_damaged: damaged.events_damaged,
        rows_unreadable: damaged.unreadable,
        ..RecoveryReport::default()
    };
    {
        // No checkpoint thread: the rebuild is one transaction and the store closes after it.
        let store = Store::open_with(path, config.dim, 1, None)?;
        rebuild(&store, &damaged, snapshot.as_ref(), &mut report)?;
    }
    let engine = Engine::open(path, config)?;
    report.events_after = engine.event_count()?;
    Ok((engine, report))
}

fn move_aside(path: &Path) -> Result<PathBuf> {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut aside = with_suffix(path, &format!(".corrupt-{secs}"));
    let mut n = 1;
    while aside.exists() {
        aside = with_suffix(path, &format!(".corrupt-{secs}-{n}"));
        n += 1;
    }
    std::fs::rename(path, &aside).map_err(|e| io_err("move aside", path, e))?;
    // The WAL belongs to the damaged file: SQLite finds it by the file's name.
    let wal = with_suffix(path, "-wal");
    if wal.exists() {
        let to = with_suffix(&aside, "-wal");
        std::fs::rename(&wal, &to).map_err(|e| io_err("move aside", &wal, e))?;
    }
    // Shared memory is rebuilt from the WAL; a stale one must not meet the new store.
    let shm = with_suffix(path, "-shm");
    if shm.exists() {
        std::fs::remove_file(&shm).map_err(|e| io_err("remove", &shm, e))?;
    }
    Ok(aside)
}

fn rebuild(
    store: &Store,
    damaged: &Salvage,
    snapshot: Option<&Salvage>,
    report: &mut RecoveryReport,
) -> Result<()> {
    let empty = Salvage::default();
    let snap = snapshot.unwrap_or(&empty);
    let mut conn = store.writer()?;
    let tx = conn.transaction()?;
    {
        let mut ins_fact = tx.prepare(
            "INSERT OR IGNORE INTO facts(id, signature, terms, representative_event, support, \
             cohesion, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        let facts = merged(&damaged.facts, &snap.facts);
        for (f, _) in &facts {
            let f: &FactRow = f;
            ins_fact.execute(params![
                f.id,
                f.signature,
                f.terms,
                f.representative_event,
                f.support,
                f.cohesion,
                f.created_at
            ])?;
        }
        let mut ins_event = tx.prepare(
            "INSERT INTO events(id, session, ts, text, tags, embedding, consolidated, fact_id, \
             crc, idem_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?;
        for (e, from_file) in merged(&damaged.events, &snap.events) {
            let e: &EventRow = e;
            ins_event.execute(params![
                e.id,
                e.session,
                e.ts,
                e.text,
                e.tags,
                e.embedding,
                e.consolidated,
                e.fact_id,
                e.crc,
                e.idem_key
            ])?;
            if from_file {
                report.events_salvaged += 1;
            } else {
                report.events_from_snapshot += 1;
            }
        }
    }
    // Links to facts that did not survive, and marks without a link, become pending again.
    report.events_unlinked = tx.execute(
        "UPDATE events SET consolidated = 0, fact_id = NULL \
         WHERE (fact_id IS NOT NULL AND fact_id NOT IN (SELECT id FROM facts)) \
            OR (consolidated = 1 AND fact_id IS NULL)",
        [],
    )? as u64;
    tx.execute(
        "UPDATE facts SET support = (SELECT count(*) FROM events WHERE fact_id = facts.id)",
        [],
    )?;
    tx.execute("DELETE FROM facts WHERE support = 0", [])?;
    report.facts_kept = tx
        .query_row("SELECT count(*) FROM facts", [], |r| r.get::<_, i64>(0))?
        .max(0) as u64;
    tx.commit()?;
    report.highest_event_id = damaged.max_event_id.max(snap.max_event_id);
    report.highest_fact_id = damaged.max_fact_id.max(snap.max_fact_id);
    let restored = report.events_salvaged + report.events_from_snapshot;
    report.events_lost = (report.highest_event_id.max(0) as u64).saturating_sub(restored);
    report.facts_lost = (report.highest_fact_id.max(0) as u64).saturating_sub(report.facts_kept);
    Ok(())
}

/// Rows of both sources by id, the damaged file's first; `true` marks rows from the file.
fn merged<'a, T>(
    file: &'a std::collections::BTreeMap<i64, T>,
    snap: &'a std::collections::BTreeMap<i64, T>,
) -> Vec<(&'a T, bool)> {
    let mut out: Vec<(i64, &T, bool)> = file.iter().map(|(id, r)| (*id, r, true)).collect();
    out.extend(
        snap.iter()
            .filter(|(id, _)| !file.contains_key(id))
            .map(|(id, r)| (*id, r, false)),
    );
    out.sort_unstable_by_key(|r| r.0);
    out.into_iter().map(|(_, r, f)| (r, f)).collect()
}
