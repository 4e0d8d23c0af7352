//! `corpus_dump`: the chunks today's pipeline makes of one folder of documents, one JSON line
//! per document, for the multi-generator development set (`eval/corpora/`, `make corpora`).
//!
//! It runs the first three stages of `ragsnap rebuild` exactly as the library does them: list
//! the folder (sorted, hidden entries and symlinks skipped), read and sanitise every file, drop
//! corpus-level boilerplate, and chunk with the embedding model's own token counter and the
//! default settings (or those of `--config`). Nothing is embedded and no store is touched. It
//! stands in for `ragsnap chunk --source DIR --json` until that command exists; the runner
//! (`eval/corpora/run.sh`) prefers the command when the binary has it.
//!
//! ```text
//! corpus_dump --source DIR [--url-prefix PREFIX] [--config ragsnap.toml] [--out FILE]
//! ```
//!
//! Each line: `{"source", "url", "title", "hub", "chunks": [{"text", "header_path", "tokens"}]}`.
//! Documents that fail to read or sanitise, or that leave nothing to chunk, are printed with no
//! chunks (and the reason on stderr), so that a checker can count them. Today's pipeline has no
//! notion of a hub page, so `hub` is always `false`.

use anyhow::{bail, Context, Result};
use ragsnap::chunk::{self, BoilerplateConfig, ChunkConfig, IngestLimits, SanitizedDoc};
use ragsnap::embed::Embedder;
use ragsnap::Config;
use rayon::prelude::*;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

struct Args {
    source: PathBuf,
    url_prefix: Option<String>,
    config: Option<PathBuf>,
    out: Option<PathBuf>,
}

const USAGE: &str = "corpus_dump --source DIR [--url-prefix PREFIX] [--config FILE] [--out FILE]";

fn parse_args() -> Result<Args> {
    let mut source = None;
    let mut a = Args { source: PathBuf::new(), url_prefix: None, config: None, out: None };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--source" => source = Some(PathBuf::from(val()?)),
            "--url-prefix" => a.url_prefix = Some(val()?),
            "--config" => a.config = Some(val()?.into()),
            "--out" => a.out = Some(val()?.into()),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\nusage: {USAGE}"),
        }
    }
    a.source = source.with_context(|| format!("--source is required\nusage: {USAGE}"))?;
    Ok(a)
}

/// One chunk as the checker reads it.
#[derive(Serialize)]
struct ChunkLine<'a> {
    text: &'a str,
    header_path: &'a [String],
    tokens: usize,
}

/// One document as the checker reads it.
#[derive(Serialize)]
struct DocLine<'a> {
    source: &'a str,
    url: Option<&'a str>,
    title: Option<&'a str>,
    hub: bool,
    chunks: Vec<ChunkLine<'a>>,
}

/// Read and sanitise one file the way the rebuild's read stage does (size limit first).
fn read_one(display: &str, abs: &Path, limits: &IngestLimits) -> std::result::Result<SanitizedDoc, String> {
    let md = std::fs::metadata(abs).map_err(|e| format!("{display}: {e}"))?;
    if md.len() > limits.max_bytes {
        return Err(chunk::IngestError::TooLarge {
            path: display.to_string(),
            size: md.len(),
            limit: limits.max_bytes,
        }
        .to_string());
    }
    let bytes = std::fs::read(abs).map_err(|e| format!("{display}: {e}"))?;
    chunk::ingest(display, &bytes, limits).map_err(|e| e.to_string())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("corpus_dump: {e:#}");
        let usage = e.to_string().contains("usage:");
        std::process::exit(if usage { 2 } else { 1 });
    }
}

fn run() -> Result<()> {
    let args = parse_args()?;
    let config = match &args.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    if !args.source.is_dir() {
        bail!("source {} is not a folder", args.source.display());
    }
    let embedder = ragsnap::open_embedder(&config.runtime)?;

    // Stage 1: read and sanitise.
    let limits = IngestLimits { max_bytes: config.ingest.max_bytes };
    let files = ragsnap::rebuild::list_files(&args.source)?;
    let loaded: Vec<(String, std::result::Result<SanitizedDoc, String>)> =
        files.par_iter().map(|(rel, abs)| (rel.clone(), read_one(rel, abs, &limits))).collect();
    let mut docs: Vec<SanitizedDoc> = Vec::new();
    let mut failed: Vec<(String, String)> = Vec::new();
    for (rel, r) in loaded {
        match r {
            Ok(d) => docs.push(d),
            Err(e) => failed.push((rel, e)),
        }
    }

    // Stage 2: corpus-level boilerplate.
    let bp = BoilerplateConfig { min_pages: config.boilerplate.min_pages, min_share: config.boilerplate.min_share };
    let report = chunk::remove_boilerplate(&mut docs, &bp);

    // Stage 3: chunk with the model's token counter, as the rebuild does.
    let max_tokens = config.chunker.max_tokens.min(embedder.fingerprint().max_tokens);
    let ccfg = ChunkConfig {
        target_tokens: config.chunker.target_tokens.min(max_tokens),
        max_tokens,
        min_tokens: config.chunker.min_tokens,
    };
    let count = |s: &str| embedder.count_tokens(s);
    let word_cache = embedder.word_additive_counts().then(chunk::TokenCache::new);
    let per_doc: Vec<(Option<String>, Vec<ragsnap::core::Chunk>)> = docs
        .par_iter()
        .map(|d| {
            let url =
                d.canonical_url.clone().or_else(|| args.url_prefix.as_ref().map(|p| format!("{p}{}", d.source_path)));
            let cs = match &word_cache {
                Some(cache) => chunk::chunk_doc_cached(d, url.as_deref(), &ccfg, &count, cache),
                None => chunk::chunk_doc(d, url.as_deref(), &ccfg, &count),
            };
            (url, cs)
        })
        .collect();

    // Print every document in path order, the failed ones with no chunks.
    let mut lines: Vec<(String, String)> = Vec::with_capacity(files.len());
    let mut chunk_total = 0usize;
    for (d, (url, cs)) in docs.iter().zip(&per_doc) {
        if cs.is_empty() {
            eprintln!("corpus_dump: {}: no content left after sanitising", d.source_path);
        }
        chunk_total += cs.len();
        let line = DocLine {
            source: &d.source_path,
            url: url.as_deref(),
            title: d.title.as_deref(),
            hub: false,
            chunks: cs
                .iter()
                .map(|c| ChunkLine { text: &c.text, header_path: &c.header_path, tokens: c.tokens })
                .collect(),
        };
        lines.push((d.source_path.clone(), serde_json::to_string(&line)?));
    }
    for (rel, error) in &failed {
        eprintln!("corpus_dump: {error}");
        let line = DocLine { source: rel, url: None, title: None, hub: false, chunks: Vec::new() };
        lines.push((rel.clone(), serde_json::to_string(&line)?));
    }
    lines.sort();
    let mut out: Box<dyn Write> = match &args.out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    for (_, l) in &lines {
        writeln!(out, "{l}")?;
    }
    out.flush()?;
    eprintln!(
        "corpus_dump: {} files, {} documents, {} failed, {} chunks, {} of {} blocks dropped as boilerplate",
        files.len(),
        docs.len(),
        failed.len(),
        chunk_total,
        report.blocks_removed,
        report.blocks_total
    );
    Ok(())
}
