//! Paired A/B sessions (`check --ab`): the base revision is checked out in a linked git
//! worktree and built, then base and head binaries run the same profile alternately, so both
//! sides see the same machine state. [`crate::compare::compare_paired`] judges the rounds.
//!
//! The steps are separate so each can be tested alone: [`worktree`] checks out the base,
//! [`build`] compiles it, [`staging`] copies both binaries for the session, [`order`] draws
//! which side runs first in each round, [`session`] interleaves the runs and collects their
//! records.

pub mod build;
pub mod instructions;
pub mod order;
pub mod session;
pub mod staging;
pub mod worktree;

use std::path::{Path, PathBuf};

/// Where A/B sessions keep the base worktree and its build: `<target dir>/perfcheck-ab`, with
/// the target dir from `CARGO_TARGET_DIR` or `<repo>/target`, as cargo tools do. The build
/// folder is kept between checks, so only the first one compiles the dependencies.
pub fn work_dir(repo_root: &Path) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .map(|p| {
            if p.is_absolute() {
                p
            } else {
                repo_root.join(p)
            }
        })
        .unwrap_or_else(|| repo_root.join("target"));
    target.join("perfcheck-ab")
}
