//! Pinned embedding models for ragsnap.
//!
//! * [`ModelDescriptor`]: the small TOML file that sits next to a model and says what it is
//!   (pooling `mean` / `cls` / `none`, query and passage prefixes, pinned sha256 of its files);
//! * [`catalog`]: the models of the repository's `models/` folder, chosen by name;
//! * [`Runtime`]: where ONNX Runtime and the model live (explicit paths, environment, or the
//!   `make setup` cache), resolved into errors that name the fix;
//! * [`OnnxEmbedder`]: `ort` + `tokenizers`, the descriptor's pooling, L2 normalisation,
//!   batches bucketed by token length;
//! * [`Embedder`]: the trait the rest of ragsnap codes against;
//! * [`canary`]: fixed texts whose vectors are stored with every snapshot and re-checked on open;
//! * [`EmbeddingCache`]: SQLite, keyed by (fingerprint id, content id), so an unchanged
//!   chunk is never embedded twice.
//!
//! The default model stores int8 weights, but ONNX Runtime dequantises them when it loads the
//! model, so it runs at fp32 speed; the catalogue's `minilm-l6-qint8` is the same model
//! quantized for integer arithmetic.

pub mod cache;
pub mod canary;
pub mod catalog;
mod counter;
mod descriptor;
mod error;
mod onnx;
mod runtime;

pub use cache::{CacheLookup, CacheStats, EmbeddingCache, RowProblem};
pub use counter::TokenCounter;
pub use descriptor::{valid_name, ModelDescriptor, Pooling};
pub use error::{EmbedError, Result};
pub use onnx::{sha256_hex, EmbedStats, OnnxEmbedder, OnnxOptions};
pub use runtime::{cache_dir, resolve_model_dir, Runtime, DEFAULT_MODEL};

use ragsnap_core::EmbeddingFingerprint;
use std::sync::atomic::{AtomicBool, Ordering};

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

    /// Embed search queries: like [`Embedder::embed`], but a model trained with a query
    /// instruction gets it here (texts given to [`Embedder::embed`] are passages).
    fn embed_queries(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        self.embed_queries_cancellable(texts, None)
    }

    /// [`Embedder::embed_queries`] that stops soon after `cancel` is set; the default is
    /// [`Embedder::embed_cancellable`] (no query instruction).
    fn embed_queries_cancellable(&self, texts: &[&str], cancel: Option<&AtomicBool>) -> Result<Vec<Vec<f32>>> {
        self.embed_cancellable(texts, cancel)
    }

    /// [`Embedder::embed`], stopping with [`EmbedError::Cancelled`] soon after `cancel` is set.
    /// An embedder that runs its work in several batches checks the flag between them; the
    /// default checks it once before the call.
    fn embed_cancellable(&self, texts: &[&str], cancel: Option<&AtomicBool>) -> Result<Vec<Vec<f32>>> {
        if cancel.is_some_and(|c| c.load(Ordering::SeqCst)) {
            return Err(EmbedError::Cancelled);
        }
        self.embed(texts)
    }
}

/// Largest distance of a normalised vector's length from 1 that [`vector_problem`] accepts.
pub const UNIT_NORM_TOLERANCE: f32 = 1e-3;

/// What is wrong with `v` as a `dims`-dimensional embedding (`None` when nothing is): a wrong
/// length, a NaN or infinite component, or, when the model normalises, a length further than
/// [`UNIT_NORM_TOLERANCE`] from 1.
pub fn vector_problem(v: &[f32], dims: usize, normalized: bool) -> Option<String> {
    if v.len() != dims {
        return Some(format!("{} components, expected {dims}", v.len()));
    }
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Some(format!("component {i} is {}", v[i]));
    }
    if normalized {
        let norm = v.iter().map(|x| f64::from(*x) * f64::from(*x)).sum::<f64>().sqrt();
        if (norm - 1.0).abs() > f64::from(UNIT_NORM_TOLERANCE) {
            return Some(format!("length {norm:.6}, expected 1 (the model normalises its vectors)"));
        }
    }
    None
}

/// Check an embedder's output for `texts`: one vector per text, each without a
/// [`vector_problem`]; the first bad one is an [`EmbedError::NonFinite`] naming its input.
pub fn check_output(texts: &[&str], vectors: &[Vec<f32>], dims: usize, normalized: bool) -> Result<()> {
    if vectors.len() != texts.len() {
        return Err(EmbedError::NonFinite {
            index: vectors.len().min(texts.len()),
            text: String::new(),
            problem: format!("{} vectors for {} inputs", vectors.len(), texts.len()),
        });
    }
    for (index, (t, v)) in texts.iter().zip(vectors).enumerate() {
        if let Some(problem) = vector_problem(v, dims, normalized) {
            return Err(EmbedError::NonFinite { index, text: t.chars().take(80).collect(), problem });
        }
    }
    Ok(())
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
