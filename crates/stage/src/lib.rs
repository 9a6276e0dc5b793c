//! Stage guards, the per-thread recorder and the stage-attributing counting allocator.
//!
//! A workload wraps each operation in [`begin_operation`] / [`Operation::finish`]; inside it,
//! measured code marks its stages with `let _s = stage!("vector_search");`. Stages nest; each
//! stage's *self* measures (its own time and allocations, children excluded) are summed per
//! stage name for the operation, and the operation's inclusive totals are kept beside them.
//!
//! Stages are synchronous sections: a guard must never be held across an `.await`, because the
//! task could resume on another thread and the recorder is per thread. [`StageGuard`] is
//! `!Send`, so a future that holds one across an `.await` is `!Send` and `tokio::spawn`
//! rejects it at compile time.
//!
//! Outside an operation a stage guard costs one thread-local flag check and records nothing,
//! so instrumented code can be used (and benchmarked) without the recorder.
//!
//! Heap passes (`cargo perfcheck profile --heap`) switch the allocator into a slow mode with
//! [`start_heap_pass`]: allocations are routed to DHAT and/or attributed to the innermost stage
//! or [`component`] in a side table, so a later free finds the label that allocated the block.
//! Timing passes never switch it on and pay one relaxed atomic load per allocation for it.
//!
//! This crate depends on none of the tool's profilers: DHAT's allocator is handed in with
//! [`register_dhat_allocator`].
#![deny(missing_docs)]

mod allocator;
pub mod callgrind;
mod clock;
mod counters;
mod guard;
mod heap_pass;
mod heap_table;
mod labels;
mod pass_mode;
mod recorder;
mod segments;
mod sites;
mod slowdown;

pub use allocator::{counting_allocator_installed, CountingAlloc};
pub use clock::{now_raw, raw_delta_ns, thread_cpu_ns};
pub use counters::{alloc_snapshot, AllocSnapshot};
pub use guard::{stage, stage_in, StageGuard};
pub use heap_pass::{
    exclude_thread_from_heap_tracking, heap_live_bytes, register_dhat_allocator, start_heap_pass,
    take_heap_snapshot, HeapPass, HeapPassMode, LabelHeap,
};
pub use labels::{component, ComponentGuard, MAX_LABELS, OVERFLOW_LABEL, UNLABELLED};
pub use recorder::{begin_operation, Measures, OpSample, Operation};
pub use segments::{count_instructions, SEGMENT_PREFIX};
pub use sites::{capture_stage_sites, stage_sites, StageSite};
pub use slowdown::{set_slowdown, slowdown_active, slowdown_scope, SlowdownScope};

// Unit tests count allocations, so they run under the allocator they test.
#[cfg(test)]
#[global_allocator]
static TEST_ALLOC: CountingAlloc = CountingAlloc::system();
