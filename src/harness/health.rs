//! `cargo perfcheck health`: a crate tells perfcheck how to check the health of its system
//! as stored on disk (a database folder), and the tool prints and gates the answer.

use std::path::Path;

use serde::Serialize;

use crate::harness::workload::BoxError;

/// The health of a stored system, as its [`HealthCheck`] found it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredHealth {
    /// What was checked (a database file).
    pub checked: String,
    /// Facts worth a glance, in order (`events`, `quick_check`, `snapshot age`).
    pub facts: Vec<(String, String)>,
    /// Every problem found, one sentence each; empty means healthy.
    pub problems: Vec<String>,
    /// The target's full report, written as is with `--json`.
    pub detail: serde_json::Value,
}

impl StoredHealth {
    /// No problem found.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks a system stored in a folder without changing it.
pub trait HealthCheck: Send + Sync + 'static {
    /// The health of what `dir` holds; `Err` when `dir` holds nothing this check knows (a
    /// usage error, exit code 2), a [`StoredHealth`] with problems when it is damaged.
    fn check(&self, dir: &Path) -> Result<StoredHealth, BoxError>;
}
