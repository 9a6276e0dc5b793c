//! `cargo perfcheck baseline list|show|export|import|delete`.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::baseline::exchange;
use crate::baseline::sqlite::SqliteStore;
use crate::baseline::{RunFilter, Store};
use crate::git::short_sha;
use crate::project::ProjectConfig;
use crate::report::escape::terminal;
use crate::report::table::workload_table;
use anyhow::bail;
use clap::{Args, Subcommand};

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
        /// Export every intact run of a damaged store, naming the damaged ones (the first step
        /// of recovering it: import the file into a new store).
        #[arg(long)]
        skip_damaged: bool,
    },
    /// Add the runs of an export file (or a run.json) to the store; runs already stored (same
    /// content) are recognised, a different run under a taken id is stored under a new id.
    Import {
        /// Export file or run.json.
        file: PathBuf,
    },
    /// Check every stored run against its checksums and the file with SQLite's integrity
    /// check; exit 2 naming what is damaged.
    Verify,
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
    // Reads open the store read-only (no migration, no write); only import may create it,
    // and only after its file has been read, so a bad file leaves no new store behind.
    match a.action {
        Action::Import { file } => {
            let records = exchange::import(&file)?;
            let mut store = crate::cli::run_cmd::prepare_store(path.clone())?;
            let done = store.get()?.save_all(&records)?;
            println!(
                "imported {} new runs from {} ({} already stored)",
                done.inserted.len(),
                file.display(),
                done.already
            );
            for (from, to) in &done.renamed {
                println!(
                    "  {} is a different run from the stored one of that id: stored as {}",
                    terminal(from),
                    terminal(to)
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        Action::Delete { run_ids } => {
            let mut store = SqliteStore::open_existing_write(&path)?;
            crate::cli::run_cmd::announce_migration(&store);
            return delete(&mut store, &run_ids);
        }
        _ => {}
    }
    let store = SqliteStore::open_read(&path)?;
    match a.action {
        Action::List(f) => {
            let runs = store.list(&f.filter())?;
            if runs.is_empty() {
                println!("no stored runs in {}", path.display());
            }
            // Every column but the dirty flag comes from records, which may be imported.
            for r in runs {
                println!(
                    "{:<26} {:<10} {:<16} {:<6} {:<8} {}  {}",
                    terminal(&r.run_id),
                    terminal(r.commit.as_deref().map(short_sha).unwrap_or("-")),
                    terminal(r.branch.as_deref().unwrap_or("(detached)")),
                    if r.dirty { "dirty" } else { "clean" },
                    terminal(&r.profile),
                    terminal(&r.created_at),
                    terminal(&r.machine_key)
                );
            }
        }
        Action::Show { run_id } => {
            let Some(rec) = store.load(&run_id)? else {
                bail!(crate::Error::Usage(format!(
                    "no stored run `{run_id}` in {} (see `cargo perfcheck baseline list`)",
                    path.display()
                )));
            };
            let commit = rec
                .git
                .as_ref()
                .map(|g| {
                    let dirty = if g.dirty { " (dirty)" } else { "" };
                    format!("{}{dirty}", terminal(&g.commit))
                })
                .unwrap_or_else(|| "-".into());
            println!(
                "run {} | profile {} | commit {commit}",
                terminal(&rec.run_id),
                terminal(&rec.profile.name)
            );
            println!("machine {}", terminal(&rec.machine.key()));
            for w in &rec.workloads {
                println!();
                print!("{}", workload_table(w));
            }
        }
        Action::Export {
            out,
            filter,
            skip_damaged: false,
        } => {
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
        Action::Export {
            out,
            filter,
            skip_damaged: true,
        } => {
            let salvage = store.salvage();
            let f = filter.filter();
            let records: Vec<_> = salvage
                .intact
                .into_iter()
                .filter(|r| f.matches(&crate::baseline::StoredRun::of(r)))
                .collect();
            exchange::export(&records, &out)?;
            println!(
                "exported {} intact runs to {}; {} damaged",
                records.len(),
                out.display(),
                salvage.damaged.len()
            );
            for d in &salvage.damaged {
                println!(
                    "  damaged, not exported: {}: {}",
                    terminal(&d.run.to_string()),
                    terminal(&d.problem.to_string())
                );
            }
        }
        Action::Verify => {
            let damaged = store.verify()?;
            if damaged.is_empty() {
                let n = store.list(&RunFilter {
                    include_dirty: true,
                    ..RunFilter::default()
                })?;
                println!("{}: {} runs, all intact", path.display(), n.len());
            } else {
                for d in &damaged {
                    println!(
                        "damaged: {}: {}",
                        terminal(&d.run.to_string()),
                        terminal(&d.problem.to_string())
                    );
                }
                bail!(crate::Error::Damaged {
                    path: path.clone(),
                    message: format!("{} damaged (listed above)", damaged.len()),
                });
            }
        }
        Action::Import { .. } | Action::Delete { .. } => unreachable!("handled above"),
    }
    Ok(ExitCode::SUCCESS)
}

fn delete(store: &mut SqliteStore, run_ids: &[String]) -> anyhow::Result<ExitCode> {
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
        bail!(crate::Error::Usage(format!(
            "no stored run with id {} in {}; nothing else was deleted",
            missing.join(", "),
            store.path().display()
        )));
    }
    for id in run_ids {
        store.delete(id)?;
    }
    println!("deleted {} runs", run_ids.len());
    Ok(ExitCode::SUCCESS)
}
