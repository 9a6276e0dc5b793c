//! The DHAT pass: every allocation of one workload pass (engine setup, corpus load, warm-up,
//! measured operations, engine drop) recorded with its backtrace by dhat-rs, written as
//! `dhat-heap.json` for DHAT's viewer (dh_view.html), plus the heap summary.
//!
//! `dhat::Alloc` is not the global allocator: the [`CountingAlloc`](crate::stage::CountingAlloc)
//! forwards to it only while this pass runs (one relaxed atomic flag), so timing runs never
//! pay its global lock (about 1.7x the system allocator even with no profiler running).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::profile::pass::{PassHooks, Phase};
use crate::stage::{register_dhat_allocator, start_heap_pass, HeapPass, HeapPassMode};

/// Frames kept per DHAT backtrace (dhat's default of 10 often stops below the stage function).
const BACKTRACE_FRAMES: usize = 24;

/// DHAT's totals for one pass, as its viewer's header shows them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DhatSummary {
    /// Bytes allocated over the pass.
    pub total_bytes: u64,
    /// Blocks allocated over the pass.
    pub total_blocks: u64,
    /// Live bytes at the global peak (t-gmax).
    pub peak_bytes: u64,
    /// Live blocks at the global peak.
    pub peak_blocks: u64,
    /// Bytes still live at the end, after the engine was dropped (t-end): leaks and
    /// process-lifetime caches.
    pub end_bytes: u64,
    /// Blocks still live at the end.
    pub end_blocks: u64,
}

/// Pass hooks that run dhat from engine setup until the engine is dropped.
pub struct DhatHooks {
    path: PathBuf,
    running: Option<(dhat::Profiler, HeapPass)>,
    summary: Option<DhatSummary>,
    error: Option<String>,
}

impl DhatHooks {
    /// Hooks writing the profile to `path`.
    pub fn new(path: &Path) -> Self {
        DhatHooks {
            path: path.to_path_buf(),
            running: None,
            summary: None,
            error: None,
        }
    }

    /// The summary, once the pass released its engine and the profile was written.
    pub fn finish(mut self) -> Result<DhatSummary, Error> {
        self.stop();
        if let Some(e) = self.error.take() {
            return Err(Error::Profiler(e));
        }
        if !self.path.is_file() {
            return Err(Error::Profiler(format!(
                "dhat did not write {}",
                self.path.display()
            )));
        }
        self.summary
            .take()
            .ok_or_else(|| Error::Profiler("the DHAT pass never started".into()))
    }

    fn start(&mut self) {
        if self.running.is_some() {
            return;
        }
        // Build dhat first (its own allocations go to System), then route to it.
        let profiler = dhat::Profiler::builder()
            .file_name(&self.path)
            .trim_backtraces(Some(BACKTRACE_FRAMES))
            .build();
        // The stage crate does not depend on dhat; it routes to the allocator given here.
        register_dhat_allocator(&dhat::Alloc);
        match start_heap_pass(HeapPassMode {
            dhat: true,
            attribute: false,
        }) {
            Some(pass) => {
                // A probe proves the routing works (CountingAlloc::system() is the global
                // allocator); otherwise the profile would be silently empty.
                let before = dhat::HeapStats::get().total_blocks;
                drop(std::hint::black_box(Box::new([0u8; 64])));
                if dhat::HeapStats::get().total_blocks == before {
                    self.error = Some(
                        "dhat saw no allocations: the global allocator must be \
                         perfcheck::stage::CountingAlloc::system()"
                            .into(),
                    );
                }
                self.running = Some((profiler, pass));
            }
            None => {
                self.error = Some("another heap pass is already running".into());
                drop(profiler);
            }
        }
    }

    fn stop(&mut self) {
        if let Some((profiler, pass)) = self.running.take() {
            let s = dhat::HeapStats::get();
            drop(pass);
            self.summary = Some(DhatSummary {
                total_bytes: s.total_bytes,
                total_blocks: s.total_blocks,
                peak_bytes: s.max_bytes as u64,
                peak_blocks: s.max_blocks as u64,
                end_bytes: s.curr_bytes as u64,
                end_blocks: s.curr_blocks as u64,
            });
            // Writes the JSON file (and prints dhat's three summary lines to stderr).
            drop(profiler);
        }
    }
}

impl PassHooks for DhatHooks {
    fn phase(&mut self, phase: Phase) {
        match phase {
            Phase::Setup => self.start(),
            Phase::Released => self.stop(),
            _ => {}
        }
    }
}

impl Drop for DhatHooks {
    fn drop(&mut self) {
        // A pass that failed half-way must still return the allocator to its fast path.
        self.stop();
    }
}
