//! perfcheck on a crate it has never seen: a new package in a temp dir (outside this
//! repository) with two stages of its own and a `perfcheck::main!` example, driven through the
//! real `cargo-perfcheck` launcher, which finds, builds and runs that example.

mod common;

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The crate's library: one operation (`handle`) in two stages. `ROUNDS` sets how much work
/// the `score` stage does; the "slower" commit raises it.
fn lib_rs(rounds: u32) -> String {
    format!(
        r#"//! A two-stage text pipeline.

/// Work of the score stage per token.
pub const ROUNDS: u64 = {rounds};

/// Splits a document into token hashes.
#[inline(never)]
pub fn tokenize(text: &str) -> Vec<u64> {{
    let _s = perfcheck_stage::stage!("tokenize");
    text.split_whitespace()
        .map(|w| w.bytes().fold(1469598103934665603u64, |h, b| (h ^ b as u64).wrapping_mul(1099511628211)))
        .collect()
}}

/// Scores the tokens.
#[inline(never)]
pub fn score(tokens: &[u64]) -> u64 {{
    let _s = perfcheck_stage::stage!("score");
    let mut acc = 0u64;
    for t in tokens {{
        let mut x = *t;
        for _ in 0..ROUNDS {{
            x = std::hint::black_box(x.rotate_left(7) ^ 0x9e3779b97f4a7c15).wrapping_mul(31);
        }}
        acc = acc.wrapping_add(x);
    }}
    acc
}}

/// One operation: tokenize, then score.
pub fn handle(text: &str) -> u64 {{
    score(&tokenize(text))
}}
"#
    )
}

/// The harness: the whole of what a crate adds to be measured.
const HARNESS: &str = r#"use perfcheck::harness::{BoxError, NoConfig, SetupContext, Workload};

struct Query;

impl Workload for Query {
    type Config = NoConfig;
    type State = (Vec<String>, usize);
    type Input = usize;

    fn name(&self) -> &str {
        "query"
    }

    fn setup(&self, _: &NoConfig, _: &SetupContext<'_>) -> Result<Self::State, BoxError> {
        let docs = (0..64)
            .map(|i| format!("document {i} about stages pipelines and the tokens they score"))
            .collect();
        Ok((docs, 0))
    }

    fn prepare(&self, state: &mut Self::State) -> Result<usize, BoxError> {
        state.1 = (state.1 + 1) % state.0.len();
        Ok(state.1)
    }

    fn execute(&self, state: &mut Self::State, doc: usize) -> Result<(), BoxError> {
        std::hint::black_box(pipeline::handle(&state.0[doc]));
        Ok(())
    }
}

perfcheck::main!(Query);
"#;

/// The repository's root: the crate depends on perfcheck by this path.
fn perfcheck_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Commits every file of the working tree.
fn commit(repo: &git2::Repository, msg: &str) {
    let mut index = repo.index().unwrap();
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::now("t", "t@example.com").unwrap();
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    repo.commit(Some("HEAD"), &sig, &sig, msg, &tree, &parents)
        .unwrap();
}

/// The launcher in the new crate, with nothing of this repository's test setup: it has to
/// find the example itself. Builds go to a target folder kept between test runs.
fn cargo_perfcheck(dir: &Path) -> assert_cmd::Command {
    let mut c = assert_cmd::Command::cargo_bin("cargo-perfcheck").unwrap();
    c.current_dir(dir)
        .env_remove("PERFCHECK_HARNESS")
        .env_remove("PERFCHECK_HARNESS_TARGET")
        .env_remove("PERFCHECK_STORE")
        .env_remove("PERFCHECK_SLOW_STAGE")
        .env(
            "CARGO_TARGET_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("new-crate-target"),
        )
        .env("NO_COLOR", "1");
    c
}

/// Whether `program` is on PATH.
fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The table row of `stage` in `run`'s output: its columns.
fn row<'a>(run: &'a str, stage: &str) -> Option<Vec<&'a str>> {
    run.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cols| cols.first() == Some(&stage))
}

fn json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn a_new_crate_gets_stage_rows_a_flamegraph_an_ab_verdict_and_a_trend() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pipeline");
    let root = perfcheck_root();
    write(
        &dir,
        "Cargo.toml",
        &format!(
            "[package]\nname = \"pipeline\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [dependencies]\nperfcheck-stage = {{ path = {:?} }}\n\n\
             [dev-dependencies]\nperfcheck = {{ path = {:?} }}\n\n[workspace]\n",
            root.join("crates/stage"),
            root
        ),
    );
    // 50 rounds keep the base score stage near 4 us, clear of the gate's 2 us `min_ns` floor
    // on a fast machine (20 rounds measured 1.7 us here and the stage was ignored).
    write(&dir, "src/lib.rs", &lib_rs(50));
    write(&dir, "examples/perfcheck.rs", HARNESS);
    // A debug build of the harness: this test compiles perfcheck's dependencies once per
    // target folder, and the dev profile does that fastest.
    write(
        &dir,
        "perfcheck.toml",
        "[harness]\ncargo_profile = \"dev\"\n",
    );
    write(
        &dir,
        "profiles/small.toml",
        "[run]\nwarmup_ops = 20\nops = 400\ncpu_sample_every = 0\n",
    );
    write(
        &dir,
        ".gitignore",
        "target/\nreports/\nbaselines/\nCargo.lock\n",
    );
    let repo = git2::Repository::init(&dir).unwrap();
    commit(&repo, "pipeline v1");

    // run: the crate's own two stage rows, and saved as the first commit's baseline.
    let out = cargo_perfcheck(&dir)
        .args(["run", "-p", "small", "-q", "--save"])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for stage in ["tokenize", "score", "total"] {
        let cols = row(&text, stage).unwrap_or_else(|| panic!("no {stage} row:\n{text}"));
        assert_eq!(
            cols[1], "400",
            "{stage} ran in every measured operation:\n{text}"
        );
    }
    assert!(text.contains("query: 400 ops"), "{text}");
    assert!(text.contains("saved as a baseline"), "{text}");

    // The instructions pass works on the crate's workload too: per-stage counts, the same in
    // two passes of the same binary.
    if which("valgrind") {
        let counts = || -> Vec<(String, Vec<u64>)> {
            let out = cargo_perfcheck(&dir)
                .args(["run", "-p", "small", "-q", "--instructions"])
                .output()
                .unwrap();
            let text = stdout(&out);
            assert!(
                out.status.success(),
                "{text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let record = text
                .lines()
                .find_map(|l| l.strip_prefix("run record: ").map(PathBuf::from))
                .expect("the run record's path is printed");
            let run = json(&dir.join(record));
            let stages = run["workloads"][0]["instructions"]["stages"]
                .as_array()
                .unwrap_or_else(|| panic!("no instruction counts: {}", run["workloads"][0]))
                .clone();
            stages
                .iter()
                .map(|s| {
                    let counts = s["instructions"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|c| c.as_u64().unwrap())
                        .collect();
                    (s["stage"].as_str().unwrap().to_owned(), counts)
                })
                .collect()
        };
        let first = counts();
        for stage in ["tokenize", "score"] {
            let (_, c) = first
                .iter()
                .find(|(s, _)| s == stage)
                .unwrap_or_else(|| panic!("{stage} not counted: {first:?}"));
            assert!(c.iter().all(|&n| n > 0), "{stage}: {c:?}");
        }
        assert_eq!(first, counts(), "two passes of one binary count alike");
    }

    // profile: a flamegraph whose stage frames are the crate's stage functions.
    let out = cargo_perfcheck(&dir)
        .args(["profile", "--cpu", "-p", "small", "--ops", "20000", "-q"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    let record = stdout(&out)
        .lines()
        .find_map(|l| l.strip_prefix("profile record: ").map(PathBuf::from))
        .expect("the profile record's path is printed");
    let wdir = dir.join(record.parent().unwrap()).join("query");
    let svg = std::fs::read_to_string(wdir.join("flamegraph.svg")).unwrap();
    assert!(svg.contains("pipeline::score"), "no score frame");
    let stages = json(&wdir.join("cpu-stages.json"));
    let samples = |name: &str| {
        stages["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["stage"] == name)
            .map(|s| s["samples"].as_u64().unwrap())
            .unwrap_or(0)
    };
    assert!(samples("score") > 0, "{stages}");

    // A commit that makes `score` 30 times the work: check --ab builds the base revision's
    // example and fails, naming that stage. Six rounds: with three (2 degrees of freedom) one
    // disturbed round on a busy CI machine once kept even this change below significance.
    write(&dir, "src/lib.rs", &lib_rs(1500));
    commit(&repo, "pipeline v2: score does more work");
    let out = cargo_perfcheck(&dir)
        .args([
            "check", "--ab", "--base", "HEAD~1", "--rounds", "6", "-p", "small", "-q",
        ])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("query/score/"), "{text}");
    let check = json(&common::newest_check_in(&dir.join("reports/ab")).join("check.json"));
    let score = common::verdict(&check, "query/score/wall_ns");
    assert_eq!(score["status"], "fail", "{score}");
    let tokenize = common::verdict(&check, "query/tokenize/wall_ns");
    assert_ne!(tokenize["status"], "fail", "{tokenize}");

    // trend: the second commit saved too, then charted over both.
    cargo_perfcheck(&dir)
        .args(["run", "-p", "small", "-q", "--save"])
        .assert()
        .success();
    let out = cargo_perfcheck(&dir)
        .args(["trend", "-p", "small", "-m", "query/score/wall_ns"])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("query/score/wall_ns over 2 commits"),
        "{text}"
    );
    let trend = common::trend_dir(&dir.join("reports"));
    let points = json(&trend.join("trend.json"));
    assert_eq!(points[0]["metric"], "query/score/wall_ns");
    let svgs: Vec<PathBuf> = std::fs::read_dir(&trend)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "svg"))
        .collect();
    assert_eq!(svgs.len(), 1, "{svgs:?}");
}
