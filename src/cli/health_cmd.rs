//! `cargo perfcheck health --store-dir DIR`: the harness's check of a stored system.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::harness::Harness;
use crate::report::escape;

/// Arguments of `health`.
#[derive(Args)]
pub struct HealthArgs {
    /// Folder holding the stored system (for the engine: the folder of `engine.sqlite`, or
    /// the database file itself).
    #[arg(long, value_name = "DIR")]
    store_dir: PathBuf,
    /// Print the target's full report as JSON instead of the summary.
    #[arg(long)]
    json: bool,
}

/// Runs the `health` subcommand: exit 0 when healthy, 1 with problems, 2 on bad input.
pub fn run(a: HealthArgs, harness: &Harness) -> anyhow::Result<ExitCode> {
    let Some(check) = harness.get_health_check() else {
        anyhow::bail!(crate::Error::Usage(
            "this harness registers no health check: add one with \
             `Harness::health_check(...)` in the harness's main"
                .into()
        ));
    };
    if !a.store_dir.exists() {
        anyhow::bail!(crate::Error::Usage(format!(
            "--store-dir {}: no such file or folder",
            a.store_dir.display()
        )));
    }
    let h = check
        .check(&a.store_dir)
        .map_err(|e| crate::Error::Usage(format!("--store-dir {}: {e}", a.store_dir.display())))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&h.detail)?);
    } else {
        println!("{}", escape::terminal(&h.checked));
        let width = h.facts.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (k, v) in &h.facts {
            println!("  {:<width$}  {}", escape::terminal(k), escape::terminal(v));
        }
        if h.ok() {
            println!("healthy");
        } else {
            println!("{} problem(s):", h.problems.len());
            for p in &h.problems {
                println!("  - {}", escape::terminal(p));
            }
        }
    }
    Ok(if h.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
