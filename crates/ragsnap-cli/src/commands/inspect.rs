//! Read-only commands: `snapshots`, `show`, `diff`, `history`.

use super::Ctx;
use crate::exit::ExitKind;
use crate::output::{outln, print_json};
use anyhow::Result;
use ragsnap::store::{ArtifactKind, AuditEntry, HistoryEntry};
use ragsnap::Store;
use serde_json::{json, Value};

/// `ragsnap snapshots`.
pub fn snapshots(ctx: &Ctx) -> Result<ExitKind> {
    let store = Store::open_reader(&ctx.store_path)?;
    let list = store.catalog().list()?;
    if ctx.json {
        print_json(&list)?;
        return Ok(ExitKind::Ok);
    }
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
    for s in &list {
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
    Ok(ExitKind::Ok)
}

/// The gate results and rejection reasons of the report stored in a snapshot (null when the
/// snapshot has no report).
fn stored_report(opened: &ragsnap::store::OpenedSnapshot) -> Result<(Value, Value)> {
    let Some(bytes) = opened.read_payload(ArtifactKind::Report)? else { return Ok((Value::Null, Value::Null)) };
    let report: Value = serde_json::from_slice(&bytes)?;
    Ok((
        report.get("gates").cloned().unwrap_or(Value::Null),
        report.get("rejected_because").cloned().unwrap_or(Value::Null),
    ))
}

/// The latest `pin` entry of the audit log for `id`: who pinned it, when and why.
fn pin_reason(store: &Store, id: &str) -> Result<Option<AuditEntry>> {
    Ok(store
        .catalog()
        .audit()?
        .into_iter()
        .rfind(|e| e.command == "pin" && e.outcome == "ok" && e.snapshot_id.as_deref() == Some(id)))
}

/// `ragsnap show [ID]`: status (with who backed it out and why), the gate results and reasons
/// (also of a rejected build), pins, then the manifest.
pub fn show(ctx: &Ctx, id: Option<&str>) -> Result<ExitKind> {
    let store = Store::open_reader(&ctx.store_path)?;
    let id = store.resolve(id.unwrap_or("HEAD"))?;
    let opened = store.open_snapshot(&id)?;
    let record = store.catalog().get(&id)?;
    let (gates, rejected_because) = stored_report(&opened)?;
    let pin = if record.pins.is_empty() { None } else { pin_reason(&store, &id)? };
    let mut m = opened.manifest.clone();
    let canaries = m.canaries.len();
    m.canaries.iter_mut().for_each(|c| c.vector.truncate(4));
    if ctx.json {
        let mut v = serde_json::to_value(&m)?;
        v["status"] = json!(record.status);
        v["is_head"] = json!(record.is_head);
        v["reason"] = json!(record.reason);
        v["gates"] = gates;
        v["rejected_because"] = rejected_because;
        v["pins"] = json!(record.pins);
        if let Some(p) = &pin {
            v["pin_reason"] = json!(p.detail);
        }
        if let Some(b) = &record.backed_out {
            v["backed_out"] = serde_json::to_value(b)?;
        }
        print_json(&v)?;
        return Ok(ExitKind::Ok);
    }
    outln!("snapshot     {}", m.snapshot_id);
    outln!("status       {}{}", record.status, if record.is_head { " (head)" } else { "" });
    if let Some(r) = &record.reason {
        outln!("reason       {r}");
    }
    if let Some(b) = &record.backed_out {
        outln!("backed out   {} by {}: {}", b.at, b.by, b.reason);
    }
    for p in &record.pins {
        outln!("pinned       {p}");
    }
    if let Some(p) = &pin {
        outln!("pin reason   {} (by {} at {})", p.detail, p.actor, p.at);
    }
    if let Some(reasons) = rejected_because.as_array() {
        for r in reasons {
            outln!("rejected     {}", r.as_str().unwrap_or_default());
        }
    }
    if let Some(gates) = gates.as_array() {
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
    outln!("parent       {}", m.parent_id.as_deref().unwrap_or("-"));
    outln!("created      {}", m.created_at);
    outln!("format       v{}  tool {}", m.format_version.0, m.tool_version);
    outln!("embedding    {}  (runtime {}, {} canaries)", m.fingerprint.id(), m.fingerprint.runtime_version, canaries);
    outln!(
        "index        {} M={} ef_construction={} ef_search={} recall@{}={:.4} (target {:.2}, {} queries)",
        m.index.kind,
        m.index.m,
        m.index.ef_construction,
        m.index.ef_search,
        m.index.k,
        m.index.recall,
        m.index.target_recall,
        m.index.sample
    );
    outln!("counts       {} documents, {} chunks", m.counts.documents, m.counts.chunks);
    outln!("source       {}", m.source_digest);
    for f in &m.files {
        outln!("file         {:<20} {:<10} {:>10} B  {}", f.name, f.kind, f.size, &f.blake3[..16]);
    }
    Ok(ExitKind::Ok)
}

/// `ragsnap diff A [B]`.
pub fn diff(ctx: &Ctx, a: &str, b: Option<&str>) -> Result<ExitKind> {
    let store = Store::open_reader(&ctx.store_path)?;
    let a = store.resolve(a)?;
    let b = store.resolve(b.unwrap_or("HEAD"))?;
    let d = ragsnap::diff(&store, &a, &b)?;
    if ctx.json {
        print_json(&d)?;
        return Ok(ExitKind::Ok);
    }
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
    Ok(ExitKind::Ok)
}

/// A head move recorded before the store had an audit log, shown as an audit entry.
fn from_head_history(h: HistoryEntry) -> AuditEntry {
    let from = h.from_id.as_deref().unwrap_or("none");
    AuditEntry {
        seq: 0,
        at: h.at,
        actor: h.who,
        command: h.action,
        snapshot_id: Some(h.to_id.clone()),
        outcome: "ok".into(),
        detail: format!("head {from} -> {}: {}", h.to_id, h.reason),
    }
}

/// `ragsnap history`: the audit log, oldest first. Head moves made before the store had an
/// audit log come first, from the head history (their `seq` is 0).
pub fn history(ctx: &Ctx, last: Option<u64>) -> Result<ExitKind> {
    let store = Store::open_reader(&ctx.store_path)?;
    let audit = store.catalog().audit()?;
    let first_at = audit.first().map(|e| e.at.clone());
    let mut entries: Vec<AuditEntry> = store
        .catalog()
        .history()?
        .into_iter()
        .filter(|h| first_at.as_ref().is_none_or(|f| h.at < *f))
        .map(from_head_history)
        .collect();
    entries.extend(audit);
    if let Some(n) = last {
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        entries.drain(..entries.len().saturating_sub(n));
    }
    if ctx.json {
        print_json(&entries)?;
        return Ok(ExitKind::Ok);
    }
    for e in &entries {
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
    Ok(ExitKind::Ok)
}
