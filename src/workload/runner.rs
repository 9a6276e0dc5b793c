//! The timing pass: runs one workload on a fresh setup and measures every operation with the
//! recorder.

use std::collections::BTreeMap;

use crate::config::Profile;
use crate::error::Error;
use crate::harness::{Configured, Gap, PassMode, SetupContext};
use crate::record::{CacheCounts, WorkloadResult};
use crate::stage::{begin_operation, now_raw, raw_delta_ns};
use crate::workload::summary::Collector;

/// A fresh empty directory for one pass's files.
pub fn pass_dir() -> Result<tempfile::TempDir, Error> {
    tempfile::Builder::new()
        .prefix("perfcheck-pass-")
        .tempdir()
        .map_err(|e| Error::Io {
            context: "cannot create a temporary directory for the workload's files".into(),
            source: e,
        })
}

/// Runs `workload` on a fresh setup and returns its measurements. `log` receives one line
/// per phase, for progress output.
pub fn run_workload(
    workload: &dyn Configured,
    profile: &Profile,
    log: &mut dyn FnMut(&str),
) -> Result<WorkloadResult, Error> {
    let name = workload.name().to_owned();
    let dir = pass_dir()?;
    if let Some(note) = workload.setup_note() {
        log(&format!("{name}: {note}"));
    }
    let mut session = workload.setup(&SetupContext {
        dir: dir.path(),
        mode: PassMode::Timing,
    })?;
    let counts = workload.op_counts(&profile.run);
    let (warmup, ops) = (counts.warmup, counts.measured);
    log(&format!(
        "{name}: {warmup} warm-up + {ops} measured operations"
    ));
    for i in 0..warmup {
        session.prepare()?;
        session.execute()?;
        session.between_ops(Gap::WarmUp(i + 1))?;
    }
    session.between_ops(Gap::Start)?;

    let every = profile.run.cpu_sample_every;
    let cpu_ops = ops.checked_div(every).unwrap_or(0);
    let before = session.cache_counts();
    let mut collector = Collector::default();
    let mut op_counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut elapsed_ns = 0u64;
    for i in 0..ops + cpu_ops {
        // Every `every`-th slot is a CPU-sampled extra operation.
        let cpu_sampled = every > 0 && i % (every + 1) == every && i / (every + 1) < cpu_ops;
        let kind = session.prepare()?;
        let start = now_raw();
        let op = begin_operation(cpu_sampled);
        session.execute()?;
        let sample = op.finish();
        elapsed_ns += raw_delta_ns(start, now_raw());
        collector.push(&sample);
        *op_counts.entry(kind.to_owned()).or_default() += 1;
        session.between_ops(Gap::Measured(i + 1))?;
    }
    let after = session.cache_counts();
    let quality = session.quality()?;
    let cache = match (before, after) {
        (Some(b), Some(a)) if a.hits + a.misses > b.hits + b.misses => Some(CacheCounts {
            hits: a.hits.saturating_sub(b.hits),
            misses: a.misses.saturating_sub(b.misses),
        }),
        _ => None,
    };
    drop(session);
    drop(dir);
    let (stages, samples) = collector.finish();
    let measured = ops + cpu_ops;
    Ok(WorkloadResult {
        workload: name,
        ops: measured,
        warmup_ops: warmup,
        cpu_sampled_ops: cpu_ops,
        elapsed_ns,
        throughput_ops: if elapsed_ns > 0 {
            measured as f64 * 1e9 / elapsed_ns as f64
        } else {
            0.0
        },
        cache,
        quality,
        op_counts,
        stages,
        samples,
        instructions: None,
    })
}
