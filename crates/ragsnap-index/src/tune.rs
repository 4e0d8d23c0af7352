//! Recall tuning: a build measures recall@k of its own index against exact search on a sample
//! of its vectors and picks the smallest `ef_search` (or a bigger graph) that reaches the target;
//! small sets use exact search. What was chosen and measured goes into the manifest.

use crate::{exact_search, HnswIndex, HnswParams, Index, IndexError, Result, VectorSet};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub use ragsnap_core::IndexKind;

/// How to tune an index.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TuneConfig {
    /// Query vectors sampled from the set itself.
    pub sample: usize,
    /// `k` of recall@k.
    pub k: usize,
    /// Recall the chosen parameters must reach.
    pub target_recall: f64,
    /// Below this many vectors exact search is used (and recorded as such).
    pub exact_below: usize,
    /// Construction parameters to try, in order, until the target is met.
    pub ladder: Vec<HnswParams>,
    /// `ef_search` values to try for each graph, ascending.
    pub ef_candidates: Vec<usize>,
    /// Seed of the query sample.
    pub seed: u64,
    /// A rebuild updates head's graph (inserts new rows, marks removed ones deleted) instead of
    /// building a new one while deleted points stay at or below this share of the graph's
    /// points; above it, or when the updated graph misses the recall target, the graph is built
    /// from scratch. 0 always builds from scratch.
    #[serde(skip_serializing_if = "is_default_update_share")]
    pub update_max_deleted_share: f64,
}

/// Default of [`TuneConfig::update_max_deleted_share`].
pub const DEFAULT_UPDATE_MAX_DELETED_SHARE: f64 = 0.15;

// Left out of the serialised settings at its default, so that settings digests made before
// the option existed stay the same.
fn is_default_update_share(v: &f64) -> bool {
    *v == DEFAULT_UPDATE_MAX_DELETED_SHARE
}

impl Default for TuneConfig {
    fn default() -> Self {
        TuneConfig {
            sample: 500,
            k: 10,
            target_recall: 0.98,
            // Measured crossover (benches/README.md §3, `bench_index crossover`): with the SIMD dot
            // and the flat searcher, exact search for 40 candidates over 384-dim vectors is as
            // fast as the tuned graph at 650–700 vectors, and slower above.
            exact_below: 700,
            ladder: vec![
                HnswParams { m: 16, ef_construction: 200 },
                HnswParams { m: 24, ef_construction: 300 },
                HnswParams { m: 32, ef_construction: 400 },
                HnswParams { m: 48, ef_construction: 600 },
            ],
            ef_candidates: vec![16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024],
            seed: 0x5eed,
            update_max_deleted_share: DEFAULT_UPDATE_MAX_DELETED_SHARE,
        }
    }
}

/// What tuning chose and measured; goes into the snapshot manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TuneReport {
    /// Exact or HNSW.
    pub kind: IndexKind,
    /// Construction parameters (HNSW only).
    pub params: Option<HnswParams>,
    /// Chosen `ef_search` (HNSW only; 0 for exact).
    pub ef_search: usize,
    /// Measured recall@k of the chosen configuration (1.0 for exact).
    pub recall: f64,
    /// Target it was tuned to.
    pub target_recall: f64,
    /// Number of sample queries.
    pub sample: usize,
    /// `k` of recall@k.
    pub k: usize,
    /// Every attempt: (M, ef_construction, ef_search, recall).
    pub attempts: Vec<(usize, usize, usize, f64)>,
    /// Quantiles 0%, 5%, …, 100% of each sample query's best score against *another* vector:
    /// the score distribution a calibrated floor is expressed against.
    pub top1_quantiles: Vec<f32>,
}

fn sample_rows(n: usize, want: usize, seed: u64) -> Vec<usize> {
    let mut rows: Vec<usize> = (0..n).collect();
    let mut s = seed | 1;
    for i in (1..rows.len()).rev() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        rows.swap(i, (s % (i as u64 + 1)) as usize);
    }
    rows.truncate(want.min(n));
    rows.sort_unstable();
    rows
}

fn quantiles(mut v: Vec<f32>) -> Vec<f32> {
    if v.is_empty() {
        return Vec::new();
    }
    v.sort_by(f32::total_cmp);
    (0..=20).map(|i| v[((v.len() - 1) * i) / 20]).collect()
}

/// Build the index for `set` and tune it to `cfg.target_recall`.
///
/// Small sets get exact search. Otherwise each graph on the ladder is built in turn and the
/// smallest `ef_search` reaching the target is chosen; if none does, the result is
/// [`IndexError::RecallNotReached`] with the best recall seen.
pub fn tune(set: Arc<VectorSet>, cfg: &TuneConfig) -> Result<(Index, TuneReport)> {
    let (index, report) = tune_best_effort(set, cfg)?;
    if report.recall >= cfg.target_recall {
        return Ok((index, report));
    }
    let p = report.params.unwrap_or(HnswParams { m: 0, ef_construction: 0 });
    Err(IndexError::RecallNotReached {
        target: cfg.target_recall,
        best: report.recall,
        k: report.k,
        m: p.m,
        ef_construction: p.ef_construction,
        ef_search: report.ef_search,
    })
}

/// Like [`tune`], but when the target is out of reach return the best configuration seen
/// (its recall in the report is below the target) so a caller can gate on it and keep the
/// build for inspection.
pub fn tune_best_effort(set: Arc<VectorSet>, cfg: &TuneConfig) -> Result<(Index, TuneReport)> {
    tune_stoppable(set, cfg, &AtomicBool::new(false))
}

/// [`tune_best_effort`] that looks at `stop` between graphs and between `ef_search`
/// measurements and returns [`IndexError::Stopped`] once it is set (one graph build is not
/// interrupted).
pub fn tune_stoppable(set: Arc<VectorSet>, cfg: &TuneConfig, stop: &AtomicBool) -> Result<(Index, TuneReport)> {
    let stopped = || if stop.load(Ordering::SeqCst) { Err(IndexError::Stopped) } else { Ok(()) };
    let k = cfg.k.max(1);
    let rows = sample_rows(set.len(), cfg.sample, cfg.seed);
    let truth: Vec<Vec<(u32, f32)>> = rows.par_iter().map(|&r| exact_search(&set, set.get(r), k.max(2))).collect();
    let top1: Vec<f32> =
        rows.iter().zip(&truth).filter_map(|(&r, t)| t.iter().find(|(id, _)| *id as usize != r).map(|h| h.1)).collect();
    let top1_quantiles = quantiles(top1);
    let mut report = TuneReport {
        kind: IndexKind::Exact,
        params: None,
        ef_search: 0,
        recall: 1.0,
        target_recall: cfg.target_recall,
        sample: rows.len(),
        k,
        attempts: Vec::new(),
        top1_quantiles,
    };
    if set.len() < cfg.exact_below {
        return Ok((Index::Exact(set), report));
    }
    let truth_sets: Vec<HashSet<u32>> = truth.iter().map(|t| t.iter().take(k).map(|h| h.0).collect()).collect();
    let mut best: Option<(f64, HnswParams, usize, HnswIndex)> = None;
    for params in &cfg.ladder {
        stopped()?;
        let graph = HnswIndex::build_shared(set.clone(), *params)?;
        let sample = Sample { set: &set, rows: &rows, truth: &truth_sets, k };
        let Some((recall, ef)) = sweep_ef(&graph, &sample, cfg, stop, &mut report.attempts)? else { continue };
        if best.as_ref().is_none_or(|b| recall > b.0) {
            best = Some((recall, *params, ef, graph));
        }
        if recall >= cfg.target_recall {
            break;
        }
    }
    let Some((recall, params, ef, graph)) = best else {
        return Err(IndexError::Graph("no HNSW parameters to try (empty ladder or ef candidates below k)".into()));
    };
    report.kind = IndexKind::Hnsw;
    report.params = Some(params);
    report.ef_search = ef;
    report.recall = recall;
    Ok((Index::Hnsw(graph), report))
}

/// The recall sample: query rows of the set and the exact top-`k` of each.
struct Sample<'a> {
    set: &'a VectorSet,
    rows: &'a [usize],
    truth: &'a [HashSet<u32>],
    k: usize,
}

/// Measure recall@k of `graph` at each `ef_search` candidate (ascending, from `k`) until one
/// reaches the target; the best `(recall, ef)` seen (`None`: no candidate at or above `k`).
fn sweep_ef(
    graph: &HnswIndex,
    sample: &Sample<'_>,
    cfg: &TuneConfig,
    stop: &AtomicBool,
    attempts: &mut Vec<(usize, usize, usize, f64)>,
) -> Result<Option<(f64, usize)>> {
    let Sample { set, rows, truth, k } = *sample;
    let params = graph.params();
    let mut graph_best: Option<(f64, usize)> = None;
    for &ef in cfg.ef_candidates.iter().filter(|&&ef| ef >= k) {
        if stop.load(Ordering::SeqCst) {
            return Err(IndexError::Stopped);
        }
        let hits: usize = rows
            .par_iter()
            .zip(truth)
            .map(|(&r, t)| graph.search(set.get(r), k, ef).iter().filter(|h| t.contains(&h.0)).count())
            .sum();
        let recall = hits as f64 / (rows.len() * k).max(1) as f64;
        attempts.push((params.m, params.ef_construction, ef, recall));
        if graph_best.is_none_or(|(b, _)| recall > b) {
            graph_best = Some((recall, ef));
        }
        if recall >= cfg.target_recall {
            break;
        }
    }
    Ok(graph_best)
}

/// Measure an updated graph the way [`tune_stoppable`] measures a built one: recall@k against
/// exact search over `set` (the live rows the graph answers for) on the same sample, at each
/// `ef_search` candidate until the target is reached. The graph is kept whatever it measured;
/// the caller compares the report's recall with the target (and rebuilds when it falls short).
pub fn measure_updated(
    graph: HnswIndex,
    set: &VectorSet,
    cfg: &TuneConfig,
    stop: &AtomicBool,
) -> Result<(Index, TuneReport)> {
    let k = cfg.k.max(1);
    let rows = sample_rows(set.len(), cfg.sample, cfg.seed);
    let truth: Vec<Vec<(u32, f32)>> = rows.par_iter().map(|&r| exact_search(set, set.get(r), k.max(2))).collect();
    let top1: Vec<f32> =
        rows.iter().zip(&truth).filter_map(|(&r, t)| t.iter().find(|(id, _)| *id as usize != r).map(|h| h.1)).collect();
    let truth_sets: Vec<HashSet<u32>> = truth.iter().map(|t| t.iter().take(k).map(|h| h.0).collect()).collect();
    let mut report = TuneReport {
        kind: IndexKind::Hnsw,
        params: Some(graph.params()),
        ef_search: 0,
        recall: 0.0,
        target_recall: cfg.target_recall,
        sample: rows.len(),
        k,
        attempts: Vec::new(),
        top1_quantiles: quantiles(top1),
    };
    let sample = Sample { set, rows: &rows, truth: &truth_sets, k };
    let Some((recall, ef)) = sweep_ef(&graph, &sample, cfg, stop, &mut report.attempts)? else {
        return Err(IndexError::Graph("no ef_search candidates at or above k".into()));
    };
    report.recall = recall;
    report.ef_search = ef;
    Ok((Index::Hnsw(graph), report))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clustered(n: usize, dims: usize) -> VectorSet {
        let mut s = 99u64;
        let mut rnd = || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        };
        let centers: Vec<Vec<f32>> = (0..20).map(|_| (0..dims).map(|_| rnd()).collect()).collect();
        let mut data = Vec::new();
        for i in 0..n {
            let c = &centers[i % centers.len()];
            let mut v: Vec<f32> = c.iter().map(|x| x + 0.3 * rnd()).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter_mut().for_each(|x| *x /= norm);
            data.extend(v);
        }
        VectorSet::new(dims, data).unwrap()
    }

    #[test]
    fn small_sets_use_exact_search() {
        let set = Arc::new(clustered(300, 16));
        let (idx, rep) = tune(set, &TuneConfig::default()).unwrap();
        assert_eq!(idx.kind(), IndexKind::Exact);
        assert_eq!(rep.recall, 1.0);
        assert_eq!(rep.top1_quantiles.len(), 21);
    }

    #[test]
    fn hnsw_reaches_the_target_and_reports_what_it_measured() {
        let set = Arc::new(clustered(3000, 24));
        let cfg = TuneConfig { exact_below: 100, sample: 200, ..TuneConfig::default() };
        let (idx, rep) = tune(set.clone(), &cfg).unwrap();
        assert_eq!(idx.kind(), IndexKind::Hnsw);
        assert!(rep.recall >= 0.98, "{rep:?}");
        // Re-measure independently on other queries.
        let mut hit = 0;
        for q in (0..3000).step_by(37) {
            let truth: HashSet<u32> = exact_search(&set, set.get(q), 10).iter().map(|h| h.0).collect();
            hit += idx.search(set.get(q), 10, rep.ef_search).iter().filter(|h| truth.contains(&h.0)).count();
        }
        let recall = hit as f64 / (82.0 * 10.0);
        assert!(recall >= 0.95, "independent recall {recall}");
    }

    #[test]
    fn unreachable_target_fails_with_the_best_recall() {
        let set = Arc::new(clustered(2500, 24));
        let cfg = TuneConfig {
            exact_below: 10,
            sample: 100,
            target_recall: 1.01,
            ladder: vec![HnswParams { m: 4, ef_construction: 16 }],
            ef_candidates: vec![10, 16],
            ..TuneConfig::default()
        };
        match tune(set, &cfg) {
            Err(IndexError::RecallNotReached { best, .. }) => assert!(best > 0.0 && best <= 1.0),
            other => panic!("expected RecallNotReached, got {:?}", other.map(|r| r.1)),
        }
    }
}
