//! `check --ab`: the paired A/B gate through the real binary, on a real git repository. The
//! base side is the same binary (`--base-bin`), run from a worktree of the base commit, so only
//! the test-only slowdown knob (head side only) differs between the sides.

mod common;

use std::path::{Path, PathBuf};

use common::{verdict, Project, MINI_GATE};
use predicates::prelude::*;
use serde_json::Value;

const THRESHOLDS: &str = "[thresholds]\ntime = { warn = 30, fail = 50 }\n";

/// A fixed order seed, so the expected order of the sides is known.
const ORDER_SEED: u64 = 12345;

/// The side that ran first in each round, from the progress lines (two per round).
fn run_order(stderr: &str) -> Vec<String> {
    let sides: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("round "))
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    sides.chunks(2).map(|c| c[0].to_owned()).collect()
}

fn expected_order(seed: u64, rounds: usize) -> Vec<String> {
    perfcheck::ab::order::first_sides(seed, rounds)
        .into_iter()
        .map(|f| f.label().to_owned())
        .collect()
}

fn recorded_order(check: &Value) -> Vec<String> {
    check["ab_session"]["first"]
        .as_array()
        .expect("ab_session.first in check.json")
        .iter()
        .map(|f| f.as_str().unwrap().to_owned())
        .collect()
}

fn bin() -> PathBuf {
    common::harness_bin()
}

/// The check.json of the only (or newest) A/B session, and its folder.
fn session(p: &Project) -> (Value, PathBuf) {
    let dir = common::newest_check_in(&p.path().join("reports/ab"));
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
        .env("PERFCHECK_AB_ORDER_SEED", ORDER_SEED.to_string())
        .args([
            "check", "--ab", "--base", "HEAD~1", "--rounds", "6", "-p", "mini",
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
    assert!(stdout.contains("paired A/B, 6 rounds"), "{stdout}");
    // The order of the sides follows the seed, and is the one recorded in check.json.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        run_order(&stderr),
        expected_order(ORDER_SEED, 6),
        "{stderr}"
    );
    assert!(stdout.contains("recall/rerank/wall_ns"), "{stdout}");

    let (json, dir) = session(&p);
    assert_eq!(json["paired"]["rounds"], 6);
    assert_eq!(json["ab_session"]["order_seed"], ORDER_SEED);
    assert_eq!(recorded_order(&json), run_order(&stderr));
    // The base ran from a worktree of the base commit, the head from the project.
    assert_eq!(commits(&json["base"]), vec![base.as_str(); 6]);
    assert_eq!(
        commits(&json["paired"]["head_runs"]),
        vec![head.as_str(); 6]
    );
    let rerank = verdict(&json, "recall/rerank/wall_ns");
    assert_eq!(rerank["status"], "fail", "{rerank}");
    assert_eq!(rerank["base_runs"], 6);
    assert!(rerank["change"].as_f64().unwrap() > 2.0, "{rerank}");
    // Allocation counts do not depend on the slowdown: compared exactly, unchanged.
    let allocs = verdict(&json, "recall/total/allocs");
    assert_eq!(allocs["status"], "unchanged", "{allocs}");
    // The knob reached the head runs only, and every run's record is kept.
    let mut ids = std::collections::BTreeSet::new();
    for i in 1..=6 {
        let base = record(&dir.join(format!("base-{i}")));
        let head = record(&dir.join(format!("head-{i}")));
        assert!(base["slowdown"].is_null());
        assert!(head["slowdown"].is_string());
        ids.insert(base["run_id"].as_str().unwrap().to_owned());
        ids.insert(head["run_id"].as_str().unwrap().to_owned());
    }
    // Runs of one session never share an id, even when started in the same second.
    assert_eq!(ids.len(), 12, "{ids:?}");
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

/// Every run starts from a fresh copy of its side's binary, one per round, never the file
/// given nor the running executable: the base side here is a script that logs the path it was
/// started as, then runs the real binary.
#[cfg(unix)]
#[test]
fn runs_start_from_per_round_copies_in_the_recorded_order() {
    use std::os::unix::fs::PermissionsExt;
    let p = Project::new(MINI_GATE, Some(THRESHOLDS));
    p.commit("second");
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("started-as.txt");
    let script = tmp.path().join("base-bin.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$0\" >> '{}'\nexec '{}' \"$@\"\n",
            log.display(),
            bin().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();

    let mut orders = Vec::new();
    for _ in 0..2 {
        let out = p
            .cmd()
            .env("PERFCHECK_AB_ORDER_SEED", "7")
            .args([
                "check", "--ab", "--base", "HEAD~1", "--rounds", "3", "-p", "mini",
            ])
            .arg("--base-bin")
            .arg(&script)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        let (json, dir) = session(&p);
        let order = recorded_order(&json);
        assert_eq!(order, run_order(&stderr), "{stderr}");
        assert_eq!(order, expected_order(7, 3));
        // session.json beside check.json says the same.
        let s: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("session.json")).unwrap())
                .unwrap();
        assert_eq!(s["first"], json["ab_session"]["first"]);
        assert_eq!(s["order_seed"], 7);
        orders.push(order);

        let copies = PathBuf::from(json["ab_session"]["copies"].as_str().unwrap());
        let started: Vec<String> = std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        std::fs::remove_file(&log).unwrap();
        let expect: Vec<String> = (1..=3)
            .map(|r| {
                copies
                    .join(r.to_string())
                    .join("base")
                    .join("cargo-perfcheck")
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(started, expect);
        assert!(!copies.exists(), "copies are removed after the session");
        let recorded = |k: &str| {
            PathBuf::from(json["ab_session"][k].as_str().unwrap())
                .canonicalize()
                .unwrap()
        };
        assert_eq!(recorded("base_bin"), script.canonicalize().unwrap());
        assert_eq!(recorded("head_bin"), bin().canonicalize().unwrap());
        assert_ne!(copies.parent(), bin().parent());
    }
    // The same seed, the same order.
    assert_eq!(orders[0], orders[1]);
}
