//! Golden tests of the check renderers: terminal, markdown, check.json and GitHub annotations.
//!
//! Expected outputs live in `tests/data/check/`. After an intended change of the output, run
//! `PERFCHECK_BLESS=1 cargo test --test check_render` to rewrite them, then review the diff.

use std::path::PathBuf;

use perfcheck::compare::mde::{Quantiles, Unknown};
use perfcheck::compare::{compare, Comparison, Counts, Level, Mde, Status, Thresholds, Verdict};
use perfcheck::metrics::{Measure, Metric, MetricKind, MetricName, MetricSet, RunInfo};
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
    // As `compare` sets it: exact counts that are gated; timings from the interval's log
    // width (99%, normal); unknown for too few data and single values.
    let gated = !matches!(status, Status::Ignored | Status::New | Status::Missing);
    let mde = match (m.kind(), ci) {
        _ if !gated => None,
        (MetricKind::Deterministic, _) => Some(Mde::exact(limits.0, limits.1)),
        _ if status == Status::InsufficientData => Some(Mde::unknown(Unknown::TooFewData)),
        (MetricKind::Timing, Some((lo, hi))) => {
            let se = (hi.ln_1p() - lo.ln_1p()) / (2.0 * 2.575_829_3);
            let q = Quantiles::Normal;
            Some(Mde::statistical(
                se,
                0.99,
                q,
                m.direction(),
                limits.0,
                limits.1,
            ))
        }
        _ => Some(Mde::unknown(Unknown::SingleValue)),
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
        mde,
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
        attribution: Vec::new(),
        crosscheck: Vec::new(),
        noise_floors: None,
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
        assert_eq!(
            a.mde.map(|m| std::mem::discriminant(&m)),
            b.mde.map(|m| std::mem::discriminant(&m)),
            "{}",
            a.metric
        );
        if let (Some(x), Some(y)) = (a.mde.and_then(|m| m.warn()), b.mde.and_then(|m| m.warn())) {
            assert!((x - y).abs() < 1e-12);
        }
    }
    // Each gated verdict states its MDE: exact counts their thresholds, timings a number,
    // single values and too few data "unknown"; not gated, new and missing metrics none.
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let mde = |metric: &str| {
        value["verdicts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["metric"] == metric)
            .unwrap()
            .get("mde")
            .cloned()
    };
    let allocs = mde("recall/format/allocs").unwrap();
    assert_eq!(
        allocs,
        serde_json::json!({"basis": "exact", "warn": 0.01, "fail": 0.05})
    );
    let wall = mde("recall/vector_search/wall_ns").unwrap();
    assert_eq!(wall["basis"], "statistical");
    assert_eq!(wall["power"].as_f64(), Some(0.8));
    assert_eq!(wall["binds"], "noise");
    let (stat, warn) = (
        wall["statistical"].as_f64().unwrap(),
        wall["warn"].as_f64().unwrap(),
    );
    // Interval +31% … +95%: se = ln(1.95/1.31) / (2 * 2.5758) = 0.0772, MDE 3.4174 * se;
    // the warn threshold (10%) adds on the log scale.
    assert!((stat - 0.302).abs() < 2e-3, "{stat}");
    assert!((warn - (1.10 * (1.0 + stat) - 1.0)).abs() < 1e-9, "{warn}");
    let unknown = |r: &str| Some(serde_json::json!({"basis": "unknown", "reason": r}));
    assert_eq!(mde("mixed/total/throughput_ops"), unknown("single_value"));
    assert_eq!(
        mde("consolidation/cluster/wall_ns"),
        unknown("too_few_data")
    );
    assert_eq!(mde("recall/total/p99_ns"), None);
    assert_eq!(mde("recall/dedupe/wall_ns"), None);
}

/// check.json written before verdicts carried an MDE still reads, with none.
#[test]
fn check_json_without_mde_reads_back() {
    let mut value: serde_json::Value = serde_json::from_str(&check::json(&fixture())).unwrap();
    for v in value["verdicts"].as_array_mut().unwrap() {
        v.as_object_mut().unwrap().remove("mde");
    }
    let back: Comparison = serde_json::from_value(value).unwrap();
    assert!(back.verdicts.iter().all(|v| v.mde.is_none()));
    assert!(!check::markdown(&back).contains("Could detect"));
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

/// Text from git and imported records that tries to inject markup, break the table or drive
/// the terminal.
const HOSTILE_BRANCH: &str = "feat/<b>a|b</b>";
/// Reports show a commit's first 7 characters: a pipe, ESC and the start of a tag.
const HOSTILE_COMMIT: &str = "|\x1b[2J<b>`<script>alert(1)</script>\x1b]0;pwned\x07\nnext";

/// The fixture with every untrusted string hostile. Metric names are validated (lowercase
/// letters, digits, `_`), so their only markdown character is `_`, which the fixture has.
fn hostile() -> Comparison {
    let mut c = fixture();
    let evil = |r: &mut RunInfo| {
        r.branch = Some(HOSTILE_BRANCH.into());
        r.commit = Some(HOSTILE_COMMIT.into());
        r.profile = "quick|`x` <i>y</i>".into();
        r.machine = "cpu\x1b[31m | os\n<img src=x onerror=alert(1)>".into();
    };
    evil(&mut c.head);
    c.base.iter_mut().for_each(evil);
    c
}

#[test]
fn hostile_text_stays_inert_in_markdown() {
    let md = check::markdown(&hostile());
    golden("hostile.md", &md);
    for bad in ["<b>", "<script", "\x1b", "\x07"] {
        assert!(!md.contains(bad), "check.md holds {bad:?}:\n{md}");
    }
    // Branches are text, with the markup as entities; commits, profile and machine are code
    // spans (whose content markdown never reads as HTML) with fences longer than any
    // backtick run inside.
    assert!(md.contains("(feat/&lt;b&gt;a\\|b&lt;/b&gt;)"), "{md}");
    assert!(md.contains("Head `|\u{FFFD}[2J<b` (feat/"), "{md}");
    assert!(md.contains("profile ``quick|`x` <i>y</i>``"), "{md}");
    assert!(
        md.contains("machine `cpu\u{FFFD}[31m | os\u{FFFD}<img src=x onerror=alert(1)>`  \n"),
        "{md}"
    );
    // Every table row keeps its cell count: a value cannot add a `|` or end the row.
    for line in md.lines().filter(|l| l.starts_with("| ")) {
        let cells = line.replace("\\|", "").matches('|').count();
        assert!(cells == 9 || cells == 10, "{cells} separators in {line:?}");
    }
}

#[test]
fn hostile_text_stays_inert_in_the_terminal() {
    for (name, color) in [("hostile.txt", false), ("hostile-color.txt", true)] {
        let out = check::terminal(&hostile(), color, true);
        golden(name, &out);
        let stripped = [
            "\x1b[1;31m",
            "\x1b[33m",
            "\x1b[32m",
            "\x1b[2m",
            "\x1b[1m",
            "\x1b[0m",
        ]
        .iter()
        .fold(out.clone(), |s, code| s.replace(code, ""));
        assert!(
            !stripped.contains(['\x1b', '\x07']),
            "a control character other than our colours reached the terminal:\n{out:?}"
        );
    }
    let first = check::terminal(&hostile(), false, false);
    let headline = first.lines().next().unwrap();
    assert!(
        headline.contains("| head |\u{FFFD}[2J<b vs base |\u{FFFD}[2J<b (3 runs) |"),
        "{headline}"
    );
    let ann = check::annotations(&hostile());
    assert!(!ann.contains('\x1b') && ann.lines().count() == 4, "{ann}");
}
