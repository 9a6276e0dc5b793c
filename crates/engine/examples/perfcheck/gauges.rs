//! The engine's values for `--metrics-addr` (`perfcheck_target_*`) and its own health for
//! `/health`, read from the scraping thread while the load runs.
//!
//! Breaker state and connection-pool usage belong here too, as more `Gauge`s, once the
//! engine exposes them: the tool serves whatever this returns.

use perfcheck::harness::BoxError;
use perfcheck::monitor::{Gauge, HealthStatus, TargetHealth};

use crate::engine_load::System;

/// `hits / (hits + misses)`, 0 before the first lookup.
pub fn hit_rate(hits: u64, misses: u64) -> f64 {
    let n = hits + misses;
    if n == 0 {
        0.0
    } else {
        hits as f64 / n as f64
    }
}

/// Cache counters, stored counts and the consolidation backlog; a count SQLite cannot give
/// right now (the database locked by a fault) is left out of this scrape.
pub fn gauges(s: &System) -> Vec<Gauge> {
    let e = s.engine();
    let (hits, misses) = e.cache_stats();
    let mut out = vec![
        Gauge::counter(
            "recall_cache_hits",
            "Recalls answered from the recall cache since setup",
            hits as f64,
        ),
        Gauge::counter(
            "recall_cache_misses",
            "Recalls the recall cache could not answer since setup",
            misses as f64,
        ),
        Gauge::new(
            "recall_cache_hit_rate",
            "Share of recall cache lookups that hit since setup",
            hit_rate(hits, misses),
        ),
        Gauge::new(
            "index_vectors",
            "Vectors in the IVF index",
            e.index().len() as f64,
        ),
    ];
    let counts = [
        ("events", "Events stored", e.event_count()),
        ("facts", "Facts stored", e.fact_count()),
        (
            "pending_events",
            "Events consolidation has not examined yet (the backlog)",
            e.unconsolidated_count(),
        ),
    ];
    for (name, help, n) in counts {
        if let Ok(n) = n {
            out.push(Gauge::new(name, help, n as f64));
        }
    }
    out
}

/// Ok while the store answers (with its counts as the detail); an error when it does not.
pub fn health(s: &System) -> Result<Option<TargetHealth>, BoxError> {
    let e = s.engine();
    let events = e.event_count()?;
    let pending = e.unconsolidated_count()?;
    let (hits, misses) = e.cache_stats();
    Ok(Some(TargetHealth::new(
        HealthStatus::Ok,
        serde_json::json!({
            "events": events,
            "pending_events": pending,
            "recall_cache_hit_rate": hit_rate(hits, misses),
        }),
    )))
}
