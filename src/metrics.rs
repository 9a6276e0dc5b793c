//! Metric identity (`workload/stage/measure`, see docs/ARCHITECTURE.md) and the metrics of one run.
//!
//! A [`MetricSet`] is extracted from a [`RunRecord`]: one [`Metric`] per measure of every stage
//! row, each carrying the raw per-operation samples its statistic is computed from, so that
//! `compare` can judge uncertainty and not only point values.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::record::{percentile, TOTAL};
use crate::record::{RunRecord, StageSamples, WorkloadResult};

/// Row name of the time inside an operation but outside every named stage.
pub use crate::record::OTHER;

/// The metrics of a record; a record whose names do not parse is a damaged record.
pub fn metric_set(record: &RunRecord) -> Result<MetricSet, crate::error::Error> {
    MetricSet::from_record(record).map_err(|e| {
        crate::error::Error::Usage(format!(
            "run {} holds a metric perfcheck cannot name: {e}",
            record.run_id
        ))
    })
}

/// What is measured about a stage: the third part of a metric name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Measure {
    /// Median wall time per operation (ns).
    WallNs,
    /// 95th percentile of wall time per operation (ns).
    P95Ns,
    /// 99th percentile of wall time per operation (ns).
    P99Ns,
    /// Median thread CPU time per operation, from the CPU-sampled operations (ns).
    CpuNs,
    /// Allocations per operation (mean; deterministic for a seeded workload).
    Allocs,
    /// Bytes allocated per operation (mean; deterministic for a seeded workload).
    AllocBytes,
    /// Operations per second over the whole workload (one value per run).
    ThroughputOps,
    /// Share of failed operations, 0..=1 (one value per run; load runs).
    ErrorRate,
    /// Live-heap growth extrapolated to an hour (one value per run; soak and load runs).
    HeapGrowthBytesPerHour,
    /// Instructions per operation under callgrind (mean; exact for the same binary and inputs).
    Instructions,
    /// Estimated cycles per operation from callgrind's cache simulation (mean; exact).
    EstCycles,
    /// Chaos: milliseconds from injecting a fault to the first failed or degraded answer.
    DetectMs,
    /// Chaos: milliseconds from healing a fault until latency and errors are back within the
    /// SLO for a full second.
    RecoveryMs,
    /// Chaos: share of operations answered (fully or degraded) during the fault, 0..=1.
    SuccessRate,
    /// Chaos: share of operations answered degraded during the fault, 0..=1.
    DegradedRate,
    /// Chaos: acknowledged writes missing afterwards (must be 0).
    LostWrites,
    /// Chaos: writes stored more than once (must be 0).
    DuplicatedWrites,
}

/// How a measure is treated statistically.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// Noisy per-operation timings: compared with a statistical test on the raw samples.
    Timing,
    /// Per-operation counts that repeat exactly for the same code: compared exactly.
    Deterministic,
    /// One value per run (no samples): only run-to-run noise can be judged.
    Single,
}

/// Which way is good.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Smaller values are better (time, allocations).
    LowerIsBetter,
    /// Larger values are better (throughput).
    HigherIsBetter,
}

/// Unit of a metric's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Nanoseconds.
    Nanoseconds,
    /// A count per operation.
    Count,
    /// Bytes per operation.
    Bytes,
    /// Operations per second.
    OpsPerSecond,
    /// A fraction 0..=1.
    Ratio,
    /// Bytes per hour.
    BytesPerHour,
    /// Milliseconds (one value per run).
    Milliseconds,
    /// A number of writes (one value per run).
    Writes,
}

/// The statistic a metric compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Statistic {
    /// Median of the samples (nearest rank, as the run table's p50).
    Median,
    /// Mean of the samples.
    Mean,
    /// A percentile of the samples (nearest rank), e.g. 99.
    Percentile(u8),
    /// The run's single value.
    Value,
}

/// Kind of measure for thresholds: each has its own default warn/fail limits and noise floor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MeasureClass {
    /// Median wall time.
    Time,
    /// Median thread CPU time.
    Cpu,
    /// Tail percentiles of wall time.
    Percentile,
    /// Allocation counts.
    Allocs,
    /// Allocated bytes.
    Bytes,
    /// Throughput.
    Throughput,
    /// Other single values (error rate, heap growth).
    Value,
    /// Instruction counts and estimated cycles from the instructions pass.
    Instructions,
}

impl MeasureClass {
    /// All classes, in the order of the `[thresholds]` table.
    pub const ALL: [MeasureClass; 8] = [
        MeasureClass::Time,
        MeasureClass::Cpu,
        MeasureClass::Percentile,
        MeasureClass::Allocs,
        MeasureClass::Bytes,
        MeasureClass::Throughput,
        MeasureClass::Value,
        MeasureClass::Instructions,
    ];

    /// The key of this class in the `[thresholds]` table.
    pub fn key(self) -> &'static str {
        match self {
            MeasureClass::Time => "time",
            MeasureClass::Cpu => "cpu",
            MeasureClass::Percentile => "percentile",
            MeasureClass::Allocs => "allocs",
            MeasureClass::Bytes => "bytes",
            MeasureClass::Throughput => "throughput",
            MeasureClass::Value => "value",
            MeasureClass::Instructions => "instructions",
        }
    }
}

impl Measure {
    /// Every measure perfcheck knows, in the order metrics are listed.
    pub const ALL: [Measure; 17] = [
        Measure::WallNs,
        Measure::P95Ns,
        Measure::P99Ns,
        Measure::CpuNs,
        Measure::Allocs,
        Measure::AllocBytes,
        Measure::ThroughputOps,
        Measure::ErrorRate,
        Measure::HeapGrowthBytesPerHour,
        Measure::Instructions,
        Measure::EstCycles,
        Measure::DetectMs,
        Measure::RecoveryMs,
        Measure::SuccessRate,
        Measure::DegradedRate,
        Measure::LostWrites,
        Measure::DuplicatedWrites,
    ];

    /// The name used in metric names.
    pub fn name(self) -> &'static str {
        match self {
            Measure::WallNs => "wall_ns",
            Measure::P95Ns => "p95_ns",
            Measure::P99Ns => "p99_ns",
            Measure::CpuNs => "cpu_ns",
            Measure::Allocs => "allocs",
            Measure::AllocBytes => "alloc_bytes",
            Measure::ThroughputOps => "throughput_ops",
            Measure::ErrorRate => "error_rate",
            Measure::HeapGrowthBytesPerHour => "heap_growth_bytes_per_hour",
            Measure::Instructions => "instructions",
            Measure::EstCycles => "est_cycles",
            Measure::DetectMs => "detect_ms",
            Measure::RecoveryMs => "recovery_ms",
            Measure::SuccessRate => "success_rate",
            Measure::DegradedRate => "degraded_rate",
            Measure::LostWrites => "lost_writes",
            Measure::DuplicatedWrites => "duplicated_writes",
        }
    }

    /// How the measure is compared.
    pub fn kind(self) -> MetricKind {
        match self {
            Measure::WallNs | Measure::P95Ns | Measure::P99Ns | Measure::CpuNs => {
                MetricKind::Timing
            }
            Measure::Allocs | Measure::AllocBytes | Measure::Instructions | Measure::EstCycles => {
                MetricKind::Deterministic
            }
            Measure::ThroughputOps
            | Measure::ErrorRate
            | Measure::HeapGrowthBytesPerHour
            | Measure::DetectMs
            | Measure::RecoveryMs
            | Measure::SuccessRate
            | Measure::DegradedRate
            | Measure::LostWrites
            | Measure::DuplicatedWrites => MetricKind::Single,
        }
    }

    /// Which way is good.
    pub fn direction(self) -> Direction {
        match self {
            Measure::ThroughputOps | Measure::SuccessRate => Direction::HigherIsBetter,
            _ => Direction::LowerIsBetter,
        }
    }

    /// Unit of the values.
    pub fn unit(self) -> Unit {
        match self {
            Measure::WallNs | Measure::P95Ns | Measure::P99Ns | Measure::CpuNs => Unit::Nanoseconds,
            Measure::Allocs | Measure::Instructions | Measure::EstCycles => Unit::Count,
            Measure::AllocBytes => Unit::Bytes,
            Measure::ThroughputOps => Unit::OpsPerSecond,
            Measure::ErrorRate | Measure::SuccessRate | Measure::DegradedRate => Unit::Ratio,
            Measure::HeapGrowthBytesPerHour => Unit::BytesPerHour,
            Measure::DetectMs | Measure::RecoveryMs => Unit::Milliseconds,
            Measure::LostWrites | Measure::DuplicatedWrites => Unit::Writes,
        }
    }

    /// The statistic compared.
    pub fn statistic(self) -> Statistic {
        match self {
            Measure::WallNs | Measure::CpuNs => Statistic::Median,
            Measure::P95Ns => Statistic::Percentile(95),
            Measure::P99Ns => Statistic::Percentile(99),
            Measure::Allocs | Measure::AllocBytes | Measure::Instructions | Measure::EstCycles => {
                Statistic::Mean
            }
            Measure::ThroughputOps
            | Measure::ErrorRate
            | Measure::HeapGrowthBytesPerHour
            | Measure::DetectMs
            | Measure::RecoveryMs
            | Measure::SuccessRate
            | Measure::DegradedRate
            | Measure::LostWrites
            | Measure::DuplicatedWrites => Statistic::Value,
        }
    }

    /// Kind of measure for thresholds.
    pub fn class(self) -> MeasureClass {
        match self {
            Measure::WallNs => MeasureClass::Time,
            Measure::CpuNs => MeasureClass::Cpu,
            Measure::P95Ns | Measure::P99Ns => MeasureClass::Percentile,
            Measure::Allocs => MeasureClass::Allocs,
            Measure::AllocBytes => MeasureClass::Bytes,
            Measure::ThroughputOps => MeasureClass::Throughput,
            Measure::ErrorRate
            | Measure::HeapGrowthBytesPerHour
            | Measure::DetectMs
            | Measure::RecoveryMs
            | Measure::SuccessRate
            | Measure::DegradedRate
            | Measure::LostWrites
            | Measure::DuplicatedWrites => MeasureClass::Value,
            Measure::Instructions | Measure::EstCycles => MeasureClass::Instructions,
        }
    }

    fn known() -> String {
        Measure::ALL
            .iter()
            .map(|m| m.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Measure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Measure {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Measure, NameError> {
        Measure::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                NameError::new(
                    s,
                    format!(
                        "unknown measure `{s}`: expected one of {}",
                        Measure::known()
                    ),
                )
            })
    }
}

/// A metric name or pattern that does not parse; the message says what was expected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid metric `{input}`: {message}")]
pub struct NameError {
    /// The text given.
    pub input: String,
    /// What was wrong and what was expected.
    pub message: String,
}

impl NameError {
    fn new(input: &str, message: String) -> NameError {
        NameError {
            input: input.to_owned(),
            message,
        }
    }
}

impl From<NameError> for crate::Error {
    fn from(e: NameError) -> crate::Error {
        crate::Error::Usage(e.to_string())
    }
}

/// Checks one name segment: lowercase ASCII letters, digits and `_`, starting with a letter.
fn check_segment(input: &str, what: &str, seg: &str) -> Result<(), NameError> {
    let ok = seg.starts_with(|c: char| c.is_ascii_lowercase())
        && seg
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else if seg.is_empty() {
        Err(NameError::new(
            input,
            format!(
                "the {what} is empty (expected workload/stage/measure, e.g. recall/total/p99_ns)"
            ),
        ))
    } else {
        Err(NameError::new(
            input,
            format!("the {what} `{seg}` must be lowercase letters, digits and `_`, starting with a letter"),
        ))
    }
}

fn split3<'a>(input: &'a str, example: &str) -> Result<[&'a str; 3], NameError> {
    let parts: Vec<&str> = input.split('/').collect();
    match parts[..] {
        [w, s, m] => Ok([w, s, m]),
        _ => Err(NameError::new(
            input,
            format!(
                "expected three parts workload/stage/measure separated by `/` (e.g. {example}), found {}",
                parts.len()
            ),
        )),
    }
}

/// A metric's identity: `workload/stage/measure`, e.g. `recall/vector_search/wall_ns`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MetricName {
    workload: String,
    stage: String,
    measure: Measure,
}

impl MetricName {
    /// Builds a name from its parts, validating them as [`MetricName::parse`] does.
    pub fn new(workload: &str, stage: &str, measure: Measure) -> Result<MetricName, NameError> {
        let input = format!("{workload}/{stage}/{measure}");
        check_segment(&input, "workload", workload)?;
        check_segment(&input, "stage", stage)?;
        Ok(MetricName {
            workload: workload.to_owned(),
            stage: stage.to_owned(),
            measure,
        })
    }

    /// Parses `workload/stage/measure` (as given to `--metric`); the error says what is wrong.
    pub fn parse(s: &str) -> Result<MetricName, NameError> {
        let [w, st, m] = split3(s, "recall/total/p99_ns")?;
        check_segment(s, "workload", w)?;
        check_segment(s, "stage", st)?;
        let measure = m
            .parse::<Measure>()
            .map_err(|e| NameError::new(s, e.message))?;
        Ok(MetricName {
            workload: w.to_owned(),
            stage: st.to_owned(),
            measure,
        })
    }

    /// The workload part (`recall`).
    pub fn workload(&self) -> &str {
        &self.workload
    }

    /// The stage part (`vector_search`, `total`, `other`).
    pub fn stage(&self) -> &str {
        &self.stage
    }

    /// The measure part.
    pub fn measure(&self) -> Measure {
        self.measure
    }
}

impl fmt::Display for MetricName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.workload, self.stage, self.measure)
    }
}

impl FromStr for MetricName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<MetricName, NameError> {
        MetricName::parse(s)
    }
}

impl Serialize for MetricName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MetricName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<MetricName, D::Error> {
        let s = String::deserialize(d)?;
        MetricName::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// One part of a [`MetricPattern`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Part {
    Any,
    Exact(String),
}

impl Part {
    fn matches(&self, s: &str) -> bool {
        match self {
            Part::Any => true,
            Part::Exact(e) => e == s,
        }
    }
}

/// A metric name where any part may be `*`: `recall/*/alloc_bytes`, `*/total/p99_ns`.
/// `*` stands for one whole part; partial wildcards (`p9*`) are not supported.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MetricPattern {
    text: String,
    parts: [Part; 3],
}

impl MetricPattern {
    /// Parses a pattern; each part is `*` or a valid name part (the measure one perfcheck knows).
    pub fn parse(s: &str) -> Result<MetricPattern, NameError> {
        let [w, st, m] = split3(s, "recall/*/alloc_bytes")?;
        let part = |what: &str, seg: &str| -> Result<Part, NameError> {
            if seg == "*" {
                return Ok(Part::Any);
            }
            if seg.contains('*') {
                return Err(NameError::new(
                    s,
                    format!("`*` must stand for a whole part, found `{seg}` in the {what}"),
                ));
            }
            if what == "measure" {
                seg.parse::<Measure>()
                    .map_err(|e| NameError::new(s, e.message))?;
            } else {
                check_segment(s, what, seg)?;
            }
            Ok(Part::Exact(seg.to_owned()))
        };
        Ok(MetricPattern {
            text: s.to_owned(),
            parts: [
                part("workload", w)?,
                part("stage", st)?,
                part("measure", m)?,
            ],
        })
    }

    /// Whether `name` matches.
    pub fn matches(&self, name: &MetricName) -> bool {
        self.parts[0].matches(name.workload())
            && self.parts[1].matches(name.stage())
            && self.parts[2].matches(name.measure().name())
    }

    /// How specific the pattern is, for precedence: more exact parts first; among equals, an
    /// exact workload beats an exact stage, which beats an exact measure. Larger is more specific.
    pub fn specificity(&self) -> (u8, [bool; 3]) {
        let exact = self.parts.clone().map(|p| p != Part::Any);
        (exact.iter().filter(|e| **e).count() as u8, exact)
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for MetricPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for MetricPattern {
    type Err = NameError;

    fn from_str(s: &str) -> Result<MetricPattern, NameError> {
        MetricPattern::parse(s)
    }
}

/// Which run a [`MetricSet`] came from: what reports show about base and head.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The run's id (its folder under `reports/`).
    pub run_id: String,
    /// Full commit sha; `None` outside a git repository.
    pub commit: Option<String>,
    /// Branch, if known.
    pub branch: Option<String>,
    /// Whether the working tree was dirty.
    pub dirty: bool,
    /// The profile name.
    pub profile: String,
    /// The machine fingerprint key ([`crate::machine::Machine::key`]).
    pub machine: String,
    /// UTC start time, RFC 3339.
    pub created_at: String,
}

impl RunInfo {
    /// Describes a run record.
    pub fn from_record(r: &RunRecord) -> RunInfo {
        RunInfo {
            run_id: r.run_id.clone(),
            commit: r.git.as_ref().map(|g| g.commit.clone()),
            branch: r.git.as_ref().and_then(|g| g.branch.clone()),
            dirty: r.git.as_ref().is_some_and(|g| g.dirty),
            profile: r.profile.name.clone(),
            machine: r.machine.key(),
            created_at: r.created_at.clone(),
        }
    }

    /// Seven-character commit, `+dirty` when dirty; the run id outside git.
    pub fn short(&self) -> String {
        match &self.commit {
            Some(c) => format!(
                "{}{}",
                c.chars().take(7).collect::<String>(),
                if self.dirty { "+dirty" } else { "" }
            ),
            None => format!("run {}", self.run_id),
        }
    }
}

/// One metric of one run: identity, how to compare it, its value and its raw samples.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// `workload/stage/measure`.
    pub name: MetricName,
    /// The statistic computed on this run's samples (or the single value).
    pub value: f64,
    /// Raw per-operation values in operation order (empty for single values). Order matters:
    /// the comparison resamples contiguous blocks to respect drift within a run.
    pub samples: Vec<u64>,
}

impl Metric {
    /// How it is compared. A timing statistic that arrives as one value without samples (a
    /// load run's p99 from its HDR histogram) is compared as a single value.
    pub fn kind(&self) -> MetricKind {
        match self.name.measure.kind() {
            MetricKind::Timing if self.samples.is_empty() && self.value.is_finite() => {
                MetricKind::Single
            }
            k => k,
        }
    }

    /// Which way is good.
    pub fn direction(&self) -> Direction {
        self.name.measure.direction()
    }

    /// Unit of [`Metric::value`].
    pub fn unit(&self) -> Unit {
        self.name.measure.unit()
    }

    /// The statistic [`Metric::value`] is.
    pub fn statistic(&self) -> Statistic {
        self.name.measure.statistic()
    }

    /// Builds a metric from samples, computing its statistic.
    pub fn from_samples(name: MetricName, samples: Vec<u64>) -> Metric {
        let value = statistic_of(name.measure.statistic(), &samples);
        Metric {
            name,
            value,
            samples,
        }
    }

    /// Builds a single-value metric.
    pub fn single(name: MetricName, value: f64) -> Metric {
        Metric {
            name,
            value,
            samples: Vec::new(),
        }
    }
}

/// Computes `stat` over unsorted samples (NaN when there are none).
pub fn statistic_of(stat: Statistic, samples: &[u64]) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    match stat {
        Statistic::Mean | Statistic::Value => {
            samples.iter().map(|&x| x as f64).sum::<f64>() / samples.len() as f64
        }
        Statistic::Median | Statistic::Percentile(_) => {
            let p = match stat {
                Statistic::Percentile(p) => p as f64,
                _ => 50.0,
            };
            let mut v = samples.to_vec();
            v.sort_unstable();
            percentile(&v, p) as f64
        }
    }
}

/// All metrics of one run, in report order (workloads as run, stages as recorded).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricSet {
    /// Where the metrics came from.
    pub run: RunInfo,
    /// The metrics.
    pub metrics: Vec<Metric>,
}

impl MetricSet {
    /// Extracts every metric of a run record. Allocation metrics are left out when the counting
    /// allocator was not installed (they would all be zero). Fails only on a malformed name in
    /// the record's `extra_metrics`.
    pub fn from_record(r: &RunRecord) -> Result<MetricSet, NameError> {
        let mut metrics = Vec::new();
        for w in &r.workloads {
            workload_metrics(w, r.counting_allocator, &mut metrics)?;
        }
        extra_metrics(&r.extra_metrics, &mut metrics)?;
        Ok(MetricSet {
            run: RunInfo::from_record(r),
            metrics,
        })
    }

    /// The metric with this name.
    pub fn get(&self, name: &MetricName) -> Option<&Metric> {
        self.metrics.iter().find(|m| &m.name == name)
    }

    /// Metric names, in order.
    pub fn names(&self) -> impl Iterator<Item = &MetricName> {
        self.metrics.iter().map(|m| &m.name)
    }
}

fn workload_metrics(
    w: &WorkloadResult,
    counting: bool,
    out: &mut Vec<Metric>,
) -> Result<(), NameError> {
    let wl = w.workload.as_str();
    if let Some(ic) = &w.instructions {
        for s in &ic.stages {
            out.push(Metric::from_samples(
                MetricName::new(wl, &s.stage, Measure::Instructions)?,
                s.instructions.clone(),
            ));
            if !s.est_cycles.is_empty() {
                out.push(Metric::from_samples(
                    MetricName::new(wl, &s.stage, Measure::EstCycles)?,
                    s.est_cycles.clone(),
                ));
            }
        }
    }
    for s in &w.samples {
        stage_metrics(wl, s, counting, out)?;
        if s.stage == TOTAL {
            out.push(Metric::single(
                MetricName::new(wl, TOTAL, Measure::ThroughputOps)?,
                w.throughput_ops,
            ));
        }
    }
    Ok(())
}

fn stage_metrics(
    wl: &str,
    s: &StageSamples,
    counting: bool,
    out: &mut Vec<Metric>,
) -> Result<(), NameError> {
    let name = |m| MetricName::new(wl, &s.stage, m);
    out.push(Metric::from_samples(
        name(Measure::WallNs)?,
        s.wall_ns.clone(),
    ));
    // Tails only for the whole operation: per-stage tails multiply the metric count (and so
    // the multiple-testing burden) with the noisiest statistics there are.
    if s.stage == TOTAL {
        out.push(Metric::from_samples(
            name(Measure::P95Ns)?,
            s.wall_ns.clone(),
        ));
        out.push(Metric::from_samples(
            name(Measure::P99Ns)?,
            s.wall_ns.clone(),
        ));
    }
    if !s.cpu_ns.is_empty() {
        out.push(Metric::from_samples(
            name(Measure::CpuNs)?,
            s.cpu_ns.clone(),
        ));
    }
    if counting {
        out.push(Metric::from_samples(
            name(Measure::Allocs)?,
            s.allocs.clone(),
        ));
        out.push(Metric::from_samples(
            name(Measure::AllocBytes)?,
            s.alloc_bytes.clone(),
        ));
    }
    Ok(())
}

fn extra_metrics(extra: &BTreeMap<String, f64>, out: &mut Vec<Metric>) -> Result<(), NameError> {
    for (name, &value) in extra {
        let name = MetricName::parse(name)?;
        // Timing statistics computed elsewhere (e.g. `load/total/p99_ns`) are fine as single
        // values; exact per-operation counts are not.
        if name.measure().kind() == MetricKind::Deterministic {
            return Err(NameError::new(
                &name.to_string(),
                format!(
                    "`{}` is measured per operation and cannot be an extra single-value metric",
                    name.measure()
                ),
            ));
        }
        // A record's own value wins over a computed one with the same name.
        out.retain(|m| m.name != name);
        out.push(Metric::single(name, value));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_print() {
        let n = MetricName::parse("recall/vector_search/wall_ns").unwrap();
        assert_eq!(n.workload(), "recall");
        assert_eq!(n.stage(), "vector_search");
        assert_eq!(n.measure(), Measure::WallNs);
        assert_eq!(n.to_string(), "recall/vector_search/wall_ns");
        for ok in [
            "recall/total/p99_ns",
            "consolidation/cluster/alloc_bytes",
            "mixed/total/throughput_ops",
            "load/total/error_rate",
            "load/total/heap_growth_bytes_per_hour",
        ] {
            assert_eq!(MetricName::parse(ok).unwrap().to_string(), ok);
        }
    }

    #[test]
    fn bad_names_say_what_was_expected() {
        let e = |s: &str| MetricName::parse(s).unwrap_err().to_string();
        assert!(
            e("recall/total").contains("expected three parts"),
            "{}",
            e("recall/total")
        );
        assert!(e("recall/total/p99").contains("unknown measure `p99`: expected one of wall_ns"));
        assert!(e("Recall/total/wall_ns").contains("workload `Recall` must be lowercase"));
        assert!(e("recall//wall_ns").contains("stage is empty"));
        assert!(e("recall/*/wall_ns").contains("stage `*`"));
        let err: crate::Error = MetricName::parse("x/y").unwrap_err().into();
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn patterns_match_whole_parts() {
        let p = MetricPattern::parse("recall/*/alloc_bytes").unwrap();
        assert!(p.matches(&MetricName::parse("recall/rerank/alloc_bytes").unwrap()));
        assert!(!p.matches(&MetricName::parse("recall/rerank/allocs").unwrap()));
        assert!(!p.matches(&MetricName::parse("mixed/rerank/alloc_bytes").unwrap()));
        let all = MetricPattern::parse("*/*/*").unwrap();
        assert!(all.matches(&MetricName::parse("load/total/error_rate").unwrap()));
        assert!(MetricPattern::parse("recall/vec*/wall_ns")
            .unwrap_err()
            .message
            .contains("whole part"));
        assert!(MetricPattern::parse("*/*/p100_ns").is_err());
        assert!(
            MetricPattern::parse("recall/total/wall_ns")
                .unwrap()
                .specificity()
                > MetricPattern::parse("recall/*/wall_ns")
                    .unwrap()
                    .specificity()
        );
        assert!(
            MetricPattern::parse("recall/*/wall_ns")
                .unwrap()
                .specificity()
                > MetricPattern::parse("*/total/wall_ns")
                    .unwrap()
                    .specificity()
        );
    }

    fn workload() -> WorkloadResult {
        use crate::stage::{Measures, OpSample};
        let m = |wall: u64, cpu: u64, allocs: u64| Measures {
            wall_ns: wall,
            cpu_ns: cpu,
            allocs,
            alloc_bytes: 64 * allocs,
            peak_live_bytes: 0,
        };
        let mut c = crate::workload::summary::Collector::default();
        for i in 0..100u64 {
            let cpu = i % 10 == 0;
            let k = if cpu { 1 } else { 0 };
            c.push(&OpSample {
                total: m(10_000 + i, 9_000 * k, 5),
                stages: vec![("search", m(6_000 + i, 5_000 * k, 2))],
                cpu_sampled: cpu,
            });
        }
        let (stages, samples) = c.finish();
        WorkloadResult {
            workload: "recall".into(),
            ops: 100,
            warmup_ops: 0,
            cpu_sampled_ops: 10,
            elapsed_ns: 1_000_000,
            throughput_ops: 100_000.0,
            cache: None,
            op_counts: BTreeMap::new(),
            stages,
            samples,
            quality: None,
            instructions: None,
        }
    }

    #[test]
    fn a_workload_yields_named_metrics_with_their_samples() {
        let mut out = Vec::new();
        workload_metrics(&workload(), true, &mut out).unwrap();
        let names: Vec<String> = out.iter().map(|m| m.name.to_string()).collect();
        assert_eq!(
            names,
            [
                "recall/search/wall_ns",
                "recall/search/cpu_ns",
                "recall/search/allocs",
                "recall/search/alloc_bytes",
                "recall/other/wall_ns",
                "recall/other/cpu_ns",
                "recall/other/allocs",
                "recall/other/alloc_bytes",
                "recall/total/wall_ns",
                "recall/total/p95_ns",
                "recall/total/p99_ns",
                "recall/total/cpu_ns",
                "recall/total/allocs",
                "recall/total/alloc_bytes",
                "recall/total/throughput_ops",
            ]
        );
        let wall = &out[0];
        assert_eq!(wall.samples.len(), 90);
        assert_eq!(wall.kind(), MetricKind::Timing);
        assert_eq!(out[2].value, 2.0);
        assert_eq!(out[2].kind(), MetricKind::Deterministic);
        assert_eq!(out[14].value, 100_000.0);
        assert_eq!(out[14].direction(), Direction::HigherIsBetter);
        // Without the counting allocator there are no allocation metrics.
        let mut out = Vec::new();
        workload_metrics(&workload(), false, &mut out).unwrap();
        assert!(out.iter().all(|m| m.kind() != MetricKind::Deterministic));
    }

    #[test]
    fn extra_single_values_join_and_replace() {
        let mut out = Vec::new();
        workload_metrics(&workload(), true, &mut out).unwrap();
        let n = out.len();
        let extra: BTreeMap<String, f64> = [
            ("load/total/error_rate".to_owned(), 0.01),
            ("recall/total/throughput_ops".to_owned(), 5.0),
        ]
        .into_iter()
        .collect();
        extra_metrics(&extra, &mut out).unwrap();
        assert_eq!(out.len(), n + 1);
        let tp = out
            .iter()
            .find(|m| m.name.to_string() == "recall/total/throughput_ops")
            .unwrap();
        assert_eq!(tp.value, 5.0);
        let bad: BTreeMap<String, f64> = [("load/total/allocs".to_owned(), 1.0)]
            .into_iter()
            .collect();
        let e = extra_metrics(&bad, &mut out).unwrap_err();
        assert!(e.message.contains("per operation"), "{e}");
        // A load run's tail latency arrives as one value and is compared as one.
        let p99: BTreeMap<String, f64> = [("load/total/p99_ns".to_owned(), 1.5e6)]
            .into_iter()
            .collect();
        extra_metrics(&p99, &mut out).unwrap();
        let m = out
            .iter()
            .find(|m| m.name.to_string() == "load/total/p99_ns")
            .unwrap();
        assert_eq!(m.kind(), MetricKind::Single);
        assert_eq!(m.value, 1.5e6);
        let bad: BTreeMap<String, f64> = [("load/total".to_owned(), 1.0)].into_iter().collect();
        assert!(extra_metrics(&bad, &mut out).is_err());
    }

    #[test]
    fn statistics_match_the_run_table() {
        let v: Vec<u64> = (1..=100).rev().collect();
        assert_eq!(statistic_of(Statistic::Median, &v), 50.0);
        assert_eq!(statistic_of(Statistic::Percentile(99), &v), 99.0);
        assert_eq!(statistic_of(Statistic::Mean, &v), 50.5);
        assert!(statistic_of(Statistic::Median, &[]).is_nan());
    }
}
