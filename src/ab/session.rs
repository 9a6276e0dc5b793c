//! The interleaved runs of an A/B session: each round runs the base binary and the head binary
//! once, in alternating order (base first in rounds 1, 3, 5, ..., head first in rounds 2, 4,
//! ...) so that a steady drift of the machine does not favour one side.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::error::Error;
use crate::record::RunRecord;

/// One side of the session: which binary, run from which folder (its git identity comes from
/// there), with which environment variables removed.
#[derive(Clone, Debug)]
pub struct Side {
    /// `base` or `head`, for file names and messages.
    pub label: &'static str,
    /// The `cargo-perfcheck` binary.
    pub bin: PathBuf,
    /// Working directory of its runs.
    pub dir: PathBuf,
    /// Variables not passed on (the test-only slowdown knob is for the head side only).
    pub env_remove: Vec<&'static str>,
}

/// What to run: the same `run` arguments on both sides.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The base side.
    pub base: Side,
    /// The head side.
    pub head: Side,
    /// Rounds (one run of each side per round).
    pub rounds: usize,
    /// Arguments after `run` (profile, workloads, profiles folder), absolute paths only.
    pub run_args: Vec<OsString>,
    /// Folder receiving `base-<i>/` and `head-<i>/` report folders.
    pub out_dir: PathBuf,
}

/// The records of a finished session, in round order.
pub struct Rounds {
    /// Base runs.
    pub base: Vec<RunRecord>,
    /// Head runs.
    pub head: Vec<RunRecord>,
}

/// Runs the plan; `log` receives one line per run. Fails on the first run that fails (its
/// stderr is quoted) or when the two sides' machine fingerprints differ (a debug build
/// against a release build, another rustc): such a comparison would measure the build.
pub fn run(plan: &Plan, log: &mut dyn FnMut(&str)) -> Result<Rounds, Error> {
    let mut rounds = Rounds {
        base: Vec::with_capacity(plan.rounds),
        head: Vec::with_capacity(plan.rounds),
    };
    for i in 0..plan.rounds {
        // true = base; base first in rounds 1, 3, 5, ...
        let order = if i % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for is_base in order {
            let side = if is_base { &plan.base } else { &plan.head };
            let start = Instant::now();
            let record = run_once(plan, side, i)?;
            log(&format!(
                "round {}/{}: {} run {} in {:.1}s",
                i + 1,
                plan.rounds,
                side.label,
                record.run_id,
                start.elapsed().as_secs_f64()
            ));
            if is_base {
                rounds.base.push(record);
            } else {
                rounds.head.push(record);
            }
        }
    }
    same_machine(&rounds)?;
    Ok(rounds)
}

fn run_once(plan: &Plan, side: &Side, round: usize) -> Result<RunRecord, Error> {
    let reports = plan.out_dir.join(format!("{}-{}", side.label, round + 1));
    let mut cmd = Command::new(&side.bin);
    cmd.current_dir(&side.dir)
        .arg("run")
        .arg("--quiet")
        .arg("--reports-dir")
        .arg(&reports)
        .args(&plan.run_args);
    for var in &side.env_remove {
        cmd.env_remove(var);
    }
    let out = cmd.output().map_err(|e| Error::Io {
        context: format!(
            "cannot start the {} binary {}",
            side.label,
            side.bin.display()
        ),
        source: e,
    })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(12).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(Error::Paired(format!(
            "the {} run of round {} failed ({}): {} run {}\n{}",
            side.label,
            round + 1,
            out.status,
            side.bin.display(),
            plan.run_args
                .iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" "),
            tail.join("\n")
        )));
    }
    RunRecord::read(&single_run_file(&reports)?)
}

/// The run.json of the only run folder under `reports`.
fn single_run_file(reports: &Path) -> Result<PathBuf, Error> {
    let entries = std::fs::read_dir(reports).map_err(|e| Error::Io {
        context: format!("cannot list {}", reports.display()),
        source: e,
    })?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("run.json"))
        .filter(|p| p.is_file())
        .collect();
    match found.len() {
        1 => Ok(found.remove(0)),
        n => Err(Error::Paired(format!(
            "expected one run folder with run.json in {}, found {n}",
            reports.display()
        ))),
    }
}

fn same_machine(r: &Rounds) -> Result<(), Error> {
    let (Some(b), Some(h)) = (r.base.first(), r.head.first()) else {
        return Ok(());
    };
    let (bk, hk) = (b.machine.key(), h.machine.key());
    if bk != hk {
        return Err(Error::Paired(format!(
            "base and head ran as different builds or machines (base {bk}, head {hk}): build \
             both the same way (e.g. run perfcheck itself with `cargo run --release`)"
        )));
    }
    Ok(())
}
