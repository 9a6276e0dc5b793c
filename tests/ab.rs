//! `check --ab`: the paired A/B gate through the real binary, on a real git repository. The
//! base side is the same binary (`--base-bin`), run from a worktree of the base commit, so only
//! the test-only slowdown knob (head side only) differs between the sides.

mod common;

use std::path::{Path, PathBuf};

use common::{Project, MINI_GATE};
use predicates::prelude::*;
use serde_json::Value;

const THRESHOLDS: &str = "[thresholds]\ntime = { warn = 30, fail = 50 }\n";

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("cargo-perfcheck")
}

/// The check.json of the only (or newest) A/B session, and its folder.
fn session(p: &Project) -> (Value, PathBuf) {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(p.path().join("reports/ab"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|d| d.join("check.json").exists())
        .collect();
    dirs.sort();
    let dir = dirs.pop().expect("an A/B session folder");
    let json = serde_json::from_str(&std::fs::read_to_string(dir.join("check.json")).unwrap());
    (json.unwrap(), dir)
}

fn commits(runs: &Value) -> Vec<&str> {
    runs.as_array()
        .unwrap()
        .iter()
        .map(|r| r["commit"].as_str().unwrap())
        .collect()
}

fn verdict<'a>(check: &'a Value, metric: &str) -> &'a Value {
    check["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["metric"] == metric)
        .unwrap_or_else(|| panic!("{metric} not compared"))
}

fn record(dir: &Path) -> Value {
    let run = std::fs::read_dir(dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap()
}

#[test]
fn a_slowed_head_fails_the_paired_gate_and_the_same_code_passes() {
    let p = Project::new(MINI_GATE, Some(THRESHOLDS));
    let base = p.head();
    let head = p.commit("second");

    let out = p
        .cmd()
        .env("PERFCHECK_SLOW_STAGE", "rerank:900")
        .args([
            "check", "--ab", "--base", "HEAD~1", "--rounds", "4", "-p", "mini",
        ])
        .arg("--base-bin")
        .arg(bin())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("paired A/B, 4 rounds"), "{stdout}");
    // Alternating order, so a steady drift of the machine favours neither side.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let order: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("round "))
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(
        order,
        ["base", "head", "head", "base", "base", "head", "head", "base"],
        "{stderr}"
    );
    assert!(stdout.contains("recall/rerank/wall_ns"), "{stdout}");

    let (json, dir) = session(&p);
    assert_eq!(json["paired"]["rounds"], 4);
    // The base ran from a worktree of the base commit, the head from the project.
    assert_eq!(commits(&json["base"]), vec![base.as_str(); 4]);
    assert_eq!(
        commits(&json["paired"]["head_runs"]),
        vec![head.as_str(); 4]
    );
    let rerank = verdict(&json, "recall/rerank/wall_ns");
    assert_eq!(rerank["status"], "fail", "{rerank}");
    assert_eq!(rerank["base_runs"], 4);
    assert!(rerank["change"].as_f64().unwrap() > 2.0, "{rerank}");
    // Allocation counts do not depend on the slowdown: compared exactly, unchanged.
    let allocs = verdict(&json, "recall/total/allocs");
    assert_eq!(allocs["status"], "unchanged", "{allocs}");
    // The knob reached the head runs only, and every run's record is kept.
    let mut ids = std::collections::BTreeSet::new();
    for i in 1..=4 {
        let base = record(&dir.join(format!("base-{i}")));
        let head = record(&dir.join(format!("head-{i}")));
        assert!(base["slowdown"].is_null());
        assert!(head["slowdown"].is_string());
        ids.insert(base["run_id"].as_str().unwrap().to_owned());
        ids.insert(head["run_id"].as_str().unwrap().to_owned());
    }
    // Runs of one session never share an id, even when started in the same second.
    assert_eq!(ids.len(), 8, "{ids:?}");
    let md = std::fs::read_to_string(dir.join("check.md")).unwrap();
    assert!(md.starts_with("### ❌ perfcheck"), "{md}");
    assert!(md.contains("Paired A/B"), "{md}");
    let wt = p.path().join("target/perfcheck-ab/src/version.txt");
    assert_eq!(std::fs::read_to_string(wt).unwrap(), "init");

    // The same code on both sides: nothing flagged, and the worktree is reused.
    p.cmd()
        .args([
            "check", "--ab", "--base", "HEAD~1", "--rounds", "3", "-p", "mini", "-q",
        ])
        .arg("--base-bin")
        .arg(bin())
        .assert()
        .success()
        .stdout(predicate::str::contains("paired A/B, 3 rounds"));
    let (json, _) = session(&p);
    assert_eq!(json["counts"]["fail"], 0, "{json}");
    assert_eq!(json["paired"]["rounds"], 3);
}

#[test]
fn ab_usage_errors_name_the_flag() {
    let p = Project::new(MINI_GATE, None);
    let cases: [(&[&str], &str); 4] = [
        (&["--ab", "--rounds", "1"], "--rounds"),
        (&["--ab", "--save"], "--save"),
        (&["--rounds", "3"], "--ab"),
        (
            &["--ab", "--base-bin", "no/such/bin"],
            "--base-bin no/such/bin",
        ),
    ];
    for (args, expect) in cases {
        p.cmd()
            .args(["check", "-p", "mini"])
            .args(args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(expect));
    }
    p.cmd()
        .args(["check", "--ab", "--base", "nope", "-p", "mini"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--base nope"));

    let outside = tempfile::tempdir().unwrap();
    assert_cmd::Command::new(bin())
        .current_dir(outside.path())
        .args(["check", "--ab", "-p", "tiny"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--ab needs a git repository"));
}
