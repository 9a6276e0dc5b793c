//! The CPU pass: pprof-rs sampling around the measured operations, folded stacks, per-stage
//! sample shares, and the pprof protobuf.
//!
//! # How stacks are taken, and why
//!
//! pprof-rs arms `setitimer(ITIMER_PROF)`; the kernel sends `SIGPROF` to whichever thread is
//! using CPU when the process's CPU-time interval expires, and the handler unwinds that thread
//! with libgcc's DWARF unwinder (`backtrace::trace_unsynchronized`, pprof's default).
//!
//! - **DWARF unwinding, not frame pointers.** pprof's `frame-pointer` feature loses the
//!   innermost function (its time lands on the caller) and needs every crate rebuilt with
//!   `-C force-frame-pointers=yes`; DWARF unwind tables are in every build by default.
//! - **Blocklist.** Samples whose interrupted instruction is in libgcc (the unwinder itself),
//!   the dynamic loader or the vDSO are dropped: unwinding from there is where pprof-rs's
//!   known deadlocks (the loader lock) and crashes (bad vDSO CFI) come from. libc and
//!   libpthread are blocked too when glibc is older than 2.35 (or with `--block-libc`): before
//!   `_dl_find_object`, libgcc's unwinder took the loader lock through `dl_iterate_phdr`,
//!   which deadlocks if the signal interrupted libc while it held that lock. Blocking libc
//!   drops every sample inside `malloc`, `free` and `memcpy` (about 30% of recall's CPU time
//!   in a release build), so on newer glibc it is unwound from; the report measures how much
//!   of the process CPU time the samples cover.
//! - **Symbols.** The release profile keeps `debug = "line-tables-only"`: enough for inlined
//!   frames and file:line in `profile.pb.gz` at a small binary size; a stripped binary shows
//!   only libc frames. Stage functions are `#[inline(never)]` and named after their stage, so
//!   every stage is a real frame (`agent_memory::recall::rerank`).
//! - **Frequency.** 99 Hz by default (not a divisor of common periodic work). The kernel tick
//!   here is 250 Hz: a higher rate delivers fewer samples than asked, so the achieved rate is
//!   measured, and the protobuf's period is corrected when it differs by more than 20%.
//! - **Safe stop.** The interval timer is disarmed before the report is built (so the report
//!   building is never sampled and a late signal cannot interrupt it); pprof then installs
//!   `SIG_IGN`, so a `SIGPROF` still in flight is ignored instead of killing the process.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::profile::pass::{PassHooks, Phase};
use crate::stage::{capture_stage_sites, StageSite};

/// Default sampling frequency.
pub const DEFAULT_FREQUENCY: u32 = 99;
/// Highest accepted `--frequency`.
pub const MAX_FREQUENCY: u32 = 1000;
/// Fewer samples than this and per-stage shares are too coarse to trust (a 10% share is
/// ±2.6 points at 95% confidence with 500 samples).
pub const MIN_TRUSTED_SAMPLES: u64 = 500;

/// Shared objects whose code is never unwound from (see the module docs).
pub const BLOCKLIST: &[&str] = &["libgcc", "ld-linux", "linux-vdso"];
/// Also blocked when the C library may take the loader lock while unwinding (glibc before
/// 2.35), or on request (`--block-libc`).
pub const LIBC_BLOCKLIST: &[&str] = &["libc.so", "libc-", "libpthread"];

/// The blocklist to use: [`BLOCKLIST`], plus [`LIBC_BLOCKLIST`] when `block_libc` is set or
/// unwinding from libc is not known to be lock-free here.
pub fn blocklist(block_libc: bool) -> Vec<&'static str> {
    let mut b = BLOCKLIST.to_vec();
    if block_libc || !libc_unwind_is_lock_free() {
        b.extend_from_slice(LIBC_BLOCKLIST);
    }
    b
}

/// glibc 2.35 added `_dl_find_object`, which libgcc (GCC 12 and later) uses to find unwind
/// tables without `dl_iterate_phdr` and its loader lock: a signal that interrupts libc while
/// it holds that lock can then no longer deadlock the unwinder.
pub fn libc_unwind_is_lock_free() -> bool {
    glibc_version().is_some_and(|v| v >= (2, 35))
}

/// The running glibc's version, `None` on other C libraries.
pub fn glibc_version() -> Option<(u32, u32)> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: returns a pointer to a static NUL-terminated string.
        let v = unsafe { std::ffi::CStr::from_ptr(libc::gnu_get_libc_version()) };
        let v = v.to_str().ok()?;
        let mut parts = v.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts
            .next()?
            .trim_end_matches(|c: char| !c.is_ascii_digit());
        return Some((major, minor.parse().ok()?));
    }
    #[allow(unreachable_code)]
    None
}

/// Stack of the sampled thread as folded text wants it: thread name first, then frames from
/// the outermost to the innermost.
pub type Stack = Vec<String>;

/// Result of a CPU pass.
pub struct CpuProfile {
    /// Distinct stacks with their sample counts, sorted by stack.
    pub stacks: Vec<(Stack, u64)>,
    /// Samples taken.
    pub samples: u64,
    /// Requested sampling frequency.
    pub frequency: u32,
    /// Process CPU time (all threads) while sampling was armed.
    pub cpu_ns: u64,
    /// Wall time while sampling was armed.
    pub wall_ns: u64,
    /// The pprof protobuf, ready to encode.
    pub proto: pprof::protos::Profile,
}

impl CpuProfile {
    /// Nominal sampling interval: pprof arms the timer with `1e6 / frequency` whole µs.
    pub fn interval_ns(&self) -> u64 {
        interval_us(self.frequency) * 1_000
    }

    /// Samples per second of process CPU time.
    pub fn samples_per_cpu_second(&self) -> f64 {
        if self.cpu_ns == 0 {
            0.0
        } else {
            self.samples as f64 * 1e9 / self.cpu_ns as f64
        }
    }

    /// Share of the process CPU time that the samples stand for (samples x interval / CPU time).
    pub fn coverage(&self) -> f64 {
        if self.cpu_ns == 0 {
            0.0
        } else {
            self.samples as f64 * self.interval_ns() as f64 / self.cpu_ns as f64
        }
    }

    /// The sample period the protobuf states: nominal, unless the achieved rate is more than
    /// 20% off the requested one (a kernel tick slower than the frequency), then measured.
    pub fn effective_period_ns(&self) -> u64 {
        let c = self.coverage();
        if self.samples > 0 && !(0.8..=1.2).contains(&c) {
            self.cpu_ns / self.samples
        } else {
            self.interval_ns()
        }
    }

    /// `cpu.folded`: one `stack count` line per distinct stack, frames joined by `;`.
    pub fn folded(&self) -> String {
        let mut out = String::new();
        for (stack, n) in &self.stacks {
            out.push_str(&stack.join(";"));
            out.push(' ');
            out.push_str(&n.to_string());
            out.push('\n');
        }
        out
    }

    /// Writes `profile.pb.gz`: the pprof protobuf, gzip-compressed, with the measured window
    /// and (if needed) the corrected period.
    pub fn write_pprof(&self, path: &Path, started: SystemTime) -> Result<(), Error> {
        use pprof::protos::Message;
        let mut proto = self.proto.clone();
        let period = self.effective_period_ns() as i64;
        let nominal = self.interval_ns() as i64;
        if period != nominal && period > 0 {
            // pprof-rs writes `count * nominal period` as the CPU time of every sample.
            for s in proto.sample.iter_mut() {
                if let [count, cpu, ..] = s.value.as_mut_slice() {
                    *cpu = *count * period;
                }
            }
        }
        proto.period = period;
        proto.duration_nanos = self.wall_ns as i64;
        proto.time_nanos = started
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as i64;
        let bytes = proto
            .write_to_bytes()
            .map_err(|e| Error::Profiler(format!("cannot encode the pprof profile: {e}")))?;
        let file = std::fs::File::create(path).map_err(|e| io_err(path, e))?;
        let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
        gz.write_all(&bytes)
            .and_then(|_| gz.finish().map(|_| ()))
            .map_err(|e| io_err(path, e))
    }
}

fn io_err(path: &Path, e: std::io::Error) -> Error {
    Error::Io {
        context: format!("cannot write {}", path.display()),
        source: e,
    }
}

fn interval_us(frequency: u32) -> u64 {
    1_000_000 / u64::from(frequency.max(1))
}

/// Arms (at `frequency`) or disarms (`None`) the process CPU-time interval timer that drives
/// pprof's sampling; pprof's handler stays installed either way.
pub(crate) fn set_interval_timer(frequency: Option<u32>) {
    let us = frequency.map(interval_us).unwrap_or(0) as libc::suseconds_t;
    let tv = libc::timeval {
        tv_sec: (us / 1_000_000) as libc::time_t,
        tv_usec: us % 1_000_000,
    };
    let it = libc::itimerval {
        it_interval: tv,
        it_value: tv,
    };
    // SAFETY: `it` is a valid itimerval; the old value is not requested.
    unsafe { libc::setitimer(libc::ITIMER_PROF, &it, std::ptr::null_mut()) };
}

/// CPU time of the whole process (all threads), in ns.
pub fn process_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Validates `--frequency`.
pub fn check_frequency(hz: u32) -> Result<u32, Error> {
    if (1..=MAX_FREQUENCY).contains(&hz) {
        Ok(hz)
    } else {
        Err(Error::Usage(format!(
            "--frequency {hz}: expected a sampling rate in Hz from 1 to {MAX_FREQUENCY} \
             (default {DEFAULT_FREQUENCY}; above the kernel tick, often 250 Hz, fewer samples \
             arrive than asked)"
        )))
    }
}

/// pprof installed and its timer disarmed, ready to sample only while armed.
pub struct CpuSampler {
    guard: pprof::ProfilerGuard<'static>,
    frequency: u32,
}

impl CpuSampler {
    /// Installs pprof's signal handler with the blocklist, with sampling disarmed until a pass
    /// reaches its measured phase (see [`CpuWindow`]).
    pub fn install(frequency: u32, block_libc: bool) -> Result<CpuSampler, Error> {
        let frequency = check_frequency(frequency)?;
        let guard = pprof::ProfilerGuardBuilder::default()
            .frequency(frequency as i32)
            .blocklist(&blocklist(block_libc))
            .build()
            .map_err(|e| Error::Profiler(format!("cannot start the CPU profiler: {e}")))?;
        // pprof arms the timer on build; the pass arms it again when measuring starts.
        set_interval_timer(None);
        Ok(CpuSampler { guard, frequency })
    }

    /// Builds the profile from everything sampled while armed and uninstalls the profiler.
    pub fn finish(self, window: &CpuWindow, stages: &StageFrames) -> Result<CpuProfile, Error> {
        set_interval_timer(None);
        let stages = stages.clone();
        let report = self
            .guard
            .report()
            .frames_post_processor(move |f| {
                strip_profiler_frames(f);
                stages.qualify_frames(f);
            })
            .build()
            .map_err(|e| Error::Profiler(format!("cannot build the CPU profile: {e}")))?;
        let proto = report
            .pprof()
            .map_err(|e| Error::Profiler(format!("cannot build the pprof profile: {e}")))?;
        let mut merged: BTreeMap<Stack, u64> = BTreeMap::new();
        for (frames, &count) in &report.data {
            if count <= 0 {
                continue;
            }
            let mut stack = Vec::with_capacity(frames.frames.len() + 1);
            stack.push(folded_name(&frames.thread_name_or_id()));
            for frame in frames.frames.iter().rev() {
                // Inlined functions come innermost first within one physical frame.
                for symbol in frame.iter().rev() {
                    stack.push(folded_name(&symbol.name()));
                }
            }
            *merged.entry(stack).or_default() += count as u64;
        }
        drop(report);
        drop(self.guard);
        let samples = merged.values().sum();
        Ok(CpuProfile {
            stacks: merged.into_iter().collect(),
            samples,
            frequency: self.frequency,
            cpu_ns: window.cpu_ns(),
            wall_ns: window.wall.as_nanos() as u64,
            proto,
        })
    }
}

/// Pass hooks of the CPU pass: sampling armed for the measured operations only, with the
/// process CPU time and wall time of that window.
pub struct CpuWindow {
    frequency: u32,
    cpu_start: u64,
    cpu_end: u64,
    wall_start: Option<std::time::Instant>,
    wall: Duration,
    /// When sampling was armed.
    pub started: Option<SystemTime>,
}

impl CpuWindow {
    /// Hooks for a sampler at `frequency`.
    pub fn new(frequency: u32) -> Self {
        CpuWindow {
            frequency,
            cpu_start: 0,
            cpu_end: 0,
            wall_start: None,
            wall: Duration::ZERO,
            started: None,
        }
    }

    /// Process CPU ns while armed.
    pub fn cpu_ns(&self) -> u64 {
        self.cpu_end.saturating_sub(self.cpu_start)
    }
}

impl Drop for CpuWindow {
    fn drop(&mut self) {
        // A pass that failed before `Finished` must not leave stage guards on their slow path.
        capture_stage_sites(false);
    }
}

impl PassHooks for CpuWindow {
    fn phase(&mut self, phase: Phase) {
        match phase {
            // Stage sites name the stage frames of release builds (see StageFrames).
            Phase::Setup => capture_stage_sites(true),
            Phase::Measured => {
                self.started = Some(SystemTime::now());
                self.wall_start = Some(std::time::Instant::now());
                self.cpu_start = process_cpu_ns();
                set_interval_timer(Some(self.frequency));
            }
            Phase::Finished => {
                set_interval_timer(None);
                self.cpu_end = process_cpu_ns();
                if let Some(s) = self.wall_start {
                    self.wall = s.elapsed();
                }
                capture_stage_sites(false);
            }
            _ => {}
        }
    }
}

/// Removes the profiler's own frames (unwinder, signal handler, the kernel's signal
/// trampoline) from the innermost end of a sampled stack. pprof drops the handler and the
/// trampoline itself; in debug builds the unwinder's frames are not inlined and remain.
pub fn strip_profiler_frames(frames: &mut pprof::Frames) {
    let n = frames
        .frames
        .iter()
        .take_while(|f| f.iter().all(|s| is_profiler_symbol(&s.name())))
        .count();
    frames.frames.drain(..n);
}

fn is_profiler_symbol(name: &str) -> bool {
    name.contains("pprof::")
        || name.starts_with("backtrace::")
        || name.contains("perf_signal_handler")
        || name == "__restore_rt"
}

/// A frame name as folded text and inferno need it: demangled without the trailing hash, and
/// no `;` (the frame separator; it occurs in array types such as `[u8; 4]`).
pub fn folded_name(name: &str) -> String {
    let trimmed = strip_hash(name.trim());
    trimmed.replace(';', ",")
}

/// `a::b::h0123456789abcdef` -> `a::b` (legacy Rust mangling hash).
fn strip_hash(name: &str) -> &str {
    if let Some((head, tail)) = name.rsplit_once("::h") {
        if tail.len() == 16 && tail.bytes().all(|b| b.is_ascii_hexdigit()) {
            return head;
        }
    }
    name
}

/// Recognises stage frames. A stage frame is the function that opens the stage's guard; it
/// is named after its stage, and the guard's [`StageSite`] (recorded by `stage!`) names its
/// module, so its full path is `<module>::<stage>` (`agent_memory::recall::rerank`) whatever
/// crate or file it lives in. Release builds with line-tables-only debug info name many
/// frames without their path (`rerank`), so a short name counts only when the frame's source
/// file is the one the stage guard was opened in, and such frames are renamed to the full path
/// before anything is written. Methods (`Embedder::embed`), same-named functions elsewhere
/// (`alloc::fmt::format`) and stages without a module in their site (plain `stage()` guards,
/// or not entered while sites were captured) never match.
#[derive(Clone, Debug, Default)]
pub struct StageFrames {
    stages: Vec<String>,
    /// `(stage, file of its guard, full path of its function)`.
    sites: Vec<(String, String, String)>,
}

impl StageFrames {
    /// Stage frames of `stages`, with the sites the pass recorded.
    pub fn new(stages: &[&str], sites: &[StageSite]) -> Self {
        StageFrames {
            stages: stages.iter().map(|s| s.to_string()).collect(),
            sites: sites
                .iter()
                .filter(|s| stages.contains(&s.stage))
                .filter_map(|s| {
                    let module = s.module?;
                    Some((
                        s.stage.to_owned(),
                        s.file.to_owned(),
                        format!("{module}::{}", s.stage),
                    ))
                })
                .collect(),
        }
    }

    /// The stage names, in pipeline order.
    pub fn stages(&self) -> impl Iterator<Item = &str> {
        self.stages.iter().map(String::as_str)
    }

    /// The stage a folded frame name stands for.
    pub fn stage_of(&self, frame: &str) -> Option<&str> {
        self.sites
            .iter()
            .find(|(_, _, full)| full == frame)
            .map(|(stage, _, _)| stage.as_str())
    }

    /// The full path to give a resolved symbol that is a stage frame under a short name.
    fn qualify(&self, name: &str, file: Option<&str>) -> Option<&str> {
        let file = file?;
        self.sites
            .iter()
            .find(|(stage, site_file, _)| name == stage && file.ends_with(site_file.as_str()))
            .map(|(_, _, full)| full.as_str())
    }

    /// Renames stage frames known only by their short name (see the type docs).
    pub fn qualify_frames(&self, frames: &mut pprof::Frames) {
        for frame in frames.frames.iter_mut() {
            for sym in frame.iter_mut() {
                let name = sym.name();
                if name.contains("::") {
                    continue;
                }
                let file = sym.filename.as_ref().and_then(|f| f.to_str());
                if let Some(full) = self.qualify(&name, file) {
                    sym.name = Some(full.as_bytes().to_vec());
                }
            }
        }
    }
}

/// Row name of samples with no stage frame on the stack.
pub const OUTSIDE_STAGES: &str = "(outside stages)";
/// Row name of samples taken while the pass chose the next operation's input (not part of
/// any operation; see [`PREPARE_FRAME`]).
pub const PREPARING: &str = "(preparing operations)";
/// The never-inlined function the passes choose inputs in, so its samples can be told apart.
pub const PREPARE_FRAME: &str = "prepare_operation_untimed";

/// Samples per row: each sample goes to the innermost stage frame of its stack (self time,
/// like the recorder); samples without one go to [`PREPARING`] when taken under
/// [`PREPARE_FRAME`], else to [`OUTSIDE_STAGES`]. Rows: stages in order, then those two.
pub fn samples_by_stage<'a>(
    stacks: &[(Stack, u64)],
    frames: &'a StageFrames,
) -> Vec<(&'a str, u64)> {
    let mut by: Vec<(&'a str, u64)> = frames.stages().map(|s| (s, 0)).collect();
    by.push((PREPARING, 0));
    by.push((OUTSIDE_STAGES, 0));
    for (stack, n) in stacks {
        let row = stack
            .iter()
            .rev()
            .find_map(|f| frames.stage_of(f))
            .unwrap_or_else(|| {
                if stack.iter().any(|f| f.ends_with(PREPARE_FRAME)) {
                    PREPARING
                } else {
                    OUTSIDE_STAGES
                }
            });
        if let Some(slot) = by.iter_mut().find(|(s, _)| *s == row) {
            slot.1 += n;
        }
    }
    by
}

/// Per-stage CPU summary of one CPU pass, written as `cpu-stages.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CpuSummary {
    /// Requested sampling frequency, Hz.
    pub frequency_hz: u32,
    /// Samples taken.
    pub samples: u64,
    /// Process CPU seconds while sampling (all threads).
    pub cpu_seconds: f64,
    /// Wall seconds while sampling.
    pub wall_seconds: f64,
    /// Achieved samples per CPU second.
    pub samples_per_cpu_second: f64,
    /// samples x interval / process CPU time (1.0 = every CPU tick accounted for).
    pub coverage: f64,
    /// Sample period written to `profile.pb.gz`, ns.
    pub period_ns: u64,
    /// Measured operations sampled.
    pub ops: u64,
    /// Self samples per stage in stage order, then [`PREPARING`] and [`OUTSIDE_STAGES`].
    pub stages: Vec<StageCpu>,
    /// Warnings for the reader (too few samples, low coverage).
    pub warnings: Vec<String>,
}

/// One stage's CPU samples.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StageCpu {
    /// Stage name, [`PREPARING`] or [`OUTSIDE_STAGES`].
    pub stage: String,
    /// Samples whose innermost stage frame is this stage.
    pub samples: u64,
    /// Share of all samples (0..=1).
    pub share: f64,
}

impl CpuSummary {
    /// Summarises a profile.
    pub fn new(p: &CpuProfile, ops: u64, frames: &StageFrames) -> CpuSummary {
        let total = p.samples.max(1) as f64;
        let rows = samples_by_stage(&p.stacks, frames)
            .into_iter()
            .map(|(s, n)| StageCpu {
                stage: s.to_owned(),
                samples: n,
                share: n as f64 / total,
            })
            .collect();
        let mut warnings = Vec::new();
        if p.samples < MIN_TRUSTED_SAMPLES {
            warnings.push(format!(
                "only {} samples: per-stage shares are rough; run more operations (--ops) or \
                 sample faster (--frequency, at most 250 Hz on a 250 Hz kernel)",
                p.samples
            ));
        }
        let coverage = p.coverage();
        // Below about 50 samples one sample more or less moves coverage by 2% or more.
        if p.samples >= 50 && coverage < 0.9 {
            warnings.push(format!(
                "samples cover {:.0}% of the process CPU time: samples in blocklisted code \
                 (libgcc, the loader, the vDSO; libc with --block-libc or glibc < 2.35) are \
                 dropped, and above the kernel tick fewer than {} per second arrive",
                coverage * 100.0,
                p.frequency
            ));
        }
        CpuSummary {
            frequency_hz: p.frequency,
            samples: p.samples,
            cpu_seconds: p.cpu_ns as f64 / 1e9,
            wall_seconds: p.wall_ns as f64 / 1e9,
            samples_per_cpu_second: p.samples_per_cpu_second(),
            coverage,
            period_ns: p.effective_period_ns(),
            ops,
            stages: rows,
            warnings,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAGES: &[&str] = &[
        "embed_query",
        "format",
        "embed",
        "validate",
        "cluster",
        "load_rows",
    ];

    fn site(stage: &'static str, file: &'static str, module: Option<&'static str>) -> StageSite {
        StageSite {
            stage,
            file,
            module,
        }
    }

    fn frames() -> StageFrames {
        let sites = [
            site(
                "embed_query",
                "crates/engine/src/recall.rs",
                Some("agent_memory::recall"),
            ),
            site(
                "format",
                "crates/engine/src/recall.rs",
                Some("agent_memory::recall"),
            ),
            site(
                "embed",
                "crates/engine/src/remember.rs",
                Some("agent_memory::remember"),
            ),
            site(
                "cluster",
                "crates/engine/src/consolidate.rs",
                Some("agent_memory::consolidate"),
            ),
            // A plain `stage()` guard: no module, so no frame can be told to be its function.
            site("validate", "crates/engine/src/consolidate.rs", None),
            // Another crate, laid out differently: the recorded module is all that counts.
            site("load_rows", "src/io/rows.rs", Some("other_crate::io")),
            site("other_pipeline", "src/x.rs", Some("perfcheck::x")),
        ];
        StageFrames::new(STAGES, &sites)
    }

    #[test]
    fn only_the_stage_functions_are_stage_frames() {
        let f = frames();
        let s = |n: &str| f.stage_of(n);
        assert_eq!(s("agent_memory::recall::format"), Some("format"));
        assert_eq!(s("agent_memory::remember::embed"), Some("embed"));
        assert_eq!(s("agent_memory::consolidate::cluster"), Some("cluster"));
        assert_eq!(s("other_crate::io::load_rows"), Some("load_rows"));
        assert_eq!(s("agent_memory::embed::Embedder::embed"), None, "a method");
        assert_eq!(
            s("agent_memory::embed::embed"),
            None,
            "not where the guard is"
        );
        assert_eq!(s("alloc::fmt::format"), None, "another crate");
        assert_eq!(
            s("format"),
            None,
            "short names are qualified before matching"
        );
        assert_eq!(
            s("agent_memory::consolidate::validate"),
            None,
            "a site without a module names no frame"
        );
        assert_eq!(s("perfcheck::x::other_pipeline"), None, "not a stage here");
        assert_eq!(s("agent_memory::cluster::kmeans"), None);
        assert_eq!(s("agent_memory::recall::format::{{closure}}"), None);
    }

    #[test]
    fn short_names_are_qualified_by_the_file_of_the_stage_guard() {
        let f = frames();
        let sym = |n: &str, file: &str| pprof::Symbol {
            name: Some(n.as_bytes().to_vec()),
            addr: None,
            lineno: Some(10),
            filename: Some(file.into()),
        };
        let mut fr = pprof::Frames {
            frames: vec![
                vec![sym("embed", "/w/crates/engine/src/embed.rs")],
                vec![sym("embed_query", "/w/crates/engine/src/recall.rs")],
                vec![sym("format", "/rustc/abc/library/alloc/src/fmt.rs")],
                vec![sym("validate", "/w/crates/engine/src/consolidate.rs")],
            ],
            thread_name: "t".into(),
            thread_id: 1,
            sample_timestamp: SystemTime::UNIX_EPOCH,
        };
        f.qualify_frames(&mut fr);
        let names: Vec<String> = fr.frames.iter().map(|x| x[0].name()).collect();
        assert_eq!(
            names,
            [
                "embed",
                "agent_memory::recall::embed_query",
                "format",
                "validate"
            ]
        );
    }

    #[test]
    fn the_innermost_stage_frame_gets_the_sample() {
        let st = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let stacks = vec![
            (
                st(&[
                    "main",
                    "agent_memory::recall::embed_query",
                    "agent_memory::embed::Embedder::embed",
                ]),
                5,
            ),
            (
                st(&[
                    "main",
                    "agent_memory::consolidate::cluster",
                    "agent_memory::recall::format",
                    "alloc::fmt::format",
                ]),
                3,
            ),
            (st(&["main", "sqlite3VdbeExec"]), 2),
            (
                st(&["main", "prepare_operation_untimed", "reset_consolidation"]),
                4,
            ),
        ];
        let f = frames();
        let by = samples_by_stage(&stacks, &f);
        let get = |s: &str| by.iter().find(|(x, _)| *x == s).unwrap().1;
        assert_eq!(get("embed_query"), 5);
        assert_eq!(get("embed"), 0, "Embedder::embed is not the embed stage");
        assert_eq!(get("format"), 3);
        assert_eq!(get("cluster"), 0, "nested stage takes its own samples");
        assert_eq!(get(OUTSIDE_STAGES), 2);
        assert_eq!(get(PREPARING), 4);
        assert_eq!(by.last().map(|r| r.0), Some(OUTSIDE_STAGES));
    }

    #[test]
    fn profiler_frames_are_stripped_from_the_innermost_end_only() {
        let sym = |n: &str| pprof::Symbol {
            name: Some(n.as_bytes().to_vec()),
            addr: None,
            lineno: None,
            filename: None,
        };
        let mut f = pprof::Frames {
            frames: vec![
                vec![sym("backtrace::backtrace::libunwind::trace")],
                vec![sym(
                    "<pprof::backtrace::backtrace_rs::Trace as pprof::backtrace::Trace>::trace",
                )],
                vec![sym("agent_memory::index::scan")],
                vec![sym("backtrace::keep_me_not_innermost")],
                vec![sym("main")],
            ],
            thread_name: "t".into(),
            thread_id: 1,
            sample_timestamp: SystemTime::UNIX_EPOCH,
        };
        strip_profiler_frames(&mut f);
        let names: Vec<String> = f.frames.iter().map(|x| x[0].name()).collect();
        assert_eq!(
            names,
            [
                "agent_memory::index::scan",
                "backtrace::keep_me_not_innermost",
                "main"
            ]
        );
    }

    #[test]
    fn folded_names_drop_hashes_and_semicolons() {
        assert_eq!(
            folded_name("agent_memory::recall::rerank::h0123456789abcdef"),
            "agent_memory::recall::rerank"
        );
        assert_eq!(
            folded_name("<[u8; 4] as Debug>::fmt"),
            "<[u8, 4] as Debug>::fmt"
        );
        assert_eq!(folded_name("a::hello"), "a::hello");
    }

    #[test]
    fn frequency_outside_the_range_names_the_flag() {
        assert!(check_frequency(99).is_ok());
        let e = check_frequency(0).unwrap_err().to_string();
        assert!(e.contains("--frequency") && e.contains("1 to 1000"), "{e}");
        assert!(check_frequency(5000).is_err());
    }
}
