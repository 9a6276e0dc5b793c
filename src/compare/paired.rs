//! Paired A/B comparison: base and head built side by side and run alternately in one session
//! (`check --ab`), the strongest design short of counting instructions.
//!
//! Stored baselines were measured minutes or days earlier, so their comparison must assume a
//! run-to-run drift of about 10% on a shared machine (the `noise` floor). Runs interleaved in
//! one session share the machine's state minute by minute, so each round's difference
//! `d = ln(head) - ln(base)` cancels most of it. The estimate is the mean of the rounds'
//! differences; its variance is taken from the rounds' own spread, never below what the runs'
//! sampling errors plus a small drift floor (`paired_noise`) imply; the interval and p-value
//! use Student's t with `rounds - 1` degrees of freedom, so a handful of rounds is not
//! overconfident. Exact counts are compared exactly, as in [`super::compare`].

use crate::metrics::{Metric, MetricKind, MetricSet};

use super::mde::{Mde, Quantiles};
use super::stats::{self, safe_ln, student_quantile, student_sf, BlockSamples, RunStat};
use super::thresholds::{Limit, Thresholds};
use super::{
    base_value, blank, exact, finish, interval_and_gate, min_samples, unknown_if_gated, Comparison,
    PairedInfo, Status, Verdict,
};

/// The relative change of one metric from paired rounds, on the log scale.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PairedEstimate {
    /// Geometric mean of the base runs' statistics.
    pub base: f64,
    /// Geometric mean of the head runs' statistics.
    pub head: f64,
    /// Mean over rounds of ln(head) - ln(base).
    pub log_change: f64,
    /// Standard error of `log_change`.
    pub log_se: f64,
    /// Degrees of freedom of the t distribution (rounds - 1).
    pub df: usize,
    /// Drift of one run within the session implied by the variance used (one sd of ln).
    pub drift: f64,
}

impl PairedEstimate {
    /// Estimates from per-round (base, head) statistics; `drift_floor` is the minimum drift of
    /// one run within a session, as a fraction. Needs at least two rounds.
    pub fn new(rounds: &[(RunStat, RunStat)], drift_floor: f64) -> Option<PairedEstimate> {
        let n = rounds.len();
        if n < 2 {
            return None;
        }
        let k = n as f64;
        let d: Vec<f64> = rounds
            .iter()
            .map(|(b, h)| safe_ln(h.value) - safe_ln(b.value))
            .collect();
        let mean = d.iter().sum::<f64>() / k;
        let spread = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (k - 1.0);
        let sampling = rounds
            .iter()
            .map(|(b, h)| b.log_se * b.log_se + h.log_se * h.log_se)
            .sum::<f64>()
            / k;
        let floor = sampling + 2.0 * drift_floor * drift_floor;
        let var_d = spread.max(floor);
        let geo = |f: &dyn Fn(&(RunStat, RunStat)) -> f64| {
            (rounds.iter().map(|r| safe_ln(f(r))).sum::<f64>() / k).exp()
        };
        Some(PairedEstimate {
            base: geo(&|r| r.0.value),
            head: geo(&|r| r.1.value),
            log_change: mean,
            log_se: (var_d / k).sqrt(),
            df: n - 1,
            drift: ((var_d - sampling).max(0.0) / 2.0).sqrt(),
        })
    }

    /// Relative change head/base - 1.
    pub fn change(&self) -> f64 {
        self.log_change.exp_m1()
    }

    /// Two-sided interval of the relative change at `confidence`.
    pub fn interval(&self, confidence: f64) -> (f64, f64) {
        let t = student_quantile(0.5 + confidence / 2.0, self.df);
        (
            (self.log_change - t * self.log_se).exp_m1(),
            (self.log_change + t * self.log_se).exp_m1(),
        )
    }

    /// Two-sided p-value of "no change".
    pub fn p_value(&self) -> f64 {
        if self.log_se <= 0.0 {
            return if self.log_change == 0.0 { 1.0 } else { 0.0 };
        }
        2.0 * student_sf((self.log_change / self.log_se).abs(), self.df)
    }
}

/// Compares head runs with base runs made alternately in one session: `base[i]` and `head[i]`
/// are round `i`. Metrics are those of the first head run; a metric missing from some rounds is
/// compared over the rounds that have it on both sides.
///
/// # Panics
/// When `base` and `head` differ in length or are empty (the caller made the rounds).
pub fn compare_paired(
    base: &[MetricSet],
    head: &[MetricSet],
    thresholds: &Thresholds,
    seed: u64,
) -> Comparison {
    assert!(
        !head.is_empty() && base.len() == head.len(),
        "paired comparison needs equal, non-empty rounds"
    );
    let mut verdicts: Vec<Verdict> = Vec::new();
    let mut tested: Vec<(usize, f64, (f64, f64))> = Vec::new();
    for m in &head[0].metrics {
        let pairs: Vec<(&Metric, &Metric)> = base
            .iter()
            .zip(head)
            .filter_map(|(b, h)| Some((b.get(&m.name)?, h.get(&m.name)?)))
            .collect();
        let bases: Vec<&Metric> = pairs.iter().map(|p| p.0).collect();
        let limit = thresholds.resolve(&m.name);
        let mut v = blank(&m.name, &limit, &bases);
        v.head_samples = pairs.iter().map(|p| p.1.samples.len()).sum();
        if pairs.is_empty() {
            v.head = Some(m.value);
            v.status = Status::New;
            verdicts.push(v);
            continue;
        }
        let heads: Vec<&Metric> = pairs.iter().map(|p| p.1).collect();
        v.head = Some(base_value(&heads, m.kind()));
        match m.kind() {
            MetricKind::Deterministic => {
                let pooled = Metric {
                    value: base_value(&heads, MetricKind::Deterministic),
                    ..m.clone()
                };
                exact(&mut v, &bases, &pooled, &limit);
            }
            MetricKind::Timing | MetricKind::Single => {
                match paired_estimate(&mut v, &pairs, &limit, thresholds, seed) {
                    Some(e) => {
                        let ci = e.interval(thresholds.confidence);
                        if interval_and_gate(&mut v, ci, &limit) {
                            // The rounds measure the spread of single values too.
                            v.mde = Some(Mde::statistical(
                                e.log_se,
                                thresholds.confidence,
                                Quantiles::Student(e.df),
                                v.direction,
                                limit.warn,
                                limit.fail,
                            ));
                            tested.push((verdicts.len(), v.p_value.unwrap_or(1.0), ci));
                        }
                    }
                    None => unknown_if_gated(&mut v, &limit),
                }
            }
        }
        verdicts.push(v);
    }
    let info = PairedInfo {
        rounds: head.len(),
        head_runs: head.iter().map(|h| h.run.clone()).collect(),
    };
    finish(
        verdicts,
        tested,
        base,
        &head[0],
        thresholds,
        seed,
        Some(info),
    )
}

/// Fills base, head, change and p-value from the paired rounds; `None` (status set) when
/// there are too few rounds or samples to judge.
fn paired_estimate(
    v: &mut Verdict,
    pairs: &[(&Metric, &Metric)],
    limit: &Limit,
    t: &Thresholds,
    seed: u64,
) -> Option<PairedEstimate> {
    let first = pairs[0].1;
    let kind = first.kind();
    let stat = first.statistic();
    let insufficient = |v: &mut Verdict, note: String| {
        let bases: Vec<&Metric> = pairs.iter().map(|p| p.0).collect();
        v.base = Some(base_value(&bases, kind));
        v.status = Status::InsufficientData;
        v.note = Some(note);
        None
    };
    if pairs.len() < 2 {
        return insufficient(v, format!("{} paired round(s), 2 needed", pairs.len()));
    }
    let rounds: Vec<(RunStat, RunStat)> = if kind == MetricKind::Single {
        let ok = |m: &Metric| m.value.is_finite() && m.value > 0.0;
        if !pairs.iter().all(|(b, h)| ok(b) && ok(h)) {
            return insufficient(v, "value is zero or missing; no relative change".into());
        }
        let run = |m: &Metric| RunStat {
            value: m.value,
            log_se: 0.0,
        };
        pairs.iter().map(|(b, h)| (run(b), run(h))).collect()
    } else {
        let need = min_samples(stat, limit.min_samples);
        let short = pairs
            .iter()
            .flat_map(|(b, h)| [b.samples.len(), h.samples.len()])
            .min()
            .unwrap_or(0);
        if short < need {
            return insufficient(v, format!("{short} samples in a run, {need} needed"));
        }
        let name = first.name.to_string();
        let run = |m: &Metric, stream: u64| {
            let mut rng = stats::rng_for(seed.wrapping_add(stream), &name);
            let b = BlockSamples::new(&m.samples);
            RunStat {
                value: b.full(stat),
                log_se: b.log_se(stat, t.resamples, &mut rng),
            }
        };
        pairs
            .iter()
            .enumerate()
            .map(|(i, (b, h))| (run(b, 2 * i as u64 + 1), run(h, 2 * i as u64 + 2)))
            .collect()
    };
    let e = PairedEstimate::new(&rounds, limit.paired_noise / 100.0)?;
    v.base = Some(e.base);
    v.head = Some(e.head);
    v.change = Some(e.change());
    v.p_value = Some(e.p_value());
    v.noise = Some(e.drift);
    Some(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{MetricName, RunInfo};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn info(id: &str) -> RunInfo {
        RunInfo {
            run_id: id.into(),
            commit: Some("a".repeat(40)),
            branch: None,
            dirty: false,
            profile: "mini".into(),
            machine: "m".into(),
            created_at: "2026-11-27T00:00:00Z".into(),
        }
    }

    /// A run of `n` log-normal operations around `median`, scaled by this run's `drift`.
    fn run(rng: &mut ChaCha8Rng, id: &str, median: f64, drift: f64, allocs: u64) -> MetricSet {
        let samples: Vec<u64> = (0..400)
            .map(|_| {
                let z: f64 = (0..12).map(|_| rng.random::<f64>()).sum::<f64>() - 6.0;
                (median * drift * (0.1 * z).exp()) as u64
            })
            .collect();
        let wall = MetricName::parse("recall/rerank/wall_ns").unwrap();
        let al = MetricName::parse("recall/rerank/allocs").unwrap();
        MetricSet {
            run: info(id),
            metrics: vec![
                Metric::from_samples(wall, samples),
                Metric::from_samples(al, vec![allocs; 400]),
            ],
        }
    }

    /// Rounds whose runs drift together by up to +-15% (a busy machine), head scaled by
    /// `slowdown`.
    fn session(seed: u64, rounds: usize, slowdown: f64) -> (Vec<MetricSet>, Vec<MetricSet>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (mut b, mut h) = (Vec::new(), Vec::new());
        for i in 0..rounds {
            let machine = 1.0 + 0.3 * (rng.random::<f64>() - 0.5);
            let jitter = |rng: &mut ChaCha8Rng| 1.0 + 0.01 * (rng.random::<f64>() - 0.5);
            let jb = jitter(&mut rng);
            let jh = jitter(&mut rng);
            b.push(run(&mut rng, &format!("b{i}"), 100_000.0, machine * jb, 7));
            h.push(run(
                &mut rng,
                &format!("h{i}"),
                100_000.0 * slowdown,
                machine * jh,
                7,
            ));
        }
        (b, h)
    }

    fn wall(c: &Comparison) -> &Verdict {
        c.verdict(&MetricName::parse("recall/rerank/wall_ns").unwrap())
            .unwrap()
    }

    #[test]
    fn shared_drift_cancels_and_a_small_slowdown_is_found() {
        let t = Thresholds::default();
        for seed in 0..20 {
            let (b, h) = session(seed, 5, 1.0);
            let c = compare_paired(&b, &h, &t, 7);
            assert_eq!(
                wall(&c).status,
                Status::Unchanged,
                "seed {seed}: {:?}",
                wall(&c)
            );
            assert_eq!(c.exit_code(), 0);
            // +20% under +-15% machine drift: stored baselines (10% floor) could not see it.
            let (b, h) = session(seed, 5, 1.2);
            let c = compare_paired(&b, &h, &t, 7);
            let v = wall(&c);
            assert_eq!(
                v.status,
                Status::Regression(super::super::Level::Fail),
                "{v:?}"
            );
            let (lo, hi) = (v.ci_low.unwrap(), v.ci_high.unwrap());
            assert!(lo > 0.10 && lo < 0.2 && hi > 0.2 && hi < 0.3, "{lo} {hi}");
        }
        let (b, h) = session(3, 5, 1.0);
        let c = compare_paired(&b, &h, &t, 7);
        let info = c.paired.as_ref().unwrap();
        assert_eq!(info.rounds, 5);
        assert_eq!(info.head_runs[4].run_id, "h4");
        assert_eq!(c.base.len(), 5);
        assert_eq!(wall(&c).base_runs, 5);
    }

    #[test]
    fn one_round_is_insufficient_and_counts_compare_exactly() {
        let t = Thresholds::default();
        let (b, h) = session(1, 1, 3.0);
        let c = compare_paired(&b, &h, &t, 7);
        assert_eq!(wall(&c).status, Status::InsufficientData);
        let allocs = c
            .verdict(&MetricName::parse("recall/rerank/allocs").unwrap())
            .unwrap();
        assert_eq!(allocs.status, Status::Unchanged);
        assert_eq!(allocs.change, Some(0.0));
        use crate::compare::mde::Unknown;
        assert_eq!(allocs.mde, Some(Mde::exact(1.0, 5.0)));
        assert_eq!(wall(&c).mde, Some(Mde::unknown(Unknown::TooFewData)));
        // Five rounds: Student's t with 4 df on the rounds' standard error.
        let (b, h) = session(2, 5, 1.0);
        let v = compare_paired(&b, &h, &t, 7);
        let v = wall(&v);
        let Some(Mde::Statistical(e)) = v.mde else {
            panic!("{v:?}")
        };
        assert_eq!(e.df, Some(4));
        let tq = student_quantile(0.995, 4);
        let se = ((1.0 + v.ci_high.unwrap()).ln() - (1.0 + v.ci_low.unwrap()).ln()) / (2.0 * tq);
        let m = (tq + student_quantile(0.8, 4)) * se;
        assert!((e.statistical - m.exp_m1()).abs() < 1e-9, "{e:?}");
    }

    #[test]
    fn the_t_distribution_widens_few_rounds() {
        let r = |b: f64, h: f64| {
            (
                RunStat {
                    value: b,
                    log_se: 0.0,
                },
                RunStat {
                    value: h,
                    log_se: 0.0,
                },
            )
        };
        let rounds = [r(100.0, 110.0), r(100.0, 112.0), r(100.0, 108.0)];
        let e = PairedEstimate::new(&rounds, 0.0).unwrap();
        assert_eq!(e.df, 2);
        assert!((e.change() - 0.1).abs() < 0.002);
        let (lo, hi) = e.interval(0.95);
        // sd of the ln differences ~0.018, se ~0.0105, t(2, .975) = 4.303.
        assert!(
            lo > 0.04 && lo < 0.06 && hi > 0.14 && hi < 0.16,
            "{lo} {hi}"
        );
        // The floor holds when the rounds agree by chance.
        let same = [r(100.0, 110.0), r(100.0, 110.0)];
        let e = PairedEstimate::new(&same, 0.01).unwrap();
        assert!((e.log_se - (2.0f64 * 0.0001 / 2.0).sqrt()).abs() < 1e-12);
        assert!((e.drift - 0.01).abs() < 1e-12);
    }
}
