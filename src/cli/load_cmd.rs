//! `cargo perfcheck load`: open-loop load, stress and soak tests of the harness's load target.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::config::Profile;
use crate::harness::Harness;
use crate::load::{self, LoadRequest, Mix, PhaseSpec, Progress};
use crate::project::ProjectConfig;
use crate::report::format::duration_ns;
use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::args::{Folders, Monitoring};
use crate::cli::run_cmd::{prepare_store, save};

/// Arguments of `load`.
#[derive(Args)]
pub struct LoadArgs {
    /// Offered operations per second at rate multiple 1 (phases scale with it); with
    /// --find-max, the first rate tried [default: the profile's `load.rate`].
    #[arg(long, value_name = "OPS", value_parser = parse_rate, allow_negative_numbers = true)]
    rate: Option<f64>,
    /// Run one steady phase of this length at --rate instead of the profile's phases (e.g.
    /// 60s, 10m, 1h).
    #[arg(long, value_name = "D", value_parser = parse_duration, conflicts_with = "phases")]
    duration: Option<Duration>,
    /// Operation mix over the load target's kinds, e.g. recall=80,remember=15,consolidation=5
    /// (kinds not named weigh 0) [default: the profile's `[mix]`].
    #[arg(long, value_name = "KIND=WEIGHT,...", value_parser = parse_mix)]
    mix: Option<Mix>,
    /// Phases NAME=DURATION@RATE,... with RATE a multiple of --rate or a ramp FROM..TO, e.g.
    /// ramp-up=10s@0.1..1,peak=60s@1,stress=20s@1.5,ramp-down=10s@1..0.1.
    #[arg(long, value_name = "SPEC", value_parser = parse_phases)]
    phases: Option<Phases>,
    /// Search the highest sustainable rate (p99 and failure limits of `load.find_max`)
    /// instead of running the phases.
    #[arg(long, conflicts_with_all = ["duration", "phases"])]
    find_max: bool,
    /// Worker threads running operations [default: the profile's, else max(4, 2 x cores)].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    workers: Option<u16>,
    /// Profile name (profiles/<NAME>.toml or built in: load, soak, soak-ci, ...) or path.
    #[arg(long, short = 'p', value_name = "NAME", default_value = "load")]
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

/// `--phases`, parsed (a newtype: clap treats a bare `Vec` as a repeated flag).
#[derive(Clone)]
struct Phases(Vec<PhaseSpec>);

fn parse_rate(s: &str) -> Result<f64, String> {
    crate::config::load::parse_rate(s)
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::config::load::parse_positive_duration(s)
}

fn parse_mix(s: &str) -> Result<Mix, String> {
    load::parse_mix(s)
}

fn parse_phases(s: &str) -> Result<Phases, String> {
    load::parse_phases(s).map(Phases)
}

/// Runs the `load` subcommand.
pub fn run(a: LoadArgs, harness: &Harness) -> anyhow::Result<ExitCode> {
    let target = load::target(harness)?;
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let project = ProjectConfig::load(&cwd)?;
    let mut profile = Profile::load(&a.profile, &a.folders.profiles_dir, harness.profiles())?;
    let mut settings = load::settings_of(&profile);
    if let Some(r) = a.rate {
        settings.rate = r;
        // An explicit rate also starts the saturation search there.
        settings.find_max.start = r;
    }
    if let Some(d) = a.duration {
        settings.phases = vec![PhaseSpec {
            name: "steady".into(),
            duration: d,
            rate: Some(1.0),
            from: None,
            to: None,
        }];
    }
    if let Some(p) = a.phases {
        settings.phases = p.0;
    }
    if let Some(w) = a.workers {
        settings.workers = usize::from(w);
    }
    if let Some(m) = a.mix {
        // The kinds are the target's: learn them from the profile as it is, then replace its
        // `[mix]` (the table the target reads its weights from).
        let kinds = target.configure(&profile, &profile.origin())?.mix().clone();
        let mix = m
            .fill(&kinds)
            .map_err(|e| crate::Error::Usage(format!("--mix: {e}")))?;
        profile
            .workload_config
            .insert("mix".into(), mix.to_table().into());
    }
    settings.validate().map_err(crate::Error::Usage)?;
    profile.load = Some(settings.clone());
    // Open the store first, so a bad store fails now, not after the run.
    let mut store = if a.save {
        Some(prepare_store(project.store_path(a.store.as_deref()))?)
    } else {
        None
    };
    // Bound before the run's setup, so a busy port fails at once.
    let monitoring = a.monitoring.start()?;
    let req = LoadRequest {
        target,
        profile,
        find_max: a.find_max,
        reports_dir: a.folders.reports_dir.clone(),
        repo_dir: cwd,
        monitor: monitoring.as_ref().map(|(m, _)| std::sync::Arc::clone(m)),
    };
    let quiet = a.quiet;
    let tty = std::io::stderr().is_terminal();
    let mut log = crate::cli::progress::logger(quiet);
    let bar = (tty && !quiet).then(|| {
        let b = ProgressBar::new(1_000);
        b.set_style(
            ProgressStyle::with_template("{bar:30} {elapsed_precise} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    });
    let mut last_line = -1i64;
    let mut progress = |p: &Progress<'_>| {
        let msg = format!(
            "{:<10} offered {:>7.0}/s achieved {:>7.0}/s p99 {:>9} queued {}",
            p.phase,
            p.tick.offered_ops_per_s,
            p.tick.achieved_ops_per_s,
            duration_ns(p.tick.latency.p99_ns as f64),
            p.tick.queued
        );
        if let Some(b) = &bar {
            b.set_position(((p.elapsed_s / p.total_s.max(1e-9)) * 1_000.0).min(1_000.0) as u64);
            b.set_message(msg);
        } else if !quiet {
            // Plain lines: every 10 s (every second in runs under a minute).
            let every = if p.total_s < 60.0 { 1 } else { 10 };
            let s = p.elapsed_s as i64;
            if s / every != last_line / every {
                last_line = s;
                eprintln!("[{:>6.0}s/{:.0}s] {msg}", p.elapsed_s, p.total_s);
            }
        }
    };
    let outcome = load::execute(&req, &mut log, &mut progress);
    // The endpoint lives as long as the run, no longer.
    drop(monitoring);
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let outcome = outcome?;
    let r = &outcome.record;
    println!("{}", crate::cli::run_cmd::headline("load", r));
    print!("{}", load::report::render(&outcome.report));
    println!();
    println!("run record: {}", outcome.dir.join("run.json").display());
    println!("load report: {}", outcome.dir.join("load.json").display());
    if !outcome.charts.is_empty() {
        println!(
            "charts: {}",
            outcome
                .charts
                .iter()
                .filter_map(|p| p.file_name().and_then(|n| n.to_str()))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if let Some(store) = store.as_mut() {
        save(store, &outcome.record)?;
        crate::cli::run_cmd::print_untracked_hint(&outcome.record);
    }
    Ok(if outcome.report.passed() {
        ExitCode::SUCCESS
    } else {
        println!("load test FAILED its limits (see the slo and reconciliation lines above)");
        ExitCode::from(1)
    })
}
