//! The `LoadTarget` trait: what a crate implements so `cargo perfcheck load` can drive its
//! system with concurrent operations at a scheduled rate, then check that nothing was lost.
//!
//! The tool owns the schedule, the worker threads, the histograms, the resources and the
//! report; the target owns the system: it sets it up, chooses each operation's input, executes
//! operations (from many threads at once, on one shared system) and reconciles its counts
//! afterwards. [`AnyLoadTarget`] and the traits below it are the same behind trait objects, so
//! `src/load/` drives any crate's target through one interface.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use crate::config::mix::Mix;
use crate::config::{Profile, Table};
use crate::error::Error;
use crate::harness::fault::{ActiveFault, FaultInfo, Outcome, WriteCheck};
use crate::harness::workload::{BoxError, SetupContext};
use crate::monitor::{Gauge, TargetHealth};

/// A system measured by `cargo perfcheck load`.
///
/// perfcheck calls [`setup`](Self::setup) once (untimed: build, load, reach a steady state),
/// then for each generator run (one for the phases, one per `--find-max` step) makes a fresh
/// [`chooser`](Self::chooser). The generator thread draws each operation's kind from
/// [`mix`](Self::mix) and lets [`choose`](Self::choose) pick its input, both from one random
/// stream seeded by `load.seed`, so a run's operations repeat exactly. Worker threads call
/// [`execute`](Self::execute) concurrently on the shared system; after the last run
/// [`reconcile`](Self::reconcile) checks the system's counts against what was done.
///
/// The settings are the profile's sections perfcheck does not own, as for
/// [`Workload::Config`](crate::harness::Workload::Config), plus the keys of `[load]` that are
/// not perfcheck's, under `load`.
pub trait LoadTarget: Send + Sync + 'static {
    /// The target's typed settings. Unknown keys should be rejected, so a typo in a profile is
    /// an error that names the file.
    type Config: DeserializeOwned + Send + Sync + 'static;
    /// The system under test, shared by every worker thread.
    type System: Send + Sync + 'static;
    /// Per generator run: the state of the input choices (a cursor into the inputs).
    type Chooser: Send + 'static;
    /// One operation's input, chosen before the operation starts.
    type Op: Send + 'static;

    /// The name used in messages (`engine`).
    fn name(&self) -> &str;

    /// Checks settings that parse but cannot run; the message names the key.
    fn validate(&self, _config: &Self::Config) -> Result<(), String> {
        Ok(())
    }

    /// The kinds of operation, in report order, with their relative weights. `--mix` replaces
    /// the profile's `[mix]` table with `{kind = weight}` over these names.
    fn mix(&self, config: &Self::Config) -> Mix;

    /// A line for the progress log before setup (`loading 100,000 events`).
    fn setup_note(&self, _config: &Self::Config) -> Option<String> {
        None
    }

    /// Untimed: builds the system and brings it to the state measuring starts from.
    fn setup(
        &self,
        config: &Self::Config,
        ctx: &SetupContext<'_>,
    ) -> Result<Self::System, BoxError>;

    /// Counts reported before the run as `<name>_at_start` in `load.json` and as `<n> <name>
    /// at start` in the report (`("events", n)`).
    fn start_counts(&self, _system: &Self::System) -> Result<Vec<(&'static str, u64)>, BoxError> {
        Ok(Vec::new())
    }

    /// Untimed: a fresh chooser for one generator run.
    fn chooser(
        &self,
        config: &Self::Config,
        system: &Self::System,
    ) -> Result<Self::Chooser, BoxError>;

    /// Untimed, on the generator thread: the input of the next operation, of `kind` (one of
    /// [`mix`](Self::mix)'s names). Random choices must come from `rng`, so runs repeat.
    fn choose(&self, chooser: &mut Self::Chooser, kind: &str, rng: &mut dyn RngCore) -> Self::Op;

    /// The measured operation, called concurrently from the worker threads: `Ok(Outcome::Ok)`
    /// for a full answer, `Ok(Outcome::Degraded)` for one the system marked degraded (a
    /// fallback served it), `Err` for a failure.
    fn execute(&self, system: &Self::System, op: Self::Op) -> Result<Outcome, BoxError>;

    /// Cumulative counters of the system (`remembered`, `consolidated_events`), read before
    /// and after each generator run; the differences go into the run's report and, summed,
    /// into [`Done::totals`].
    fn totals(&self, _system: &Self::System) -> Vec<(&'static str, u64)> {
        Vec::new()
    }

    /// Heap bytes holding stored data (a vector index), which grows with the data by design:
    /// left out of the retained heap whose slope is the leak rate.
    fn stored_bytes(&self, _system: &Self::System) -> u64 {
        0
    }

    /// After the last run (untimed): drains pending work and checks that the system's counts
    /// add up with what was done.
    fn reconcile(
        &self,
        config: &Self::Config,
        system: &Self::System,
        done: &Done,
    ) -> Result<Reconciliation, BoxError>;

    /// The faults `cargo perfcheck chaos` can inject (none by default: chaos then says how to
    /// add some).
    fn faults(&self, _config: &Self::Config) -> Vec<FaultInfo> {
        Vec::new()
    }

    /// Injects the fault named `fault` (one of [`faults`](Self::faults)) into the running
    /// system, while the load goes on; the returned value keeps it in effect until healed.
    fn inject(
        &self,
        _config: &Self::Config,
        _system: &Self::System,
        fault: &str,
    ) -> Result<Box<dyn ActiveFault>, BoxError> {
        Err(format!("this load target has no fault named `{fault}`").into())
    }

    /// Checks every write acknowledged since setup: still there, exactly once (`None`: the
    /// target cannot tell, and chaos reports no data check).
    fn verify_writes(&self, _system: &Self::System) -> Result<Option<WriteCheck>, BoxError> {
        Ok(None)
    }

    /// Values `--metrics-addr` exposes as `perfcheck_target_<name>` (cache hits, backlog,
    /// breaker state, pool usage), read at every scrape from the scraping thread while the
    /// load runs: keep it cheap, and leave out a value that cannot be read now.
    fn gauges(&self, _system: &Self::System) -> Vec<Gauge> {
        Vec::new()
    }

    /// The system's own health for `/health` (`None`: the target has no view; the tool then
    /// judges from the operations alone). Called at every `/health` request; an `Err` counts
    /// as failing.
    fn health(&self, _system: &Self::System) -> Result<Option<TargetHealth>, BoxError> {
        Ok(None)
    }
}

/// What the generator did with one kind of operation, over every run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KindDone {
    /// The kind's name.
    pub kind: String,
    /// Operations scheduled.
    pub ops: u64,
    /// Operations that returned `Ok` (late ones included: they still ran).
    pub ok: u64,
    /// Operations that returned an error.
    pub errors: u64,
    /// Operations shed without running.
    pub shed: u64,
    /// Of the `ok` operations, those the system answered degraded.
    pub degraded: u64,
}

/// What the load runs did, handed to [`LoadTarget::reconcile`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Done {
    /// Per kind, in the mix's order.
    pub kinds: Vec<KindDone>,
    /// Per counter of [`LoadTarget::totals`]: its growth over the runs.
    pub totals: BTreeMap<String, u64>,
}

impl Done {
    /// Operations of `kind` that returned `Ok`.
    pub fn ok(&self, kind: &str) -> u64 {
        self.kinds
            .iter()
            .find(|k| k.kind == kind)
            .map_or(0, |k| k.ok)
    }

    /// The growth of counter `name` over the runs (0 when the target has no such counter).
    pub fn total(&self, name: &str) -> u64 {
        self.totals.get(name).copied().unwrap_or(0)
    }
}

/// A target's counts after the run, reconciled (`load.json`'s `reconciliation`: the counts as
/// fields, then `problems`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Reconciliation {
    /// Named counts (`events_before`, `remembered`, ...).
    #[serde(flatten)]
    pub counts: BTreeMap<String, u64>,
    /// One line for the report (`120 events = 100 + 20 remembered`); empty: the counts listed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub summary: String,
    /// Each problem found, in words; empty when everything reconciles.
    #[serde(default)]
    pub problems: Vec<String>,
}

impl Reconciliation {
    /// Records a count.
    pub fn count(&mut self, name: &str, value: u64) -> &mut Self {
        self.counts.insert(name.to_owned(), value);
        self
    }

    /// Records `problem` unless `ok`.
    pub fn check(&mut self, ok: bool, problem: impl FnOnce() -> String) -> &mut Self {
        if !ok {
            self.problems.push(problem());
        }
        self
    }

    /// Whether every count reconciles.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// A registered load target, its settings not yet parsed.
pub trait AnyLoadTarget: Send + Sync {
    /// Its name.
    fn name(&self) -> &str;
    /// Parses and checks its settings from `profile`; errors name `origin`.
    fn configure(&self, profile: &Profile, origin: &Path)
        -> Result<Arc<dyn ConfiguredLoad>, Error>;
}

/// A load target with its settings: ready to set up.
pub trait ConfiguredLoad: Send + Sync {
    /// The target's name.
    fn name(&self) -> &str;
    /// The operation mix in effect.
    fn mix(&self) -> &Mix;
    /// The progress line before setup, if the target has one.
    fn setup_note(&self) -> Option<String>;
    /// The faults the target can inject.
    fn faults(&self) -> Vec<FaultInfo>;
    /// Untimed setup of the system.
    fn setup(&self, ctx: &SetupContext<'_>) -> Result<Arc<dyn LoadSystem>, Error>;
}

/// A set-up system, shared by the generator's threads.
pub trait LoadSystem: Send + Sync {
    /// The target's name.
    fn name(&self) -> &str;
    /// The operation mix in effect.
    fn mix(&self) -> &Mix;
    /// Counts before the run (`events`).
    fn start_counts(&self) -> Result<Vec<(&'static str, u64)>, Error>;
    /// A chooser for one generator run, seeded with `seed`.
    fn chooser(&self, seed: u64) -> Result<Box<dyn OpChooser>, Error>;
    /// Runs one operation (from any thread); the error is the target's message.
    fn execute(&self, op: AnyOp) -> Result<Outcome, String>;
    /// Cumulative counters.
    fn totals(&self) -> Vec<(&'static str, u64)>;
    /// Heap bytes holding stored data.
    fn stored_bytes(&self) -> u64;
    /// Drains and checks the counts after the runs.
    fn reconcile(&self, done: &Done) -> Result<Reconciliation, Error>;
    /// Injects the named fault while the load runs.
    fn inject(&self, fault: &str) -> Result<Box<dyn ActiveFault>, Error>;
    /// Checks the acknowledged writes.
    fn verify_writes(&self) -> Result<Option<WriteCheck>, Error>;
    /// The target's values for live monitoring.
    fn gauges(&self) -> Vec<Gauge>;
    /// The target's own health; the error is the target's message.
    fn health(&self) -> Result<Option<TargetHealth>, String>;
}

/// Chooses one generator run's operations.
pub trait OpChooser: Send {
    /// The next operation and the index of its kind in the mix.
    fn next(&mut self) -> (usize, AnyOp);
}

/// An operation with its input chosen, type erased.
pub struct AnyOp(Box<dyn Any + Send>);

impl fmt::Debug for AnyOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AnyOp")
    }
}

/// The profile's parts a load target's settings are read from: those of a workload
/// ([`workload_table`](crate::harness::erased::workload_table)) and the keys of `[load]` that
/// are not perfcheck's, under `load`.
pub fn load_table(profile: &Profile) -> Table {
    let mut table = crate::harness::erased::workload_table(profile);
    if let Some(rest) = profile.load.as_ref().map(|l| &l.rest) {
        if !rest.is_empty() {
            table.insert("load".into(), rest.clone().into());
        }
    }
    table
}

/// Wraps a typed load target.
pub(crate) struct Erased<L: LoadTarget>(pub(crate) Arc<L>);

struct WithConfig<L: LoadTarget> {
    target: Arc<L>,
    config: Arc<L::Config>,
    mix: Mix,
}

struct Running<L: LoadTarget> {
    target: Arc<L>,
    config: Arc<L::Config>,
    mix: Mix,
    system: L::System,
}

struct Chooser<L: LoadTarget> {
    target: Arc<L>,
    state: L::Chooser,
    rng: ChaCha8Rng,
    /// Running sums of the weights: kind `i` is drawn for `x < cumulative[i]`.
    cumulative: Vec<u64>,
    names: Vec<String>,
}

fn failed(target: &str, what: &str, e: impl fmt::Display) -> Error {
    Error::Workload(format!("load target {target}: {what}: {e}"))
}

impl<L: LoadTarget> AnyLoadTarget for Erased<L> {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn configure(
        &self,
        profile: &Profile,
        origin: &Path,
    ) -> Result<Arc<dyn ConfiguredLoad>, Error> {
        let bad = |message: String| Error::Config {
            path: origin.to_path_buf(),
            message,
        };
        let what = format!("load target {}", self.0.name());
        let config: L::Config =
            crate::harness::erased::parse_settings(load_table(profile), origin, &what)?;
        self.0.validate(&config).map_err(bad)?;
        let mix = self.0.mix(&config);
        mix.validate()
            .map_err(|e| bad(format!("load target {}: {e}", self.0.name())))?;
        Ok(Arc::new(WithConfig {
            target: Arc::clone(&self.0),
            config: Arc::new(config),
            mix,
        }))
    }
}

impl<L: LoadTarget> ConfiguredLoad for WithConfig<L> {
    fn name(&self) -> &str {
        self.target.name()
    }

    fn mix(&self) -> &Mix {
        &self.mix
    }

    fn setup_note(&self) -> Option<String> {
        self.target.setup_note(&self.config)
    }

    fn faults(&self) -> Vec<FaultInfo> {
        self.target.faults(&self.config)
    }

    fn setup(&self, ctx: &SetupContext<'_>) -> Result<Arc<dyn LoadSystem>, Error> {
        let system = self
            .target
            .setup(&self.config, ctx)
            .map_err(|e| failed(self.target.name(), "setup failed", e))?;
        Ok(Arc::new(Running {
            target: Arc::clone(&self.target),
            config: Arc::clone(&self.config),
            mix: self.mix.clone(),
            system,
        }))
    }
}

impl<L: LoadTarget> LoadSystem for Running<L> {
    fn name(&self) -> &str {
        self.target.name()
    }

    fn mix(&self) -> &Mix {
        &self.mix
    }

    fn start_counts(&self) -> Result<Vec<(&'static str, u64)>, Error> {
        self.target
            .start_counts(&self.system)
            .map_err(|e| failed(self.target.name(), "reading the counts at start failed", e))
    }

    fn chooser(&self, seed: u64) -> Result<Box<dyn OpChooser>, Error> {
        let state = self
            .target
            .chooser(&self.config, &self.system)
            .map_err(|e| failed(self.target.name(), "making a chooser failed", e))?;
        let cumulative = self
            .mix
            .kinds()
            .iter()
            .scan(0u64, |sum, (_, w)| {
                *sum += u64::from(*w);
                Some(*sum)
            })
            .collect();
        Ok(Box::new(Chooser {
            target: Arc::clone(&self.target),
            state,
            rng: ChaCha8Rng::seed_from_u64(seed),
            cumulative,
            names: self.mix.names().into_iter().map(str::to_owned).collect(),
        }))
    }

    #[inline]
    fn execute(&self, op: AnyOp) -> Result<Outcome, String> {
        let op =
            op.0.downcast::<L::Op>()
                .map_err(|_| "an operation of another load target".to_owned())?;
        self.target
            .execute(&self.system, *op)
            .map_err(|e| e.to_string())
    }

    fn totals(&self) -> Vec<(&'static str, u64)> {
        self.target.totals(&self.system)
    }

    fn stored_bytes(&self) -> u64 {
        self.target.stored_bytes(&self.system)
    }

    fn reconcile(&self, done: &Done) -> Result<Reconciliation, Error> {
        self.target
            .reconcile(&self.config, &self.system, done)
            .map_err(|e| failed(self.target.name(), "reconciling counts failed", e))
    }

    fn inject(&self, fault: &str) -> Result<Box<dyn ActiveFault>, Error> {
        self.target
            .inject(&self.config, &self.system, fault)
            .map_err(|e| {
                failed(
                    self.target.name(),
                    &format!("injecting `{fault}` failed"),
                    e,
                )
            })
    }

    fn verify_writes(&self) -> Result<Option<WriteCheck>, Error> {
        self.target.verify_writes(&self.system).map_err(|e| {
            failed(
                self.target.name(),
                "checking the acknowledged writes failed",
                e,
            )
        })
    }

    fn gauges(&self) -> Vec<Gauge> {
        self.target.gauges(&self.system)
    }

    fn health(&self) -> Result<Option<TargetHealth>, String> {
        self.target.health(&self.system).map_err(|e| e.to_string())
    }
}

impl<L: LoadTarget> OpChooser for Chooser<L> {
    fn next(&mut self) -> (usize, AnyOp) {
        let total = self.cumulative.last().copied().unwrap_or(0).max(1);
        let x = self.rng.random_range(0..total);
        let last = self.cumulative.len().saturating_sub(1);
        let kind = self.cumulative.iter().position(|&c| x < c).unwrap_or(last);
        let name = self.names.get(kind).map_or("", String::as_str);
        let op = self.target.choose(&mut self.state, name, &mut self.rng);
        (kind, AnyOp(Box::new(op)))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    /// A counter system: `add` ops add their input, `fail` ops fail; its faults make adds
    /// fail (`outage`) or answer degraded (`fallback`) until healed.
    pub(crate) struct Counter;

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct CounterConfig {
        #[serde(default)]
        mix: Option<Mix>,
    }

    /// The counter's state.
    #[derive(Default)]
    pub(crate) struct CounterSystem {
        sum: AtomicU64,
        outage: Arc<AtomicBool>,
        fallback: Arc<AtomicBool>,
    }

    struct Switch(Arc<AtomicBool>);

    impl ActiveFault for Switch {
        fn heal(self: Box<Self>) -> Result<Option<String>, BoxError> {
            self.0.store(false, Ordering::Release);
            Ok(Some("switched off".into()))
        }
    }

    impl LoadTarget for Counter {
        type Config = CounterConfig;
        type System = CounterSystem;
        type Chooser = u64;
        type Op = u64;

        fn name(&self) -> &str {
            "counter"
        }

        fn mix(&self, config: &CounterConfig) -> Mix {
            config
                .mix
                .clone()
                .unwrap_or_else(|| Mix::new([("add", 3), ("fail", 1)]))
        }

        fn setup(
            &self,
            _: &CounterConfig,
            _: &SetupContext<'_>,
        ) -> Result<CounterSystem, BoxError> {
            Ok(CounterSystem::default())
        }

        fn chooser(&self, _: &CounterConfig, _: &CounterSystem) -> Result<u64, BoxError> {
            Ok(0)
        }

        fn choose(&self, next: &mut u64, kind: &str, rng: &mut dyn RngCore) -> u64 {
            *next += 1;
            match kind {
                "add" => rng.random_range(1..10),
                _ => 0,
            }
        }

        fn execute(&self, s: &CounterSystem, op: u64) -> Result<Outcome, BoxError> {
            if op == 0 {
                return Err("asked to fail".into());
            }
            if s.outage.load(Ordering::Acquire) {
                return Err("outage".into());
            }
            s.sum.fetch_add(op, Ordering::Relaxed);
            Ok(if s.fallback.load(Ordering::Acquire) {
                Outcome::Degraded
            } else {
                Outcome::Ok
            })
        }

        fn totals(&self, s: &CounterSystem) -> Vec<(&'static str, u64)> {
            vec![("sum", s.sum.load(Ordering::Relaxed))]
        }

        fn reconcile(
            &self,
            _: &CounterConfig,
            s: &CounterSystem,
            done: &Done,
        ) -> Result<Reconciliation, BoxError> {
            let mut r = Reconciliation::default();
            let sum = s.sum.load(Ordering::Relaxed);
            r.count("sum", sum).count("added", done.ok("add"));
            r.check(sum == done.total("sum"), || format!("sum {sum}"));
            // Every add adds at least 1.
            r.check(sum >= done.ok("add"), || "fewer than one per add".into());
            r.check(done.ok("fail") == 0, || "a failing op succeeded".into());
            Ok(r)
        }

        fn faults(&self, _: &CounterConfig) -> Vec<FaultInfo> {
            vec![
                FaultInfo::new("outage", "every add fails"),
                FaultInfo::new("fallback", "every add answers degraded"),
            ]
        }

        fn inject(
            &self,
            _: &CounterConfig,
            s: &CounterSystem,
            fault: &str,
        ) -> Result<Box<dyn ActiveFault>, BoxError> {
            let flag = match fault {
                "outage" => &s.outage,
                "fallback" => &s.fallback,
                _ => return Err(format!("no fault `{fault}`").into()),
            };
            flag.store(true, Ordering::Release);
            Ok(Box::new(Switch(Arc::clone(flag))))
        }

        fn gauges(&self, s: &CounterSystem) -> Vec<Gauge> {
            let on = |f: &AtomicBool| f64::from(u8::from(f.load(Ordering::Acquire)));
            vec![
                Gauge::new(
                    "sum",
                    "The sum so far",
                    s.sum.load(Ordering::Relaxed) as f64,
                ),
                Gauge::new("fault on", "Whether a fault is on", on(&s.outage))
                    .label("fault", "outage"),
                Gauge::new("fault on", "Whether a fault is on", on(&s.fallback))
                    .label("fault", "fallback"),
            ]
        }

        fn health(&self, s: &CounterSystem) -> Result<Option<TargetHealth>, BoxError> {
            use crate::monitor::HealthStatus;
            let status = if s.outage.load(Ordering::Acquire) {
                HealthStatus::Failing
            } else if s.fallback.load(Ordering::Acquire) {
                HealthStatus::Degraded
            } else {
                HealthStatus::Ok
            };
            let sum = s.sum.load(Ordering::Relaxed);
            Ok(Some(TargetHealth::new(
                status,
                serde_json::json!({ "sum": sum }),
            )))
        }
    }

    /// A counter system with the default mix (its setup writes no file).
    pub(crate) fn counter_system() -> Arc<dyn LoadSystem> {
        let dir = std::env::temp_dir();
        let ctx = SetupContext {
            dir: &dir,
            mode: crate::harness::PassMode::Timing,
        };
        configured("").unwrap().setup(&ctx).unwrap()
    }

    fn configured(profile: &str) -> Result<Arc<dyn ConfiguredLoad>, Error> {
        let p = Profile::parse(profile, "t", Path::new("t.toml"))?;
        Erased(Arc::new(Counter)).configure(&p, Path::new("t.toml"))
    }

    #[test]
    fn the_chooser_follows_the_seed_and_the_mix() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = SetupContext {
            dir: dir.path(),
            mode: crate::harness::PassMode::Timing,
        };
        let c = configured("[mix]\nadd = 1\nfail = 0\n").unwrap();
        assert_eq!(c.mix().to_string(), "add=1 fail=0");
        let system = c.setup(&ctx).unwrap();
        let kinds = |seed| {
            let mut ch = system.chooser(seed).unwrap();
            (0..50).map(|_| ch.next().0).collect::<Vec<_>>()
        };
        assert!(
            kinds(7).iter().all(|&k| k == 0),
            "a weight of 0 is never drawn"
        );
        let c = configured("").unwrap();
        let system = c.setup(&ctx).unwrap();
        let draw = |seed| {
            let mut ch = system.chooser(seed).unwrap();
            (0..200)
                .map(|_| {
                    let (k, op) = ch.next();
                    (k, system.execute(op).is_ok())
                })
                .collect::<Vec<_>>()
        };
        let a = draw(1);
        assert_eq!(a, draw(1), "the same seed chooses the same operations");
        assert_ne!(a, draw(2));
        assert!(a.iter().all(|&(k, ok)| ok == (k == 0)));
        assert!(a.iter().any(|&(k, _)| k == 1));
    }

    #[test]
    fn settings_errors_name_the_file_and_the_target() {
        let e = configured("[mix]\nadd = 0\n").err().unwrap().to_string();
        assert!(e.contains("t.toml") && e.contains("add up to 0"), "{e}");
        let e = configured("[nope]\nx = 1\n").err().unwrap().to_string();
        assert!(
            e.contains("load target counter") && e.contains("nope"),
            "{e}"
        );
    }

    #[test]
    fn the_load_section_s_extra_keys_reach_the_target_under_load() {
        let p = Profile::parse("[load]\nrate = 5\nbatch = 3\n", "t", Path::new("t.toml")).unwrap();
        let t = load_table(&p);
        assert_eq!(t["load"]["batch"], 3);
        assert!(
            t["load"].get("rate").is_none(),
            "perfcheck's own keys stay its own"
        );
    }

    #[test]
    fn mix_json_keeps_the_kind_order() {
        let m = Mix::new([("recall", 80), ("remember", 15), ("consolidation", 5)]);
        let j = serde_json::to_string(&m).unwrap();
        assert_eq!(j, r#"{"recall":80,"remember":15,"consolidation":5}"#);
        let back: Mix = serde_json::from_str(&j).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.weight("remember"), 15);
        assert_eq!(back.weight("nope"), 0);
    }
}
