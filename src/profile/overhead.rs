//! What profiling costs, measured in one process: the CPU profiler's wall-time overhead A/B
//! interleaved on the same engine, its sample coverage, and the counting allocator against
//! the system allocator.
//!
//! The CPU profiler is installed once; between blocks of operations only its interval timer is
//! armed or disarmed, in ABBA order (off, on, on, off, ...), so both arms see the same engine,
//! caches and machine state and slow drifts cancel. Symbolising the report happens after the
//! last block and is not part of the overhead (it is a one-off cost at the end of a pass).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::profile::cpu::{process_cpu_ns, set_interval_timer, CpuSampler, CpuWindow, StageFrames};
use crate::profile::pass::{drive, PassHooks, PassSpec, Phase};
use crate::stage::CountingAlloc;

/// One block of operations.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct Block {
    /// Whether sampling was armed.
    pub profiled: bool,
    /// Wall ns of the block.
    pub wall_ns: u64,
    /// Process CPU ns of the block.
    pub cpu_ns: u64,
}

/// The CPU profiler's cost on one workload.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CpuOverhead {
    /// Sampling frequency, Hz.
    pub frequency_hz: u32,
    /// Operations per block.
    pub block_ops: u64,
    /// Every block, in the order run.
    pub blocks: Vec<Block>,
    /// Sum of profiled wall time / sum of unprofiled wall time.
    pub wall_ratio: f64,
    /// Median of the per-pair ratios (each profiled block against its unprofiled neighbour).
    pub median_pair_ratio: f64,
    /// 95% confidence interval of the mean per-pair ratio (normal approximation).
    pub ratio_ci95: (f64, f64),
    /// Sum of profiled process CPU time / sum of unprofiled (less sensitive than wall time to
    /// other processes on the machine).
    pub cpu_ratio: f64,
    /// Extra process CPU time per sample, µs: the cost of one signal, unwind and record.
    pub cpu_us_per_sample: f64,
    /// Samples taken in the profiled blocks.
    pub samples: u64,
    /// Samples per CPU second of the profiled blocks.
    pub samples_per_cpu_second: f64,
    /// Samples / the most the profiled blocks' CPU time could hold (arming restarts the
    /// interval, so each block's last partial interval cannot be sampled).
    pub coverage: f64,
}

/// The counting allocator against the system allocator on an alloc/free churn loop, measured
/// two ways: a generic loop like `benches/recorder.rs` (the compiler may keep the thread-local
/// counters in registers across the loop) and calls through `&dyn GlobalAlloc` (every call
/// pays the counter updates, as scattered allocations in real code do).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AllocOverhead {
    /// Median ns per alloc+free pair through `System`, generic loop.
    pub system_ns: f64,
    /// Median ns per pair through `CountingAlloc::system()` (no heap pass), generic loop.
    pub counting_ns: f64,
    /// `counting_ns / system_ns`.
    pub ratio: f64,
    /// Median ns per pair through `System`, dynamic calls.
    pub system_call_ns: f64,
    /// Median ns per pair through `CountingAlloc::system()`, dynamic calls.
    pub counting_call_ns: f64,
    /// `counting_call_ns / system_call_ns`.
    pub call_ratio: f64,
}

struct AbHooks {
    frequency: u32,
    block_ops: u64,
    total_ops: u64,
    blocks: Vec<Block>,
    start: Option<(Instant, u64, bool)>,
}

/// ABBA: off, on, on, off, ...
fn profiled(block: usize) -> bool {
    matches!(block % 4, 1 | 2)
}

impl AbHooks {
    fn open(&mut self) {
        let on = profiled(self.blocks.len());
        set_interval_timer(on.then_some(self.frequency));
        self.start = Some((Instant::now(), process_cpu_ns(), on));
    }

    fn close(&mut self) {
        if let Some((t, cpu, on)) = self.start.take() {
            let wall_ns = t.elapsed().as_nanos() as u64;
            let cpu_ns = process_cpu_ns().saturating_sub(cpu);
            set_interval_timer(None);
            self.blocks.push(Block {
                profiled: on,
                wall_ns,
                cpu_ns,
            });
        }
    }
}

impl PassHooks for AbHooks {
    fn phase(&mut self, phase: Phase) {
        match phase {
            Phase::Measured => self.open(),
            Phase::Finished => self.close(),
            _ => {}
        }
    }

    fn after_op(&mut self, done: u64) {
        if done % self.block_ops == 0 {
            self.close();
            if done < self.total_ops {
                self.open();
            }
        }
    }
}

/// Measures the CPU profiler's overhead on `spec`'s workload with `blocks` blocks of
/// `spec.ops / blocks` operations.
pub fn cpu_overhead(
    spec: &PassSpec,
    frequency: u32,
    blocks: u64,
    block_libc: bool,
) -> Result<CpuOverhead, Error> {
    let blocks = blocks.max(4) / 4 * 4;
    let block_ops = (spec.ops / blocks).max(1);
    let mut spec = spec.clone();
    spec.ops = block_ops * blocks;
    let sampler = CpuSampler::install(frequency, block_libc)?;
    let hooks = AbHooks {
        frequency,
        block_ops,
        total_ops: spec.ops,
        blocks: Vec::new(),
        start: None,
    };
    let (_, hooks) = drive(&spec, hooks)?;
    // Coverage is computed from the profiled blocks below, not from a single window.
    let profile_out = sampler.finish(&CpuWindow::new(frequency), &StageFrames::default())?;
    let blocks = hooks.blocks;
    let sum = |on: bool| -> (u64, u64) {
        blocks
            .iter()
            .filter(|b| b.profiled == on)
            .fold((0, 0), |(w, c), b| (w + b.wall_ns, c + b.cpu_ns))
    };
    let (on_wall, on_cpu) = sum(true);
    let (off_wall, off_cpu) = sum(false);
    let mut pairs: Vec<f64> = blocks
        .chunks_exact(2)
        .filter_map(|p| {
            let (on, off) = if p[0].profiled {
                (p[0], p[1])
            } else {
                (p[1], p[0])
            };
            (on.profiled != off.profiled && off.wall_ns > 0)
                .then(|| on.wall_ns as f64 / off.wall_ns as f64)
        })
        .collect();
    pairs.sort_by(f64::total_cmp);
    let n = pairs.len() as f64;
    let mean = pairs.iter().sum::<f64>() / n.max(1.0);
    let sd = (pairs.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt();
    let half = 1.96 * sd / n.max(1.0).sqrt();
    let interval_ns = profile_out.interval_ns() as f64;
    Ok(CpuOverhead {
        frequency_hz: frequency,
        block_ops,
        wall_ratio: on_wall as f64 / off_wall.max(1) as f64,
        median_pair_ratio: pairs.get(pairs.len() / 2).copied().unwrap_or(f64::NAN),
        ratio_ci95: (mean - half, mean + half),
        cpu_ratio: on_cpu as f64 / off_cpu.max(1) as f64,
        cpu_us_per_sample: (on_cpu as f64 - off_cpu as f64)
            / profile_out.samples.max(1) as f64
            / 1e3,
        samples: profile_out.samples,
        samples_per_cpu_second: profile_out.samples as f64 * 1e9 / on_cpu.max(1) as f64,
        coverage: {
            // Arming restarts the interval countdown, so a block of c ns can hold at most
            // floor(c / interval) samples; the remainder of every block is never sampled.
            let possible: u64 = blocks
                .iter()
                .filter(|b| b.profiled)
                .map(|b| (b.cpu_ns as f64 / interval_ns) as u64)
                .sum();
            profile_out.samples as f64 / possible.max(1) as f64
        },
        blocks,
    })
}

/// The cost of one CPU sample: the sampling signal sent to this thread directly, many times,
/// under a stack as deep as the engine's, so the number does not drown in the variance of
/// real operations (or of other processes on a shared machine).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SampleCost {
    /// Frames on the stack below the signalling loop.
    pub stack_depth: u32,
    /// Signals sent.
    pub signals: u64,
    /// Samples pprof recorded from them (fewer when the unwinder could not run).
    pub samples: u64,
    /// Median wall µs per signal over the rounds: kernel delivery, pprof's handler, unwinding
    /// and recording.
    pub us_per_sample: f64,
    /// What that costs at the default frequency: `99 x us_per_sample / 1e6` of each CPU second.
    pub overhead_at_default: f64,
}

/// Sends SIGPROF to the calling thread; the handler runs before this returns.
fn signal_self() {
    // SAFETY: plain system calls on this process and thread.
    unsafe {
        let pid = libc::getpid();
        let tid = libc::syscall(libc::SYS_gettid);
        libc::syscall(libc::SYS_tgkill, pid, tid, libc::SIGPROF);
    }
}

#[inline(never)]
fn signal_rounds(rounds: usize, per_round: usize) -> Vec<f64> {
    (0..rounds)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..per_round {
                signal_self();
            }
            t.elapsed().as_nanos() as f64 / per_round as f64 / 1e3
        })
        .collect()
}

#[inline(never)]
fn nested(depth: u32, rounds: usize, per_round: usize) -> Vec<f64> {
    if depth == 0 {
        signal_rounds(rounds, per_round)
    } else {
        // Used after the call, so the recursion stays a real stack of frames.
        black_box(nested(depth - 1, rounds, per_round))
    }
}

/// Measures the cost of one sample with `rounds` rounds of 200 self-sent signals at
/// `stack_depth` frames. `None` when libc is blocklisted: the signal then arrives while the
/// thread is in libc's `syscall`, and pprof drops it without unwinding, which would measure
/// nothing.
pub fn sample_cost(
    stack_depth: u32,
    rounds: usize,
    block_libc: bool,
) -> Result<Option<SampleCost>, Error> {
    if block_libc || !super::cpu::libc_unwind_is_lock_free() {
        return Ok(None);
    }
    const PER_ROUND: usize = 200;
    // The handler is installed and the timer disarmed: only our own signals are sampled.
    let sampler = CpuSampler::install(super::cpu::DEFAULT_FREQUENCY, block_libc)?;
    let mut per = nested(stack_depth, rounds.max(1), PER_ROUND);
    let p = sampler.finish(&CpuWindow::new(1), &StageFrames::default())?;
    per.sort_by(f64::total_cmp);
    let us = per[per.len() / 2];
    Ok(Some(SampleCost {
        stack_depth,
        signals: (per.len() * PER_ROUND) as u64,
        samples: p.samples,
        us_per_sample: us,
        overhead_at_default: f64::from(super::cpu::DEFAULT_FREQUENCY) * us / 1e6,
    }))
}

/// Sizes of the churn loop, like the engine's strings and vectors.
const SIZES: [usize; 8] = [16, 24, 48, 64, 128, 256, 512, 1024];

/// Generic, like the criterion bench (`benches/recorder.rs`).
#[inline(never)]
fn churn<A: GlobalAlloc + ?Sized>(a: &A, pairs: usize) {
    for i in 0..pairs {
        let Ok(layout) = Layout::from_size_align(SIZES[i % SIZES.len()], 8) else {
            continue;
        };
        // SAFETY: non-zero size; the block is freed with the layout it was allocated with.
        unsafe {
            let p = a.alloc(layout);
            if !p.is_null() {
                black_box(p);
                a.dealloc(p, layout);
            }
        }
    }
}

/// Every call through a vtable, so none of the counting can be hoisted out of the loop.
#[inline(never)]
fn churn_dyn(a: &dyn GlobalAlloc, pairs: usize) {
    churn::<dyn GlobalAlloc>(a, pairs);
}

/// The counting allocator against `System`, interleaved over `rounds` rounds of 100,000
/// alloc+free pairs each; medians.
pub fn alloc_overhead(rounds: usize) -> AllocOverhead {
    static COUNTING: CountingAlloc = CountingAlloc::system();
    const PAIRS: usize = 100_000;
    let time = |f: &dyn Fn()| {
        let t = Instant::now();
        f();
        t.elapsed().as_nanos() as f64 / PAIRS as f64
    };
    let mut v: [Vec<f64>; 4] = Default::default();
    churn(&System, PAIRS);
    churn(&COUNTING, PAIRS);
    for _ in 0..rounds.max(1) {
        v[0].push(time(&|| churn(&System, PAIRS)));
        v[1].push(time(&|| churn(&COUNTING, PAIRS)));
        v[2].push(time(&|| churn_dyn(&System, PAIRS)));
        v[3].push(time(&|| churn_dyn(&COUNTING, PAIRS)));
    }
    let [a, b, c, d] = v.map(|mut x| {
        x.sort_by(f64::total_cmp);
        x[x.len() / 2]
    });
    AllocOverhead {
        system_ns: a,
        counting_ns: b,
        ratio: b / a,
        system_call_ns: c,
        counting_call_ns: d,
        call_ratio: d / c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_alternate_abba() {
        let on: Vec<bool> = (0..8).map(profiled).collect();
        assert_eq!(on, [false, true, true, false, false, true, true, false]);
        // Every adjacent pair (0,1), (2,3), ... has one profiled block.
        for p in on.chunks(2) {
            assert_ne!(p[0], p[1]);
        }
    }
}
