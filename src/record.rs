//! The run record: everything one `cargo perfcheck run` measured, as versioned JSON.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::Profile;
use crate::error::Error;
use crate::git::GitInfo;
use crate::machine::Machine;

/// Version of the run record layout; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// One run of one or more workloads under one profile.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunRecord {
    /// Layout version ([`SCHEMA_VERSION`] when written by this build).
    pub schema: u32,
    /// Unique id, also the folder name under `reports/`.
    pub run_id: String,
    /// UTC time the run started, RFC 3339.
    pub created_at: String,
    /// perfcheck's version.
    pub tool_version: String,
    /// The commit measured; `None` outside a git repository.
    pub git: Option<GitInfo>,
    /// Where it ran.
    pub machine: Machine,
    /// The profile as it was used (all defaults filled in).
    pub profile: Profile,
    /// Whether allocation counts are real (the counting allocator was installed).
    pub counting_allocator: bool,
    /// Test knob in effect, if any (`stage:percent`); such a run is not a fair measurement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slowdown: Option<String>,
    /// Results per workload, in the order run.
    pub workloads: Vec<WorkloadResult>,
    /// Single-value metrics beyond the per-stage ones, by full metric name (e.g.
    /// `load/total/error_rate`); absent in older records.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub extra_metrics: std::collections::BTreeMap<String, f64>,
}

impl RunRecord {
    /// A record made by this process: schema, tool version, machine fingerprint and allocator
    /// state filled in from here.
    pub fn new(
        run_id: String,
        created_at: String,
        git: Option<GitInfo>,
        profile: Profile,
        slowdown: Option<String>,
        workloads: Vec<WorkloadResult>,
        extra_metrics: std::collections::BTreeMap<String, f64>,
    ) -> RunRecord {
        RunRecord {
            schema: SCHEMA_VERSION,
            run_id,
            created_at,
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
            git,
            machine: Machine::current(),
            profile,
            counting_allocator: crate::stage::counting_allocator_installed(),
            slowdown,
            workloads,
            extra_metrics,
        }
    }
}

/// What one workload measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WorkloadResult {
    /// Which workload (its registered name).
    pub workload: String,
    /// Measured operations (wall-time statistics use the ones not CPU-sampled).
    pub ops: u64,
    /// Operations run before measuring.
    pub warmup_ops: u64,
    /// Operations that read thread CPU time at every stage boundary.
    pub cpu_sampled_ops: u64,
    /// Wall time of the measured operations, end to end.
    pub elapsed_ns: u64,
    /// Measured operations per second on one thread.
    pub throughput_ops: f64,
    /// Recall cache hits and misses during the measured operations, if recall ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheCounts>,
    /// Result quality measured after the timed operations (not timed itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<Quality>,
    /// Operations of each kind (the `mixed` workload runs several).
    pub op_counts: std::collections::BTreeMap<String, u64>,
    /// Per-stage summaries; `total` is the whole operation, `other` the time outside stages.
    pub stages: Vec<StageSummary>,
    /// Raw per-operation samples, so later statistics can be recomputed from them.
    pub samples: Vec<StageSamples>,
    /// Instruction counts from the instructions pass (`run --instructions`), if it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<InstructionCounts>,
}

/// What the instructions pass counted for one workload: a process of its own under
/// `valgrind --tool=callgrind`, counting only the measured operations.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InstructionCounts {
    /// Measured operations counted.
    pub ops: u64,
    /// The counting tool and its version (`callgrind-3.19.0`).
    pub tool: String,
    /// Whether callgrind simulated the caches (then `est_cycles` are filled in).
    pub cache_sim: bool,
    /// Per stage (`total` and `other` included): self counts per operation, children excluded.
    pub stages: Vec<StageInstructions>,
    /// Per stage, the functions that cost most, inclusive, per operation: what attribution
    /// compares.
    pub functions: Vec<FunctionCost>,
    /// Call paths (`a;b;c`) with their instructions over all counted operations, estimated
    /// from caller-callee pairs; for differential flamegraphs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stacks: Vec<(String, u64)>,
    /// Wall time of the whole pass under valgrind (corpus load included), in milliseconds:
    /// what the pass costs a check, not a measure of the code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_ms: Option<u64>,
}

/// Counts of one stage: one entry per counted operation in which the stage ran.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageInstructions {
    /// Stage name.
    pub stage: String,
    /// Instructions executed per operation (self: nested stages excluded).
    pub instructions: Vec<u64>,
    /// Estimated cycles per operation, aligned with `instructions`; empty without cache
    /// simulation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub est_cycles: Vec<u64>,
}

/// One function's instructions per counted operation, within one stage's own code.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionCost {
    /// The stage whose instructions these are (nested stages' are theirs; `other` is outside
    /// every stage).
    pub stage: String,
    /// Demangled name, as callgrind reports it (`agent_memory::index::IvfIndex::search`).
    pub function: String,
    /// Source file of its code, when debug information names it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub file: String,
    /// Instructions per operation of the stage in the function and everything it calls
    /// (operations in which the stage ran).
    pub inclusive: f64,
    /// Instructions per operation of the stage in the function's own code.
    pub own: f64,
}

impl InstructionCounts {
    /// The counts of one stage (`total` for the whole operation).
    pub fn stage(&self, name: &str) -> Option<&StageInstructions> {
        self.stages.iter().find(|s| s.stage == name)
    }
}

/// How good a workload's answers were, measured after its timed operations. The named fields
/// are the engine's (records of every version carry them); any workload can report its own
/// measures in `measures`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Quality {
    /// Share of queries whose relevant event is in the top `k` (recall workload).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recall_at_k: Option<f64>,
    /// The `k` of `recall_at_k`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<usize>,
    /// Share of the exact top-10 neighbours that the approximate index also returns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ann_recall_at_10: Option<f64>,
    /// Share of events in facts that belong to their fact's planted topic (consolidation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purity: Option<f64>,
    /// A workload's own quality measures by name (`accuracy`, `f1`), printed in its heading.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub measures: std::collections::BTreeMap<String, f64>,
}

/// Recall cache counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheCounts {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that ran the recall pipeline.
    pub misses: u64,
}

/// Summary statistics of one stage over the measured operations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageSummary {
    /// Stage name (`total` and `other` included).
    pub stage: String,
    /// Operations in which the stage ran (wall-time samples).
    pub ops: u64,
    /// Mean wall time per operation in which it ran.
    pub mean_ns: f64,
    /// Median wall time.
    pub p50_ns: u64,
    /// 95th percentile wall time.
    pub p95_ns: u64,
    /// 99th percentile wall time.
    pub p99_ns: u64,
    /// Slowest.
    pub max_ns: u64,
    /// Mean thread CPU time, from the CPU-sampled operations; `None` without such operations.
    pub cpu_mean_ns: Option<f64>,
    /// Allocations per operation in which it ran.
    pub allocs_per_op: f64,
    /// Bytes allocated per operation in which it ran.
    pub bytes_per_op: f64,
    /// Highest live-heap growth seen inside the stage.
    pub peak_live_bytes: u64,
    /// Share of all operations' wall time spent in this stage (0..=1).
    pub share: f64,
}

/// Raw samples of one stage: one entry per measured operation in which it ran.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageSamples {
    /// Stage name.
    pub stage: String,
    /// Wall ns per operation (operations not CPU-sampled).
    pub wall_ns: Vec<u64>,
    /// Allocations per operation, aligned with `wall_ns`.
    pub allocs: Vec<u64>,
    /// Bytes allocated per operation, aligned with `wall_ns`.
    pub alloc_bytes: Vec<u64>,
    /// Thread CPU ns per CPU-sampled operation.
    pub cpu_ns: Vec<u64>,
}

impl RunRecord {
    /// Writes the record as compact JSON to `path` (atomically: temp file, then rename).
    pub fn write(&self, path: &Path) -> Result<(), Error> {
        let json = serde_json::to_vec(self).map_err(|e| Error::Json {
            context: format!("cannot encode run record for {}", path.display()),
            source: e,
        })?;
        crate::files::write_atomic(path, &json).map_err(|e| Error::Io {
            context: format!("cannot write {}", path.display()),
            source: e,
        })
    }

    /// Reads a run record file, refusing layouts this build does not understand.
    pub fn read(path: &Path) -> Result<RunRecord, Error> {
        let bytes = std::fs::read(path).map_err(|e| Error::Io {
            context: format!("cannot read run record {}", path.display()),
            source: e,
        })?;
        RunRecord::from_json(&bytes, &path.display().to_string())
    }

    /// Decodes a run record; `origin` names where it came from in errors.
    pub fn from_json(bytes: &[u8], origin: &str) -> Result<RunRecord, Error> {
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| Error::Json {
            context: format!("{origin} is not a perfcheck run record"),
            source: e,
        })?;
        RunRecord::from_value(value, origin)
    }

    /// Decodes a run record from parsed JSON, checking its `schema` first.
    pub fn from_value(value: serde_json::Value, origin: &str) -> Result<RunRecord, Error> {
        let bad = |message: String| Error::Config {
            path: origin.into(),
            message,
        };
        match value.get("schema") {
            Some(v) if v.as_u64() == Some(u64::from(SCHEMA_VERSION)) => {}
            Some(serde_json::Value::Number(v)) => {
                return Err(bad(format!(
                    "run record schema {v} is not supported (this perfcheck reads schema {SCHEMA_VERSION})"
                )))
            }
            Some(other) => {
                return Err(bad(format!(
                    "`schema` must be a number (expected {SCHEMA_VERSION}), found {}",
                    json_kind(other)
                )))
            }
            None if !value.is_object() => {
                return Err(bad(format!(
                    "not a perfcheck run record: expected a JSON object, found {}",
                    json_kind(&value)
                )))
            }
            None => return Err(bad("not a perfcheck run record: no `schema` field".into())),
        }
        let record: RunRecord = serde_json::from_value(value).map_err(|e| Error::Json {
            context: format!("{origin} is not a valid run record"),
            source: e,
        })?;
        // The profile it carries is checked as a profile file would be: a value that cannot
        // be written back (an f32 weight of 1e308 reads as infinity) is refused here.
        record
            .profile
            .validate(Path::new(&format!("{origin} (its profile)")))?;
        Ok(record)
    }

    /// The result of one workload, if it ran.
    pub fn workload(&self, w: &str) -> Option<&WorkloadResult> {
        self.workloads.iter().find(|r| r.workload == w)
    }
}

/// "a string \"1\"", "an array", ...: what a JSON value is, for error messages.
fn json_kind(v: &serde_json::Value) -> String {
    use serde_json::Value as V;
    match v {
        V::Null => "null".into(),
        V::Bool(b) => format!("the boolean {b}"),
        V::Number(n) => format!("the number {n}"),
        V::String(s) => {
            let short: String = s.chars().take(20).collect();
            format!("the string {short:?}")
        }
        V::Array(_) => "an array".into(),
        V::Object(_) => "an object".into(),
    }
}

impl WorkloadResult {
    /// The summary of one stage (`total` for the whole operation).
    pub fn stage(&self, name: &str) -> Option<&StageSummary> {
        self.stages.iter().find(|s| s.stage == name)
    }
}

/// Row name of the whole operation.
pub const TOTAL: &str = "total";
/// Row name of the time and allocations inside an operation but outside every named stage.
pub const OTHER: &str = "other";

/// Nearest-rank percentile of sorted samples (0 when empty): how a record's summaries and the
/// metrics recomputed from its samples agree.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
