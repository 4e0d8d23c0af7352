//! # ragsnap-lexical
//!
//! The lexical half of ragsnap's hybrid retrieval: an identifier-aware BM25 index over the same
//! chunks as the vector index, reciprocal-rank fusion of the two ranked lists, and the floor
//! rule that keeps a fused hit only when at least one signal supports it.
//!
//! Why: documentation questions are full of identifiers (`PQfnumber`, `functools.lru_cache()`,
//! `VACUUM FULL`) that a small embedding model blurs. On 1,134 questions built from the back-of-
//! book index of the Python 3.11 documentation (`eval/README.md`), page recall@10 is 0.88 for
//! dense retrieval, 0.93 for this BM25 index and 0.96 for their fusion (MRR@10 0.68, 0.71,
//! 0.77), for about 0.07 ms more per query.
//!
//! ```
//! use ragsnap_lexical::{fuse_hits, FusionConfig, HybridFloor, LexicalIndex};
//!
//! let chunks = [
//!     "functools > lru_cache\n\n@functools.lru_cache(maxsize=128) wraps a function with a memoizing cache.",
//!     "libpq > Retrieving results\n\nPQfnumber returns the column number for a column name.",
//!     "Tutorial > Loops\n\nA for loop iterates over the items of a sequence.",
//! ];
//! let index = LexicalIndex::build(&chunks);
//! // The identifier, its parts and its qualified name all find the same chunk.
//! for q in ["lru_cache", "lru cache", "functools.lru_cache()", "PQfnumber"] {
//!     let top = index.search(q, 3)[0].0;
//!     assert_eq!(top, if q == "PQfnumber" { 1 } else { 0 });
//! }
//! // The payload round-trips and is checked on the way in.
//! let again = LexicalIndex::from_bytes(&index.to_bytes()).unwrap();
//! assert_eq!(again.search("pqfnumber", 1), index.search("pqfnumber", 1));
//! assert!(LexicalIndex::from_bytes(b"RSNP garbage").is_err());
//!
//! // Fuse with a dense list (row, cosine), best first, and apply the hybrid floor.
//! let dense = [(2, 0.31), (0, 0.29)];
//! let lexical = index.search_hits("functools.lru_cache()", 10);
//! let fused = fuse_hits(&dense, &lexical, &FusionConfig::default());
//! assert_eq!(fused[0].row, 0); // in both lists
//! let floor = HybridFloor::with_dense(0.45);
//! // Row 0: cosine below the floor, but the chunk holds the whole identifier.
//! assert!(floor.keep_fused(&fused[0], Some(0.29)));
//! // Row 2 came only from the dense list, under the floor: refused.
//! let row2 = fused.iter().find(|f| f.row == 2).unwrap();
//! assert!(!floor.keep_fused(row2, Some(0.31)));
//! ```
//!
//! ## Payload (`LEXICAL_VERSION` 1)
//!
//! The store frames it (magic `RSNPLEXI`) and checksums it; inside, all integers little-endian:
//!
//! ```text
//! u32 lexical version | u32 flags (0) | f32 k1 | f32 b | u64 rows | u64 terms
//! rows  × u32   row length in tokens
//! terms × u8    term length in bytes (1..=64)
//! the terms' UTF-8 bytes, concatenated; terms sorted bytewise and distinct
//! terms × { varint df (≥ 1), df × { varint row gap, varint term frequency (≥ 1) } }
//! ```
//!
//! Varints are unsigned LEB128 of at most 5 bytes; the first row of a term is stored as is,
//! later ones as the gap from the previous (≥ 1). The term frequencies of a row add up to its
//! length. The version covers the tokenizer too: a change to [`tokenize`] that changes any
//! token bumps [`LEXICAL_VERSION`], and a reader refuses other versions.
//!
//! ## Scoring
//!
//! BM25 with `k1 = 1.2`, `b = 0.75` and the Lucene IDF `ln(1 + (N − df + 0.5) / (df + 0.5))`;
//! the query's distinct tokens are each counted once. Every hit also carries its
//! [`coverage`](LexicalHit::coverage), which is comparable across queries and is what
//! [`HybridFloor`] tests.

mod fusion;
mod ident;
mod index;
mod tokenize;

pub use fusion::{fuse, fuse_hits, lexical_supports, Fused, FusionConfig, HybridFloor, DEFAULT_LEXICAL_FLOOR};
pub use ident::{
    holds_word, identifier_support, query_identifiers, IdentifierKind, IdentifierSupport, QueryIdentifier,
};
pub use index::{Bm25Params, LexicalHit, LexicalIndex};
pub use tokenize::{tokenize, MAX_TOKEN_BYTES, MAX_WINDOW};

/// Version of the tokenizer and payload layout; stored in the payload and in the manifest.
pub const LEXICAL_VERSION: u32 = 1;

/// Errors from reading a lexical payload.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum LexicalError {
    /// The payload was written by another tokenizer/layout version.
    #[error("lexical index version {found} is not supported (this build reads {supported})")]
    UnsupportedVersion {
        /// Version found.
        found: u32,
        /// Version this build reads.
        supported: u32,
    },
    /// The payload is inconsistent.
    #[error("malformed lexical index: {0}")]
    Malformed(String),
}

impl LexicalError {
    fn malformed(m: impl Into<String>) -> Self {
        LexicalError::Malformed(m.into())
    }
}

/// Result alias for this crate.
pub type Result<T, E = LexicalError> = std::result::Result<T, E>;
