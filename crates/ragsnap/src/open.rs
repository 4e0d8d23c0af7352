//! Opening a snapshot for queries, the one way the CLI and applications share: resolve the
//! snapshot reference (`HEAD`, `HEAD~N`, an id), open and verify the snapshot, and load the
//! model only when the query mode needs it. A lexical searcher never creates an ONNX session.

use crate::config::RuntimeConfig;
use crate::{Error, Mode, Result, Searcher, Snapshot, Store};
use ragsnap_core::EmbeddingFingerprint;
use ragsnap_embed::{EmbedError, Embedder};
use std::path::Path;
use std::sync::Arc;

/// Open snapshot `spec` (default head) of the store at `root` read-only and build a searcher
/// for `mode`: dense and hybrid load the model `runtime` points at and check it against the
/// snapshot (fingerprint, canaries); lexical loads no model at all.
pub fn open_searcher(root: &Path, spec: Option<&str>, runtime: &RuntimeConfig, mode: Mode) -> Result<Searcher> {
    let store = Store::open_reader(root)?;
    let id = store.resolve(spec.unwrap_or("HEAD"))?;
    let snapshot = Arc::new(Snapshot::open(&store, &id)?);
    if mode == Mode::Lexical {
        return Searcher::lexical_only(snapshot);
    }
    let embedder = crate::open_embedder(runtime)?;
    Searcher::new(snapshot, embedder)
}

/// Stands in for the model in a lexical-only searcher: it carries the snapshot's fingerprint
/// and refuses to embed, so a code path that would need the model fails loudly instead of
/// loading it.
pub(crate) struct NoModel {
    fingerprint: EmbeddingFingerprint,
}

impl NoModel {
    pub(crate) fn new(fingerprint: EmbeddingFingerprint) -> Self {
        NoModel { fingerprint }
    }
}

impl Embedder for NoModel {
    fn fingerprint(&self) -> &EmbeddingFingerprint {
        &self.fingerprint
    }

    fn embed(&self, _texts: &[&str]) -> ragsnap_embed::Result<Vec<Vec<f32>>> {
        Err(EmbedError::Inference("this searcher was opened for lexical queries and has no model loaded".into()))
    }

    fn count_tokens(&self, text: &str) -> usize {
        ragsnap_chunk::approx_token_count(text)
    }
}

/// Build the lexical-only searcher (used by [`Searcher::lexical_only`]).
pub(crate) fn check_lexical(snapshot: &Snapshot) -> Result<()> {
    if snapshot.lexical().is_none() {
        return Err(Error::Invalid(format!(
            "snapshot {} has no lexical index (written before lexical retrieval existed)",
            snapshot.id()
        )));
    }
    Ok(())
}

/// File name of the embedding cache inside the store's `cache/` folder.
pub const EMBED_CACHE_FILE: &str = "embeddings.sqlite";

/// Where the store at `root` keeps its embedding cache.
pub fn embed_cache_path(root: &Path) -> std::path::PathBuf {
    root.join("cache").join(EMBED_CACHE_FILE)
}
