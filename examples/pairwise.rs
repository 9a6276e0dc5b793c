//! Calibration aid: compares run records pairwise through the library's `compare` and counts
//! what gets flagged, to measure how often unchanged reruns are flagged on this machine.
//!
//! ```text
//! cargo run --release --example pairwise -- BASE_DIR [HEAD_DIR] [--thresholds FILE] [--bases K] [-v]
//! ```
//! Every `run.json` under BASE_DIR is a candidate baseline. Without HEAD_DIR every ordered pair
//! of distinct base runs is compared (one baseline, unchanged code); with HEAD_DIR every head
//! run is compared against K baselines at a time (sliding window over BASE_DIR, default 1).
//! `--target STAGE` counts checks that flag that stage; `--show` prints the first check's
//! terminal and markdown reports.

use std::path::{Path, PathBuf};
use std::time::Instant;

use perfcheck::compare::{compare, Status, Thresholds};
use perfcheck::metrics::MetricSet;
use perfcheck::record::RunRecord;

fn load(dir: &Path) -> Vec<MetricSet> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("run.json"))
        .filter(|p| p.exists())
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| MetricSet::from_record(&RunRecord::read(f).unwrap()).unwrap())
        .collect()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut dirs = Vec::new();
    let mut thresholds = Thresholds::default();
    let mut k = 1usize;
    let mut verbose = false;
    let mut target: Option<String> = None;
    let mut show = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--thresholds" => {
                let text = std::fs::read_to_string(args.next().expect("file")).unwrap();
                thresholds = Thresholds::from_toml_str(&text).unwrap_or_else(|e| panic!("{e}"));
            }
            "--bases" => k = args.next().expect("K").parse().unwrap(),
            "-v" => verbose = true,
            "--target" => target = args.next(),
            "--show" => show = true,
            _ => dirs.push(PathBuf::from(a)),
        }
    }
    let base = load(&dirs[0]);
    let head = dirs.get(1).map(|d| load(d));
    let mut pairs: Vec<(Vec<&MetricSet>, &MetricSet)> = Vec::new();
    match &head {
        None => {
            for (i, h) in base.iter().enumerate() {
                for (j, b) in base.iter().enumerate() {
                    if i != j {
                        pairs.push((vec![b], h));
                    }
                }
            }
        }
        Some(heads) => {
            for (i, h) in heads.iter().enumerate() {
                let bs: Vec<&MetricSet> = (0..k).map(|j| &base[(i + j) % base.len()]).collect();
                pairs.push((bs, h));
            }
        }
    }
    let mut any = 0;
    let mut fails = 0;
    let mut total_flags = 0;
    let mut slowest = 0f64;
    // With --target STAGE: checks that flag that stage (warn/fail, fail), and checks that
    // fail on some other metric.
    let (mut hit_any, mut hit_fail, mut other_fail) = (0, 0, 0);
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for (i, (b, h)) in pairs.iter().enumerate() {
        let owned: Vec<MetricSet> = b.iter().map(|s| (*s).clone()).collect();
        let t0 = Instant::now();
        let c = compare(&owned, h, &thresholds, i as u64);
        slowest = slowest.max(t0.elapsed().as_secs_f64());
        let flagged: Vec<_> = c
            .verdicts
            .iter()
            .filter(|v| v.status.is_regression() || v.status == Status::Improvement)
            .collect();
        if !flagged.is_empty() {
            any += 1;
        }
        if c.exit_code() == 1 {
            fails += 1;
        }
        total_flags += flagged.len();
        if let Some(t) = &target {
            let on = |v: &&&perfcheck::compare::Verdict| v.metric.stage() == t;
            if flagged.iter().any(|v| on(&v) && v.status.is_regression()) {
                hit_any += 1;
            }
            if flagged
                .iter()
                .any(|v| on(&v) && v.status == Status::Regression(perfcheck::compare::Level::Fail))
            {
                hit_fail += 1;
            }
            if flagged
                .iter()
                .any(|v| !on(&v) && v.status == Status::Regression(perfcheck::compare::Level::Fail))
            {
                other_fail += 1;
            }
        }
        for v in &flagged {
            *counts
                .entry(format!("{} {}", v.metric, v.status))
                .or_default() += 1;
            if verbose {
                println!(
                    "pair {i}: {} {} change {:+.1}% [{:+.1}%, {:+.1}%] q={:.2e}",
                    v.metric,
                    v.status,
                    100.0 * v.change.unwrap_or(f64::NAN),
                    100.0 * v.ci_low.unwrap_or(f64::NAN),
                    100.0 * v.ci_high.unwrap_or(f64::NAN),
                    v.q_value.unwrap_or(f64::NAN)
                );
            }
        }
        if i == 0 && show {
            println!("{}", perfcheck::report::check::terminal(&c, false, false));
            println!("{}", perfcheck::report::check::markdown(&c));
        }
        if i == 0 {
            println!(
                "{} metrics per check ({} insufficient data, {} ignored)",
                c.counts.metrics, c.counts.insufficient_data, c.counts.ignored
            );
        }
    }
    println!(
        "{} comparisons: {} flagged anything, {} would exit 1, {} flags in all; slowest compare {:.2}s",
        pairs.len(),
        any,
        fails,
        total_flags,
        slowest
    );
    if let Some(t) = &target {
        println!(
            "target {t}: flagged in {hit_any}/{n} (fail level {hit_fail}/{n}); another metric failed in {other_fail}/{n}",
            n = pairs.len()
        );
    }
    for (k, n) in counts {
        println!("  {n:3} x {k}");
    }
}
