//! The resilience layer against real faults on a real SQLite file: a write lock another
//! connection holds, a full database, an exhausted read pool, a failing or hanging embedder.
//! Each asserts what was answered, what was refused, and that nothing unacknowledged was
//! stored; none asserts on time.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;

use agent_memory::resilience::breaker::BreakerState;
use agent_memory::resilience::health::Status;
use agent_memory::{
    Degraded, EmbedBackend, Embedder, Engine, EngineConfig, EngineError, NewEvent, ResilienceConfig,
};
use rusqlite::Connection;

const DIM: usize = 32;

fn config(cooldown_ms: u64) -> EngineConfig {
    EngineConfig {
        dim: DIM,
        checkpoint_ms: 0,
        resilience: ResilienceConfig {
            write_deadline_ms: 40,
            breaker_cooldown_ms: cooldown_ms,
            read_wait_ms: 20,
            ..ResilienceConfig::default()
        },
        ..EngineConfig::default()
    }
}

fn event(n: u64) -> NewEvent {
    NewEvent {
        session: 1,
        ts: 1_700_000_000 + n as i64,
        text: format!("topic{} alpha beta gamma marker{n:05}", n % 3),
        tags: Vec::new(),
    }
}

fn engine(dir: &tempfile::TempDir, cooldown_ms: u64, events: u64) -> Engine {
    let e = Engine::open(dir.path().join("e.sqlite"), config(cooldown_ms)).expect("open");
    for n in 0..events {
        e.remember(&event(n)).expect("remember");
    }
    e
}

/// Another connection holding SQLite's write lock until dropped.
fn lock(dir: &tempfile::TempDir) -> Connection {
    let c = Connection::open(dir.path().join("e.sqlite")).expect("open");
    c.execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");
    c
}

fn writes_breaker(e: &Engine) -> BreakerState {
    let h = e.health();
    h.breakers
        .iter()
        .find(|b| b.name == "store writes")
        .expect("a writes breaker")
        .state
}

#[test]
fn a_locked_store_refuses_writes_opens_the_breaker_fails_fast_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(&dir, 3_600_000, 20);
    let holder = lock(&dir);
    for n in 0..5 {
        let err = e.remember(&event(100 + n)).unwrap_err();
        assert!(
            matches!(err, EngineError::DeadlineExceeded { op: "remember", attempts, .. } if attempts > 1),
            "retried until the deadline: {err}"
        );
    }
    assert_eq!(writes_breaker(&e), BreakerState::Open);
    let err = e.remember(&event(200)).unwrap_err();
    assert!(
        matches!(
            &err,
            EngineError::Unavailable {
                what: "store writes",
                retry_after: Some(_),
                ..
            }
        ),
        "{err}"
    );
    // Reads go on: WAL readers do not wait for the writer.
    let r = e
        .recall("alpha marker00003", 5)
        .expect("recall under a write lock");
    assert_eq!(r.degraded, None);
    assert!(r.ids.contains(&4), "{:?}", r.ids);
    let h = e.health();
    assert_eq!(h.status, Status::Degraded, "{:?}", h.problems);
    assert!(h
        .problems
        .iter()
        .any(|p| p.contains("store writes breaker is open")));
    let s = e.resilience_stats();
    assert_eq!(s.deadline_exceeded, 5);
    assert_eq!(s.fail_fast, 1);
    assert!(s.retries >= 5, "{s:?}");
    assert_eq!(s.breaker_opens[1], 1);
    drop(holder);
    // Nothing refused was stored.
    assert_eq!(e.event_count().unwrap(), 20);
}

#[test]
fn after_the_cooldown_a_probe_closes_the_breaker_once_the_lock_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(&dir, 0, 5);
    let holder = lock(&dir);
    for n in 0..5 {
        assert!(e.remember(&event(100 + n)).is_err());
    }
    assert_eq!(writes_breaker(&e), BreakerState::Open);
    // The probe (cool-down 0) still meets the lock and reopens the breaker.
    assert!(e.remember(&event(105)).is_err());
    assert_eq!(writes_breaker(&e), BreakerState::Open);
    assert_eq!(e.resilience_stats().breaker_opens[1], 2);
    drop(holder);
    let id = e.remember(&event(106)).expect("the probe succeeds");
    assert_eq!(writes_breaker(&e), BreakerState::Closed);
    assert_eq!(e.health().status, Status::Ok);
    assert_eq!(e.event_count().unwrap(), 6);
    assert!(e.recall("marker00106", 3).unwrap().ids.contains(&id));
}

#[test]
fn a_lock_released_within_the_deadline_is_waited_out() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(3_600_000);
    c.resilience.write_deadline_ms = 10_000;
    let e = Engine::open(dir.path().join("e.sqlite"), c).unwrap();
    let holder = lock(&dir);
    let (go, started) = mpsc::channel::<()>();
    let releaser = std::thread::spawn(move || {
        started.recv().unwrap();
        drop(holder);
    });
    go.send(()).unwrap();
    let id = e
        .remember(&event(1))
        .expect("waits for the lock, then stores");
    releaser.join().unwrap();
    assert_eq!(e.event_count().unwrap(), 1);
    assert_eq!(
        e.store().event_text(id).unwrap().map(|r| r.0),
        Some(event(1).ts)
    );
    assert_eq!(writes_breaker(&e), BreakerState::Closed);
}

#[test]
fn a_full_database_fails_writes_at_once_without_retrying_and_stores_only_what_it_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(&dir, 0, 5);
    e.store()
        .for_each_connection(|c, _| {
            let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            c.pragma_update(None, "max_page_count", pages)?;
            Ok(())
        })
        .unwrap();
    let mut acknowledged = 5;
    let mut full = 0;
    for n in 0..200 {
        match e.remember(&event(10 + n)) {
            Ok(_) => acknowledged += 1,
            Err(EngineError::Sqlite(err)) => {
                assert!(err.to_string().contains("full"), "{err}");
                full += 1;
            }
            Err(EngineError::Unavailable { .. }) => {}
            Err(other) => panic!("unexpected: {other}"),
        }
    }
    assert!(full >= 5, "the page limit was reached: {full}");
    assert_eq!(
        e.resilience_stats().retries,
        0,
        "a full disk is not retried"
    );
    e.store()
        .for_each_connection(|c, _| Ok(c.pragma_update(None, "max_page_count", 1_000_000)?))
        .unwrap();
    e.remember(&event(999)).expect("space again");
    assert_eq!(e.event_count().unwrap(), acknowledged + 1);
}

#[test]
fn an_exhausted_read_pool_degrades_recall_to_the_index_then_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(&dir, 0, 30);
    let full = e.recall("alpha marker00007", 5).unwrap();
    assert_eq!(full.ids[0], 8);
    {
        let _held = e.store().hold_read_connections().unwrap();
        let r = e.recall("beta marker00009", 5).expect("answered, degraded");
        assert_eq!(r.degraded, Some(Degraded::IndexOnly));
        assert!(r.ids.contains(&10), "{:?}", r.ids);
        let v: serde_json::Value = serde_json::from_str(&r.json).unwrap();
        assert_eq!(v["degraded"], "index_only");
        assert!(
            v["reason"].as_str().unwrap().contains("read connections"),
            "{v}"
        );
        assert_eq!(e.health().status, Status::Failing);
    }
    let r = e.recall("beta marker00009", 5).unwrap();
    assert_eq!((r.degraded, r.ids[0]), (None, 10));
    assert_eq!(e.resilience_stats().degraded_index_only, 1);
}

/// The built-in embedder behind a switch: working, failing, or hanging until the deadline.
#[derive(Debug)]
struct Switchable {
    inner: Embedder,
    mode: AtomicU64,
    calls: AtomicU64,
    hung: AtomicBool,
}

const WORKS: u64 = 0;
const FAILS: u64 = 1;
const HANGS: u64 = 2;

impl EmbedBackend for Switchable {
    fn embed(&self, text: &str, deadline: Instant) -> Result<Vec<f32>, String> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        match self.mode.load(Ordering::Relaxed) {
            WORKS => Ok(self.inner.embed(text)),
            FAILS => Err("embedding service returned 503".into()),
            _ => {
                // A client with a request timeout: waits until the deadline, then gives up.
                std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
                self.hung.store(true, Ordering::Relaxed);
                Err("embedding request timed out".into())
            }
        }
    }
}

#[test]
fn a_failing_embedder_degrades_recall_to_keywords_and_refuses_remembers() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = Engine::open(dir.path().join("e.sqlite"), config(3_600_000)).unwrap();
    let backend = Arc::new(Switchable {
        inner: Embedder::new(DIM),
        mode: AtomicU64::new(WORKS),
        calls: AtomicU64::new(0),
        hung: AtomicBool::new(false),
    });
    e.set_embed_backend(backend.clone());
    for n in 0..30 {
        e.remember(&event(n)).unwrap();
    }
    assert_eq!(e.recall("marker00012", 3).unwrap().ids[0], 13);
    backend.mode.store(FAILS, Ordering::Relaxed);
    let r = e
        .recall("marker00021 alpha", 3)
        .expect("answered by keywords");
    assert_eq!(r.degraded, Some(Degraded::Lexical));
    assert_eq!(r.ids[0], 22, "the memory holding both words: {:?}", r.ids);
    let v: serde_json::Value = serde_json::from_str(&r.json).unwrap();
    assert!(v["reason"].as_str().unwrap().contains("503"), "{v}");
    let err = e.remember(&event(50)).unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::Unavailable {
                what: "embedder",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(e.event_count().unwrap(), 30, "refused, not stored");
    // Hanging: after the breaker's 5 failures the embedder is no longer called at all.
    backend.mode.store(HANGS, Ordering::Relaxed);
    for i in 0..8 {
        let r = e.recall(&format!("marker0000{i} gamma"), 3).unwrap();
        assert_eq!(r.degraded, Some(Degraded::Lexical));
    }
    assert!(backend.hung.load(Ordering::Relaxed));
    let calls = backend.calls.load(Ordering::Relaxed);
    assert!(e.recall("alpha", 3).unwrap().degraded.is_some());
    assert_eq!(backend.calls.load(Ordering::Relaxed), calls, "failing fast");
    let s = e.resilience_stats();
    assert_eq!(s.degraded_lexical, 10);
    assert_eq!(s.breaker_opens[2], 1);
    // Degraded answers are never cached: the same query is answered afresh.
    let again = e.recall("alpha", 3).unwrap();
    assert!(!again.cached && again.degraded.is_some());
    assert_eq!(e.cache_stats().0, 0, "no hits");
}

#[test]
fn a_healthy_engine_reports_ok_with_a_consistent_index() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(&dir, 100, 12);
    e.recall("alpha", 3).unwrap();
    e.recall("alpha", 3).unwrap();
    let h = e.health();
    assert_eq!(h.status, Status::Ok, "{:?}", h.problems);
    assert_eq!((h.events_stored, h.events_indexed), (Some(12), 12));
    assert_eq!(h.index_consistent, Some(true));
    assert_eq!((h.cache_hits, h.cache_misses, h.cache_entries), (1, 1, 1));
    assert!(h.pool_max >= 1 && h.pool_open <= h.pool_max);
    assert!(h.breakers.iter().all(|b| b.state == BreakerState::Closed));
    assert!(h.problems.is_empty());
}

#[test]
fn memory_budgets_evict_the_cache_and_cut_consolidation_batches_or_refuse_them_clearly() {
    use agent_memory::consolidate::bytes_per_event;
    use agent_memory::{ConsolidateOptions, MemoryBudget};
    let dir = tempfile::tempdir().unwrap();
    let e = engine(&dir, 100, 300);
    let budget = 8 * 1024;
    e.set_memory_budget(MemoryBudget {
        cache_bytes: budget,
        consolidation_bytes: bytes_per_event(DIM),
    });
    for i in 0..100 {
        let q = format!("marker{:05} alpha", i * 3);
        let r = e.recall(&q, 5).unwrap();
        let again = e.recall(&q, 5).unwrap();
        assert_eq!(again.ids, r.ids, "{q}: a cached answer is the same answer");
        let u = e.cache_usage();
        assert!(u.bytes <= budget, "{u:?}");
    }
    let u = e.cache_usage();
    assert!(
        u.evictions > 50 && u.entries > 0 && u.peak <= budget,
        "{u:?}"
    );
    // A batch of one event cannot form a fact: refused before anything is read.
    let opts = ConsolidateOptions {
        batch: 100,
        ..ConsolidateOptions::default()
    };
    let err = e.consolidate(&opts).unwrap_err();
    assert!(
        matches!(err, EngineError::MemoryBudget { op: "consolidation", budget: b, .. } if b == bytes_per_event(DIM)),
        "{err}"
    );
    assert_eq!(e.unconsolidated_count().unwrap(), 300);
    // Room for 40 events: the batch of 100 is cut to 40.
    e.set_memory_budget(MemoryBudget {
        cache_bytes: budget,
        consolidation_bytes: 40 * bytes_per_event(DIM),
    });
    let r = e.consolidate(&opts).unwrap();
    assert_eq!((r.batches, r.events_loaded), (1, 40));
    assert_eq!(e.unconsolidated_count().unwrap(), 260);
}
