//! Baselines as portable JSON files, so CI can carry them between jobs as artifacts.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::record::RunRecord;

/// Version of the export layout.
pub const EXPORT_SCHEMA: u32 = 1;
/// Marker that tells an export from other JSON.
const KIND: &str = "perfcheck-baselines";

/// An exported set of runs.
#[derive(Serialize, Deserialize)]
struct Export {
    schema: u32,
    kind: String,
    runs: Vec<serde_json::Value>,
}

/// Writes `runs` to `path` as one JSON document (via a temporary file, then a rename).
pub fn export(runs: &[RunRecord], path: &Path) -> Result<(), Error> {
    let runs = runs
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Json {
            context: "cannot encode runs for export".into(),
            source: e,
        })?;
    let doc = Export {
        schema: EXPORT_SCHEMA,
        kind: KIND.into(),
        runs,
    };
    let bytes = serde_json::to_vec(&doc).map_err(|e| Error::Json {
        context: format!("cannot encode {}", path.display()),
        source: e,
    })?;
    crate::files::write_atomic(path, &bytes).map_err(|e| Error::Io {
        context: format!("cannot write {}", path.display()),
        source: e,
    })
}

/// Reads an export (or a single `run.json`) and returns its runs, checking every schema.
pub fn import(path: &Path) -> Result<Vec<RunRecord>, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::Io {
        context: format!("cannot read {}", path.display()),
        source: e,
    })?;
    let origin = path.display().to_string();
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| Error::Json {
        context: format!("{origin} is not JSON"),
        source: e,
    })?;
    if value.get("kind").and_then(|k| k.as_str()) != Some(KIND) {
        // A plain run record is accepted too: `run.json` straight from reports/.
        return RunRecord::from_value(value, &origin).map(|r| vec![r]);
    }
    let doc: Export = serde_json::from_value(value).map_err(|e| Error::Json {
        context: format!("{origin} is not a perfcheck baseline export"),
        source: e,
    })?;
    if doc.schema != EXPORT_SCHEMA {
        return Err(Error::Config {
            path: path.to_path_buf(),
            message: format!(
                "baseline export schema {} is not supported (this perfcheck reads schema {EXPORT_SCHEMA})",
                doc.schema
            ),
        });
    }
    doc.runs
        .into_iter()
        .enumerate()
        .map(|(i, v)| RunRecord::from_value(v, &format!("{origin} (run #{})", i + 1)))
        .collect()
}
