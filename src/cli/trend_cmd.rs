//! `cargo perfcheck trend`: metrics across the commits that have baselines, as charts.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::baseline::sqlite::SqliteStore;
use crate::git::{short_sha, Repo};
use crate::machine::Machine;
use crate::metrics::MetricName;
use crate::project::ProjectConfig;
use crate::report::check::{percent, value};
use crate::report::escape;
use crate::report::trend_chart::render;
use crate::trend::{trend, TrendQuery, TrendSeries};
use anyhow::Context;
use clap::Args;

/// Arguments of `trend`.
#[derive(Args)]
pub struct TrendArgs {
    /// Metric to chart, `workload/stage/measure` (repeatable), e.g. recall/total/p99_ns.
    #[arg(long = "metric", short = 'm', value_name = "M", required = true, value_parser = parse_metric)]
    metrics: Vec<MetricName>,
    /// Only the newest N commits that have runs.
    #[arg(long, value_name = "N", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..))]
    last: u32,
    /// Profile of the runs [default: `check.profile` of perfcheck.toml, else quick].
    #[arg(long, short = 'p', value_name = "NAME")]
    profile: Option<String>,
    /// Baseline store file (default: $PERFCHECK_STORE, perfcheck.toml, baselines/perfcheck.sqlite).
    #[arg(long, value_name = "FILE")]
    store: Option<PathBuf>,
    /// Folder that receives the charts (in a `trend-<time>` sub-folder).
    #[arg(long, value_name = "DIR", default_value = "reports")]
    reports_dir: PathBuf,
    /// Print each metric's change points (steps in its level along the history).
    #[arg(long)]
    change_points: bool,
}

fn parse_metric(s: &str) -> Result<MetricName, String> {
    MetricName::parse(s).map_err(|e| e.to_string())
}

/// Runs the `trend` subcommand.
pub fn run(a: TrendArgs) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let project = ProjectConfig::load(&cwd)?;
    let store = SqliteStore::open_read(&project.store_path(a.store.as_deref()))?;
    let Some(repo) = Repo::discover(&cwd) else {
        anyhow::bail!(crate::Error::Usage(
            "trend needs a git repository: it follows the first-parent history".into()
        ));
    };
    let Some(head) = repo.info() else {
        anyhow::bail!(crate::Error::Usage(
            "trend needs at least one commit".into()
        ));
    };
    let profile = a.profile.unwrap_or_else(|| project.check.profile.clone());
    let machine = Machine::current();
    let machine_key = machine.key();
    let series = trend(
        &store,
        &repo,
        &TrendQuery {
            head: &head.commit,
            profile: &profile,
            machine_key: &machine_key,
            metrics: &a.metrics,
            last: a.last as usize,
            thresholds: &project.thresholds,
            seed: project.check.seed,
        },
    )?;
    let stamp: String = crate::run::now_rfc3339()
        .chars()
        .filter(|c| c.is_ascii_digit())
        .collect();
    let dir = a.reports_dir.join(format!("trend-{stamp}"));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let subtitle = format!(
        "profile {profile}, {} x{}",
        machine.cpu_model, machine.cores
    );
    for s in &series {
        println!("{} over {} commits with runs", s.metric, s.points.len());
        if s.points.is_empty() {
            println!(
                "  no stored runs with profile {profile} on this machine along the first-parent history"
            );
            continue;
        }
        for p in &s.points {
            println!(
                "  {}  {:>10}  [{} .. {}]  {} run(s)  {}  {}",
                escape::terminal(short_sha(&p.commit)),
                value(s.unit, Some(p.value)),
                value(s.unit, Some(p.low)),
                value(s.unit, Some(p.high)),
                p.runs,
                p.status.as_deref().unwrap_or("-"),
                escape::terminal(p.summary.as_deref().unwrap_or(""))
            );
        }
        if a.change_points {
            print!("{}", change_point_table(s));
        }
        let (svg, png) = render(s, &subtitle, &dir)?;
        println!("  chart: {} and {}", svg.display(), png.display());
    }
    let json = serde_json::to_string_pretty(&series)?;
    std::fs::write(dir.join("trend.json"), json)?;
    Ok(ExitCode::SUCCESS)
}

/// A short table of a series' change points, or "no change points".
fn change_point_table(s: &TrendSeries) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if s.change_points.is_empty() {
        let _ = writeln!(out, "  no change points");
        return out;
    }
    let _ = writeln!(
        out,
        "  change points ({}% intervals, p from {} permutations):",
        crate::report::format::trim(100.0 * s.change_points[0].confidence),
        crate::trend::changepoint::PERMUTATIONS
    );
    for c in &s.change_points {
        let _ = writeln!(
            out,
            "    {}  {:>3} commits ago  {} -> {}  {} [{}, {}]  p={:.3}  {}",
            escape::terminal(&c.short),
            c.commits_ago,
            value(s.unit, Some(c.before)),
            value(s.unit, Some(c.after)),
            percent(c.step),
            percent(c.step_low),
            percent(c.step_high),
            c.p_value,
            escape::terminal(c.summary.as_deref().unwrap_or(""))
        );
    }
    out
}
