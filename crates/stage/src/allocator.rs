//! The counting global allocator: counts every allocation for this thread's stage, and in heap
//! passes routes to DHAT and/or attributes live blocks to the allocating stage.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::Ordering;

use crate::counters::{alloc_snapshot, count_alloc, count_free};
use crate::heap_pass::{dhat_allocator, HookGuard};
use crate::heap_table::heap_table;
use crate::labels::current_label;
use crate::pass_mode::{ALLOC_BITS, HEAP_ATTRIBUTE, HEAP_DHAT, HEAP_MODE};

/// A global allocator that counts allocations per thread so the recorder can attribute them
/// to the innermost active stage. The binary declares it; the library provides it:
///
/// ```ignore
/// #[global_allocator]
/// static ALLOC: perfcheck_stage::CountingAlloc = perfcheck_stage::CountingAlloc::system();
/// ```
pub struct CountingAlloc<A = System> {
    inner: A,
    /// Whether DHAT may serve this allocator's blocks in a DHAT heap pass. Only when the inner
    /// allocator is `System`: `dhat::Alloc` takes its memory from `System`, so a block may be
    /// allocated on one side of a pass boundary and freed on the other.
    dhat_capable: bool,
}

impl CountingAlloc<System> {
    /// Counting wrapper around the system allocator.
    pub const fn system() -> Self {
        CountingAlloc {
            inner: System,
            dhat_capable: true,
        }
    }
}

impl<A> CountingAlloc<A> {
    /// Counting wrapper around any other global allocator (DHAT heap passes then see nothing;
    /// stage attribution still works).
    pub const fn new(inner: A) -> Self {
        CountingAlloc {
            inner,
            dhat_capable: false,
        }
    }
}

// SAFETY: every call is forwarded to the inner allocator, or in a DHAT heap pass to
// `dhat::Alloc`, which serves it from `System` (only allowed when the inner allocator is
// `System`, see `dhat_capable`). Counting touches thread-local cells; attribution touches a
// side table whose memory comes from `System` directly, so neither re-enters this allocator.
unsafe impl<A: GlobalAlloc> GlobalAlloc for CountingAlloc<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if HEAP_MODE.load(Ordering::Relaxed) & ALLOC_BITS != 0 {
            return self.alloc_slow(layout, false);
        }
        let p = self.inner.alloc(layout);
        if !p.is_null() {
            count_alloc(layout.size());
        }
        p
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if HEAP_MODE.load(Ordering::Relaxed) & ALLOC_BITS != 0 {
            return self.alloc_slow(layout, true);
        }
        let p = self.inner.alloc_zeroed(layout);
        if !p.is_null() {
            count_alloc(layout.size());
        }
        p
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if HEAP_MODE.load(Ordering::Relaxed) & ALLOC_BITS != 0 {
            return self.dealloc_slow(ptr, layout);
        }
        self.inner.dealloc(ptr, layout);
        count_free(layout.size());
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if HEAP_MODE.load(Ordering::Relaxed) & ALLOC_BITS != 0 {
            return self.realloc_slow(ptr, layout, new_size);
        }
        let p = self.inner.realloc(ptr, layout, new_size);
        if !p.is_null() {
            count_free(layout.size());
            count_alloc(new_size);
        }
        p
    }
}

/// The heap-pass paths, kept out of line so the timing pass's fast path stays small.
impl<A: GlobalAlloc> CountingAlloc<A> {
    /// The DHAT allocator to serve this call, in a DHAT heap pass of a DHAT-capable allocator.
    fn dhat_alloc(&self, mode: u8) -> Option<&'static dyn GlobalAlloc> {
        if self.dhat_capable && mode & HEAP_DHAT != 0 {
            dhat_allocator()
        } else {
            None
        }
    }

    #[cold]
    #[inline(never)]
    unsafe fn alloc_slow(&self, layout: Layout, zeroed: bool) -> *mut u8 {
        let raw = |a: &dyn GlobalAlloc| {
            if zeroed {
                a.alloc_zeroed(layout)
            } else {
                a.alloc(layout)
            }
        };
        // Re-entry (DHAT's own bookkeeping) and excluded threads go straight through, uncounted.
        let Some(_hook) = HookGuard::enter() else {
            return raw(&self.inner);
        };
        let mode = HEAP_MODE.load(Ordering::Relaxed);
        let p = match self.dhat_alloc(mode) {
            Some(dhat) => raw(dhat),
            None => raw(&self.inner),
        };
        if !p.is_null() {
            count_alloc(layout.size());
            if mode & HEAP_ATTRIBUTE != 0 {
                heap_table().insert(p as usize, current_label(), layout.size());
            }
        }
        p
    }

    #[cold]
    #[inline(never)]
    unsafe fn dealloc_slow(&self, ptr: *mut u8, layout: Layout) {
        let Some(_hook) = HookGuard::enter() else {
            return self.inner.dealloc(ptr, layout);
        };
        let mode = HEAP_MODE.load(Ordering::Relaxed);
        // Forget the block before freeing it, so another thread that gets the same address
        // next cannot have its entry removed by this free.
        if mode & HEAP_ATTRIBUTE != 0 {
            heap_table().remove(ptr as usize, layout.size());
        }
        match self.dhat_alloc(mode) {
            Some(dhat) => dhat.dealloc(ptr, layout),
            None => self.inner.dealloc(ptr, layout),
        }
        count_free(layout.size());
    }

    #[cold]
    #[inline(never)]
    unsafe fn realloc_slow(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Some(_hook) = HookGuard::enter() else {
            return self.inner.realloc(ptr, layout, new_size);
        };
        let mode = HEAP_MODE.load(Ordering::Relaxed);
        let realloc = |a: &dyn GlobalAlloc| a.realloc(ptr, layout, new_size);
        let p = if mode & HEAP_ATTRIBUTE != 0 {
            // The table stays locked across the move, so the old address cannot be handed to
            // (and recorded for) another thread before its entry is gone. The grown block
            // belongs to the label that grew it.
            let mut table = heap_table();
            let p = match self.dhat_alloc(mode) {
                Some(dhat) => realloc(dhat),
                None => realloc(&self.inner),
            };
            if !p.is_null() {
                table.remove(ptr as usize, layout.size());
                table.insert(p as usize, current_label(), new_size);
            }
            p
        } else {
            match self.dhat_alloc(mode) {
                Some(dhat) => realloc(dhat),
                None => realloc(&self.inner),
            }
        };
        if !p.is_null() {
            count_free(layout.size());
            count_alloc(new_size);
        }
        p
    }
}

/// Whether [`CountingAlloc`] is the global allocator of this process.
pub fn counting_allocator_installed() -> bool {
    let before = alloc_snapshot().allocs;
    let probe = std::hint::black_box(Box::new(0u64));
    drop(probe);
    alloc_snapshot().allocs != before
}
