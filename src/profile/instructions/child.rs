//! The measured side of an instructions pass: runs inside `valgrind --tool=callgrind`, with
//! instrumentation switched on only for the measured operations.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::Profile;
use crate::error::Error;
use crate::harness::{Harness, PassMode};
use crate::profile::pass::{drive, PassHooks, PassSpec, Phase, Runtime};
use crate::stage::{self, callgrind};

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
pub fn run(
    harness: &Harness,
    profile_json: &Path,
    workload: &str,
    ops: u64,
) -> Result<ChildReport, Error> {
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
    let mut profile: Profile = serde_json::from_slice(&text).map_err(|e| Error::Json {
        context: format!("{} is not a profile", profile_json.display()),
        source: e,
    })?;
    profile.origin = Some(profile_json.to_path_buf());
    profile.validate(profile_json)?;
    let configured = harness
        .resolve(&profile, &[workload.to_owned()])?
        .into_iter()
        .next()
        .ok_or_else(|| Error::Usage(format!("unknown workload {workload}")))?;
    // Counting mode: the workload replaces timer-driven background work (the engine's WAL
    // checkpoint thread) by work at fixed points between operations, so that what runs does
    // not depend on how fast valgrind runs (the one thing that varied between passes).
    let mut spec = PassSpec::new(configured, &profile, Some(ops), Runtime::Thread);
    spec.mode = PassMode::Counting;
    let (outcome, _) = drive(&spec, CountHooks)?;
    Ok(ChildReport {
        ops: outcome.ops,
        stages: outcome.stages.iter().map(|s| s.to_string()).collect(),
    })
}
