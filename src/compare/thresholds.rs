//! The `[thresholds]` table of perfcheck.toml: warn/fail limits per kind of measure, overrides
//! per metric pattern, the confidence level and the run-to-run noise floors.
//!
//! ```toml
//! [thresholds]
//! confidence = 0.99            # interval level; false discovery rate = 1 - confidence
//! paired_noise = 1             # percent; drift between interleaved runs of `check --ab`
//! time = { warn = 5, fail = 10, noise = 10 }   # percent; noise = run-to-run drift (1 sd)
//! allocs = { warn = 1, fail = 5 }
//!
//! [thresholds.overrides]
//! "recall/vector_search/wall_ns" = { warn = 5, fail = 10 }
//! "recall/*/alloc_bytes" = { fail = 2 }
//! "*/total/p99_ns" = { gate = true }
//! ```
//!
//! Each setting of a metric comes from the most specific override pattern that sets it, else
//! from its kind's table, else from the built-in default of the kind ([`Thresholds::builtin`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::measured_noise::{MetricNoise, NoiseEntry};
use crate::metrics::{MeasureClass, MetricName, MetricPattern};

/// Limits for one kind of measure or one metric pattern; every field is optional so a table
/// can change one setting and inherit the rest. Percentages are of the base value.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// A change worse than this many percent (beyond its interval) is a warning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn: Option<f64>,
    /// A change worse than this many percent (beyond its interval) fails the check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail: Option<f64>,
    /// Run-to-run drift floor in percent (one standard deviation of one run's statistic), added
    /// to the sampling error of timing and single-value metrics. Unused for exact counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise: Option<f64>,
    /// `false` reports the metric without the relative comparison ever flagging it (an
    /// absolute `max` still applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<bool>,
    /// Fewer samples than this in the head or base run: "insufficient data", never flagged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_samples: Option<usize>,
    /// Timings whose base value is below this many nanoseconds are reported, not gated: a
    /// stage of a few hundred ns moves by half with cache state and clock granularity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_ns: Option<f64>,
    /// Absolute ceiling in the metric's own unit: a head value above it fails whatever the
    /// base (also with no base, or a base of 0 where percentages mean nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Absolute floor in the metric's own unit: a head value below it fails whatever the base
    /// (a chaos scenario's `success_rate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
}

/// The settings in force for one metric, everything resolved.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Limit {
    /// Warn beyond this many percent worse.
    pub warn: f64,
    /// Fail beyond this many percent worse.
    pub fail: f64,
    /// Run-to-run drift floor, percent.
    pub noise: f64,
    /// Drift floor between the interleaved sides of one paired session, percent.
    #[serde(default)]
    pub paired_noise: f64,
    /// Whether the metric can be flagged at all.
    pub gate: bool,
    /// Minimum samples per run.
    pub min_samples: usize,
    /// Minimum base value (ns) for a timing to be gated.
    pub min_ns: f64,
    /// Absolute ceiling of the head value, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Absolute floor of the head value, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
}

/// The `[thresholds]` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// Level of the confidence intervals; `1 - confidence` is the false discovery rate across
    /// the metrics of one check.
    pub confidence: f64,
    /// Bootstrap resamples per run and metric (more: steadier intervals, slower check).
    pub resamples: usize,
    /// Drift floor, percent, between the interleaved runs of one paired A/B session (`check
    /// --ab`): far below `noise`, since base and head share the machine's state minute by
    /// minute; the spread the pairs show widens it.
    pub paired_noise: f64,
    /// Median wall time per operation (`wall_ns`).
    pub time: Limits,
    /// Median thread CPU time per operation (`cpu_ns`).
    pub cpu: Limits,
    /// Tail percentiles (`p95_ns`, `p99_ns`).
    pub percentile: Limits,
    /// Allocations per operation (`allocs`), compared exactly.
    pub allocs: Limits,
    /// Bytes allocated per operation (`alloc_bytes`), compared exactly.
    pub bytes: Limits,
    /// Operations per second (`throughput_ops`).
    pub throughput: Limits,
    /// Other single values (`error_rate`, `heap_growth_bytes_per_hour`).
    pub value: Limits,
    /// Instructions and estimated cycles per operation (`instructions`, `est_cycles`),
    /// compared exactly.
    pub instructions: Limits,
    /// Per-metric overrides keyed by pattern (`recall/*/alloc_bytes`, `*/total/p99_ns`).
    pub overrides: BTreeMap<String, Limits>,
    /// Floors measured on this machine by `calibrate` ([`Thresholds::with_measured`]); not
    /// part of perfcheck.toml.
    #[serde(skip)]
    pub measured: BTreeMap<String, MetricNoise>,
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds {
            confidence: 0.99,
            resamples: 300,
            paired_noise: 1.0,
            time: Limits::default(),
            cpu: Limits::default(),
            percentile: Limits::default(),
            allocs: Limits::default(),
            bytes: Limits::default(),
            throughput: Limits::default(),
            value: Limits::default(),
            instructions: Limits::default(),
            overrides: BTreeMap::new(),
            measured: BTreeMap::new(),
        }
    }
}

/// A `[thresholds]` value that cannot be used: which key, what was wrong, what was expected.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("`thresholds{}{key}`: {message}", if key.is_empty() { "" } else { "." })]
pub struct ThresholdError {
    /// Dotted key under `[thresholds]`, e.g. `time.warn` or `overrides."recall/*/x"`; empty
    /// when the table itself does not decode (the message then names the line).
    pub key: String,
    /// What was wrong and what was expected.
    pub message: String,
}

impl ThresholdError {
    fn new(key: impl Into<String>, message: impl Into<String>) -> ThresholdError {
        ThresholdError {
            key: key.into(),
            message: message.into(),
        }
    }

    /// As the library error for the configuration file `path` (exit code 2).
    pub fn into_error(self, path: &std::path::Path) -> crate::Error {
        crate::Error::Config {
            path: path.to_path_buf(),
            message: self.to_string(),
        }
    }
}

impl Thresholds {
    /// The built-in limits of a kind of measure, used where perfcheck.toml is silent.
    ///
    /// Calibrated on a shared 2-core VM where neighbours come and go: there one run's median
    /// stage time drifts by 6-17% (one sd over 22 reruns of `quick`) from the next run of the
    /// same code, tails, throughput and sub-2 µs stages by far more, while allocation counts
    /// repeat exactly. On a quiet dedicated runner, lower `time.noise` (e.g. to 3) for power.
    pub fn builtin(class: MeasureClass) -> Limit {
        let (warn, fail, noise, gate, min_ns) = match class {
            // Thresholds apply to the near end of the interval, which the noise floor already
            // widened, so they can be small: a fail means "at least 10% slower, clearly".
            MeasureClass::Time => (5.0, 10.0, 10.0, true, 2_000.0),
            // Thread CPU time is read through a system call (~1 µs) whose cost moves with the
            // machine's load: for short stages it measures the clock. Reported, not gated.
            MeasureClass::Cpu => (10.0, 25.0, 10.0, false, 10_000.0),
            // Tails are set by the scheduler (a 4 ms tick preempting 1% of operations), not by
            // the code: reported, not gated, unless a quiet runner opts in.
            MeasureClass::Percentile => (25.0, 50.0, 15.0, false, 2_000.0),
            MeasureClass::Allocs => (1.0, 5.0, 0.0, true, 0.0),
            MeasureClass::Bytes => (1.0, 5.0, 0.0, true, 0.0),
            // Operations over elapsed time: a mean, so every preemption counts; on a shared
            // machine it moved 2-4x between reruns. Reported, not gated, unless opted in.
            MeasureClass::Throughput => (10.0, 25.0, 15.0, false, 0.0),
            // Error rates and heap growth sit near zero (or below it), where a percentage change
            // is noise: a 48 s window of a load run moved heap growth by 100% between reruns.
            // They are judged by absolute ceilings (`max`) instead, which apply regardless.
            MeasureClass::Value => (10.0, 25.0, 10.0, false, 0.0),
            // Counted under callgrind: the same binary and inputs give the same count to the
            // instruction (measured: 10 passes identical), so half a percent is a real change.
            MeasureClass::Instructions => (0.5, 2.0, 0.0, true, 0.0),
        };
        Limit {
            warn,
            fail,
            noise,
            paired_noise: 1.0,
            gate,
            min_samples: 20,
            min_ns,
            max: None,
            min: None,
        }
    }

    /// Built-in absolute ceiling of a measure: an error rate above 0.1% fails (the engine must
    /// not fail operations under load, and its base is normally 0, where a percentage change
    /// means nothing).
    /// A write lost or duplicated under chaos always fails.
    pub fn builtin_max(measure: crate::metrics::Measure) -> Option<f64> {
        use crate::metrics::Measure;
        match measure {
            Measure::ErrorRate => Some(0.001),
            Measure::LostWrites | Measure::DuplicatedWrites => Some(0.0),
            _ => None,
        }
    }

    /// Parses the body of a `[thresholds]` table (TOML text) and validates it.
    pub fn from_toml_str(text: &str) -> Result<Thresholds, ThresholdError> {
        let t: Thresholds = toml::from_str(text).map_err(|e| {
            ThresholdError::new("", e.message().to_owned()).with_span_key(text, e.span())
        })?;
        t.validate()?;
        Ok(t)
    }

    fn class_table(&self, class: MeasureClass) -> &Limits {
        match class {
            MeasureClass::Time => &self.time,
            MeasureClass::Cpu => &self.cpu,
            MeasureClass::Percentile => &self.percentile,
            MeasureClass::Allocs => &self.allocs,
            MeasureClass::Bytes => &self.bytes,
            MeasureClass::Throughput => &self.throughput,
            MeasureClass::Value => &self.value,
            MeasureClass::Instructions => &self.instructions,
        }
    }

    /// Checks every value; the error names the key and what was expected.
    pub fn validate(&self) -> Result<(), ThresholdError> {
        if !(self.confidence.is_finite() && (0.5..1.0).contains(&self.confidence)) {
            return Err(ThresholdError::new(
                "confidence",
                format!(
                    "{} is not a usable level: expected a number from 0.5 up to (not including) 1, e.g. 0.99",
                    self.confidence
                ),
            ));
        }
        if !(20..=100_000).contains(&self.resamples) {
            return Err(ThresholdError::new(
                "resamples",
                format!("{} is out of range: expected 20 to 100000", self.resamples),
            ));
        }
        if !(self.paired_noise.is_finite() && (0.0..=100.0).contains(&self.paired_noise)) {
            return Err(ThresholdError::new(
                "paired_noise",
                format!(
                    "{} is not usable: expected a percentage from 0 to 100, e.g. 1",
                    self.paired_noise
                ),
            ));
        }
        for class in MeasureClass::ALL {
            let key = class.key();
            check_limits(key, self.class_table(class))?;
            let l = self.resolve_class(class);
            if l.warn > l.fail {
                return Err(ThresholdError::new(
                    key,
                    format!(
                        "warn ({}%) is above fail ({}%): expected warn <= fail",
                        l.warn, l.fail
                    ),
                ));
            }
        }
        for (pattern, limits) in &self.overrides {
            let key = format!("overrides.\"{pattern}\"");
            MetricPattern::parse(pattern).map_err(|e| ThresholdError::new(&key, e.message))?;
            check_limits(&key, limits)?;
            if let (Some(w), Some(f)) = (limits.warn, limits.fail) {
                if w > f {
                    return Err(ThresholdError::new(
                        key,
                        format!("warn ({w}%) is above fail ({f}%): expected warn <= fail"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn resolve_class(&self, class: MeasureClass) -> Limit {
        let d = Thresholds::builtin(class);
        let t = self.class_table(class);
        Limit {
            warn: t.warn.unwrap_or(d.warn),
            fail: t.fail.unwrap_or(d.fail),
            noise: t.noise.unwrap_or(d.noise),
            paired_noise: self.paired_noise,
            gate: t.gate.unwrap_or(d.gate),
            min_samples: t.min_samples.unwrap_or(d.min_samples),
            min_ns: t.min_ns.unwrap_or(d.min_ns),
            max: t.max,
            min: t.min,
        }
    }

    /// The settings for one metric. Each field comes from the most specific matching override
    /// that sets it (more exact parts win; then an exact workload beats an exact stage, which
    /// beats an exact measure), else from the kind's table, else the built-in default. If the
    /// result has warn above fail, fail wins (warn = fail).
    pub fn resolve(&self, name: &MetricName) -> Limit {
        let class = name.measure().class();
        let mut l = self.resolve_class(class);
        // A floor set in perfcheck.toml is the user's word; a measured one replaces only the
        // built-in default.
        let mut noise_set = self.class_table(class).noise.is_some();
        l.max = l.max.or(Thresholds::builtin_max(name.measure()));
        let mut matching: Vec<(MetricPattern, &Limits)> = self
            .overrides
            .iter()
            .filter_map(|(p, lim)| MetricPattern::parse(p).ok().map(|p| (p, lim)))
            .filter(|(p, _)| p.matches(name))
            .collect();
        // Least specific first, so more specific ones overwrite.
        matching.sort_by(|a, b| {
            a.0.specificity()
                .cmp(&b.0.specificity())
                .then_with(|| b.0.as_str().cmp(a.0.as_str()))
        });
        for (_, o) in matching {
            if let Some(v) = o.warn {
                l.warn = v;
            }
            if let Some(v) = o.fail {
                l.fail = v;
            }
            if let Some(v) = o.noise {
                l.noise = v;
                noise_set = true;
            }
            if let Some(v) = o.gate {
                l.gate = v;
            }
            if let Some(v) = o.min_samples {
                l.min_samples = v;
            }
            if let Some(v) = o.min_ns {
                l.min_ns = v;
            }
            if let Some(v) = o.max {
                l.max = Some(v);
            }
            if let Some(v) = o.min {
                l.min = Some(v);
            }
        }
        l.warn = l.warn.min(l.fail);
        if let Some(m) = self.measured.get(&name.to_string()) {
            if let (Some(d), false) = (m.drift, noise_set) {
                l.noise = d;
            }
            if let Some(p) = m.paired {
                l.paired_noise = p;
            }
        }
        l
    }

    /// These thresholds with the floors `calibrate` measured on this machine and profile.
    /// Exact counts keep their floor of zero.
    pub fn with_measured(&self, entry: &NoiseEntry) -> Thresholds {
        let mut t = self.clone();
        t.measured = entry
            .metrics
            .iter()
            .filter(|(name, _)| {
                MetricName::parse(name)
                    .map(|n| n.measure().kind() != crate::metrics::MetricKind::Deterministic)
                    .unwrap_or(false)
            })
            .map(|(n, m)| (n.clone(), *m))
            .collect();
        t
    }
}

fn check_limits(key: &str, l: &Limits) -> Result<(), ThresholdError> {
    if let Some(v) = l.min_ns {
        if !(v.is_finite() && v >= 0.0) {
            return Err(ThresholdError::new(
                format!("{key}.min_ns"),
                format!("{v} is not usable: expected a duration in nanoseconds, 0 or more"),
            ));
        }
    }
    for (field, v) in [("warn", l.warn), ("fail", l.fail), ("noise", l.noise)] {
        if let Some(v) = v {
            if !(v.is_finite() && (0.0..=10_000.0).contains(&v)) {
                return Err(ThresholdError::new(
                    format!("{key}.{field}"),
                    format!("{v} is not a usable percentage: expected a number from 0 to 10000 (percent of the base value)"),
                ));
            }
        }
    }
    for (field, v) in [("max", l.max), ("min", l.min)] {
        if let Some(v) = v {
            if !v.is_finite() {
                return Err(ThresholdError::new(
                    format!("{key}.{field}"),
                    format!("{v} is not usable: expected a finite number in the metric's own unit"),
                ));
            }
        }
    }
    if let Some(n) = l.min_samples {
        if n < 2 {
            return Err(ThresholdError::new(
                format!("{key}.min_samples"),
                format!("{n} is too small: expected at least 2"),
            ));
        }
    }
    Ok(())
}

impl ThresholdError {
    /// Fills in the key of a TOML decoding error from its span when serde did not name one.
    fn with_span_key(mut self, text: &str, span: Option<std::ops::Range<usize>>) -> Self {
        if let Some(span) = span {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            self.message = format!("line {line}: {}", self.message);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> MetricName {
        MetricName::parse(s).unwrap()
    }

    #[test]
    fn defaults_apply_per_kind() {
        let t = Thresholds::default();
        t.validate().unwrap();
        let wall = t.resolve(&name("recall/rerank/wall_ns"));
        assert_eq!((wall.warn, wall.fail, wall.noise), (5.0, 10.0, 10.0));
        assert!(wall.gate);
        for ungated in [
            "recall/total/p99_ns",
            "recall/rerank/cpu_ns",
            "recall/total/throughput_ops",
        ] {
            assert!(!t.resolve(&name(ungated)).gate, "{ungated}");
        }
        assert_eq!(t.resolve(&name("recall/rerank/allocs")).fail, 5.0);
    }

    #[test]
    fn overrides_follow_specificity_then_kind_then_builtin() {
        let t = Thresholds::from_toml_str(
            r#"
            confidence = 0.95
            time = { warn = 8, fail = 25 }
            [overrides]
            "*/*/wall_ns" = { warn = 12, noise = 3 }
            "recall/*/wall_ns" = { warn = 6 }
            "*/vector_search/wall_ns" = { warn = 7, fail = 30 }
            "recall/vector_search/wall_ns" = { warn = 5 }
            "*/total/p99_ns" = { gate = true }
            "#,
        )
        .unwrap();
        // Exact pattern sets warn; fail comes from the next most specific that sets it.
        let l = t.resolve(&name("recall/vector_search/wall_ns"));
        assert_eq!((l.warn, l.fail, l.noise), (5.0, 30.0, 3.0));
        // recall/* (exact workload) beats */vector_search (exact stage).
        let l = t.resolve(&name("recall/rerank/wall_ns"));
        assert_eq!((l.warn, l.fail), (6.0, 25.0));
        let l = t.resolve(&name("mixed/vector_search/wall_ns"));
        assert_eq!((l.warn, l.fail), (7.0, 30.0));
        // Patterns of other measures do not apply; kind tables beat built-ins.
        let l = t.resolve(&name("mixed/rerank/wall_ns"));
        assert_eq!((l.warn, l.fail, l.noise), (12.0, 25.0, 3.0));
        let l = t.resolve(&name("mixed/rerank/p95_ns"));
        assert_eq!((l.warn, l.fail, l.noise), (25.0, 50.0, 15.0));
        let l = t.resolve(&name("mixed/rerank/cpu_ns"));
        assert_eq!((l.warn, l.fail, l.noise), (10.0, 25.0, 10.0));
        assert!(t.resolve(&name("mixed/total/p99_ns")).gate);
        assert_eq!(t.confidence, 0.95);
    }

    #[test]
    fn absolute_ceilings_resolve_with_a_builtin_for_error_rate() {
        let t = Thresholds::from_toml_str(
            r#"
            [overrides]
            "load/*/heap_growth_bytes_per_hour" = { max = 1000000 }
            "load/stress/error_rate" = { max = 0.05 }
            "#,
        )
        .unwrap();
        assert_eq!(t.resolve(&name("load/total/error_rate")).max, Some(0.001));
        assert_eq!(t.resolve(&name("load/stress/error_rate")).max, Some(0.05));
        assert_eq!(
            t.resolve(&name("load/total/heap_growth_bytes_per_hour"))
                .max,
            Some(1e6)
        );
        assert_eq!(t.resolve(&name("recall/total/p99_ns")).max, None);
        // Values near zero are not compared in percent, only against ceilings.
        assert!(
            !t.resolve(&name("load/total/heap_growth_bytes_per_hour"))
                .gate
        );
        let e = Thresholds::from_toml_str("[overrides]\n\"load/*/error_rate\" = { max = nan }")
            .unwrap_err()
            .to_string();
        assert!(e.contains(".max") && e.contains("finite"), "{e}");
    }

    #[test]
    fn warn_above_fail_is_clamped_after_resolution() {
        let t = Thresholds::from_toml_str(
            r#"
            [overrides]
            "recall/*/*" = { warn = 40 }
            "#,
        )
        .unwrap();
        let l = t.resolve(&name("recall/rerank/wall_ns"));
        assert_eq!((l.warn, l.fail), (10.0, 10.0));
    }

    #[test]
    fn errors_name_the_key_and_the_expectation() {
        let err = |s: &str| Thresholds::from_toml_str(s).unwrap_err().to_string();
        let e = err("confidence = 1.5");
        assert!(
            e.contains("`thresholds.confidence`") && e.contains("0.5"),
            "{e}"
        );
        let e = err("time = { warn = 30 }");
        assert!(
            e.contains("`thresholds.time`") && e.contains("warn <= fail"),
            "{e}"
        );
        let e = err("allocs = { fail = -1 }");
        assert!(
            e.contains("`thresholds.allocs.fail`") && e.contains("percentage"),
            "{e}"
        );
        let e = err("[overrides]\n\"recall/*/allocz\" = { warn = 1 }");
        assert!(
            e.contains("overrides.\"recall/*/allocz\"") && e.contains("unknown measure `allocz`"),
            "{e}"
        );
        let e = err("time = { wrn = 3 }");
        assert!(
            e.contains("unknown field `wrn`") && e.contains("line 1"),
            "{e}"
        );
        let e = err("bogus = 3");
        assert!(e.contains("unknown field `bogus`"), "{e}");
        let e = err("[overrides]\n\"recall/x/wall_ns\" = { min_samples = 1 }");
        assert!(e.contains("min_samples") && e.contains("at least 2"), "{e}");
        let path = std::path::Path::new("perfcheck.toml");
        let cfg = Thresholds::from_toml_str("confidence = 0")
            .unwrap_err()
            .into_error(path);
        assert!(cfg
            .to_string()
            .starts_with("perfcheck.toml: `thresholds.confidence`"));
    }

    #[test]
    fn measured_floors_replace_defaults_but_not_what_the_user_set() {
        use crate::compare::measured_noise::{MetricNoise, NoiseEntry};
        let noise = |drift, paired| MetricNoise {
            drift: Some(drift),
            paired: Some(paired),
            runs: 40,
            pairs: 20,
        };
        let entry = NoiseEntry {
            machine: "m".into(),
            profile: "ab".into(),
            measured_at: "t".into(),
            commit: "c".into(),
            span_minutes: 10.0,
            confidence: 0.9,
            metrics: [
                ("recall/rerank/wall_ns", noise(3.5, 0.4)),
                ("recall/vector_search/wall_ns", noise(4.5, 2.5)),
                ("recall/rerank/allocs", noise(7.0, 7.0)),
            ]
            .into_iter()
            .map(|(n, m)| (n.to_owned(), m))
            .collect(),
        };
        let t: Thresholds = toml::from_str(
            r#"
            [overrides]
            "recall/vector_search/wall_ns" = { noise = 12 }
            "#,
        )
        .unwrap();
        let t = t.with_measured(&entry);
        let rerank = t.resolve(&name("recall/rerank/wall_ns"));
        assert_eq!((rerank.noise, rerank.paired_noise), (3.5, 0.4));
        // The user's floor stays; the paired floor (not set by the user) is measured.
        let vs = t.resolve(&name("recall/vector_search/wall_ns"));
        assert_eq!((vs.noise, vs.paired_noise), (12.0, 2.5));
        // Metrics without a measurement, and exact counts, keep the configured floors.
        let other = t.resolve(&name("recall/format/wall_ns"));
        assert_eq!((other.noise, other.paired_noise), (10.0, 1.0));
        let allocs = t.resolve(&name("recall/rerank/allocs"));
        assert_eq!((allocs.noise, allocs.paired_noise), (0.0, 1.0));
    }
}
