//! What the integrity checks cost on a real store, to decide which of them every open can
//! afford: `PRAGMA quick_check`, `PRAGMA integrity_check` and the whole `Engine::open` (which
//! already reads every event row to rebuild the vector index and verifies row checksums).
//!
//! `cargo run --release -p agent-memory --example open_check_cost [EVENTS...]`
//! (default: 20000 100000). Prints one line per size; the OS page cache is warm (the store
//! was just written), which is the usual case for a restart.

use std::time::Instant;

use agent_memory::{Corpus, CorpusConfig, Engine, EngineConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sizes: Vec<usize> = match std::env::args().skip(1).map(|a| a.parse()).collect() {
        Ok(v) if !Vec::is_empty(&v) => v,
        Ok(_) => vec![20_000, 100_000],
        Err(e) => return Err(format!("arguments must be event counts: {e}").into()),
    };
    for events in sizes {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("engine.sqlite");
        let corpus = Corpus::generate(&CorpusConfig {
            events,
            queries: 0,
            ..CorpusConfig::default()
        })?;
        let config = EngineConfig {
            checkpoint_ms: 0,
            ..EngineConfig::default()
        };
        {
            let mut engine = Engine::open(&path, config.clone())?;
            engine.load_corpus(&corpus)?;
            engine.checkpoint()?;
        }
        let bytes = std::fs::metadata(&path)?.len();
        let conn = rusqlite::Connection::open(&path)?;
        let best_of = |sql: &str| -> Result<f64, rusqlite::Error> {
            let mut best = f64::INFINITY;
            for _ in 0..3 {
                let t = Instant::now();
                let out: String = conn.query_row(sql, [], |r| r.get(0))?;
                best = best.min(t.elapsed().as_secs_f64() * 1e3);
                assert_eq!(out, "ok", "{sql} on a fresh store");
            }
            Ok(best)
        };
        let quick = best_of("PRAGMA quick_check")?;
        let full = best_of("PRAGMA integrity_check")?;
        drop(conn);
        let mut open = f64::INFINITY;
        for _ in 0..3 {
            let t = Instant::now();
            let engine = Engine::open(&path, config.clone())?;
            open = open.min(t.elapsed().as_secs_f64() * 1e3);
            drop(engine);
        }
        println!(
            "events={events} file_mib={:.1} quick_check_ms={quick:.1} integrity_check_ms={full:.1} engine_open_ms={open:.1} (best of 3)",
            bytes as f64 / (1024.0 * 1024.0)
        );
    }
    Ok(())
}
