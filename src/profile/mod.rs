//! `cargo perfcheck profile`: CPU and heap profiles of the workloads, in passes of their own.
//!
//! Nothing here is timed: profilers distort time (docs/ARCHITECTURE.md), so per-stage wall and CPU times
//! come from `cargo perfcheck run`. Each workload gets up to three passes, each on a fresh
//! engine with the corpus loaded:
//!
//! | pass | instrument | output in `reports/<run>/<workload>/` |
//! |---|---|---|
//! | CPU ([`cpu`]) | pprof-rs sampling, measured operations only | `cpu.folded`, `cpu-stages.json`, `flamegraph.svg`, `profile.pb.gz` |
//! | DHAT ([`heap`]) | dhat-rs, setup to engine drop | `dhat-heap.json` |
//! | heatmap ([`heatmap`], [`growth`]) | stage-attributing allocator + sampler thread | `heatmap.{svg,png,json}`, `growth.json` |
//!
//! `--overhead` measures what the CPU profiler and the counting allocator cost ([`overhead`]).
//! Everything is summarised in `reports/<run>/profile.json`.

pub mod cpu;
pub mod flamegraph;
pub mod growth;
pub mod heap;
pub mod heatmap;
pub mod instructions;
pub mod overhead;
pub mod pass;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::config::Profile;
use crate::error::Error;
use crate::git::GitInfo;
use crate::harness::{Configured, Harness};
use crate::machine::Machine;
use crate::report::format::group_digits;
use crate::stage;

use self::cpu::{CpuSampler, CpuSummary, CpuWindow, StageFrames};
use self::flamegraph::FlameLabels;
use self::growth::GrowthReport;
use self::heap::{DhatHooks, DhatSummary};
use self::heatmap::{HeatmapGrid, HeatmapHooks, MAX_COLUMNS};
use self::overhead::{AllocOverhead, CpuOverhead, SampleCost};
use self::pass::{drive, PassSpec, Runtime};

/// Layout version of `profile.json`.
pub const PROFILE_SCHEMA_VERSION: u32 = 1;

/// What to profile.
#[derive(Clone, Debug)]
pub struct ProfileRequest {
    /// The profile (sizes, counts, engine settings).
    pub profile: Profile,
    /// Workloads; empty means the profile's list (else every registered one).
    pub workloads: Vec<String>,
    /// Run the CPU pass.
    pub cpu: bool,
    /// Run the DHAT and heatmap passes.
    pub heap: bool,
    /// Measure the profilers' overhead instead of (or besides) profiling.
    pub overhead: bool,
    /// CPU sampling frequency, Hz.
    pub frequency: u32,
    /// Drop CPU samples inside libc even where unwinding from it is safe (see [`cpu`]).
    pub block_libc: bool,
    /// Measured operations per pass; `None` = the profile's count.
    pub ops: Option<u64>,
    /// Thread or tokio runtime for the operations.
    pub runtime: Runtime,
    /// Growth above this many bytes per 1,000 operations is flagged.
    pub growth_threshold: u64,
    /// Blocks of the A/B overhead measurement (rounded down to a multiple of 4).
    pub overhead_blocks: u64,
    /// Folder that receives `<run-id>/`.
    pub reports_dir: PathBuf,
    /// Directory whose git repository identifies the commit.
    pub repo_dir: PathBuf,
    /// Test knob: slow one stage by a percentage (see [`stage::set_slowdown`]).
    pub slowdown: Option<(String, u32)>,
}

/// Per-row numbers of the heatmap pass.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct HeapRow {
    /// Stage or component.
    pub row: String,
    /// Highest live bytes over the pass.
    pub peak_live_bytes: u64,
    /// Bytes allocated over the pass.
    pub allocated_bytes: u64,
}

/// Everything profiled for one workload.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WorkloadProfile {
    /// The workload's name.
    pub workload: String,
    /// Folder with its files.
    pub dir: PathBuf,
    /// Stages its measured operations entered.
    pub stages: Vec<String>,
    /// CPU pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuSummary>,
    /// DHAT pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dhat: Option<DhatSummary>,
    /// Heatmap pass, rows by peak live bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heap_rows: Option<Vec<HeapRow>>,
    /// Growth check of the heatmap pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub growth: Option<GrowthReport>,
    /// CPU profiler overhead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overhead: Option<CpuOverhead>,
}

/// `profile.json`: what one `cargo perfcheck profile` produced.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProfileRecord {
    /// Layout version ([`PROFILE_SCHEMA_VERSION`]).
    pub schema: u32,
    /// Folder name under the reports folder.
    pub run_id: String,
    /// UTC start, RFC 3339.
    pub created_at: String,
    /// perfcheck's version.
    pub tool_version: String,
    /// The commit profiled.
    pub git: Option<GitInfo>,
    /// Where it ran.
    pub machine: Machine,
    /// Profile name.
    pub profile: String,
    /// CPU sampling frequency, Hz.
    pub frequency_hz: u32,
    /// `thread` or `tokio`.
    pub runtime: String,
    /// Test knob in effect, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slowdown: Option<String>,
    /// Which numbers came from which pass.
    pub note: String,
    /// Per workload.
    pub workloads: Vec<WorkloadProfile>,
    /// Counting allocator vs System, when `--overhead` ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alloc_overhead: Option<AllocOverhead>,
    /// Cost of one CPU sample on a fixed spin loop, when `--overhead` ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_cost: Option<SampleCost>,
}

/// Where every number comes from; printed and stored with the profile.
pub const PASS_NOTE: &str = "no timings: CPU shares come from pprof samples of the CPU pass, \
heap numbers from the DHAT and heatmap passes (each on a fresh engine); per-stage wall and CPU \
times come from `cargo perfcheck run`, which runs without profilers";

/// Profiles every requested workload and writes `reports/<run-id>/`. `log` gets progress lines.
pub fn execute(
    req: &ProfileRequest,
    harness: &Harness,
    log: &mut dyn FnMut(&str),
) -> Result<(ProfileRecord, PathBuf), Error> {
    cpu::check_frequency(req.frequency)?;
    if req.ops == Some(0) {
        return Err(Error::Usage(
            "--ops 0: expected at least 1 measured operation per pass".into(),
        ));
    }
    let workloads = harness.resolve(&req.profile, &req.workloads)?;
    let created_at = crate::run::now_rfc3339();
    let git = GitInfo::discover(&req.repo_dir);
    let (_, dir) = crate::run::create_run_dir(&req.reports_dir, &created_at, git.as_ref())?;
    let commit = match &git {
        Some(g) => format!("{}{}", g.short(), if g.dirty { " (dirty)" } else { "" }),
        None => "(no git repository)".into(),
    };
    log(&format!("profile {}", req.profile.name));
    let knob = stage::slowdown_scope(req.slowdown.as_ref().map(|(s, p)| (s.as_str(), *p)));
    let result = profile_all(req, &workloads, &dir, &commit, log);
    drop(knob);
    let profiles = result?;
    let alloc_overhead = req.overhead.then(|| {
        log("allocator: counting vs system, 15 interleaved rounds of 100,000 alloc+free pairs");
        overhead::alloc_overhead(15)
    });
    let sample_cost = if req.overhead {
        log("CPU sample cost: 20 rounds of 200 sampling signals at a 40-frame stack");
        overhead::sample_cost(40, 20, req.block_libc)?
    } else {
        None
    };
    let record = ProfileRecord {
        schema: PROFILE_SCHEMA_VERSION,
        run_id: dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned(),
        created_at,
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        git,
        machine: Machine::current(),
        profile: req.profile.name.clone(),
        frequency_hz: req.frequency,
        runtime: match req.runtime {
            Runtime::Thread => "thread".into(),
            Runtime::Tokio { workers } => format!("tokio ({workers} workers)"),
        },
        slowdown: req.slowdown.as_ref().map(|(s, p)| format!("{s}:{p}")),
        note: PASS_NOTE.into(),
        workloads: profiles,
        alloc_overhead,
        sample_cost,
    };
    write_json(&dir.join("profile.json"), &record)?;
    Ok((record, dir))
}

fn profile_all(
    req: &ProfileRequest,
    workloads: &[Arc<dyn Configured>],
    dir: &Path,
    commit: &str,
    log: &mut dyn FnMut(&str),
) -> Result<Vec<WorkloadProfile>, Error> {
    let mut out = Vec::with_capacity(workloads.len());
    for configured in workloads {
        let w = configured.name().to_owned();
        let wdir = dir.join(&w);
        std::fs::create_dir_all(&wdir).map_err(|e| Error::Io {
            context: format!("cannot create {}", wdir.display()),
            source: e,
        })?;
        if let Some(note) = configured.setup_note() {
            log(&format!("{w}: {note}"));
        }
        let spec = PassSpec::new(Arc::clone(configured), &req.profile, req.ops, req.runtime);
        let mut wp = WorkloadProfile {
            workload: w.clone(),
            dir: wdir.clone(),
            stages: Vec::new(),
            cpu: None,
            dhat: None,
            heap_rows: None,
            growth: None,
            overhead: None,
        };
        if req.cpu {
            log(&format!(
                "{w}: CPU pass, {} measured operations sampled at {} Hz",
                group_digits(spec.ops),
                req.frequency
            ));
            let (summary, stages) = cpu_pass(req, &spec, &wdir, commit)?;
            wp.stages = stages;
            wp.cpu = Some(summary);
        }
        if req.heap {
            log(&format!(
                "{w}: DHAT pass (every allocation with its backtrace; slow)"
            ));
            let hooks = DhatHooks::new(&wdir.join("dhat-heap.json"));
            let (_, hooks) = drive(&spec, hooks)?;
            wp.dhat = Some(hooks.finish()?);

            log(&format!(
                "{w}: heatmap pass, live heap per stage sampled every {} ms",
                heatmap::SAMPLE_PERIOD.as_millis()
            ));
            let (outcome, hooks) = drive(&spec, HeatmapHooks::new())?;
            let timeline = hooks.finish()?;
            let title = format!(
                "{w}: heap by stage | commit {commit} | profile {} | {} measured ops",
                req.profile.name,
                group_digits(spec.ops)
            );
            let grid = HeatmapGrid::new(&timeline, &title, &outcome.stages, MAX_COLUMNS);
            grid.write(&wdir)?;
            let growth = GrowthReport::new(
                &timeline.growth_samples,
                heatmap::GROWTH_EVERY,
                req.growth_threshold,
            );
            write_json(&wdir.join("growth.json"), &growth)?;
            let mut rows: Vec<HeapRow> = grid
                .rows
                .iter()
                .zip(grid.row_peak.iter().zip(&grid.row_allocated))
                .map(|(r, (&p, &a))| HeapRow {
                    row: r.clone(),
                    peak_live_bytes: p,
                    allocated_bytes: a,
                })
                .collect();
            rows.sort_by_key(|r| std::cmp::Reverse(r.peak_live_bytes));
            wp.heap_rows = Some(rows);
            wp.growth = Some(growth);
            if wp.stages.is_empty() {
                wp.stages = outcome.stages.iter().map(|s| s.to_string()).collect();
            }
        }
        if req.overhead {
            log(&format!(
                "{w}: CPU profiler overhead, {} operations in {} interleaved blocks (off, on, on, off, ...)",
                group_digits(spec.ops),
                req.overhead_blocks
            ));
            let o =
                overhead::cpu_overhead(&spec, req.frequency, req.overhead_blocks, req.block_libc)?;
            write_json(&wdir.join("overhead.json"), &o)?;
            wp.overhead = Some(o);
        }
        out.push(wp);
    }
    Ok(out)
}

fn cpu_pass(
    req: &ProfileRequest,
    spec: &PassSpec,
    wdir: &Path,
    commit: &str,
) -> Result<(CpuSummary, Vec<String>), Error> {
    let sampler = CpuSampler::install(req.frequency, req.block_libc)?;
    let (outcome, window) = drive(spec, CpuWindow::new(req.frequency))?;
    let stages = StageFrames::new(&outcome.stages, &stage::stage_sites());
    let p = sampler.finish(&window, &stages)?;
    let summary = CpuSummary::new(&p, outcome.ops, &stages);
    let folded = p.folded();
    write_file(&wdir.join("cpu.folded"), folded.as_bytes())?;
    write_json(&wdir.join("cpu-stages.json"), &summary)?;
    let runtime = match req.runtime {
        Runtime::Thread => "1 thread".to_owned(),
        Runtime::Tokio { workers } => format!("a tokio runtime with {workers} workers"),
    };
    let labels = FlameLabels {
        workload: spec.name(),
        commit,
        samples: p.samples,
        frequency: req.frequency,
        subtitle: format!(
            "profile {} | {} measured ops on {runtime} | blue frames are pipeline stages | not timed: wall times come from cargo perfcheck run",
            req.profile.name,
            group_digits(outcome.ops)
        ),
    };
    flamegraph::write_svg(&folded, &labels, &stages, &wdir.join("flamegraph.svg"))?;
    p.write_pprof(
        &wdir.join("profile.pb.gz"),
        window.started.unwrap_or_else(SystemTime::now),
    )?;
    Ok((summary, stages.stages().map(str::to_owned).collect()))
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    std::fs::write(path, bytes).map_err(|e| Error::Io {
        context: format!("cannot write {}", path.display()),
        source: e,
    })
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), Error> {
    let json = serde_json::to_vec_pretty(value).map_err(|e| Error::Json {
        context: format!("cannot encode {}", path.display()),
        source: e,
    })?;
    write_file(path, &json)
}
