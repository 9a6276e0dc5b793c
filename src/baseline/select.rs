//! Finding the baseline for a check: an explicit revision, or the nearest first-parent
//! ancestor (from the merge-base with the default branch) that has a clean run with the same
//! profile and machine.

use crate::baseline::{Store, StoredRun};
use crate::error::Error;
use crate::git::Repo;

/// How far back along first parents a check looks for a baseline.
pub const SEARCH_DEPTH: usize = 200;

/// Where the baseline came from and which runs it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Baseline {
    /// The commit whose runs form the baseline.
    pub commit: String,
    /// Every matching run of that commit (several clean reruns give a better noise estimate).
    pub runs: Vec<StoredRun>,
    /// Commits walked before finding it (0 = the search start itself).
    pub distance: usize,
}

/// Why no baseline was found, in words a reader can act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoBaseline {
    /// Not inside a git repository: nothing can be compared or saved by commit.
    NoRepository,
    /// The requested revision has no run with this profile and machine.
    NoneForRevision {
        /// The revision as given.
        rev: String,
        /// Its sha.
        commit: String,
    },
    /// None of the searched ancestors has a run with this profile and machine.
    NoneInHistory {
        /// Where the search started.
        start: String,
        /// Commits searched.
        searched: usize,
        /// Whether the clone is shallow (history may end before older baselines).
        shallow: bool,
    },
}

impl std::fmt::Display for NoBaseline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoBaseline::NoRepository => write!(f, "not in a git repository, so there is no baseline to compare with"),
            NoBaseline::NoneForRevision { rev, commit } => write!(
                f,
                "no stored run of {rev} ({}) with this profile and machine; save one with `cargo perfcheck run --save` on that commit",
                crate::git::short_sha(commit)
            ),
            NoBaseline::NoneInHistory { start, searched, shallow } => write!(
                f,
                "no stored run with this profile and machine in the {searched} first-parent commits from {}{}",
                crate::git::short_sha(start),
                if *shallow { " (shallow clone: fetch more history, or import baselines)" } else { "" }
            ),
        }
    }
}

/// What the search needs to know about the current run.
pub struct Query<'a> {
    /// Profile name of the run being checked.
    pub profile: &'a str,
    /// Machine key of the run being checked.
    pub machine_key: &'a str,
    /// Accept dirty runs as baselines.
    pub include_dirty: bool,
    /// Run id of the run being checked, never its own baseline.
    pub exclude_run: Option<&'a str>,
}

/// Finds the baseline for `head`: at `base_rev` when given, else along first parents from the
/// merge-base of `head` with `default_branch`.
pub fn find_baseline(
    store: &dyn Store,
    repo: &Repo,
    head: &str,
    base_rev: Option<&str>,
    default_branch: Option<&str>,
    q: &Query<'_>,
) -> Result<Result<Baseline, NoBaseline>, Error> {
    let runs_of = |commit: &str| -> Result<Vec<StoredRun>, Error> {
        Ok(store
            .runs_of_commit(commit, q.profile, q.machine_key, q.include_dirty)?
            .into_iter()
            .filter(|r| Some(r.run_id.as_str()) != q.exclude_run)
            .collect())
    };
    if let Some(rev) = base_rev {
        let commit = repo.resolve(rev, "--base")?;
        let runs = runs_of(&commit)?;
        return Ok(if runs.is_empty() {
            Err(NoBaseline::NoneForRevision {
                rev: rev.to_owned(),
                commit,
            })
        } else {
            Ok(Baseline {
                commit,
                runs,
                distance: 0,
            })
        });
    }
    let start = repo.search_start(head, default_branch);
    let chain = repo.first_parent_chain(&start, SEARCH_DEPTH);
    for (distance, commit) in chain.iter().enumerate() {
        let runs = runs_of(commit)?;
        if !runs.is_empty() {
            return Ok(Ok(Baseline {
                commit: commit.clone(),
                runs,
                distance,
            }));
        }
    }
    Ok(Err(NoBaseline::NoneInHistory {
        start,
        searched: chain.len(),
        shallow: repo.is_shallow(),
    }))
}
