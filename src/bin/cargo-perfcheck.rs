//! `cargo perfcheck`: argument parsing and dispatch over the perfcheck library.

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use perfcheck::config::Profile;
use perfcheck::report::table::workload_table;
use perfcheck::run::{execute, parse_slowdown, RunRequest};
use perfcheck::workload::Workload;

#[global_allocator]
static ALLOC: perfcheck::stage::CountingAlloc = perfcheck::stage::CountingAlloc::system();

/// Profile the built-in agent-memory engine stage by stage and track it across commits.
#[derive(Parser)]
#[command(name = "cargo-perfcheck", bin_name = "cargo perfcheck", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run workloads, print a per-stage table for each, write reports/<run-id>/run.json.
    Run(RunArgs),
    /// List the profiles that --profile accepts.
    Profiles(ProfilesArgs),
}

#[derive(Args)]
struct RunArgs {
    /// Workload to run (repeatable): recall, remember, consolidation, mixed. Default: the
    /// profile's list.
    #[arg(long = "workload", short = 'w', value_name = "W", value_parser = parse_workload)]
    workloads: Vec<Workload>,
    /// Profile name (profiles/<NAME>.toml or built in) or path to a .toml file.
    #[arg(long, short = 'p', value_name = "NAME", default_value = "quick")]
    profile: String,
    /// Folder searched for profile files.
    #[arg(long, value_name = "DIR", default_value = "profiles")]
    profiles_dir: PathBuf,
    /// Folder that receives one sub-folder per run.
    #[arg(long, value_name = "DIR", default_value = "reports")]
    reports_dir: PathBuf,
    /// Print only the tables, no progress lines.
    #[arg(long, short = 'q')]
    quiet: bool,
}

#[derive(Args)]
struct ProfilesArgs {
    /// Folder searched for profile files.
    #[arg(long, value_name = "DIR", default_value = "profiles")]
    profiles_dir: PathBuf,
}

fn parse_workload(s: &str) -> Result<Workload, String> {
    s.parse::<Workload>().map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    // `cargo perfcheck run` executes `cargo-perfcheck perfcheck run`.
    if args.get(1).is_some_and(|a| a == "perfcheck") {
        args.remove(1);
    }
    let cli = Cli::parse_from(args);
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            let code = e
                .downcast_ref::<perfcheck::Error>()
                .map(|e| e.exit_code())
                .unwrap_or(2);
            ExitCode::from(code as u8)
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(a) => run(a),
        Command::Profiles(a) => {
            for name in Profile::available(&a.profiles_dir) {
                let p = Profile::load(&name, &a.profiles_dir)?;
                println!("{name:<10} {}", p.description);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn run(a: RunArgs) -> anyhow::Result<ExitCode> {
    let profile = Profile::load(&a.profile, &a.profiles_dir)?;
    let slowdown = match std::env::var("PERFCHECK_SLOW_STAGE") {
        Ok(spec) => Some(parse_slowdown(&spec).with_context(|| {
            format!("PERFCHECK_SLOW_STAGE={spec:?}: expected STAGE:PERCENT, e.g. vector_search:50")
        })?),
        Err(_) => None,
    };
    let req = RunRequest {
        profile,
        workloads: a.workloads,
        reports_dir: a.reports_dir,
        repo_dir: std::env::current_dir().context("cannot read the current directory")?,
        slowdown,
    };
    let quiet = a.quiet;
    let tty = std::io::stderr().is_terminal();
    let mut log = |line: &str| {
        if !quiet {
            let mut err = std::io::stderr().lock();
            let _ = if tty {
                writeln!(err, "\x1b[2m{line}\x1b[0m")
            } else {
                writeln!(err, "{line}")
            };
        }
    };
    let outcome = execute(&req, &mut log)?;
    let r = &outcome.record;
    let commit = match &r.git {
        Some(g) => format!("{}{}", g.short(), if g.dirty { " (dirty)" } else { "" }),
        None => "no git repository".into(),
    };
    println!(
        "perfcheck run {} | profile {} | commit {} | {}",
        r.run_id,
        r.profile.name,
        commit,
        r.machine.key()
    );
    if let Some(s) = &r.slowdown {
        println!("warning: PERFCHECK_SLOW_STAGE={s} is set: stage {s} was slowed on purpose");
    }
    if !r.counting_allocator {
        println!("warning: the counting allocator is not installed: allocation columns are 0");
    }
    for w in &r.workloads {
        println!();
        print!("{}", workload_table(w));
    }
    println!();
    println!("run record: {}", outcome.dir.join("run.json").display());
    Ok(ExitCode::SUCCESS)
}
