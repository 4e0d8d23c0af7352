//! Commands that move head or keep snapshots: `rollback`, `promote`, `pin`, `unpin`.

use super::{open_writer, Ctx};
use crate::exit::ExitKind;
use crate::output::{outln, print_json};
use anyhow::Result;
use serde_json::json;

/// `ragsnap rollback [--to ID | --steps N]`.
pub fn rollback(
    ctx: &Ctx,
    to: Option<&str>,
    steps: Option<u64>,
    reason: &str,
    allow_model_change: bool,
) -> Result<ExitKind> {
    let mut store = open_writer(&ctx.store_path)?;
    let target = match to {
        Some(t) => store.resolve(t)?,
        None => store.previous_head(usize::try_from(steps.unwrap_or(1)).unwrap_or(usize::MAX))?,
    };
    let (from, to) = store.rollback(&target, reason, allow_model_change)?;
    drop(store);
    ctx.audit("rollback", Some(&to), "ok", format!("head {from} -> {to}: {reason}"));
    if ctx.json {
        print_json(&json!({ "from": from, "to": to, "reason": reason }))?;
    } else if !ctx.quiet {
        eprintln!("ragsnap: head moved from {from} to {to}");
    }
    Ok(ExitKind::Ok)
}

/// `ragsnap promote ID`.
pub fn promote(ctx: &Ctx, id: &str, force: bool, allow_model_change: bool, reason: &str) -> Result<ExitKind> {
    let mut store = open_writer(&ctx.store_path)?;
    let id = store.resolve(id)?;
    let from = store.catalog().head_id()?;
    store.promote_with(&id, force, allow_model_change, reason)?;
    drop(store);
    let from_shown = from.as_deref().unwrap_or("none");
    ctx.audit(
        "promote",
        Some(&id),
        "ok",
        format!("head {from_shown} -> {id}{}: {reason}", if force { " (forced)" } else { "" }),
    );
    if ctx.json {
        print_json(&json!({ "from": from, "to": id, "forced": force, "reason": reason }))?;
    } else if !ctx.quiet {
        eprintln!("ragsnap: {id} is head");
    }
    Ok(ExitKind::Ok)
}

/// `ragsnap pin ID --reason TEXT`.
pub fn pin(ctx: &Ctx, id: &str, reason: &str) -> Result<ExitKind> {
    if reason.trim().is_empty() {
        return Err(super::usage("--reason must say why the snapshot is pinned"));
    }
    let store = open_writer(&ctx.store_path)?;
    let id = store.resolve(id)?;
    let status = store.catalog().get(&id)?.status;
    if status == "collected" {
        return Err(ragsnap::store::StoreError::Refused(format!(
            "snapshot {id} was removed by gc; there is nothing left to pin"
        ))
        .into());
    }
    let new = store.pin_snapshot(&id)?;
    drop(store);
    ctx.audit("pin", Some(&id), "ok", reason);
    if ctx.json {
        print_json(&json!({ "pinned": id, "tag": ragsnap::store::operator_tag(&id), "new": new, "reason": reason }))?;
    } else {
        outln!("pinned {id}{}: {reason}", if new { "" } else { " (already pinned; reason recorded)" });
    }
    Ok(ExitKind::Ok)
}

/// `ragsnap unpin ID`.
pub fn unpin(ctx: &Ctx, id: &str) -> Result<ExitKind> {
    let store = open_writer(&ctx.store_path)?;
    let id = store.resolve(id)?;
    let removed = store.unpin_snapshot(&id)?;
    drop(store);
    ctx.audit("unpin", Some(&id), "ok", format!("removed pins: {}", removed.join(", ")));
    if ctx.json {
        print_json(&json!({ "unpinned": id, "removed": removed }))?;
    } else if removed.is_empty() {
        outln!("{id} had no pins");
    } else {
        outln!("unpinned {id} ({})", removed.join(", "));
    }
    Ok(ExitKind::Ok)
}
