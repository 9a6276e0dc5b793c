//! `cargo perfcheck baseline list|show|export|import|delete`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::{Args, Subcommand};
use perfcheck::baseline::exchange;
use perfcheck::baseline::sqlite::SqliteStore;
use perfcheck::baseline::{RunFilter, Store};
use perfcheck::git::short_sha;
use perfcheck::project::ProjectConfig;
use perfcheck::report::table::workload_table;

/// Arguments of `baseline`.
#[derive(Args)]
pub struct BaselineArgs {
    /// Baseline store file (default: $PERFCHECK_STORE, perfcheck.toml, baselines/perfcheck.sqlite).
    #[arg(long, value_name = "FILE", global = true)]
    store: Option<PathBuf>,
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// List stored runs, oldest first.
    List(FilterArgs),
    /// Show one stored run's per-stage tables.
    Show {
        /// Run id (as printed by `list`).
        run_id: String,
    },
    /// Write stored runs to a JSON file (for CI artifacts).
    Export {
        /// Output file.
        #[arg(long, short = 'o', value_name = "FILE")]
        out: PathBuf,
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// Add the runs of an export file (or a run.json) to the store; already stored runs are skipped.
    Import {
        /// Export file or run.json.
        file: PathBuf,
    },
    /// Delete stored runs by id.
    Delete {
        /// Run ids.
        #[arg(required = true)]
        run_ids: Vec<String>,
    },
}

#[derive(Args)]
struct FilterArgs {
    /// Only this profile.
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
    /// Only commits starting with this sha prefix.
    #[arg(long, value_name = "SHA")]
    commit: Option<String>,
    /// Include runs of dirty working trees.
    #[arg(long)]
    include_dirty: bool,
}

impl FilterArgs {
    fn filter(&self) -> RunFilter {
        RunFilter {
            commit_prefix: self.commit.clone(),
            profile: self.profile.clone(),
            machine_key: None,
            include_dirty: self.include_dirty,
        }
    }
}

/// Runs the `baseline` subcommand.
pub fn run(a: BaselineArgs) -> anyhow::Result<ExitCode> {
    let cfg = ProjectConfig::load(&std::env::current_dir()?)?;
    let path = cfg.store_path(a.store.as_deref());
    // Only import may create the store; the other actions read or change an existing one.
    let mut store = match a.action {
        Action::Import { .. } => SqliteStore::open(&path)?,
        _ => SqliteStore::open_existing(&path)?,
    };
    match a.action {
        Action::List(f) => {
            let runs = store.list(&f.filter())?;
            if runs.is_empty() {
                println!("no stored runs in {}", path.display());
            }
            for r in runs {
                println!(
                    "{:<26} {:<10} {:<16} {:<6} {:<8} {}  {}",
                    r.run_id,
                    r.commit.as_deref().map(short_sha).unwrap_or("-"),
                    r.branch.as_deref().unwrap_or("(detached)"),
                    if r.dirty { "dirty" } else { "clean" },
                    r.profile,
                    r.created_at,
                    r.machine_key
                );
            }
        }
        Action::Show { run_id } => {
            let Some(rec) = store.load(&run_id)? else {
                bail!(perfcheck::Error::Usage(format!(
                    "no stored run `{run_id}` in {} (see `cargo perfcheck baseline list`)",
                    path.display()
                )));
            };
            let commit = rec
                .git
                .as_ref()
                .map(|g| format!("{}{}", g.commit, if g.dirty { " (dirty)" } else { "" }))
                .unwrap_or_else(|| "-".into());
            println!(
                "run {} | profile {} | commit {commit}",
                rec.run_id, rec.profile.name
            );
            println!("machine {}", rec.machine.key());
            for w in &rec.workloads {
                println!();
                print!("{}", workload_table(w));
            }
        }
        Action::Export { out, filter } => {
            let runs = store.list(&filter.filter())?;
            let mut records = Vec::with_capacity(runs.len());
            for r in &runs {
                if let Some(rec) = store.load(&r.run_id)? {
                    records.push(rec);
                }
            }
            exchange::export(&records, &out)?;
            println!("exported {} runs to {}", records.len(), out.display());
        }
        Action::Import { file } => {
            let records = exchange::import(&file)?;
            let n = store.save_all(&records)?;
            println!(
                "imported {n} new runs from {} ({} already stored)",
                file.display(),
                records.len() - n
            );
        }
        Action::Delete { run_ids } => {
            let all = RunFilter {
                include_dirty: true,
                ..RunFilter::default()
            };
            let stored: Vec<String> = store.list(&all)?.into_iter().map(|r| r.run_id).collect();
            let missing: Vec<&str> = run_ids
                .iter()
                .filter(|id| !stored.contains(id))
                .map(String::as_str)
                .collect();
            if !missing.is_empty() {
                bail!(perfcheck::Error::Usage(format!(
                    "no stored run with id {} in {}; nothing else was deleted",
                    missing.join(", "),
                    path.display()
                )));
            }
            for id in &run_ids {
                store.delete(id)?;
            }
            println!("deleted {} runs", run_ids.len());
        }
    }
    Ok(ExitCode::SUCCESS)
}
