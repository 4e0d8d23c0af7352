//! Vector search for ragsnap: exact (brute force) and HNSW (`hnsw_rs`), with parameters tuned
//! against exact search to a recall target.
//!
//! Vectors are assumed L2-normalised; scores are dot products (= cosine). The HNSW distance is
//! [`DotDistance`], `max(0, 1 - dot)`: clamped, so near-duplicate vectors whose dot product
//! rounds a hair above 1 never produce a negative distance.
//!
//! ```
//! use ragsnap_index::{exact_search, VectorSet};
//! let set = VectorSet::new(2, vec![1.0, 0.0, 0.0, 1.0]).unwrap();
//! let hits = exact_search(&set, &[0.6, 0.8], 1);
//! assert_eq!(hits[0].0, 1);
//! ```

mod dump;
mod flat;
mod hnsw;
mod idmap;
mod simd;
mod tune;

pub use hnsw::{DotDistance, HnswIndex, HnswParams};
pub use idmap::{plan_update, IdMap, UpdatePlan};
pub use tune::{
    measure_updated, tune, tune_best_effort, tune_stoppable, IndexKind, TuneConfig, TuneReport,
    DEFAULT_UPDATE_MAX_DELETED_SHARE,
};

use std::sync::Arc;

/// Errors from building, tuning or loading an index.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// Vector data is inconsistent.
    #[error("vector data: {0}")]
    Vectors(String),
    /// The recall target could not be reached with any parameters tried.
    #[error("recall target {target:.3} not reached: best recall@{k} was {best:.4} (M={m}, ef_construction={ef_construction}, ef_search={ef_search})")]
    RecallNotReached {
        /// Target recall.
        target: f64,
        /// Best recall measured.
        best: f64,
        /// k used.
        k: usize,
        /// M of the best attempt.
        m: usize,
        /// ef_construction of the best attempt.
        ef_construction: usize,
        /// ef_search of the best attempt.
        ef_search: usize,
    },
    /// Dumping or loading the HNSW graph failed.
    #[error("hnsw graph: {0}")]
    Graph(String),
    /// Tuning was stopped by its caller ([`tune_stoppable`]).
    #[error("index tuning stopped")]
    Stopped,
}

/// Result alias for this crate.
pub type Result<T, E = IndexError> = std::result::Result<T, E>;

/// Row-major `f32` vectors of one dimension.
#[derive(Clone, Debug, PartialEq)]
pub struct VectorSet {
    dims: usize,
    data: Vec<f32>,
}

impl VectorSet {
    /// Wrap `data` (length a multiple of `dims`).
    pub fn new(dims: usize, data: Vec<f32>) -> Result<Self> {
        if dims == 0 || !data.len().is_multiple_of(dims) {
            return Err(IndexError::Vectors(format!(
                "{} floats is not a whole number of {dims}-dim vectors",
                data.len()
            )));
        }
        Ok(VectorSet { dims, data })
    }

    /// Dimension.
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.data.len() / self.dims
    }

    /// Whether there are no vectors.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Vector `i`.
    pub fn get(&self, i: usize) -> &[f32] {
        &self.data[i * self.dims..(i + 1) * self.dims]
    }

    /// All floats, row-major.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }
}

#[doc(hidden)]
pub use simd::dot_avx2_only;
pub use simd::{dot, dot_kernel, dot_portable};

/// Exact top-`k` by dot product: `(row, score)`, best first, ties by row.
pub fn exact_search(set: &VectorSet, query: &[f32], k: usize) -> Vec<(u32, f32)> {
    let mut scored: Vec<(u32, f32)> = (0..set.len()).map(|i| (i as u32, dot(set.get(i), query))).collect();
    let k = k.min(scored.len());
    if k == 0 {
        return Vec::new();
    }
    let cmp = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    scored.select_nth_unstable_by(k - 1, cmp);
    scored.truncate(k);
    scored.sort_by(cmp);
    scored
}

/// A searchable index over a [`VectorSet`].
pub enum Index {
    /// Brute force over every vector (small snapshots).
    Exact(Arc<VectorSet>),
    /// An HNSW graph.
    Hnsw(HnswIndex),
}

impl Index {
    /// Top-`k` rows for `query` as `(row, score)`, best first. `ef` is ignored by exact search.
    pub fn search(&self, query: &[f32], k: usize, ef: usize) -> Vec<(u32, f32)> {
        match self {
            Index::Exact(set) => exact_search(set, query, k),
            Index::Hnsw(h) => h.search(query, k, ef),
        }
    }

    /// Which kind this is.
    pub fn kind(&self) -> IndexKind {
        match self {
            Index::Exact(_) => IndexKind::Exact,
            Index::Hnsw(_) => IndexKind::Hnsw,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_naive_for_odd_lengths() {
        let a: Vec<f32> = (0..19).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..19).map(|i| 1.0 - i as f32 * 0.1).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - naive).abs() < 1e-4);
    }

    #[test]
    fn exact_search_orders_by_score() {
        let set = VectorSet::new(2, vec![1.0, 0.0, 0.0, 1.0, 0.7, 0.7]).unwrap();
        let hits = exact_search(&set, &[1.0, 0.1], 3);
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), vec![0, 2, 1]);
        assert!(VectorSet::new(3, vec![1.0; 4]).is_err());
    }
}
