//! Change points of one series of log values with per-point standard errors: binary
//! segmentation where every candidate split is tested by permutation, as Apache Otava's
//! E-divisive implementation does (recursive bisection, stop when p > alpha).
//!
//! The rule, stated once:
//! - Each point i has a log value y_i and a variance v_i = se_i^2 + tau^2: se_i is the point's
//!   own standard error (from its runs' band), tau^2 the drift between commits that the bands
//!   do not show, estimated robustly from successive differences (1.4826 x median |y_{i+1} -
//!   y_i|, halved, minus the mean se^2; never below 0), so a step does not inflate it.
//! - In a segment, the candidate split k maximises |m_after - m_before| / sqrt(1/W_before +
//!   1/W_after), the inverse-variance weighted means and their weights; both sides hold at
//!   least [`MIN_SEGMENT`] points, so one or two outliers never form a segment of their own.
//! - The split is kept when the permutation p-value of that maximum (the points shuffled within
//!   the segment [`PERMUTATIONS`] times, seeded) is at most [`ALPHA`]; both halves are then
//!   searched again. The permutation makes the test exact under "no change" whatever the
//!   scale of the noise, so a wrong band width cannot create change points.
//! - Each kept step is reported between the final neighbouring change points: the weighted
//!   means before and after, the step with its normal interval (its standard error widened by
//!   the observed over-dispersion when points scatter more than their variances say).

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::compare::stats::normal_quantile;

/// Fewest points on each side of a change point.
pub const MIN_SEGMENT: usize = 3;
/// Significance level of each split's permutation test.
pub const ALPHA: f64 = 0.01;
/// Permutations per tested split (the smallest p-value is 1 / (PERMUTATIONS + 1)).
pub const PERMUTATIONS: usize = 499;

/// One detected step, on the log scale.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// Index of the first point at the new level.
    pub index: usize,
    /// Weighted mean of ln(value) between the previous change point (or the start) and this one.
    pub mean_before: f64,
    /// Weighted mean of ln(value) from this change point to the next (or the end).
    pub mean_after: f64,
    /// Standard error of `mean_after - mean_before`.
    pub log_se: f64,
    /// Permutation p-value of the split when it was found.
    pub p_value: f64,
}

impl Step {
    /// ln(after / before).
    pub fn log_step(&self) -> f64 {
        self.mean_after - self.mean_before
    }

    /// The step as a relative change and its two-sided interval at `confidence`.
    pub fn relative(&self, confidence: f64) -> (f64, f64, f64) {
        let z = normal_quantile(0.5 + confidence / 2.0);
        let d = self.log_step();
        (
            d.exp_m1(),
            (d - z * self.log_se).exp_m1(),
            (d + z * self.log_se).exp_m1(),
        )
    }
}

/// The change points of `logs` (ln values, oldest first) whose standard errors are `se`,
/// deterministic for a `seed`. Series shorter than two minimal segments have none.
pub fn detect(logs: &[f64], se: &[f64], seed: u64) -> Vec<Step> {
    let n = logs.len();
    if n < 2 * MIN_SEGMENT || se.len() != n || logs.iter().any(|y| !y.is_finite()) {
        return Vec::new();
    }
    let var = variances(logs, se);
    let weights = weights(&var);
    let mut found: Vec<(usize, f64)> = Vec::new();
    let mut todo = vec![(0usize, n)];
    while let Some((a, b)) = todo.pop() {
        if b - a < 2 * MIN_SEGMENT {
            continue;
        }
        let Some((k, stat)) = best_split(&logs[a..b], &weights[a..b]) else {
            continue;
        };
        // Seeded per segment, so the result does not depend on the order segments are visited.
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ ((a as u64) << 32 | b as u64));
        let p = permutation_p(&logs[a..b], &weights[a..b], stat, &mut rng);
        if p <= ALPHA {
            found.push((a + k, p));
            todo.push((a, a + k));
            todo.push((a + k, b));
        }
    }
    found.sort_by_key(|(i, _)| *i);
    steps(logs, &var, &weights, &found)
}

/// Per-point variance: the point's own se^2 plus the between-commit drift the bands miss.
fn variances(logs: &[f64], se: &[f64]) -> Vec<f64> {
    let mut diffs: Vec<f64> = logs.windows(2).map(|w| (w[1] - w[0]).abs()).collect();
    let sd_diff = 1.4826 * median(&mut diffs);
    let own = se.iter().map(|s| s * s).sum::<f64>() / se.len() as f64;
    let tau2 = (sd_diff * sd_diff / 2.0 - own).max(0.0);
    se.iter()
        .map(|s| if s.is_finite() { s * s + tau2 } else { tau2 })
        .collect()
}

/// Inverse-variance weights; exact points (variance 0) get the largest weight seen, or all
/// weigh 1 when every point is exact (counted metrics).
fn weights(var: &[f64]) -> Vec<f64> {
    let smallest = var
        .iter()
        .copied()
        .filter(|v| *v > 0.0)
        .fold(f64::MAX, f64::min);
    var.iter()
        .map(|v| {
            if *v > 0.0 {
                1.0 / v
            } else if smallest < f64::MAX {
                1.0 / smallest
            } else {
                1.0
            }
        })
        .collect()
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        0.5 * (v[m - 1] + v[m])
    }
}

/// The split (index of the first point after it) with the largest standardised difference of
/// weighted means, both sides at least [`MIN_SEGMENT`] long; `None` when every split scores 0.
fn best_split(y: &[f64], w: &[f64]) -> Option<(usize, f64)> {
    let total_w: f64 = w.iter().sum();
    let total_s: f64 = y.iter().zip(w).map(|(y, w)| y * w).sum();
    let (mut w1, mut s1) = (0.0, 0.0);
    let mut best: Option<(usize, f64)> = None;
    for k in 1..y.len() {
        w1 += w[k - 1];
        s1 += w[k - 1] * y[k - 1];
        if k < MIN_SEGMENT || y.len() - k < MIN_SEGMENT {
            continue;
        }
        let (w2, s2) = (total_w - w1, total_s - s1);
        let z = (s2 / w2 - s1 / w1).abs() / (1.0 / w1 + 1.0 / w2).sqrt();
        if z > best.map_or(0.0, |(_, b)| b) {
            best = Some((k, z));
        }
    }
    best
}

/// Share of shuffles of the segment whose best split scores at least `observed` (with the
/// observed order counted once). Stops as soon as the answer is certain to exceed [`ALPHA`].
fn permutation_p(y: &[f64], w: &[f64], observed: f64, rng: &mut ChaCha8Rng) -> f64 {
    let mut order: Vec<usize> = (0..y.len()).collect();
    let mut ys = vec![0.0; y.len()];
    let mut ws = vec![0.0; y.len()];
    let limit = (ALPHA * (PERMUTATIONS + 1) as f64).floor() as usize;
    let mut at_least = 1usize;
    // A tie within rounding is a tie: exact (counted) series repeat values.
    let bar = observed * (1.0 - 1e-9);
    for done in 1..=PERMUTATIONS {
        order.shuffle(rng);
        for (slot, &i) in order.iter().enumerate() {
            ys[slot] = y[i];
            ws[slot] = w[i];
        }
        if best_split(&ys, &ws).is_some_and(|(_, z)| z >= bar) {
            at_least += 1;
            if at_least > limit {
                return at_least as f64 / (done + 1) as f64;
            }
        }
    }
    at_least as f64 / (PERMUTATIONS + 1) as f64
}

/// Each change point's step between its final neighbours, with its standard error.
fn steps(y: &[f64], var: &[f64], w: &[f64], found: &[(usize, f64)]) -> Vec<Step> {
    let mut bounds = vec![0];
    bounds.extend(found.iter().map(|(i, _)| *i));
    bounds.push(y.len());
    // Weighted mean of each final segment and the variance of that mean (sum w^2 v / W^2,
    // which is 1/W for inverse-variance weights and 0 for exact points).
    let segments: Vec<(f64, f64)> = bounds
        .windows(2)
        .map(|b| {
            let r = b[0]..b[1];
            let tw: f64 = w[r.clone()].iter().sum();
            let mean = r.clone().map(|i| w[i] * y[i]).sum::<f64>() / tw;
            let v = r.map(|i| w[i] * w[i] * var[i]).sum::<f64>() / (tw * tw);
            (mean, v)
        })
        .collect();
    let dispersion = over_dispersion(y, var, &bounds, &segments);
    found
        .iter()
        .enumerate()
        .map(|(j, &(index, p_value))| {
            let (before, vb) = segments[j];
            let (after, va) = segments[j + 1];
            Step {
                index,
                mean_before: before,
                mean_after: after,
                log_se: ((vb + va) * dispersion).sqrt(),
                p_value,
            }
        })
        .collect()
}

/// Pearson chi-square per degree of freedom of the segmented fit, at least 1: when points
/// scatter around their segment means more than their variances say, intervals widen.
fn over_dispersion(y: &[f64], var: &[f64], bounds: &[usize], segments: &[(f64, f64)]) -> f64 {
    let mut chi2 = 0.0;
    let mut df = 0usize;
    for (b, (mean, _)) in bounds.windows(2).zip(segments) {
        for i in b[0]..b[1] {
            if var[i] > 0.0 {
                chi2 += (y[i] - mean).powi(2) / var[i];
                df += 1;
            }
        }
    }
    let df = df.saturating_sub(segments.len());
    if df == 0 {
        1.0
    } else {
        (chi2 / df as f64).max(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    /// ln values of `n` points around 1e6 with log-normal noise of `cv`, times `factor` from
    /// index `at` on.
    fn series(n: usize, cv: f64, at: usize, factor: f64, seed: u64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|i| {
                let u: f64 = rng.random_range(1e-12..1.0);
                let step = if i >= at { factor.ln() } else { 0.0 };
                1e6f64.ln() + step + cv * normal_quantile(u)
            })
            .collect()
    }

    #[test]
    fn a_planted_step_is_found_at_its_commit_with_its_size() {
        let y = series(30, 0.03, 17, 1.2, 7);
        let found = detect(&y, &[0.03; 30], 1);
        assert_eq!(found.len(), 1, "{found:?}");
        let s = &found[0];
        assert_eq!(s.index, 17);
        let (step, lo, hi) = s.relative(0.95);
        assert!((step - 0.2).abs() < 0.04, "{step}");
        assert!(lo < 0.2 && 0.2 < hi && lo > 0.1, "{lo} {hi}");
        assert!(s.p_value <= ALPHA);
    }

    #[test]
    fn flat_noisy_series_rarely_have_a_change_point() {
        // Each split is tested at ALPHA = 1%: of 200 seeded step-free series, about 2 show one.
        let flagged = (0..200)
            .filter(|seed| {
                let y = series(40, 0.05, 40, 1.0, 100 + seed);
                !detect(&y, &[0.05; 40], 1).is_empty()
            })
            .count();
        assert!(flagged <= 6, "{flagged} of 200 flat series flagged");
        let y = series(40, 0.05, 40, 1.0, 100);
        assert!(detect(&y, &[0.05; 40], 1).is_empty());
    }

    #[test]
    fn two_steps_are_both_found_and_each_measured_between_its_neighbours() {
        let mut y = series(36, 0.02, 12, 1.5, 3);
        for v in &mut y[24..] {
            *v -= 2f64.ln();
        }
        let found = detect(&y, &[0.02; 36], 9);
        let at: Vec<usize> = found.iter().map(|s| s.index).collect();
        assert_eq!(at, vec![12, 24]);
        assert!((found[0].relative(0.95).0 - 0.5).abs() < 0.05);
        assert!((found[1].relative(0.95).0 + 0.5).abs() < 0.05);
    }

    #[test]
    fn one_outlier_is_not_a_change_point() {
        let mut y = series(20, 0.02, 20, 1.0, 5);
        y[10] += 1.0;
        assert!(detect(&y, &[0.02; 20], 1).is_empty());
    }

    #[test]
    fn exact_counts_step_with_an_exact_interval() {
        let y: Vec<f64> = (0..12)
            .map(|i| if i < 6 { 100f64.ln() } else { 130f64.ln() })
            .collect();
        let found = detect(&y, &[0.0; 12], 1);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].index, 6);
        let (step, lo, hi) = found[0].relative(0.99);
        assert!((step - 0.3).abs() < 1e-9 && lo == step && hi == step);
        let flat = vec![100f64.ln(); 12];
        assert!(detect(&flat, &[0.0; 12], 1).is_empty());
    }

    #[test]
    fn the_same_seed_gives_the_same_answer_and_short_series_none() {
        let y = series(25, 0.05, 12, 1.1, 11);
        let se = [0.05; 25];
        assert_eq!(detect(&y, &se, 4), detect(&y, &se, 4));
        assert!(detect(&y[..5], &se[..5], 4).is_empty());
    }

    #[test]
    fn wider_bands_than_the_scatter_do_not_hide_a_clear_step() {
        // The bands say 10% (the default drift floor) though the points scatter by 2%: the
        // permutation test judges the split against the scatter the points show.
        let y = series(30, 0.02, 15, 1.1, 21);
        let found = detect(&y, &[0.10; 30], 1);
        assert_eq!(found.iter().map(|s| s.index).collect::<Vec<_>>(), vec![15]);
    }
}
