//! Commit identity (git2): which commit a run measured, and the first-parent history that
//! baselines are searched along.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The commit a run measured.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitInfo {
    /// Full sha of HEAD.
    pub commit: String,
    /// Branch name; `None` on a detached HEAD.
    pub branch: Option<String>,
    /// Whether tracked files differ from HEAD or untracked (not ignored) files exist.
    pub dirty: bool,
}

impl GitInfo {
    /// Reads the repository containing `dir`; `None` outside a repository or before the first
    /// commit.
    pub fn discover(dir: &Path) -> Option<GitInfo> {
        Repo::discover(dir)?.info()
    }

    /// The first 10 characters of the sha.
    pub fn short(&self) -> &str {
        short_sha(&self.commit)
    }
}

/// The first 10 characters of a sha (all of it if shorter).
pub fn short_sha(sha: &str) -> &str {
    &sha[..sha.len().min(10)]
}

/// An open repository.
pub struct Repo {
    repo: git2::Repository,
}

impl Repo {
    /// The repository containing `dir`, if any.
    pub fn discover(dir: &Path) -> Option<Repo> {
        git2::Repository::discover(dir)
            .ok()
            .map(|repo| Repo { repo })
    }

    /// The working tree's root; `None` for a bare repository.
    pub fn workdir(&self) -> Option<&Path> {
        self.repo.workdir()
    }

    /// HEAD's commit, branch and dirty flag; `None` before the first commit.
    pub fn info(&self) -> Option<GitInfo> {
        let head = self.repo.head().ok()?;
        let commit = head.peel_to_commit().ok()?.id().to_string();
        let branch = if head.is_branch() {
            head.shorthand().ok().map(str::to_owned)
        } else {
            None
        };
        let mut opts = git2::StatusOptions::new();
        opts.include_untracked(true)
            .include_ignored(false)
            .exclude_submodules(true);
        let dirty = match self.repo.statuses(Some(&mut opts)) {
            Ok(s) => !s.is_empty(),
            // A bare repository or unreadable index: never claim a clean tree.
            Err(_) => true,
        };
        Some(GitInfo {
            commit,
            branch,
            dirty,
        })
    }

    /// The full sha of a revision (`main`, `HEAD~2`, a short sha, a tag); the error names the
    /// flag that gave it.
    pub fn resolve(&self, rev: &str, flag: &str) -> Result<String, Error> {
        self.repo
            .revparse_single(rev)
            .and_then(|o| o.peel_to_commit())
            .map(|c| c.id().to_string())
            .map_err(|e| {
                Error::Usage(format!(
                    "{flag} {rev}: not a commit in this repository ({})",
                    e.message()
                ))
            })
    }

    /// The default branch: `configured` if given and present, else what `origin/HEAD` points
    /// at, else `main`, else `master`. Returned as a revision string.
    pub fn default_branch(&self, configured: Option<&str>) -> Option<String> {
        if let Some(b) = configured {
            return self.repo.revparse_single(b).ok().map(|_| b.to_owned());
        }
        if let Ok(r) = self.repo.find_reference("refs/remotes/origin/HEAD") {
            if let Some(target) = r.symbolic_target().ok().flatten() {
                return Some(target.to_owned());
            }
        }
        ["main", "master", "origin/main", "origin/master"]
            .into_iter()
            .find(|b| self.repo.revparse_single(b).is_ok())
            .map(str::to_owned)
    }

    /// Where the search for a baseline starts: the merge-base of `head` with the default
    /// branch (so a pull request is measured against the branch it will merge into), or
    /// `head` itself when there is no default branch or no common history.
    pub fn search_start(&self, head: &str, default_branch: Option<&str>) -> String {
        let start = default_branch.and_then(|b| {
            let head = git2::Oid::from_str(head).ok()?;
            let base = self
                .repo
                .revparse_single(b)
                .ok()?
                .peel_to_commit()
                .ok()?
                .id();
            self.repo.merge_base(head, base).ok()
        });
        start
            .map(|o| o.to_string())
            .unwrap_or_else(|| head.to_owned())
    }

    /// `start` and its first-parent ancestors, newest first, at most `limit` commits. A
    /// shallow clone simply ends where its history ends.
    pub fn first_parent_chain(&self, start: &str, limit: usize) -> Vec<String> {
        let mut out = Vec::new();
        let Ok(oid) = git2::Oid::from_str(start) else {
            return out;
        };
        let mut next = self.repo.find_commit(oid).ok();
        while let Some(c) = next {
            if out.len() >= limit {
                break;
            }
            out.push(c.id().to_string());
            next = if c.parent_count() > 0 {
                c.parent(0).ok()
            } else {
                None
            };
        }
        out
    }

    /// Whether this is a shallow clone (its history may end before a stored baseline).
    pub fn is_shallow(&self) -> bool {
        self.repo.is_shallow()
    }

    /// The commit's one-line summary, for reports.
    pub fn summary(&self, sha: &str) -> Option<String> {
        let oid = git2::Oid::from_str(sha).ok()?;
        let c = self.repo.find_commit(oid).ok()?;
        c.summary().ok().flatten().map(str::to_owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture {
        _dir: tempfile::TempDir,
        repo: git2::Repository,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let repo = git2::Repository::init(dir.path()).unwrap();
            Fixture { _dir: dir, repo }
        }

        fn commit(&self, msg: &str, parents: &[&str], branch_ref: Option<&str>) -> String {
            let sig = git2::Signature::now("t", "t@example.com").unwrap();
            let tb = self.repo.treebuilder(None).unwrap();
            let tree = self.repo.find_tree(tb.write().unwrap()).unwrap();
            let parents: Vec<git2::Commit> = parents
                .iter()
                .map(|p| {
                    self.repo
                        .find_commit(git2::Oid::from_str(p).unwrap())
                        .unwrap()
                })
                .collect();
            let refs: Vec<&git2::Commit> = parents.iter().collect();
            self.repo
                .commit(branch_ref, &sig, &sig, msg, &tree, &refs)
                .unwrap()
                .to_string()
        }
    }

    #[test]
    fn chain_follows_first_parents_and_merge_base_finds_the_fork() {
        let f = Fixture::new();
        let a = f.commit("a", &[], Some("refs/heads/main"));
        let b = f.commit("b", &[&a], Some("refs/heads/main"));
        let c = f.commit("c", &[&b], Some("refs/heads/main"));
        // A feature branch forked at b, with a merge of main's c into it.
        let x = f.commit("x", &[&b], Some("refs/heads/feature"));
        let m = f.commit("merge", &[&x, &c], Some("refs/heads/feature"));
        f.repo.set_head("refs/heads/feature").unwrap();
        let repo = Repo {
            repo: git2::Repository::open(f.repo.path()).unwrap(),
        };
        assert_eq!(
            repo.first_parent_chain(&m, 10),
            vec![m.clone(), x.clone(), b.clone(), a.clone()]
        );
        assert_eq!(repo.first_parent_chain(&m, 2), vec![m.clone(), x]);
        assert_eq!(repo.default_branch(None).as_deref(), Some("main"));
        // The feature merged main's c, so the merge-base is c.
        assert_eq!(repo.search_start(&m, Some("main")), c);
        assert_eq!(repo.search_start(&m, None), m);
        let info = repo.info().unwrap();
        assert_eq!(info.commit, m);
        assert_eq!(info.branch.as_deref(), Some("feature"));
        assert_eq!(repo.resolve("main~1", "--base").unwrap(), b);
        let err = repo.resolve("nope", "--base").unwrap_err().to_string();
        assert!(err.contains("--base nope"), "{err}");
    }

    #[test]
    fn detached_head_has_no_branch() {
        let f = Fixture::new();
        let a = f.commit("a", &[], Some("refs/heads/main"));
        f.repo
            .set_head_detached(git2::Oid::from_str(&a).unwrap())
            .unwrap();
        let info = GitInfo::discover(f.repo.path().parent().unwrap()).unwrap();
        assert_eq!(info.commit, a);
        assert_eq!(info.branch, None);
    }
}
