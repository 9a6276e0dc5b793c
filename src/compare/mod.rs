//! Comparison of a head run's metrics against one or more baseline runs: a [`Verdict`] per
//! metric, false discovery control across them, and the check's exit code.
//!
//! - Timing metrics ([`MetricKind::Timing`]): each run's median or percentile gets a block
//!   bootstrap standard error; a run-to-run drift term (a floor per kind, widened by the spread
//!   between baseline runs) is added; the relative change gets a normal interval on the log
//!   scale and a p-value ([`stats`]).
//! - Single values ([`MetricKind::Single`], e.g. throughput): drift term only.
//! - Deterministic metrics ([`MetricKind::Deterministic`], allocations per operation): compared
//!   exactly against their thresholds.
//! - p-values of all gated statistical comparisons are adjusted together (Benjamini-Hochberg,
//!   [`fdr`]) at `1 - confidence`. A metric regresses only when its q-value is within that rate
//!   *and* its whole interval lies beyond the threshold ([`verdict::classify`]).
//! - Each gated verdict states its minimum detectable effect at 80% power ([`mde`]).
//!
//! The bootstrap draws from a generator seeded by `seed` and the metric's name, so a check is
//! reproducible and a metric's result does not depend on which other metrics exist.

pub mod attribution;
pub mod crosscheck;
pub mod fdr;
pub mod mde;
pub mod measured_noise;
pub mod paired;
pub mod stats;
pub mod thresholds;
pub mod verdict;

use serde::{Deserialize, Serialize};

use crate::metrics::{Metric, MetricKind, MetricName, MetricSet, RunInfo, Statistic};
pub use mde::Mde;
pub use paired::compare_paired;
use stats::{BlockSamples, Estimate, RunStat};
pub use thresholds::{Limit, Limits, ThresholdError, Thresholds};
pub use verdict::{Level, Status, Verdict};

/// Version of the check.json layout; bumped on any incompatible change.
pub const CHECK_SCHEMA_VERSION: u32 = 1;

/// How many metrics ended in each status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// All metrics listed.
    pub metrics: usize,
    /// Fail-level regressions.
    pub fail: usize,
    /// Warn-level regressions.
    pub warn: usize,
    /// Improvements.
    pub improvements: usize,
    /// Unchanged.
    pub unchanged: usize,
    /// Insufficient data.
    pub insufficient_data: usize,
    /// Reported but not gated.
    pub ignored: usize,
    /// Only in head.
    pub new: usize,
    /// Only in the baseline.
    pub missing: usize,
}

impl Counts {
    /// Tallies the statuses of `verdicts`.
    pub fn of(verdicts: &[Verdict]) -> Counts {
        let mut c = Counts {
            metrics: verdicts.len(),
            ..Counts::default()
        };
        for v in verdicts {
            match v.status {
                Status::Regression(Level::Fail) => c.fail += 1,
                Status::Regression(Level::Warn) => c.warn += 1,
                Status::Improvement => c.improvements += 1,
                Status::Unchanged => c.unchanged += 1,
                Status::InsufficientData => c.insufficient_data += 1,
                Status::Ignored => c.ignored += 1,
                Status::New => c.new += 1,
                Status::Missing => c.missing += 1,
            }
        }
        c
    }

    /// Regressions at either level.
    pub fn regressions(&self) -> usize {
        self.fail + self.warn
    }
}

/// The result of comparing a head run against its baseline runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Layout version of this structure as JSON ([`CHECK_SCHEMA_VERSION`]).
    pub schema: u32,
    /// The run being checked.
    pub head: RunInfo,
    /// The baseline runs compared against.
    pub base: Vec<RunInfo>,
    /// Interval level used; `1 - confidence` is the false discovery rate.
    pub confidence: f64,
    /// Seed of the bootstrap.
    pub seed: u64,
    /// Tally of statuses.
    pub counts: Counts,
    /// One verdict per metric: head order, then metrics missing from head.
    pub verdicts: Vec<Verdict>,
    /// Set when base and head ran interleaved in one session (`check --ab`); `head` is then
    /// the first head run and `base` the base runs in round order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paired: Option<PairedInfo>,
    /// The functions behind each flagged stage, where both sides counted instructions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attribution: Vec<attribution::StageAttribution>,
    /// Stages whose instructions and wall time disagree (see [`crosscheck`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crosscheck: Vec<crosscheck::Disagreement>,
    /// Set when noise floors measured by `calibrate` replaced the configured ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise_floors: Option<measured_noise::NoiseSource>,
}

/// How a paired A/B comparison was made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairedInfo {
    /// Rounds of one base and one head run each, in alternating order.
    pub rounds: usize,
    /// All head runs in round order.
    pub head_runs: Vec<RunInfo>,
}

impl Comparison {
    /// 1 when any fail-level regression was found, else 0.
    pub fn exit_code(&self) -> i32 {
        if self.counts.fail > 0 {
            1
        } else {
            0
        }
    }

    /// Regressions, fail level first, then by how far beyond the threshold they are.
    pub fn regressions(&self) -> Vec<&Verdict> {
        let mut r: Vec<&Verdict> = self
            .verdicts
            .iter()
            .filter(|v| v.status.is_regression())
            .collect();
        r.sort_by(|a, b| {
            let level = |v: &Verdict| match v.status {
                Status::Regression(l) => l,
                _ => Level::Warn,
            };
            level(b)
                .cmp(&level(a))
                .then_with(|| badness(b).total_cmp(&badness(a)))
        });
        r
    }

    /// Improvements, largest first.
    pub fn improvements(&self) -> Vec<&Verdict> {
        let mut r: Vec<&Verdict> = self
            .verdicts
            .iter()
            .filter(|v| v.status == Status::Improvement)
            .collect();
        r.sort_by(|a, b| badness(a).total_cmp(&badness(b)));
        r
    }

    /// The verdict of one metric.
    pub fn verdict(&self, name: &MetricName) -> Option<&Verdict> {
        self.verdicts.iter().find(|v| &v.metric == name)
    }
}

/// How much worse (positive) or better (negative) a verdict's change is.
fn badness(v: &Verdict) -> f64 {
    let c = v.change.unwrap_or(f64::INFINITY);
    match v.direction {
        crate::metrics::Direction::LowerIsBetter => c,
        crate::metrics::Direction::HigherIsBetter => -c,
    }
}

/// Compares `head` against the baseline runs `base` (several clean runs of the base commit
/// make the run-to-run drift measurable; one is enough). `seed` makes the bootstrap repeatable.
pub fn compare(
    base: &[MetricSet],
    head: &MetricSet,
    thresholds: &Thresholds,
    seed: u64,
) -> Comparison {
    let mut verdicts: Vec<Verdict> = Vec::new();
    // Gated statistical comparisons: verdict index, p-value to adjust, interval.
    let mut tested: Vec<(usize, f64, (f64, f64))> = Vec::new();

    for m in &head.metrics {
        let bases: Vec<&Metric> = base.iter().filter_map(|s| s.get(&m.name)).collect();
        let limit = thresholds.resolve(&m.name);
        let mut v = blank(&m.name, &limit, &bases);
        v.head = Some(m.value);
        v.head_samples = m.samples.len();
        if bases.is_empty() {
            v.status = Status::New;
            verdicts.push(v);
            continue;
        }
        match m.kind() {
            MetricKind::Deterministic => exact(&mut v, &bases, m, &limit),
            MetricKind::Timing | MetricKind::Single => {
                match statistical(&mut v, &bases, m, &limit, thresholds, seed) {
                    Some(e) => {
                        let ci = e.interval(thresholds.confidence);
                        if interval_and_gate(&mut v, ci, &limit) {
                            // A single value per stored run has no measured spread (one
                            // baseline gives only the assumed floor): its MDE would restate
                            // the floor.
                            v.mde = Some(match m.kind() {
                                MetricKind::Timing => Mde::statistical(
                                    e.log_se,
                                    thresholds.confidence,
                                    mde::Quantiles::Normal,
                                    v.direction,
                                    limit.warn,
                                    limit.fail,
                                ),
                                _ => Mde::unknown(mde::Unknown::SingleValue),
                            });
                            tested.push((verdicts.len(), v.p_value.unwrap_or(1.0), ci));
                        }
                    }
                    None => unknown_if_gated(&mut v, &limit),
                }
            }
        }
        verdicts.push(v);
    }
    finish(verdicts, tested, base, head, thresholds, seed, None)
}

/// Records a statistical verdict's interval; returns whether the metric is gated (it then joins
/// the false-discovery-controlled tests), else marks it ignored and says why.
fn interval_and_gate(v: &mut Verdict, ci: (f64, f64), limit: &Limit) -> bool {
    v.ci_low = Some(ci.0);
    v.ci_high = Some(ci.1);
    if gated(v, limit) {
        return true;
    }
    v.status = Status::Ignored;
    let base = v.base.unwrap_or(0.0);
    if limit.gate {
        v.note = Some(format!(
            "base {base:.0}ns is below min_ns = {:.0}: too short to gate",
            limit.min_ns
        ));
    }
    false
}

/// Whether the relative comparison may flag this metric: gated, and for a timing, a base
/// at least `min_ns` (set `v.base` first).
fn gated(v: &Verdict, limit: &Limit) -> bool {
    let too_fast =
        v.unit == crate::metrics::Unit::Nanoseconds && v.base.unwrap_or(0.0) < limit.min_ns;
    limit.gate && !too_fast
}

/// A metric with too little data to judge: its MDE is unknown, which is worth saying only
/// when it would have been gated.
fn unknown_if_gated(v: &mut Verdict, limit: &Limit) {
    if gated(v, limit) {
        v.mde = Some(Mde::unknown(mde::Unknown::TooFewData));
    }
}

/// The steps every comparison ends with: Benjamini-Hochberg over the gated tests (verdict
/// index, p-value, interval), absolute ceilings, metrics only the baselines have, the tally.
fn finish(
    mut verdicts: Vec<Verdict>,
    tested: Vec<(usize, f64, (f64, f64))>,
    base: &[MetricSet],
    head: &MetricSet,
    thresholds: &Thresholds,
    seed: u64,
    paired: Option<PairedInfo>,
) -> Comparison {
    let q = fdr::bh_adjust(&tested.iter().map(|t| t.1).collect::<Vec<_>>());
    let alpha = 1.0 - thresholds.confidence;
    for (&(i, _, ci), q) in tested.iter().zip(q) {
        let v = &mut verdicts[i];
        v.q_value = Some(q);
        v.status = verdict::classify(v.direction, ci, q <= alpha, v.warn, v.fail);
    }

    // Absolute ceilings (`max`) and floors (`min`) judge the head value alone, so they work
    // without a usable base (an error rate whose base is 0).
    for v in &mut verdicts {
        let limit = thresholds.resolve(&v.metric);
        if let (Some(max), Some(head)) = (limit.max, v.head) {
            if head > max {
                v.status = Status::Regression(verdict::Level::Fail);
                v.note = Some(format!("{head} is above the absolute ceiling max = {max}"));
            } else if matches!(v.status, Status::InsufficientData | Status::Ignored) {
                v.status = Status::Unchanged;
                v.note = Some(format!("within the absolute ceiling max = {max}"));
            }
        }
        if let (Some(min), Some(head)) = (limit.min, v.head) {
            if head < min {
                v.status = Status::Regression(verdict::Level::Fail);
                v.note = Some(format!("{head} is below the absolute floor min = {min}"));
            } else if matches!(v.status, Status::InsufficientData | Status::Ignored) {
                v.status = Status::Unchanged;
                v.note = Some(format!("within the absolute floor min = {min}"));
            }
        }
    }

    // Metrics only the baselines have: listed so that a vanished stage is visible.
    let mut seen: Vec<&MetricName> = Vec::new();
    for set in base {
        for m in &set.metrics {
            if head.get(&m.name).is_none() && !seen.contains(&&m.name) {
                seen.push(&m.name);
                let bases: Vec<&Metric> = base.iter().filter_map(|s| s.get(&m.name)).collect();
                let limit = thresholds.resolve(&m.name);
                let mut v = blank(&m.name, &limit, &bases);
                v.status = Status::Missing;
                v.base = Some(base_value(&bases, m.kind()));
                verdicts.push(v);
            }
        }
    }

    Comparison {
        schema: CHECK_SCHEMA_VERSION,
        head: head.run.clone(),
        base: base.iter().map(|s| s.run.clone()).collect(),
        confidence: thresholds.confidence,
        seed,
        counts: Counts::of(&verdicts),
        verdicts,
        paired,
        attribution: Vec::new(),
        crosscheck: Vec::new(),
        noise_floors: None,
    }
}

fn blank(name: &MetricName, limit: &Limit, bases: &[&Metric]) -> Verdict {
    let measure = name.measure();
    Verdict {
        metric: name.clone(),
        kind: measure.kind(),
        direction: measure.direction(),
        unit: measure.unit(),
        statistic: measure.statistic(),
        status: Status::Unchanged,
        base: None,
        head: None,
        change: None,
        ci_low: None,
        ci_high: None,
        p_value: None,
        q_value: None,
        warn: limit.warn,
        fail: limit.fail,
        noise: None,
        base_runs: bases.len(),
        base_samples: bases.iter().map(|b| b.samples.len()).sum(),
        head_samples: 0,
        note: None,
        mde: None,
    }
}

/// Mean over baseline runs for exact counts; geometric mean for the rest (as [`Estimate`]).
fn base_value(bases: &[&Metric], kind: MetricKind) -> f64 {
    let k = bases.len() as f64;
    match kind {
        MetricKind::Deterministic => bases.iter().map(|b| b.value).sum::<f64>() / k,
        _ if bases.len() == 1 => bases[0].value,
        _ => (bases.iter().map(|b| stats::safe_ln(b.value)).sum::<f64>() / k).exp(),
    }
}

/// Allocation counts repeat exactly for the same code and data: no statistics, the change is
/// the change.
fn exact(v: &mut Verdict, bases: &[&Metric], head: &Metric, limit: &Limit) {
    let base = base_value(bases, MetricKind::Deterministic);
    v.base = Some(base);
    if head.samples.is_empty() || bases.iter().any(|b| b.samples.is_empty()) {
        v.status = Status::InsufficientData;
        v.note = Some("no operations measured".into());
        unknown_if_gated(v, limit);
        return;
    }
    let status = if base == 0.0 {
        if head.value == 0.0 {
            v.change = Some(0.0);
            v.ci_low = Some(0.0);
            v.ci_high = Some(0.0);
            Status::Unchanged
        } else {
            v.note = Some("base was 0 per operation".into());
            Status::Regression(Level::Fail)
        }
    } else {
        let c = head.value / base - 1.0;
        v.change = Some(c);
        v.ci_low = Some(c);
        v.ci_high = Some(c);
        verdict::classify(v.direction, (c, c), true, limit.warn, limit.fail)
    };
    v.status = if limit.gate { status } else { Status::Ignored };
    if limit.gate {
        v.mde = Some(Mde::exact(limit.warn, limit.fail));
    }
}

/// Fills base, change and p-value of a timing or single-value metric; `None` (with the status
/// set) when there is too little data to judge.
fn statistical(
    v: &mut Verdict,
    bases: &[&Metric],
    head: &Metric,
    limit: &Limit,
    t: &Thresholds,
    seed: u64,
) -> Option<Estimate> {
    let stat = head.statistic();
    let floor = limit.noise / 100.0;
    let estimate = if head.kind() == MetricKind::Single {
        let run = |m: &Metric| RunStat {
            value: m.value,
            log_se: 0.0,
        };
        let finite = |m: &Metric| m.value.is_finite() && m.value > 0.0;
        if !finite(head) || !bases.iter().all(|b| finite(b)) {
            v.base = Some(base_value(bases, MetricKind::Single));
            v.status = Status::InsufficientData;
            v.note = Some("value is zero or missing; no relative change".into());
            return None;
        }
        Estimate::new(
            &bases.iter().map(|b| run(b)).collect::<Vec<_>>(),
            run(head),
            floor,
        )
    } else {
        let need = min_samples(stat, limit.min_samples);
        let short = std::iter::once(head.samples.len())
            .chain(bases.iter().map(|b| b.samples.len()))
            .min()
            .unwrap_or(0);
        let insufficient = |v: &mut Verdict, note: String| {
            v.base = Some(base_value(bases, MetricKind::Timing));
            v.status = Status::InsufficientData;
            v.note = Some(note);
            None
        };
        if short < need {
            return insufficient(v, format!("{short} samples in a run, {need} needed"));
        }
        let name = head.name.to_string();
        let run = |m: &Metric, which: usize| {
            let mut rng = stats::rng_for(seed.wrapping_add(which as u64), &name);
            let b = BlockSamples::new(&m.samples);
            let rank_se = b.rank_log_se(stat, t.confidence)?;
            Some(RunStat {
                value: b.full(stat),
                log_se: b.log_se(stat, t.resamples, &mut rng).max(rank_se),
            })
        };
        let Some(head_run) = run(head, 0) else {
            return insufficient(v, unbounded(stat, short, t.confidence));
        };
        let mut base_runs = Vec::with_capacity(bases.len());
        for (i, b) in bases.iter().enumerate() {
            match run(b, i + 1) {
                Some(r) => base_runs.push(r),
                None => return insufficient(v, unbounded(stat, short, t.confidence)),
            }
        }
        // The drift floor is the run-to-run noise assumed beyond sampling. A run whose own
        // statistic is less certain than that has too few operations to tell a change from
        // which operations happened to be drawn: its verdict would rest on the sampling.
        let worst = std::iter::once(&head_run)
            .chain(&base_runs)
            .map(|r| r.log_se)
            .fold(0.0f64, f64::max);
        if floor > 0.0 && worst > floor {
            return insufficient(
                v,
                format!(
                    "sampling error {:.0}% of a run's {} exceeds the run-to-run noise floor {:.0}%: too few operations",
                    100.0 * worst.exp_m1(),
                    stat_name(stat),
                    100.0 * floor
                ),
            );
        }
        Estimate::new(&base_runs, head_run, floor)
    };
    v.base = Some(estimate.base);
    v.change = Some(estimate.change());
    v.p_value = Some(estimate.p_value());
    v.noise = Some(estimate.drift);
    Some(estimate)
}

/// A statistic as the run table names it: `median`, `p99`, `mean`, `value`.
fn stat_name(stat: Statistic) -> String {
    match stat {
        Statistic::Median => "median".into(),
        Statistic::Mean => "mean".into(),
        Statistic::Percentile(p) => format!("p{p}"),
        Statistic::Value => "value".into(),
    }
}

/// Why a statistic cannot be bounded from `n` operations at `confidence`.
fn unbounded(stat: Statistic, n: usize, confidence: f64) -> String {
    format!(
        "{n} samples cannot bound the {} at {:.0}% confidence: too few operations",
        stat_name(stat),
        100.0 * confidence
    )
}

/// Samples a run needs before its statistic means anything: the configured minimum, and for a
/// percentile at least five samples beyond it (a p99 from 100 operations is one operation).
fn min_samples(stat: Statistic, configured: usize) -> usize {
    match stat {
        Statistic::Percentile(p) if p < 100 => configured.max(500 / (100 - p as usize)),
        _ => configured,
    }
}

#[cfg(test)]
mod tests;
