//! The `[load]` section of a profile and the command-line forms that override it (`--rate`,
//! `--duration`, `--mix`, `--phases`).
//!
//! ```toml
//! [load]
//! rate = 2000                      # peak offered ops/s; phase rates are multiples of it
//! timeout = "1s"                   # an operation not done this long after its intended start
//! phases = [                       #   is a timeout (and is shed if it has not started yet)
//!   { name = "ramp-up", duration = "10s", from = 0.1, to = 1.0 },
//!   { name = "peak", duration = "60s", rate = 1.0 },
//!   { name = "stress", duration = "20s", rate = 1.5 },
//!   { name = "ramp-down", duration = "10s", from = 1.0, to = 0.1 },
//! ]
//! [load.slo]                       # the run's own pass/fail limits (exit 1 when crossed)
//! p99 = "2ms"
//! error_rate = 0.001
//! ```
//!
//! Other keys of `[load]` are the load target's (the engine's `recall_k`), passed to it under
//! `load`; the operation mix is the target's, from the profile's `[mix]` table by convention
//! (`--mix` replaces that table).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::mix::Mix;
use crate::config::Table;

/// Highest offered rate, ops/s: of `load.rate`, of any phase, and of `--rate`.
pub const MAX_RATE: f64 = 10_000_000.0;
/// Longest scheduled run (all phases together), so that intended start times fit in
/// nanoseconds with room to spare.
pub const MAX_RUN: Duration = Duration::from_secs(366 * 24 * 3600);

/// Load-test settings of a profile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
// No `deny_unknown_fields`: unknown keys are the load target's (`rest`), and it rejects the
// ones it does not know.
#[serde(default)]
pub struct LoadSettings {
    /// Offered operations per second at rate multiple 1.0.
    pub rate: f64,
    /// Worker threads running engine operations; 0 picks `max(4, 2 * cores)`.
    pub workers: usize,
    /// An operation whose completion is later than this after its intended start is a timeout;
    /// one that has not even started by then is shed without running.
    #[serde(with = "humantime_serde_compat")]
    pub timeout: Duration,
    /// Seed of the operation choices (kinds, queries).
    pub seed: u64,
    /// The phases, run back to back.
    pub phases: Vec<PhaseSpec>,
    /// Pass/fail limits of the run itself.
    pub slo: Slo,
    /// Saturation search (`--find-max`).
    pub find_max: FindMaxSettings,
    /// Keys that are the load target's (`recall_k`, `consolidation_batch`), passed to it.
    #[serde(flatten)]
    pub rest: Table,
}

impl Default for LoadSettings {
    fn default() -> Self {
        LoadSettings {
            rate: 1_000.0,
            workers: 0,
            timeout: Duration::from_secs(1),
            seed: 1,
            phases: vec![
                PhaseSpec::ramp("ramp-up", 10, 0.1, 1.0),
                PhaseSpec::steady("peak", 30, 1.0),
                PhaseSpec::steady("stress", 10, 1.5),
                PhaseSpec::ramp("ramp-down", 10, 1.0, 0.1),
            ],
            slo: Slo::default(),
            find_max: FindMaxSettings::default(),
            rest: Table::new(),
        }
    }
}

/// One phase: a duration and a rate that is constant (`rate`) or moves linearly (`from`, `to`),
/// as multiples of [`LoadSettings::rate`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseSpec {
    /// Name: lowercase letters, digits, `-` and `_` (`ramp-up` becomes `ramp_up` in metric
    /// names).
    pub name: String,
    /// How long the phase schedules operations.
    #[serde(with = "humantime_serde_compat")]
    pub duration: Duration,
    /// Constant rate multiple (exclusive with `from`/`to`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Rate multiple at the start of a ramp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<f64>,
    /// Rate multiple at the end of a ramp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<f64>,
}

impl PhaseSpec {
    /// A constant-rate phase.
    pub fn steady(name: &str, seconds: u64, rate: f64) -> Self {
        PhaseSpec {
            name: name.into(),
            duration: Duration::from_secs(seconds),
            rate: Some(rate),
            from: None,
            to: None,
        }
    }

    /// A linear ramp from `from` to `to`.
    pub fn ramp(name: &str, seconds: u64, from: f64, to: f64) -> Self {
        PhaseSpec {
            name: name.into(),
            duration: Duration::from_secs(seconds),
            rate: None,
            from: Some(from),
            to: Some(to),
        }
    }

    /// `(from, to)` rate multiples (equal for a constant phase).
    pub fn multiples(&self) -> (f64, f64) {
        match (self.rate, self.from, self.to) {
            (Some(r), _, _) => (r, r),
            (None, Some(f), Some(t)) => (f, t),
            (None, Some(f), None) => (f, f),
            (None, None, Some(t)) => (t, t),
            (None, None, None) => (1.0, 1.0),
        }
    }

    /// Whether the rate is constant.
    pub fn is_steady(&self) -> bool {
        let (f, t) = self.multiples();
        f == t
    }

    /// The name as a metric stage segment (`ramp-up` -> `ramp_up`).
    pub fn metric_name(&self) -> String {
        self.name.replace('-', "_")
    }

    fn validate(&self) -> Result<(), String> {
        let n = &self.name;
        let ok = n.starts_with(|c: char| c.is_ascii_lowercase())
            && n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !ok || n == "total" {
            return Err(format!(
                "phase name `{n}`: expected lowercase letters, digits, `-` and `_`, starting with a letter (and not `total`)"
            ));
        }
        if self.duration.is_zero() {
            return Err(format!("phase `{n}`: duration must be more than 0"));
        }
        if self.rate.is_some() && (self.from.is_some() || self.to.is_some()) {
            return Err(format!(
                "phase `{n}`: give either `rate` or `from`/`to`, not both"
            ));
        }
        let (f, t) = self.multiples();
        if !(f.is_finite() && t.is_finite() && f >= 0.0 && t >= 0.0) || f + t <= 0.0 {
            return Err(format!(
                "phase `{n}`: rate multiples must be finite, 0 or more, and not both 0"
            ));
        }
        Ok(())
    }
}

/// The run's own pass/fail limits: `load` exits 1 when a steady phase crosses one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Slo {
    /// Highest acceptable p99 latency (from intended start) in every steady phase.
    #[serde(with = "humantime_serde_compat")]
    pub p99: Duration,
    /// Highest acceptable share of failed operations (errors and timeouts) in every steady
    /// phase.
    pub error_rate: f64,
    /// Highest acceptable heap growth per hour (only judged when the run measured it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heap_growth_bytes_per_hour: Option<f64>,
    /// Phases not judged (e.g. `stress`, which is meant to overload).
    pub exempt_phases: Vec<String>,
}

impl Default for Slo {
    fn default() -> Self {
        Slo {
            p99: Duration::from_millis(500),
            error_rate: 0.001,
            heap_growth_bytes_per_hour: None,
            exempt_phases: vec!["stress".into()],
        }
    }
}

/// Settings of the saturation search.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FindMaxSettings {
    /// First offered rate (ops/s).
    pub start: f64,
    /// Each step offers this many times the previous rate until a limit is crossed.
    pub factor: f64,
    /// Unmeasured warm-up at the step's rate before each measured step.
    #[serde(with = "humantime_serde_compat")]
    pub warmup: Duration,
    /// Measured duration of each step.
    #[serde(with = "humantime_serde_compat")]
    pub step: Duration,
    /// Bisection steps between the last passing and the first failing rate.
    pub refine: usize,
    /// At most this many measured steps in all.
    pub max_steps: usize,
    /// p99 limit of a sustainable rate.
    #[serde(with = "humantime_serde_compat")]
    pub p99: Duration,
    /// Failure-rate limit (errors and timeouts) of a sustainable rate.
    pub error_rate: f64,
}

impl Default for FindMaxSettings {
    fn default() -> Self {
        FindMaxSettings {
            start: 500.0,
            factor: 1.5,
            warmup: Duration::from_secs(2),
            step: Duration::from_secs(10),
            refine: 3,
            max_steps: 20,
            p99: Duration::from_millis(2),
            error_rate: 0.001,
        }
    }
}

impl LoadSettings {
    /// Checks ranges; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        let finite_pos = |x: f64| x.is_finite() && x > 0.0;
        if !finite_pos(self.rate) || self.rate > MAX_RATE {
            return Err(format!(
                "load.rate must be a number of operations per second above 0 (at most 10,000,000), got {}",
                self.rate
            ));
        }
        if self.workers > 1024 {
            return Err(format!(
                "load.workers must be 0 (auto) to 1024, got {}",
                self.workers
            ));
        }
        if self.timeout.is_zero() {
            return Err("load.timeout must be more than 0".into());
        }
        for (key, v) in &self.rest {
            if let Some(problem) = unstorable(v, 0) {
                return Err(format!("load.{key}: {problem}"));
            }
        }
        if self.phases.is_empty() {
            return Err("load.phases must list at least one phase".into());
        }
        for p in &self.phases {
            p.validate().map_err(|e| format!("load.phases: {e}"))?;
        }
        for p in &self.phases {
            let (f, t) = p.multiples();
            let peak = f.max(t) * self.rate;
            if peak > MAX_RATE {
                return Err(format!(
                    "load.phases: phase `{}` offers {peak} ops/s ({}x load.rate {}): expected at most {MAX_RATE} ops/s",
                    p.name,
                    f.max(t),
                    self.rate
                ));
            }
        }
        let total = self
            .phases
            .iter()
            .try_fold(Duration::ZERO, |sum, p| sum.checked_add(p.duration))
            .filter(|d| *d <= MAX_RUN);
        if total.is_none() {
            return Err(format!(
                "load.phases: the phases last longer than {} in all: expected a shorter run",
                humantime::format_duration(MAX_RUN)
            ));
        }
        let mut names: Vec<&str> = self.phases.iter().map(|p| p.name.as_str()).collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return Err("load.phases: phase names must be unique".into());
        }
        if !(0.0..=1.0).contains(&self.slo.error_rate) {
            return Err("load.slo.error_rate must be between 0 and 1".into());
        }
        if let Some(h) = self.slo.heap_growth_bytes_per_hour {
            if !h.is_finite() {
                return Err(format!(
                    "load.slo.heap_growth_bytes_per_hour must be a finite number of bytes per hour, got {h}"
                ));
            }
        }
        let f = &self.find_max;
        if !(finite_pos(f.start) && f.factor.is_finite() && f.factor > 1.0) {
            return Err("load.find_max: start must be above 0 and factor above 1".into());
        }
        if f.start > MAX_RATE {
            return Err(format!(
                "load.find_max.start must be at most {MAX_RATE} ops/s, got {}",
                f.start
            ));
        }
        if f.warmup > MAX_RUN || f.step > MAX_RUN {
            return Err(format!(
                "load.find_max: warmup and step must each be at most {}",
                humantime::format_duration(MAX_RUN)
            ));
        }
        if f.step.is_zero() || f.max_steps == 0 {
            return Err("load.find_max: step must be more than 0 and max_steps at least 1".into());
        }
        if !(0.0..=1.0).contains(&f.error_rate) {
            return Err("load.find_max.error_rate must be between 0 and 1".into());
        }
        Ok(())
    }

    /// Worker threads to start: the setting, or `max(4, 2 * cores)` for 0.
    pub fn effective_workers(&self) -> usize {
        if self.workers > 0 {
            return self.workers;
        }
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        (2 * cores).max(4)
    }

    /// Total scheduled duration of the phases.
    pub fn total_duration(&self) -> Duration {
        self.phases.iter().map(|p| p.duration).sum()
    }
}

/// Parses a duration such as `60s`, `10m`, `1h`, `500ms`; the error says what was expected.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("`{s}` is not a duration ({e}): expected e.g. 60s, 10m, 1h, 500ms"))
}

/// Parses `--duration`: a duration above zero (`60s`, `10m`, `1h`).
pub fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err(format!(
            "`{s}` is zero: expected a positive duration, e.g. 60s"
        )),
        d => Ok(d),
    }
}

/// Parses `--rate`: operations per second, above 0 and at most 10,000,000.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= MAX_RATE => Ok(v),
        _ => Err(format!(
            "`{s}` is not a rate: expected operations per second, a number above 0 (at most 10000000), e.g. 2000"
        )),
    }
}

/// What `--mix` expects, for its errors.
pub const MIX_FORM: &str = "expected KIND=WEIGHT[,KIND=WEIGHT...] with the load target's kinds and whole-number weights, e.g. recall=80,remember=15,consolidation=5";

/// Parses `--mix recall=80,remember=15,consolidation=5`. The kinds are the load target's:
/// [`Mix::fill`] checks them and gives the kinds not named a weight of 0.
pub fn parse_mix(s: &str) -> Result<Mix, String> {
    let expected = MIX_FORM;
    let mut kinds: Vec<(String, u32)> = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, w) = part
            .split_once('=')
            .ok_or_else(|| format!("`{part}`: {expected}"))?;
        let w: u32 = w.trim().parse().map_err(|_| {
            format!(
                "`{part}`: weight `{}` is not a whole number; {expected}",
                w.trim()
            )
        })?;
        let k = k.trim();
        let name_ok = k.starts_with(|c: char| c.is_ascii_alphabetic())
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !name_ok {
            return Err(format!("`{part}`: `{k}` is not a kind name; {expected}"));
        }
        if kinds.iter().any(|(n, _)| n == k) {
            return Err(format!("`{k}` is given twice; {expected}"));
        }
        kinds.push((k.to_owned(), w));
    }
    let mix = Mix::new(kinds);
    if mix.total() == 0 {
        return Err(format!("the weights add up to 0; {expected}"));
    }
    Ok(mix)
}

/// Parses `--phases NAME=DURATION@RATE,...` where RATE is a multiple of `--rate` (`1.5`, or a
/// percentage `150%`) or a ramp `FROM..TO` (`0.1..1`).
pub fn parse_phases(s: &str) -> Result<Vec<PhaseSpec>, String> {
    let expected = "expected NAME=DURATION@RATE[,...] where RATE is a multiple of --rate (1, 1.5, 150%) or a ramp FROM..TO, e.g. ramp-up=10s@0.1..1,peak=60s@1,stress=20s@1.5,ramp-down=10s@1..0.1";
    let mult = |x: &str| -> Result<f64, String> {
        let x = x.trim();
        let v = match x.strip_suffix('%') {
            Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
            None => x.parse::<f64>(),
        };
        v.map_err(|_| format!("`{x}` is not a rate multiple; {expected}"))
    };
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, rest) = part
            .split_once('=')
            .ok_or_else(|| format!("`{part}`: {expected}"))?;
        let (dur, rate) = rest
            .split_once('@')
            .ok_or_else(|| format!("`{part}`: no @RATE; {expected}"))?;
        let duration = parse_duration(dur).map_err(|e| format!("`{part}`: {e}"))?;
        let p = match rate.split_once("..") {
            Some((f, t)) => PhaseSpec {
                name: name.trim().into(),
                duration,
                rate: None,
                from: Some(mult(f)?),
                to: Some(mult(t)?),
            },
            None => PhaseSpec {
                name: name.trim().into(),
                duration,
                rate: Some(mult(rate)?),
                from: None,
                to: None,
            },
        };
        p.validate()?;
        out.push(p);
    }
    if out.is_empty() {
        return Err(format!("no phases given; {expected}"));
    }
    Ok(out)
}

/// Deepest nesting of tables and arrays a target's `[load]` key may have (as for the other
/// opaque tables of a profile: a record, JSON parsed with a depth limit, must carry it).
const MAX_DEPTH: usize = 24;

/// Why a record cannot store `v`: a null (TOML has none: it was a NaN or an infinity) or
/// nesting deeper than [`MAX_DEPTH`].
fn unstorable(v: &serde_json::Value, depth: usize) -> Option<&'static str> {
    if depth > MAX_DEPTH {
        return Some("nested too deeply (at most 24 levels)");
    }
    match v {
        serde_json::Value::Null => Some("expected a finite number"),
        serde_json::Value::Object(m) => m.values().find_map(|x| unstorable(x, depth + 1)),
        serde_json::Value::Array(a) => a.iter().find_map(|x| unstorable(x, depth + 1)),
        _ => None,
    }
}

/// `serde(with)` helpers for durations written as humantime strings (`"10s"`, `"1h"`).
pub(crate) mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_parses_and_errors_name_the_form() {
        let m = parse_mix("recall=80, remember=15,consolidation=5").unwrap();
        assert_eq!(m.to_string(), "recall=80 remember=15 consolidation=5");
        let kinds = Mix::new([("recall", 1), ("remember", 1), ("consolidation", 1)]);
        let m = parse_mix("recall=1").unwrap().fill(&kinds).unwrap();
        assert_eq!(m.to_string(), "recall=1 remember=0 consolidation=0");
        let e = parse_mix("recal=80").unwrap().fill(&kinds).unwrap_err();
        assert!(
            e.contains("unknown kind `recal`") && e.contains("recall, remember"),
            "{e}"
        );
        assert!(e.contains("expected KIND=WEIGHT"), "{e}");
        for bad in [
            "recall",
            "recall=x",
            "recall=0",
            "recall=1,recall=2",
            "=1",
            "a b=1",
        ] {
            let e = parse_mix(bad).unwrap_err();
            assert!(e.contains("expected KIND=WEIGHT"), "{bad}: {e}");
        }
    }

    #[test]
    fn unknown_load_keys_are_the_target_s_and_must_be_storable() {
        let s: LoadSettings = toml::from_str("rate = 5\nrecall_k = 3\n").unwrap();
        assert_eq!(s.rest["recall_k"], 3);
        s.validate().unwrap();
        let back: LoadSettings = toml::from_str(&toml::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        let bad: LoadSettings = toml::from_str("repeat_fraction = nan\n").unwrap();
        let e = bad.validate().unwrap_err();
        assert!(e.contains("load.repeat_fraction"), "{e}");
    }

    #[test]
    fn phases_parse_constant_percent_and_ramps() {
        let p = parse_phases("ramp-up=10s@0.1..1,peak=1m@1,stress=20s@150%").unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].multiples(), (0.1, 1.0));
        assert!(!p[0].is_steady());
        assert_eq!(p[1].duration, Duration::from_secs(60));
        assert_eq!(p[2].multiples(), (1.5, 1.5));
        assert_eq!(p[0].metric_name(), "ramp_up");
        for bad in [
            "peak=60s",
            "peak=xs@1",
            "Peak=1s@1",
            "p=1s@-1",
            "p=0s@1",
            "p=1s@0..0",
        ] {
            assert!(parse_phases(bad).is_err(), "{bad}");
        }
        assert!(parse_phases("peak=60s")
            .unwrap_err()
            .contains("NAME=DURATION@RATE"));
    }

    #[test]
    fn settings_round_trip_through_toml_and_validate() {
        let s = LoadSettings::default();
        s.validate().unwrap();
        let text = toml::to_string(&s).unwrap();
        let back: LoadSettings = toml::from_str(&text).unwrap();
        assert_eq!(back, s);
        let bad: Result<LoadSettings, _> = toml::from_str("timeout = \"soon\"");
        assert!(bad.unwrap_err().to_string().contains("not a duration"));
        let dup = LoadSettings {
            phases: vec![
                PhaseSpec::steady("a", 1, 1.0),
                PhaseSpec::steady("a", 1, 1.0),
            ],
            ..LoadSettings::default()
        };
        assert!(dup.validate().unwrap_err().contains("unique"));
    }

    #[test]
    fn phases_too_long_in_all_are_rejected_before_summing() {
        // Found by tests/fuzz_parsers.rs: two phases of 10^19 s each passed validation, then
        // `total_duration` (a `Duration` sum) and the schedule's nanosecond axis overflowed.
        let huge = parse_phases("a=10000000000000000000s@1,b=10000000000000000000s@1").unwrap();
        let s = LoadSettings {
            phases: huge,
            ..LoadSettings::default()
        };
        let e = s.validate().unwrap_err();
        assert!(
            e.contains("load.phases") && e.contains("longer than"),
            "{e}"
        );
        // Each phase under the limit, the sum over it.
        let s = LoadSettings {
            phases: parse_phases("a=200days@1,b=200days@1").unwrap(),
            ..LoadSettings::default()
        };
        assert!(s.validate().unwrap_err().contains("longer than"));
        let s = LoadSettings {
            phases: parse_phases("a=100days@1,b=100days@1").unwrap(),
            ..LoadSettings::default()
        };
        s.validate().unwrap();
        assert_eq!(s.total_duration(), Duration::from_secs(200 * 86_400));
    }

    #[test]
    fn a_phase_rate_beyond_the_limit_is_rejected() {
        // A multiple of 1e308 times load.rate is an infinite offered rate.
        let s = LoadSettings {
            phases: parse_phases("p=1s@1e308").unwrap(),
            ..LoadSettings::default()
        };
        let e = s.validate().unwrap_err();
        assert!(
            e.contains("phase `p`") && e.contains("at most 10000000"),
            "{e}"
        );
        let s = LoadSettings {
            rate: 1e6,
            phases: parse_phases("p=1s@0.1..10").unwrap(),
            ..LoadSettings::default()
        };
        s.validate().unwrap();
    }

    #[test]
    fn a_nan_heap_growth_limit_is_rejected() {
        let bad: LoadSettings = toml::from_str("[slo]\nheap_growth_bytes_per_hour = nan").unwrap();
        let e = bad.validate().unwrap_err();
        assert!(e.contains("load.slo.heap_growth_bytes_per_hour"), "{e}");
    }

    #[test]
    fn rate_and_duration_flags_parse_in_range() {
        assert_eq!(parse_rate(" 2000 "), Ok(2000.0));
        for bad in ["0", "-1", "NaN", "inf", "1e8", "x"] {
            assert!(
                parse_rate(bad).unwrap_err().contains("is not a rate"),
                "{bad}"
            );
        }
        assert_eq!(parse_positive_duration("90s"), Ok(Duration::from_secs(90)));
        assert!(parse_positive_duration("0s")
            .unwrap_err()
            .contains("is zero"));
        assert!(parse_positive_duration("soon")
            .unwrap_err()
            .contains("not a duration"));
    }
}
