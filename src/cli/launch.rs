//! The `cargo-perfcheck` launcher: finds the harness target of the package in the current
//! directory, builds it with cargo, and runs it with the same arguments. Without a harness,
//! the commands that need no workloads (stores, trends) run in the launcher itself.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::error::Error;
use crate::harness::build;
use crate::harness::locate::{self, HarnessTarget, TARGET_ENV};
use crate::harness::Harness;

/// Names a prebuilt harness binary to run instead of finding and building one (tests, CI
/// caches).
pub const HARNESS_ENV: &str = "PERFCHECK_HARNESS";
/// Subcommands that read stores and reports only: the launcher runs them itself when the
/// current directory has no harness.
const WITHOUT_HARNESS: &[&str] = &[
    "baseline",
    "trend",
    "help",
    "--help",
    "-h",
    "--version",
    "-V",
];

/// The launcher's `main`.
pub fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    match harness_binary() {
        Ok(Some((exe, target))) => exec(&exe, target.as_ref(), &args),
        Ok(None) => crate::cli::main(Harness::new()),
        Err(e) => {
            let sub = args
                .iter()
                .skip(1)
                .map(|a| a.to_string_lossy())
                .find(|a| a != "perfcheck");
            if sub.is_none_or(|s| WITHOUT_HARNESS.contains(&s.as_ref())) {
                return crate::cli::main(Harness::new());
            }
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

/// The harness binary to run: `$PERFCHECK_HARNESS`, else the current package's harness
/// target, built.
fn harness_binary() -> Result<Option<(PathBuf, Option<HarnessTarget>)>, Error> {
    if let Some(exe) = std::env::var_os(HARNESS_ENV).filter(|v| !v.is_empty()) {
        let exe = PathBuf::from(exe);
        if !exe.is_file() {
            return Err(Error::Usage(format!(
                "{HARNESS_ENV}={}: no such file (expected a perfcheck harness binary)",
                exe.display()
            )));
        }
        return Ok(Some((exe, HarnessTarget::from_env())));
    }
    let cwd = std::env::current_dir().map_err(|e| Error::Io {
        context: "cannot read the current directory".into(),
        source: e,
    })?;
    let project = crate::project::ProjectConfig::load(&cwd)?;
    let target = locate::locate(&cwd, &project.harness)?;
    eprintln!("perfcheck: building the harness, {}", target.describe());
    let exe = build::build(&target, &target.workspace_root, None)?;
    Ok(Some((exe, Some(target))))
}

#[cfg(unix)]
fn exec(exe: &Path, target: Option<&HarnessTarget>, args: &[OsString]) -> ExitCode {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(args.iter().skip(1));
    if let Some(t) = target {
        cmd.env(TARGET_ENV, t.to_env());
    }
    // Only returns on failure.
    let e = cmd.exec();
    eprintln!("error: cannot run the harness {}: {e}", exe.display());
    ExitCode::from(2)
}
