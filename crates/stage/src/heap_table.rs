//! The side table of attributing heap passes: which label allocated each live block, and the
//! per-label counters. Its memory comes from `System`, never from the global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::labels::MAX_LABELS;

/// Per-label counters of the side table.
#[derive(Clone, Copy)]
pub(crate) struct LabelCounters {
    pub(crate) live: i64,
    pub(crate) peak: i64,
    pub(crate) allocs: u64,
    pub(crate) bytes: u64,
}

pub(crate) const ZERO_COUNTERS: LabelCounters = LabelCounters {
    live: 0,
    peak: 0,
    allocs: 0,
    bytes: 0,
};

/// Live blocks of an attributing heap pass: address -> label, open addressing with linear
/// probing. Its memory comes from `System` directly so it never re-enters the global allocator.
pub(crate) struct HeapTable {
    slots: *mut Slot,
    cap: usize,
    len: usize,
    pub(crate) counters: [LabelCounters; MAX_LABELS],
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

pub(crate) fn heap_table() -> MutexGuard<'static, HeapTable> {
    HEAP_TABLE.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) const INITIAL_SLOTS: usize = 1 << 16;

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

    pub(crate) fn insert(&mut self, key: usize, label: u8, size: usize) {
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

    pub(crate) fn remove(&mut self, key: usize, size: usize) {
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

    pub(crate) fn reset(&mut self) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
