//! `ragsnap repair`: rebuild a lost or damaged catalog from the snapshot folders.
//!
//! Every snapshot folder describes itself (its manifest names its id, parent, model, counts and
//! every file with its digest), so the catalog's snapshot rows can be rebuilt from the folders.
//! Each folder is verified (every checksum; with a [`LoadCheck`], a full load) before it is
//! listed again. Head is restored from `HEAD.json` when that names a restored snapshot, else it
//! is the newest ready one. The old catalog is renamed aside, never deleted. Pins and the head
//! history lived only in the catalog: they are copied when the old catalog can still be read,
//! and reported as not restored otherwise.

use crate::catalog::{self, Catalog, SnapshotRecord};
use crate::layout::{self, RootState};
use crate::{time, ArtifactKind, LoadCheck, Result, SnapshotStatus, Store, StoreError, LOADED_KINDS};
use serde::Serialize;
use std::fs;
use std::path::{Path, PathBuf};

/// One snapshot the repaired catalog lists.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RepairedSnapshot {
    /// Snapshot id.
    pub id: String,
    /// `ready` or `rejected`.
    pub status: SnapshotStatus,
    /// Why it is rejected, when it is.
    pub reason: Option<String>,
    /// Whether it keeps a backed-out mark (from `HEAD.json`).
    pub backed_out: bool,
}

/// A snapshot folder repair could not restore.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UnrestoredFolder {
    /// Folder name under `snapshots/`.
    pub name: String,
    /// What is wrong with it.
    pub problem: String,
    /// Where it is now (moved to `quarantine/` by a real run).
    pub path: PathBuf,
}

/// What `repair` found and did (or would do, with `dry_run`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RepairReport {
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// Whether the catalog needed rebuilding.
    pub needed: bool,
    /// What was wrong with the catalog.
    pub catalog_problem: Option<String>,
    /// Snapshots the new catalog lists, oldest first.
    pub restored: Vec<RepairedSnapshot>,
    /// Folders that could not be restored.
    pub unrestored: Vec<UnrestoredFolder>,
    /// Head of the new catalog.
    pub head: Option<String>,
    /// How head was chosen: `head record`, `newest ready snapshot`, or `none`.
    pub head_source: String,
    /// Where the old catalog was moved.
    pub old_catalog_kept_as: Option<PathBuf>,
    /// What the new catalog cannot have.
    pub not_restored: Vec<String>,
}

/// Diagnose the catalog; `None` when it is healthy and agrees with the folders.
fn diagnose(root: &Path, check: Option<LoadCheck>) -> Option<String> {
    let cpath = root.join(layout::CATALOG_FILE);
    // Opened the way a writer opens it: some damage only shows on a read-write connection.
    let cat = match Catalog::open_existing_as(&cpath, false) {
        Ok(c) => c,
        Err(StoreError::CatalogDamaged { message, .. }) => return Some(message),
        Err(e) => return Some(e.to_string()),
    };
    let list = match cat.list() {
        Ok(l) => l,
        Err(e) => return Some(e.to_string()),
    };
    if let Some(named) = layout::read_head_record(root).and_then(|h| h.head) {
        if !list.iter().any(|r| r.id == named && r.status != SnapshotStatus::Collected) {
            return Some(format!(
                "{} names snapshot {named} as head but the catalog does not list it (the catalog is older than the head record)",
                layout::HEAD_RECORD_FILE
            ));
        }
    }
    for rec in list.iter().filter(|r| r.status == SnapshotStatus::Collected) {
        let dir = root.join("snapshots").join(&rec.id);
        if dir.is_dir()
            && !layout::has_collecting_marker(root, &rec.id)
            && check_folder(root, &dir, &rec.id, check).is_ok()
        {
            return Some(format!(
                "it marks snapshot {} collected, but gc never started removing it (no gc marker) and its folder is intact",
                rec.id
            ));
        }
    }
    for rec in list.iter().filter(|r| r.status != SnapshotStatus::Collected) {
        let dir = root.join("snapshots").join(&rec.id);
        if !dir.is_dir() {
            return Some(format!("it lists snapshot {} but its folder is missing", rec.id));
        }
        // A row that disagrees with an intact folder is the catalog's fault.
        let Ok(m) = crate::read_manifest_at(&dir, &rec.id, None) else { continue };
        let bytes = fs::read(dir.join(crate::MANIFEST_FILE)).unwrap_or_default();
        let digest = blake3::hash(&bytes).to_hex().to_string();
        let mismatch =
            if digest != rec.manifest_blake3 { Some("manifest digest") } else { crate::record_mismatch(rec, &m) };
        if let Some(field) = mismatch {
            if field == "manifest digest" {
                return Some(format!(
                    "its record of snapshot {}'s manifest disagrees with the folder's manifest (which to trust is unknown)",
                    rec.id
                ));
            }
            if check_folder(root, &dir, &rec.id, check).is_ok() {
                return Some(format!("its row for snapshot {} disagrees with the intact folder ({field})", rec.id));
            }
        }
    }
    None
}

/// Verify a folder fully; returns its manifest digest and build report (`promoted`, reasons).
fn check_folder(
    root: &Path,
    dir: &Path,
    id: &str,
    check: Option<LoadCheck>,
) -> std::result::Result<(crate::Manifest, String, Option<serde_json::Value>), String> {
    let mbytes = fs::read(dir.join(crate::MANIFEST_FILE)).map_err(|e| format!("{}: {e}", crate::MANIFEST_FILE))?;
    let digest = blake3::hash(&mbytes).to_hex().to_string();
    let opened = crate::open_folder(root, dir, id, Some(&digest), &LOADED_KINDS).map_err(|e| e.to_string())?;
    for f in &opened.manifest.files {
        let kind = ArtifactKind::from_name(&f.kind).ok_or_else(|| format!("unknown kind {}", f.kind))?;
        if !LOADED_KINDS.contains(&kind) {
            let path = dir.join(&f.name);
            crate::artifact::read_file(&path, f.size)
                .and_then(|b| crate::artifact::unframe(&path, kind, &b).map(|_| ()))
                .map_err(|e| e.to_string())?;
        }
    }
    let report = opened
        .read_payload(ArtifactKind::Report)
        .ok()
        .flatten()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    let manifest = opened.manifest.clone();
    if let Some(check) = check {
        check(opened).map_err(|e| format!("a reader cannot open it: {e}"))?;
    }
    Ok((manifest, digest, report))
}

pub(crate) fn repair(root: &Path, dry_run: bool, check: Option<LoadCheck>) -> Result<RepairReport> {
    // A damaged identity file in a folder that holds snapshot folders is set aside, not trusted.
    let mut identity_problem = None;
    if let Err(e @ StoreError::Malformed { .. }) = layout::read_identity(root) {
        if !layout::has_snapshot_folders(root) {
            return Err(e);
        }
        identity_problem = Some(e.to_string());
        if !dry_run {
            let _lock = crate::take_lock(root)?;
            let from = root.join(layout::IDENTITY_FILE);
            let aside = root.join(format!("{}.damaged-{}", layout::IDENTITY_FILE, time::compact(time::unix_now())));
            fs::rename(&from, &aside).map_err(|e| StoreError::io(&from, e))?;
            layout::write_identity(root)?;
        }
    }
    let state = if identity_problem.is_some() && dry_run { RootState::Known } else { layout::classify(root)? };
    let mut rep = RepairReport {
        dry_run,
        needed: false,
        catalog_problem: None,
        restored: Vec::new(),
        unrestored: Vec::new(),
        head: None,
        head_source: "none".into(),
        old_catalog_kept_as: None,
        not_restored: Vec::new(),
    };
    if state == RootState::Fresh {
        return Err(StoreError::NoStore { path: root.to_path_buf() });
    }
    // A dry run changes nothing, not even the lock file.
    let lock = if dry_run { None } else { Some(crate::take_lock(root)?) };
    if !dry_run {
        layout::remove_dead_repair_leftovers(root)?;
    }
    rep.catalog_problem = diagnose(root, check);
    if let (Some(p), None) = (&identity_problem, &rep.catalog_problem) {
        rep.needed = true;
        rep.catalog_problem = Some(format!("the catalog is healthy; the identity file was not: {p}"));
        return Ok(rep);
    }
    if rep.catalog_problem.is_none() {
        drop(lock);
        if !dry_run && state == RootState::Adoptable {
            Store::open_writer(root)?; // writes the identity file
        }
        return Ok(rep);
    }
    rep.needed = true;
    let hint = layout::read_head_record(root);
    // What the old catalog recorded of each folder's manifest, where it can still be read: a
    // folder whose manifest differs was changed after it was recorded (or the row was), and
    // which of the two to trust is unknown, so it is not restored as trusted.
    let recorded: std::collections::HashMap<String, String> = Catalog::open_reader(&root.join(layout::CATALOG_FILE))
        .ok()
        .and_then(|(c, _)| c.list().ok())
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.manifest_blake3.len() == 64 && r.manifest_blake3.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|r| (r.id, r.manifest_blake3))
        .collect();
    let snaps = root.join("snapshots");
    let mut found: Vec<(SnapshotRecord, String)> = Vec::new();
    let mut names: Vec<String> = match fs::read_dir(&snaps) {
        Ok(it) => it.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    // The head record's snapshot, when its folder was moved to quarantine (by a writer that
    // trusted an older catalog): brought back when it verifies and no readable catalog records
    // another manifest for it.
    let mut from_quarantine: Option<(String, PathBuf)> = None;
    if let Some(h) = hint.as_ref().and_then(|h| h.head.clone()) {
        let q = root.join(layout::QUARANTINE_DIR);
        if crate::manifest::is_plain_file_name(&h) && !names.contains(&h) && q.is_dir() {
            let mut cands: Vec<String> = fs::read_dir(&q)
                .map(|it| it.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
                .unwrap_or_default();
            cands.retain(|n| {
                n == &h || n.strip_prefix(&format!("{h}.")).is_some_and(|k| k.bytes().all(|b| b.is_ascii_digit()))
            });
            cands.sort();
            for c in cands {
                let dir = q.join(&c);
                if !matches!(layout::entry_metadata(&dir), Ok(Some(m)) if m.is_dir()) {
                    continue;
                }
                if let Ok((_, digest, _)) = check_folder(root, &dir, &h, check) {
                    if recorded.get(&h).is_none_or(|r| *r == digest) {
                        from_quarantine = Some((h.clone(), dir));
                        break;
                    }
                }
            }
        }
    }
    if let Some((h, qdir)) = &from_quarantine {
        if !dry_run {
            let to = snaps.join(h);
            fs::rename(qdir, &to).map_err(|e| StoreError::io(qdir, e))?;
            ragsnap_core::fsio::sync_dir(&snaps).map_err(|e| StoreError::io(&snaps, e))?;
        }
        names.push(h.clone());
    }
    for name in names {
        let dir = match &from_quarantine {
            Some((h, qdir)) if *h == name && dry_run => qdir.clone(),
            _ => snaps.join(&name),
        };
        let checked = match layout::entry_metadata(&dir) {
            Ok(Some(m)) if m.is_dir() && crate::manifest::is_plain_file_name(&name) => {
                check_folder(root, &dir, &name, check)
            }
            Ok(Some(m)) if m.is_dir() => Err("not a snapshot id".into()),
            Ok(_) => Err("not a folder".into()),
            Err(e) => Err(e.to_string()),
        };
        let checked = checked.and_then(|(m, digest, report)| match recorded.get(&name) {
            Some(r) if *r != digest => Err(format!(
                "manifest does not match the catalog's record (the catalog records blake3 {r}, the folder's \
                 manifest is {digest}): the folder or the catalog was changed after the snapshot was \
                 published, and which to trust is unknown"
            )),
            _ => Ok((m, digest, report)),
        });
        let (m, digest, report) = match checked {
            Ok(x) => x,
            Err(problem) => {
                rep.unrestored.push(UnrestoredFolder { name, problem, path: dir });
                continue;
            }
        };
        let was_head = hint.as_ref().and_then(|h| h.head.as_deref()) == Some(name.as_str());
        let pending = layout::pending_marker(root, &name).exists();
        let promoted = report.as_ref().and_then(|r| r.get("promoted")).and_then(|v| v.as_bool()).unwrap_or(true);
        let (status, reason) = if was_head {
            (SnapshotStatus::Ready, None)
        } else if pending {
            (
                SnapshotStatus::Rejected,
                Some("restored by repair: its build was interrupted before the catalog recorded it".to_string()),
            )
        } else if !promoted {
            let why = report
                .as_ref()
                .and_then(|r| r.get("rejected_because"))
                .and_then(|v| v.as_array())
                .map(|a| a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join("; "))
                .unwrap_or_default();
            (SnapshotStatus::Rejected, Some(why))
        } else {
            (SnapshotStatus::Ready, None)
        };
        let backed_out = hint.as_ref().and_then(|h| h.backed_out.get(&name)).cloned().filter(|_| !was_head);
        let rec = SnapshotRecord {
            id: name.clone(),
            parent_id: m.parent_id.clone(),
            created_at: m.created_at.clone(),
            created_unix: time::parse_rfc3339(&m.created_at).unwrap_or(0),
            status,
            manifest_blake3: digest,
            fingerprint_id: m.fingerprint.id(),
            documents: m.counts.documents as u64,
            chunks: m.counts.chunks as u64,
            index_kind: m.index.kind.as_str().to_string(),
            recall: m.index.recall,
            reason,
            is_head: false,
            pins: Vec::new(),
            backed_out,
        };
        found.push((rec, m.created_at.clone()));
    }
    found.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.id.cmp(&b.0.id)));
    let hinted = hint.as_ref().and_then(|h| h.head.clone()).filter(|h| found.iter().any(|(r, _)| &r.id == h));
    let (head, source) = match hinted {
        Some(h) => (Some(h), "head record"),
        None => match found.iter().rev().find(|(r, _)| r.status == SnapshotStatus::Ready && r.backed_out.is_none()) {
            Some((r, _)) => (Some(r.id.clone()), "newest ready snapshot"),
            None => (None, "none"),
        },
    };
    rep.head = head.clone();
    rep.head_source = source.into();
    rep.restored = found
        .iter()
        .map(|(r, _)| RepairedSnapshot {
            id: r.id.clone(),
            status: r.status,
            reason: r.reason.clone(),
            backed_out: r.backed_out.is_some(),
        })
        .collect();
    // What can still be read of the old catalog: its head history and pins.
    let old = Catalog::open_reader(&root.join(layout::CATALOG_FILE)).ok().map(|(c, _)| c);
    if old.is_none() {
        rep.not_restored =
            vec!["pins".into(), "the head history (the old catalog is kept aside for reading by hand)".into()];
    }
    if dry_run {
        return Ok(rep);
    }
    for d in layout::STORE_DIRS {
        layout::ensure_dir(&root.join(d))?;
    }
    let cpath = root.join(layout::CATALOG_FILE);
    let tmp = root.join(format!("catalog.sqlite.repair-{}", std::process::id()));
    for p in [
        tmp.clone(),
        catalog::side_file(&tmp, "-journal"),
        catalog::side_file(&tmp, "-wal"),
        catalog::side_file(&tmp, "-shm"),
    ] {
        let _ = fs::remove_file(p);
    }
    {
        let mut cat = Catalog::create(&tmp)?;
        for (r, _) in &found {
            cat.insert_recovered(r)?;
        }
        if let Some(old) = &old {
            let ids: Vec<String> = found.iter().map(|(r, _)| r.id.clone()).collect();
            if let Err(e) = cat.copy_history_and_pins(old, &ids) {
                tracing::warn!(error = %e, "the old catalog's history could not be copied");
                rep.not_restored =
                    vec!["pins".into(), "the head history (the old catalog is kept aside for reading by hand)".into()];
            }
        }
        if let Some(h) = &head {
            cat.move_head_backing_out(h, "repair", "head restored by `ragsnap repair`", false)?;
        }
    }
    drop(old);
    let stamp = time::compact(time::unix_now());
    if layout::entry_metadata(&cpath)?.is_some() {
        let aside = root.join(format!("catalog.sqlite.damaged-{stamp}"));
        fs::rename(&cpath, &aside).map_err(|e| StoreError::io(&cpath, e))?;
        rep.old_catalog_kept_as = Some(aside);
    }
    for side in ["-wal", "-shm"] {
        let p = catalog::side_file(&cpath, side);
        if layout::entry_metadata(&p)?.is_some() {
            let aside = root.join(format!("catalog.sqlite.damaged-{stamp}{side}"));
            fs::rename(&p, &aside).map_err(|e| StoreError::io(&p, e))?;
        }
    }
    fs::rename(&tmp, &cpath).map_err(|e| StoreError::io(&tmp, e))?;
    ragsnap_core::fsio::sync_dir(root).map_err(|e| StoreError::io(root, e))?;
    if layout::read_identity(root)?.is_none() {
        layout::write_identity(root)?;
    }
    // The head record now follows the new catalog (repair is what settles a disagreement).
    let mut record = layout::HeadRecord { head: head.clone(), ..Default::default() };
    for (r, _) in &found {
        if let Some(b) = &r.backed_out {
            record.backed_out.insert(r.id.clone(), b.clone());
        }
    }
    record.written_at = time::rfc3339(time::unix_now());
    layout::write_head_record(root, &record)?;
    drop(lock);
    // The writer open checks the new catalog, moves unrestorable folders to quarantine and
    // writes the head record.
    let store = Store::open_writer(root)?;
    for u in &mut rep.unrestored {
        if let Some((_, to)) = store.quarantined().iter().find(|(n, _)| *n == u.name) {
            u.path = to.clone();
        }
    }
    Ok(rep)
}
