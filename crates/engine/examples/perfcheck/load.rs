//! The engine behind `perfcheck::harness::LoadTarget`: `cargo perfcheck load` drives one
//! engine, loaded and fully consolidated, with recalls, remembers and consolidations from many
//! threads, then checks that every count adds up.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use agent_memory::corpus::{Corpus, EventStream, NewEvent, QueryPicker};
use agent_memory::settings::WorkloadSettings;
use agent_memory::{ConsolidateOptions, ConsolidationReport, Engine};
use perfcheck::harness::load_target::{Done, Mix, Reconciliation};
use perfcheck::harness::{
    ActiveFault, BoxError, FaultInfo, LoadTarget, Outcome, SetupContext, WriteCheck,
};

use crate::embed_switch::EmbedSwitch;
use crate::ledger::Ledger;
use rand::RngCore;
use serde::{Deserialize, Deserializer};

/// The engine as the target of `cargo perfcheck load`.
#[derive(Clone, Copy, Debug, Default)]
pub struct EngineLoad;

/// The engine's keys of `[load]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoadKeys {
    /// Results per recall.
    pub recall_k: usize,
    /// Share of recalls that repeat a recent query (exercises the cache), 0..=1.
    pub repeat_fraction: f64,
    /// Events per consolidation batch (the run's consolidations, the steady state before it
    /// and the drain after it).
    pub consolidation_batch: usize,
}

impl Default for LoadKeys {
    fn default() -> Self {
        LoadKeys {
            recall_k: 10,
            repeat_fraction: 0.2,
            consolidation_batch: 1_000,
        }
    }
}

/// The engine's settings of a load run: its workload settings (`[corpus]`, `[engine]`,
/// `[mix]`, ...) and its keys of `[load]`.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// Corpus, engine and mix.
    pub settings: WorkloadSettings,
    /// The `[load]` keys.
    pub load: LoadKeys,
}

impl<'de> Deserialize<'de> for LoadConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<LoadConfig, D::Error> {
        use serde::de::Error;
        // `WorkloadSettings` rejects unknown keys, `load` among them: take it out first.
        let mut table = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        let load = match table.remove("load") {
            Some(v) => {
                serde_json::from_value(v).map_err(|e| D::Error::custom(format!("load: {e}")))?
            }
            None => LoadKeys::default(),
        };
        let settings =
            serde_json::from_value(serde_json::Value::Object(table)).map_err(D::Error::custom)?;
        Ok(LoadConfig { settings, load })
    }
}

/// The loaded engine and its counters.
pub struct System {
    engine: Engine,
    corpus: Corpus,
    recall_k: usize,
    consolidate: ConsolidateOptions,
    events_before: u64,
    facts_before: u64,
    /// Every remember that returned `Ok`, the load's and the chaos faults' own writers'.
    remembered: AtomicU64,
    consolidated_events: AtomicU64,
    facts_created: AtomicU64,
    db: PathBuf,
    ledger: Ledger,
    /// The engine embeds through this switch, so chaos can make the embedder fail.
    embed: Arc<EmbedSwitch>,
}

impl System {
    /// The engine's database file.
    pub fn db_path(&self) -> &Path {
        &self.db
    }

    /// The corpus the store was loaded from.
    pub fn corpus(&self) -> &Corpus {
        &self.corpus
    }

    /// The engine under test (faults and live gauges reach it through this).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The switch in front of the engine's embedder.
    pub fn embed_switch(&self) -> &EmbedSwitch {
        &self.embed
    }

    /// Remembers `event` under a fresh operation tag, acknowledged in the ledger on success.
    pub fn remember_tracked(&self, mut event: NewEvent) -> Result<i64, BoxError> {
        let n = self.ledger.tag(&mut event);
        let id = self.engine.remember(&event)?;
        self.ledger.ack(n);
        self.remembered.fetch_add(1, Ordering::Relaxed);
        Ok(id)
    }

    /// One consolidation call, counted.
    pub fn consolidate(&self, opts: &ConsolidateOptions) -> Result<ConsolidationReport, BoxError> {
        let r = self.engine.consolidate(opts)?;
        self.consolidated_events
            .fetch_add(r.events_loaded as u64, Ordering::Relaxed);
        self.facts_created
            .fetch_add(r.facts_created as u64, Ordering::Relaxed);
        Ok(r)
    }
}

/// One generator run's choices: the queries (with their repeat pool) and the stream of new
/// events.
pub struct Chooser {
    queries: QueryPicker,
    stream: EventStream,
}

/// One engine operation with its input chosen.
pub enum Op {
    /// Recall of the corpus query with this index.
    Recall(usize),
    /// Remember this event.
    Remember(NewEvent),
    /// Consolidate one batch.
    Consolidate,
}

impl LoadTarget for EngineLoad {
    type Config = LoadConfig;
    type System = Arc<System>;
    type Chooser = Chooser;
    type Op = Op;

    fn name(&self) -> &str {
        "engine"
    }

    fn validate(&self, c: &LoadConfig) -> Result<(), String> {
        c.settings.validate()?;
        let l = &c.load;
        if l.recall_k == 0 {
            return Err("load.recall_k must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&l.repeat_fraction) {
            return Err(format!(
                "load.repeat_fraction must be between 0 and 1, got {}",
                l.repeat_fraction
            ));
        }
        if l.consolidation_batch == 0 {
            return Err("load.consolidation_batch must be at least 1".into());
        }
        if c.settings.corpus.queries == 0 && c.settings.mix.recall > 0 {
            return Err("corpus.queries must be at least 1 when the mix has recalls".into());
        }
        Ok(())
    }

    fn mix(&self, c: &LoadConfig) -> Mix {
        let m = &c.settings.mix;
        Mix::new([
            ("recall", m.recall),
            ("remember", m.remember),
            ("consolidation", m.consolidation),
        ])
    }

    fn setup_note(&self, c: &LoadConfig) -> Option<String> {
        Some(format!(
            "a corpus of {} events (seed {}), loaded and consolidated (steady state)",
            c.settings.corpus.events, c.settings.corpus.seed
        ))
    }

    fn setup(&self, c: &LoadConfig, ctx: &SetupContext<'_>) -> Result<Arc<System>, BoxError> {
        let corpus = Corpus::generate(&c.settings.corpus)?;
        let db = ctx.dir.join("engine.sqlite");
        let mut engine = Engine::open(&db, c.settings.engine.clone())?;
        engine.load_corpus(&corpus)?;
        engine.consolidate(&ConsolidateOptions {
            batch: c.load.consolidation_batch,
            max_batches: None,
            ..ConsolidateOptions::default()
        })?;
        let setup_max_id = engine.store().event_ids()?.last().copied().unwrap_or(0);
        // After the bulk load, which embeds with the built-in embedder directly.
        let embed = Arc::new(EmbedSwitch::new(c.settings.engine.dim));
        engine.set_embed_backend(embed.clone());
        Ok(Arc::new(System {
            ledger: Ledger::new(db.clone(), setup_max_id),
            db,
            events_before: engine.event_count()?,
            facts_before: engine.fact_count()?,
            engine,
            corpus,
            recall_k: c.load.recall_k,
            consolidate: ConsolidateOptions {
                batch: c.load.consolidation_batch,
                max_batches: Some(1),
                ..ConsolidateOptions::default()
            },
            remembered: AtomicU64::new(0),
            consolidated_events: AtomicU64::new(0),
            facts_created: AtomicU64::new(0),
            embed,
        }))
    }

    fn start_counts(&self, s: &Arc<System>) -> Result<Vec<(&'static str, u64)>, BoxError> {
        Ok(vec![("events", s.events_before)])
    }

    fn chooser(&self, c: &LoadConfig, s: &Arc<System>) -> Result<Chooser, BoxError> {
        Ok(Chooser {
            queries: s.corpus.query_picker(c.load.repeat_fraction),
            // Every run remembers the same new events: runs are comparable.
            stream: s.corpus.stream(),
        })
    }

    fn choose(&self, ch: &mut Chooser, kind: &str, rng: &mut dyn RngCore) -> Op {
        match kind {
            "recall" => Op::Recall(ch.queries.pick(rng)),
            "remember" => Op::Remember(ch.stream.next_event()),
            _ => Op::Consolidate,
        }
    }

    fn execute(&self, s: &Arc<System>, op: Op) -> Result<Outcome, BoxError> {
        match op {
            Op::Recall(q) => {
                let text = s.corpus.queries.get(q).map_or("", |q| q.text.as_str());
                let r = s.engine.recall(text, s.recall_k)?;
                if r.degraded.is_some() {
                    return Ok(Outcome::Degraded);
                }
                std::hint::black_box(r);
            }
            Op::Remember(event) => {
                std::hint::black_box(s.remember_tracked(event)?);
            }
            Op::Consolidate => {
                s.consolidate(&s.consolidate)?;
            }
        }
        Ok(Outcome::Ok)
    }

    fn totals(&self, s: &Arc<System>) -> Vec<(&'static str, u64)> {
        vec![
            ("remembered", s.remembered.load(Ordering::Relaxed)),
            (
                "consolidated_events",
                s.consolidated_events.load(Ordering::Relaxed),
            ),
            ("facts_created", s.facts_created.load(Ordering::Relaxed)),
        ]
    }

    fn stored_bytes(&self, s: &Arc<System>) -> u64 {
        s.engine.index().heap_bytes() as u64
    }

    fn reconcile(
        &self,
        c: &LoadConfig,
        s: &Arc<System>,
        done: &Done,
    ) -> Result<Reconciliation, BoxError> {
        let e = &s.engine;
        let (events_before, facts_before) = (s.events_before, s.facts_before);
        // The system's own counts: chaos faults' extra writers remember and consolidate too.
        let remembered = s.remembered.load(Ordering::Relaxed);
        let load_remembered = done.ok("remember");
        let consolidated = s.consolidated_events.load(Ordering::Relaxed);
        let facts_run = s.facts_created.load(Ordering::Relaxed);
        let events_after = e.event_count()?;
        let index_len = e.index().len() as u64;
        let drain = e.consolidate(&ConsolidateOptions {
            batch: c.load.consolidation_batch,
            max_batches: None,
            ..ConsolidateOptions::default()
        })?;
        let drained = drain.events_loaded as u64;
        let facts_created = facts_run + drain.facts_created as u64;
        let facts_after = e.fact_count()?;
        let support_mismatches = e
            .store()
            .fact_support_check()?
            .iter()
            .filter(|(_, s, l)| s != l)
            .count() as u64;
        let pending_after = e.unconsolidated_count()?;
        let mut r = Reconciliation {
            summary: format!(
                "{events_after} events = {events_before} + {remembered} remembered; index \
                 {index_len}; consolidation consumed {consolidated} + {drained} (drain); facts \
                 {facts_before} -> {facts_after}"
            ),
            ..Reconciliation::default()
        };
        r.count("events_before", events_before)
            .count("remembered", remembered)
            .count("events_after", events_after)
            .count("index_len", index_len)
            .count("consolidated_during_run", consolidated)
            .count("consolidated_after_run", drained)
            .count("facts_before", facts_before)
            .count("facts_created", facts_created)
            .count("facts_after", facts_after)
            .count("support_mismatches", support_mismatches)
            .count("pending_after", pending_after);
        r.check(load_remembered <= remembered, || {
            format!("{load_remembered} remembers acknowledged to the load, {remembered} counted")
        })
        .check(events_after == events_before + remembered, || {
            format!(
                "{events_after} events stored, expected {events_before} + {remembered} remembered"
            )
        })
        .check(index_len == events_after, || {
            format!("the index holds {index_len} vectors for {events_after} events")
        })
        // The corpus was fully consolidated before the run: exactly the remembered events remain.
        .check(consolidated + drained == remembered, || {
            format!(
                "consolidation consumed {} events, {remembered} were remembered",
                consolidated + drained
            )
        })
        .check(facts_after == facts_before + facts_created, || {
            format!("{facts_after} facts, expected {facts_before} + {facts_created} created")
        })
        .check(support_mismatches == 0, || {
            format!("{support_mismatches} facts' support differs from their linked events")
        })
        .check(pending_after == 0, || {
            format!("{pending_after} events still pending after the drain")
        });
        Ok(r)
    }

    fn faults(&self, _: &LoadConfig) -> Vec<FaultInfo> {
        crate::faults::list()
    }

    fn inject(
        &self,
        _: &LoadConfig,
        s: &Arc<System>,
        fault: &str,
    ) -> Result<Box<dyn ActiveFault>, BoxError> {
        crate::faults::inject(s, fault)
    }

    fn verify_writes(&self, s: &Arc<System>) -> Result<Option<WriteCheck>, BoxError> {
        s.ledger.check().map(Some)
    }

    fn gauges(&self, s: &Arc<System>) -> Vec<perfcheck::monitor::Gauge> {
        crate::gauges::gauges(s)
    }

    fn health(
        &self,
        s: &Arc<System>,
    ) -> Result<Option<perfcheck::monitor::TargetHealth>, BoxError> {
        crate::gauges::health(s)
    }
}
