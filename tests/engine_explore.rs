// Temporary exploration harness (will be deleted).
use perfcheck::engine::quality::*;
use perfcheck::engine::*;
use std::time::Instant;

fn env(name: &str, d: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(d)
}
fn envf(name: &str, d: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(d)
}

#[test]
#[ignore]
fn explore() {
    let d = CorpusConfig::default();
    let cc = CorpusConfig {
        events: env("EV", 20_000),
        topics: env("TOP", 40),
        sessions: env("SES", 400),
        queries: env("Q", 1000),
        topic_share: envf("TS", d.topic_share),
        ..d
    };
    let corpus = Corpus::generate(&cc).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let de = EngineConfig::default();
    let cfg = EngineConfig {
        cache_capacity: 0,
        nlist: env("NLIST", de.nlist),
        nprobe: env("NPROBE", de.nprobe),
        candidates: env("CAND", de.candidates),
        ..de
    };
    let mut eng = Engine::open(dir.path().join("e.db"), cfg.clone()).unwrap();
    let t = Instant::now();
    eng.load_corpus(&corpus).unwrap();
    eprintln!(
        "load {:?} nlist {} nprobe {}",
        t.elapsed(),
        eng.index().nlist(),
        eng.nprobe()
    );
    if std::env::var("GRID").is_ok() {
        for np in [8, 12, 16, 20, 24, 32, 40, 48] {
            let r = ivf_recall(eng.index(), eng.embedder(), &corpus.queries, 10, np);
            eprint!("np{np}: {r:.3}  ");
        }
        eprintln!();
    }
    let t = Instant::now();
    let r = engine_ivf_recall(&eng, &corpus.queries, 10);
    eprintln!("default ivf recall@10 {r:.4} ({:?})", t.elapsed());
    let t = Instant::now();
    let gt = ground_truth_recall(&mut eng, &corpus.queries, 10).unwrap();
    eprintln!(
        "engine gt recall@10 {gt:.4}  per-recall {:?}",
        t.elapsed() / corpus.queries.len() as u32
    );
    if std::env::var("SKIPC").is_ok() {
        return;
    }
    let opts = ConsolidateOptions {
        min_cohesion: envf("COH", 0.45) as f32,
        min_member_similarity: envf("MMS", 0.4) as f32,
        events_per_cluster: env("EPC", 20),
        ..ConsolidateOptions::default()
    };
    let t = Instant::now();
    let r = eng.consolidate(&opts).unwrap();
    eprintln!("one batch {:?}: {:?}", t.elapsed(), r);
    let t = Instant::now();
    let r = eng
        .consolidate(&ConsolidateOptions {
            max_batches: None,
            ..opts
        })
        .unwrap();
    eprintln!("rest {:?}: {:?}", t.elapsed(), r);
    let p = consolidation_purity(&eng, &corpus).unwrap();
    eprintln!("{p:?}");
}

#[test]
#[ignore]
fn stage_times() {
    use perfcheck::engine::recall::*;
    let cc = CorpusConfig {
        events: env("EV", 20_000),
        topics: env("TOP", 40),
        sessions: env("SES", 400),
        queries: 500,
        ..CorpusConfig::default()
    };
    let corpus = Corpus::generate(&cc).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let de = EngineConfig::default();
    let cfg = EngineConfig {
        cache_capacity: 0,
        nlist: env("NLIST", de.nlist),
        nprobe: env("NPROBE", de.nprobe),
        ..de
    };
    let mut eng = Engine::open(dir.path().join("e.db"), cfg.clone()).unwrap();
    eng.load_corpus(&corpus).unwrap();
    let (mut te, mut tv, mut tr, mut tf, mut tx) = (0u128, 0u128, 0u128, 0u128, 0u128);
    for q in &corpus.queries {
        let t = Instant::now();
        let v = embed_query(eng.embedder(), &q.text);
        te += t.elapsed().as_nanos();
        let t = Instant::now();
        let c = vector_search(eng.index(), &v, 50, eng.nprobe());
        tv += t.elapsed().as_nanos();
        let t = Instant::now();
        let _ = eng.index().search_exact(&v, 50);
        tx += t.elapsed().as_nanos();
        let t = Instant::now();
        let r = rerank(eng.store(), &q.text, &c, 10, &cfg.weights, eng.now_ts()).unwrap();
        tr += t.elapsed().as_nanos();
        let t = Instant::now();
        let _ = format(&q.text, &r).unwrap();
        tf += t.elapsed().as_nanos();
    }
    let n = corpus.queries.len() as u128;
    eprintln!(
        "nlist {} nprobe {}: embed {}us search {}us (exact {}us) rerank {}us format {}us",
        eng.index().nlist(),
        eng.nprobe(),
        te / n / 1000,
        tv / n / 1000,
        tx / n / 1000,
        tr / n / 1000,
        tf / n / 1000
    );
}
