//! `cargo perfcheck chaos`: fault scenarios under steady load, recovery measured.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::chaos::{self, ChaosRequest};
use crate::cli::args::{Folders, Monitoring};
use crate::cli::run_cmd::{prepare_store, save};
use crate::config::Profile;
use crate::harness::Harness;
use crate::project::ProjectConfig;
use crate::report::escape;

/// Arguments of `chaos`.
#[derive(Args)]
pub struct ChaosArgs {
    /// Scenario to run (repeatable); default: the profile's `chaos.scenarios`, else every fault
    /// the load target offers (`--list` shows them).
    #[arg(long = "scenario", short = 's', value_name = "NAME")]
    scenarios: Vec<String>,
    /// List the faults the load target offers and exit.
    #[arg(long)]
    list: bool,
    /// Offered operations per second [default: the profile's `load.rate`].
    #[arg(long, value_name = "OPS", value_parser = parse_rate)]
    rate: Option<f64>,
    /// How long each fault stays in effect [default: the profile's `chaos.fault`].
    #[arg(long, value_name = "D", value_parser = parse_duration)]
    fault: Option<Duration>,
    /// Profile name (profiles/<NAME>.toml or built in, e.g. chaos) or path.
    #[arg(long, short = 'p', value_name = "NAME", default_value = "chaos")]
    profile: String,
    #[command(flatten)]
    folders: Folders,
    #[command(flatten)]
    monitoring: Monitoring,
    /// Save the run in the baseline store (keyed by commit, profile and machine).
    #[arg(long)]
    save: bool,
    /// Baseline store file (default: $PERFCHECK_STORE, perfcheck.toml, baselines/perfcheck.sqlite).
    #[arg(long, value_name = "FILE")]
    store: Option<PathBuf>,
    /// Print only the results, no progress.
    #[arg(long, short = 'q')]
    quiet: bool,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    crate::config::load::parse_rate(s)
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::config::load::parse_positive_duration(s)
}

/// Runs the `chaos` subcommand.
pub fn run(a: ChaosArgs, harness: &Harness) -> anyhow::Result<ExitCode> {
    let target = crate::load::target(harness)?;
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let project = ProjectConfig::load(&cwd)?;
    let mut profile = Profile::load(&a.profile, &a.folders.profiles_dir, harness.profiles())?;
    if a.list {
        let configured = target.configure(&profile, &profile.origin())?;
        let faults = configured.faults();
        if faults.is_empty() {
            println!("load target {} offers no faults", configured.name());
        }
        for f in faults {
            println!(
                "{:<22} {}",
                escape::terminal(&f.name),
                escape::terminal(&f.description)
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut load = crate::load::settings_of(&profile);
    if let Some(r) = a.rate {
        load.rate = r;
    }
    let mut settings = chaos::settings_of(&profile);
    if let Some(f) = a.fault {
        settings.fault = f;
    }
    load.validate().map_err(crate::Error::Usage)?;
    settings.validate().map_err(crate::Error::Usage)?;
    profile.load = Some(load);
    profile.chaos = Some(settings);
    let mut store = if a.save {
        Some(prepare_store(project.store_path(a.store.as_deref()))?)
    } else {
        None
    };
    // Bound before the run's setup, so a busy port fails at once.
    let monitoring = a.monitoring.start()?;
    let req = ChaosRequest {
        target,
        profile,
        scenarios: a.scenarios,
        reports_dir: a.folders.reports_dir.clone(),
        repo_dir: cwd,
        monitor: monitoring.as_ref().map(|(m, _)| std::sync::Arc::clone(m)),
    };
    let quiet = a.quiet;
    let tty = std::io::stderr().is_terminal();
    let mut log = crate::cli::progress::logger(quiet);
    let mut progress = |p: &crate::load::Progress<'_>| {
        if !quiet && !tty {
            return;
        }
        if !quiet {
            eprint!(
                "\r{:<9} {:>5.1}s/{:.0}s achieved {:>6.0}/s errors {:<6} p99 {:<10}",
                p.phase,
                p.elapsed_s,
                p.total_s,
                p.tick.achieved_ops_per_s,
                p.tick.errors,
                crate::report::format::duration_ns(p.tick.latency.p99_ns as f64)
            );
        }
    };
    let outcome = chaos::execute(&req, &mut log, &mut progress);
    // The endpoint lives as long as the run, no longer.
    drop(monitoring);
    if tty && !quiet {
        eprintln!();
    }
    let outcome = outcome?;
    let r = &outcome.record;
    println!("{}", crate::cli::run_cmd::headline("chaos", r));
    print!("{}", chaos::report::render(&outcome.report));
    println!();
    println!("run record: {}", outcome.dir.join("run.json").display());
    println!("chaos report: {}", outcome.dir.join("chaos.md").display());
    if let Some(store) = store.as_mut() {
        save(store, &outcome.record)?;
        crate::cli::run_cmd::print_untracked_hint(&outcome.record);
    }
    Ok(if outcome.report.passed() {
        ExitCode::SUCCESS
    } else {
        println!("chaos FAILED (see the scenarios marked FAILED above)");
        ExitCode::from(1)
    })
}
