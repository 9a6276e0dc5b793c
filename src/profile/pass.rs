//! One profiling pass over one workload: a fresh engine, the corpus loaded, warm-up, then the
//! measured operations, with hooks at every phase so a profiler can switch itself on and off
//! around exactly the part it should see. Passes take no timings (timings are never taken under a
//! profiler: docs/ARCHITECTURE.md); `cargo perfcheck run` does that.

use std::sync::Arc;

use crate::config::Profile;
use crate::engine::corpus::Corpus;
use crate::engine::{ConsolidateOptions, Engine};
use crate::error::Error;
use crate::stage::{begin_operation, component, OpSample};
use crate::workload::runner::{Driver, PreparedOp};
use crate::workload::Workload;

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
#[derive(Clone, Debug)]
pub struct PassSpec {
    /// The workload.
    pub workload: Workload,
    /// Measured operations.
    pub ops: u64,
    /// Unmeasured operations before them.
    pub warmup_ops: u64,
    /// Thread or tokio runtime.
    pub runtime: Runtime,
    /// Checkpoint the engine's WAL after setup and every this many operations, outside the
    /// measured operations (for engines without a checkpoint thread); 0 never.
    pub checkpoint_every_ops: u64,
}

impl PassSpec {
    /// The profile's operation counts for `workload`, with `ops` overriding the measured count.
    pub fn new(workload: Workload, profile: &Profile, ops: Option<u64>, runtime: Runtime) -> Self {
        let (warmup_ops, default_ops) = match workload {
            Workload::Consolidation => (1, profile.run.consolidation_ops),
            _ => (profile.run.warmup_ops, profile.run.ops),
        };
        PassSpec {
            workload,
            ops: ops.unwrap_or(default_ops),
            warmup_ops,
            runtime,
            checkpoint_every_ops: 0,
        }
    }

    /// Whether the engine's WAL is checkpointed after operation number `done` (1-based).
    fn checkpoint_after(&self, done: u64) -> bool {
        self.checkpoint_every_ops > 0 && done % self.checkpoint_every_ops == 0
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

/// Heap label of an operation's allocations outside its stages (the recall cache lives here).
fn outside_label(op: &PreparedOp) -> &'static str {
    match op {
        PreparedOp::Recall(_) => "recall, outside stages",
        PreparedOp::Remember(_) => "remember, outside stages",
        PreparedOp::Consolidate => "consolidation, outside stages",
    }
}

struct Ops<'a> {
    driver: Driver<'a>,
    stages: Vec<&'static str>,
}

impl Ops<'_> {
    fn one(&mut self, engine: &mut Engine, measured: bool) -> Result<(), Error> {
        let prepared = prepare_operation_untimed(&mut self.driver, engine)?;
        let _c = component(outside_label(&prepared));
        // Recorded like a timed run so the slow-stage test knob applies; nothing is kept
        // but the stage names.
        let op = begin_operation(false);
        self.driver.execute(&prepared, engine)?;
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

    fn run<H: PassHooks>(
        &mut self,
        spec: &PassSpec,
        engine: &mut Engine,
        hooks: &mut H,
    ) -> Result<(), Error> {
        hooks.phase(Phase::WarmUp);
        for i in 0..spec.warmup_ops {
            self.one(engine, false)?;
            if spec.checkpoint_after(i + 1) {
                engine.checkpoint()?;
            }
        }
        if spec.checkpoint_every_ops > 0 {
            engine.checkpoint()?;
        }
        hooks.phase(Phase::Measured);
        for i in 0..spec.ops {
            self.one(engine, true)?;
            hooks.after_op(i + 1);
            if spec.checkpoint_after(i + 1) {
                engine.checkpoint()?;
            }
        }
        hooks.phase(Phase::Finished);
        Ok(())
    }
}

/// Chooses the next operation's input (and for consolidation refills the backlog). Not part
/// of the operation: never inlined and named so that CPU profiles can set its samples apart
/// ([`PREPARE_FRAME`](crate::profile::cpu::PREPARE_FRAME)).
#[inline(never)]
pub fn prepare_operation_untimed(
    driver: &mut Driver<'_>,
    engine: &mut Engine,
) -> Result<PreparedOp, Error> {
    let _c = component(DRIVER_COMPONENT);
    std::hint::black_box(driver.prepare(engine))
}

fn new_driver<'a>(workload: Workload, profile: &'a Profile, corpus: &'a Corpus) -> Driver<'a> {
    // The driver copies the corpus's event generator: its memory belongs to the driver row.
    let _c = component(DRIVER_COMPONENT);
    Driver::new(workload, profile, corpus)
}

/// Opens a fresh engine in a temporary directory and loads the corpus (stage `load`).
fn set_up(
    spec: &PassSpec,
    profile: &Profile,
    corpus: &Corpus,
) -> Result<(tempfile::TempDir, Engine), Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::Io {
        context: "cannot create a temporary directory for the engine database".into(),
        source: e,
    })?;
    let mut engine = {
        let _c = component(SETUP_COMPONENT);
        Engine::open(dir.path().join("engine.sqlite"), profile.engine.clone())?
    };
    engine.load_corpus(corpus)?;
    if spec.workload == Workload::Mixed {
        // Same steady state as the timing run: the corpus is already consolidated.
        let _c = component(SETUP_COMPONENT);
        engine.consolidate(&ConsolidateOptions {
            batch: profile.run.consolidation_batch,
            max_batches: None,
            ..ConsolidateOptions::default()
        })?;
    }
    if spec.workload == Workload::Recall && corpus.queries.is_empty() {
        return Err(Error::Config {
            path: format!("<profile {}>", profile.name).into(),
            message: "corpus.queries must be at least 1 for the recall workload".into(),
        });
    }
    Ok((dir, engine))
}

/// Runs one pass and hands the hooks back.
pub fn drive<H: PassHooks>(
    spec: &PassSpec,
    profile: &Profile,
    corpus: &Arc<Corpus>,
    mut hooks: H,
) -> Result<(PassOutcome, H), Error> {
    hooks.phase(Phase::Setup);
    let (dir, mut engine) = set_up(spec, profile, corpus)?;
    let (stages, engine, mut hooks) = match spec.runtime {
        Runtime::Thread => {
            let mut ops = Ops {
                driver: new_driver(spec.workload, profile, corpus),
                stages: Vec::new(),
            };
            ops.run(spec, &mut engine, &mut hooks)?;
            (ops.stages, engine, hooks)
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
            let profile2 = profile.clone();
            let corpus2 = Arc::clone(corpus);
            let task = async move {
                let mut ops = Ops {
                    driver: new_driver(spec2.workload, &profile2, &corpus2),
                    stages: Vec::new(),
                };
                hooks.phase(Phase::WarmUp);
                for _ in 0..spec2.warmup_ops {
                    tokio::task::yield_now().await;
                    ops.one(&mut engine, false)?;
                }
                hooks.phase(Phase::Measured);
                for i in 0..spec2.ops {
                    // Stage guards are never held across this await (they are !Send).
                    tokio::task::yield_now().await;
                    ops.one(&mut engine, true)?;
                    hooks.after_op(i + 1);
                }
                hooks.phase(Phase::Finished);
                let stages = std::mem::take(&mut ops.stages);
                drop(ops);
                Ok::<_, Error>((stages, engine, hooks))
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
    drop(engine);
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
