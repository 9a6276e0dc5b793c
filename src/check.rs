//! `check`: find the baseline of a run and compare the run with it.

use crate::baseline::select::{find_baseline, Baseline, NoBaseline, Query};
use crate::baseline::Store;
use crate::compare::attribution::explain;
use crate::compare::{compare, Comparison};
use crate::error::Error;
use crate::git::Repo;
use crate::project::ProjectConfig;
use crate::record::RunRecord;

/// What a check concluded.
pub enum CheckOutcome {
    /// A baseline was found and compared.
    Compared {
        /// Per-metric verdicts.
        comparison: Box<Comparison>,
        /// The baseline commit and runs.
        baseline: Baseline,
        /// The baseline runs' records (for attribution files).
        base_records: Vec<RunRecord>,
    },
    /// Nothing to compare with, and why.
    NoBaseline(NoBaseline),
}

/// Finds the baseline of `head` (at `base_rev` when given) in `store` and compares.
pub fn check(
    store: &dyn Store,
    repo: Option<&Repo>,
    head: &RunRecord,
    base_rev: Option<&str>,
    project: &ProjectConfig,
    include_dirty: bool,
) -> Result<CheckOutcome, Error> {
    let (Some(repo), Some(git)) = (repo, head.git.as_ref()) else {
        return Ok(CheckOutcome::NoBaseline(NoBaseline::NoRepository));
    };
    let machine_key = head.machine.key();
    let query = Query {
        profile: &head.profile.name,
        machine_key: &machine_key,
        include_dirty,
        exclude_run: Some(&head.run_id),
    };
    let default_branch = repo.default_branch(project.check.default_branch.as_deref());
    let found = find_baseline(
        store,
        repo,
        &git.commit,
        base_rev,
        default_branch.as_deref(),
        &query,
    )?;
    let baseline = match found {
        Ok(b) => b,
        Err(why) => return Ok(CheckOutcome::NoBaseline(why)),
    };
    let mut base_sets = Vec::with_capacity(baseline.runs.len());
    let mut base_records = Vec::with_capacity(baseline.runs.len());
    for run in &baseline.runs {
        let record = store.load(&run.run_id)?.ok_or_else(|| {
            Error::Usage(format!(
                "baseline run {} disappeared from the store during the check",
                run.run_id
            ))
        })?;
        base_sets.push(metric_set(&record)?);
        base_records.push(record);
    }
    let head_set = metric_set(head)?;
    let mut comparison = compare(
        &base_sets,
        &head_set,
        &project.thresholds,
        project.check.seed,
    );
    let bases: Vec<&RunRecord> = base_records.iter().collect();
    explain(&mut comparison, &bases, head);
    Ok(CheckOutcome::Compared {
        comparison: Box::new(comparison),
        baseline,
        base_records,
    })
}

pub use crate::metrics::metric_set;
