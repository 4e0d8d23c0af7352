//! `ragsnap chunk`: rebuild's read → sanitise → corpus boilerplate → chunk
//! (`ragsnap::ingest::prepare`, the function rebuild calls) with rebuild's settings and the
//! model's tokenizer (no ONNX session), printed instead of embedded.

use super::{skip_reasons, usage, Ctx};
use crate::args::SelectArgs;
use crate::exit::ExitKind;
use crate::output;
use anyhow::Result;
use ragsnap::config::SourceConfig;
use ragsnap::ingest::{self, Inputs, PrepareOptions, Tokens};
use std::path::PathBuf;

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
        output::prepared(&prepared, markdown, ctx.json)?;
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
