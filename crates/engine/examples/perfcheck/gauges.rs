//! The engine's values for `--metrics-addr` (`perfcheck_target_*`) and its own health for
//! `/health`, read from the scraping thread while the load runs: cache, store counts, the
//! circuit breakers, the read pool and what the resilience layer did (`Engine::health`).

use agent_memory::resilience::breaker::BreakerState;
use agent_memory::resilience::health::Status;
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
    // One report per scrape: the store's event count is read once, by it.
    let h = e.health();
    let counts = [
        ("events", "Events stored", h.events_stored.ok_or(())),
        ("facts", "Facts stored", e.fact_count().map_err(drop)),
        (
            "pending_events",
            "Events consolidation has not examined yet (the backlog)",
            e.unconsolidated_count().map_err(drop),
        ),
    ];
    for (name, help, n) in counts {
        if let Ok(n) = n {
            out.push(Gauge::new(name, help, n as f64));
        }
    }
    for b in &h.breakers {
        let state = match b.state {
            BreakerState::Closed => 0.0,
            BreakerState::HalfOpen => 1.0,
            BreakerState::Open => 2.0,
        };
        out.push(
            Gauge::new(
                "breaker_state",
                "Circuit breaker state: 0 closed, 1 half-open, 2 open",
                state,
            )
            .label("breaker", b.name.as_str()),
        );
        out.push(
            Gauge::counter(
                "breaker_opened",
                "Times the breaker opened",
                b.opened as f64,
            )
            .label("breaker", b.name.as_str()),
        );
    }
    let r = &h.resilience;
    for (name, help, v) in [
        ("retries", "Retries of transient store errors", r.retries),
        (
            "deadline_exceeded",
            "Writes that ran out of their deadline",
            r.deadline_exceeded,
        ),
        ("fail_fast", "Calls an open breaker rejected", r.fail_fast),
        (
            "embed_failures",
            "Failed or timed-out embeddings",
            r.embed_failures,
        ),
    ] {
        out.push(Gauge::counter(name, help, v as f64));
    }
    for (mode, v) in [
        ("index_only", r.degraded_index_only),
        ("lexical", r.degraded_lexical),
    ] {
        out.push(
            Gauge::counter("degraded_recalls", "Recalls answered degraded", v as f64)
                .label("mode", mode),
        );
    }
    for (state, v) in [
        ("open", h.pool_open),
        ("idle", h.pool_idle),
        ("max", h.pool_max),
    ] {
        out.push(
            Gauge::new("read_pool_connections", "SQLite read connections", v as f64)
                .label("state", state),
        );
    }
    let c = e.cache_usage();
    out.push(Gauge::new(
        "recall_cache_bytes",
        "Bytes the recall cache holds",
        c.bytes as f64,
    ));
    out.push(Gauge::new(
        "recall_cache_budget_bytes",
        "The recall cache's byte budget (0: none)",
        c.budget as f64,
    ));
    out
}

/// The engine's own verdict (`Engine::health`: store readable, breakers closed, index
/// consistent), with its full report as the detail.
pub fn health(s: &System) -> Result<Option<TargetHealth>, BoxError> {
    let h = s.engine().health();
    let status = match h.status {
        Status::Ok => HealthStatus::Ok,
        Status::Degraded => HealthStatus::Degraded,
        Status::Failing => HealthStatus::Failing,
    };
    Ok(Some(TargetHealth::new(status, serde_json::to_value(&h)?)))
}
