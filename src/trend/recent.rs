//! Recent change points of the metrics a check gated, for the check report: a step a few
//! commits back explains a trend the single head-vs-base verdict cannot show.

use crate::baseline::Store;
use crate::compare::{Comparison, Status, Thresholds};
use crate::error::Error;
use crate::git::Repo;
use crate::metrics::MetricName;
use crate::trend::{history, series, ChangePoint};

/// Commits with runs a check looks back over for change points.
pub const RECENT_HISTORY: usize = 30;
/// A change point is recent when it is at most this many first-parent commits before the
/// checked commit.
pub const RECENT_COMMITS: usize = 10;

/// One gated metric's recent step.
#[derive(Clone, Debug, PartialEq)]
pub struct RecentStep {
    /// Which metric.
    pub metric: MetricName,
    /// The step.
    pub change: ChangePoint,
}

/// The change points within [`RECENT_COMMITS`] of `head_commit` of each metric `comparison`
/// gated (regression, improvement or unchanged), newest first per metric, over the stored runs
/// of `profile` on `machine_key`.
pub fn recent_steps(
    store: &dyn Store,
    repo: &Repo,
    head_commit: &str,
    comparison: &Comparison,
    thresholds: &Thresholds,
) -> Result<Vec<RecentStep>, Error> {
    let h = history(
        store,
        repo,
        head_commit,
        &comparison.head.profile,
        &comparison.head.machine,
        RECENT_HISTORY,
    )?;
    let mut out = Vec::new();
    for v in &comparison.verdicts {
        let gated = matches!(
            v.status,
            Status::Regression(_) | Status::Improvement | Status::Unchanged
        );
        if !gated {
            continue;
        }
        let s = series(repo, &h, &v.metric, None, thresholds, comparison.seed);
        for change in s.change_points.into_iter().rev() {
            if change.commits_ago <= RECENT_COMMITS {
                out.push(RecentStep {
                    metric: v.metric.clone(),
                    change,
                });
            }
        }
    }
    Ok(out)
}
