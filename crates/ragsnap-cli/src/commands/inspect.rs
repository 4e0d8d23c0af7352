//! Read-only commands: `snapshots`, `show`, `diff`, `history`.

use super::Ctx;
use crate::exit::ExitKind;
use crate::output::{self, print_json, ShowView};
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
    output::snapshots(&list)?;
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
    output::show(&ShowView {
        record: &record,
        manifest: &m,
        canaries,
        gates: &gates,
        rejected_because: &rejected_because,
        pin: pin.as_ref(),
    })?;
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
    output::diff(&d)?;
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
    output::history(&entries)?;
    Ok(ExitKind::Ok)
}
