//! `cargo perfcheck load` end to end: phases, records, charts, reconciliation, overload,
//! the gate over load metrics, flag errors, and the 60-second soak code path.
//!
//! No assertion is about wall time; the only clocks are deadlock guards.

mod common;
#[path = "../crates/engine/examples/perfcheck/embed_switch.rs"]
mod embed_switch;
/// The engine's load target, as its harness registers it.
#[path = "../crates/engine/examples/perfcheck/load.rs"]
mod engine_load;
/// Its faults and write ledger (`cargo perfcheck chaos`), which it refers to.
#[path = "../crates/engine/examples/perfcheck/faults.rs"]
mod faults;
/// Its live gauges and health (`--metrics-addr`).
#[path = "../crates/engine/examples/perfcheck/gauges.rs"]
mod gauges;
#[path = "../crates/engine/examples/perfcheck/ledger.rs"]
mod ledger;
#[path = "../crates/engine/examples/perfcheck/sqlite_faults.rs"]
mod sqlite_faults;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use common::Project;
use perfcheck::compare::{compare, Status, Thresholds};
use perfcheck::config::Profile;
use perfcheck::load::{self, LoadRequest, LoadSettings, PhaseSpec};
use perfcheck::metrics::{Metric, MetricName, MetricSet};
use predicates::prelude::*;
use serde_json::Value;

/// A load profile small enough for a debug build: 600 events, a few seconds.
const MINI_LOAD: &str = r#"
workloads = ["mixed"]
[corpus]
events = 600
topics = 6
sessions = 20
queries = 60
[load]
rate = 150
timeout = "2s"
phases = [
  { name = "ramp-up", duration = "1s", from = 0.2, to = 1.0 },
  { name = "steady", duration = "3s", rate = 1.0 },
]
[load.slo]
p99 = "2s"
error_rate = 0.01
"#;

/// The run folder named on stdout (`run record: <dir>/run.json`).
fn run_dir(root: &Path, stdout: &str) -> PathBuf {
    let rel = stdout
        .lines()
        .find_map(|l| l.strip_prefix("run record: "))
        .expect("run record path printed");
    root.join(rel).parent().unwrap().to_path_buf()
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every chart exists as SVG and as a PNG that decodes.
fn assert_charts(dir: &Path, stems: &[&str]) {
    for stem in stems {
        let svg = std::fs::read_to_string(dir.join(format!("{stem}.svg"))).unwrap();
        assert!(svg.contains("<svg") && svg.contains("</svg>"), "{stem}.svg");
        let file = std::fs::File::open(dir.join(format!("{stem}.png"))).unwrap();
        let mut reader = png::Decoder::new(std::io::BufReader::new(file))
            .read_info()
            .unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert!(info.width >= 800 && info.height >= 400, "{stem}.png");
        // Not a blank canvas: some pixels differ from the first one.
        assert!(buf.iter().any(|&b| b != buf[0]), "{stem}.png is blank");
    }
}

#[test]
fn phases_write_a_record_with_load_metrics_charts_and_reconciled_counts_and_check_gates_them() {
    let _turn = take_turn();
    let p = Project::new(MINI_LOAD, None);
    // Baseline on the first commit.
    p.cmd()
        .args(["load", "-p", "mini", "-q", "--save"])
        .assert()
        .success()
        .stdout(predicate::str::contains("saved as a baseline"));
    p.commit("second");
    let out = p.cmd().args(["load", "-p", "mini", "-q"]).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    for phase in [
        "ramp-up",
        "steady",
        "total",
        "all counts reconcile",
        "slo steady",
    ] {
        assert!(stdout.contains(phase), "{phase} missing:\n{stdout}");
    }
    let dir = run_dir(p.path(), &stdout);

    let record = json(&dir.join("run.json"));
    let extra = record["extra_metrics"].as_object().unwrap();
    for m in [
        "load/total/p99_ns",
        "load/total/p95_ns",
        "load/total/throughput_ops",
        "load/total/error_rate",
        "load/steady/p99_ns",
        "load/ramp_up/throughput_ops",
    ] {
        assert!(extra.contains_key(m), "{m} missing from {extra:?}");
    }
    assert_eq!(extra["load/total/error_rate"], 0.0);
    assert_eq!(record["profile"]["name"], "mini");
    assert_eq!(record["profile"]["load"]["rate"], 150.0);

    let report = json(&dir.join("load.json"));
    let rec = &report["reconciliation"];
    assert_eq!(rec["problems"].as_array().unwrap().len(), 0, "{rec}");
    assert_eq!(
        rec["events_after"].as_u64().unwrap(),
        rec["events_before"].as_u64().unwrap() + rec["remembered"].as_u64().unwrap()
    );
    let run = &report["run"];
    let phases = run["phases"].as_array().unwrap();
    assert_eq!(phases.len(), 2);
    // Open loop: every scheduled operation is accounted for.
    let total = &run["total"];
    let by_kind: u64 = total["by_kind"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["ops"].as_u64().unwrap())
        .sum();
    assert_eq!(by_kind, total["offered_ops"].as_u64().unwrap());
    assert!(run["timeline"].as_array().unwrap().len() >= 3);
    assert!(
        run["timeline"][0]["resources"]["rss_bytes"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert_charts(
        &dir,
        &[
            "latency-over-time",
            "throughput",
            "memory",
            "latency-distribution",
        ],
    );

    // The gate reads the run file and compares its load metrics with the baseline.
    let out = p
        .cmd()
        .args(["check", "-q", "--run-file"])
        .arg(dir.join("run.json"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let check = json(&dir.join("check.json"));
    let verdict = |name: &str| {
        check["verdicts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["metric"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} not compared"))
    };
    assert_eq!(verdict("load/total/error_rate")["status"], "unchanged");
    assert!(verdict("load/total/p99_ns")["base"].as_f64().unwrap() > 0.0);
    assert!(
        verdict("load/steady/throughput_ops")["head"]
            .as_f64()
            .unwrap()
            > 0.0
    );

    // An absolute ceiling fails the gate whatever the base.
    std::fs::write(
        p.path().join("perfcheck.toml"),
        "[thresholds.overrides]\n\"load/*/error_rate\" = { max = -1 }\n",
    )
    .unwrap();
    p.cmd()
        .args(["check", "-q", "--run-file"])
        .arg(dir.join("run.json"))
        .assert()
        .code(1)
        .stdout(predicate::str::contains("load/total/error_rate"));
}

#[test]
fn bad_flag_values_name_the_flag_and_the_expected_form() {
    let p = Project::new(MINI_LOAD, None);
    for (args, expect) in [
        (vec!["--rate", "fast"], "--rate"),
        (vec!["--rate", "-5"], "operations per second"),
        (vec!["--mix", "recal=80"], "KIND=WEIGHT"),
        (vec!["--mix", "recall=x"], "--mix"),
        (vec!["--phases", "peak=60s"], "NAME=DURATION@RATE"),
        (vec!["--duration", "soon"], "expected e.g. 60s"),
        (vec!["--duration", "0s"], "--duration"),
        (vec!["--workers", "0"], "--workers"),
        (
            vec!["--duration", "5s", "--phases", "a=1s@1"],
            "cannot be used with",
        ),
    ] {
        p.cmd()
            .args(["load", "-p", "mini", "-q"])
            .args(&args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(expect));
    }
    p.cmd()
        .args(["load", "-p", "nope", "-q"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown profile `nope`"));
}

/// Runs `f` on a thread; a run that does not finish within `limit` fails the test (a
/// deadlock guard, not a timing assertion).
/// The load runs take turns: each is judged against latency and error limits, and a flood
/// running beside it on a 2-core machine would be measured with it.
static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn take_turn() -> std::sync::MutexGuard<'static, ()> {
    // A test that failed while holding the turn must not fail the others.
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .expect("load run did not finish: deadlock or livelock")
}

#[test]
fn overload_sheds_late_operations_and_still_reconciles() {
    let _turn = take_turn();
    let mut profile = Profile::parse(MINI_LOAD, "overload", Path::new("<test>")).unwrap();
    profile.load = Some(LoadSettings {
        // Far beyond what a debug build serves, with a tight deadline: the queue must be shed,
        // not grow without bound, and nothing may be lost or double counted.
        rate: 50_000.0,
        workers: 3,
        timeout: Duration::from_millis(5),
        phases: vec![PhaseSpec::steady("flood", 2, 1.0)],
        ..LoadSettings::default()
    });
    let reports = tempfile::tempdir().unwrap();
    let harness = perfcheck::harness::Harness::new().load_target(engine_load::EngineLoad);
    let req = LoadRequest {
        target: load::target(&harness).unwrap(),
        profile,
        find_max: false,
        reports_dir: reports.path().to_path_buf(),
        repo_dir: reports.path().to_path_buf(),
        monitor: None,
    };
    let outcome = within(Duration::from_secs(600), move || {
        load::execute(&req, &mut |_| {}, &mut |_| {}).map(|o| o.report)
    })
    .unwrap();
    let run = outcome.run.as_ref().unwrap();
    let flood = &run.phases[0];
    assert_eq!(flood.offered_ops, 100_000);
    assert!(flood.shed > 0 && flood.timeouts >= flood.shed, "{flood:?}");
    assert_eq!(flood.errors, 0);
    let ops: u64 = flood.by_kind.iter().map(|k| k.ops).sum();
    assert_eq!(
        ops, flood.offered_ops,
        "every scheduled operation accounted for"
    );
    assert!(outcome.reconciliation.ok(), "{:?}", outcome.reconciliation);
    // The stress SLO fails the run (failures above the limit): `load` would exit 1.
    assert!(!outcome.passed());
}

#[test]
fn absolute_ceilings_gate_values_whose_base_is_zero() {
    let set = |v: f64| MetricSet {
        metrics: vec![Metric::single(
            MetricName::parse("load/total/error_rate").unwrap(),
            v,
        )],
        ..MetricSet::default()
    };
    let t = Thresholds::default();
    let ok = compare(&[set(0.0)], &set(0.0), &t, 1);
    assert_eq!(ok.verdicts[0].status, Status::Unchanged);
    let bad = compare(&[set(0.0)], &set(0.02), &t, 1);
    assert!(
        bad.verdicts[0].status.is_regression(),
        "{:?}",
        bad.verdicts[0]
    );
    // With no baseline at all the ceiling still applies.
    let new = compare(&[], &set(0.02), &t, 1);
    assert!(new.verdicts[0].status.is_regression());
}

/// The soak code path for 60 seconds (`profiles/soak-ci.toml`): heap growth measured, gated
/// by the profile's limit, counts reconciled, charts drawn.
#[test]
fn soak_ci_runs_the_soak_code_path_for_a_minute() {
    let _turn = take_turn();
    let dir = tempfile::tempdir().unwrap();
    let out = within(Duration::from_secs(900), {
        let path = dir.path().to_path_buf();
        move || {
            common::launcher()
                .current_dir(&path)
                .env_remove("PERFCHECK_STORE")
                .args(["load", "-p", "soak-ci", "-q"])
                .output()
                .unwrap()
        }
    });
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("heap growth over `steady`"), "{stdout}");
    let run = run_dir(dir.path(), &stdout);
    let record = json(&run.join("run.json"));
    let growth = record["extra_metrics"]["load/total/heap_growth_bytes_per_hour"]
        .as_f64()
        .expect("heap growth in the record");
    assert!(growth.is_finite());
    let report = json(&run.join("load.json"));
    let h = &report["heap_growth"];
    assert!(h["samples"].as_u64().unwrap() >= 30, "{h}");
    // The index grows with every remembered event; the gated number excludes it.
    assert!(h["index_bytes_per_hour"].as_f64().unwrap() > 0.0, "{h}");
    assert!(report["slo"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["what"] == "heap_growth_bytes_per_hour" && c["pass"] == true));
    assert_eq!(report["reconciliation"]["problems"], serde_json::json!([]));
    assert_charts(&run, &["memory", "latency-over-time"]);
}

#[test]
fn a_harness_without_a_load_target_is_a_usage_error_saying_how_to_add_one() {
    // The only harness binary here registers one; the check `load` makes first is this.
    let h = perfcheck::harness::Harness::new().profile("mini", MINI_LOAD);
    let e = load::target(&h).err().expect("no load target");
    assert_eq!(e.exit_code(), 2);
    let m = e.to_string();
    assert!(
        m.contains("this harness has no load target") && m.contains("load_target("),
        "{m}"
    );
}
