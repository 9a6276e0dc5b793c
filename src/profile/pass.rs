//! One profiling pass over one workload: a fresh engine, the corpus loaded, warm-up, then the
//! measured operations, with hooks at every phase so a profiler can switch itself on and off
//! around exactly the part it should see. Passes take no timings (timings are never taken under a
//! profiler: docs/ARCHITECTURE.md); `cargo perfcheck run` does that.

use std::sync::Arc;

use crate::config::Profile;
use crate::error::Error;
use crate::harness::{Configured, Gap, PassMode, Session, SetupContext};
use crate::stage::{begin_operation, component, OpSample};

/// What runs the measured operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    /// The calling thread, one operation after another.
    Thread,
    /// A tokio multi-thread runtime: the operations run in a task on its worker threads and
    /// yield between operations, so the task moves between workers.
    Tokio {
        /// Worker threads.
        workers: usize,
    },
}

/// Where a pass is; hooks are told when each phase begins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Before the engine is opened and the corpus loaded.
    Setup,
    /// Before the unmeasured warm-up operations.
    WarmUp,
    /// Before the first measured operation.
    Measured,
    /// Right after the last measured operation (the engine is still alive).
    Finished,
    /// After the engine and its database were dropped.
    Released,
}

/// Callbacks of a pass. `Send + 'static` because with [`Runtime::Tokio`] they travel into the
/// task that runs the operations; the pass hands them back when it ends.
pub trait PassHooks: Send + 'static {
    /// A phase begins.
    fn phase(&mut self, _phase: Phase) {}
    /// A measured operation ended; `done` measured operations have run so far.
    fn after_op(&mut self, _done: u64) {}
}

impl PassHooks for () {}

/// What one pass runs.
#[derive(Clone)]
pub struct PassSpec {
    /// The workload, configured.
    pub workload: Arc<dyn Configured>,
    /// Measured operations.
    pub ops: u64,
    /// Unmeasured operations before them.
    pub warmup_ops: u64,
    /// Thread or tokio runtime.
    pub runtime: Runtime,
    /// The pass the workload is set up for.
    pub mode: PassMode,
}

impl PassSpec {
    /// The profile's operation counts for `workload`, with `ops` overriding the measured count.
    pub fn new(
        workload: Arc<dyn Configured>,
        profile: &Profile,
        ops: Option<u64>,
        runtime: Runtime,
    ) -> Self {
        let counts = workload.op_counts(&profile.run);
        PassSpec {
            workload,
            ops: ops.unwrap_or(counts.measured),
            warmup_ops: counts.warmup,
            runtime,
            mode: PassMode::Profiling,
        }
    }

    /// The workload's name.
    pub fn name(&self) -> &str {
        self.workload.name()
    }
}

/// What a pass did.
#[derive(Clone, Debug, Default)]
pub struct PassOutcome {
    /// Measured operations run.
    pub ops: u64,
    /// Stage names the measured operations entered, in order of first entry.
    pub stages: Vec<&'static str>,
}

/// Heap label of allocations made while choosing an operation's input (not measured).
pub const DRIVER_COMPONENT: &str = "workload driver";
/// Heap label of opening the engine and, for `mixed`, the initial consolidation.
pub const SETUP_COMPONENT: &str = "setup";

struct Ops {
    session: Box<dyn Session>,
    stages: Vec<&'static str>,
    /// Heap label per operation kind, made once per kind (not per operation).
    labels: Vec<(&'static str, &'static str)>,
}

impl Ops {
    /// Heap label of an operation's allocations outside its stages (a cache lives here):
    /// `"<kind>, outside stages"`.
    fn outside_label(&mut self, kind: &'static str) -> &'static str {
        if let Some((_, label)) = self.labels.iter().find(|(k, _)| *k == kind) {
            return label;
        }
        let label = crate::harness::erased::static_name(&format!("{kind}, outside stages"));
        self.labels.push((kind, label));
        label
    }

    fn one(&mut self, measured: bool) -> Result<(), Error> {
        let kind = prepare_operation_untimed(self.session.as_mut())?;
        let _c = component(self.outside_label(kind));
        // Recorded like a timed run so the slow-stage test knob applies; nothing is kept
        // but the stage names.
        let op = begin_operation(false);
        self.session.execute()?;
        let sample: OpSample = op.finish();
        if measured {
            for (name, _) in &sample.stages {
                if !self.stages.contains(name) {
                    self.stages.push(name);
                }
            }
        }
        Ok(())
    }

    fn gap(&mut self, gap: Gap) -> Result<(), Error> {
        let _c = component(DRIVER_COMPONENT);
        self.session.between_ops(gap)
    }

    fn run<H: PassHooks>(&mut self, spec: &PassSpec, hooks: &mut H) -> Result<(), Error> {
        hooks.phase(Phase::WarmUp);
        for i in 0..spec.warmup_ops {
            self.one(false)?;
            self.gap(Gap::WarmUp(i + 1))?;
        }
        self.gap(Gap::Start)?;
        hooks.phase(Phase::Measured);
        for i in 0..spec.ops {
            self.one(true)?;
            hooks.after_op(i + 1);
            self.gap(Gap::Measured(i + 1))?;
        }
        hooks.phase(Phase::Finished);
        Ok(())
    }
}

/// Chooses the next operation's input. Not part of the operation: never inlined and named so
/// that CPU profiles can set its samples apart
/// ([`PREPARE_FRAME`](crate::profile::cpu::PREPARE_FRAME)).
#[inline(never)]
pub fn prepare_operation_untimed(session: &mut dyn Session) -> Result<&'static str, Error> {
    let _c = component(DRIVER_COMPONENT);
    std::hint::black_box(session.prepare())
}

/// Sets the workload up in a fresh temporary directory (heap label `setup`).
fn set_up(spec: &PassSpec) -> Result<(tempfile::TempDir, Ops), Error> {
    let dir = crate::workload::runner::pass_dir()?;
    let session = {
        let _c = component(SETUP_COMPONENT);
        spec.workload.setup(&SetupContext {
            dir: dir.path(),
            mode: spec.mode,
        })?
    };
    Ok((
        dir,
        Ops {
            session,
            stages: Vec::new(),
            labels: Vec::new(),
        },
    ))
}

/// Runs one pass and hands the hooks back.
pub fn drive<H: PassHooks>(spec: &PassSpec, mut hooks: H) -> Result<(PassOutcome, H), Error> {
    hooks.phase(Phase::Setup);
    let (dir, mut ops) = set_up(spec)?;
    let (stages, ops, mut hooks) = match spec.runtime {
        Runtime::Thread => {
            ops.run(spec, &mut hooks)?;
            (std::mem::take(&mut ops.stages), ops, hooks)
        }
        Runtime::Tokio { workers } => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers.max(1))
                .thread_name("tokio-worker")
                .enable_time()
                .build()
                .map_err(|e| Error::Io {
                    context: "cannot start the tokio runtime".into(),
                    source: e,
                })?;
            let spec2 = spec.clone();
            let task = async move {
                hooks.phase(Phase::WarmUp);
                for i in 0..spec2.warmup_ops {
                    tokio::task::yield_now().await;
                    ops.one(false)?;
                    ops.gap(Gap::WarmUp(i + 1))?;
                }
                ops.gap(Gap::Start)?;
                hooks.phase(Phase::Measured);
                for i in 0..spec2.ops {
                    // Stage guards are never held across this await (they are !Send).
                    tokio::task::yield_now().await;
                    ops.one(true)?;
                    hooks.after_op(i + 1);
                    ops.gap(Gap::Measured(i + 1))?;
                }
                hooks.phase(Phase::Finished);
                let stages = std::mem::take(&mut ops.stages);
                Ok::<_, Error>((stages, ops, hooks))
            };
            let joined = rt.block_on(async { tokio::spawn(task).await });
            match joined {
                Ok(result) => result?,
                Err(e) => {
                    return Err(Error::Profiler(format!(
                        "the workload task on the tokio runtime failed: {e}"
                    )))
                }
            }
        }
    };
    drop(ops);
    drop(dir);
    hooks.phase(Phase::Released);
    Ok((
        PassOutcome {
            ops: spec.ops,
            stages,
        },
        hooks,
    ))
}
