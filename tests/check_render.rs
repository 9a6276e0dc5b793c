//! Golden tests of the check renderers: terminal, markdown, check.json and GitHub annotations.
//!
//! Expected outputs live in `tests/data/check/`. After an intended change of the output, run
//! `PERFCHECK_BLESS=1 cargo test --test check_render` to rewrite them, then review the diff.

use std::path::PathBuf;

use perfcheck::compare::{compare, Comparison, Counts, Level, Status, Thresholds, Verdict};
use perfcheck::metrics::{Measure, Metric, MetricName, MetricSet, RunInfo};
use perfcheck::report::check;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/check")
}

/// Compares `actual` with the fixture `name`, or rewrites it under `PERFCHECK_BLESS=1`.
fn golden(name: &str, actual: &str) {
    let path = data_dir().join(name);
    if std::env::var_os("PERFCHECK_BLESS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(data_dir()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run PERFCHECK_BLESS=1 cargo test --test check_render to create it",
            path.display()
        )
    });
    if expected != actual {
        panic!(
            "{} differs from the rendered output (PERFCHECK_BLESS=1 rewrites it after an intended change)\n--- expected\n{expected}\n--- actual\n{actual}",
            path.display()
        );
    }
}

fn name(s: &str) -> MetricName {
    MetricName::parse(s).unwrap()
}

fn run_info(commit: &str, run_id: &str) -> RunInfo {
    RunInfo {
        run_id: run_id.into(),
        commit: Some(commit.into()),
        branch: Some("feature/faster-rerank".into()),
        dirty: false,
        profile: "quick".into(),
        machine: "AMD EPYC 7B13 x2 | linux-x86_64 | rustc 1.95.0 | release".into(),
        created_at: "2026-11-27T07:00:00Z".into(),
    }
}

#[allow(clippy::too_many_arguments)]
fn verdict(
    metric: &str,
    status: Status,
    base: Option<f64>,
    head: Option<f64>,
    ci: Option<(f64, f64)>,
    q: Option<f64>,
    limits: (f64, f64),
    note: Option<&str>,
) -> Verdict {
    let name = name(metric);
    let m = name.measure();
    let change = match (base, head) {
        (Some(b), Some(h)) if b != 0.0 => Some(h / b - 1.0),
        _ => None,
    };
    Verdict {
        metric: name,
        kind: m.kind(),
        direction: m.direction(),
        unit: m.unit(),
        statistic: m.statistic(),
        status,
        base,
        head,
        change,
        ci_low: ci.map(|c| c.0),
        ci_high: ci.map(|c| c.1),
        p_value: q.map(|q| q / 4.0),
        q_value: q,
        warn: limits.0,
        fail: limits.1,
        noise: q.map(|_| 0.1),
        base_runs: usize::from(base.is_some()) * 3,
        base_samples: if base.is_some() { 15000 } else { 0 },
        head_samples: if head.is_some() { 5000 } else { 0 },
        note: note.map(str::to_owned),
    }
}

/// A hand-made comparison with every status, independent of the statistics' exact numbers.
fn fixture() -> Comparison {
    let t = (10.0, 25.0);
    let a = (1.0, 5.0);
    let verdicts = vec![
        verdict(
            "recall/vector_search/wall_ns",
            Status::Regression(Level::Fail),
            Some(61_200.0),
            Some(98_400.0),
            Some((0.31, 0.95)),
            Some(2e-6),
            t,
            None,
        ),
        verdict(
            "recall/rerank/wall_ns",
            Status::Improvement,
            Some(171_000.0),
            Some(120_000.0),
            Some((-0.45, -0.14)),
            Some(4e-4),
            t,
            None,
        ),
        verdict(
            "recall/format/allocs",
            Status::Regression(Level::Warn),
            Some(7.0),
            Some(7.2),
            Some((0.2 / 7.0, 0.2 / 7.0)),
            None,
            a,
            None,
        ),
        verdict(
            "recall/total/wall_ns",
            Status::Unchanged,
            Some(260_000.0),
            Some(281_000.0),
            Some((-0.2, 0.45)),
            Some(0.31),
            t,
            None,
        ),
        verdict(
            "recall/total/p99_ns",
            Status::Ignored,
            Some(4_100_000.0),
            Some(8_300_000.0),
            Some((-0.4, 2.9)),
            None,
            (25.0, 50.0),
            None,
        ),
        verdict(
            "mixed/total/throughput_ops",
            Status::Regression(Level::Fail),
            Some(1_500.0),
            Some(700.0),
            Some((-0.7, -0.3)),
            Some(1e-3),
            t,
            None,
        ),
        verdict(
            "remember/index_insert/alloc_bytes",
            Status::Regression(Level::Fail),
            Some(0.0),
            Some(3_963.0),
            None,
            None,
            a,
            Some("base was 0 per operation"),
        ),
        verdict(
            "consolidation/cluster/wall_ns",
            Status::InsufficientData,
            Some(1_770_000.0),
            Some(1_810_000.0),
            None,
            None,
            t,
            Some("10 samples in a run, 20 needed"),
        ),
        verdict(
            "recall/dedupe/wall_ns",
            Status::New,
            None,
            Some(12_000.0),
            None,
            None,
            t,
            None,
        ),
        verdict(
            "recall/embed_query/wall_ns",
            Status::Missing,
            Some(750.0),
            None,
            None,
            None,
            t,
            None,
        ),
    ];
    let counts = Counts::of(&verdicts);
    Comparison {
        schema: perfcheck::compare::CHECK_SCHEMA_VERSION,
        head: run_info(
            "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d",
            "20261127-070000-1a2b3c4",
        ),
        base: ["06:00", "06:10", "06:20"]
            .iter()
            .map(|t| {
                run_info(
                    "abc1234def5678901234567890abcdef12345678",
                    &format!("20261127-{}00-abc1234", t.replace(':', "")),
                )
            })
            .collect(),
        confidence: 0.99,
        seed: 42,
        counts,
        verdicts,
        paired: None,
    }
}

#[test]
fn fixture_counts_match_its_verdicts() {
    let c = fixture();
    assert_eq!(
        (c.counts.fail, c.counts.warn, c.counts.improvements),
        (3, 1, 1)
    );
    assert_eq!(c.counts.metrics, 10);
    assert_eq!(c.exit_code(), 1);
}

#[test]
fn markdown_matches_golden() {
    golden("fixture.md", &check::markdown(&fixture()));
}

#[test]
fn terminal_matches_golden() {
    golden("fixture.txt", &check::terminal(&fixture(), false, false));
    golden("fixture-all.txt", &check::terminal(&fixture(), false, true));
    golden(
        "fixture-color.txt",
        &check::terminal(&fixture(), true, false),
    );
}

#[test]
fn json_matches_golden_and_reads_back() {
    let json = check::json(&fixture());
    golden("fixture.json", &json);
    let back: Comparison = serde_json::from_str(&json).unwrap();
    let orig = fixture();
    assert_eq!(
        (back.counts, &back.head, &back.base),
        (orig.counts, &orig.head, &orig.base)
    );
    for (a, b) in back.verdicts.iter().zip(&orig.verdicts) {
        // serde_json's default float parser may differ in the last bit; the rest is exact.
        assert_eq!(
            (&a.metric, a.status, &a.note),
            (&b.metric, b.status, &b.note)
        );
    }
}

#[test]
fn annotations_match_golden() {
    golden("fixture.annotations", &check::annotations(&fixture()));
}

/// A passing check from real statistics: no regressions, one improvement.
#[test]
fn a_clean_check_reads_as_a_pass() {
    let set = |rank: u64, commit: &str| MetricSet {
        run: run_info(commit, "r"),
        metrics: vec![
            Metric::from_samples(
                MetricName::new("recall", "rerank", Measure::WallNs).unwrap(),
                (0..2000).map(|i| rank + (i * 7919) % 1000).collect(),
            ),
            Metric::from_samples(name("recall/rerank/allocs"), vec![152; 2000]),
        ],
    };
    let c = compare(
        &[set(200_000, "abc1234def")],
        &set(100_000, "1a2b3c4d5e"),
        &Thresholds::default(),
        1,
    );
    assert_eq!(c.exit_code(), 0);
    golden("pass.md", &check::markdown(&c));
    golden("pass.txt", &check::terminal(&c, false, true));
    assert_eq!(check::annotations(&c), "");
}
