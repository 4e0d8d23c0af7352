//! # ragsnap
//!
//! Keep retrieval-augmented-generation indices honest. This crate is what an application
//! links: open a store read-only, check the embedder against the snapshot it will search, and
//! query with a similarity floor that refuses rather than guesses. It also exposes the rebuild
//! pipeline the `ragsnap` binary runs.
//!
//! ```no_run
//! use std::sync::Arc;
//! use ragsnap::{Answer, QueryOptions, Searcher, Snapshot};
//!
//! # fn main() -> ragsnap::Result<()> {
//! let store = ragsnap::Store::open_reader("ragsnap-store".as_ref())?;
//! let snapshot = Arc::new(Snapshot::open(&store, &store.head()?.id)?);
//! let embedder = ragsnap::open_embedder(&ragsnap::Config::default().runtime)?;
//! // Refuses with Error::EmbeddingVersionMismatch / Error::EmbeddingDrift on a different model.
//! let searcher = Searcher::new(snapshot, embedder)?;
//! let result = searcher.query("how do I retry failed jobs?", &QueryOptions::default())?;
//! match result.answer {
//!     Answer::Hits { hits } => println!("{} hits from {}", hits.len(), result.snapshot_id),
//!     Answer::NoConfidentMatch { best_score } => println!("refused; best score {best_score:?}"),
//! }
//! # Ok(())
//! # }
//! ```

mod bounded;
pub mod calibrate;
pub mod config;
mod diff;
mod error;
pub mod ingest;
mod open;
mod reader;
pub mod rebuild;
mod search;
mod snapshot;
pub mod sources;
pub mod validate;

pub use config::Config;
pub use diff::{diff, SnapshotDiff};
pub use error::{Error, Result};
pub use open::{embed_cache_path, open_searcher, EMBED_CACHE_FILE};
pub use ragsnap_chunk as chunk;
pub use ragsnap_core as core;
pub use ragsnap_embed as embed;
pub use ragsnap_embed::{Embedder, OnnxEmbedder, OnnxOptions};
pub use ragsnap_index as index;
pub use ragsnap_lexical as lexical;
pub use ragsnap_store as store;
pub use ragsnap_store::Store;
pub use reader::Reader;
pub use rebuild::embed::{CacheCheck, RejectedRow};
pub use rebuild::{
    prometheus_metrics, rebuild, rebuild_with, FailureKind, GateResult, Outcome, RebuildOptions, RebuildReport,
};
pub use search::{
    Answer, Floors, Hit, Mode, QueryOptions, QueryResult, Refusal, Searcher, Signals, CONFIDENCE_SPAN, DEFAULT_MAX_K,
    FALLBACK_FLOOR,
};
pub use snapshot::{load_check, open_head, open_store_writer, repair_store, verify_snapshot, Snapshot};

use std::sync::Arc;

/// Load the ONNX embedder the runtime config points at. Paths set in `runtime` are used as
/// given; unset ones come from `RAGSNAP_ORT_LIB` / `RAGSNAP_MODEL_DIR`, then from the `make setup`
/// cache. For the documented precedence (flag > env > file > default), take `runtime` from
/// [`Config::resolve`], which has already let the environment override the file.
pub fn open_embedder(runtime: &config::RuntimeConfig) -> Result<Arc<OnnxEmbedder>> {
    let model_dir = runtime.model_folder()?;
    let rt = embed::Runtime::resolve(runtime.ort_lib.as_deref(), model_dir.as_deref())?;
    let opts = OnnxOptions {
        intra_threads: runtime.intra_threads,
        batch_size: runtime.batch_size.max(1),
        bulk_sessions: runtime.bulk_sessions,
        ..OnnxOptions::default()
    };
    Ok(Arc::new(OnnxEmbedder::load(&rt, opts)?))
}
