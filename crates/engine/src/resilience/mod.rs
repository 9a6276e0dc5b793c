//! How the engine stays useful when its dependencies are not: deadlines, retries of
//! transient errors with backoff, circuit breakers that fail fast, degraded answers that say
//! so, and a health check.
//!
//! - **Writes** (remember, consolidation) retry `BUSY`/`LOCKED` with jittered exponential
//!   backoff until their deadline, then fail with [`EngineError::DeadlineExceeded`]; other
//!   errors (a full disk, corruption) fail at once. A write that fails was not acknowledged:
//!   nothing is half-stored (each is one SQLite transaction).
//! - **Breakers** ([`breaker::Breaker`]) around store reads, store writes and the embedder
//!   open after `breaker_failures` consecutive dependency failures; while open, calls fail
//!   in well under a microsecond with [`EngineError::Unavailable`], then one probe per
//!   cool-down decides whether they close.
//! - **Recall degrades** instead of failing: without a query embedding (the embedder failed,
//!   or its breaker is open) it answers by keywords over recent memories
//!   ([`degrade::lexical`]); without store reads it answers from the vector index alone
//!   ([`degrade::index_only`]). Degraded answers carry [`RecallResult::degraded`] and are
//!   never cached.
//! - **Health** ([`health::Health`]): reachability, breaker states, index consistency, cache
//!   and pool usage, counters.

pub mod breaker;
pub mod degrade;
pub mod embed_backend;
pub mod health;
pub mod retry;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};
use breaker::{Admit, Breaker};
use retry::{Attempts, Backoff};

#[cfg(doc)]
use crate::recall::RecallResult;

/// Resilience settings (`[engine.resilience]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResilienceConfig {
    /// Deadline of one write (remember, one consolidation), retries included, in ms.
    pub write_deadline_ms: u64,
    /// How long SQLite itself waits on a lock another connection holds, per attempt, in ms.
    pub busy_timeout_ms: u64,
    /// Upper bound of the first retry's wait, in ms (doubling per retry).
    pub backoff_base_ms: u64,
    /// Upper bound of any retry's wait, in ms.
    pub backoff_max_ms: u64,
    /// Consecutive dependency failures that open a breaker.
    pub breaker_failures: u32,
    /// How long an open breaker fails fast before letting one probe through, in ms.
    pub breaker_cooldown_ms: u64,
    /// Longest a read waits for a pooled connection before failing, in ms.
    pub read_wait_ms: u64,
    /// Deadline of one embedding by a pluggable backend, in ms.
    pub embed_timeout_ms: u64,
    /// Recent memories the lexical fallback searches.
    pub lexical_window: usize,
}

impl Default for ResilienceConfig {
    fn default() -> Self {
        Self {
            write_deadline_ms: 250,
            busy_timeout_ms: 10,
            backoff_base_ms: 1,
            backoff_max_ms: 25,
            breaker_failures: 5,
            breaker_cooldown_ms: 100,
            read_wait_ms: 100,
            embed_timeout_ms: 100,
            lexical_window: 1_000,
        }
    }
}

impl ResilienceConfig {
    /// Checks ranges; the message names the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| {
            Err(EngineError::InvalidConfig(format!(
                "engine.resilience: {m}"
            )))
        };
        if self.write_deadline_ms == 0 {
            return bad("write_deadline_ms must be at least 1");
        }
        if self.breaker_failures == 0 {
            return bad("breaker_failures must be at least 1");
        }
        if self.backoff_base_ms > self.backoff_max_ms {
            return bad("backoff_base_ms must not exceed backoff_max_ms");
        }
        if self.read_wait_ms == 0 || self.embed_timeout_ms == 0 {
            return bad("read_wait_ms and embed_timeout_ms must be at least 1");
        }
        if self.lexical_window == 0 {
            return bad("lexical_window must be at least 1");
        }
        Ok(())
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }
}

/// Counters of what the resilience layer did, since the engine opened.
#[derive(Debug, Default)]
struct Counters {
    retries: AtomicU64,
    deadline_exceeded: AtomicU64,
    fail_fast: AtomicU64,
    degraded_index_only: AtomicU64,
    degraded_lexical: AtomicU64,
    embed_failures: AtomicU64,
}

/// A snapshot of [`Guards`]' counters and breaker openings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResilienceStats {
    /// Retries of transient errors.
    pub retries: u64,
    /// Writes that ran out of their deadline.
    pub deadline_exceeded: u64,
    /// Calls an open breaker rejected.
    pub fail_fast: u64,
    /// Recalls answered from the index alone.
    pub degraded_index_only: u64,
    /// Recalls answered by the lexical fallback.
    pub degraded_lexical: u64,
    /// Failed or timed-out embeddings of a pluggable backend.
    pub embed_failures: u64,
    /// How often each breaker opened: reads, writes, embedder.
    pub breaker_opens: [u64; 3],
}

/// The engine's breakers, backoff and counters.
#[derive(Debug)]
pub struct Guards {
    config: ResilienceConfig,
    backoff: Backoff,
    /// Store reads (rerank's text fetch, counts).
    pub reads: Breaker,
    /// Store writes (remember, consolidation).
    pub writes: Breaker,
    /// The pluggable embedding backend.
    pub embed: Breaker,
    counters: Counters,
}

impl Guards {
    /// Guards configured by `config`.
    pub fn new(config: &ResilienceConfig) -> Guards {
        let cool = ResilienceConfig::ms(config.breaker_cooldown_ms);
        let n = config.breaker_failures;
        Guards {
            backoff: Backoff {
                base: ResilienceConfig::ms(config.backoff_base_ms),
                max: ResilienceConfig::ms(config.backoff_max_ms),
            },
            reads: Breaker::new("store reads", n, cool),
            writes: Breaker::new("store writes", n, cool),
            embed: Breaker::new("embedder", n, cool),
            counters: Counters::default(),
            config: config.clone(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &ResilienceConfig {
        &self.config
    }

    /// Runs a write through the write breaker, retrying transient errors until the write
    /// deadline.
    pub fn write<T>(&self, op: &'static str, mut f: impl FnMut() -> Result<T>) -> Result<T> {
        let admit = self.admit(&self.writes)?;
        let mut attempts = Attempts::default();
        let r = retry::retry(
            op,
            ResilienceConfig::ms(self.config.write_deadline_ms),
            ResilienceConfig::ms(self.config.busy_timeout_ms),
            &self.backoff,
            &mut attempts,
            &mut f,
        );
        let c = &self.counters;
        c.retries.fetch_add(
            u64::from(attempts.calls.saturating_sub(1)),
            Ordering::Relaxed,
        );
        if matches!(r, Err(EngineError::DeadlineExceeded { .. })) {
            c.deadline_exceeded.fetch_add(1, Ordering::Relaxed);
        }
        Self::report(&self.writes, admit, &r);
        r
    }

    /// Runs a read through the read breaker (no retries: reads in WAL mode do not wait on
    /// writers, so their failures are not transient).
    pub fn read<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let admit = self.admit(&self.reads)?;
        let r = f();
        Self::report(&self.reads, admit, &r);
        r
    }

    /// Fails fast, before any work, when the write breaker would reject the write.
    pub fn precheck_write(&self) -> Result<()> {
        if self.writes.rejects() {
            // Cooled down in between: hand the probe on to the write itself.
            let a = self.admit(&self.writes)?;
            self.writes.neutral(a);
        }
        Ok(())
    }

    /// Whether `b` lets a call through; an open breaker is [`EngineError::Unavailable`].
    pub fn admit(&self, b: &Breaker) -> Result<Admit> {
        match b.admit() {
            Admit::Reject(after) => {
                self.counters.fail_fast.fetch_add(1, Ordering::Relaxed);
                Err(EngineError::Unavailable {
                    what: b.name(),
                    reason: format!(
                        "circuit breaker open after {} consecutive failures",
                        self.config.breaker_failures
                    ),
                    retry_after: Some(after),
                })
            }
            a => Ok(a),
        }
    }

    /// Tells `b` how an admitted call went.
    pub fn report<T>(b: &Breaker, admit: Admit, r: &Result<T>) {
        match r {
            Ok(_) => b.success(),
            Err(e) if retry::is_dependency_failure(e) => b.failure(),
            Err(_) => b.neutral(admit),
        }
    }

    /// Counts a degraded recall.
    pub fn count_degraded(&self, mode: degrade::Degraded) {
        let c = match mode {
            degrade::Degraded::IndexOnly => &self.counters.degraded_index_only,
            degrade::Degraded::Lexical => &self.counters.degraded_lexical,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a failed embedding.
    pub fn count_embed_failure(&self) {
        self.counters.embed_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn stats(&self) -> ResilienceStats {
        let c = &self.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ResilienceStats {
            retries: l(&c.retries),
            deadline_exceeded: l(&c.deadline_exceeded),
            fail_fast: l(&c.fail_fast),
            degraded_index_only: l(&c.degraded_index_only),
            degraded_lexical: l(&c.degraded_lexical),
            embed_failures: l(&c.embed_failures),
            breaker_opens: [
                self.reads.counts().0,
                self.writes.counts().0,
                self.embed.counts().0,
            ],
        }
    }
}
