//! Stage 6 of the rebuild, gates: each gate is one function returning a [`GateResult`] (its
//! measured value, threshold and an explanation); [`run`] calls them in report order. A build
//! is promoted only when every gate passed; otherwise it is kept as a rejected snapshot.
//!
//! To add a gate: write a function here, call it from [`run`], put its threshold in
//! `[gates]` (`crate::config::GateConfig`, validated there) and document it in the README.

use super::model::ModelCheck;
use super::prepare::IngestSummary;
use super::{check_cancel, GateResult, HeadInfo};
use crate::config::{Config, GateConfig};
use crate::{Embedder, Error, Result};
use ragsnap_core::{Chunk, ContentId};
use ragsnap_index::{Index, TuneReport, VectorSet};
use ragsnap_store::DocumentEntry;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::AtomicBool;

/// What the gates look at.
pub(crate) struct GateContext<'a> {
    pub config: &'a Config,
    pub cancel: Option<&'a AtomicBool>,
    pub head: Option<&'a HeadInfo>,
    pub embedder: &'a dyn Embedder,
    pub model: &'a ModelCheck,
    pub ingest: &'a IngestSummary,
    pub documents: &'a [DocumentEntry],
    pub chunks: &'a [Chunk],
    pub index: &'a Index,
    pub set: &'a VectorSet,
    pub tuned: &'a TuneReport,
}

fn gate(name: &str, passed: bool, value: f64, threshold: f64, detail: String) -> GateResult {
    GateResult { name: name.into(), passed, value, threshold, detail }
}

/// Every gate, in report order.
pub(crate) fn run(ctx: &GateContext<'_>) -> Result<Vec<GateResult>> {
    let g = &ctx.config.gates;
    let mut out = vec![recall(ctx.tuned, ctx.index), fingerprint(ctx.model)];
    out.extend(ctx.head.map(|h| shrinkage(g, h, ctx.documents, ctx.chunks)));
    out.push(document_failures(g, ctx.ingest, ctx.documents));
    out.push(boilerplate(g, ctx.ingest));
    let golden = match &g.golden {
        Some(p) => load_golden(p)?,
        None => Vec::new(),
    };
    let golden_vectors = embed_golden(ctx, &golden)?;
    out.push(hubness(ctx, &golden_vectors)?);
    if !golden.is_empty() {
        out.push(golden_queries(ctx, &golden, &golden_vectors));
    }
    Ok(out)
}

/// The index reaches its recall target on the tuning sample.
fn recall(tuned: &TuneReport, index: &Index) -> GateResult {
    gate(
        "recall",
        tuned.recall >= tuned.target_recall,
        tuned.recall,
        tuned.target_recall,
        format!("recall@{} {:.4} on {} sample queries ({})", tuned.k, tuned.recall, tuned.sample, index.kind()),
    )
}

/// The model is the pinned one, or the change was allowed ([`super::model::check`] has already
/// refused a change that was not).
fn fingerprint(model: &ModelCheck) -> GateResult {
    let fp = &model.current;
    let detail = match &model.required {
        Some(p) if p == fp => format!("{fp} as pinned"),
        Some(p) => format!("{p} -> {fp}, allowed"),
        None => format!("{fp} (first build, nothing pinned)"),
    };
    gate("fingerprint", true, 1.0, 1.0, detail)
}

/// The build does not lose too much of head: the larger of the documents' and the chunks'
/// removed share.
fn shrinkage(g: &GateConfig, head: &HeadInfo, documents: &[DocumentEntry], chunks: &[Chunk]) -> GateResult {
    let now: HashSet<&str> = documents.iter().map(|d| d.source_path.as_str()).collect();
    let removed = head.documents.iter().filter(|d| !now.contains(d.source_path.as_str())).count();
    let doc_share = removed as f64 / head.documents.len().max(1) as f64;
    let head_chunks = head.manifest.counts.chunks;
    let chunk_share = (head_chunks.saturating_sub(chunks.len())) as f64 / head_chunks.max(1) as f64;
    let share = doc_share.max(chunk_share);
    gate(
        "shrinkage",
        share <= g.max_removed_share,
        share,
        g.max_removed_share,
        format!(
            "{removed} of head's {} documents removed; chunks {head_chunks} -> {}",
            head.documents.len(),
            chunks.len()
        ),
    )
}

/// Not too many documents failed to read or parse.
fn document_failures(g: &GateConfig, ingest: &IngestSummary, documents: &[DocumentEntry]) -> GateResult {
    let failed = ingest.failed.len();
    let attempted = failed + documents.len();
    let share = failed as f64 / attempted.max(1) as f64;
    gate(
        "document_failures",
        share <= g.max_failure_share,
        share,
        g.max_failure_share,
        format!("{failed} of {attempted} documents failed (quarantined, retried next run)"),
    )
}

/// Corpus boilerplate removal did not eat too much of the corpus.
fn boilerplate(g: &GateConfig, ingest: &IngestSummary) -> GateResult {
    let bp = &ingest.boilerplate;
    let share = bp.blocks_removed as f64 / bp.blocks_total.max(1) as f64;
    gate(
        "boilerplate",
        share <= g.max_boilerplate_share,
        share,
        g.max_boilerplate_share,
        format!("{} of {} blocks were site boilerplate and were dropped", bp.blocks_removed, bp.blocks_total),
    )
}

/// Hubness: no chunk text is in the top 10 of too many probes (chunks sampled from the
/// snapshot itself, plus the golden questions).
fn hubness(ctx: &GateContext<'_>, golden_vectors: &[Vec<f32>]) -> Result<GateResult> {
    let g = &ctx.config.gates;
    let ef = ctx.tuned.ef_search;
    // Probes and the small-corpus bound count distinct texts: the first row of each.
    let distinct_rows: Vec<usize> = {
        let mut seen = HashSet::new();
        (0..ctx.set.len()).filter(|&r| seen.insert(&ctx.chunks[r].content_id)).collect()
    };
    let n = distinct_rows.len();
    let step = (n / g.hub_probes.max(1)).max(1);
    let mut probes: Vec<(Option<usize>, &[f32])> =
        distinct_rows.iter().step_by(step).take(g.hub_probes).map(|&r| (Some(r), ctx.set.get(r))).collect();
    probes.extend(golden_vectors.iter().map(|v| (None, v.as_slice())));
    let mut appearances: HashMap<&ContentId, usize> = HashMap::new();
    for (own, v) in &probes {
        check_cancel(ctx.cancel)?;
        let mut seen = HashSet::new();
        let own_text = own.map(|r| &ctx.chunks[r].content_id);
        for (row, _) in ctx
            .index
            .search(v, 11, ef.max(11))
            .into_iter()
            .filter(|(r, _)| Some(*r as usize) != *own && Some(&ctx.chunks[*r as usize].content_id) != own_text)
            .take(10)
        {
            let id = &ctx.chunks[row as usize].content_id;
            if seen.insert(id) {
                *appearances.entry(id).or_default() += 1;
            }
        }
    }
    let (hub, count) = appearances
        .iter()
        .max_by_key(|(id, c)| (**c, std::cmp::Reverse(id.as_str())))
        .map(|(id, c)| ((*id).clone(), *c))
        .unwrap_or((ContentId::of_text(""), 0));
    let share = count as f64 / probes.len().max(1) as f64;
    let bound = g.max_hub_share.max(8.0 * 10.0 / n.max(1) as f64);
    let hub_text = ctx
        .chunks
        .iter()
        .find(|c| c.content_id == hub)
        .map(|c| c.text.chars().take(80).collect::<String>())
        .unwrap_or_default();
    Ok(gate(
        "hubness",
        share <= bound,
        share,
        bound,
        format!("most frequent top-10 chunk appears for {count} of {} probes: {hub_text:?}", probes.len()),
    ))
}

/// Golden questions: page recall@k does not drop more than the tolerance below head's.
fn golden_queries(ctx: &GateContext<'_>, golden: &[(String, String)], vectors: &[Vec<f32>]) -> GateResult {
    let g = &ctx.config.gates;
    let k = g.golden_k.max(1);
    let page_of_new = |row: u32| page_of(ctx.documents, row);
    let new_recall = golden_recall(golden, vectors, k, &|v| pages(ctx.index, ctx.tuned.ef_search, v, &page_of_new));
    let head_recall = match ctx.head.and_then(|h| h.snapshot.as_ref()) {
        Some(hs) if hs.manifest().fingerprint == *ctx.embedder.fingerprint() => {
            let page_of_head = |row: u32| page_of(hs.documents(), row);
            Some(golden_recall(golden, vectors, k, &|v| {
                pages(hs.index(), hs.manifest().index.ef_search, v, &page_of_head)
            }))
        }
        _ => None,
    };
    let drop = head_recall.map(|h| h - new_recall).unwrap_or(0.0);
    gate(
        "golden_queries",
        drop <= g.golden_tolerance,
        new_recall,
        head_recall.map(|h| h - g.golden_tolerance).unwrap_or(0.0),
        format!(
            "page recall@{k} on {} golden questions: {new_recall:.3} (head {})",
            golden.len(),
            head_recall.map(|h| format!("{h:.3}")).unwrap_or_else(|| "n/a".into())
        ),
    )
}

fn page_of(documents: &[DocumentEntry], row: u32) -> Option<String> {
    documents
        .iter()
        .find(|d| row >= d.first_chunk && row < d.first_chunk + d.chunk_count)
        .map(|d| d.source_path.clone())
}

/// The golden questions' vectors (empty without golden questions).
fn embed_golden(ctx: &GateContext<'_>, golden: &[(String, String)]) -> Result<Vec<Vec<f32>>> {
    if golden.is_empty() {
        return Ok(Vec::new());
    }
    let qs: Vec<&str> = golden.iter().map(|(q, _)| q.as_str()).collect();
    let vs = ctx.embedder.embed_queries_cancellable(&qs, ctx.cancel)?;
    let fp = ctx.embedder.fingerprint();
    ragsnap_embed::check_output(&qs, &vs, fp.dims, fp.normalize)?;
    Ok(vs)
}

/// Golden questions: recall@k of the expected page.
fn golden_recall(
    questions: &[(String, String)],
    vectors: &[Vec<f32>],
    k: usize,
    search: &dyn Fn(&[f32]) -> Vec<String>,
) -> f64 {
    if questions.is_empty() {
        return 1.0;
    }
    let hits =
        questions.iter().zip(vectors).filter(|((_, want), v)| search(v).iter().take(k).any(|p| p == want)).count();
    hits as f64 / questions.len() as f64
}

/// Pages of the top hits for `v` (one entry per distinct page, best first).
fn pages(index: &Index, ef: usize, v: &[f32], page_of: &dyn Fn(u32) -> Option<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (row, _) in index.search(v, 50, ef.max(50)) {
        if let Some(p) = page_of(row) {
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

fn load_golden(path: &Path) -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| Error::Config { path: path.to_path_buf(), message: format!("line {}: {e}", n + 1) })?;
        let q = v.get("question").and_then(|q| q.as_str());
        let want = v.get("expected_source").and_then(|q| q.as_str());
        if let (Some(q), Some(w)) = (q, want) {
            out.push((q.to_string(), w.to_string()));
        }
    }
    Ok(out)
}
