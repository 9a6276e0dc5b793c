//! The calibration knob: slows one named stage by a share of its own wall time, by spinning
//! inside it.

use std::sync::atomic::Ordering;
use std::sync::RwLock;

#[cfg(test)]
use crate::clock::mock_clock;
use crate::clock::{now_raw, raw_delta_ns};
use crate::pass_mode::{switch, MODE_SLOW, PASS_MODE};

static SLOWDOWN: RwLock<Option<(&'static str, u32)>> = RwLock::new(None);

/// Test and calibration knob: makes stage `name` slower by `percent` % of its own wall time,
/// by spinning inside the stage (so CPU profiles show the time under that stage too).
/// `None` turns it off. Takes effect at the next [`begin_operation`](crate::begin_operation).
pub fn set_slowdown(knob: Option<(&str, u32)>) {
    let leaked = knob.map(|(name, pct)| (&*Box::leak(name.to_owned().into_boxed_str()), pct));
    let on = leaked.is_some();
    if let Ok(mut s) = SLOWDOWN.write() {
        *s = leaked;
    }
    switch(&PASS_MODE, MODE_SLOW, on);
}

/// Turns the calibration knob on for as long as the returned guard lives, so an error that
/// ends a run early cannot leave later runs of the process slowed.
#[must_use = "the knob is turned off when the guard drops"]
pub fn slowdown_scope(knob: Option<(&str, u32)>) -> SlowdownScope {
    set_slowdown(knob);
    SlowdownScope(())
}

/// Guard of [`slowdown_scope`].
pub struct SlowdownScope(());

impl Drop for SlowdownScope {
    fn drop(&mut self) {
        set_slowdown(None);
    }
}

/// Whether the calibration knob is on (a run measured now is not a fair measurement).
pub fn slowdown_active() -> bool {
    PASS_MODE.load(Ordering::SeqCst) & MODE_SLOW != 0
}

pub(crate) fn slowdown() -> Option<(&'static str, u32)> {
    SLOWDOWN.read().ok().and_then(|s| *s)
}

#[inline(never)]
pub(crate) fn burn_proportional(start_raw: u64, percent: u32) {
    let elapsed = raw_delta_ns(start_raw, now_raw());
    let extra = elapsed.saturating_mul(percent as u64) / 100;
    #[cfg(test)]
    if mock_clock::advance_if_active(extra) {
        return;
    }
    let until = now_raw();
    let mut x = 0u64;
    while raw_delta_ns(until, now_raw()) < extra {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{begin_operation, stage, OpSample};

    /// Stands in for `ns` of work, on the mock clock.
    fn spin_for(ns: u64) {
        mock_clock::advance(ns);
    }

    #[test]
    fn slowdown_knob_lengthens_only_the_named_stage() {
        mock_clock::install();
        // The only test that turns the process-wide knob on; it is off again once the scope
        // ends, here through an early return as on an error.
        fn measured(out: &mut Option<OpSample>) -> Result<(), ()> {
            let _knob = slowdown_scope(Some(("vector_search", 100)));
            assert!(slowdown_active());
            let op = begin_operation(false);
            {
                let _s = stage("vector_search");
                spin_for(300_000);
            }
            {
                let _s = stage("rerank");
                spin_for(300_000);
            }
            *out = Some(op.finish());
            Err(())
        }
        let mut sample = None;
        assert!(measured(&mut sample).is_err());
        assert!(!slowdown_active(), "the knob is off after its scope");
        let s = sample.unwrap();
        assert_eq!(s.stages[0], ("vector_search", s.stages[0].1));
        assert_eq!(s.stages[0].1.wall_ns, 600_000, "300 µs doubled");
        assert_eq!(s.stages[1].1.wall_ns, 300_000, "rerank untouched");
    }
}
