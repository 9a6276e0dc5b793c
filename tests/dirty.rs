//! perfcheck's own output never makes a tree dirty: in a repository without a .gitignore,
//! saved runs are clean baselines, while any other untracked file still makes a run dirty.

mod common;

use std::path::Path;

use common::{perfcheck, MINI_REMEMBER};

/// A repository with `profiles/mini.toml` committed and no .gitignore.
fn repo_without_gitignore(dir: &Path) {
    let repo = git2::Repository::init(dir).unwrap();
    std::fs::create_dir(dir.join("profiles")).unwrap();
    std::fs::write(dir.join("profiles/mini.toml"), MINI_REMEMBER).unwrap();
    let mut index = repo.index().unwrap();
    index.add_path(Path::new("profiles/mini.toml")).unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::now("t", "t@example.com").unwrap();
    repo.commit(Some("HEAD"), &sig, &sig, "init", &tree, &[])
        .unwrap();
}

fn run_save(dir: &Path) -> String {
    run_save_with(dir, &[])
}

/// `run -p mini -q --save` plus `extra` arguments; its stdout.
fn run_save_with(dir: &Path, extra: &[&str]) -> String {
    let out = perfcheck(dir)
        .env("NO_COLOR", "1")
        .args(["run", "-p", "mini", "-q", "--save"])
        .args(extra)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    String::from_utf8(out).unwrap()
}

#[test]
fn saved_runs_are_clean_baselines_without_a_gitignore() {
    let tmp = tempfile::tempdir().unwrap();
    repo_without_gitignore(tmp.path());
    for _ in 0..2 {
        // The second run sees reports/ and baselines/ from the first: still clean.
        let out = run_save(tmp.path());
        assert!(out.contains("saved as a baseline of"), "{out}");
        assert!(!out.contains("(dirty)") && !out.contains("hint:"), "{out}");
    }
    let out = perfcheck(tmp.path())
        .env("NO_COLOR", "1")
        .args(["check", "-p", "mini", "-q"])
        .assert()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    assert!(!out.contains("no baseline"), "{out}");
    assert!(
        out.contains("perfcheck check") && out.contains("(2 runs)"),
        "{out}"
    );
}

#[test]
fn another_untracked_file_makes_the_run_dirty_and_the_hint_names_it() {
    let tmp = tempfile::tempdir().unwrap();
    repo_without_gitignore(tmp.path());
    std::fs::write(tmp.path().join("notes.txt"), "todo").unwrap();
    let out = run_save(tmp.path());
    assert!(out.contains("(dirty)"), "{out}");
    assert!(out.contains("saved as a DIRTY run"), "{out}");
    let hints: Vec<&str> = out.lines().filter(|l| l.starts_with("hint:")).collect();
    assert_eq!(hints.len(), 1, "{out}");
    assert!(
        hints[0].contains("only because of untracked files: notes.txt;")
            && hints[0].contains(".gitignore"),
        "{}",
        hints[0]
    );
    // A changed tracked file is dirt too, and then no untracked-only hint.
    std::fs::remove_file(tmp.path().join("notes.txt")).unwrap();
    std::fs::write(
        tmp.path().join("profiles/mini.toml"),
        MINI_REMEMBER.replace("ops = 20", "ops = 21"),
    )
    .unwrap();
    let out = run_save(tmp.path());
    assert!(out.contains("saved as a DIRTY run"), "{out}");
    assert!(!out.contains("hint:"), "{out}");
}

#[test]
fn a_store_named_by_flag_at_the_root_is_own_output_but_its_neighbours_are_not() {
    let tmp = tempfile::tempdir().unwrap();
    repo_without_gitignore(tmp.path());
    let save = |dir: &Path| run_save_with(dir, &["--store", "perf.sqlite"]);
    for _ in 0..2 {
        // The second run sees perf.sqlite (and SQLite's files beside it) from the first.
        let out = save(tmp.path());
        assert!(out.contains("saved as a baseline of"), "{out}");
    }
    // calibrate's noise floors beside the store are its own output too.
    std::fs::write(tmp.path().join("noise.json"), "{}").unwrap();
    let out = save(tmp.path());
    assert!(out.contains("saved as a baseline of"), "{out}");
    // The store's folder is the repository's root: a file beside the store still counts.
    std::fs::write(tmp.path().join("notes.txt"), "x").unwrap();
    let out = save(tmp.path());
    assert!(out.contains("saved as a DIRTY run"), "{out}");
    assert!(
        out.contains("notes.txt") && !out.contains("perf.sqlite,"),
        "{out}"
    );
}
