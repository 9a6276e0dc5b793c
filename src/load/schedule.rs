//! When each operation is meant to start: evenly spaced at the phase's offered rate, which is
//! constant or moves linearly within a phase. Pure arithmetic, so it is tested without a clock.

use crate::config::load::PhaseSpec;

/// One phase laid out on the run's time axis.
#[derive(Clone, Debug, PartialEq)]
pub struct PhaseWindow {
    /// Phase name.
    pub name: String,
    /// Start, ns from the run's start.
    pub start_ns: u64,
    /// End (exclusive), ns from the run's start.
    pub end_ns: u64,
    /// Offered ops/s at the start.
    pub from_rate: f64,
    /// Offered ops/s at the end.
    pub to_rate: f64,
}

impl PhaseWindow {
    /// Offered ops/s at `t_ns` (inside the window).
    pub fn rate_at(&self, t_ns: u64) -> f64 {
        let d = (self.end_ns - self.start_ns) as f64;
        let x = (t_ns.saturating_sub(self.start_ns)) as f64 / d;
        self.from_rate + (self.to_rate - self.from_rate) * x.clamp(0.0, 1.0)
    }

    /// Operations the window schedules in all.
    pub fn expected_ops(&self) -> f64 {
        let d = (self.end_ns - self.start_ns) as f64 / 1e9;
        (self.from_rate + self.to_rate) / 2.0 * d
    }

    /// Whether the rate is constant.
    pub fn is_steady(&self) -> bool {
        self.from_rate == self.to_rate
    }

    /// Start time of the `k`-th operation of the window (ns from the window's start), or
    /// `None` when it falls past the end. The `k`-th operation starts where the cumulative
    /// offered count `integral of rate` reaches `k`.
    pub fn offset_of(&self, k: u64) -> Option<u64> {
        let d = (self.end_ns - self.start_ns) as f64 / 1e9;
        let (r0, r1) = (self.from_rate, self.to_rate);
        let k = k as f64;
        // N(t) = r0 t + (r1 - r0) t^2 / (2 d)  =>  a t^2 + r0 t - k = 0.
        let a = (r1 - r0) / (2.0 * d);
        let t = if a.abs() < 1e-12 {
            if r0 <= 0.0 {
                return None;
            }
            k / r0
        } else {
            let disc = r0 * r0 + 4.0 * a * k;
            if disc < 0.0 {
                return None;
            }
            (-r0 + disc.sqrt()) / (2.0 * a)
        };
        (t.is_finite() && t >= 0.0 && t < d).then(|| (t * 1e9).round() as u64)
    }
}

/// Lays `phases` out back to back at base `rate`.
pub fn windows(phases: &[PhaseSpec], rate: f64) -> Vec<PhaseWindow> {
    let mut at = 0u64;
    phases
        .iter()
        .map(|p| {
            let (f, t) = p.multiples();
            let len = p.duration.as_nanos().min(u128::from(u64::MAX / 4)) as u64;
            let w = PhaseWindow {
                name: p.name.clone(),
                start_ns: at,
                end_ns: at + len,
                from_rate: f * rate,
                to_rate: t * rate,
            };
            at += len;
            w
        })
        .collect()
}

/// Walks the intended start times of every operation of every window, in time order.
#[derive(Clone, Debug)]
pub struct Schedule {
    windows: Vec<PhaseWindow>,
    phase: usize,
    k: u64,
}

impl Schedule {
    /// A schedule over `windows`.
    pub fn new(windows: Vec<PhaseWindow>) -> Self {
        Schedule {
            windows,
            phase: 0,
            k: 0,
        }
    }

    /// The next operation without consuming it: `(phase index, intended ns from start)`.
    pub fn peek(&self) -> Option<(usize, u64)> {
        let mut phase = self.phase;
        let mut k = self.k;
        while let Some(w) = self.windows.get(phase) {
            if let Some(off) = w.offset_of(k) {
                return Some((phase, w.start_ns + off));
            }
            phase += 1;
            k = 0;
        }
        None
    }

    /// The next operation, consumed.
    pub fn next_op(&mut self) -> Option<(usize, u64)> {
        while let Some(w) = self.windows.get(self.phase) {
            if let Some(off) = w.offset_of(self.k) {
                self.k += 1;
                return Some((self.phase, w.start_ns + off));
            }
            self.phase += 1;
            self.k = 0;
        }
        None
    }

    /// End of the last window, ns.
    pub fn end_ns(&self) -> u64 {
        self.windows.last().map_or(0, |w| w.end_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_phase_spaces_operations_evenly() {
        let w = windows(&[PhaseSpec::steady("p", 2, 1.0)], 1_000.0);
        let mut s = Schedule::new(w);
        let times: Vec<u64> = std::iter::from_fn(|| s.next_op()).map(|x| x.1).collect();
        assert_eq!(times.len(), 2_000);
        assert_eq!(times[0], 0);
        assert_eq!(times[1], 1_000_000);
        assert!(times
            .windows(2)
            .all(|w| (w[1] - w[0]).abs_diff(1_000_000) <= 1));
    }

    #[test]
    fn ramps_integrate_to_the_mean_rate_and_phases_follow_each_other() {
        let phases = [
            PhaseSpec::ramp("up", 10, 0.0, 1.0),
            PhaseSpec::steady("peak", 5, 1.0),
            PhaseSpec::ramp("down", 10, 1.0, 0.1),
        ];
        let w = windows(&phases, 200.0);
        assert_eq!(w[1].start_ns, 10_000_000_000);
        assert_eq!(w[2].end_ns, 25_000_000_000);
        let mut s = Schedule::new(w.clone());
        let mut counts = [0usize; 3];
        let mut last = 0;
        while let Some((p, t)) = s.next_op() {
            assert!(t >= last, "time order");
            assert!(t >= w[p].start_ns && t < w[p].end_ns);
            last = t;
            counts[p] += 1;
        }
        // 0 -> 200 ops/s over 10 s offers 1,000 operations; 200 -> 20 offers 1,100.
        assert!((counts[0] as i64 - 1_000).abs() <= 1, "{counts:?}");
        assert_eq!(counts[1], 1_000);
        assert!((counts[2] as i64 - 1_100).abs() <= 1, "{counts:?}");
        // The ramp really ramps: the second half holds three times the first half's ops.
        let mut s = Schedule::new(w);
        let first_half = std::iter::from_fn(|| s.next_op())
            .take_while(|x| x.0 == 0)
            .filter(|x| x.1 < 5_000_000_000)
            .count();
        assert!((first_half as i64 - 250).abs() <= 1, "{first_half}");
        assert!((w_rate() - 100.0).abs() < 1e-9);
    }

    fn w_rate() -> f64 {
        windows(&[PhaseSpec::ramp("x", 10, 0.0, 1.0)], 200.0)[0].rate_at(5_000_000_000)
    }

    #[test]
    fn peek_matches_next() {
        let mut s = Schedule::new(windows(
            &[
                PhaseSpec::steady("a", 1, 1.0),
                PhaseSpec::steady("b", 1, 2.0),
            ],
            3.0,
        ));
        while let Some(p) = s.peek() {
            assert_eq!(s.next_op(), Some(p));
        }
        assert_eq!(s.next_op(), None);
    }
}
