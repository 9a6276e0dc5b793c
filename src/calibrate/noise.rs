//! The noise a calibration measured, per metric, for `noise.json`
//! ([`crate::compare::measured_noise`]): the spread of the base binary's runs over the whole
//! calibration (the drift a stored baseline faces) and the spread of the comment-only
//! control's paired differences (what `check --ab` faces). Each is stored as the upper bound
//! of its estimate at [`UPPER_CONFIDENCE`], minus the runs' own sampling error: a floor that a
//! short calibration underestimates would make later checks cry wolf.

use std::collections::BTreeMap;

use statrs::distribution::{ChiSquared, ContinuousCDF};

use crate::compare::measured_noise::{MetricNoise, NoiseEntry};
use crate::compare::stats::{rng_for, safe_ln, BlockSamples};
use crate::metrics::{Metric, MetricKind, MetricSet};

/// Level of the upper bound stored for each floor.
pub const UPPER_CONFIDENCE: f64 = 0.9;
/// Fewest base runs for a drift floor.
pub const MIN_RUNS: usize = 5;
/// Fewest control rounds for a paired floor.
pub const MIN_PAIRS: usize = 4;

/// Bootstrap resamples per run for its sampling error.
const RESAMPLES: usize = 200;

/// ln(statistic) of runs and paired differences, per metric, as the checks come in.
#[derive(Clone, Debug, Default)]
pub struct NoiseSamples {
    metrics: BTreeMap<String, Samples>,
}

#[derive(Clone, Debug, Default)]
struct Samples {
    /// (ln statistic, its sampling variance) of each base run.
    runs: Vec<(f64, f64)>,
    /// (ln head - ln base, the two sampling variances summed) of each control round.
    pairs: Vec<(f64, f64)>,
}

/// ln(statistic) of a noisy metric and its sampling variance; `None` for exact counts and
/// values that are zero or missing.
fn ln_stat(m: &Metric, stream: u64) -> Option<(f64, f64)> {
    match m.kind() {
        MetricKind::Deterministic => None,
        MetricKind::Single => (m.value.is_finite() && m.value > 0.0).then(|| (m.value.ln(), 0.0)),
        MetricKind::Timing => {
            let b = BlockSamples::new(&m.samples);
            let stat = m.statistic();
            let value = b.full(stat);
            if !value.is_finite() {
                return None;
            }
            let mut rng = rng_for(stream, &m.name.to_string());
            let se = b.log_se(stat, RESAMPLES, &mut rng);
            Some((safe_ln(value), se * se))
        }
    }
}

impl NoiseSamples {
    /// Adds one paired session: its base runs always, its rounds as pairs when the variant is
    /// the comment-only control (base and head then differ in nothing that runs).
    pub fn add_session(&mut self, base: &[MetricSet], head: &[MetricSet], control: bool) {
        for (i, run) in base.iter().enumerate() {
            for m in &run.metrics {
                if let Some(x) = ln_stat(m, 2 * i as u64) {
                    self.metrics
                        .entry(m.name.to_string())
                        .or_default()
                        .runs
                        .push(x);
                }
            }
        }
        if !control {
            return;
        }
        for (i, (b, h)) in base.iter().zip(head).enumerate() {
            for hm in &h.metrics {
                let Some(bm) = b.get(&hm.name) else { continue };
                if let (Some(bx), Some(hx)) =
                    (ln_stat(bm, 2 * i as u64), ln_stat(hm, 2 * i as u64 + 1))
                {
                    self.metrics
                        .entry(hm.name.to_string())
                        .or_default()
                        .pairs
                        .push((hx.0 - bx.0, hx.1 + bx.1));
                }
            }
        }
    }

    /// The floors, in percent, of every metric with enough runs or pairs.
    pub fn floors(&self) -> BTreeMap<String, MetricNoise> {
        self.metrics
            .iter()
            .filter_map(|(name, s)| {
                let drift = (s.runs.len() >= MIN_RUNS).then(|| upper_sd(&s.runs, 1.0));
                let paired = (s.pairs.len() >= MIN_PAIRS).then(|| upper_sd(&s.pairs, 2.0));
                (drift.is_some() || paired.is_some()).then(|| {
                    (
                        name.clone(),
                        MetricNoise {
                            drift: drift.map(percent),
                            paired: paired.map(percent),
                            runs: s.runs.len(),
                            pairs: s.pairs.len(),
                        },
                    )
                })
            })
            .collect()
    }

    /// A noise.json entry of these floors.
    pub fn entry(
        &self,
        machine: &str,
        profile: &str,
        commit: &str,
        measured_at: &str,
        span_minutes: f64,
    ) -> NoiseEntry {
        NoiseEntry {
            machine: machine.to_owned(),
            profile: profile.to_owned(),
            measured_at: measured_at.to_owned(),
            commit: commit.to_owned(),
            span_minutes,
            confidence: UPPER_CONFIDENCE,
            metrics: self.floors(),
        }
    }
}

/// One sd of a ln value beyond sampling, from `(x, sampling variance)` pairs whose variance
/// holds `sides` such sds: the upper [`UPPER_CONFIDENCE`] bound of the sample variance
/// (chi-squared), less the mean sampling variance, over `sides`, square-rooted.
fn upper_sd(xs: &[(f64, f64)], sides: f64) -> f64 {
    let n = xs.len() as f64;
    let mean = xs.iter().map(|x| x.0).sum::<f64>() / n;
    let var = xs.iter().map(|x| (x.0 - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let sampling = xs.iter().map(|x| x.1).sum::<f64>() / n;
    let df = n - 1.0;
    let lower_q = ChiSquared::new(df)
        .map(|c| c.inverse_cdf(1.0 - UPPER_CONFIDENCE))
        .unwrap_or(f64::NAN);
    let upper = if lower_q.is_finite() && lower_q > 0.0 {
        df * var / lower_q
    } else {
        f64::INFINITY
    };
    ((upper - sampling).max(0.0) / sides).sqrt()
}

/// A sd of ln values as the percentage the thresholds use (`exp(sd) - 1`).
fn percent(sd: f64) -> f64 {
    100.0 * sd.exp_m1()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{MetricName, RunInfo};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn gauss(rng: &mut ChaCha8Rng) -> f64 {
        // Box-Muller: enough for a test's normal draws.
        let u: f64 = rng.random_range(f64::EPSILON..1.0);
        let v: f64 = rng.random_range(0.0..1.0);
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }

    /// A run whose `m/s/throughput_ops` is `exp(ln_value)` (a single value: no sampling error).
    fn run(ln_value: f64) -> MetricSet {
        MetricSet {
            run: RunInfo::default(),
            metrics: vec![Metric::single(
                MetricName::parse("m/s/throughput_ops").unwrap(),
                1000.0 * ln_value.exp(),
            )],
        }
    }

    #[test]
    fn the_stored_floor_bounds_the_true_drift_from_above_most_of_the_time() {
        // True drift 4% between runs, true paired drift 1.5% per side.
        let (drift, paired) = (0.04f64, 0.015f64);
        let mut covered = (0, 0);
        let trials = 200;
        let mut estimates = Vec::new();
        for trial in 0..trials {
            let mut rng = ChaCha8Rng::seed_from_u64(trial);
            let mut s = NoiseSamples::default();
            for _check in 0..10 {
                let base: Vec<MetricSet> = (0..2).map(|_| run(drift * gauss(&mut rng))).collect();
                let head: Vec<MetricSet> = base
                    .iter()
                    .map(|b| {
                        let ln_b = (b.metrics[0].value / 1000.0).ln();
                        run(ln_b + paired * (2.0f64).sqrt() * gauss(&mut rng))
                    })
                    .collect();
                s.add_session(&base, &head, true);
            }
            let f = s.floors()["m/s/throughput_ops"];
            assert_eq!((f.runs, f.pairs), (20, 20));
            let (d, p) = (f.drift.unwrap(), f.paired.unwrap());
            covered.0 += usize::from(d >= 100.0 * drift.exp_m1());
            covered.1 += usize::from(p >= 100.0 * paired.exp_m1());
            estimates.push(d);
        }
        // An upper 90% bound covers the truth in about 90% of calibrations.
        let rate = |c: usize| c as f64 / trials as f64;
        assert!((0.84..=0.96).contains(&rate(covered.0)), "{covered:?}");
        assert!((0.84..=0.96).contains(&rate(covered.1)), "{covered:?}");
        // And is not absurdly wide: the median bound within 1.5x the truth.
        estimates.sort_by(f64::total_cmp);
        let median = estimates[trials as usize / 2];
        assert!(median > 4.0 && median < 6.0, "{median}");
    }

    #[test]
    fn exact_counts_and_short_calibrations_store_nothing() {
        let allocs = |v: u64| MetricSet {
            run: RunInfo::default(),
            metrics: vec![Metric::from_samples(
                MetricName::parse("m/s/allocs").unwrap(),
                vec![v; 50],
            )],
        };
        let mut s = NoiseSamples::default();
        for v in 1..10 {
            s.add_session(&[allocs(v)], &[allocs(v)], true);
        }
        assert!(s.floors().is_empty());

        let mut s = NoiseSamples::default();
        s.add_session(&[run(0.0), run(0.1)], &[run(0.0), run(0.1)], false);
        assert!(s.floors().is_empty(), "{:?}", s.floors());
        // A non-control session adds runs, never pairs.
        for _ in 0..2 {
            s.add_session(&[run(0.0), run(0.1)], &[run(0.3), run(0.5)], false);
        }
        let f = s.floors()["m/s/throughput_ops"];
        assert_eq!((f.runs, f.pairs, f.paired), (6, 0, None));
    }
}
