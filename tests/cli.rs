//! End-to-end tests of `cargo perfcheck run` through the real binary.

use std::path::Path;

mod common;

use common::{git_repo, only_run, perfcheck};
use predicates::prelude::*;
use serde_json::Value;

fn only_run_json(reports: &Path) -> Value {
    let text =
        std::fs::read_to_string(only_run(reports).join("run.json")).expect("run.json written");
    serde_json::from_str(&text).expect("run.json is JSON")
}

fn stage<'a>(workload: &'a Value, name: &str) -> &'a Value {
    workload["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == name)
        .unwrap_or_else(|| panic!("stage {name} missing in {}", workload["workload"]))
}

#[test]
fn run_writes_a_complete_record_with_commit_and_prints_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let sha = git_repo(tmp.path());
    let out = perfcheck(tmp.path())
        .args(["perfcheck", "run", "--profile", "tiny", "-w", "recall"])
        .args(["-w", "remember"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let stdout = String::from_utf8(out).unwrap();
    for needle in [
        "recall: ",
        "remember: ",
        "embed_query",
        "vector_search",
        "rerank",
        "format",
        "persist",
        "index_insert",
        "allocs/op",
        &sha[..10],
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in\n{stdout}");
    }
    assert!(!stdout.contains("consolidation:"), "only two workloads ran");

    let rec = only_run_json(&tmp.path().join("reports"));
    assert_eq!(rec["schema"], 1);
    assert_eq!(rec["git"]["commit"], sha.as_str());
    assert_eq!(rec["git"]["dirty"], false);
    assert_eq!(rec["profile"]["name"], "tiny");
    assert_eq!(rec["counting_allocator"], true);
    let workloads = rec["workloads"].as_array().unwrap();
    assert_eq!(workloads.len(), 2);

    let recall = &workloads[0];
    assert_eq!(recall["workload"], "recall");
    // tiny: 200 timed operations plus one CPU-sampled operation per 10.
    assert_eq!(recall["ops"], 220);
    assert_eq!(recall["cpu_sampled_ops"], 20);
    let total = stage(recall, "total");
    assert_eq!(total["ops"], 200);
    let p50 = total["p50_ns"].as_u64().unwrap();
    let p99 = total["p99_ns"].as_u64().unwrap();
    assert!(p50 > 0 && p50 <= p99, "p50 {p50} p99 {p99}");
    assert!(total["allocs_per_op"].as_f64().unwrap() > 0.0);
    assert!(total["cpu_mean_ns"].as_f64().unwrap() > 0.0);
    let cache = &recall["cache"];
    assert_eq!(
        cache["hits"].as_u64().unwrap() + cache["misses"].as_u64().unwrap(),
        220
    );
    assert!(cache["hits"].as_u64().unwrap() > 0, "repeats hit the cache");
    // Quality is measured after the timed part: the tiny corpus is easy (0.96 measured).
    let q = &recall["quality"];
    assert!(q["recall_at_k"].as_f64().unwrap() >= 0.85, "{q}");
    assert!(q["ann_recall_at_10"].as_f64().unwrap() >= 0.95, "{q}");
    assert_eq!(q["k"], 10);
    let search = stage(recall, "vector_search");
    assert!(search["share"].as_f64().unwrap() > 0.0);
    let raw = recall["samples"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "total")
        .unwrap();
    assert_eq!(raw["wall_ns"].as_array().unwrap().len(), 200);
    assert_eq!(raw["cpu_ns"].as_array().unwrap().len(), 20);

    let remember = &workloads[1];
    for s in ["embed", "persist", "index_insert"] {
        let st = stage(remember, s);
        assert_eq!(st["ops"], 200, "{s}");
    }
    assert!(stage(remember, "embed")["allocs_per_op"].as_f64().unwrap() >= 1.0);
}

#[test]
fn all_workloads_record_every_canonical_stage() {
    let tmp = tempfile::tempdir().unwrap();
    perfcheck(tmp.path())
        .args(["run", "--profile", "tiny", "--quiet"])
        .assert()
        .success();
    let rec = only_run_json(&tmp.path().join("reports"));
    assert!(rec["git"].is_null(), "no repository here");
    let by_name = |n: &str| {
        rec["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["workload"] == n)
            .unwrap_or_else(|| panic!("workload {n} missing"))
            .clone()
    };
    let consolidation = by_name("consolidation");
    for s in [
        "load_events",
        "cluster",
        "extract_patterns",
        "validate",
        "store_facts",
    ] {
        assert_eq!(stage(&consolidation, s)["ops"], 3, "{s}");
    }
    let purity = consolidation["quality"]["purity"].as_f64().unwrap();
    assert!(purity >= 0.9, "planted topics recovered: purity {purity}");
    let mixed = by_name("mixed");
    let counts = &mixed["op_counts"];
    let recall = counts["recall"].as_u64().unwrap();
    let remember = counts["remember"].as_u64().unwrap();
    assert_eq!(
        recall + remember + counts["consolidation"].as_u64().unwrap_or(0),
        220
    );
    assert!(recall > remember, "80/15/5 mix: {counts}");
    assert!(stage(&mixed, "vector_search")["ops"].as_u64().unwrap() > 0);
    assert!(stage(&mixed, "persist")["ops"].as_u64().unwrap() > 0);
}

#[test]
fn unknown_workload_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    perfcheck(tmp.path())
        .args(["run", "--profile", "tiny", "--workload", "recal"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("--workload")
                .and(predicate::str::contains("recal"))
                .and(predicate::str::contains(
                    "recall, remember, consolidation, mixed",
                )),
        );
    assert!(!tmp.path().join("reports").exists(), "nothing written");
}

#[test]
fn unknown_profile_names_the_flag_and_the_choices() {
    let tmp = tempfile::tempdir().unwrap();
    perfcheck(tmp.path())
        .args(["run", "--profile", "quik"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("unknown profile `quik` (--profile)")
                .and(predicate::str::contains("quick"))
                .and(predicate::str::contains("tiny")),
        );
}

#[test]
fn malformed_profile_names_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("profiles")).unwrap();
    std::fs::write(
        tmp.path().join("profiles/broken.toml"),
        "[corpus]\nevents = 100\n[run\nops = 3\n",
    )
    .unwrap();
    perfcheck(tmp.path())
        .args(["run", "--profile", "broken"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("profiles/broken.toml")
                .and(predicate::str::contains("line 3")),
        );
    std::fs::write(tmp.path().join("profiles/typo.toml"), "[run]\nopss = 3\n").unwrap();
    perfcheck(tmp.path())
        .args(["run", "--profile", "profiles/typo.toml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("opss").and(predicate::str::contains("typo.toml")));
}

#[test]
fn a_local_profile_file_overrides_the_builtin_one() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("profiles")).unwrap();
    std::fs::write(
        tmp.path().join("profiles/tiny.toml"),
        "[corpus]\nevents = 400\ntopics = 4\nsessions = 10\nqueries = 20\n[run]\nwarmup_ops = 2\nops = 30\ncpu_sample_every = 0\n",
    )
    .unwrap();
    perfcheck(tmp.path())
        .args(["run", "-p", "tiny", "-w", "remember", "-q"])
        .assert()
        .success();
    let rec = only_run_json(&tmp.path().join("reports"));
    assert_eq!(rec["profile"]["corpus"]["events"], 400);
    assert_eq!(rec["workloads"][0]["ops"], 30);
    assert_eq!(rec["workloads"][0]["cpu_sampled_ops"], 0);
}

#[test]
fn malformed_slowdown_knob_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    perfcheck(tmp.path())
        .env("PERFCHECK_SLOW_STAGE", "vector_search")
        .args(["run", "--profile", "tiny"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("PERFCHECK_SLOW_STAGE")
                .and(predicate::str::contains("STAGE:PERCENT")),
        );
}

#[test]
fn profiles_lists_the_builtin_profiles() {
    let tmp = tempfile::tempdir().unwrap();
    perfcheck(tmp.path())
        .args(["perfcheck", "profiles"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("quick")
                .and(predicate::str::contains("ci"))
                .and(predicate::str::contains("tiny")),
        );
}

#[test]
fn workloads_lists_the_harness_workloads_in_run_order() {
    let tmp = tempfile::tempdir().unwrap();
    let out = perfcheck(tmp.path())
        .args(["perfcheck", "workloads"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let names: Vec<String> = String::from_utf8(out)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    assert_eq!(names, ["recall", "remember", "consolidation", "mixed"]);
}

#[test]
fn without_a_harness_run_explains_the_convention_and_exits_2() {
    // Not a cargo package, and no PERFCHECK_HARNESS: the launcher has nothing to build.
    let tmp = tempfile::tempdir().unwrap();
    assert_cmd::Command::cargo_bin("cargo-perfcheck")
        .unwrap()
        .current_dir(tmp.path())
        .env_remove("PERFCHECK_HARNESS")
        .args(["run", "-p", "tiny"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("cargo package").and(predicate::str::contains(
                tmp.path().file_name().unwrap().to_string_lossy().as_ref(),
            )),
        );
}
