//! Degraded recall answers, for when a dependency of the full pipeline is unavailable.
//! Each says how it was made and why; none is ever cached.

use serde::{Deserialize, Serialize};

use crate::embed::term_set;
use crate::error::Result;
use crate::index::Hit;
use crate::recall::{lexical_overlap, recency, RecallResult, RerankWeights};
use crate::store::Store;

/// How a degraded recall was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Degraded {
    /// From the vector index alone, ranked by cosine similarity: no text, no lexical or
    /// recency score (store reads were unavailable).
    IndexOnly,
    /// By keywords over the most recent memories (no query embedding was available).
    Lexical,
}

impl Degraded {
    /// `index_only` or `lexical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Degraded::IndexOnly => "index_only",
            Degraded::Lexical => "lexical",
        }
    }
}

#[derive(Serialize)]
struct Rendered<'a> {
    query: &'a str,
    count: usize,
    degraded: Degraded,
    reason: &'a str,
    results: Vec<Hit1<'a>>,
}

#[derive(Serialize)]
struct Hit1<'a> {
    rank: usize,
    id: i64,
    score: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    ts: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
}

/// One answer: id, score, and timestamp and text when the store gave them.
type Answer<'a> = (i64, f32, Option<(i64, &'a str)>);

fn result(query: &str, mode: Degraded, reason: &str, hits: &[Answer<'_>]) -> Result<RecallResult> {
    let doc = Rendered {
        query,
        count: hits.len(),
        degraded: mode,
        reason,
        results: hits
            .iter()
            .enumerate()
            .map(|(i, (id, score, row))| Hit1 {
                rank: i + 1,
                id: *id,
                score: *score,
                ts: row.map(|r| r.0),
                text: row.map(|r| r.1),
            })
            .collect(),
    };
    Ok(RecallResult {
        ids: hits.iter().map(|h| h.0).collect(),
        scores: hits.iter().map(|h| h.1).collect(),
        json: serde_json::to_string(&doc)?,
        cached: false,
        degraded: Some(mode),
    })
}

/// The best `k` of the vector search's candidates by cosine alone.
pub fn index_only(query: &str, candidates: &[Hit], k: usize, reason: &str) -> Result<RecallResult> {
    let mut c = candidates.to_vec();
    c.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
    c.truncate(k);
    let hits: Vec<_> = c.iter().map(|h| (h.id, h.score, None)).collect();
    result(query, Degraded::IndexOnly, reason, &hits)
}

/// The best `k` of the newest `window` memories by the share of query words they contain
/// (memories with none are left out), then recency; scored like rerank without cosine.
pub fn lexical(
    store: &Store,
    query: &str,
    k: usize,
    window: usize,
    weights: &RerankWeights,
    now_ts: i64,
    reason: &str,
) -> Result<RecallResult> {
    let terms = term_set(query);
    let rows = store.recent_texts(window)?;
    let half_life = weights.recency_half_life_s.max(1.0);
    let mut scored: Vec<(f32, usize)> = Vec::new();
    for (i, (_, ts, text)) in rows.iter().enumerate() {
        let lexical = lexical_overlap(&terms, text);
        if lexical > 0.0 {
            let r = recency(now_ts, *ts, half_life);
            scored.push((weights.lexical * lexical + weights.recency * r, i));
        }
    }
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(rows[b.1].0.cmp(&rows[a.1].0)));
    scored.truncate(k);
    let hits: Vec<_> = scored
        .iter()
        .map(|&(s, i)| (rows[i].0, s, Some((rows[i].1, rows[i].2.as_str()))))
        .collect();
    result(query, Degraded::Lexical, reason, &hits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::NewEvent;

    #[test]
    fn lexical_ranks_recent_memories_by_query_words_and_says_it_is_degraded() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("d.db"), 4).unwrap();
        for (text, ts) in [
            ("alpha beta", 10),
            ("gamma", 20),
            ("alpha", 30),
            ("beta alpha delta", 5),
        ] {
            let ev = NewEvent {
                session: 1,
                ts,
                text: text.into(),
                tags: Vec::new(),
            };
            store.insert_event(&ev, &[0.0; 4]).unwrap();
        }
        let w = RerankWeights::default();
        let r = lexical(&store, "Alpha BETA", 10, 100, &w, 30, "embedder down").unwrap();
        // Both words first (4 is older than 1), then one word; "gamma" has none.
        assert_eq!(r.ids, vec![1, 4, 3]);
        assert_eq!(r.degraded, Some(Degraded::Lexical));
        let v: serde_json::Value = serde_json::from_str(&r.json).unwrap();
        assert_eq!(v["degraded"], "lexical");
        assert_eq!(v["reason"], "embedder down");
        assert_eq!(v["results"][0]["text"], "alpha beta");
        // The window is the newest events only.
        let r = lexical(&store, "alpha beta", 10, 2, &w, 30, "x").unwrap();
        assert_eq!(r.ids, vec![4, 3]);
    }

    #[test]
    fn index_only_keeps_the_best_cosine_candidates_without_text() {
        let c = [
            Hit { id: 5, score: 0.2 },
            Hit { id: 9, score: 0.9 },
            Hit { id: 7, score: 0.5 },
        ];
        let r = index_only("q", &c, 2, "store reads unavailable").unwrap();
        assert_eq!(r.ids, vec![9, 7]);
        assert_eq!(r.scores, vec![0.9, 0.5]);
        let v: serde_json::Value = serde_json::from_str(&r.json).unwrap();
        assert_eq!(v["degraded"], "index_only");
        assert!(v["results"][0].get("text").is_none());
    }
}
