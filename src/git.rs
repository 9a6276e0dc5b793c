//! Commit identity (git2): which commit a run measured, and the first-parent history that
//! baselines are searched along.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The commit a run measured.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitInfo {
    /// Full sha of HEAD.
    pub commit: String,
    /// Branch name; `None` on a detached HEAD.
    pub branch: Option<String>,
    /// Whether tracked files differ from HEAD or untracked (not ignored) files exist outside
    /// perfcheck's own output folders.
    pub dirty: bool,
    /// When untracked files alone made the tree dirty (no tracked file changed): the first
    /// [`UNTRACKED_SHOWN`] of them, an untracked folder as `dir/`, for a hint. Empty otherwise,
    /// and then not written, so records without it keep their bytes and checksums.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub untracked: Vec<String>,
}

/// How many untracked paths a [`GitInfo`] keeps for its hint.
pub const UNTRACKED_SHOWN: usize = 10;

/// perfcheck's default output folders, relative to where it runs: never counted as dirt.
pub const OWN_OUTPUT: [&str; 2] = ["reports", "baselines"];

impl GitInfo {
    /// Reads the repository containing `dir`; `None` outside a repository or before the first
    /// commit. Untracked files under the default output folders do not count as dirty.
    pub fn discover(dir: &Path) -> Option<GitInfo> {
        GitInfo::discover_ignoring(dir, &[])
    }

    /// As [`GitInfo::discover`], also not counting untracked files under `own` (folders
    /// perfcheck writes to, such as a custom reports folder or the store's folder; relative
    /// paths are taken from `dir`).
    pub fn discover_ignoring(dir: &Path, own: &[PathBuf]) -> Option<GitInfo> {
        let mut folders: Vec<PathBuf> = OWN_OUTPUT.iter().map(|f| dir.join(f)).collect();
        folders.extend(own.iter().map(|f| dir.join(f)));
        Repo::discover(dir)?.info_ignoring(&folders)
    }

    /// The first 10 characters of the sha.
    pub fn short(&self) -> &str {
        short_sha(&self.commit)
    }

    /// A hint for a tree that is dirty only through untracked files, naming them (escaped
    /// for the terminal); `None` when clean or when a tracked file changed.
    pub fn untracked_hint(&self) -> Option<String> {
        if !self.dirty || self.untracked.is_empty() {
            return None;
        }
        let mut list = self
            .untracked
            .iter()
            .map(|p| crate::report::escape::terminal(p))
            .collect::<Vec<_>>()
            .join(", ");
        if self.untracked.len() >= UNTRACKED_SHOWN {
            list.push_str(", ...");
        }
        Some(format!(
            "hint: the tree is dirty only because of untracked files: {list}; commit them or \
             add them to .gitignore, so runs count as clean baselines"
        ))
    }
}

/// The first 10 characters of a sha (all of it if shorter). Counts characters, not bytes: an
/// imported record may hold any string as its commit.
pub fn short_sha(sha: &str) -> &str {
    match sha.char_indices().nth(10) {
        Some((end, _)) => &sha[..end],
        None => sha,
    }
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

    /// HEAD's commit, branch and dirty flag; `None` before the first commit. Untracked files
    /// under the default output folders of the working tree's root do not count.
    pub fn info(&self) -> Option<GitInfo> {
        let root: Vec<PathBuf> = match self.workdir() {
            Some(w) => OWN_OUTPUT.iter().map(|f| w.join(f)).collect(),
            None => Vec::new(),
        };
        self.info_ignoring(&root)
    }

    /// As [`Repo::info`], not counting untracked files under the folders `own` (perfcheck's
    /// output; folders outside the working tree are skipped).
    pub fn info_ignoring(&self, own: &[PathBuf]) -> Option<GitInfo> {
        let head = self.repo.head().ok()?;
        let commit = head.peel_to_commit().ok()?.id().to_string();
        let branch = if head.is_branch() {
            head.shorthand().ok().map(str::to_owned)
        } else {
            None
        };
        let mut own_rel: Vec<String> = match self.workdir() {
            Some(w) => own.iter().filter_map(|d| relative_to(w, d)).collect(),
            None => Vec::new(),
        };
        if let Some(w) = self.workdir() {
            own_rel.extend(OWN_OUTPUT.iter().filter_map(|f| relative_to(w, &w.join(f))));
        }
        own_rel.sort();
        own_rel.dedup();
        let (dirty, untracked) = match self.dirt(&own_rel) {
            Ok(Dirt::Clean) => (false, Vec::new()),
            Ok(Dirt::Tracked) => (true, Vec::new()),
            Ok(Dirt::Untracked(paths)) => (true, paths),
            // A bare repository or unreadable index: never claim a clean tree.
            Err(_) => (true, Vec::new()),
        };
        Some(GitInfo {
            commit,
            branch,
            dirty,
            untracked,
        })
    }

    /// What makes the tree dirty, with untracked files under the folders `own` (relative to
    /// the working tree, `/`-separated) left out.
    fn dirt(&self, own: &[String]) -> Result<Dirt, git2::Error> {
        let mut opts = git2::StatusOptions::new();
        opts.include_untracked(true)
            .include_ignored(false)
            .exclude_submodules(true);
        let statuses = self.repo.statuses(Some(&mut opts))?;
        let mut untracked = Vec::new();
        for entry in statuses.iter() {
            if entry.status() != git2::Status::WT_NEW {
                return Ok(Dirt::Tracked);
            }
            // libgit2 reports an untracked folder once, as `dir/`; an untracked folder that
            // holds an own folder is looked into, so its other files still count.
            let Ok(path) = std::str::from_utf8(entry.path_bytes()) else {
                untracked.push(String::from_utf8_lossy(entry.path_bytes()).into_owned());
                continue;
            };
            let bare = path.trim_end_matches('/');
            if own.iter().any(|o| is_within(bare, o)) {
                continue;
            }
            if path.ends_with('/') && own.iter().any(|o| is_within(o, bare)) {
                untracked.extend(self.untracked_in(path, own)?);
            } else {
                untracked.push(path.to_owned());
            }
        }
        Ok(if untracked.is_empty() {
            Dirt::Clean
        } else {
            untracked.truncate(UNTRACKED_SHOWN);
            Dirt::Untracked(untracked)
        })
    }

    /// Every untracked file under the untracked folder `dir/` outside the folders `own`.
    fn untracked_in(&self, dir: &str, own: &[String]) -> Result<Vec<String>, git2::Error> {
        let mut opts = git2::StatusOptions::new();
        opts.include_untracked(true)
            .recurse_untracked_dirs(true)
            .include_ignored(false)
            .exclude_submodules(true)
            .pathspec(dir)
            .disable_pathspec_match(true);
        let statuses = self.repo.statuses(Some(&mut opts))?;
        Ok(statuses
            .iter()
            .map(|e| String::from_utf8_lossy(e.path_bytes()).into_owned())
            .filter(|p| p.starts_with(dir) && !own.iter().any(|o| is_within(p, o)))
            .collect())
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

/// What the status of a working tree says.
enum Dirt {
    /// Nothing changed.
    Clean,
    /// A tracked file differs from HEAD (or the index does).
    Tracked,
    /// Only untracked files, the first few of them.
    Untracked(Vec<String>),
}

/// `path` relative to the working tree `workdir`, `/`-separated; `None` when outside it. Both
/// are made absolute first (the folders may not exist yet, so their parents are resolved).
fn relative_to(workdir: &Path, path: &Path) -> Option<String> {
    let root = resolve(workdir);
    let path = resolve(path);
    let rel = path.strip_prefix(&root).ok()?;
    let parts: Vec<&str> = rel
        .components()
        .map(|c| c.as_os_str().to_str())
        .collect::<Option<_>>()?;
    if parts.is_empty() {
        // The whole tree is never "own output".
        return None;
    }
    Some(parts.join("/"))
}

/// An absolute path with symlinks resolved as far as the path exists.
fn resolve(p: &Path) -> PathBuf {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    let mut missing = Vec::new();
    let mut cur = abs.as_path();
    loop {
        if let Ok(c) = cur.canonicalize() {
            return missing.iter().rev().fold(c, |acc, m| acc.join(m));
        }
        match (cur.parent(), cur.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name.to_owned());
                cur = parent;
            }
            _ => return abs,
        }
    }
}

/// Whether the `/`-separated `path` is `folder` or lies under it.
fn is_within(path: &str, folder: &str) -> bool {
    path == folder
        || path
            .strip_prefix(folder)
            .is_some_and(|rest| rest.starts_with('/'))
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

    #[test]
    fn short_sha_counts_characters() {
        assert_eq!(short_sha("1a2b3c4d5e6f"), "1a2b3c4d5e");
        assert_eq!(short_sha("abc"), "abc");
        assert_eq!(short_sha(&"é".repeat(12)), "é".repeat(10));
        assert_eq!(short_sha(""), "");
    }

    /// A repository with one committed file `a.txt` and no .gitignore.
    fn worktree() -> (tempfile::TempDir, Repo) {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(dir.path()).unwrap();
        std::fs::write(dir.path().join("a.txt"), "a").unwrap();
        let mut index = repo.index().unwrap();
        index.add_path(Path::new("a.txt")).unwrap();
        index.write().unwrap();
        {
            let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
            let sig = git2::Signature::now("t", "t@example.com").unwrap();
            repo.commit(Some("HEAD"), &sig, &sig, "init", &tree, &[])
                .unwrap();
        }
        (dir, Repo { repo })
    }

    #[test]
    fn own_output_is_not_dirt_but_other_files_are() {
        let (dir, repo) = worktree();
        let root = dir.path();
        let write = |p: &str| {
            let p = root.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "x").unwrap();
        };
        write("reports/20261127-1/run.json");
        write("baselines/perfcheck.sqlite");
        write("out/custom/run.json");
        let custom = [root.join("out/custom")];
        let info = repo.info_ignoring(&custom).unwrap();
        assert!(!info.dirty, "{info:?}");
        assert_eq!(info.untracked_hint(), None);
        // Without naming the custom folder, the untracked `out/` counts.
        let info = repo.info().unwrap();
        assert!(info.dirty);
        assert_eq!(info.untracked, vec!["out/"]);
        // A file next to the custom folder is found inside the untracked `out/`.
        write("out/notes.txt");
        let info = repo.info_ignoring(&custom).unwrap();
        assert!(info.dirty);
        assert_eq!(info.untracked, vec!["out/notes.txt"]);
        write("notes.txt");
        let info = repo.info_ignoring(&custom).unwrap();
        assert_eq!(info.untracked, vec!["notes.txt", "out/notes.txt"]);
        let hint = info.untracked_hint().unwrap();
        assert!(
            hint.contains("untracked files: notes.txt, out/notes.txt;"),
            "{hint}"
        );
        // A changed tracked file makes it dirty with no untracked list (and no hint).
        std::fs::write(root.join("a.txt"), "changed").unwrap();
        let info = repo.info_ignoring(&custom).unwrap();
        assert!(info.dirty);
        assert!(info.untracked.is_empty());
        assert_eq!(info.untracked_hint(), None);
    }

    #[test]
    fn a_clean_record_serializes_as_before() {
        let g = GitInfo {
            commit: "abc".into(),
            branch: Some("main".into()),
            dirty: false,
            untracked: Vec::new(),
        };
        let json = serde_json::to_string(&g).unwrap();
        assert_eq!(json, r#"{"commit":"abc","branch":"main","dirty":false}"#);
        let back: GitInfo = serde_json::from_str(&json).unwrap();
        assert_eq!(back, g);
    }
}
