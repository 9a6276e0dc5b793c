//! Builds the base side of an A/B session: the harness target the head runs, built from the
//! base revision's worktree into a target folder kept between checks.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::harness::locate::{self, HarnessTarget};

/// The harness target this process runs: the one the launcher built it from, else the one
/// found in `cwd` (a harness binary started directly).
pub fn current_target(
    cwd: &Path,
    config: &crate::harness::locate::HarnessConfig,
) -> Result<HarnessTarget, Error> {
    match HarnessTarget::from_env() {
        Some(t) => Ok(t),
        None => locate::locate(cwd, config),
    }
}

/// Builds `target` from `src`, a checkout of another revision of the repository whose working
/// tree is `repo_root`, into `target_dir`, and returns the binary's path. Cargo's own
/// progress goes to this process's stderr.
pub fn build_base(
    target: &HarnessTarget,
    repo_root: &Path,
    src: &Path,
    target_dir: &Path,
) -> Result<PathBuf, Error> {
    // The workspace may sit below the repository's root: the same place in the checkout.
    let root = canonical(repo_root);
    let workspace = canonical(&target.workspace_root);
    let src_dir = match workspace.strip_prefix(&root) {
        Ok(rel) => src.join(rel),
        Err(_) => src.to_path_buf(),
    };
    crate::harness::build::build(target, &src_dir, Some(target_dir)).map_err(|e| {
        Error::Paired(format!(
            "building the base's {} in {} failed: {e}; a binary built another way can be given \
             with --base-bin",
            target.describe(),
            src_dir.display()
        ))
    })
}

fn canonical(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| p.to_path_buf())
}
