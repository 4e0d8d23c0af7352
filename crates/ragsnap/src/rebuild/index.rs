//! Stage 5 of the rebuild, build indexes: the vector index tuned against exact search to reach
//! the recall target (`ragsnap_index::tune`), and the lexical (BM25) index over the same rows.
//! Both run detached so that a cancel request is answered while they work.

use super::check_cancel;
use crate::config::Config;
use crate::Result;
use ragsnap_core::Chunk;
use ragsnap_index::{Index, TuneReport, VectorSet};
use ragsnap_lexical::LexicalIndex;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// The indexes of a build.
pub(crate) struct Indexes {
    /// The vectors, shared with the index.
    pub set: Arc<VectorSet>,
    /// The vector index.
    pub index: Index,
    /// What tuning measured and chose.
    pub tuned: TuneReport,
    /// The BM25 index, rows aligned with the chunk table.
    pub lexical: LexicalIndex,
}

/// Build both indexes over `rows` (one per chunk of `chunks`).
pub(crate) fn build(
    rows: &[Vec<f32>],
    dims: usize,
    chunks: &Arc<Vec<Chunk>>,
    config: &Config,
    cancel: Option<&AtomicBool>,
) -> Result<Indexes> {
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    let set = Arc::new(VectorSet::new(dims, flat)?);
    let (tune_set, tune_cfg) = (set.clone(), config.index.clone());
    let (index, tuned) =
        crate::bounded::run_detached(cancel, move |stop| ragsnap_index::tune_stoppable(tune_set, &tune_cfg, stop))??;
    let lexical_input = chunks.clone();
    let lexical = crate::bounded::run_detached(cancel, move |_| LexicalIndex::from_chunks(&lexical_input))?;
    check_cancel(cancel)?;
    Ok(Indexes { set, index, tuned, lexical })
}
