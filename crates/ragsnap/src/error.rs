//! The library's one error type, [`Error`], and its `Result` alias; the `ragsnap` binary maps
//! each variant to a documented exit code.

use ragsnap_embed::EmbedError;
use ragsnap_index::IndexError;
use ragsnap_store::StoreError;
use std::path::PathBuf;

/// Result alias for the ragsnap library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every error the library returns. The two embedding refusals are top-level variants so an
/// application can match on them directly.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The index was built with another embedding model identity than the one at hand.
    #[error("embedding version mismatch: the index was built with {index} but the embedder is {embedder}")]
    EmbeddingVersionMismatch {
        /// Fingerprint id recorded in the snapshot.
        index: String,
        /// Fingerprint id of the embedder or query vector.
        embedder: String,
    },
    /// Same model files, different vectors: the runtime or a library drifted.
    #[error("embedding drift: canary {canary:?} has cosine {cosine:.6} to its stored vector (minimum {min:.4})")]
    EmbeddingDrift {
        /// Worst canary.
        canary: String,
        /// Its cosine.
        cosine: f32,
        /// Threshold.
        min: f32,
    },
    /// A query vector of the wrong dimension.
    #[error("query vector has {found} dimensions; the snapshot's vectors have {expected}")]
    DimensionMismatch {
        /// Snapshot dimension.
        expected: usize,
        /// Given dimension.
        found: usize,
    },
    /// Store, snapshot or catalog error.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Embedding error.
    #[error(transparent)]
    Embed(EmbedError),
    /// Index error.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// A configuration file or value is wrong.
    #[error("config {path}: {message}")]
    Config {
        /// The file (or `<flags>`).
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// I/O on a named path.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// A rebuild was interrupted (SIGINT/SIGTERM); head is untouched and staging was cleaned.
    #[error("interrupted: the build was stopped before it was published; head is unchanged")]
    Cancelled,
    /// A request that cannot be served as asked (bad k, empty query, no documents...).
    #[error("{0}")]
    Invalid(String),
    /// A setting or option is out of its range (the `ragsnap` binary exits 2, usage).
    #[error("invalid setting {key}: {message}")]
    InvalidSetting {
        /// The setting, as written in `ragsnap.toml` (`query.k`) or as the option's name.
        key: String,
        /// What is wrong and what is allowed.
        message: String,
    },
}

impl From<EmbedError> for Error {
    fn from(e: EmbedError) -> Self {
        match e {
            EmbedError::EmbeddingVersionMismatch { index, embedder } => {
                Error::EmbeddingVersionMismatch { index, embedder }
            }
            EmbedError::EmbeddingDrift { canary, cosine, min } => Error::EmbeddingDrift { canary, cosine, min },
            EmbedError::Cancelled => Error::Cancelled,
            other => Error::Embed(other),
        }
    }
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}
