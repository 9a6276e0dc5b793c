//! The `cargo perfcheck` command line: argument parsing and dispatch over the library. A
//! harness binary ([`crate::main!`]) runs it over its workloads; the `cargo-perfcheck`
//! launcher runs it with none when no harness target is found (stores and trends only).

mod ab_cmd;
mod args;
mod baseline_cmd;
mod calibrate_cmd;
mod chaos_cmd;
mod check_cmd;
mod health_cmd;
pub mod launch;
mod load_cmd;
mod profile_cmd;
mod progress;
mod run_cmd;
mod trend_cmd;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::Profile;
use crate::harness::Harness;

/// Profile a crate's pipelines stage by stage and track them across commits.
#[derive(Parser)]
#[command(name = "cargo-perfcheck", bin_name = "cargo perfcheck", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run workloads, print a per-stage table for each, write reports/<run-id>/run.json.
    Run(run_cmd::RunArgs),
    /// CPU and heap profiles in passes of their own: flamegraph, pprof, DHAT, heatmap.
    Profile(profile_cmd::ProfileArgs),
    /// The regression gate: run (or read) a run, compare it with its baseline, exit 1 on a
    /// regression.
    Check(check_cmd::CheckArgs),
    /// Manage stored baselines: list, show, export, import, delete.
    Baseline(baseline_cmd::BaselineArgs),
    /// Chart metrics across the commits that have baselines (SVG and PNG).
    Trend(trend_cmd::TrendArgs),
    /// Measure the paired gate on this machine with real code changes (calibration/patches/):
    /// false alarms of a comment-only change, detection of small real regressions. Nothing it
    /// runs is ever saved as a baseline.
    Calibrate(calibrate_cmd::CalibrateArgs),
    /// List the profiles that --profile accepts.
    Profiles(ProfilesArgs),
    /// List the workloads that --workload accepts (the harness's).
    Workloads,
    /// Open-loop load, stress and soak tests of the harness's load target (phases, --find-max),
    /// with charts.
    Load(load_cmd::LoadArgs),
    /// Fault scenarios under steady load (a locked or slow database, a full disk, ...): what
    /// clients saw, time to detect and to recover, and whether any acknowledged write was lost.
    Chaos(chaos_cmd::ChaosArgs),
    /// Check a stored system (the engine's database folder) without changing it: intact,
    /// consistent, what it holds; exit 1 on a problem.
    Health(health_cmd::HealthArgs),
    /// The child of an instructions pass (started by perfcheck under callgrind).
    #[command(name = "__instructions-pass", hide = true)]
    InstructionsPass(InstructionsPassArgs),
}

#[derive(Args)]
struct InstructionsPassArgs {
    /// The resolved profile, as JSON.
    #[arg(long, value_name = "FILE")]
    profile_json: PathBuf,
    /// Workload to count.
    #[arg(long)]
    workload: String,
    /// Measured operations.
    #[arg(long)]
    ops: u64,
}

#[derive(Args)]
struct ProfilesArgs {
    /// Folder searched for profile files.
    #[arg(long, value_name = "DIR", default_value = "profiles")]
    profiles_dir: PathBuf,
}

/// Runs the command line of this process's arguments over `harness`'s workloads and returns
/// the exit code: 0 success, 1 a regression (or a failed load limit), 2 an error.
pub fn main(harness: Harness) -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    // `cargo perfcheck run` executes `cargo-perfcheck perfcheck run`.
    if args.get(1).is_some_and(|a| a == "perfcheck") {
        args.remove(1);
    }
    let cli = Cli::parse_from(args);
    match dispatch(cli, &harness) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            let code = e
                .downcast_ref::<crate::Error>()
                .map(|e| e.exit_code())
                .unwrap_or(2);
            ExitCode::from(code as u8)
        }
    }
}

fn dispatch(cli: Cli, harness: &Harness) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(a) => run_cmd::run(a, harness),
        Command::Profile(a) => profile_cmd::run(a, harness),
        Command::Baseline(a) => baseline_cmd::run(a),
        Command::Check(a) => check_cmd::run(a, harness),
        Command::Trend(a) => trend_cmd::run(a),
        Command::Load(a) => load_cmd::run(a, harness),
        Command::Chaos(a) => chaos_cmd::run(a, harness),
        Command::Health(a) => health_cmd::run(a, harness),
        Command::Calibrate(a) => calibrate_cmd::run(a, harness),
        Command::InstructionsPass(a) => {
            let report = crate::profile::instructions::child::run(
                harness,
                &a.profile_json,
                &a.workload,
                a.ops,
            )?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Workloads => {
            if harness.is_empty() {
                return Err(crate::Error::Usage(
                    "no harness here: run `cargo perfcheck` in a package with a perfcheck \
                     harness target (see README, \"Use it on your own crate\")"
                        .into(),
                )
                .into());
            }
            for w in harness.workloads() {
                println!("{:<14} {}", w.name(), w.description());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Profiles(a) => {
            for name in Profile::available(&a.profiles_dir, harness.profiles()) {
                let p = Profile::load(&name, &a.profiles_dir, harness.profiles())?;
                println!("{name:<10} {}", p.description);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
