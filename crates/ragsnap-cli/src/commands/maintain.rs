//! Store maintenance: `verify`, `gc`, `repair`, `cache stats|prune`.

use super::{open_writer, usage, Ctx};
use crate::args::CacheAction;
use crate::exit::ExitKind;
use crate::output::{self, outln, print_json};
use anyhow::Result;
use ragsnap::store::{GcOptions, StoreError};
use ragsnap::Store;
use serde_json::json;

/// `ragsnap verify [ID | --all]`.
pub fn verify(ctx: &Ctx, id: Option<&str>, all: bool) -> Result<ExitKind> {
    let store = Store::open_reader(&ctx.store_path)?;
    let ids: Vec<String> = if all {
        store.catalog().list()?.into_iter().filter(|s| s.status != "collected").map(|s| s.id).collect()
    } else {
        vec![store.resolve(id.unwrap_or("HEAD"))?]
    };
    let mut reports = Vec::new();
    for id in &ids {
        reports.push(ragsnap::verify_snapshot(&store, id)?);
    }
    if all {
        for s in store.catalog().list()?.into_iter().filter(|s| s.status == "collected") {
            let marker = ragsnap::store::layout::collecting_marker(store.root(), &s.id);
            if store.snapshot_dir(&s.id).is_dir() && !marker.is_file() {
                eprintln!(
                    "ragsnap: warning: snapshot {} is marked collected but gc never started removing it (no gc marker); its folder is kept (`ragsnap repair` can restore it)",
                    s.id
                );
            }
        }
    }
    let ok = reports.iter().all(|r| r.ok);
    if ctx.json {
        print_json(&reports)?;
    } else {
        output::verify(&reports)?;
    }
    Ok(if ok { ExitKind::Ok } else { ExitKind::Verification })
}

/// `ragsnap gc`.
pub fn gc(
    ctx: &Ctx,
    keep: Option<usize>,
    older_than: Option<i64>,
    keep_rejected_for: Option<i64>,
    dry_run: bool,
) -> Result<ExitKind> {
    let keep = keep.unwrap_or(ctx.config.gc.keep);
    let keep_rejected = match keep_rejected_for {
        Some(s) => s,
        None => ctx.config.gc.keep_rejected_secs()?,
    };
    let mut store = if dry_run { Store::open_dry_run(&ctx.store_path)? } else { open_writer(&ctx.store_path)? };
    let opts = GcOptions { keep, older_than_secs: older_than, keep_rejected_secs: Some(keep_rejected), dry_run };
    let rep = store.gc_with(&opts)?;
    drop(store);
    if !dry_run {
        ctx.audit(
            "gc",
            None,
            "ok",
            format!(
                "removed {} snapshot(s), {} bytes{}",
                rep.removed.len() + rep.resumed.len(),
                rep.bytes_freed,
                if rep.removed.is_empty() { String::new() } else { format!(": {}", rep.removed.join(", ")) }
            ),
        );
    }
    if ctx.json {
        print_json(&rep)?;
        return Ok(ExitKind::Ok);
    }
    output::gc(&rep, dry_run)?;
    Ok(ExitKind::Ok)
}

/// `ragsnap repair`.
pub fn repair(ctx: &Ctx, dry_run: bool) -> Result<ExitKind> {
    let rep = ragsnap::repair_store(&ctx.store_path, dry_run)?;
    if !dry_run && rep.needed {
        ctx.audit(
            "repair",
            rep.head.as_deref(),
            if rep.unrestored.is_empty() { "ok" } else { ExitKind::Verification.outcome() },
            format!(
                "restored {} snapshot(s), {} could not be restored; {}",
                rep.restored.len(),
                rep.unrestored.len(),
                rep.catalog_problem.as_deref().unwrap_or("-")
            ),
        );
    }
    if ctx.json {
        print_json(&rep)?;
    } else {
        output::repair(&rep, dry_run)?;
    }
    Ok(if rep.unrestored.is_empty() { ExitKind::Ok } else { ExitKind::Verification })
}

/// `ragsnap cache stats` and `ragsnap cache prune`.
pub fn cache(ctx: &Ctx, action: CacheAction) -> Result<ExitKind> {
    let root = &ctx.store_path;
    if !root.is_dir() {
        return Err(StoreError::NoStore { path: root.clone() }.into());
    }
    // Pruning writes: it takes the writer lock like every other writer. A dry run changes
    // nothing: it opens the store the way a reader does.
    let writer = match &action {
        CacheAction::Prune { dry_run: true, .. } => Some(Store::open_dry_run(root)?),
        CacheAction::Prune { .. } => Some(open_writer(root)?),
        CacheAction::Stats => None,
    };
    for name in ["cache", "cache/embeddings.sqlite", "cache/embeddings.sqlite-wal", "cache/embeddings.sqlite-shm"] {
        ragsnap::store::layout::entry_metadata(&root.join(name))?;
    }
    let path = ragsnap::embed_cache_path(root);
    if !path.exists() {
        anyhow::bail!("no embedding cache at {}: run `ragsnap rebuild` first", path.display());
    }
    let cache = ragsnap::embed::EmbeddingCache::open(&path)?;
    match action {
        CacheAction::Prune { keep_fingerprints, all, dry_run } => {
            let keep: Vec<String> = if all { Vec::new() } else { keep_fingerprints };
            // A fingerprint nobody uses is a typo, not a request to delete everything.
            let mut known: std::collections::HashSet<String> =
                cache.stats()?.into_iter().map(|s| s.fingerprint).collect();
            if let Some(store) = &writer {
                known.extend(store.catalog().list()?.into_iter().map(|s| s.fingerprint_id));
            }
            let unknown: Vec<&String> = keep.iter().filter(|k| !known.contains(*k)).collect();
            if !unknown.is_empty() {
                return Err(usage(format!(
                    "--keep-fingerprints {} matches no fingerprint in the cache nor any snapshot's; nothing was deleted (`ragsnap cache stats` lists them)",
                    unknown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                )));
            }
            let doomed: Vec<_> = cache.stats()?.into_iter().filter(|s| !keep.contains(&s.fingerprint)).collect();
            let vectors: u64 = doomed.iter().map(|s| s.vectors).sum();
            if dry_run {
                if ctx.json {
                    print_json(&json!({ "dry_run": true, "would_delete": doomed, "vectors": vectors }))?;
                } else {
                    for s in &doomed {
                        outln!("would delete {:<28} {:>8} vectors", s.fingerprint, s.vectors);
                    }
                    outln!("would delete {vectors} vectors (dry run)");
                }
            } else {
                let n = cache.prune(&keep)?;
                drop(writer);
                ctx.audit(
                    "cache prune",
                    None,
                    "ok",
                    format!("deleted {n} vectors; kept fingerprints: {}", keep.join(", ")),
                );
                if ctx.json {
                    print_json(&json!({ "dry_run": false, "deleted": doomed, "vectors": n }))?;
                } else {
                    outln!("deleted {n} vectors");
                }
            }
        }
        CacheAction::Stats => {
            let stats = cache.stats()?;
            if ctx.json {
                print_json(&stats)?;
            } else {
                for s in &stats {
                    outln!("{:<28} {:>8} vectors {:>12} bytes", s.fingerprint, s.vectors, s.bytes);
                }
            }
        }
    }
    Ok(ExitKind::Ok)
}
