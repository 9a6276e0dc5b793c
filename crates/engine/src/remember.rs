//! The remember pipeline's stages: `embed` -> `persist` -> `index_insert`.

use super::corpus::NewEvent;
use super::embed::Embedder;
use super::error::Result;
use super::index::IvfIndex;
use super::store::Store;

/// Stage `embed`: the event text's embedding.
#[inline(never)]
pub fn embed(embedder: &Embedder, text: &str) -> Vec<f32> {
    let _s = perfcheck_stage::stage!("embed");
    embedder.embed(text)
}

/// Stage `persist`: writes the event and its embedding to SQLite, returning the new id.
#[inline(never)]
pub fn persist(store: &Store, event: &NewEvent, embedding: &[f32]) -> Result<i64> {
    let _s = perfcheck_stage::stage!("persist");
    store.insert_event(event, embedding)
}

/// Stage `index_insert`: adds the embedding to the vector index (nearest IVF list).
#[inline(never)]
pub fn index_insert(index: &IvfIndex, id: i64, embedding: &[f32]) {
    let _s = perfcheck_stage::stage!("index_insert");
    index.insert(id, embedding);
}
