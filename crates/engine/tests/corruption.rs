//! Damage at rest: flipped bytes in an event row, a damaged WAL frame, a truncated file.
//! Opening refuses each with `EngineError::Corrupt` (never wrong data), and `recover`
//! rebuilds a store whose counts add up exactly.

use std::path::{Path, PathBuf};

use agent_memory::durability::recover;
use agent_memory::{Engine, EngineConfig, EngineError, NewEvent};

fn config() -> EngineConfig {
    EngineConfig {
        dim: 32,
        checkpoint_ms: 0,
        ..EngineConfig::default()
    }
}

fn event(n: u64) -> NewEvent {
    NewEvent {
        session: 1,
        ts: 1_700_000_000 + n as i64,
        text: format!("topic{} alpha beta gamma marker{n:05}", n % 3),
        tags: vec!["kind:note".into()],
    }
}

fn fill(engine: &Engine, from: u64, to: u64) {
    for n in from..to {
        engine.remember(&event(n)).expect("remember");
    }
}

fn integrity(path: &Path) -> String {
    rusqlite::Connection::open(path)
        .expect("open")
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check")
}

/// Flips `len` bytes at every occurrence of `needle` in the file (a row can also survive in
/// a free page); returns how many there were.
fn flip_at(path: &Path, needle: &[u8], len: usize) -> usize {
    let mut bytes = std::fs::read(path).expect("read the store");
    let hits: Vec<usize> = (0..bytes.len().saturating_sub(needle.len()))
        .filter(|&i| &bytes[i..i + needle.len()] == needle)
        .collect();
    assert!(!hits.is_empty(), "the needle is in the file");
    for &at in &hits {
        for b in &mut bytes[at..at + len] {
            *b ^= 0x5a;
        }
    }
    std::fs::write(path, bytes).expect("write the store");
    hits.len()
}

#[test]
fn a_flipped_event_row_is_refused_then_recovered_from_the_file_and_the_snapshot() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("e.sqlite");
    {
        let engine = Engine::open(&db, config()).expect("open");
        fill(&engine, 0, 60);
        let snap = engine.snapshot().expect("snapshot");
        assert_eq!((snap.events, snap.max_event_id), (60, 60));
        fill(&engine, 60, 100);
        engine.checkpoint().expect("checkpoint");
    }
    // Event 11 (marker00010) was in the snapshot; event 81 (marker00080) was not.
    flip_at(&db, b"marker00010", 4);
    flip_at(&db, b"marker00080", 4);
    match Engine::open(&db, config()) {
        Err(EngineError::Corrupt { path, detail }) => {
            assert_eq!(path, db);
            assert!(
                detail.contains("2 event row(s) fail their checksum"),
                "{detail}"
            );
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let (engine, report) = recover(&db, config()).expect("recover");
    assert_eq!(report.highest_event_id, 100);
    assert_eq!(report.events_damaged, 2);
    assert_eq!(report.events_salvaged, 98);
    assert_eq!(report.events_from_snapshot, 1);
    assert_eq!(report.events_lost, 1);
    assert_eq!(
        report.events_salvaged + report.events_from_snapshot + report.events_lost,
        100
    );
    assert_eq!(engine.event_count().expect("count"), 99);
    assert_eq!(engine.index().len(), 99);
    assert_eq!(
        engine.store().event_text(11).expect("read"),
        Some((event(10).ts, event(10).text))
    );
    assert_eq!(engine.store().event_text(81).expect("read"), None);
    assert!(report.damaged_path.exists(), "the damaged file is kept");
    let hit = engine.recall("marker00010 alpha", 3).expect("recall");
    assert_eq!(hit.ids.first(), Some(&11));
    drop(engine);
    assert_eq!(integrity(&db), "ok");
}

fn copy_crash_image(db: &Path, to: &Path) -> PathBuf {
    let image = to.join("image.sqlite");
    std::fs::copy(db, &image).expect("copy db");
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    let mut wal_to = image.as_os_str().to_owned();
    wal_to.push("-wal");
    std::fs::copy(&wal, &wal_to).expect("copy wal");
    image
}

#[test]
fn a_damaged_wal_frame_is_refused_and_its_later_commits_are_what_sqlite_would_drop() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("e.sqlite");
    let engine = Engine::open(&db, config()).expect("open");
    fill(&engine, 0, 40);
    engine.checkpoint().expect("checkpoint");
    // Un-checkpointed commits, one per remember, then a crash image taken while open.
    fill(&engine, 40, 60);
    let image_dir = tempfile::tempdir().expect("temp dir");
    let image = copy_crash_image(&db, image_dir.path());
    drop(engine);
    let mut wal = image.as_os_str().to_owned();
    wal.push("-wal");
    let wal = PathBuf::from(wal);
    flip_at(&wal, b"marker00050", 4);
    match Engine::open(&image, config()) {
        Err(EngineError::Corrupt { path, detail }) => {
            assert_eq!(path, wal);
            assert!(detail.contains("silently drop"), "{detail}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let (engine, report) = recover(&image, config()).expect("recover");
    // SQLite replays the frames before the damaged one: events 41..=50 survive; the commit
    // holding event 51 and all later ones are gone and invisible to both sources.
    assert_eq!(report.highest_event_id, 50);
    assert_eq!(report.events_salvaged, 50);
    assert_eq!(report.events_lost, 0);
    assert_eq!(engine.event_count().expect("count"), 50);
    drop(engine);
    assert_eq!(integrity(&image), "ok");
}

#[test]
fn a_truncated_store_is_refused_and_recovered_with_its_losses_counted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("e.sqlite");
    {
        let engine = Engine::open(&db, config()).expect("open");
        fill(&engine, 0, 200);
        engine.snapshot().expect("snapshot");
        fill(&engine, 200, 300);
        engine.checkpoint().expect("checkpoint");
    }
    let len = std::fs::metadata(&db).expect("stat").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&db)
        .and_then(|f| f.set_len(len / 2))
        .expect("truncate");
    let err = Engine::open(&db, config()).expect_err("a truncated store is refused");
    assert!(
        matches!(
            err,
            EngineError::Corrupt { .. } | EngineError::NotADatabase { .. }
        ),
        "{err}"
    );
    let (engine, report) = recover(&db, config()).expect("recover");
    assert_eq!(
        report.events_salvaged + report.events_from_snapshot + report.events_lost,
        report.highest_event_id as u64
    );
    assert!(report.highest_event_id >= 200, "{report:?}");
    assert_eq!(
        engine.event_count().expect("count"),
        report.events_salvaged + report.events_from_snapshot
    );
    assert_eq!(
        engine.index().len() as u64,
        engine.event_count().expect("count")
    );
    eprintln!("truncated: {report:?}");
    drop(engine);
    assert_eq!(integrity(&db), "ok");
}

#[test]
fn store_health_reports_counts_and_damage() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("e.sqlite");
    {
        let engine = Engine::open(&db, config()).expect("open");
        fill(&engine, 0, 30);
        engine.snapshot().expect("snapshot");
    }
    let h = agent_memory::store_health::check_store(&db, &config());
    assert!(h.ok, "{:?}", h.problems);
    assert_eq!(
        (h.events, h.facts, h.index_vectors),
        (Some(30), Some(0), Some(30))
    );
    assert_eq!(h.quick_check, "ok");
    assert!(h.snapshot_age_s.is_some());
    flip_at(&db, b"marker00007", 3);
    let h = agent_memory::store_health::check_store(&db, &config());
    assert!(!h.ok);
    assert_eq!(h.rows_failing_checksum, Some(1));
}
