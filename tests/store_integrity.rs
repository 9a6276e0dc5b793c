//! The baseline store's guarantees through the real binary on real SQLite files: no run is
//! ever dropped (concurrent saves, imports of colliding ids), reads never write (read-only
//! mount, no permission, full disk), damage is noticed (checksums, quick_check), a damaged
//! store can be recovered, and a killed import leaves the store as it was.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command as Process, Output, Stdio};

use common::{Project, MINI_REMEMBER};
use predicates::prelude::*;

fn bin() -> PathBuf {
    common::harness_bin()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn sha256_of(path: &Path) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(std::fs::read(path).unwrap()).to_vec()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn eight_processes_saving_fifty_runs_each_store_all_four_hundred() {
    let p = Project::new(MINI_REMEMBER, None);
    let store = p.store();
    let outputs: Vec<Vec<Output>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|w| {
                let store = &store;
                let dir = p.path();
                s.spawn(move || {
                    (0..50)
                        .map(|_| {
                            Process::new(bin())
                                .current_dir(dir)
                                .env_remove("PERFCHECK_STORE")
                                .env_remove("PERFCHECK_SLOW_STAGE")
                                .args(["run", "-p", "mini", "-q", "--save", "--store"])
                                .arg(store)
                                .arg("--reports-dir")
                                .arg(dir.join(format!("reports/w{w}")))
                                .output()
                                .unwrap()
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut printed = std::collections::BTreeSet::new();
    for out in outputs.iter().flatten() {
        let (stdout, stderr) = text(out);
        assert!(out.status.success(), "{stdout}\n{stderr}");
        assert!(stdout.contains("saved as a baseline"), "{stdout}");
        let id = stdout
            .lines()
            .find_map(|l| l.strip_prefix("perfcheck run "))
            .and_then(|l| l.split_whitespace().next())
            .unwrap()
            .to_owned();
        printed.insert(id);
    }
    assert_eq!(printed.len(), 400, "run ids must be unique");
    let stored: std::collections::BTreeSet<String> = p
        .ids(&["--store", store.to_str().unwrap()])
        .into_iter()
        .collect();
    assert_eq!(stored, printed);
}

/// `baseline export -o file` of the project's default store, parsed.
fn export_doc(p: &Project, file: &Path) -> serde_json::Value {
    p.cmd()
        .args(["baseline", "export", "-o"])
        .arg(file)
        .assert()
        .success();
    serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap()
}

/// An export of one run, and the same run with another payload under the same id (what two
/// clones of an older perfcheck saving in the same second produced).
fn colliding_exports(p: &Project) -> (PathBuf, PathBuf, String) {
    let id = p.save();
    let export = p.path().join("one.json");
    let mut doc = export_doc(p, &export);
    doc["runs"][0]["run_id"] = serde_json::json!("20261127-065012-1a2b3c4");
    let legacy = p.path().join("legacy.json");
    std::fs::write(&legacy, doc.to_string()).unwrap();
    doc["runs"][0]["workloads"][0]["ops"] = serde_json::json!(12345);
    let other = p.path().join("other-machine.json");
    std::fs::write(&other, doc.to_string()).unwrap();
    (legacy, other, id)
}

#[test]
fn an_import_keeps_a_different_run_with_a_taken_id_and_recognises_the_same_run() {
    let p = Project::new(MINI_REMEMBER, None);
    let (legacy, other, _) = colliding_exports(&p);
    let store = p.path().join("b.sqlite");
    let store_s = store.to_str().unwrap();
    let import = |file: &Path| {
        p.cmd()
            .args(["baseline", "import", "--store", store_s])
            .arg(file)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone()
    };
    let first = String::from_utf8(import(&legacy)).unwrap();
    assert!(first.contains("imported 1 new runs"), "{first}");
    let second = String::from_utf8(import(&other)).unwrap();
    assert!(
        second.contains("imported 1 new runs")
            && second.contains("stored as 20261127-065012-1a2b3c4-"),
        "{second}"
    );
    // Both again: recognised by content, nothing new.
    for f in [&legacy, &other] {
        let again = String::from_utf8(import(f)).unwrap();
        assert!(
            again.contains("imported 0 new runs") && again.contains("1 already stored"),
            "{again}"
        );
    }
    let ids = p.ids(&["--store", store_s]);
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.iter().all(|i| i.starts_with("20261127-065012-1a2b3c4")));
    // The renamed run keeps its own content.
    let renamed = ids.iter().find(|i| i.len() > 23).unwrap();
    let out = p.path().join("renamed.json");
    p.cmd()
        .args(["baseline", "export", "--store", store_s, "-o"])
        .arg(&out)
        .assert()
        .success();
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let run = doc["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["run_id"] == renamed.as_str())
        .unwrap();
    assert_eq!(run["workloads"][0]["ops"], 12345);
}

#[test]
fn saving_a_different_run_under_a_stored_id_is_an_error_not_a_skip() {
    let p = Project::new(MINI_REMEMBER, None);
    let (legacy, other, _) = colliding_exports(&p);
    let store = p.path().join("c.sqlite");
    p.cmd()
        .args(["baseline", "import", "--store", store.to_str().unwrap()])
        .arg(&legacy)
        .assert()
        .success();
    // `check --run-file F --save` saves F's run as it is: a taken id is refused, exit 2.
    let run_file = p.path().join("other-run.json");
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&other).unwrap()).unwrap();
    std::fs::write(&run_file, doc["runs"][0].to_string()).unwrap();
    p.cmd()
        .args([
            "check",
            "--save",
            "--store",
            store.to_str().unwrap(),
            "--run-file",
        ])
        .arg(&run_file)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "a different run with id 20261127-065012-1a2b3c4 is already stored; nothing was saved",
        ));
    assert_eq!(p.ids(&["--store", store.to_str().unwrap()]).len(), 1);
}

/// A schema-1 store as the first perfcheck wrote it, holding `record`.
fn legacy_store(path: &Path, record: &serde_json::Value) {
    use std::io::Write;
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE runs (id INTEGER PRIMARY KEY, run_id TEXT NOT NULL UNIQUE, commit_sha TEXT,
           branch TEXT, dirty INTEGER NOT NULL, profile TEXT NOT NULL, machine_key TEXT NOT NULL,
           created_at TEXT NOT NULL, record_schema INTEGER NOT NULL, record_gz BLOB NOT NULL);
         CREATE INDEX runs_by_commit ON runs (commit_sha, profile, machine_key);
         PRAGMA user_version = 1;
         PRAGMA application_id = 1346587441;",
    )
    .unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(record.to_string().as_bytes()).unwrap();
    let rec = perfcheck::record::RunRecord::from_value(record.clone(), "test").unwrap();
    let key = perfcheck::baseline::StoredRun::of(&rec).machine_key;
    conn.execute(
        "INSERT INTO runs (run_id, commit_sha, branch, dirty, profile, machine_key, created_at,
           record_schema, record_gz) VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6, 1, ?7)",
        rusqlite::params![
            record["run_id"].as_str().unwrap(),
            record["git"]["commit"].as_str().unwrap(),
            record["git"]["branch"].as_str(),
            record["profile"]["name"].as_str().unwrap(),
            key,
            record["created_at"].as_str().unwrap(),
            gz.finish().unwrap()
        ],
    )
    .unwrap();
}

#[test]
fn a_schema_1_store_is_read_without_migrating_and_migrated_once_by_a_write() {
    let p = Project::new(MINI_REMEMBER, None);
    let export = p.path().join("e.json");
    p.save();
    let doc = export_doc(&p, &export);
    let mut record = doc["runs"][0].clone();
    record["run_id"] = serde_json::json!("20261127-065012-1a2b3c4");
    let store = p.path().join("old.sqlite");
    legacy_store(&store, &record);
    let store_s = store.to_str().unwrap();
    // Reads: answered, and the file is not migrated (not even touched).
    let before = sha256_of(&store);
    let list = p.list(&["--store", store_s]);
    assert!(list.contains("20261127-065012-1a2b3c4"), "{list}");
    assert_eq!(sha256_of(&store), before);
    // The first write migrates and says so, once.
    let out = p
        .cmd()
        .args(["run", "-p", "mini", "-q", "--save", "--store", store_s])
        .assert()
        .success()
        .get_output()
        .clone();
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains("migrated baseline store") && stderr.contains("from schema 1 to 2"),
        "{stderr}"
    );
    let out = p
        .cmd()
        .args(["run", "-p", "mini", "-q", "--save", "--store", store_s])
        .assert()
        .success()
        .get_output()
        .clone();
    assert!(!text(&out).1.contains("migrated"), "{}", text(&out).1);
    let ids = p.ids(&["--store", store_s, "--include-dirty"]);
    assert_eq!(ids.len(), 3, "{ids:?}");
    p.cmd()
        .args(["baseline", "verify", "--store", store_s])
        .assert()
        .success()
        .stdout(predicate::str::contains("3 runs, all intact"));
    // The migrated run is still the same run: importing the original is recognised.
    let legacy_export = p.path().join("legacy.json");
    let doc = serde_json::json!({"schema": 1, "kind": "perfcheck-baselines", "runs": [record]});
    std::fs::write(&legacy_export, doc.to_string()).unwrap();
    p.cmd()
        .args(["baseline", "import", "--store", store_s])
        .arg(&legacy_export)
        .assert()
        .success()
        .stdout(
            predicate::str::contains("imported 0 new runs")
                .and(predicate::str::contains("1 already stored")),
        );
}

/// A project with three saved runs; returns it, the store and `baseline list` of it.
fn stored_project() -> (Project, PathBuf, String) {
    let p = Project::new(MINI_REMEMBER, None);
    for _ in 0..3 {
        p.save();
    }
    let store = p.store();
    let list = p.list(&["--include-dirty"]);
    (p, store, list)
}

/// Runs `args` against the store in `store_dir` under a read-only view made by `how`; returns
/// the output and whether the folder's listing and the store's bytes were the same after the
/// command as before it (checked inside the view, where a full disk's tmpfs exists).
fn under(how: &str, dir: &Path, store_dir: &Path, args: &[&str]) -> (Output, bool) {
    let quoted: Vec<String> = std::iter::once(bin().display().to_string())
        .chain(args.iter().map(|a| a.to_string()))
        .map(|a| format!("'{a}'"))
        .collect();
    let mut cmd = quoted.join(" ");
    let probe = tempfile::tempdir().unwrap();
    let pr = probe.path().display();
    if how == "no permission" {
        // git refuses a repository owned by another user unless told it is safe.
        std::fs::write(probe.path().join(".gitconfig"), "[safe]\n\tdirectory = *\n").unwrap();
        let open = std::os::unix::fs::PermissionsExt::from_mode(0o777);
        std::fs::set_permissions(probe.path(), open).unwrap();
        cmd = format!("HOME='{pr}' setpriv --reuid=65534 --regid=65534 --clear-groups {cmd}");
    }
    let d = store_dir.display();
    let setup = match how {
        "read-only mount" => format!("mount --bind '{d}' '{d}' && mount -o remount,bind,ro '{d}'"),
        "full disk" => format!(
            "cp -a '{d}' '{pr}/copy' && mount -t tmpfs -o size=256k tmpfs '{d}' && cp '{pr}/copy'/* '{d}'/ \
             && (dd if=/dev/zero of='{d}/fill' bs=4k 2>/dev/null; true)"
        ),
        "no permission" => "true".to_owned(),
        other => panic!("{other}"),
    };
    let snapshot =
        |name: &str| format!("(ls -A '{d}'; cat '{d}'/*.sqlite | sha256sum) > '{pr}/{name}'");
    let script = format!(
        "{setup} && {} && {{ {cmd}; rc=$?; {}; exit $rc; }}",
        snapshot("before"),
        snapshot("after")
    );
    let out = Process::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .current_dir(dir)
        .env_remove("PERFCHECK_STORE")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let read = |n: &str| std::fs::read(probe.path().join(n)).unwrap_or_default();
    let same = !read("before").is_empty() && read("before") == read("after");
    (out, same)
}

#[test]
fn reads_work_on_a_read_only_mount_without_permission_and_on_a_full_disk() {
    if !is_root() {
        // Without root there is no mount namespace; a read-only file still must be readable.
        let (p, store, list) = stored_project();
        let dir = store.parent().unwrap();
        std::fs::set_permissions(&store, std::os::unix::fs::PermissionsExt::from_mode(0o444))
            .unwrap();
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o555)).unwrap();
        assert_eq!(p.list(&["--include-dirty"]), list);
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        return;
    }
    for how in ["read-only mount", "no permission", "full disk"] {
        let (p, store, list) = stored_project();
        let dir = store.parent().unwrap().to_path_buf();
        // Readable by anyone (tempdirs are private by default), writable only by root.
        let mode = |m| std::os::unix::fs::PermissionsExt::from_mode(m);
        std::fs::set_permissions(p.path(), mode(0o755)).unwrap();
        let s = store.to_str().unwrap();
        let (out, same) = under(
            how,
            p.path(),
            &dir,
            &["baseline", "list", "--include-dirty", "--store", s],
        );
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{how}: {stderr}");
        assert_eq!(stdout, list, "{how}");
        assert!(same, "{how}: list changed the store's folder");
        let export =
            std::env::temp_dir().join(format!("perfcheck-export-{}.json", std::process::id()));
        let _ = std::fs::remove_file(&export);
        let (out, same) = under(
            how,
            p.path(),
            &dir,
            &[
                "baseline",
                "export",
                "--store",
                s,
                "-o",
                export.to_str().unwrap(),
            ],
        );
        assert!(out.status.success(), "{how}: {}", text(&out).1);
        assert!(text(&out).0.contains("exported 3 runs"), "{how}");
        assert!(same, "{how}: export changed the store's folder");
        let _ = std::fs::remove_file(&export);
        // trend reads the store too (its charts go outside the store's folder).
        let reports = std::env::temp_dir().join(format!(
            "perfcheck-reports-{}-{}",
            std::process::id(),
            how.len()
        ));
        let r = reports.to_str().unwrap();
        let (out, same) = under(
            how,
            p.path(),
            &dir,
            &[
                "trend",
                "-p",
                "mini",
                "--metric",
                "remember/total/wall_ns",
                "--store",
                s,
                "--reports-dir",
                r,
            ],
        );
        assert!(out.status.success(), "{how}: {}", text(&out).1);
        assert!(text(&out).0.contains("3 run(s)"), "{how}: {}", text(&out).0);
        assert!(same, "{how}: trend changed the store's folder");
        let _ = std::fs::remove_dir_all(&reports);
    }
}

#[test]
fn a_failed_command_leaves_no_new_store_file() {
    let p = Project::new(MINI_REMEMBER, None);
    let store = p.path().join("never.sqlite");
    let s = store.to_str().unwrap();
    let bad = p.path().join("bad.json");
    std::fs::write(&bad, "{\"schema\": \"1\"}").unwrap();
    p.cmd()
        .args(["baseline", "import", "--store", s])
        .arg(&bad)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "`schema` must be a number (expected 1), found the string \"1\"",
        ));
    p.cmd()
        .args([
            "check",
            "--save",
            "--store",
            s,
            "--run-file",
            "missing/run.json",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "cannot read run record missing/run.json",
        ));
    p.cmd()
        .args(["run", "--save", "--store", s, "-p", "nope"])
        .assert()
        .code(2);
    p.cmd()
        .args(["baseline", "list", "--store", s])
        .assert()
        .code(2);
    assert!(!store.exists());
    assert_eq!(
        std::fs::read_dir(p.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("never")
            })
            .count(),
        0
    );
}

#[test]
fn error_messages_say_their_cause_once() {
    let p = Project::new(MINI_REMEMBER, None);
    let out = p
        .cmd()
        .args(["check", "--run-file", "missing.json"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let stderr = text(&out).1;
    assert_eq!(
        stderr.trim_end(),
        "error: cannot read run record missing.json: No such file or directory (os error 2)"
    );
    let out = p
        .cmd()
        .args(["baseline", "list", "--store", "nowhere.sqlite"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert_eq!(
        text(&out).1.trim_end(),
        "error: baseline store nowhere.sqlite: no such store yet (`cargo perfcheck run --save` \
         creates it; check --store, PERFCHECK_STORE and perfcheck.toml)"
    );
    let bad = p.path().join("bad.json");
    std::fs::write(&bad, "{\"schema\": 1,").unwrap();
    let out = p
        .cmd()
        .args(["baseline", "import"])
        .arg(&bad)
        .assert()
        .code(2)
        .get_output()
        .clone();
    let stderr = text(&out).1;
    assert!(
        stderr.starts_with(&format!("error: {} is not JSON: ", bad.display())),
        "{stderr}"
    );
    assert_eq!(stderr.matches("EOF while parsing").count(), 1, "{stderr}");
}

/// Flips one byte of `path` at `offset` (xor with `mask`).
fn flip(path: &Path, offset: usize, mask: u8) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset] ^= mask;
    std::fs::write(path, bytes).unwrap();
}

/// The byte offsets where `needle` occurs in `path`.
fn find_all(path: &Path, needle: &[u8]) -> Vec<usize> {
    let bytes = std::fs::read(path).unwrap();
    bytes
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn a_damaged_run_is_named_refused_for_writes_and_recovered_by_export_and_import() {
    let (p, store, _) = stored_project();
    let ids = p.ids(&[]);
    // Damage the second run's commit column as a flipped bit would: the value changes, its
    // checksum does not.
    {
        let conn = rusqlite::Connection::open(&store).unwrap();
        let n = conn
            .execute(
                "UPDATE runs SET commit_sha = substr(commit_sha, 1, 5) || 'x' || \
                 substr(commit_sha, 7) WHERE run_id = ?1",
                [&ids[1]],
            )
            .unwrap();
        assert_eq!(n, 1);
    }
    let before = sha256_of(&store);
    let out = p
        .cmd()
        .args(["baseline", "list"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let stderr = text(&out).1;
    assert!(
        stderr.contains("is damaged") && stderr.contains("do not match their checksum"),
        "{stderr}"
    );
    let damaged: Vec<&String> = ids
        .iter()
        .filter(|id| stderr.contains(id.as_str()))
        .collect();
    assert_eq!(damaged.len(), 1, "{stderr}");
    // check refuses rather than use 2 of 3 baseline runs.
    p.cmd()
        .args(["check", "-p", "mini", "-q"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(damaged[0].as_str()));
    // A save refuses to write into it, and says how to recover.
    p.cmd()
        .args(["run", "-p", "mini", "-q", "--save"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("baseline export --skip-damaged")
                .and(predicate::str::contains("Nothing was written")),
        );
    assert_eq!(
        sha256_of(&store),
        before,
        "the damaged file is never rewritten"
    );
    // Recovery: export what is intact, import into a new store.
    let intact = p.path().join("intact.json");
    p.cmd()
        .args(["baseline", "export", "--skip-damaged", "-o"])
        .arg(&intact)
        .assert()
        .success()
        .stdout(
            predicate::str::contains("exported 2 intact runs")
                .and(predicate::str::contains("1 damaged")),
        );
    let fresh = p.path().join("fresh.sqlite");
    let f = fresh.to_str().unwrap();
    p.cmd()
        .args(["baseline", "import", "--store", f])
        .arg(&intact)
        .assert()
        .success()
        .stdout(predicate::str::contains("imported 2 new runs"));
    let kept = p.ids(&["--store", f]);
    assert_eq!(kept.len(), 2);
    assert!(!kept.contains(damaged[0]));
    p.cmd()
        .args(["baseline", "verify", "--store", f])
        .assert()
        .success();
    p.cmd()
        .args(["run", "-p", "mini", "-q", "--save", "--store", f])
        .assert()
        .success();
    assert_eq!(sha256_of(&store), before);
}

/// What the trials compare against: `list` and `export` of the undamaged store.
struct Reference {
    list: String,
    export: Vec<u8>,
}

/// One trial's outcome.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Every command answered exactly as on the undamaged store.
    Correct,
    /// At least one command refused with a clear store error (exit 2).
    Detected,
}

/// Runs the read commands and an import against a damaged copy; panics on a wrong answer.
fn trial(p: &Project, store: &Path, reference: &Reference, extra: &Path, label: &str) -> Outcome {
    let s = store.to_str().unwrap();
    let damaged_bytes = sha256_of(store);
    let clear = |out: &Output, what: &str| -> bool {
        let (stdout, stderr) = text(out);
        assert!(
            !stderr.contains("panicked"),
            "{label} {what}: panic\n{stderr}"
        );
        match out.status.code() {
            Some(0) => false,
            Some(2) => {
                assert!(
                    stderr.contains(&format!("baseline store {s}")),
                    "{label} {what}: unclear error\n{stderr}"
                );
                true
            }
            other => panic!("{label} {what}: exit {other:?}\n{stdout}\n{stderr}"),
        }
    };
    let mut detected = false;
    let out = Process::new(bin())
        .current_dir(p.path())
        .args(["baseline", "list", "--include-dirty", "--store", s])
        .output()
        .unwrap();
    if clear(&out, "list") {
        detected = true;
    } else {
        assert_eq!(
            text(&out).0,
            reference.list,
            "{label}: list answered wrongly"
        );
    }
    let export = store.with_extension("export.json");
    let out = Process::new(bin())
        .current_dir(p.path())
        .args(["baseline", "export", "--include-dirty", "--store", s, "-o"])
        .arg(&export)
        .output()
        .unwrap();
    if clear(&out, "export") {
        detected = true;
    } else {
        assert!(
            std::fs::read(&export).unwrap() == reference.export,
            "{label}: export differs"
        );
    }
    assert_eq!(
        sha256_of(store),
        damaged_bytes,
        "{label}: a read changed the file"
    );
    let out = Process::new(bin())
        .current_dir(p.path())
        .args(["baseline", "import", "--store", s])
        .arg(extra)
        .output()
        .unwrap();
    if clear(&out, "import") {
        detected = true;
        assert_eq!(
            sha256_of(store),
            damaged_bytes,
            "{label}: a refused write changed the file"
        );
    } else {
        // Accepted: the store must now hold the old runs plus the new one, all intact.
        let out = Process::new(bin())
            .current_dir(p.path())
            .args(["baseline", "verify", "--store", s])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{label}: accepted a write, then damaged: {}",
            text(&out).0
        );
    }
    if detected {
        Outcome::Detected
    } else {
        Outcome::Correct
    }
}

#[test]
fn corruption_anywhere_in_a_real_store_is_detected_or_harmless_never_a_wrong_answer() {
    use rand::{Rng, SeedableRng};
    // Larger runs than the other tests so that records spill into overflow pages.
    let profile = MINI_REMEMBER.replace("ops = 20", "ops = 400");
    let p = Project::new(&profile, None);
    for _ in 0..5 {
        p.save();
    }
    let pristine = p.store();
    let extra_dir = tempfile::tempdir().unwrap();
    let extra = extra_dir.path().join("extra.json");
    {
        // One more run to import in each trial, under a fresh id.
        let mut doc = export_doc(&p, &extra);
        let runs = doc["runs"].as_array_mut().unwrap();
        runs.truncate(1);
        runs[0]["run_id"] = serde_json::json!("imported-in-trial");
        std::fs::write(&extra, doc.to_string()).unwrap();
    }
    let ref_export = p.path().join("ref.json");
    p.cmd()
        .args(["baseline", "export", "--include-dirty", "-o"])
        .arg(&ref_export)
        .assert()
        .success();
    let reference = Reference {
        list: p.list(&["--include-dirty"]),
        export: std::fs::read(&ref_export).unwrap(),
    };
    let bytes = std::fs::read(&pristine).unwrap();
    let page = u16::from_be_bytes([bytes[16], bytes[17]]) as usize;
    let page = if page == 1 { 65536 } else { page };
    assert_eq!(bytes.len() % page, 0);
    // Classify the pages by their b-tree type byte (page 1's header follows the 100-byte
    // file header); anything else is an overflow or free page.
    let mut classes: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
    for n in 0..bytes.len() / page {
        let start = n * page;
        let head = if n == 0 { start + 100 } else { start };
        let class = match bytes[head] {
            0x0d if n == 0 => "schema page",
            0x0d => "table leaf",
            0x05 => "table interior",
            0x0a => "index leaf",
            0x02 => "index interior",
            _ => "overflow or free",
        };
        classes.entry(class).or_default().push(start);
    }
    assert!(classes.contains_key("table leaf"), "{:?}", classes.keys());
    assert!(classes.contains_key("index leaf"), "{:?}", classes.keys());
    assert!(
        classes.contains_key("overflow or free"),
        "{:?}",
        classes.keys()
    );
    // Byte positions of key-column values (live cells, and stale copies in free space).
    let key_columns: Vec<usize> = find_all(&pristine, p.head().as_bytes())
        .into_iter()
        .chain(find_all(&pristine, b"mini"))
        .collect();
    assert!(key_columns.len() >= 10, "{key_columns:?}");

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x5eed);
    let mut targets: Vec<(String, usize)> = Vec::new();
    for (class, pages) in &classes {
        for _ in 0..16 {
            let start = pages[rng.random_range(0..pages.len())];
            targets.push((class.to_string(), start + rng.random_range(0..page)));
        }
    }
    for _ in 0..16 {
        let at = key_columns[rng.random_range(0..key_columns.len())] + rng.random_range(0..4);
        targets.push(("key-column bytes".into(), at));
    }
    for _ in 0..10 {
        targets.push(("file header".into(), rng.random_range(0..100)));
    }
    let work = tempfile::tempdir().unwrap();
    let mut tally: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    for (i, (class, offset)) in targets.iter().enumerate() {
        let copy = work.path().join(format!("t{i}.sqlite"));
        std::fs::copy(&pristine, &copy).unwrap();
        // Alternate single bit flips and 8 garbage bytes.
        if i % 2 == 0 {
            flip(&copy, *offset, 1 << rng.random_range(0..8));
        } else {
            let mut b = std::fs::read(&copy).unwrap();
            for k in 0..8 {
                if offset + k < b.len() {
                    b[offset + k] = rng.random();
                }
            }
            std::fs::write(&copy, b).unwrap();
        }
        let label = format!("trial {i} ({class} at byte {offset})");
        let outcome = trial(&p, &copy, &reference, &extra, &label);
        let e = tally.entry(class.clone()).or_default();
        e.0 += usize::from(outcome == Outcome::Detected);
        e.1 += 1;
        let _ = std::fs::remove_file(&copy);
    }
    let detected: usize = tally.values().map(|t| t.0).sum();
    println!(
        "corruption trials: {detected} detected of {} (the rest answered correctly)",
        targets.len()
    );
    for (class, (d, n)) in &tally {
        println!("  {class}: {d} detected / {n}");
    }
    assert!(targets.len() >= 100);

    // Damage to a live value of any column of any run, as a flipped bit would leave it (the
    // value changes, the checksums do not), must always be noticed.
    let ids: Vec<String> = reference
        .list
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    let columns = [
        "run_id",
        "commit_sha",
        "branch",
        "dirty",
        "profile",
        "machine_key",
        "created_at",
        "record_schema",
        "record_gz",
    ];
    let mut column_trials = 0;
    for (i, id) in ids.iter().enumerate() {
        for column in columns {
            let copy = work.path().join(format!("c{i}-{column}.sqlite"));
            std::fs::copy(&pristine, &copy).unwrap();
            {
                let conn = rusqlite::Connection::open(&copy).unwrap();
                let n = if column == "record_gz" {
                    let mut gz: Vec<u8> = conn
                        .query_row("SELECT record_gz FROM runs WHERE run_id = ?1", [id], |r| {
                            r.get(0)
                        })
                        .unwrap();
                    let at = rng.random_range(0..gz.len());
                    gz[at] ^= 1 << rng.random_range(0..8);
                    conn.execute(
                        "UPDATE runs SET record_gz = ?1 WHERE run_id = ?2",
                        rusqlite::params![gz, id],
                    )
                    .unwrap()
                } else if column == "dirty" || column == "record_schema" {
                    conn.execute(
                        &format!("UPDATE runs SET {column} = {column} + 1 WHERE run_id = ?1"),
                        [id],
                    )
                    .unwrap()
                } else {
                    conn.execute(
                        &format!("UPDATE runs SET {column} = {column} || 'x' WHERE run_id = ?1"),
                        [id],
                    )
                    .unwrap()
                };
                assert_eq!(n, 1);
            }
            let label = format!("column trial ({column} of {id})");
            assert_eq!(
                trial(&p, &copy, &reference, &extra, &label),
                Outcome::Detected,
                "{label}"
            );
            column_trials += 1;
            let _ = std::fs::remove_file(&copy);
        }
    }
    println!("column damage: {column_trials} detected / {column_trials}");
}

#[test]
fn imports_killed_at_random_points_leave_the_store_whole_and_usable() {
    use rand::{Rng, SeedableRng};
    let (p, store, _) = stored_project();
    // An import of 30 runs: one transaction that takes a while.
    let export = p.path().join("many.json");
    let mut doc = export_doc(&p, &export);
    let one = doc["runs"][0].clone();
    let runs: Vec<serde_json::Value> = (0..30)
        .map(|i| {
            let mut r = one.clone();
            r["run_id"] = serde_json::json!(format!("bulk-{i:02}"));
            r
        })
        .collect();
    doc["runs"] = serde_json::Value::Array(runs);
    std::fs::write(&export, doc.to_string()).unwrap();
    let before = p.ids(&[]);
    // How long a whole import takes (on a copy), so kills land across all of it.
    let probe = p.path().join("probe.sqlite");
    std::fs::copy(&store, &probe).unwrap();
    let t0 = std::time::Instant::now();
    Process::new(bin())
        .current_dir(p.path())
        .args(["baseline", "import", "--store", probe.to_str().unwrap()])
        .arg(&export)
        .output()
        .unwrap();
    let span = t0.elapsed().as_micros() as u64;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let (mut killed, mut completed) = (0, 0);
    let trial = p.path().join("trial.sqlite");
    let t = trial.to_str().unwrap();
    for _ in 0..40 {
        std::fs::copy(&store, &trial).unwrap();
        let mut child = Process::new(bin())
            .current_dir(p.path())
            .args(["baseline", "import", "--store", t])
            .arg(&export)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // A kill at a random point of the import's life (a crash, not a synchronisation).
        std::thread::sleep(std::time::Duration::from_micros(rng.random_range(0..span)));
        if child.try_wait().unwrap().is_none() {
            killed += 1;
        }
        let _ = child.kill();
        let _ = child.wait().unwrap();
        // All or nothing, and the store passes its checks after every crash.
        let ids = p.ids(&["--store", t]);
        assert!(ids == before || ids.len() == before.len() + 30, "{ids:?}");
        completed += usize::from(ids.len() > before.len());
        p.cmd()
            .args(["baseline", "verify", "--store", t])
            .assert()
            .success();
        p.cmd()
            .args(["baseline", "import", "--store", t])
            .arg(&export)
            .assert()
            .success();
        assert_eq!(p.ids(&["--store", t]).len(), before.len() + 30);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{t}{suffix}"));
        }
    }
    println!("imports killed mid-way: {killed} of 40 (completed before the kill: {completed})");
    assert!(killed >= 10, "{killed}");
}
