//! `calibrate` through the real binary on a real git repository. The builds are skipped with
//! `--base-bin` and `--variant-bin` (the test binary on both sides), so a whole calibration of
//! one check takes seconds; the shipped patches are checked against this tree in the library.

mod common;

use std::path::PathBuf;

use common::{Project, MINI_GATE};
use predicates::prelude::*;
use serde_json::Value;

fn bin() -> PathBuf {
    common::harness_bin()
}

/// A patch against the test project: one line of version.txt (`init`) changes.
const VERSION_PATCH: &str = "# Changes version.txt only.\n\ndiff --git a/version.txt b/version.txt\n--- a/version.txt\n+++ b/version.txt\n@@ -1 +1 @@\n-init\n\\ No newline at end of file\n+changed\n\\ No newline at end of file\n";

/// Runs `calibrate -p mini -q` with `patch` (a file in the project) and the test binary on
/// both sides; returns stdout after checking it succeeded.
fn calibrate(p: &Project, patch: &str, args: &[&str]) -> String {
    let name = patch.trim_end_matches(".patch");
    let out = p
        .cmd()
        .args(["calibrate", "-p", "mini", "-q", "--patch", patch])
        .args(args)
        .arg("--base-bin")
        .arg(bin())
        .arg("--variant-bin")
        .arg(format!("{name}={}", bin().display()))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn valgrind() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("valgrind").is_file()))
}

#[test]
fn one_check_of_identical_binaries_flags_no_instructions() {
    let p = Project::new(MINI_GATE, None);
    std::fs::write(p.path().join("same.patch"), VERSION_PATCH).unwrap();
    let counting = if valgrind() {
        "--instructions"
    } else {
        "--no-instructions"
    };
    let stdout = calibrate(
        &p,
        "same.patch",
        &["--checks", "1", "--rounds", "2", counting],
    );
    assert!(stdout.contains("perfcheck calibrate"), "{stdout}");
    let reports: Vec<PathBuf> = std::fs::read_dir(p.path().join("reports"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(reports.len(), 1, "{reports:?}");
    let dir = &reports[0];
    assert!(dir
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("calibrate-"));
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("calibration.json")).unwrap())
            .unwrap();
    assert_eq!(json["complete"], true, "{json}");
    assert_eq!(json["rounds"], 2);
    let v = &json["variants"][0];
    assert_eq!(v["name"], "same");
    assert_eq!(v["description"], "Changes version.txt only.");
    assert_eq!(v["checks"], 1, "{v}");
    assert_eq!(v["flagged_instructions"], 0, "{v}");
    assert!(v["flagged"].as_u64().unwrap() <= 1);
    assert!(std::fs::read_to_string(dir.join("calibration.md"))
        .unwrap()
        .contains("| same | 1 |"));
    // The session's comparison sits beside its runs. Identical binaries count almost exactly
    // alike: two passes of one binary were seen to differ by 0.016% on recall/total (hash
    // tables seeded per process probe differently), far below the 0.5% warn threshold.
    let md = std::fs::read_to_string(dir.join("check-001/same/check.md")).unwrap();
    assert!(
        md.contains("paired A/B") || md.contains("Paired A/B"),
        "{md}"
    );
    let check: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("check-001/same/check.json")).unwrap(),
    )
    .unwrap();
    let ir: Vec<&Value> = check["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["metric"].as_str().unwrap().ends_with("/instructions"))
        .collect();
    assert_eq!(ir.is_empty(), !valgrind(), "{check}");
    for v in ir {
        assert_eq!(v["status"], "unchanged", "{v}");
        assert!(v["change"].as_f64().unwrap().abs() < 0.001, "{v}");
    }
    // Nothing was saved as a baseline.
    assert!(!p.store().exists());
}

#[test]
fn a_control_calibration_writes_noise_floors_beside_the_store() {
    let p = Project::new(MINI_GATE, None);
    // Named like the shipped A/A control, so its rounds count as pairs.
    std::fs::write(p.path().join("comment-only.patch"), VERSION_PATCH).unwrap();
    let stdout = calibrate(
        &p,
        "comment-only.patch",
        &["--checks", "2", "--rounds", "3", "--no-instructions"],
    );
    assert!(stdout.contains("noise floors:"), "{stdout}");
    let noise_file = p.store().with_file_name("noise.json");
    let noise: Value =
        serde_json::from_str(&std::fs::read_to_string(&noise_file).unwrap()).unwrap();
    let cal_dir = std::fs::read_dir(p.path().join("reports"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .next()
        .unwrap();
    let cal: Value =
        serde_json::from_str(&std::fs::read_to_string(cal_dir.join("calibration.json")).unwrap())
            .unwrap();
    let entries = noise["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{noise}");
    let e = &entries[0];
    assert_eq!(e["machine"], cal["machine"]);
    assert_eq!(e["profile"], "mini");
    assert_eq!(e["commit"], cal["head"]);
    let total = &e["metrics"]["recall/total/wall_ns"];
    // 2 checks x 3 rounds: six base runs, six control pairs.
    assert_eq!(
        (total["runs"].as_u64(), total["pairs"].as_u64()),
        (Some(6), Some(6))
    );
    for floor in ["drift", "paired"] {
        let v = total[floor].as_f64().unwrap();
        assert!(v.is_finite() && v >= 0.0, "{floor} {v}");
    }
    // Exact counts have no floor to measure.
    assert!(e["metrics"].get("recall/total/allocs").is_none(), "{e}");
    // A floor file is not a baseline.
    assert!(!p.store().exists());
}

#[test]
fn calibrate_usage_errors_name_the_flag_or_file() {
    let p = Project::new(MINI_GATE, None);
    std::fs::write(p.path().join("same.patch"), VERSION_PATCH).unwrap();
    std::fs::write(
        p.path().join("stale.patch"),
        VERSION_PATCH.replace("-init", "-something else"),
    )
    .unwrap();
    let base_bin = bin().display().to_string();
    let cases: [(&[&str], &str); 5] = [
        (&["--checks", "0"], "--checks"),
        (&["--patch", "no-such-patch"], "--patch no-such-patch"),
        (
            &["--patch", "stale.patch", "--base-bin", &base_bin],
            "stale.patch",
        ),
        (
            &["--patch", "same.patch", "--variant-bin", "other=x"],
            "--variant-bin other=x",
        ),
        (
            &["--patch", "same.patch", "--base-bin", "no/such/bin"],
            "--base-bin no/such/bin",
        ),
    ];
    for (args, expect) in cases {
        p.cmd()
            .args(["calibrate", "-p", "mini", "--no-instructions"])
            .args(args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(expect));
    }
    // Without --patch and without shipped patches there is nothing to calibrate.
    p.cmd()
        .args(["calibrate", "-p", "mini"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("calibration/patches"));
}
