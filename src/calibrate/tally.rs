//! What a calibration found, per variant: how many of its checks flagged anything, which
//! metrics and how often, and which function the attribution named. This is `calibration.json`.

use serde::{Deserialize, Serialize};

use crate::compare::{Comparison, Level, Status};
use crate::metrics::Measure;

/// Version of the calibration.json layout.
pub const CALIBRATION_SCHEMA_VERSION: u32 = 1;

/// The variant whose checks count as false alarms when they flag anything (the A/A control).
pub const CONTROL: &str = "comment-only";

/// A whole calibration, complete or in progress (written after every check).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Calibration {
    /// [`CALIBRATION_SCHEMA_VERSION`].
    pub schema: u32,
    /// When it started (RFC 3339).
    pub created_at: String,
    /// The commit every side was built from, before patching.
    pub head: String,
    /// Machine fingerprint of the first run (`None` before any ran).
    pub machine: Option<String>,
    /// The `run` arguments of every run (profile, workloads).
    pub run_args: Vec<String>,
    /// Rounds per paired check.
    pub rounds: usize,
    /// Checks asked for per variant.
    pub checks_planned: usize,
    /// Whether each check also counted instructions.
    pub instructions: bool,
    /// False once a run stopped early (then the counts are what finished).
    pub complete: bool,
    /// One entry per variant, in the order given.
    pub variants: Vec<VariantTally>,
}

/// One variant's results.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct VariantTally {
    /// The patch's name.
    pub name: String,
    /// Its `# description` line.
    pub description: String,
    /// The patch file.
    pub patch: String,
    /// Functions the patch adds (what the attribution should name).
    pub planted: Vec<String>,
    /// Checks finished.
    pub checks: usize,
    /// Checks with any fail- or warn-level regression.
    pub flagged: usize,
    /// Checks with a fail-level regression (the gate's exit code 1).
    pub failed: usize,
    /// Checks with a regression on an instructions metric.
    pub flagged_instructions: usize,
    /// Flagged metrics, most often first.
    pub metrics: Vec<MetricTally>,
    /// The top attributed function of the most changed stage, per check that had one.
    pub top_functions: Vec<FunctionTally>,
    /// Checks whose top attributed function is one of `planted`.
    pub planted_named: usize,
    /// Each check's session folder, relative to the report folder.
    pub sessions: Vec<String>,
}

/// How often one metric was flagged.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricTally {
    /// `workload/stage/measure`.
    pub metric: String,
    /// Checks where it was a fail-level regression.
    pub fail: usize,
    /// Checks where it was a warn-level regression.
    pub warn: usize,
}

/// How often one function was the attribution's top.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionTally {
    /// Demangled name.
    pub function: String,
    /// Checks.
    pub count: usize,
}

impl VariantTally {
    /// Counts one finished check whose session folder is `session`.
    pub fn add(&mut self, c: &Comparison, session: String) {
        self.checks += 1;
        self.sessions.push(session);
        let mut flagged = false;
        let mut on_instructions = false;
        for v in &c.verdicts {
            let Status::Regression(level) = v.status else {
                continue;
            };
            flagged = true;
            on_instructions |= v.metric.measure() == Measure::Instructions;
            let name = v.metric.to_string();
            let i = match self.metrics.iter().position(|m| m.metric == name) {
                Some(i) => i,
                None => {
                    self.metrics.push(MetricTally {
                        metric: name,
                        ..MetricTally::default()
                    });
                    self.metrics.len() - 1
                }
            };
            match level {
                Level::Fail => self.metrics[i].fail += 1,
                Level::Warn => self.metrics[i].warn += 1,
            }
        }
        self.flagged += usize::from(flagged);
        self.failed += usize::from(c.counts.fail > 0);
        self.flagged_instructions += usize::from(on_instructions);
        self.metrics
            .sort_by_key(|m| std::cmp::Reverse(m.fail + m.warn));
        let top = c
            .attribution
            .first()
            .and_then(|a| a.top.as_ref())
            .map(|f| f.function.clone());
        if let Some(function) = top {
            if self.planted.iter().any(|p| names(&function, p)) {
                self.planted_named += 1;
            }
            match self
                .top_functions
                .iter_mut()
                .find(|t| t.function == function)
            {
                Some(t) => t.count += 1,
                None => self
                    .top_functions
                    .push(FunctionTally { function, count: 1 }),
            }
            self.top_functions
                .sort_by_key(|f| std::cmp::Reverse(f.count));
        }
    }
}

/// Whether the demangled `function` is the function `name` (its last path segment, generics
/// and closures aside).
fn names(function: &str, name: &str) -> bool {
    let base = function.split('<').next().unwrap_or(function);
    base.rsplit("::").next() == Some(name)
}

impl Calibration {
    /// Share of the control variant's checks that flagged anything: `(flagged, checks)`.
    pub fn false_alarms(&self) -> Option<(usize, usize)> {
        self.variants
            .iter()
            .find(|v| v.name == CONTROL)
            .map(|v| (v.flagged, v.checks))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_planted_function_is_recognised_by_its_last_segment() {
        assert!(names(
            "agent_memory::index::calibration_extra_work",
            "calibration_extra_work"
        ));
        assert!(!names(
            "agent_memory::index::IvfIndex::search",
            "calibration_extra_work"
        ));
    }
}
