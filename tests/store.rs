//! The baseline store through the real binary: save, list, export/import, delete, and
//! durability (a killed save, concurrent saves, corrupt and foreign files).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use predicates::prelude::*;

/// A very small profile so each run takes a moment even in a debug build.
const MINI: &str = "workloads = [\"remember\"]\n[corpus]\nevents = 300\ntopics = 4\nsessions = 10\nqueries = 20\n[run]\nwarmup_ops = 2\nops = 20\ncpu_sample_every = 0\n";

struct Project {
    dir: tempfile::TempDir,
    repo: git2::Repository,
}

impl Project {
    /// A git repository with one commit, a `mini` profile and reports/ ignored.
    fn new() -> Project {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(dir.path()).unwrap();
        std::fs::create_dir(dir.path().join("profiles")).unwrap();
        std::fs::write(dir.path().join("profiles/mini.toml"), MINI).unwrap();
        std::fs::write(dir.path().join(".gitignore"), "reports/\nbaselines/\n").unwrap();
        let p = Project { dir, repo };
        p.commit("init");
        p
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn commit(&self, msg: &str) -> String {
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

    fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("cargo-perfcheck").unwrap();
        c.current_dir(self.path())
            .env_remove("PERFCHECK_STORE")
            .env_remove("PERFCHECK_SLOW_STAGE")
            .env_remove("PERFCHECK_TEST_HOLD_SAVE");
        c
    }

    fn save_run(&self) -> String {
        let out = self
            .cmd()
            .args(["run", "-p", "mini", "-q", "--save"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let out = String::from_utf8(out).unwrap();
        out.lines()
            .find_map(|l| l.strip_prefix("perfcheck run "))
            .and_then(|l| l.split_whitespace().next())
            .expect("run id printed")
            .to_owned()
    }

    fn list(&self, extra: &[&str]) -> String {
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
    fn ids(&self, extra: &[&str]) -> Vec<String> {
        self.list(extra)
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_owned)
            .collect()
    }

    fn store(&self) -> PathBuf {
        self.path().join("baselines/perfcheck.sqlite")
    }
}

#[test]
fn saved_runs_are_listed_shown_exported_imported_and_deleted() {
    let p = Project::new();
    let sha = p.repo.head().unwrap().target().unwrap().to_string();
    let first = p.save_run();
    let second = p.save_run();
    let list = p.list(&[]);
    assert!(list.contains(&first) && list.contains(&second), "{list}");
    assert!(
        list.contains(&sha[..10]) && list.contains("clean"),
        "{list}"
    );

    p.cmd()
        .args(["baseline", "show", &first])
        .assert()
        .success()
        .stdout(predicate::str::contains("persist").and(predicate::str::contains(&sha)));

    let export = p.path().join("export.json");
    p.cmd()
        .args(["baseline", "export", "-o"])
        .arg(&export)
        .assert()
        .success()
        .stdout(predicate::str::contains("exported 2 runs"));
    let other = p.path().join("other.sqlite");
    p.cmd()
        .args(["baseline", "import"])
        .arg(&export)
        .arg("--store")
        .arg(&other)
        .assert()
        .success()
        .stdout(predicate::str::contains("imported 2 new runs"));
    // Importing again changes nothing.
    p.cmd()
        .args(["baseline", "import"])
        .arg(&export)
        .arg("--store")
        .arg(&other)
        .assert()
        .success()
        .stdout(predicate::str::contains("imported 0 new runs"));
    let imported = p.list(&["--store", other.to_str().unwrap()]);
    assert!(imported.contains(&first) && imported.contains(&second));

    // Deleting an unknown id deletes nothing, not even the known one beside it.
    p.cmd()
        .args(["baseline", "delete", &first, "nope"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("nope"));
    assert_eq!(p.ids(&[]).len(), 2);
    p.cmd()
        .args(["baseline", "delete", &first])
        .assert()
        .success();
    assert_eq!(p.ids(&[]), vec![second]);
}

#[test]
fn dirty_runs_are_stored_as_dirty_and_hidden_by_default() {
    let p = Project::new();
    std::fs::write(p.path().join("untracked.txt"), "change").unwrap();
    let id = p.save_run();
    assert!(!p.list(&[]).contains(&id));
    let all = p.list(&["--include-dirty"]);
    assert!(all.contains(&id) && all.contains("dirty"), "{all}");
}

#[test]
fn outside_a_repository_the_run_reports_but_is_not_saved() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("profiles")).unwrap();
    std::fs::write(dir.path().join("profiles/mini.toml"), MINI).unwrap();
    Command::cargo_bin("cargo-perfcheck")
        .unwrap()
        .current_dir(dir.path())
        .env_remove("PERFCHECK_STORE")
        .args(["run", "-p", "mini", "-q", "--save"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "not saved: not in a git repository",
        ));
}

#[test]
fn a_save_killed_mid_transaction_leaves_earlier_runs_intact() {
    let p = Project::new();
    let kept = p.save_run();
    // Outside the work tree, or the next run would be dirty.
    let marker_dir = tempfile::tempdir().unwrap();
    let marker = marker_dir.path().join("holding");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("cargo-perfcheck"))
        .current_dir(p.path())
        .env("PERFCHECK_TEST_HOLD_SAVE", &marker)
        .env_remove("PERFCHECK_STORE")
        .args(["run", "-p", "mini", "-q", "--save"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The child creates the marker inside its open write transaction.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "the save never started");
        if let Some(status) = child.try_wait().unwrap() {
            panic!("child exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    assert_eq!(p.ids(&["--include-dirty"]), vec![kept.clone()]);
    // The store still takes writes after the crash.
    let after = p.save_run();
    assert_eq!(p.ids(&[]), vec![kept, after]);
}

#[test]
fn concurrent_saves_into_a_new_store_both_succeed() {
    let p = Project::new();
    let id = p.save_run();
    let export = p.path().join("one.json");
    p.cmd()
        .args(["baseline", "export", "-o"])
        .arg(&export)
        .assert()
        .success();
    // Two different run ids from the same record.
    let text = std::fs::read_to_string(&export).unwrap();
    let a = p.path().join("a.json");
    let b = p.path().join("b.json");
    std::fs::write(&a, text.replace(&id, "run-a")).unwrap();
    std::fs::write(&b, text.replace(&id, "run-b")).unwrap();
    let dir = p.path().to_path_buf();
    for round in 0..4 {
        let store = dir.join(format!("race-{round}.sqlite"));
        let spawn = |file: &Path| {
            std::process::Command::new(assert_cmd::cargo::cargo_bin("cargo-perfcheck"))
                .current_dir(&dir)
                .args(["baseline", "import"])
                .arg(file)
                .arg("--store")
                .arg(&store)
                .output()
                .unwrap()
        };
        let (ra, rb) = std::thread::scope(|s| {
            let ha = s.spawn(|| spawn(&a));
            let hb = s.spawn(|| spawn(&b));
            (ha.join().unwrap(), hb.join().unwrap())
        });
        assert!(
            ra.status.success(),
            "{}",
            String::from_utf8_lossy(&ra.stderr)
        );
        assert!(
            rb.status.success(),
            "{}",
            String::from_utf8_lossy(&rb.stderr)
        );
        let list = p.list(&["--store", store.to_str().unwrap()]);
        assert!(list.contains("run-a") && list.contains("run-b"), "{list}");
    }
}

#[test]
fn corrupt_or_foreign_store_files_are_refused_without_change() {
    let p = Project::new();
    let junk = p.path().join("junk.sqlite");
    std::fs::write(&junk, "this is not a database at all, but a text file\n").unwrap();
    p.cmd()
        .args(["baseline", "list", "--store"])
        .arg(&junk)
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("junk.sqlite")
                .and(predicate::str::contains("not a SQLite database")),
        );
    assert_eq!(
        std::fs::read_to_string(&junk).unwrap(),
        "this is not a database at all, but a text file\n"
    );

    let foreign = p.path().join("foreign.sqlite");
    {
        let c = rusqlite::Connection::open(&foreign).unwrap();
        c.execute_batch("CREATE TABLE notes (x TEXT); INSERT INTO notes VALUES ('keep me');")
            .unwrap();
    }
    p.cmd()
        .args(["baseline", "list", "--store"])
        .arg(&foreign)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not made by perfcheck"));
    let c = rusqlite::Connection::open(&foreign).unwrap();
    let kept: String = c
        .query_row("SELECT x FROM notes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(kept, "keep me");

    // A real store whose pages were damaged.
    p.save_run();
    let store = p.store();
    let mut bytes = std::fs::read(&store).unwrap();
    assert!(bytes.len() > 4096);
    for b in bytes.iter_mut().skip(100).take(4000) {
        *b = 0xA5;
    }
    std::fs::write(&store, &bytes).unwrap();
    // WAL contents would mask the damage; a checkpointed store has none after a clean exit.
    let _ = std::fs::remove_file(store.with_extension("sqlite-wal"));
    p.cmd()
        .args(["baseline", "list"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("perfcheck.sqlite"));
}
