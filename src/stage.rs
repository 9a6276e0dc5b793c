//! Stage guards, the per-thread recorder and the stage-attributing counting allocator.
//!
//! A workload wraps each operation in [`begin_operation`] / [`Operation::finish`]; inside it,
//! engine code marks its stages with `let _s = stage("vector_search");`. Stages nest; each
//! stage's *self* measures (its own time and allocations, children excluded) are summed per
//! stage name for the operation, and the operation's inclusive totals are kept beside them.
//!
//! Stages are synchronous sections: a guard must never be held across an `.await`, because the
//! task could resume on another thread and the recorder is per thread. [`StageGuard`] is
//! `!Send`, so a future that holds one across an `.await` is `!Send` and `tokio::spawn`
//! rejects it at compile time.
//!
//! Outside an operation a stage guard costs one thread-local flag check and records nothing,
//! so the engine can be used (and benchmarked) without the recorder.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::sync::RwLock;

/// Per-thread allocation counters. Thread-local because shared atomics made two allocating
/// threads 4x slower on this kind of machine (see FIELD-NOTES).
struct AllocCounters {
    allocs: Cell<u64>,
    bytes: Cell<u64>,
    live: Cell<i64>,
    peak: Cell<i64>,
}

thread_local! {
    static ALLOC: AllocCounters = const {
        AllocCounters {
            allocs: Cell::new(0),
            bytes: Cell::new(0),
            live: Cell::new(0),
            peak: Cell::new(0),
        }
    };
    static RECORDER: RefCell<Recorder> = const { RefCell::new(Recorder::new()) };
}

#[inline(always)]
fn count_alloc(size: usize) {
    let _ = ALLOC.try_with(|c| {
        c.allocs.set(c.allocs.get() + 1);
        c.bytes.set(c.bytes.get() + size as u64);
        let live = c.live.get() + size as i64;
        c.live.set(live);
        if live > c.peak.get() {
            c.peak.set(live);
        }
    });
}

#[inline(always)]
fn count_free(size: usize) {
    let _ = ALLOC.try_with(|c| c.live.set(c.live.get() - size as i64));
}

/// A global allocator that counts allocations per thread so the recorder can attribute them
/// to the innermost active stage. The binary declares it; the library provides it:
///
/// ```ignore
/// #[global_allocator]
/// static ALLOC: perfcheck::stage::CountingAlloc = perfcheck::stage::CountingAlloc::system();
/// ```
pub struct CountingAlloc<A = System> {
    inner: A,
}

impl CountingAlloc<System> {
    /// Counting wrapper around the system allocator.
    pub const fn system() -> Self {
        CountingAlloc { inner: System }
    }
}

impl<A> CountingAlloc<A> {
    /// Counting wrapper around any other global allocator.
    pub const fn new(inner: A) -> Self {
        CountingAlloc { inner }
    }
}

// SAFETY: every call is forwarded unchanged to the inner allocator; counting only touches
// thread-local cells and never allocates.
unsafe impl<A: GlobalAlloc> GlobalAlloc for CountingAlloc<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = self.inner.alloc(layout);
        if !p.is_null() {
            count_alloc(layout.size());
        }
        p
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = self.inner.alloc_zeroed(layout);
        if !p.is_null() {
            count_alloc(layout.size());
        }
        p
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.inner.dealloc(ptr, layout);
        count_free(layout.size());
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = self.inner.realloc(ptr, layout, new_size);
        if !p.is_null() {
            count_free(layout.size());
            count_alloc(new_size);
        }
        p
    }
}

/// A snapshot of this thread's allocation counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllocSnapshot {
    /// Allocations made by this thread so far.
    pub allocs: u64,
    /// Bytes requested by those allocations.
    pub bytes: u64,
    /// Bytes allocated minus bytes freed by this thread.
    pub live: i64,
}

/// Reads this thread's allocation counters (all zero unless [`CountingAlloc`] is installed).
pub fn alloc_snapshot() -> AllocSnapshot {
    ALLOC
        .try_with(|c| AllocSnapshot {
            allocs: c.allocs.get(),
            bytes: c.bytes.get(),
            live: c.live.get(),
        })
        .unwrap_or_default()
}

/// Whether [`CountingAlloc`] is the global allocator of this process.
pub fn counting_allocator_installed() -> bool {
    let before = alloc_snapshot().allocs;
    let probe = std::hint::black_box(Box::new(0u64));
    drop(probe);
    alloc_snapshot().allocs != before
}

/// What one stage (or a whole operation) cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Measures {
    /// Wall-clock nanoseconds.
    pub wall_ns: u64,
    /// Thread CPU nanoseconds; zero unless the operation was CPU-sampled.
    pub cpu_ns: u64,
    /// Number of allocations.
    pub allocs: u64,
    /// Bytes allocated.
    pub alloc_bytes: u64,
    /// Highest live heap above the level at entry, children included (not additive).
    pub peak_live_bytes: u64,
}

impl Measures {
    fn saturating_sub(self, o: Measures) -> Measures {
        Measures {
            wall_ns: self.wall_ns.saturating_sub(o.wall_ns),
            cpu_ns: self.cpu_ns.saturating_sub(o.cpu_ns),
            allocs: self.allocs.saturating_sub(o.allocs),
            alloc_bytes: self.alloc_bytes.saturating_sub(o.alloc_bytes),
            peak_live_bytes: self.peak_live_bytes,
        }
    }

    fn add_additive(&mut self, o: Measures) {
        self.wall_ns += o.wall_ns;
        self.cpu_ns += o.cpu_ns;
        self.allocs += o.allocs;
        self.alloc_bytes += o.alloc_bytes;
    }
}

/// The record of one operation: inclusive totals and per-stage self measures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OpSample {
    /// The whole operation, children included.
    pub total: Measures,
    /// Self measures per stage name, in order of first entry; a stage entered twice is summed.
    pub stages: Vec<(&'static str, Measures)>,
    /// Whether thread CPU time was read at every stage boundary of this operation.
    pub cpu_sampled: bool,
}

struct Frame {
    name: &'static str,
    wall_start: u64,
    cpu_start: u64,
    allocs_start: u64,
    bytes_start: u64,
    live_start: i64,
    peak_saved: i64,
    children: Measures,
}

struct Recorder {
    active: bool,
    cpu: bool,
    slow: Option<(&'static str, u32)>,
    stack: Vec<Frame>,
    stages: Vec<(&'static str, Measures)>,
}

impl Recorder {
    const fn new() -> Self {
        Recorder {
            active: false,
            cpu: false,
            slow: None,
            stack: Vec::new(),
            stages: Vec::new(),
        }
    }

    #[inline]
    fn push(&mut self, name: &'static str) {
        // CPU time first and wall last, so the (slow) CPU read is outside the wall interval.
        let cpu_start = if self.cpu { thread_cpu_ns() } else { 0 };
        let (allocs_start, bytes_start, live_start, peak_saved) = ALLOC
            .try_with(|c| {
                let saved = c.peak.get();
                c.peak.set(c.live.get());
                (c.allocs.get(), c.bytes.get(), c.live.get(), saved)
            })
            .unwrap_or_default();
        self.stack.push(Frame {
            name,
            wall_start: now_raw(),
            cpu_start,
            allocs_start,
            bytes_start,
            live_start,
            peak_saved,
            children: Measures::default(),
        });
    }

    /// Pops the innermost frame and returns its inclusive and self measures.
    #[inline]
    fn pop(&mut self) -> Option<(&'static str, Measures, Measures)> {
        let frame = self.stack.pop()?;
        if let Some((slow, pct)) = self.slow {
            if slow == frame.name {
                burn_proportional(frame.wall_start, pct);
            }
        }
        let wall_end = now_raw();
        let (allocs, bytes, peak) = ALLOC
            .try_with(|c| {
                let peak = c.peak.get();
                c.peak.set(peak.max(frame.peak_saved));
                (c.allocs.get(), c.bytes.get(), peak)
            })
            .unwrap_or_default();
        let cpu_end = if self.cpu { thread_cpu_ns() } else { 0 };
        let inclusive = Measures {
            wall_ns: raw_delta_ns(frame.wall_start, wall_end),
            cpu_ns: cpu_end.saturating_sub(frame.cpu_start),
            allocs: allocs - frame.allocs_start,
            alloc_bytes: bytes - frame.bytes_start,
            peak_live_bytes: (peak - frame.live_start).max(0) as u64,
        };
        let own = inclusive.saturating_sub(frame.children);
        if let Some(parent) = self.stack.last_mut() {
            parent.children.add_additive(inclusive);
        }
        Some((frame.name, inclusive, own))
    }

    #[inline]
    fn add_stage(&mut self, name: &'static str, own: Measures) {
        // Operations have a handful of stages: a linear scan beats hashing here.
        match self.stages.iter_mut().find(|(n, _)| *n == name) {
            Some((_, m)) => {
                m.add_additive(own);
                m.peak_live_bytes = m.peak_live_bytes.max(own.peak_live_bytes);
            }
            None => self.stages.push((name, own)),
        }
    }
}

/// Guard of one active stage; the stage ends when it drops. `!Send` on purpose (see module docs).
#[must_use = "the stage ends when this guard drops"]
pub struct StageGuard {
    active: bool,
    _not_send: PhantomData<*const ()>,
}

/// Enters the stage `name` on this thread until the returned guard drops.
///
/// Use the canonical stage names of DESIGN.md (`vector_search`, `persist`, ...). Outside an
/// operation this records nothing. Never hold the guard across an `.await`.
#[inline]
pub fn stage(name: &'static str) -> StageGuard {
    let active = RECORDER
        .try_with(|r| {
            let mut r = r.borrow_mut();
            if r.active {
                r.push(name);
            }
            r.active
        })
        .unwrap_or(false);
    StageGuard {
        active,
        _not_send: PhantomData,
    }
}

impl Drop for StageGuard {
    #[inline]
    fn drop(&mut self) {
        if !self.active {
            return;
        }
        let _ = RECORDER.try_with(|r| {
            let mut r = r.borrow_mut();
            if let Some((name, _, own)) = r.pop() {
                r.add_stage(name, own);
            }
        });
    }
}

/// An operation being recorded on this thread; see [`begin_operation`].
#[must_use = "call finish() to get the operation's record"]
pub struct Operation {
    finished: bool,
    _not_send: PhantomData<*const ()>,
}

/// Name of the root frame that stands for the whole operation.
const OPERATION_FRAME: &str = "total";

/// Starts recording one operation on this thread. With `cpu_sampled`, thread CPU time is read
/// at every stage boundary (a system call, about 0.8 µs here), so callers sample it on a
/// subset of operations and keep those out of wall-time statistics.
pub fn begin_operation(cpu_sampled: bool) -> Operation {
    let slow = slowdown();
    let _ = RECORDER.try_with(|r| {
        let mut r = r.borrow_mut();
        r.stack.clear();
        r.stages.clear();
        // Reserve before the root frame starts counting, so the recorder's own growth is
        // never attributed to a stage.
        r.stack.reserve(32);
        r.stages.reserve(32);
        r.active = true;
        r.cpu = cpu_sampled;
        r.slow = slow;
        r.push(OPERATION_FRAME);
    });
    Operation {
        finished: false,
        _not_send: PhantomData,
    }
}

impl Operation {
    /// Ends the operation and returns its record.
    pub fn finish(mut self) -> OpSample {
        self.finished = true;
        end_operation()
    }
}

impl Drop for Operation {
    fn drop(&mut self) {
        if !self.finished {
            end_operation();
        }
    }
}

fn end_operation() -> OpSample {
    RECORDER
        .try_with(|r| {
            let mut r = r.borrow_mut();
            // Unwind stages left open (an early return through `?` drops guards first, so
            // this only happens when a guard was leaked).
            while r.stack.len() > 1 {
                if let Some((name, _, own)) = r.pop() {
                    r.add_stage(name, own);
                }
            }
            let total = r.pop().map(|(_, incl, _)| incl).unwrap_or_default();
            r.active = false;
            // Copy out after the root frame closed (uncounted) and keep the capacity.
            let stages = r.stages.clone();
            r.stages.clear();
            OpSample {
                total,
                stages,
                cpu_sampled: r.cpu,
            }
        })
        .unwrap_or_default()
}

static SLOWDOWN: RwLock<Option<(&'static str, u32)>> = RwLock::new(None);

/// Test and calibration knob: makes stage `name` slower by `percent` % of its own wall time,
/// by spinning inside the stage (so CPU profiles show the time under that stage too).
/// `None` turns it off. Takes effect at the next [`begin_operation`].
pub fn set_slowdown(knob: Option<(&str, u32)>) {
    let leaked = knob.map(|(name, pct)| (&*Box::leak(name.to_owned().into_boxed_str()), pct));
    if let Ok(mut s) = SLOWDOWN.write() {
        *s = leaked;
    }
}

fn slowdown() -> Option<(&'static str, u32)> {
    SLOWDOWN.read().ok().and_then(|s| *s)
}

#[inline(never)]
fn burn_proportional(start_raw: u64, percent: u32) {
    let elapsed = raw_delta_ns(start_raw, now_raw());
    let extra = elapsed.saturating_mul(percent as u64) / 100;
    #[cfg(test)]
    if mock_clock::advance_if_active(extra) {
        return;
    }
    let until = now_raw();
    let mut x = 0u64;
    while raw_delta_ns(until, now_raw()) < extra {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}

/// Raw timestamp from the TSC-based clock (about 10 ns to read here, versus about 38 ns for
/// `std::time::Instant`); convert differences with [`raw_delta_ns`].
#[inline(always)]
pub fn now_raw() -> u64 {
    #[cfg(test)]
    if let Some(t) = mock_clock::now() {
        return t;
    }
    clock().raw()
}

/// Nanoseconds between two [`now_raw`] readings.
#[inline(always)]
pub fn raw_delta_ns(start: u64, end: u64) -> u64 {
    #[cfg(test)]
    if mock_clock::now().is_some() {
        return end.saturating_sub(start);
    }
    clock().delta_as_nanos(start, end)
}

/// A per-thread manual clock for unit tests, so they assert on exact times, not on how
/// busy the machine is.
#[cfg(test)]
mod mock_clock {
    use std::cell::Cell;

    thread_local! {
        static NOW: Cell<Option<u64>> = const { Cell::new(None) };
    }

    pub fn now() -> Option<u64> {
        NOW.with(Cell::get)
    }

    pub fn install() {
        NOW.with(|n| n.set(Some(1_000)));
    }

    pub fn advance(ns: u64) {
        NOW.with(|n| n.set(n.get().map(|t| t + ns)));
    }

    pub fn advance_if_active(ns: u64) -> bool {
        let active = now().is_some();
        advance(ns);
        active
    }
}

fn clock() -> &'static quanta::Clock {
    static CLOCK: std::sync::OnceLock<quanta::Clock> = std::sync::OnceLock::new();
    CLOCK.get_or_init(quanta::Clock::new)
}

/// This thread's CPU time in nanoseconds (`CLOCK_THREAD_CPUTIME_ID`).
pub fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stands in for `ns` of work, on the mock clock.
    fn spin_for(ns: u64) {
        mock_clock::advance(ns);
    }

    #[test]
    fn stages_outside_an_operation_record_nothing() {
        {
            let _s = stage("embed");
        }
        let op = begin_operation(false);
        let sample = op.finish();
        assert!(sample.stages.is_empty());
    }

    #[test]
    fn nested_stages_report_self_time_and_sum_repeats() {
        mock_clock::install();
        let op = begin_operation(true);
        {
            let _outer = stage("rerank");
            spin_for(200_000);
            {
                let _inner = stage("format");
                spin_for(400_000);
            }
        }
        {
            let _again = stage("format");
            spin_for(400_000);
        }
        let s = op.finish();
        let names: Vec<_> = s.stages.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, vec!["format", "rerank"]);
        let format = s.stages[0].1;
        let rerank = s.stages[1].1;
        assert_eq!(format.wall_ns, 800_000, "both entries of format are summed");
        // Self time excludes the nested stage: rerank holds only its own 0.2 ms, not 0.6 ms.
        assert_eq!(rerank.wall_ns, 200_000);
        assert_eq!(s.total.wall_ns, 1_000_000);
        assert!(s.cpu_sampled);
    }

    #[test]
    fn slowdown_knob_lengthens_only_the_named_stage() {
        mock_clock::install();
        set_slowdown(Some(("vector_search", 100)));
        let op = begin_operation(false);
        {
            let _s = stage("vector_search");
            spin_for(300_000);
        }
        {
            let _s = stage("rerank");
            spin_for(300_000);
        }
        let s = op.finish();
        set_slowdown(None);
        assert_eq!(s.stages[0], ("vector_search", s.stages[0].1));
        assert_eq!(s.stages[0].1.wall_ns, 600_000, "300 µs doubled");
        assert_eq!(s.stages[1].1.wall_ns, 300_000, "rerank untouched");
    }

    #[test]
    fn allocations_go_to_the_innermost_stage() {
        assert!(counting_allocator_installed());
        let op = begin_operation(false);
        let kept;
        {
            let _outer = stage("persist");
            let a: Vec<u8> = std::hint::black_box(Vec::with_capacity(1000));
            drop(a);
            {
                let _inner = stage("embed");
                for _ in 0..10 {
                    drop(std::hint::black_box(Vec::<u8>::with_capacity(64)));
                }
                kept = std::hint::black_box(vec![0u8; 4096]);
            }
        }
        let s = op.finish();
        let get = |n| {
            s.stages
                .iter()
                .find(|(x, _)| *x == n)
                .map(|(_, m)| *m)
                .unwrap()
        };
        let persist = get("persist");
        let embed = get("embed");
        assert_eq!(persist.allocs, 1);
        assert_eq!(persist.alloc_bytes, 1000);
        assert_eq!(embed.allocs, 11);
        assert_eq!(embed.alloc_bytes, 10 * 64 + 4096);
        assert_eq!(embed.peak_live_bytes, 4096);
        // The outer stage's peak includes the child's live allocation.
        assert_eq!(persist.peak_live_bytes, 4096);
        assert_eq!(s.total.allocs, 12);
        drop(kept);
    }
}
