//! Snapshot storage for ragsnap: immutable, checksummed, versioned snapshot folders, a SQLite
//! catalog whose `head` row is the single commit point, rollback, verify and GC.
//!
//! Layout of a store:
//! ```text
//! <store>/catalog.sqlite        snapshots, head, append-only history, pins
//! <store>/LOCK                  writer lock (flock), holds the writer's pid
//! <store>/staging/<id>/         a snapshot being written
//! <store>/snapshots/<id>/       published snapshots, never modified
//! <store>/leases/<id>.lease     shared locks held by readers; GC skips leased snapshots
//! <store>/cache/                the embedding cache
//! ```
//! The commit protocol and the file formats are described byte by byte in `docs/format.md`.

pub mod artifact;
mod catalog;
mod error;
pub mod manifest;
pub mod tables;
pub mod time;

pub use artifact::ArtifactKind;
pub use catalog::{Catalog, HistoryEntry, SnapshotRecord, CATALOG_SCHEMA_VERSION};
pub use error::{Result, StoreError};
pub use manifest::{Calibration, ChunkerInfo, Counts, FileEntry, IndexInfo, Manifest, MANIFEST_FILE};
pub use tables::{ChunkTable, DocumentEntry};

use ragsnap_core::fsio;
use serde::Serialize;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Largest artifact a manifest may declare (sizes are checked before any allocation).
pub const MAX_ARTIFACT_BYTES: u64 = 16 << 30;

/// Abort the process at a named point of the commit protocol when `RAGSNAP_FAILPOINT` names it.
///
/// Used by the crash tests: a real process dies exactly there, as it would on SIGKILL.
pub fn failpoint(name: &str) {
    if let Some(v) = std::env::var_os("RAGSNAP_FAILPOINT") {
        if v == name {
            eprintln!("ragsnap: failpoint {name} reached; aborting");
            std::process::abort();
        }
    }
}

/// A store opened for reading (no lock) or writing (holding `LOCK`).
pub struct Store {
    root: PathBuf,
    catalog: Catalog,
    _writer: Option<File>,
}

/// A snapshot being written under `staging/`.
pub struct Staging {
    /// Snapshot id.
    pub id: String,
    /// Its staging folder.
    pub dir: PathBuf,
    files: Vec<FileEntry>,
}

/// A problem found by [`Store::verify`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Problem {
    /// File concerned.
    pub file: String,
    /// What is wrong.
    pub message: String,
}

/// Result of verifying one snapshot.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VerifyReport {
    /// Snapshot id.
    pub snapshot_id: String,
    /// Whether nothing was wrong.
    pub ok: bool,
    /// Files checked.
    pub files: usize,
    /// Bytes hashed.
    pub bytes: u64,
    /// What was wrong.
    pub problems: Vec<Problem>,
}

/// A reader's hold on a snapshot: while it lives, GC will not delete the snapshot.
#[derive(Debug)]
pub struct Lease {
    _file: File,
}

/// A verified snapshot, ready for its artifacts to be read.
pub struct OpenedSnapshot {
    /// Its manifest.
    pub manifest: Manifest,
    /// Its folder.
    pub dir: PathBuf,
    /// The lease keeping it from GC.
    pub lease: Lease,
    /// Whole artifact files that [`Store::open_snapshot_keeping`] read and checked against the
    /// manifest, each handed out (once) by [`OpenedSnapshot::payload`] without a second read or
    /// hash.
    kept: Mutex<Vec<(ArtifactKind, Vec<u8>)>>,
}

impl std::fmt::Debug for OpenedSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedSnapshot")
            .field("manifest", &self.manifest)
            .field("dir", &self.dir)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

/// An artifact's payload: the bytes of the whole file, exposed without its header and footer
/// (no copy).
pub struct Payload {
    bytes: Vec<u8>,
    start: usize,
    end: usize,
}

impl std::ops::Deref for Payload {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[self.start..self.end]
    }
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Payload({} bytes)", self.end - self.start)
    }
}

impl OpenedSnapshot {
    /// Path of the artifact of `kind`, if the snapshot has one.
    pub fn path(&self, kind: ArtifactKind) -> Option<PathBuf> {
        self.manifest.file(kind).map(|f| self.dir.join(&f.name))
    }

    /// Read and unframe the artifact of `kind` whole (a copy of its payload).
    pub fn read_payload(&self, kind: ArtifactKind) -> Result<Option<Vec<u8>>> {
        Ok(self.payload(kind)?.map(|p| p.to_vec()))
    }

    /// The payload of the artifact of `kind`. A file kept by
    /// [`Store::open_snapshot_keeping`] is handed out the first time without being read or
    /// hashed again (its whole-file blake3 matched the manifest: its frame is checked for shape
    /// only); otherwise the file is read and fully unframed, frame checksum included.
    pub fn payload(&self, kind: ArtifactKind) -> Result<Option<Payload>> {
        let Some(entry) = self.manifest.file(kind) else { return Ok(None) };
        let path = self.dir.join(&entry.name);
        let kept = {
            let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
            kept.iter().position(|(k, _)| *k == kind).map(|i| kept.swap_remove(i).1)
        };
        let bytes = match kept {
            Some(bytes) => {
                unframe_shape(&path, kind, &bytes)?;
                bytes
            }
            None => {
                let bytes = artifact::read_file(&path, entry.size)?;
                artifact::unframe(&path, kind, &bytes)?;
                bytes
            }
        };
        // Both checks above refuse anything shorter than header + footer.
        let (start, end) = (artifact::HEADER_LEN, bytes.len() - artifact::FOOTER_LEN);
        Ok(Some(Payload { bytes, start, end }))
    }
}

/// What GC did or would do.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct GcReport {
    /// Snapshots removed (or that would be, with `dry_run`).
    pub removed: Vec<String>,
    /// Snapshots kept, with why.
    pub kept: Vec<(String, String)>,
    /// Bytes freed.
    pub bytes_freed: u64,
    /// Whether this was a dry run.
    pub dry_run: bool,
}

fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut f = File::open(path)?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((h.finalize().to_hex().to_string(), n))
}

fn new_snapshot_id() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let salt =
        blake3::hash(format!("{}-{}-{:?}", std::process::id(), now.as_nanos(), std::thread::current().id()).as_bytes());
    format!("s{}-{}", time::compact(now.as_secs() as i64), &salt.to_hex()[..6])
}

impl Store {
    /// Open `root` for writing: create it if needed, take the writer lock, clean up orphans a
    /// crashed writer left behind (staging folders, snapshot folders the catalog doesn't know).
    pub fn open_writer(root: &Path) -> Result<Self> {
        for d in ["", "staging", "snapshots", "leases", "cache"] {
            let p = root.join(d);
            fs::create_dir_all(&p).map_err(|e| StoreError::io(&p, e))?;
        }
        let lock_path = root.join("LOCK");
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| StoreError::io(&lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let mut s = String::new();
                let _ = lock.read_to_string(&mut s);
                return Err(StoreError::Locked { path: lock_path, pid: s.trim().parse().unwrap_or(0) });
            }
            Err(fs::TryLockError::Error(e)) => return Err(StoreError::io(&lock_path, e)),
        }
        lock.set_len(0).map_err(|e| StoreError::io(&lock_path, e))?;
        writeln!(lock, "{}", std::process::id()).map_err(|e| StoreError::io(&lock_path, e))?;
        lock.sync_data().map_err(|e| StoreError::io(&lock_path, e))?;
        let catalog = Catalog::open_rw(&root.join("catalog.sqlite"))?;
        let store = Store { root: root.to_path_buf(), catalog, _writer: Some(lock) };
        store.clean_orphans()?;
        Ok(store)
    }

    /// Open `root` for reading. Takes no lock and never writes the catalog.
    pub fn open_reader(root: &Path) -> Result<Self> {
        let catalog = Catalog::open_ro(&root.join("catalog.sqlite"))?;
        Ok(Store { root: root.to_path_buf(), catalog, _writer: None })
    }

    /// The store's folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Folder of snapshot `id`.
    pub fn snapshot_dir(&self, id: &str) -> PathBuf {
        self.root.join("snapshots").join(id)
    }

    fn require_writer(&self) -> Result<()> {
        if self._writer.is_none() {
            return Err(StoreError::Refused("this store was opened read-only".into()));
        }
        Ok(())
    }

    fn clean_orphans(&self) -> Result<()> {
        let staging = self.root.join("staging");
        for e in fs::read_dir(&staging).map_err(|e| StoreError::io(&staging, e))? {
            let p = e.map_err(|e| StoreError::io(&staging, e))?.path();
            tracing::info!(path = %p.display(), "removing orphaned staging folder");
            remove_any(&p)?;
        }
        let known: std::collections::HashSet<String> = self.catalog.list()?.into_iter().map(|s| s.id).collect();
        let snaps = self.root.join("snapshots");
        for e in fs::read_dir(&snaps).map_err(|e| StoreError::io(&snaps, e))? {
            let e = e.map_err(|e| StoreError::io(&snaps, e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if !known.contains(&name) {
                tracing::info!(snapshot = %name, "removing snapshot folder the catalog does not know (a crashed build)");
                remove_any(&e.path())?;
            }
        }
        fsio::sync_dir(&snaps).map_err(|e| StoreError::io(&snaps, e))?;
        Ok(())
    }

    /// Start a new snapshot under `staging/`.
    pub fn stage(&self) -> Result<Staging> {
        self.require_writer()?;
        let id = new_snapshot_id();
        let dir = self.root.join("staging").join(&id);
        fs::create_dir(&dir).map_err(|e| StoreError::io(&dir, e))?;
        Ok(Staging { id, dir, files: Vec::new() })
    }

    /// Publish a staged snapshot: write its manifest atomically, move it under `snapshots/`, and
    /// in one catalog transaction record it and (when `promote`) move head to it.
    /// Returns the manifest's blake3.
    pub fn publish(&mut self, staging: Staging, mut manifest: Manifest, promote: bool, reason: &str) -> Result<String> {
        self.require_writer()?;
        manifest.snapshot_id = staging.id.clone();
        manifest.files = staging.files.clone();
        failpoint("before-manifest");
        let bytes = manifest.to_bytes();
        let mpath = staging.dir.join(MANIFEST_FILE);
        fsio::write_atomic(&mpath, &bytes).map_err(|e| StoreError::io(&mpath, e))?;
        failpoint("after-manifest");
        let target = self.snapshot_dir(&staging.id);
        fs::rename(&staging.dir, &target).map_err(|e| StoreError::io(&target, e))?;
        for d in [self.root.join("snapshots"), self.root.join("staging")] {
            fsio::sync_dir(&d).map_err(|e| StoreError::io(&d, e))?;
        }
        failpoint("after-rename");
        let digest = blake3::hash(&bytes).to_hex().to_string();
        let now = time::unix_now();
        let rec = SnapshotRecord {
            id: staging.id.clone(),
            parent_id: manifest.parent_id.clone(),
            created_at: manifest.created_at.clone(),
            created_unix: now,
            status: if promote { "ready".into() } else { "rejected".into() },
            manifest_blake3: digest.clone(),
            fingerprint_id: manifest.fingerprint.id(),
            documents: manifest.counts.documents as u64,
            chunks: manifest.counts.chunks as u64,
            index_kind: manifest.index.kind.clone(),
            recall: manifest.index.recall,
            reason: (!promote).then(|| reason.to_string()),
            is_head: false,
            pins: Vec::new(),
        };
        self.catalog.insert_snapshot(&rec, promote.then_some(("promote", reason)))?;
        failpoint("after-commit");
        Ok(digest)
    }

    /// Head record.
    pub fn head(&self) -> Result<SnapshotRecord> {
        let id = self.catalog.head_id()?.ok_or(StoreError::NoHead)?;
        self.catalog.get(&id)
    }

    /// Verify and open snapshot `id` for reading, under a lease.
    pub fn open_snapshot(&self, id: &str) -> Result<OpenedSnapshot> {
        self.open_snapshot_keeping(id, &[])
    }

    /// Like [`Store::open_snapshot`], but the artifacts of the kinds in `keep` are read into
    /// memory whole while they are hashed, so that [`OpenedSnapshot::payload`] hands out exactly
    /// the bytes that were checked, with one read and one hash per file.
    pub fn open_snapshot_keeping(&self, id: &str, keep: &[ArtifactKind]) -> Result<OpenedSnapshot> {
        let rec = self.catalog.get(id)?;
        if rec.status == "collected" {
            return Err(StoreError::Refused(format!("snapshot {id} was garbage-collected")));
        }
        let lease = self.lease(id)?;
        let dir = self.snapshot_dir(id);
        let manifest = self.read_manifest(&rec, &dir)?;
        let mut kept = Vec::new();
        for f in &manifest.files {
            let path = dir.join(&f.name);
            check_regular(&path, f.size)?;
            let kind = ArtifactKind::from_name(&f.kind).filter(|k| keep.contains(k));
            let found = match kind {
                Some(kind) => {
                    let bytes = artifact::read_file(&path, f.size)?;
                    let found = blake3::hash(&bytes).to_hex().to_string();
                    kept.push((kind, bytes));
                    found
                }
                None => hash_file(&path).map_err(|e| StoreError::io(&path, e))?.0,
            };
            if found != f.blake3 {
                return Err(StoreError::Corrupt { path, expected: f.blake3.clone(), found });
            }
        }
        Ok(OpenedSnapshot { manifest, dir, lease, kept: Mutex::new(kept) })
    }

    fn read_manifest(&self, rec: &SnapshotRecord, dir: &Path) -> Result<Manifest> {
        let mpath = dir.join(MANIFEST_FILE);
        check_regular(&mpath, u64::MAX)?;
        let bytes = artifact::read_file(&mpath, manifest::MAX_MANIFEST_BYTES)?;
        let found = blake3::hash(&bytes).to_hex().to_string();
        if found != rec.manifest_blake3 {
            return Err(StoreError::Corrupt { path: mpath, expected: rec.manifest_blake3.clone(), found });
        }
        let m = Manifest::parse(&mpath, &bytes)?;
        if m.snapshot_id != rec.id {
            return Err(StoreError::ManifestRefused {
                path: mpath,
                message: format!("manifest is for {}, catalog row is {}", m.snapshot_id, rec.id),
            });
        }
        Ok(m)
    }

    /// Take a reader lease on snapshot `id`.
    pub fn lease(&self, id: &str) -> Result<Lease> {
        if !manifest::is_plain_file_name(id) {
            return Err(StoreError::UnknownSnapshot(id.to_string()));
        }
        let dir = self.root.join("leases");
        let path = dir.join(format!("{id}.lease"));
        let file = match OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path) {
            Ok(f) => f,
            // A read-only reader on a store it cannot write: no lease possible; open anyway.
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied || e.kind() == std::io::ErrorKind::NotFound => {
                File::open(self.snapshot_dir(id)).map_err(|e| StoreError::io(self.snapshot_dir(id), e))?
            }
            Err(e) => return Err(StoreError::io(&path, e)),
        };
        file.lock_shared().map_err(|e| StoreError::io(&path, e))?;
        Ok(Lease { _file: file })
    }

    /// Re-hash every file of snapshot `id` against its manifest, and the manifest against the
    /// catalog. Problems are collected, not returned as the first error.
    pub fn verify(&self, id: &str) -> Result<VerifyReport> {
        let rec = self.catalog.get(id)?;
        let dir = self.snapshot_dir(id);
        let mut rep = VerifyReport { snapshot_id: id.to_string(), ok: true, files: 0, bytes: 0, problems: Vec::new() };
        if rec.status == "collected" {
            return Ok(rep);
        }
        let manifest = match self.read_manifest(&rec, &dir) {
            Ok(m) => m,
            Err(e) => {
                rep.ok = false;
                rep.problems.push(Problem { file: MANIFEST_FILE.into(), message: e.to_string() });
                return Ok(rep);
            }
        };
        rep.files += 1;
        for f in &manifest.files {
            let path = dir.join(&f.name);
            rep.files += 1;
            if let Err(e) = check_regular(&path, f.size) {
                rep.problems.push(Problem { file: f.name.clone(), message: e.to_string() });
                continue;
            }
            match hash_file(&path) {
                Ok((found, n)) => {
                    rep.bytes += n;
                    if found != f.blake3 {
                        rep.problems.push(Problem {
                            file: f.name.clone(),
                            message: format!("checksum mismatch: expected blake3 {}, found {found}", f.blake3),
                        });
                        continue;
                    }
                }
                Err(e) => {
                    rep.problems.push(Problem { file: f.name.clone(), message: e.to_string() });
                    continue;
                }
            }
            let kind = ArtifactKind::from_name(&f.kind).expect("checked by Manifest::parse");
            let checked =
                artifact::read_file(&path, f.size).and_then(|b| artifact::unframe(&path, kind, &b).map(|_| ()));
            if let Err(e) = checked {
                rep.problems.push(Problem { file: f.name.clone(), message: e.to_string() });
            }
        }
        if let Ok(entries) = fs::read_dir(&dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name != MANIFEST_FILE && !manifest.files.iter().any(|f| f.name == name) {
                    rep.problems.push(Problem { file: name, message: "file not listed in the manifest".into() });
                }
            }
        }
        rep.ok = rep.problems.is_empty();
        Ok(rep)
    }

    /// Move head back to `target` after verifying every checksum of it. Refuses a snapshot
    /// built with another embedding fingerprint unless `allow_model_change`. Never deletes.
    pub fn rollback(&mut self, target: &str, reason: &str, allow_model_change: bool) -> Result<(String, String)> {
        self.require_writer()?;
        let head = self.head()?;
        let rec = self.catalog.get(target)?;
        if rec.status != "ready" {
            return Err(StoreError::Refused(format!("snapshot {target} is {}; only ready snapshots can become head (use `promote --force` for a rejected one)", rec.status)));
        }
        if rec.id == head.id {
            return Err(StoreError::Refused(format!("snapshot {target} is already head")));
        }
        let rep = self.verify(target)?;
        if !rep.ok {
            let list: Vec<String> = rep.problems.iter().map(|p| format!("{}: {}", p.file, p.message)).collect();
            return Err(StoreError::Refused(format!(
                "rollback target {target} failed verification: {}",
                list.join("; ")
            )));
        }
        if rec.fingerprint_id != head.fingerprint_id && !allow_model_change {
            return Err(StoreError::Refused(format!(
                "snapshot {target} was built with embedding {} but head uses {}; pass --allow-model-change to roll back across a model change",
                rec.fingerprint_id, head.fingerprint_id
            )));
        }
        self.catalog.set_head(target, "rollback", reason)?;
        Ok((head.id, rec.id))
    }

    /// The snapshot `steps` heads back in the history (1 = the head before the current one).
    pub fn previous_head(&self, steps: usize) -> Result<String> {
        let history = self.catalog.history()?;
        let mut seen: Vec<String> = Vec::new();
        for h in history.iter().rev() {
            if seen.last() != Some(&h.to_id) {
                seen.push(h.to_id.clone());
            }
        }
        // seen[0] is the current head; walk back over distinct earlier heads still available.
        let usable: Vec<&String> = seen
            .iter()
            .skip(1)
            .filter(|id| self.catalog.get(id).map(|r| r.status == "ready").unwrap_or(false))
            .filter(|id| Some(id.as_str()) != seen.first().map(String::as_str))
            .collect();
        usable
            .get(steps.saturating_sub(1))
            .map(|s| (*s).clone())
            .ok_or_else(|| StoreError::Refused(format!("no head {steps} step(s) back in the history")))
    }

    /// Make snapshot `id` head (the nightly job's force-promotion of a rejected build).
    pub fn promote(&mut self, id: &str, force: bool, reason: &str) -> Result<()> {
        self.require_writer()?;
        let rec = self.catalog.get(id)?;
        if rec.status == "rejected" && !force {
            return Err(StoreError::Refused(format!(
                "snapshot {id} was rejected ({}); pass --force to promote it anyway",
                rec.reason.unwrap_or_default()
            )));
        }
        if rec.status == "collected" {
            return Err(StoreError::Refused(format!("snapshot {id} was garbage-collected")));
        }
        let rep = self.verify(id)?;
        if !rep.ok {
            return Err(StoreError::Refused(format!("snapshot {id} failed verification")));
        }
        self.catalog.set_head(id, if rec.status == "rejected" { "force-promote" } else { "promote" }, reason)
    }

    /// Remove snapshots that are neither head, pinned, among the newest `keep` ready ones, nor
    /// younger than `older_than_secs`, nor leased by a reader.
    pub fn gc(&mut self, keep: usize, older_than_secs: Option<i64>, dry_run: bool) -> Result<GcReport> {
        self.require_writer()?;
        let all = self.catalog.list()?;
        let now = time::unix_now();
        // The catalog lists snapshots in the order they were recorded; the newest come last.
        let newest: Vec<&str> =
            all.iter().rev().filter(|s| s.status == "ready").take(keep).map(|s| s.id.as_str()).collect();
        let mut rep = GcReport { dry_run, ..GcReport::default() };
        for s in all.iter().filter(|s| s.status != "collected") {
            let why = if s.is_head {
                Some("head")
            } else if !s.pins.is_empty() {
                Some("pinned")
            } else if newest.contains(&s.id.as_str()) {
                Some("within --keep")
            } else if older_than_secs.is_some_and(|age| now - s.created_unix < age) {
                Some("younger than --older-than")
            } else {
                None
            };
            if let Some(w) = why {
                rep.kept.push((s.id.clone(), w.into()));
                continue;
            }
            let lease_path = self.root.join("leases").join(format!("{}.lease", s.id));
            let lease = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&lease_path)
                .map_err(|e| StoreError::io(&lease_path, e))?;
            if lease.try_lock().is_err() {
                rep.kept.push((s.id.clone(), "open by a reader".into()));
                continue;
            }
            let dir = self.snapshot_dir(&s.id);
            let bytes = dir_size(&dir);
            if !dry_run {
                self.catalog.mark_collected(&s.id)?;
                remove_any(&dir)?;
                let _ = fs::remove_file(&lease_path);
            }
            rep.bytes_freed += bytes;
            rep.removed.push(s.id.clone());
        }
        Ok(rep)
    }

    /// Pin a snapshot so GC keeps it.
    pub fn pin(&self, tag: &str, id: &str) -> Result<()> {
        self.require_writer()?;
        self.catalog.get(id)?;
        self.catalog.pin(tag, id)
    }
}

impl Staging {
    /// Frame `payload`, write it durably as `name`, and record it for the manifest.
    pub fn write_artifact(&mut self, name: &str, kind: ArtifactKind, payload: &[u8]) -> Result<FileEntry> {
        if !manifest::is_plain_file_name(name) {
            return Err(StoreError::Refused(format!("artifact name {name:?} is not a plain file name")));
        }
        let bytes = artifact::frame(kind, payload);
        let path = self.dir.join(name);
        if std::env::var_os("RAGSNAP_FAILPOINT").is_some_and(|v| v == format!("enospc-{}", kind.name()).as_str()) {
            // Simulated full disk, for tests on machines where a small tmpfs cannot be mounted.
            return Err(StoreError::io(&path, std::io::Error::from_raw_os_error(28)));
        }
        fsio::write_synced(&path, &bytes).map_err(|e| StoreError::io(&path, e))?;
        let entry = FileEntry {
            name: name.to_string(),
            kind: kind.name().to_string(),
            size: bytes.len() as u64,
            blake3: blake3::hash(&bytes).to_hex().to_string(),
        };
        self.files.push(entry.clone());
        failpoint(&format!("after-artifact-{}", kind.name()));
        Ok(entry)
    }

    /// Throw the staged snapshot away.
    pub fn abandon(self) -> Result<()> {
        remove_any(&self.dir)
    }
}

/// The checks of [`artifact::unframe`] except the frame's blake3: for bytes whose whole-file
/// blake3 (which covers the frame) was just checked against the manifest.
fn unframe_shape(path: &Path, kind: ArtifactKind, bytes: &[u8]) -> Result<()> {
    use artifact::{FOOTER_LEN, FOOTER_MAGIC, HEADER_LEN};
    if bytes.len() < HEADER_LEN + FOOTER_LEN {
        return Err(StoreError::malformed(path, format!("{} bytes is shorter than an empty artifact", bytes.len())));
    }
    if &bytes[..8] != kind.magic() {
        return Err(StoreError::malformed(
            path,
            format!("bad magic, expected {:?}", String::from_utf8_lossy(kind.magic())),
        ));
    }
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if !ragsnap_core::FormatVersion(version).is_readable() {
        return Err(StoreError::UnsupportedVersion {
            path: path.to_path_buf(),
            found: version,
            oldest: ragsnap_core::FormatVersion::OLDEST_READABLE.0,
            current: ragsnap_core::FormatVersion::CURRENT.0,
        });
    }
    let footer = &bytes[bytes.len() - FOOTER_LEN..];
    if &footer[40..48] != FOOTER_MAGIC {
        return Err(StoreError::malformed(path, "bad footer magic (truncated or overwritten?)"));
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&footer[..8]);
    let len = u64::from_le_bytes(len);
    let expected_len = (bytes.len() - HEADER_LEN - FOOTER_LEN) as u64;
    if len != expected_len {
        return Err(StoreError::malformed(path, format!("footer says {len} payload bytes, file holds {expected_len}")));
    }
    Ok(())
}

fn check_regular(path: &Path, max: u64) -> Result<()> {
    let md = fs::symlink_metadata(path).map_err(|e| StoreError::io(path, e))?;
    if !md.file_type().is_file() {
        return Err(StoreError::ManifestRefused {
            path: path.to_path_buf(),
            message: "not a regular file (symlinks are refused)".into(),
        });
    }
    if max != u64::MAX && md.len() != max {
        return Err(StoreError::malformed(path, format!("size is {} bytes, the manifest says {max}", md.len())));
    }
    Ok(())
}

fn remove_any(p: &Path) -> Result<()> {
    let md = match fs::symlink_metadata(p) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StoreError::io(p, e)),
    };
    let r = if md.is_dir() { fs::remove_dir_all(p) } else { fs::remove_file(p) };
    r.map_err(|e| StoreError::io(p, e))
}

fn dir_size(p: &Path) -> u64 {
    fs::read_dir(p).map(|it| it.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum()).unwrap_or(0)
}
