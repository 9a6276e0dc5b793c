//! The interleaved runs of an A/B session: each round runs the base binary and the head binary
//! once, in a seeded random order balanced over pairs of rounds ([`super::order`]), each side
//! from a fresh copy of its binary ([`super::staging`]), so neither the machine's drift, the
//! position in a round nor the state of a binary file favours one side.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use super::order::{first_sides, First};
use super::staging;
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
    /// Seed of the order of the sides within rounds ([`first_sides`]).
    pub order_seed: u64,
    /// Variables set for both sides' runs (see [`run_env`]).
    pub env: Vec<(String, String)>,
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
    /// How the session ran: order, binaries.
    pub log: SessionLog,
}

/// What a session did, for `session.json` and the `ab_session` block of `check.json`.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SessionLog {
    /// Seed of the order (give it as `PERFCHECK_AB_ORDER_SEED` to repeat the order).
    pub order_seed: u64,
    /// The side that ran first in each round, in round order.
    pub first: Vec<First>,
    /// The binaries given for the sides.
    pub base_bin: PathBuf,
    /// See `base_bin`.
    pub head_bin: PathBuf,
    /// The folder of the per-round copies the runs were started from (`<round>/base/` and
    /// `<round>/head/`; deleted after the session).
    pub copies: PathBuf,
    /// Variables set for both sides' runs.
    pub env: Vec<(String, String)>,
}

/// Runs the plan; `log` receives one line per run. Fails on the first run that fails (its
/// stderr is quoted) or when the two sides' machine fingerprints differ (a debug build
/// against a release build, another rustc): such a comparison would measure the build.
pub fn run(plan: &Plan, log: &mut dyn FnMut(&str)) -> Result<Rounds, Error> {
    let staging = staging::Staging::new(&plan.base.bin, &plan.head.bin)?;
    let first = first_sides(plan.order_seed, plan.rounds);
    let mut rounds = Rounds {
        base: Vec::with_capacity(plan.rounds),
        head: Vec::with_capacity(plan.rounds),
        log: SessionLog {
            order_seed: plan.order_seed,
            first: first.clone(),
            base_bin: plan.base.bin.clone(),
            head_bin: plan.head.bin.clone(),
            copies: staging.dir().to_path_buf(),
            env: plan.env.clone(),
        },
    };
    for (i, f) in first.iter().enumerate() {
        let copies = staging.fresh(i)?;
        let order = match f {
            First::Base => [true, false],
            First::Head => [false, true],
        };
        for is_base in order {
            let (side, bin) = if is_base {
                (&plan.base, &copies.base)
            } else {
                (&plan.head, &copies.head)
            };
            let start = Instant::now();
            let record = run_once(plan, side, bin, i)?;
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

/// The tunable that makes glibc's malloc ask for transparent huge pages for its heap
/// (glibc 2.35 or later; older versions and other C libraries ignore it).
const HUGE_HEAP: &str = "glibc.malloc.hugetlb=1";

/// Variables both sides run with, given the orchestrator's value of `GLIBC_TUNABLES`.
///
/// The engine's index is tens of MB of small heap blocks. With 4 KiB pages their physical
/// placement (and so their mapping onto the physically indexed caches, and the TLB misses)
/// differs from process to process; measured on the 2-core VM, 20 interleaved rounds of
/// `run -p ab -w recall` under load 6-8: with huge pages for the heap `vector_search` was
/// 9% faster (median of per-round differences -8.9%, se 1.5%) and its per-run spread fell
/// from 10.7% to 9.3% (sd of ln). Both sides get the same setting, so it never favours one;
/// a user's own tunables are kept.
pub fn run_env(tunables: Option<&str>) -> Vec<(String, String)> {
    let value = match tunables.map(str::trim).filter(|t| !t.is_empty()) {
        Some(t)
            if t.split(':')
                .any(|kv| kv.starts_with("glibc.malloc.hugetlb=")) =>
        {
            t.to_owned()
        }
        Some(t) => format!("{t}:{HUGE_HEAP}"),
        None => HUGE_HEAP.to_owned(),
    };
    vec![("GLIBC_TUNABLES".to_owned(), value)]
}

fn run_once(plan: &Plan, side: &Side, bin: &Path, round: usize) -> Result<RunRecord, Error> {
    let reports = plan.out_dir.join(format!("{}-{}", side.label, round + 1));
    let mut cmd = Command::new(bin);
    cmd.current_dir(&side.dir)
        .arg("run")
        .arg("--quiet")
        .arg("--reports-dir")
        .arg(&reports)
        .args(&plan.run_args);
    for (k, v) in &plan.env {
        cmd.env(k, v);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_pages_are_asked_for_and_a_users_tunables_are_kept() {
        let env = |t| run_env(t)[0].1.clone();
        assert_eq!(env(None), "glibc.malloc.hugetlb=1");
        assert_eq!(env(Some(" ")), "glibc.malloc.hugetlb=1");
        assert_eq!(
            env(Some("glibc.malloc.arena_max=2")),
            "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"
        );
        assert_eq!(
            env(Some("glibc.malloc.hugetlb=0")),
            "glibc.malloc.hugetlb=0"
        );
    }
}
