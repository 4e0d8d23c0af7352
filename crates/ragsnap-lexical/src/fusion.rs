//! Rank fusion of the dense and lexical lists, and the hybrid floor.

use crate::{IdentifierSupport, LexicalHit};
use std::collections::HashMap;

/// How two ranked lists are fused: weighted reciprocal rank,
/// `score(row) = Σ weight / (rrf_k + rank)` over the lists that hold the row, ranks from 1.
///
/// The defaults (`rrf_k` 10, lexical weight 1.25) were measured on the evaluation set
/// (`eval/README.md`, 50 candidates from each list): every setting with `rrf_k` from 2 to 10
/// and a lexical weight from 1 to 1.5 lies within 0.01 of the best on both halves of the
/// question set, while the textbook `rrf_k = 60` with equal weights loses about 0.02 of page
/// recall@10 (a large `rrf_k` flattens the head of each list, so a row ranked moderately by
/// both beats a row ranked first by one).
#[derive(Clone, Debug, PartialEq)]
pub struct FusionConfig {
    /// The RRF constant; larger flattens the head of each list (default 10).
    pub rrf_k: f32,
    /// Weight of the dense list (default 1).
    pub dense_weight: f32,
    /// Weight of the lexical list (default 1.25).
    pub lexical_weight: f32,
}

impl Default for FusionConfig {
    fn default() -> Self {
        FusionConfig { rrf_k: 10.0, dense_weight: 1.0, lexical_weight: 1.25 }
    }
}

impl FusionConfig {
    /// Plain reciprocal rank fusion: equal weights and the given `rrf_k` (60 in the original
    /// paper).
    pub fn rrf(rrf_k: f32) -> Self {
        FusionConfig { rrf_k, dense_weight: 1.0, lexical_weight: 1.0 }
    }
}

/// One fused row, with what each list said about it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fused {
    /// Chunk row.
    pub row: u32,
    /// Fused score (higher is better; only comparable within one query).
    pub score: f32,
    /// Rank in the dense list (from 1), if it was there.
    pub dense_rank: Option<u32>,
    /// Cosine from the dense list, if it was there.
    pub dense_score: Option<f32>,
    /// Rank in the lexical list (from 1), if it was there.
    pub lexical_rank: Option<u32>,
    /// BM25 score from the lexical list, if it was there.
    pub lexical_score: Option<f32>,
    /// The lexical hit's coverage (only from [`fuse_hits`]).
    pub lexical_coverage: Option<f32>,
}

/// Fuse two ranked lists of `(row, score)`, each best first, into one, best first. A row listed
/// twice in one list keeps its first (best) place. Ties go to the row with the better single
/// rank, then the lower row, so the result is deterministic.
pub fn fuse(dense: &[(u32, f32)], lexical: &[(u32, f32)], cfg: &FusionConfig) -> Vec<Fused> {
    fuse_inner(dense, lexical.iter().map(|&(row, score)| (row, score, None)), cfg)
}

/// [`fuse`] with the lexical side's [`LexicalHit`]s, keeping their coverage for the floor.
pub fn fuse_hits(dense: &[(u32, f32)], lexical: &[LexicalHit], cfg: &FusionConfig) -> Vec<Fused> {
    fuse_inner(dense, lexical.iter().map(|h| (h.row, h.score, Some(h.coverage))), cfg)
}

fn fuse_inner(
    dense: &[(u32, f32)],
    lexical: impl Iterator<Item = (u32, f32, Option<f32>)>,
    cfg: &FusionConfig,
) -> Vec<Fused> {
    let mut out: Vec<Fused> = Vec::with_capacity(dense.len() * 2);
    let mut at: HashMap<u32, usize> = HashMap::with_capacity(dense.len() * 2);
    let empty = |row| Fused {
        row,
        score: 0.0,
        dense_rank: None,
        dense_score: None,
        lexical_rank: None,
        lexical_score: None,
        lexical_coverage: None,
    };
    for (i, &(row, s)) in dense.iter().enumerate() {
        let j = *at.entry(row).or_insert_with(|| {
            out.push(empty(row));
            out.len() - 1
        });
        let f = &mut out[j];
        if f.dense_rank.is_none() {
            f.dense_rank = Some(i as u32 + 1);
            f.dense_score = Some(s);
            f.score += cfg.dense_weight / (cfg.rrf_k + (i + 1) as f32);
        }
    }
    for (i, (row, s, cov)) in lexical.enumerate() {
        let j = *at.entry(row).or_insert_with(|| {
            out.push(empty(row));
            out.len() - 1
        });
        let f = &mut out[j];
        if f.lexical_rank.is_none() {
            f.lexical_rank = Some(i as u32 + 1);
            f.lexical_score = Some(s);
            f.lexical_coverage = cov;
            f.score += cfg.lexical_weight / (cfg.rrf_k + (i + 1) as f32);
        }
    }
    let best = |f: &Fused| f.dense_rank.unwrap_or(u32::MAX).min(f.lexical_rank.unwrap_or(u32::MAX));
    out.sort_by(|a, b| b.score.total_cmp(&a.score).then(best(a).cmp(&best(b))).then(a.row.cmp(&b.row)));
    out
}

/// The hybrid floor: a fused hit is refused only if **neither** signal supports it.
///
/// * dense support: the row's cosine with the query is at least `dense` (the snapshot's usual
///   similarity floor). Compute the cosine for *every* fused row, not only for rows that came
///   from the dense list: the vectors are in memory and it is one 384-float dot product per
///   row.
/// * lexical support: the row's [`coverage`](LexicalHit::coverage) is at least `lexical`, i.e.
///   the row holds that share of the query's IDF mass. A query whose rare words the corpus
///   lacks ("Who won the 1998 World Cup?": `1998` and `cup` are nowhere in the Python docs)
///   cannot reach it however well it matches `who` and `world`; an identifier query that names
///   something the docs define (`PQfnumber`, `functools.lru_cache()`) does.
///
/// The default lexical floor, [`DEFAULT_LEXICAL_FLOOR`] = 0.7, was chosen on the evaluation
/// set (`eval/README.md`): the best coverage any of its 40 off-topic questions reaches is 0.60.
/// With it and a cosine floor of 0.45, hybrid gives at least one hit for 99.4% of the 1,134
/// on-topic questions (the cosine floor alone: 96.6%) and adds no answer to any off-topic
/// question. A one-word query that the corpus contains always has coverage 1: a literal match
/// of everything the user typed counts as support.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HybridFloor {
    /// Cosine floor (the dense floor, e.g. 0.45 for all-MiniLM-L6-v2).
    pub dense: f32,
    /// Coverage floor, 0 to 1.
    pub lexical: f32,
}

/// The coverage a lexical-only hit needs; see [`HybridFloor`].
pub const DEFAULT_LEXICAL_FLOOR: f32 = 0.7;

impl HybridFloor {
    /// A floor with the given cosine floor and [`DEFAULT_LEXICAL_FLOOR`].
    pub fn with_dense(dense: f32) -> Self {
        HybridFloor { dense, lexical: DEFAULT_LEXICAL_FLOOR }
    }

    /// Whether a hit with this cosine and this coverage clears the floor (`None` = that signal
    /// did not see the row, which supports nothing).
    pub fn keep(&self, cosine: Option<f32>, coverage: Option<f32>) -> bool {
        cosine.is_some_and(|c| c >= self.dense) || coverage.is_some_and(|c| c >= self.lexical)
    }

    /// [`keep`](Self::keep) for a fused hit, with its cosine computed by the caller (prefer
    /// that to `f.dense_score`, which is missing for rows only the lexical list found).
    pub fn keep_fused(&self, f: &Fused, cosine: Option<f32>) -> bool {
        self.keep(cosine.or(f.dense_score), f.lexical_coverage)
    }
}

/// Whether lexical evidence may support a hit: its coverage clears `lexical_floor` and, when the
/// query names identifiers, the hit holds every one of them ([`identifier_support`]). Sub-words
/// shared with an identifier still rank a hit; they do not by themselves vouch for it.
///
/// A `lexical_floor` of 0 asks for no lexical evidence at all (every lexical candidate counts),
/// which is how a caller switches the floors off.
pub fn lexical_supports(coverage: Option<f32>, lexical_floor: f32, identifiers: &IdentifierSupport) -> bool {
    coverage.is_some_and(|c| c >= lexical_floor) && (lexical_floor <= 0.0 || identifiers.complete())
}

impl HybridFloor {
    /// The identifier-aware rule: a hit that holds every identifier of the query (or a query
    /// without identifiers) is kept as by [`keep`](Self::keep); a hit that misses one is kept only
    /// on its cosine, and only at `identifier_dense` or above (a cosine floor calibrated on
    /// identifiers the corpus does not contain: they score where correct answers score, so the
    /// usual floor cannot refuse them).
    pub fn keep_identified(
        &self,
        cosine: Option<f32>,
        coverage: Option<f32>,
        identifiers: &IdentifierSupport,
        identifier_dense: f32,
    ) -> bool {
        if identifiers.complete() {
            self.keep(cosine, coverage)
        } else {
            cosine.is_some_and(|c| c >= self.dense.max(identifier_dense))
                || lexical_supports(coverage, self.lexical, identifiers)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rrf_by_hand() {
        let cfg = FusionConfig::rrf(60.0);
        let f = fuse(&[(7, 0.9), (3, 0.8)], &[(3, 12.0), (5, 9.0)], &cfg);
        let rows: Vec<u32> = f.iter().map(|x| x.row).collect();
        assert_eq!(rows, [3, 7, 5]);
        assert!((f[0].score - (1.0 / 62.0 + 1.0 / 61.0)).abs() < 1e-7);
        assert_eq!((f[0].dense_rank, f[0].lexical_rank), (Some(2), Some(1)));
        assert_eq!((f[1].dense_score, f[1].lexical_score), (Some(0.9), None));
        // 7 (dense rank 1) and 5 (lexical rank 2) differ; equal ranks tie-break on the row.
        let g = fuse(&[(9, 0.5)], &[(4, 1.0)], &cfg);
        // The default weighs the lexical list a little more: its first row wins.
        let d = fuse(&[(9, 0.5)], &[(40, 1.0)], &FusionConfig::default());
        assert_eq!(d[0].row, 40);
        assert_eq!(g.iter().map(|x| x.row).collect::<Vec<_>>(), [4, 9]);
    }

    #[test]
    fn duplicates_keep_their_best_rank_and_weights_apply() {
        let cfg = FusionConfig { rrf_k: 0.0, dense_weight: 0.0, lexical_weight: 1.0 };
        let f = fuse(&[(1, 0.9), (1, 0.1), (2, 0.5)], &[(2, 3.0), (2, 1.0)], &cfg);
        assert_eq!(f[0].row, 2);
        assert_eq!(f[0].score, 1.0);
        assert_eq!(f[1].dense_rank, Some(1));
        assert_eq!(f[1].dense_score, Some(0.9));
        assert!(fuse(&[], &[], &cfg).is_empty());
    }

    #[test]
    fn floor_needs_one_signal() {
        let fl = HybridFloor { dense: 0.45, lexical: 0.7 };
        assert!(fl.keep(Some(0.5), None));
        assert!(fl.keep(Some(0.1), Some(0.9)));
        assert!(!fl.keep(Some(0.44), Some(0.5)));
        assert!(!fl.keep(None, None));
        let h = LexicalHit { row: 1, score: 3.0, coverage: 0.8 };
        let f = fuse_hits(&[], &[h], &FusionConfig::default());
        assert!(fl.keep_fused(&f[0], Some(0.0)));
        assert_eq!(f[0].lexical_coverage, Some(0.8));
    }

    #[test]
    fn an_absent_identifier_gets_no_lexical_support_from_its_sub_words() {
        use crate::{identifier_support, query_identifiers, LexicalIndex};
        // A real index: one chunk documents flush(), none defines flush_all().
        let mut texts = vec![
            "logging > Handler\n\nlogging.Handler.flush() writes all buffered output of the handler.",
            "logging > Handler.close\n\nlogging.Handler.close() releases the handler's resources.",
        ];
        let filler = [
            "Tutorial > Loops\n\nA for loop iterates over a sequence.",
            "json > dumps\n\njson.dumps(obj) serialises obj to a JSON formatted str.",
            "os > getcwd\n\nos.getcwd() returns the current working directory.",
            "re > compile\n\nre.compile(pattern) compiles a regular expression.",
            "time > sleep\n\ntime.sleep(secs) suspends execution.",
            "math > sqrt\n\nmath.sqrt(x) returns the square root of x.",
            "sys > argv\n\nsys.argv is the list of command line arguments.",
            "shutil > copy\n\nshutil.copy(src, dst) copies a file.",
            "zlib > compress\n\nzlib.compress(data) compresses bytes.",
            "heapq > heappush\n\nheapq.heappush(heap, item) pushes onto a heap.",
        ];
        texts.extend(filler);
        let index = LexicalIndex::build(&texts);
        let floor = HybridFloor::with_dense(0.45);
        let ask = |q: &str| {
            let hits = index.search_hits(q, 5);
            let ids = query_identifiers(q);
            let top = hits[0];
            (top, identifier_support(texts[top.row as usize], &ids))
        };
        // The invented method shares every sub-word with the real one: coverage alone clears
        // the lexical floor, so the old rule would call it supported.
        let (top, support) = ask("logging.Handler.flush_all()");
        assert_eq!(top.row, 0);
        assert!(top.coverage >= DEFAULT_LEXICAL_FLOOR, "coverage {}", top.coverage);
        assert!(floor.keep(Some(0.3), Some(top.coverage)));
        assert_eq!(support.missing, ["logging.Handler.flush_all()"]);
        assert!(!lexical_supports(Some(top.coverage), DEFAULT_LEXICAL_FLOOR, &support));
        assert!(!floor.keep_identified(Some(0.3), Some(top.coverage), &support, 0.6));
        // A high enough cosine still answers; so does a floor switched off.
        assert!(floor.keep_identified(Some(0.61), Some(top.coverage), &support, 0.6));
        assert!(lexical_supports(Some(top.coverage), 0.0, &support));
        // The real method: the chunk holds its last component as a whole word.
        let (top, support) = ask("logging.Handler.flush()");
        assert_eq!(top.row, 0);
        assert_eq!(support.matched, ["logging.handler.flush"]);
        let (_, support) = ask("Handler.flush()");
        assert_eq!(support.matched, ["handler.flush"]);
        let support = identifier_support(texts[0], &query_identifiers("mylib.Handler.flush()"));
        assert_eq!(support.matched, ["flush"]);
        assert!(floor.keep_identified(Some(0.3), Some(top.coverage), &support, 0.6));
        // Sub-word splitting still ranks: "handler flush" finds the same chunk first.
        assert_eq!(index.search_hits("handler flush", 3)[0].row, 0);
    }
}
