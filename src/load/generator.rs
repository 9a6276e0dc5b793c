//! The open-loop generator: a tokio task schedules operations at the offered rate, a pool of
//! worker threads runs them against the load target's shared system, and every latency is
//! measured from the operation's *intended* start time.
//!
//! Why this shape:
//! - Open loop: the schedule is fixed in advance ([`Schedule`]); an operation is queued at its
//!   time whether or not earlier ones finished. Measuring from the intended start (not from
//!   when a worker picked it up) corrects coordinated omission: time spent waiting behind a
//!   slow operation counts.
//! - Operations are blocking (SQLite, CPU-bound search), so they never run on the tokio
//!   runtime: a dedicated, bounded pool of worker threads takes them from a FIFO queue. The
//!   runtime only dispatches and samples, so it never stalls. A bounded pool (not
//!   `spawn_blocking`, which grows to hundreds of threads under overload) behaves like a real
//!   server with a fixed number of request threads and keeps SQLite connections bounded.
//! - tokio's timer has millisecond granularity, so the dispatcher wakes every millisecond and
//!   hands over every operation due within the next two; a worker that takes an operation
//!   early sleeps until its intended time. Dispatch granularity therefore adds no latency;
//!   the actual lateness of each start is recorded anyway (`start_lag`), so the floor the
//!   generator itself imposes is visible in the report.
//! - An operation that has not started by `timeout` after its intended time is shed (counted
//!   as a timeout, latency recorded as the time waited), so an overloaded stress phase cannot
//!   build an unbounded backlog. One that finishes later than `timeout` counts as a timeout.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::resources::{self, ResourceSample, Sampler};
use super::schedule::{PhaseWindow, Schedule};
use crate::error::Error;
use crate::harness::fault::Outcome;
use crate::harness::load_target::{AnyOp, Done, KindDone, LoadSystem, OpChooser};
use crate::monitor::{Monitor, RunHandles};

/// How far ahead of an operation's intended time the dispatcher hands it to the workers.
const LOOKAHEAD_NS: u64 = 2_000_000;
/// Distinct error messages kept for the report.
const MAX_ERROR_SAMPLES: usize = 5;

/// A latency histogram: 1 µs to 1 h at 3 significant digits (0.1% resolution).
pub fn new_histogram() -> Histogram<u64> {
    // Bounds are constants that satisfy the crate's preconditions.
    Histogram::new_with_bounds(1_000, 3_600_000_000_000, 3)
        .unwrap_or_else(|e| unreachable!("constant histogram bounds are valid: {e}"))
}

struct Job {
    phase: usize,
    intended_ns: u64,
    kind: usize,
    op: AnyOp,
}

/// Counters and histograms of one phase.
struct PhaseRec {
    by_kind: Vec<Histogram<u64>>,
    ops: Vec<u64>,
    /// Returned `Ok`, late or not.
    ok: Vec<u64>,
    errors: Vec<u64>,
    timeouts: Vec<u64>,
    shed: Vec<u64>,
    /// Of `ok`, answered degraded.
    degraded: Vec<u64>,
}

/// Everything the workers record; one lock, held for a few histogram updates per operation.
struct Recorder {
    phases: Vec<PhaseRec>,
    interval: Histogram<u64>,
    interval_ok: u64,
    interval_errors: u64,
    interval_timeouts: u64,
    service: Histogram<u64>,
    start_lag: Histogram<u64>,
    error_samples: Vec<String>,
    /// Every operation, when the run is traced.
    trace: Option<Vec<OpTrace>>,
}

impl Recorder {
    fn new(phases: usize, kinds: usize, trace: bool) -> Self {
        Recorder {
            phases: (0..phases)
                .map(|_| PhaseRec {
                    by_kind: (0..kinds).map(|_| new_histogram()).collect(),
                    ops: vec![0; kinds],
                    ok: vec![0; kinds],
                    errors: vec![0; kinds],
                    timeouts: vec![0; kinds],
                    shed: vec![0; kinds],
                    degraded: vec![0; kinds],
                })
                .collect(),
            interval: new_histogram(),
            interval_ok: 0,
            interval_errors: 0,
            interval_timeouts: 0,
            service: new_histogram(),
            start_lag: new_histogram(),
            error_samples: Vec::with_capacity(MAX_ERROR_SAMPLES),
            trace: trace.then(|| Vec::with_capacity(1 << 16)),
        }
    }
}

struct Queue {
    jobs: VecDeque<Job>,
    closed: bool,
}

/// State shared by the dispatcher, the workers and the sampler.
struct Shared {
    system: Arc<dyn LoadSystem>,
    kinds: Vec<String>,
    timeout_ns: u64,
    epoch: Instant,
    queue: Mutex<Queue>,
    ready: Condvar,
    rec: Mutex<Recorder>,
    scheduled: AtomicU64,
    phase_scheduled: Vec<AtomicU64>,
    /// Live monitoring's handles (`--metrics-addr`), observed after each operation.
    observer: Option<Arc<RunHandles>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicking worker leaves counters that are still meaningful.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }
}

/// What the generator needs to know.
pub struct GeneratorConfig {
    /// The phases on the time axis.
    pub windows: Vec<PhaseWindow>,
    /// Worker threads.
    pub workers: usize,
    /// Timeout of an operation, from its intended start.
    pub timeout: Duration,
    /// Seed of the operation choices.
    pub seed: u64,
    /// Keep every operation's times and outcome ([`GeneratorResult::trace`]): chaos runs
    /// analyse them at millisecond resolution.
    pub trace: bool,
    /// Live monitoring to report every operation and sample to (`--metrics-addr`).
    pub monitor: Option<Arc<Monitor>>,
}

/// How one operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpStatus {
    /// A full answer within the timeout.
    Ok,
    /// An answer the system marked degraded, within the timeout.
    Degraded,
    /// The operation returned an error.
    Error,
    /// It succeeded, later than the timeout.
    Late,
    /// Shed without running: it could not start within the timeout.
    Shed,
}

impl OpStatus {
    /// A full, timely answer.
    pub fn is_ok(self) -> bool {
        self == OpStatus::Ok
    }
}

/// One operation of a traced run (times in ns from the run's start).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpTrace {
    /// When it should have started.
    pub intended_ns: u64,
    /// When it finished (or was shed).
    pub end_ns: u64,
    /// Index of its kind in the mix.
    pub kind: u16,
    /// How it ended.
    pub status: OpStatus,
}

impl OpTrace {
    /// Latency from the intended start.
    pub fn latency_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.intended_ns)
    }
}

/// Something done to the system at a set time during a run (a fault injected, healed).
pub struct TimedAction {
    /// When, ns from the run's start.
    pub at_ns: u64,
    /// What it is, for the log (`inject locked_db`).
    pub name: String,
    /// The action; its `Ok` is a note for the report, its `Err` the reason it failed.
    pub run: Box<dyn FnOnce() -> Result<Option<String>, String> + Send>,
}

/// When a [`TimedAction`] ran and how it went.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActionLog {
    /// The action's name.
    pub name: String,
    /// When it was due, ns from the run's start.
    pub due_ns: u64,
    /// When it started.
    pub start_ns: u64,
    /// When it returned.
    pub end_ns: u64,
    /// Its note or its error.
    pub result: Result<Option<String>, String>,
}

/// Latency summary of a set of operations (ns, from intended start).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Operations recorded.
    pub count: u64,
    /// Median.
    pub p50_ns: u64,
    /// 95th percentile.
    pub p95_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Slowest.
    pub max_ns: u64,
    /// Mean.
    pub mean_ns: f64,
}

impl Latency {
    /// Summarises a histogram.
    pub fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        Latency {
            count: h.len(),
            p50_ns: h.value_at_quantile(0.50),
            p95_ns: h.value_at_quantile(0.95),
            p99_ns: h.value_at_quantile(0.99),
            p999_ns: h.value_at_quantile(0.999),
            max_ns: h.max(),
            mean_ns: h.mean(),
        }
    }
}

/// Results of one kind of operation within a phase.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KindResult {
    /// The kind's name (`recall`).
    pub kind: String,
    /// Operations scheduled.
    pub ops: u64,
    /// Operations that returned an error.
    pub errors: u64,
    /// Operations that finished (or were shed) later than the timeout.
    pub timeouts: u64,
    /// Operations answered degraded.
    #[serde(default)]
    pub degraded: u64,
    /// Latency from intended start.
    pub latency: Latency,
}

/// Results of one phase.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseResult {
    /// Phase name.
    pub name: String,
    /// Start, seconds from the run's start.
    pub start_s: f64,
    /// Length, seconds.
    pub duration_s: f64,
    /// Offered ops/s at the start and end (equal for a steady phase).
    pub offered_rate: (f64, f64),
    /// Operations scheduled.
    pub offered_ops: u64,
    /// Scheduled operations per second.
    pub offered_ops_per_s: f64,
    /// Operations that succeeded within the timeout, per second of the phase.
    pub achieved_ops_per_s: f64,
    /// Operations that returned an error.
    pub errors: u64,
    /// Operations later than the timeout (shed ones included).
    pub timeouts: u64,
    /// Of the timeouts, operations shed without running.
    pub shed: u64,
    /// Operations answered degraded.
    #[serde(default)]
    pub degraded: u64,
    /// `errors / ops`: operations the system failed.
    pub error_rate: f64,
    /// `(errors + timeouts) / ops`: operations a client saw fail.
    pub failure_rate: f64,
    /// Latency of every operation of the phase.
    pub latency: Latency,
    /// Per kind of operation.
    pub by_kind: Vec<KindResult>,
    /// Latency percentile spectrum `(percentile, ns)` from p0 to p99.999, for distribution
    /// charts.
    pub spectrum: Vec<(f64, u64)>,
}

/// `(percentile, value)` at percentiles `100 * (1 - 10^-x)` for x = 0, 0.1, ..., 5, then max.
fn spectrum(h: &Histogram<u64>) -> Vec<(f64, u64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<(f64, u64)> = (0..=50)
        .map(|i| {
            let q = 1.0 - 10f64.powf(-(i as f64) / 10.0);
            (q * 100.0, h.value_at_quantile(q))
        })
        .collect();
    out.push((100.0, h.max()));
    out
}

/// One second of the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tick {
    /// End of the second, seconds from the run's start.
    pub t_s: f64,
    /// Operations scheduled during it, per second.
    pub offered_ops_per_s: f64,
    /// Operations that succeeded within the timeout during it, per second.
    pub achieved_ops_per_s: f64,
    /// Errors during it.
    pub errors: u64,
    /// Timeouts during it.
    pub timeouts: u64,
    /// Operations waiting for a worker at its end.
    pub queued: u64,
    /// Latency of the operations that finished during it.
    pub latency: Latency,
    /// Resources at its end.
    pub resources: ResourceSample,
}

/// Everything one generator run measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GeneratorResult {
    /// Per phase.
    pub phases: Vec<PhaseResult>,
    /// All phases together (latency merged over every operation).
    pub total: PhaseResult,
    /// Once a second.
    pub timeline: Vec<Tick>,
    /// Service time (worker start to finish), all operations.
    pub service: Latency,
    /// How late operations started after their intended time (queueing plus the generator's
    /// own dispatch and wake-up lateness).
    pub start_lag: Latency,
    /// A few distinct error messages.
    pub error_samples: Vec<String>,
    /// Worker threads used.
    pub workers: usize,
    /// Growth of each of the target's counters over the run (the engine: `remembered`,
    /// `consolidated_events`, `facts_created`), as fields of the run in `load.json`.
    #[serde(flatten)]
    pub counts: BTreeMap<String, u64>,
    /// What was done per kind, for reconciliation.
    #[serde(skip)]
    pub done: Vec<KindDone>,
    /// Every operation, in completion order, when the run was traced.
    #[serde(skip)]
    pub trace: Vec<OpTrace>,
    /// The timed actions, in the order they were due.
    #[serde(skip)]
    pub actions: Vec<ActionLog>,
}

impl GeneratorResult {
    /// Adds this run to `done`.
    pub fn add_to(&self, done: &mut Done) {
        for k in &self.done {
            match done.kinds.iter_mut().find(|d| d.kind == k.kind) {
                Some(d) => {
                    d.ops += k.ops;
                    d.ok += k.ok;
                    d.errors += k.errors;
                    d.shed += k.shed;
                    d.degraded += k.degraded;
                }
                None => done.kinds.push(k.clone()),
            }
        }
        for (name, n) in &self.counts {
            *done.totals.entry(name.clone()).or_insert(0) += n;
        }
    }
}

/// A live view for progress output, once a second.
pub struct Progress<'a> {
    /// Seconds since the start.
    pub elapsed_s: f64,
    /// Scheduled length of the run, seconds.
    pub total_s: f64,
    /// The phase being scheduled.
    pub phase: &'a str,
    /// The last second.
    pub tick: &'a Tick,
}

/// Runs the schedule against `system` on a fresh tokio runtime and returns the measurements.
/// `progress` is called once a second from the sampling loop.
pub fn run(
    system: Arc<dyn LoadSystem>,
    cfg: &GeneratorConfig,
    progress: &mut dyn FnMut(&Progress<'_>),
) -> Result<GeneratorResult, Error> {
    run_with(system, cfg, Vec::new(), progress)
}

/// [`run`], doing `actions` at their times on a thread of their own (the same clock as the
/// operations' times); their logs are in [`GeneratorResult::actions`].
pub fn run_with(
    system: Arc<dyn LoadSystem>,
    cfg: &GeneratorConfig,
    mut actions: Vec<TimedAction>,
    progress: &mut dyn FnMut(&Progress<'_>),
) -> Result<GeneratorResult, Error> {
    let workers = cfg.workers.max(1);
    let kinds: Vec<String> = system
        .mix()
        .names()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let chooser = system.chooser(cfg.seed)?;
    let totals_before = system.totals();
    let epoch = Instant::now();
    let observer = cfg
        .monitor
        .as_ref()
        .map(|m| m.begin_run(&kinds, &cfg.windows, epoch));
    let shared = Arc::new(Shared {
        system,
        timeout_ns: cfg.timeout.as_nanos().min(u128::from(u64::MAX)) as u64,
        epoch,
        queue: Mutex::new(Queue {
            jobs: VecDeque::with_capacity(4_096),
            closed: false,
        }),
        ready: Condvar::new(),
        rec: Mutex::new(Recorder::new(cfg.windows.len(), kinds.len(), cfg.trace)),
        kinds,
        scheduled: AtomicU64::new(0),
        phase_scheduled: cfg.windows.iter().map(|_| AtomicU64::new(0)).collect(),
        observer,
    });
    let schedule = Schedule::new(cfg.windows.clone());
    let total_s = schedule.end_ns() as f64 / 1e9;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("perfcheck-load")
        .enable_time()
        .on_thread_park(resources::publish)
        .on_thread_stop(resources::retire)
        .build()
        .map_err(|e| Error::Io {
            context: "cannot start the tokio runtime of the load generator".into(),
            source: e,
        })?;

    actions.sort_by_key(|a| a.at_ns);
    let actor = {
        let epoch = shared.epoch;
        std::thread::Builder::new()
            .name("load-actions".into())
            .spawn(move || perform(epoch, actions))
            .map_err(|e| Error::Io {
                context: "cannot start the load generator's action thread".into(),
                source: e,
            })?
    };

    let mut handles = Vec::with_capacity(workers);
    let done = Arc::new(tokio::sync::Notify::new());
    let alive = Arc::new(AtomicU64::new(workers as u64));
    for i in 0..workers {
        let mine = Arc::clone(&shared);
        let (done, alive) = (Arc::clone(&done), Arc::clone(&alive));
        let h = std::thread::Builder::new()
            .name(format!("load-worker-{i}"))
            .spawn(move || {
                worker(&mine);
                resources::retire();
                if alive.fetch_sub(1, Ordering::AcqRel) == 1 {
                    done.notify_one();
                }
            })
            .map_err(|e| {
                // Let the workers already started see an empty, closed queue and end.
                lock(&shared.queue).closed = true;
                shared.ready.notify_all();
                Error::Io {
                    context: "cannot start a load worker thread".into(),
                    source: e,
                }
            })?;
        handles.push(h);
    }

    let seconds = (total_s.ceil() as usize) + 8;
    let timeline = rt.block_on(async {
        let dispatcher = tokio::spawn(dispatch(Arc::clone(&shared), schedule, chooser));
        let mut timeline: Vec<Tick> = Vec::with_capacity(seconds);
        let mut sampler = Sampler::new();
        let mut every = tokio::time::interval(Duration::from_secs(1));
        every.tick().await;
        let mut last_scheduled = 0u64;
        let mut last_at = Instant::now();
        loop {
            let finished = tokio::select! {
                _ = every.tick() => false,
                _ = done.notified() => true,
            };
            let now = Instant::now();
            let dt = now.duration_since(last_at).as_secs_f64().max(1e-9);
            last_at = now;
            let scheduled = shared.scheduled.load(Ordering::Acquire);
            let (latency, ok, errors, timeouts) = {
                let mut r = lock(&shared.rec);
                let l = Latency::of(&r.interval);
                r.interval.reset();
                let c = (r.interval_ok, r.interval_errors, r.interval_timeouts);
                r.interval_ok = 0;
                r.interval_errors = 0;
                r.interval_timeouts = 0;
                (l, c.0, c.1, c.2)
            };
            let queued = lock(&shared.queue).jobs.len() as u64;
            let resources = sampler.sample(shared.system.stored_bytes());
            if let Some(m) = &cfg.monitor {
                m.sampled(&resources, queued);
            }
            let elapsed_s = shared.epoch.elapsed().as_secs_f64();
            timeline.push(Tick {
                t_s: elapsed_s,
                offered_ops_per_s: (scheduled - last_scheduled) as f64 / dt,
                achieved_ops_per_s: ok as f64 / dt,
                errors,
                timeouts,
                queued,
                latency,
                resources,
            });
            last_scheduled = scheduled;
            let phase_name = cfg
                .windows
                .iter()
                .find(|w| (elapsed_s * 1e9) < w.end_ns as f64)
                .or(cfg.windows.last())
                .map_or("", |w| w.name.as_str());
            if let Some(tick) = timeline.last() {
                progress(&Progress {
                    elapsed_s,
                    total_s,
                    phase: phase_name,
                    tick,
                });
            }
            if finished {
                break;
            }
        }
        let _ = dispatcher.await;
        timeline
    });
    for h in handles {
        let _ = h.join();
    }
    // An action due after the last operation still runs (a heal must never be skipped).
    let action_logs = actor.join().unwrap_or_default();
    rt.shutdown_timeout(Duration::from_secs(1));
    resources::publish();
    if let Some(m) = &cfg.monitor {
        m.end_run();
    }

    let counts = counts_since(&totals_before, &shared.system.totals());
    let r = Arc::try_unwrap(shared)
        .map_err(|_| Error::Usage("load generator state still shared after the run".into()))?;
    let rec = r.rec.into_inner().unwrap_or_else(PoisonError::into_inner);
    let phase_ops: Vec<u64> = r
        .phase_scheduled
        .iter()
        .map(|a| a.load(Ordering::Acquire))
        .collect();
    let mut result = summarise(&cfg.windows, &r.kinds, rec, &phase_ops, timeline, workers);
    result.counts = counts;
    result.actions = action_logs;
    Ok(result)
}

/// Runs each action at its time (sorted by `at_ns`), on the calling thread.
fn perform(epoch: Instant, actions: Vec<TimedAction>) -> Vec<ActionLog> {
    tighten_timer_slack();
    let now = || epoch.elapsed().as_nanos() as u64;
    let mut logs = Vec::with_capacity(actions.len());
    for a in actions {
        let t = now();
        if a.at_ns > t {
            std::thread::sleep(Duration::from_nanos(a.at_ns - t));
        }
        let start_ns = now();
        // A panicking action must not lose the others (a heal after a failed inject).
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(a.run))
            .unwrap_or_else(|_| Err(format!("{} panicked", a.name)));
        logs.push(ActionLog {
            name: a.name,
            due_ns: a.at_ns,
            start_ns,
            end_ns: now(),
            result,
        });
    }
    logs
}

/// Each counter's growth from `before` to `after` (a counter new in `after` grew from 0).
fn counts_since(before: &[(&str, u64)], after: &[(&str, u64)]) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(name, a)| {
            let b = before
                .iter()
                .find(|(n, _)| n == name)
                .map_or(0, |(_, b)| *b);
            ((*name).to_owned(), a.saturating_sub(b))
        })
        .collect()
}

/// The dispatcher: every millisecond, queues every operation due within the lookahead.
async fn dispatch(shared: Arc<Shared>, mut schedule: Schedule, mut chooser: Box<dyn OpChooser>) {
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut batch: Vec<Job> = Vec::with_capacity(1_024);
    loop {
        tick.tick().await;
        let horizon = shared.now_ns() + LOOKAHEAD_NS;
        while let Some((phase, t)) = schedule.peek() {
            if t > horizon {
                break;
            }
            schedule.next_op();
            shared.phase_scheduled[phase].fetch_add(1, Ordering::Relaxed);
            let (kind, op) = chooser.next();
            batch.push(Job {
                phase,
                intended_ns: t,
                kind: kind.min(shared.kinds.len().saturating_sub(1)),
                op,
            });
        }
        let end = schedule.peek().is_none();
        let n = batch.len();
        if n > 0 || end {
            let mut q = lock(&shared.queue);
            q.jobs.extend(batch.drain(..));
            q.closed = end;
            drop(q);
            shared.scheduled.fetch_add(n as u64, Ordering::Release);
            if n == 1 && !end {
                shared.ready.notify_one();
            } else {
                shared.ready.notify_all();
            }
        }
        if end {
            return;
        }
    }
}

/// Asks the kernel for precise sleeps on this thread (the default 50 µs timer slack would
/// show up as start lateness).
fn tighten_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK only changes this thread's timer slack.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
    }
}

/// One worker: takes jobs in intended-time order until the queue is closed and empty.
fn worker(s: &Shared) {
    tighten_timer_slack();
    loop {
        let job = {
            let mut q = lock(&s.queue);
            loop {
                if let Some(j) = q.jobs.pop_front() {
                    break Some(j);
                }
                if q.closed {
                    break None;
                }
                q = s.ready.wait(q).unwrap_or_else(PoisonError::into_inner);
            }
        };
        let Some(job) = job else { return };
        let now = s.now_ns();
        if job.intended_ns > now {
            std::thread::sleep(Duration::from_nanos(job.intended_ns - now));
        }
        let start = s.now_ns();
        let kind = job.kind;
        let lag = start.saturating_sub(job.intended_ns);
        if lag > s.timeout_ns {
            // Too late to be useful: shed it, as a server with deadlines would.
            let mut r = lock(&s.rec);
            let p = &mut r.phases[job.phase];
            p.ops[kind] += 1;
            p.timeouts[kind] += 1;
            p.shed[kind] += 1;
            p.by_kind[kind].saturating_record(lag);
            if let Some(t) = r.trace.as_mut() {
                t.push(OpTrace {
                    intended_ns: job.intended_ns,
                    end_ns: start,
                    kind: kind as u16,
                    status: OpStatus::Shed,
                });
            }
            r.interval.saturating_record(lag);
            r.interval_timeouts += 1;
            r.start_lag.saturating_record(lag);
            drop(r);
            drop(job);
            if let Some(o) = &s.observer {
                o.observe(kind, lag, OpStatus::Shed);
            }
            resources::publish();
            continue;
        }
        let outcome = s.system.execute(job.op);
        let end = s.now_ns();
        let latency = end.saturating_sub(job.intended_ns);
        let timed_out = latency > s.timeout_ns;
        // The kind names the message, as the operation's own error rarely does.
        let outcome = outcome.map_err(|e| format!("{}: {e}", s.kinds[kind]));
        let mut r = lock(&s.rec);
        let p = &mut r.phases[job.phase];
        p.ops[kind] += 1;
        p.by_kind[kind].saturating_record(latency);
        let status = match &outcome {
            Ok(_) if timed_out => {
                p.ok[kind] += 1;
                p.timeouts[kind] += 1;
                r.interval_timeouts += 1;
                OpStatus::Late
            }
            Ok(o) => {
                p.ok[kind] += 1;
                let status = if *o == Outcome::Degraded {
                    p.degraded[kind] += 1;
                    OpStatus::Degraded
                } else {
                    OpStatus::Ok
                };
                r.interval_ok += 1;
                status
            }
            Err(_) => {
                p.errors[kind] += 1;
                r.interval_errors += 1;
                OpStatus::Error
            }
        };
        if let Some(t) = r.trace.as_mut() {
            t.push(OpTrace {
                intended_ns: job.intended_ns,
                end_ns: end,
                kind: kind as u16,
                status,
            });
        }
        if let Err(msg) = outcome {
            if r.error_samples.len() < MAX_ERROR_SAMPLES && !r.error_samples.contains(&msg) {
                r.error_samples.push(msg);
            }
        }
        r.interval.saturating_record(latency);
        r.service.saturating_record(end.saturating_sub(start));
        r.start_lag.saturating_record(lag);
        drop(r);
        if let Some(o) = &s.observer {
            o.observe(kind, latency, status);
        }
        resources::publish();
    }
}

fn phase_result(
    name: &str,
    window: (f64, f64, (f64, f64)),
    kinds: &[String],
    recs: &[&PhaseRec],
    offered_ops: u64,
) -> PhaseResult {
    let (start_s, duration_s, offered_rate) = window;
    let mut all = new_histogram();
    let mut by_kind = Vec::with_capacity(kinds.len());
    let (mut ops, mut errors, mut timeouts, mut shed) = (0u64, 0u64, 0u64, 0u64);
    let mut degraded = 0u64;
    for (k, kind) in kinds.iter().enumerate() {
        let mut h = new_histogram();
        let (mut o, mut e, mut t, mut d) = (0, 0, 0, 0);
        for p in recs {
            d += p.degraded[k];
            // Same bounds everywhere, so adding cannot fail.
            let _ = h.add(&p.by_kind[k]);
            o += p.ops[k];
            e += p.errors[k];
            t += p.timeouts[k];
            shed += p.shed[k];
        }
        let _ = all.add(&h);
        ops += o;
        errors += e;
        timeouts += t;
        degraded += d;
        by_kind.push(KindResult {
            kind: kind.clone(),
            ops: o,
            errors: e,
            timeouts: t,
            degraded: d,
            latency: Latency::of(&h),
        });
    }
    let ratio = |a: u64| if ops == 0 { 0.0 } else { a as f64 / ops as f64 };
    let good = ops.saturating_sub(errors + timeouts);
    PhaseResult {
        name: name.into(),
        start_s,
        duration_s,
        offered_rate,
        offered_ops,
        offered_ops_per_s: offered_ops as f64 / duration_s.max(1e-9),
        achieved_ops_per_s: good as f64 / duration_s.max(1e-9),
        errors,
        timeouts,
        shed,
        degraded,
        error_rate: ratio(errors),
        failure_rate: ratio(errors + timeouts),
        latency: Latency::of(&all),
        by_kind,
        spectrum: spectrum(&all),
    }
}

fn summarise(
    windows: &[PhaseWindow],
    kinds: &[String],
    rec: Recorder,
    phase_ops: &[u64],
    timeline: Vec<Tick>,
    workers: usize,
) -> GeneratorResult {
    let phases: Vec<PhaseResult> = windows
        .iter()
        .zip(&rec.phases)
        .zip(phase_ops)
        .map(|((w, p), &n)| {
            phase_result(
                &w.name,
                (
                    w.start_ns as f64 / 1e9,
                    (w.end_ns - w.start_ns) as f64 / 1e9,
                    (w.from_rate, w.to_rate),
                ),
                kinds,
                &[p],
                n,
            )
        })
        .collect();
    let end = windows.last().map_or(0, |w| w.end_ns) as f64 / 1e9;
    let all: Vec<&PhaseRec> = rec.phases.iter().collect();
    let done = kinds
        .iter()
        .enumerate()
        .map(|(k, kind)| KindDone {
            kind: kind.clone(),
            ops: all.iter().map(|p| p.ops[k]).sum(),
            ok: all.iter().map(|p| p.ok[k]).sum(),
            errors: all.iter().map(|p| p.errors[k]).sum(),
            shed: all.iter().map(|p| p.shed[k]).sum(),
            degraded: all.iter().map(|p| p.degraded[k]).sum(),
        })
        .collect();
    let total = phase_result(
        "total",
        (0.0, end, (0.0, 0.0)),
        kinds,
        &all,
        phase_ops.iter().sum(),
    );
    GeneratorResult {
        phases,
        total,
        timeline,
        service: Latency::of(&rec.service),
        start_lag: Latency::of(&rec.start_lag),
        error_samples: rec.error_samples,
        workers,
        counts: BTreeMap::new(),
        done,
        trace: rec.trace.unwrap_or_default(),
        actions: Vec::new(),
    }
}
