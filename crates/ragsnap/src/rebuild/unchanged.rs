//! Whether a rebuild would reproduce head: its *build key*.
//!
//! Two builds with the same key hold the same documents, chunks and vectors, so a rebuild whose
//! key equals the one in head's manifest writes no new snapshot (the report's outcome is
//! `unchanged`) unless forced. The key is blake3 over:
//! - the key's own version, the tool version and the snapshot format version (new code may
//!   sanitise, chunk or index differently);
//! - the source digest: every listed file's path and the blake3 of its bytes (empty when it
//!   could not be read), so one changed byte, an added, removed or renamed file changes it;
//! - every indexed document's path and chunk key (what the chunker read after sanitising and
//!   boilerplate removal, its URL, the chunker version and sizes, the model fingerprint);
//! - the chunker version and the chunk sizes used;
//! - the embedding fingerprint id (model and tokenizer bytes, pooling, dimensions, runtime);
//! - every setting that changes what is read, kept or indexed: `[source]` selection,
//!   `[ingest] max_bytes`, `[chunker]`, `[boilerplate]` and `[index]`.
//!
//! Gate thresholds, cache verification, runtime threads and query defaults do not change the
//! snapshot and are left out: changing only those needs `--force` to build again.

use super::prepare::Prepared;
use crate::config::Config;
use ragsnap_core::FormatVersion;

/// The build key of `prepared` built with `config` and the model `fingerprint_id`.
pub(crate) fn build_key(prepared: &Prepared, config: &Config, fingerprint_id: &str) -> String {
    let mut h = blake3::Hasher::new();
    let mut field = |name: &str, value: &[u8]| {
        h.update(name.as_bytes());
        h.update(&(value.len() as u64).to_le_bytes());
        h.update(value);
    };
    field("key", b"ragsnap build key 1");
    field("tool", env!("CARGO_PKG_VERSION").as_bytes());
    field("format", &FormatVersion::CURRENT.0.to_le_bytes());
    field("sources", prepared.source_digest.as_bytes());
    for d in &prepared.documents {
        field("document", d.source_path.as_bytes());
        field("chunk_key", d.chunk_key.as_deref().unwrap_or_default().as_bytes());
    }
    field("chunker_version", &ragsnap_chunk::CHUNKER_VERSION.to_le_bytes());
    let c = &prepared.chunk_config;
    for n in [c.target_tokens, c.max_tokens, c.min_tokens] {
        field("chunk_size", &(n as u64).to_le_bytes());
    }
    field("fingerprint", fingerprint_id.as_bytes());
    field("source", json(&config.source).as_bytes());
    field("max_bytes", &config.ingest.max_bytes.to_le_bytes());
    field("chunker", json(&config.chunker).as_bytes());
    field("boilerplate", json(&config.boilerplate).as_bytes());
    field("index", json(&config.index).as_bytes());
    h.finalize().to_hex().to_string()
}

/// A setting as the key hashes it.
fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("settings serialise")
}
