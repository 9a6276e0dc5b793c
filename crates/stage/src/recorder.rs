//! The per-thread recorder: an operation's stack of stage frames, their inclusive and self
//! measures, and the operation record it returns.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::atomic::Ordering;

use crate::callgrind;
use crate::clock::{now_raw, raw_delta_ns, thread_cpu_ns};
use crate::counters::ALLOC;
use crate::pass_mode::{MODE_COUNT, MODE_CPU, MODE_SLOW, PASS_MODE};
use crate::segments::segment_label;
use crate::slowdown::{burn_proportional, slowdown};

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

thread_local! {
    static RECORDER: RefCell<Recorder> = const { RefCell::new(Recorder::new()) };
}

struct Recorder {
    active: bool,
    /// `MODE_*` bits of the current operation.
    mode: u8,
    slow: Option<(&'static str, u32)>,
    /// Operations counted for callgrind on this thread so far (names their segments).
    counted_ops: u64,
    stack: Vec<Frame>,
    stages: Vec<(&'static str, Measures)>,
}

impl Recorder {
    const fn new() -> Self {
        Recorder {
            active: false,
            mode: 0,
            slow: None,
            counted_ops: 0,
            stack: Vec::new(),
            stages: Vec::new(),
        }
    }

    /// Instructions passes: ends the callgrind segment of the innermost frame (collection off,
    /// then a profile part named after the frame), so the recorder's own bookkeeping is never
    /// counted and every instruction lands in exactly one stage's segment.
    #[cold]
    fn end_segment(&self) {
        let Some(top) = self.stack.last() else {
            return;
        };
        callgrind::toggle_collect();
        let mut buf = [0u8; 96];
        callgrind::dump_stats_at(segment_label(&mut buf, self.counted_ops, top.name));
    }

    #[inline]
    fn push(&mut self, name: &'static str) {
        if self.mode & MODE_COUNT != 0 {
            self.end_segment();
        }
        // CPU time first and wall last, so the (slow) CPU read is outside the wall interval.
        let cpu_start = if self.mode & MODE_CPU != 0 {
            thread_cpu_ns()
        } else {
            0
        };
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
        if self.mode & MODE_COUNT != 0 {
            callgrind::toggle_collect();
        }
    }

    /// Pops the innermost frame and returns its inclusive and self measures.
    #[inline]
    fn pop(&mut self) -> Option<(&'static str, Measures, Measures)> {
        if self.mode != 0 {
            self.before_pop();
        }
        let frame = self.stack.pop()?;
        let wall_end = now_raw();
        let (allocs, bytes, peak) = ALLOC
            .try_with(|c| {
                let peak = c.peak.get();
                c.peak.set(peak.max(frame.peak_saved));
                (c.allocs.get(), c.bytes.get(), peak)
            })
            .unwrap_or_default();
        let cpu_end = if self.mode & MODE_CPU != 0 {
            thread_cpu_ns()
        } else {
            0
        };
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
        if self.mode & MODE_COUNT != 0 && !self.stack.is_empty() {
            callgrind::toggle_collect();
        }
        Some((frame.name, inclusive, own))
    }

    /// The slow path of a stage exit: the calibration knob's spin (inside the stage, before
    /// its wall time is read) and the end of its callgrind segment.
    #[cold]
    fn before_pop(&self) {
        if self.mode & MODE_COUNT != 0 {
            self.end_segment();
        }
        if self.mode & MODE_SLOW != 0 {
            if let (Some((slow, pct)), Some(top)) = (self.slow, self.stack.last()) {
                if slow == top.name {
                    burn_proportional(top.wall_start, pct);
                }
            }
        }
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
    let pass = PASS_MODE.load(Ordering::Relaxed);
    let slow = if pass & MODE_SLOW != 0 {
        slowdown()
    } else {
        None
    };
    let _ = RECORDER.try_with(|r| {
        let mut r = r.borrow_mut();
        r.stack.clear();
        r.stages.clear();
        // Reserve before the root frame starts counting, so the recorder's own growth is
        // never attributed to a stage.
        r.stack.reserve(32);
        r.stages.reserve(32);
        r.active = true;
        r.mode = pass | if cpu_sampled { MODE_CPU } else { 0 };
        r.slow = slow;
        if pass & MODE_COUNT != 0 {
            r.counted_ops += 1;
        }
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
                cpu_sampled: r.mode & MODE_CPU != 0,
            }
        })
        .unwrap_or_default()
}

/// Pushes a stage frame when this thread is recording an operation; returns whether it did.
#[inline]
pub(crate) fn enter_stage(name: &'static str) -> bool {
    RECORDER
        .try_with(|r| {
            let mut r = r.borrow_mut();
            if r.active {
                r.push(name);
            }
            r.active
        })
        .unwrap_or(false)
}

/// Pops the innermost stage frame and adds its self measures to the operation.
#[inline]
pub(crate) fn exit_stage() {
    let _ = RECORDER.try_with(|r| {
        let mut r = r.borrow_mut();
        if let Some((name, _, own)) = r.pop() {
            r.add_stage(name, own);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::mock_clock;
    use crate::{counting_allocator_installed, stage};

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
