//! Micro-benchmarks of the engine's pipeline stages, on the `quick`-sized corpus.
//!
//! `cargo bench --bench stages` prints the time of one call of:
//! - `stages/embed`: `remember`'s `embed` stage on one event text;
//! - `stages/vector_search`: IVF search for 50 candidates in a 20,000-event index at the
//!   default `nlist`/`nprobe` (queries cycle through the corpus queries);
//! - `stages/vector_search_exact`: the same search scanning every list, for comparison;
//! - `stages/rerank`: re-ranking 50 candidates (text fetched from SQLite) to the top 10;
//! - `stages/format`: JSON rendering of the top 10;
//! - `stages/cluster_1000`: k-means of 1,000 embeddings as consolidation runs it (k = 50).
//!
//! Setup (corpus generation, a 20,000-event engine in a temporary directory) takes a few
//! seconds and is not measured.

use std::hint::black_box;
use std::time::Duration;

use agent_memory::consolidate::{cluster, load_events, ConsolidateOptions};
use agent_memory::recall::{embed_query, format, rerank, vector_search};
use agent_memory::remember::embed;
use agent_memory::{Corpus, CorpusConfig, Engine, EngineConfig};
use criterion::{criterion_group, criterion_main, Criterion};

fn stages(c: &mut Criterion) {
    let corpus = Corpus::generate(&CorpusConfig {
        events: 20_000,
        queries: 500,
        ..CorpusConfig::default()
    })
    .expect("corpus");
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = EngineConfig::default();
    let mut engine = Engine::open(dir.path().join("bench.sqlite"), config.clone()).expect("open");
    engine.load_corpus(&corpus).expect("load corpus");
    let queries: Vec<(String, Vec<f32>)> = corpus
        .queries
        .iter()
        .map(|q| (q.text.clone(), engine.embedder().embed(&q.text)))
        .collect();
    let nprobe = engine.nprobe();
    let nlist = engine.index().nlist();

    let mut g = c.benchmark_group("stages");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(30);

    let text = &corpus.events[0].text;
    g.bench_function("embed", |b| {
        b.iter(|| embed(engine.embedder(), black_box(text)))
    });
    g.bench_function("embed_query", |b| {
        b.iter(|| embed_query(engine.embedder(), black_box(&queries[0].0)))
    });

    let mut i = 0usize;
    g.bench_function("vector_search", |b| {
        b.iter(|| {
            i = (i + 1) % queries.len();
            vector_search(engine.index(), black_box(&queries[i].1), 50, nprobe)
        })
    });
    g.bench_function("vector_search_exact", |b| {
        b.iter(|| {
            i = (i + 1) % queries.len();
            vector_search(engine.index(), black_box(&queries[i].1), 50, nlist)
        })
    });

    let candidates: Vec<_> = queries
        .iter()
        .map(|(_, v)| vector_search(engine.index(), v, 50, nprobe))
        .collect();
    g.bench_function("rerank", |b| {
        b.iter(|| {
            i = (i + 1) % queries.len();
            rerank(
                engine.store(),
                black_box(&queries[i].0),
                &candidates[i],
                10,
                &config.weights,
                engine.now_ts(),
            )
            .expect("rerank")
        })
    });

    let ranked = rerank(
        engine.store(),
        &queries[0].0,
        &candidates[0],
        10,
        &config.weights,
        engine.now_ts(),
    )
    .expect("rerank");
    g.bench_function("format", |b| {
        b.iter(|| format(black_box(&queries[0].0), &ranked).expect("format"))
    });

    let opts = ConsolidateOptions::default();
    let batch = load_events(engine.store(), 1_000).expect("load events");
    g.bench_function("cluster_1000", |b| {
        b.iter(|| cluster(black_box(&batch), &opts))
    });
    g.finish();

    // A full recall with the cache disabled, for scale.
    let uncached = Engine::open(
        dir.path().join("bench.sqlite"),
        EngineConfig {
            cache_capacity: 0,
            ..config
        },
    )
    .expect("reopen");
    let mut g = c.benchmark_group("pipeline");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(30);
    g.bench_function("recall_uncached", |b| {
        b.iter(|| {
            i = (i + 1) % queries.len();
            uncached
                .recall(black_box(&queries[i].0), 10)
                .expect("recall")
        })
    });
    g.finish();
    drop(engine);
}

criterion_group!(benches, stages);
criterion_main!(benches);
