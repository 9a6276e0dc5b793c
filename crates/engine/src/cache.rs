//! LRU cache of recall results, keyed by normalised query text and `k`.
//!
//! Any `remember` may change any ranking, so the engine clears the whole cache on every write
//! rather than trying to work out which entries a new event could affect.
//!
//! Under concurrency a recall that started before a write may finish after it; its result
//! must not enter the cache. Every invalidation bumps a generation number, and a result is
//! only stored under the generation its recall started in ([`RecallCache::put_if_current`]).
//! Results are kept behind `Arc`s so a hit is copied outside the engine's cache lock.

use std::num::NonZeroUsize;
use std::sync::Arc;

use lru::LruCache;

use super::embed::words;
use super::recall::RecallResult;

/// Cache key: the query's lowercased words joined by single spaces, plus `k`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// Normalised query text.
    pub text: String,
    /// Number of results asked for.
    pub k: usize,
}

impl CacheKey {
    /// Key for `query` and `k`; queries differing only in case, punctuation or spacing share
    /// a key because they embed and rank identically.
    pub fn new(query: &str, k: usize) -> Self {
        let mut text = String::with_capacity(query.len());
        for w in words(query) {
            if !text.is_empty() {
                text.push(' ');
            }
            text.extend(w.chars().flat_map(char::to_lowercase));
        }
        Self { text, k }
    }
}

/// Recall result cache with hit and miss counters. Capacity 0 disables it.
#[derive(Debug)]
pub struct RecallCache {
    lru: Option<LruCache<CacheKey, Arc<RecallResult>>>,
    hits: u64,
    misses: u64,
    generation: u64,
    /// Bytes the entries hold (see [`entry_bytes`]).
    bytes: usize,
    /// Most bytes the entries may hold; 0: no byte limit (only the entry capacity).
    budget: usize,
    /// Most bytes held since the budget was last set.
    peak: usize,
    /// Entries dropped to stay within the budget or capacity.
    evictions: u64,
    /// Results not cached because one alone exceeds the budget.
    too_big: u64,
}

/// What the cache holds against its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CacheUsage {
    /// Results cached.
    pub entries: usize,
    /// Bytes they hold.
    pub bytes: usize,
    /// The byte budget (0: none).
    pub budget: usize,
    /// Most bytes held since the budget was set.
    pub peak: usize,
    /// Entries evicted.
    pub evictions: u64,
    /// Results too big to cache at all.
    pub too_big: u64,
}

/// Heap bytes one cached result holds: key text, JSON, ids and scores, plus the entry's own
/// bookkeeping (the LRU node, the `Arc`, the struct).
pub fn entry_bytes(key: &CacheKey, value: &RecallResult) -> usize {
    const OVERHEAD: usize = 160;
    OVERHEAD + key.text.len() + value.json.len() + value.ids.len() * 8 + value.scores.len() * 4
}

impl RecallCache {
    /// A cache holding up to `capacity` results (0 = disabled, every lookup misses).
    pub fn new(capacity: usize) -> Self {
        Self {
            lru: NonZeroUsize::new(capacity).map(LruCache::new),
            hits: 0,
            misses: 0,
            generation: 0,
            bytes: 0,
            budget: 0,
            peak: 0,
            evictions: 0,
            too_big: 0,
        }
    }

    /// Limits the entries to `budget` bytes (0: no limit), evicting the least recently used
    /// now if they hold more.
    pub fn set_budget(&mut self, budget: usize) {
        self.budget = budget;
        self.shrink();
        self.peak = self.bytes;
    }

    fn shrink(&mut self) {
        if self.budget == 0 {
            return;
        }
        if let Some(l) = self.lru.as_mut() {
            while self.bytes > self.budget {
                match l.pop_lru() {
                    Some((k, v)) => {
                        self.bytes -= entry_bytes(&k, &v);
                        self.evictions += 1;
                    }
                    None => break,
                }
            }
        }
    }

    /// What the cache holds now.
    pub fn usage(&self) -> CacheUsage {
        CacheUsage {
            entries: self.len(),
            bytes: self.bytes,
            budget: self.budget,
            peak: self.peak,
            evictions: self.evictions,
            too_big: self.too_big,
        }
    }

    /// Looks `key` up, counting a hit or a miss.
    pub fn get(&mut self, key: &CacheKey) -> Option<Arc<RecallResult>> {
        let found = self.lru.as_mut().and_then(|l| l.get(key).cloned());
        if found.is_some() {
            self.hits += 1;
        } else {
            self.misses += 1;
        }
        found
    }

    /// Stores a result.
    ///
    /// Under a byte budget the least recently used entries make room; a result bigger than
    /// the whole budget is not cached.
    pub fn put(&mut self, key: CacheKey, value: RecallResult) {
        let Some(l) = self.lru.as_mut() else { return };
        let size = entry_bytes(&key, &value);
        if self.budget > 0 && size > self.budget {
            self.too_big += 1;
            return;
        }
        self.bytes += size;
        // `push` hands back what it displaced: the old value of this key, or the least
        // recently used entry when at capacity.
        if let Some((k, v)) = l.push(key.clone(), Arc::new(value)) {
            self.bytes -= entry_bytes(&k, &v);
            if k != key {
                self.evictions += 1;
            }
        }
        self.shrink();
        self.peak = self.peak.max(self.bytes);
    }

    /// Stores a result computed from the state of `generation`; returns false (and stores
    /// nothing) when an invalidation happened since, because the result may be stale.
    pub fn put_if_current(&mut self, generation: u64, key: CacheKey, value: RecallResult) -> bool {
        if generation != self.generation {
            return false;
        }
        self.put(key, value);
        true
    }

    /// The current generation: bumped by every [`RecallCache::invalidate`].
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Drops every entry and starts a new generation (counters are kept).
    pub fn invalidate(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        if let Some(l) = self.lru.as_mut() {
            l.clear();
        }
        self.bytes = 0;
    }

    /// `(hits, misses)` since creation.
    pub fn stats(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }

    /// Number of cached results.
    pub fn len(&self) -> usize {
        self.lru.as_ref().map_or(0, LruCache::len)
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(id: i64) -> RecallResult {
        RecallResult {
            ids: vec![id],
            scores: vec![1.0],
            json: String::new(),
            cached: false,
            degraded: None,
        }
    }

    #[test]
    fn keys_normalise_case_punctuation_and_spacing() {
        assert_eq!(
            CacheKey::new("  Foo,  BAR! ", 3),
            CacheKey::new("foo bar", 3)
        );
        assert_ne!(CacheKey::new("foo bar", 3), CacheKey::new("foo bar", 4));
    }

    #[test]
    fn counts_hits_and_misses_evicts_lru_and_invalidates() {
        let mut c = RecallCache::new(2);
        let (a, b, d) = (
            CacheKey::new("a", 1),
            CacheKey::new("b", 1),
            CacheKey::new("d", 1),
        );
        assert!(c.get(&a).is_none());
        c.put(a.clone(), result(1));
        c.put(b.clone(), result(2));
        assert_eq!(c.get(&a).unwrap().ids, vec![1]);
        c.put(d.clone(), result(3)); // evicts b, the least recently used
        assert!(c.get(&b).is_none());
        assert_eq!(c.stats(), (1, 2));
        c.invalidate();
        assert!(c.is_empty());
        assert!(c.get(&a).is_none());
    }

    #[test]
    fn results_from_before_an_invalidation_are_not_stored() {
        let mut c = RecallCache::new(4);
        let g = c.generation();
        c.invalidate();
        assert!(!c.put_if_current(g, CacheKey::new("a", 1), result(1)));
        assert!(c.get(&CacheKey::new("a", 1)).is_none());
        assert!(c.put_if_current(c.generation(), CacheKey::new("a", 1), result(2)));
        assert_eq!(c.get(&CacheKey::new("a", 1)).unwrap().ids, vec![2]);
    }

    #[test]
    fn a_byte_budget_evicts_instead_of_growing_and_refuses_what_cannot_fit() {
        let mut c = RecallCache::new(1_000);
        let sized = |id: i64, json: usize| RecallResult {
            json: "x".repeat(json),
            ..result(id)
        };
        let one = entry_bytes(&CacheKey::new("q00", 1), &sized(0, 100));
        c.set_budget(one * 5);
        for i in 0..50 {
            c.put(CacheKey::new(&format!("q{i:02}"), 1), sized(i, 100));
            assert!(c.usage().bytes <= one * 5);
        }
        let u = c.usage();
        assert_eq!((u.entries, u.bytes, u.evictions), (5, one * 5, 45));
        assert_eq!(u.peak, one * 5);
        // The newest five stayed.
        assert!(c.get(&CacheKey::new("q49", 1)).is_some());
        assert!(c.get(&CacheKey::new("q44", 1)).is_none());
        c.put(CacheKey::new("huge", 1), sized(99, one * 6));
        assert_eq!(c.usage().too_big, 1);
        assert!(c.get(&CacheKey::new("huge", 1)).is_none());
        // Replacing a key adjusts the bytes instead of counting both.
        c.put(CacheKey::new("q49", 1), sized(49, 100));
        assert_eq!(c.usage().bytes, one * 5);
        c.set_budget(one * 2);
        assert_eq!((c.usage().entries, c.usage().bytes), (2, one * 2));
        c.invalidate();
        assert_eq!(c.usage().bytes, 0);
    }

    #[test]
    fn zero_capacity_disables() {
        let mut c = RecallCache::new(0);
        c.put(CacheKey::new("a", 1), result(1));
        assert!(c.get(&CacheKey::new("a", 1)).is_none());
        assert_eq!(c.len(), 0);
    }
}
