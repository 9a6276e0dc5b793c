//! Cost of live monitoring (`--metrics-addr`) per operation and per scrape.
//!
//! `cargo bench --bench monitor` prints, per benchmark, the time of one iteration:
//! - `monitor/observe`: one finished operation recorded (histogram bucket and counter), what
//!   each load worker adds after each operation when the flag is given;
//! - `monitor/observe_2_threads`: the same from two threads on the same kind at once (the
//!   histogram's own lock contended), time per observation;
//! - `monitor/encode`: one `/metrics` body for a three-kind mix (the scraping thread's work,
//!   no target attached).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use perfcheck::load::generator::OpStatus;
use perfcheck::load::schedule::windows;
use perfcheck::load::PhaseSpec;
use perfcheck::monitor::Monitor;

fn monitor(c: &mut Criterion) {
    let m = Monitor::new();
    let kinds: Vec<String> = ["recall", "remember", "consolidation"]
        .map(String::from)
        .to_vec();
    let w = windows(&[PhaseSpec::steady("steady", 3600, 1.0)], 1000.0);
    let run = m.begin_run(&kinds, &w, Instant::now());
    let mut g = c.benchmark_group("monitor");
    g.measurement_time(Duration::from_secs(3));
    let mut i = 0u64;
    g.bench_function("observe", |b| {
        b.iter(|| {
            i = i.wrapping_add(7_919);
            run.observe(
                black_box(0),
                black_box(100_000 + i % 1_000_000),
                OpStatus::Ok,
            );
        })
    });
    g.bench_function("observe_2_threads", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            std::thread::scope(|s| {
                for _ in 0..2 {
                    let run = &run;
                    s.spawn(move || {
                        for n in 0..iters {
                            run.observe(0, black_box(100_000 + n % 1_000_000), OpStatus::Ok);
                        }
                    });
                }
            });
            // Per observation: two threads did `iters` each.
            start.elapsed() / 2
        })
    });
    g.bench_function("encode", |b| b.iter(|| black_box(m.encode())));
    g.finish();
}

criterion_group!(benches, monitor);
criterion_main!(benches);
