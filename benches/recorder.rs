//! Cost of perfcheck's own instrumentation: stage guards and the counting allocator.
//!
//! `cargo bench --bench recorder` prints, per benchmark, the time of one iteration:
//! - `stage/enter_exit`: one stage guard entered and dropped inside an operation (target <= 25 ns);
//! - `stage/enter_exit_cpu_sampled`: the same with thread CPU time read at both ends;
//! - `stage/inactive`: a guard outside any operation;
//! - `alloc/system` vs `alloc/counting`: 1,000 alloc+free pairs of mixed sizes through the
//!   system allocator directly and through the counting wrapper (target ratio <= 1.2).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use perfcheck::stage::{begin_operation, stage, CountingAlloc};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc::system();

fn stage_guards(c: &mut Criterion) {
    let mut g = c.benchmark_group("stage");
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("enter_exit", |b| {
        let op = begin_operation(false);
        b.iter(|| {
            let _s = stage(black_box("vector_search"));
        });
        black_box(op.finish());
    });
    g.bench_function("enter_exit_cpu_sampled", |b| {
        let op = begin_operation(true);
        b.iter(|| {
            let _s = stage(black_box("vector_search"));
        });
        black_box(op.finish());
    });
    g.bench_function("inactive", |b| {
        b.iter(|| {
            let _s = stage(black_box("vector_search"));
        });
    });
    g.finish();
}

/// Sizes cycle through small and medium requests, like the engine's strings and vectors.
const SIZES: [usize; 8] = [16, 24, 48, 64, 128, 256, 512, 1024];

fn churn<A: GlobalAlloc>(a: &A) {
    for i in 0..1000 {
        let layout = Layout::from_size_align(SIZES[i % SIZES.len()], 8).expect("valid layout");
        // SAFETY: layout has non-zero size; the pointer is freed with the same layout.
        unsafe {
            let p = a.alloc(layout);
            black_box(p);
            a.dealloc(p, layout);
        }
    }
}

fn allocator(c: &mut Criterion) {
    static COUNTING: CountingAlloc = CountingAlloc::system();
    let mut g = c.benchmark_group("alloc");
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("system", |b| b.iter(|| churn(&System)));
    g.bench_function("counting", |b| b.iter(|| churn(&COUNTING)));
    g.finish();
}

criterion_group!(benches, stage_guards, allocator);
criterion_main!(benches);
