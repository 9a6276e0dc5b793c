//! Tests of [`compare`](super::compare) on synthetic metric sets.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::metrics::{Measure, Metric, MetricName, MetricSet, RunInfo};

fn name(s: &str) -> MetricName {
    MetricName::parse(s).unwrap()
}

/// Log-normal timings around `median`, with a whole-run drift factor already applied.
fn timings(rng: &mut ChaCha8Rng, n: usize, median: f64) -> Vec<u64> {
    (0..n)
        .map(|_| {
            let u1: f64 = rng.random_range(f64::EPSILON..1.0);
            let u2: f64 = rng.random();
            let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            (median * (0.3 * z).exp()).round() as u64
        })
        .collect()
}

/// A run of a fake workload with four stages; `slow` multiplies one stage's time.
fn run(seed: u64, drift: f64, slow: Option<(&str, f64)>, extra_allocs: u64) -> MetricSet {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let stages = [
        ("parse", 2_000.0),
        ("search", 40_000.0),
        ("rank", 15_000.0),
        ("render", 5_000.0),
    ];
    let mut metrics = Vec::new();
    for (stage, median) in stages {
        let f = match slow {
            Some((s, f)) if s == stage => f,
            _ => 1.0,
        };
        let wall = timings(&mut rng, 2000, median * f * drift);
        metrics.push(Metric::from_samples(
            MetricName::new("w", stage, Measure::WallNs).unwrap(),
            wall,
        ));
        let allocs = if stage == "rank" {
            10 + extra_allocs
        } else {
            3
        };
        metrics.push(Metric::from_samples(
            MetricName::new("w", stage, Measure::Allocs).unwrap(),
            vec![allocs; 2000],
        ));
    }
    let total = timings(&mut rng, 2000, 62_000.0 * drift);
    metrics.push(Metric::from_samples(name("w/total/wall_ns"), total.clone()));
    metrics.push(Metric::from_samples(name("w/total/p99_ns"), total));
    metrics.push(Metric::single(
        name("w/total/throughput_ops"),
        16_000.0 / drift,
    ));
    MetricSet {
        run: RunInfo {
            run_id: format!("run-{seed}"),
            commit: Some(format!("{seed:040x}")),
            ..RunInfo::default()
        },
        metrics,
    }
}

fn status(c: &Comparison, n: &str) -> Status {
    c.verdict(&name(n)).unwrap().status
}

#[test]
fn unchanged_reruns_are_not_flagged_even_with_run_drift() {
    let t = Thresholds::default();
    for i in 0..10 {
        // Head run 6% slower across the board: machine drift of about one floor sd.
        let c = compare(
            &[run(100 + i, 1.0, None, 0)],
            &run(200 + i, 1.06, None, 0),
            &t,
            i,
        );
        assert_eq!(c.counts.regressions(), 0, "{:#?}", c.regressions());
        assert_eq!(c.exit_code(), 0);
    }
}

#[test]
fn a_one_stage_slowdown_is_found_and_named() {
    let t = Thresholds::default();
    let c = compare(
        &[run(1, 1.0, None, 0)],
        &run(2, 1.0, Some(("search", 2.0)), 0),
        &t,
        7,
    );
    assert_eq!(
        status(&c, "w/search/wall_ns"),
        Status::Regression(Level::Fail)
    );
    assert_eq!(status(&c, "w/rank/wall_ns"), Status::Unchanged);
    let v = c.verdict(&name("w/search/wall_ns")).unwrap();
    let (lo, hi) = (v.ci_low.unwrap(), v.ci_high.unwrap());
    assert!(lo < 1.0 && hi > 1.0 && lo > 0.1, "{lo} {hi}");
    assert!(v.q_value.unwrap() <= 0.01);
    assert_eq!(c.exit_code(), 1);
    assert_eq!(c.regressions()[0].metric, name("w/search/wall_ns"));
}

#[test]
fn improvements_are_reported() {
    let c = compare(
        &[run(1, 1.0, None, 0)],
        &run(2, 1.0, Some(("rank", 0.6)), 0),
        &Thresholds::default(),
        7,
    );
    assert_eq!(status(&c, "w/rank/wall_ns"), Status::Improvement);
    assert_eq!(c.counts.improvements, 1);
    assert_eq!(c.exit_code(), 0);
}

#[test]
fn deterministic_metrics_are_compared_exactly() {
    let t = Thresholds::default();
    // 10 -> 10: unchanged; a single extra allocation (+10%) fails at the default 5%.
    let same = compare(&[run(1, 1.0, None, 0)], &run(2, 1.0, None, 0), &t, 1);
    assert_eq!(status(&same, "w/rank/allocs"), Status::Unchanged);
    let more = compare(&[run(1, 1.0, None, 0)], &run(2, 1.0, None, 1), &t, 1);
    let v = more.verdict(&name("w/rank/allocs")).unwrap();
    assert_eq!(v.status, Status::Regression(Level::Fail));
    assert!((v.change.unwrap() - 0.1).abs() < 1e-12);
    assert_eq!(v.ci_low, v.change);
    assert_eq!(v.p_value, None);
    let t = Thresholds::from_toml_str("allocs = { warn = 5, fail = 20 }").unwrap();
    let warn = compare(&[run(1, 1.0, None, 0)], &run(2, 1.0, None, 1), &t, 1);
    assert_eq!(
        status(&warn, "w/rank/allocs"),
        Status::Regression(Level::Warn)
    );
    assert_eq!(warn.exit_code(), 0);
}

#[test]
fn allocations_appearing_from_zero_fail() {
    let zero = |v: u64| MetricSet {
        metrics: vec![Metric::from_samples(name("w/s/allocs"), vec![v; 50])],
        ..MetricSet::default()
    };
    let c = compare(&[zero(0)], &zero(1), &Thresholds::default(), 0);
    let v = &c.verdicts[0];
    assert_eq!(v.status, Status::Regression(Level::Fail));
    assert_eq!(v.change, None);
    assert!(v.note.as_deref().unwrap().contains("base was 0"));
    let c = compare(&[zero(0)], &zero(0), &Thresholds::default(), 0);
    assert_eq!(c.verdicts[0].status, Status::Unchanged);
}

#[test]
fn few_samples_are_insufficient_data_not_flags() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let set = |v: Vec<u64>| MetricSet {
        metrics: vec![
            Metric::from_samples(name("consolidation/cluster/wall_ns"), v.clone()),
            Metric::from_samples(name("consolidation/total/p99_ns"), v),
        ],
        ..MetricSet::default()
    };
    let base = set(timings(&mut rng, 10, 1e6));
    let head = set(timings(&mut rng, 10, 3e6));
    let c = compare(&[base], &head, &Thresholds::default(), 0);
    for v in &c.verdicts {
        assert_eq!(v.status, Status::InsufficientData, "{v:?}");
        assert!(v.note.as_deref().unwrap().contains("10 samples"), "{v:?}");
        assert!(v.base.is_some() && v.head.is_some());
    }
    assert_eq!(c.counts.insufficient_data, 2);
    assert_eq!(c.exit_code(), 0);
}

#[test]
fn percentiles_are_reported_but_not_gated_by_default() {
    let c = compare(
        &[run(1, 1.0, None, 0)],
        &run(2, 3.0, None, 0),
        &Thresholds::default(),
        0,
    );
    let v = c.verdict(&name("w/total/p99_ns")).unwrap();
    assert_eq!(v.status, Status::Ignored);
    assert!(v.change.unwrap() > 0.5 && v.q_value.is_none());
    let t = Thresholds::from_toml_str("[overrides]\n\"*/total/p99_ns\" = { gate = true }").unwrap();
    let c = compare(&[run(1, 1.0, None, 0)], &run(2, 3.0, None, 0), &t, 0);
    assert_eq!(
        status(&c, "w/total/p99_ns"),
        Status::Regression(Level::Fail)
    );
}

#[test]
fn throughput_is_higher_is_better() {
    let t = Thresholds::from_toml_str("throughput = { gate = true }").unwrap();
    let c = compare(&[run(1, 1.0, None, 0)], &run(2, 3.0, None, 0), &t, 0);
    let v = c.verdict(&name("w/total/throughput_ops")).unwrap();
    assert!((v.change.unwrap() + 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(v.status, Status::Regression(Level::Fail));
    assert_eq!(v.kind, MetricKind::Single);
}

#[test]
fn new_and_missing_metrics_are_listed() {
    let mut head = run(2, 1.0, None, 0);
    head.metrics.retain(|m| m.name.stage() != "render");
    head.metrics.push(Metric::from_samples(
        name("w/extra/wall_ns"),
        vec![100; 100],
    ));
    let c = compare(&[run(1, 1.0, None, 0)], &head, &Thresholds::default(), 0);
    assert_eq!(status(&c, "w/extra/wall_ns"), Status::New);
    assert_eq!(status(&c, "w/render/wall_ns"), Status::Missing);
    assert_eq!(status(&c, "w/render/allocs"), Status::Missing);
    assert_eq!(c.counts.new, 1);
    assert_eq!(c.counts.missing, 2);
    assert_eq!(c.verdicts.last().unwrap().metric, name("w/render/allocs"));
}

#[test]
fn several_noisy_baselines_widen_the_interval() {
    let t = Thresholds::default();
    // Baselines that themselves differ by +-20%: a 25% slower head is within their spread.
    let bases = [
        run(1, 0.8, None, 0),
        run(2, 1.2, None, 0),
        run(3, 1.0, None, 0),
        run(4, 0.85, None, 0),
        run(5, 1.25, None, 0),
    ];
    let head = run(6, 1.25, None, 0);
    let one = compare(&bases[2..3], &head, &t, 0);
    let all = compare(&bases, &head, &t, 0);
    let w = |c: &Comparison| {
        let v = c.verdict(&name("w/search/wall_ns")).unwrap();
        v.ci_high.unwrap() - v.ci_low.unwrap()
    };
    assert!(w(&all) > w(&one), "{} vs {}", w(&all), w(&one));
    assert_eq!(all.counts.regressions(), 0, "{:#?}", all.regressions());
    assert_eq!(all.base.len(), 5);
    assert_eq!(all.verdict(&name("w/search/wall_ns")).unwrap().base_runs, 5);
}

#[test]
fn same_seed_same_comparison() {
    let t = Thresholds::default();
    let b = [run(1, 1.0, None, 0)];
    let h = run(2, 1.1, Some(("rank", 1.2)), 0);
    assert_eq!(compare(&b, &h, &t, 5), compare(&b, &h, &t, 5));
    let json = serde_json::to_string(&compare(&b, &h, &t, 5)).unwrap();
    let back: Comparison = serde_json::from_str(&json).unwrap();
    // serde_json's default float parser may differ in the last bit; everything else is exact.
    let c = compare(&b, &h, &t, 5);
    assert_eq!(
        (back.counts, back.head, back.base),
        (c.counts, c.head, c.base)
    );
    for (a, b) in back.verdicts.iter().zip(&c.verdicts) {
        assert_eq!((a.status, &a.metric), (b.status, &b.metric));
        let close = |x: Option<f64>, y: Option<f64>| match (x, y) {
            (Some(x), Some(y)) => (x - y).abs() <= 1e-12 * y.abs().max(1.0),
            (x, y) => x == y,
        };
        assert!(
            close(a.change, b.change) && close(a.ci_low, b.ci_low) && close(a.q_value, b.q_value)
        );
    }
}

#[test]
fn false_discoveries_stay_rare_across_many_null_metrics() {
    // 40 stages, no drift, no change: at most an occasional flag over 20 checks.
    let t = Thresholds::from_toml_str("resamples = 60\ntime = { noise = 0.5, warn = 0, fail = 0 }")
        .unwrap();
    let make = |seed: u64| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        MetricSet {
            metrics: (0..40)
                .map(|i| {
                    Metric::from_samples(
                        MetricName::new("w", &format!("s{i}"), Measure::WallNs).unwrap(),
                        timings(&mut rng, 300, 10_000.0),
                    )
                })
                .collect(),
            ..MetricSet::default()
        }
    };
    let flagged: usize = (0..20)
        .map(|i| {
            let c = compare(&[make(2 * i)], &make(2 * i + 1), &t, i);
            (c.counts.regressions() + c.counts.improvements).min(1)
        })
        .sum();
    assert!(flagged <= 2, "{flagged} of 20 checks flagged something");
}

#[test]
fn sub_microsecond_stages_are_reported_not_gated() {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let set = |median: f64, rng: &mut ChaCha8Rng| MetricSet {
        metrics: vec![Metric::from_samples(
            name("mixed/validate/wall_ns"),
            timings(rng, 200, median),
        )],
        ..MetricSet::default()
    };
    let base = set(350.0, &mut rng);
    let head = set(900.0, &mut rng);
    let c = compare(
        std::slice::from_ref(&base),
        &head,
        &Thresholds::default(),
        0,
    );
    let v = &c.verdicts[0];
    assert_eq!(v.status, Status::Ignored);
    assert!(v.note.as_deref().unwrap().contains("below min_ns"), "{v:?}");
    assert!(v.change.unwrap() > 1.0);
    let t = Thresholds::from_toml_str("time = { min_ns = 100 }").unwrap();
    let c = compare(&[base], &head, &t, 0);
    assert_eq!(c.verdicts[0].status, Status::Regression(Level::Fail));
}

/// Log-normal timings with log-sd `sigma` (a stage whose operations vary widely).
fn spread_timings(rng: &mut ChaCha8Rng, n: usize, median: f64, sigma: f64) -> Vec<u64> {
    (0..n)
        .map(|_| {
            let u1: f64 = rng.random_range(f64::EPSILON..1.0);
            let u2: f64 = rng.random();
            let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            (median * (sigma * z).exp()).round() as u64
        })
        .collect()
}

#[test]
fn a_median_from_a_few_widely_spread_operations_is_insufficient_data() {
    // 31 operations with a log-sd of 0.8 (as a tiny profile's `mixed/persist`): the median's
    // own sampling error (about 18%) exceeds the 10% run-to-run floor, whatever the change.
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let set = |v: Vec<u64>| MetricSet {
        metrics: vec![Metric::from_samples(name("mixed/persist/wall_ns"), v)],
        ..MetricSet::default()
    };
    for head_median in [40_000.0, 20_000.0, 80_000.0] {
        let base = set(spread_timings(&mut rng, 31, 40_000.0, 0.8));
        let head = set(spread_timings(&mut rng, 31, head_median, 0.8));
        let c = compare(&[base], &head, &Thresholds::default(), 0);
        let v = &c.verdicts[0];
        assert_eq!(v.status, Status::InsufficientData, "{v:?}");
        let note = v.note.as_deref().unwrap();
        assert!(
            note.contains("sampling error") && note.contains("floor 10%"),
            "{note}"
        );
        assert!(v.base.is_some() && v.change.is_none());
    }
    // The same spread over 2000 operations is judged: unchanged, and a doubling fails.
    let base = set(spread_timings(&mut rng, 2000, 40_000.0, 0.8));
    let same = set(spread_timings(&mut rng, 2000, 40_000.0, 0.8));
    let slow = set(spread_timings(&mut rng, 2000, 120_000.0, 0.8));
    let t = Thresholds::default();
    let c = compare(std::slice::from_ref(&base), &same, &t, 0);
    assert_eq!(
        c.verdicts[0].status,
        Status::Unchanged,
        "{:?}",
        c.verdicts[0]
    );
    let c = compare(&[base], &slow, &t, 0);
    assert_eq!(c.verdicts[0].status, Status::Regression(Level::Fail));
}

#[test]
fn a_percentile_the_samples_cannot_bound_at_the_confidence_is_insufficient_data() {
    // 1200 operations pass the fixed p99 rule (500) but cannot bound a p99 at 99.9%: the upper
    // order statistic needed lies beyond the sample.
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let set = |v: Vec<u64>| MetricSet {
        metrics: vec![Metric::from_samples(name("recall/total/p99_ns"), v)],
        ..MetricSet::default()
    };
    let base = set(timings(&mut rng, 1200, 100_000.0));
    let head = set(timings(&mut rng, 1200, 400_000.0));
    let text = "confidence = 0.999\n[overrides]\n\"*/total/p99_ns\" = { gate = true }";
    let t = Thresholds::from_toml_str(text).unwrap();
    let c = compare(std::slice::from_ref(&base), &head, &t, 0);
    let v = &c.verdicts[0];
    assert_eq!(v.status, Status::InsufficientData, "{v:?}");
    assert!(
        v.note.as_deref().unwrap().contains("cannot bound the p99"),
        "{v:?}"
    );
    // At 99% the same samples bound it, and a 4x slower tail fails.
    let text = "[overrides]\n\"*/total/p99_ns\" = { gate = true }";
    let t = Thresholds::from_toml_str(text).unwrap();
    let c = compare(&[base], &head, &t, 0);
    assert_eq!(c.verdicts[0].status, Status::Regression(Level::Fail));
}

#[test]
fn a_bootstrap_of_tied_values_does_not_make_a_median_certain() {
    // A coarse clock: every operation reads 1000 or 2000 ns, half each. Blocks that all hold
    // both values give the bootstrap little spread; the median is still either value.
    let tied = |offset: usize| MetricSet {
        metrics: vec![Metric::from_samples(
            name("w/s/wall_ns"),
            (0..400)
                .map(|i| if (i + offset) % 2 == 0 { 1000 } else { 2000 })
                .collect(),
        )],
        ..MetricSet::default()
    };
    let t = Thresholds::from_toml_str("time = { min_ns = 0 }").unwrap();
    let c = compare(&[tied(0)], &tied(1), &t, 0);
    assert_eq!(
        c.verdicts[0].status,
        Status::InsufficientData,
        "{:?}",
        c.verdicts[0]
    );
}

#[test]
fn every_gated_verdict_states_what_it_could_detect() {
    use super::mde::{Mde, Unknown};
    let t = Thresholds::default();
    let c = compare(&[run(1, 1.0, None, 0)], &run(2, 1.0, None, 0), &t, 3);
    let mde = |n: &str| c.verdict(&name(n)).unwrap().mde;
    // Stored baseline: normal quantiles on the interval's own standard error.
    let v = c.verdict(&name("w/search/wall_ns")).unwrap();
    let Some(Mde::Statistical(e)) = v.mde else {
        panic!("{v:?}")
    };
    let z = stats::normal_quantile(0.995);
    let se = ((1.0 + v.ci_high.unwrap()).ln() - (1.0 + v.ci_low.unwrap()).ln()) / (2.0 * z);
    let m = (z + stats::normal_quantile(0.8)) * se;
    assert!((e.statistical - m.exp_m1()).abs() < 1e-9, "{e:?}");
    assert!(
        (e.warn.unwrap() - (1.05 * m.exp() - 1.0)).abs() < 1e-9,
        "{e:?}"
    );
    assert_eq!(e.df, None);
    assert_eq!(mde("w/rank/allocs"), Some(Mde::exact(1.0, 5.0)));
    // Not gated: nothing to state.
    assert_eq!(mde("w/total/p99_ns"), None);
    assert_eq!(mde("w/total/throughput_ops"), None);
    // Gated single values of stored runs and too few data: unknown, never 0.
    let t = Thresholds::from_toml_str("throughput = { gate = true }").unwrap();
    let c = compare(&[run(1, 1.0, None, 0)], &run(2, 1.0, None, 0), &t, 3);
    let v = c.verdict(&name("w/total/throughput_ops")).unwrap();
    assert_eq!(v.mde, Some(Mde::unknown(Unknown::SingleValue)));
    let few = |v: Vec<u64>| MetricSet {
        metrics: vec![
            Metric::from_samples(name("w/s/wall_ns"), v.clone()),
            Metric::from_samples(name("w/s/cpu_ns"), v),
        ],
        ..MetricSet::default()
    };
    let c = compare(&[few(vec![10_000; 5])], &few(vec![10_000; 5]), &t, 0);
    let unknown = Some(Mde::unknown(Unknown::TooFewData));
    assert_eq!(c.verdict(&name("w/s/wall_ns")).unwrap().mde, unknown);
    // cpu_ns is not gated by default: its lack of data hides nothing.
    assert_eq!(c.verdict(&name("w/s/cpu_ns")).unwrap().mde, None);
}
