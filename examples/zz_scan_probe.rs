use perfcheck::engine::{Corpus, CorpusConfig, Engine, EngineConfig};
use std::time::Instant;
fn main() {
    let corpus = Corpus::generate(&CorpusConfig { seed: 42, events: 100_000, topics: 120, sessions: 2000, queries: 4000, ..CorpusConfig::default() }).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut e = Engine::open(dir.path().join("x.sqlite"), EngineConfig::default()).unwrap();
    e.load_corpus(&corpus).unwrap();
    let sizes = e.index().list_sizes();
    let mut s = sizes.clone(); s.sort();
    println!("nlist {} nprobe {} min {} med {} max {}", sizes.len(), e.nprobe(), s[0], s[s.len()/2], s[s.len()-1]);
    let nz: Vec<usize> = corpus.queries.iter().take(200).map(|q| e.embedder().embed(&q.text).iter().filter(|x| **x != 0.0).count()).collect();
    println!("query nz mean {}", nz.iter().sum::<usize>() as f64 / nz.len() as f64);
    let dnz: Vec<usize> = corpus.events.iter().take(2000).map(|q| e.embedder().embed(&q.text).iter().filter(|x| **x != 0.0).count()).collect();
    println!("event nz mean {}", dnz.iter().sum::<usize>() as f64 / dnz.len() as f64);
    let qs: Vec<Vec<f32>> = corpus.queries.iter().take(2000).map(|q| e.embedder().embed(&q.text)).collect();
    let np = e.nprobe();
    let t = Instant::now();
    for q in &qs { std::hint::black_box(e.index().search(q, 50, np)); }
    println!("search {:?}/q", t.elapsed() / qs.len() as u32);
    let t = Instant::now();
    for q in &qs { std::hint::black_box(e.index().search(q, 50, 1)); }
    println!("search nprobe1 {:?}/q", t.elapsed() / qs.len() as u32);
    println!("heap {} MB", e.index().heap_bytes() / 1_000_000);
}
