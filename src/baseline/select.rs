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
    /// The store file does not exist yet.
    NoStore {
        /// Where it was looked for.
        path: std::path::PathBuf,
    },
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
            NoBaseline::NoStore { path } => write!(
                f,
                "no baseline store at {} yet; `cargo perfcheck run --save` on the base commit creates it",
                path.display()
            ),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::{RunFilter, Saved};
    use crate::record::RunRecord;

    /// A store that holds only run metadata: enough for the search.
    #[derive(Default)]
    struct MemStore(Vec<StoredRun>);

    impl Store for MemStore {
        fn save(&mut self, _: &RunRecord) -> Result<Saved, Error> {
            unimplemented!("metadata-only test store")
        }
        fn save_all(&mut self, _: &[RunRecord]) -> Result<crate::baseline::Imported, Error> {
            unimplemented!("metadata-only test store")
        }
        fn list(&self, f: &RunFilter) -> Result<Vec<StoredRun>, Error> {
            Ok(self
                .0
                .iter()
                .filter(|r| {
                    f.commit_prefix
                        .as_ref()
                        .is_none_or(|p| r.commit.as_deref().is_some_and(|c| c.starts_with(p)))
                        && f.profile.as_ref().is_none_or(|p| &r.profile == p)
                        && f.machine_key.as_ref().is_none_or(|m| &r.machine_key == m)
                        && (f.include_dirty || !r.dirty)
                })
                .cloned()
                .collect())
        }
        fn load(&self, _: &str) -> Result<Option<RunRecord>, Error> {
            Ok(None)
        }
        fn delete(&mut self, _: &str) -> Result<bool, Error> {
            Ok(false)
        }
    }

    fn run(id: &str, commit: &str, dirty: bool, machine: &str) -> StoredRun {
        StoredRun {
            run_id: id.into(),
            commit: Some(commit.into()),
            branch: None,
            dirty,
            profile: "quick".into(),
            machine_key: machine.into(),
            created_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    /// main: a - b - c - d ; feature forks at b: x - y (HEAD).
    struct Repo5 {
        _dir: tempfile::TempDir,
        repo: Repo,
        a: String,
        b: String,
        c: String,
        d: String,
        y: String,
    }

    fn repo5() -> Repo5 {
        let dir = tempfile::tempdir().unwrap();
        let g = git2::Repository::init(dir.path()).unwrap();
        let sig = git2::Signature::now("t", "t@example.com").unwrap();
        let tree = g
            .find_tree(g.treebuilder(None).unwrap().write().unwrap())
            .unwrap();
        let commit = |msg: &str, parent: Option<&str>, r: &str| -> String {
            let parents: Vec<git2::Commit> = parent
                .map(|p| g.find_commit(git2::Oid::from_str(p).unwrap()).unwrap())
                .into_iter()
                .collect();
            let refs: Vec<&git2::Commit> = parents.iter().collect();
            g.commit(Some(r), &sig, &sig, msg, &tree, &refs)
                .unwrap()
                .to_string()
        };
        let a = commit("a", None, "refs/heads/main");
        let b = commit("b", Some(&a), "refs/heads/main");
        let c = commit("c", Some(&b), "refs/heads/main");
        let d = commit("d", Some(&c), "refs/heads/main");
        let x = commit("x", Some(&b), "refs/heads/feature");
        let y = commit("y", Some(&x), "refs/heads/feature");
        g.set_head("refs/heads/feature").unwrap();
        let repo = Repo::discover(dir.path()).unwrap();
        Repo5 {
            _dir: dir,
            repo,
            a,
            b,
            c,
            d,
            y,
        }
    }

    fn query<'a>() -> Query<'a> {
        Query {
            profile: "quick",
            machine_key: "m1",
            include_dirty: false,
            exclude_run: None,
        }
    }

    #[test]
    fn a_pull_request_is_compared_with_the_merge_base_not_newer_main() {
        let r = repo5();
        // main moved on (c, d have runs) but the feature forked at b.
        let store = MemStore(vec![
            run("ra", &r.a, false, "m1"),
            run("rb", &r.b, false, "m1"),
            run("rc", &r.c, false, "m1"),
            run("rd", &r.d, false, "m1"),
        ]);
        let found = find_baseline(&store, &r.repo, &r.y, None, Some("main"), &query())
            .unwrap()
            .unwrap();
        assert_eq!(found.commit, r.b);
        assert_eq!(found.distance, 0);
        assert_eq!(found.runs.len(), 1);
    }

    #[test]
    fn dirty_runs_and_other_machines_are_skipped_along_ancestry() {
        let r = repo5();
        let store = MemStore(vec![
            run("ra", &r.a, false, "m1"),
            run("rb-dirty", &r.b, true, "m1"),
            run("rb-other", &r.b, false, "m2"),
        ]);
        let found = find_baseline(&store, &r.repo, &r.y, None, Some("main"), &query())
            .unwrap()
            .unwrap();
        assert_eq!(
            found.commit, r.a,
            "b only has a dirty run and another machine's"
        );
        assert_eq!(found.distance, 1);
        let with_dirty = Query {
            include_dirty: true,
            ..query()
        };
        let found = find_baseline(&store, &r.repo, &r.y, None, Some("main"), &with_dirty)
            .unwrap()
            .unwrap();
        assert_eq!(found.commit, r.b);
        assert_eq!(found.runs[0].run_id, "rb-dirty");
    }

    #[test]
    fn explicit_base_and_missing_baselines_say_why() {
        let r = repo5();
        let store = MemStore(vec![
            run("rc1", &r.c, false, "m1"),
            run("rc2", &r.c, false, "m1"),
        ]);
        let found = find_baseline(&store, &r.repo, &r.y, Some("main~1"), None, &query())
            .unwrap()
            .unwrap();
        assert_eq!(found.commit, r.c);
        assert_eq!(found.runs.len(), 2, "every clean rerun of the base is used");
        let none = find_baseline(&store, &r.repo, &r.y, Some("main"), None, &query())
            .unwrap()
            .unwrap_err();
        assert!(matches!(none, NoBaseline::NoneForRevision { .. }));
        assert!(none.to_string().contains("no stored run of main"));
        let none = find_baseline(&store, &r.repo, &r.y, None, Some("main"), &query())
            .unwrap()
            .unwrap_err();
        assert_eq!(
            none,
            NoBaseline::NoneInHistory {
                start: r.b.clone(),
                searched: 2,
                shallow: false
            }
        );
        let err = find_baseline(&store, &r.repo, &r.y, Some("nope"), None, &query()).unwrap_err();
        assert!(err.to_string().contains("--base nope"));
    }

    #[test]
    fn the_run_being_checked_is_never_its_own_baseline() {
        let r = repo5();
        let store = MemStore(vec![
            run("older", &r.a, false, "m1"),
            run("self", &r.b, false, "m1"),
        ]);
        let q = Query {
            exclude_run: Some("self"),
            ..query()
        };
        let found = find_baseline(&store, &r.repo, &r.b, None, None, &q)
            .unwrap()
            .unwrap();
        assert_eq!(found.commit, r.a);
    }
}
