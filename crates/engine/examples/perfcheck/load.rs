//! The engine behind `perfcheck::harness::LoadTarget`: `cargo perfcheck load` drives one
//! engine, loaded and fully consolidated, with recalls, remembers and consolidations from many
//! threads, then checks that every count adds up.

use std::sync::atomic::{AtomicU64, Ordering};

use agent_memory::corpus::{Corpus, EventStream, NewEvent, QueryPicker};
use agent_memory::settings::WorkloadSettings;
use agent_memory::{ConsolidateOptions, Engine};
use perfcheck::harness::load_target::{Done, Mix, Reconciliation};
use perfcheck::harness::{BoxError, LoadTarget, SetupContext};
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
    remembered: AtomicU64,
    consolidated_events: AtomicU64,
    facts_created: AtomicU64,
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
    type System = System;
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

    fn setup(&self, c: &LoadConfig, ctx: &SetupContext<'_>) -> Result<System, BoxError> {
        let corpus = Corpus::generate(&c.settings.corpus)?;
        let mut engine = Engine::open(ctx.dir.join("engine.sqlite"), c.settings.engine.clone())?;
        engine.load_corpus(&corpus)?;
        engine.consolidate(&ConsolidateOptions {
            batch: c.load.consolidation_batch,
            max_batches: None,
            ..ConsolidateOptions::default()
        })?;
        Ok(System {
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
        })
    }

    fn start_counts(&self, s: &System) -> Result<Vec<(&'static str, u64)>, BoxError> {
        Ok(vec![("events", s.events_before)])
    }

    fn chooser(&self, c: &LoadConfig, s: &System) -> Result<Chooser, BoxError> {
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

    fn execute(&self, s: &System, op: Op) -> Result<(), BoxError> {
        match op {
            Op::Recall(q) => {
                let text = s.corpus.queries.get(q).map_or("", |q| q.text.as_str());
                std::hint::black_box(s.engine.recall(text, s.recall_k)?);
            }
            Op::Remember(event) => {
                std::hint::black_box(s.engine.remember(&event)?);
                s.remembered.fetch_add(1, Ordering::Relaxed);
            }
            Op::Consolidate => {
                let r = s.engine.consolidate(&s.consolidate)?;
                s.consolidated_events
                    .fetch_add(r.events_loaded as u64, Ordering::Relaxed);
                s.facts_created
                    .fetch_add(r.facts_created as u64, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    fn totals(&self, s: &System) -> Vec<(&'static str, u64)> {
        vec![
            ("remembered", s.remembered.load(Ordering::Relaxed)),
            (
                "consolidated_events",
                s.consolidated_events.load(Ordering::Relaxed),
            ),
            ("facts_created", s.facts_created.load(Ordering::Relaxed)),
        ]
    }

    fn stored_bytes(&self, s: &System) -> u64 {
        s.engine.index().heap_bytes() as u64
    }

    fn reconcile(
        &self,
        c: &LoadConfig,
        s: &System,
        done: &Done,
    ) -> Result<Reconciliation, BoxError> {
        let e = &s.engine;
        let (events_before, facts_before) = (s.events_before, s.facts_before);
        let remembered = done.ok("remember");
        let consolidated = done.total("consolidated_events");
        let facts_run = done.total("facts_created");
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
        r.check(events_after == events_before + remembered, || {
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
}
