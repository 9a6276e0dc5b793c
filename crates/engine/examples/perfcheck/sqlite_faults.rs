//! Faults on the engine's own SQLite connections: every statement slowed, a share of the
//! reads interrupted, the database capped at its current size, the read pool held, a lock
//! taken in random bursts. Installed through `Store::for_each_connection` (SQLite's trace,
//! progress and page-limit hooks), removed by `heal`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use perfcheck::harness::{ActiveFault, BoxError};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rusqlite::trace::{TraceEvent, TraceEventCodes};
use rusqlite::Connection;

use crate::engine_load::System;
use crate::faults::Holder;

/// Per-statement delay of `slow_db`.
pub const SLOW_DB_DELAY: Duration = Duration::from_millis(10);
/// Share of read statements `flaky_reads` interrupts.
pub const FLAKY_SHARE: f64 = 0.2;
/// The largest page count SQLite allows: `disk_full`'s heal.
const NO_PAGE_LIMIT: i64 = 1_073_741_823;

fn no_hooks(c: &mut Connection) -> agent_memory::Result<()> {
    c.trace_v2(TraceEventCodes::empty(), None::<fn(TraceEvent<'_>)>)?;
    c.progress_handler(0, None::<fn() -> bool>)?;
    Ok(())
}

/// Hooks installed on the engine's connections until healed.
struct Hooked {
    system: Arc<System>,
    note: String,
}

impl ActiveFault for Hooked {
    fn heal(self: Box<Self>) -> Result<Option<String>, BoxError> {
        self.system
            .engine()
            .store()
            .for_each_connection(|c, _| no_hooks(c))?;
        Ok(Some(self.note))
    }
}

/// `slow_db`: every statement on every engine connection starts [`SLOW_DB_DELAY`] late.
pub fn slow_db(system: &Arc<System>) -> Result<Box<dyn ActiveFault>, BoxError> {
    let statements = Arc::new(AtomicU64::new(0));
    system.engine().store().for_each_connection(|c, _| {
        let n = Arc::clone(&statements);
        c.trace_v2(
            TraceEventCodes::SQLITE_TRACE_STMT,
            Some(move |e: TraceEvent<'_>| {
                if let TraceEvent::Stmt(..) = e {
                    n.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(SLOW_DB_DELAY);
                }
            }),
        )?;
        Ok(())
    })?;
    Ok(Box::new(Hooked {
        system: Arc::clone(system),
        note: format!("every statement delayed {} ms", SLOW_DB_DELAY.as_millis()),
    }))
}

/// `flaky_reads`: each read statement fails (interrupted) with probability [`FLAKY_SHARE`].
pub fn flaky_reads(system: &Arc<System>) -> Result<Box<dyn ActiveFault>, BoxError> {
    let mut seed = 1u64;
    system
        .engine()
        .store()
        .for_each_connection(|c, is_writer| {
            if is_writer {
                return Ok(());
            }
            seed += 1;
            // The trace hook decides per statement; the progress hook carries the decision out.
            let doomed = Arc::new(AtomicBool::new(false));
            let decide = Arc::clone(&doomed);
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            c.trace_v2(
                TraceEventCodes::SQLITE_TRACE_STMT,
                Some(move |e: TraceEvent<'_>| {
                    if let TraceEvent::Stmt(..) = e {
                        decide.store(rng.random_bool(FLAKY_SHARE), Ordering::Relaxed);
                    }
                }),
            )?;
            c.progress_handler(1, Some(move || doomed.load(Ordering::Relaxed)))?;
            Ok(())
        })?;
    Ok(Box::new(Hooked {
        system: Arc::clone(system),
        note: format!("{:.0}% of read statements interrupted", FLAKY_SHARE * 100.0),
    }))
}

/// `disk_full`: the writer may not grow the database beyond its current pages.
pub fn disk_full(system: &Arc<System>) -> Result<Box<dyn ActiveFault>, BoxError> {
    let mut capped = 0i64;
    system
        .engine()
        .store()
        .for_each_connection(|c, is_writer| {
            if is_writer {
                capped = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
                c.pragma_update(None, "max_page_count", capped)?;
            }
            Ok(())
        })?;
    Ok(Box::new(PageCap {
        system: Arc::clone(system),
        pages: capped,
    }))
}

struct PageCap {
    system: Arc<System>,
    pages: i64,
}

impl ActiveFault for PageCap {
    fn heal(self: Box<Self>) -> Result<Option<String>, BoxError> {
        self.system
            .engine()
            .store()
            .for_each_connection(|c, is_writer| {
                if is_writer {
                    c.pragma_update(None, "max_page_count", NO_PAGE_LIMIT)?;
                }
                Ok(())
            })?;
        Ok(Some(format!(
            "the database was capped at {} pages ({:.1} MiB)",
            self.pages,
            self.pages as f64 * 4096.0 / (1u64 << 20) as f64
        )))
    }
}

/// `pool_exhausted`: every read connection checked out and held.
pub fn pool_exhausted(system: &Arc<System>) -> Result<Box<dyn ActiveFault>, BoxError> {
    let s = Arc::clone(system);
    Holder::spawn(
        "chaos-pool",
        Box::new(move |ready, stop| {
            let held = match s.engine().store().hold_read_connections() {
                Ok(h) => h,
                Err(e) => {
                    let msg = format!("cannot take the read connections: {e}");
                    let _ = ready.send(Err(msg.clone()));
                    return Err(msg);
                }
            };
            let _ = ready.send(Ok(()));
            let _ = stop.recv();
            drop(held);
            Ok(format!(
                "{} read connections held",
                s.engine().store().pool_usage().2
            ))
        }),
    )
}

/// `flaky_lock`: another connection takes the write lock in random bursts of 5 to 30 ms,
/// about a third of the time.
pub fn flaky_lock(system: &Arc<System>) -> Result<Box<dyn ActiveFault>, BoxError> {
    let conn = Connection::open(system.db_path())?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Holder::spawn(
        "chaos-flaky-lock",
        Box::new(move |ready, stop| {
            let _ = ready.send(Ok(()));
            let mut rng = ChaCha8Rng::seed_from_u64(7);
            let mut bursts = 0u64;
            loop {
                let gap = Duration::from_millis(rng.random_range(10..50));
                if !matches!(stop.recv_timeout(gap), Err(mpsc::RecvTimeoutError::Timeout)) {
                    return Ok(format!("{bursts} lock bursts"));
                }
                conn.execute_batch("BEGIN IMMEDIATE")
                    .map_err(|e| format!("cannot take the write lock: {e}"))?;
                std::thread::sleep(Duration::from_millis(rng.random_range(5..30)));
                conn.execute_batch("COMMIT")
                    .map_err(|e| format!("cannot release the write lock: {e}"))?;
                bursts += 1;
            }
        }),
    )
}
