//! `ragsnap chunk`: rebuild's read → sanitise → corpus boilerplate → chunk
//! (`ragsnap::ingest::prepare`, the function rebuild calls) with rebuild's settings and the
//! model's tokenizer (no ONNX session), printed instead of embedded.

use super::{skip_reasons, usage, Ctx};
use crate::args::SelectArgs;
use crate::exit::ExitKind;
use crate::output::print_json_line;
use anyhow::Result;
use ragsnap::config::SourceConfig;
use ragsnap::ingest::{self, Inputs, PrepareOptions, PreparedCorpus, Tokens};
use std::io::Write;
use std::path::PathBuf;

/// One document of `ragsnap chunk --json` (JSON Lines; fields in this order).
#[derive(serde::Serialize)]
struct ChunkLine<'a> {
    source: &'a str,
    url: Option<&'a str>,
    title: &'a str,
    hub: bool,
    chunks: Vec<ChunkLineChunk<'a>>,
}

#[derive(serde::Serialize)]
struct ChunkLineChunk<'a> {
    text: &'a str,
    header_path: &'a [String],
    tokens: usize,
}

/// Show what rebuild would index from `paths`, `--source` folders or the config's sources.
pub fn run(
    mut ctx: Ctx,
    paths: &[PathBuf],
    source: Vec<PathBuf>,
    url_prefix: Option<String>,
    select: SelectArgs,
    markdown: bool,
    stats: bool,
) -> Result<ExitKind> {
    if url_prefix.is_some() && source.is_empty() {
        return Err(usage("--url-prefix applies to the folders of --source; give --source DIR with it"));
    }
    select.apply(&mut ctx.config);
    let config = &ctx.config;
    let sources: Vec<SourceConfig> =
        source.into_iter().map(|dir| SourceConfig { dir, url_prefix: url_prefix.clone(), name: None }).collect();
    let inputs = if !paths.is_empty() {
        Inputs::Files(paths)
    } else if !sources.is_empty() {
        Inputs::Folders(&sources)
    } else if !config.sources.is_empty() {
        Inputs::Folders(&config.sources)
    } else {
        return Err(usage("ragsnap chunk needs FILE..., --source DIR, or [[sources]] in ragsnap.toml"));
    };
    let counter = ingest::open_token_counter(&config.runtime)?;
    let prepared = ingest::prepare(&inputs, config, Tokens::Tokenizer(&counter), &PrepareOptions::default())?;
    if !stats {
        print_prepared(&prepared, markdown, ctx.json)?;
    }
    if !ctx.quiet || stats {
        for f in &prepared.failed {
            eprintln!("ragsnap: failed {}: {}", f.path, f.error);
        }
        eprintln!(
            "ragsnap: chunk: {} pages, {} chunks, {} skipped{}, {} failed, {} template blocks dropped (of {}), {} hub pages; {} files seen, {} excluded by the [source] selection",
            prepared.documents.len(),
            prepared.chunk_count(),
            prepared.skipped.len(),
            skip_reasons(&prepared.skipped),
            prepared.failed.len(),
            prepared.boilerplate.blocks_removed,
            prepared.boilerplate.blocks_total,
            prepared.hubs.len(),
            prepared.files_seen,
            prepared.excluded,
        );
    }
    Ok(if prepared.failed.is_empty() { ExitKind::Ok } else { ExitKind::Error })
}

fn print_prepared(prepared: &PreparedCorpus, markdown: bool, json: bool) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    for d in &prepared.documents {
        if markdown {
            if json {
                print_json_line(&mut stdout, &d.doc)?;
            } else {
                writeln!(stdout, "{}", d.doc.markdown)?;
            }
        } else if json {
            let line = ChunkLine {
                source: &d.doc.source_path,
                url: d.url.as_deref(),
                title: d.doc.title.as_deref().unwrap_or_default(),
                hub: false,
                chunks: d
                    .chunks
                    .iter()
                    .map(|c| ChunkLineChunk { text: &c.text, header_path: &c.header_path, tokens: c.tokens })
                    .collect(),
            };
            print_json_line(&mut stdout, &line)?;
        } else {
            for c in &d.chunks {
                writeln!(
                    stdout,
                    "── {}  [{} tokens, lines {}-{}]  {}",
                    d.doc.source_path,
                    c.tokens,
                    c.line_range.0,
                    c.line_range.1,
                    &c.content_id.as_str()[..12]
                )?;
                writeln!(stdout, "{}\n", c.text)?;
            }
        }
    }
    if json && !markdown {
        // Hub pages are listed (flagged, without chunks) so a reader sees every page read.
        for d in &prepared.hubs {
            let line = ChunkLine {
                source: &d.source_path,
                url: None,
                title: d.title.as_deref().unwrap_or_default(),
                hub: true,
                chunks: Vec::new(),
            };
            print_json_line(&mut stdout, &line)?;
        }
    }
    stdout.flush()?;
    Ok(())
}
