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
//!
//! Heap passes (`cargo perfcheck profile --heap`) switch the allocator into a slow mode with
//! [`start_heap_pass`]: allocations are routed to DHAT and/or attributed to the innermost stage
//! or [`component`] in a side table, so a later free finds the label that allocated the block.
//! Timing passes never switch it on and pay one relaxed atomic load per allocation for it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::panic::Location;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, PoisonError, RwLock};

pub mod callgrind;

/// Per-thread allocation counters. Thread-local because shared atomics made two allocating
/// threads 4x slower on a 2-core VM (44 ns vs 11 ns per alloc+free).
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
    fn use_dhat(&self, mode: u8) -> bool {
        self.dhat_capable && mode & HEAP_DHAT != 0
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
        let p = if self.use_dhat(mode) {
            raw(&dhat::Alloc)
        } else {
            raw(&self.inner)
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
        if self.use_dhat(mode) {
            dhat::Alloc.dealloc(ptr, layout);
        } else {
            self.inner.dealloc(ptr, layout);
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
            let p = if self.use_dhat(mode) {
                realloc(&dhat::Alloc)
            } else {
                realloc(&self.inner)
            };
            if !p.is_null() {
                table.remove(ptr as usize, layout.size());
                table.insert(p as usize, current_label(), new_size);
            }
            p
        } else if self.use_dhat(mode) {
            realloc(&dhat::Alloc)
        } else {
            realloc(&self.inner)
        };
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

// ---------------------------------------------------------------------------------------------
// Heap passes: DHAT routing and live-bytes attribution to stages and components.
// ---------------------------------------------------------------------------------------------

/// Profiling-pass switches, read by [`CountingAlloc`] on every call and by [`stage`] on every
/// entry (one relaxed load each). Zero in timing passes, so they never touch DHAT, the side
/// table or the site registry.
static HEAP_MODE: AtomicU8 = AtomicU8::new(0);
const HEAP_DHAT: u8 = 1;
const HEAP_ATTRIBUTE: u8 = 2;
/// Stage guards record where they are opened (see [`capture_stage_sites`]).
const SITE_CAPTURE: u8 = 4;
/// The bits that send the allocator down its slow path.
const ALLOC_BITS: u8 = HEAP_DHAT | HEAP_ATTRIBUTE;

/// Most distinct labels (stages and components) one heap pass can tell apart; more share the
/// last one, [`OVERFLOW_LABEL`].
pub const MAX_LABELS: usize = 64;
/// Label of allocations made outside every stage and component.
pub const UNLABELLED: &str = "(no stage)";
/// Label shared by the labels past [`MAX_LABELS`].
pub const OVERFLOW_LABEL: &str = "(other labels)";
/// Marks a guard that did not change the thread's label.
const NO_LABEL: u8 = u8::MAX;

thread_local! {
    /// The label new allocations of this thread are attributed to, in attributing heap passes.
    static HEAP_LABEL: Cell<u8> = const { Cell::new(0) };
    /// Set while this thread is inside the heap-pass allocator path (so the allocations DHAT
    /// makes for its own bookkeeping are neither counted nor attributed), and permanently on
    /// threads excluded from tracking.
    static BYPASS: Cell<bool> = const { Cell::new(false) };
}

struct HookGuard;

impl HookGuard {
    #[inline]
    fn enter() -> Option<HookGuard> {
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

struct LabelNames {
    names: [&'static str; MAX_LABELS],
    len: usize,
}

static LABEL_NAMES: Mutex<LabelNames> = Mutex::new(LabelNames {
    names: [""; MAX_LABELS],
    len: 0,
});

/// The id of `name`, registering it on first use. A fixed array: never allocates, so it is
/// safe to call from stage guards in the middle of a heap pass.
fn label_id(name: &'static str) -> u8 {
    let mut l = LABEL_NAMES.lock().unwrap_or_else(PoisonError::into_inner);
    if l.len == 0 {
        l.names[0] = UNLABELLED;
        l.names[MAX_LABELS - 1] = OVERFLOW_LABEL;
        l.len = 1;
    }
    let len = l.len;
    if let Some(i) = l.names[..len].iter().position(|n| *n == name) {
        return i as u8;
    }
    if len < MAX_LABELS - 1 {
        l.names[len] = name;
        l.len += 1;
        len as u8
    } else {
        (MAX_LABELS - 1) as u8
    }
}

fn label_name(id: usize) -> &'static str {
    let l = LABEL_NAMES.lock().unwrap_or_else(PoisonError::into_inner);
    match l.names.get(id) {
        Some(n) if !n.is_empty() => n,
        _ => UNLABELLED,
    }
}

#[inline]
fn current_label() -> u8 {
    HEAP_LABEL.try_with(Cell::get).unwrap_or(0)
}

/// Sets this thread's label to `name` when an attributing heap pass is active, and records
/// the stage's source site when site capture is on; returns the label to restore, or
/// `NO_LABEL`.
#[inline]
fn push_label(name: &'static str, site: Option<&'static Location<'static>>) -> u8 {
    let mode = HEAP_MODE.load(Ordering::Relaxed);
    if mode == 0 {
        return NO_LABEL;
    }
    push_label_slow(name, site, mode)
}

#[cold]
#[inline(never)]
fn push_label_slow(name: &'static str, site: Option<&'static Location<'static>>, mode: u8) -> u8 {
    if mode & SITE_CAPTURE != 0 {
        if let Some(loc) = site {
            record_site(name, loc.file());
        }
    }
    if mode & HEAP_ATTRIBUTE == 0 {
        return NO_LABEL;
    }
    let id = label_id(name);
    HEAP_LABEL.try_with(|l| l.replace(id)).unwrap_or(NO_LABEL)
}

struct Sites {
    sites: [(&'static str, &'static str); MAX_LABELS],
    len: usize,
}

static STAGE_SITES: Mutex<Sites> = Mutex::new(Sites {
    sites: [("", ""); MAX_LABELS],
    len: 0,
});

thread_local! {
    /// Stage names this thread already recorded (by address), so capture costs a short scan
    /// per stage entry instead of a lock.
    static SITES_SEEN: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

fn record_site(stage: &'static str, file: &'static str) {
    let key = stage.as_ptr() as usize;
    let known = SITES_SEEN
        .try_with(|seen| {
            let mut seen = seen.borrow_mut();
            if seen.contains(&key) {
                true
            } else {
                seen.push(key);
                false
            }
        })
        .unwrap_or(false);
    if known {
        return;
    }
    let mut s = STAGE_SITES.lock().unwrap_or_else(PoisonError::into_inner);
    let len = s.len;
    if len < MAX_LABELS && !s.sites[..len].iter().any(|(n, _)| *n == stage) {
        s.sites[len] = (stage, file);
        s.len += 1;
    }
}

/// Where a stage's guard is opened: the source file of its stage function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StageSite {
    /// Stage name.
    pub stage: &'static str,
    /// Source file of the `stage(..)` call, as `file!()` spells it (`src/engine/recall.rs`).
    pub file: &'static str,
}

/// Turns on (or off) recording of where each stage is opened. CPU profiles use it to tell a
/// stage function's frame (`rerank` in `src/engine/recall.rs`) from a same-named function
/// elsewhere, since release builds name inlined and DWARF-resolved frames without their path.
pub fn capture_stage_sites(on: bool) {
    if on {
        HEAP_MODE.fetch_or(SITE_CAPTURE, Ordering::SeqCst);
    } else {
        HEAP_MODE.fetch_and(!SITE_CAPTURE, Ordering::SeqCst);
    }
}

/// Stage sites recorded since the process started (first site per stage name).
pub fn stage_sites() -> Vec<StageSite> {
    let s = STAGE_SITES.lock().unwrap_or_else(PoisonError::into_inner);
    s.sites[..s.len]
        .iter()
        .map(|&(stage, file)| StageSite { stage, file })
        .collect()
}

#[inline]
fn pop_label(prev: u8) {
    if prev != NO_LABEL {
        let _ = HEAP_LABEL.try_with(|l| l.set(prev));
    }
}

/// Guard of a named heap component; see [`component`].
#[must_use = "the component ends when this guard drops"]
pub struct ComponentGuard {
    prev_label: u8,
    _not_send: PhantomData<*const ()>,
}

/// Attributes the heap blocks this thread allocates, until the guard drops, to the component
/// `name` (for example `"recall_cache"`) in attributing heap passes; a no-op otherwise (one
/// relaxed load). Unlike [`stage`] it records no time.
#[inline]
pub fn component(name: &'static str) -> ComponentGuard {
    ComponentGuard {
        prev_label: push_label(name, None),
        _not_send: PhantomData,
    }
}

impl Drop for ComponentGuard {
    #[inline]
    fn drop(&mut self) {
        pop_label(self.prev_label);
    }
}

/// Per-label counters of the side table.
#[derive(Clone, Copy)]
struct LabelCounters {
    live: i64,
    peak: i64,
    allocs: u64,
    bytes: u64,
}

const ZERO_COUNTERS: LabelCounters = LabelCounters {
    live: 0,
    peak: 0,
    allocs: 0,
    bytes: 0,
};

/// Live blocks of an attributing heap pass: address -> label, open addressing with linear
/// probing. Its memory comes from `System` directly so it never re-enters the global allocator.
struct HeapTable {
    slots: *mut Slot,
    cap: usize,
    len: usize,
    counters: [LabelCounters; MAX_LABELS],
    /// Frees of blocks allocated before the pass (not in the table).
    untracked_frees: u64,
}

#[derive(Clone, Copy)]
struct Slot {
    /// Block address; 0 = empty.
    key: usize,
    label: u8,
}

// SAFETY: the slot array is owned by the table and only touched under HEAP_TABLE's lock.
unsafe impl Send for HeapTable {}

static HEAP_TABLE: Mutex<HeapTable> = Mutex::new(HeapTable {
    slots: std::ptr::null_mut(),
    cap: 0,
    len: 0,
    counters: [ZERO_COUNTERS; MAX_LABELS],
    untracked_frees: 0,
});

fn heap_table() -> std::sync::MutexGuard<'static, HeapTable> {
    HEAP_TABLE.lock().unwrap_or_else(PoisonError::into_inner)
}

const INITIAL_SLOTS: usize = 1 << 16;

impl HeapTable {
    #[inline]
    fn home(&self, key: usize) -> usize {
        // Fibonacci hashing of the address without its always-zero alignment bits.
        let h = ((key >> 4) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (h >> (64 - self.cap.trailing_zeros())) as usize
    }

    fn slots(&mut self) -> &mut [Slot] {
        if self.slots.is_null() {
            return &mut [];
        }
        // SAFETY: `slots` points to `cap` initialised slots allocated by `grow`.
        unsafe { std::slice::from_raw_parts_mut(self.slots, self.cap) }
    }

    /// Doubles the slot array (or creates it). Returns false when System is out of memory, in
    /// which case the block simply goes untracked.
    fn grow(&mut self) -> bool {
        let new_cap = if self.cap == 0 {
            INITIAL_SLOTS
        } else {
            self.cap * 2
        };
        let Ok(layout) = Layout::array::<Slot>(new_cap) else {
            return false;
        };
        // SAFETY: non-zero size; zeroed memory is a valid array of empty slots.
        let fresh = unsafe { System.alloc_zeroed(layout) } as *mut Slot;
        if fresh.is_null() {
            return false;
        }
        let old_ptr = self.slots;
        let old_cap = self.cap;
        self.slots = fresh;
        self.cap = new_cap;
        self.len = 0;
        if !old_ptr.is_null() {
            // SAFETY: the old array had `old_cap` initialised slots and is freed exactly once.
            unsafe {
                for i in 0..old_cap {
                    let s = *old_ptr.add(i);
                    if s.key != 0 {
                        self.put(s.key, s.label);
                    }
                }
                if let Ok(old_layout) = Layout::array::<Slot>(old_cap) {
                    System.dealloc(old_ptr as *mut u8, old_layout);
                }
            }
        }
        true
    }

    /// Inserts or overwrites; the caller guarantees free space.
    fn put(&mut self, key: usize, label: u8) -> Option<u8> {
        let mask = self.cap - 1;
        let mut i = self.home(key);
        let slots = self.slots();
        loop {
            let s = &mut slots[i];
            if s.key == key {
                return Some(std::mem::replace(&mut s.label, label));
            }
            if s.key == 0 {
                *s = Slot { key, label };
                self.len += 1;
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    fn insert(&mut self, key: usize, label: u8, size: usize) {
        if key == 0 || ((self.len + 1) * 2 > self.cap && !self.grow()) {
            return;
        }
        let label = usize::from(label).min(MAX_LABELS - 1);
        // An address still in the table was freed behind our back (before the pass started
        // with a pointer reused since); drop the stale entry's label quietly.
        self.put(key, label as u8);
        let c = &mut self.counters[label];
        c.allocs += 1;
        c.bytes += size as u64;
        c.live += size as i64;
        c.peak = c.peak.max(c.live);
    }

    fn remove(&mut self, key: usize, size: usize) {
        let Some(label) = self.take(key) else {
            self.untracked_frees += 1;
            return;
        };
        self.counters[usize::from(label)].live -= size as i64;
    }

    /// Removes `key` with backward-shift deletion (no tombstones, so probes stay short).
    fn take(&mut self, key: usize) -> Option<u8> {
        if self.cap == 0 || key == 0 {
            return None;
        }
        let mask = self.cap - 1;
        let mut i = self.home(key);
        loop {
            let k = self.slots()[i].key;
            if k == key {
                break;
            }
            if k == 0 {
                return None;
            }
            i = (i + 1) & mask;
        }
        let label = self.slots()[i].label;
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let k = self.slots()[j].key;
            if k == 0 {
                break;
            }
            let home = self.home(k);
            // Slot j may move into the hole unless its home lies cyclically in (hole, j].
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                let moved = self.slots()[j];
                self.slots()[hole] = moved;
                hole = j;
            }
        }
        self.slots()[hole] = Slot { key: 0, label: 0 };
        self.len -= 1;
        Some(label)
    }

    fn reset(&mut self) {
        if !self.slots.is_null() {
            if let Ok(layout) = Layout::array::<Slot>(self.cap) {
                // SAFETY: allocated by `grow` with this layout, freed once, pointer cleared.
                unsafe { System.dealloc(self.slots as *mut u8, layout) };
            }
        }
        self.slots = std::ptr::null_mut();
        self.cap = 0;
        self.len = 0;
        self.counters = [ZERO_COUNTERS; MAX_LABELS];
        self.untracked_frees = 0;
    }
}

/// Which heap instruments a heap pass switches on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeapPassMode {
    /// Route allocations through `dhat::Alloc` (start a `dhat::Profiler` before, stop it after).
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
        let _ = HEAP_LABEL.try_with(|l| l.set(0));
    }
}

/// Live heap of one label in an attributing heap pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LabelHeap {
    /// Stage or component name ([`UNLABELLED`] for everything else).
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
        let n = LABEL_NAMES
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len;
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

/// Recorder switch: read thread CPU time at every boundary of this operation.
const MODE_CPU: u8 = 1;
/// Recorder switch: mark every boundary for callgrind (instructions passes only).
const MODE_COUNT: u8 = 2;
/// Recorder switch: the calibration knob slows one stage ([`set_slowdown`]).
const MODE_SLOW: u8 = 4;

/// Process-wide recorder switches ([`MODE_COUNT`], [`MODE_SLOW`]), read once per operation by
/// [`begin_operation`] with one relaxed load. Zero in timing runs, so the only cost the extra
/// modes add to a stage boundary is the mode test that CPU sampling needs anyway.
static PASS_MODE: AtomicU8 = AtomicU8::new(0);

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

/// Guard of one active stage; the stage ends when it drops. `!Send` on purpose (see module docs).
#[must_use = "the stage ends when this guard drops"]
pub struct StageGuard {
    active: bool,
    /// Heap label to restore on drop, or `NO_LABEL` outside attributing heap passes.
    prev_label: u8,
    _not_send: PhantomData<*const ()>,
}

/// Enters the stage `name` on this thread until the returned guard drops.
///
/// Use the canonical stage names of docs/ARCHITECTURE.md (`vector_search`, `persist`, ...). Outside an
/// operation this records nothing. Never hold the guard across an `.await`.
#[inline]
#[track_caller]
pub fn stage(name: &'static str) -> StageGuard {
    // Heap attribution works outside operations too (corpus loading has a stage).
    let prev_label = push_label(name, Some(Location::caller()));
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
        prev_label,
        _not_send: PhantomData,
    }
}

impl Drop for StageGuard {
    #[inline]
    fn drop(&mut self) {
        pop_label(self.prev_label);
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

static SLOWDOWN: RwLock<Option<(&'static str, u32)>> = RwLock::new(None);

/// Test and calibration knob: makes stage `name` slower by `percent` % of its own wall time,
/// by spinning inside the stage (so CPU profiles show the time under that stage too).
/// `None` turns it off. Takes effect at the next [`begin_operation`].
pub fn set_slowdown(knob: Option<(&str, u32)>) {
    let leaked = knob.map(|(name, pct)| (&*Box::leak(name.to_owned().into_boxed_str()), pct));
    let on = leaked.is_some();
    if let Ok(mut s) = SLOWDOWN.write() {
        *s = leaked;
    }
    if on {
        PASS_MODE.fetch_or(MODE_SLOW, Ordering::SeqCst);
    } else {
        PASS_MODE.fetch_and(!MODE_SLOW, Ordering::SeqCst);
    }
}

/// Turns the calibration knob on for as long as the returned guard lives, so an error that
/// ends a run early cannot leave later runs of the process slowed.
#[must_use = "the knob is turned off when the guard drops"]
pub fn slowdown_scope(knob: Option<(&str, u32)>) -> SlowdownScope {
    set_slowdown(knob);
    SlowdownScope(())
}

/// Guard of [`slowdown_scope`].
pub struct SlowdownScope(());

impl Drop for SlowdownScope {
    fn drop(&mut self) {
        set_slowdown(None);
    }
}

/// Whether the calibration knob is on (a run measured now is not a fair measurement).
pub fn slowdown_active() -> bool {
    PASS_MODE.load(Ordering::SeqCst) & MODE_SLOW != 0
}

/// Turns callgrind segment marks on (or off) for the operations this process begins from
/// now: every stage boundary then ends a callgrind profile part named
/// `perfcheck <op> <stage>`, with collection off while the recorder does its bookkeeping.
/// Only for instructions passes, which run under `valgrind --tool=callgrind
/// --collect-atstart=no`.
pub fn count_instructions(on: bool) {
    if on {
        PASS_MODE.fetch_or(MODE_COUNT, Ordering::SeqCst);
    } else {
        PASS_MODE.fetch_and(!MODE_COUNT, Ordering::SeqCst);
    }
}

/// The prefix of every callgrind profile part the recorder names.
pub const SEGMENT_PREFIX: &str = "perfcheck ";

/// Writes `perfcheck <op> <stage>` and a NUL into `buf` (truncated to fit) and returns it as a
/// C string. Characters outside `[a-z0-9_]` in the stage name become `?`, so a name can never
/// break callgrind's line-based output.
fn segment_label<'a>(buf: &'a mut [u8; 96], op: u64, stage: &str) -> &'a std::ffi::CStr {
    use std::io::Write;
    let cap = buf.len() - 1;
    let mut cursor = std::io::Cursor::new(&mut buf[..cap]);
    let _ = write!(cursor, "{SEGMENT_PREFIX}{op} ");
    for c in stage.chars() {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
            c as u8
        } else {
            b'?'
        };
        if cursor.write_all(&[c]).is_err() {
            break;
        }
    }
    let end = cursor.position() as usize;
    buf[end] = 0;
    std::ffi::CStr::from_bytes_until_nul(&buf[..=end]).unwrap_or(c"perfcheck 0 ?")
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
        // The only test that turns the process-wide knob on; it is off again once the scope
        // ends, here through an early return as on an error.
        fn measured(out: &mut Option<OpSample>) -> Result<(), ()> {
            let _knob = slowdown_scope(Some(("vector_search", 100)));
            assert!(slowdown_active());
            let op = begin_operation(false);
            {
                let _s = stage("vector_search");
                spin_for(300_000);
            }
            {
                let _s = stage("rerank");
                spin_for(300_000);
            }
            *out = Some(op.finish());
            Err(())
        }
        let mut sample = None;
        assert!(measured(&mut sample).is_err());
        assert!(!slowdown_active(), "the knob is off after its scope");
        let s = sample.unwrap();
        assert_eq!(s.stages[0], ("vector_search", s.stages[0].1));
        assert_eq!(s.stages[0].1.wall_ns, 600_000, "300 µs doubled");
        assert_eq!(s.stages[1].1.wall_ns, 300_000, "rerank untouched");
    }

    #[test]
    fn segment_labels_name_the_operation_and_frame_and_stay_one_line() {
        let mut buf = [0u8; 96];
        assert_eq!(
            segment_label(&mut buf, 12, "vector_search")
                .to_str()
                .unwrap(),
            "perfcheck 12 vector_search"
        );
        assert_eq!(
            segment_label(&mut buf, 3, "a b\nc").to_str().unwrap(),
            "perfcheck 3 a?b?c"
        );
        let long = "x".repeat(200);
        let label = segment_label(&mut buf, 1, &long)
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(label.len(), 95, "truncated to the buffer, NUL kept");
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

    #[test]
    fn stage_sites_name_the_file_of_the_stage_call_while_capturing() {
        {
            let _s = stage("test_site_off");
        }
        capture_stage_sites(true);
        {
            let _s = stage("test_site_on");
        }
        capture_stage_sites(false);
        let sites = stage_sites();
        assert!(sites.iter().all(|s| s.stage != "test_site_off"));
        let on = sites.iter().find(|s| s.stage == "test_site_on").unwrap();
        assert_eq!(on.file, file!());
    }

    #[test]
    fn heap_table_matches_a_hash_map_under_random_churn() {
        use std::collections::HashMap;
        let mut t = HeapTable {
            slots: std::ptr::null_mut(),
            cap: 0,
            len: 0,
            counters: [ZERO_COUNTERS; MAX_LABELS],
            untracked_frees: 0,
        };
        let mut model: HashMap<usize, u8> = HashMap::new();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        // Enough keys to force two doublings past INITIAL_SLOTS; clustered addresses like a
        // real heap's, so probe chains wrap and backward shifts happen.
        for step in 0..400_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = 0x5555_0000_0000 + ((x % 200_000) as usize) * 16;
            let label = (step % 7) as u8;
            if x & 3 == 0 {
                t.remove(key, 8);
                model.remove(&key);
            } else {
                t.insert(key, label, 8);
                model.insert(key, label);
            }
        }
        assert_eq!(t.len, model.len());
        for (&k, &l) in &model {
            assert_eq!(t.take(k), Some(l), "key {k:#x}");
        }
        assert_eq!(t.len, 0);
        assert!(t.cap > INITIAL_SLOTS);
        t.reset();
    }

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
