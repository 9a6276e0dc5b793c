//! Chaos engineering: `cargo perfcheck chaos` runs the load target under steady open-loop
//! load and, one scenario at a time, injects a real fault the target offers
//! ([`LoadTarget::faults`](crate::harness::LoadTarget::faults)), heals it, and measures what
//! the clients saw: operations answered, degraded and failed during the fault, the time to
//! detect it, the time to recover, the tail latency during and after, and whether every
//! acknowledged write survived exactly once.
//!
//! Each scenario is one traced generator run (a clean period, the fault, the recovery period)
//! on the same system, with the injection and the healing as timed actions on the
//! generator's clock, so every operation's intended start, end and outcome line up with
//! them to the microsecond ([`analysis`]). The figures become metrics of a run record
//! (`chaos/<scenario>/recovery_ms`, `.../success_rate`, `.../lost_writes`, ...), which the store
//! and `check` treat like any other; a lost or duplicated write fails every check (built-in
//! ceiling 0). A chart per scenario shows latency and outcomes over time with the fault
//! shaded ([`chart`]).

pub mod analysis;
pub mod chart;
pub mod report;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::chaos::ChaosSettings;
use crate::config::Profile;
use crate::error::Error;
use crate::git::GitInfo;
use crate::harness::fault::{ActiveFault, FaultInfo, WriteCheck};
use crate::harness::load_target::{AnyLoadTarget, Done, LoadSystem, Reconciliation};
use crate::load::generator::{self, ActionLog, GeneratorConfig, Progress, TimedAction};
use crate::load::schedule;
use crate::load::{LoadSettings, PhaseSpec};
use crate::record::RunRecord;

pub use analysis::Figures;

/// Version of `chaos.json`.
pub const CHAOS_SCHEMA_VERSION: u32 = 1;

/// What to run.
pub struct ChaosRequest {
    /// The system (the harness's load target).
    pub target: Arc<dyn AnyLoadTarget>,
    /// The profile, `[load]` and `[chaos]` with the command line's overrides applied.
    pub profile: Profile,
    /// Scenarios to run, in order; empty: the profile's `chaos.scenarios`, else every fault.
    pub scenarios: Vec<String>,
    /// Folder that receives `<run-id>/`.
    pub reports_dir: PathBuf,
    /// Directory whose git repository identifies the commit.
    pub repo_dir: PathBuf,
    /// Live monitoring to report to (`--metrics-addr`).
    pub monitor: Option<Arc<crate::monitor::Monitor>>,
}

/// Whether an action worked, as `chaos.json` has it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActionResult {
    /// Seconds from the scenario's start when it started.
    pub at_s: f64,
    /// How long it took, ms.
    pub took_ms: f64,
    /// Its note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ActionResult {
    fn of(log: &ActionLog) -> ActionResult {
        let (note, error) = match &log.result {
            Ok(n) => (n.clone(), None),
            Err(e) => (None, Some(e.clone())),
        };
        ActionResult {
            at_s: log.start_ns as f64 / 1e9,
            took_ms: log.end_ns.saturating_sub(log.start_ns) as f64 / 1e6,
            note,
            error,
        }
    }
}

/// One scenario's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScenarioResult {
    /// The fault's name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// The injection.
    pub inject: ActionResult,
    /// The healing.
    pub heal: ActionResult,
    /// What the trace shows.
    pub figures: Figures,
    /// Writes acknowledged during this scenario, and lost or duplicated since the previous
    /// check (`None`: the target has no write check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writes: Option<WriteCheck>,
    /// A few distinct error messages the operations returned.
    pub error_samples: Vec<String>,
    /// Why this scenario failed, in words; empty when it passed.
    pub problems: Vec<String>,
}

impl ScenarioResult {
    /// Whether the scenario passed: injected and healed, recovered, nothing lost.
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }
}

/// `chaos.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChaosReport {
    /// [`CHAOS_SCHEMA_VERSION`].
    pub schema: u32,
    /// The run's id.
    pub run_id: String,
    /// Profile name.
    pub profile: String,
    /// The timeline and SLO.
    pub chaos: ChaosSettings,
    /// Offered ops/s.
    pub rate: f64,
    /// Worker threads.
    pub workers: usize,
    /// Per scenario, in the order run.
    pub scenarios: Vec<ScenarioResult>,
    /// The target's reconciliation after the last scenario.
    pub reconciliation: Reconciliation,
}

impl ChaosReport {
    /// Whether every scenario passed and the counts reconcile.
    pub fn passed(&self) -> bool {
        self.scenarios.iter().all(ScenarioResult::passed) && self.reconciliation.ok()
    }
}

/// What [`execute`] produced.
pub struct ChaosOutcome {
    /// `chaos.json`'s content.
    pub report: ChaosReport,
    /// The run record written.
    pub record: RunRecord,
    /// The run's folder.
    pub dir: PathBuf,
    /// Charts written.
    pub charts: Vec<PathBuf>,
}

/// The chaos settings a profile asks for (defaults when it has no `[chaos]` section).
pub fn settings_of(profile: &Profile) -> ChaosSettings {
    profile.chaos.clone().unwrap_or_default()
}

/// The scenarios to run: `requested`, else the profile's, else every fault the target
/// offers; an unknown name is a usage error listing the known ones.
pub fn select(
    faults: &[FaultInfo],
    requested: &[String],
    settings: &ChaosSettings,
    target: &str,
) -> Result<Vec<FaultInfo>, Error> {
    if let Some(bad) = faults
        .iter()
        .find(|f| crate::config::chaos::check_scenario_name(&f.name).is_err())
    {
        return Err(Error::Workload(format!(
            "load target {target}: fault name `{}` is not usable as a metric stage: expected \
             lowercase letters, digits and `_`, starting with a letter",
            bad.name
        )));
    }
    if faults.is_empty() {
        return Err(Error::Usage(format!(
            "load target {target} offers no faults: `chaos` injects the faults a \
             `perfcheck::harness::LoadTarget` lists in `faults()` and creates in `inject()`"
        )));
    }
    let names: Vec<String> = if !requested.is_empty() {
        requested.to_vec()
    } else if !settings.scenarios.is_empty() {
        settings.scenarios.clone()
    } else {
        faults.iter().map(|f| f.name.clone()).collect()
    };
    let known = || {
        faults
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out: Vec<FaultInfo> = Vec::with_capacity(names.len());
    for n in names {
        let Some(f) = faults.iter().find(|f| f.name == n) else {
            return Err(Error::Usage(format!(
                "--scenario {n}: load target {target} has no such fault; expected one of {}",
                known()
            )));
        };
        if !out.iter().any(|o| o.name == n) {
            out.push(f.clone());
        }
    }
    Ok(out)
}

/// The phases of one scenario: clean, fault, recovery, at the steady rate.
pub fn phases(c: &ChaosSettings) -> Vec<PhaseSpec> {
    let steady = |name: &str, duration: Duration| PhaseSpec {
        name: name.into(),
        duration,
        rate: Some(1.0),
        from: None,
        to: None,
    };
    vec![
        steady("clean", c.clean),
        steady("fault", c.fault),
        steady("recovery", c.recovery),
    ]
}

type Slot = Arc<Mutex<Option<Box<dyn ActiveFault>>>>;

fn lock(s: &Slot) -> std::sync::MutexGuard<'_, Option<Box<dyn ActiveFault>>> {
    s.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs one scenario on `system`: a traced generator run with the injection and the healing
/// on its timeline. The healing always runs, even when the injection failed halfway.
#[allow(clippy::too_many_arguments)] // one scenario's whole context, called once
fn run_scenario(
    system: &Arc<dyn LoadSystem>,
    fault: &FaultInfo,
    load: &LoadSettings,
    chaos: &ChaosSettings,
    workers: usize,
    seed: u64,
    before: &WriteCheck,
    done: &mut Done,
    monitor: Option<&Arc<crate::monitor::Monitor>>,
    progress: &mut dyn FnMut(&Progress<'_>),
) -> Result<(ScenarioResult, Option<WriteCheck>), Error> {
    let cfg = GeneratorConfig {
        windows: schedule::windows(&phases(chaos), load.rate),
        workers,
        timeout: load.timeout,
        seed,
        trace: true,
        monitor: monitor.cloned(),
    };
    let inject_at = chaos.clean.as_nanos() as u64;
    let heal_at = (chaos.clean + chaos.fault).as_nanos() as u64;
    let end_ns = chaos.scenario_length().as_nanos() as u64;
    let slot: Slot = Arc::new(Mutex::new(None));
    let (s1, s2) = (Arc::clone(&slot), Arc::clone(&slot));
    let sys = Arc::clone(system);
    let name = fault.name.clone();
    let actions = vec![
        TimedAction {
            at_ns: inject_at,
            name: format!("inject {name}"),
            run: Box::new(move || {
                let f = sys.inject(&name).map_err(|e| e.to_string())?;
                *lock(&s1) = Some(f);
                Ok(None)
            }),
        },
        TimedAction {
            at_ns: heal_at,
            name: format!("heal {}", fault.name),
            run: Box::new(move || match lock(&s2).take() {
                Some(f) => f.heal().map_err(|e| e.to_string()),
                None => Err("nothing to heal: the injection failed".into()),
            }),
        },
    ];
    let r = generator::run_with(Arc::clone(system), &cfg, actions, progress)?;
    // Should the generator have ended before the healing ran, heal now: the next scenario
    // must start from a healthy system.
    if let Some(f) = lock(&slot).take() {
        f.heal()
            .map_err(|e| Error::Workload(format!("healing {} failed: {e}", fault.name)))?;
    }
    let find = |prefix: &str| {
        r.actions
            .iter()
            .find(|a| a.name.starts_with(prefix))
            .cloned()
            .unwrap_or(ActionLog {
                name: prefix.into(),
                due_ns: 0,
                start_ns: 0,
                end_ns: 0,
                result: Err("did not run".into()),
            })
    };
    let (inject, heal) = (find("inject"), find("heal"));
    let figures = analysis::analyse(
        &r.trace,
        inject.start_ns,
        heal.start_ns.max(inject.start_ns),
        end_ns,
        &chaos.slo,
    );
    let mut problems = Vec::new();
    if let Err(e) = &inject.result {
        problems.push(format!("the injection failed: {e}"));
    }
    if let Err(e) = &heal.result {
        if inject.result.is_ok() {
            problems.push(format!("the healing failed: {e}"));
        }
    }
    if figures.recovery_ms.is_none() {
        problems.push(format!(
            "not recovered: no {} window of the {} after healing had p99 <= {} and at most {:.1}% \
             of operations failed or degraded",
            humantime::format_duration(chaos.slo.window),
            humantime::format_duration(chaos.recovery),
            humantime::format_duration(chaos.slo.p99),
            100.0 * chaos.slo.failure_rate
        ));
    }
    if figures.fault.success_rate < chaos.slo.min_success_rate {
        problems.push(format!(
            "{:.1}% of operations answered during the fault, below chaos.slo.min_success_rate {:.1}%",
            100.0 * figures.fault.success_rate,
            100.0 * chaos.slo.min_success_rate
        ));
    }
    let after = system.verify_writes()?;
    let writes = after.as_ref().map(|a| WriteCheck {
        acknowledged: a.acknowledged.saturating_sub(before.acknowledged),
        lost: a.lost.saturating_sub(before.lost),
        duplicated: a.duplicated.saturating_sub(before.duplicated),
        detail: a.detail.clone(),
    });
    if let Some(w) = &writes {
        if w.lost > 0 {
            problems.push(format!("{} acknowledged writes lost", w.lost));
        }
        if w.duplicated > 0 {
            problems.push(format!("{} writes duplicated", w.duplicated));
        }
    }
    r.add_to(done);
    Ok((
        ScenarioResult {
            name: fault.name.clone(),
            description: fault.description.clone(),
            inject: ActionResult::of(&inject),
            heal: ActionResult::of(&heal),
            figures,
            writes,
            error_samples: r.error_samples.clone(),
            problems,
        },
        after,
    ))
}

/// Runs the chaos scenarios of `req`: sets the target's system up once, runs each scenario,
/// reconciles, writes `run.json`, `chaos.json`, `chaos.md` and a chart per scenario.
pub fn execute(
    req: &ChaosRequest,
    log: &mut dyn FnMut(&str),
    progress: &mut dyn FnMut(&Progress<'_>),
) -> Result<ChaosOutcome, Error> {
    let load = crate::load::settings_of(&req.profile);
    let chaos = settings_of(&req.profile);
    let origin = req.profile.origin();
    let bad = |m: String| Error::Config {
        path: origin.clone(),
        message: m,
    };
    load.validate().map_err(bad)?;
    chaos.validate().map_err(bad)?;
    let configured = req.target.configure(&req.profile, &origin)?;
    let scenarios = select(
        &configured.faults(),
        &req.scenarios,
        &chaos,
        configured.name(),
    )?;
    let created_at = crate::run::now_rfc3339();
    let git = GitInfo::discover(&req.repo_dir);
    let (tmp, system) = crate::load::set_up(configured.as_ref(), &req.profile.name, log)?;
    let attached = req.monitor.as_deref().map(|m| m.attach(&system));
    let workers = load.effective_workers();
    let mut done = Done::default();
    let mut writes = system.verify_writes()?.unwrap_or_default();
    let mut results = Vec::with_capacity(scenarios.len());
    for (i, fault) in scenarios.iter().enumerate() {
        log(&format!(
            "scenario {}/{}: {} ({}): {} clean, {} fault, {} recovery at {} ops/s",
            i + 1,
            scenarios.len(),
            fault.name,
            fault.description,
            humantime::format_duration(chaos.clean),
            humantime::format_duration(chaos.fault),
            humantime::format_duration(chaos.recovery),
            load.rate
        ));
        let (r, after) = run_scenario(
            &system,
            fault,
            &load,
            &chaos,
            workers,
            load.seed.wrapping_add(i as u64),
            &writes,
            &mut done,
            req.monitor.as_ref(),
            progress,
        )?;
        log(&report::scenario_line(&r));
        if let Some(a) = after {
            writes = a;
        }
        results.push(r);
    }
    log("reconciling counts");
    let reconciliation = system.reconcile(&done)?;
    drop(attached);
    drop(system);
    drop(tmp);

    let (run_id, dir) = crate::run::create_run_dir(&req.reports_dir, &created_at, git.as_ref())?;
    let report = ChaosReport {
        schema: CHAOS_SCHEMA_VERSION,
        run_id: run_id.clone(),
        profile: req.profile.name.clone(),
        chaos: chaos.clone(),
        rate: load.rate,
        workers,
        scenarios: results,
        reconciliation,
    };
    let mut profile = req.profile.clone();
    profile.load = Some(load);
    profile.chaos = Some(chaos);
    let record = RunRecord::new(
        run_id,
        created_at,
        git,
        profile,
        None,
        Vec::new(),
        metrics(&report),
    );
    record.write(&dir.join("run.json"))?;
    let write = |name: &str, bytes: &[u8]| {
        std::fs::write(dir.join(name), bytes).map_err(|e| Error::Io {
            context: format!("cannot write {}", dir.join(name).display()),
            source: e,
        })
    };
    let json = serde_json::to_vec_pretty(&report).map_err(|e| Error::Json {
        context: "cannot encode chaos.json".into(),
        source: e,
    })?;
    write("chaos.json", &json)?;
    let charts = chart::render_all(&report, &dir)?;
    write("chaos.md", report::markdown(&report, &charts).as_bytes())?;
    Ok(ChaosOutcome {
        report,
        record,
        dir,
        charts,
    })
}

/// The run record's metrics: per scenario `chaos/<name>/...` (see [`crate::metrics::Measure`]).
pub fn metrics(r: &ChaosReport) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    for s in &r.scenarios {
        let f = &s.figures;
        let mut put = |stage: &str, measure: &str, v: Option<f64>| {
            if let Some(v) = v.filter(|v| v.is_finite()) {
                m.insert(format!("chaos/{stage}/{measure}"), v);
            }
        };
        let n = s.name.as_str();
        put(n, "detect_ms", f.detect_ms);
        // Not recovered: the whole recovery period, a lower bound (the run fails anyway).
        put(
            n,
            "recovery_ms",
            Some(
                f.recovery_ms
                    .unwrap_or(r.chaos.recovery.as_secs_f64() * 1e3),
            ),
        );
        put(n, "success_rate", Some(f.fault.success_rate));
        put(n, "degraded_rate", Some(f.fault.degraded_rate));
        if let Some(w) = &s.writes {
            put(n, "lost_writes", Some(w.lost as f64));
            put(n, "duplicated_writes", Some(w.duplicated as f64));
        }
        put(&format!("{n}_fault"), "p99_ns", Some(f.fault.p99_ns as f64));
        put(&format!("{n}_after"), "p99_ns", Some(f.after.p99_ns as f64));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::load_target::tests::Counter;
    use crate::harness::Harness;

    fn request(scenarios: &[&str], dir: &std::path::Path) -> ChaosRequest {
        let profile = Profile::parse(
            "[mix]\nadd = 1\nfail = 0\n[load]\nrate = 400\nworkers = 2\n\
             [chaos]\nclean = \"500ms\"\nfault = \"500ms\"\nrecovery = \"1500ms\"\n\
             [chaos.slo]\np99 = \"200ms\"\nwindow = \"500ms\"\n",
            "counter",
            std::path::Path::new("<test>"),
        )
        .unwrap();
        ChaosRequest {
            target: crate::load::target(&Harness::new().load_target(Counter)).unwrap(),
            profile,
            scenarios: scenarios.iter().map(|s| s.to_string()).collect(),
            reports_dir: dir.to_path_buf(),
            repo_dir: dir.to_path_buf(),
            monitor: None,
        }
    }

    #[test]
    fn an_outage_fails_the_fault_period_then_recovers_and_becomes_metrics() {
        let dir = tempfile::tempdir().unwrap();
        let out = execute(
            &request(&["outage", "fallback"], dir.path()),
            &mut |_| {},
            &mut |_| {},
        )
        .unwrap();
        let r = &out.report;
        assert_eq!(r.scenarios.len(), 2);
        let (outage, fallback) = (&r.scenarios[0], &r.scenarios[1]);
        // 400 ops/s for 0.5 s: 200 operations intended during the fault, nearly all failed.
        let f = &outage.figures;
        assert!((150..=250).contains(&f.fault.ops), "{:?}", f.fault);
        assert!(f.fault.failed >= f.fault.ops - 2, "{:?}", f.fault);
        // Periods go by intended start, so an operation scheduled just before the injection
        // that a lagging worker ran after it fails in the clean period; only a few may.
        assert!(f.clean.failed * 20 <= f.clean.ops, "{:?}", f.clean);
        assert!(f.detect_ms.is_some() && f.recovery_ms.is_some(), "{f:?}");
        assert!(outage.passed(), "{:?}", outage.problems);
        // Degraded answers are answered, but not recovered service until healed.
        let g = &fallback.figures;
        assert!(g.fault.degraded >= g.fault.ops - 2, "{:?}", g.fault);
        assert!(g.fault.success_rate == 1.0);
        assert!(r.reconciliation.ok(), "{:?}", r.reconciliation);
        let m = &out.record.extra_metrics;
        assert!(m["chaos/outage/success_rate"] < 0.05);
        assert!(m["chaos/fallback/degraded_rate"] > 0.95);
        assert!(m.contains_key("chaos/outage/recovery_ms"));
        assert!(m.contains_key("chaos/outage_fault/p99_ns"));
        let md = std::fs::read_to_string(out.dir.join("chaos.md")).unwrap();
        assert!(
            md.contains("**Passed**") && md.contains("chaos-outage.png"),
            "{md}"
        );
        assert!(out.dir.join("chaos-outage.svg").exists());
    }

    #[test]
    fn an_unknown_scenario_is_a_usage_error_naming_the_known_ones() {
        let dir = tempfile::tempdir().unwrap();
        let e = execute(&request(&["outgae"], dir.path()), &mut |_| {}, &mut |_| {})
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("outgae") && e.contains("outage, fallback"),
            "{e}"
        );
    }
}
