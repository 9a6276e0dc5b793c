//! What a load target reports to live monitoring: its own values ([`Gauge`], scraped as
//! `perfcheck_target_<name>`) and its health ([`TargetHealth`], under `target` in `/health`).
//! Both are read on the scraping thread while the load runs, so a target adds a value (a
//! breaker's state, a pool's usage) by returning one more item, with no change in the tool.

use serde::Serialize;

/// One value of the target's, read at every scrape.
#[derive(Clone, Debug, PartialEq)]
pub struct Gauge {
    /// Name after `perfcheck_target_` (`recall_cache_hits`); characters outside
    /// `[a-zA-Z0-9_]` become `_`.
    pub name: String,
    /// The `# HELP` text.
    pub help: String,
    /// The value.
    pub value: f64,
    /// Labels (`[("breaker", "store")]`); items of one name should all have the same keys.
    pub labels: Vec<(String, String)>,
    /// Only ever grows (a count since setup): exposed as a counter, `_total` appended.
    pub counter: bool,
}

impl Gauge {
    /// A value that goes up and down (a backlog, a hit rate, a breaker's state as 0/1).
    pub fn new(name: impl Into<String>, help: impl Into<String>, value: f64) -> Gauge {
        Gauge {
            name: name.into(),
            help: help.into(),
            value,
            labels: Vec::new(),
            counter: false,
        }
    }

    /// A count that only grows (cache hits since setup).
    pub fn counter(name: impl Into<String>, help: impl Into<String>, value: f64) -> Gauge {
        Gauge {
            counter: true,
            ..Gauge::new(name, help, value)
        }
    }

    /// Adds a label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Gauge {
        self.labels.push((key.into(), value.into()));
        self
    }
}

/// How healthy a system is, worst last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Answering fully.
    Ok,
    /// Answering, some answers degraded or failed.
    Degraded,
    /// Mostly failing: `/health` answers 503.
    Failing,
}

/// The target's own view of its health, as `/health` shows it under `target`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TargetHealth {
    /// Its verdict; the worse of it and the tool's own decides `/health`'s status.
    pub status: HealthStatus,
    /// Anything that explains it (`{"events": 1200, "pending": 30}`).
    pub detail: serde_json::Value,
}

impl TargetHealth {
    /// A verdict with its explanation.
    pub fn new(status: HealthStatus, detail: serde_json::Value) -> TargetHealth {
        TargetHealth { status, detail }
    }
}
