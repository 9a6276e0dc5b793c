//! Quality measures against the corpus' ground truth, so a performance change that silently
//! degrades results can be caught too.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::corpus::{Corpus, Query};
use super::embed::Embedder;
use super::error::Result;
use super::index::IvfIndex;
use super::Engine;

/// Share of `queries` whose relevant event appears in the engine's top `k` (full recall
/// pipeline, cache included: a cached answer is the same answer).
pub fn ground_truth_recall(engine: &mut Engine, queries: &[Query], k: usize) -> Result<f64> {
    if queries.is_empty() {
        return Ok(0.0);
    }
    let mut found = 0usize;
    for q in queries {
        let r = engine.recall(&q.text, k)?;
        if q.relevant.iter().any(|id| r.ids.contains(id)) {
            found += 1;
        }
    }
    Ok(found as f64 / queries.len() as f64)
}

/// Mean share of the exact top-`k` neighbours that IVF search with `nprobe` also returns.
pub fn ivf_recall(
    index: &IvfIndex,
    embedder: &Embedder,
    queries: &[Query],
    k: usize,
    nprobe: usize,
) -> f64 {
    let mut total = 0.0;
    let mut n = 0usize;
    for q in queries {
        let v = embedder.embed(&q.text);
        let exact: HashSet<i64> = index.search_exact(&v, k).iter().map(|h| h.id).collect();
        if exact.is_empty() {
            continue;
        }
        let approx = index.search(&v, k, nprobe);
        let hits = approx.iter().filter(|h| exact.contains(&h.id)).count();
        total += hits as f64 / exact.len() as f64;
        n += 1;
    }
    if n == 0 {
        0.0
    } else {
        total / n as f64
    }
}

/// [`ivf_recall`] of the engine's own index at its effective `nprobe`.
pub fn engine_ivf_recall(engine: &Engine, queries: &[Query], k: usize) -> f64 {
    ivf_recall(
        engine.index(),
        engine.embedder(),
        queries,
        k,
        engine.nprobe(),
    )
}

/// How well consolidation recovered the planted topics.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Purity {
    /// Share of events in facts that belong to their fact's majority topic (noise events and
    /// events of other topics count against it).
    pub purity: f64,
    /// Facts with at least one corpus event.
    pub facts: usize,
    /// Corpus events linked to a fact.
    pub events_in_facts: usize,
    /// Planted topics that are the majority topic of at least one fact.
    pub topics_recovered: usize,
    /// Planted topics present in the corpus.
    pub topics_total: usize,
    /// Share of topical (non-noise) corpus events that ended up in a fact.
    pub topical_coverage: f64,
    /// Share of noise events that ended up in a fact (lower is better).
    pub noise_in_facts: f64,
}

/// Purity of the engine's facts against the corpus' planted topics. Events not in the corpus
/// (added later by `remember`) are ignored.
pub fn consolidation_purity(engine: &Engine, corpus: &Corpus) -> Result<Purity> {
    let topic_of: HashMap<i64, Option<u32>> =
        corpus.events.iter().map(|e| (e.id, e.topic)).collect();
    // BTreeMap: deterministic iteration, so ties in majority are broken the same way each run.
    let mut by_fact: BTreeMap<i64, BTreeMap<Option<u32>, usize>> = BTreeMap::new();
    for (event, fact) in engine.store().fact_links()? {
        if let Some(t) = topic_of.get(&event) {
            *by_fact.entry(fact).or_default().entry(*t).or_insert(0) += 1;
        }
    }
    let mut majority_total = 0usize;
    let mut events_in_facts = 0usize;
    let mut noise_in = 0usize;
    let mut topical_in = 0usize;
    let mut recovered = HashSet::new();
    for counts in by_fact.values() {
        events_in_facts += counts.values().sum::<usize>();
        noise_in += counts.get(&None).copied().unwrap_or(0);
        topical_in += counts
            .iter()
            .filter(|(t, _)| t.is_some())
            .map(|(_, c)| c)
            .sum::<usize>();
        if let Some((t, c)) = counts
            .iter()
            .filter_map(|(t, c)| t.map(|t| (t, *c)))
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
        {
            majority_total += c;
            recovered.insert(t);
        }
    }
    let topics_total = corpus
        .events
        .iter()
        .filter_map(|e| e.topic)
        .collect::<HashSet<_>>()
        .len();
    let topical = corpus.events.iter().filter(|e| e.topic.is_some()).count();
    let noise = corpus.events.len() - topical;
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    Ok(Purity {
        purity: ratio(majority_total, events_in_facts),
        facts: by_fact.len(),
        events_in_facts,
        topics_recovered: recovered.len(),
        topics_total,
        topical_coverage: ratio(topical_in, topical),
        noise_in_facts: ratio(noise_in, noise),
    })
}
