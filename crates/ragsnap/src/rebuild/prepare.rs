//! Stages 1–3 of the rebuild: read sources → corpus boilerplate → chunk or reuse. The work is
//! [`crate::ingest::prepare`] (the pipeline `ragsnap chunk` shows); this stage hands it head's
//! chunks for every document whose chunk key is unchanged, and lays the result out as the
//! snapshot's document list and chunk table.

use super::{DocFailure, HeadInfo, SourceDiff};
use crate::config::{Config, SourceConfig};
use crate::ingest::{self, PreparedCorpus};
use crate::sources::Stamp;
use crate::{Embedder, Error, Result};
use ragsnap_chunk::{BoilerplateReport, ChunkConfig};
use ragsnap_core::Chunk;
use ragsnap_store::DocumentEntry;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// What reading and chunking found, for the report.
#[derive(Clone, Debug, Default)]
pub(crate) struct IngestSummary {
    pub files_seen: usize,
    pub files_excluded: usize,
    pub skipped: Vec<DocFailure>,
    pub failed: Vec<DocFailure>,
    pub boilerplate: BoilerplateReport,
    pub documents_reused: usize,
    pub documents_chunked: usize,
    pub duplicate_chunks_dropped: usize,
    pub pages_with_repeated_chunks: BTreeMap<String, usize>,
    pub peak_inflight_bytes: u64,
    /// Seconds of `sanitize`, `boilerplate`, `chunk`.
    pub timings: BTreeMap<String, f64>,
}

/// The corpus as the snapshot will hold it.
pub(crate) struct Prepared {
    pub summary: IngestSummary,
    /// Documents with at least one chunk, each naming its rows of `chunks`.
    pub documents: Vec<DocumentEntry>,
    /// The chunk table, in document order.
    pub chunks: Vec<Chunk>,
    /// Every file read: shown path, opened path, size and time when read (to find files that
    /// changed while the build ran).
    pub read_files: Vec<(String, PathBuf, Option<Stamp>)>,
    /// The sources compared with head's documents.
    pub source_diff: SourceDiff,
    /// blake3 over every read file's path and content hash.
    pub source_digest: String,
    /// The chunker settings used.
    pub chunk_config: ChunkConfig,
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

/// Run stages 1–3 over `sources`, reusing head's chunks where nothing the chunker reads changed.
pub(crate) fn prepare(
    sources: &[SourceConfig],
    config: &Config,
    head: Option<&HeadInfo>,
    embedder: &dyn Embedder,
    opts: &super::RebuildOptions<'_>,
) -> Result<Prepared> {
    let head_docs: HashMap<&str, &DocumentEntry> =
        head.map(|h| h.documents.iter().map(|d| (d.source_path.as_str(), d)).collect()).unwrap_or_default();
    let head_snapshot = head.and_then(|h| h.snapshot.as_ref());
    let reuse = |path: &str, key: &str| {
        head_docs
            .get(path)
            .filter(|e| e.chunk_key.as_deref() == Some(key))
            .and_then(|e| head_snapshot.and_then(|h| chunks_of(h, e)))
    };
    let progress = |stage: &str, done: u64, total: u64| {
        if done == 0 {
            tracing::info!(stage, total, "stage started");
        }
        if let Some(p) = opts.progress {
            p(stage, done, total);
        }
    };
    let corpus = ingest::prepare(
        &ingest::Inputs::Folders(sources),
        config,
        ingest::Tokens::Embedder(embedder),
        &ingest::PrepareOptions {
            cancel: opts.cancel,
            progress: Some(&progress),
            reuse: Some(&reuse),
            after_listing: opts.after_listing,
        },
    )?;
    let source_diff = diff_with_head(&corpus, &head_docs);
    let PreparedCorpus {
        files_seen,
        excluded,
        read,
        skipped,
        failed,
        source_digest,
        boilerplate,
        chunk_config,
        documents: prepared_docs,
        documents_reused,
        documents_chunked,
        timings,
        duplicate_chunks_dropped,
        pages_with_repeated_chunks,
        hubs: _,
        peak_inflight_bytes,
    } = corpus;
    let mut chunks: Vec<Chunk> = Vec::new();
    let mut documents: Vec<DocumentEntry> = Vec::new();
    for d in prepared_docs {
        documents.push(DocumentEntry {
            source_path: d.doc.source_path.clone(),
            content_blake3: d.content_blake3,
            url: d.chunks[0].url.clone(),
            title: d.doc.title.clone(),
            first_chunk: chunks.len() as u32,
            chunk_count: d.chunks.len() as u32,
            chunk_key: Some(d.chunk_key),
        });
        chunks.extend(d.chunks);
    }
    if chunks.is_empty() {
        return Err(Error::Invalid(format!(
            "the sources produced no chunks ({files_seen} files seen, {} failed)",
            failed.len()
        )));
    }
    Ok(Prepared {
        summary: IngestSummary {
            files_seen,
            files_excluded: excluded,
            skipped,
            failed,
            boilerplate,
            documents_reused,
            documents_chunked,
            duplicate_chunks_dropped,
            pages_with_repeated_chunks,
            peak_inflight_bytes,
            timings,
        },
        documents,
        chunks,
        read_files: read.into_iter().map(|r| (r.path, r.abs, r.stamp)).collect(),
        source_diff,
        source_digest,
        chunk_config,
    })
}

/// The sources compared with head's documents, by path and blake3 of the bytes read.
fn diff_with_head(corpus: &PreparedCorpus, head_docs: &HashMap<&str, &DocumentEntry>) -> SourceDiff {
    let now: HashMap<&str, &str> =
        corpus.read.iter().filter(|r| r.sanitized).map(|r| (r.path.as_str(), r.content_blake3.as_str())).collect();
    let mut diff = SourceDiff::default();
    for (path, hash) in &now {
        match head_docs.get(path) {
            None => diff.added += 1,
            Some(e) if e.content_blake3 == *hash => diff.unchanged += 1,
            Some(_) => diff.changed += 1,
        }
    }
    diff.removed = head_docs.keys().filter(|p| !now.contains_key(*p)).count();
    diff
}

/// Files whose size or modification time changed while the build ran.
pub(crate) fn changed_during_run(read_files: &[(String, PathBuf, Option<Stamp>)]) -> Vec<String> {
    read_files
        .iter()
        .filter(|(_, abs, before)| before.is_some() && crate::sources::stamp_now(abs) != *before)
        .map(|(display, _, _)| display.clone())
        .collect()
}
