//! Metric series across the first-parent history that has baselines: a value and an
//! uncertainty band per commit, what the gate would have said about each step, and the
//! change points of each series ([`changepoint`]).

pub mod changepoint;
pub mod recent;

use serde::Serialize;

use crate::baseline::Store;
use crate::compare::stats::{normal_quantile, rng_for, safe_ln, BlockSamples};
use crate::compare::{compare, Status, Thresholds};
use crate::error::Error;
use crate::git::Repo;
use crate::metrics::metric_set;
use crate::metrics::{Metric, MetricKind, MetricName, MetricSet, Unit};

/// How far back along first parents a trend looks for commits with runs.
pub const TREND_DEPTH: usize = 5_000;

/// One commit's point of one metric.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrendPoint {
    /// Full sha.
    pub commit: String,
    /// First line of the commit message.
    pub summary: Option<String>,
    /// Runs of this commit that the point combines.
    pub runs: usize,
    /// Geometric mean of the runs' statistic (median, percentile, mean or single value).
    pub value: f64,
    /// Lower end of the band (where reruns of this commit would fall, at the gate's level).
    pub low: f64,
    /// Upper end of the band.
    pub high: f64,
    /// The gate's verdict on this commit against the previous point (`None` for the first).
    pub status: Option<String>,
}

/// One metric across commits, oldest first.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrendSeries {
    /// Which metric.
    pub metric: MetricName,
    /// Its unit.
    pub unit: Unit,
    /// Points, oldest commit first.
    pub points: Vec<TrendPoint>,
    /// Steps in the series, oldest first ([`changepoint::detect`]).
    pub change_points: Vec<ChangePoint>,
}

/// A step in a metric's level between two commits with runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChangePoint {
    /// Index of the first point at the new level in [`TrendSeries::points`].
    pub index: usize,
    /// Full sha of that point's commit.
    pub commit: String,
    /// Its short form (`git::short_sha`).
    pub short: String,
    /// First line of its commit message (untrusted: escape before display).
    pub summary: Option<String>,
    /// Full sha of the point before (the step happened after it, at or before `commit`).
    pub previous_commit: String,
    /// First-parent commits from the commit the trend started at (HEAD, or the checked
    /// commit) back to `commit`; 0 when it is that commit.
    pub commits_ago: usize,
    /// Geometric mean of the points between the previous change point and this one.
    pub before: f64,
    /// Geometric mean of the points from this change point to the next.
    pub after: f64,
    /// after / before - 1.
    pub step: f64,
    /// Lower end of the step's interval.
    pub step_low: f64,
    /// Upper end of the step's interval.
    pub step_high: f64,
    /// Level of that interval (the gate's confidence).
    pub confidence: f64,
    /// Permutation p-value of the split (significant at [`changepoint::ALPHA`]).
    pub p_value: f64,
}

/// What to chart.
pub struct TrendQuery<'a> {
    /// Commit to walk back from (usually HEAD).
    pub head: &'a str,
    /// Profile name of the runs.
    pub profile: &'a str,
    /// Machine key of the runs.
    pub machine_key: &'a str,
    /// Metrics to chart.
    pub metrics: &'a [MetricName],
    /// At most this many commits with runs (the newest ones).
    pub last: usize,
    /// Thresholds and confidence of the gate.
    pub thresholds: &'a Thresholds,
    /// Bootstrap seed.
    pub seed: u64,
}

/// Commits with clean runs along first parents of `head`, newest `last` of them, oldest first,
/// each with its runs' metrics; and the whole chain walked (newest first) for distances.
pub struct History {
    /// Commits with runs, oldest first.
    pub commits: Vec<(String, Vec<MetricSet>)>,
    /// First-parent chain from `head`, newest first, as far as it was walked.
    pub chain: Vec<String>,
}

/// Loads the stored clean runs of `profile` on `machine_key` along first parents of `head`.
pub fn history(
    store: &dyn Store,
    repo: &Repo,
    head: &str,
    profile: &str,
    machine_key: &str,
    last: usize,
) -> Result<History, Error> {
    let mut commits: Vec<(String, Vec<MetricSet>)> = Vec::new();
    let mut chain = Vec::new();
    for commit in repo.first_parent_chain(head, TREND_DEPTH) {
        if commits.len() >= last {
            break;
        }
        chain.push(commit.clone());
        let runs = store.runs_of_commit(&commit, profile, machine_key, false)?;
        if runs.is_empty() {
            continue;
        }
        let mut sets = Vec::with_capacity(runs.len());
        for r in &runs {
            if let Some(rec) = store.load(&r.run_id)? {
                sets.push(metric_set(&rec)?);
            }
        }
        commits.push((commit, sets));
    }
    commits.reverse();
    Ok(History { commits, chain })
}

/// Builds one series per requested metric from the stored clean runs along first parents.
pub fn trend(
    store: &dyn Store,
    repo: &Repo,
    q: &TrendQuery<'_>,
) -> Result<Vec<TrendSeries>, Error> {
    let h = history(store, repo, q.head, q.profile, q.machine_key, q.last)?;

    // The gate's verdicts between consecutive commits: newest run of each against all runs of
    // the previous commit, exactly as `check --base` would compare them.
    let mut verdicts: Vec<Option<crate::compare::Comparison>> = vec![None];
    for pair in h.commits.windows(2) {
        let head = pair[1].1.last().cloned().unwrap_or_default();
        verdicts.push(Some(compare(&pair[0].1, &head, q.thresholds, q.seed)));
    }
    Ok(q.metrics
        .iter()
        .map(|name| series(repo, &h, name, Some(&verdicts), q.thresholds, q.seed))
        .collect())
}

/// One metric's points across `h` (with the gate's verdict between consecutive commits when
/// `verdicts`, aligned with `h.commits`, are given) and its change points.
pub fn series(
    repo: &Repo,
    h: &History,
    name: &MetricName,
    verdicts: Option<&[Option<crate::compare::Comparison>]>,
    thresholds: &Thresholds,
    seed: u64,
) -> TrendSeries {
    let z = normal_quantile(0.5 + thresholds.confidence / 2.0);
    let drift = thresholds.resolve(name).noise / 100.0;
    let mut points = Vec::new();
    for (i, (commit, sets)) in h.commits.iter().enumerate() {
        let metrics: Vec<&Metric> = sets.iter().filter_map(|s| s.get(name)).collect();
        let Some(point) = band(name, &metrics, drift, z, seed) else {
            continue;
        };
        let status = verdicts
            .and_then(|v| v.get(i))
            .and_then(Option::as_ref)
            .and_then(|c| c.verdict(name))
            .map(|v| v.status.as_str().to_owned());
        points.push(TrendPoint {
            commit: commit.clone(),
            summary: repo.summary(commit),
            status,
            ..point
        });
    }
    let change_points = change_points(&points, &h.chain, z, thresholds.confidence, seed, name);
    TrendSeries {
        metric: name.clone(),
        unit: name.measure().unit(),
        points,
        change_points,
    }
}

/// Runs [`changepoint::detect`] on the points' logs, each with the standard error its band
/// implies, and names each step's commit.
fn change_points(
    points: &[TrendPoint],
    chain: &[String],
    z: f64,
    confidence: f64,
    seed: u64,
    name: &MetricName,
) -> Vec<ChangePoint> {
    let logs: Vec<f64> = points.iter().map(|p| p.value.ln()).collect();
    let se: Vec<f64> = points
        .iter()
        .map(|p| {
            if z > 0.0 {
                (p.high.ln() - p.low.ln()) / (2.0 * z)
            } else {
                0.0
            }
        })
        .collect();
    let seed = seed ^ crate::compare::stats::stable_hash(&name.to_string());
    changepoint::detect(&logs, &se, seed)
        .into_iter()
        .map(|s| {
            let p = &points[s.index];
            let (step, step_low, step_high) = s.relative(confidence);
            ChangePoint {
                index: s.index,
                commit: p.commit.clone(),
                short: crate::git::short_sha(&p.commit).to_owned(),
                summary: p.summary.clone(),
                previous_commit: points[s.index - 1].commit.clone(),
                commits_ago: chain.iter().position(|c| c == &p.commit).unwrap_or(0),
                before: s.mean_before.exp(),
                after: s.mean_after.exp(),
                step,
                step_low,
                step_high,
                confidence,
                p_value: s.p_value,
            }
        })
        .collect()
}

/// A commit's value and band: the runs' geometric mean, widened by each run's sampling error
/// and the run-to-run drift, the same model the gate uses.
fn band(name: &MetricName, runs: &[&Metric], drift: f64, z: f64, seed: u64) -> Option<TrendPoint> {
    let runs: Vec<&Metric> = runs
        .iter()
        .copied()
        .filter(|m| m.value.is_finite() && m.value > 0.0)
        .collect();
    if runs.is_empty() {
        return None;
    }
    let k = runs.len() as f64;
    let mut logs = Vec::with_capacity(runs.len());
    let mut within = 0.0;
    for (i, m) in runs.iter().enumerate() {
        logs.push(safe_ln(m.value));
        if m.kind() == MetricKind::Timing && !m.samples.is_empty() {
            let mut rng = rng_for(seed.wrapping_add(i as u64), &name.to_string());
            let se = BlockSamples::new(&m.samples).log_se(m.statistic(), 200, &mut rng);
            within += se * se;
        }
    }
    let mean = logs.iter().sum::<f64>() / k;
    let spread = match name.measure().kind() {
        MetricKind::Deterministic => 0.0,
        _ => (within / (k * k) + drift * drift / k).sqrt(),
    };
    Some(TrendPoint {
        commit: String::new(),
        summary: None,
        runs: runs.len(),
        value: mean.exp(),
        low: (mean - z * spread).exp(),
        high: (mean + z * spread).exp(),
        status: None,
    })
}

/// Whether a point's status is a regression at either level.
pub fn is_regression(status: Option<&str>) -> bool {
    matches!(status, Some(s) if s == Status::Regression(crate::compare::Level::Fail).as_str()
        || s == Status::Regression(crate::compare::Level::Warn).as_str())
}
