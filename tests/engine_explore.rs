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
    let cc = CorpusConfig {
        events: env("EV", 20_000),
        topics: env("TOP", 40),
        sessions: env("SES", 400),
        queries: 1000,
        min_words: env("MINW", 10),
        max_words: env("MAXW", 28),
        common_words: env("CW", 500),
        topic_words: env("TW", 400),
        topic_share: envf("TS", 0.6),
        ..CorpusConfig::default()
    };
    let corpus = Corpus::generate(&cc).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = EngineConfig {
        cache_capacity: 0,
        dim: env("DIM", 256),
        ..EngineConfig::default()
    };
    cfg.nlist = env("NLIST", 0);
    cfg.candidates = env("CAND", 50);
    let mut eng = Engine::open(dir.path().join("e.db"), cfg.clone()).unwrap();
    let t = Instant::now();
    eng.load_corpus(&corpus).unwrap();
    eprintln!("load {:?} nlist {}", t.elapsed(), eng.index().nlist());
    let sizes = eng.index().list_sizes();
    eprintln!(
        "list sizes min {} max {}",
        sizes.iter().min().unwrap(),
        sizes.iter().max().unwrap()
    );
    for np in [4, 8, 16, 24, 32] {
        let r = ivf_recall(eng.index(), eng.embedder(), &corpus.queries, 10, np);
        eprint!("np{np}: {r:.3}  ");
    }
    eprintln!();
    let mut found = [0usize; 4];
    let ks = [1, 10, 50, 200];
    for q in &corpus.queries {
        let v = eng.embedder().embed(&q.text);
        let h = eng.index().search_exact(&v, 200);
        for (i, &k) in ks.iter().enumerate() {
            if h.iter().take(k).any(|h| q.relevant.contains(&h.id)) {
                found[i] += 1;
            }
        }
    }
    let n = corpus.queries.len() as f64;
    eprintln!(
        "cosine exact gt recall @1 {:.3} @10 {:.3} @50 {:.3} @200 {:.3}",
        found[0] as f64 / n,
        found[1] as f64 / n,
        found[2] as f64 / n,
        found[3] as f64 / n
    );
    let t = Instant::now();
    let gt = ground_truth_recall(&mut eng, &corpus.queries, 10).unwrap();
    eprintln!(
        "engine gt recall@10 {gt:.4}  per-recall {:?}",
        t.elapsed() / corpus.queries.len() as u32
    );
    let opts = ConsolidateOptions {
        min_cohesion: envf("COH", 0.36) as f32,
        events_per_cluster: env("EPC", 20),
        max_batches: None,
        ..ConsolidateOptions::default()
    };
    let t = Instant::now();
    let r = eng.consolidate(&opts).unwrap();
    eprintln!("all {:?}: {:?}", t.elapsed(), r);
    let p = consolidation_purity(&eng, &corpus).unwrap();
    eprintln!("{p:?}");
}
