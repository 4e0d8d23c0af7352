//! The rebuild pipeline: read sources → sanitise → drop corpus boilerplate → chunk → embed
//! (cache misses only) → tune the index → run the gates → stage → publish, and promote only when
//! every gate passed. A rejected build is kept (status `rejected`, not head) with its report.

use crate::config::{Config, SourceConfig};
use crate::{Error, Result};
use ragsnap_chunk::BoilerplateReport;
use ragsnap_core::{Chunk, ContentId, FormatVersion};
use ragsnap_embed::{canary, Embedder};
use ragsnap_index::{IndexKind, VectorSet};
use ragsnap_store::{
    tables, time, ArtifactKind, Calibration, ChunkerInfo, Counts, DocumentEntry, IndexInfo, Manifest, Store,
};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// A document that could not be indexed, and why.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DocFailure {
    /// Source path.
    pub path: String,
    /// Error kind (`too_large`, `binary`, `unsupported`, `empty`, `io`, ...).
    pub kind: String,
    /// Full message.
    pub error: String,
}

/// What a rebuild did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RebuildReport {
    /// The snapshot written.
    pub snapshot_id: String,
    /// The head it started from.
    pub parent_id: Option<String>,
    /// Whether it became head.
    pub promoted: bool,
    /// Files found in the sources.
    pub files_seen: usize,
    /// Documents that produced chunks.
    pub documents_indexed: usize,
    /// The sources compared with head by path and content hash.
    pub source_diff: SourceDiff,
    /// Documents whose chunks were copied from head (nothing the chunker reads had changed).
    pub documents_reused: usize,
    /// Documents chunked in this run (new, changed, or affected by a boilerplate, chunker or
    /// model change).
    pub documents_chunked: usize,
    /// Files and folders left out by the `[source]` selection (a folder counts once).
    pub files_excluded: usize,
    /// Entries not indexed because of what they are: unsupported type, empty page, hub page,
    /// symlink, FIFO, socket, device (kind says which). Not failures.
    pub skipped: Vec<DocFailure>,
    /// Documents that failed (binary, too large, unreadable file or folder, replaced while the
    /// build ran).
    pub failed: Vec<DocFailure>,
    /// Chunks in the snapshot.
    pub chunks: usize,
    /// Chunks dropped because the same page already had a chunk with the same text.
    pub duplicate_chunks_dropped: usize,
    /// Pages that had repeated chunks, with how many repeats were dropped from each.
    pub pages_with_repeated_chunks: BTreeMap<String, usize>,
    /// Most estimated working memory of pages being read and sanitised at once, in bytes
    /// (bounded by `[ingest] max_inflight_bytes`, or one page's when it alone costs more).
    pub ingest_peak_inflight_bytes: u64,
    /// Distinct chunk texts.
    pub distinct_chunks: usize,
    /// Vectors found in the embedding cache.
    pub cache_hits: usize,
    /// Vectors computed by the model (new chunks, rejected cache rows, cache rows that
    /// disagreed with the model).
    pub cache_misses: usize,
    /// How the embedding cache was verified: rows rejected, sample re-embedded and compared.
    pub cache_check: crate::embed_stage::CacheCheck,
    /// Corpus-level boilerplate removed.
    pub boilerplate: BoilerplateReport,
    /// Index kind chosen.
    pub index_kind: String,
    /// Measured recall.
    pub recall: f64,
    /// Chosen ef_search.
    pub ef_search: usize,
    /// Seconds per stage.
    pub timings: BTreeMap<String, f64>,
    /// Embedding fingerprint id.
    pub fingerprint_id: String,
    /// Inputs cut at the model's maximum length (the chunker keeps this at zero).
    pub truncated_inputs: usize,
    /// Every gate, with its measured value and threshold.
    pub gates: Vec<GateResult>,
    /// Why the build was rejected (empty when promoted).
    pub rejected_because: Vec<String>,
    /// Source files whose size or modification time changed while the build ran; the snapshot
    /// holds the content that was read (its hash is in the documents list), and the next run
    /// picks up the new content.
    pub changed_during_run: Vec<String>,
}

/// How the sources differ from head's documents (by path and blake3 of the bytes read).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SourceDiff {
    /// Readable documents head does not have.
    pub added: usize,
    /// Documents whose bytes changed.
    pub changed: usize,
    /// Head's documents no longer in the sources (or no longer readable).
    pub removed: usize,
    /// Documents with the same bytes as in head.
    pub unchanged: usize,
}

/// One gate's verdict.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GateResult {
    /// Gate name.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// Measured value.
    pub value: f64,
    /// Threshold it was compared with.
    pub threshold: f64,
    /// Human explanation.
    pub detail: String,
}

/// Progress callback: (stage, done, total).
pub type ProgressFn<'a> = dyn Fn(&str, u64, u64) + Sync + 'a;

/// How to run a rebuild.
#[derive(Default)]
pub struct RebuildOptions<'a> {
    /// Sources (empty: the config's).
    pub sources: Vec<SourceConfig>,
    /// Accept an embedding fingerprint different from head's (or the pinned one).
    pub allow_model_change: bool,
    /// Set by a signal handler: stop at the next safe point, leave head alone, clean staging.
    pub cancel: Option<&'a AtomicBool>,
    /// Called as the build moves: (stage, done, total). Stages: `read`, `chunk`, `embed`,
    /// `index`, `gates`, `publish`; `embed` reports chunks embedded so far.
    pub progress: Option<&'a ProgressFn<'a>>,
    /// Test seam: see [`crate::ingest::PrepareOptions::after_listing`].
    #[doc(hidden)]
    pub after_listing: Option<&'a crate::ingest::ListingHook<'a>>,
}

/// Files under `dir` that a rebuild reads with the default `[source]` selection, sorted, as
/// (path relative to dir with `/`, path). Symlinks and other non-regular entries are left out;
/// an unreadable folder is an error here (a rebuild reports it per path instead).
pub fn list_files(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let listing = crate::sources::list_source(dir, &crate::sources::SourceSelection::default().compile()?)?;
    if let Some(f) = listing.failed.first() {
        return Err(Error::Invalid(f.error.clone()));
    }
    Ok(listing.files.into_iter().map(|f| (f.rel, f.abs)).collect())
}

/// Head's chunks of one document, or `None` when they cannot be read back as that document's
/// (the caller then chunks the document again).
fn chunks_of(head: &crate::Snapshot, entry: &DocumentEntry) -> Option<Vec<Chunk>> {
    let first = entry.first_chunk as usize;
    let rows = first..first.checked_add(entry.chunk_count as usize)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        match head.chunks().get(row) {
            Ok(c) if c.source_path == entry.source_path => out.push(c),
            Ok(_) => return None,
            Err(e) => {
                tracing::warn!(document = %entry.source_path, error = %e, "head's chunks unreadable; chunking again");
                return None;
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

fn elapsed(t: Instant) -> f64 {
    (t.elapsed().as_secs_f64() * 1000.0).round() / 1000.0
}

/// Rebuild from `sources` (or the config's) into the store at `store_root`; promote when every
/// gate passes.
pub fn rebuild(
    store_root: &Path,
    config: &Config,
    sources: &[SourceConfig],
    embedder: &dyn Embedder,
) -> Result<RebuildReport> {
    rebuild_with(store_root, config, &RebuildOptions { sources: sources.to_vec(), ..Default::default() }, embedder)
}

pub(crate) fn check_cancel(cancel: Option<&AtomicBool>) -> Result<()> {
    if cancel.is_some_and(|c| c.load(Ordering::SeqCst)) {
        return Err(Error::Cancelled);
    }
    Ok(())
}

struct HeadInfo {
    manifest: ragsnap_store::Manifest,
    documents: Vec<DocumentEntry>,
    snapshot: Option<crate::Snapshot>,
}

fn load_head(store: &Store) -> Result<Option<HeadInfo>> {
    let Some(id) = store.catalog().head_id()? else { return Ok(None) };
    let snapshot = crate::Snapshot::open(store, &id)?;
    Ok(Some(HeadInfo {
        manifest: snapshot.manifest().clone(),
        documents: snapshot.documents().to_vec(),
        snapshot: Some(snapshot),
    }))
}

/// Rebuild with explicit options.
pub fn rebuild_with(
    store_root: &Path,
    config: &Config,
    opts: &RebuildOptions<'_>,
    embedder: &dyn Embedder,
) -> Result<RebuildReport> {
    config.validate()?;
    let mut report = RebuildReport { fingerprint_id: embedder.fingerprint().id(), ..Default::default() };
    let sources: Vec<SourceConfig> =
        if opts.sources.is_empty() { config.sources.clone() } else { opts.sources.clone() };
    if sources.is_empty() {
        return Err(Error::Invalid("no sources: pass --source DIR or add [[sources]] to ragsnap.toml".into()));
    }
    let t_all = Instant::now();
    let mut store = crate::open_store_writer(store_root)?;
    report.parent_id = store.catalog().head_id()?;
    let head = load_head(&store)?;

    // 1-3. List and read (no-follow), sanitise, drop corpus boilerplate, chunk: the pipeline
    // `ragsnap chunk` shows (crate::ingest), taking head's chunks where nothing changed.
    let head_docs: HashMap<&str, &DocumentEntry> =
        head.as_ref().map(|h| h.documents.iter().map(|d| (d.source_path.as_str(), d)).collect()).unwrap_or_default();
    let head_snapshot = head.as_ref().and_then(|h| h.snapshot.as_ref());
    let reuse = |path: &str, key: &str| {
        head_docs
            .get(path)
            .filter(|e| e.chunk_key.as_deref() == Some(key))
            .and_then(|e| head_snapshot.and_then(|h| chunks_of(h, e)))
    };
    let progress_read = |stage: &str, done: u64, total: u64| {
        if done == 0 {
            tracing::info!(stage, total, "stage started");
        }
        if let Some(p) = opts.progress {
            p(stage, done, total);
        }
    };
    let prepared = crate::ingest::prepare(
        &crate::ingest::Inputs::Folders(&sources),
        config,
        crate::ingest::Tokens::Embedder(embedder),
        &crate::ingest::PrepareOptions {
            cancel: opts.cancel,
            progress: Some(&progress_read),
            reuse: Some(&reuse),
            after_listing: opts.after_listing,
        },
    )?;
    let progress = |stage: &str, done: usize, total: usize| {
        if done == 0 {
            tracing::info!(stage, total, "stage started");
        }
        if let Some(p) = opts.progress {
            p(stage, done as u64, total as u64);
        }
    };
    report.files_seen = prepared.files_seen;
    report.files_excluded = prepared.excluded;
    report.skipped = prepared.skipped.clone();
    report.failed = prepared.failed.clone();
    report.boilerplate = prepared.boilerplate.clone();
    report.documents_reused = prepared.documents_reused;
    report.documents_chunked = prepared.documents_chunked;
    report.duplicate_chunks_dropped = prepared.duplicate_chunks_dropped;
    report.pages_with_repeated_chunks = prepared.pages_with_repeated_chunks.clone();
    report.ingest_peak_inflight_bytes = prepared.peak_inflight_bytes;
    report.timings.extend(prepared.timings.clone());
    let source_digest = prepared.source_digest.clone();
    let ccfg = prepared.chunk_config.clone();
    {
        let now: HashMap<&str, &str> = prepared
            .read
            .iter()
            .filter(|r| r.sanitized)
            .map(|r| (r.path.as_str(), r.content_blake3.as_str()))
            .collect();
        let diff = &mut report.source_diff;
        for (path, hash) in &now {
            match head_docs.get(path) {
                None => diff.added += 1,
                Some(e) if e.content_blake3 == *hash => diff.unchanged += 1,
                Some(_) => diff.changed += 1,
            }
        }
        diff.removed = head_docs.keys().filter(|p| !now.contains_key(*p)).count();
    }
    let mut chunks: Vec<Chunk> = Vec::new();
    let mut documents: Vec<DocumentEntry> = Vec::new();
    for d in &prepared.documents {
        documents.push(DocumentEntry {
            source_path: d.doc.source_path.clone(),
            content_blake3: d.content_blake3.clone(),
            url: d.chunks[0].url.clone(),
            title: d.doc.title.clone(),
            first_chunk: chunks.len() as u32,
            chunk_count: d.chunks.len() as u32,
            chunk_key: Some(d.chunk_key.clone()),
        });
        chunks.extend(d.chunks.iter().cloned());
    }
    let read_files: Vec<(String, PathBuf, Option<crate::sources::Stamp>)> =
        prepared.read.iter().map(|r| (r.path.clone(), r.abs.clone(), r.stamp)).collect();
    drop(prepared);
    if chunks.is_empty() {
        return Err(Error::Invalid(format!(
            "the sources produced no chunks ({} files seen, {} failed)",
            report.files_seen,
            report.failed.len()
        )));
    }
    report.documents_indexed = documents.len();
    report.chunks = chunks.len();
    check_cancel(opts.cancel)?;

    // 4. Embed what the (verified) cache cannot give, one cache transaction per group.
    let t = Instant::now();
    let fp = embedder.fingerprint().clone();
    let fp_dims = fp.dims;
    let cache = store_root.join("cache").join("embeddings.sqlite");
    let mut unique: Vec<&Chunk> = Vec::new();
    {
        let mut seen = std::collections::HashSet::new();
        for c in &chunks {
            if seen.insert(&c.content_id) {
                unique.push(c);
            }
        }
    }
    report.distinct_chunks = unique.len();
    let on_embed = |done: usize, total: usize| progress("embed", done, total);
    let vectors = crate::embed_stage::embed_chunks(
        embedder,
        &cache,
        &unique,
        &config.cache,
        opts.cancel,
        &on_embed,
        &mut report,
    )?;
    let rows: Vec<Vec<f32>> = chunks.iter().map(|c| vectors[&c.content_id].clone()).collect();
    drop(vectors);
    let canaries = canary::compute(embedder)?;
    for c in &canaries {
        ragsnap_embed::check_output(&[c.text.as_str()], std::slice::from_ref(&c.vector), fp_dims, fp.normalize)?;
    }
    report.timings.insert("embed".into(), elapsed(t));
    check_cancel(opts.cancel)?;

    // 5. Index, tuned against exact search.
    progress("index", 0, 1);
    let t = Instant::now();
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    let set = Arc::new(VectorSet::new(fp.dims, flat)?);
    let (tune_set, tune_cfg) = (set.clone(), config.index.clone());
    let (index, tuned) = crate::bounded::run_detached(opts.cancel, move |stop| {
        ragsnap_index::tune_stoppable(tune_set, &tune_cfg, stop)
    })??;
    report.index_kind = match tuned.kind {
        IndexKind::Exact => "exact".into(),
        IndexKind::Hnsw => "hnsw".into(),
    };
    report.recall = tuned.recall;
    report.ef_search = tuned.ef_search;
    // The lexical index over the same chunks, rows aligned with the chunk table.
    let chunks = Arc::new(chunks); // shared with the lexical build without a copy
    let lexical_input = chunks.clone();
    let lexical =
        crate::bounded::run_detached(opts.cancel, move |_| ragsnap_lexical::LexicalIndex::from_chunks(&lexical_input))?;
    report.timings.insert("index".into(), elapsed(t));
    check_cancel(opts.cancel)?;

    // 6. Gates.
    progress("gates", 0, 1);
    let t = Instant::now();
    let ctx = GateContext {
        config,
        opts,
        head: head.as_ref(),
        embedder,
        documents: &documents,
        chunks: &chunks,
        index: &index,
        set: &set,
        ef: tuned.ef_search,
    };
    report.gates = run_gates(&ctx, &report, &tuned)?;
    report.rejected_because =
        report.gates.iter().filter(|g| !g.passed).map(|g| format!("{}: {}", g.name, g.detail)).collect();
    report.timings.insert("gates".into(), elapsed(t));
    report.changed_during_run = read_files
        .iter()
        .filter(|(_, abs, before)| before.is_some() && crate::sources::stamp_now(abs) != *before)
        .map(|(display, _, _)| display.clone())
        .collect();
    drop(head);
    check_cancel(opts.cancel)?;

    // 7. Stage, publish; promote only when every gate passed.
    progress("publish", 0, 1);
    let t = Instant::now();
    let promote = report.rejected_because.is_empty();
    report.promoted = promote;
    let mut staging = store.stage()?;
    report.snapshot_id = staging.id.clone();
    let mut features = vec![
        "chunk-table-v1".to_string(),
        "vectors-f32le".to_string(),
        "documents-json".to_string(),
        "lexical-bm25-v1".to_string(),
    ];
    if tuned.kind == IndexKind::Hnsw {
        features.push("hnsw-rs-dump-0.3".into());
    }
    let now = time::unix_now();
    let manifest = Manifest {
        format_version: FormatVersion::CURRENT,
        reader_features: features,
        writer_features: vec!["staged-rename-commit".into()],
        snapshot_id: staging.id.clone(),
        parent_id: report.parent_id.clone(),
        created_at: time::rfc3339(now),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        source_digest,
        chunker: ChunkerInfo {
            version: ragsnap_chunk::CHUNKER_VERSION,
            target_tokens: ccfg.target_tokens,
            max_tokens: ccfg.max_tokens,
            min_tokens: ccfg.min_tokens,
        },
        fingerprint: fp,
        canaries,
        index: IndexInfo {
            kind: report.index_kind.clone(),
            m: tuned.params.map(|p| p.m).unwrap_or(0),
            ef_construction: tuned.params.map(|p| p.ef_construction).unwrap_or(0),
            ef_search: tuned.ef_search,
            recall: tuned.recall,
            target_recall: tuned.target_recall,
            sample: tuned.sample,
            k: tuned.k,
        },
        counts: Counts { documents: documents.len(), chunks: chunks.len(), vectors: rows.len() },
        calibration: Calibration {
            top1_quantiles: tuned.top1_quantiles.clone(),
            refusal: crate::calibrate::refusal_calibration(embedder, &chunks, &index, tuned.ef_search, &lexical)?,
        },
        files: Vec::new(),
    };
    crate::embed_stage::check_manifest_numbers(&manifest)?;
    report.timings.insert("stage".into(), elapsed(t));
    report.timings.insert("total".into(), elapsed(t_all));
    let written = (|| -> Result<()> {
        staging.write_artifact(
            "documents.json.bin",
            ArtifactKind::Documents,
            &serde_json::to_vec(&documents).expect("serialises"),
        )?;
        check_cancel(opts.cancel)?;
        staging.write_artifact("chunks.bin", ArtifactKind::Chunks, &tables::encode_chunks(&chunks))?;
        check_cancel(opts.cancel)?;
        staging.write_artifact("vectors.bin", ArtifactKind::Vectors, &tables::encode_vectors(fp_dims, &rows))?;
        check_cancel(opts.cancel)?;
        if let ragsnap_index::Index::Hnsw(h) = &index {
            staging.write_artifact("index.hnsw", ArtifactKind::Hnsw, &h.to_bytes()?)?;
        }
        staging.write_artifact("lexical.bin", ArtifactKind::Lexical, &lexical.to_bytes())?;
        staging.write_artifact(
            "report.json.bin",
            ArtifactKind::Report,
            &serde_json::to_vec_pretty(&report).expect("serialises"),
        )?;
        check_cancel(opts.cancel)
    })();
    if let Err(e) = written {
        let _ = staging.abandon();
        return Err(e);
    }
    let reason = if promote { "all gates passed".to_string() } else { report.rejected_because.join("; ") };
    store.publish(staging, manifest, promote, &reason)?;
    report.timings.insert("total".into(), elapsed(t_all));
    Ok(report)
}

struct GateContext<'a> {
    config: &'a Config,
    opts: &'a RebuildOptions<'a>,
    head: Option<&'a HeadInfo>,
    embedder: &'a dyn Embedder,
    documents: &'a [DocumentEntry],
    chunks: &'a [Chunk],
    index: &'a ragsnap_index::Index,
    set: &'a VectorSet,
    ef: usize,
}

fn gate(name: &str, passed: bool, value: f64, threshold: f64, detail: String) -> GateResult {
    GateResult { name: name.into(), passed, value, threshold, detail }
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
fn pages(index: &ragsnap_index::Index, ef: usize, v: &[f32], page_of: &dyn Fn(u32) -> Option<String>) -> Vec<String> {
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

fn run_gates(
    ctx: &GateContext<'_>,
    report: &RebuildReport,
    tuned: &ragsnap_index::TuneReport,
) -> Result<Vec<GateResult>> {
    let g = &ctx.config.gates;
    let mut out = Vec::new();

    out.push(gate(
        "recall",
        tuned.recall >= tuned.target_recall,
        tuned.recall,
        tuned.target_recall,
        format!("recall@{} {:.4} on {} sample queries ({})", tuned.k, tuned.recall, tuned.sample, report.index_kind),
    ));

    let fp_id = ctx.embedder.fingerprint().id();
    let pinned = g.pin_fingerprint.clone().or_else(|| ctx.head.map(|h| h.manifest.fingerprint.id()));
    match pinned {
        Some(p) if p != fp_id && !ctx.opts.allow_model_change => out.push(gate(
            "fingerprint",
            false,
            0.0,
            1.0,
            format!("embedding {fp_id} differs from the pinned {p}; pass --allow-model-change to switch models (everything is then re-embedded)"),
        )),
        Some(p) => out.push(gate("fingerprint", true, 1.0, 1.0, if p == fp_id { format!("{fp_id} as pinned") } else { format!("{p} -> {fp_id}, allowed") })),
        None => out.push(gate("fingerprint", true, 1.0, 1.0, format!("{fp_id} (first build, nothing pinned)"))),
    }

    if let Some(h) = ctx.head {
        let now: std::collections::HashSet<&str> = ctx.documents.iter().map(|d| d.source_path.as_str()).collect();
        let removed = h.documents.iter().filter(|d| !now.contains(d.source_path.as_str())).count();
        let doc_share = removed as f64 / h.documents.len().max(1) as f64;
        let chunk_share =
            (h.manifest.counts.chunks.saturating_sub(ctx.chunks.len())) as f64 / h.manifest.counts.chunks.max(1) as f64;
        let share = doc_share.max(chunk_share);
        out.push(gate(
            "shrinkage",
            share <= g.max_removed_share,
            share,
            g.max_removed_share,
            format!(
                "{removed} of head's {} documents removed; chunks {} -> {}",
                h.documents.len(),
                h.manifest.counts.chunks,
                ctx.chunks.len()
            ),
        ));
    }

    let attempted = report.failed.len() + ctx.documents.len();
    let fail_share = report.failed.len() as f64 / attempted.max(1) as f64;
    out.push(gate(
        "document_failures",
        fail_share <= g.max_failure_share,
        fail_share,
        g.max_failure_share,
        format!("{} of {attempted} documents failed (quarantined, retried next run)", report.failed.len()),
    ));

    let bp = &report.boilerplate;
    let bp_share = bp.blocks_removed as f64 / bp.blocks_total.max(1) as f64;
    out.push(gate(
        "boilerplate",
        bp_share <= g.max_boilerplate_share,
        bp_share,
        g.max_boilerplate_share,
        format!("{} of {} blocks were site boilerplate and were dropped", bp.blocks_removed, bp.blocks_total),
    ));

    // Hubness: one chunk text in the top 10 of too many probes.
    let golden = match &g.golden {
        Some(p) => load_golden(p)?,
        None => Vec::new(),
    };
    let golden_vectors = if golden.is_empty() {
        Vec::new()
    } else {
        let qs: Vec<&str> = golden.iter().map(|(q, _)| q.as_str()).collect();
        let vs = ctx.embedder.embed_cancellable(&qs, ctx.opts.cancel)?;
        let fp = ctx.embedder.fingerprint();
        ragsnap_embed::check_output(&qs, &vs, fp.dims, fp.normalize)?;
        vs
    };
    // Probes and the small-corpus bound count distinct texts: the first row of each.
    let distinct_rows: Vec<usize> = {
        let mut seen = std::collections::HashSet::new();
        (0..ctx.set.len()).filter(|&r| seen.insert(&ctx.chunks[r].content_id)).collect()
    };
    let n = distinct_rows.len();
    let step = (n / g.hub_probes.max(1)).max(1);
    let mut probes: Vec<(Option<usize>, &[f32])> =
        distinct_rows.iter().step_by(step).take(g.hub_probes).map(|&r| (Some(r), ctx.set.get(r))).collect();
    probes.extend(golden_vectors.iter().map(|v| (None, v.as_slice())));
    let mut appearances: HashMap<&ContentId, usize> = HashMap::new();
    for (own, v) in &probes {
        check_cancel(ctx.opts.cancel)?;
        let mut seen = std::collections::HashSet::new();
        let own_text = own.map(|r| &ctx.chunks[r].content_id);
        for (row, _) in ctx
            .index
            .search(v, 11, ctx.ef.max(11))
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
    let hub_share = count as f64 / probes.len().max(1) as f64;
    let hub_bound = g.max_hub_share.max(8.0 * 10.0 / n.max(1) as f64);
    let hub_text = ctx
        .chunks
        .iter()
        .find(|c| c.content_id == hub)
        .map(|c| c.text.chars().take(80).collect::<String>())
        .unwrap_or_default();
    out.push(gate(
        "hubness",
        hub_share <= hub_bound,
        hub_share,
        hub_bound,
        format!("most frequent top-10 chunk appears for {count} of {} probes: {hub_text:?}", probes.len()),
    ));

    if !golden.is_empty() {
        let k = g.golden_k.max(1);
        let page_of_new = |row: u32| {
            ctx.documents
                .iter()
                .find(|d| row >= d.first_chunk && row < d.first_chunk + d.chunk_count)
                .map(|d| d.source_path.clone())
        };
        let new_recall = golden_recall(&golden, &golden_vectors, k, &|v| pages(ctx.index, ctx.ef, v, &page_of_new));
        let head_recall = match ctx.head.and_then(|h| h.snapshot.as_ref()) {
            Some(hs) if hs.manifest().fingerprint == *ctx.embedder.fingerprint() => {
                let page_of_head = |row: u32| {
                    hs.documents()
                        .iter()
                        .find(|d| row >= d.first_chunk && row < d.first_chunk + d.chunk_count)
                        .map(|d| d.source_path.clone())
                };
                Some(golden_recall(&golden, &golden_vectors, k, &|v| {
                    pages(hs.index(), hs.manifest().index.ef_search, v, &page_of_head)
                }))
            }
            _ => None,
        };
        let drop = head_recall.map(|h| h - new_recall).unwrap_or(0.0);
        out.push(gate(
            "golden_queries",
            drop <= g.golden_tolerance,
            new_recall,
            head_recall.map(|h| h - g.golden_tolerance).unwrap_or(0.0),
            format!(
                "page recall@{k} on {} golden questions: {new_recall:.3} (head {})",
                golden.len(),
                head_recall.map(|h| format!("{h:.3}")).unwrap_or_else(|| "n/a".into())
            ),
        ));
    }
    Ok(out)
}

/// Prometheus text-format metrics for a rebuild, for the node_exporter textfile collector.
pub fn prometheus_metrics(report: &RebuildReport) -> String {
    let mut m = String::new();
    let mut put = |name: &str, help: &str, value: f64, labels: &str| {
        m.push_str(&format!(
            "# HELP ragsnap_{name} {help}\n# TYPE ragsnap_{name} gauge\nragsnap_{name}{labels} {value}\n"
        ));
    };
    put(
        "rebuild_promoted",
        "1 when the last rebuild was promoted to head, 0 when a gate rejected it",
        f64::from(u8::from(report.promoted)),
        "",
    );
    put("rebuild_timestamp_seconds", "When the last rebuild finished", time::unix_now() as f64, "");
    put("rebuild_files_seen", "Files found in the sources", report.files_seen as f64, "");
    put("rebuild_documents_indexed", "Documents that produced chunks", report.documents_indexed as f64, "");
    put("rebuild_documents_failed", "Documents that failed and were quarantined", report.failed.len() as f64, "");
    put(
        "rebuild_documents_skipped",
        "Entries skipped (unsupported, empty, symlink, FIFO, socket, device)",
        report.skipped.len() as f64,
        "",
    );
    put(
        "rebuild_files_excluded",
        "Files and folders left out by the source selection",
        report.files_excluded as f64,
        "",
    );
    put("rebuild_chunks", "Chunks in the snapshot", report.chunks as f64, "");
    put("rebuild_documents_reused", "Documents whose chunks were copied from head", report.documents_reused as f64, "");
    put("rebuild_documents_chunked", "Documents chunked in this run", report.documents_chunked as f64, "");
    put("rebuild_cache_hits", "Vectors reused from the embedding cache", report.cache_hits as f64, "");
    put("rebuild_cache_misses", "Vectors computed by the model", report.cache_misses as f64, "");
    let cc = &report.cache_check;
    put(
        "rebuild_cache_rejected_rows",
        "Embedding cache rows that failed their checksum or value checks (embedded again)",
        cc.rejected_rows as f64,
        "",
    );
    put("rebuild_cache_unchecked_rows", "Cache rows without a checksum (embedded again)", cc.unchecked_rows as f64, "");
    put("rebuild_cache_sampled", "Cache hits embedded again to compare", cc.sampled as f64, "");
    put(
        "rebuild_cache_quarantined",
        "1 when a damaged cache file was moved aside and an empty cache started",
        f64::from(u8::from(cc.quarantined.is_some())),
        "",
    );
    put(
        "rebuild_cache_sample_mismatches",
        "Sampled cache hits that disagreed with the model",
        cc.sample_mismatches as f64,
        "",
    );
    put(
        "rebuild_cache_untrusted",
        "1 when the sample disagreed too often and every chunk was embedded again",
        f64::from(u8::from(cc.untrusted)),
        "",
    );
    put("rebuild_recall", "Measured recall@k of the index", report.recall, "");
    put(
        "rebuild_boilerplate_blocks_removed",
        "Boilerplate blocks dropped",
        report.boilerplate.blocks_removed as f64,
        "",
    );
    m.push_str("# HELP ragsnap_rebuild_source_documents Source documents compared with head\n");
    m.push_str("# TYPE ragsnap_rebuild_source_documents gauge\n");
    let d = &report.source_diff;
    for (change, n) in [("added", d.added), ("changed", d.changed), ("removed", d.removed), ("unchanged", d.unchanged)]
    {
        m.push_str(&format!("ragsnap_rebuild_source_documents{{change=\"{change}\"}} {n}\n"));
    }
    let mut skipped: BTreeMap<&str, usize> = BTreeMap::new();
    for f in &report.skipped {
        *skipped.entry(f.kind.as_str()).or_default() += 1;
    }
    if !skipped.is_empty() {
        m.push_str("# HELP ragsnap_rebuild_skipped Entries skipped, by reason\n# TYPE ragsnap_rebuild_skipped gauge\n");
        for (kind, n) in &skipped {
            m.push_str(&format!("ragsnap_rebuild_skipped{{reason=\"{kind}\"}} {n}\n"));
        }
    }
    for (stage, secs) in &report.timings {
        m.push_str(&format!("ragsnap_rebuild_stage_seconds{{stage=\"{stage}\"}} {secs}\n"));
    }
    for g in &report.gates {
        m.push_str(&format!("ragsnap_rebuild_gate_passed{{gate=\"{}\"}} {}\n", g.name, u8::from(g.passed)));
        m.push_str(&format!("ragsnap_rebuild_gate_value{{gate=\"{}\"}} {}\n", g.name, g.value));
        m.push_str(&format!("ragsnap_rebuild_gate_threshold{{gate=\"{}\"}} {}\n", g.name, g.threshold));
    }
    m
}
