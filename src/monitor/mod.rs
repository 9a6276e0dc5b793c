//! Live monitoring of `load` and `chaos` runs: `--metrics-addr ADDR` serves the run's metrics
//! in the Prometheus text format at `/metrics` and a JSON verdict at `/health` while it goes
//! on.
//!
//! The generator observes every finished operation into the [`Monitor`] (kind, latency from
//! the intended start, status) through handles resolved once per run, outside its own
//! recorder's lock, and hands it its once-a-second resource sample; everything else (phase,
//! scheduled rate, the target's own [`Gauge`]s and [`TargetHealth`]) is read when scraped.
//! [`registry`] holds the metric families, [`server`] the HTTP endpoint on its own thread.

pub mod registry;
pub mod server;
pub mod target;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use serde::Serialize;

pub use registry::{Live, Metrics, RunHandles};
pub use server::MetricsServer;
pub use target::{Gauge, HealthStatus, TargetHealth};

use crate::harness::load_target::LoadSystem;
use crate::load::resources::ResourceSample;
use crate::load::schedule::PhaseWindow;

/// Share of the last second's operations that failed (errors, late, shed) from which the
/// tool's own verdict is `failing`.
const FAILING_SHARE: f64 = 0.5;

/// What one process's runs have shown so far, shared by the generator and the server.
pub struct Monitor {
    live: Arc<Live>,
    metrics: Metrics,
    state: Mutex<RunCounts>,
}

/// Operation counts per status behind the tool's verdict.
#[derive(Default)]
struct RunCounts {
    handles: Option<Arc<RunHandles>>,
    /// Totals at the previous sample.
    prev: [u64; 5],
    /// Growth over the last sampled second.
    last: [u64; 5],
}

/// `/health`'s body.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Health {
    /// The worse of the tool's verdict (last second's operations) and the target's.
    pub status: HealthStatus,
    /// The phase being run.
    pub phase: String,
    /// Operations observed so far, every run.
    pub ops: u64,
    /// The last sampled second's operations by status.
    pub last_second: BTreeMap<&'static str, u64>,
    /// The target's own health (`null`: it has none, or no system is set up yet).
    pub target: Option<serde_json::Value>,
}

/// Detaches the system from the monitor when dropped (see [`Monitor::attach`]).
pub struct Attached<'a>(&'a Monitor);

impl Drop for Attached<'_> {
    fn drop(&mut self) {
        self.0.live.set_system(None);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Monitor {
    /// An empty monitor (phase `setup`, no operations yet).
    pub fn new() -> Arc<Monitor> {
        let live = Arc::new(Live::default());
        Arc::new(Monitor {
            metrics: Metrics::new(Arc::clone(&live)),
            live,
            state: Mutex::new(RunCounts::default()),
        })
    }

    /// Reads the target's values and health from `system` until the guard drops (drop it
    /// before the system, whose files may go with it).
    pub fn attach(&self, system: &Arc<dyn LoadSystem>) -> Attached<'_> {
        self.live.set_system(Some(Arc::clone(system)));
        Attached(self)
    }

    /// Starts observing a generator run over `kinds` on `windows` from `epoch`.
    pub fn begin_run(
        &self,
        kinds: &[String],
        windows: &[PhaseWindow],
        epoch: Instant,
    ) -> Arc<RunHandles> {
        let handles = Arc::new(self.metrics.begin_run(kinds));
        let mut s = lock(&self.state);
        s.prev = handles.by_status();
        s.last = [0; 5];
        s.handles = Some(Arc::clone(&handles));
        drop(s);
        self.live.begin_run(epoch, windows);
        handles
    }

    /// The generator's once-a-second sample: resources, queue length, and the second that
    /// ended for the verdict.
    pub fn sampled(&self, sample: &ResourceSample, queued: u64) {
        self.live.sampled(sample, queued);
        let mut s = lock(&self.state);
        if let Some(h) = s.handles.as_ref() {
            let now = h.by_status();
            let mut last = [0; 5];
            for ((l, n), p) in last.iter_mut().zip(now).zip(s.prev) {
                *l = n.saturating_sub(p);
            }
            s.last = last;
            s.prev = now;
        }
    }

    /// The run ended (its workers are done).
    pub fn end_run(&self) {
        self.live.end_run();
    }

    /// Every metric in the Prometheus text format.
    pub fn encode(&self) -> String {
        self.metrics.encode()
    }

    /// The verdict `/health` serves.
    pub fn health(&self) -> Health {
        let (ops, last) = {
            let s = lock(&self.state);
            let ops = s.handles.as_ref().map_or(0, |h| h.by_status().iter().sum());
            (ops, s.last)
        };
        let own = verdict(&last);
        let (target_status, target) = match self.live.system().map(|s| s.health()) {
            None | Some(Ok(None)) => (HealthStatus::Ok, None),
            Some(Ok(Some(h))) => (
                h.status,
                Some(serde_json::to_value(&h).unwrap_or(serde_json::Value::Null)),
            ),
            Some(Err(e)) => (
                HealthStatus::Failing,
                Some(serde_json::json!({ "status": "failing", "error": e })),
            ),
        };
        Health {
            status: own.max(target_status),
            phase: self.live.phase(),
            ops,
            last_second: registry::STATUSES
                .iter()
                .zip(last)
                .map(|(s, n)| (registry::status_name(*s), n))
                .collect(),
            target,
        }
    }
}

/// The tool's verdict over one second's operations per status ([`registry::STATUSES`]' order).
pub fn verdict(last: &[u64; 5]) -> HealthStatus {
    let [_, degraded, error, late, shed] = *last;
    let n: u64 = last.iter().sum();
    let failed = error + late + shed;
    if n == 0 {
        HealthStatus::Ok
    } else if failed as f64 >= FAILING_SHARE * n as f64 {
        HealthStatus::Failing
    } else if failed + degraded > 0 {
        HealthStatus::Degraded
    } else {
        HealthStatus::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::generator::OpStatus;

    #[test]
    fn the_verdict_follows_the_last_second_s_failures() {
        assert_eq!(verdict(&[0, 0, 0, 0, 0]), HealthStatus::Ok);
        assert_eq!(verdict(&[100, 0, 0, 0, 0]), HealthStatus::Ok);
        assert_eq!(verdict(&[99, 1, 0, 0, 0]), HealthStatus::Degraded);
        assert_eq!(verdict(&[99, 0, 0, 1, 0]), HealthStatus::Degraded);
        assert_eq!(verdict(&[50, 0, 25, 0, 25]), HealthStatus::Failing);
        assert_eq!(verdict(&[0, 10, 0, 0, 0]), HealthStatus::Degraded);
    }

    #[test]
    fn health_is_the_worse_of_the_operations_and_the_target() {
        let m = Monitor::new();
        let h = m.health();
        assert_eq!(
            (h.status, h.phase.as_str(), h.ops),
            (HealthStatus::Ok, "setup", 0)
        );
        assert_eq!(h.target, None);

        let system = crate::harness::load_target::tests::counter_system();
        let attached = m.attach(&system);
        let windows =
            crate::load::schedule::windows(&[crate::load::PhaseSpec::steady("s", 60, 1.0)], 10.0);
        let run = m.begin_run(&["add".into(), "fail".into()], &windows, Instant::now());
        for _ in 0..9 {
            run.observe(0, 1_000, OpStatus::Ok);
        }
        run.observe(1, 1_000, OpStatus::Error);
        m.sampled(&ResourceSample::default(), 0);
        let h = m.health();
        assert_eq!(h.status, HealthStatus::Degraded, "{h:?}");
        assert_eq!(
            (h.ops, h.last_second["ok"], h.last_second["error"]),
            (10, 9, 1)
        );
        assert_eq!(h.target.as_ref().unwrap()["status"], "ok");

        // A second of only good answers: ok again; the target's outage makes it failing.
        for _ in 0..5 {
            run.observe(0, 1_000, OpStatus::Ok);
        }
        m.sampled(&ResourceSample::default(), 0);
        assert_eq!(m.health().status, HealthStatus::Ok);
        let fault = system.inject("outage").unwrap();
        let h = m.health();
        assert_eq!(h.status, HealthStatus::Failing);
        assert_eq!(h.target.as_ref().unwrap()["status"], "failing");
        fault.heal().unwrap();
        assert_eq!(m.health().status, HealthStatus::Ok);

        m.end_run();
        drop(attached);
        let h = m.health();
        assert_eq!((h.phase.as_str(), h.ops, h.target), ("idle", 15, None));
    }

    fn counter_of(text: &str, kind: &str, status: &str) -> f64 {
        let s = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
        s.samples
            .iter()
            .find(|x| {
                x.metric == "perfcheck_ops_total"
                    && x.labels.get("kind") == Some(kind)
                    && x.labels.get("status") == Some(status)
            })
            .map_or(0.0, |x| match x.value {
                prometheus_parse::Value::Counter(v) => v,
                _ => panic!("not a counter"),
            })
    }

    fn counter_target() -> Arc<dyn crate::harness::AnyLoadTarget> {
        let h =
            crate::harness::Harness::new().load_target(crate::harness::load_target::tests::Counter);
        crate::load::target(&h).unwrap()
    }

    #[test]
    fn a_load_run_reports_every_operation_once_and_detaches_its_system() {
        let profile = crate::config::Profile::parse(
            "[load]\nrate = 300\nworkers = 2\nphases = [{ name = \"steady\", duration = \"1s\", rate = 1.0 }]\n",
            "counter",
            std::path::Path::new("<test>"),
        )
        .unwrap();
        let reports = tempfile::tempdir().unwrap();
        let m = Monitor::new();
        let req = crate::load::LoadRequest {
            target: counter_target(),
            profile,
            find_max: false,
            reports_dir: reports.path().to_path_buf(),
            repo_dir: reports.path().to_path_buf(),
            monitor: Some(Arc::clone(&m)),
        };
        let out = crate::load::execute(&req, &mut |_| {}, &mut |_| {}).unwrap();
        let run = out.report.run.as_ref().unwrap();
        let h = m.health();
        assert_eq!(h.ops, run.total.offered_ops);
        assert_eq!((h.phase.as_str(), h.target), ("idle", None));
        let text = m.encode();
        let fail = &run.total.by_kind[1];
        assert_eq!(counter_of(&text, "fail", "error"), fail.errors as f64);
        let add = &run.total.by_kind[0];
        let add_seen: f64 = ["ok", "degraded", "error", "late", "shed"]
            .iter()
            .map(|s| counter_of(&text, "add", s))
            .sum();
        assert_eq!(add_seen, add.ops as f64);
        assert!(
            !text.contains("perfcheck_target_sum"),
            "detached after the run"
        );
    }

    #[test]
    fn chaos_scenarios_show_their_errors_and_degraded_answers() {
        // A light load: chaos's own timing-sensitive tests run beside this one.
        let profile = crate::config::Profile::parse(
            "[mix]\nadd = 1\nfail = 0\n[load]\nrate = 100\nworkers = 1\n\
             [chaos]\nclean = \"500ms\"\nfault = \"500ms\"\nrecovery = \"1500ms\"\n",
            "counter",
            std::path::Path::new("<test>"),
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let m = Monitor::new();
        let req = crate::chaos::ChaosRequest {
            target: counter_target(),
            profile,
            scenarios: vec!["outage".into(), "fallback".into()],
            reports_dir: dir.path().to_path_buf(),
            repo_dir: dir.path().to_path_buf(),
            monitor: Some(Arc::clone(&m)),
        };
        let out = crate::chaos::execute(&req, &mut |_| {}, &mut |_| {}).unwrap();
        let (outage, fallback) = (&out.report.scenarios[0], &out.report.scenarios[1]);
        let text = m.encode();
        assert!(text.contains("perfcheck_generator_runs_total 2"), "{text}");
        // Every failure of the outage's fault period is among the errors seen live.
        let errors = counter_of(&text, "add", "error");
        assert!(errors >= outage.figures.fault.failed as f64 - 2.0 && errors > 0.0);
        let degraded = counter_of(&text, "add", "degraded");
        assert!(degraded >= fallback.figures.fault.degraded as f64 && degraded > 0.0);
    }
}
