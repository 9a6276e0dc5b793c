//! Change points through the real binary: a real run, stored again at each of twelve commits
//! with its timings scaled (a step of x1.5 at a known commit plus seeded noise), then `trend
//! --change-points` and `check` read them.

mod common;

use common::{Project, MINI_GATE};
use serde_json::Value;

/// Per-commit noise factors (seeded once, kept literal so the test reads the same forever):
/// about 2% spread, like a quiet run of this machine.
const NOISE: [f64; 12] = [
    1.012, 0.985, 1.021, 0.994, 1.003, 0.979, 1.017, 0.991, 1.008, 0.983, 1.015, 0.997,
];
/// Index of the commit whose recall timings step up by half.
const STEP_AT: usize = 7;

/// Multiplies every wall-time sample of `workload` in the exported run by `factor`.
fn scale_walls(run: &mut Value, workload: &str, factor: f64) {
    for w in run["workloads"].as_array_mut().unwrap() {
        if w["workload"] != workload {
            continue;
        }
        for s in w["samples"].as_array_mut().unwrap() {
            for v in s["wall_ns"].as_array_mut().unwrap() {
                *v = ((v.as_u64().unwrap() as f64 * factor).round() as u64).into();
            }
        }
    }
}

/// Twelve commits, each with one stored run; returns the project and the shas, oldest first.
fn history() -> (Project, Vec<String>) {
    let p = Project::new(MINI_GATE, None);
    p.save();
    let export = p.path().join("export.json");
    p.cmd()
        .args(["baseline", "export", "-o"])
        .arg(&export)
        .assert()
        .success();
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&export).unwrap()).unwrap();
    let template = doc["runs"][0].clone();
    let mut runs = Vec::new();
    let mut shas = Vec::new();
    for (i, noise) in NOISE.iter().enumerate() {
        let subject = if i == STEP_AT {
            "<script>alert(1)</script>".to_owned()
        } else {
            format!("commit {i}")
        };
        let sha = p.commit(&subject);
        let mut run = template.clone();
        run["run_id"] = format!("synthetic-{i}").into();
        run["git"]["commit"] = sha.clone().into();
        run["git"]["dirty"] = false.into();
        let step = if i >= STEP_AT { 1.5 } else { 1.0 };
        scale_walls(&mut run, "recall", step * noise);
        // remember: the same noise, no step.
        scale_walls(&mut run, "remember", *noise);
        runs.push(run);
        shas.push(sha);
    }
    let mut doc = doc;
    doc["runs"] = Value::Array(runs);
    std::fs::write(&export, serde_json::to_string(&doc).unwrap()).unwrap();
    // A fresh store holds only the synthetic history.
    std::fs::remove_file(p.store()).unwrap();
    p.cmd()
        .args(["baseline", "import"])
        .arg(&export)
        .assert()
        .success();
    (p, shas)
}

#[test]
fn trend_and_check_name_the_commit_where_a_metric_stepped() {
    let (p, shas) = history();
    let step_sha = &shas[STEP_AT];
    let out = p
        .cmd()
        .args(["trend", "-p", "mini", "--change-points", "--last", "30"])
        .args([
            "-m",
            "recall/rerank/wall_ns",
            "-m",
            "remember/total/wall_ns",
        ])
        .args(["-m", "recall/total/allocs"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("recall/rerank/wall_ns over 12 commits"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&step_sha[..10]),
        "short sha printed: {stdout}"
    );
    assert!(stdout.contains("  no change points"), "{stdout}");

    let dir = common::trend_dir(&p.path().join("reports"));
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("trend.json")).unwrap()).unwrap();
    let recall = &json[0]["change_points"];
    assert_eq!(recall.as_array().unwrap().len(), 1, "{recall}");
    let cp = &recall[0];
    assert_eq!(cp["commit"], step_sha.as_str());
    assert_eq!(cp["previous_commit"], shas[STEP_AT - 1].as_str());
    assert_eq!(cp["index"], STEP_AT);
    assert_eq!(cp["commits_ago"], 11 - STEP_AT);
    assert_eq!(cp["summary"], "<script>alert(1)</script>");
    let step = cp["step"].as_f64().unwrap();
    assert!((step - 0.5).abs() < 0.05, "step of +50%: {cp}");
    let (lo, hi) = (
        cp["step_low"].as_f64().unwrap(),
        cp["step_high"].as_f64().unwrap(),
    );
    assert!(lo > 0.0 && lo < step && step < hi, "{cp}");
    assert!(cp["p_value"].as_f64().unwrap() <= 0.01, "{cp}");
    // The same noise without a step, and exact counts that never change: no change point.
    assert_eq!(json[1]["metric"], "remember/total/wall_ns");
    assert_eq!(json[1]["change_points"], Value::Array(vec![]));
    assert_eq!(json[2]["change_points"], Value::Array(vec![]));
    // The existing fields stay.
    assert_eq!(json[0]["points"].as_array().unwrap().len(), 12);
    let svg = std::fs::read_to_string(dir.join("trend-recall-rerank-wall_ns.svg")).unwrap();
    assert!(
        svg.contains(&format!("at {}", &step_sha[..7])),
        "marker label"
    );

    // check on a new commit: check.md names the step, its subject escaped.
    p.commit("head");
    let out = p
        .cmd()
        .args(["check", "-p", "mini", "-q"])
        .output()
        .unwrap();
    assert!(out.status.code().is_some_and(|c| c <= 1), "{out:?}");
    let md = std::fs::read_to_string(common::newest_check_dir(p.path()).join("check.md")).unwrap();
    let line = md
        .lines()
        .find(|l| l.contains("`recall/rerank/wall_ns` stepped"))
        .unwrap_or_else(|| panic!("no change-point line: {md}"));
    assert!(line.contains("stepped +"), "{line}");
    assert!(
        line.contains(&format!("at `{}`", &step_sha[..10])),
        "{line}"
    );
    assert!(line.contains("5 commits ago"), "{line}");
    assert!(
        line.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{line}"
    );
    assert!(!md.contains("<script>"), "{md}");
    assert!(!md.contains("`remember/total/wall_ns` stepped"), "{md}");
}
