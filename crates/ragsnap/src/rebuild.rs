//! The rebuild pipeline: read sources → sanitise → drop corpus boilerplate → chunk → embed
//! (cache misses only) → tune the index → stage → publish and promote.

use crate::config::{Config, SourceConfig};
use crate::{Error, Result};
use ragsnap_chunk::{BoilerplateConfig, BoilerplateReport, ChunkConfig, IngestLimits, SanitizedDoc};
use ragsnap_core::{Chunk, ContentId, FormatVersion};
use ragsnap_embed::{canary, Embedder, EmbeddingCache};
use ragsnap_index::{IndexKind, VectorSet};
use ragsnap_store::{
    tables, time, ArtifactKind, Calibration, ChunkerInfo, Counts, DocumentEntry, IndexInfo, Manifest, Store,
};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
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
    /// Files skipped (unsupported type, empty page): not failures.
    pub skipped: Vec<DocFailure>,
    /// Documents that failed (binary, too large, unreadable).
    pub failed: Vec<DocFailure>,
    /// Chunks in the snapshot.
    pub chunks: usize,
    /// Distinct chunk texts.
    pub distinct_chunks: usize,
    /// Vectors found in the embedding cache.
    pub cache_hits: usize,
    /// Vectors computed by the model.
    pub cache_misses: usize,
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
}

struct Loaded {
    path: String,
    url_prefix: Option<String>,
    content_blake3: String,
    result: std::result::Result<SanitizedDoc, DocFailure>,
}

fn failure_kind(e: &ragsnap_chunk::IngestError) -> &'static str {
    use ragsnap_chunk::IngestError as E;
    match e {
        E::TooLarge { .. } => "too_large",
        E::Binary { .. } => "binary",
        E::UnsupportedType { .. } => "unsupported",
        E::Empty { .. } => "empty",
        _ => "invalid",
    }
}

/// Files under `dir`, sorted, as (path relative to dir with `/`, absolute path). Hidden
/// entries are skipped; symlinks are never followed.
pub fn list_files(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let rd = std::fs::read_dir(&d).map_err(|e| Error::io(&d, e))?;
        for e in rd {
            let e = e.map_err(|e| Error::io(&d, e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let ft = e.file_type().map_err(|x| Error::io(e.path(), x))?;
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                let rel = e.path().strip_prefix(dir).unwrap_or(&e.path()).to_string_lossy().replace('\\', "/");
                out.push((rel, e.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn read_doc(
    display: &str,
    abs: &Path,
    limits: &IngestLimits,
) -> (String, std::result::Result<SanitizedDoc, DocFailure>) {
    let fail = |kind: &str, error: String| DocFailure { path: display.to_string(), kind: kind.to_string(), error };
    match std::fs::metadata(abs) {
        Ok(md) if md.len() > limits.max_bytes => {
            let e = ragsnap_chunk::IngestError::TooLarge {
                path: display.to_string(),
                size: md.len(),
                limit: limits.max_bytes,
            };
            return (String::new(), Err(fail("too_large", e.to_string())));
        }
        Ok(_) => {}
        Err(e) => return (String::new(), Err(fail("io", format!("{display}: {e}")))),
    }
    let bytes = match std::fs::read(abs) {
        Ok(b) => b,
        Err(e) => return (String::new(), Err(fail("io", format!("{display}: {e}")))),
    };
    let hash = ragsnap_core::blake3_hex(&bytes);
    let result = ragsnap_chunk::ingest(display, &bytes, limits).map_err(|e| fail(failure_kind(&e), e.to_string()));
    (hash, result)
}

fn elapsed(t: Instant) -> f64 {
    (t.elapsed().as_secs_f64() * 1000.0).round() / 1000.0
}

/// Rebuild from `sources` (or the config's) into the store at `store_root`, and promote.
pub fn rebuild(
    store_root: &Path,
    config: &Config,
    sources: &[SourceConfig],
    embedder: &dyn Embedder,
) -> Result<RebuildReport> {
    let mut report = RebuildReport { fingerprint_id: embedder.fingerprint().id(), ..Default::default() };
    let sources: Vec<SourceConfig> = if sources.is_empty() { config.sources.clone() } else { sources.to_vec() };
    if sources.is_empty() {
        return Err(Error::Invalid("no sources: pass --source DIR or add [[sources]] to ragsnap.toml".into()));
    }
    let t_all = Instant::now();
    let mut store = Store::open_writer(store_root)?;
    report.parent_id = store.catalog().head_id()?;

    // 1. Read and sanitise every document.
    let t = Instant::now();
    let limits = IngestLimits { max_bytes: config.ingest.max_bytes };
    let mut files = Vec::new();
    for s in &sources {
        if !s.dir.is_dir() {
            return Err(Error::Invalid(format!("source {} is not a folder", s.dir.display())));
        }
        for (rel, abs) in list_files(&s.dir)? {
            let display = match (&s.name, sources.len() > 1) {
                (Some(n), _) => format!("{n}/{rel}"),
                (None, true) => {
                    format!("{}/{rel}", s.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default())
                }
                (None, false) => rel,
            };
            files.push((display, abs, s.url_prefix.clone()));
        }
    }
    report.files_seen = files.len();
    let loaded: Vec<Loaded> = files
        .par_iter()
        .map(|(display, abs, prefix)| {
            let (content_blake3, result) = read_doc(display, abs, &limits);
            Loaded { path: display.clone(), url_prefix: prefix.clone(), content_blake3, result }
        })
        .collect();
    let source_digest = {
        let mut h = blake3::Hasher::new();
        for l in &loaded {
            h.update(l.path.as_bytes());
            h.update(&[0]);
            h.update(l.content_blake3.as_bytes());
            h.update(b"\n");
        }
        h.finalize().to_hex().to_string()
    };
    let mut docs: Vec<(SanitizedDoc, String, Option<String>)> = Vec::new();
    for l in loaded {
        match l.result {
            Ok(d) => docs.push((d, l.content_blake3, l.url_prefix)),
            Err(f) if f.kind == "unsupported" || f.kind == "empty" => report.skipped.push(f),
            Err(f) => report.failed.push(f),
        }
    }
    report.timings.insert("sanitize".into(), elapsed(t));

    // 2. Corpus-level boilerplate.
    let t = Instant::now();
    let bp = BoilerplateConfig { min_pages: config.boilerplate.min_pages, min_share: config.boilerplate.min_share };
    let mut sanitized: Vec<SanitizedDoc> = docs.iter().map(|d| d.0.clone()).collect();
    report.boilerplate = ragsnap_chunk::remove_boilerplate(&mut sanitized, &bp);
    report.timings.insert("boilerplate".into(), elapsed(t));

    // 3. Chunk with the model's own token counter.
    let t = Instant::now();
    let max_tokens = config.chunker.max_tokens.min(embedder.fingerprint().max_tokens);
    let ccfg = ChunkConfig {
        target_tokens: config.chunker.target_tokens.min(max_tokens),
        max_tokens,
        min_tokens: config.chunker.min_tokens,
    };
    let count = |s: &str| embedder.count_tokens(s);
    let per_doc: Vec<Vec<Chunk>> = sanitized
        .par_iter()
        .zip(docs.par_iter())
        .map(|(d, (_, _, prefix))| {
            let url = d.canonical_url.clone().or_else(|| prefix.as_ref().map(|p| format!("{p}{}", d.source_path)));
            ragsnap_chunk::chunk_doc(d, url.as_deref(), &ccfg, &count)
        })
        .collect();
    let mut chunks: Vec<Chunk> = Vec::new();
    let mut documents: Vec<DocumentEntry> = Vec::new();
    for ((d, (_, hash, _)), cs) in sanitized.iter().zip(&docs).zip(per_doc) {
        if cs.is_empty() {
            report.skipped.push(DocFailure {
                path: d.source_path.clone(),
                kind: "empty".into(),
                error: format!("{}: no content left after sanitising", d.source_path),
            });
            continue;
        }
        documents.push(DocumentEntry {
            source_path: d.source_path.clone(),
            content_blake3: hash.clone(),
            url: cs[0].url.clone(),
            title: d.title.clone(),
            first_chunk: chunks.len() as u32,
            chunk_count: cs.len() as u32,
        });
        chunks.extend(cs);
    }
    if chunks.is_empty() {
        return Err(Error::Invalid(format!(
            "the sources produced no chunks ({} files seen, {} failed)",
            report.files_seen,
            report.failed.len()
        )));
    }
    report.documents_indexed = documents.len();
    report.chunks = chunks.len();
    report.timings.insert("chunk".into(), elapsed(t));

    // 4. Embed cache misses only.
    let t = Instant::now();
    let fp = embedder.fingerprint().clone();
    let fp_dims = fp.dims;
    let fp_id = fp.id();
    let cache = EmbeddingCache::open(&store_root.join("cache").join("embeddings.sqlite"))?;
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
    let ids: Vec<&ContentId> = unique.iter().map(|c| &c.content_id).collect();
    let mut vectors: HashMap<ContentId, Vec<f32>> = cache.get_many(&fp_id, fp.dims, &ids)?;
    report.cache_hits = vectors.len();
    let misses: Vec<&Chunk> = unique.iter().copied().filter(|c| !vectors.contains_key(&c.content_id)).collect();
    report.cache_misses = misses.len();
    for batch in misses.chunks(256) {
        let texts: Vec<&str> = batch.iter().map(|c| c.text.as_str()).collect();
        let vs = embedder.embed(&texts)?;
        let items: Vec<(&ContentId, &[f32])> =
            batch.iter().zip(&vs).map(|(c, v)| (&c.content_id, v.as_slice())).collect();
        cache.put_many(&fp_id, &items)?;
        for (c, v) in batch.iter().zip(vs) {
            vectors.insert(c.content_id.clone(), v);
        }
    }
    let rows: Vec<Vec<f32>> = chunks.iter().map(|c| vectors[&c.content_id].clone()).collect();
    let canaries = canary::compute(embedder)?;
    report.timings.insert("embed".into(), elapsed(t));

    // 5. Index, tuned against exact search.
    let t = Instant::now();
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    let set = Arc::new(VectorSet::new(fp.dims, flat)?);
    let (index, tuned) = ragsnap_index::tune(set, &config.index)?;
    report.index_kind = match tuned.kind {
        IndexKind::Exact => "exact".into(),
        IndexKind::Hnsw => "hnsw".into(),
    };
    report.recall = tuned.recall;
    report.ef_search = tuned.ef_search;
    report.timings.insert("index".into(), elapsed(t));

    // 6. Stage, publish, promote.
    let t = Instant::now();
    let mut staging = store.stage()?;
    report.snapshot_id = staging.id.clone();
    let mut features = vec!["chunk-table-v1".to_string(), "vectors-f32le".to_string(), "documents-json".to_string()];
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
        calibration: Calibration { top1_quantiles: tuned.top1_quantiles.clone() },
        files: Vec::new(),
    };
    let written = (|| -> Result<()> {
        staging.write_artifact(
            "documents.json.bin",
            ArtifactKind::Documents,
            &serde_json::to_vec(&documents).expect("serialises"),
        )?;
        staging.write_artifact("chunks.bin", ArtifactKind::Chunks, &tables::encode_chunks(&chunks))?;
        staging.write_artifact("vectors.bin", ArtifactKind::Vectors, &tables::encode_vectors(fp_dims, &rows))?;
        if let ragsnap_index::Index::Hnsw(h) = &index {
            staging.write_artifact("index.hnsw", ArtifactKind::Hnsw, &h.to_bytes()?)?;
        }
        Ok(())
    })();
    if let Err(e) = written {
        let _ = staging.abandon();
        return Err(e);
    }
    store.publish(staging, manifest, true, "nightly rebuild")?;
    report.promoted = true;
    report.timings.insert("publish".into(), elapsed(t));
    report.timings.insert("total".into(), elapsed(t_all));
    Ok(report)
}
