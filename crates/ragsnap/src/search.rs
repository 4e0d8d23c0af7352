//! Queries: embed, search, apply the floors, de-duplicate, cap per source; every hit says why it
//! was kept and how confident the floors are in it, every refusal which signal fell short.

use crate::{Error, Result, Snapshot};
use ragsnap_core::{ContentId, EmbeddingFingerprint};
use ragsnap_embed::{canary, Embedder};
use ragsnap_lexical::{
    identifier_support, lexical_supports, query_identifiers, Fused, FusionConfig, HybridFloor, IdentifierSupport,
    QueryIdentifier,
};
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
    /// How confident the floors are in this hit, 0 to 1: the better of its signals, each 0.5
    /// exactly at its floor, rising linearly to 1 at a cosine [`CONFIDENCE_SPAN`] above the
    /// cosine floor or at full lexical coverage, and falling to 0 at [`CONFIDENCE_SPAN`] below
    /// it or no coverage. Lexical evidence for a hit that misses an identifier of the query
    /// counts half and never reaches 0.5. A returned hit is ≥ 0.5; an application can demand
    /// more.
    pub confidence: f32,
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
    /// Cosine minus the cosine floor that applied to this hit (the identifier floor when the
    /// query names an identifier the hit does not hold); negative when the dense signal fell
    /// short and the lexical one carried the hit.
    pub cosine_margin: Option<f32>,
    /// Lexical coverage minus the lexical floor (lexical and hybrid modes).
    pub coverage_margin: Option<f32>,
    /// Identifiers of the query the hit holds, in the form found (whole name or last component).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exact_matches: Vec<String>,
    /// Identifiers of the query the hit does not hold (as written in the query).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_identifiers: Vec<String>,
    /// Words of the query (two characters or more, lowercased) the hit holds as whole words.
    pub matched_terms: Vec<String>,
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

/// Why a query was refused: which signal fell short, and by how much.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Refusal {
    /// The signals that fell short: `dense` (no candidate's cosine reached its floor),
    /// `lexical` (no candidate's coverage reached the lexical floor), `identifier` (the query
    /// names identifiers no candidate holds, so lexical evidence could not count and the
    /// cosine had to reach the identifier floor).
    pub shortfall: Vec<&'static str>,
    /// Best cosine among the candidates (dense and hybrid modes).
    pub best_cosine: Option<f32>,
    /// Best lexical coverage among the candidates (lexical and hybrid modes).
    pub best_coverage: Option<f32>,
    /// Identifiers of the query that no candidate holds.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_identifiers: Vec<String>,
    /// Best confidence among the candidates (below 0.5, or the query would have been answered).
    pub best_confidence: f32,
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
    /// Cosine floor for hits that miss an identifier of the query (hybrid mode, when the query
    /// names identifiers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identifier_floor: Option<f32>,
    /// Where the floors came from: `caller` (the options set `floor`), `snapshot` (calibrated at
    /// build time, recorded in the manifest) or `model` (the model's default).
    pub floor_source: &'static str,
    /// Identifier-like terms found in the query (as written).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub identifiers: Vec<String>,
    /// Why nothing was returned (only with `NoConfidentMatch`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refusal: Option<Refusal>,
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

    /// The embedder queries are embedded with (a stand-in without a model for a lexical-only
    /// searcher). A caller that follows head opens the next snapshot with the same embedder.
    pub fn embedder(&self) -> &Arc<dyn Embedder> {
        &self.embedder
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
                    .embed_queries(&[text])?
                    .pop()
                    .ok_or_else(|| Error::Invalid("embedder returned nothing".into()))?,
            )
        };
        self.search(v.as_deref(), Some(text), mode, opts)
    }

    /// [`query`](Self::query) with the query's vector already computed (for callers that embed
    /// many queries in batches, such as the evaluation): the same floors, fusion and refusal
    /// rules. `fingerprint` is the embedder that computed `vector` and must be the snapshot's.
    /// `vector` is ignored in lexical mode.
    pub fn query_embedded(
        &self,
        text: &str,
        vector: &[f32],
        fingerprint: &EmbeddingFingerprint,
        opts: &QueryOptions,
    ) -> Result<QueryResult> {
        if text.trim().is_empty() {
            return Err(Error::Invalid("empty query".into()));
        }
        check_k(opts)?;
        let m = self.snapshot.manifest();
        if fingerprint != &m.fingerprint {
            return Err(Error::EmbeddingVersionMismatch { index: m.fingerprint.id(), embedder: fingerprint.id() });
        }
        let dims = m.fingerprint.dims;
        if vector.len() != dims {
            return Err(Error::DimensionMismatch { expected: dims, found: vector.len() });
        }
        if let Some(i) = vector.iter().position(|x| !x.is_finite()) {
            return Err(Error::Invalid(format!("query vector component {i} is {}, not a finite number", vector[i])));
        }
        let mode = self.mode_for(opts.mode)?;
        let v = (mode != Mode::Lexical).then_some(vector);
        self.search(v, Some(text), mode, opts)
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
        self.floors(opts).dense
    }

    /// Every floor `opts` asks for on this snapshot: the caller's, else the snapshot's
    /// calibrated ones (manifest `calibration.refusal`), else the model's default.
    pub fn floors(&self, opts: &QueryOptions) -> Floors {
        let calibrated = self.snapshot.manifest().calibration.refusal.as_ref();
        let (base, source) = match (opts.floor, calibrated) {
            (Some(f), _) => (f, "caller"),
            (None, Some(c)) => (c.dense_floor, "snapshot"),
            (None, None) => (self.embedder.default_floor().unwrap_or(FALLBACK_FLOOR), "model"),
        };
        let dense = match opts.floor_percentile {
            Some(p) => base.max(percentile(&self.snapshot.manifest().calibration.top1_quantiles, p).unwrap_or(base)),
            None => base,
        };
        // The identifier floor keeps its calibrated distance above the dense floor, so a caller
        // who moves the floor moves both.
        let identifier = dense + calibrated.map_or(0.0, |c| (c.identifier_floor - c.dense_floor).max(0.0));
        let lexical = opts
            .lexical_floor
            .or(calibrated.map(|c| c.lexical_floor))
            .unwrap_or(ragsnap_lexical::DEFAULT_LEXICAL_FLOOR);
        Floors { dense, identifier, lexical, source }
    }

    fn search(&self, v: Option<&[f32]>, text: Option<&str>, mode: Mode, opts: &QueryOptions) -> Result<QueryResult> {
        let snap = &self.snapshot;
        let m = snap.manifest();
        let floors = self.floors(opts);
        let (floor, lexical_floor) = (floors.dense, floors.lexical);
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
        // Identifiers matter where lexical evidence does (lexical and hybrid modes).
        let identifiers: Vec<QueryIdentifier> = match (mode, text) {
            (Mode::Dense, _) | (_, None) => Vec::new(),
            (_, Some(t)) => query_identifiers(t),
        };
        let words = text.map(query_words).unwrap_or_default();
        let hybrid_floor = HybridFloor { dense: floor, lexical: lexical_floor };
        let mut hits = Vec::new();
        let mut seen: HashSet<ContentId> = HashSet::new();
        let mut per_source: HashMap<String, usize> = HashMap::new();
        // What the refusal reports when nothing is kept.
        let mut best_cosine: Option<f32> = None;
        let mut best_coverage: Option<f32> = None;
        let mut best_confidence = 0f32;
        let mut held: HashSet<String> = HashSet::new();
        for f in fused {
            if hits.len() == opts.k {
                break;
            }
            // The cosine of every candidate, also those only the lexical list found.
            let cosine =
                v.map(|v| f.dense_score.unwrap_or_else(|| ragsnap_index::dot(snap.vectors().get(f.row as usize), v)));
            // Which identifiers of the query the candidate holds (its text is read only then).
            let chunk = if identifiers.is_empty() { None } else { Some(snap.chunks().get(f.row as usize)?) };
            let support = match &chunk {
                Some(c) => identifier_support(&c.text, &identifiers),
                None => IdentifierSupport::default(),
            };
            if chunk.is_some() {
                for id in identifiers.iter().filter(|id| !support.missing.contains(&id.text)) {
                    held.insert(id.text.clone());
                }
            }
            let dense_floor_here = if mode == Mode::Hybrid && !support.complete() { floors.identifier } else { floor };
            let dense_ok = cosine.is_some_and(|c| c >= dense_floor_here);
            let lexical_ok = lexical_supports(f.lexical_coverage, lexical_floor, &support);
            let keep = match mode {
                Mode::Dense => dense_ok,
                Mode::Lexical => lexical_ok,
                Mode::Hybrid => hybrid_floor.keep_identified(cosine, f.lexical_coverage, &support, floors.identifier),
            };
            let confidence = confidence(mode, cosine, dense_floor_here, f.lexical_coverage, lexical_floor, &support);
            best_cosine = max_opt(best_cosine, cosine);
            best_coverage = max_opt(best_coverage, f.lexical_coverage);
            if !keep {
                best_confidence = best_confidence.max(confidence);
                if mode == Mode::Dense {
                    break; // dense candidates come best first: nothing later clears the floor
                }
                continue;
            }
            let c = match chunk {
                Some(c) => c,
                None => snap.chunks().get(f.row as usize)?,
            };
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
            let lower = c.text.to_lowercase();
            let signals = Signals {
                supported_by,
                dense_score: cosine,
                dense_rank: f.dense_rank,
                lexical_score: f.lexical_score,
                lexical_coverage: f.lexical_coverage,
                lexical_rank: f.lexical_rank,
                fused_score: (mode == Mode::Hybrid).then_some(f.score),
                cosine_margin: cosine.map(|c| c - dense_floor_here),
                coverage_margin: f.lexical_coverage.filter(|_| mode != Mode::Dense).map(|c| c - lexical_floor),
                exact_matches: support.matched,
                missing_identifiers: support.missing,
                matched_terms: words.iter().filter(|w| ragsnap_lexical::holds_word(&lower, w)).cloned().collect(),
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
                confidence,
            });
        }
        let (answer, refusal) = if hits.is_empty() {
            let missing_identifiers: Vec<String> =
                identifiers.iter().filter(|i| !held.contains(&i.text)).map(|i| i.text.clone()).collect();
            let mut shortfall = Vec::new();
            if mode != Mode::Lexical {
                shortfall.push("dense");
            }
            if mode != Mode::Dense {
                shortfall.push("lexical");
            }
            if !missing_identifiers.is_empty() || (!identifiers.is_empty() && mode != Mode::Dense) {
                shortfall.push("identifier");
            }
            let refusal = Refusal { shortfall, best_cosine, best_coverage, missing_identifiers, best_confidence };
            (Answer::NoConfidentMatch { best_score }, Some(refusal))
        } else {
            (Answer::Hits { hits }, None)
        };
        Ok(QueryResult {
            snapshot_id: snap.id().to_string(),
            fingerprint_id: m.fingerprint.id(),
            mode,
            floor,
            lexical_floor: (mode != Mode::Dense).then_some(lexical_floor),
            identifier_floor: (mode == Mode::Hybrid && !identifiers.is_empty()).then_some(floors.identifier),
            floor_source: floors.source,
            identifiers: identifiers.into_iter().map(|i| i.text).collect(),
            refusal,
            answer,
        })
    }
}

/// The floors a query is held to; see [`Searcher::floors`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Floors {
    /// Cosine floor.
    pub dense: f32,
    /// Cosine floor for a hit that misses an identifier of the query (hybrid mode).
    pub identifier: f32,
    /// Lexical coverage floor.
    pub lexical: f32,
    /// `caller`, `snapshot` or `model`.
    pub source: &'static str,
}

fn max_opt(a: Option<f32>, b: Option<f32>) -> Option<f32> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// Distinct words of the query, lowercased, two characters or more.
fn query_words(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in text.split(|c: char| !(c.is_alphanumeric() || c == '_')).filter(|w| w.chars().nth(1).is_some()) {
        let w = w.to_lowercase();
        if !out.contains(&w) && out.len() < 64 {
            out.push(w);
        }
    }
    out
}

/// Cosine this far above its floor is full confidence; this far below it, none.
pub const CONFIDENCE_SPAN: f32 = 0.2;
/// Just below one half: what a signal that fell short can reach at most.
const BELOW: f32 = 0.499_99;

/// The confidence of one signal against its floor, 0 to 1, 0.5 exactly at the floor.
fn dense_confidence(cosine: f32, floor: f32) -> f32 {
    if cosine >= floor {
        0.5 + 0.5 * ((cosine - floor) / CONFIDENCE_SPAN).min(1.0)
    } else {
        (0.5 * ((cosine - (floor - CONFIDENCE_SPAN)) / CONFIDENCE_SPAN).max(0.0)).min(BELOW)
    }
}

fn lexical_confidence(coverage: f32, floor: f32, support: &IdentifierSupport) -> f32 {
    if lexical_supports(Some(coverage), floor, support) {
        if floor >= 1.0 {
            1.0
        } else {
            0.5 + 0.5 * ((coverage - floor) / (1.0 - floor)).clamp(0.0, 1.0)
        }
    } else {
        // Short of the floor, or missing an identifier: below one half, and halved again for a
        // missing identifier (the sub-words it shares are weak evidence).
        let c = 0.5 * (coverage / floor.max(f32::MIN_POSITIVE)).clamp(0.0, 1.0);
        (if support.complete() { c } else { c * 0.5 }).min(BELOW)
    }
}

/// A hit's confidence: the better of its signals' confidences in the modes that use them. A
/// hit is kept exactly when this is at least 0.5.
fn confidence(
    mode: Mode,
    cosine: Option<f32>,
    dense_floor: f32,
    coverage: Option<f32>,
    lexical_floor: f32,
    support: &IdentifierSupport,
) -> f32 {
    let d = cosine.map_or(0.0, |c| dense_confidence(c, dense_floor));
    let l = coverage.map_or(0.0, |c| lexical_confidence(c, lexical_floor, support));
    match mode {
        Mode::Dense => d,
        Mode::Lexical => l,
        Mode::Hybrid => d.max(l),
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

    #[test]
    fn confidence_is_one_half_exactly_at_the_floor_and_below_it_when_refused() {
        use super::*;
        let none = IdentifierSupport::default();
        assert_eq!(dense_confidence(0.45, 0.45), 0.5);
        assert_eq!(dense_confidence(0.65, 0.45), 1.0);
        assert!(dense_confidence(0.4499, 0.45) < 0.5);
        assert_eq!(dense_confidence(0.1, 0.45), 0.0);
        assert_eq!(lexical_confidence(0.7, 0.7, &none), 0.5);
        assert_eq!(lexical_confidence(1.0, 0.7, &none), 1.0);
        let missing = IdentifierSupport { matched: vec![], missing: vec!["a_b".into()] };
        assert!(lexical_confidence(1.0, 0.7, &missing) < 0.3);
        // Kept ⇔ confidence ≥ 0.5, over a grid of both signals and both support cases.
        let fl = HybridFloor { dense: 0.45, lexical: 0.7 };
        for support in [&none, &missing] {
            for i in 0..=40 {
                for j in 0..=20 {
                    let (c, cov) = (i as f32 / 40.0, j as f32 / 20.0);
                    let id_floor = if support.complete() { 0.45 } else { 0.6 };
                    let keep = fl.keep_identified(Some(c), Some(cov), support, 0.6);
                    let conf = confidence(Mode::Hybrid, Some(c), id_floor, Some(cov), 0.7, support);
                    assert_eq!(keep, conf >= 0.5, "cosine {c} coverage {cov} support {support:?}: {conf}");
                    assert!((0.0..=1.0).contains(&conf));
                }
            }
        }
    }

    #[test]
    fn query_words_are_distinct_lowercase_and_bounded() {
        assert_eq!(super::query_words("How do I use os.path? A B"), ["how", "do", "use", "os", "path"]);
        assert_eq!(super::query_words(&"w1 ".repeat(10)), ["w1"]);
        let many: String = (0..200).map(|i| format!("w{i} ")).collect();
        assert_eq!(super::query_words(&many).len(), 64);
    }
}
