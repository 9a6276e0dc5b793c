//! The baseline store through the real binary: save, list, export/import, delete, and
//! durability (a killed save, concurrent saves, corrupt and foreign files).

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Project, MINI_REMEMBER};
use predicates::prelude::*;

fn project() -> Project {
    Project::new(MINI_REMEMBER, None)
}

#[test]
fn saved_runs_are_listed_shown_exported_imported_and_deleted() {
    let p = project();
    let sha = p.head();
    let first = p.save();
    let second = p.save();
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
    let p = project();
    std::fs::write(p.path().join("untracked.txt"), "change").unwrap();
    let id = p.save();
    assert!(!p.list(&[]).contains(&id));
    let all = p.list(&["--include-dirty"]);
    assert!(all.contains(&id) && all.contains("dirty"), "{all}");
}

#[test]
fn outside_a_repository_the_run_reports_but_is_not_saved() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("profiles")).unwrap();
    std::fs::write(dir.path().join("profiles/mini.toml"), MINI_REMEMBER).unwrap();
    common::launcher()
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
    let p = project();
    let kept = p.save();
    // Outside the work tree, or the next run would be dirty.
    let marker_dir = tempfile::tempdir().unwrap();
    let marker = marker_dir.path().join("holding");
    let mut child = std::process::Command::new(common::harness_bin())
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
    let after = p.save();
    assert_eq!(p.ids(&[]), vec![kept, after]);
}

#[test]
fn concurrent_saves_into_a_new_store_both_succeed() {
    let p = project();
    let id = p.save();
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
            std::process::Command::new(common::harness_bin())
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
    let p = project();
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
    p.save();
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

#[test]
fn a_run_slowed_on_purpose_never_reaches_the_store() {
    let p = project();
    let first = p.save();
    // `run --save` with the calibration knob is refused before anything runs.
    p.cmd()
        .env("PERFCHECK_SLOW_STAGE", "persist:50")
        .args(["run", "-p", "mini", "-q", "--save"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("PERFCHECK_SLOW_STAGE=persist:50")
                .and(predicate::str::contains("cannot be stored as a baseline")),
        );
    assert_eq!(p.ids(&[]), vec![first.clone()]);

    // A slowed run's record, made without --save, cannot be imported either: the export of
    // the store plus that record is refused whole, and the store keeps what it had.
    let reports = p.path().join("slowed");
    p.cmd()
        .env("PERFCHECK_SLOW_STAGE", "persist:50")
        .args(["run", "-p", "mini", "-q", "--reports-dir"])
        .arg(&reports)
        .assert()
        .success();
    let run = common::only_run(&reports);
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap();
    assert_eq!(record["slowdown"], "persist:50");
    let export = p.path().join("export.json");
    p.cmd()
        .args(["baseline", "export", "-o"])
        .arg(&export)
        .assert()
        .success();
    let mut runs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&export).unwrap()).unwrap();
    let list = runs
        .get_mut("runs")
        .and_then(|r| r.as_array_mut())
        .expect("export holds a `runs` array");
    list.push(record);
    std::fs::write(&export, serde_json::to_vec(&runs).unwrap()).unwrap();
    let other = p.path().join("other.sqlite");
    p.cmd()
        .args(["baseline", "import"])
        .arg(&export)
        .arg("--store")
        .arg(&other)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("slowed on purpose"));
    p.cmd()
        .args(["baseline", "import"])
        .arg(&export)
        .assert()
        .code(2);
    assert_eq!(p.ids(&[]), vec![first]);
}
