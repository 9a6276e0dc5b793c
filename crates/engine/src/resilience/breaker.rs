//! A circuit breaker: after `failures` consecutive failures it opens and callers fail fast
//! for `cooldown`; then one probe is let through (half-open), and its success closes it.
//!
//! The closed-state check on every operation is one atomic load, so the breaker costs the
//! healthy path nothing measurable; the state changes take a small mutex.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Where a breaker is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls go through; failures are counted.
    Closed,
    /// Calls fail fast until the cool-down has passed.
    Open,
    /// One probe call is in flight; the others fail fast until it reports.
    HalfOpen,
}

impl BreakerState {
    /// `closed`, `open` or `half_open`.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;

/// What [`Breaker::admit`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Go ahead (closed).
    Call,
    /// Go ahead as the half-open probe: report its result.
    Probe,
    /// Do not call: the breaker is open (retry after the remaining cool-down).
    Reject(Duration),
}

#[derive(Debug)]
struct Inner {
    opened_at: Option<Instant>,
}

/// A circuit breaker around one dependency (the store's reads, its writes, the embedder).
#[derive(Debug)]
pub struct Breaker {
    name: &'static str,
    failures: u32,
    cooldown: Duration,
    state: AtomicU8,
    /// Consecutive failures; an atomic so a success on the healthy path takes no lock.
    consecutive: AtomicU32,
    inner: Mutex<Inner>,
    opens: AtomicU64,
    rejected: AtomicU64,
}

impl Breaker {
    /// A closed breaker that opens after `failures` consecutive failures (at least 1) and
    /// probes again after `cooldown`.
    pub fn new(name: &'static str, failures: u32, cooldown: Duration) -> Breaker {
        Breaker {
            name,
            failures: failures.max(1),
            cooldown,
            state: AtomicU8::new(CLOSED),
            consecutive: AtomicU32::new(0),
            inner: Mutex::new(Inner { opened_at: None }),
            opens: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
        }
    }

    /// The dependency's name in messages (`store writes`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Whether a call may go ahead now.
    pub fn admit(&self) -> Admit {
        if self.state.load(Ordering::Acquire) == CLOSED {
            return Admit::Call;
        }
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        match self.state.load(Ordering::Acquire) {
            CLOSED => Admit::Call,
            OPEN => {
                let since = inner.opened_at.map_or(self.cooldown, |t| t.elapsed());
                if since >= self.cooldown {
                    self.state.store(HALF_OPEN, Ordering::Release);
                    Admit::Probe
                } else {
                    self.rejected.fetch_add(1, Ordering::Relaxed);
                    Admit::Reject(self.cooldown - since)
                }
            }
            _ => {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                Admit::Reject(Duration::ZERO)
            }
        }
    }

    /// Whether an open breaker would reject a call now, without changing its state (a
    /// caller checks before doing work the call would waste, such as embedding).
    pub fn rejects(&self) -> bool {
        if self.state.load(Ordering::Acquire) == CLOSED {
            return false;
        }
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        match self.state.load(Ordering::Acquire) {
            OPEN => inner.opened_at.is_some_and(|t| t.elapsed() < self.cooldown),
            HALF_OPEN => true,
            _ => false,
        }
    }

    /// Reports a call's success: closes the breaker and clears the failure count.
    pub fn success(&self) {
        if self.state.load(Ordering::Acquire) == CLOSED {
            // The common case: two atomic operations at most, no lock.
            if self.consecutive.load(Ordering::Relaxed) != 0 {
                self.consecutive.store(0, Ordering::Relaxed);
            }
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        self.consecutive.store(0, Ordering::Relaxed);
        inner.opened_at = None;
        self.state.store(CLOSED, Ordering::Release);
    }

    /// Reports a call's failure (one that says the dependency is unwell): counts it, and
    /// opens the breaker at the threshold or when the half-open probe failed.
    pub fn failure(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let consecutive = self.consecutive.fetch_add(1, Ordering::Relaxed) + 1;
        let state = self.state.load(Ordering::Acquire);
        if state == HALF_OPEN || (state == CLOSED && consecutive >= self.failures) {
            inner.opened_at = Some(Instant::now());
            self.state.store(OPEN, Ordering::Release);
            self.opens.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Reports that an admitted call ended without saying anything about the dependency
    /// (e.g. a bad input): a half-open probe lets the next call probe instead.
    pub fn neutral(&self, admitted: Admit) {
        if admitted == Admit::Probe {
            let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            // Back to open with the cool-down already over: the next admit probes.
            inner.opened_at = Some(Instant::now() - self.cooldown);
            self.state.store(OPEN, Ordering::Release);
        }
    }

    /// The state now.
    pub fn state(&self) -> BreakerState {
        match self.state.load(Ordering::Acquire) {
            CLOSED => BreakerState::Closed,
            OPEN => BreakerState::Open,
            _ => BreakerState::HalfOpen,
        }
    }

    /// How often it opened, and how many calls it rejected, since it was made.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.opens.load(Ordering::Relaxed),
            self.rejected.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_of_consecutive_failures_only() {
        let b = Breaker::new("t", 5, Duration::from_secs(3600));
        for _ in 0..4 {
            b.failure();
        }
        b.success();
        for _ in 0..4 {
            assert_eq!(b.admit(), Admit::Call);
            b.failure();
        }
        assert_eq!(b.state(), BreakerState::Closed, "a success reset the count");
        b.failure();
        assert_eq!(b.state(), BreakerState::Open);
        assert!(b.rejects());
        assert!(matches!(b.admit(), Admit::Reject(d) if d > Duration::from_secs(3000)));
        assert_eq!(b.counts(), (1, 1));
    }

    #[test]
    fn after_the_cooldown_one_probe_goes_through_and_its_result_decides() {
        let b = Breaker::new("t", 1, Duration::ZERO);
        b.failure();
        assert_eq!(b.state(), BreakerState::Open);
        assert!(!b.rejects(), "cooled down: the next call probes");
        assert_eq!(b.state(), BreakerState::Open, "rejects() changes nothing");
        assert_eq!(b.admit(), Admit::Probe);
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert_eq!(
            b.admit(),
            Admit::Reject(Duration::ZERO),
            "one probe at a time"
        );
        b.failure();
        assert_eq!(b.state(), BreakerState::Open, "a failed probe reopens");
        assert_eq!(b.admit(), Admit::Probe);
        b.success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.admit(), Admit::Call);
        assert_eq!(b.counts().0, 2);
    }

    #[test]
    fn a_neutral_probe_hands_the_probe_to_the_next_call() {
        let b = Breaker::new("t", 1, Duration::from_secs(3600));
        b.failure();
        b.neutral(Admit::Call);
        assert_eq!(b.state(), BreakerState::Open, "only a probe is handed on");
        let b = Breaker::new("t", 1, Duration::ZERO);
        b.failure();
        let probe = b.admit();
        assert_eq!(probe, Admit::Probe);
        b.neutral(probe);
        assert_eq!(b.admit(), Admit::Probe);
    }
}
