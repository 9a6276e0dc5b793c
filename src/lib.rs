//! perfcheck: stage-instrumented workloads, profiles, baselines per commit and a regression gate.
//!
//! The data flow (see docs/ARCHITECTURE.md): a [`config::Profile`] says what to run; the
//! [`workload`] runner drives a crate's [`harness`] workloads while the [`stage`] recorder
//! measures every stage; [`run`] assembles a [`record::RunRecord`] and [`report`] renders it.
#![deny(missing_docs)]

pub mod ab;
pub mod baseline;
pub mod calibrate;
pub mod chaos;
pub mod check;
pub mod cli;
pub mod compare;
pub mod config;
pub mod error;
pub mod files;
pub mod git;
pub mod harness;
pub mod load;
pub mod machine;
pub mod metrics;
pub mod monitor;
pub mod profile;
pub mod project;
pub mod record;
pub mod report;
pub mod run;
pub mod sqlite_heap;
pub mod trend;
pub mod workload;

pub use error::Error;

/// The stage instrumentation (crate `perfcheck_stage`), re-exported so `crate::stage` paths
/// work.
pub use perfcheck_stage as stage;

// Unit tests count allocations too, so they run under the same allocator as the binary.
#[cfg(test)]
#[global_allocator]
static TEST_ALLOC: stage::CountingAlloc = stage::CountingAlloc::system();
