//! `cargo perfcheck run`: measure workloads, print per-stage tables, write the run record.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::baseline::pending::PendingStore;
use crate::baseline::sqlite::{SqliteStore, STORE_VERSION};
use crate::baseline::{Saved, Store};
use crate::config::Profile;
use crate::project::ProjectConfig;
use crate::record::RunRecord;
use crate::report::table::workload_table;
use crate::run::{execute, InstructionsPlan, RunOutcome, RunRequest};
use anyhow::Context;
use clap::Args;

use crate::cli::args::{slowdown_from_env, Folders};
use crate::harness::Harness;

/// What to measure: shared by `run` and `check`.
#[derive(Args)]
pub struct MeasureArgs {
    /// Workload to run (repeatable; `cargo perfcheck profiles` lists them). Default: the
    /// profile's list, else every workload of the harness.
    #[arg(long = "workload", short = 'w', value_name = "W")]
    pub workloads: Vec<String>,
    /// Profile name (profiles/<NAME>.toml or built in) or path to a .toml file [default: quick,
    /// or `check.profile` of perfcheck.toml for `check`].
    #[arg(long, short = 'p', value_name = "NAME")]
    pub profile: Option<String>,
    #[command(flatten)]
    pub folders: Folders,
    /// Print only the results, no progress lines.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Also count instructions per stage under callgrind (needs valgrind), in passes of their
    /// own after the timing pass [default: the profile's `instructions.enabled`].
    #[arg(long, conflicts_with = "no_instructions")]
    pub instructions: bool,
    /// Do not count instructions, even if the profile says to.
    #[arg(long)]
    pub no_instructions: bool,
    /// With instruction counts: simulate the caches too, for `est_cycles` (slower).
    #[arg(long)]
    pub cache_sim: bool,
}

impl MeasureArgs {
    /// The instructions pass this command runs, if any: the flags, else the profile's setting.
    pub fn instructions_plan(&self, profile: &Profile) -> anyhow::Result<Option<InstructionsPlan>> {
        let mut settings = profile.instructions.clone().unwrap_or_default();
        let on = !self.no_instructions && (self.instructions || settings.enabled);
        if !on {
            return Ok(None);
        }
        settings.cache_sim |= self.cache_sim;
        // Fail in a second, not after the timing pass.
        crate::profile::instructions::find_valgrind()?;
        let exe = std::env::current_exe().context("cannot find this program's own path")?;
        Ok(Some(InstructionsPlan { exe, settings }))
    }
}

/// Arguments of `run`.
#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    measure: MeasureArgs,
    /// Save the run in the baseline store (keyed by commit, profile and machine).
    #[arg(long)]
    save: bool,
    /// Baseline store file (default: $PERFCHECK_STORE, perfcheck.toml, baselines/perfcheck.sqlite).
    #[arg(long, value_name = "FILE")]
    store: Option<PathBuf>,
}

/// Runs the `run` subcommand.
pub fn run(a: RunArgs, harness: &Harness) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let project = ProjectConfig::load(&cwd)?;
    // Check the store before the run, so a bad store fails in a second, not after a minute.
    if a.save {
        if let Some((stage, pct)) = slowdown_from_env()? {
            anyhow::bail!(crate::Error::Usage(format!(
                "--save with PERFCHECK_SLOW_STAGE={stage}:{pct}: a run slowed on purpose cannot \
                 be stored as a baseline (unset the variable, or drop --save)"
            )));
        }
    }
    let mut store = if a.save {
        Some(prepare_store(project.store_path(a.store.as_deref()))?)
    } else {
        None
    };
    let outcome = measure(
        &a.measure,
        harness,
        "quick",
        &cwd,
        store.as_ref().map(|s| s.path()),
    )?;
    if let Some(store) = store.as_mut() {
        save(store, &outcome.record)?;
        print_untracked_hint(&outcome.record);
    }
    Ok(ExitCode::SUCCESS)
}

/// After saving: says which untracked files alone made the run dirty (a dirty run is never a
/// baseline, so the gate would silently not compare).
pub fn print_untracked_hint(r: &RunRecord) {
    if let Some(hint) = r.git.as_ref().and_then(|g| g.untracked_hint()) {
        println!("{hint}");
    }
}

/// Loads the profile, runs the workloads, prints their tables and the record's path.
pub fn measure(
    a: &MeasureArgs,
    harness: &Harness,
    default_profile: &str,
    cwd: &Path,
    store: Option<&Path>,
) -> anyhow::Result<RunOutcome> {
    let profile = Profile::load(
        a.profile.as_deref().unwrap_or(default_profile),
        &a.folders.profiles_dir,
        harness.profiles(),
    )?;
    let slowdown = slowdown_from_env()?;
    let instructions = a.instructions_plan(&profile)?;
    let req = RunRequest {
        profile,
        workloads: a.workloads.clone(),
        reports_dir: a.folders.reports_dir.clone(),
        repo_dir: cwd.to_path_buf(),
        slowdown,
        store: store.map(Path::to_path_buf),
        instructions,
    };
    let mut log = crate::cli::progress::logger(a.quiet);
    let outcome = execute(&req, harness, &mut log)?;
    print_run(&outcome);
    Ok(outcome)
}

/// The first line of a run's output: `perfcheck <what> <run id> | profile .. | commit .. | machine`.
pub fn headline(what: &str, r: &RunRecord) -> String {
    format!(
        "perfcheck {what} {} | profile {} | commit {} | {}",
        r.run_id,
        r.profile.name,
        commit_label(r.git.as_ref()),
        r.machine.key()
    )
}

/// `abc1234`, `abc1234 (dirty)`, or `no git repository`.
pub fn commit_label(git: Option<&crate::git::GitInfo>) -> String {
    match git {
        Some(g) => format!("{}{}", g.short(), if g.dirty { " (dirty)" } else { "" }),
        None => "no git repository".into(),
    }
}

fn print_run(outcome: &RunOutcome) {
    let r = &outcome.record;
    println!("{}", headline("run", r));
    if let Some(s) = &r.slowdown {
        println!("warning: PERFCHECK_SLOW_STAGE={s} is set: that stage was slowed on purpose");
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
}

/// Checks the store a command will save into (see [`PendingStore`]), saying so if it had to
/// be migrated.
pub fn prepare_store(path: PathBuf) -> anyhow::Result<PendingStore> {
    let pending = PendingStore::prepare(path)?;
    if let PendingStore::Open(s) = &pending {
        announce_migration(s);
    }
    Ok(pending)
}

/// Says once that this process migrated the store to the current schema.
pub fn announce_migration(store: &SqliteStore) {
    if let Some(from) = store.migrated_from() {
        eprintln!(
            "note: migrated baseline store {} from schema {from} to {STORE_VERSION}",
            store.path().display()
        );
    }
}

/// Saves a finished run as a baseline, saying plainly when it cannot be one.
pub fn save(pending: &mut PendingStore, r: &RunRecord) -> anyhow::Result<()> {
    let Some(git) = &r.git else {
        println!(
            "not saved: not in a git repository, so the run has no commit to be a baseline of"
        );
        return Ok(());
    };
    let store = pending.get()?;
    match store.save(r)? {
        Saved::Inserted if git.dirty => println!(
            "saved as a DIRTY run of {} in {} (never used as a baseline unless asked)",
            git.short(),
            store.path().display()
        ),
        Saved::Inserted => println!(
            "saved as a baseline of {} in {}",
            git.short(),
            store.path().display()
        ),
        Saved::AlreadyPresent => println!("run {} was already stored", r.run_id),
    }
    Ok(())
}
