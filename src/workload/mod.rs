//! Workloads over the engine and the runner that measures them.

pub mod runner;
pub mod summary;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// A built-in workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// Queries against the stored memories (`embed_query`, `vector_search`, `rerank`, `format`).
    Recall,
    /// New events stored one at a time (`embed`, `persist`, `index_insert`).
    Remember,
    /// Batches of unconsolidated events turned into facts (`load_events` ... `store_facts`).
    Consolidation,
    /// Recall, remember and consolidation interleaved by the profile's mix (80/15/5 by default).
    Mixed,
}

impl Workload {
    /// All workloads, in the order a run performs them.
    pub const ALL: [Workload; 4] = [
        Workload::Recall,
        Workload::Remember,
        Workload::Consolidation,
        Workload::Mixed,
    ];

    /// All workloads as a Vec (serde default of a profile).
    pub fn all_vec() -> Vec<Workload> {
        Workload::ALL.to_vec()
    }

    /// The name used on the command line, in metric names and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Recall => "recall",
            Workload::Remember => "remember",
            Workload::Consolidation => "consolidation",
            Workload::Mixed => "mixed",
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Workload {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Workload::ALL
            .into_iter()
            .find(|w| w.name() == s)
            .ok_or_else(|| Error::UnknownWorkload(s.to_owned()))
    }
}
