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
    cfg.train_iterations = env("TIT", 10);
    cfg.train_sample = env("TSAMP", 16384);
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
    for np in [8, 12, 16, 20, 24, 32, 40] {
        let r = ivf_recall(eng.index(), eng.embedder(), &corpus.queries, 10, np);
        eprint!("np{np}: {r:.3}  ");
    }
    eprintln!();
    if std::env::var("SKIPC").is_ok() {
        return;
    }
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
    if std::env::var("SKIPC").is_ok() {
        return;
    }
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

#[test]
#[ignore]
fn diagnose() {
    let cc = CorpusConfig {
        events: 20_000,
        queries: 500,
        topic_share: envf("TS", 0.75),
        ..CorpusConfig::default()
    };
    let corpus = Corpus::generate(&cc).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = EngineConfig {
        cache_capacity: 0,
        nlist: env("NLIST", 0),
        ..EngineConfig::default()
    };
    let mut eng = Engine::open(dir.path().join("e.db"), cfg.clone()).unwrap();
    eng.load_corpus(&corpus).unwrap();
    let np = env("NP", 16);
    let topic = |id: i64| corpus.events[(id - 1) as usize].topic;
    let (mut same, mut tot, mut miss_same, mut miss, mut miss_rank_sum) = (0, 0, 0, 0, 0);
    let mut score_gap = Vec::new();
    for q in &corpus.queries {
        let t = topic(q.relevant[0]);
        let v = eng.embedder().embed(&q.text);
        let ex = eng.index().search_exact(&v, 10);
        let ap = eng.index().search(&v, 10, np);
        for (r, h) in ex.iter().enumerate() {
            tot += 1;
            if topic(h.id) == t {
                same += 1;
            }
            if !ap.iter().any(|a| a.id == h.id) {
                miss += 1;
                miss_rank_sum += r;
                if topic(h.id) == t {
                    miss_same += 1;
                }
            }
        }
        if let (Some(e), Some(a)) = (ex.last(), ap.last()) {
            score_gap.push(e.score - a.score);
        }
    }
    eprintln!(
        "exact top10 same-topic {:.3}; misses {} ({:.3} same-topic), mean rank of missed {:.2}",
        same as f64 / tot as f64,
        miss,
        miss_same as f64 / miss.max(1) as f64,
        miss_rank_sum as f64 / miss.max(1) as f64
    );
    score_gap.sort_by(|a, b| a.total_cmp(b));
    eprintln!(
        "10th score gap exact-ivf median {:.4} p90 {:.4}",
        score_gap[score_gap.len() / 2],
        score_gap[score_gap.len() * 9 / 10]
    );
    let ex0: Vec<f32> = corpus
        .queries
        .iter()
        .take(5)
        .map(|q| {
            let v = eng.embedder().embed(&q.text);
            let e = eng.index().search_exact(&v, 10);
            e[0].score - e[9].score
        })
        .collect();
    eprintln!("top1-top10 spread for 5 queries {ex0:?}");
}

#[test]
#[ignore]
fn noise_sims() {
    use perfcheck::engine::consolidate::*;
    let cc = CorpusConfig { events: 20_000, queries: 10, ..CorpusConfig::default() };
    let corpus = Corpus::generate(&cc).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut eng = Engine::open(dir.path().join("e.db"), EngineConfig::default()).unwrap();
    eng.load_corpus(&corpus).unwrap();
    let opts = ConsolidateOptions { events_per_cluster: env("EPC", 20), ..ConsolidateOptions::default() };
    let b = load_events(eng.store(), 1000).unwrap();
    let km = cluster(&b, &opts);
    let mut noise = Vec::new(); let mut topical = Vec::new(); let mut wrong = Vec::new();
    // majority topic per cluster
    let mut maj = std::collections::HashMap::new();
    for c in 0..km.k() {
        let mut cnt = std::collections::HashMap::new();
        for (i, &a) in km.assignments.iter().enumerate() { if a as usize == c { if let Some(t) = corpus.events[(b.ids[i]-1) as usize].topic { *cnt.entry(t).or_insert(0) += 1; } } }
        if let Some((t, _)) = cnt.into_iter().max_by_key(|x| x.1) { maj.insert(c, t); }
    }
    for (i, &s) in km.similarity.iter().enumerate() {
        match corpus.events[(b.ids[i]-1) as usize].topic {
            None => noise.push(s),
            Some(t) if maj.get(&(km.assignments[i] as usize)) == Some(&t) => topical.push(s),
            Some(_) => wrong.push(s),
        }
    }
    for (n, v) in [("noise", &mut noise), ("topical", &mut topical), ("wrong", &mut wrong)] {
        v.sort_by(|a, b| a.total_cmp(b));
        if v.is_empty() { continue; }
        let q = |p: f64| v[((v.len() - 1) as f64 * p) as usize];
        eprintln!("{n}: n={} p10 {:.3} p25 {:.3} p50 {:.3} p75 {:.3} p90 {:.3}", v.len(), q(0.1), q(0.25), q(0.5), q(0.75), q(0.9));
    }
    let pats = extract_patterns(&b, &km, &opts);
    let (acc, rej) = validate(pats, &opts);
    let mut coh: Vec<f32> = acc.iter().map(|p| p.cohesion).collect(); coh.sort_by(|a,b| a.total_cmp(b));
    eprintln!("accepted {} rejected {} cohesion {:?}", acc.len(), rej.len(), coh);
}
