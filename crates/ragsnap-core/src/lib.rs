//! Bottom layer of ragsnap: the types and helpers every other crate shares.
//!
//! * [`ContentId`]: the blake3 id of a chunk's normalised text;
//! * [`EmbeddingFingerprint`]: the identity of an embedding model run;
//! * [`Chunk`]: one indexed unit of text with its provenance;
//! * [`fsio`]: atomic writes (temp file, fsync, rename, fsync the folder);
//! * [`FormatVersion`]: the on-disk format versions this build writes and reads.
//!
//! ```
//! use ragsnap_core::ContentId;
//! let a = ContentId::of_text("Hello,   world\n");
//! let b = ContentId::of_text("Hello, world");
//! assert_eq!(a, b); // whitespace is normalised before hashing
//! ```

mod chunk;
mod fingerprint;
pub mod fsio;
mod ids;
mod index_kind;
mod version;

pub use chunk::Chunk;
pub use fingerprint::{Canary, EmbeddingFingerprint};
pub use ids::{blake3_hex, normalize_text, ContentId};
pub use index_kind::IndexKind;
pub use version::FormatVersion;
