//! The outcome for one metric: its status and the numbers behind it.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::mde::Mde;
use crate::metrics::{Direction, MetricKind, MetricName, Statistic, Unit};

/// How bad a regression is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    /// Beyond the warn threshold: reported, the check still passes.
    Warn,
    /// Beyond the fail threshold: the check fails (exit code 1).
    Fail,
}

/// What the comparison concluded about one metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// Worse, clearly and beyond a threshold.
    Regression(Level),
    /// Better, clearly and beyond the warn threshold.
    Improvement,
    /// No clear change beyond the thresholds.
    Unchanged,
    /// Too few samples to judge (e.g. a stage that ran a handful of times).
    InsufficientData,
    /// Shown for information; thresholds say never to flag it (`gate = false`).
    Ignored,
    /// Only in the head run.
    New,
    /// Only in the baseline.
    Missing,
}

impl Status {
    /// Stable name used in check.json: `fail`, `warn`, `improvement`, `unchanged`,
    /// `insufficient_data`, `ignored`, `new`, `missing`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Regression(Level::Fail) => "fail",
            Status::Regression(Level::Warn) => "warn",
            Status::Improvement => "improvement",
            Status::Unchanged => "unchanged",
            Status::InsufficientData => "insufficient_data",
            Status::Ignored => "ignored",
            Status::New => "new",
            Status::Missing => "missing",
        }
    }

    /// Parses [`Status::as_str`].
    pub fn from_name(s: &str) -> Option<Status> {
        Some(match s {
            "fail" => Status::Regression(Level::Fail),
            "warn" => Status::Regression(Level::Warn),
            "improvement" => Status::Improvement,
            "unchanged" => Status::Unchanged,
            "insufficient_data" => Status::InsufficientData,
            "ignored" => Status::Ignored,
            "new" => Status::New,
            "missing" => Status::Missing,
            _ => return None,
        })
    }

    /// Whether this is a regression at either level.
    pub fn is_regression(self) -> bool {
        matches!(self, Status::Regression(_))
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Status {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Status, D::Error> {
        let s = String::deserialize(d)?;
        Status::from_name(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown status `{s}`: expected fail, warn, improvement, unchanged, insufficient_data, ignored, new or missing"
            ))
        })
    }
}

/// The verdict on one metric. Changes are relative (`0.12` = 12% larger than base); thresholds
/// are in percent, as in perfcheck.toml.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// `workload/stage/measure`.
    pub metric: MetricName,
    /// How it was compared.
    pub kind: MetricKind,
    /// Which way is good.
    pub direction: Direction,
    /// Unit of `base` and `head`.
    pub unit: Unit,
    /// The statistic compared.
    pub statistic: Statistic,
    /// The conclusion.
    pub status: Status,
    /// Base value (geometric mean over baseline runs for timings, mean for counts).
    pub base: Option<f64>,
    /// Head value.
    pub head: Option<f64>,
    /// head / base - 1; `None` when either side is absent or the base is zero.
    pub change: Option<f64>,
    /// Lower end of the interval of `change` (equal to it for exact comparisons).
    pub ci_low: Option<f64>,
    /// Upper end of the interval of `change`.
    pub ci_high: Option<f64>,
    /// Two-sided p-value of "no change" (statistical comparisons only).
    pub p_value: Option<f64>,
    /// Benjamini-Hochberg adjusted p-value across the check's statistical comparisons.
    pub q_value: Option<f64>,
    /// Warn threshold, percent worse.
    pub warn: f64,
    /// Fail threshold, percent worse.
    pub fail: f64,
    /// Run-to-run drift assumed, as a fraction (statistical comparisons only).
    pub noise: Option<f64>,
    /// Baseline runs that had this metric.
    pub base_runs: usize,
    /// Samples in the baseline runs (summed).
    pub base_samples: usize,
    /// Samples in the head run.
    pub head_samples: usize,
    /// Why the status is what it is, when that is not obvious (too few samples, base was 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// What the comparison could have detected; `None` when unknown (too few data, one value
    /// per stored run) or not applicable (not gated, new, missing). Absent in older check.json.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mde: Option<Mde>,
}

/// Classifies an interval of the relative change against the thresholds.
///
/// A regression needs both: the change is statistically clear (`clear`, e.g. its q-value is
/// within the false discovery rate) and the whole interval lies beyond the threshold in the bad
/// direction. An improvement is the mirror image against the warn threshold.
pub fn classify(
    direction: Direction,
    (low, high): (f64, f64),
    clear: bool,
    warn_pct: f64,
    fail_pct: f64,
) -> Status {
    if !clear {
        return Status::Unchanged;
    }
    // Distance beyond the threshold in the bad direction, in relative terms.
    let (worst_case_good, best_case_bad) = match direction {
        // Lower is better: worse means larger; the interval's low end must clear the threshold.
        Direction::LowerIsBetter => (high, low),
        // Higher is better: worse means smaller; the high end must be below -threshold.
        Direction::HigherIsBetter => (-low, -high),
    };
    let beyond = |pct: f64| best_case_bad > pct / 100.0;
    if beyond(fail_pct) {
        Status::Regression(Level::Fail)
    } else if beyond(warn_pct) {
        Status::Regression(Level::Warn)
    } else if worst_case_good < -warn_pct / 100.0 {
        Status::Improvement
    } else {
        Status::Unchanged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_by_name() {
        for s in [
            Status::Regression(Level::Fail),
            Status::Regression(Level::Warn),
            Status::Improvement,
            Status::Unchanged,
            Status::InsufficientData,
            Status::Ignored,
            Status::New,
            Status::Missing,
        ] {
            assert_eq!(Status::from_name(s.as_str()), Some(s));
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(serde_json::from_str::<Status>(&json).unwrap(), s);
        }
        assert!(serde_json::from_str::<Status>("\"bad\"").is_err());
    }

    #[test]
    fn the_whole_interval_must_clear_the_threshold() {
        let lower = Direction::LowerIsBetter;
        assert_eq!(
            classify(lower, (0.12, 0.30), true, 10.0, 25.0),
            Status::Regression(Level::Warn)
        );
        assert_eq!(
            classify(lower, (0.26, 0.30), true, 10.0, 25.0),
            Status::Regression(Level::Fail)
        );
        // Point estimate beyond fail, interval reaching below warn: not flagged.
        assert_eq!(
            classify(lower, (0.05, 0.60), true, 10.0, 25.0),
            Status::Unchanged
        );
        // Not statistically clear: never flagged.
        assert_eq!(
            classify(lower, (0.3, 0.4), false, 10.0, 25.0),
            Status::Unchanged
        );
        assert_eq!(
            classify(lower, (-0.3, -0.15), true, 10.0, 25.0),
            Status::Improvement
        );
        assert_eq!(
            classify(lower, (-0.3, -0.05), true, 10.0, 25.0),
            Status::Unchanged
        );
    }

    #[test]
    fn higher_is_better_mirrors() {
        let higher = Direction::HigherIsBetter;
        assert_eq!(
            classify(higher, (-0.40, -0.30), true, 10.0, 25.0),
            Status::Regression(Level::Fail)
        );
        assert_eq!(
            classify(higher, (-0.20, -0.12), true, 10.0, 25.0),
            Status::Regression(Level::Warn)
        );
        assert_eq!(
            classify(higher, (0.12, 0.20), true, 10.0, 25.0),
            Status::Improvement
        );
        // Exact comparisons pass a zero-width interval.
        assert_eq!(
            classify(Direction::LowerIsBetter, (0.02, 0.02), true, 1.0, 5.0),
            Status::Regression(Level::Warn)
        );
        assert_eq!(
            classify(Direction::LowerIsBetter, (0.01, 0.01), true, 1.0, 5.0),
            Status::Unchanged
        );
    }
}
