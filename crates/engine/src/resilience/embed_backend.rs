//! Pluggable embedding backends: the engine's own [`Embedder`](crate::Embedder) is local
//! and cannot fail, but a deployment may embed with a service that can fail or hang.

use std::time::Instant;

/// Where a deployment's embeddings come from when not from the built-in embedder.
///
/// A backend must honour `deadline` (a remote client sets it as its request timeout): the
/// engine cannot interrupt a call that ignores it. It must return vectors of the engine's
/// dimension, made the same way as the stored ones.
pub trait EmbedBackend: Send + Sync + std::fmt::Debug {
    /// The embedding of `text`, or why there is none (failed, timed out at `deadline`).
    fn embed(&self, text: &str, deadline: Instant) -> Result<Vec<f32>, String>;
}
