//! The engine's faults for `cargo perfcheck chaos`: each one real (a lock another connection
//! holds, writers fighting over the same rows), injected into the running system while the
//! load goes on and undone by its `heal`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use agent_memory::consolidate::bytes_per_event;
use agent_memory::{ConsolidateOptions, MemoryBudget};
use perfcheck::harness::{ActiveFault, BoxError, FaultInfo};
use rusqlite::Connection;

use crate::embed_switch::Mode;
use crate::engine_load::System;
use crate::sqlite_faults;

/// How long a heal waits for a fault's threads before calling it a deadlock.
const STOP_WITHIN: Duration = Duration::from_secs(10);

/// The faults the engine offers, in the order `chaos` runs them.
pub fn list() -> Vec<FaultInfo> {
    vec![
        FaultInfo::new(
            "locked_db",
            "another connection holds SQLite's write lock (BEGIN IMMEDIATE): remember and \
             consolidation get busy errors until it commits; recall reads on",
        ),
        FaultInfo::new(
            "write_contention",
            "four extra writers remember and consolidate as fast as they can on the same \
             store: no deadlock, no lost update",
        ),
        FaultInfo::new(
            "slow_db",
            "every SQLite statement on the engine's connections starts 10 ms late (a trace \
             hook that sleeps)",
        ),
        FaultInfo::new(
            "flaky_reads",
            "20% of read statements are interrupted at random (intermittent failure): \
             recall answers from the index alone for those",
        ),
        FaultInfo::new(
            "flaky_lock",
            "another connection takes the write lock in random 5-30 ms bursts: remembers \
             retry with backoff and get through",
        ),
        FaultInfo::new(
            "disk_full",
            "the database may not grow past its current pages (max_page_count): remembers \
             are refused, never acknowledged, until space is freed",
        ),
        FaultInfo::new(
            "pool_exhausted",
            "every read connection is checked out and held: recalls wait 100 ms for one, \
             then answer from the index alone",
        ),
        FaultInfo::new(
            "embed_failure",
            "the embedding service answers every request with an error: recall falls back to \
             keywords over recent memories, remember is refused",
        ),
        FaultInfo::new(
            "embed_hang",
            "the embedding service hangs until each request's 100 ms deadline; after five \
             the breaker opens and recall goes straight to keywords",
        ),
        FaultInfo::new(
            "memory_pressure",
            "the engine's memory budgets cut to 64 KiB of recall cache and 50 events per \
             consolidation batch: it evicts and works in smaller batches, never grows past them",
        ),
        FaultInfo::new(
            "cascading",
            "the write lock held (locked_db), and one second later the embedding service \
             hanging as well (embed_hang)",
        ),
    ]
}

/// Injects `name` into `system`.
pub fn inject(system: &Arc<System>, name: &str) -> Result<Box<dyn ActiveFault>, BoxError> {
    match name {
        "locked_db" => lock_holder(system),
        "write_contention" => Contention::start(system, 4),
        "slow_db" => sqlite_faults::slow_db(system),
        "flaky_reads" => sqlite_faults::flaky_reads(system),
        "flaky_lock" => sqlite_faults::flaky_lock(system),
        "disk_full" => sqlite_faults::disk_full(system),
        "pool_exhausted" => sqlite_faults::pool_exhausted(system),
        "embed_failure" => EmbedOutage::start(system, Mode::Fails),
        "embed_hang" => EmbedOutage::start(system, Mode::Hangs),
        "memory_pressure" => Pressure::start(system),
        "cascading" => Cascade::start(system, Duration::from_secs(1)),
        _ => Err(format!("the engine has no fault `{name}`").into()),
    }
}

/// A thread that keeps a fault in effect until healed: it says on `ready` once the fault
/// holds (or why it could not), then waits on `stop` and returns its heal note.
pub struct Holder {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<Result<String, String>>,
}

/// What a [`Holder`]'s thread is told: where to report, and when to let go.
pub type Keep = Box<
    dyn FnOnce(&mpsc::Sender<Result<(), String>>, mpsc::Receiver<()>) -> Result<String, String>
        + Send,
>;

impl Holder {
    /// Runs `keep` on a thread named `name` and returns once it reported the fault in place.
    pub fn spawn(name: &str, keep: Keep) -> Result<Box<dyn ActiveFault>, BoxError> {
        let (ready_tx, ready) = mpsc::channel::<Result<(), String>>();
        let (stop, stop_rx) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || keep(&ready_tx, stop_rx))?;
        ready
            .recv_timeout(STOP_WITHIN)
            .map_err(|_| format!("{name} did not report within 10 s"))??;
        Ok(Box::new(Holder { stop, thread }))
    }
}

impl ActiveFault for Holder {
    fn heal(self: Box<Self>) -> Result<Option<String>, BoxError> {
        let _ = self.stop.send(());
        match self.thread.join() {
            Ok(Ok(note)) => Ok(Some(note)),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err("the fault's thread panicked".into()),
        }
    }
}

/// `locked_db`: a connection of its own holds the write lock until told to commit.
fn lock_holder(system: &Arc<System>) -> Result<Box<dyn ActiveFault>, BoxError> {
    let path = system.db_path().to_path_buf();
    Holder::spawn(
        "chaos-lock",
        Box::new(move |ready, stop| {
            let take = || -> rusqlite::Result<Connection> {
                let c = Connection::open(&path)?;
                // Waits for the engine's own write in progress, then holds the lock.
                c.busy_timeout(Duration::from_secs(5))?;
                c.execute_batch("BEGIN IMMEDIATE")?;
                Ok(c)
            };
            let conn = match take() {
                Ok(c) => c,
                Err(e) => {
                    let msg = format!("cannot take the write lock: {e}");
                    let _ = ready.send(Err(msg.clone()));
                    return Err(msg);
                }
            };
            let _ = ready.send(Ok(()));
            // Held until healed (or the fault is dropped: the sender goes away).
            let _ = stop.recv();
            conn.execute_batch("COMMIT").map_err(|e| e.to_string())?;
            Ok("the lock holder committed".into())
        }),
    )
}

/// Extra writers on the same store until told to stop.
struct Contention {
    stop: Arc<AtomicBool>,
    done: mpsc::Receiver<()>,
    threads: Vec<JoinHandle<()>>,
    writes: Arc<AtomicU64>,
    errors: Arc<AtomicU64>,
    consolidations: Arc<AtomicU64>,
}

impl Contention {
    fn start(system: &Arc<System>, writers: usize) -> Result<Box<dyn ActiveFault>, BoxError> {
        let stop = Arc::new(AtomicBool::new(false));
        let (writes, errors, consolidations) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
        );
        let (done_tx, done) = mpsc::channel();
        let mut threads = Vec::with_capacity(writers);
        for w in 0..writers {
            let (system, stop, done_tx) = (Arc::clone(system), Arc::clone(&stop), done_tx.clone());
            let (writes, errors, consolidations) = (
                Arc::clone(&writes),
                Arc::clone(&errors),
                Arc::clone(&consolidations),
            );
            threads.push(
                std::thread::Builder::new()
                    .name(format!("chaos-writer-{w}"))
                    .spawn(move || {
                        let mut stream = system.corpus().stream();
                        let opts = ConsolidateOptions {
                            batch: 50,
                            max_batches: Some(1),
                            ..ConsolidateOptions::default()
                        };
                        let mut i = 0u64;
                        while !stop.load(Ordering::Acquire) {
                            i += 1;
                            // Every writer remembers the same events and consolidates the
                            // same backlog: the rows and facts they fight over are the same.
                            let r = if i % 10 == 0 {
                                system
                                    .consolidate(&opts)
                                    .map(|_| consolidations.fetch_add(1, Ordering::Relaxed))
                            } else {
                                system
                                    .remember_tracked(stream.next_event())
                                    .map(|_| writes.fetch_add(1, Ordering::Relaxed))
                            };
                            if r.is_err() {
                                errors.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        let _ = done_tx.send(());
                    })?,
            );
        }
        Ok(Box::new(Contention {
            stop,
            done,
            threads,
            writes,
            errors,
            consolidations,
        }))
    }
}

impl ActiveFault for Contention {
    fn heal(self: Box<Self>) -> Result<Option<String>, BoxError> {
        self.stop.store(true, Ordering::Release);
        let deadline = std::time::Instant::now() + STOP_WITHIN;
        for _ in 0..self.threads.len() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if self.done.recv_timeout(left).is_err() {
                return Err(format!(
                    "a contending writer did not stop within {} s: deadlock or livelock",
                    STOP_WITHIN.as_secs()
                )
                .into());
            }
        }
        for t in self.threads {
            let _ = t.join();
        }
        Ok(Some(format!(
            "{} remembers and {} consolidations by {} extra writers, {} of their operations failed",
            self.writes.load(Ordering::Relaxed),
            self.consolidations.load(Ordering::Relaxed),
            4,
            self.errors.load(Ordering::Relaxed)
        )))
    }
}

/// The embedding service switched to failing or hanging until healed.
struct EmbedOutage {
    system: Arc<System>,
}

impl EmbedOutage {
    fn start(system: &Arc<System>, mode: Mode) -> Result<Box<dyn ActiveFault>, BoxError> {
        system.embed_switch().set(mode);
        Ok(Box::new(EmbedOutage {
            system: Arc::clone(system),
        }))
    }
}

impl ActiveFault for EmbedOutage {
    fn heal(self: Box<Self>) -> Result<Option<String>, BoxError> {
        self.system.embed_switch().set(Mode::Works);
        Ok(Some("the embedding service answers again".into()))
    }
}

/// Two faults in sequence: the write lock now, the embedding service `after` later.
struct Cascade {
    lock: Box<dyn ActiveFault>,
    stop: mpsc::Sender<()>,
    second: JoinHandle<bool>,
    system: Arc<System>,
}

impl Cascade {
    fn start(system: &Arc<System>, after: Duration) -> Result<Box<dyn ActiveFault>, BoxError> {
        let lock = lock_holder(system)?;
        let (stop, stop_rx) = mpsc::channel::<()>();
        let s = Arc::clone(system);
        let second = std::thread::Builder::new()
            .name("chaos-cascade".into())
            .spawn(move || {
                // Healed before the second fault was due: it never starts.
                if let Err(mpsc::RecvTimeoutError::Timeout) = stop_rx.recv_timeout(after) {
                    s.embed_switch().set(Mode::Hangs);
                    return true;
                }
                false
            })?;
        Ok(Box::new(Cascade {
            lock,
            stop,
            second,
            system: Arc::clone(system),
        }))
    }
}

impl ActiveFault for Cascade {
    fn heal(self: Box<Self>) -> Result<Option<String>, BoxError> {
        let _ = self.stop.send(());
        let second = self
            .second
            .join()
            .map_err(|_| "the cascade's thread panicked".to_owned())?;
        self.system.embed_switch().set(Mode::Works);
        let first = self.lock.heal()?.unwrap_or_default();
        Ok(Some(if second {
            format!("{first}; the embedding service answers again")
        } else {
            format!("{first}; healed before the embedding service failed")
        }))
    }
}

/// The memory budgets cut until healed; healing checks the cache never went past its cut.
struct Pressure {
    system: Arc<System>,
    before: MemoryBudget,
    cut: MemoryBudget,
    evictions_before: u64,
}

impl Pressure {
    fn start(system: &Arc<System>) -> Result<Box<dyn ActiveFault>, BoxError> {
        let e = system.engine();
        let before = e.config().memory;
        let cut = MemoryBudget {
            cache_bytes: 64 << 10,
            consolidation_bytes: 50 * bytes_per_event(e.config().dim),
        };
        let evictions_before = e.cache_usage().evictions;
        e.set_memory_budget(cut);
        Ok(Box::new(Pressure {
            system: Arc::clone(system),
            before,
            cut,
            evictions_before,
        }))
    }
}

impl ActiveFault for Pressure {
    fn heal(self: Box<Self>) -> Result<Option<String>, BoxError> {
        let e = self.system.engine();
        let u = e.cache_usage();
        e.set_memory_budget(self.before);
        if u.peak > self.cut.cache_bytes {
            return Err(format!(
                "the recall cache held {} bytes, over its budget of {}",
                u.peak, self.cut.cache_bytes
            )
            .into());
        }
        Ok(Some(format!(
            "recall cache at most {} of {} bytes ({} evictions); budgets restored",
            u.peak,
            self.cut.cache_bytes,
            u.evictions - self.evictions_before
        )))
    }
}
