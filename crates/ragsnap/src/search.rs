//! Queries: embed, search, apply the floor, de-duplicate, cap per source.

use crate::{Error, Result, Snapshot};
use ragsnap_core::{ContentId, EmbeddingFingerprint};
use ragsnap_embed::{canary, Embedder};
use ragsnap_lexical::{Fused, FusionConfig, HybridFloor};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Floor used when neither the caller nor the model descriptor sets one.
pub const FALLBACK_FLOOR: f32 = 0.45;
/// Hard maximum of `k` unless the caller raises it.
pub const DEFAULT_MAX_K: usize = 50;

/// Which retrieval signals answer a query.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Embedding similarity only.
    Dense,
    /// BM25 over the chunk texts only (no embedding of the query).
    Lexical,
    /// Both, fused by reciprocal rank; a hit is refused only when neither signal supports it.
    #[default]
    Hybrid,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "dense" => Ok(Mode::Dense),
            "lexical" => Ok(Mode::Lexical),
            "hybrid" => Ok(Mode::Hybrid),
            other => Err(format!("unknown mode {other:?} (dense, lexical or hybrid)")),
        }
    }
}

/// Per-query options.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryOptions {
    /// Retrieval mode (default hybrid).
    pub mode: Mode,
    /// Lexical support floor: the share of the query's IDF mass a chunk must contain for the
    /// lexical signal alone to support it (default [`ragsnap_lexical::DEFAULT_LEXICAL_FLOOR`]).
    pub lexical_floor: Option<f32>,
    /// Reciprocal-rank-fusion constant (default 10, chosen on the evaluation in eval/README.md).
    pub rrf_k: f32,
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
        QueryOptions {
            mode: Mode::Hybrid,
            lexical_floor: None,
            rrf_k: ragsnap_lexical::FusionConfig::default().rrf_k,
            k: 5,
            max_k: DEFAULT_MAX_K,
            floor: None,
            floor_percentile: None,
            ef: None,
            max_per_source: 3,
        }
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
    /// What each signal said about this hit.
    pub signals: Signals,
}

/// Which signals supported a hit, and their scores.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Signals {
    /// Signals that cleared their floor: `dense`, `lexical`, or both.
    pub supported_by: Vec<&'static str>,
    /// Cosine similarity to the query (absent in lexical mode).
    pub dense_score: Option<f32>,
    /// Rank in the dense candidate list, from 1.
    pub dense_rank: Option<u32>,
    /// BM25 score.
    pub lexical_score: Option<f32>,
    /// Share of the query's IDF mass the chunk contains, 0 to 1.
    pub lexical_coverage: Option<f32>,
    /// Rank in the lexical candidate list, from 1.
    pub lexical_rank: Option<u32>,
    /// Reciprocal-rank-fusion score (hybrid mode).
    pub fused_score: Option<f32>,
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
    /// Mode that answered (hybrid falls back to dense on a snapshot without a lexical index).
    pub mode: Mode,
    /// Cosine floor applied.
    pub floor: f32,
    /// Lexical coverage floor applied (lexical and hybrid modes).
    pub lexical_floor: Option<f32>,
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

    /// A searcher for [`Mode::Lexical`] queries that loads no model: other modes fail with an
    /// error instead of embedding. The snapshot must have a lexical index.
    pub fn lexical_only(snapshot: Arc<Snapshot>) -> Result<Self> {
        crate::open::check_lexical(&snapshot)?;
        let embedder = Arc::new(crate::open::NoModel::new(snapshot.manifest().fingerprint.clone()));
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
        let mode = self.mode_for(opts.mode)?;
        let v = if mode == Mode::Lexical {
            None
        } else {
            Some(
                self.embedder
                    .embed(&[text])?
                    .pop()
                    .ok_or_else(|| Error::Invalid("embedder returned nothing".into()))?,
            )
        };
        self.search(v.as_deref(), Some(text), mode, opts)
    }

    fn mode_for(&self, asked: Mode) -> Result<Mode> {
        match (asked, self.snapshot.lexical().is_some()) {
            (Mode::Lexical, false) => Err(Error::Invalid(format!(
                "snapshot {} has no lexical index (written before lexical retrieval existed)",
                self.snapshot.id()
            ))),
            (Mode::Hybrid, false) => Ok(Mode::Dense),
            (m, _) => Ok(m),
        }
    }

    /// Search with a vector the caller embedded; `fingerprint` must be the snapshot's. Dense
    /// mode only (the other modes need the query text).
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
        if let Some(i) = vector.iter().position(|x| !x.is_finite()) {
            return Err(Error::Invalid(format!("query vector component {i} is {}, not a finite number", vector[i])));
        }
        self.search(Some(vector), None, Mode::Dense, opts)
    }

    /// The floor `opts` asks for on this snapshot.
    pub fn effective_floor(&self, opts: &QueryOptions) -> f32 {
        let base = opts.floor.or_else(|| self.embedder.default_floor()).unwrap_or(FALLBACK_FLOOR);
        match opts.floor_percentile {
            Some(p) => base.max(percentile(&self.snapshot.manifest().calibration.top1_quantiles, p).unwrap_or(base)),
            None => base,
        }
    }

    fn search(&self, v: Option<&[f32]>, text: Option<&str>, mode: Mode, opts: &QueryOptions) -> Result<QueryResult> {
        let snap = &self.snapshot;
        let m = snap.manifest();
        let floor = self.effective_floor(opts);
        let lexical_floor = opts.lexical_floor.unwrap_or(ragsnap_lexical::DEFAULT_LEXICAL_FLOOR);
        let n = snap.vectors().len();
        // Fetch extra candidates: duplicates and per-source caps remove some.
        let fetch = (opts.k * 4).max(40).min(n);
        let ef = opts.ef.unwrap_or(m.index.ef_search).max(fetch);
        let dense: Vec<(u32, f32)> = match (mode, v) {
            (Mode::Lexical, _) | (_, None) => Vec::new(),
            (_, Some(v)) => snap.index().search(v, fetch, ef),
        };
        let lexical = match (mode, text, snap.lexical()) {
            (Mode::Dense, _, _) | (_, None, _) | (_, _, None) => Vec::new(),
            (_, Some(t), Some(lex)) => lex.search_hits(t, fetch),
        };
        let fused: Vec<Fused> = ragsnap_lexical::fuse_hits(
            &dense,
            &lexical,
            &FusionConfig { rrf_k: opts.rrf_k, ..FusionConfig::default() },
        );
        let best_score = dense.first().map(|c| c.1);
        let hybrid_floor = HybridFloor { dense: floor, lexical: lexical_floor };
        let mut hits = Vec::new();
        let mut seen: HashSet<ContentId> = HashSet::new();
        let mut per_source: HashMap<String, usize> = HashMap::new();
        for f in fused {
            if hits.len() == opts.k {
                break;
            }
            // The cosine of every candidate, also those only the lexical list found.
            let cosine =
                v.map(|v| f.dense_score.unwrap_or_else(|| ragsnap_index::dot(snap.vectors().get(f.row as usize), v)));
            let dense_ok = cosine.is_some_and(|c| c >= floor);
            let lexical_ok = f.lexical_coverage.is_some_and(|c| c >= lexical_floor);
            let keep = match mode {
                Mode::Dense => dense_ok,
                Mode::Lexical => lexical_ok,
                Mode::Hybrid => hybrid_floor.keep(cosine, f.lexical_coverage),
            };
            if !keep {
                if mode == Mode::Dense {
                    break; // dense candidates come best first: nothing later clears the floor
                }
                continue;
            }
            let c = snap.chunks().get(f.row as usize)?;
            if !seen.insert(c.content_id.clone()) {
                continue;
            }
            let count = per_source.entry(c.source_path.clone()).or_default();
            if *count >= opts.max_per_source {
                continue;
            }
            *count += 1;
            let mut supported_by = Vec::new();
            if dense_ok {
                supported_by.push("dense");
            }
            if lexical_ok {
                supported_by.push("lexical");
            }
            let signals = Signals {
                supported_by,
                dense_score: cosine,
                dense_rank: f.dense_rank,
                lexical_score: f.lexical_score,
                lexical_coverage: f.lexical_coverage,
                lexical_rank: f.lexical_rank,
                fused_score: (mode == Mode::Hybrid).then_some(f.score),
            };
            let score = match mode {
                Mode::Lexical => f.lexical_coverage.unwrap_or(0.0),
                _ => cosine.unwrap_or(0.0),
            };
            hits.push(Hit {
                score,
                text: c.text,
                source_path: c.source_path,
                url: c.url,
                header_path: c.header_path,
                content_id: c.content_id,
                signals,
            });
        }
        let answer = if hits.is_empty() { Answer::NoConfidentMatch { best_score } } else { Answer::Hits { hits } };
        Ok(QueryResult {
            snapshot_id: snap.id().to_string(),
            fingerprint_id: m.fingerprint.id(),
            mode,
            floor,
            lexical_floor: (mode != Mode::Dense).then_some(lexical_floor),
            answer,
        })
    }
}

/// Every option in range ([`QueryOptions::validate`]), before any work is done.
fn check_k(opts: &QueryOptions) -> Result<()> {
    opts.validate()
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
