//! `cargo perfcheck health --store-dir`: the real launcher and harness check a real engine
//! store: healthy, then with a damaged row (exit 1, the problem named), and bad input (exit 2).

mod common;

use agent_memory::{Engine, EngineConfig, NewEvent};

fn store(dir: &std::path::Path, events: u64) {
    let e = Engine::open(
        dir.join("engine.sqlite"),
        EngineConfig {
            dim: 32,
            checkpoint_ms: 0,
            ..EngineConfig::default()
        },
    )
    .unwrap();
    for n in 0..events {
        e.remember(&NewEvent {
            session: 1,
            ts: 1_700_000_000 + n as i64,
            text: format!("health marker{n:05} alpha"),
            tags: Vec::new(),
        })
        .unwrap();
    }
    e.checkpoint().unwrap();
}

#[test]
fn a_healthy_store_passes_a_damaged_one_fails_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    store(dir.path(), 40);
    let out = common::perfcheck(dir.path())
        .args(["health", "--store-dir", "."])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("healthy"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.trim_start().starts_with("events") && l.trim_end().ends_with(" 40")),
        "{stdout}"
    );
    let json = common::perfcheck(dir.path())
        .args(["health", "--store-dir", "engine.sqlite", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        (v["ok"].as_bool(), v["events"].as_u64()),
        (Some(true), Some(40))
    );

    // Flip bytes of one row's text in the file: the checksum no longer matches.
    let db = dir.path().join("engine.sqlite");
    let mut bytes = std::fs::read(&db).unwrap();
    // Every copy: the row may also survive in a page SQLite freed.
    let hits: Vec<usize> = (0..bytes.len() - 11)
        .filter(|&i| &bytes[i..i + 11] == b"marker00017")
        .collect();
    assert!(!hits.is_empty(), "the row is in the file");
    for at in hits {
        bytes[at + 6] ^= 0x01;
    }
    std::fs::write(&db, &bytes).unwrap();
    let out = common::perfcheck(dir.path())
        .args(["health", "--store-dir", "."])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("1 event row(s) fail their checksum"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read(&db).unwrap(),
        bytes,
        "the check changed nothing"
    );
}

#[test]
fn a_folder_without_a_store_is_a_usage_error_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::perfcheck(dir.path())
        .args(["health", "--store-dir", "."])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--store-dir") && stderr.contains("engine.sqlite"),
        "{stderr}"
    );
}
