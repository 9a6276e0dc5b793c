//! Process resources sampled once a second during a load run: RSS, live heap, SQLite's own
//! heap, the vector index's share of the heap, and process CPU.
//!
//! Live heap comes from the counting allocator, whose counters are per thread (shared atomics
//! made two allocating threads 4x slower on a 2-core VM: 44 ns vs 11 ns per alloc+free). A thread's counter alone means little
//! (a block allocated on one thread and freed on another leaves one positive, one negative),
//! but the sum over *every* thread is the process's live Rust heap. So each thread that takes
//! part publishes its own counter into a shared slot ([`publish`]): load workers after every
//! operation (when their per-operation garbage is already freed, which keeps the sum steady),
//! tokio threads whenever they park, the sampling thread before it adds the slots up. A thread
//! that ends hands its last value to a "retired" total ([`retire`]), so nothing is lost.
//! SQLite allocates with its own `malloc`, outside the counting allocator: it is sampled
//! separately (`sqlite3_memory_used`).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use serde::{Deserialize, Serialize};

static SLOTS: Mutex<Vec<Arc<AtomicI64>>> = Mutex::new(Vec::new());
static RETIRED: AtomicI64 = AtomicI64::new(0);

thread_local! {
    static SLOT: std::cell::RefCell<Option<Arc<AtomicI64>>> = const { std::cell::RefCell::new(None) };
}

/// Publishes this thread's live-heap counter (registers the thread on first use).
pub fn publish() {
    let live = crate::stage::alloc_snapshot().live;
    let _ = SLOT.try_with(|s| {
        let mut s = s.borrow_mut();
        match s.as_ref() {
            Some(slot) => slot.store(live, Ordering::Relaxed),
            None => {
                let slot = Arc::new(AtomicI64::new(live));
                SLOTS
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(Arc::clone(&slot));
                *s = Some(slot);
            }
        }
    });
}

/// Moves this thread's final counter into the retired total; call as a thread ends.
pub fn retire() {
    let live = crate::stage::alloc_snapshot().live;
    let _ = SLOT.try_with(|s| {
        if let Some(slot) = s.borrow_mut().take() {
            let mut slots = SLOTS.lock().unwrap_or_else(PoisonError::into_inner);
            slots.retain(|x| !Arc::ptr_eq(x, &slot));
            RETIRED.fetch_add(live, Ordering::Relaxed);
        }
    });
}

/// Live Rust heap of the process: the retired total plus every published slot (this thread's
/// is published first).
pub fn live_heap() -> i64 {
    publish();
    let slots = SLOTS.lock().unwrap_or_else(PoisonError::into_inner);
    RETIRED.load(Ordering::Relaxed) + slots.iter().map(|s| s.load(Ordering::Relaxed)).sum::<i64>()
}

/// One resource sample.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceSample {
    /// Resident set size, bytes (`/proc/self/statm`).
    pub rss_bytes: u64,
    /// Live Rust heap, bytes (counting allocator, summed over threads).
    pub heap_bytes: i64,
    /// SQLite's own heap, bytes.
    pub sqlite_bytes: i64,
    /// Part of `heap_bytes` holding stored data (the engine's vector index: it grows with every
    /// stored event by design).
    pub index_bytes: i64,
    /// Process CPU since the previous sample, percent of one core (200 = two cores busy).
    pub cpu_percent: f64,
}

impl ResourceSample {
    /// Heap that is not stored data: Rust heap minus the index, plus SQLite's heap. Its slope
    /// is the leak rate.
    pub fn retained_bytes(&self) -> i64 {
        self.heap_bytes - self.index_bytes + self.sqlite_bytes
    }
}

/// Reads RSS and CPU from /proc; remembers the previous CPU reading.
#[derive(Debug)]
pub struct Sampler {
    last_cpu_ticks: Option<u64>,
    last_at: Instant,
    ticks_per_s: f64,
    page: u64,
}

impl Default for Sampler {
    fn default() -> Self {
        Self::new()
    }
}

impl Sampler {
    /// A sampler; the first CPU reading covers the time since this call.
    pub fn new() -> Self {
        // SAFETY: sysconf only reads a system constant.
        let (tck, page) = unsafe {
            (
                libc::sysconf(libc::_SC_CLK_TCK),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        Sampler {
            last_cpu_ticks: cpu_ticks(),
            last_at: Instant::now(),
            ticks_per_s: if tck > 0 { tck as f64 } else { 100.0 },
            page: if page > 0 { page as u64 } else { 4096 },
        }
    }

    /// Takes a sample; `index_bytes` is the heap holding the target's stored data.
    pub fn sample(&mut self, index_bytes: u64) -> ResourceSample {
        let now = Instant::now();
        let ticks = cpu_ticks();
        let dt = now.duration_since(self.last_at).as_secs_f64();
        let cpu_percent = match (ticks, self.last_cpu_ticks) {
            (Some(t), Some(l)) if dt > 0.0 => {
                (t.saturating_sub(l)) as f64 / self.ticks_per_s / dt * 100.0
            }
            _ => 0.0,
        };
        self.last_cpu_ticks = ticks;
        self.last_at = now;
        ResourceSample {
            rss_bytes: rss_pages().unwrap_or(0) * self.page,
            heap_bytes: live_heap(),
            sqlite_bytes: crate::sqlite_heap::memory_used(),
            index_bytes: i64::try_from(index_bytes).unwrap_or(i64::MAX),
            cpu_percent,
        }
    }
}

/// Resident pages: the second field of `/proc/self/statm`.
fn rss_pages() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/statm").ok()?;
    s.split_whitespace().nth(1)?.parse().ok()
}

/// utime + stime of this process in clock ticks (`/proc/self/stat` fields 14 and 15).
fn cpu_ticks() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may contain spaces: count fields after its closing paren.
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3, so field n is f[n - 3].
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Least-squares slope of `ys` over `xs` (per x unit) and its standard error; `None` with
/// fewer than three points or no spread in `xs`.
pub fn slope(xs: &[f64], ys: &[f64]) -> Option<(f64, f64)> {
    let n = xs.len().min(ys.len());
    if n < 3 {
        return None;
    }
    let mx = xs[..n].iter().sum::<f64>() / n as f64;
    let my = ys[..n].iter().sum::<f64>() / n as f64;
    let sxx: f64 = xs[..n].iter().map(|x| (x - mx).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let sxy: f64 = xs[..n]
        .iter()
        .zip(&ys[..n])
        .map(|(x, y)| (x - mx) * (y - my))
        .sum();
    let b = sxy / sxx;
    let a = my - b * mx;
    let sse: f64 = xs[..n]
        .iter()
        .zip(&ys[..n])
        .map(|(x, y)| (y - a - b * x).powi(2))
        .sum();
    let se = (sse / (n as f64 - 2.0) / sxx).sqrt();
    Some((b, se))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_of_a_line_and_of_noise() {
        let xs: Vec<f64> = (0..100).map(f64::from).collect();
        let ys: Vec<f64> = xs.iter().map(|x| 3.0 * x + 7.0).collect();
        let (b, se) = slope(&xs, &ys).unwrap();
        assert!((b - 3.0).abs() < 1e-9 && se < 1e-6);
        let flat: Vec<f64> = xs
            .iter()
            .map(|x| if (*x as i64) % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        let (b, se) = slope(&xs, &flat).unwrap();
        assert!(b.abs() < 0.01 && se > 0.0);
        assert!(slope(&xs[..2], &ys[..2]).is_none());
    }

    #[test]
    fn proc_readings_work_here() {
        let mut s = Sampler::new();
        let r = s.sample(0);
        assert!(r.rss_bytes > 0);
        assert!(r.cpu_percent >= 0.0);
    }

    #[test]
    fn heap_sum_follows_allocations_across_threads() {
        // A block allocated on one thread and freed on another leaves the sum unchanged.
        let before = live_heap();
        let block = std::thread::spawn(|| {
            let v = vec![0u8; 1 << 20];
            publish();
            let r = std::hint::black_box(v);
            retire();
            r
        })
        .join()
        .unwrap();
        let during = live_heap();
        drop(block);
        let after = live_heap();
        assert!(during - before >= (1 << 20) - 4096, "{before} {during}");
        assert!((after - before).abs() < 64 * 1024, "{before} {after}");
    }
}
