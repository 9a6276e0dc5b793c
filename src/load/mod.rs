//! Load, stress and soak testing of a harness's [`LoadTarget`](crate::harness::LoadTarget):
//! `cargo perfcheck load`.
//!
//! An open-loop [`generator`] offers operations at a scheduled rate through phases (ramp-up,
//! peak, stress, ramp-down; [`settings`]) against one system shared by a pool of worker
//! threads, measures every latency from the operation's intended start in HDR histograms,
//! samples process [`resources`] every second, and turns the result into a run record whose
//! `extra_metrics` (`load/total/p99_ns`, `load/peak/throughput_ops`, ...) the baseline store
//! and `check` treat like any other metric. `--find-max` searches the highest sustainable
//! rate instead. Charts go next to the record ([`chart`]).
//!
//! Before measuring, the target sets its system up (the engine: the corpus loaded and fully
//! consolidated, the steady state of a long-running service); afterwards the target
//! reconciles its counts with what was done (the engine: every remember stored exactly one
//! event, every event reached consolidation exactly once, every fact's support matches its
//! linked events).

pub mod chart;
pub mod generator;
pub mod report;
pub mod resources;
pub mod schedule;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::config::load::{
    parse_duration, parse_mix, parse_phases, FindMaxSettings, LoadSettings, PhaseSpec, Slo,
};
pub use crate::harness::load_target::{Mix, Reconciliation};
pub use generator::{GeneratorResult, Latency, PhaseResult, Progress, Tick};

use crate::config::Profile;
use crate::error::Error;
use crate::git::GitInfo;
use crate::harness::load_target::{AnyLoadTarget, ConfiguredLoad, Done, LoadSystem};
use crate::harness::{Harness, PassMode, SetupContext};
use crate::record::RunRecord;

/// Version of `load.json`.
pub const LOAD_SCHEMA_VERSION: u32 = 1;

/// What to run.
pub struct LoadRequest {
    /// The system to load (the harness's [`target`]).
    pub target: Arc<dyn AnyLoadTarget>,
    /// The profile; its `load` section (defaults when absent) already has the command line's
    /// overrides applied.
    pub profile: Profile,
    /// Search the highest sustainable rate instead of running the phases.
    pub find_max: bool,
    /// Folder that receives `<run-id>/`.
    pub reports_dir: PathBuf,
    /// Directory whose git repository identifies the commit.
    pub repo_dir: PathBuf,
    /// Live monitoring to report to (`--metrics-addr`).
    pub monitor: Option<Arc<crate::monitor::Monitor>>,
}

/// Heap growth over the steady part of a run, extrapolated to an hour.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeapGrowth {
    /// Phase whose samples were used (the longest steady phase, its first fifth skipped as
    /// warm-up of caches).
    pub phase: String,
    /// Window, seconds from the start.
    pub window_s: (f64, f64),
    /// Samples in the window.
    pub samples: usize,
    /// Slope of retained heap (Rust heap minus stored data such as a vector index, plus
    /// SQLite's heap), bytes per hour: the leak rate, data growth excluded. This is the gated
    /// number.
    pub retained_bytes_per_hour: f64,
    /// Standard error of that slope, bytes per hour.
    pub retained_se_bytes_per_hour: f64,
    /// Slope of the whole Rust heap (index included), bytes per hour.
    pub heap_bytes_per_hour: f64,
    /// Slope of the stored data alone (the engine's vector index), bytes per hour.
    pub index_bytes_per_hour: f64,
    /// Slope of SQLite's heap, bytes per hour.
    pub sqlite_bytes_per_hour: f64,
    /// Slope of RSS, bytes per hour (allocator and page-cache effects included).
    pub rss_bytes_per_hour: f64,
}

/// One step of the saturation search.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FindMaxStep {
    /// Offered ops/s.
    pub offered_ops_per_s: f64,
    /// Succeeded within the timeout, per second.
    pub achieved_ops_per_s: f64,
    /// Latency of the measured part.
    pub latency: Latency,
    /// Errors and timeouts over operations.
    pub failure_rate: f64,
    /// Within both limits.
    pub pass: bool,
}

/// Result of `--find-max`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FindMaxResult {
    /// Steps in the order run.
    pub steps: Vec<FindMaxStep>,
    /// Highest offered rate that stayed within the limits (0 when even the first failed).
    pub max_sustainable_ops_per_s: f64,
    /// Lowest offered rate that crossed a limit, if one did.
    pub first_failing_ops_per_s: Option<f64>,
    /// p99 limit, ns.
    pub p99_limit_ns: u64,
    /// Failure-rate limit.
    pub failure_rate_limit: f64,
}

/// One limit of the run's SLO, judged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SloCheck {
    /// Phase (or `total`).
    pub phase: String,
    /// `p99_ns`, `failure_rate` or `heap_growth_bytes_per_hour`.
    pub what: String,
    /// The limit.
    pub limit: f64,
    /// The value measured.
    pub value: f64,
    /// Within the limit.
    pub pass: bool,
}

/// Everything a load run measured (`load.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoadReport {
    /// Layout version ([`LOAD_SCHEMA_VERSION`]).
    pub schema: u32,
    /// The run id (folder name).
    pub run_id: String,
    /// Profile name.
    pub profile: String,
    /// Settings in effect.
    pub settings: LoadSettings,
    /// Operation mix in effect, `{kind: weight}` in the target's order.
    pub mix: Mix,
    /// The target's counts when measuring started, as `<name>_at_start` fields
    /// (`events_at_start`).
    #[serde(flatten)]
    pub at_start: BTreeMap<String, u64>,
    /// The phased run (absent for `--find-max`).
    pub run: Option<GeneratorResult>,
    /// The saturation search (only with `--find-max`).
    pub find_max: Option<FindMaxResult>,
    /// Heap growth of the steady part, when the run had one long enough.
    pub heap_growth: Option<HeapGrowth>,
    /// The target's counts after the run, reconciled.
    pub reconciliation: Reconciliation,
    /// The run's own limits, judged.
    pub slo: Vec<SloCheck>,
}

impl LoadReport {
    /// Whether every SLO check passed and the counts reconcile.
    pub fn passed(&self) -> bool {
        self.slo.iter().all(|c| c.pass) && self.reconciliation.ok()
    }
}

/// A finished load run.
pub struct LoadOutcome {
    /// The report (`load.json`).
    pub report: LoadReport,
    /// The run record (`run.json`) with the load metrics in `extra_metrics`.
    pub record: RunRecord,
    /// The run's folder.
    pub dir: PathBuf,
    /// Chart files written.
    pub charts: Vec<PathBuf>,
}

/// The settings a profile asks for (defaults when it has no `[load]` section).
pub fn settings_of(profile: &Profile) -> LoadSettings {
    profile.load.clone().unwrap_or_default()
}

/// The harness's load target, or an error saying how to register one.
pub fn target(harness: &Harness) -> Result<Arc<dyn AnyLoadTarget>, Error> {
    harness.get_load_target().cloned().ok_or_else(|| {
        Error::Usage(
            "this harness has no load target: `load` drives a `perfcheck::harness::LoadTarget` \
             (choose an operation, execute it, reconcile counts afterwards); register one in the \
             harness target's main with `Harness::new().load_target(MyTarget)` and \
             `perfcheck::main!(harness = ...)`"
                .into(),
        )
    })
}

/// Sets the target's system up in a temporary folder (kept alive by the returned guard;
/// drop the system first), logging the target's setup note.
pub fn set_up(
    configured: &dyn ConfiguredLoad,
    profile: &str,
    log: &mut dyn FnMut(&str),
) -> Result<(tempfile::TempDir, Arc<dyn LoadSystem>), Error> {
    log(&format!(
        "profile {profile}: setting up load target {}{}",
        configured.name(),
        configured
            .setup_note()
            .map(|n| format!(": {n}"))
            .unwrap_or_default()
    ));
    let tmp = tempfile::tempdir().map_err(|e| Error::Io {
        context: "cannot create a temporary directory for the load target".into(),
        source: e,
    })?;
    let system = configured.setup(&SetupContext {
        dir: tmp.path(),
        mode: PassMode::Timing,
    })?;
    Ok((tmp, system))
}

/// Runs the load test described by `req`: sets the target's system up, runs the phases (or
/// the saturation search), reconciles, writes `run.json`, `load.json` and the charts.
pub fn execute(
    req: &LoadRequest,
    log: &mut dyn FnMut(&str),
    progress: &mut dyn FnMut(&Progress<'_>),
) -> Result<LoadOutcome, Error> {
    let settings = settings_of(&req.profile);
    settings.validate().map_err(|m| Error::Config {
        path: format!("<profile {}>", req.profile.name).into(),
        message: m,
    })?;
    let configured = req.target.configure(&req.profile, &req.profile.origin())?;
    let mix = configured.mix().clone();
    let created_at = crate::run::now_rfc3339();
    let git = GitInfo::discover(&req.repo_dir);

    let (tmp, system) = set_up(configured.as_ref(), &req.profile.name, log)?;
    let attached = req.monitor.as_deref().map(|m| m.attach(&system));
    let at_start: BTreeMap<String, u64> = system
        .start_counts()?
        .into_iter()
        .map(|(name, n)| (format!("{name}_at_start"), n))
        .collect();
    let workers = settings.effective_workers();

    let gen_cfg = |phases: &[PhaseSpec], rate: f64, seed: u64| generator::GeneratorConfig {
        windows: schedule::windows(phases, rate),
        workers,
        timeout: settings.timeout,
        seed,
        trace: false,
        monitor: req.monitor.clone(),
    };

    let mut done = Done::default();
    let (run, find_max) = if req.find_max {
        let f = find_max(&system, &settings, &gen_cfg, &mut done, log, progress)?;
        (None, Some(f))
    } else {
        log(&format!(
            "{} phases over {}: {} at {} ops/s peak, {} workers",
            settings.phases.len(),
            humantime::format_duration(settings.total_duration()),
            settings
                .phases
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(" -> "),
            settings.rate,
            workers
        ));
        let cfg = gen_cfg(&settings.phases, settings.rate, settings.seed);
        let r = generator::run(Arc::clone(&system), &cfg, progress)?;
        r.add_to(&mut done);
        (Some(r), None)
    };

    log("reconciling counts");
    let reconciliation = system.reconcile(&done)?;
    let heap_growth = run.as_ref().and_then(|r| heap_growth(r, &settings.phases));

    let (run_id, dir) = crate::run::create_run_dir(&req.reports_dir, &created_at, git.as_ref())?;
    let slo = judge(&settings, run.as_ref(), heap_growth.as_ref());
    let report = LoadReport {
        schema: LOAD_SCHEMA_VERSION,
        run_id: run_id.clone(),
        profile: req.profile.name.clone(),
        settings: settings.clone(),
        mix,
        at_start,
        run,
        find_max,
        heap_growth,
        reconciliation,
        slo,
    };
    // The system's files live in `tmp`: drop it first.
    drop(attached);
    drop(system);
    drop(tmp);
    let mut profile = req.profile.clone();
    profile.load = Some(settings);
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
    let json = serde_json::to_vec_pretty(&report).map_err(|e| Error::Json {
        context: "cannot encode load.json".into(),
        source: e,
    })?;
    std::fs::write(dir.join("load.json"), json).map_err(|e| Error::Io {
        context: format!("cannot write {}", dir.join("load.json").display()),
        source: e,
    })?;
    let charts = chart::render_all(&report, &dir)?;
    Ok(LoadOutcome {
        report,
        record,
        dir,
        charts,
    })
}

type GenCfg<'a> = dyn Fn(&[PhaseSpec], f64, u64) -> generator::GeneratorConfig + 'a;

/// Steps the offered rate up by `factor` until p99 or the failure rate crosses its limit, then
/// bisects between the last passing and the first failing rate. Every step's work is added to
/// `done`, for reconciliation.
fn find_max(
    system: &Arc<dyn LoadSystem>,
    s: &LoadSettings,
    gen_cfg: &GenCfg<'_>,
    done: &mut Done,
    log: &mut dyn FnMut(&str),
    progress: &mut dyn FnMut(&Progress<'_>),
) -> Result<FindMaxResult, Error> {
    let f = &s.find_max;
    let p99_limit = f.p99.as_nanos() as u64;
    let mut steps: Vec<FindMaxStep> = Vec::new();
    let mut step = |rate: f64, i: usize, log: &mut dyn FnMut(&str)| -> Result<FindMaxStep, Error> {
        let mut phases = Vec::with_capacity(2);
        if !f.warmup.is_zero() {
            phases.push(PhaseSpec {
                name: "warm-up".into(),
                duration: f.warmup,
                rate: Some(1.0),
                from: None,
                to: None,
            });
        }
        phases.push(PhaseSpec {
            name: "step".into(),
            duration: f.step,
            rate: Some(1.0),
            from: None,
            to: None,
        });
        let cfg = gen_cfg(&phases, rate, s.seed.wrapping_add(i as u64));
        let r = generator::run(Arc::clone(system), &cfg, progress)?;
        r.add_to(done);
        let m = r.phases.last().cloned().unwrap_or_else(|| r.total.clone());
        let pass = m.latency.p99_ns <= p99_limit && m.failure_rate <= f.error_rate;
        log(&format!(
            "find-max: {:>8.0} ops/s offered -> {:>8.0} achieved, p99 {}, failures {:.3}% : {}",
            rate,
            m.achieved_ops_per_s,
            crate::report::format::duration_ns(m.latency.p99_ns as f64),
            m.failure_rate * 100.0,
            if pass {
                "sustainable"
            } else {
                "over the limit"
            }
        ));
        Ok(FindMaxStep {
            offered_ops_per_s: rate,
            achieved_ops_per_s: m.achieved_ops_per_s,
            latency: m.latency,
            failure_rate: m.failure_rate,
            pass,
        })
    };
    let mut rate = f.start;
    let mut best: Option<f64> = None;
    let mut worst: Option<f64> = None;
    // Up by `factor` while the steps pass; if the very first one fails, down by `factor`
    // until one passes, so a start above capacity still finds the bracket.
    while steps.len() < f.max_steps {
        let st = step(rate, steps.len(), log)?;
        let pass = st.pass;
        steps.push(st);
        match (pass, best) {
            (true, _) => {
                best = Some(rate);
                if worst.is_some() {
                    break;
                }
                rate *= f.factor;
            }
            (false, None) => {
                worst = Some(rate);
                rate /= f.factor;
            }
            (false, Some(_)) => {
                worst = Some(rate);
                break;
            }
        }
    }
    if let (Some(lo), Some(hi)) = (best, worst) {
        let (mut lo, mut hi) = (lo, hi);
        for _ in 0..f.refine {
            if steps.len() >= f.max_steps {
                break;
            }
            // Geometric midpoint: rates are compared by ratio.
            let mid = (lo * hi).sqrt();
            let st = step(mid, steps.len(), log)?;
            if st.pass {
                lo = mid;
                best = Some(mid);
            } else {
                hi = mid;
                worst = Some(mid);
            }
            steps.push(st);
        }
    }
    Ok(FindMaxResult {
        steps,
        max_sustainable_ops_per_s: best.unwrap_or(0.0),
        first_failing_ops_per_s: worst,
        p99_limit_ns: p99_limit,
        failure_rate_limit: f.error_rate,
    })
}

/// Heap growth over the longest steady phase, its first fifth skipped; `None` when fewer than
/// 10 samples remain.
pub fn heap_growth(r: &GeneratorResult, phases: &[PhaseSpec]) -> Option<HeapGrowth> {
    let p = r
        .phases
        .iter()
        .zip(phases)
        .filter(|(_, spec)| spec.is_steady())
        .map(|(p, _)| p)
        .max_by(|a, b| a.duration_s.total_cmp(&b.duration_s))?;
    let from = p.start_s + p.duration_s * 0.2;
    let to = p.start_s + p.duration_s;
    let ticks: Vec<&Tick> = r
        .timeline
        .iter()
        .filter(|t| t.t_s >= from && t.t_s <= to + 0.5)
        .collect();
    if ticks.len() < 10 {
        return None;
    }
    let xs: Vec<f64> = ticks.iter().map(|t| t.t_s).collect();
    let per_hour = |f: &dyn Fn(&Tick) -> f64| {
        let ys: Vec<f64> = ticks.iter().map(|t| f(t)).collect();
        resources::slope(&xs, &ys).map_or((0.0, 0.0), |(b, se)| (b * 3600.0, se * 3600.0))
    };
    let retained = per_hour(&|t| t.resources.retained_bytes() as f64);
    Some(HeapGrowth {
        phase: p.name.clone(),
        window_s: (from, to),
        samples: ticks.len(),
        retained_bytes_per_hour: retained.0,
        retained_se_bytes_per_hour: retained.1,
        heap_bytes_per_hour: per_hour(&|t| t.resources.heap_bytes as f64).0,
        index_bytes_per_hour: per_hour(&|t| t.resources.index_bytes as f64).0,
        sqlite_bytes_per_hour: per_hour(&|t| t.resources.sqlite_bytes as f64).0,
        rss_bytes_per_hour: per_hour(&|t| t.resources.rss_bytes as f64).0,
    })
}

/// Judges the run against its SLO: every non-exempt steady phase's p99 and failure rate, and
/// heap growth when measured and limited.
fn judge(
    s: &LoadSettings,
    run: Option<&GeneratorResult>,
    heap: Option<&HeapGrowth>,
) -> Vec<SloCheck> {
    let mut out = Vec::new();
    if let Some(r) = run {
        for (p, spec) in r.phases.iter().zip(&s.phases) {
            if !spec.is_steady() || s.slo.exempt_phases.contains(&p.name) {
                continue;
            }
            let p99 = s.slo.p99.as_nanos() as f64;
            out.push(SloCheck {
                phase: p.name.clone(),
                what: "p99_ns".into(),
                limit: p99,
                value: p.latency.p99_ns as f64,
                pass: p.latency.p99_ns as f64 <= p99,
            });
            out.push(SloCheck {
                phase: p.name.clone(),
                what: "failure_rate".into(),
                limit: s.slo.error_rate,
                value: p.failure_rate,
                pass: p.failure_rate <= s.slo.error_rate,
            });
        }
    }
    if let (Some(h), Some(limit)) = (heap, s.slo.heap_growth_bytes_per_hour) {
        out.push(SloCheck {
            phase: h.phase.clone(),
            what: "heap_growth_bytes_per_hour".into(),
            limit,
            value: h.retained_bytes_per_hour,
            pass: h.retained_bytes_per_hour <= limit,
        });
    }
    out
}

/// The run's single-value metrics, named `load/<phase or total>/<measure>`.
pub fn metrics(r: &LoadReport) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    let mut put = |stage: &str, measure: &str, v: f64| {
        if v.is_finite() {
            m.insert(format!("load/{stage}/{measure}"), v);
        }
    };
    if let Some(run) = &r.run {
        let mut phase = |stage: &str, p: &PhaseResult| {
            if p.latency.count == 0 {
                return;
            }
            // No `wall_ns` (median): timing medians are gated by default, and an open-loop
            // median on a shared machine moves with the neighbours' load.
            put(stage, "p95_ns", p.latency.p95_ns as f64);
            put(stage, "p99_ns", p.latency.p99_ns as f64);
            put(stage, "throughput_ops", p.achieved_ops_per_s);
            put(stage, "error_rate", p.error_rate);
        };
        phase("total", &run.total);
        for p in &run.phases {
            phase(&p.name.replace('-', "_"), p);
        }
    }
    if let Some(h) = &r.heap_growth {
        put(
            "total",
            "heap_growth_bytes_per_hour",
            h.retained_bytes_per_hour,
        );
    }
    if let Some(f) = &r.find_max {
        put(
            "max_sustainable",
            "throughput_ops",
            f.max_sustainable_ops_per_s,
        );
    }
    m
}

/// A soak-length hint for humans: `1h 0m`.
pub fn human(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::load_target::tests::Counter;

    #[test]
    fn the_generator_runs_a_target_and_its_reconcile_sees_the_counts() {
        let profile = Profile::parse(
            "[load]\nrate = 300\nworkers = 2\nphases = [{ name = \"steady\", duration = \"1s\", rate = 1.0 }]\n",
            "counter",
            std::path::Path::new("<test>"),
        )
        .unwrap();
        let reports = tempfile::tempdir().unwrap();
        let req = LoadRequest {
            target: target(&Harness::new().load_target(Counter)).unwrap(),
            profile,
            find_max: false,
            reports_dir: reports.path().to_path_buf(),
            repo_dir: reports.path().to_path_buf(),
            monitor: None,
        };
        let out = execute(&req, &mut |_| {}, &mut |_| {}).unwrap();
        let r = &out.report;
        assert_eq!(r.mix.to_string(), "add=3 fail=1");
        let run = r.run.as_ref().unwrap();
        let kinds: Vec<&str> = run.total.by_kind.iter().map(|k| k.kind.as_str()).collect();
        assert_eq!(kinds, ["add", "fail"]);
        let (add, fail) = (&run.total.by_kind[0], &run.total.by_kind[1]);
        assert_eq!(add.ops + fail.ops, run.total.offered_ops);
        assert_eq!(run.total.offered_ops, 300);
        assert!(add.ops > fail.ops && fail.ops > 0, "{add:?} {fail:?}");
        assert_eq!(fail.errors, fail.ops, "every fail op failed");
        assert_eq!(run.error_samples, ["fail: asked to fail"]);
        // The target's counter grew by what the adds added, and reconcile saw the same.
        let c = &r.reconciliation;
        assert!(c.ok(), "{c:?}");
        // Shed operations (counted among the timeouts) never ran.
        let ran_ok = add.ops - add.errors;
        assert!(
            (ran_ok - add.timeouts..=ran_ok).contains(&c.counts["added"]),
            "{c:?}"
        );
        assert_eq!(c.counts["sum"], run.counts["sum"]);
        assert!(run.counts["sum"] >= c.counts["added"]);
        // load.json keeps the counts as fields of the run and of the reconciliation.
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.dir.join("load.json")).unwrap()).unwrap();
        assert_eq!(json["run"]["sum"], run.counts["sum"]);
        assert_eq!(json["reconciliation"]["added"], c.counts["added"]);
        assert_eq!(json["mix"], serde_json::json!({"add": 3, "fail": 1}));
        assert!(out.record.extra_metrics.contains_key("load/total/p99_ns"));
    }

    #[test]
    fn a_harness_without_a_load_target_is_an_error_saying_how_to_add_one() {
        let e = target(&Harness::new()).err().unwrap();
        assert_eq!(e.exit_code(), 2);
        let m = e.to_string();
        assert!(
            m.contains("no load target") && m.contains(".load_target("),
            "{m}"
        );
    }
}
