//! The rebuild pipeline, one function per stage, each returning a typed value; the report is
//! assembled from those values at the end ([`rebuild_with`] reads as this table):
//!
//! | stage | where | returns |
//! |---|---|---|
//! | 0. model check | `model::check` | `ModelCheck` (a change not allowed is refused here) |
//! | 1–3. read sources → corpus boilerplate → chunk or reuse | `prepare::prepare` (`crate::ingest::prepare` with head's chunks) | `Prepared` |
//! | unchanged? | `unchanged::build_key` compared with head's manifest | the key |
//! | 4. embed misses | `embed::embed_chunks` and the canaries | vectors, `EmbedStats` |
//! | 5. build indexes | `index::build` | `Indexes` |
//! | 6. gates | `gates::run`, one function per gate | `Vec<GateResult>` |
//! | 7. publish | `publish::description`, then `crate::snapshot::write::SnapshotWriter` | the snapshot, head when every gate passed |
//!
//! A rejected build is kept (status `rejected`, not head) with its report. A build whose key
//! equals head's writes nothing (outcome `unchanged`) unless [`RebuildOptions::force`].
//! [`metrics`] turns any run's outcome, success or not, into Prometheus metrics.

pub(crate) mod embed;
mod gates;
mod index;
pub mod metrics;
mod model;
mod prepare;
mod publish;
mod unchanged;

use crate::config::{Config, SourceConfig};
use crate::snapshot::write::{Contents, SnapshotWriter};
use crate::{Error, Result};
use ragsnap_chunk::BoilerplateReport;
use ragsnap_embed::{canary, Embedder};
use ragsnap_store::{DocumentEntry, Store};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

pub use index::{IndexMode, IndexUpdate};
pub use metrics::{prometheus_metrics, run_metrics, write_metrics};

/// Why an entry of the sources was not indexed. Serialised (reports, metrics labels) as the
/// snake_case names below.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// Unreadable file or folder (failure).
    Io,
    /// File name not valid UTF-8 (skipped).
    Name,
    /// Symbolic link, never followed (skipped).
    Symlink,
    /// Named pipe (skipped).
    Fifo,
    /// Socket (skipped).
    Socket,
    /// Block or character device (skipped).
    Device,
    /// Another kind of non-regular entry (skipped).
    Special,
    /// Replaced by another file between listing and reading (failure; read next run).
    Changed,
    /// Larger than `[ingest] max_bytes` (failure).
    TooLarge,
    /// Not text (failure).
    Binary,
    /// A file type that is not read (skipped).
    Unsupported,
    /// No text left after sanitising (skipped).
    Empty,
    /// Mostly links to other pages (skipped).
    Hub,
    /// Any other document the sanitiser refused (failure).
    Invalid,
}

impl FailureKind {
    /// The name in reports and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            FailureKind::Io => "io",
            FailureKind::Name => "name",
            FailureKind::Symlink => "symlink",
            FailureKind::Fifo => "fifo",
            FailureKind::Socket => "socket",
            FailureKind::Device => "device",
            FailureKind::Special => "special",
            FailureKind::Changed => "changed",
            FailureKind::TooLarge => "too_large",
            FailureKind::Binary => "binary",
            FailureKind::Unsupported => "unsupported",
            FailureKind::Empty => "empty",
            FailureKind::Hub => "hub",
            FailureKind::Invalid => "invalid",
        }
    }
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl PartialEq<&str> for FailureKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// What a rebuild did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Every gate passed: the new snapshot is head.
    #[default]
    Promoted,
    /// A gate failed: the new snapshot is kept as rejected; head is unchanged.
    Rejected,
    /// Sources and settings match head's: no snapshot was written.
    Unchanged,
}

/// A document that could not be indexed, and why.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DocFailure {
    /// Source path.
    pub path: String,
    /// Why (`too_large`, `binary`, `unsupported`, `empty`, `io`, ...).
    pub kind: FailureKind,
    /// Full message.
    pub error: String,
}

/// What a rebuild did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RebuildReport {
    /// The snapshot written (when unchanged: head, which already holds these sources).
    pub snapshot_id: String,
    /// What the run did: `promoted`, `rejected` or `unchanged`.
    pub outcome: Outcome,
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
    pub cache_check: embed::CacheCheck,
    /// Corpus-level boilerplate removed.
    pub boilerplate: BoilerplateReport,
    /// Index kind chosen.
    pub index_kind: String,
    /// Whether head's graph was updated or the index built from scratch, and why.
    pub index_update: IndexUpdate,
    /// Measured recall.
    pub recall: f64,
    /// Chosen ef_search.
    pub ef_search: usize,
    /// Seconds per stage.
    pub timings: BTreeMap<String, f64>,
    /// Peak resident memory of the process (`VmHWM`, KiB) when each stage ended: `prepare`
    /// (read, sanitise, chunk), `embed`, `index`, `gates`, `publish`. Empty where the system
    /// does not report it.
    pub peak_rss_kib: BTreeMap<String, u64>,
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
    /// Accept an embedding fingerprint different from head's (or the pinned one). Without it a
    /// model change is refused before anything is read or embedded.
    pub allow_model_change: bool,
    /// Build and publish a new snapshot even when sources and settings match head's.
    pub force: bool,
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

/// Record the process's peak resident memory so far (`VmHWM` of `/proc/self/status`) as the
/// value of `stage`, and log it; nothing where the file is missing.
fn note_peak_rss(into: &mut BTreeMap<String, u64>, stage: &str) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status.lines().find_map(|l| l.strip_prefix("VmHWM:")?.split_whitespace().next()?.parse::<u64>().ok());
    if let Some(kib) = kib {
        tracing::info!(stage, peak_rss_mib = kib / 1024, "memory high-water mark");
        into.insert(stage.to_string(), kib);
    }
}

fn elapsed(t: Instant) -> f64 {
    (t.elapsed().as_secs_f64() * 1000.0).round() / 1000.0
}

/// Head when the build started: its manifest, documents and the opened snapshot (for reusing
/// its chunks and comparing golden recall).
pub(crate) struct HeadInfo {
    pub manifest: ragsnap_store::Manifest,
    pub documents: Vec<DocumentEntry>,
    pub snapshot: Option<crate::Snapshot>,
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

/// Head's HNSW graph and its payload, for the index stage to update (`None` when head has no
/// graph).
fn head_graph<'h>(store: &Store, head: Option<&'h HeadInfo>) -> Result<Option<index::HeadGraph<'h>>> {
    let Some((h, snap)) = head.and_then(|h| Some((h, h.snapshot.as_ref()?))) else { return Ok(None) };
    let ragsnap_index::Index::Hnsw(graph) = snap.index() else { return Ok(None) };
    let kind = ragsnap_store::ArtifactKind::Hnsw;
    let opened = store.open_snapshot_keeping(snap.id(), &[kind])?;
    let Some(payload) = opened.payload(kind)? else { return Ok(None) };
    Ok(Some(index::HeadGraph {
        index: graph,
        payload,
        fingerprint_id: h.manifest.fingerprint.id(),
        target_recall: h.manifest.index.target_recall,
        k: h.manifest.index.k,
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
    let sources: Vec<SourceConfig> =
        if opts.sources.is_empty() { config.sources.clone() } else { opts.sources.clone() };
    if sources.is_empty() {
        return Err(Error::Invalid("no sources: pass --source DIR or add [[sources]] to ragsnap.toml".into()));
    }
    let t_all = Instant::now();
    let mut store = crate::open_store_writer(store_root)?;
    let parent_id = store.catalog().head_id()?;
    let head = load_head(&store)?;
    let progress = |stage: &str, done: usize, total: usize| {
        if done == 0 {
            tracing::info!(stage, total, "stage started");
        }
        if let Some(p) = opts.progress {
            p(stage, done as u64, total as u64);
        }
    };

    // 0. The model, before anything is read or embedded.
    let model = model::check(config, head.as_ref(), embedder, opts.allow_model_change)?;

    // 1-3. Read, sanitise, corpus boilerplate, chunk (or take head's chunks).
    let prepared = prepare::prepare(&sources, config, head.as_ref(), embedder, opts)?;
    let mut timings = prepared.summary.timings.clone();
    let mut peak_rss = BTreeMap::new();
    note_peak_rss(&mut peak_rss, "prepare");
    check_cancel(opts.cancel)?;

    // Unchanged: head already holds exactly what this build would write.
    let build_key = unchanged::build_key(&prepared, config, &model.current);
    if let Some(h) = head.as_ref().filter(|h| !opts.force && h.manifest.build_key.as_deref() == Some(&build_key)) {
        tracing::info!(head = %h.manifest.snapshot_id, "sources and settings match head's; no new snapshot");
        timings.insert("total".into(), elapsed(t_all));
        return Ok(unchanged_report(h, prepared, timings));
    }

    // 4. Embed what the (verified) cache cannot give, one cache transaction per group.
    let t = Instant::now();
    let fp = embedder.fingerprint().clone();
    let unique: Vec<&ragsnap_core::Chunk> = {
        let mut seen = std::collections::HashSet::new();
        prepared.chunks.iter().filter(|c| seen.insert(&c.content_id)).collect()
    };
    let distinct_chunks = unique.len();
    let cache = ragsnap_store::layout::embedding_cache_path(store_root);
    let on_embed = |done: usize, total: usize| progress("embed", done, total);
    let (vectors, embed_stats) = embed::embed_chunks(embedder, &cache, &unique, &config.cache, opts.cancel, &on_embed)?;
    drop(unique);
    let rows: Vec<Vec<f32>> = prepared.chunks.iter().map(|c| vectors[&c.content_id].clone()).collect();
    drop(vectors);
    let canaries = canary::compute(embedder)?;
    for c in &canaries {
        ragsnap_embed::check_output(&[c.text.as_str()], std::slice::from_ref(&c.vector), fp.dims, fp.normalize)?;
    }
    timings.insert("embed".into(), elapsed(t));
    note_peak_rss(&mut peak_rss, "embed");
    check_cancel(opts.cancel)?;

    // 5. Indexes: vectors tuned against exact search, and the lexical index.
    progress("index", 0, 1);
    let t = Instant::now();
    let prepare::Prepared { summary, documents, chunks, read_files, source_diff, source_digest, chunk_config } =
        prepared;
    let chunks = Arc::new(chunks); // shared with the lexical build without a copy
    let head_graph = head_graph(&store, head.as_ref())?;
    let indexes = index::build(&rows, fp.dims, &chunks, config, opts.cancel, &model.current, head_graph)?;
    timings.insert("index".into(), elapsed(t));
    note_peak_rss(&mut peak_rss, "index");

    // 6. Gates.
    progress("gates", 0, 1);
    let t = Instant::now();
    let gates = gates::run(&gates::GateContext {
        config,
        cancel: opts.cancel,
        head: head.as_ref(),
        embedder,
        model: &model,
        ingest: &summary,
        documents: &documents,
        chunks: &chunks,
        index: &indexes.index,
        set: &indexes.set,
        tuned: &indexes.tuned,
    })?;
    let rejected_because: Vec<String> =
        gates.iter().filter(|g| !g.passed).map(|g| format!("{}: {}", g.name, g.detail)).collect();
    timings.insert("gates".into(), elapsed(t));
    note_peak_rss(&mut peak_rss, "gates");
    let changed_during_run = prepare::changed_during_run(&read_files);
    drop(head);
    check_cancel(opts.cancel)?;

    // 7. Publish; promote only when every gate passed.
    progress("publish", 0, 1);
    let t = Instant::now();
    let outcome = if rejected_because.is_empty() { Outcome::Promoted } else { Outcome::Rejected };
    let tuned = &indexes.tuned;
    // The snapshot's own refusal floors, from in-corpus and out-of-corpus probes.
    let refusal =
        crate::calibrate::refusal_calibration(embedder, &chunks, &indexes.index, tuned.ef_search, &indexes.lexical)?;
    let writer = SnapshotWriter::begin(&mut store)?;
    let contents = Contents {
        documents: &documents,
        chunks: &chunks,
        vectors: &rows,
        index: &indexes.index,
        lexical: &indexes.lexical,
    };
    let manifest = writer.manifest(
        &contents,
        publish::description(publish::BuildFacts {
            parent_id: parent_id.clone(),
            source_digest,
            build_key,
            chunk_config: &chunk_config,
            fingerprint: fp,
            canaries,
            index: &indexes.index,
            tuned,
            refusal,
        }),
    )?;
    timings.insert("stage".into(), elapsed(t));
    timings.insert("total".into(), elapsed(t_all));
    note_peak_rss(&mut peak_rss, "publish");
    let reason = if rejected_because.is_empty() { "all gates passed".to_string() } else { rejected_because.join("; ") };
    let mut report = RebuildReport {
        snapshot_id: writer.id().to_string(),
        outcome,
        parent_id,
        promoted: outcome == Outcome::Promoted,
        files_seen: summary.files_seen,
        documents_indexed: documents.len(),
        source_diff,
        documents_reused: summary.documents_reused,
        documents_chunked: summary.documents_chunked,
        files_excluded: summary.files_excluded,
        skipped: summary.skipped,
        failed: summary.failed,
        chunks: chunks.len(),
        duplicate_chunks_dropped: summary.duplicate_chunks_dropped,
        pages_with_repeated_chunks: summary.pages_with_repeated_chunks,
        ingest_peak_inflight_bytes: summary.peak_inflight_bytes,
        distinct_chunks,
        cache_hits: embed_stats.cache_hits,
        cache_misses: embed_stats.cache_misses,
        cache_check: embed_stats.cache_check,
        boilerplate: summary.boilerplate,
        index_kind: indexes.index.kind().to_string(),
        index_update: indexes.update.clone(),
        recall: tuned.recall,
        ef_search: tuned.ef_search,
        timings,
        peak_rss_kib: peak_rss,
        fingerprint_id: model.current,
        truncated_inputs: embed_stats.truncated_inputs,
        gates,
        rejected_because,
        changed_during_run,
    };
    writer.write(&mut store, &contents, manifest, &report, report.promoted, &reason, opts.cancel)?;
    report.timings.insert("total".into(), elapsed(t_all));
    Ok(report)
}

/// The report of a run that found head already holding what it would build.
fn unchanged_report(head: &HeadInfo, prepared: prepare::Prepared, timings: BTreeMap<String, f64>) -> RebuildReport {
    let m = &head.manifest;
    let prepare::Prepared { summary, documents, chunks, read_files, source_diff, .. } = prepared;
    RebuildReport {
        snapshot_id: m.snapshot_id.clone(),
        outcome: Outcome::Unchanged,
        parent_id: Some(m.snapshot_id.clone()),
        promoted: false,
        files_seen: summary.files_seen,
        documents_indexed: documents.len(),
        source_diff,
        documents_reused: summary.documents_reused,
        documents_chunked: summary.documents_chunked,
        files_excluded: summary.files_excluded,
        skipped: summary.skipped,
        failed: summary.failed,
        chunks: chunks.len(),
        duplicate_chunks_dropped: summary.duplicate_chunks_dropped,
        pages_with_repeated_chunks: summary.pages_with_repeated_chunks,
        ingest_peak_inflight_bytes: summary.peak_inflight_bytes,
        distinct_chunks: chunks.iter().map(|c| &c.content_id).collect::<std::collections::HashSet<_>>().len(),
        cache_hits: 0,
        cache_misses: 0,
        cache_check: Default::default(),
        boilerplate: summary.boilerplate,
        index_kind: m.index.kind.to_string(),
        index_update: IndexUpdate {
            reason: "nothing built: head already holds these sources".into(),
            ..Default::default()
        },
        recall: m.index.recall,
        ef_search: m.index.ef_search,
        timings,
        peak_rss_kib: BTreeMap::new(),
        fingerprint_id: m.fingerprint.id(),
        truncated_inputs: 0,
        gates: Vec::new(),
        rejected_because: Vec::new(),
        changed_during_run: prepare::changed_during_run(&read_files),
    }
}

impl RebuildReport {
    /// Whether the run succeeded: a snapshot was promoted, or head already held the sources.
    /// (The `ragsnap` binary exits 0 then, 6 for a rejected build.)
    pub fn succeeded(&self) -> bool {
        self.outcome != Outcome::Rejected
    }
}
