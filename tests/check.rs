//! The regression gate end to end: real git repositories, real SQLite stores, the real binary.

mod common;

use std::path::{Path, PathBuf};

use common::{Project, MINI_GATE};
use predicates::prelude::*;
use serde_json::Value;

/// Generous limits: these tests are about the gate's plumbing and ancestry, so only an
/// unmistakable slowdown may fail them on a busy machine.
const LOOSE: &str =
    "[thresholds]\ntime = { warn = 60, fail = 100 }\nthroughput = { warn = 60, fail = 100 }\n";

fn project() -> Project {
    Project::new(MINI_GATE, Some(LOOSE))
}

/// Runs `check -p mini` and returns (exit code, stdout, check.json).
fn check(p: &Project, args: &[&str], slow: Option<&str>) -> (i32, String, Value) {
    let mut c = p.cmd();
    c.args(["check", "-p", "mini", "-q"]).args(args);
    if let Some(s) = slow {
        c.env("PERFCHECK_SLOW_STAGE", s);
    }
    let out = c.output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let code = out.status.code().unwrap();
    assert!(
        code == 0 || code == 1,
        "check failed with {code}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (code, stdout, newest_check_json(&p.path().join("reports")))
}

fn newest_check_json(reports: &Path) -> Value {
    let dir = common::newest_check_dir(reports.parent().expect("reports has a parent"));
    let text = std::fs::read_to_string(dir.join("check.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn base_commits(check: &Value) -> Vec<String> {
    check["base"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["commit"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_slowed_stage_fails_the_gate_and_is_named_while_an_unchanged_rerun_passes() {
    let p = project();
    let base = p.head();
    p.save();
    // A later commit is compared with the nearest ancestor that has a baseline.
    p.commit("second");

    let (code, stdout, json) = check(&p, &[], None);
    assert_eq!(code, 0, "unchanged code must pass:\n{stdout}");
    assert_eq!(base_commits(&json), vec![base.clone()]);
    assert_eq!(json["counts"]["fail"], 0);

    let (code, stdout, json) = check(&p, &[], Some("rerank:400"));
    assert_eq!(code, 1, "a 5x slower rerank must fail:\n{stdout}");
    assert!(stdout.contains("recall/rerank/wall_ns"), "{stdout}");
    let verdicts = json["verdicts"].as_array().unwrap();
    let failed: Vec<&str> = verdicts
        .iter()
        .filter(|v| v["status"] == "fail")
        .filter_map(|v| v["metric"].as_str())
        .collect();
    assert!(
        failed.contains(&"recall/rerank/wall_ns"),
        "failed metrics: {failed:?}"
    );
    // The slowed stage is the one that moved most among the stages (totals contain it).
    let worst_stage = verdicts
        .iter()
        .filter(|v| {
            let m = v["metric"].as_str().unwrap();
            m.ends_with("/wall_ns") && !m.contains("/total/") && !m.contains("/other/")
        })
        .max_by(|a, b| {
            let c = |v: &Value| v["change"].as_f64().unwrap_or(f64::MIN);
            c(a).total_cmp(&c(b))
        })
        .unwrap();
    assert_eq!(worst_stage["metric"], "recall/rerank/wall_ns");
    let md_dirs: Vec<PathBuf> = std::fs::read_dir(p.path().join("reports"))
        .unwrap()
        .map(|e| e.unwrap().path().join("check.md"))
        .filter(|p| p.exists())
        .collect();
    assert_eq!(md_dirs.len(), 2);
}

#[test]
fn a_pull_request_branch_is_compared_with_its_merge_base() {
    let p = project();
    p.commit("a");
    let fork = p.head();
    p.save();
    // The default branch moves on and gets its own baseline...
    p.commit("main moves");
    p.save();
    // ...but the pull request forked earlier.
    p.checkout_new_branch("feature", &fork);
    p.commit("feature work");
    let (_, _, json) = check(&p, &[], None);
    assert_eq!(base_commits(&json), vec![fork]);
}

#[test]
fn dirty_baselines_are_skipped_and_a_missing_baseline_is_said_plainly() {
    let p = project();
    std::fs::write(p.path().join("scratch.txt"), "uncommitted").unwrap();
    p.cmd()
        .args(["run", "-p", "mini", "-q", "--save"])
        .assert()
        .success()
        .stdout(predicate::str::contains("DIRTY"));
    std::fs::remove_file(p.path().join("scratch.txt")).unwrap();
    p.commit("next");

    let (code, stdout, json) = check(&p, &[], None);
    assert_eq!(code, 0, "no baseline passes by default");
    assert!(stdout.contains("no baseline: no stored run"), "{stdout}");
    assert_eq!(json["status"], "no_baseline");

    p.cmd()
        .args(["check", "-p", "mini", "-q", "--fail-without-baseline"])
        .assert()
        .code(1);
    // Asked explicitly, the dirty run is a baseline.
    let (_, _, json) = check(&p, &["--include-dirty-baselines"], None);
    assert_eq!(json["base"].as_array().unwrap().len(), 1);
}

#[test]
fn another_machines_baseline_is_not_used() {
    let p = project();
    p.save();
    let export = p.path().join("export.json");
    p.cmd()
        .args(["baseline", "export", "-o"])
        .arg(&export)
        .assert()
        .success();
    // The same run as if made on another CPU.
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&export).unwrap()).unwrap();
    let run = &mut doc["runs"][0];
    run["machine"]["cpu_model"] = "Some Other CPU".into();
    run["run_id"] = "elsewhere".into();
    let store = p.path().join("other.sqlite");
    std::fs::write(&export, serde_json::to_string(&doc).unwrap()).unwrap();
    p.cmd()
        .args(["baseline", "import"])
        .arg(&export)
        .arg("--store")
        .arg(&store)
        .assert()
        .success();
    let (code, stdout, _) = check(&p, &["--store", store.to_str().unwrap()], None);
    assert_eq!(code, 0);
    assert!(stdout.contains("no baseline"), "{stdout}");
}

#[test]
fn explicit_base_detached_head_run_file_and_github_outputs() {
    let p = project();
    let first = p.head();
    p.save();
    let second = p.commit("second");
    p.save();
    // A real regression, counted exactly (a timing one can drown in a loaded machine's
    // noise): re-ranking twenty times the candidates allocates far more per recall.
    std::fs::write(
        p.path().join("profiles/mini.toml"),
        format!("{MINI_GATE}[engine]\ncandidates = 1000\n"),
    )
    .unwrap();
    p.commit("third");
    // Detached HEAD, as CI checks out pull requests.
    let head = p.repo.head().unwrap().target().unwrap();
    p.repo.set_head_detached(head).unwrap();

    let summary = p.path().join("summary.md");
    let mut c = p.cmd();
    c.env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_ACTIONS", "true")
        .args(["check", "-p", "mini", "-q", "--base", "HEAD~2"]);
    let out = c.output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("::error"), "annotations: {stdout}");
    assert!(stdout.contains("recall/rerank/allocs"), "{stdout}");
    let json = newest_check_json(&p.path().join("reports"));
    assert_eq!(base_commits(&json), vec![first]);
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.starts_with("### ❌ perfcheck"), "{md}");

    // Re-check the same run file against the other baseline: no new run needed.
    let run_json = std::fs::read_dir(p.path().join("reports"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|d| d.join("check.json").exists())
        .max_by_key(|d| {
            std::fs::metadata(d.join("check.json"))
                .unwrap()
                .modified()
                .unwrap()
        })
        .unwrap()
        .join("run.json");
    p.cmd()
        .args(["check", "--base", &second[..8], "--run-file"])
        .arg(&run_json)
        .assert()
        .code(1);
    let json = newest_check_json(&p.path().join("reports"));
    assert_eq!(base_commits(&json), vec![second]);

    p.cmd()
        .args(["check", "-p", "mini", "-q", "--base", "no-such-rev"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--base no-such-rev"));
}

#[test]
fn a_shallow_clone_says_its_history_is_cut() {
    let p = project();
    p.save();
    p.commit("second");
    let store = p.path().join("baselines/perfcheck.sqlite");
    let clone = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("git")
        .args(["clone", "-q", "--depth", "1"])
        .arg(format!("file://{}", p.path().display()))
        .arg(clone.path().join("c"))
        .status()
        .unwrap();
    assert!(status.success());
    let dir = clone.path().join("c");
    let mut c = common::launcher();
    c.current_dir(&dir)
        .env_remove("PERFCHECK_SLOW_STAGE")
        .env("PERFCHECK_STORE", &store)
        .args(["check", "-p", "mini", "-q"]);
    c.assert().success().stdout(
        predicate::str::contains("no baseline").and(predicate::str::contains("shallow clone")),
    );
}

#[test]
fn a_missing_store_is_no_baseline_and_is_not_created() {
    let p = project();
    let (code, stdout, json) = check(&p, &[], None);
    assert_eq!(code, 0);
    assert!(stdout.contains("no baseline store at"), "{stdout}");
    assert_eq!(json["status"], "no_baseline");
    assert!(!p.store().exists());
    p.cmd()
        .args(["baseline", "list"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no such store yet"));
    assert!(!p.store().exists());
}

#[test]
fn outside_git_check_reports_and_needs_no_baseline() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("profiles")).unwrap();
    std::fs::write(dir.path().join("profiles/mini.toml"), MINI_GATE).unwrap();
    common::launcher()
        .current_dir(dir.path())
        .env_remove("PERFCHECK_STORE")
        .env_remove("PERFCHECK_SLOW_STAGE")
        .args(["check", "-p", "mini", "-q"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "no baseline: not in a git repository",
        ));
}

#[test]
fn floors_measured_by_calibrate_replace_the_default_ones_and_a_damaged_file_stops_the_check() {
    let p = project();
    p.save();
    p.commit("second");
    let (_, _, first) = check(&p, &[], None);
    let run_file = common::newest_check_dir(p.path()).join("run.json");
    let noise_of = |json: &Value, metric: &str| {
        json["verdicts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["metric"] == metric)
            .unwrap_or_else(|| panic!("no verdict for {metric}"))["noise"]
            .as_f64()
            .unwrap()
    };
    // Throughput is one value per run (no sampling error can make its verdict "insufficient
    // data" on a busy machine). One baseline run: the drift used is the floor itself, the
    // built-in 15%.
    assert!((noise_of(&first, "recall/total/throughput_ops") - 0.15).abs() < 1e-12);
    assert!(first.get("noise_floors").is_none());

    // What `calibrate` writes beside the store, for this machine and profile.
    let machine = first["base"][0]["machine"].as_str().unwrap().to_owned();
    let noise = serde_json::json!({
        "schema": 1,
        "entries": [{
            "machine": machine, "profile": "mini", "measured_at": "2026-12-01T20:00:00Z",
            "commit": "c".repeat(40), "span_minutes": 30.0, "confidence": 0.9,
            "metrics": {
                "recall/total/throughput_ops": { "drift": 4.5, "paired": 0.5, "runs": 40, "pairs": 20 },
                "recall/rerank/allocs": { "drift": 50.0, "runs": 40, "pairs": 0 }
            }
        }, {
            "machine": "another machine", "profile": "mini", "measured_at": "t", "commit": "c",
            "span_minutes": 1.0, "confidence": 0.9,
            "metrics": { "remember/total/throughput_ops": { "drift": 1.0, "runs": 9, "pairs": 0 } }
        }]
    });
    let file = p.path().join("baselines/noise.json");
    std::fs::write(&file, serde_json::to_vec(&noise).unwrap()).unwrap();
    let out = p
        .cmd()
        .args(["check", "-q", "--run-file"])
        .arg(&run_file)
        .output()
        .unwrap();
    assert!(out.status.code().unwrap() <= 1, "{out:?}");
    let json = newest_check_json(&p.path().join("reports"));
    assert!((noise_of(&json, "recall/total/throughput_ops") - 0.045).abs() < 1e-12);
    // Other metrics, another machine's entry and exact counts keep the configured floors.
    assert!((noise_of(&json, "remember/total/throughput_ops") - 0.15).abs() < 1e-12);
    assert_eq!(json["noise_floors"]["metrics"], 1);
    let md = std::fs::read_to_string(common::newest_check_dir(p.path()).join("check.md")).unwrap();
    assert!(md.contains("Noise floors: 1 metric(s)"), "{md}");

    std::fs::write(&file, b"{\"schema\": 1, \"entries\": [").unwrap();
    p.cmd()
        .args(["check", "-q", "--run-file"])
        .arg(&run_file)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("noise.json").and(predicate::str::contains("calibrate")));
}
