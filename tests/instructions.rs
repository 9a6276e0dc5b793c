//! The instructions pass end to end: the real binary under real valgrind, in a real git
//! repository with a real SQLite store.

mod common;

use std::path::Path;

use common::Project;
use predicates::prelude::*;
use serde_json::Value;

/// Recall, remember and consolidation over a small corpus, with a short instructions pass.
const MINI_COUNTED: &str = "workloads = [\"recall\", \"remember\", \"consolidation\"]
[corpus]
events = 400
topics = 4
sessions = 12
queries = 30
[run]
warmup_ops = 5
ops = 30
consolidation_ops = 1
consolidation_batch = 200
cpu_sample_every = 0
[instructions]
enabled = true
ops = 25
consolidation_ops = 1
";

fn record(dir: &Path) -> Value {
    let run = common::only_run(dir);
    serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap()
}

/// `(workload, stage) -> per-operation counts` of a record.
fn counts(r: &Value) -> Vec<(String, String, Vec<u64>)> {
    let mut out = Vec::new();
    for w in r["workloads"].as_array().unwrap() {
        let ic = &w["instructions"];
        assert!(
            ic.is_object(),
            "no instruction counts for {}",
            w["workload"]
        );
        for s in ic["stages"].as_array().unwrap() {
            out.push((
                w["workload"].as_str().unwrap().to_owned(),
                s["stage"].as_str().unwrap().to_owned(),
                s["instructions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| n.as_u64().unwrap())
                    .collect(),
            ));
        }
    }
    out
}

#[test]
fn counts_repeat_exactly_cover_every_stage_and_exclude_setup() {
    let p = Project::new(MINI_COUNTED, None);
    let runs: Vec<Value> = (0..2)
        .map(|i| {
            let dir = p.path().join(format!("r{i}"));
            p.cmd()
                .args(["run", "-p", "mini", "-q", "--reports-dir"])
                .arg(&dir)
                .assert()
                .success()
                .stdout(predicate::str::contains("instr/op"));
            record(&dir)
        })
        .collect();
    let (a, b) = (counts(&runs[0]), counts(&runs[1]));
    // The same binary, inputs and environment give the same count, to the instruction.
    assert_eq!(a, b);
    for w in runs[0]["workloads"].as_array().unwrap() {
        let name = w["workload"].as_str().unwrap();
        let ic = &w["instructions"];
        let ops = ic["ops"].as_u64().unwrap();
        assert_eq!(ops, if name == "consolidation" { 1 } else { 25 }, "{name}");
        // Every stage the timing pass saw was counted, with one count per operation it ran in.
        for s in w["samples"].as_array().unwrap() {
            let stage = s["stage"].as_str().unwrap();
            let c = a
                .iter()
                .find(|(wl, st, _)| wl == name && st == stage)
                .unwrap_or_else(|| panic!("{name}/{stage} has no instruction count"));
            assert!(c.2.iter().all(|&n| n > 0), "{name}/{stage}: {:?}", c.2);
        }
        // Self counts add up to the total of each operation.
        let total = a
            .iter()
            .find(|(wl, st, _)| wl == name && st == "total")
            .unwrap();
        let parts: u64 = a
            .iter()
            .filter(|(wl, st, _)| wl == name && st != "total")
            .map(|(_, _, v)| v.iter().sum::<u64>())
            .sum();
        assert_eq!(total.2.iter().sum::<u64>(), parts, "{name}");
        // Only the operations are counted: a recall is well under the corpus load, which
        // embeds and indexes 400 events.
        if name == "recall" {
            let per_op = total.2.iter().sum::<u64>() / ops;
            assert!(per_op < 20_000_000, "recall {per_op} instructions per op");
        }
        // The measured operations' profile is one file away, in callgrind's format.
        let out = common::only_run(&p.path().join("r0")).join(format!("callgrind-{name}.out"));
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.starts_with("# callgrind format"), "{}", out.display());
        assert!(text.contains("fn="), "{}", out.display());
    }
    // The metrics the gate compares.
    let fns = runs[0]["workloads"][0]["instructions"]["functions"]
        .as_array()
        .unwrap();
    assert!(
        fns.iter()
            .any(|f| f["function"].as_str().unwrap().contains("vector_search")),
        "the stage functions are among the costliest"
    );
}

#[test]
fn a_real_change_is_flagged_by_instructions_and_attributed_to_its_stage() {
    let p = Project::new(MINI_COUNTED, None);
    p.save();
    p.commit("unchanged");
    // Unchanged code: every instruction metric is exactly unchanged.
    let out = p
        .cmd()
        .args(["check", "-p", "mini", "-q", "-w", "recall"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let json = newest_check(p.path());
    for v in json["verdicts"].as_array().unwrap() {
        let m = v["metric"].as_str().unwrap();
        if m.starts_with("recall/") && m.ends_with("/instructions") {
            assert_eq!(v["status"], "unchanged", "{v}\n{stdout}");
            assert_eq!(v["change"].as_f64(), Some(0.0), "{v}");
        }
    }
    // A real change: re-rank twice the candidates.
    std::fs::write(
        p.path().join("profiles/mini.toml"),
        format!("{MINI_COUNTED}[engine]\ncandidates = 100\n"),
    )
    .unwrap();
    p.commit("rerank more");
    let out = p
        .cmd()
        .args(["check", "-p", "mini", "-q", "-w", "recall"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let json = newest_check(p.path());
    let status = |m: &str| {
        json["verdicts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["metric"] == m)
            .map(|v| v["status"].as_str().unwrap().to_owned())
    };
    assert_eq!(
        status("recall/rerank/instructions").as_deref(),
        Some("fail")
    );
    // The stage that changed most comes first in the attribution.
    let rerank = &json["attribution"][0];
    assert_eq!(rerank["stage"], "rerank", "{}", json["attribution"]);
    assert!(rerank["stage_head"].as_f64() > rerank["stage_base"].as_f64());
    let top = rerank["top"]["function"].as_str().unwrap();
    assert!(!top.is_empty());
    let dir = common::newest_check_dir(p.path());
    let md = std::fs::read_to_string(dir.join("check.md")).unwrap();
    assert!(
        md.contains("`recall/rerank` +") && md.contains("instructions, mostly `"),
        "{md}"
    );
    assert!(md.contains("#### Where it came from"), "{md}");
    assert!(md.contains("flame-diff-recall.svg"), "{md}");
    let svg = std::fs::read_to_string(dir.join("flame-diff-recall.svg")).unwrap();
    assert!(
        svg.starts_with("<?xml") || svg.starts_with("<svg"),
        "an SVG"
    );
    assert!(svg.contains("instructions"), "titled by what it counts");
}

#[test]
fn without_valgrind_the_error_says_how_to_get_it() {
    let p = Project::new(MINI_COUNTED, None);
    let empty = tempfile::tempdir().unwrap();
    p.cmd()
        .env("PATH", empty.path())
        .args(["run", "-p", "mini", "-q"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("valgrind")
                .and(predicate::str::contains("apt-get install valgrind")),
        );
    // --no-instructions runs the timing pass alone.
    p.cmd()
        .env("PATH", empty.path())
        .args([
            "run",
            "-p",
            "mini",
            "-q",
            "--no-instructions",
            "-w",
            "remember",
        ])
        .assert()
        .success();
}

fn newest_check(root: &Path) -> Value {
    let text = std::fs::read_to_string(common::newest_check_dir(root).join("check.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn a_paired_check_counts_each_side_once_and_same_code_is_exactly_unchanged() {
    let p = Project::new(MINI_COUNTED, None);
    p.commit("second");
    let bin = common::harness_bin();
    let out = p
        .cmd()
        .args([
            "check", "--ab", "--base", "HEAD~1", "--rounds", "2", "-p", "mini",
        ])
        .args(["-w", "recall", "--base-bin"])
        .arg(&bin)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.code().is_some_and(|c| c <= 1), "{stderr}");
    let ab = p.path().join("reports/ab");
    let session = std::fs::read_dir(&ab)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(session.join("check.json")).unwrap())
            .unwrap();
    let instr: Vec<&Value> = json["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["metric"].as_str().unwrap().ends_with("/instructions"))
        .collect();
    // total, four stages and other.
    assert_eq!(instr.len(), 6, "{instr:?}");
    for v in instr {
        assert_eq!(v["status"], "unchanged", "{v}");
        assert_eq!(v["change"].as_f64(), Some(0.0), "{v}");
    }
    // One pass per side, beside the rounds' reports; no pass inside a round.
    for side in ["base", "head"] {
        let f = session.join(format!("{side}-instructions/callgrind-recall.out"));
        assert!(f.is_file(), "{}", f.display());
    }
    for round in ["base-1", "head-1", "base-2", "head-2"] {
        let run = common::only_run(&session.join(round));
        assert!(
            !run.join("callgrind-recall.out").exists(),
            "{round} ran its own instructions pass"
        );
    }
}
