//! Open-time verification: the scan that rebuilds the vector index also checks every event
//! row, so detecting damage in the event table costs one CRC per row on top of a read the
//! engine does anyway.

use std::path::Path;

use rusqlite::ErrorCode;

use super::checksum::row_checksum;
use crate::error::{EngineError, Result};
use crate::store::{vec_from, Store};

/// Damaged rows named in an error message; the count covers the rest.
const NAMED_ROWS: usize = 5;

/// Turns SQLite's "this page is damaged" errors (and a wrongly sized embedding) into
/// [`EngineError::Corrupt`] for `path`; every other error passes through unchanged.
pub fn as_corrupt(path: &Path, err: EngineError) -> EngineError {
    let damaged = match &err {
        EngineError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
        | EngineError::Open {
            source: rusqlite::Error::SqliteFailure(e, _),
            ..
        } => e.code == ErrorCode::DatabaseCorrupt,
        EngineError::CorruptEmbedding { .. } => true,
        _ => false,
    };
    if damaged {
        EngineError::Corrupt {
            path: path.to_path_buf(),
            detail: err.to_string(),
        }
    } else {
        err
    }
}

/// `PRAGMA quick_check` (b-tree structure of every table and index): `Corrupt` with
/// SQLite's first findings unless it says `ok`. Measured at about 3% of an open (release:
/// 19.5 ms of 614 ms at 20,000 events, 73 ms of 2.1 s at 100,000), so every open runs it.
pub fn quick_check(store: &Store) -> Result<()> {
    let lines: Vec<String> = store
        .read(|c| {
            let mut st = c.prepare("PRAGMA quick_check(5)")?;
            let rows = st.query_map([], |r| r.get::<_, String>(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .map_err(|e| as_corrupt(store.path(), e))?;
    if lines.len() == 1 && lines[0] == "ok" {
        return Ok(());
    }
    Err(EngineError::Corrupt {
        path: store.path().to_path_buf(),
        detail: format!("quick_check: {}", lines.join("; ")),
    })
}

/// Calls `f(id, embedding)` for every event in id order after verifying its row checksum.
///
/// Reads all rows before reporting, so the error counts every damaged row; rows written
/// before schema version 2 have no checksum and are taken as they are.
pub fn load_verified(store: &Store, mut f: impl FnMut(i64, &[f32])) -> Result<()> {
    let mut damaged: Vec<String> = Vec::new();
    let mut damaged_rows = 0usize;
    let scanned = store.read(|c| {
        let mut st = c.prepare_cached(
            "SELECT id, session, ts, text, tags, embedding, crc FROM events ORDER BY id",
        )?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            match check_row(r) {
                Ok(()) => {
                    let blob = r.get_ref(5)?.as_blob().map_err(rusqlite::Error::from)?;
                    f(id, &vec_from(id, blob, store.dim())?);
                }
                Err(why) => {
                    damaged_rows += 1;
                    if damaged.len() < NAMED_ROWS {
                        damaged.push(format!("event {id}: {why}"));
                    }
                }
            }
        }
        Ok(())
    });
    scanned.map_err(|e| as_corrupt(store.path(), e))?;
    if damaged_rows > 0 {
        return Err(EngineError::Corrupt {
            path: store.path().to_path_buf(),
            detail: format!(
                "{damaged_rows} event row(s) fail their checksum ({})",
                damaged.join("; ")
            ),
        });
    }
    Ok(())
}

/// Why a row read as `id, session, ts, text, tags, embedding, crc` is not what was written.
pub(crate) fn check_row(r: &rusqlite::Row<'_>) -> std::result::Result<(), String> {
    let typed = || -> rusqlite::Result<Option<(i64, i64)>> {
        let Some(stored) = r.get::<_, Option<i64>>(6)? else {
            return Ok(None);
        };
        let computed = row_checksum(
            r.get(1)?,
            r.get(2)?,
            r.get_ref(3)?.as_bytes()?,
            r.get_ref(4)?.as_bytes()?,
            r.get_ref(5)?.as_bytes()?,
        );
        Ok(Some((stored, computed)))
    };
    match typed() {
        Ok(None) => Ok(()),
        Ok(Some((stored, computed))) if stored == computed => Ok(()),
        Ok(Some((stored, computed))) => {
            Err(format!("checksum {computed:#010x}, stored {stored:#010x}"))
        }
        Err(e) => Err(format!("undecodable row ({e})")),
    }
}
