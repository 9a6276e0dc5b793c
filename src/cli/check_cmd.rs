//! `cargo perfcheck check`: the regression gate.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::baseline::pending::PendingStore;
use crate::baseline::select::NoBaseline;
use crate::baseline::sqlite::SqliteStore;
use crate::check::{check, CheckOutcome};
use crate::compare::measured_noise;
use crate::compare::Comparison;
use crate::git::{short_sha, Repo};
use crate::project::ProjectConfig;
use crate::record::RunRecord;
use crate::report::check as render;
use crate::report::escape;
use anyhow::Context;
use clap::Args;

use crate::cli::run_cmd::{measure, prepare_store, save, MeasureArgs};

/// Arguments of `check`.
#[derive(Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub measure: MeasureArgs,
    /// Compare with the runs stored for this revision (default: the nearest first-parent
    /// ancestor, from the merge-base with the default branch, that has runs). With --ab: the
    /// revision to build as the base (default: the merge-base).
    #[arg(long, value_name = "REV")]
    pub base: Option<String>,
    /// Check this run.json instead of running the profile.
    #[arg(long, value_name = "FILE")]
    run_file: Option<PathBuf>,
    /// Baseline store file (default: $PERFCHECK_STORE, perfcheck.toml, baselines/perfcheck.sqlite).
    #[arg(long, value_name = "FILE")]
    pub store: Option<PathBuf>,
    /// Exit 1 when no baseline is found (default: `check.fail_without_baseline`, else exit 0).
    #[arg(long)]
    fail_without_baseline: bool,
    /// Accept runs of dirty working trees as baselines.
    #[arg(long)]
    include_dirty_baselines: bool,
    /// After comparing, save this run as a baseline of its commit (for the default branch's CI).
    #[arg(long)]
    save: bool,
    /// List every metric in the terminal, not only the changed ones.
    #[arg(long)]
    pub all: bool,
    /// Paired A/B: build the base revision (--base, else the merge-base with the default
    /// branch) in a git worktree and run base and head alternately in this session, instead
    /// of reading stored baselines. Much less noise; costs a build and 2 x --rounds runs.
    #[arg(long, conflicts_with_all = ["run_file", "save", "include_dirty_baselines", "fail_without_baseline", "store"])]
    pub ab: bool,
    /// Rounds of a paired A/B check, one base and one head run each.
    #[arg(long, value_name = "N", default_value_t = 10, requires = "ab",
          value_parser = clap::value_parser!(u32).range(2..=200))]
    pub rounds: u32,
    /// With --ab: use this harness binary as the base side instead of building the
    /// base revision (for example one that CI built or cached earlier).
    #[arg(long, value_name = "FILE", requires = "ab")]
    pub base_bin: Option<PathBuf>,
}

/// Runs the `check` subcommand; exit 0 = no regression, 1 = regression, 2 = error.
pub fn run(a: CheckArgs, harness: &crate::harness::Harness) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let project = ProjectConfig::load(&cwd)?;
    if a.ab {
        return crate::cli::ab_cmd::run(&a, harness, &project, &cwd);
    }
    let store_path = project.store_path(a.store.as_deref());
    // A missing store is the normal first run: no baseline, and no file created unless a run
    // is saved. Without --save the store is only read, so the check works on a read-only copy.
    let mut pending = if a.save {
        Some(prepare_store(store_path.clone())?)
    } else {
        None
    };
    let read_only = match &pending {
        None if store_path.exists() => Some(SqliteStore::open_read(&store_path)?),
        _ => None,
    };
    let (head, dir) = match &a.run_file {
        Some(file) => {
            let record = RunRecord::read(file)?;
            let dir = file
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_path_buf();
            (record, dir)
        }
        None => {
            let outcome = measure(
                &a.measure,
                harness,
                &project.check.profile,
                &cwd,
                Some(&store_path),
            )?;
            (outcome.record, outcome.dir)
        }
    };
    let repo = Repo::discover(&cwd);
    let include_dirty = a.include_dirty_baselines || project.check.include_dirty_baselines;
    let store = match &pending {
        Some(PendingStore::Open(s)) => Some(s),
        _ => read_only.as_ref(),
    };
    // Floors `calibrate` measured for this machine and profile replace the built-in ones.
    let (thresholds, noise_floors) = measured_noise::apply(
        &project.thresholds,
        &measured_noise::path_beside(&store_path),
        &head.machine.key(),
        &head.profile.name,
        false,
    )?;
    let project = ProjectConfig {
        thresholds,
        ..project
    };
    let outcome = match store {
        Some(store) => check(
            store,
            repo.as_ref(),
            &head,
            a.base.as_deref(),
            &project,
            include_dirty,
        )?,
        None if repo.is_none() || head.git.is_none() => {
            CheckOutcome::NoBaseline(NoBaseline::NoRepository)
        }
        None => CheckOutcome::NoBaseline(NoBaseline::NoStore { path: store_path }),
    };
    println!();
    let code = match outcome {
        CheckOutcome::Compared {
            mut comparison,
            baseline,
            base_records,
        } => {
            comparison.noise_floors = noise_floors;
            let bases: Vec<&RunRecord> = base_records.iter().collect();
            crate::report::diff_flame::write_for_attribution(&mut comparison, &bases, &head, &dir)?;
            if baseline.distance > 0 {
                println!(
                    "baseline: {} ({} commits before the merge-base), {} run(s)",
                    escape::terminal(short_sha(&baseline.commit)),
                    baseline.distance,
                    baseline.runs.len()
                );
            }
            // Steps along the history of the gated metrics (from stored runs only).
            let steps = match (store, repo.as_ref(), head.git.as_ref()) {
                (Some(store), Some(repo), Some(git)) => crate::trend::recent::recent_steps(
                    store,
                    repo,
                    &git.commit,
                    &comparison,
                    &project.thresholds,
                )?,
                _ => Vec::new(),
            };
            let notes = render::change_points_markdown(&steps);
            report_with_notes(&comparison, &dir, a.all, "", &notes)?
        }
        CheckOutcome::NoBaseline(why) => {
            println!("no baseline: {}", escape::terminal(&why.to_string()));
            let fail = a.fail_without_baseline || project.check.fail_without_baseline;
            let md = no_baseline_markdown(&why, &head, fail);
            write_file(&dir.join("check.md"), &md)?;
            let json = serde_json::json!({
                "schema": crate::compare::CHECK_SCHEMA_VERSION,
                "status": "no_baseline",
                "reason": why.to_string(),
                "head": crate::metrics::RunInfo::from_record(&head),
            });
            write_file(
                &dir.join("check.json"),
                &format!("{}\n", serde_json::to_string_pretty(&json)?),
            )?;
            let annotation = if fail {
                format!("::error title=crate::no baseline: {why}\n")
            } else {
                String::new()
            };
            publish_to_github(&md, &annotation)?;
            if fail {
                1
            } else {
                0
            }
        }
    };
    if let Some(pending) = pending.as_mut() {
        save(pending, &head)?;
        crate::cli::run_cmd::print_untracked_hint(&head);
    }
    Ok(ExitCode::from(code as u8))
}

fn no_baseline_markdown(why: &NoBaseline, head: &RunRecord, fail: bool) -> String {
    let icon = if fail { "❌" } else { "⚪" };
    let commit = head
        .git
        .as_ref()
        .map(|g| escape::md_code(short_sha(&g.commit)))
        .unwrap_or_else(|| "(no commit)".into());
    let branch = head
        .git
        .as_ref()
        .and_then(|g| g.branch.as_deref())
        .map(|b| format!(" ({})", escape::md_text(b)))
        .unwrap_or_default();
    format!(
        "### {icon} perfcheck: no baseline\n\n{}.\n\nHead {commit}{branch} · profile {} · machine {}\n",
        escape::md_text(&why.to_string()),
        escape::md_code(&head.profile.name),
        escape::md_code(&head.machine.key())
    )
}

/// Prints the verdict table, writes check.md and check.json into `dir`, publishes to GitHub
/// when running there, and returns the exit code. `where_runs` ends the report line.
pub fn report(
    comparison: &Comparison,
    dir: &Path,
    all: bool,
    where_runs: &str,
) -> anyhow::Result<i32> {
    report_with_notes(comparison, dir, all, where_runs, "")
}

/// [`report`] with `notes` (markdown paragraphs) appended to check.md.
fn report_with_notes(
    comparison: &Comparison,
    dir: &Path,
    all: bool,
    where_runs: &str,
    notes: &str,
) -> anyhow::Result<i32> {
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    print!("{}", render::terminal(comparison, color, all));
    let md = format!("{}{notes}", render::markdown(comparison));
    write_file(&dir.join("check.md"), &md)?;
    write_file(&dir.join("check.json"), &render::json(comparison))?;
    publish_to_github(&md, &render::annotations(comparison))?;
    println!(
        "check report: {} (and check.json{where_runs})",
        dir.join("check.md").display()
    );
    Ok(comparison.exit_code())
}

fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Appends the report to the job summary and prints annotations, when on GitHub Actions.
fn publish_to_github(markdown: &str, annotations: &str) -> anyhow::Result<()> {
    if let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|s| !s.is_empty()) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&summary)
            .with_context(|| format!("cannot append to GITHUB_STEP_SUMMARY {summary:?}"))?;
        writeln!(f, "{markdown}")?;
    }
    if std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true") {
        print!("{annotations}");
    }
    Ok(())
}
