//! What resilience costs and how exact it is, on a real store:
//!
//! - `breaker/closed`: the healthy path's admit + success (paid by every operation);
//! - `fail_fast/remember`: a remember while the write breaker is open (the time a caller
//!   waits to learn the store is unavailable; the target is under 10 µs);
//! - `deadline/<ms>`: a remember against a store another connection keeps locked, with a
//!   write deadline of 10, 50 and 200 ms; the time per iteration minus the deadline is how
//!   late the deadline fires (SQLite's per-attempt busy wait bounds it).
//!
//! `cargo bench -p agent-memory --bench resilience`

use std::time::Duration;

use agent_memory::resilience::breaker::Breaker;
use agent_memory::{Engine, EngineConfig, EngineError, NewEvent, ResilienceConfig};
use criterion::{criterion_group, criterion_main, Criterion};

fn event(n: u64) -> NewEvent {
    NewEvent {
        session: 1,
        ts: 1_700_000_000 + n as i64,
        text: format!("alpha beta gamma marker{n:05}"),
        tags: Vec::new(),
    }
}

fn engine(dir: &tempfile::TempDir, r: ResilienceConfig) -> Engine {
    let config = EngineConfig {
        dim: 64,
        checkpoint_ms: 0,
        resilience: r,
        ..EngineConfig::default()
    };
    let e = Engine::open(dir.path().join("b.sqlite"), config).expect("open");
    for n in 0..100 {
        e.remember(&event(n)).expect("remember");
    }
    e
}

fn lock(dir: &tempfile::TempDir) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(dir.path().join("b.sqlite")).expect("open");
    c.execute_batch("BEGIN IMMEDIATE").expect("lock");
    c
}

fn breaker(c: &mut Criterion) {
    let b = Breaker::new("bench", 5, Duration::from_millis(100));
    c.bench_function("breaker/closed", |bench| {
        bench.iter(|| {
            let a = b.admit();
            b.success();
            a
        })
    });
}

fn fail_fast(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let e = engine(
        &dir,
        ResilienceConfig {
            write_deadline_ms: 5,
            breaker_cooldown_ms: 3_600_000,
            ..ResilienceConfig::default()
        },
    );
    let _held = lock(&dir);
    for n in 0..5 {
        let _ = e.remember(&event(1_000 + n));
    }
    c.bench_function("fail_fast/remember", |bench| {
        bench.iter(|| match e.remember(&event(2_000)) {
            Err(EngineError::Unavailable { .. }) => {}
            other => panic!("expected a fail-fast refusal, got {other:?}"),
        })
    });
}

fn deadline(c: &mut Criterion) {
    let mut g = c.benchmark_group("deadline");
    g.sample_size(10);
    for ms in [10u64, 50, 200] {
        let dir = tempfile::tempdir().expect("temp dir");
        let e = engine(
            &dir,
            ResilienceConfig {
                write_deadline_ms: ms,
                // Never opens: every iteration runs into the deadline.
                breaker_failures: u32::MAX,
                ..ResilienceConfig::default()
            },
        );
        let _held = lock(&dir);
        g.measurement_time(Duration::from_millis(ms * 30));
        g.bench_function(format!("{ms}ms"), |bench| {
            bench.iter(|| match e.remember(&event(3_000)) {
                Err(EngineError::DeadlineExceeded { .. }) => {}
                other => panic!("expected the deadline, got {other:?}"),
            })
        });
    }
    g.finish();
}

criterion_group!(benches, breaker, fail_fast, deadline);
criterion_main!(benches);
