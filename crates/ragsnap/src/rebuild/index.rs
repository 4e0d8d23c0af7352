//! Stage 5 of the rebuild, build indexes: the vector index tuned against exact search to reach
//! the recall target (`ragsnap_index::tune`), and the lexical (BM25) index over the same rows.
//! Both run detached so that a cancel request is answered while they work.
//!
//! When head has an HNSW graph made with the same model and index settings, the graph is
//! updated instead of built again: head's graph is loaded, rows whose vectors it already holds
//! keep their points, new rows are inserted and points of rows that left are marked deleted
//! (`ragsnap_index::plan_update`, `HnswIndex::updated`). The updated graph is measured like a
//! built one (recall@k against exact search over the new rows); it is built from scratch instead
//! when deleted points would pass `[index] update_max_deleted_share` or when the updated graph
//! misses the recall target. The report says which happened and why.

use super::check_cancel;
use crate::config::Config;
use crate::Result;
use ragsnap_core::Chunk;
use ragsnap_index::{HnswIndex, HnswParams, Index, IndexKind, TuneReport, VectorSet};
use ragsnap_lexical::LexicalIndex;
use serde::Serialize;
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
    /// Whether head's graph was updated or a graph built, and why.
    pub update: IndexUpdate,
}

/// How the vector index of a build was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IndexMode {
    /// Built from scratch over the rows (or exact search chosen).
    #[default]
    Rebuilt,
    /// Head's graph, with new rows inserted and removed ones marked deleted.
    Updated,
}

impl IndexMode {
    /// The name in reports and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            IndexMode::Rebuilt => "rebuilt",
            IndexMode::Updated => "updated",
        }
    }
}

/// What the index stage did with head's graph.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct IndexUpdate {
    /// `updated` or `rebuilt`.
    pub mode: IndexMode,
    /// Why (for `rebuilt`, what ruled the update out).
    pub reason: String,
    /// Points inserted into head's graph (updated only).
    pub points_inserted: usize,
    /// Live points of head's graph this build marked deleted (updated only).
    pub points_deleted: usize,
    /// Deleted points as a share of the graph written (0 for a graph built from scratch).
    pub deleted_share: f64,
}

/// Head's graph, for updating: the loaded index and the payload it was loaded from.
pub(crate) struct HeadGraph<'a> {
    /// The graph as head serves it (points, vectors, id map).
    pub index: &'a HnswIndex,
    /// Head's `index.hnsw` payload (checksum verified).
    pub payload: ragsnap_store::Payload,
    /// Head's embedding fingerprint id.
    pub fingerprint_id: String,
    /// Head's recall target and `k`.
    pub target_recall: f64,
    /// `k` of head's recall@k.
    pub k: usize,
}

/// Build both indexes over `rows` (one per chunk of `chunks`), updating `head`'s graph when
/// it can be.
pub(crate) fn build(
    rows: &[Vec<f32>],
    dims: usize,
    chunks: &Arc<Vec<Chunk>>,
    config: &Config,
    cancel: Option<&AtomicBool>,
    fingerprint_id: &str,
    head: Option<HeadGraph<'_>>,
) -> Result<Indexes> {
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    let set = Arc::new(VectorSet::new(dims, flat)?);
    let (index, tuned, update) = match update_graph(&set, config, cancel, fingerprint_id, head)? {
        Ok((index, tuned, update)) => (index, tuned, update),
        Err(reason) => {
            let (tune_set, tune_cfg) = (set.clone(), config.index.clone());
            let (index, tuned) = crate::bounded::run_detached(cancel, move |stop| {
                ragsnap_index::tune_stoppable(tune_set, &tune_cfg, stop)
            })??;
            (index, tuned, IndexUpdate { reason, ..IndexUpdate::default() })
        }
    };
    tracing::info!(mode = update.mode.as_str(), reason = %update.reason, "vector index");
    let lexical_input = chunks.clone();
    let lexical = crate::bounded::run_detached(cancel, move |_| LexicalIndex::from_chunks(&lexical_input))?;
    check_cancel(cancel)?;
    Ok(Indexes { set, index, tuned, lexical, update })
}

type Updated = (Index, TuneReport, IndexUpdate);

/// Head's graph updated to `set`, or why not (`Err(reason)`: build from scratch).
fn update_graph(
    set: &Arc<VectorSet>,
    config: &Config,
    cancel: Option<&AtomicBool>,
    fingerprint_id: &str,
    head: Option<HeadGraph<'_>>,
) -> Result<std::result::Result<Updated, String>> {
    let cfg = &config.index;
    let Some(head) = head else { return Ok(Err("no HNSW graph in head to update".into())) };
    let params = head.index.params();
    let refuse = |why: String| Ok(Err(why));
    if cfg.update_max_deleted_share <= 0.0 {
        return refuse("updates are off ([index] update_max_deleted_share = 0)".into());
    }
    if head.fingerprint_id != fingerprint_id {
        return refuse(format!("embedding model changed ({} → {fingerprint_id})", head.fingerprint_id));
    }
    if !cfg.ladder.contains(&HnswParams { m: params.m, ef_construction: params.ef_construction })
        || head.target_recall != cfg.target_recall
        || head.k != cfg.k.max(1)
    {
        return refuse("index settings changed since head's graph was built".into());
    }
    if set.len() < cfg.exact_below {
        return refuse(format!("{} rows: below [index] exact_below, exact search", set.len()));
    }
    let plan = ragsnap_index::plan_update(head.index.vectors(), head.index.id_map(), set)?;
    let share = plan.map.deleted_share();
    if share > cfg.update_max_deleted_share {
        return refuse(format!(
            "deleted points would be {:.1}% of the graph (limit {:.1}%)",
            share * 100.0,
            cfg.update_max_deleted_share * 100.0
        ));
    }
    let (inserted, deleted) = (plan.insert.len(), plan.newly_deleted);
    // On this thread: an update is a small share of a build, and cancel is looked at between
    // its steps (and between the ef_search measurements).
    let graph = head.index.updated(&head.payload, set, plan)?;
    drop(head);
    check_cancel(cancel)?;
    let no_cancel = AtomicBool::new(false);
    let measured = ragsnap_index::measure_updated(graph, set, cfg, cancel.unwrap_or(&no_cancel));
    check_cancel(cancel)?;
    let (index, tuned) = measured?;
    if tuned.recall < tuned.target_recall {
        return refuse(format!(
            "the updated graph reached recall@{} {:.4}, below the target {:.3}",
            tuned.k, tuned.recall, tuned.target_recall
        ));
    }
    debug_assert_eq!(index.kind(), IndexKind::Hnsw);
    let update = IndexUpdate {
        mode: IndexMode::Updated,
        reason: format!("head's graph: {inserted} points inserted, {deleted} marked deleted"),
        points_inserted: inserted,
        points_deleted: deleted,
        deleted_share: share,
    };
    Ok(Ok((index, tuned, update)))
}
