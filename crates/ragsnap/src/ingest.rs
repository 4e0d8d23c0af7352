//! From source folders to chunks: list → read (no-follow) → sanitise → corpus boilerplate →
//! chunk. [`prepare`] is the first three stages of `rebuild` and all of `ragsnap chunk`, so the
//! two cannot drift: the chunk command shows exactly what a rebuild with the same settings would
//! index.

use crate::config::{Config, SourceConfig};
use crate::rebuild::{DocFailure, FailureKind};
use crate::sources::{self, ListedFile, ReadOutcome, Stamp};
use crate::{Error, Result};
use ragsnap_chunk::{BoilerplateConfig, BoilerplateReport, ChunkConfig, IngestLimits, SanitizedDoc};
use ragsnap_core::Chunk;
use ragsnap_embed::{Embedder, TokenCounter};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use url::Url;

/// The model's token counter, from a loaded embedder (rebuild) or from the tokenizer alone
/// (`ragsnap chunk`, no ONNX session). Both count with the same tokenizer file the same way.
#[derive(Clone, Copy)]
pub enum Tokens<'a> {
    /// A loaded embedder.
    Embedder(&'a dyn Embedder),
    /// The model's tokenizer only.
    Tokenizer(&'a TokenCounter),
}

impl Tokens<'_> {
    /// Model tokens in `text`.
    pub fn count(&self, text: &str) -> usize {
        match self {
            Tokens::Embedder(e) => e.count_tokens(text),
            Tokens::Tokenizer(t) => t.count_tokens(text),
        }
    }

    /// The model's maximum input length.
    pub fn max_tokens(&self) -> usize {
        match self {
            Tokens::Embedder(e) => e.fingerprint().max_tokens,
            Tokens::Tokenizer(t) => t.max_tokens(),
        }
    }

    /// Whether counts add up over words (see `Embedder::word_additive_counts`).
    pub fn word_additive(&self) -> bool {
        match self {
            Tokens::Embedder(e) => e.word_additive_counts(),
            Tokens::Tokenizer(t) => t.word_additive_counts(),
        }
    }

    /// What chunk keys are salted with: the embedding fingerprint id, or the tokenizer's hash.
    fn key_salt(&self) -> String {
        match self {
            Tokens::Embedder(e) => e.fingerprint().id(),
            Tokens::Tokenizer(t) => format!("tokenizer:{}", t.tokenizer_blake3()),
        }
    }
}

/// Head's chunks for a document whose chunk key is unchanged: `(source path, chunk key)` →
/// chunks, or `None` to chunk it again.
pub type ReuseFn<'a> = dyn Fn(&str, &str) -> Option<Vec<Chunk>> + Sync + 'a;

/// Progress callback: (stage, done, total).
pub type ProgressFn<'a> = dyn Fn(&str, u64, u64) + Sync + 'a;

/// Test seam called between listing and reading (see [`PrepareOptions::after_listing`]).
#[doc(hidden)]
pub type ListingHook<'a> = dyn Fn(&[ListedFile]) + Sync + 'a;

/// How to run [`prepare`].
#[derive(Default)]
pub struct PrepareOptions<'a> {
    /// Stop after reading when set (checked between stages).
    pub cancel: Option<&'a AtomicBool>,
    /// Progress: (`read`, done, total).
    pub progress: Option<&'a ProgressFn<'a>>,
    /// Chunks to take over instead of chunking again (rebuild passes head's).
    pub reuse: Option<&'a ReuseFn<'a>>,
    /// Test seam: called with the listed files after listing and before any is read, to widen
    /// the window in which the tree can change under the build.
    #[doc(hidden)]
    pub after_listing: Option<&'a ListingHook<'a>>,
}

/// Where the documents come from.
#[derive(Clone, Debug)]
pub enum Inputs<'a> {
    /// Source folders, walked with the config's `[source]` selection.
    Folders(&'a [SourceConfig]),
    /// Files named one by one (shown by the path as given; no URL prefix).
    Files(&'a [PathBuf]),
}

/// One file as read.
#[derive(Clone, Debug)]
pub struct ReadFile {
    /// Source path as stored (`name/`-prefixed when there are several sources).
    pub path: String,
    /// The file opened.
    pub abs: PathBuf,
    /// blake3 of the bytes read (empty when nothing was read).
    pub content_blake3: String,
    /// Size and modification time from the opened descriptor.
    pub stamp: Option<Stamp>,
    /// Whether it became a document (sanitising succeeded).
    pub sanitized: bool,
}

/// A document with its chunks.
#[derive(Clone, Debug)]
pub struct PreparedDoc {
    /// The sanitised document after corpus boilerplate removal.
    pub doc: SanitizedDoc,
    /// blake3 of the source bytes.
    pub content_blake3: String,
    /// The URL its chunks carry.
    pub url: Option<String>,
    /// blake3 of everything the chunker read for it.
    pub chunk_key: String,
    /// Its chunks (never empty).
    pub chunks: Vec<Chunk>,
    /// Whether the chunks came from [`PrepareOptions::reuse`].
    pub reused: bool,
}

/// The corpus after stages 1–3.
#[derive(Clone, Debug, Default)]
pub struct PreparedCorpus {
    /// Regular files listed.
    pub files_seen: usize,
    /// Files and folders left out by the selection.
    pub excluded: usize,
    /// Every listed file, in order, as read.
    pub read: Vec<ReadFile>,
    /// Entries not indexed because of what they are (symlink, FIFO, unsupported type, empty).
    pub skipped: Vec<DocFailure>,
    /// Entries that failed (unreadable, binary, too large, changed under the build).
    pub failed: Vec<DocFailure>,
    /// blake3 over every read file's path and content hash.
    pub source_digest: String,
    /// Corpus-level boilerplate removed.
    pub boilerplate: BoilerplateReport,
    /// The chunker settings used (the config's, capped at the model's maximum).
    pub chunk_config: ChunkConfig,
    /// Documents with at least one chunk, in source order.
    pub documents: Vec<PreparedDoc>,
    /// Documents whose chunks were reused.
    pub documents_reused: usize,
    /// Documents chunked in this run.
    pub documents_chunked: usize,
    /// Seconds per stage (`sanitize`, `boilerplate`, `chunk`).
    pub timings: BTreeMap<String, f64>,
    /// Chunks dropped because the same text came earlier in the same page.
    pub duplicate_chunks_dropped: usize,
    /// Pages that repeated chunk texts, with how many repeats were dropped.
    pub pages_with_repeated_chunks: BTreeMap<String, usize>,
    /// Hub pages (mostly links to other pages): recognised by the sanitiser, not indexed.
    pub hubs: Vec<SanitizedDoc>,
    /// The most estimated page-processing memory in flight at once (bytes; see
    /// `[ingest] max_inflight_bytes`).
    pub peak_inflight_bytes: u64,
}

impl PreparedCorpus {
    /// Chunks over all documents.
    pub fn chunk_count(&self) -> usize {
        self.documents.iter().map(|d| d.chunks.len()).sum()
    }
}

fn failure_kind(e: &ragsnap_chunk::IngestError) -> FailureKind {
    use ragsnap_chunk::IngestError as E;
    match e {
        E::TooLarge { .. } => FailureKind::TooLarge,
        E::Binary { .. } => FailureKind::Binary,
        E::UnsupportedType { .. } => FailureKind::Unsupported,
        E::Empty { .. } => FailureKind::Empty,
        _ => FailureKind::Invalid,
    }
}

/// blake3 over everything [`ragsnap_chunk::chunk_doc`] reads for one document: equal keys mean
/// equal chunks, so a document whose key matches head's entry takes head's chunks unchanged.
pub fn chunk_key(doc: &SanitizedDoc, url: Option<&str>, cfg: &ChunkConfig, salt: &str) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"ragsnap chunk key 1\0");
    h.update(&ragsnap_chunk::CHUNKER_VERSION.to_le_bytes());
    for n in [cfg.target_tokens, cfg.max_tokens, cfg.min_tokens] {
        h.update(&(n as u64).to_le_bytes());
    }
    h.update(salt.as_bytes());
    h.update(b"\0");
    h.update(serde_json::to_string(&url).expect("serialises").as_bytes());
    h.update(b"\0");
    h.update(&serde_json::to_vec(doc).expect("serialises"));
    h.finalize().to_hex().to_string()
}

fn elapsed(t: Instant) -> f64 {
    (t.elapsed().as_secs_f64() * 1000.0).round() / 1000.0
}

fn cancelled(cancel: Option<&AtomicBool>) -> Result<()> {
    if cancel.is_some_and(|c| c.load(Ordering::SeqCst)) {
        return Err(Error::Cancelled);
    }
    Ok(())
}

/// One file to read: shown path, path relative to its source, listing, URL prefix.
struct Planned {
    display: String,
    rel: String,
    file: ListedFile,
    prefix: Option<Url>,
}

/// The chunker settings rebuild uses: the config's, capped at the model's maximum length.
pub fn chunk_config(config: &Config, tokens: &Tokens<'_>) -> ChunkConfig {
    let max_tokens = config.chunker.max_tokens.min(tokens.max_tokens());
    ChunkConfig {
        target_tokens: config.chunker.target_tokens.min(max_tokens),
        max_tokens,
        min_tokens: config.chunker.min_tokens,
    }
}

fn plan(inputs: &Inputs<'_>, config: &Config, out: &mut PreparedCorpus) -> Result<Vec<Planned>> {
    let mut planned = Vec::new();
    match inputs {
        Inputs::Folders(sources) => {
            if sources.is_empty() {
                return Err(Error::Invalid("no sources: pass --source DIR or add [[sources]] to ragsnap.toml".into()));
            }
            let selector = config.source.compile()?;
            for s in sources.iter() {
                let prefix = s
                    .url_prefix
                    .as_deref()
                    .map(sources::parse_url_prefix)
                    .transpose()
                    .map_err(|m| Error::Invalid(format!("source {}: {m}", s.dir.display())))?;
                let name = match (&s.name, sources.len() > 1) {
                    (Some(n), _) => Some(n.clone()),
                    (None, true) => {
                        Some(s.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default())
                    }
                    (None, false) => None,
                };
                let shown = |rel: &str| match &name {
                    Some(n) => format!("{n}/{rel}"),
                    None => rel.to_string(),
                };
                let listing = sources::list_source(&s.dir, &selector)?;
                out.excluded += listing.excluded;
                for mut f in listing.skipped {
                    f.path = shown(&f.path);
                    out.skipped.push(f);
                }
                for mut f in listing.failed {
                    f.path = shown(&f.path);
                    out.failed.push(f);
                }
                for file in listing.files {
                    planned.push(Planned {
                        display: shown(&file.rel),
                        rel: file.rel.clone(),
                        file,
                        prefix: prefix.clone(),
                    });
                }
            }
        }
        Inputs::Files(paths) => {
            for p in paths.iter() {
                let display = p.to_string_lossy().into_owned();
                match std::fs::symlink_metadata(p) {
                    Err(e) => out.failed.push(DocFailure {
                        path: display.clone(),
                        kind: FailureKind::Io,
                        error: format!("{display}: {e}"),
                    }),
                    Ok(md) if md.is_file() => planned.push(Planned {
                        rel: display.clone(),
                        display,
                        file: ListedFile {
                            rel: p.to_string_lossy().into_owned(),
                            abs: p.clone(),
                            dev: md.dev(),
                            ino: md.ino(),
                        },
                        prefix: None,
                    }),
                    Ok(md) if md.is_dir() => {
                        return Err(Error::Invalid(format!("{display} is a folder: use --source {display}")))
                    }
                    Ok(md) => {
                        let (kind, why) = sources::special_kind(&md.file_type())
                            .unwrap_or((FailureKind::Special, "not a regular file"));
                        out.skipped.push(DocFailure {
                            path: display.clone(),
                            kind,
                            error: format!("{display}: {why}"),
                        });
                    }
                }
            }
        }
    }
    Ok(planned)
}

/// Run stages 1–3 (read and sanitise, corpus boilerplate, chunk) over `inputs` with `config`'s
/// settings and the model's token counter.
pub fn prepare(
    inputs: &Inputs<'_>,
    config: &Config,
    tokens: Tokens<'_>,
    opts: &PrepareOptions<'_>,
) -> Result<PreparedCorpus> {
    let mut out = PreparedCorpus::default();

    // 1. List, read without following links, sanitise.
    let t = Instant::now();
    let limits = IngestLimits::from(&config.ingest);
    let planned = plan(inputs, config, &mut out)?;
    out.files_seen = planned.len();
    if let Some(p) = opts.progress {
        p("read", 0, planned.len() as u64);
    }
    if let Some(hook) = opts.after_listing {
        let files: Vec<ListedFile> = planned.iter().map(|p| p.file.clone()).collect();
        hook(&files);
    }
    enum Loaded {
        Doc(SanitizedDoc),
        Skipped(DocFailure),
        Failed(DocFailure),
    }
    // One page per core, but only while the pages' estimated working memory fits in
    // [ingest] max_inflight_bytes; a slow page does not hold up cancellation.
    let items: Vec<(String, ListedFile)> = planned.iter().map(|p| (p.display.clone(), p.file.clone())).collect();
    let max_bytes = limits.max_bytes;
    let read_limits = limits.clone();
    let read = crate::bounded::map_bounded(
        items,
        config.ingest.max_inflight_bytes,
        move |(_, f): &(String, ListedFile)| match std::fs::symlink_metadata(&f.abs) {
            Ok(m) if m.len() <= max_bytes => m.len().saturating_mul(crate::config::INGEST_MEMORY_PER_BYTE),
            _ => 1, // refused before it is read
        },
        move |(display, file): &(String, ListedFile)| {
            let mut rf = ReadFile {
                path: display.clone(),
                abs: file.abs.clone(),
                content_blake3: String::new(),
                stamp: None,
                sanitized: false,
            };
            let l = match sources::read_listed(file, display, read_limits.max_bytes) {
                ReadOutcome::Bytes(bytes, stamp) => {
                    rf.content_blake3 = ragsnap_core::blake3_hex(&bytes);
                    rf.stamp = Some(stamp);
                    match ragsnap_chunk::ingest(display, &bytes, &read_limits) {
                        Ok(d) => {
                            rf.sanitized = true;
                            Loaded::Doc(d)
                        }
                        Err(e) => {
                            let f = DocFailure { path: display.clone(), kind: failure_kind(&e), error: e.to_string() };
                            if matches!(f.kind, FailureKind::Unsupported | FailureKind::Empty) {
                                Loaded::Skipped(f)
                            } else {
                                Loaded::Failed(f)
                            }
                        }
                    }
                }
                ReadOutcome::Skipped(f) => Loaded::Skipped(f),
                ReadOutcome::Failed(f) => Loaded::Failed(f),
            };
            (rf, l)
        },
        opts.cancel,
    )?;
    out.peak_inflight_bytes = read.peak;
    let loaded: Vec<(ReadFile, Loaded)> = read.outputs;
    cancelled(opts.cancel)?;
    out.source_digest = {
        let mut h = blake3::Hasher::new();
        for (rf, _) in &loaded {
            h.update(rf.path.as_bytes());
            h.update(&[0]);
            h.update(rf.content_blake3.as_bytes());
            h.update(b"\n");
        }
        h.finalize().to_hex().to_string()
    };
    let mut docs: Vec<(SanitizedDoc, String, usize)> = Vec::new();
    for (i, (rf, l)) in loaded.into_iter().enumerate() {
        match l {
            Loaded::Doc(d) => docs.push((d, rf.content_blake3.clone(), i)),
            Loaded::Skipped(f) => out.skipped.push(f),
            Loaded::Failed(f) => out.failed.push(f),
        }
        out.read.push(rf);
    }
    out.timings.insert("sanitize".into(), elapsed(t));

    // 2. Corpus-level boilerplate.
    let t = Instant::now();
    let bp = BoilerplateConfig::from(&config.boilerplate);
    let sanitized: Vec<SanitizedDoc> = docs.iter().map(|d| d.0.clone()).collect();
    let (sanitized, bp_report) = crate::bounded::run_detached(opts.cancel, move |_| {
        let mut sanitized = sanitized;
        let r = ragsnap_chunk::remove_boilerplate(&mut sanitized, &bp);
        (sanitized, r)
    })?;
    out.boilerplate = bp_report;
    out.timings.insert("boilerplate".into(), elapsed(t));

    // 3. Chunk with the model's own token counter.
    let t = Instant::now();
    let ccfg = chunk_config(config, &tokens);
    out.chunk_config = ccfg.clone();
    if let Some(p) = opts.progress {
        p("chunk", 0, sanitized.len() as u64);
    }
    // Once cancelled, the next token count unwinds out of the page in hand (caught below), so a
    // long page does not hold up the stop.
    let count = |s: &str| {
        if opts.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            crate::bounded::stop_now();
        }
        tokens.count(s)
    };
    // One memo of per-word counts for the whole run when the model's counts add up over words
    // (same chunks, a fraction of the tokenizer calls); otherwise texts are measured whole.
    let word_cache = tokens.word_additive().then(ragsnap_chunk::TokenCache::new);
    let salt = tokens.key_salt();
    let per_doc: Vec<(Option<String>, Vec<Chunk>, String, bool)> = sanitized
        .par_iter()
        .zip(docs.par_iter())
        .map(|(d, (_, _, i))| {
            if d.hub || opts.cancel.is_some_and(|c| c.load(Ordering::SeqCst)) {
                // A hub is not indexed (see below); a cancelled run's result is dropped.
                return (None, Vec::new(), String::new(), false);
            }
            let p = &planned[*i];
            let url = sources::document_url(p.prefix.as_ref(), &p.rel, d.canonical_url.as_deref());
            let key = chunk_key(d, url.as_deref(), &ccfg, &salt);
            match opts.reuse.and_then(|r| r(&d.source_path, &key)) {
                Some(cs) => (url, cs, key, true),
                None => {
                    let cs = crate::bounded::unless_stopped(|| match &word_cache {
                        Some(cache) => ragsnap_chunk::chunk_doc_cached(d, url.as_deref(), &ccfg, &count, cache),
                        None => ragsnap_chunk::chunk_doc(d, url.as_deref(), &ccfg, &count),
                    });
                    (url, cs.unwrap_or_default(), key, false) // a stopped page: the run is cancelled below
                }
            }
        })
        .collect();
    cancelled(opts.cancel)?;
    for ((d, (_, hash, _)), (url, mut chunks, key, reused)) in sanitized.into_iter().zip(docs).zip(per_doc) {
        if d.hub {
            // A hub page (table of contents, index, site map) is mostly links to pages that
            // are indexed themselves; its chunks would match many questions and answer none.
            out.skipped.push(DocFailure {
                path: d.source_path.clone(),
                kind: FailureKind::Hub,
                error: format!("{}: hub page (mostly links to other pages), not indexed", d.source_path),
            });
            out.hubs.push(d);
            continue;
        }
        // A page whose chunks repeat each other keeps one of each: repeats add nothing to
        // retrieval and would make that one text look like a hub to the hubness gate.
        let dropped = dedupe_within_page(&mut chunks);
        if dropped > 0 {
            out.duplicate_chunks_dropped += dropped;
            out.pages_with_repeated_chunks.insert(d.source_path.clone(), dropped);
        }
        if reused {
            out.documents_reused += 1;
        } else {
            out.documents_chunked += 1;
        }
        if chunks.is_empty() {
            out.skipped.push(DocFailure {
                path: d.source_path.clone(),
                kind: FailureKind::Empty,
                error: format!("{}: no content left after sanitising", d.source_path),
            });
            continue;
        }
        out.documents.push(PreparedDoc { doc: d, content_blake3: hash, url, chunk_key: key, chunks, reused });
    }
    out.timings.insert("chunk".into(), elapsed(t));
    Ok(out)
}

/// Keep the first chunk of each text in one page's chunks; returns how many were dropped.
fn dedupe_within_page(chunks: &mut Vec<Chunk>) -> usize {
    let before = chunks.len();
    let mut seen = std::collections::HashSet::new();
    chunks.retain(|c| seen.insert(c.content_id.clone()));
    before - chunks.len()
}

/// The model's tokenizer alone, found like the embedder's model (`runtime.model_dir`, then
/// `RAGSNAP_MODEL_DIR`, then the `make setup` cache): what `ragsnap chunk` counts with.
pub fn open_token_counter(runtime: &crate::config::RuntimeConfig) -> Result<TokenCounter> {
    let dir = ragsnap_embed::resolve_model_dir(runtime.model_folder()?.as_deref())?;
    Ok(TokenCounter::load(&dir)?)
}
