//! `cargo perfcheck profile`: CPU and heap profiles in passes of their own (no timings).

use std::process::ExitCode;

use crate::cli::args::{slowdown_from_env, Folders};
use crate::config::Profile;
use crate::harness::Harness;
use crate::profile::cpu::DEFAULT_FREQUENCY;
use crate::profile::growth::parse_bytes;
use crate::profile::pass::Runtime;
use crate::profile::{execute, ProfileRecord, ProfileRequest, WorkloadProfile, PASS_NOTE};
use crate::report::format::{bytes, group_digits};
use anyhow::Context;
use clap::Args;

#[derive(Args)]
pub struct ProfileArgs {
    /// Workload to profile (repeatable). Default: the profile's list, else every workload of
    /// the harness.
    #[arg(long = "workload", short = 'w', value_name = "W")]
    workloads: Vec<String>,
    /// Profile name (profiles/<NAME>.toml or built in) or path to a .toml file.
    #[arg(long, short = 'p', value_name = "NAME", default_value = "quick")]
    profile: String,
    #[command(flatten)]
    folders: Folders,
    /// CPU pass only: cpu.folded, cpu-stages.json, flamegraph.svg, profile.pb.gz. (Neither
    /// --cpu nor --heap: both.)
    #[arg(long)]
    cpu: bool,
    /// Heap passes only: dhat-heap.json, heatmap.svg/png/json, growth.json.
    #[arg(long)]
    heap: bool,
    /// Measure the CPU profiler's overhead (A/B interleaved) and the counting allocator
    /// against the system allocator; alone, it runs no profiling passes.
    #[arg(long)]
    overhead: bool,
    /// CPU sampling rate in Hz (1 to 1000; above the kernel tick, often 250 Hz, fewer
    /// samples arrive than asked).
    #[arg(long, value_name = "HZ", default_value_t = DEFAULT_FREQUENCY)]
    frequency: u32,
    /// Drop CPU samples that land in libc (malloc, memcpy) instead of unwinding from them;
    /// always on with glibc older than 2.35, where that unwinding can deadlock.
    #[arg(long)]
    block_libc: bool,
    /// Measured operations per pass (default: the profile's count; consolidation: batches).
    #[arg(long, value_name = "N")]
    ops: Option<u64>,
    /// Run the operations in a task on a tokio multi-thread runtime (2 workers).
    #[arg(long)]
    tokio: bool,
    /// Live-heap growth per 1,000 operations above which the growth check flags a workload.
    #[arg(long, value_name = "BYTES", default_value = "64KiB")]
    growth_threshold: String,
    /// Exit with code 1 when the growth check flags a workload.
    #[arg(long)]
    fail_on_growth: bool,
    /// Blocks of operations in the overhead measurement (a multiple of 4, at least 4).
    #[arg(long, value_name = "N", default_value_t = 40)]
    overhead_blocks: u64,
    /// Print only the summaries, no progress lines.
    #[arg(long, short = 'q')]
    quiet: bool,
}

/// Runs the `profile` subcommand.
pub fn run(a: ProfileArgs, harness: &Harness) -> anyhow::Result<ExitCode> {
    let profile = Profile::load(&a.profile, &a.folders.profiles_dir, harness.profiles())?;
    let growth_threshold = parse_bytes("--growth-threshold", &a.growth_threshold)?;
    if a.overhead_blocks < 4 {
        return Err(crate::Error::Usage(format!(
            "--overhead-blocks {}: expected at least 4 (blocks alternate off, on, on, off)",
            a.overhead_blocks
        ))
        .into());
    }
    let slowdown = slowdown_from_env()?;
    let neither = !a.cpu && !a.heap;
    let req = ProfileRequest {
        profile,
        workloads: a.workloads,
        cpu: a.cpu || (neither && !a.overhead),
        heap: a.heap || (neither && !a.overhead),
        overhead: a.overhead,
        frequency: a.frequency,
        block_libc: a.block_libc,
        ops: a.ops,
        runtime: if a.tokio {
            Runtime::Tokio { workers: 2 }
        } else {
            Runtime::Thread
        },
        growth_threshold,
        overhead_blocks: a.overhead_blocks,
        reports_dir: a.folders.reports_dir,
        repo_dir: std::env::current_dir().context("cannot read the current directory")?,
        slowdown,
    };
    let mut log = crate::cli::progress::logger(a.quiet);
    let (record, dir) = execute(&req, harness, &mut log)?;
    print!("{}", summary(&record));
    println!();
    println!("profile record: {}", dir.join("profile.json").display());
    let flagged = record
        .workloads
        .iter()
        .any(|w| w.growth.as_ref().is_some_and(|g| g.flagged));
    Ok(if flagged && a.fail_on_growth {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn summary(r: &ProfileRecord) -> String {
    let commit = crate::cli::run_cmd::commit_label(r.git.as_ref());
    let mut out = format!(
        "perfcheck profile {} | profile {} | commit {} | {} | {}\nnote: {PASS_NOTE}\n",
        r.run_id,
        r.profile,
        commit,
        r.runtime,
        r.machine.key()
    );
    if let Some(s) = &r.slowdown {
        out.push_str(&format!(
            "warning: PERFCHECK_SLOW_STAGE={s} is set: stage {s} was slowed on purpose\n"
        ));
    }
    for w in &r.workloads {
        out.push('\n');
        out.push_str(&workload_summary(w));
    }
    if let Some(c) = &r.sample_cost {
        out.push_str(&format!(
            "\nCPU sample cost: {:.1} µs per sample at a {}-frame stack (median of {} self-sent signals, {} recorded) = {:.2}% overhead at {} Hz (target <= 1%)\n",
            c.us_per_sample,
            c.stack_depth,
            group_digits(c.signals),
            group_digits(c.samples),
            c.overhead_at_default * 100.0,
            DEFAULT_FREQUENCY
        ));
    }
    if let Some(a) = &r.alloc_overhead {
        out.push_str(&format!(
            "\nallocator overhead (alloc+free of 16 B to 1 KiB): counting {:.1} ns vs system {:.1} ns = {:.2}x in a generic loop (like benches/recorder.rs; target <= 1.2x), \
             {:.1} ns vs {:.1} ns = {:.2}x when every call pays the counters\n",
            a.counting_ns, a.system_ns, a.ratio, a.counting_call_ns, a.system_call_ns, a.call_ratio
        ));
    }
    out
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn workload_summary(w: &WorkloadProfile) -> String {
    let mut out = String::new();
    let name = w.workload.as_str();
    if let Some(c) = &w.cpu {
        out.push_str(&format!(
            "{name} | CPU pass (pprof {} Hz, {} ops): {} samples, {:.1}/s of CPU time, {} of process CPU time covered\n",
            c.frequency_hz,
            group_digits(c.ops),
            group_digits(c.samples),
            c.samples_per_cpu_second,
            pct(c.coverage)
        ));
        let width = c
            .stages
            .iter()
            .map(|s| s.stage.len())
            .max()
            .unwrap_or(5)
            .max(5);
        out.push_str(&format!(
            "  {:<width$}  {:>8}  {:>6}\n",
            "stage", "samples", "share"
        ));
        for s in &c.stages {
            out.push_str(&format!(
                "  {:<width$}  {:>8}  {:>6}\n",
                s.stage,
                group_digits(s.samples),
                pct(s.share)
            ));
        }
        for warning in &c.warnings {
            out.push_str(&format!("  warning: {warning}\n"));
        }
    }
    if let Some(d) = &w.dhat {
        out.push_str(&format!(
            "{name} | DHAT pass: total {} in {} blocks | peak {} in {} blocks | at end {} in {} blocks\n",
            bytes(d.total_bytes as f64),
            group_digits(d.total_blocks),
            bytes(d.peak_bytes as f64),
            group_digits(d.peak_blocks),
            bytes(d.end_bytes as f64),
            group_digits(d.end_blocks)
        ));
    }
    if let Some(rows) = &w.heap_rows {
        out.push_str(&format!(
            "{name} | heatmap pass: peak live heap by stage and component\n"
        ));
        let width = rows.iter().map(|r| r.row.len()).max().unwrap_or(5).max(5);
        out.push_str(&format!(
            "  {:<width$}  {:>10}  {:>10}\n",
            "row", "peak live", "allocated"
        ));
        for r in rows {
            out.push_str(&format!(
                "  {:<width$}  {:>10}  {:>10}\n",
                r.row,
                bytes(r.peak_live_bytes as f64),
                bytes(r.allocated_bytes as f64)
            ));
        }
    }
    if let Some(g) = &w.growth {
        out.push_str(&format!("  {}\n", g.line()));
    }
    if let Some(o) = &w.overhead {
        out.push_str(&format!(
            "{name} | CPU profiler overhead at {} Hz, {} interleaved blocks of {} ops:\n\
             \x20 wall profiled/unprofiled {:.4} (median of pairs {:.4}, 95% CI {:.4}..{:.4}; target <= 1.01)\n\
             \x20 process CPU profiled/unprofiled {:.4}, {:.1} µs of CPU per sample\n\
             \x20 {} samples, {:.1}/s of CPU time, {} of CPU time covered (target >= 95%)\n",
            o.frequency_hz,
            o.blocks.len(),
            group_digits(o.block_ops),
            o.wall_ratio,
            o.median_pair_ratio,
            o.ratio_ci95.0,
            o.ratio_ci95.1,
            o.cpu_ratio,
            o.cpu_us_per_sample,
            group_digits(o.samples),
            o.samples_per_cpu_second,
            pct(o.coverage),
        ));
    }
    out.push_str(&format!("  files: {}\n", w.dir.display()));
    out
}
