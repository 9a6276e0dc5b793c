//! Which commit a run measured (git2): sha, branch, dirty flag.

use std::path::Path;

use serde::{Deserialize, Serialize};

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
        let repo = git2::Repository::discover(dir).ok()?;
        let head = repo.head().ok()?;
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
        let dirty = match repo.statuses(Some(&mut opts)) {
            Ok(s) => !s.is_empty(),
            Err(_) => true,
        };
        Some(GitInfo {
            commit,
            branch,
            dirty,
        })
    }

    /// The first 10 characters of the sha.
    pub fn short(&self) -> &str {
        &self.commit[..self.commit.len().min(10)]
    }
}
