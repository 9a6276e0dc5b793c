//! The metric families `--metrics-addr` serves, on a `prometheus-client` registry, encoded in
//! the Prometheus text format (0.0.4).
//!
//! Operations are observed on the worker threads through handles resolved once per run
//! ([`RunHandles`]): one histogram and five counters per kind, so an observation is a lookup
//! by index, a histogram update under that histogram's own lock and an atomic add. Everything
//! else (phase, offered rate, resources, the target's values) is read at scrape time by a
//! collector over [`Live`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Instant;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::harness::load_target::LoadSystem;
use crate::load::generator::OpStatus;
use crate::load::resources::ResourceSample;
use crate::load::schedule::PhaseWindow;
use crate::monitor::Gauge;

/// Upper bounds of the latency buckets, seconds: 50 µs to 10 s in 1-2.5-5 steps.
pub const LATENCY_BUCKETS: [f64; 17] = [
    50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3,
    1.0, 2.5, 5.0, 10.0,
];

/// Every status, in [`OpStatus`]'s order (the index of a status's counter).
pub const STATUSES: [OpStatus; 5] = [
    OpStatus::Ok,
    OpStatus::Degraded,
    OpStatus::Error,
    OpStatus::Late,
    OpStatus::Shed,
];

/// The `status` label of `s`.
pub fn status_name(s: OpStatus) -> &'static str {
    match s {
        OpStatus::Ok => "ok",
        OpStatus::Degraded => "degraded",
        OpStatus::Error => "error",
        OpStatus::Late => "late",
        OpStatus::Shed => "shed",
    }
}

fn status_index(s: OpStatus) -> usize {
    match s {
        OpStatus::Ok => 0,
        OpStatus::Degraded => 1,
        OpStatus::Error => 2,
        OpStatus::Late => 3,
        OpStatus::Shed => 4,
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    kind: String,
    status: &'static str,
}

type HistogramFamily = Family<KindLabel, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The current generator run, as the scrape-time collector needs it.
struct RunState {
    epoch: Instant,
    windows: Vec<PhaseWindow>,
}

/// What is read at scrape time rather than observed per operation.
#[derive(Default)]
pub struct Live {
    run: Mutex<Option<RunState>>,
    /// Whether a run ever started (before the first: `setup`; between and after: `idle`).
    started: std::sync::atomic::AtomicBool,
    resources: Mutex<Option<ResourceSample>>,
    queued: AtomicU64,
    system: RwLock<Option<Arc<dyn LoadSystem>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Values written whole: a panic elsewhere cannot leave one half-written.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Live {
    /// The phase being run now (`setup` before the first run, `idle` between runs).
    pub fn phase(&self) -> String {
        self.phase_and_rate().0
    }

    /// The phase and the scheduled rate at this instant.
    fn phase_and_rate(&self) -> (String, f64) {
        let run = lock(&self.run);
        let Some(r) = run.as_ref() else {
            let idle = if self.started.load(Ordering::Acquire) {
                "idle"
            } else {
                "setup"
            };
            return (idle.into(), 0.0);
        };
        let t = r.epoch.elapsed().as_nanos().min(u128::from(u64::MAX)) as u64;
        match r.windows.iter().find(|w| t < w.end_ns).or(r.windows.last()) {
            Some(w) if t < w.end_ns => (w.name.clone(), w.rate_at(t)),
            // Past the schedule's end: the last operations are finishing.
            Some(w) => (w.name.clone(), 0.0),
            None => ("idle".into(), 0.0),
        }
    }

    /// The system the target's values and health are read from.
    pub fn system(&self) -> Option<Arc<dyn LoadSystem>> {
        self.system
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_system(&self, system: Option<Arc<dyn LoadSystem>>) {
        *self.system.write().unwrap_or_else(PoisonError::into_inner) = system;
    }

    pub(crate) fn begin_run(&self, epoch: Instant, windows: &[PhaseWindow]) {
        self.started.store(true, Ordering::Release);
        *lock(&self.run) = Some(RunState {
            epoch,
            windows: windows.to_vec(),
        });
    }

    pub(crate) fn end_run(&self) {
        *lock(&self.run) = None;
        self.queued.store(0, Ordering::Relaxed);
    }

    pub(crate) fn sampled(&self, sample: &ResourceSample, queued: u64) {
        *lock(&self.resources) = Some(*sample);
        self.queued.store(queued, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live").finish_non_exhaustive()
    }
}

/// The registry and the families observed per operation.
pub struct Metrics {
    registry: Registry,
    latency: HistogramFamily,
    ops: Family<OpLabels, Counter>,
    runs: Counter,
}

/// One run's handles, resolved per kind (the index of a kind in the mix).
pub struct RunHandles {
    kinds: Vec<KindHandles>,
}

struct KindHandles {
    latency: Histogram,
    ops: [Counter; 5],
}

impl RunHandles {
    /// Records one finished (or shed) operation; `kind` out of range is ignored.
    #[inline]
    pub fn observe(&self, kind: usize, latency_ns: u64, status: OpStatus) {
        if let Some(k) = self.kinds.get(kind) {
            k.latency.observe(latency_ns as f64 / 1e9);
            k.ops[status_index(status)].inc();
        }
    }

    /// Operations per status so far (over every run, these kinds), in [`STATUSES`]' order.
    pub fn by_status(&self) -> [u64; 5] {
        let mut out = [0; 5];
        for k in &self.kinds {
            for (o, c) in out.iter_mut().zip(&k.ops) {
                *o += c.get();
            }
        }
        out
    }
}

impl Metrics {
    /// A registry with every family registered, reading scrape-time values from `live`.
    pub fn new(live: Arc<Live>) -> Metrics {
        let mut registry = Registry::with_prefix("perfcheck");
        let latency = HistogramFamily::new_with_constructor(latency_histogram as fn() -> _);
        registry.register(
            "op_latency_seconds",
            "Latency of each operation from its intended start (queueing included), by kind",
            latency.clone(),
        );
        let ops = Family::<OpLabels, Counter>::default();
        registry.register(
            "ops",
            "Operations by kind and outcome (ok, degraded, error, late: after the timeout, \
             shed: never started)",
            ops.clone(),
        );
        let runs = Counter::default();
        registry.register(
            "generator_runs",
            "Generator runs started (one per load run, find-max step or chaos scenario)",
            runs.clone(),
        );
        registry.register_collector(Box::new(LiveCollector(live)));
        Metrics {
            registry,
            latency,
            ops,
            runs,
        }
    }

    /// Resolves the handles of a run over `kinds` (counts carry on from earlier runs).
    pub fn begin_run(&self, kinds: &[String]) -> RunHandles {
        self.runs.inc();
        RunHandles {
            kinds: kinds
                .iter()
                .map(|k| KindHandles {
                    latency: self
                        .latency
                        .get_or_create_owned(&KindLabel { kind: k.clone() }),
                    ops: STATUSES.map(|s| {
                        self.ops.get_or_create_owned(&OpLabels {
                            kind: k.clone(),
                            status: status_name(s),
                        })
                    }),
                })
                .collect(),
        }
    }

    /// Every metric, in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        // Writing into a String cannot fail; a collector's error leaves what was written.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

/// The `Content-Type` of [`Metrics::encode`]'s text.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Reads phase, offered rate, resources and the target's values at scrape time.
#[derive(Debug)]
struct LiveCollector(Arc<Live>);

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: f64,
) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(value);
    g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)
}

/// `name` with every character outside `[a-zA-Z0-9_]` replaced by `_`.
pub fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

impl Collector for LiveCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let live = &self.0;
        let (phase, rate) = live.phase_and_rate();
        let labels = [("phase", phase)];
        let g = ConstGauge::new(1i64);
        let mut m = encoder.encode_descriptor(
            "phase",
            "The phase being run (1 for the current one; setup before the first run, idle \
             between runs)",
            None,
            MetricType::Gauge,
        )?;
        g.encode(m.encode_family(&labels)?)?;
        gauge(
            &mut encoder,
            "offered_rate",
            "Operations per second the schedule offers now",
            rate,
        )?;
        gauge(
            &mut encoder,
            "queued_ops",
            "Operations waiting for a worker at the last sample",
            live.queued.load(Ordering::Relaxed) as f64,
        )?;
        if let Some(r) = *lock(&live.resources) {
            let values = [
                ("rss_bytes", "Resident set size, bytes", r.rss_bytes as f64),
                (
                    "heap_bytes",
                    "Live Rust heap (counting allocator, every thread), bytes",
                    r.heap_bytes as f64,
                ),
                (
                    "sqlite_heap_bytes",
                    "SQLite's own heap, bytes",
                    r.sqlite_bytes as f64,
                ),
                (
                    "stored_heap_bytes",
                    "Part of the Rust heap holding stored data (the target's index), bytes",
                    r.index_bytes as f64,
                ),
                (
                    "retained_heap_bytes",
                    "Heap that is not stored data (Rust minus stored, plus SQLite): its \
                     slope is the leak rate, bytes",
                    r.retained_bytes() as f64,
                ),
                (
                    "cpu_percent",
                    "Process CPU over the last second, percent of one core",
                    r.cpu_percent,
                ),
            ];
            for (name, help, v) in values {
                gauge(&mut encoder, name, help, v)?;
            }
        }
        if let Some(system) = live.system() {
            encode_target(&mut encoder, system.gauges())?;
        }
        Ok(())
    }
}

/// The target's values, grouped by name (one descriptor per name, one series per label set).
fn encode_target(
    encoder: &mut DescriptorEncoder,
    gauges: Vec<Gauge>,
) -> Result<(), std::fmt::Error> {
    let mut names: Vec<String> = Vec::new();
    let mut groups: Vec<Vec<Gauge>> = Vec::new();
    for g in gauges {
        let name = format!("target_{}", sanitize(&g.name));
        match names.iter().position(|n| *n == name) {
            Some(i) => groups[i].push(g),
            None => {
                names.push(name);
                groups.push(vec![g]);
            }
        }
    }
    for (name, group) in names.iter().zip(&groups) {
        let first = &group[0];
        let ty = if first.counter {
            MetricType::Counter
        } else {
            MetricType::Gauge
        };
        let mut m = encoder.encode_descriptor(name, &first.help, None, ty)?;
        for g in group {
            let labels: Vec<(String, String)> = g
                .labels
                .iter()
                .map(|(k, v)| (sanitize(k), v.clone()))
                .collect();
            let series = m.encode_family(&labels)?;
            if first.counter {
                ConstCounter::new(g.value.max(0.0)).encode(series)?;
            } else {
                ConstGauge::new(g.value).encode(series)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_parse::{Scrape, Value};

    fn parse(text: &str) -> Scrape {
        Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap()
    }

    fn find<'a>(s: &'a Scrape, metric: &str, labels: &[(&str, &str)]) -> &'a Value {
        &s.samples
            .iter()
            .find(|x| x.metric == metric && labels.iter().all(|(k, v)| x.labels.get(k) == Some(v)))
            .unwrap_or_else(|| panic!("no {metric} {labels:?}"))
            .value
    }

    #[test]
    fn observed_latencies_land_in_their_buckets_and_statuses_in_their_counters() {
        let live = Arc::new(Live::default());
        let m = Metrics::new(Arc::clone(&live));
        let h = m.begin_run(&["a".into(), "b".into()]);
        // 30 µs, 70 µs, 3 ms, 20 s: buckets 50 µs, 100 µs, 5 ms and +Inf only.
        for (ns, st) in [
            (30_000, OpStatus::Ok),
            (70_000, OpStatus::Ok),
            (3_000_000, OpStatus::Degraded),
            (20_000_000_000, OpStatus::Late),
        ] {
            h.observe(0, ns, st);
        }
        h.observe(1, 1_000, OpStatus::Error);
        h.observe(7, 1_000, OpStatus::Error); // no such kind: ignored
        let s = parse(&m.encode());
        let Value::Histogram(buckets) = find(&s, "perfcheck_op_latency_seconds", &[("kind", "a")])
        else {
            panic!("not a histogram")
        };
        let at = |le: f64| {
            buckets
                .iter()
                .find(|b| {
                    (b.less_than - le).abs() < 1e-12 || (le.is_infinite() && b.less_than == le)
                })
                .unwrap_or_else(|| panic!("no bucket {le}"))
                .count
        };
        assert_eq!(buckets.len(), LATENCY_BUCKETS.len() + 1);
        assert_eq!(at(50e-6), 1.0);
        assert_eq!(at(100e-6), 2.0);
        assert_eq!(at(2.5e-3), 2.0);
        assert_eq!(at(5e-3), 3.0);
        assert_eq!(at(10.0), 3.0);
        assert_eq!(at(f64::INFINITY), 4.0);
        let count = find(&s, "perfcheck_op_latency_seconds_count", &[("kind", "a")]);
        assert!(
            matches!(count, Value::Untyped(c) | Value::Counter(c) if *c == 4.0),
            "{count:?}"
        );
        let ops = |kind: &str, status: &str| match find(
            &s,
            "perfcheck_ops_total",
            &[("kind", kind), ("status", status)],
        ) {
            Value::Counter(v) => *v,
            v => panic!("{v:?}"),
        };
        assert_eq!(ops("a", "ok"), 2.0);
        assert_eq!(ops("a", "degraded"), 1.0);
        assert_eq!(ops("a", "late"), 1.0);
        assert_eq!(ops("a", "shed"), 0.0);
        assert_eq!(ops("b", "error"), 1.0);
        assert_eq!(h.by_status(), [2, 1, 1, 1, 0]);
        // A second run over the same kinds carries the counts on.
        let h2 = m.begin_run(&["a".into(), "b".into()]);
        h2.observe(0, 1_000, OpStatus::Ok);
        assert_eq!(h2.by_status(), [3, 1, 1, 1, 0]);
        let s = parse(&m.encode());
        assert!(matches!(
            find(&s, "perfcheck_generator_runs_total", &[]),
            Value::Counter(v) if *v == 2.0
        ));
    }

    #[test]
    fn phase_rate_resources_and_the_target_s_values_are_read_at_scrape_time() {
        let live = Arc::new(Live::default());
        let m = Metrics::new(Arc::clone(&live));
        let gauge_of = |s: &Scrape, name: &str, labels: &[(&str, &str)]| match find(s, name, labels)
        {
            Value::Gauge(v) => *v,
            v => panic!("{name}: {v:?}"),
        };
        let s = parse(&m.encode());
        assert_eq!(gauge_of(&s, "perfcheck_phase", &[("phase", "setup")]), 1.0);
        assert!(
            !s.samples.iter().any(|x| x.metric == "perfcheck_rss_bytes"),
            "no resources before the first sample"
        );
        let windows = crate::load::schedule::windows(
            &[crate::load::PhaseSpec::steady("peak", 3600, 1.0)],
            250.0,
        );
        live.begin_run(Instant::now(), &windows);
        let sample = ResourceSample {
            rss_bytes: 4096,
            heap_bytes: 1000,
            sqlite_bytes: 10,
            index_bytes: 100,
            cpu_percent: 50.0,
        };
        live.sampled(&sample, 7);
        let system = crate::harness::load_target::tests::counter_system();
        live.set_system(Some(system));
        let s = parse(&m.encode());
        assert_eq!(gauge_of(&s, "perfcheck_phase", &[("phase", "peak")]), 1.0);
        assert_eq!(gauge_of(&s, "perfcheck_offered_rate", &[]), 250.0);
        assert_eq!(gauge_of(&s, "perfcheck_queued_ops", &[]), 7.0);
        assert_eq!(gauge_of(&s, "perfcheck_rss_bytes", &[]), 4096.0);
        assert_eq!(gauge_of(&s, "perfcheck_retained_heap_bytes", &[]), 910.0);
        assert_eq!(gauge_of(&s, "perfcheck_target_sum", &[]), 0.0);
        // One family, two series; the space in the name became `_`.
        assert_eq!(
            gauge_of(&s, "perfcheck_target_fault_on", &[("fault", "outage")]),
            0.0
        );
        assert_eq!(
            gauge_of(&s, "perfcheck_target_fault_on", &[("fault", "fallback")]),
            0.0
        );
        let text = m.encode();
        assert_eq!(text.matches("# TYPE perfcheck_target_fault_on ").count(), 1);
        live.end_run();
        live.set_system(None);
        let s = parse(&m.encode());
        assert_eq!(gauge_of(&s, "perfcheck_phase", &[("phase", "idle")]), 1.0);
        assert_eq!(gauge_of(&s, "perfcheck_offered_rate", &[]), 0.0);
        assert!(!s.samples.iter().any(|x| x.metric == "perfcheck_target_sum"));
    }

    #[test]
    fn target_names_become_metric_names() {
        assert_eq!(sanitize("pool in-use.max"), "pool_in_use_max");
        assert_eq!(sanitize("ok_1"), "ok_1");
    }
}
