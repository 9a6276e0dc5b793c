//! A temporary project for end-to-end tests: a real git repository with a small profile.
#![allow(dead_code)] // each test file uses a different part

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

/// A very small profile so each run takes a moment even in a debug build.
pub const MINI_REMEMBER: &str = "workloads = [\"remember\"]\n[corpus]\nevents = 300\ntopics = 4\nsessions = 10\nqueries = 20\n[run]\nwarmup_ops = 2\nops = 20\ncpu_sample_every = 0\n";

/// Small enough for a debug build, big enough for the gate: recall and remember over 600 events.
pub const MINI_GATE: &str = "workloads = [\"recall\", \"remember\"]\n[corpus]\nevents = 600\ntopics = 6\nsessions = 20\nqueries = 60\n[run]\nwarmup_ops = 10\nops = 150\ncpu_sample_every = 0\n";

/// The engine's harness binary (`crates/engine/examples/perfcheck`), which `cargo test`
/// builds beside `cargo-perfcheck`: the binary the launcher runs in this repository.
pub fn harness_bin() -> PathBuf {
    let launcher = assert_cmd::cargo::cargo_bin("cargo-perfcheck");
    let bin = launcher
        .parent()
        .expect("target folder")
        .join("examples")
        .join(format!("perfcheck{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "{} is missing: build it with `cargo build --example perfcheck -p agent-memory`",
        bin.display()
    );
    bin
}

/// The `cargo-perfcheck` launcher, told to run the engine's harness (tests run in temp dirs,
/// outside any cargo package).
pub fn launcher() -> Command {
    let mut c = Command::cargo_bin("cargo-perfcheck").expect("binary builds");
    c.env("PERFCHECK_HARNESS", harness_bin());
    c
}

/// A git repository in a temp dir with `profiles/mini.toml`; reports/ and baselines/ ignored.
pub struct Project {
    pub dir: tempfile::TempDir,
    pub repo: git2::Repository,
}

impl Project {
    /// A repository with one commit; `config` becomes perfcheck.toml when given.
    pub fn new(profile: &str, config: Option<&str>) -> Project {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(dir.path()).unwrap();
        std::fs::create_dir(dir.path().join("profiles")).unwrap();
        std::fs::write(dir.path().join("profiles/mini.toml"), profile).unwrap();
        if let Some(c) = config {
            std::fs::write(dir.path().join("perfcheck.toml"), c).unwrap();
        }
        std::fs::write(
            dir.path().join(".gitignore"),
            "reports/\nbaselines/\ntarget/\n",
        )
        .unwrap();
        let p = Project { dir, repo };
        p.commit("init");
        p
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn head(&self) -> String {
        self.repo.head().unwrap().target().unwrap().to_string()
    }

    /// Commits everything on HEAD's branch, with a file that changes each time.
    pub fn commit(&self, msg: &str) -> String {
        std::fs::write(self.path().join("version.txt"), msg).unwrap();
        let mut index = self.repo.index().unwrap();
        index
            .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
            .unwrap();
        index.write().unwrap();
        let tree = self.repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::now("t", "t@example.com").unwrap();
        let parents: Vec<git2::Commit> = self
            .repo
            .head()
            .ok()
            .and_then(|h| h.peel_to_commit().ok())
            .into_iter()
            .collect();
        let refs: Vec<&git2::Commit> = parents.iter().collect();
        self.repo
            .commit(Some("HEAD"), &sig, &sig, msg, &tree, &refs)
            .unwrap()
            .to_string()
    }

    /// Creates branch `name` at commit `at` and checks it out.
    pub fn checkout_new_branch(&self, name: &str, at: &str) {
        let c = self
            .repo
            .find_commit(git2::Oid::from_str(at).unwrap())
            .unwrap();
        self.repo.branch(name, &c, false).unwrap();
        self.repo.set_head(&format!("refs/heads/{name}")).unwrap();
        self.repo
            .checkout_head(Some(git2::build::CheckoutBuilder::new().force()))
            .unwrap();
    }

    /// The binary, run in the project with a clean environment.
    pub fn cmd(&self) -> Command {
        let mut c = launcher();
        c.current_dir(self.path())
            .env_remove("PERFCHECK_STORE")
            .env_remove("PERFCHECK_SLOW_STAGE")
            .env_remove("PERFCHECK_TEST_HOLD_SAVE")
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITHUB_STEP_SUMMARY")
            // `check --ab` keeps its worktree under the target dir: this project's own.
            .env("CARGO_TARGET_DIR", self.path().join("target"))
            .env("NO_COLOR", "1");
        c
    }

    /// `run -p mini --save`; returns the run id. (A run slowed by the calibration knob cannot
    /// be saved: tests/cli.rs checks that.)
    pub fn save(&self) -> String {
        let out = self
            .cmd()
            .args(["run", "-p", "mini", "-q", "--save"])
            .assert()
            .success()
            .stdout(predicate::str::contains("saved as"))
            .get_output()
            .stdout
            .clone();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("perfcheck run "))
            .and_then(|l| l.split_whitespace().next())
            .expect("run id printed")
            .to_owned()
    }

    /// `baseline list` output.
    pub fn list(&self, extra: &[&str]) -> String {
        let out = self
            .cmd()
            .args(["baseline", "list"])
            .args(extra)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        String::from_utf8(out).unwrap()
    }

    /// Run ids (first column) of `baseline list`.
    pub fn ids(&self, extra: &[&str]) -> Vec<String> {
        self.list(extra)
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|id| *id != "no")
            .map(str::to_owned)
            .collect()
    }

    /// The default store file.
    pub fn store(&self) -> PathBuf {
        self.path().join("baselines/perfcheck.sqlite")
    }
}

/// The binary run in `dir`, without the test knobs of the caller's environment.
pub fn perfcheck(dir: &Path) -> Command {
    let mut c = launcher();
    c.current_dir(dir)
        .env_remove("PERFCHECK_SLOW_STAGE")
        .env_remove("PERFCHECK_STORE");
    c
}

/// Makes `dir` a git repository with one commit (reports/ ignored); returns its sha.
pub fn git_repo(dir: &Path) -> String {
    let repo = git2::Repository::init(dir).expect("git init");
    std::fs::write(dir.join(".gitignore"), "reports/\n").unwrap();
    let mut index = repo.index().unwrap();
    index.add_path(Path::new(".gitignore")).unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::now("t", "t@example.com").unwrap();
    repo.commit(Some("HEAD"), &sig, &sig, "init", &tree, &[])
        .unwrap()
        .to_string()
}

/// The single run folder under `reports`.
pub fn only_run(reports: &Path) -> PathBuf {
    let runs: Vec<_> = std::fs::read_dir(reports)
        .expect("reports folder exists")
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs[0].clone()
}

/// The newest report folder under `root/reports` that holds a check.json.
pub fn newest_check_dir(root: &Path) -> PathBuf {
    newest_check_in(&root.join("reports"))
}

/// The sub-folder of `reports` whose check.json was written last. By write time, not by name:
/// two runs started in the same second differ only in their random tags.
pub fn newest_check_in(reports: &Path) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(reports)
        .expect("reports folder exists")
        .map(|e| e.unwrap().path())
        .filter(|d| d.join("check.json").exists())
        .collect();
    dirs.sort_by_key(|d| {
        std::fs::metadata(d.join("check.json"))
            .unwrap()
            .modified()
            .unwrap()
    });
    dirs.pop().expect("a check report")
}

/// The verdict of `metric` in a check.json.
pub fn verdict<'a>(check: &'a serde_json::Value, metric: &str) -> &'a serde_json::Value {
    check["verdicts"]
        .as_array()
        .expect("verdicts")
        .iter()
        .find(|v| v["metric"] == metric)
        .unwrap_or_else(|| panic!("{metric} not compared"))
}

/// The `trend-<time>` folder a `trend` wrote under `reports`.
pub fn trend_dir(reports: &Path) -> PathBuf {
    std::fs::read_dir(reports)
        .expect("reports folder exists")
        .map(|e| e.unwrap().path())
        .find(|d| {
            d.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("trend-")
        })
        .expect("trend folder")
}
