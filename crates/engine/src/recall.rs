//! The recall pipeline's stages: `embed_query` -> `vector_search` -> `rerank` -> `format`.
//!
//! Each stage is its own non-inlined function opening its stage guard first, so stage names
//! show up as frames in CPU profiles and the recorder attributes time and allocations to them.

use serde::{Deserialize, Serialize};

use super::embed::{term_set, word_hash, words, Embedder};
use super::error::{EngineError, Result};
use super::index::{Hit, IvfIndex};
use super::store::Store;

/// Weights of the hybrid re-ranking score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RerankWeights {
    /// Weight of cosine similarity between query and event embeddings.
    pub cosine: f32,
    /// Weight of lexical overlap: the share of distinct query words present in the event.
    pub lexical: f32,
    /// Weight of recency (1 for the newest event, halving every `recency_half_life_s`).
    pub recency: f32,
    /// Recency half-life in seconds.
    pub recency_half_life_s: f64,
}

impl Default for RerankWeights {
    fn default() -> Self {
        Self {
            cosine: 0.5,
            lexical: 0.45,
            recency: 0.05,
            recency_half_life_s: 7.0 * 86_400.0,
        }
    }
}

/// Result of one recall.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecallResult {
    /// Event ids, best first.
    pub ids: Vec<i64>,
    /// Hybrid scores, aligned with `ids`.
    pub scores: Vec<f32>,
    /// JSON rendering of the results (what a client would receive).
    pub json: String,
    /// True when served from the cache (no stage ran).
    pub cached: bool,
    /// Set when a dependency was unavailable and the answer was made another way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degraded: Option<crate::resilience::degrade::Degraded>,
}

/// One re-ranked candidate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ranked {
    /// Event id.
    pub id: i64,
    /// Hybrid score.
    pub score: f32,
    /// Cosine component (unweighted).
    pub cosine: f32,
    /// Lexical overlap component (unweighted, 0..=1).
    pub lexical: f32,
    /// Recency component (unweighted, 0..=1).
    pub recency: f32,
    /// Event timestamp.
    pub ts: i64,
    /// Event text.
    pub text: String,
}

/// Stage `embed_query`: the query's embedding.
#[inline(never)]
pub fn embed_query(embedder: &Embedder, query: &str) -> Vec<f32> {
    let _s = perfcheck_stage::stage!("embed_query");
    embedder.embed(query)
}

/// Stage `vector_search`: the `n` nearest events by IVF search over `nprobe` lists.
#[inline(never)]
pub fn vector_search(index: &IvfIndex, query: &[f32], n: usize, nprobe: usize) -> Vec<Hit> {
    let _s = perfcheck_stage::stage!("vector_search");
    index.search(query, n, nprobe)
}

/// Stage `rerank`: fetches each candidate's text and timestamp from the store and orders the
/// candidates by `cosine * w_c + lexical * w_l + recency * w_r`, keeping the best `k`.
///
/// `now_ts` is the reference time for recency (the newest event in the store), so scores do
/// not depend on the wall clock and runs stay repeatable.
#[inline(never)]
pub fn rerank(
    store: &Store,
    query: &str,
    candidates: &[Hit],
    k: usize,
    weights: &RerankWeights,
    now_ts: i64,
) -> Result<Vec<Ranked>> {
    let _s = perfcheck_stage::stage!("rerank");
    let query_terms = term_set(query);
    let half_life = weights.recency_half_life_s.max(1.0);
    let mut ranked = Vec::with_capacity(candidates.len());
    // One pool checkout and one read snapshot for all candidates.
    let ids: Vec<i64> = candidates.iter().map(|c| c.id).collect();
    let rows = store.event_texts(&ids)?;
    for (c, row) in candidates.iter().zip(rows) {
        let (ts, text) = row.ok_or(EngineError::MissingEvent(c.id))?;
        let lexical = lexical_overlap(&query_terms, &text);
        let recency = recency(now_ts, ts, half_life);
        let score =
            weights.cosine * c.score + weights.lexical * lexical + weights.recency * recency;
        ranked.push(Ranked {
            id: c.id,
            score,
            cosine: c.score,
            lexical,
            recency,
            ts,
            text,
        });
    }
    ranked.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
    ranked.truncate(k);
    Ok(ranked)
}

/// The share of the distinct query words (`query_terms`, from [`term_set`]) that occur in
/// `text`; 0 for a query without words.
pub fn lexical_overlap(query_terms: &[u64], text: &str) -> f32 {
    if query_terms.is_empty() {
        return 0.0;
    }
    let mut seen = vec![false; query_terms.len()];
    for w in words(text) {
        if let Ok(i) = query_terms.binary_search(&word_hash(w)) {
            seen[i] = true;
        }
    }
    seen.iter().filter(|&&s| s).count() as f32 / query_terms.len() as f32
}

/// Recency of an event at `ts` seen from `now_ts`: 1 for the newest, halving every
/// `half_life_s` seconds.
pub fn recency(now_ts: i64, ts: i64, half_life_s: f64) -> f32 {
    let age = (now_ts - ts).max(0) as f64;
    0.5f64.powf(age / half_life_s) as f32
}

#[derive(Serialize)]
struct Rendered<'a> {
    query: &'a str,
    count: usize,
    results: Vec<RenderedHit<'a>>,
}

#[derive(Serialize)]
struct RenderedHit<'a> {
    rank: usize,
    id: i64,
    score: f32,
    ts: i64,
    text: &'a str,
    why: Why,
}

#[derive(Serialize)]
struct Why {
    cosine: f32,
    lexical: f32,
    recency: f32,
}

/// Stage `format`: the JSON document a client would receive.
#[inline(never)]
pub fn format(query: &str, ranked: &[Ranked]) -> Result<String> {
    let _s = perfcheck_stage::stage!("format");
    let doc = Rendered {
        query,
        count: ranked.len(),
        results: ranked
            .iter()
            .enumerate()
            .map(|(i, r)| RenderedHit {
                rank: i + 1,
                id: r.id,
                score: r.score,
                ts: r.ts,
                text: &r.text,
                why: Why {
                    cosine: r.cosine,
                    lexical: r.lexical,
                    recency: r.recency,
                },
            })
            .collect(),
    };
    Ok(serde_json::to_string(&doc)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::NewEvent;

    fn store_with(texts: &[(&str, i64)]) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("r.db"), 4).unwrap();
        for (text, ts) in texts {
            let ev = NewEvent {
                session: 1,
                ts: *ts,
                text: (*text).to_owned(),
                tags: Vec::new(),
            };
            store.insert_event(&ev, &[0.0; 4]).unwrap();
        }
        (dir, store)
    }

    #[test]
    fn rerank_combines_cosine_lexical_overlap_and_recency() {
        let day = 86_400;
        let (_d, store) = store_with(&[
            ("kalo miren toshu", 100 * day),     // id 1: every query word, old
            ("unrelated words only", 100 * day), // id 2: higher cosine, no overlap
            ("kalo miren toshu", 107 * day),     // id 3: same as 1 but one half-life newer
        ]);
        let hits = [
            Hit { id: 1, score: 0.5 },
            Hit { id: 2, score: 0.7 },
            Hit { id: 3, score: 0.5 },
        ];
        let w = RerankWeights::default();
        let r = rerank(&store, "Kalo, MIREN toshu", &hits, 3, &w, 107 * day).unwrap();
        assert_eq!(r.iter().map(|x| x.id).collect::<Vec<_>>(), vec![3, 1, 2]);
        assert_eq!(r[0].lexical, 1.0);
        assert_eq!(r[2].lexical, 0.0);
        assert!((r[0].recency - 1.0).abs() < 1e-6);
        assert!((r[1].recency - 0.5).abs() < 1e-6);
        let expected = w.cosine * 0.5 + w.lexical + w.recency * 0.5;
        assert!((r[1].score - expected).abs() < 1e-6);
        assert_eq!(rerank(&store, "kalo", &hits, 1, &w, 0).unwrap().len(), 1);
        let missing = rerank(&store, "x", &[Hit { id: 99, score: 1.0 }], 1, &w, 0);
        assert!(matches!(missing, Err(EngineError::MissingEvent(99))));
    }

    #[test]
    fn format_renders_ranked_results_as_json() {
        let ranked = vec![Ranked {
            id: 7,
            score: 0.75,
            cosine: 0.5,
            lexical: 1.0,
            recency: 0.25,
            ts: 42,
            text: "say \"hi\"".into(),
        }];
        let json = format("q", &ranked).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["count"], 1);
        assert_eq!(v["results"][0]["id"], 7);
        assert_eq!(v["results"][0]["rank"], 1);
        assert_eq!(v["results"][0]["text"], "say \"hi\"");
        assert_eq!(v["results"][0]["why"]["lexical"], 1.0);
    }
}
