//! The agent-memory engine under test: events in SQLite, feature-hashed embeddings, IVF vector
//! search with hybrid re-ranking, and consolidation of events into facts.
//!
//! Every pipeline step is a separate `#[inline(never)]` function opening a
//! [`stage!`](perfcheck_stage::stage!) guard, so wall time, CPU time and allocations are
//! attributed to the canonical stage names (`embed_query`, `vector_search`, ..., `store_facts`).
//!
//! Everything is synchronous and deterministic for a given corpus seed and configuration.
//!
//! # Concurrency
//!
//! An [`Engine`] is `Send + Sync`; recall, remember and consolidation take `&self`, so one
//! engine behind an `Arc` serves many threads (setup, [`Engine::load_corpus`], takes
//! `&mut self`). The design, read-mostly throughout:
//!
//! - **SQLite**: one writer connection behind a mutex plus a bounded pool of read-only
//!   connections ([`EngineConfig::read_connections`]) on the same WAL-mode file. Readers never
//!   block the writer or each other; `rerank` reads all its candidates with one statement on
//!   one pooled connection. WAL checkpoints run on a background thread, never inside a
//!   writer's commit (where SQLite's automatic one would `fsync` under the writer lock).
//! - **Vector index**: the centroid table behind an `RwLock` that only training takes for
//!   writing, and one `RwLock` per inverted list (sparse per-dimension postings). A search
//!   locks one list at a time while scanning it; a remember locks one list for a single push.
//! - **Recall cache**: an LRU behind a mutex held only for lookups and inserts (results are
//!   `Arc`s, copied outside the lock). A remember clears it and bumps a generation number; a
//!   recall stores its result only if no remember happened since it started, so a stale
//!   ranking never enters the cache.
//! - **Consolidation**: serialised by a lock held from loading the backlog to committing the
//!   facts, so no event is claimed twice; remembers and recalls continue meanwhile.
//!
//! Ordering: a remember commits its row before inserting into the index, so every id a search
//! returns is already readable by rerank (no `MissingEvent` under load).
#![deny(missing_docs)]

pub mod cache;
pub mod cluster;
pub mod consolidate;
pub mod corpus;
pub mod durability;
pub mod embed;
pub mod error;
pub mod fixed_hash;
pub mod index;
pub mod quality;
pub mod recall;
pub mod remember;
pub mod resilience;
pub mod settings;
pub mod store;
pub mod store_health;

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use cache::{CacheKey, CacheUsage, RecallCache};
pub use consolidate::{ConsolidateOptions, ConsolidationReport};
pub use corpus::{Corpus, CorpusConfig, Event, EventStream, NewEvent, Query};
pub use embed::Embedder;
pub use error::{EngineError, Result};
pub use index::{Hit, IvfIndex};
pub use recall::{RecallResult, RerankWeights};
pub use resilience::degrade::Degraded;
pub use resilience::embed_backend::EmbedBackend;
pub use resilience::health::Health;
pub use resilience::{ResilienceConfig, ResilienceStats};
pub use store::{Fact, Store};

/// Engine settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Embedding dimension (fixed for the lifetime of a store).
    pub dim: usize,
    /// IVF lists; 0 picks [`EngineConfig::auto_nlist`] from the number of events at training.
    pub nlist: usize,
    /// IVF lists probed per search; 0 picks [`EngineConfig::auto_nprobe`] from the lists the
    /// index actually has.
    pub nprobe: usize,
    /// Lloyd iterations when training the IVF centroids.
    pub train_iterations: usize,
    /// At most this many vectors train the IVF centroids.
    pub train_sample: usize,
    /// Seed of IVF training.
    pub seed: u64,
    /// Candidates fetched by vector search and re-ranked (at least `k`).
    pub candidates: usize,
    /// Re-ranking weights.
    pub weights: RerankWeights,
    /// Recall cache capacity in results (0 disables the cache).
    pub cache_capacity: usize,
    /// Rows per transaction when bulk loading a corpus.
    pub bulk_batch: usize,
    /// Most SQLite read connections open at once (recall's rerank, counts, consolidation's
    /// backlog reads); concurrent reads beyond that wait for a free one. At least 1.
    pub read_connections: usize,
    /// Milliseconds between background WAL checkpoints; 0 runs no checkpoint thread and the
    /// owner calls [`Engine::checkpoint`] (instructions passes do, between operations).
    pub checkpoint_ms: u64,
    /// Deadlines, retries, breakers and degraded answers (see [`resilience`]).
    pub resilience: ResilienceConfig,
    /// Memory budgets of the recall cache and consolidation batches.
    pub memory: MemoryBudget,
}

/// Memory budgets (`[engine.memory]`): under pressure the engine evicts or works in smaller
/// pieces instead of growing, and refuses with [`EngineError::MemoryBudget`] what cannot fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemoryBudget {
    /// Most bytes the recall cache holds (0: only `cache_capacity` limits it).
    pub cache_bytes: usize,
    /// Most bytes one consolidation batch may hold (its events, embeddings and clustering
    /// state); a batch is cut to fit. 0: no limit.
    pub consolidation_bytes: usize,
}

impl Default for MemoryBudget {
    fn default() -> Self {
        MemoryBudget {
            cache_bytes: 32 << 20,
            consolidation_bytes: 256 << 20,
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            dim: embed::DEFAULT_DIM,
            nlist: 0,
            nprobe: 0,
            train_iterations: 10,
            train_sample: 16_384,
            seed: 11,
            candidates: 50,
            weights: RerankWeights::default(),
            cache_capacity: 1_024,
            bulk_batch: store::DEFAULT_BULK_BATCH,
            read_connections: store::DEFAULT_READ_CONNECTIONS,
            checkpoint_ms: 250,
            resilience: ResilienceConfig::default(),
            memory: MemoryBudget::default(),
        }
    }
}

impl EngineConfig {
    /// The `nlist` used for `n` events when `nlist` is 0: `0.45 * sqrt(n)` (64 lists at 20,000
    /// events, 142 at 100,000), between 1 and 1024.
    pub fn auto_nlist(n: usize) -> usize {
        ((n as f64).sqrt() * 0.45).round().clamp(1.0, 1024.0) as usize
    }

    /// The `nprobe` used with `nlist` lists when `nprobe` is 0: three eighths of the lists,
    /// at least 12 (small indexes have few, small lists), at most all of them.
    ///
    /// Short queries of rare words route poorly to topic centroids, so IVF needs a wide probe
    /// to keep recall@10 against exact search at 0.95 or more; it still scans well under half
    /// of the vectors.
    pub fn auto_nprobe(nlist: usize) -> usize {
        (nlist * 3).div_ceil(8).max(12).min(nlist).max(1)
    }

    /// The `nlist` this configuration uses for `n` events.
    pub fn effective_nlist(&self, n: usize) -> usize {
        if self.nlist == 0 {
            Self::auto_nlist(n)
        } else {
            self.nlist
        }
    }

    /// The `nprobe` this configuration uses on an index with `nlist` lists.
    pub fn effective_nprobe(&self, nlist: usize) -> usize {
        if self.nprobe == 0 {
            Self::auto_nprobe(nlist)
        } else {
            self.nprobe
        }
    }

    /// Checks ranges; the message names the offending field.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(EngineError::InvalidConfig(format!("engine: {m}")));
        if self.dim == 0 || self.dim > 65_536 {
            return bad("dim must be in 1..=65536");
        }
        if self.candidates == 0 {
            return bad("candidates must be at least 1");
        }
        if self.train_iterations == 0 {
            return bad("train_iterations must be at least 1");
        }
        if self.bulk_batch == 0 {
            return bad("bulk_batch must be at least 1");
        }
        if self.read_connections == 0 || self.read_connections > 256 {
            return bad("read_connections must be in 1..=256");
        }
        let w = &self.weights;
        if ![w.cosine, w.lexical, w.recency]
            .iter()
            .all(|x| x.is_finite())
            || !w.recency_half_life_s.is_finite()
        {
            return bad("rerank weights must be finite numbers");
        }
        self.resilience.validate()
    }
}

/// The agent-memory engine: one SQLite store, one in-memory vector index, one recall cache.
/// Shareable between threads; see the module docs for how.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    store: Store,
    index: IvfIndex,
    embedder: Embedder,
    cache: Mutex<RecallCache>,
    /// Newest event timestamp: the reference point of recency scores.
    now_ts: AtomicI64,
    /// Breakers, backoff and counters of the resilience layer.
    guards: resilience::Guards,
    /// Bytes one consolidation batch may hold (0: no limit); changed by
    /// [`Engine::set_memory_budget`].
    consolidation_bytes: std::sync::atomic::AtomicUsize,
    /// A pluggable embedder replacing the built-in one (see [`Engine::set_embed_backend`]).
    backend: Option<Arc<dyn EmbedBackend>>,
}

// The workload runner moves engines between threads; the load generator shares one.
const _: fn() = || {
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<Engine>();
};

impl Engine {
    /// Opens (or creates) the store at `path` and rebuilds the vector index from it.
    ///
    /// A damaged store or WAL is refused with [`EngineError::Corrupt`]; see [`durability`]
    /// and [`durability::recover`].
    pub fn open(path: impl AsRef<Path>, config: EngineConfig) -> Result<Engine> {
        config.validate()?;
        let every = (config.checkpoint_ms > 0)
            .then(|| std::time::Duration::from_millis(config.checkpoint_ms));
        // Before any connection: one could checkpoint a damaged WAL's valid prefix and
        // delete the rest.
        durability::wal::check(path.as_ref())?;
        let store = Store::open_with(path.as_ref(), config.dim, config.read_connections, every)
            .map_err(|e| durability::verify::as_corrupt(path.as_ref(), e))?;
        durability::verify::quick_check(&store)?;
        let index = IvfIndex::new(config.dim);
        // Verifies every row's checksum on the way: damage is an error, never served.
        durability::verify::load_verified(&store, |id, v| index.insert(id, v))?;
        let now_ts = store.max_ts()?.unwrap_or(0);
        let r = &config.resilience;
        store.set_waits(
            Duration::from_millis(r.write_deadline_ms),
            Duration::from_millis(r.read_wait_ms),
            Duration::from_millis(r.busy_timeout_ms),
        )?;
        let mut cache = RecallCache::new(config.cache_capacity);
        cache.set_budget(config.memory.cache_bytes);
        let engine = Engine {
            consolidation_bytes: std::sync::atomic::AtomicUsize::new(
                config.memory.consolidation_bytes,
            ),
            guards: resilience::Guards::new(r),
            backend: None,
            embedder: Embedder::new(config.dim),
            cache: Mutex::new(cache),
            config,
            store,
            index,
            now_ts: AtomicI64::new(now_ts),
        };
        engine.train_index();
        Ok(engine)
    }

    /// The configuration in use.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    fn cache(&self) -> MutexGuard<'_, RecallCache> {
        // A panic while holding the lock leaves at worst a missing entry: still consistent.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bulk-loads a corpus into an empty store (ids as generated) and trains the index.
    ///
    /// Recorded as the stage `load`, which is not part of any measured pipeline. Setup, so it
    /// takes the engine exclusively.
    pub fn load_corpus(&mut self, corpus: &Corpus) -> Result<()> {
        let _s = perfcheck_stage::stage!("load");
        let existing = self.store.event_count()?;
        if existing > 0 {
            return Err(EngineError::StoreNotEmpty(existing));
        }
        let dim = self.config.dim;
        let batch = self.config.bulk_batch;
        // One chunk at a time: the index is the only full copy of the embeddings in memory.
        let mut flat = vec![0.0f32; batch.min(corpus.events.len()) * dim];
        for chunk in corpus.events.chunks(batch) {
            let flat = &mut flat[..chunk.len() * dim];
            let mut news = Vec::with_capacity(chunk.len());
            for (e, row) in chunk.iter().zip(flat.chunks_exact_mut(dim)) {
                self.embedder.embed_into(&e.text, row);
                news.push(e.to_new_event());
            }
            let rows = chunk
                .iter()
                .zip(&news)
                .zip(flat.chunks_exact(dim))
                .map(|((e, n), v)| (e.id, n, v));
            self.store.insert_events_bulk(rows, batch)?;
            for (e, v) in chunk.iter().zip(flat.chunks_exact(dim)) {
                self.index.insert(e.id, v);
            }
        }
        self.now_ts
            .store(self.store.max_ts()?.unwrap_or(0), Ordering::Release);
        self.train_index();
        self.cache().invalidate();
        Ok(())
    }

    /// (Re)trains the IVF index on everything stored. Done by `open` and `load_corpus`;
    /// call it again after many `remember`s to rebalance the lists. Searches and inserts wait
    /// while it runs.
    pub fn train_index(&self) {
        let nlist = self.config.effective_nlist(self.index.len());
        self.index.train(index::TrainParams {
            nlist,
            iterations: self.config.train_iterations,
            sample: self.config.train_sample,
            seed: self.config.seed,
        });
        // Rankings may change with the lists probed.
        self.cache().invalidate();
    }

    /// Stores a new event (stages `embed`, `persist`, `index_insert`) and returns its id.
    /// Invalidates the recall cache.
    ///
    /// Transient lock errors are retried until the write deadline; a remember that returns
    /// an error stored nothing.
    pub fn remember(&self, event: &NewEvent) -> Result<i64> {
        // An open write breaker answers before the embedding is made for nothing.
        self.guards.precheck_write()?;
        let v = self.embed_document(&event.text)?;
        // Committed before it is searchable: every id the index returns can be read.
        let id = self
            .guards
            .write("remember", || remember::persist(&self.store, event, &v))?;
        remember::index_insert(&self.index, id, &v);
        self.now_ts.fetch_max(event.ts, Ordering::AcqRel);
        // After the insert: a recall that saw the old generation cannot cache its result.
        self.cache().invalidate();
        Ok(id)
    }

    /// The `k` best memories for `query` (stages `embed_query`, `vector_search`, `rerank`,
    /// `format`), or the cached result of an identical earlier recall, without running stages.
    pub fn recall(&self, query: &str, k: usize) -> Result<RecallResult> {
        let key = CacheKey::new(query, k);
        let generation = {
            let mut cache = self.cache();
            if let Some(hit) = cache.get(&key) {
                drop(cache);
                let mut hit = RecallResult::clone(&hit);
                hit.cached = true;
                return Ok(hit);
            }
            cache.generation()
        };
        let q = match self.embed_query(query) {
            Ok(q) => q,
            Err(e) => return self.degraded_lexical(query, k, &e),
        };
        let n = self.config.candidates.max(k);
        let candidates = recall::vector_search(&self.index, &q, n, self.nprobe());
        let ranked = self.guards.read(|| {
            recall::rerank(
                &self.store,
                query,
                &candidates,
                k,
                &self.config.weights,
                self.now_ts(),
            )
        });
        let ranked = match ranked {
            Ok(r) => r,
            Err(e) if resilience::retry::is_dependency_failure(&e) => {
                self.guards.count_degraded(Degraded::IndexOnly);
                return resilience::degrade::index_only(query, &candidates, k, &e.to_string());
            }
            Err(e) => return Err(e),
        };
        let json = recall::format(query, &ranked)?;
        let result = RecallResult {
            ids: ranked.iter().map(|r| r.id).collect(),
            scores: ranked.iter().map(|r| r.score).collect(),
            json,
            cached: false,
            degraded: None,
        };
        if self.config.cache_capacity > 0 {
            self.cache().put_if_current(generation, key, result.clone());
        }
        Ok(result)
    }

    /// Consolidates pending events into facts (stages `load_events`, `cluster`,
    /// `extract_patterns`, `validate`, `store_facts`, once per batch). Concurrent calls take
    /// turns.
    ///
    /// Each batch is one transaction; lock errors are retried until the write deadline.
    /// Batches are cut to fit the memory budget; one that cannot hold even `min_support`
    /// events is refused with [`EngineError::MemoryBudget`] before anything is read.
    pub fn consolidate(&self, opts: &ConsolidateOptions) -> Result<ConsolidationReport> {
        let budget = self.consolidation_bytes.load(Ordering::Relaxed);
        let mut fitted;
        let opts = if budget == 0 {
            opts
        } else {
            let per_event = consolidate::bytes_per_event(self.config.dim);
            let fits = budget / per_event;
            let least = opts.min_support.max(2);
            if fits < least {
                return Err(EngineError::MemoryBudget {
                    op: "consolidation",
                    needed: least * per_event,
                    budget,
                });
            }
            fitted = opts.clone();
            fitted.batch = opts.batch.min(fits);
            &fitted
        };
        self.guards
            .write("consolidate", || consolidate::run(&self.store, opts))
    }

    /// Changes the memory budgets now: the cache evicts down to its new budget at once,
    /// consolidations started from now on fit theirs.
    pub fn set_memory_budget(&self, budget: MemoryBudget) {
        self.cache().set_budget(budget.cache_bytes);
        self.consolidation_bytes
            .store(budget.consolidation_bytes, Ordering::Relaxed);
    }

    /// What the recall cache holds against its budget.
    pub fn cache_usage(&self) -> CacheUsage {
        self.cache().usage()
    }

    /// Replaces the built-in embedder by `backend` (a service that may fail or hang), for
    /// remembers and recalls from now on. Setup, so it takes the engine exclusively.
    pub fn set_embed_backend(&mut self, backend: Arc<dyn EmbedBackend>) {
        self.backend = Some(backend);
    }

    /// A stored event's embedding: from the backend if one is set, through its breaker and
    /// with its deadline; an unavailable embedder means the event is not stored.
    fn embed_document(&self, text: &str) -> Result<Vec<f32>> {
        match &self.backend {
            None => Ok(remember::embed(&self.embedder, text)),
            Some(b) => {
                let _s = perfcheck_stage::stage!("embed");
                self.embed_with(b.as_ref(), text)
            }
        }
    }

    /// A query's embedding, as [`Engine::embed_document`].
    fn embed_query(&self, query: &str) -> Result<Vec<f32>> {
        match &self.backend {
            None => Ok(recall::embed_query(&self.embedder, query)),
            Some(b) => {
                let _s = perfcheck_stage::stage!("embed_query");
                self.embed_with(b.as_ref(), query)
            }
        }
    }

    fn embed_with(&self, b: &dyn EmbedBackend, text: &str) -> Result<Vec<f32>> {
        let admit = self.guards.admit(&self.guards.embed)?;
        let timeout = Duration::from_millis(self.config.resilience.embed_timeout_ms);
        let r = b
            .embed(text, Instant::now() + timeout)
            .map_err(|reason| EngineError::Unavailable {
                what: "embedder",
                reason,
                retry_after: None,
            })
            .and_then(|v| {
                if v.len() == self.config.dim {
                    Ok(v)
                } else {
                    Err(EngineError::InvalidConfig(format!(
                        "the embedding backend returned {} dimensions, the store has {}",
                        v.len(),
                        self.config.dim
                    )))
                }
            });
        if r.is_err() {
            self.guards.count_embed_failure();
        }
        resilience::Guards::report(&self.guards.embed, admit, &r);
        r
    }

    /// Recall without a query embedding: keywords over recent memories, marked degraded.
    fn degraded_lexical(&self, query: &str, k: usize, why: &EngineError) -> Result<RecallResult> {
        let r = &self.config.resilience;
        let result = self.guards.read(|| {
            resilience::degrade::lexical(
                &self.store,
                query,
                k,
                r.lexical_window,
                &self.config.weights,
                self.now_ts(),
                &why.to_string(),
            )
        })?;
        self.guards.count_degraded(Degraded::Lexical);
        Ok(result)
    }

    /// A quick health report: one read, breaker states, index and cache counts; no write
    /// and no integrity scan (see [`durability`] for those).
    pub fn health(&self) -> Health {
        let stored = self.store.event_count();
        let (pool_open, pool_idle, pool_max) = self.store.pool_usage();
        let (cache_entries, (cache_hits, cache_misses)) = {
            let c = self.cache();
            (c.len(), c.stats())
        };
        let indexed = self.index.len() as u64;
        let breakers = [&self.guards.reads, &self.guards.writes, &self.guards.embed]
            .iter()
            .map(|b| {
                let (opened, rejected) = b.counts();
                resilience::health::BreakerHealth {
                    name: b.name().to_owned(),
                    state: b.state(),
                    opened,
                    rejected,
                }
            })
            .collect();
        Health {
            status: resilience::health::Status::Ok,
            store_readable: stored.is_ok(),
            index_consistent: stored.as_ref().ok().map(|n| *n == indexed),
            events_stored: stored.as_ref().ok().copied(),
            store_error: stored.err().map(|e| e.to_string()),
            events_indexed: indexed,
            breakers,
            cache_entries,
            cache_capacity: self.config.cache_capacity,
            cache_hits,
            cache_misses,
            pool_open,
            pool_idle,
            pool_max,
            resilience: self.guards.stats(),
            problems: Vec::new(),
        }
        .judge()
    }

    /// What the resilience layer did so far (retries, fail-fast calls, degraded answers).
    pub fn resilience_stats(&self) -> ResilienceStats {
        self.guards.stats()
    }

    /// Marks every event pending again and deletes all facts, so consolidation can be measured
    /// again on the same data.
    pub fn reset_consolidation(&self) -> Result<()> {
        self.store.reset_consolidation()
    }

    /// Copies the SQLite WAL back into the database now (engines with `checkpoint_ms = 0`).
    pub fn checkpoint(&self) -> Result<()> {
        self.store.checkpoint()
    }

    /// Recall cache `(hits, misses)`.
    pub fn cache_stats(&self) -> (u64, u64) {
        self.cache().stats()
    }

    /// Number of stored events.
    pub fn event_count(&self) -> Result<u64> {
        self.store.event_count()
    }

    /// Number of stored facts.
    pub fn fact_count(&self) -> Result<u64> {
        self.store.fact_count()
    }

    /// Number of events consolidation has not examined yet (the backlog).
    pub fn unconsolidated_count(&self) -> Result<u64> {
        self.store.pending_count()
    }

    /// All facts, by id.
    pub fn facts(&self) -> Result<Vec<Fact>> {
        self.store.facts()
    }

    /// The SQLite store (read access for quality checks and benchmarks).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// IVF lists probed per search with the current index.
    pub fn nprobe(&self) -> usize {
        self.config.effective_nprobe(self.index.nlist())
    }

    /// The vector index.
    pub fn index(&self) -> &IvfIndex {
        &self.index
    }

    /// The embedder.
    pub fn embedder(&self) -> &Embedder {
        &self.embedder
    }

    /// Timestamp recency is measured from (the newest stored event).
    pub fn now_ts(&self) -> i64 {
        self.now_ts.load(Ordering::Acquire)
    }
}
