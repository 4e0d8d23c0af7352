//! Everything the binary prints: plain lines through [`outln!`], JSON documents through
//! [`print_json`], JSON errors through [`print_json_error`], and one text renderer per command
//! (`snapshots`, `show`, `diff`, `history`, `query`, `verify`, `gc`, `repair`, `prepared`,
//! `rebuild_summary`); the commands compute, this module prints. Every write returns its I/O
//! error, so a closed stdout ends the command quietly ([`crate::exit::is_broken_pipe`]) instead
//! of panicking.

use crate::commands::skip_reasons;
use crate::exit::ExitKind;
use anyhow::Result;
use ragsnap::ingest::PreparedCorpus;
use ragsnap::store::{AuditEntry, GcReport, Manifest, RepairReport, SnapshotRecord, VerifyReport};
use ragsnap::{Answer, Mode, QueryResult, SnapshotDiff};
use serde_json::{json, Value};
use std::io::Write;

/// `println!` that returns the write error instead of panicking on a closed stdout.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?
    }};
}
pub(crate) use outln;

/// One JSON document on stdout, pretty-printed.
pub fn print_json(v: &impl serde::Serialize) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// One JSON line on stdout (JSON Lines output).
pub fn print_json_line(out: &mut impl Write, v: &impl serde::Serialize) -> Result<()> {
    serde_json::to_writer(&mut *out, v)?;
    writeln!(out)?;
    Ok(())
}

/// An error as one JSON object on stdout: `{"error": {"kind", "message", "exit_code"}}`.
pub fn print_json_error(kind: ExitKind, message: &str) {
    let v = json!({ "error": { "kind": kind.name(), "message": message, "exit_code": kind.code() } });
    // A closed stdout leaves nothing to tell; the exit code still says it.
    let _ = print_json(&v);
}

/// A query's JSON: the library's [`QueryResult`] as it serialises (so fields the library adds
/// appear here too), with `hits` always present (`[]` when refused) and each hit carrying its
/// `cosine`, `lexical` (BM25) and `fused` scores explicitly (null where a signal was not used)
/// and `score` set to the value hits are ordered by: the fused score in hybrid mode, the cosine
/// in dense mode, the BM25 score in lexical mode.
pub fn query_json(result: &QueryResult) -> Result<Value> {
    let mut v = serde_json::to_value(result)?;
    let hits = match &result.answer {
        Answer::Hits { hits } => hits.as_slice(),
        Answer::NoConfidentMatch { .. } => &[],
    };
    if v.get("hits").is_none() {
        v["hits"] = json!([]);
    }
    if let Some(out) = v["hits"].as_array_mut() {
        for (o, h) in out.iter_mut().zip(hits) {
            let s = &h.signals;
            let score = match result.mode {
                Mode::Hybrid => s.fused_score.or(s.dense_score),
                Mode::Dense => s.dense_score,
                Mode::Lexical => s.lexical_score,
            };
            o["cosine"] = json!(s.dense_score);
            o["lexical"] = json!(s.lexical_score);
            o["fused"] = json!(s.fused_score);
            o["score"] = json!(score.unwrap_or(h.score));
        }
    }
    Ok(v)
}

/// `ragsnap snapshots`: one row per snapshot, `*` marks head.
pub fn snapshots(list: &[SnapshotRecord]) -> Result<()> {
    outln!(
        "{:<2} {:<26} {:<21} {:<9} {:>6} {:>7} {:<24} {:>7}",
        "",
        "ID",
        "CREATED",
        "STATUS",
        "DOCS",
        "CHUNKS",
        "FINGERPRINT",
        "RECALL"
    );
    for s in list {
        outln!(
            "{:<2} {:<26} {:<21} {:<9} {:>6} {:>7} {:<24} {:>7.3}",
            if s.is_head { "*" } else { "" },
            s.id,
            s.created_at,
            s.status,
            s.documents,
            s.chunks,
            s.fingerprint_id,
            s.recall
        );
        if let Some(b) = &s.backed_out {
            outln!("   backed out {} by {}: {}", b.at, b.by, b.reason);
        }
    }
    Ok(())
}

/// What `ragsnap show` prints about one snapshot.
pub struct ShowView<'a> {
    pub record: &'a SnapshotRecord,
    pub manifest: &'a Manifest,
    pub canaries: usize,
    pub gates: &'a Value,
    pub rejected_because: &'a Value,
    pub pin: Option<&'a AuditEntry>,
}

/// `ragsnap show`: status, reasons, gate results, pins, then the manifest.
pub fn show(v: &ShowView<'_>) -> Result<()> {
    outln!("snapshot     {}", v.manifest.snapshot_id);
    outln!("status       {}{}", v.record.status, if v.record.is_head { " (head)" } else { "" });
    if let Some(r) = &v.record.reason {
        outln!("reason       {r}");
    }
    if let Some(b) = &v.record.backed_out {
        outln!("backed out   {} by {}: {}", b.at, b.by, b.reason);
    }
    for p in &v.record.pins {
        outln!("pinned       {p}");
    }
    if let Some(p) = v.pin {
        outln!("pin reason   {} (by {} at {})", p.detail, p.actor, p.at);
    }
    if let Some(reasons) = v.rejected_because.as_array() {
        for r in reasons {
            outln!("rejected     {}", r.as_str().unwrap_or_default());
        }
    }
    if let Some(gates) = v.gates.as_array() {
        for g in gates {
            outln!(
                "gate         {:<18} {}  {:.4} (threshold {:.4})  {}",
                g["name"].as_str().unwrap_or_default(),
                if g["passed"] == true { "pass" } else { "FAIL" },
                g["value"].as_f64().unwrap_or(f64::NAN),
                g["threshold"].as_f64().unwrap_or(f64::NAN),
                g["detail"].as_str().unwrap_or_default()
            );
        }
    }
    outln!("parent       {}", v.manifest.parent_id.as_deref().unwrap_or("-"));
    outln!("created      {}", v.manifest.created_at);
    outln!("format       v{}  tool {}", v.manifest.format_version.0, v.manifest.tool_version);
    outln!(
        "embedding    {}  (runtime {}, {} canaries)",
        v.manifest.fingerprint.id(),
        v.manifest.fingerprint.runtime_version,
        v.canaries
    );
    outln!(
        "index        {} M={} ef_construction={} ef_search={} recall@{}={:.4} (target {:.2}, {} queries)",
        v.manifest.index.kind,
        v.manifest.index.m,
        v.manifest.index.ef_construction,
        v.manifest.index.ef_search,
        v.manifest.index.k,
        v.manifest.index.recall,
        v.manifest.index.target_recall,
        v.manifest.index.sample
    );
    outln!("counts       {} documents, {} chunks", v.manifest.counts.documents, v.manifest.counts.chunks);
    outln!("source       {}", v.manifest.source_digest);
    for f in &v.manifest.files {
        outln!("file         {:<20} {:<10} {:>10} B  {}", f.name, f.kind, f.size, &f.blake3[..16]);
    }
    Ok(())
}

/// `ragsnap diff`: counts, model and settings changes, then the documents.
pub fn diff(d: &SnapshotDiff) -> Result<()> {
    outln!("{} -> {}", d.a, d.b);
    outln!(
        "documents  {} -> {}  (+{} -{} ~{} ={})",
        d.documents.0,
        d.documents.1,
        d.added.len(),
        d.removed.len(),
        d.changed.len(),
        d.unchanged
    );
    outln!("chunks     {} -> {}", d.chunks.0, d.chunks.1);
    if d.fingerprint.0 != d.fingerprint.1 {
        outln!("embedding  {} -> {}", d.fingerprint.0, d.fingerprint.1);
    }
    for (k, (x, y)) in &d.settings {
        outln!("{k:<10} {x} -> {y}");
    }
    for p in &d.added {
        outln!("  + {p}");
    }
    for p in &d.removed {
        outln!("  - {p}");
    }
    for p in &d.changed {
        outln!("  ~ {p}");
    }
    Ok(())
}

/// `ragsnap history`: one line per audit entry, oldest first.
pub fn history(entries: &[AuditEntry]) -> Result<()> {
    for e in entries {
        outln!(
            "{:>4}  {}  {:<16} {:<12} {:<9} {:<26} {}",
            e.seq,
            e.at,
            e.actor,
            e.command,
            e.outcome,
            e.snapshot_id.as_deref().unwrap_or("-"),
            e.detail
        );
    }
    Ok(())
}

/// A query's answer as text: the hits with their signals, or the refusal.
pub fn query(result: &QueryResult) -> Result<()> {
    match &result.answer {
        Answer::Hits { hits } => {
            outln!(
                "snapshot {}  mode {:?}  floor {:.2}{}",
                result.snapshot_id,
                result.mode,
                result.floor,
                result.lexical_floor.map(|l| format!(" (lexical {l:.2})")).unwrap_or_default()
            );
            for (i, h) in hits.iter().enumerate() {
                let mut why = Vec::new();
                if let Some(c) = h.signals.dense_score {
                    why.push(format!("cosine {c:.3}"));
                }
                if let Some(c) = h.signals.lexical_coverage {
                    why.push(format!("lexical {c:.2}"));
                }
                why.push(format!("confidence {:.2}", h.confidence));
                outln!(
                    "{:>2}. {}  [{}]  {}; supported by {}",
                    i + 1,
                    h.source_path,
                    h.header_path.join(" > "),
                    why.join(", "),
                    h.signals.supported_by.join(" + ")
                );
                let body: String = h.text.lines().skip(2).collect::<Vec<_>>().join(" ");
                let short: String = body.chars().take(160).collect();
                outln!("    {short}{}", if body.chars().count() > 160 { "…" } else { "" });
            }
        }
        Answer::NoConfidentMatch { best_score } => {
            outln!(
                "no confident match in snapshot {} (best score {}, floor {:.2})",
                result.snapshot_id,
                best_score.map(|s| format!("{s:.3}")).unwrap_or_else(|| "none".into()),
                result.floor
            );
            if let Some(r) = &result.refusal {
                outln!("  why: {}", refusal_reason(result, r));
            }
        }
    }
    Ok(())
}

/// The refusal of `result` in words: which signal fell short of which floor, and by how much.
fn refusal_reason(result: &QueryResult, r: &ragsnap::Refusal) -> String {
    let mut parts = Vec::new();
    for s in &r.shortfall {
        parts.push(match *s {
            "dense" => format!(
                "no cosine reached the floor {:.3} (best {})",
                result.floor,
                r.best_cosine.map_or("none".to_string(), |c| format!("{c:.3}"))
            ),
            "lexical" => format!(
                "no lexical coverage reached the floor {} (best {})",
                result.lexical_floor.map_or("none".to_string(), |l| format!("{l:.2}")),
                r.best_coverage.map_or("none".to_string(), |c| format!("{c:.2}"))
            ),
            "identifier" => format!(
                "no candidate holds {}, so the cosine had to reach {}",
                r.missing_identifiers.join(", "),
                result.identifier_floor.map_or("the identifier floor".to_string(), |f| format!("{f:.3}"))
            ),
            other => other.to_string(),
        });
    }
    format!("{}; best confidence {:.2} (an answer needs 0.50)", parts.join("; "), r.best_confidence)
}

/// `ragsnap verify`: `ok` or `FAILED` per snapshot, with each problem.
pub fn verify(reports: &[VerifyReport]) -> Result<()> {
    for r in reports {
        if r.ok {
            outln!("ok      {}  ({} files, {} bytes)", r.snapshot_id, r.files, r.bytes);
        } else {
            outln!("FAILED  {}", r.snapshot_id);
            for p in &r.problems {
                outln!("        {}: {}", p.file, p.message);
            }
        }
    }
    Ok(())
}

/// `ragsnap gc`: what was (or would be) removed and the total.
pub fn gc(rep: &GcReport, dry_run: bool) -> Result<()> {
    for line in &rep.housekeeping {
        outln!("{line}");
    }
    let verb = if dry_run { "would remove" } else { "removed" };
    for id in &rep.resumed {
        outln!("{verb} {id} (collected earlier; an interrupted gc left its folder)");
    }
    for id in &rep.removed {
        outln!("{verb} {id}");
    }
    outln!("{} snapshot(s), {} bytes{}", rep.removed.len(), rep.bytes_freed, if dry_run { " (dry run)" } else { "" });
    Ok(())
}

/// `ragsnap repair`: the catalog problem and what was (or would be) restored.
pub fn repair(rep: &RepairReport, dry_run: bool) -> Result<()> {
    if !rep.needed {
        outln!("catalog is healthy and agrees with the snapshot folders: nothing to repair");
    } else {
        outln!("catalog problem: {}", rep.catalog_problem.as_deref().unwrap_or("-"));
        let verb = if dry_run { "would restore" } else { "restored" };
        for s in &rep.restored {
            outln!(
                "{verb} {} as {}{}{}",
                s.id,
                s.status,
                if s.backed_out { " (backed out)" } else { "" },
                s.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default()
            );
        }
        for u in &rep.unrestored {
            outln!("could not restore {}: {} ({})", u.name, u.problem, u.path.display());
        }
        if !rep.restored.is_empty() || rep.head.is_some() {
            outln!("head: {} ({})", rep.head.as_deref().unwrap_or("none"), rep.head_source);
        }
        if let Some(p) = &rep.old_catalog_kept_as {
            outln!("old catalog kept as {}", p.display());
        }
        if !rep.not_restored.is_empty() {
            outln!("not restored: {}", rep.not_restored.join(", "));
        }
        if dry_run {
            outln!("(dry run: nothing was changed)");
        }
    }
    Ok(())
}

/// A rebuild's summary on stderr: counts, the source diff, failures, every gate.
pub fn rebuild_summary(report: &ragsnap::RebuildReport) {
    eprintln!(
        "ragsnap: snapshot {} {}: {} documents, {} chunks ({} embedded, {} from cache), {} failed, {} skipped{}, {} excluded; index {} (recall {:.3}); {:.1}s",
        report.snapshot_id,
        if report.promoted { "promoted" } else { "REJECTED (head unchanged)" },
        report.documents_indexed,
        report.chunks,
        report.cache_misses,
        report.cache_hits,
        report.failed.len(),
        report.skipped.len(),
        skip_reasons(&report.skipped),
        report.files_excluded,
        report.index_kind,
        report.recall,
        report.timings.get("total").copied().unwrap_or_default()
    );
    let d = &report.source_diff;
    eprintln!(
        "ragsnap:   sources vs head: {} added, {} changed, {} removed, {} unchanged; {} documents chunked, {} reused from head",
        d.added, d.changed, d.removed, d.unchanged, report.documents_chunked, report.documents_reused
    );
    if report.outcome != ragsnap::Outcome::Unchanged {
        eprintln!("ragsnap:   vector index {}: {}", report.index_update.mode.as_str(), report.index_update.reason);
    }
    for f in &report.failed {
        eprintln!("ragsnap:   failed {}: {}", f.path, f.error);
    }
    for g in &report.gates {
        eprintln!(
            "ragsnap:   gate {:<18} {}  {:.4} (threshold {:.4})  {}",
            g.name,
            if g.passed { "pass" } else { "FAIL" },
            g.value,
            g.threshold,
            g.detail
        );
    }
    for p in &report.changed_during_run {
        eprintln!("ragsnap:   {p} changed while the build ran; the version read was indexed");
    }
}

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

/// `ragsnap chunk`: chunks (or Markdown) of each document, as text or JSON Lines.
pub fn prepared(prepared: &PreparedCorpus, markdown: bool, json: bool) -> Result<()> {
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
