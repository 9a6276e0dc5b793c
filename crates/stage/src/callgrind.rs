//! Valgrind client requests for the instructions pass: callgrind counts, the recorder marks.
//!
//! A client request is a fixed instruction sequence that does nothing on a real CPU (four
//! rotations of a register by a total of 128 bits and an `xchg` of a register with itself)
//! and that valgrind's JIT recognises and turns into a call into the tool; the protocol is
//! defined by `valgrind.h` and has been stable since valgrind 3.0. It is written here rather
//! than taken from a crate because the maintained crates (crabgrind, valgrind-requests)
//! generate their bindings from valgrind's C headers at build time (libclang), which would make
//! building perfcheck need valgrind and clang installed.
//!
//! On targets other than x86_64 Linux every request is a no-op and [`running_on_valgrind`]
//! says `false`, so the instructions pass reports that it cannot run.

use std::ffi::CStr;

/// `VG_USERREQ_TOOL_BASE('C', 'T')`: callgrind's request numbers start here (callgrind.h).
const CALLGRIND_BASE: usize = ((b'C' as usize) << 24) | ((b'T' as usize) << 16);
const DUMP_STATS_AT: usize = CALLGRIND_BASE + 3;
const TOGGLE_COLLECT: usize = CALLGRIND_BASE + 2;
const ZERO_STATS: usize = CALLGRIND_BASE + 1;
const START_INSTRUMENTATION: usize = CALLGRIND_BASE + 4;
const STOP_INSTRUMENTATION: usize = CALLGRIND_BASE + 5;
/// `VG_USERREQ__RUNNING_ON_VALGRIND` (valgrind.h).
const RUNNING_ON_VALGRIND: usize = 0x1001;

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[inline(always)]
fn request(code: usize, arg1: usize) -> usize {
    let args: [usize; 6] = [code, arg1, 0, 0, 0, 0];
    let mut result: usize = 0;
    // SAFETY: on a real CPU the sequence rotates rdi by 128 bits in all (a no-op) and swaps
    // rbx with itself; under valgrind it reads the six words at rax and writes rdx. It touches
    // no other state, and the flags the rotations change are declared by not passing
    // `preserves_flags`.
    unsafe {
        std::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            inout("rdx") result,
            in("rax") args.as_ptr(),
            options(nostack),
        );
    }
    result
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
#[inline(always)]
fn request(_code: usize, _arg1: usize) -> usize {
    0
}

/// Whether this process runs under valgrind (any tool).
pub fn running_on_valgrind() -> bool {
    request(RUNNING_ON_VALGRIND, 0) != 0
}

/// Turns callgrind's event collection on if it was off, or off if it was on.
#[inline(always)]
pub fn toggle_collect() {
    request(TOGGLE_COLLECT, 0);
}

/// Writes callgrind's counters since the last dump as a profile part named `reason`, then
/// zeroes them.
#[inline(always)]
pub fn dump_stats_at(reason: &CStr) {
    request(DUMP_STATS_AT, reason.as_ptr() as usize);
}

/// Zeroes callgrind's counters without writing them.
pub fn zero_stats() {
    request(ZERO_STATS, 0);
}

/// Starts callgrind's instrumentation (the process runs uninstrumented before, with
/// `--instr-atstart=no`, several times faster).
pub fn start_instrumentation() {
    request(START_INSTRUMENTATION, 0);
}

/// Stops callgrind's instrumentation.
pub fn stop_instrumentation() {
    request(STOP_INSTRUMENTATION, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_no_ops_on_a_real_cpu() {
        // The test binary does not run under valgrind: every request returns its default.
        assert!(!running_on_valgrind());
        toggle_collect();
        dump_stats_at(c"test");
        zero_stats();
        assert_eq!(request(TOGGLE_COLLECT, 7), 0);
    }
}
