//! Consolidation: turns batches of raw events into semantic facts.
//!
//! Stages per batch: `load_events` -> `cluster` -> `extract_patterns` -> `validate` ->
//! `store_facts`. Every event of a batch ends up either linked to a fact or marked as examined
//! noise, in the same transaction as the facts, so the backlog always shrinks and a failure
//! leaves no half-written batch behind.

use super::fixed_hash::FixedMap;

use serde::{Deserialize, Serialize};

use super::cluster::{kmeans, KMeans, KMeansParams};
use super::embed::tokenize;
use super::error::{EngineError, Result};
use super::store::{FactDraft, FactWriteStats, Store};

/// Consolidation settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsolidateOptions {
    /// Most events per batch (one batch = one run of the five stages).
    pub batch: usize,
    /// Stop after this many batches (default 1: one `consolidate` call = one batch, the unit
    /// the workloads measure); `None` works through the whole backlog.
    pub max_batches: Option<usize>,
    /// Target cluster size: a batch of `n` events gets `n / events_per_cluster` clusters.
    pub events_per_cluster: usize,
    /// Lloyd iterations per batch.
    pub max_iter: usize,
    /// Fewest events a cluster needs to become a fact.
    pub min_support: usize,
    /// Lowest mean cosine similarity of a cluster's (kept) events to its centroid for a fact.
    pub min_cohesion: f32,
    /// Members less similar than this to their centroid are outliers: they are left out of
    /// the fact and marked as examined noise.
    pub min_member_similarity: f32,
    /// Salient terms stored per fact.
    pub terms_per_fact: usize,
    /// Salient terms forming the fact's unique signature.
    pub signature_terms: usize,
    /// k-means++ seed.
    pub seed: u64,
    /// TEST-ONLY fault injection: inside each batch's write transaction, fail after this many
    /// fact writes (the transaction rolls back). Never set it in production; not serialised.
    #[serde(skip)]
    pub fail_after_fact_writes: Option<usize>,
}

impl Default for ConsolidateOptions {
    fn default() -> Self {
        Self {
            batch: 1_000,
            max_batches: Some(1),
            events_per_cluster: 20,
            max_iter: 10,
            min_support: 5,
            min_cohesion: 0.45,
            min_member_similarity: 0.4,
            terms_per_fact: 5,
            signature_terms: 3,
            seed: 7,
            fail_after_fact_writes: None,
        }
    }
}

impl ConsolidateOptions {
    /// Checks ranges; the message names the offending field.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(EngineError::InvalidConfig(format!("consolidation: {m}")));
        if self.batch == 0 {
            return bad("batch must be at least 1");
        }
        if self.events_per_cluster == 0 {
            return bad("events_per_cluster must be at least 1");
        }
        if self.max_iter == 0 {
            return bad("max_iter must be at least 1");
        }
        if self.signature_terms == 0 || self.terms_per_fact < self.signature_terms {
            return bad("need 1 <= signature_terms <= terms_per_fact");
        }
        if !self.min_cohesion.is_finite() || !self.min_member_similarity.is_finite() {
            return bad("min_cohesion and min_member_similarity must be finite numbers");
        }
        Ok(())
    }
}

/// What one `consolidate` call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsolidationReport {
    /// Batches processed.
    pub batches: usize,
    /// Events loaded from the backlog.
    pub events_loaded: usize,
    /// Non-empty clusters formed.
    pub clusters: usize,
    /// Clusters accepted as facts.
    pub accepted: usize,
    /// Clusters rejected by validation.
    pub rejected: usize,
    /// New fact rows.
    pub facts_created: usize,
    /// Accepted clusters that joined an existing fact with the same signature.
    pub facts_merged: usize,
    /// Events linked to facts.
    pub events_in_facts: usize,
    /// Events marked as examined noise (rejected clusters and pruned outliers).
    pub events_rejected: usize,
}

/// A batch of pending events with flat embeddings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// Event ids.
    pub ids: Vec<i64>,
    /// Timestamps.
    pub ts: Vec<i64>,
    /// Texts.
    pub texts: Vec<String>,
    /// Embeddings, `len * dim` values.
    pub data: Vec<f32>,
    /// Embedding dimension.
    pub dim: usize,
}

impl Batch {
    /// Number of events.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when the backlog was empty.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// A candidate fact: one cluster and what describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    /// Member positions in the batch.
    pub members: Vec<usize>,
    /// Similarity of each member to the centroid (aligned with `members`).
    pub similarity: Vec<f32>,
    /// Salient terms, most salient first.
    pub terms: Vec<String>,
    /// Id of the member nearest the centroid.
    pub representative: i64,
    /// Mean member-to-centroid similarity (filled in by `validate`).
    pub cohesion: f32,
}

/// Stage `load_events`: up to `limit` pending events, oldest first.
#[inline(never)]
pub fn load_events(store: &Store, limit: usize) -> Result<Batch> {
    let _s = perfcheck_stage::stage!("load_events");
    let rows = store.load_pending(limit)?;
    let dim = store.dim();
    let mut b = Batch {
        ids: Vec::with_capacity(rows.len()),
        ts: Vec::with_capacity(rows.len()),
        texts: Vec::with_capacity(rows.len()),
        data: Vec::with_capacity(rows.len() * dim),
        dim,
    };
    for r in rows {
        b.ids.push(r.id);
        b.ts.push(r.ts);
        b.texts.push(r.text);
        b.data.extend_from_slice(&r.embedding);
    }
    Ok(b)
}

/// Stage `cluster`: k-means over the batch with `k = len / events_per_cluster`.
#[inline(never)]
pub fn cluster(batch: &Batch, opts: &ConsolidateOptions) -> KMeans {
    let _s = perfcheck_stage::stage!("cluster");
    let k = (batch.len() / opts.events_per_cluster.max(1)).max(1);
    kmeans(
        &batch.data,
        batch.dim,
        KMeansParams {
            k,
            max_iter: opts.max_iter,
            seed: opts.seed,
        },
    )
}

/// Stage `extract_patterns`: per cluster, the terms that are frequent in the cluster relative
/// to the batch (document-frequency KL contribution `p_c * ln(p_c / p_b)`), and the member
/// nearest the centroid as representative.
#[inline(never)]
pub fn extract_patterns(batch: &Batch, km: &KMeans, opts: &ConsolidateOptions) -> Vec<Pattern> {
    let _s = perfcheck_stage::stage!("extract_patterns");
    let docs: Vec<Vec<String>> = batch
        .texts
        .iter()
        .map(|t| {
            let mut w = tokenize(t);
            w.sort_unstable();
            w.dedup();
            w
        })
        .collect();
    let mut batch_df: FixedMap<&str, u32> = FixedMap::default();
    for d in &docs {
        for w in d {
            *batch_df.entry(w.as_str()).or_insert(0) += 1;
        }
    }
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); km.k()];
    for (i, &c) in km.assignments.iter().enumerate() {
        members[c as usize].push(i);
    }
    let n_b = batch.len() as f64;
    let mut out = Vec::new();
    for m in members.into_iter().filter(|m| !m.is_empty()) {
        let mut df: FixedMap<&str, u32> = FixedMap::default();
        for &i in &m {
            for w in &docs[i] {
                *df.entry(w.as_str()).or_insert(0) += 1;
            }
        }
        let n_c = m.len() as f64;
        let mut scored: Vec<(f64, &str)> = df
            .into_iter()
            .filter(|&(_, c)| c >= 2)
            .filter_map(|(w, c)| {
                let p_c = f64::from(c) / n_c;
                let p_b = f64::from(*batch_df.get(w)?) / n_b;
                (p_c > p_b).then(|| (p_c * (p_c / p_b).ln(), w))
            })
            .collect();
        // Full ordering (score, then term) because hash-map order must not leak out.
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
        let terms = scored
            .iter()
            .take(opts.terms_per_fact)
            .map(|(_, w)| (*w).to_owned())
            .collect();
        let similarity: Vec<f32> = m.iter().map(|&i| km.similarity[i]).collect();
        let mut rep = 0;
        for (j, &s) in similarity.iter().enumerate() {
            if s > similarity[rep] {
                rep = j;
            }
        }
        out.push(Pattern {
            representative: batch.ids[m[rep]],
            members: m,
            similarity,
            terms,
            cohesion: 0.0,
        });
    }
    out
}

/// Outcome of the quality gate.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Validation {
    /// Clusters that become facts (outliers already removed from `members`).
    pub accepted: Vec<Pattern>,
    /// Clusters rejected as noise.
    pub rejected: Vec<Pattern>,
    /// Batch positions of outlier members pruned from otherwise accepted clusters.
    pub outliers: Vec<usize>,
}

/// Stage `validate`: the quality gate. Members far from their centroid are pruned as
/// outliers; a cluster then becomes a fact only with enough support, enough cohesion and
/// enough salient terms to sign it. Everything else is treated as noise.
#[inline(never)]
pub fn validate(patterns: Vec<Pattern>, opts: &ConsolidateOptions) -> Validation {
    let _s = perfcheck_stage::stage!("validate");
    let mut v = Validation::default();
    for mut p in patterns {
        let (mut kept, mut kept_sim) = (Vec::new(), Vec::new());
        let mut pruned = Vec::new();
        for (&m, &s) in p.members.iter().zip(&p.similarity) {
            if s >= opts.min_member_similarity {
                kept.push(m);
                kept_sim.push(s);
            } else {
                pruned.push(m);
            }
        }
        let cohesion = if kept_sim.is_empty() {
            0.0
        } else {
            kept_sim.iter().sum::<f32>() / kept_sim.len() as f32
        };
        let ok = kept.len() >= opts.min_support
            && cohesion >= opts.min_cohesion
            && p.terms.len() >= opts.signature_terms;
        if ok {
            // The representative is the member nearest the centroid, so it is never pruned.
            p.members = kept;
            p.similarity = kept_sim;
            p.cohesion = cohesion;
            v.outliers.extend(pruned);
            v.accepted.push(p);
        } else {
            p.cohesion = cohesion;
            v.rejected.push(p);
        }
    }
    v
}

/// Stage `store_facts`: one transaction writing the accepted facts (deduplicated by signature)
/// and marking every other event of the batch as examined noise.
#[inline(never)]
pub fn store_facts(
    store: &Store,
    batch: &Batch,
    validation: &Validation,
    opts: &ConsolidateOptions,
) -> Result<FactWriteStats> {
    let _s = perfcheck_stage::stage!("store_facts");
    let drafts: Vec<FactDraft> = validation
        .accepted
        .iter()
        .map(|p| {
            let mut sig: Vec<&str> = p
                .terms
                .iter()
                .take(opts.signature_terms)
                .map(String::as_str)
                .collect();
            sig.sort_unstable();
            FactDraft {
                signature: sig.join(" "),
                terms: p.terms.clone(),
                representative_event: p.representative,
                cohesion: f64::from(p.cohesion),
                created_at: p.members.iter().map(|&i| batch.ts[i]).max().unwrap_or(0),
                members: p.members.iter().map(|&i| batch.ids[i]).collect(),
            }
        })
        .collect();
    let noise_ids: Vec<i64> = validation
        .rejected
        .iter()
        .flat_map(|p| p.members.iter().copied())
        .chain(validation.outliers.iter().copied())
        .map(|i| batch.ids[i])
        .collect();
    store.write_facts(&drafts, &noise_ids, opts.fail_after_fact_writes)
}

/// Bytes one event takes in a consolidation batch of `dim`-dimensional embeddings: its
/// embedding, its text and tags (a typical event's, generously), and its share of the
/// clustering state (assignment, similarities, a centroid's worth of accumulators).
pub fn bytes_per_event(dim: usize) -> usize {
    2 * dim * 4 + 512
}

/// Runs consolidation batches until the backlog is empty or `max_batches` is reached.
///
/// Holds the store's consolidation lock throughout: a concurrent consolidation waits, then
/// sees only what this one left pending, so no event is ever claimed twice. Remembers go on
/// meanwhile; their events are simply not in this batch.
pub fn run(store: &Store, opts: &ConsolidateOptions) -> Result<ConsolidationReport> {
    opts.validate()?;
    let _serial = store.consolidation_lock();
    let mut report = ConsolidationReport::default();
    while opts.max_batches.is_none_or(|m| report.batches < m) {
        let batch = load_events(store, opts.batch)?;
        if batch.is_empty() {
            break;
        }
        let km = cluster(&batch, opts);
        let patterns = extract_patterns(&batch, &km, opts);
        let clusters = patterns.len();
        let validation = validate(patterns, opts);
        let stats = store_facts(store, &batch, &validation, opts)?;
        report.batches += 1;
        report.events_loaded += batch.len();
        report.clusters += clusters;
        report.accepted += validation.accepted.len();
        report.rejected += validation.rejected.len();
        report.facts_created += stats.created;
        report.facts_merged += stats.merged;
        report.events_in_facts += stats.linked_events;
        report.events_rejected += stats.rejected_events;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(sims: &[f32], terms: usize) -> Pattern {
        Pattern {
            members: (0..sims.len()).collect(),
            similarity: sims.to_vec(),
            terms: (0..terms).map(|i| format!("t{i}")).collect(),
            representative: 0,
            cohesion: 0.0,
        }
    }

    #[test]
    fn validate_prunes_outliers_then_gates_on_support_cohesion_and_terms() {
        let opts = ConsolidateOptions::default();
        let good = pattern(&[0.9, 0.8, 0.3, 0.7, 0.6, 0.65], 5);
        let small = pattern(&[0.9, 0.9, 0.9], 5);
        let loose = pattern(&[0.41, 0.42, 0.43, 0.44, 0.45, 0.41], 5);
        let unsigned = pattern(&[0.9; 8], 2);
        let v = validate(vec![good, small, loose, unsigned], &opts);
        assert_eq!(v.accepted.len(), 1);
        assert_eq!(v.accepted[0].members, vec![0, 1, 3, 4, 5]);
        assert!((v.accepted[0].cohesion - 0.73).abs() < 1e-4);
        assert_eq!(v.outliers, vec![2]);
        assert_eq!(v.rejected.len(), 3);
    }

    #[test]
    fn patterns_carry_cluster_specific_terms_and_the_central_representative() {
        let texts = [
            "alpha beta common x1",
            "alpha beta common x2",
            "alpha beta common x3",
            "gamma delta common y1",
            "gamma delta common y2",
            "gamma delta common y3",
        ];
        let batch = Batch {
            ids: (10..16).collect(),
            ts: (0..6).collect(),
            texts: texts.iter().map(|t| (*t).to_owned()).collect(),
            data: vec![0.0; 6],
            dim: 1,
        };
        let km = KMeans {
            dim: 1,
            centroids: vec![1.0, -1.0],
            assignments: vec![0, 0, 0, 1, 1, 1],
            similarity: vec![0.5, 0.9, 0.7, 0.6, 0.6, 0.8],
            iterations: 1,
        };
        let p = extract_patterns(&batch, &km, &ConsolidateOptions::default());
        assert_eq!(p.len(), 2);
        // Tie on salience is broken alphabetically; "common" is in every event: not salient.
        assert_eq!(p[0].terms, vec!["alpha", "beta"]);
        assert_eq!(p[1].terms, vec!["delta", "gamma"]);
        assert_eq!(p[0].representative, 11);
        assert_eq!(p[1].representative, 15);
    }

    #[test]
    fn options_are_checked() {
        let bad = ConsolidateOptions {
            signature_terms: 6,
            ..ConsolidateOptions::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("signature_terms"));
        let bad = ConsolidateOptions {
            min_cohesion: f32::NAN,
            ..ConsolidateOptions::default()
        };
        assert!(bad.validate().is_err());
    }
}
