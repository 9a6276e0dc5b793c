//! A store written before the harness redesign (by the binary of commit 0401753, whose
//! profiles had typed engine sections and whose workloads were a closed enum) still gates
//! after it.
//!
//! The fixture, tests/data/store-0401753/: `perfcheck.sqlite` holds one saved run of the
//! `mini` profile below and `head-run.json` is a second run of the same commit, both made by
//! that binary in a git repository whose one commit this test recreates byte for byte (fixed
//! author, committer and time), so the stored baseline's commit is in this repository's history.

mod common;

use std::path::Path;

use serde_json::Value;

const MINI: &str = "workloads = [\"recall\", \"remember\"]\n[corpus]\nevents = 600\ntopics = 6\nsessions = 20\nqueries = 60\n[run]\nwarmup_ops = 10\nops = 150\ncpu_sample_every = 0\n";
const COMMIT: &str = "78b19bd907fdeb2b362848400d69fb425f173464";

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/store-0401753")
        .join(name)
}

/// The fixture's repository: the same files and the same commit object as when it was made.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("profiles")).unwrap();
    std::fs::write(dir.path().join("profiles/mini.toml"), MINI).unwrap();
    std::fs::write(dir.path().join(".gitignore"), "reports/\nbaselines/\n").unwrap();
    let repo = git2::Repository::init(dir.path()).unwrap();
    let mut index = repo.index().unwrap();
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let when = git2::Time::new(1_793_491_200, 0); // 2026-11-01T00:00:00Z
    let sig = git2::Signature::new("t", "t@example.com", &when).unwrap();
    let oid = repo
        .commit(Some("HEAD"), &sig, &sig, "init\n", &tree, &[])
        .unwrap();
    assert_eq!(oid.to_string(), COMMIT, "the fixture's commit is recreated");
    std::fs::create_dir(dir.path().join("baselines")).unwrap();
    std::fs::copy(
        fixture("perfcheck.sqlite"),
        dir.path().join("baselines/perfcheck.sqlite"),
    )
    .unwrap();
    dir
}

fn status<'a>(check: &'a Value, metric: &str) -> &'a str {
    common::verdict(check, metric)["status"].as_str().unwrap()
}

#[test]
fn an_old_store_lists_shows_and_gates_an_old_run() {
    let p = project();
    let list = common::perfcheck(p.path())
        .args(["baseline", "list"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let list = String::from_utf8(list).unwrap();
    assert!(list.contains("78b19bd907"), "{list}");
    assert!(list.contains("mini"), "{list}");

    // The old binary's second run, checked where the check may write its report beside it.
    let run_dir = p.path().join("reports/old-head");
    std::fs::create_dir_all(&run_dir).unwrap();
    std::fs::copy(fixture("head-run.json"), run_dir.join("run.json")).unwrap();
    let out = common::perfcheck(p.path())
        .args([
            "check",
            "-p",
            "mini",
            "--fail-without-baseline",
            "--run-file",
        ])
        .arg(run_dir.join("run.json"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("vs base 78b19bd"), "{stdout}");
    let check: Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("check.json")).unwrap())
            .unwrap();
    // The same code on both sides: exact counts unchanged, metric names as before.
    for metric in [
        "recall/total/allocs",
        "recall/rerank/allocs",
        "remember/persist/allocs",
    ] {
        assert_eq!(status(&check, metric), "unchanged", "{metric}");
    }
}

#[test]
fn a_new_run_on_the_fixture_s_machine_allocates_what_the_old_binary_did() {
    let p = project();
    let head: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("head-run.json")).unwrap()).unwrap();
    let out = common::perfcheck(p.path())
        .args(["check", "-p", "mini", "--fail-without-baseline", "--all"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let run = common::only_run(&p.path().join("reports"));
    let new: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap();
    let fingerprint = |r: &Value| {
        ["cpu_model", "cores", "os", "rustc", "build_profile"].map(|k| r["machine"][k].clone())
    };
    if fingerprint(&new) != fingerprint(&head) {
        // Another machine or build than the fixture's: no stored run can be its baseline.
        eprintln!(
            "skipped: this machine ({}) is not the fixture's ({})",
            new["machine"], head["machine"]
        );
        return;
    }
    // Wall times of a debug build on a shared machine may flag either way (exit 1); only the
    // exact counts are this test's business. Exit 2 would be a check that could not run.
    assert!(matches!(out.status.code(), Some(0 | 1)), "{stdout}");
    assert!(stdout.contains("vs base 78b19bd"), "{stdout}");
    let dir = common::newest_check_dir(p.path());
    let check: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("check.json")).unwrap()).unwrap();
    // Allocation counts are exact: the harness redesign allocates nothing more or less in the
    // measured operations than the engine-only runner did.
    for metric in [
        "recall/total/allocs",
        "remember/total/allocs",
        "remember/persist/allocs",
    ] {
        assert_eq!(status(&check, metric), "unchanged", "{metric}");
    }
}
