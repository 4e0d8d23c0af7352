//! A small pool of model sessions for query embedding.
//!
//! One [`OnnxEmbedder`] holds one session behind a lock, so a service with one embedder answers
//! one embedding at a time however many cores it has. The pool loads several single-threaded
//! embedders from the same runtime and hands each call to a free one; a call that finds none
//! free waits for the first to come back.

use ragsnap::core::EmbeddingFingerprint;
use ragsnap::embed::{EmbedError, Embedder};
use ragsnap::OnnxEmbedder;
use std::sync::{Arc, Condvar, Mutex};

/// Several embedders of one model, used one call at a time each.
pub struct EmbedderPool {
    members: Vec<Arc<OnnxEmbedder>>,
    free: Mutex<Vec<usize>>,
    returned: Condvar,
}

impl std::fmt::Debug for EmbedderPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbedderPool")
            .field("sessions", &self.members.len())
            .field("fingerprint", &self.fingerprint().id())
            .finish()
    }
}

impl EmbedderPool {
    /// Load `sessions` embedders (at least one) from the runtime the config points at, each
    /// with one intra-op thread. Every member must have the same fingerprint.
    pub fn load(runtime: &ragsnap::config::RuntimeConfig, sessions: usize) -> ragsnap::Result<Self> {
        let mut rt = runtime.clone();
        rt.intra_threads = 1;
        rt.bulk_sessions = 1;
        let mut members = Vec::with_capacity(sessions.max(1));
        for _ in 0..sessions.max(1) {
            members.push(ragsnap::open_embedder(&rt)?);
        }
        Self::from_members(members)
    }

    /// A pool over embedders already loaded; they must share one fingerprint.
    pub fn from_members(members: Vec<Arc<OnnxEmbedder>>) -> ragsnap::Result<Self> {
        let Some(first) = members.first() else {
            return Err(ragsnap::Error::Invalid("an embedder pool needs at least one session".into()));
        };
        if let Some(other) = members.iter().find(|m| m.fingerprint() != first.fingerprint()) {
            return Err(ragsnap::Error::EmbeddingVersionMismatch {
                index: first.fingerprint().id(),
                embedder: other.fingerprint().id(),
            });
        }
        let free = Mutex::new((0..members.len()).collect());
        Ok(EmbedderPool { members, free, returned: Condvar::new() })
    }

    /// Sessions in the pool.
    pub fn sessions(&self) -> usize {
        self.members.len()
    }

    /// The model's maximum input length in tokens.
    pub fn max_tokens(&self) -> usize {
        self.members[0].descriptor().max_tokens
    }

    fn take(&self) -> Lent<'_> {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(i) = free.pop() {
                return Lent { pool: self, index: i };
            }
            free = self.returned.wait(free).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// One member on loan; it goes back to the pool when dropped (also on a panic).
struct Lent<'a> {
    pool: &'a EmbedderPool,
    index: usize,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        self.pool.free.lock().unwrap_or_else(|p| p.into_inner()).push(self.index);
        self.pool.returned.notify_one();
    }
}

impl Embedder for EmbedderPool {
    fn fingerprint(&self) -> &EmbeddingFingerprint {
        self.members[0].fingerprint()
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let lent = self.take();
        self.members[lent.index].embed(texts)
    }

    fn embed_queries_cancellable(
        &self,
        texts: &[&str],
        cancel: Option<&std::sync::atomic::AtomicBool>,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        let lent = self.take();
        self.members[lent.index].embed_queries_cancellable(texts, cancel)
    }

    fn count_tokens(&self, text: &str) -> usize {
        self.members[0].count_tokens(text)
    }

    fn default_floor(&self) -> Option<f32> {
        self.members[0].default_floor()
    }

    fn truncated_inputs(&self) -> u64 {
        self.members.iter().map(|m| m.truncated_inputs()).sum()
    }

    fn word_additive_counts(&self) -> bool {
        self.members[0].word_additive_counts()
    }
}
