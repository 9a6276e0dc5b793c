//! The process-wide switches the hot paths read with one relaxed load: heap-pass and site
//! capture bits for the allocator and stage guards, recorder bits for operations.

use std::sync::atomic::{AtomicU8, Ordering};

/// Profiling-pass switches, read by [`CountingAlloc`](crate::CountingAlloc) on every call and
/// by [`stage`](crate::stage()) on every entry (one relaxed load each). Zero in timing passes,
/// so they never touch DHAT, the side table or the site registry.
pub(crate) static HEAP_MODE: AtomicU8 = AtomicU8::new(0);
pub(crate) const HEAP_DHAT: u8 = 1;
pub(crate) const HEAP_ATTRIBUTE: u8 = 2;
/// Stage guards record where they are opened (see
/// [`capture_stage_sites`](crate::capture_stage_sites)).
pub(crate) const SITE_CAPTURE: u8 = 4;
/// The bits that send the allocator down its slow path.
pub(crate) const ALLOC_BITS: u8 = HEAP_DHAT | HEAP_ATTRIBUTE;

/// Recorder switch: read thread CPU time at every boundary of this operation.
pub(crate) const MODE_CPU: u8 = 1;
/// Recorder switch: mark every boundary for callgrind (instructions passes only).
pub(crate) const MODE_COUNT: u8 = 2;
/// Recorder switch: the calibration knob slows one stage ([`set_slowdown`](crate::set_slowdown)).
pub(crate) const MODE_SLOW: u8 = 4;

/// Process-wide recorder switches ([`MODE_COUNT`], [`MODE_SLOW`]), read once per operation by
/// [`begin_operation`](crate::begin_operation) with one relaxed load. Zero in timing runs, so
/// the only cost the extra modes add to a stage boundary is the mode test that CPU sampling
/// needs anyway.
pub(crate) static PASS_MODE: AtomicU8 = AtomicU8::new(0);

/// Sets (`on`) or clears `bits` in one of the switch words.
pub(crate) fn switch(word: &AtomicU8, bits: u8, on: bool) {
    if on {
        word.fetch_or(bits, Ordering::SeqCst);
    } else {
        word.fetch_and(!bits, Ordering::SeqCst);
    }
}
