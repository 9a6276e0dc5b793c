//! The `Workload` trait: what a crate implements so perfcheck can measure one of its
//! pipelines, operation by operation, stage by stage.

use serde::de::DeserializeOwned;

use crate::config::{InstructionsSettings, RunSettings};
use crate::record::{CacheCounts, Quality};

/// The error a workload returns; anything `?` converts (engine errors, I/O, strings).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Which pass a workload is set up for. Passes never time under a profiler, so a workload may
/// trade realism for determinism where only counts matter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PassMode {
    /// The timing pass of `run` and `check`: the real thing.
    Timing,
    /// A CPU or heap profiling pass.
    Profiling,
    /// The instructions pass under callgrind: background threads whose work depends on wall
    /// time (timers, periodic flushes) should be replaced by work at fixed points between
    /// operations ([`Workload::between_ops`]), so that counts repeat exactly.
    Counting,
}

/// What perfcheck hands to [`Workload::setup`].
#[derive(Clone, Copy, Debug)]
pub struct SetupContext<'a> {
    /// A fresh empty directory for the workload's files (databases, logs), deleted after the
    /// pass.
    pub dir: &'a std::path::Path,
    /// The pass being set up.
    pub mode: PassMode,
}

/// Where [`Workload::between_ops`] is called: outside every measured operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gap {
    /// After warm-up operation number `n` (1-based).
    WarmUp(u64),
    /// After the warm-up, before the first measured operation.
    Start,
    /// After measured operation number `n` (1-based).
    Measured(u64),
}

/// Warm-up and measured operation counts of one workload in a timing or profiling pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpCounts {
    /// Unmeasured operations first.
    pub warmup: u64,
    /// Measured operations.
    pub measured: u64,
}

impl OpCounts {
    /// The profile's `[run]` counts (`warmup_ops`, `ops`).
    pub fn from_run(run: &RunSettings) -> OpCounts {
        OpCounts {
            warmup: run.warmup_ops,
            measured: run.ops,
        }
    }
}

/// One end-to-end pipeline of a crate, measured one operation at a time.
///
/// perfcheck calls [`setup`](Self::setup) once per pass (untimed), then for every operation
/// [`prepare`](Self::prepare) (untimed: choose the input) and [`execute`](Self::execute) (the
/// measured operation, whose stages are the `stage!` guards it enters). The workload's
/// settings are the profile's sections perfcheck does not own (`[corpus]`, `[engine]`, ...,
/// and keys of `[run]` and `[instructions]` other than perfcheck's), parsed into
/// [`Config`](Self::Config).
pub trait Workload: Send + Sync + 'static {
    /// The workload's typed settings (use [`NoConfig`] when there are none). Unknown keys
    /// should be rejected (`#[serde(deny_unknown_fields)]`), so a typo in a profile is an
    /// error that names the file.
    type Config: DeserializeOwned + Send + Sync + 'static;
    /// The system under test, as set up for one pass.
    type State: Send + 'static;
    /// One operation's input, chosen before the operation starts.
    type Input: Send + 'static;

    /// The name used on the command line and in metric names (`recall`).
    fn name(&self) -> &str;

    /// One line for `--help`-style listings.
    fn description(&self) -> &str {
        ""
    }

    /// Checks settings that parse but cannot run (a batch of 0); the message names the key.
    fn validate(&self, _config: &Self::Config) -> Result<(), String> {
        Ok(())
    }

    /// Untimed: builds the system and loads its data.
    fn setup(&self, config: &Self::Config, ctx: &SetupContext<'_>)
        -> Result<Self::State, BoxError>;

    /// Untimed: chooses the next operation's input.
    fn prepare(&self, state: &mut Self::State) -> Result<Self::Input, BoxError>;

    /// The measured operation.
    fn execute(&self, state: &mut Self::State, input: Self::Input) -> Result<(), BoxError>;

    /// The kind of an operation, for workloads that mix several (`op_counts` in the record);
    /// `None`: the workload's name.
    fn op_kind(&self, _input: &Self::Input) -> Option<&'static str> {
        None
    }

    /// Warm-up and measured operations of a timing or profiling pass.
    fn op_counts(&self, _config: &Self::Config, run: &RunSettings) -> OpCounts {
        OpCounts::from_run(run)
    }

    /// Operations counted by the instructions pass.
    fn counted_ops(&self, _config: &Self::Config, settings: &InstructionsSettings) -> u64 {
        settings.ops
    }

    /// Untimed work between operations (a flush at fixed points in [`PassMode::Counting`]).
    fn between_ops(&self, _state: &mut Self::State, _gap: Gap) -> Result<(), BoxError> {
        Ok(())
    }

    /// After the measured operations: how good the results were, so a change that trades
    /// accuracy for speed shows (never timed).
    fn quality(&self, _state: &mut Self::State) -> Result<Option<Quality>, BoxError> {
        Ok(None)
    }

    /// Cumulative cache hits and misses, if the system has a cache: read before and after the
    /// measured operations, and the difference reported.
    fn cache_counts(&self, _state: &Self::State) -> Option<CacheCounts> {
        None
    }

    /// A line for the progress log before setup (`loading 20,000 events`).
    fn setup_note(&self, _config: &Self::Config) -> Option<String> {
        None
    }
}

/// The settings of a workload that has none: rejects any key, so a typo is still an error.
#[derive(Clone, Copy, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoConfig {}
