//! From one scenario's operation trace to its figures: what the clients saw before, during
//! and after the fault, how soon the fault showed, and how soon service was back.
//!
//! Definitions (the report and docs/ARCHITECTURE.md quote them):
//! - periods are by intended start: *clean* before the injection started, *fault* from the
//!   injection's start to the healing's start, *after* from the healing's start to the end;
//! - an operation is *good* when it returned a full answer within the SLO's p99 latency;
//!   *answered* when it returned anything (full or degraded) within the timeout;
//! - time to detect: from the injection's start to the first moment an operation was seen not
//!   to be good: its end if it failed or was degraded, or its intended start plus the SLO's p99
//!   if it was slower than that (a client notices then, not when a blocked call returns);
//! - time to recover: from the healing's start to the start of the first window of
//!   `slo.window` (on a 10 ms grid, wholly inside the recovery period) whose p99 and share of
//!   operations not answered fully are within the SLO.

use serde::{Deserialize, Serialize};

use crate::config::chaos::ChaosSlo;
use crate::load::generator::{OpStatus, OpTrace};

/// Step of the grid recovery windows start on.
pub const GRID_NS: u64 = 10_000_000;
/// Width of a chart bucket.
pub const BUCKET_NS: u64 = 100_000_000;

/// Operations of one period and their latency.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PeriodStats {
    /// Operations intended to start in the period.
    pub ops: u64,
    /// Full answers within the timeout.
    pub ok: u64,
    /// Degraded answers within the timeout.
    pub degraded: u64,
    /// Errors, late answers and shed operations.
    pub failed: u64,
    /// `(ok + degraded) / ops`; 1 for an empty period.
    pub success_rate: f64,
    /// `degraded / ops`.
    pub degraded_rate: f64,
    /// Median latency from intended start, ns.
    pub p50_ns: u64,
    /// 99th percentile, ns.
    pub p99_ns: u64,
    /// Slowest, ns.
    pub max_ns: u64,
}

/// One chart bucket: operations intended to start in `[t_s, t_s + 0.1 s)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// Start, seconds from the scenario's start.
    pub t_s: f64,
    /// Full answers.
    pub ok: u64,
    /// Degraded answers.
    pub degraded: u64,
    /// Errors, late and shed.
    pub failed: u64,
    /// Median latency, ns (0 when empty).
    pub p50_ns: u64,
    /// 99th percentile, ns.
    pub p99_ns: u64,
}

/// What one scenario's trace shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Before the fault.
    pub clean: PeriodStats,
    /// While it was in effect.
    pub fault: PeriodStats,
    /// From healing to the end.
    pub after: PeriodStats,
    /// Milliseconds from injection to the first operation that was not good; `None`: no
    /// client saw the fault.
    pub detect_ms: Option<f64>,
    /// Milliseconds from healing until a full window within the SLO began; `None`: not
    /// recovered within the recovery period.
    pub recovery_ms: Option<f64>,
    /// Whether the clean period itself met the SLO (if not, recovery is measured against a
    /// level the system never had, and the report says so).
    pub clean_within_slo: bool,
    /// The chart's series.
    pub buckets: Vec<Bucket>,
}

/// The nearest-rank percentile `q` (0..=1) of sorted values.
fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn answered(s: OpStatus) -> bool {
    matches!(s, OpStatus::Ok | OpStatus::Degraded)
}

/// Statistics of the operations intended to start in `[from_ns, to_ns)`.
pub fn period(trace: &[OpTrace], from_ns: u64, to_ns: u64) -> PeriodStats {
    let ops: Vec<&OpTrace> = trace
        .iter()
        .filter(|t| t.intended_ns >= from_ns && t.intended_ns < to_ns)
        .collect();
    let mut lat: Vec<u64> = ops.iter().map(|t| t.latency_ns()).collect();
    lat.sort_unstable();
    let n = ops.len() as u64;
    let ok = ops.iter().filter(|t| t.status == OpStatus::Ok).count() as u64;
    let degraded = ops
        .iter()
        .filter(|t| t.status == OpStatus::Degraded)
        .count() as u64;
    let ratio = |a: u64| if n == 0 { 0.0 } else { a as f64 / n as f64 };
    PeriodStats {
        ops: n,
        ok,
        degraded,
        failed: n - ok - degraded,
        success_rate: if n == 0 { 1.0 } else { ratio(ok + degraded) },
        degraded_rate: ratio(degraded),
        p50_ns: percentile(&lat, 0.5),
        p99_ns: percentile(&lat, 0.99),
        max_ns: lat.last().copied().unwrap_or(0),
    }
}

/// Whether the operations of a window meet `slo` (an empty window does not: nothing shows
/// the system serving).
fn within(ops: &[&OpTrace], slo: &ChaosSlo) -> bool {
    if ops.is_empty() {
        return false;
    }
    let mut lat: Vec<u64> = ops.iter().map(|t| t.latency_ns()).collect();
    lat.sort_unstable();
    let not_full = ops.iter().filter(|t| t.status != OpStatus::Ok).count();
    percentile(&lat, 0.99) as u128 <= slo.p99.as_nanos()
        && (not_full as f64) <= slo.failure_rate * ops.len() as f64
}

/// The scenario's figures. `inject_ns` and `heal_ns` are when the injection and the healing
/// started; `end_ns` is the end of the schedule. `trace` may be in any order.
pub fn analyse(
    trace: &[OpTrace],
    inject_ns: u64,
    heal_ns: u64,
    end_ns: u64,
    slo: &ChaosSlo,
) -> Figures {
    let mut by_start: Vec<&OpTrace> = trace.iter().collect();
    by_start.sort_by_key(|t| t.intended_ns);
    let p99_ns = slo.p99.as_nanos().min(u128::from(u64::MAX)) as u64;
    // A client notices a slow operation when the SLO's p99 has passed, not when it finally
    // ends (a blocked worker may end seconds later).
    let detect_ms = trace
        .iter()
        .filter(|t| !(t.status.is_ok() && t.latency_ns() <= p99_ns))
        .map(|t| t.end_ns.min(t.intended_ns.saturating_add(p99_ns)))
        .filter(|&seen| seen >= inject_ns)
        .min()
        .map(|seen| (seen - inject_ns) as f64 / 1e6);
    let window_ns = slo.window.as_nanos().min(u128::from(u64::MAX)) as u64;
    let slice = |from: u64, to: u64| -> Vec<&OpTrace> {
        let a = by_start.partition_point(|t| t.intended_ns < from);
        let b = by_start.partition_point(|t| t.intended_ns < to);
        by_start[a..b].to_vec()
    };
    let mut recovery_ms = None;
    let mut t0 = heal_ns;
    while t0 + window_ns <= end_ns {
        if within(&slice(t0, t0 + window_ns), slo) {
            recovery_ms = Some((t0 - heal_ns) as f64 / 1e6);
            break;
        }
        t0 += GRID_NS;
    }
    // The last full window of the clean period.
    let clean_within_slo = inject_ns < window_ns
        || within(&slice(inject_ns.saturating_sub(window_ns), inject_ns), slo);
    let mut buckets = Vec::new();
    let mut b = 0;
    while b < end_ns {
        let ops = slice(b, b + BUCKET_NS);
        let mut lat: Vec<u64> = ops.iter().map(|t| t.latency_ns()).collect();
        lat.sort_unstable();
        let ok = ops.iter().filter(|t| t.status == OpStatus::Ok).count() as u64;
        let degraded = ops
            .iter()
            .filter(|t| t.status == OpStatus::Degraded)
            .count() as u64;
        buckets.push(Bucket {
            t_s: b as f64 / 1e9,
            ok,
            degraded,
            failed: ops.iter().filter(|t| !answered(t.status)).count() as u64,
            p50_ns: percentile(&lat, 0.5),
            p99_ns: percentile(&lat, 0.99),
        });
        b += BUCKET_NS;
    }
    Figures {
        clean: period(trace, 0, inject_ns),
        fault: period(trace, inject_ns, heal_ns),
        after: period(trace, heal_ns, end_ns),
        detect_ms,
        recovery_ms,
        clean_within_slo,
        buckets,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const MS: u64 = 1_000_000;

    /// One operation every `every` ms from `from` to `to` ms, `lat` ms long, with `status`.
    fn ops(from: u64, to: u64, every: u64, lat: u64, status: OpStatus) -> Vec<OpTrace> {
        (from..to)
            .step_by(every as usize)
            .map(|t| OpTrace {
                intended_ns: t * MS,
                end_ns: (t + lat) * MS,
                kind: 0,
                status,
            })
            .collect()
    }

    fn slo() -> ChaosSlo {
        ChaosSlo {
            p99: Duration::from_millis(20),
            failure_rate: 0.01,
            window: Duration::from_secs(1),
            min_success_rate: 0.0,
        }
    }

    #[test]
    fn an_outage_is_detected_at_its_first_failure_and_recovery_waits_for_a_clean_second() {
        // Clean 0-2 s, fault 2-3 s (every op fails after 5 ms, starting with the op at 2.010 s),
        // healed at 3 s, slow until 3.5 s (50 ms), then clean until 6 s.
        let mut t = ops(0, 2_010, 10, 1, OpStatus::Ok);
        t.extend(ops(2_010, 3_000, 10, 5, OpStatus::Error));
        t.extend(ops(3_000, 3_500, 10, 50, OpStatus::Ok));
        t.extend(ops(3_500, 6_000, 10, 1, OpStatus::Ok));
        let f = analyse(&t, 2_000 * MS, 3_000 * MS, 6_000 * MS, &slo());
        assert_eq!(
            f.detect_ms,
            Some(15.0),
            "the op at 2.010 s failed at 2.015 s"
        );
        // Windows from 3.00 s include slow ops until the one starting at 3.5 s: a window may
        // hold 1% of them (1 of 100), so the first passing window starts at 3.49 s.
        assert_eq!(f.recovery_ms, Some(490.0));
        assert!(f.clean_within_slo);
        assert_eq!(f.fault.ops, 100);
        assert_eq!(f.fault.failed, 99);
        assert_eq!(f.fault.ok, 1, "the op at 2.000 s still succeeded");
        assert!((f.fault.success_rate - 0.01).abs() < 1e-12);
        assert_eq!(f.clean.ops, 200);
        assert_eq!(f.clean.p99_ns, MS);
        assert_eq!(f.after.p99_ns, 50 * MS);
        assert_eq!(f.buckets.len(), 60);
        assert_eq!(f.buckets[25].failed, 10);
        assert_eq!(f.buckets[25].ok, 0);
    }

    #[test]
    fn degraded_answers_count_as_answered_but_not_as_recovered() {
        let mut t = ops(0, 1_000, 10, 1, OpStatus::Ok);
        t.extend(ops(1_000, 3_000, 10, 1, OpStatus::Degraded));
        let f = analyse(&t, 1_000 * MS, 2_000 * MS, 3_000 * MS, &slo());
        assert_eq!(f.fault.success_rate, 1.0);
        assert_eq!(f.fault.degraded_rate, 1.0);
        assert_eq!(f.detect_ms, Some(1.0));
        assert_eq!(f.recovery_ms, None, "still degraded after healing");
    }

    #[test]
    fn a_fault_no_client_sees_is_not_detected_and_recovery_is_immediate() {
        let t = ops(0, 4_000, 5, 2, OpStatus::Ok);
        let f = analyse(&t, 1_000 * MS, 2_000 * MS, 4_000 * MS, &slo());
        assert_eq!(f.detect_ms, None);
        assert_eq!(f.recovery_ms, Some(0.0));
        assert_eq!(f.fault.success_rate, 1.0);
    }

    #[test]
    fn an_empty_window_is_not_recovered_and_a_slow_clean_period_is_flagged() {
        let mut t = ops(0, 1_000, 10, 30, OpStatus::Ok);
        t.extend(ops(1_000, 2_000, 10, 1, OpStatus::Shed));
        let f = analyse(&t, 1_000 * MS, 1_500 * MS, 3_000 * MS, &slo());
        assert!(!f.clean_within_slo);
        assert_eq!(f.recovery_ms, None, "nothing served after 2 s, shed before");
        assert_eq!(f.after.failed, 50);
    }
}
