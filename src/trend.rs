//! Metric series across the first-parent history that has baselines: a value and an
//! uncertainty band per commit, and what the gate would have said about each step.

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

/// Builds one series per requested metric from the stored clean runs along first parents.
pub fn trend(
    store: &dyn Store,
    repo: &Repo,
    q: &TrendQuery<'_>,
) -> Result<Vec<TrendSeries>, Error> {
    let mut commits: Vec<(String, Vec<MetricSet>)> = Vec::new();
    for commit in repo.first_parent_chain(q.head, TREND_DEPTH) {
        if commits.len() >= q.last {
            break;
        }
        let runs = store.runs_of_commit(&commit, q.profile, q.machine_key, false)?;
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

    // The gate's verdicts between consecutive commits: newest run of each against all runs of
    // the previous commit, exactly as `check --base` would compare them.
    let mut verdicts: Vec<Option<crate::compare::Comparison>> = vec![None];
    for pair in commits.windows(2) {
        let head = pair[1].1.last().cloned().unwrap_or_default();
        verdicts.push(Some(compare(&pair[0].1, &head, q.thresholds, q.seed)));
    }

    let z = normal_quantile(0.5 + q.thresholds.confidence / 2.0);
    let mut out = Vec::with_capacity(q.metrics.len());
    for name in q.metrics {
        let drift = q.thresholds.resolve(name).noise / 100.0;
        let mut points = Vec::new();
        for ((commit, sets), cmp) in commits.iter().zip(&verdicts) {
            let metrics: Vec<&Metric> = sets.iter().filter_map(|s| s.get(name)).collect();
            let Some(point) = band(name, &metrics, drift, z, q.seed) else {
                continue;
            };
            let status = cmp
                .as_ref()
                .and_then(|c| c.verdict(name))
                .map(|v| v.status.as_str().to_owned());
            points.push(TrendPoint {
                commit: commit.clone(),
                summary: repo.summary(commit),
                status,
                ..point
            });
        }
        out.push(TrendSeries {
            metric: name.clone(),
            unit: name.measure().unit(),
            points,
        });
    }
    Ok(out)
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
