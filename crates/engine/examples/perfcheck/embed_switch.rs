//! The harness's embedding backend: the engine's built-in embedder behind a switch, so the
//! `embed_failure` fault can make it fail or hang the way a remote embedding service does.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Instant;

use agent_memory::{EmbedBackend, Embedder};

/// How the backend behaves now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// Embeds.
    Works = 0,
    /// Answers with an error at once (a 503).
    Fails = 1,
    /// Waits until the request's deadline, then times out (a hung service).
    Hangs = 2,
}

/// The built-in embedder behind a [`Mode`] switch.
#[derive(Debug)]
pub struct EmbedSwitch {
    inner: Embedder,
    mode: AtomicU8,
}

impl EmbedSwitch {
    /// A working switch over the built-in embedder of dimension `dim`.
    pub fn new(dim: usize) -> EmbedSwitch {
        EmbedSwitch {
            inner: Embedder::new(dim),
            mode: AtomicU8::new(Mode::Works as u8),
        }
    }

    /// Switches to `mode`.
    pub fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::Release);
    }
}

impl EmbedBackend for EmbedSwitch {
    fn embed(&self, text: &str, deadline: Instant) -> Result<Vec<f32>, String> {
        match self.mode.load(Ordering::Acquire) {
            0 => Ok(self.inner.embed(text)),
            1 => Err("embedding service answered 503 (injected)".into()),
            _ => {
                std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
                Err("embedding request timed out (injected hang)".into())
            }
        }
    }
}
