//! Heap passes: switching the counting allocator to its slow path, DHAT routing, and the
//! per-label live-heap snapshots of attributing passes.

use std::alloc::GlobalAlloc;
use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::sync::OnceLock;

use crate::heap_table::heap_table;
use crate::labels::{label_count, label_name, reset_label, MAX_LABELS};
use crate::pass_mode::{ALLOC_BITS, HEAP_ATTRIBUTE, HEAP_DHAT, HEAP_MODE};

thread_local! {
    /// Set while this thread is inside the heap-pass allocator path (so the allocations DHAT
    /// makes for its own bookkeeping are neither counted nor attributed), and permanently on
    /// threads excluded from tracking.
    static BYPASS: Cell<bool> = const { Cell::new(false) };
}

pub(crate) struct HookGuard;

impl HookGuard {
    #[inline]
    pub(crate) fn enter() -> Option<HookGuard> {
        // `then`, not `then_some`: an eagerly built guard would be dropped on the bypass
        // path and clear the flag it must leave set.
        BYPASS
            .try_with(|b| (!b.replace(true)).then(|| HookGuard))
            .ok()
            .flatten()
    }
}

impl Drop for HookGuard {
    #[inline]
    fn drop(&mut self) {
        let _ = BYPASS.try_with(|b| b.set(false));
    }
}

/// Excludes the calling thread from heap tracking for the rest of its life (DHAT and the side
/// table never see its allocations); for the profiler's own sampler threads.
pub fn exclude_thread_from_heap_tracking() {
    let _ = BYPASS.try_with(|b| b.set(true));
}

/// The allocator DHAT heap passes route to; see [`register_dhat_allocator`].
static DHAT_ALLOC: OnceLock<&'static (dyn GlobalAlloc + Sync)> = OnceLock::new();

/// Registers the allocator that DHAT heap passes route allocations to (the tool passes
/// `&dhat::Alloc`), so this crate does not depend on dhat. It must take its memory from
/// `System`. The first registration wins; until one is made, DHAT passes route nowhere and
/// the profiler sees no allocations.
pub fn register_dhat_allocator(alloc: &'static (dyn GlobalAlloc + Sync)) {
    let _ = DHAT_ALLOC.set(alloc);
}

#[inline]
pub(crate) fn dhat_allocator() -> Option<&'static dyn GlobalAlloc> {
    DHAT_ALLOC.get().map(|a| *a as &dyn GlobalAlloc)
}

/// Which heap instruments a heap pass switches on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeapPassMode {
    /// Route allocations through the [registered](register_dhat_allocator) `dhat::Alloc` (start
    /// a `dhat::Profiler` before, stop it after).
    pub dhat: bool,
    /// Attribute live blocks to the stage or component that allocated them.
    pub attribute: bool,
}

/// An active heap pass; the allocator returns to its fast path when this drops.
#[must_use = "the heap pass ends when this guard drops"]
pub struct HeapPass {
    _private: (),
}

/// Switches the counting allocator into heap-pass mode. Returns `None` when another heap pass
/// is active. Only one pass runs at a time per process; timing must not run during one.
pub fn start_heap_pass(mode: HeapPassMode) -> Option<HeapPass> {
    let bits = u8::from(mode.dhat) * HEAP_DHAT + u8::from(mode.attribute) * HEAP_ATTRIBUTE;
    if bits == 0 || HEAP_MODE.load(Ordering::SeqCst) & ALLOC_BITS != 0 {
        return None;
    }
    // Clear leftovers of an earlier pass before the mode is visible to other threads.
    heap_table().reset();
    HEAP_MODE
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |m| {
            (m & ALLOC_BITS == 0).then_some(m | bits)
        })
        .ok()
        .map(|_| HeapPass { _private: () })
}

impl Drop for HeapPass {
    fn drop(&mut self) {
        HEAP_MODE.fetch_and(!ALLOC_BITS, Ordering::SeqCst);
        // Frees that happen from now on no longer consult the table; later passes reset it.
        reset_label();
    }
}

/// Live heap of one label in an attributing heap pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LabelHeap {
    /// Stage or component name ([`UNLABELLED`](crate::UNLABELLED) for everything else).
    pub label: &'static str,
    /// Bytes allocated under this label and not freed yet.
    pub live_bytes: i64,
    /// Highest `live_bytes` since the previous [`take_heap_snapshot`].
    pub peak_bytes: i64,
    /// Allocations under this label since the pass started.
    pub allocs: u64,
    /// Bytes allocated under this label since the pass started.
    pub alloc_bytes: u64,
}

/// Reads every label's counters and restarts the per-label peaks at the current live bytes,
/// so each snapshot's peak covers the interval since the previous one.
pub fn take_heap_snapshot() -> Vec<LabelHeap> {
    let (counters, n) = {
        let mut t = heap_table();
        let copy = t.counters;
        for c in t.counters.iter_mut() {
            c.peak = c.live;
        }
        let n = label_count();
        (copy, n)
    };
    let mut out = Vec::with_capacity(n + 1);
    for (i, c) in counters.iter().enumerate() {
        if i < n || (i == MAX_LABELS - 1 && c.allocs > 0) {
            out.push(LabelHeap {
                label: label_name(i),
                live_bytes: c.live,
                peak_bytes: c.peak,
                allocs: c.allocs,
                alloc_bytes: c.bytes,
            });
        }
    }
    out
}

/// Bytes allocated since the current attributing heap pass started and still live, over all
/// labels (allocations older than the pass are not included).
pub fn heap_live_bytes() -> i64 {
    heap_table().counters.iter().map(|c| c.live).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::current_label;
    use crate::{component, stage};

    #[test]
    fn attributing_heap_pass_charges_live_bytes_to_the_allocating_label() {
        let pass = start_heap_pass(HeapPassMode {
            dhat: false,
            attribute: true,
        })
        .expect("no other heap pass in this test binary");
        assert!(start_heap_pass(HeapPassMode {
            dhat: false,
            attribute: true
        })
        .is_none());
        let held;
        let grown;
        {
            let _c = component("test_component");
            held = std::hint::black_box(vec![1u8; 10_000]);
            drop(std::hint::black_box(vec![1u8; 5_000]));
            let mut v: Vec<u8> = Vec::with_capacity(16);
            {
                // Growing inside a stage moves the block to that stage.
                let _s = stage("test_stage");
                v.extend(std::iter::repeat_n(7u8, 4096));
            }
            grown = v;
        }
        let snap = take_heap_snapshot();
        let get = |n: &str| *snap.iter().find(|l| l.label == n).expect(n);
        let c = get("test_component");
        assert_eq!(c.live_bytes, 10_000);
        assert_eq!(c.peak_bytes, 15_000, "both vectors were live at once");
        assert_eq!(c.alloc_bytes, 10_000 + 5_000 + 16);
        let s = get("test_stage");
        assert_eq!(s.live_bytes, grown.capacity() as i64);
        drop(held);
        let after = take_heap_snapshot();
        let c = *after.iter().find(|l| l.label == "test_component").unwrap();
        assert_eq!(c.live_bytes, 0);
        assert_eq!(
            c.peak_bytes, 10_000,
            "peak restarts at the live bytes of the last snapshot"
        );
        // An excluded thread's blocks are neither counted nor attributed.
        std::thread::spawn(|| {
            exclude_thread_from_heap_tracking();
            let _c = component("test_excluded");
            for _ in 0..3 {
                drop(std::hint::black_box(vec![0u8; 1000]));
            }
        })
        .join()
        .unwrap();
        let snap = take_heap_snapshot();
        assert!(snap
            .iter()
            .all(|l| l.label != "test_excluded" || l.allocs == 0));
        drop(pass);
        // Outside the pass labels are not touched.
        let _c = component("test_component");
        assert_eq!(current_label(), 0);
        drop(grown);
    }
}
