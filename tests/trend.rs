//! `trend`: charts across commits with baselines, through the real binary.

mod common;

use common::{Project, MINI_GATE};
use predicates::prelude::*;
use serde_json::Value;

#[test]
fn trend_charts_each_metric_and_marks_the_slowed_commit() {
    let p = Project::new(
        MINI_GATE,
        // A tenfold slowdown against thresholds far inside it: the slowed commit fails (its
        // interval must clear +100%) and the fix is an improvement (it must clear -30%) even when
        // a loaded CI machine stretches one run by half.
        Some("[thresholds]\ntime = { warn = 30, fail = 100 }\n"),
    );
    let first = p.head();
    p.save();
    // A real regression at a commit, not the calibration knob (a slowed run cannot be saved):
    // re-ranking twenty times the candidates.
    let mini = p.path().join("profiles/mini.toml");
    std::fs::write(&mini, format!("{MINI_GATE}[engine]\ncandidates = 1000\n")).unwrap();
    let slow = p.commit("slow");
    p.save();
    std::fs::write(&mini, MINI_GATE).unwrap();
    let fixed = p.commit("fixed");
    p.save();
    p.commit("no runs here");

    let out = p
        .cmd()
        .args(["trend", "-p", "mini", "-m", "recall/rerank/wall_ns"])
        .args(["-m", "remember/total/allocs", "-m", "recall/rerank/allocs"])
        .args(["--last", "10"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let stdout = String::from_utf8(out).unwrap();
    assert!(
        stdout.contains("recall/rerank/wall_ns over 3 commits"),
        "{stdout}"
    );

    let dir = common::trend_dir(&p.path().join("reports"));
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("trend.json")).unwrap()).unwrap();
    let rerank = &json[0];
    assert_eq!(rerank["metric"], "recall/rerank/wall_ns");
    let points = rerank["points"].as_array().unwrap();
    let commits: Vec<&str> = points
        .iter()
        .map(|p| p["commit"].as_str().unwrap())
        .collect();
    assert_eq!(commits, vec![first.as_str(), slow.as_str(), fixed.as_str()]);
    assert!(points[0]["status"].is_null());
    // The slow commit's time is far up (its verdict may still be "too noisy" on a loaded
    // machine: a run's own spread counts); its exactly counted allocations below are flagged.
    assert!(
        points[1]["value"].as_f64().unwrap() > 3.0 * points[0]["value"].as_f64().unwrap(),
        "{points:?}"
    );
    let rerank_allocs = json[2]["points"].as_array().unwrap();
    assert_eq!(json[2]["metric"], "recall/rerank/allocs");
    assert_eq!(rerank_allocs[1]["status"], "fail", "{}", rerank_allocs[1]);
    assert_eq!(
        rerank_allocs[2]["status"], "improvement",
        "{}",
        rerank_allocs[2]
    );
    for pt in points {
        let (lo, v, hi) = (
            pt["low"].as_f64().unwrap(),
            pt["value"].as_f64().unwrap(),
            pt["high"].as_f64().unwrap(),
        );
        assert!(lo < v && v < hi, "band around the value: {pt}");
    }
    // Allocation counts are exact: no band, and unchanged code stays unchanged.
    let allocs = json[1]["points"].as_array().unwrap();
    assert!(allocs.iter().all(|p| p["low"] == p["high"]));
    assert_eq!(allocs[1]["status"], "unchanged");

    for stem in ["trend-recall-rerank-wall_ns", "trend-remember-total-allocs"] {
        let svg = std::fs::read_to_string(dir.join(format!("{stem}.svg"))).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(
            svg.contains(&slow[..7]) && svg.contains(&first[..7]),
            "short shas on the x axis"
        );
        let png = std::fs::read(dir.join(format!("{stem}.png"))).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    }
}

#[test]
fn trend_rejects_a_malformed_metric_name() {
    let p = Project::new(MINI_GATE, None);
    p.cmd()
        .args(["trend", "-m", "recall/rerank"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("--metric").and(predicate::str::contains("recall/rerank")),
        );
}
