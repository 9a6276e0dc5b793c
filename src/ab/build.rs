//! Builds the base side of an A/B session: `cargo build --release` of the worktree's
//! `cargo-perfcheck` binary into a target folder kept between checks.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::Error;

/// Builds `cargo-perfcheck` in release mode from the package at `src` into `target_dir` and
/// returns the binary's path. Cargo's own progress goes to this process's stderr; the build
/// uses the same cargo as the current one (`$CARGO`) when run through cargo.
pub fn build_base(src: &Path, target_dir: &Path) -> Result<PathBuf, Error> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(&cargo)
        .current_dir(src)
        .env("CARGO_TARGET_DIR", target_dir)
        .args(["build", "--release", "--bin", "cargo-perfcheck"])
        .status()
        .map_err(|e| Error::Io {
            context: format!("cannot start {} to build the base", cargo.to_string_lossy()),
            source: e,
        })?;
    if !status.success() {
        return Err(Error::Paired(format!(
            "building the base in {} failed ({status}): cargo's errors are above; a binary \
             built another way can be given with --base-bin",
            src.display()
        )));
    }
    let bin = target_dir
        .join("release")
        .join(format!("cargo-perfcheck{}", std::env::consts::EXE_SUFFIX));
    if !bin.is_file() {
        return Err(Error::Paired(format!(
            "the base built, but {} is missing",
            bin.display()
        )));
    }
    Ok(bin)
}
