//! What the heap passes cost per allocation, against the timing pass's fast path.
//!
//! `cargo bench --bench profiler` prints, per benchmark, the time of 1,000 alloc+free pairs of
//! mixed sizes through `CountingAlloc::system()`:
//! - `heap_pass/off`: no heap pass (what timing runs pay);
//! - `heap_pass/attribute`: the heatmap pass (side table of live blocks per stage);
//! - `heap_pass/dhat`: the DHAT pass (a backtrace per allocation), with a running profiler;
//!
//! and `stage/enter_exit_attributing`, a stage guard while the heatmap pass relabels the thread.

use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use perfcheck::stage::{
    register_dhat_allocator, stage, start_heap_pass, CountingAlloc, HeapPassMode,
};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc::system();

/// Sizes cycle through small and medium requests, like the engine's strings and vectors.
const SIZES: [usize; 8] = [16, 24, 48, 64, 128, 256, 512, 1024];

fn churn(a: &CountingAlloc) {
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

fn heap_passes(c: &mut Criterion) {
    static COUNTING: CountingAlloc = CountingAlloc::system();
    let mut g = c.benchmark_group("heap_pass");
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("off", |b| b.iter(|| churn(&COUNTING)));
    g.bench_function("attribute", |b| {
        let pass = start_heap_pass(HeapPassMode {
            dhat: false,
            attribute: true,
        })
        .expect("no other heap pass");
        b.iter(|| churn(&COUNTING));
        drop(pass);
    });
    g.bench_function("dhat", |b| {
        // `testing()`: the profiler keeps its data in memory and writes no file on drop.
        let profiler = dhat::Profiler::builder().testing().build();
        register_dhat_allocator(&dhat::Alloc);
        let pass = start_heap_pass(HeapPassMode {
            dhat: true,
            attribute: false,
        })
        .expect("no other heap pass");
        b.iter(|| churn(&COUNTING));
        drop(pass);
        drop(profiler);
    });
    g.finish();
}

fn stage_while_attributing(c: &mut Criterion) {
    let mut g = c.benchmark_group("stage");
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("enter_exit_attributing", |b| {
        let pass = start_heap_pass(HeapPassMode {
            dhat: false,
            attribute: true,
        })
        .expect("no other heap pass");
        b.iter(|| {
            let _s = stage(black_box("vector_search"));
        });
        drop(pass);
    });
    g.finish();
}

criterion_group!(benches, heap_passes, stage_while_attributing);
criterion_main!(benches);
