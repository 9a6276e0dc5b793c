//! The statistics of a comparison: a block bootstrap of a run's statistic, the run-to-run drift
//! model, and the normal distribution helpers they need.
//!
//! Why this method (and not Mann-Whitney U or a per-sample bootstrap of the difference): on a
//! shared machine two runs of identical code differ by more than their samples can explain
//! (CPU frequency, neighbours, heap and cache layout all change between processes). Any test
//! that treats the thousands of samples of each run as the unit of evidence is therefore
//! overconfident and flags unchanged reruns. Here the unit of evidence is the *run*: each run's
//! statistic (median or percentile) gets a standard error from a bootstrap over contiguous blocks
//! of its operations (so drift *within* a run widens it), and a run-level drift variance is added
//! on top: a configured floor per kind of measure, widened when several baseline runs show more
//! spread than that. The comparison is made on the log scale (a relative change), with a normal
//! interval from the combined standard error.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::metrics::Statistic;

/// Blocks per run in the bootstrap: enough for a stable standard error, few enough that a block
/// spans a stretch of time (drift within a run then shows as spread between blocks).
const BLOCKS: usize = 50;

/// Prior weight, in runs, of the configured drift floor when baseline runs estimate the drift.
const PRIOR_RUNS: f64 = 4.0;

/// A stable 64-bit hash (FNV-1a) so that a metric's random stream depends on its name and the
/// seed only, never on the order of metrics or the Rust version.
pub fn stable_hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The random generator for one metric of one comparison.
pub fn rng_for(seed: u64, metric: &str) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ stable_hash(metric))
}

/// One run's samples prepared for a block bootstrap: sorted once, each value tagged with the
/// contiguous block of operations it came from. A resample draws blocks with replacement; its
/// statistic is then a weighted quantile over the sorted values, so no resample is ever copied
/// or sorted (a replicate costs one pass over at most half the values).
pub struct BlockSamples {
    sorted: Vec<(u64, u32)>,
    block_len: Vec<u64>,
    sum: Vec<f64>,
}

impl BlockSamples {
    /// Splits `samples` (in operation order) into up to [`BLOCKS`] contiguous blocks.
    pub fn new(samples: &[u64]) -> BlockSamples {
        let n = samples.len();
        let blocks = n.clamp(1, BLOCKS);
        let mut block_len = vec![0u64; blocks];
        let mut sum = vec![0f64; blocks];
        let mut sorted = Vec::with_capacity(n);
        for (i, &x) in samples.iter().enumerate() {
            // Even split: block b holds indices [b*n/blocks, (b+1)*n/blocks).
            let b = i * blocks / n.max(1);
            block_len[b] += 1;
            sum[b] += x as f64;
            sorted.push((x, b as u32));
        }
        sorted.sort_unstable();
        BlockSamples {
            sorted,
            block_len,
            sum,
        }
    }

    /// Number of blocks.
    pub fn blocks(&self) -> usize {
        self.block_len.len()
    }

    /// The statistic over the samples weighted by how often each block was drawn.
    pub fn weighted(&self, stat: Statistic, weights: &[u32]) -> f64 {
        let total: u64 = weights
            .iter()
            .zip(&self.block_len)
            .map(|(&w, &l)| w as u64 * l)
            .sum();
        if total == 0 {
            return f64::NAN;
        }
        let q = match stat {
            Statistic::Median => 0.5,
            Statistic::Percentile(p) => p as f64 / 100.0,
            Statistic::Mean | Statistic::Value => {
                let s: f64 = weights
                    .iter()
                    .zip(&self.sum)
                    .map(|(&w, &s)| w as f64 * s)
                    .sum();
                return s / total as f64;
            }
        };
        // Nearest rank, as `record::percentile`: the smallest value whose
        // cumulative weight reaches ceil(q * total).
        let target = ((q * total as f64).ceil() as u64).clamp(1, total);
        if q <= 0.5 {
            let mut acc = 0u64;
            for &(x, b) in &self.sorted {
                acc += weights[b as usize] as u64;
                if acc >= target {
                    return x as f64;
                }
            }
        } else {
            // Walk down from the top for upper quantiles: only the tail is visited.
            let above = total - target;
            let mut acc = 0u64;
            for &(x, b) in self.sorted.iter().rev() {
                acc += weights[b as usize] as u64;
                if acc > above {
                    return x as f64;
                }
            }
        }
        self.sorted.last().map_or(f64::NAN, |&(x, _)| x as f64)
    }

    /// The statistic over all samples (every block once).
    pub fn full(&self, stat: Statistic) -> f64 {
        self.weighted(stat, &vec![1; self.blocks()])
    }

    /// Distribution-free standard error of ln(statistic) for a median or percentile: the
    /// order statistics at ranks n*q -+ z*sqrt(n*q*(1-q)) bound the quantile at two-sided
    /// `confidence` whatever the distribution, so half their log distance over z is an SE that
    /// cannot collapse to 0 the way a bootstrap of tied or few values does. `None` when those
    /// ranks fall outside the sample (too few operations for this statistic at this
    /// confidence); `Some(0.0)` for means, which this bound does not cover.
    pub fn rank_log_se(&self, stat: Statistic, confidence: f64) -> Option<f64> {
        let q = match stat {
            Statistic::Median => 0.5,
            Statistic::Percentile(p) => p as f64 / 100.0,
            Statistic::Mean | Statistic::Value => return Some(0.0),
        };
        let n = self.sorted.len();
        let (lo, hi) = quantile_ranks(n, q, confidence)?;
        let ln = |rank: usize| safe_ln(self.sorted[rank - 1].0 as f64);
        let z = normal_quantile(0.5 + confidence / 2.0);
        Some((ln(hi) - ln(lo)) / (2.0 * z))
    }

    /// Bootstrap standard error of ln(statistic) from `resamples` block resamples.
    pub fn log_se(&self, stat: Statistic, resamples: usize, rng: &mut impl Rng) -> f64 {
        let b = self.blocks();
        if b < 2 || resamples < 2 {
            return 0.0;
        }
        let mut weights = vec![0u32; b];
        let mut sum = 0.0;
        let mut sum_sq = 0.0;
        for _ in 0..resamples {
            weights.fill(0);
            for _ in 0..b {
                weights[rng.random_range(0..b)] += 1;
            }
            let l = safe_ln(self.weighted(stat, &weights));
            sum += l;
            sum_sq += l * l;
        }
        let n = resamples as f64;
        let var = (sum_sq - sum * sum / n) / (n - 1.0);
        var.max(0.0).sqrt()
    }
}

/// The 1-based ranks of the order statistics that bound the `q` quantile of `n` samples at
/// two-sided `confidence` (normal approximation of the binomial count below the quantile),
/// or `None` when either falls outside 1..=n: the sample cannot bound that quantile, as 200
/// operations cannot bound their p99 at 99%.
pub fn quantile_ranks(n: usize, q: f64, confidence: f64) -> Option<(usize, usize)> {
    if n == 0 || !(0.0..1.0).contains(&q) {
        return None;
    }
    let z = normal_quantile(0.5 + confidence / 2.0);
    let nf = n as f64;
    let half = z * (nf * q * (1.0 - q)).sqrt();
    let lo = (nf * q - half).floor();
    let hi = (nf * q + half).ceil() + 1.0;
    if lo < 1.0 || hi > nf {
        return None;
    }
    Some((lo as usize, hi as usize))
}

/// ln that treats zero (a stage too fast for the clock) as one unit, never -inf.
pub fn safe_ln(x: f64) -> f64 {
    x.max(1.0).ln()
}

/// One side of a comparison: a run's statistic and the standard error of its logarithm.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RunStat {
    /// The statistic.
    pub value: f64,
    /// Standard error of ln(value) within the run (0 for single values).
    pub log_se: f64,
}

/// The estimated relative change of a metric, with its uncertainty on the log scale.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    /// Base value: the geometric mean of the baseline runs' statistics.
    pub base: f64,
    /// Head value.
    pub head: f64,
    /// ln(head / base).
    pub log_change: f64,
    /// Standard error of `log_change`: within-run errors of both sides plus run-to-run drift.
    pub log_se: f64,
    /// The run-to-run drift used (standard deviation of one run's ln statistic).
    pub drift: f64,
}

impl Estimate {
    /// Combines baseline runs and the head run under the two-level model
    /// ln(stat) = true + run drift (sd `drift`) + sampling error (the run's `log_se`).
    /// `drift_floor` is the configured minimum drift; with two or more baselines the drift
    /// observed between them (beyond their sampling errors) can widen it, never narrow it: a
    /// handful of runs cannot prove the machine quieter than its known floor.
    pub fn new(base: &[RunStat], head: RunStat, drift_floor: f64) -> Estimate {
        let k = base.len() as f64;
        let logs: Vec<f64> = base.iter().map(|r| safe_ln(r.value)).collect();
        let mean_log = logs.iter().sum::<f64>() / k;
        let within_base = base.iter().map(|r| r.log_se * r.log_se).sum::<f64>() / (k * k);
        let mut drift_var = drift_floor * drift_floor;
        if base.len() >= 2 {
            let spread = logs.iter().map(|l| (l - mean_log).powi(2)).sum::<f64>() / (k - 1.0);
            let sampling = base.iter().map(|r| r.log_se * r.log_se).sum::<f64>() / k;
            let observed = (spread - sampling).max(0.0);
            let pooled = (PRIOR_RUNS * drift_var + (k - 1.0) * observed) / (PRIOR_RUNS + k - 1.0);
            drift_var = drift_var.max(pooled);
        }
        let var = head.log_se * head.log_se + within_base + drift_var * (1.0 + 1.0 / k);
        Estimate {
            // One baseline: its own value, not exp(ln(x)) with a rounding error.
            base: if base.len() == 1 {
                base[0].value
            } else {
                mean_log.exp()
            },
            head: head.value,
            log_change: safe_ln(head.value) - mean_log,
            log_se: var.sqrt(),
            drift: drift_var.sqrt(),
        }
    }

    /// Relative change head/base - 1.
    pub fn change(&self) -> f64 {
        self.log_change.exp_m1()
    }

    /// Two-sided interval of the relative change at `confidence`.
    pub fn interval(&self, confidence: f64) -> (f64, f64) {
        let z = normal_quantile(0.5 + confidence / 2.0);
        (
            (self.log_change - z * self.log_se).exp_m1(),
            (self.log_change + z * self.log_se).exp_m1(),
        )
    }

    /// Two-sided p-value of "no change".
    pub fn p_value(&self) -> f64 {
        if self.log_se <= 0.0 {
            return if self.log_change == 0.0 { 1.0 } else { 0.0 };
        }
        2.0 * normal_sf((self.log_change / self.log_se).abs())
    }
}

/// Standard normal upper tail P(Z > x), accurate to about 1e-7 relative even far in the tail
/// (W. J. Cody's rational approximation of erfc, as in Numerical Recipes' `erfcc`).
pub fn normal_sf(x: f64) -> f64 {
    0.5 * erfc(x / std::f64::consts::SQRT_2)
}

fn erfc(x: f64) -> f64 {
    // Numerical Recipes' erfc (Chebyshev fit, |error| < 1.2e-7), evaluated by Horner's rule in
    // the same order as its nested form (which rustfmt takes tens of seconds to lay out).
    const C: [f64; 9] = [
        1.000_023_68,
        0.374_091_96,
        0.096_784_18,
        -0.186_288_06,
        0.278_868_07,
        -1.135_203_98,
        1.488_515_87,
        -0.822_152_23,
        0.170_872_77,
    ];
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = C[..8].iter().rev().fold(C[8], |acc, c| c + t * acc);
    let r = t * (-z * z - 1.265_512_23 + t * poly).exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// Student's t upper tail P(T > t) with `df` degrees of freedom (at least 1), always in
/// [0, 1]. The tail is computed directly as 0.5 * I_{df/(df+t^2)}(df/2, 1/2) (statrs'
/// regularized incomplete beta, which evaluates its continued fraction on the small side),
/// never as 1 - cdf: that difference cancels to nothing, or below zero, far in the tail.
pub fn student_sf(t: f64, df: usize) -> f64 {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    if t.is_nan() {
        return f64::NAN;
    }
    if t.is_infinite() {
        return if t > 0.0 { 0.0 } else { 1.0 };
    }
    let df = df.max(1) as f64;
    // Location 0, scale 1 and a positive finite df are always valid parameters.
    let dist = match StudentsT::new(0.0, 1.0, df) {
        Ok(d) => d,
        Err(_) => return f64::NAN,
    };
    dist.sf(t).clamp(0.0, 1.0)
}

/// Quantile of Student's t with `df` degrees of freedom, by bisection on [`student_sf`]
/// (a few microseconds; called once per metric).
pub fn student_quantile(p: f64, df: usize) -> f64 {
    if !(0.0..=1.0).contains(&p) || p.is_nan() {
        return f64::NAN;
    }
    if p == 0.5 {
        return 0.0;
    }
    if p < 0.5 {
        return -student_quantile(1.0 - p, df);
    }
    let target = 1.0 - p;
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    while student_sf(hi, df) > target {
        hi *= 2.0;
        if hi > 1e12 {
            return f64::INFINITY;
        }
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if student_sf(mid, df) > target {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= 1e-12 * hi {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// Quantile of the standard normal (Acklam's algorithm, relative error below 1.2e-9).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    let low = 0.024_25;
    if p < low {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - low {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -normal_quantile(1.0 - p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::statistic_of;

    #[test]
    fn student_t_matches_published_tables() {
        // Critical values from standard t tables (two-sided 95% and 99%).
        for (df, p, t) in [
            (1, 0.975, 12.706),
            (2, 0.975, 4.303),
            (4, 0.995, 4.604),
            (5, 0.975, 2.571),
            (9, 0.975, 2.262),
            (9, 0.995, 3.250),
            (30, 0.995, 2.750),
        ] {
            let q = student_quantile(p, df);
            assert!((q - t).abs() < 2e-3, "t({df}, {p}) = {q}, table {t}");
            assert!((student_sf(t, df) - (1.0 - p)).abs() < 1e-4);
        }
        assert_eq!(student_sf(0.0, 7), 0.5);
        assert!((student_sf(-2.262, 9) - 0.975).abs() < 1e-4);
        // Many degrees of freedom: the normal distribution.
        assert!((student_quantile(0.995, 20_000) - normal_quantile(0.995)).abs() < 1e-3);
    }

    #[test]
    fn student_sf_matches_reference_values_far_into_the_tail() {
        // Reference: mpmath 1.3.0 at 50 digits, 0.5 * betainc(df/2, 1/2, 0, df/(df+t^2),
        // regularized=True), rounded to 15 digits; cross-checked against mpmath.quad of the t
        // density (agreeing to 1e-35 or better, except df=100, t=40, where quad itself only
        // reaches 6e-5) and, for df=1 and df=2, against their closed forms.
        for (t, df, p) in [
            (200.0, 2, 1.24995312695304e-05),
            (150.0, 2, 2.22207408504716e-05),
            (1000.0, 2, 4.9999925000125e-07),
            (1000.0, 4, 2.999980000105e-12),
            (160.0, 6, 2.0104196427219e-12),
            (1e6, 1, 3.18309886183685e-07),
            (1e4, 3, 1.1026577511479e-12),
            (50.0, 30, 9.35770882961136e-31),
            (20.0, 10, 1.07303115860213e-09),
            (40.0, 100, 1.23105380107004e-63),
            (3.25, 9, 0.00499868454201078),
            (2.262, 9, 0.0250064227512273),
            (12.706, 1, 0.0250004011790666),
            (8.0, 5, 0.000246453330286222),
            (0.5, 3, 0.325723982424076),
            (-3.0, 7, 0.990028936934004),
        ] {
            let got = student_sf(t, df);
            assert!(
                (got / p - 1.0).abs() < 1e-9,
                "sf({t}, {df}) = {got:e}, reference {p:e}"
            );
        }
        assert_eq!(student_sf(f64::INFINITY, 3), 0.0);
        assert_eq!(student_sf(f64::NEG_INFINITY, 3), 1.0);
        assert_eq!(student_sf(1e300, 2), 0.0);
        assert!(student_sf(f64::NAN, 3).is_nan());
    }

    #[test]
    fn student_quantile_inverts_the_tail() {
        // The upper 0.5% point of t(9) is 3.2498355 (mpmath, as above); far quantiles too.
        assert!((student_quantile(0.995, 9) - 3.249_835_5).abs() < 1e-6);
        for df in [1usize, 2, 3, 4, 9, 30, 200] {
            for p in [0.9, 0.975, 0.995, 0.999_999, 1.0 - 1e-12] {
                let q = student_quantile(p, df);
                let back = student_sf(q, df);
                assert!(
                    (back / (1.0 - p) - 1.0).abs() < 1e-6,
                    "df {df} p {p}: q {q}, sf(q) {back:e}"
                );
                assert!((student_quantile(1.0 - p, df) + q).abs() < 1e-9 * q);
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn student_sf_is_a_tail_probability(
            t in proptest::prop_oneof![-10.0f64..10.0, -1e7f64..1e7],
            dt in proptest::prop_oneof![0.0f64..0.5, 0.0f64..1e3],
            df in 1usize..400,
        ) {
            let (a, b) = (student_sf(t, df), student_sf(t + dt, df));
            proptest::prop_assert!((0.0..=1.0).contains(&a), "sf({}, {}) = {}", t, df, a);
            // Monotone decreasing in t (to rounding).
            proptest::prop_assert!(b <= a * (1.0 + 1e-12), "sf({}) = {} < sf({}) = {}", t, a, t + dt, b);
            // Symmetry.
            let s = a + student_sf(-t, df);
            proptest::prop_assert!((s - 1.0).abs() < 1e-12, "sf(t) + sf(-t) = {}", s);
        }
    }

    /// Log-normal samples around `median` with log-sd `sigma` (timings are right-skewed).
    fn lognormal(rng: &mut ChaCha8Rng, n: usize, median: f64, sigma: f64) -> Vec<u64> {
        (0..n)
            .map(|_| {
                // Box-Muller.
                let u1: f64 = rng.random_range(f64::EPSILON..1.0);
                let u2: f64 = rng.random();
                let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
                (median * (sigma * z).exp()).round() as u64
            })
            .collect()
    }

    #[test]
    fn normal_helpers_match_tables() {
        assert!((normal_quantile(0.975) - 1.959_963_985).abs() < 1e-8);
        assert!((normal_quantile(0.995) - 2.575_829_304).abs() < 1e-8);
        assert!((normal_quantile(0.01) + 2.326_347_874).abs() < 1e-8);
        assert!((normal_sf(1.959_963_985) - 0.025).abs() < 1e-7);
        assert!((normal_sf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_sf(-1.0) - 0.841_344_746).abs() < 1e-7);
        let tail = normal_sf(6.0);
        assert!((tail / 9.865_876_45e-10 - 1.0).abs() < 1e-3, "{tail}");
    }

    #[test]
    fn weighted_statistic_with_unit_weights_is_the_plain_statistic() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for n in [1usize, 7, 49, 50, 51, 1000, 4321] {
            let v = lognormal(&mut rng, n, 1000.0, 0.5);
            let b = BlockSamples::new(&v);
            for stat in [
                Statistic::Median,
                Statistic::Percentile(95),
                Statistic::Percentile(99),
                Statistic::Mean,
            ] {
                let full = b.full(stat);
                let plain = statistic_of(stat, &v);
                assert!((full - plain).abs() < 1e-6 * plain.max(1.0), "{n} {stat:?}");
            }
        }
    }

    #[test]
    fn bootstrap_se_of_the_median_matches_theory() {
        // For a normal sample the median's sd is sqrt(pi/2) * sigma / sqrt(n).
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let n = 4000;
        let v = lognormal(&mut rng, n, 10_000.0, 0.2);
        let se = BlockSamples::new(&v).log_se(Statistic::Median, 400, &mut rng);
        let theory = (std::f64::consts::PI / 2.0).sqrt() * 0.2 / (n as f64).sqrt();
        assert!(se > 0.75 * theory && se < 1.33 * theory, "{se} vs {theory}");
    }

    #[test]
    fn drift_within_a_run_widens_the_block_bootstrap() {
        // The second half of the run is 10% slower (a neighbour started): an iid bootstrap
        // would not see it, contiguous blocks do.
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut v = lognormal(&mut rng, 2000, 10_000.0, 0.05);
        v.extend(lognormal(&mut rng, 2000, 11_000.0, 0.05));
        let mut shuffled = v.clone();
        use rand::seq::SliceRandom;
        shuffled.shuffle(&mut rng);
        let ordered = BlockSamples::new(&v).log_se(Statistic::Median, 300, &mut rng);
        let iid = BlockSamples::new(&shuffled).log_se(Statistic::Median, 300, &mut rng);
        assert!(ordered > 2.0 * iid, "{ordered} vs {iid}");
    }

    fn run_stat(v: &[u64], rng: &mut ChaCha8Rng) -> RunStat {
        let b = BlockSamples::new(v);
        RunStat {
            value: b.full(Statistic::Median),
            log_se: b.log_se(Statistic::Median, 200, rng),
        }
    }

    #[test]
    fn known_shifts_are_found_and_identical_distributions_are_not() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let base = lognormal(&mut rng, 3000, 50_000.0, 0.3);
        let same = lognormal(&mut rng, 3000, 50_000.0, 0.3);
        let slower = lognormal(&mut rng, 3000, 60_000.0, 0.3);
        let b = run_stat(&base, &mut rng);
        let e_same = Estimate::new(&[b], run_stat(&same, &mut rng), 0.01);
        let e_slow = Estimate::new(&[b], run_stat(&slower, &mut rng), 0.01);
        assert!(e_same.p_value() > 0.01, "{e_same:?}");
        let (lo, hi) = e_same.interval(0.99);
        assert!(lo < 0.0 && hi > 0.0);
        assert!(e_slow.p_value() < 1e-6, "{e_slow:?}");
        let (lo, hi) = e_slow.interval(0.99);
        assert!(lo > 0.1 && hi < 0.3 && lo < 0.2 && hi > 0.2, "{lo} {hi}");
    }

    #[test]
    fn interval_coverage_is_near_nominal_with_run_drift() {
        // Seeded simulation of the two-level model: every run gets its own drift (sd 3%), then
        // samples (whose median has about the same error). The 95% interval of the change
        // between two runs of the same code must cover 0 in about 95% of trials when the floor
        // equals the true drift.
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let trials = 200;
        let mut covered = 0;
        for _ in 0..trials {
            let mut run = || {
                let u1: f64 = rng.random_range(f64::EPSILON..1.0);
                let u2: f64 = rng.random();
                let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
                let median = 20_000.0 * (0.03 * z).exp();
                let v = lognormal(&mut rng, 200, median, 0.4);
                let b = BlockSamples::new(&v);
                RunStat {
                    value: b.full(Statistic::Median),
                    log_se: b.log_se(Statistic::Median, 100, &mut rng),
                }
            };
            let b = run();
            let h = run();
            let (lo, hi) = Estimate::new(&[b], h, 0.03).interval(0.95);
            if lo <= 0.0 && hi >= 0.0 {
                covered += 1;
            }
        }
        assert!((180..=199).contains(&covered), "{covered}/{trials}");
    }

    #[test]
    fn spread_between_baselines_widens_never_narrows() {
        let r = |v: f64| RunStat {
            value: v,
            log_se: 0.001,
        };
        let floor = 0.02;
        let calm = Estimate::new(&[r(100.0), r(100.1), r(99.9)], r(100.0), floor);
        assert!((calm.drift - floor).abs() < 1e-12);
        let wild = Estimate::new(&[r(100.0), r(130.0), r(75.0)], r(100.0), floor);
        assert!(wild.drift > 2.0 * floor, "{wild:?}");
        // Geometric mean of the baselines.
        assert!((wild.base - (100.0f64 * 130.0 * 75.0).cbrt()).abs() < 1e-9);
        // More baseline runs shrink the base side's share of drift.
        let one = Estimate::new(&[r(100.0)], r(100.0), floor);
        let three = Estimate::new(&[r(100.0), r(100.0), r(100.0)], r(100.0), floor);
        assert!(three.log_se < one.log_se);
    }

    #[test]
    fn same_seed_same_result() {
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let v = lognormal(&mut rng, 1000, 5_000.0, 0.5);
        let b = BlockSamples::new(&v);
        let a = b.log_se(Statistic::Median, 100, &mut rng_for(9, "x/y/wall_ns"));
        let c = b.log_se(Statistic::Median, 100, &mut rng_for(9, "x/y/wall_ns"));
        let d = b.log_se(Statistic::Median, 100, &mut rng_for(10, "x/y/wall_ns"));
        assert_eq!(a, c);
        assert_ne!(a, d);
    }
}
