//! Builds a located harness target with cargo and finds the executable cargo produced.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;

use super::locate::{cargo, HarnessTarget};
use crate::error::Error;

/// The part of cargo's JSON messages (`--message-format=json`) that finding the executable
/// needs; other messages fail to match `reason` and are skipped.
#[derive(Deserialize)]
struct Message {
    reason: String,
    #[serde(default)]
    target: Option<MessageTarget>,
    #[serde(default)]
    executable: Option<PathBuf>,
}

#[derive(Deserialize)]
struct MessageTarget {
    name: String,
    kind: Vec<String>,
}

/// Builds `target` with `cargo build --profile <cargo_profile> -p <package> --<kind> <name>`
/// run in `src_dir` and returns the executable's path. `src_dir` is the folder that
/// corresponds to `target.workspace_root` (or the package's folder), here or in a worktree of
/// another revision: the package is found there by name. `target_dir` sets
/// `CARGO_TARGET_DIR` (cargo's default otherwise). Cargo's diagnostics go to our stderr.
pub fn build(
    target: &HarnessTarget,
    src_dir: &Path,
    target_dir: Option<&Path>,
) -> Result<PathBuf, Error> {
    let cargo = cargo();
    let kind = target.kind.cargo_kind();
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(src_dir)
        .args([
            "build",
            "--profile",
            &target.cargo_profile,
            "-p",
            &target.package,
        ])
        .arg(format!("--{kind}"))
        .arg(&target.name)
        // Human diagnostics still reach stderr; stdout carries only JSON lines.
        .arg("--message-format=json-render-diagnostics")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(dir) = target_dir {
        cmd.env("CARGO_TARGET_DIR", dir);
    }
    let mut child = cmd.spawn().map_err(|e| Error::Io {
        context: format!(
            "cannot start {} to build the {}",
            cargo.to_string_lossy(),
            target.describe()
        ),
        source: e,
    })?;

    // Read stdout to its end before waiting, so a full pipe can never stall cargo.
    let mut executable = None;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(|e| Error::Io {
                context: format!(
                    "cannot read cargo's output while building the {}",
                    target.describe()
                ),
                source: e,
            })?;
            let Ok(msg) = serde_json::from_str::<Message>(&line) else {
                continue;
            };
            if msg.reason != "compiler-artifact" {
                continue;
            }
            // An example and a bench may share the name: the kind tells them apart.
            let matches = msg
                .target
                .as_ref()
                .is_some_and(|t| t.name == target.name && t.kind.iter().any(|k| k == kind));
            if matches && msg.executable.is_some() {
                executable = msg.executable;
            }
        }
    }
    let status = child.wait().map_err(|e| Error::Io {
        context: format!("cargo building the {} did not finish", target.describe()),
        source: e,
    })?;
    if !status.success() {
        return Err(Error::Usage(format!(
            "building the {} in {} failed ({status}): cargo's errors are above",
            target.describe(),
            src_dir.display()
        )));
    }
    match executable {
        Some(path) => Ok(path),
        None => Err(Error::Usage(format!(
            "cargo built the {} in {} but reported no executable for it",
            target.describe(),
            src_dir.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::locate::{locate, HarnessConfig, TargetKind};

    fn write(root: &Path, rel: &str, text: &str) {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().expect("a file has a parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write");
    }

    fn run(exe: &Path) -> String {
        let out = Command::new(exe).output().expect("run the built harness");
        assert!(out.status.success(), "{} failed: {:?}", exe.display(), out);
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    #[test]
    fn builds_the_example_or_the_bench_of_the_same_name() {
        let src = tempfile::tempdir().expect("tempdir");
        let target_dir = tempfile::tempdir().expect("tempdir");
        // `[workspace]`: its own workspace root, whatever lies above the temp folder.
        write(
            src.path(),
            "Cargo.toml",
            "[package]\nname = \"tiny\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[workspace]\n\
             [[bench]]\nname = \"perfcheck\"\nharness = false\n",
        );
        write(src.path(), "src/lib.rs", "");
        write(
            src.path(),
            "examples/perfcheck.rs",
            "fn main() { println!(\"example\"); }\n",
        );
        write(
            src.path(),
            "benches/perfcheck.rs",
            "fn main() { println!(\"bench\"); }\n",
        );

        let example = locate(src.path(), &HarnessConfig::default()).expect("located");
        assert_eq!(example.kind, TargetKind::Example);
        let exe = build(&example, src.path(), Some(target_dir.path())).expect("built");
        // The target dir given is the one used; the example lands in <profile>/examples.
        let target_root = target_dir.path();
        assert!(exe.starts_with(target_root), "{}", exe.display());
        assert!(
            exe.starts_with(target_root.join("release/examples")),
            "{}",
            exe.display()
        );
        assert_eq!(run(&exe), "example\n");

        let bench = HarnessTarget {
            kind: TargetKind::Bench,
            ..example
        };
        let exe = build(&bench, src.path(), Some(target_dir.path())).expect("built");
        assert!(exe.starts_with(target_root), "{}", exe.display());
        assert_eq!(run(&exe), "bench\n");

        // Cargo's failure (here: no such example) is reported with the target it was for.
        let absent = HarnessTarget {
            kind: TargetKind::Example,
            name: "absent".into(),
            ..bench
        };
        let msg = match build(&absent, src.path(), Some(target_dir.path())) {
            Ok(p) => panic!("built {}", p.display()),
            Err(e) => e.to_string(),
        };
        assert!(
            msg.contains("building the example `absent` of package `tiny`"),
            "{msg}"
        );
        assert!(msg.contains("cargo's errors are above"), "{msg}");
    }
}
