//! Runs one workload against a fresh engine and measures every operation with the recorder.

use std::collections::BTreeMap;
use std::collections::VecDeque;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::Profile;
use crate::engine::corpus::{Corpus, EventStream, NewEvent};
use crate::engine::quality;
use crate::engine::{ConsolidateOptions, Engine};
use crate::error::Error;
use crate::record::{CacheCounts, Quality, WorkloadResult};
use crate::report::format::group_digits;
use crate::stage::{begin_operation, now_raw, raw_delta_ns};
use crate::workload::summary::Collector;
use crate::workload::Workload;

/// One kind of engine operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// A recall query.
    Recall,
    /// Storing one new event.
    Remember,
    /// One consolidation batch.
    Consolidate,
}

impl OpKind {
    fn name(self) -> &'static str {
        match self {
            OpKind::Recall => "recall",
            OpKind::Remember => "remember",
            OpKind::Consolidate => "consolidation",
        }
    }
}

/// An operation with its input chosen, ready to be measured.
pub enum PreparedOp {
    /// Recall of the corpus query with this index.
    Recall(usize),
    /// Remember this event.
    Remember(NewEvent),
    /// Consolidate one batch.
    Consolidate,
}

impl PreparedOp {
    fn kind_name(&self) -> &'static str {
        match self {
            PreparedOp::Recall(_) => OpKind::Recall.name(),
            PreparedOp::Remember(_) => OpKind::Remember.name(),
            PreparedOp::Consolidate => OpKind::Consolidate.name(),
        }
    }
}

/// How many recent queries the repeat pool remembers.
const RECENT_QUERIES: usize = 64;

/// Chooses and performs a workload's operations, deterministically from the profile's seed.
pub struct Driver<'a> {
    workload: Workload,
    profile: &'a Profile,
    corpus: &'a Corpus,
    rng: ChaCha8Rng,
    next_query: usize,
    recent: VecDeque<usize>,
    stream: EventStream,
}

impl<'a> Driver<'a> {
    /// A driver for `workload` over `corpus`.
    pub fn new(workload: Workload, profile: &'a Profile, corpus: &'a Corpus) -> Self {
        // A distinct stream per workload, so adding a workload never shifts another's choices.
        let seed =
            profile.corpus.seed ^ (0x9e37_79b9_7f4a_7c15u64.wrapping_mul(workload as u64 + 1));
        Driver {
            workload,
            profile,
            corpus,
            rng: ChaCha8Rng::seed_from_u64(seed),
            next_query: 0,
            recent: VecDeque::with_capacity(RECENT_QUERIES),
            stream: corpus.stream(),
        }
    }

    /// The kind of the next operation.
    fn next_kind(&mut self) -> OpKind {
        match self.workload {
            Workload::Recall => OpKind::Recall,
            Workload::Remember => OpKind::Remember,
            Workload::Consolidation => OpKind::Consolidate,
            Workload::Mixed => {
                let m = &self.profile.mix;
                let total = m.recall + m.remember + m.consolidation;
                let x = self.rng.random_range(0..total);
                if x < m.recall {
                    OpKind::Recall
                } else if x < m.recall + m.remember {
                    OpKind::Remember
                } else {
                    OpKind::Consolidate
                }
            }
        }
    }

    /// Unmeasured preparation of the next operation: picks its input (query, new event), and
    /// for the consolidation workload refills the backlog when fewer than a batch of events
    /// are left, so every measured run does the same amount of work.
    pub fn prepare(&mut self, engine: &mut Engine) -> Result<PreparedOp, Error> {
        Ok(match self.next_kind() {
            OpKind::Recall => PreparedOp::Recall(self.pick_query()),
            // The stream is endless; it yields `None` never.
            OpKind::Remember => match self.stream.next() {
                Some(event) => PreparedOp::Remember(event.to_new_event()),
                None => PreparedOp::Consolidate,
            },
            OpKind::Consolidate => {
                if self.workload == Workload::Consolidation
                    && engine.unconsolidated_count()? < self.profile.run.consolidation_batch as u64
                {
                    engine.reset_consolidation()?;
                }
                PreparedOp::Consolidate
            }
        })
    }

    /// Performs one prepared operation (the part that is measured).
    pub fn execute(&self, op: &PreparedOp, engine: &mut Engine) -> Result<(), Error> {
        match op {
            PreparedOp::Recall(q) => {
                let text = &self.corpus.queries[*q].text;
                std::hint::black_box(engine.recall(text, self.profile.run.recall_k)?);
            }
            PreparedOp::Remember(event) => {
                std::hint::black_box(engine.remember(event)?);
            }
            PreparedOp::Consolidate => {
                let opts = ConsolidateOptions {
                    batch: self.profile.run.consolidation_batch,
                    max_batches: Some(1),
                    ..ConsolidateOptions::default()
                };
                std::hint::black_box(engine.consolidate(&opts)?);
            }
        }
        Ok(())
    }

    fn pick_query(&mut self) -> usize {
        let repeat = !self.recent.is_empty()
            && self
                .rng
                .random_bool(self.profile.run.repeat_fraction.clamp(0.0, 1.0));
        if repeat {
            let i = self.rng.random_range(0..self.recent.len());
            return self.recent[i];
        }
        let q = self.next_query % self.corpus.queries.len().max(1);
        self.next_query += 1;
        if self.recent.len() == RECENT_QUERIES {
            self.recent.pop_front();
        }
        self.recent.push_back(q);
        q
    }
}

/// Runs `workload` on a fresh engine loaded with `corpus` and returns its measurements.
/// `log` receives one line per phase, for progress output.
pub fn run_workload(
    workload: Workload,
    profile: &Profile,
    corpus: &Corpus,
    log: &mut dyn FnMut(&str),
) -> Result<WorkloadResult, Error> {
    let dir = tempfile::tempdir().map_err(|e| Error::Io {
        context: "cannot create a temporary directory for the engine database".into(),
        source: e,
    })?;
    let mut engine = Engine::open(dir.path().join("engine.sqlite"), profile.engine.clone())?;
    log(&format!(
        "{workload}: loading {} events",
        group_digits(corpus.events.len() as u64)
    ));
    engine.load_corpus(corpus)?;
    if workload == Workload::Mixed {
        // Steady state: the corpus is already consolidated; mixed consolidations see only
        // the events remembered since.
        let opts = ConsolidateOptions {
            batch: profile.run.consolidation_batch,
            max_batches: None,
            ..ConsolidateOptions::default()
        };
        engine.consolidate(&opts)?;
    }
    if workload == Workload::Recall && corpus.queries.is_empty() {
        return Err(Error::Config {
            path: format!("<profile {}>", profile.name).into(),
            message: "corpus.queries must be at least 1 for the recall workload".into(),
        });
    }

    let (warmup, ops) = match workload {
        Workload::Consolidation => (1, profile.run.consolidation_ops),
        _ => (profile.run.warmup_ops, profile.run.ops),
    };
    let mut driver = Driver::new(workload, profile, corpus);
    log(&format!(
        "{workload}: {warmup} warm-up + {ops} measured operations"
    ));
    for _ in 0..warmup {
        let op = driver.prepare(&mut engine)?;
        driver.execute(&op, &mut engine)?;
    }

    let every = profile.run.cpu_sample_every;
    let cpu_ops = ops.checked_div(every).unwrap_or(0);
    let (hits0, misses0) = engine.cache_stats();
    let mut collector = Collector::default();
    let mut op_counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut elapsed_ns = 0u64;
    for i in 0..ops + cpu_ops {
        // Every `every`-th slot is a CPU-sampled extra operation.
        let cpu_sampled = every > 0 && i % (every + 1) == every && i / (every + 1) < cpu_ops;
        let prepared = driver.prepare(&mut engine)?;
        let start = now_raw();
        let op = begin_operation(cpu_sampled);
        driver.execute(&prepared, &mut engine)?;
        let sample = op.finish();
        elapsed_ns += raw_delta_ns(start, now_raw());
        collector.push(&sample);
        *op_counts
            .entry(prepared.kind_name().to_owned())
            .or_default() += 1;
    }
    let (hits1, misses1) = engine.cache_stats();
    let quality = measure_quality(workload, &mut engine, corpus, profile)?;
    let (stages, samples) = collector.finish();
    let measured = ops + cpu_ops;
    Ok(WorkloadResult {
        workload,
        ops: measured,
        warmup_ops: warmup,
        cpu_sampled_ops: cpu_ops,
        elapsed_ns,
        throughput_ops: if elapsed_ns > 0 {
            measured as f64 * 1e9 / elapsed_ns as f64
        } else {
            0.0
        },
        cache: (hits1 + misses1 > hits0 + misses0).then_some(CacheCounts {
            hits: hits1 - hits0,
            misses: misses1 - misses0,
        }),
        quality,
        op_counts,
        stages,
        samples,
        instructions: None,
    })
}

/// Queries used for the index-vs-exact check: exact search is slow, a sample suffices.
const ANN_QUERIES: usize = 300;

/// Result quality after the timed part, so a change that trades accuracy for speed shows.
fn measure_quality(
    workload: Workload,
    engine: &mut Engine,
    corpus: &Corpus,
    profile: &Profile,
) -> Result<Option<Quality>, Error> {
    Ok(match workload {
        Workload::Recall => {
            let k = profile.run.recall_k;
            let queries = &corpus.queries[..corpus.queries.len().min(ANN_QUERIES)];
            Some(Quality {
                recall_at_k: Some(quality::ground_truth_recall(engine, &corpus.queries, k)?),
                k: Some(k),
                ann_recall_at_10: Some(quality::engine_ivf_recall(engine, queries, 10)),
                purity: None,
            })
        }
        Workload::Consolidation => Some(Quality {
            purity: Some(quality::consolidation_purity(engine, corpus)?.purity),
            ..Quality::default()
        }),
        _ => None,
    })
}
