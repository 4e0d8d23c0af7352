//! Queries: embed, search, apply the floor, de-duplicate, cap per source.

use crate::{Error, Result, Snapshot};
use ragsnap_core::{ContentId, EmbeddingFingerprint};
use ragsnap_embed::{canary, Embedder};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Floor used when neither the caller nor the model descriptor sets one.
pub const FALLBACK_FLOOR: f32 = 0.45;
/// Hard maximum of `k` unless the caller raises it.
pub const DEFAULT_MAX_K: usize = 50;

/// Per-query options.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryOptions {
    /// Hits wanted.
    pub k: usize,
    /// Hard maximum of `k`; a larger `k` is an error, not silently clipped.
    pub max_k: usize,
    /// Similarity floor; `None` = the model's default.
    pub floor: Option<f32>,
    /// Calibrated floor: a percentile (0–100) of the snapshot's recorded top-1 score
    /// distribution. When set, the effective floor is the larger of the two.
    pub floor_percentile: Option<f32>,
    /// `ef_search`; `None` = the tuned value.
    pub ef: Option<usize>,
    /// Most hits from one source page.
    pub max_per_source: usize,
}

impl Default for QueryOptions {
    fn default() -> Self {
        QueryOptions { k: 5, max_k: DEFAULT_MAX_K, floor: None, floor_percentile: None, ef: None, max_per_source: 3 }
    }
}

/// One hit.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Hit {
    /// Cosine similarity.
    pub score: f32,
    /// Chunk text (header path line, blank line, body).
    pub text: String,
    /// Source document path.
    pub source_path: String,
    /// Source URL.
    pub url: Option<String>,
    /// Header path.
    pub header_path: Vec<String>,
    /// Content id.
    pub content_id: ContentId,
}

/// The answer to a query.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Answer {
    /// Hits at or above the floor, best first.
    Hits {
        /// The hits.
        hits: Vec<Hit>,
    },
    /// Nothing cleared the floor.
    NoConfidentMatch {
        /// Best score seen (None on an empty snapshot).
        best_score: Option<f32>,
    },
}

/// A query's result: the answer and which snapshot gave it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QueryResult {
    /// Snapshot that answered.
    pub snapshot_id: String,
    /// Embedding identity used.
    pub fingerprint_id: String,
    /// Floor applied.
    pub floor: f32,
    /// The answer.
    #[serde(flatten)]
    pub answer: Answer,
}

/// Searches one snapshot with an embedder checked against it. `Send + Sync`.
pub struct Searcher {
    snapshot: Arc<Snapshot>,
    embedder: Arc<dyn Embedder>,
}

impl std::fmt::Debug for Searcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Searcher")
            .field("snapshot", &self.snapshot.id())
            .field("embedder", &self.embedder.fingerprint().id())
            .finish()
    }
}

impl Searcher {
    /// Check `embedder` against the snapshot (fingerprint, then canaries) and build a searcher.
    pub fn new(snapshot: Arc<Snapshot>, embedder: Arc<dyn Embedder>) -> Result<Self> {
        let m = snapshot.manifest();
        canary::verify(embedder.as_ref(), &m.fingerprint, &m.canaries)?;
        Ok(Searcher { snapshot, embedder })
    }

    /// The snapshot searched.
    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.snapshot
    }

    /// Embed `text` and search.
    pub fn query(&self, text: &str, opts: &QueryOptions) -> Result<QueryResult> {
        if text.trim().is_empty() {
            return Err(Error::Invalid("empty query".into()));
        }
        check_k(opts)?;
        let v =
            self.embedder.embed(&[text])?.pop().ok_or_else(|| Error::Invalid("embedder returned nothing".into()))?;
        self.search(&v, opts)
    }

    /// Search with a vector the caller embedded; `fingerprint` must be the snapshot's.
    pub fn query_vector(
        &self,
        vector: &[f32],
        fingerprint: &EmbeddingFingerprint,
        opts: &QueryOptions,
    ) -> Result<QueryResult> {
        let m = self.snapshot.manifest();
        if fingerprint != &m.fingerprint {
            return Err(Error::EmbeddingVersionMismatch { index: m.fingerprint.id(), embedder: fingerprint.id() });
        }
        if vector.len() != m.fingerprint.dims {
            return Err(Error::DimensionMismatch { expected: m.fingerprint.dims, found: vector.len() });
        }
        check_k(opts)?;
        self.search(vector, opts)
    }

    /// The floor `opts` asks for on this snapshot.
    pub fn effective_floor(&self, opts: &QueryOptions) -> f32 {
        let base = opts.floor.or_else(|| self.embedder.default_floor()).unwrap_or(FALLBACK_FLOOR);
        match opts.floor_percentile {
            Some(p) => base.max(percentile(&self.snapshot.manifest().calibration.top1_quantiles, p).unwrap_or(base)),
            None => base,
        }
    }

    fn search(&self, v: &[f32], opts: &QueryOptions) -> Result<QueryResult> {
        let snap = &self.snapshot;
        let m = snap.manifest();
        let floor = self.effective_floor(opts);
        let n = snap.vectors().len();
        // Fetch extra candidates: duplicates and per-source caps remove some.
        let fetch = (opts.k * 4).max(40).min(n);
        let ef = opts.ef.unwrap_or(m.index.ef_search).max(fetch);
        let candidates = snap.index().search(v, fetch, ef);
        let best_score = candidates.first().map(|c| c.1);
        let mut hits = Vec::new();
        let mut seen: HashSet<ContentId> = HashSet::new();
        let mut per_source: HashMap<String, usize> = HashMap::new();
        for (row, score) in candidates {
            if score < floor || hits.len() == opts.k {
                break;
            }
            let c = snap.chunks().get(row as usize)?;
            if !seen.insert(c.content_id.clone()) {
                continue;
            }
            let count = per_source.entry(c.source_path.clone()).or_default();
            if *count >= opts.max_per_source {
                continue;
            }
            *count += 1;
            hits.push(Hit {
                score,
                text: c.text,
                source_path: c.source_path,
                url: c.url,
                header_path: c.header_path,
                content_id: c.content_id,
            });
        }
        let answer = if hits.is_empty() { Answer::NoConfidentMatch { best_score } } else { Answer::Hits { hits } };
        Ok(QueryResult { snapshot_id: snap.id().to_string(), fingerprint_id: m.fingerprint.id(), floor, answer })
    }
}

fn check_k(opts: &QueryOptions) -> Result<()> {
    if opts.k == 0 || opts.k > opts.max_k {
        return Err(Error::Invalid(format!("k must be between 1 and {} (got {})", opts.max_k, opts.k)));
    }
    Ok(())
}

/// Linear interpolation into 21 quantiles (0%, 5%, …, 100%).
fn percentile(q: &[f32], p: f32) -> Option<f32> {
    if q.len() < 2 {
        return None;
    }
    let pos = (p.clamp(0.0, 100.0) / 100.0) * (q.len() - 1) as f32;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(q.len() - 1);
    Some(q[lo] + (q[hi] - q[lo]) * (pos - lo as f32))
}

#[cfg(test)]
mod tests {
    #[test]
    fn percentile_interpolates() {
        let q: Vec<f32> = (0..=20).map(|i| i as f32 / 20.0).collect();
        assert_eq!(super::percentile(&q, 50.0), Some(0.5));
        assert!((super::percentile(&q, 52.5).unwrap() - 0.525).abs() < 1e-6);
        assert_eq!(super::percentile(&[], 50.0), None);
    }
}
