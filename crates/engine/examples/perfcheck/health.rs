//! `cargo perfcheck health --store-dir DIR` for the engine: the offline check of a stored
//! engine (WAL frames, `quick_check`, row checksums, index and consolidation consistency),
//! which never changes the file.

use std::path::{Path, PathBuf};

use agent_memory::store_health::{check_store, stored_dim};
use agent_memory::EngineConfig;
use perfcheck::harness::{BoxError, HealthCheck, StoredHealth};

/// The engine's store check.
pub struct EngineHealth;

/// The database in `dir`: `dir` itself if it is a file, else `dir/engine.sqlite`.
fn database(dir: &Path) -> Result<PathBuf, BoxError> {
    if dir.is_file() {
        return Ok(dir.to_path_buf());
    }
    let db = dir.join("engine.sqlite");
    if db.is_file() {
        Ok(db)
    } else {
        Err(format!(
            "no engine store here (expected {} or the path of a database file)",
            db.display()
        )
        .into())
    }
}

impl HealthCheck for EngineHealth {
    fn check(&self, dir: &Path) -> Result<StoredHealth, BoxError> {
        let db = database(dir)?;
        let config = EngineConfig {
            dim: stored_dim(&db).unwrap_or(EngineConfig::default().dim),
            ..EngineConfig::default()
        };
        let h = check_store(&db, &config);
        let opt = |v: Option<u64>| v.map_or_else(|| "unknown".to_owned(), |n| n.to_string());
        let facts = vec![
            (
                "schema version".into(),
                opt(h.schema_version.map(|v| v as u64)),
            ),
            ("events".into(), opt(h.events)),
            ("facts".into(), opt(h.facts)),
            ("pending consolidation".into(), opt(h.pending)),
            ("quick_check".into(), h.quick_check.clone()),
            ("rows failing checksum".into(), opt(h.rows_failing_checksum)),
            ("index vectors".into(), opt(h.index_vectors)),
            (
                "consolidation mismatches".into(),
                opt(h.consolidation_mismatches),
            ),
            ("wal bytes".into(), h.wal_bytes.to_string()),
            (
                "snapshot age".into(),
                h.snapshot_age_s
                    .map_or_else(|| "no snapshot".to_owned(), |s| format!("{s} s")),
            ),
        ];
        Ok(StoredHealth {
            checked: h.path.display().to_string(),
            facts,
            problems: h.problems.clone(),
            detail: serde_json::to_value(&h)?,
        })
    }
}
