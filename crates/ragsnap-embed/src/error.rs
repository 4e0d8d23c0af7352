//! [`EmbedError`]: every failure of loading or running a model, or of the embedding cache, each
//! naming the file or input concerned.

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = EmbedError> = std::result::Result<T, E>;

/// Everything that can go wrong while loading or running an embedding model.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// A runtime piece (model, tokenizer, descriptor, ONNX Runtime library) is not where it should be.
    #[error("{what} not found at {path}: run `make setup` (or point {hint} at it)")]
    Missing {
        /// Which piece.
        what: &'static str,
        /// Where it was looked for.
        path: PathBuf,
        /// Flag, config key or environment variable that overrides the location.
        hint: &'static str,
    },
    /// A model file does not match the checksum its descriptor pins.
    #[error("{path}: {algorithm} is {found}, but the model descriptor expects {expected}; refusing to load it (fetch it again: `ragsnap models fetch NAME` or `make setup`)")]
    ChecksumMismatch {
        /// The file.
        path: PathBuf,
        /// Digest algorithm (`sha256` or `blake3`).
        algorithm: &'static str,
        /// Pinned digest.
        expected: String,
        /// Digest of the file on disk.
        found: String,
    },
    /// The model descriptor could not be read or parsed.
    #[error("model descriptor {path}: {message}")]
    Descriptor {
        /// The descriptor file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// ONNX Runtime could not be loaded or is too old.
    #[error("ONNX Runtime library {path}: {message}")]
    Runtime {
        /// The library file.
        path: PathBuf,
        /// Loader message.
        message: String,
    },
    /// The model's inputs or outputs are not what the descriptor declares.
    #[error("model {path} does not match its descriptor: {message}")]
    ModelShape {
        /// The model file.
        path: PathBuf,
        /// What differs.
        message: String,
    },
    /// The tokenizer failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// ONNX Runtime failed while running the model.
    #[error("inference: {0}")]
    Inference(String),
    /// The vectors stored with a snapshot were made by another model identity.
    #[error("embedding version mismatch: the index was built with {index} but the embedder is {embedder}")]
    EmbeddingVersionMismatch {
        /// Fingerprint id recorded in the snapshot.
        index: String,
        /// Fingerprint id of the embedder at hand.
        embedder: String,
    },
    /// The same model identity no longer reproduces the snapshot's canary vectors.
    #[error(
        "embedding drift: canary {canary:?} has cosine {cosine:.6} to its stored vector (minimum {min:.4}); \
         the runtime or a library changed the vectors even though the model files are identical"
    )]
    EmbeddingDrift {
        /// Text of the worst canary.
        canary: String,
        /// Its cosine to the stored vector.
        cosine: f32,
        /// The threshold.
        min: f32,
    },
    /// The embedding cache failed.
    #[error("embedding cache {path}: {message}")]
    Cache {
        /// Cache database.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// The model produced a vector with a NaN or infinite component (or one of the wrong
    /// length, or all zeros where the model normalises): never stored, never served.
    #[error("the embedder returned an unusable vector for input {index} ({text:?}): {problem}")]
    NonFinite {
        /// Position of the input in the call.
        index: usize,
        /// The start of the input text (at most 80 characters).
        text: String,
        /// What is wrong with the vector.
        problem: String,
    },
    /// The embedding cache file is damaged (not a database, or malformed); see
    /// [`crate::EmbeddingCache::quarantine`].
    #[error("embedding cache {path} is damaged: {message}")]
    CacheCorrupt {
        /// Cache database.
        path: PathBuf,
        /// What SQLite said.
        message: String,
    },
    /// An [`crate::OnnxOptions`] value is out of range.
    #[error("embedder option {name}: {message}")]
    InvalidOption {
        /// The option.
        name: &'static str,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// A model name that the catalogue does not hold.
    #[error("unknown model {name:?}: the catalogue has {known}")]
    UnknownModel {
        /// The name asked for.
        name: String,
        /// The names the catalogue holds, comma-separated.
        known: String,
    },
    /// A catalogued model that is not in the cache yet.
    #[error(
        "model {name:?} is not fetched (no {path}): run `ragsnap models fetch {name}` or `make setup MODELS={name}`"
    )]
    NotFetched {
        /// The model's name.
        name: String,
        /// The folder it would be in.
        path: PathBuf,
    },
    /// The caller's cancel flag was set; the call stopped between two model batches.
    #[error("embedding cancelled")]
    Cancelled,
}
