//! Minimum detectable effect (MDE): the smallest true change a verdict would have caught with
//! probability [`POWER`], given the noise the comparison itself used.
//!
//! For a two-sided test at confidence `c` with standard error `se` of the log change, the
//! change found significant with power `P` is `(q(1 - (1 - c)/2) + q(P)) * se` on the log scale,
//! `q` being the quantile the test uses (Student's t with the test's degrees of freedom, or the
//! normal). The gate asks more: the interval's near end must lie beyond the threshold, i.e.
//! `estimate - q(1 - (1 - c)/2) * se > ln(1 + threshold)`, so the regression it flags with power
//! `P` is the threshold *plus* the statistical MDE on the log scale, not the larger of the two
//! (a true change equal to a threshold larger than the statistical MDE is flagged about
//! `(1 - c)/2` of the time). Exact comparisons see any change beyond their threshold.

use serde::{Deserialize, Serialize};

use super::stats::{normal_quantile, student_quantile};
use crate::metrics::Direction;

/// The power at which every MDE is stated.
pub const POWER: f64 = 0.8;

/// The distribution a test takes its quantiles from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quantiles {
    /// Standard normal (stored-baseline comparisons).
    Normal,
    /// Student's t with this many degrees of freedom (paired rounds).
    Student(usize),
}

impl Quantiles {
    fn at(self, p: f64) -> f64 {
        match self {
            Quantiles::Normal => normal_quantile(p),
            Quantiles::Student(df) => student_quantile(p, df),
        }
    }
}

/// Which part of a warn-level MDE is the larger: the test's noise or the threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Binding {
    /// The statistical MDE exceeds the warn threshold: more rounds or less noise would help.
    Noise,
    /// The warn threshold exceeds the statistical MDE: only a lower threshold would help.
    Threshold,
}

/// Why a gated metric's MDE is unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unknown {
    /// Too few samples, rounds or operations to judge the metric at all.
    TooFewData,
    /// One value per stored run: its noise is the configured floor, never measured.
    SingleValue,
    /// The test's standard error is not a usable number.
    NoEstimate,
}

/// What a statistical test could detect. Effects are relative changes in the metric's bad
/// direction (`0.24` = 24% slower, or 24% less throughput), at power [`POWER`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Effects {
    /// The power of the effects below.
    pub power: f64,
    /// Smallest true change the test finds significant (threshold aside).
    pub statistical: f64,
    /// Smallest true regression flagged at least at warn level; `None` when the threshold
    /// cannot be crossed (a drop of 100% or more).
    pub warn: Option<f64>,
    /// Smallest true regression flagged at fail level; `None` as for `warn`.
    pub fail: Option<f64>,
    /// Which of noise and threshold contributes more to `warn`.
    pub binds: Binding,
    /// Degrees of freedom of the test's t quantiles; absent for normal quantiles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub df: Option<usize>,
}

/// What a gated verdict could have detected, in check.json as `mde` with a `basis` field.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "basis", rename_all = "snake_case")]
pub enum Mde {
    /// From the noise of a statistical test.
    Statistical(Effects),
    /// Compared exactly: any change beyond a threshold is seen; `warn` and `fail` are those
    /// thresholds as relative changes.
    Exact {
        /// The warn threshold, relative.
        warn: f64,
        /// The fail threshold, relative.
        fail: f64,
    },
    /// Gated, but what it could detect is not known (never reported as 0).
    Unknown {
        /// Why.
        reason: Unknown,
    },
}

/// The statistical MDE on the log scale of a two-sided test at `confidence` with standard
/// error `log_se`.
pub fn log_mde(log_se: f64, confidence: f64, q: Quantiles) -> f64 {
    (q.at(0.5 + confidence / 2.0) + q.at(POWER)) * log_se
}

/// A threshold in percent as a distance on the log scale in the bad direction; `None` when no
/// value can cross it (higher-is-better metrics cannot drop by 100%).
fn log_threshold(direction: Direction, pct: f64) -> Option<f64> {
    let t = pct / 100.0;
    match direction {
        Direction::LowerIsBetter => Some(t.ln_1p()),
        Direction::HigherIsBetter if t < 1.0 => Some(-(-t).ln_1p()),
        Direction::HigherIsBetter => None,
    }
}

/// A log-scale distance in the bad direction as a relative change of that size.
fn relative(direction: Direction, x: f64) -> f64 {
    match direction {
        Direction::LowerIsBetter => x.exp_m1(),
        Direction::HigherIsBetter => -(-x).exp_m1(),
    }
}

impl Mde {
    /// The MDE of a statistical test with standard error `log_se` of the log change
    /// ([`Unknown::NoEstimate`] when that is not a finite non-negative number).
    pub fn statistical(
        log_se: f64,
        confidence: f64,
        q: Quantiles,
        direction: Direction,
        warn_pct: f64,
        fail_pct: f64,
    ) -> Mde {
        let m = log_mde(log_se, confidence, q);
        if !(m.is_finite() && m >= 0.0) {
            return Mde::unknown(Unknown::NoEstimate);
        }
        let gate = |pct: f64| log_threshold(direction, pct).map(|t| relative(direction, t + m));
        let binds = match log_threshold(direction, warn_pct) {
            Some(t) if t > m => Binding::Threshold,
            _ => Binding::Noise,
        };
        Mde::Statistical(Effects {
            power: POWER,
            statistical: relative(direction, m),
            warn: gate(warn_pct),
            fail: gate(fail_pct),
            binds,
            df: match q {
                Quantiles::Student(df) => Some(df),
                Quantiles::Normal => None,
            },
        })
    }

    /// The MDE of an exact comparison: the thresholds themselves (a change must exceed them).
    pub fn exact(warn_pct: f64, fail_pct: f64) -> Mde {
        Mde::Exact {
            warn: warn_pct / 100.0,
            fail: fail_pct / 100.0,
        }
    }

    /// A gated metric whose MDE is not known.
    pub fn unknown(reason: Unknown) -> Mde {
        Mde::Unknown { reason }
    }

    /// The smallest true regression flagged at least at warn level, if known.
    pub fn warn(&self) -> Option<f64> {
        match self {
            Mde::Statistical(e) => e.warn,
            Mde::Exact { warn, .. } => Some(*warn),
            Mde::Unknown { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_formula_adds_the_two_quantiles() {
        // Normal, 99%: z(0.995) + z(0.8) = 2.5758 + 0.8416.
        let m = log_mde(0.1, 0.99, Quantiles::Normal);
        assert!((m - 0.341_74).abs() < 1e-4, "{m}");
        // t with 9 df, 99%: 3.2498 + 0.8834 (t tables).
        let m = log_mde(0.01, 0.99, Quantiles::Student(9));
        assert!((m - 0.041_33).abs() < 1e-4, "{m}");
        // 95%, 4 df: 2.7764 + 0.9410.
        let m = log_mde(1.0, 0.95, Quantiles::Student(4));
        assert!((m - 3.7174).abs() < 1e-3, "{m}");
    }

    /// The effects of a statistical MDE (the test's panic names a non-statistical one).
    fn effects(m: Mde) -> Effects {
        match m {
            Mde::Statistical(e) => e,
            other => panic!("not statistical: {other:?}"),
        }
    }

    #[test]
    fn noise_and_threshold_add_on_the_log_scale() {
        let lower = Direction::LowerIsBetter;
        let e = effects(Mde::statistical(
            0.1,
            0.99,
            Quantiles::Normal,
            lower,
            5.0,
            10.0,
        ));
        let m = log_mde(0.1, 0.99, Quantiles::Normal);
        assert!((e.statistical - m.exp_m1()).abs() < 1e-12);
        assert!((e.warn.unwrap() - (1.05 * m.exp() - 1.0)).abs() < 1e-12);
        assert!((e.fail.unwrap() - (1.10 * m.exp() - 1.0)).abs() < 1e-12);
        assert_eq!((e.binds, e.df, e.power), (Binding::Noise, None, 0.8));
        // Quiet paired rounds: the threshold is the larger part.
        let q = Mde::statistical(0.002, 0.99, Quantiles::Student(9), lower, 5.0, 10.0);
        let w = q.warn().unwrap();
        let q = effects(q);
        assert_eq!((q.binds, q.df), (Binding::Threshold, Some(9)));
        assert!(w > 0.05 && w < 0.06, "{q:?}");
        // No noise: the threshold alone.
        let z = effects(Mde::statistical(
            0.0,
            0.99,
            Quantiles::Normal,
            lower,
            5.0,
            10.0,
        ));
        assert_eq!(z.statistical, 0.0);
        assert!((z.warn.unwrap() - 0.05).abs() < 1e-12);
        let nan = Mde::statistical(f64::NAN, 0.99, Quantiles::Normal, lower, 5.0, 10.0);
        assert_eq!(nan, Mde::unknown(Unknown::NoEstimate));
        assert_eq!(nan.warn(), None);
    }

    #[test]
    fn higher_is_better_counts_drops() {
        let higher = Direction::HigherIsBetter;
        let e = effects(Mde::statistical(
            0.1,
            0.99,
            Quantiles::Normal,
            higher,
            10.0,
            100.0,
        ));
        let m = log_mde(0.1, 0.99, Quantiles::Normal);
        // A drop: 1 - exp(-m), and the warn level: 1 - 0.9 * exp(-m).
        assert!((e.statistical - (1.0 - (-m).exp())).abs() < 1e-12);
        assert!((e.warn.unwrap() - (1.0 - 0.9 * (-m).exp())).abs() < 1e-12);
        // Throughput cannot drop by 100%: that threshold is never crossed.
        assert_eq!(e.fail, None);
    }

    #[test]
    fn check_json_names_the_basis() {
        let e = Mde::exact(1.0, 5.0);
        assert_eq!(e.warn(), Some(0.01));
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(json, r#"{"basis":"exact","warn":0.01,"fail":0.05}"#);
        assert_eq!(serde_json::from_str::<Mde>(&json).unwrap(), e);
        let u = Mde::unknown(Unknown::TooFewData);
        let json = serde_json::to_string(&u).unwrap();
        assert_eq!(json, r#"{"basis":"unknown","reason":"too_few_data"}"#);
        assert_eq!(serde_json::from_str::<Mde>(&json).unwrap(), u);
        let s = Mde::statistical(
            0.01,
            0.99,
            Quantiles::Student(9),
            Direction::LowerIsBetter,
            5.0,
            10.0,
        );
        let json = serde_json::to_string(&s).unwrap();
        assert!(
            json.starts_with(r#"{"basis":"statistical","power":0.8,"statistical":0.04"#),
            "{json}"
        );
        assert!(json.ends_with(r#","binds":"threshold","df":9}"#), "{json}");
        assert_eq!(serde_json::from_str::<Mde>(&json).unwrap(), s);
    }
}

/// Seeded simulations of whole checks: a true change equal to the MDE must be flagged by the
/// real comparison in about [`POWER`] of them.
#[cfg(test)]
mod simulation {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::compare::{compare, compare_paired, Limits, Thresholds};
    use crate::metrics::{Metric, MetricName, MetricSet, RunInfo};

    const METRIC: &str = "recall/rerank/wall_ns";

    /// A run whose every operation took `ns`: its median has no sampling error, so all the
    /// noise is the run-to-run noise the simulation puts in.
    fn run(ns: f64) -> MetricSet {
        let name = MetricName::parse(METRIC).unwrap();
        MetricSet {
            run: RunInfo::default(),
            metrics: vec![Metric::from_samples(name, vec![ns.round() as u64; 20])],
        }
    }

    fn gauss(rng: &mut ChaCha8Rng) -> f64 {
        let u1: f64 = rng.random_range(f64::EPSILON..1.0);
        let u2: f64 = rng.random();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// Default thresholds, or time thresholds of 0% so that the gate is the test alone; few
    /// resamples, as the runs have no sampling error to resample.
    fn thresholds(zero: bool) -> Thresholds {
        let mut t = Thresholds {
            resamples: 20,
            ..Thresholds::default()
        };
        if zero {
            t.time = Limits {
                warn: Some(0.0),
                fail: Some(0.0),
                ..Limits::default()
            };
        }
        t
    }

    fn flagged(c: &crate::compare::Comparison) -> bool {
        let name = MetricName::parse(METRIC).unwrap();
        c.verdict(&name).is_some_and(|v| v.status.is_regression())
    }

    const ROUNDS: usize = 10;
    /// Noise of one run's ln(median) within a session; a round's difference has sqrt(2) times it.
    const RUN_SD: f64 = 0.03;

    /// Share of `trials` paired checks of `ROUNDS` rounds, each run off by `run_sd` on the log
    /// scale (and the machine by up to 30% per round, which pairing cancels), that flag a
    /// slowdown of `log_effect`. Also returns the median warn MDE the checks reported.
    fn paired_rate(
        seed: u64,
        trials: usize,
        run_sd: f64,
        log_effect: f64,
        t: &Thresholds,
    ) -> (f64, f64) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut hits = 0;
        let mut reported = Vec::with_capacity(trials);
        for _ in 0..trials {
            let (mut b, mut h) = (Vec::new(), Vec::new());
            for _ in 0..ROUNDS {
                let machine = 0.3 * rng.random::<f64>();
                b.push(run(100_000.0 * (machine + run_sd * gauss(&mut rng)).exp()));
                h.push(run(
                    100_000.0 * (machine + log_effect + run_sd * gauss(&mut rng)).exp()
                ));
            }
            let c = compare_paired(&b, &h, t, 1);
            hits += usize::from(flagged(&c));
            let v = &c.verdicts[0];
            reported.push(v.mde.and_then(|m| m.warn()).unwrap_or(f64::NAN));
        }
        reported.sort_by(f64::total_cmp);
        (hits as f64 / trials as f64, reported[trials / 2])
    }

    /// The MDE of a statistical test with standard error `se`, at `t`'s settings.
    fn effects(se: f64, q: Quantiles, t: &Thresholds) -> Effects {
        let l = t.resolve(&MetricName::parse(METRIC).unwrap());
        match Mde::statistical(
            se,
            t.confidence,
            q,
            Direction::LowerIsBetter,
            l.warn,
            l.fail,
        ) {
            Mde::Statistical(e) => e,
            other => panic!("not statistical: {other:?}"),
        }
    }

    /// The paired MDE of the simulation's true noise.
    fn paired_mde(run_sd: f64, t: &Thresholds) -> Effects {
        let se = (2.0f64).sqrt() * run_sd / (ROUNDS as f64).sqrt();
        effects(se, Quantiles::Student(ROUNDS - 1), t)
    }

    #[test]
    fn paired_checks_find_the_statistical_mde_with_the_stated_power() {
        let t = thresholds(true);
        let mde = paired_mde(RUN_SD, &t);
        // se = 0.0134, (t(0.995, 9) + t(0.8, 9)) * se = 0.0555: +5.7%.
        assert!((mde.statistical - 0.0570).abs() < 5e-4, "{mde:?}");
        let effect = mde.statistical.ln_1p();
        let (rate, reported) = paired_rate(11, 2000, RUN_SD, effect, &t);
        assert!((0.72..=0.88).contains(&rate), "detected {rate}");
        // Each check reports the MDE of the spread it saw; their median is near the truth
        // (the sample sd's median is a few percent below sigma with 9 df).
        let ratio = reported / mde.statistical;
        assert!(
            (0.85..=1.05).contains(&ratio),
            "reported {reported} vs {mde:?}"
        );
        // Half the MDE is mostly missed; no change is almost never flagged.
        let (half, _) = paired_rate(12, 2000, RUN_SD, effect / 2.0, &t);
        assert!(half < 0.4, "half the MDE detected {half}");
        let (none, _) = paired_rate(13, 1000, RUN_SD, 0.0, &t);
        assert!(none < 0.02, "no change flagged {none}");
    }

    #[test]
    fn paired_checks_flag_threshold_plus_noise_not_the_larger_of_the_two() {
        // Quiet rounds: the 5% warn threshold is larger than the statistical MDE.
        let t = thresholds(false);
        let sd = 0.015;
        let mde = paired_mde(sd, &t);
        assert_eq!(mde.binds, Binding::Threshold);
        assert!(mde.statistical < 0.05, "{mde:?}");
        let warn = mde.warn.unwrap();
        let (rate, _) = paired_rate(21, 2000, sd, warn.ln_1p(), &t);
        assert!((0.72..=0.88).contains(&rate), "detected {rate} at {warn}");
        // A true change of max(statistical MDE, threshold) = the threshold: the interval's near
        // end must clear the threshold, so it is almost never flagged.
        let (at_threshold, _) = paired_rate(22, 1000, sd, 0.05f64.ln_1p(), &t);
        assert!(at_threshold < 0.05, "detected {at_threshold}");
    }

    /// Share of `trials` checks against `bases` stored baselines, every run off by `drift` (the
    /// configured floor), that flag a slowdown of `log_effect`; and the warn MDE reported.
    fn stored_rate(
        seed: u64,
        trials: usize,
        bases: usize,
        log_effect: f64,
        t: &Thresholds,
    ) -> (f64, Vec<f64>) {
        let drift = t.resolve(&MetricName::parse(METRIC).unwrap()).noise / 100.0;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut hits = 0;
        let mut reported = Vec::new();
        for _ in 0..trials {
            let base: Vec<MetricSet> = (0..bases)
                .map(|_| run(100_000.0 * (drift * gauss(&mut rng)).exp()))
                .collect();
            let head = run(100_000.0 * (log_effect + drift * gauss(&mut rng)).exp());
            let c = compare(&base, &head, t, 1);
            hits += usize::from(flagged(&c));
            reported.push(c.verdicts[0].mde.and_then(|m| m.warn()).unwrap_or(f64::NAN));
        }
        (hits as f64 / trials as f64, reported)
    }

    #[test]
    fn stored_checks_find_the_mde_with_the_stated_power() {
        for zero in [true, false] {
            let t = thresholds(zero);
            let l = t.resolve(&MetricName::parse(METRIC).unwrap());
            // One baseline, drift at the floor: se = floor * sqrt(2), known to the test.
            let se = (2.0f64).sqrt() * l.noise / 100.0;
            let mde = effects(se, Quantiles::Normal, &t);
            let warn = mde.warn.unwrap();
            let (rate, reported) = stored_rate(31, 2000, 1, warn.ln_1p(), &t);
            assert!(
                (0.72..=0.88).contains(&rate),
                "zero {zero}: detected {rate} at {warn}"
            );
            assert!(
                reported.iter().all(|r| (r - warn).abs() < 1e-9),
                "{reported:?}"
            );
            let (half, _) = stored_rate(32, 2000, 1, warn.ln_1p() / 2.0, &t);
            assert!(half < 0.4, "zero {zero}: half the MDE detected {half}");
        }
        // Three baselines: their spread can widen the drift beyond the floor, so each check's
        // MDE depends on its baselines. A head slower by the MDE the check reports for them is
        // flagged about as often (a little more: the widened drift overstates the true one).
        let t = thresholds(false);
        let drift = t.resolve(&MetricName::parse(METRIC).unwrap()).noise / 100.0;
        let mut rng = ChaCha8Rng::seed_from_u64(34);
        let trials = 2000;
        let mut hits = 0;
        for _ in 0..trials {
            let base: Vec<MetricSet> = (0..3)
                .map(|_| run(100_000.0 * (drift * gauss(&mut rng)).exp()))
                .collect();
            let noise = drift * gauss(&mut rng);
            let probe = compare(&base, &run(100_000.0 * noise.exp()), &t, 1);
            let warn = probe.verdicts[0].mde.and_then(|m| m.warn()).unwrap();
            let head = run(100_000.0 * (warn.ln_1p() + noise).exp());
            hits += usize::from(flagged(&compare(&base, &head, &t, 1)));
        }
        let rate = hits as f64 / trials as f64;
        assert!(
            (0.75..=0.92).contains(&rate),
            "three baselines: detected {rate}"
        );
        // Default thresholds: (z(0.995) + z(0.8)) * 0.1414 = 0.483, and 1.05 * e^0.483 - 1.
        let t = thresholds(false);
        let (_, reported) = stored_rate(33, 1, 1, 0.0, &t);
        assert!((reported[0] - 0.7025).abs() < 1e-3, "{reported:?}");
    }
}
