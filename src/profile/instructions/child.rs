//! The measured side of an instructions pass: runs inside `valgrind --tool=callgrind`, with
//! instrumentation switched on only for the measured operations.

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::Profile;
use crate::engine::corpus::Corpus;
use crate::error::Error;
use crate::profile::pass::{drive, PassHooks, PassSpec, Phase, Runtime};
use crate::stage::{self, callgrind};
use crate::workload::Workload;

/// Operations between the pass's WAL checkpoints (the timing pass checkpoints every 250 ms, a
/// few hundred to a few thousand operations).
const CHECKPOINT_EVERY_OPS: u64 = 100;

/// What the child reports on its standard output (one JSON line) for the parent to check the
/// counts against.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildReport {
    /// Measured operations run.
    pub ops: u64,
    /// Stages the measured operations entered, in order of first entry.
    pub stages: Vec<String>,
}

/// Corpus loading, engine setup and warm-up run uninstrumented (`--instr-atstart=no`, several
/// times faster); the measured operations run instrumented, each stage boundary ending a
/// callgrind segment; input preparation between operations is outside every segment.
struct CountHooks;

impl PassHooks for CountHooks {
    fn phase(&mut self, phase: Phase) {
        match phase {
            Phase::Measured => {
                callgrind::start_instrumentation();
                callgrind::zero_stats();
                stage::count_instructions(true);
            }
            Phase::Finished => {
                stage::count_instructions(false);
                callgrind::stop_instrumentation();
            }
            _ => {}
        }
    }
}

/// Runs `ops` measured operations of `workload` under the profile in `profile_json`, which
/// must be running under callgrind.
pub fn run(profile_json: &Path, workload: Workload, ops: u64) -> Result<ChildReport, Error> {
    if !callgrind::running_on_valgrind() {
        return Err(Error::Usage(
            "the instructions pass must run under `valgrind --tool=callgrind` (perfcheck starts \
             it so; use `run --instructions`)"
                .into(),
        ));
    }
    let text = std::fs::read(profile_json).map_err(|e| Error::Io {
        context: format!("cannot read {}", profile_json.display()),
        source: e,
    })?;
    let profile: Profile = serde_json::from_slice(&text).map_err(|e| Error::Json {
        context: format!("{} is not a profile", profile_json.display()),
        source: e,
    })?;
    let mut profile = profile;
    profile.validate(profile_json)?;
    // No timer thread: checkpoints at fixed points between operations, so the writer's work
    // does not depend on how fast valgrind runs (the one thing that varied between passes).
    profile.engine.checkpoint_ms = 0;
    let corpus = Arc::new(Corpus::generate(&profile.corpus)?);
    let mut spec = PassSpec::new(workload, &profile, Some(ops), Runtime::Thread);
    spec.checkpoint_every_ops = CHECKPOINT_EVERY_OPS;
    let (outcome, _) = drive(&spec, &profile, &corpus, CountHooks)?;
    Ok(ChildReport {
        ops: outcome.ops,
        stages: outcome.stages.iter().map(|s| s.to_string()).collect(),
    })
}
