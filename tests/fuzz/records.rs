//! Run records (`RunRecord::from_json` / `from_value`) and baseline exports
//! (`baseline::exchange::import`), and what consumes an accepted record without I/O: metric
//! extraction, the comparison against a valid base, and the run and check reports.

use std::path::Path;
use std::sync::OnceLock;

use perfcheck::compare::{compare, Thresholds};
use perfcheck::config::Profile;
use perfcheck::metrics::{MetricName, MetricSet, RunInfo};
use perfcheck::record::RunRecord;
use perfcheck::report;
use proptest::prelude::*;
use serde_json::{json, Value as Json};

use super::cases;
use super::mutate::{apply, mutations, weird_json};

/// Every workload, a handful of operations each, CPU sampling on: every field of a record is
/// present and small.
const PROFILE: &str = "workloads = [\"recall\", \"remember\", \"consolidation\", \"mixed\"]\n\
[corpus]\nevents = 300\ntopics = 4\nsessions = 10\nqueries = 20\n\
[run]\nwarmup_ops = 2\nops = 6\nconsolidation_ops = 1\nconsolidation_batch = 50\ncpu_sample_every = 3\n";

/// A real run record, made once per test binary by running the workloads through the engine's
/// harness binary, then given the optional parts a plain run lacks (commit, allocation counts, extra metrics,
/// a slowdown note, a `[load]` section in its profile).
pub fn valid_record() -> &'static Json {
    static RECORD: OnceLock<Json> = OnceLock::new();
    RECORD.get_or_init(|| {
        let tmp = tempfile::tempdir().expect("temp dir");
        let file = tmp.path().join("fuzz.toml");
        std::fs::write(&file, PROFILE).expect("the fuzz profile");
        let status = std::process::Command::new(super::common::harness_bin())
            .current_dir(tmp.path())
            .args(["run", "-q", "--profile"])
            .arg(&file)
            .env_remove("PERFCHECK_SLOW_STAGE")
            .stdout(std::process::Stdio::null())
            .status()
            .expect("the harness runs");
        assert!(status.success(), "the fuzz run failed: {status}");
        let runs: Vec<_> = std::fs::read_dir(tmp.path().join("reports"))
            .expect("reports")
            .map(|e| e.expect("entry").path())
            .collect();
        let bytes = std::fs::read(runs[0].join("run.json")).expect("run.json");
        let mut v: Json = serde_json::from_slice(&bytes).expect("run.json is JSON");
        let mut profile: Profile =
            serde_json::from_value(v["profile"].clone()).expect("the record's profile");
        profile.load = Some(perfcheck::load::LoadSettings::default());
        v["profile"] = serde_json::to_value(&profile).expect("profile encodes");
        v["git"] = json!({
            "commit": "0123456789abcdef0123456789abcdef01234567",
            "branch": "main",
            "dirty": true,
        });
        v["counting_allocator"] = json!(true);
        v["slowdown"] = json!("rerank:10");
        v["extra_metrics"] = json!({
            "load/total/error_rate": 0.001,
            "load/total/p99_ns": 1.5e6,
            "load/peak/heap_growth_bytes_per_hour": -3.0,
        });
        v
    })
}

/// The valid record's metrics: the base every mutated head is compared against.
fn base_set() -> &'static MetricSet {
    static SET: OnceLock<MetricSet> = OnceLock::new();
    SET.get_or_init(|| {
        let r = RunRecord::from_value(valid_record().clone(), "valid").expect("valid record");
        MetricSet::from_record(&r).expect("valid metrics")
    })
}

/// Nesting depth of a JSON value (serde_json refuses to parse past 128).
fn depth(v: &Json) -> usize {
    match v {
        Json::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Json::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Where two JSON trees differ, as a path; numbers equal to the last bit or two count as the
/// same (serde_json's default float parser may round the 17th digit differently from its
/// printer).
pub fn first_difference(a: &Json, b: &Json, at: String) -> Option<String> {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => {
            let (x, y) = (x.as_f64()?, y.as_f64()?);
            (x != y && (x - y).abs() > 1e-15 * x.abs().max(y.abs()))
                .then(|| format!("{at}: {x} vs {y}"))
        }
        (Json::Array(x), Json::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (x, y))| first_difference(x, y, format!("{at}[{i}]"))),
        (Json::Object(x), Json::Object(y)) if x.len() == y.len() => {
            x.iter().find_map(|(k, v)| match y.get(k) {
                Some(w) => first_difference(v, w, format!("{at}.{k}")),
                None => Some(format!("{at}.{k}: missing")),
            })
        }
        _ => (a != b).then(|| format!("{at}: {a} vs {b}")),
    }
}

/// Everything done with an accepted record short of writing it: each step must return, and
/// the record must read back as itself.
pub fn consume(r: &RunRecord) {
    let bytes = serde_json::to_vec(r).expect("an accepted record encodes");
    let back = RunRecord::from_json(&bytes, "round trip")
        .unwrap_or_else(|e| panic!("an accepted record does not read back: {e}"));
    let (a, b) = (
        serde_json::to_value(r).expect("encodes"),
        serde_json::to_value(&back).expect("encodes"),
    );
    if let Some(at) = first_difference(&a, &b, String::new()) {
        panic!("the record changed on a round trip at {at}");
    }

    for w in &r.workloads {
        let t = report::table::workload_table(w);
        assert!(t.starts_with(w.workload.as_str()), "{t}");
        assert!(t.lines().count() >= w.stages.len() + 2, "{t}");
    }
    let _ = r.machine.key();
    let info = RunInfo::from_record(r);
    assert!(!info.short().is_empty());

    match perfcheck::check::metric_set(r) {
        Ok(set) => {
            for m in &set.metrics {
                let s = m.name.to_string();
                let again = MetricName::parse(&s)
                    .unwrap_or_else(|e| panic!("extracted name `{s}` does not parse: {e}"));
                assert_eq!(again, m.name);
                let _ = (m.kind(), m.unit(), m.direction(), m.statistic());
            }
            // A small bootstrap keeps each case fast; the code path is the full comparison.
            let thresholds = Thresholds {
                resamples: 20,
                ..Thresholds::default()
            };
            let c = compare(std::slice::from_ref(base_set()), &set, &thresholds, 1);
            assert!(c.verdicts.len() >= set.metrics.len());
            let _ = report::check::terminal(&c, false, true);
            let _ = report::check::markdown(&c);
            let _ = report::check::json(&c);
            let _ = report::check::annotations(&c);
        }
        Err(e) => assert!(e.to_string().contains("cannot name"), "{e}"),
    }
}

/// Decodes a mutated record both ways (from the tree and from its text) and consumes it.
fn check_record_value(v: Json) {
    let text = serde_json::to_vec(&v).expect("a JSON tree encodes");
    let from_text = RunRecord::from_json(&text, "fuzz.json");
    let from_value = RunRecord::from_value(v.clone(), "fuzz.json");
    match &from_value {
        Ok(r) => {
            if depth(&v) < 120 {
                assert!(
                    from_text.is_ok(),
                    "accepted as a tree, refused as text: {:?}",
                    from_text.as_ref().err()
                );
            }
            consume(r);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    if let Ok(r) = from_text {
        consume(&r);
    }
}

/// Writes `bytes` to a file and imports it; accepted runs are consumed.
fn check_import(dir: &Path, bytes: &[u8]) {
    let path = dir.join("export.json");
    std::fs::write(&path, bytes).expect("write the export");
    match perfcheck::baseline::exchange::import(&path) {
        Ok(runs) => runs.iter().for_each(consume),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

fn valid_export() -> Json {
    json!({
        "schema": 1,
        "kind": "perfcheck-baselines",
        "runs": [valid_record(), valid_record()],
    })
}

#[test]
fn the_valid_record_and_export_are_accepted() {
    let r = RunRecord::from_value(valid_record().clone(), "valid").expect("valid record");
    assert_eq!(r.workloads.len(), 4);
    consume(&r);
    let tmp = tempfile::tempdir().expect("temp dir");
    let path = tmp.path().join("export.json");
    std::fs::write(&path, serde_json::to_vec(&valid_export()).expect("encodes")).expect("write");
    let runs = perfcheck::baseline::exchange::import(&path).expect("valid export");
    assert_eq!(runs.len(), 2);
}

#[test]
fn every_prefix_of_a_record_is_refused() {
    let text = serde_json::to_string(valid_record()).expect("encodes");
    for p in super::mutate::prefixes(&text) {
        assert!(
            RunRecord::from_json(p.as_bytes(), "cut.json").is_err(),
            "prefix of {} bytes accepted",
            p.len()
        );
    }
}

#[test]
fn prefixes_of_an_export_are_refused() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let text = serde_json::to_string(&valid_export()).expect("encodes");
    // Every 13th cut: each goes through a file.
    for p in super::mutate::prefixes(&text).step_by(13) {
        let path = tmp.path().join("cut.json");
        std::fs::write(&path, p).expect("write");
        assert!(perfcheck::baseline::exchange::import(&path).is_err());
    }
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn record_from_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(r) = RunRecord::from_json(&bytes, "fuzz.json") {
            consume(&r);
        }
    }

    #[test]
    fn record_from_arbitrary_json(v in weird_json()) {
        check_record_value(v);
    }

    #[test]
    fn record_from_mutated_valid_records(muts in mutations(weird_json())) {
        let mut v = valid_record().clone();
        apply(&mut v, &muts);
        check_record_value(v);
    }

    #[test]
    fn export_from_mutated_valid_exports(muts in mutations(weird_json())) {
        let tmp = tempfile::tempdir().expect("temp dir");
        let mut v = valid_export();
        apply(&mut v, &muts);
        check_import(tmp.path(), &serde_json::to_vec(&v).expect("encodes"));
    }

    #[test]
    fn export_from_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let tmp = tempfile::tempdir().expect("temp dir");
        check_import(tmp.path(), &bytes);
    }
}
