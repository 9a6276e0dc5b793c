//! The engine's health: can it read and write its store, is the index consistent with the
//! event table, where are its breakers, how full are its cache and pool.

use serde::{Deserialize, Serialize};

use super::breaker::BreakerState;
use super::ResilienceStats;

/// Overall status, worst first in severity order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Everything answers normally.
    Ok,
    /// Answers come, but some degraded or some calls fail fast (a breaker is not closed).
    Degraded,
    /// The store cannot be read.
    Failing,
}

impl Status {
    /// `ok`, `degraded` or `failing`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Degraded => "degraded",
            Status::Failing => "failing",
        }
    }
}

/// One breaker in the health report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerHealth {
    /// What it guards (`store reads`, `store writes`, `embedder`).
    pub name: String,
    /// Where it is.
    pub state: BreakerState,
    /// How often it opened.
    pub opened: u64,
    /// Calls it rejected.
    pub rejected: u64,
}

/// A health report; [`crate::Engine::health`] makes one without touching the write path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// The verdict.
    pub status: Status,
    /// Whether a read on a pooled connection worked.
    pub store_readable: bool,
    /// The read's error, if it failed.
    pub store_error: Option<String>,
    /// Events in the event table (when readable).
    pub events_stored: Option<u64>,
    /// Vectors in the index.
    pub events_indexed: u64,
    /// Whether the index holds exactly the stored events' count (when readable).
    pub index_consistent: Option<bool>,
    /// The breakers.
    pub breakers: Vec<BreakerHealth>,
    /// Recall cache entries now.
    pub cache_entries: usize,
    /// Recall cache capacity in entries.
    pub cache_capacity: usize,
    /// Recall cache hits since open.
    pub cache_hits: u64,
    /// Recall cache misses since open.
    pub cache_misses: u64,
    /// Read connections open.
    pub pool_open: usize,
    /// Read connections idle.
    pub pool_idle: usize,
    /// Most read connections.
    pub pool_max: usize,
    /// What the resilience layer did so far.
    pub resilience: ResilienceStats,
    /// One line per problem found, for people.
    pub problems: Vec<String>,
}

impl Health {
    /// Derives the status and problems from the facts gathered.
    pub(crate) fn judge(mut self) -> Health {
        let mut status = Status::Ok;
        let mut problems = Vec::new();
        if !self.store_readable {
            status = Status::Failing;
            problems.push(format!(
                "the store cannot be read: {}",
                self.store_error.as_deref().unwrap_or("unknown error")
            ));
        }
        if self.index_consistent == Some(false) {
            status = status.max(Status::Degraded);
            problems.push(format!(
                "the index holds {} vectors but the store {} events",
                self.events_indexed,
                self.events_stored.unwrap_or(0)
            ));
        }
        for b in &self.breakers {
            if b.state != BreakerState::Closed {
                status = status.max(Status::Degraded);
                problems.push(format!("the {} breaker is {}", b.name, b.state.as_str()));
            }
        }
        self.status = status;
        self.problems = problems;
        self
    }
}
