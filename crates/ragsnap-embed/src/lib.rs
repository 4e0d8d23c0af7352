//! Pinned embedding models for ragsnap.
//!
//! * [`ModelDescriptor`]: the small TOML file that sits next to a model and says what it is;
//! * [`Runtime`]: where ONNX Runtime and the model live (explicit paths, environment, or the
//!   `make setup` cache), resolved into errors that name the fix;
//! * [`OnnxEmbedder`]: `ort` + `tokenizers`, mean pooling over the attention mask, L2
//!   normalisation, batches bucketed by token length;
//! * [`Embedder`]: the trait the rest of ragsnap codes against;
//! * [`canary`]: fixed texts whose vectors are stored with every snapshot and re-checked on open;
//! * [`EmbeddingCache`]: SQLite, keyed by (fingerprint id, content id), so an unchanged
//!   chunk is never embedded twice.
//!
//! The default model stores int8 weights, but ONNX Runtime dequantises them when it loads the
//! model, so it runs at fp32 speed.

pub mod cache;
pub mod canary;
mod counter;
mod descriptor;
mod error;
mod onnx;
mod runtime;

pub use cache::{CacheStats, EmbeddingCache};
pub use counter::TokenCounter;
pub use descriptor::ModelDescriptor;
pub use error::{EmbedError, Result};
pub use onnx::{EmbedStats, OnnxEmbedder, OnnxOptions};
pub use runtime::{resolve_model_dir, Runtime};

use ragsnap_core::EmbeddingFingerprint;

/// Something that turns texts into vectors in one fixed vector space.
pub trait Embedder: Send + Sync {
    /// The identity of the vector space this embedder produces.
    fn fingerprint(&self) -> &EmbeddingFingerprint;

    /// Embed `texts`; the result has one vector per text, in the caller's order.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>>;

    /// Model tokens in `text` (special tokens included, no truncation).
    fn count_tokens(&self, text: &str) -> usize;

    /// The similarity floor the model's descriptor recommends, if it has one.
    fn default_floor(&self) -> Option<f32> {
        None
    }

    /// Inputs cut at the model's maximum length since this embedder was created (an embedder
    /// that never truncates, or does not count, answers 0).
    fn truncated_inputs(&self) -> u64 {
        0
    }

    /// Whether [`Embedder::count_tokens`] adds up over words (BERT WordPiece: the count of a
    /// text is the sum of its words' counts plus the constant special tokens), which lets the
    /// chunker count each distinct word once (`ragsnap_chunk::chunk_doc_cached`). `false`, the
    /// safe answer, makes the chunker measure texts whole.
    fn word_additive_counts(&self) -> bool {
        false
    }
}

/// Cosine similarity of two vectors (not assumed normalised).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        dot += f64::from(*x) * f64::from(*y);
        na += f64::from(*x) * f64::from(*x);
        nb += f64::from(*y) * f64::from(*y);
    }
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    (dot / (na.sqrt() * nb.sqrt())) as f32
}
