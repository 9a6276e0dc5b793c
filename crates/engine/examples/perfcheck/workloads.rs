//! The engine's workloads behind `perfcheck::harness::Workload`: one engine setup and one
//! operation chooser for all four.

use std::sync::{Arc, Mutex};

use agent_memory::corpus::{Corpus, CorpusConfig, EventStream, NewEvent, QueryPicker};
use agent_memory::settings::WorkloadSettings;
use agent_memory::{quality, ConsolidateOptions, Engine};
use perfcheck::config::{InstructionsSettings, RunSettings};
use perfcheck::harness::{BoxError, Gap, OpCounts, PassMode, SetupContext, Workload};
use perfcheck::record::{CacheCounts, Quality};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Which of the engine's pipelines a workload drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Queries against the stored memories.
    Recall,
    /// New events stored one at a time.
    Remember,
    /// Batches of unconsolidated events turned into facts.
    Consolidation,
    /// The three interleaved by the profile's `[mix]`.
    Mixed,
}

impl Kind {
    /// In the order a run performs them.
    pub const ALL: [Kind; 4] = [
        Kind::Recall,
        Kind::Remember,
        Kind::Consolidation,
        Kind::Mixed,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::Recall => "recall",
            Kind::Remember => "remember",
            Kind::Consolidation => "consolidation",
            Kind::Mixed => "mixed",
        }
    }

    /// The index that seeds this workload's own random stream (stable: adding a workload
    /// never shifts another's choices).
    fn seed_index(self) -> u64 {
        match self {
            Kind::Recall => 0,
            Kind::Remember => 1,
            Kind::Consolidation => 2,
            Kind::Mixed => 3,
        }
    }
}

/// The generated corpus, shared by the workloads of one run: generating it costs more than
/// some workloads' whole pass.
#[derive(Clone, Default)]
pub struct Shared {
    corpus: Arc<Mutex<Option<Generated>>>,
}

/// A corpus and the settings it was generated from.
type Generated = (CorpusConfig, Arc<Corpus>);

impl Shared {
    fn corpus(&self, config: &CorpusConfig) -> Result<Arc<Corpus>, BoxError> {
        let mut slot = self.corpus.lock().map_err(|_| "corpus cache poisoned")?;
        if let Some((c, corpus)) = slot.as_ref() {
            if c == config {
                return Ok(Arc::clone(corpus));
            }
        }
        let corpus = Arc::new(Corpus::generate(config)?);
        *slot = Some((config.clone(), Arc::clone(&corpus)));
        Ok(corpus)
    }
}

/// One of the engine's workloads.
pub struct EngineWorkload {
    kind: Kind,
    shared: Shared,
}

impl EngineWorkload {
    /// The workload of `kind`, sharing `shared`'s corpus with the others.
    pub fn new(kind: Kind, shared: Shared) -> Self {
        EngineWorkload { kind, shared }
    }
}

/// One kind of engine operation, with its input chosen.
pub enum Op {
    /// Recall of the corpus query with this index.
    Recall(usize),
    /// Remember this event.
    Remember(NewEvent),
    /// Consolidate one batch.
    Consolidate,
}

/// Operations between WAL checkpoints in the instructions pass (the timing pass checkpoints
/// every 250 ms on a timer thread: a few hundred to a few thousand operations).
const CHECKPOINT_EVERY_OPS: u64 = 100;
/// Queries used for the index-vs-exact check: exact search is slow, a sample suffices.
const ANN_QUERIES: usize = 300;

/// A fresh engine with the corpus loaded, and the chooser of its operations.
pub struct State {
    kind: Kind,
    settings: WorkloadSettings,
    corpus: Arc<Corpus>,
    engine: Engine,
    rng: ChaCha8Rng,
    queries: QueryPicker,
    stream: EventStream,
    counting: bool,
}

impl State {
    fn next_kind(&mut self) -> Kind {
        match self.kind {
            Kind::Mixed => {
                let m = &self.settings.mix;
                let total = m.recall + m.remember + m.consolidation;
                let x = self.rng.random_range(0..total);
                if x < m.recall {
                    Kind::Recall
                } else if x < m.recall + m.remember {
                    Kind::Remember
                } else {
                    Kind::Consolidation
                }
            }
            k => k,
        }
    }
}

impl Workload for EngineWorkload {
    type Config = WorkloadSettings;
    type State = State;
    type Input = Op;

    fn name(&self) -> &str {
        self.kind.name()
    }

    fn description(&self) -> &str {
        match self.kind {
            Kind::Recall => "queries: embed_query, vector_search, rerank, format",
            Kind::Remember => "new events one at a time: embed, persist, index_insert",
            Kind::Consolidation => "batches of events into facts: load_events ... store_facts",
            Kind::Mixed => "recall, remember and consolidation interleaved by [mix]",
        }
    }

    fn validate(&self, config: &WorkloadSettings) -> Result<(), String> {
        config.validate()?;
        if self.kind == Kind::Recall && config.corpus.queries == 0 {
            return Err("corpus.queries must be at least 1 for the recall workload".into());
        }
        Ok(())
    }

    fn setup_note(&self, config: &WorkloadSettings) -> Option<String> {
        Some(format!(
            "corpus of {} events (seed {}), loaded into a fresh engine",
            config.corpus.events, config.corpus.seed
        ))
    }

    fn setup(&self, config: &WorkloadSettings, ctx: &SetupContext<'_>) -> Result<State, BoxError> {
        let corpus = self.shared.corpus(&config.corpus)?;
        let mut engine_config = config.engine.clone();
        let counting = ctx.mode == PassMode::Counting;
        if counting {
            // No timer thread: checkpoints at fixed points between operations instead, so
            // the writer's work does not depend on how fast valgrind runs.
            engine_config.checkpoint_ms = 0;
        }
        let mut engine = Engine::open(ctx.dir.join("engine.sqlite"), engine_config)?;
        engine.load_corpus(&corpus)?;
        if self.kind == Kind::Mixed {
            // Steady state: the corpus is already consolidated; mixed consolidations see only
            // the events remembered since.
            engine.consolidate(&ConsolidateOptions {
                batch: config.run.consolidation_batch,
                max_batches: None,
                ..ConsolidateOptions::default()
            })?;
        }
        let seed =
            config.corpus.seed ^ 0x9e37_79b9_7f4a_7c15u64.wrapping_mul(self.kind.seed_index() + 1);
        Ok(State {
            kind: self.kind,
            settings: config.clone(),
            stream: corpus.stream(),
            queries: corpus.query_picker(config.run.repeat_fraction),
            corpus,
            engine,
            rng: ChaCha8Rng::seed_from_u64(seed),
            counting,
        })
    }

    fn prepare(&self, state: &mut State) -> Result<Op, BoxError> {
        Ok(match state.next_kind() {
            Kind::Recall => Op::Recall(state.queries.pick(&mut state.rng)),
            // The stream is endless; it yields `None` never.
            Kind::Remember => match state.stream.next() {
                Some(event) => Op::Remember(event.to_new_event()),
                None => Op::Consolidate,
            },
            _ => {
                // The consolidation workload refills the backlog when fewer than a batch of
                // events are left, so every measured run does the same amount of work.
                if state.kind == Kind::Consolidation
                    && state.engine.unconsolidated_count()?
                        < state.settings.run.consolidation_batch as u64
                {
                    state.engine.reset_consolidation()?;
                }
                Op::Consolidate
            }
        })
    }

    fn execute(&self, state: &mut State, op: Op) -> Result<(), BoxError> {
        match op {
            Op::Recall(q) => {
                let text = &state.corpus.queries[q].text;
                std::hint::black_box(state.engine.recall(text, state.settings.run.recall_k)?);
            }
            Op::Remember(event) => {
                std::hint::black_box(state.engine.remember(&event)?);
            }
            Op::Consolidate => {
                let opts = ConsolidateOptions {
                    batch: state.settings.run.consolidation_batch,
                    max_batches: Some(1),
                    ..ConsolidateOptions::default()
                };
                std::hint::black_box(state.engine.consolidate(&opts)?);
            }
        }
        Ok(())
    }

    fn op_kind(&self, op: &Op) -> Option<&'static str> {
        Some(match op {
            Op::Recall(_) => "recall",
            Op::Remember(_) => "remember",
            Op::Consolidate => "consolidation",
        })
    }

    fn op_counts(&self, config: &WorkloadSettings, run: &RunSettings) -> OpCounts {
        match self.kind {
            Kind::Consolidation => OpCounts {
                warmup: 1,
                measured: config.run.consolidation_ops,
            },
            _ => OpCounts::from_run(run),
        }
    }

    fn counted_ops(&self, config: &WorkloadSettings, settings: &InstructionsSettings) -> u64 {
        match self.kind {
            Kind::Consolidation => config.instructions.consolidation_ops,
            _ => settings.ops,
        }
    }

    fn between_ops(&self, state: &mut State, gap: Gap) -> Result<(), BoxError> {
        if !state.counting {
            return Ok(());
        }
        let due = match gap {
            Gap::WarmUp(n) | Gap::Measured(n) => n % CHECKPOINT_EVERY_OPS == 0,
            Gap::Start => true,
        };
        if due {
            state.engine.checkpoint()?;
        }
        Ok(())
    }

    fn quality(&self, state: &mut State) -> Result<Option<Quality>, BoxError> {
        Ok(match self.kind {
            Kind::Recall => {
                let k = state.settings.run.recall_k;
                let queries = &state.corpus.queries;
                let sample = &queries[..queries.len().min(ANN_QUERIES)];
                Some(Quality {
                    recall_at_k: Some(quality::ground_truth_recall(&mut state.engine, queries, k)?),
                    k: Some(k),
                    ann_recall_at_10: Some(quality::engine_ivf_recall(&state.engine, sample, 10)),
                    ..Quality::default()
                })
            }
            Kind::Consolidation => Some(Quality {
                purity: Some(quality::consolidation_purity(&state.engine, &state.corpus)?.purity),
                ..Quality::default()
            }),
            _ => None,
        })
    }

    fn cache_counts(&self, state: &State) -> Option<CacheCounts> {
        let (hits, misses) = state.engine.cache_stats();
        Some(CacheCounts { hits, misses })
    }
}
