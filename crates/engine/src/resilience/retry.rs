//! Retries of transient store errors with exponential backoff and full jitter, within an
//! operation's deadline.
//!
//! Only "someone else holds the lock" is transient (SQLite's `BUSY` and `LOCKED`): waiting
//! can fix it. Corruption, a full disk, a read-only or missing file and bad input are not:
//! retrying them only delays the error, so they fail at once.

use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rusqlite::ErrorCode;

use crate::error::EngineError;

/// Whether waiting and trying again can make `e` go away.
pub fn is_transient(e: &EngineError) -> bool {
    matches!(
        sqlite_code(e),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// Whether `e` says the dependency is unwell (it counts towards opening a breaker), as
/// opposed to a problem of the one request (a missing row, bad input).
pub fn is_dependency_failure(e: &EngineError) -> bool {
    match e {
        EngineError::Unavailable { .. }
        | EngineError::DeadlineExceeded { .. }
        | EngineError::Corrupt { .. }
        | EngineError::NotADatabase { .. }
        | EngineError::Open { .. } => true,
        EngineError::Sqlite(_) => matches!(
            sqlite_code(e),
            Some(
                ErrorCode::DatabaseBusy
                    | ErrorCode::DatabaseLocked
                    | ErrorCode::DiskFull
                    | ErrorCode::SystemIoFailure
                    | ErrorCode::DatabaseCorrupt
                    | ErrorCode::CannotOpen
                    | ErrorCode::ReadOnly
                    | ErrorCode::OperationInterrupted
                    | ErrorCode::OutOfMemory
            )
        ),
        _ => false,
    }
}

fn sqlite_code(e: &EngineError) -> Option<ErrorCode> {
    match e {
        EngineError::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => Some(f.code),
        _ => None,
    }
}

/// Backoff settings: the first wait is up to `base`, each next one up to twice the last, at
/// most `max`; the actual wait is drawn uniformly below that ("full jitter"), so retrying
/// callers spread out instead of colliding again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Upper bound of the first wait.
    pub base: Duration,
    /// Upper bound of any wait.
    pub max: Duration,
}

impl Backoff {
    /// The upper bound of the wait before retry `attempt` (1 for the first retry).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(20);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// The wait before retry `attempt`, jittered.
    pub fn wait(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        let c = self.ceiling(attempt).as_nanos() as u64;
        Duration::from_nanos(if c == 0 { 0 } else { rng.random_range(0..=c) })
    }
}

/// An operation's time budget.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    start: Instant,
    at: Instant,
}

impl Deadline {
    /// A deadline `budget` after an operation that started `ago` before now.
    pub fn started_ago(budget: Duration, ago: Duration) -> Deadline {
        let now = Instant::now();
        let start = now.checked_sub(ago).unwrap_or(now);
        Deadline {
            start,
            at: start + budget,
        }
    }

    /// Time left (zero once passed).
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// Time since the operation started.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}

/// What a retried call did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Attempts {
    /// Calls made (1 when the first succeeded or failed for good).
    pub calls: u32,
}

/// Calls `f` until it succeeds, fails with a non-transient error, or the next wait would
/// pass the deadline `budget` after the operation began; then the last transient error
/// becomes [`EngineError::DeadlineExceeded`].
///
/// The clock is first read when the first attempt has failed, counting that attempt as
/// `first_attempt` long (its own bound, SQLite's busy timeout): the path that succeeds at
/// once reads no clock, so its instruction count does not depend on the time.
pub fn retry<T>(
    op: &'static str,
    budget: Duration,
    first_attempt: Duration,
    backoff: &Backoff,
    attempts: &mut Attempts,
    mut f: impl FnMut() -> Result<T, EngineError>,
) -> Result<T, EngineError> {
    let mut rng = None;
    let mut deadline = None;
    loop {
        attempts.calls += 1;
        let e = match f() {
            Ok(v) => return Ok(v),
            Err(e) if !is_transient(&e) => return Err(e),
            Err(e) => e,
        };
        // Seeded per operation from the clock, only once it retries: callers that collided
        // draw different waits.
        let rng = rng.get_or_insert_with(|| {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            rand_chacha::ChaCha8Rng::seed_from_u64(t ^ (&t as *const u64 as u64))
        });
        let wait = backoff.wait(attempts.calls, rng);
        let deadline = deadline.get_or_insert_with(|| Deadline::started_ago(budget, first_attempt));
        if deadline.remaining() <= wait {
            return Err(EngineError::DeadlineExceeded {
                op,
                after: deadline.elapsed(),
                attempts: attempts.calls,
                last: e.to_string(),
            });
        }
        std::thread::sleep(wait);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn busy() -> EngineError {
        EngineError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        ))
    }

    fn full() -> EngineError {
        EngineError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        ))
    }

    #[test]
    fn only_lock_errors_are_transient_and_bad_input_is_not_a_dependency_failure() {
        assert!(is_transient(&busy()));
        assert!(!is_transient(&full()));
        assert!(is_dependency_failure(&full()));
        assert!(!is_transient(&EngineError::MissingEvent(3)));
        assert!(!is_dependency_failure(&EngineError::MissingEvent(3)));
        assert!(!is_dependency_failure(&EngineError::InvalidConfig(
            "k".into()
        )));
    }

    #[test]
    fn backoff_doubles_up_to_its_ceiling_and_jitters_below_it() {
        let b = Backoff {
            base: Duration::from_millis(2),
            max: Duration::from_millis(50),
        };
        let ceilings: Vec<u128> = (1..=7).map(|a| b.ceiling(a).as_millis()).collect();
        assert_eq!(ceilings, [2, 4, 8, 16, 32, 50, 50]);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let waits: Vec<Duration> = (0..200).map(|_| b.wait(4, &mut rng)).collect();
        assert!(waits.iter().all(|w| *w <= Duration::from_millis(16)));
        let distinct: std::collections::BTreeSet<_> = waits.iter().collect();
        assert!(distinct.len() > 150, "jittered, not fixed");
    }

    #[test]
    fn retries_transient_errors_until_success_and_never_retries_others() {
        let d = Duration::from_secs(60);
        let b = Backoff {
            base: Duration::ZERO,
            max: Duration::ZERO,
        };
        let mut left = 3;
        let mut a = Attempts::default();
        let v = retry("t", d, Duration::ZERO, &b, &mut a, || {
            if left > 0 {
                left -= 1;
                Err(busy())
            } else {
                Ok(7)
            }
        });
        assert_eq!((v.ok(), a.calls), (Some(7), 4));
        let mut a = Attempts::default();
        let e = retry("t", d, Duration::ZERO, &b, &mut a, || Err::<(), _>(full())).unwrap_err();
        assert_eq!(a.calls, 1);
        assert!(e.to_string().contains("full"), "{e}");
    }

    #[test]
    fn a_passed_deadline_turns_the_last_transient_error_into_deadline_exceeded() {
        let b = Backoff {
            base: Duration::from_millis(1),
            max: Duration::from_millis(1),
        };
        let mut a = Attempts::default();
        // A 10 ms budget whose first attempt counts as 10 ms: no time left for a retry.
        let ms = Duration::from_millis(10);
        let e = retry("remember", ms, ms, &b, &mut a, || Err::<(), _>(busy())).unwrap_err();
        assert!(matches!(
            &e,
            EngineError::DeadlineExceeded {
                op: "remember",
                attempts: 1,
                ..
            }
        ));
        assert!(
            e.to_string().contains("locked") || e.to_string().contains("busy"),
            "{e}"
        );
    }
}
