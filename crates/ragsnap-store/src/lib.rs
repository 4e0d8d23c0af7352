//! Snapshot storage for ragsnap: immutable, checksummed, versioned snapshot folders, a SQLite
//! catalog whose `head` row is the single commit point, rollback, verify and GC.
//!
//! Layout of a store:
//! ```text
//! <store>/ragsnap-store.json    identity: this folder is a ragsnap store (format, store id)
//! <store>/catalog.sqlite        snapshots, head, append-only history, pins, audit log
//! <store>/HEAD.json             head and backed-out snapshots, mirrored for `repair`
//! <store>/LOCK                  writer lock (flock), holds the writer's pid
//! <store>/staging/<id>.pending  marker: build <id> is not committed yet
//! <store>/staging/<id>/         a snapshot being written
//! <store>/snapshots/<id>/       published snapshots, never modified
//! <store>/quarantine/           folders the catalog could not account for (never deleted)
//! <store>/leases/<id>.lease     shared locks held by readers; GC skips leased snapshots
//! <store>/cache/                the embedding cache
//! ```
//! Nothing is deleted by inference: a writer removes only staged builds it marked and that
//! never reached the catalog, and moves any other unknown folder to `quarantine/`. A missing
//! or damaged catalog is never recreated; [`Store::repair`] rebuilds it from the snapshot
//! folders.
//! The commit protocol and the file formats are described byte by byte in `docs/format.md`.

pub mod artifact;
pub mod audit;
pub mod calibration;
mod catalog;
mod error;
pub mod format;
pub mod layout;
pub mod manifest;
mod pins;
mod refs;
mod repair;
pub mod tables;
pub mod time;

pub use artifact::ArtifactKind;
pub use audit::AuditEntry;
pub use calibration::{ProbeScores, RefusalCalibration, REFUSAL_CALIBRATION_VERSION};
pub use catalog::{
    BackedOut, Catalog, HistoryEntry, ReadMode, SnapshotRecord, CATALOG_OLDEST_SCHEMA_VERSION, CATALOG_SCHEMA_VERSION,
};
pub use error::{Result, StoreError};
pub use format::{ReaderFeature, SnapshotStatus, WriterFeature};
pub use layout::{HeadRecord, Identity, IDENTITY_FILE};
pub use manifest::{Calibration, ChunkerInfo, Counts, FileEntry, IndexInfo, Manifest, MANIFEST_FILE};
pub use pins::operator_tag;
pub use ragsnap_core::IndexKind;
pub use refs::SnapshotRef;
pub use repair::{RepairReport, RepairedSnapshot, UnrestoredFolder};
pub use tables::{ChunkTable, DocumentEntry};

use ragsnap_core::fsio;
use serde::Serialize;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Largest artifact a manifest may declare (sizes are checked before any allocation).
pub const MAX_ARTIFACT_BYTES: u64 = 16 << 30;

/// Fault injection for the real-process crash tests, compiled only with the `failpoints`
/// feature (off by default; the CLI's tests turn it on through a dev-dependency). Without the
/// feature every hook is an empty inline function and `RAGSNAP_FAILPOINT` is never read, so a
/// production binary has no way to be told to crash or to fake a full disk.
#[cfg(feature = "failpoints")]
mod failpoints {
    use crate::ArtifactKind;

    /// Abort the process at the named point of the commit protocol when `RAGSNAP_FAILPOINT`
    /// names it: a real process dies exactly there, as it would on SIGKILL.
    pub fn failpoint(name: &str) {
        if std::env::var_os("RAGSNAP_FAILPOINT").is_some_and(|v| v == name) {
            eprintln!("ragsnap: failpoint {name} reached; aborting");
            std::process::abort();
        }
    }

    /// Whether writing an artifact of `kind` should fail as on a full disk
    /// (`RAGSNAP_FAILPOINT=enospc-<kind>`), for machines where a small tmpfs cannot be mounted.
    pub fn disk_full(kind: ArtifactKind) -> bool {
        std::env::var_os("RAGSNAP_FAILPOINT").is_some_and(|v| v == format!("enospc-{}", kind.name()).as_str())
    }
}

#[cfg(not(feature = "failpoints"))]
mod failpoints {
    use crate::ArtifactKind;

    /// Compiled out: see the `failpoints` feature.
    #[inline(always)]
    pub fn failpoint(_name: &str) {}

    /// Compiled out: see the `failpoints` feature.
    #[inline(always)]
    pub fn disk_full(_kind: ArtifactKind) -> bool {
        false
    }
}

pub(crate) use failpoints::{disk_full, failpoint};

/// A check that a verified snapshot can be loaded the way readers load it (parse every
/// artifact). The store crate cannot load snapshots itself; the `ragsnap` library supplies this
/// (`ragsnap::load_check`), and publish, verify, rollback, promote and repair run it when set.
pub type LoadCheck = fn(OpenedSnapshot) -> std::result::Result<(), String>;

/// Artifact kinds a full load parses from memory; [`LoadCheck`]s get them kept.
pub const LOADED_KINDS: [ArtifactKind; 5] =
    [ArtifactKind::Vectors, ArtifactKind::Documents, ArtifactKind::Hnsw, ArtifactKind::Lexical, ArtifactKind::HnswIds];

/// A store opened for reading (no lock) or writing (holding `LOCK`).
pub struct Store {
    root: PathBuf,
    catalog: Catalog,
    _writer: Option<File>,
    read_mode: ReadMode,
    quarantined: Vec<(String, PathBuf)>,
    load_check: Option<LoadCheck>,
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

/// What [`Store::gc_with`] keeps and removes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GcOptions {
    /// Keep this many newest ready snapshots.
    pub keep: usize,
    /// Keep every snapshot younger than this many seconds.
    pub older_than_secs: Option<i64>,
    /// Keep rejected builds younger than this many seconds.
    pub keep_rejected_secs: Option<i64>,
    /// Report what would go; change nothing.
    pub dry_run: bool,
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
    /// Snapshots already marked `collected` whose folders an interrupted GC left behind, and
    /// that this run removed (or would).
    #[serde(default)]
    pub resumed: Vec<String>,
    /// With `dry_run`: what the writer open a real run makes would clean up first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub housekeeping: Vec<String>,
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
    /// Open `root` for writing: create a new store in an absent or empty folder, take the
    /// writer lock, check the catalog, and clean up what a crashed writer left behind.
    ///
    /// A folder with content but no identity file is refused ([`StoreError::NotAStore`]) unless
    /// it holds a valid catalog (a store made before identity files: it is adopted). A missing,
    /// empty or failing catalog is [`StoreError::CatalogDamaged`]; it is never recreated. No
    /// entry of the store may be a symbolic link.
    pub fn open_writer(root: &Path) -> Result<Self> {
        // Classify before writing anything: a foreign folder gets no LOCK, no folders.
        let before = match layout::classify(root) {
            Ok(state) => state,
            Err(e) => return Err(lock_holder_error(root).unwrap_or(e)),
        };
        if before == layout::RootState::Damaged {
            return Err(lock_holder_error(root).unwrap_or_else(|| StoreError::CatalogDamaged {
                path: root.join(layout::CATALOG_FILE),
                message: "the store has snapshot folders but its catalog cannot be opened".into(),
            }));
        }
        fs::create_dir_all(root).map_err(|e| StoreError::io(root, e))?;
        let lock = take_lock(root)?;
        // Classify again under the lock: another writer may have created the store meanwhile.
        let state = layout::classify(root)?;
        for d in layout::STORE_DIRS {
            layout::ensure_dir(&root.join(d))?;
        }
        let cpath = root.join(layout::CATALOG_FILE);
        let catalog = match state {
            layout::RootState::Fresh => {
                let c = Catalog::create(&cpath)?;
                fsio::sync_dir(root).map_err(|e| StoreError::io(root, e))?;
                layout::write_identity(root)?;
                c
            }
            layout::RootState::Adoptable => {
                let c = Catalog::open_existing(&cpath)?;
                layout::write_identity(root)?;
                tracing::warn!(store = %root.display(), "adopted a store made before identity files: wrote {}", IDENTITY_FILE);
                c
            }
            layout::RootState::Known => Catalog::open_existing(&cpath)?,
            layout::RootState::Damaged => {
                return Err(StoreError::CatalogDamaged {
                    path: cpath,
                    message: "the store has snapshot folders but its catalog cannot be opened".into(),
                })
            }
        };
        let mut store = Store {
            root: root.to_path_buf(),
            catalog,
            _writer: Some(lock),
            read_mode: ReadMode::Shared,
            quarantined: Vec::new(),
            load_check: None,
        };
        store.check_folders()?;
        store.check_head_record()?;
        layout::remove_dead_repair_leftovers(root)?;
        store.clean_orphans()?;
        store.sync_head_record()?;
        Ok(store)
    }

    /// [`Store::open_writer`] for commands that must not create a store: an absent or empty
    /// folder is [`StoreError::NoStore`] and nothing is written.
    pub fn open_existing_writer(root: &Path) -> Result<Self> {
        if layout::classify(root)? == layout::RootState::Fresh {
            return Err(StoreError::NoStore { path: root.to_path_buf() });
        }
        Self::open_writer(root)
    }

    /// Open `root` for a dry run: like a reader (no lock, no identity file written, no
    /// migration, no housekeeping), with the checks a writer open makes before it cleans up.
    pub fn open_dry_run(root: &Path) -> Result<Self> {
        let store = Self::open_reader(root)?;
        store.check_folders()?;
        store.check_head_record()?;
        Ok(store)
    }

    /// What a writer open of this store would clean up, without doing it (for dry runs): one
    /// line per entry.
    pub fn housekeeping_plan(&self) -> Result<Vec<String>> {
        let mut plan = Vec::new();
        let known: std::collections::HashSet<String> = self.catalog.list()?.into_iter().map(|s| s.id).collect();
        let staging = self.root.join("staging");
        let mut names: Vec<String> = fs::read_dir(&staging)
            .map(|it| it.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        names.sort();
        let marked = |id: &str| {
            fs::symlink_metadata(layout::pending_marker(&self.root, id)).is_ok_and(|m| m.file_type().is_file())
        };
        for name in &names {
            if let Some(id) = name.strip_suffix(layout::PENDING_SUFFIX) {
                if manifest::is_plain_file_name(id) && marked(id) {
                    plan.push(format!("would remove build marker staging/{name}"));
                    continue;
                }
            }
            if marked(name) && !known.contains(name.as_str()) {
                plan.push(format!("would remove unfinished build staging/{name}"));
            } else if !marked(name) {
                plan.push(format!("would move staging/{name} to quarantine/"));
            }
        }
        let snaps = self.root.join("snapshots");
        let mut unknown: Vec<String> = fs::read_dir(&snaps)
            .map(|it| it.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        unknown.retain(|n| !known.contains(n));
        unknown.sort();
        for name in unknown {
            plan.push(format!("would move snapshots/{name} (not in the catalog) to quarantine/"));
        }
        if layout::read_identity(&self.root)?.is_none() {
            plan.push(format!("would write {IDENTITY_FILE}"));
        }
        Ok(plan)
    }

    /// Open `root` for reading. Takes no lock and never writes the catalog. On a store that
    /// cannot be written (read-only mount, no permission) the catalog is opened immutable and
    /// snapshots are opened without a lease.
    pub fn open_reader(root: &Path) -> Result<Self> {
        for name in [layout::CATALOG_FILE, "snapshots", "leases"] {
            layout::entry_metadata(&root.join(name))?;
        }
        let identity = layout::read_identity(root)?;
        if identity.is_none() {
            match layout::classify(root)? {
                layout::RootState::Fresh => return Err(StoreError::NoStore { path: root.to_path_buf() }),
                layout::RootState::Damaged => {
                    return Err(StoreError::CatalogDamaged {
                        path: root.join(layout::CATALOG_FILE),
                        message: "the store has snapshot folders but its catalog cannot be opened".into(),
                    })
                }
                _ => {}
            }
        }
        let cpath = root.join(layout::CATALOG_FILE);
        if identity.is_some() && layout::entry_metadata(&cpath)?.is_none_or(|m| m.len() == 0) {
            return Err(StoreError::CatalogDamaged { path: cpath, message: "the file is missing or empty".into() });
        }
        let (catalog, read_mode) = Catalog::open_reader(&cpath)?;
        Ok(Store {
            root: root.to_path_buf(),
            catalog,
            _writer: None,
            read_mode,
            quarantined: Vec::new(),
            load_check: None,
        })
    }

    /// Set the check that a snapshot loads the way readers load it (see [`LoadCheck`]).
    pub fn set_load_check(&mut self, check: LoadCheck) {
        self.load_check = Some(check);
    }

    /// How the catalog was opened (always [`ReadMode::Shared`] for a writer).
    pub fn read_mode(&self) -> ReadMode {
        self.read_mode
    }

    /// Folders this writer open moved to `quarantine/` (name, new path).
    pub fn quarantined(&self) -> &[(String, PathBuf)] {
        &self.quarantined
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

    /// Path of the embedding cache, after checking that neither `cache/` nor the database is a
    /// symbolic link.
    pub fn cache_path(&self) -> Result<PathBuf> {
        let dir = self.root.join("cache");
        layout::entry_metadata(&dir)?;
        let path = dir.join("embeddings.sqlite");
        for p in [path.clone(), catalog::side_file(&path, "-wal"), catalog::side_file(&path, "-shm")] {
            layout::entry_metadata(&p)?;
        }
        Ok(path)
    }

    fn require_writer(&self) -> Result<()> {
        if self._writer.is_none() {
            return Err(StoreError::Refused("this store was opened read-only".into()));
        }
        Ok(())
    }

    /// Every snapshot the catalog lists as present must have its folder; otherwise the catalog
    /// and the folders disagree and only `repair` can tell which is right.
    fn check_folders(&self) -> Result<()> {
        for s in self.catalog.list()? {
            if s.status == SnapshotStatus::Collected {
                continue;
            }
            let dir = self.snapshot_dir(&s.id);
            match layout::entry_metadata(&dir)? {
                Some(m) if m.is_dir() => {}
                _ => {
                    return Err(StoreError::CatalogDamaged {
                        path: self.catalog.path().to_path_buf(),
                        message: format!(
                            "it lists snapshot {} as {} but {} does not exist",
                            s.id,
                            s.status,
                            dir.display()
                        ),
                    })
                }
            }
        }
        Ok(())
    }

    /// A head record naming a snapshot the catalog does not list (or lists as collected) means
    /// the catalog is older than the head record (a restored backup, say): only `repair` can
    /// tell which is right, and `HEAD.json` is never rewritten from such a catalog.
    fn check_head_record(&self) -> Result<()> {
        let Some(named) = layout::read_head_record(&self.root).and_then(|h| h.head) else { return Ok(()) };
        let listed = self.catalog.list()?.into_iter().any(|s| s.id == named && s.status != SnapshotStatus::Collected);
        if !listed {
            return Err(StoreError::CatalogDamaged {
                path: self.catalog.path().to_path_buf(),
                message: format!(
                    "{} names snapshot {named} as head but the catalog does not list it (the catalog is older than the head record)",
                    layout::HEAD_RECORD_FILE
                ),
            });
        }
        Ok(())
    }

    /// Remove what this store wrote and can prove unfinished: builds whose `staging/<id>.pending`
    /// marker is still there and that the catalog does not list. Anything else the catalog does
    /// not account for is moved to `quarantine/`, never deleted.
    fn clean_orphans(&mut self) -> Result<()> {
        let staging = self.root.join("staging");
        let snaps = self.root.join("snapshots");
        let known: std::collections::HashSet<String> = self.catalog.list()?.into_iter().map(|s| s.id).collect();
        let mut names: Vec<String> = Vec::new();
        for e in fs::read_dir(&staging).map_err(|e| StoreError::io(&staging, e))? {
            names.push(e.map_err(|e| StoreError::io(&staging, e))?.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        let mut handled: std::collections::HashSet<String> = std::collections::HashSet::new();
        for name in &names {
            let Some(id) = name.strip_suffix(layout::PENDING_SUFFIX) else { continue };
            // Only a regular file is a marker this store wrote.
            let is_marker = fs::symlink_metadata(staging.join(name)).is_ok_and(|m| m.file_type().is_file());
            if !manifest::is_plain_file_name(id) || !is_marker {
                continue;
            }
            handled.insert(id.to_string());
            if !known.contains(id) {
                // Only the staging folder is provably unfinished: a folder under `snapshots/`
                // may have been committed to a catalog since replaced by an older copy, so it
                // is moved to quarantine below, never deleted.
                tracing::info!(snapshot = %id, "removing a staged build that never reached the catalog");
                remove_any(&staging.join(id))?;
            }
            remove_any(&staging.join(name))?;
        }
        for name in &names {
            let marker_done = name
                .strip_suffix(layout::PENDING_SUFFIX)
                .is_some_and(|id| handled.contains(id) && fs::symlink_metadata(staging.join(name)).is_err());
            if marker_done || handled.contains(name) {
                continue;
            }
            let p = staging.join(name);
            if fs::symlink_metadata(&p).is_err() {
                continue;
            }
            let to = layout::quarantine(&self.root, &p)?;
            tracing::warn!(path = %p.display(), to = %to.display(), "staging entry without a build marker moved to quarantine (nothing was deleted)");
            self.quarantined.push((name.clone(), to));
        }
        fsio::sync_dir(&staging).map_err(|e| StoreError::io(&staging, e))?;
        let mut unknown = Vec::new();
        for e in fs::read_dir(&snaps).map_err(|e| StoreError::io(&snaps, e))? {
            let e = e.map_err(|e| StoreError::io(&snaps, e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if !known.contains(&name) {
                unknown.push((name, e.path()));
            }
        }
        unknown.sort();
        for (name, p) in unknown {
            let to = layout::quarantine(&self.root, &p)?;
            tracing::warn!(snapshot = %name, to = %to.display(), "snapshot folder the catalog does not list moved to quarantine (nothing was deleted)");
            self.quarantined.push((name, to));
        }
        Ok(())
    }

    /// Housekeeping after a catalog commit: the head record, and the build's marker. The commit
    /// has happened, so a failure here is logged, not returned (the next writer open redoes both).
    fn after_commit(&self, built: Option<&str>) {
        if let Err(e) = self.sync_head_record() {
            tracing::warn!(error = %e, "committed, but HEAD.json could not be rewritten (the next writer will)");
        }
        if let Some(id) = built {
            let marker = layout::pending_marker(&self.root, id);
            let sdir = self.root.join("staging");
            let done = remove_any(&marker).and_then(|_| fsio::sync_dir(&sdir).map_err(|e| StoreError::io(&sdir, e)));
            if let Err(e) = done {
                tracing::warn!(error = %e, "committed, but the build marker could not be removed (the next writer will)");
            }
        }
    }

    /// Rewrite `HEAD.json` from the catalog when it differs.
    fn sync_head_record(&self) -> Result<()> {
        let mut rec = HeadRecord { head: self.catalog.head_id()?, ..HeadRecord::default() };
        for s in self.catalog.list()? {
            if let Some(b) = s.backed_out {
                rec.backed_out.insert(s.id, b);
            }
        }
        let old = layout::read_head_record(&self.root);
        if old.as_ref().is_some_and(|o| o.head == rec.head && o.backed_out == rec.backed_out) {
            return Ok(());
        }
        rec.written_at = time::rfc3339(time::unix_now());
        layout::write_head_record(&self.root, &rec)
    }

    /// Start a new snapshot under `staging/`.
    pub fn stage(&self) -> Result<Staging> {
        self.require_writer()?;
        let id = new_snapshot_id();
        let staging = self.root.join("staging");
        // The marker first: whatever of this build a crash leaves is then provably ours.
        let marker = layout::pending_marker(&self.root, &id);
        fsio::write_synced(&marker, id.as_bytes()).map_err(|e| StoreError::io(&marker, e))?;
        fsio::sync_dir(&staging).map_err(|e| StoreError::io(&staging, e))?;
        let dir = staging.join(&id);
        fs::create_dir(&dir).map_err(|e| StoreError::io(&dir, e))?;
        Ok(Staging { id, dir, files: Vec::new() })
    }

    /// Start staging a snapshot under an id it already has elsewhere (one pulled from another
    /// store, which must keep its id so that replicas name the same snapshot alike). The id must
    /// be a plain file name that neither the catalog nor `snapshots/` knows.
    pub fn stage_as(&self, id: &str) -> Result<Staging> {
        self.require_writer()?;
        if !manifest::is_plain_file_name(id) {
            return Err(StoreError::Refused(format!("snapshot id {id:?} is not a plain file name")));
        }
        if self.catalog.get(id).is_ok() || self.snapshot_dir(id).exists() {
            return Err(StoreError::Refused(format!("snapshot {id} is already in this store")));
        }
        let staging = self.root.join("staging");
        let marker = layout::pending_marker(&self.root, id);
        fsio::write_synced(&marker, id.as_bytes()).map_err(|e| StoreError::io(&marker, e))?;
        fsio::sync_dir(&staging).map_err(|e| StoreError::io(&staging, e))?;
        let dir = staging.join(id);
        fs::create_dir(&dir).map_err(|e| StoreError::io(&dir, e))?;
        Ok(Staging { id: id.to_string(), dir, files: Vec::new() })
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
        if let Some(check) = self.load_check {
            // What is published must open: the same load readers do, on the staged folder.
            let loaded = open_folder(&self.root, &staging.dir, &staging.id, None, &LOADED_KINDS).and_then(|o| {
                check(o).map_err(|message| StoreError::Unreadable { path: staging.dir.clone(), message })
            });
            if let Err(e) = loaded {
                let _ = staging.abandon();
                return Err(e);
            }
        }
        let target = self.snapshot_dir(&staging.id);
        fs::rename(&staging.dir, &target).map_err(|e| StoreError::io(&target, e))?;
        for d in [self.root.join("snapshots"), self.root.join("staging")] {
            fsio::sync_dir(&d).map_err(|e| StoreError::io(&d, e))?;
        }
        failpoint("after-rename");
        let digest = blake3::hash(&bytes).to_hex().to_string();
        let now = time::unix_now();
        // The row must hold the recall readers parse from the manifest's bytes, which every later
        // check compares bit for bit: serde_json's float parser can land one ulp away from the
        // value that was printed.
        let recall =
            Manifest::parse(&target.join(MANIFEST_FILE), &bytes).map_or(manifest.index.recall, |m| m.index.recall);
        let rec = SnapshotRecord {
            id: staging.id.clone(),
            parent_id: manifest.parent_id.clone(),
            created_at: manifest.created_at.clone(),
            created_unix: now,
            status: if promote { SnapshotStatus::Ready } else { SnapshotStatus::Rejected },
            manifest_blake3: digest.clone(),
            fingerprint_id: manifest.fingerprint.id(),
            documents: manifest.counts.documents as u64,
            chunks: manifest.counts.chunks as u64,
            index_kind: manifest.index.kind.as_str().to_string(),
            recall,
            reason: (!promote).then(|| reason.to_string()),
            is_head: false,
            pins: Vec::new(),
            backed_out: None,
        };
        self.catalog.insert_snapshot(&rec, promote.then_some(("promote", reason)))?;
        failpoint("after-commit");
        self.after_commit(Some(&staging.id));
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
        if rec.status == SnapshotStatus::Collected {
            return Err(StoreError::Refused(format!("snapshot {id} was garbage-collected")));
        }
        let dir = self.snapshot_dir(id);
        let opened = match open_folder(&self.root, &dir, id, Some(&rec.manifest_blake3), keep) {
            Ok(o) => o,
            Err(StoreError::Corrupt { path, expected, found }) if path.ends_with(MANIFEST_FILE) => {
                // The folder may be intact and the catalog's record of it what changed.
                if open_folder(&self.root, &dir, id, None, &[]).is_ok() {
                    return Err(StoreError::CatalogDamaged {
                        path: self.catalog.path().to_path_buf(),
                        message: format!(
                            "it records manifest blake3 {expected} for snapshot {id}, but the folder's manifest is {found} \
                             (its files match that manifest); the two disagree and which to trust is unknown: \
                             `ragsnap repair` moves the folder to quarantine"
                        ),
                    });
                }
                return Err(StoreError::Corrupt { path, expected, found });
            }
            Err(e) => return Err(e),
        };
        if let Some(field) = record_mismatch(&rec, &opened.manifest) {
            return Err(StoreError::CatalogDamaged {
                path: self.catalog.path().to_path_buf(),
                message: format!("its row for snapshot {id} disagrees with the snapshot's manifest ({field})"),
            });
        }
        Ok(opened)
    }

    /// Take a reader lease on snapshot `id`.
    pub fn lease(&self, id: &str) -> Result<Lease> {
        take_lease(&self.root, id)
    }

    /// Re-hash every file of snapshot `id` against its manifest, and the manifest against the
    /// catalog; when a [`LoadCheck`] is set, also load the snapshot the way readers do. Problems
    /// are collected, not returned as the first error.
    pub fn verify(&self, id: &str) -> Result<VerifyReport> {
        self.verify_with(id, self.load_check)
    }

    /// [`Store::verify`] with an explicit load check (`None`: checksums and frames only).
    pub fn verify_with(&self, id: &str, check: Option<LoadCheck>) -> Result<VerifyReport> {
        let mut rep = self.verify_files(id)?;
        if let (true, Some(check)) = (rep.ok, check) {
            if self.catalog.get(id)?.status != SnapshotStatus::Collected {
                if let Err(e) = self.open_snapshot_keeping(id, &LOADED_KINDS).map_err(|e| e.to_string()).and_then(check)
                {
                    rep.ok = false;
                    rep.problems
                        .push(Problem { file: MANIFEST_FILE.into(), message: format!("a reader cannot open it: {e}") });
                }
            }
        }
        Ok(rep)
    }

    fn verify_files(&self, id: &str) -> Result<VerifyReport> {
        let rec = self.catalog.get(id)?;
        let dir = self.snapshot_dir(id);
        let mut rep = VerifyReport { snapshot_id: id.to_string(), ok: true, files: 0, bytes: 0, problems: Vec::new() };
        if rec.status == SnapshotStatus::Collected {
            return Ok(rep);
        }
        let manifest = match read_manifest_at(&dir, id, Some(&rec.manifest_blake3)) {
            Ok(m) => m,
            Err(e) => {
                rep.ok = false;
                let hint = if matches!(e, StoreError::Corrupt { .. }) {
                    " (the catalog and the folder disagree and which to trust is unknown: `ragsnap repair` moves the folder to quarantine)"
                } else {
                    ""
                };
                rep.problems.push(Problem { file: MANIFEST_FILE.into(), message: format!("{e}{hint}") });
                return Ok(rep);
            }
        };
        if let Some(field) = record_mismatch(&rec, &manifest) {
            rep.problems.push(Problem {
                file: MANIFEST_FILE.into(),
                message: format!(
                    "the catalog's row disagrees with the manifest ({field}); the catalog is damaged: run `ragsnap repair`"
                ),
            });
        }
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

    /// Move head back to `target` after verifying every checksum of it (and loading it, when a
    /// [`LoadCheck`] is set). Refuses a snapshot built with another embedding fingerprint unless
    /// `allow_model_change`, and a rejected or backed-out one (those need `promote --force`).
    /// The snapshot head leaves is marked backed out. Never deletes.
    pub fn rollback(&mut self, target: &str, reason: &str, allow_model_change: bool) -> Result<(String, String)> {
        self.require_writer()?;
        let head = self.head()?;
        let rec = self.catalog.get(target)?;
        if rec.status != SnapshotStatus::Ready {
            return Err(StoreError::Refused(format!("snapshot {target} is {}; only ready snapshots can become head (use `promote --force` for a rejected one)", rec.status)));
        }
        if rec.id == head.id {
            return Err(StoreError::Refused(format!("snapshot {target} is already head")));
        }
        if let Some(b) = &rec.backed_out {
            return Err(StoreError::Refused(format!(
                "snapshot {target} was backed out by {} at {} ({}); use `promote {target} --force` to make it head again",
                b.by, b.at, b.reason
            )));
        }
        self.model_guard(&rec, &head, allow_model_change, "roll back")?;
        self.verified_or_refused(target, "rollback target")?;
        self.catalog.move_head_backing_out(target, "rollback", reason, true)?;
        self.after_commit(None);
        Ok((head.id, rec.id))
    }

    fn model_guard(&self, rec: &SnapshotRecord, head: &SnapshotRecord, allow: bool, verb: &str) -> Result<()> {
        if rec.fingerprint_id != head.fingerprint_id && !allow {
            return Err(StoreError::Refused(format!(
                "snapshot {} was built with embedding {} but head uses {}; pass --allow-model-change to {verb} across a model change",
                rec.id, rec.fingerprint_id, head.fingerprint_id
            )));
        }
        Ok(())
    }

    fn verified_or_refused(&self, id: &str, what: &str) -> Result<()> {
        let rep = self.verify(id)?;
        if !rep.ok {
            let list: Vec<String> = rep.problems.iter().map(|p| format!("{}: {}", p.file, p.message)).collect();
            return Err(StoreError::Refused(format!("{what} {id} failed verification: {}", list.join("; "))));
        }
        Ok(())
    }

    /// Where a bare rollback goes: the `steps`-th newest ready snapshot recorded before head
    /// that is not backed out (1 = the nearest). `steps` must be at least 1.
    pub fn previous_head(&self, steps: usize) -> Result<String> {
        if steps == 0 {
            return Err(StoreError::Refused("--steps must be at least 1".into()));
        }
        let all = self.catalog.list()?;
        let head = self.catalog.head_id()?.ok_or(StoreError::NoHead)?;
        let pos = all.iter().position(|s| s.id == head).unwrap_or(all.len());
        let usable: Vec<&SnapshotRecord> =
            all[..pos].iter().rev().filter(|s| s.status == SnapshotStatus::Ready && s.backed_out.is_none()).collect();
        usable.get(steps - 1).map(|s| s.id.clone()).ok_or_else(|| {
            StoreError::Refused(format!(
                "no ready snapshot {steps} step(s) before head {head} that is not backed out ({} available); `ragsnap snapshots` lists them, `promote ID --force` takes a backed-out one",
                usable.len()
            ))
        })
    }

    /// Make snapshot `id` head (the nightly job's force-promotion of a rejected build). Same as
    /// [`Store::promote_with`] without permission to cross a model change.
    pub fn promote(&mut self, id: &str, force: bool, reason: &str) -> Result<()> {
        self.promote_with(id, force, false, reason)
    }

    /// Make snapshot `id` head. A rejected or backed-out snapshot needs `force`; one built with
    /// another embedding model than head's needs `allow_model_change` (the rule rollback
    /// applies). The target is verified first. Promoting a snapshot recorded before head marks
    /// head backed out.
    pub fn promote_with(&mut self, id: &str, force: bool, allow_model_change: bool, reason: &str) -> Result<()> {
        self.require_writer()?;
        let rec = self.catalog.get(id)?;
        if rec.status == SnapshotStatus::Collected {
            return Err(StoreError::Refused(format!("snapshot {id} was garbage-collected")));
        }
        if rec.status == SnapshotStatus::Rejected && !force {
            return Err(StoreError::Refused(format!(
                "snapshot {id} was rejected ({}); pass --force to promote it anyway",
                rec.reason.clone().unwrap_or_default()
            )));
        }
        if let (Some(b), false) = (&rec.backed_out, force) {
            return Err(StoreError::Refused(format!(
                "snapshot {id} was backed out by {} at {} ({}); pass --force to make it head again",
                b.by, b.at, b.reason
            )));
        }
        let head = match self.catalog.head_id()? {
            Some(h) => Some(self.catalog.get(&h)?),
            None => None,
        };
        if let Some(head) = &head {
            if head.id == rec.id {
                return Err(StoreError::Refused(format!("snapshot {id} is already head")));
            }
            self.model_guard(&rec, head, allow_model_change, "promote")?;
        }
        self.verified_or_refused(id, "snapshot")?;
        let all = self.catalog.list()?;
        let pos = |x: &str| all.iter().position(|s| s.id == x);
        let older = head.as_ref().is_some_and(|h| pos(&rec.id) < pos(&h.id));
        let forced = rec.status == SnapshotStatus::Rejected || rec.backed_out.is_some();
        self.catalog.move_head_backing_out(id, if forced { "force-promote" } else { "promote" }, reason, older)?;
        self.after_commit(None);
        Ok(())
    }

    /// Remove snapshots that are neither head, pinned, among the newest `keep` ready ones, nor
    /// younger than `older_than_secs`, nor leased by a reader.
    ///
    /// Crash-safe: a snapshot's row is marked `collected` before its folder is removed, and
    /// every run first finishes removing the folders of rows already marked (what a GC killed
    /// between the two steps leaves).
    pub fn gc(&mut self, keep: usize, older_than_secs: Option<i64>, dry_run: bool) -> Result<GcReport> {
        self.gc_with(&GcOptions { keep, older_than_secs, keep_rejected_secs: None, dry_run })
    }

    /// [`Store::gc`] with every option; `keep_rejected_secs` keeps rejected builds younger
    /// than that many seconds (so an operator can inspect a build the nightly job rejected).
    pub fn gc_with(&mut self, opts: &GcOptions) -> Result<GcReport> {
        let GcOptions { keep, older_than_secs, keep_rejected_secs, dry_run } = *opts;
        if !dry_run {
            self.require_writer()?;
        }
        let all = self.catalog.list()?;
        let now = time::unix_now();
        let mut rep = GcReport { dry_run, ..GcReport::default() };
        if dry_run && self._writer.is_none() {
            rep.housekeeping = self.housekeeping_plan()?;
        }
        for s in all.iter().filter(|s| s.status == SnapshotStatus::Collected) {
            let dir = self.snapshot_dir(&s.id);
            if layout::entry_metadata(&dir)?.is_none() {
                continue;
            }
            // Only a removal gc itself started (its marker written before the row was marked)
            // is finished: a row marked `collected` some other way proves nothing.
            if !layout::has_collecting_marker(&self.root, &s.id) {
                tracing::warn!(snapshot = %s.id, "the catalog marks this snapshot collected but gc never started removing it; its folder is kept (`ragsnap repair` can restore it)");
                rep.kept.push((
                    s.id.clone(),
                    "marked collected, but gc never started removing it (no gc marker): kept".into(),
                ));
                continue;
            }
            let lease_path = self.root.join("leases").join(format!("{}.lease", s.id));
            if leased(&lease_path, dry_run)? {
                rep.kept.push((s.id.clone(), "collected, but its folder is open by a reader".into()));
                continue;
            }
            rep.bytes_freed += dir_size(&dir);
            if !dry_run {
                remove_any(&dir)?;
                let _ = fs::remove_file(&lease_path);
                remove_any(&layout::collecting_marker(&self.root, &s.id))?;
            }
            rep.resumed.push(s.id.clone());
        }
        // Markers whose removal is done, or whose row was never marked (gc killed before the
        // mark): the marker only goes.
        let gcdir = self.root.join(layout::GC_DIR);
        if !dry_run && layout::entry_metadata(&gcdir)?.is_some_and(|m| m.is_dir()) {
            for e in fs::read_dir(&gcdir).map_err(|e| StoreError::io(&gcdir, e))?.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let Some(id) = name.strip_suffix(layout::COLLECTING_SUFFIX) else { continue };
                let row = all.iter().find(|s| s.id == id);
                let pending = row.is_some_and(|s| s.status == SnapshotStatus::Collected)
                    && layout::entry_metadata(&self.snapshot_dir(id))?.is_some();
                if !pending {
                    remove_any(&e.path())?;
                }
            }
        }
        // Lease files of snapshots that are gone (collected) or were never recorded (a build
        // checked before publishing and then abandoned), unless a reader holds one.
        let live: std::collections::HashSet<&str> =
            all.iter().filter(|s| s.status != SnapshotStatus::Collected).map(|s| s.id.as_str()).collect();
        let leases = self.root.join("leases");
        if !dry_run {
            for e in fs::read_dir(&leases).map_err(|e| StoreError::io(&leases, e))?.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let Some(id) = name.strip_suffix(".lease") else { continue };
                if live.contains(id) || layout::entry_metadata(&self.snapshot_dir(id))?.is_some() {
                    continue;
                }
                let path = e.path();
                if let Ok(f) = layout::open_nofollow(&path, false) {
                    if f.try_lock().is_ok() {
                        let _ = fs::remove_file(&path);
                    }
                }
            }
        }
        // The catalog lists snapshots in the order they were recorded; the newest come last.
        let newest: Vec<&str> =
            all.iter().rev().filter(|s| s.status == SnapshotStatus::Ready).take(keep).map(|s| s.id.as_str()).collect();
        for s in all.iter().filter(|s| s.status != SnapshotStatus::Collected) {
            let why = if s.is_head {
                Some("head")
            } else if !s.pins.is_empty() {
                Some("pinned")
            } else if newest.contains(&s.id.as_str()) {
                Some("within --keep")
            } else if older_than_secs.is_some_and(|age| now.saturating_sub(s.created_unix) < age) {
                Some("younger than --older-than")
            } else if s.status == "rejected"
                && keep_rejected_secs.is_some_and(|age| now.saturating_sub(s.created_unix) < age)
            {
                Some("rejected build younger than --keep-rejected-for")
            } else {
                None
            };
            if let Some(w) = why {
                rep.kept.push((s.id.clone(), w.into()));
                continue;
            }
            let lease_path = self.root.join("leases").join(format!("{}.lease", s.id));
            if leased(&lease_path, dry_run)? {
                rep.kept.push((s.id.clone(), "open by a reader".into()));
                continue;
            }
            let dir = self.snapshot_dir(&s.id);
            // What gc decided from the row must be what the folder says: a row that disagrees
            // with its manifest proves nothing about the snapshot's age or use.
            let m = read_manifest_at(&dir, &s.id, Some(&s.manifest_blake3))?;
            if let Some(field) = record_mismatch(s, &m) {
                return Err(StoreError::CatalogDamaged {
                    path: self.catalog.path().to_path_buf(),
                    message: format!(
                        "its row for snapshot {} disagrees with the snapshot's manifest ({field}); gc removed nothing more",
                        s.id
                    ),
                });
            }
            let bytes = dir_size(&dir);
            if !dry_run {
                layout::write_collecting_marker(&self.root, &s.id)?;
                self.catalog.mark_collected(&s.id)?;
                failpoint("gc-after-mark");
                remove_any(&dir)?;
                failpoint("gc-after-remove");
                let _ = fs::remove_file(&lease_path);
                remove_any(&layout::collecting_marker(&self.root, &s.id))?;
            }
            rep.bytes_freed += bytes;
            rep.removed.push(s.id.clone());
        }
        Ok(rep)
    }

    /// Rebuild a lost or damaged catalog from the snapshot folders: see [`repair`](crate::repair).
    pub fn repair(root: &Path, dry_run: bool, check: Option<LoadCheck>) -> Result<RepairReport> {
        repair::repair(root, dry_run, check)
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
        if disk_full(kind) {
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
        #[cfg(feature = "failpoints")]
        failpoint(&format!("after-artifact-{}", kind.name()));
        Ok(entry)
    }

    /// Throw the staged snapshot away (its folder, then its marker).
    pub fn abandon(self) -> Result<()> {
        remove_any(&self.dir)?;
        if let Some(staging) = self.dir.parent() {
            remove_any(&staging.join(format!("{}{}", self.id, layout::PENDING_SUFFIX)))?;
        }
        Ok(())
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

/// Whether a reader holds the lease file at `path`. A dry run creates no lease file: a missing
/// one is held by nobody.
fn leased(path: &Path, dry_run: bool) -> Result<bool> {
    let lease = match layout::open_nofollow(path, !dry_run) {
        Ok(f) => f,
        Err(StoreError::Io { source, .. }) if dry_run && source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(false)
        }
        Err(e) => return Err(e),
    };
    Ok(lease.try_lock().is_err())
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

/// Take `LOCK` (created without following links), write our pid into it.
fn take_lock(root: &Path) -> Result<File> {
    let lock_path = root.join("LOCK");
    let mut lock = layout::open_nofollow(&lock_path, true)?;
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
    Ok(lock)
}

/// `Locked` when another writer holds an existing `LOCK` of `root` (nothing is created).
fn lock_holder_error(root: &Path) -> Option<StoreError> {
    let lock_path = root.join("LOCK");
    let mut f = layout::open_nofollow(&lock_path, false).ok()?;
    match f.try_lock() {
        Err(fs::TryLockError::WouldBlock) => {
            let mut s = String::new();
            let _ = f.read_to_string(&mut s);
            Some(StoreError::Locked { path: lock_path, pid: s.trim().parse().unwrap_or(0) })
        }
        _ => None,
    }
}

/// A shared lease on snapshot `id` of the store at `root`. Where no lease file can be made
/// (read-only mount, no permission) the snapshot folder itself is held instead, and a debug log
/// says so: GC cannot run on such a store anyway.
pub(crate) fn take_lease(root: &Path, id: &str) -> Result<Lease> {
    if !manifest::is_plain_file_name(id) {
        return Err(StoreError::UnknownSnapshot(id.to_string()));
    }
    let dir = root.join("leases");
    layout::entry_metadata(&dir)?;
    let path = dir.join(format!("{id}.lease"));
    let file = match layout::open_nofollow(&path, true) {
        Ok(f) => f,
        Err(StoreError::Io { source, .. })
            if matches!(
                source.kind(),
                std::io::ErrorKind::PermissionDenied
                    | std::io::ErrorKind::NotFound
                    | std::io::ErrorKind::ReadOnlyFilesystem
            ) =>
        {
            tracing::debug!(lease = %path.display(), error = %source, "no lease taken: the store cannot be written");
            let sdir = root.join("snapshots").join(id);
            std::os::unix::fs::OpenOptionsExt::custom_flags(
                OpenOptions::new().read(true),
                libc::O_NOFOLLOW | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
            .open(&sdir)
            .map_err(|e| layout::nofollow_error(&sdir, e))?
        }
        Err(e) => return Err(e),
    };
    file.lock_shared().map_err(|e| StoreError::io(&path, e))?;
    Ok(Lease { _file: file })
}

/// Verify and open the snapshot folder `dir` (`id`), under a lease. With `manifest_blake3`, the
/// manifest must have that digest (the catalog's record); without, it is trusted as parsed (a
/// staged build, or `repair` reading folders). Every listed file is checked.
pub(crate) fn open_folder(
    root: &Path,
    dir: &Path,
    id: &str,
    manifest_blake3: Option<&str>,
    keep: &[ArtifactKind],
) -> Result<OpenedSnapshot> {
    match layout::entry_metadata(dir)? {
        Some(m) if m.is_dir() => {}
        Some(_) => return Err(StoreError::malformed(dir, "not a folder")),
        None => return Err(StoreError::io(dir, std::io::Error::from(std::io::ErrorKind::NotFound))),
    }
    let lease = take_lease(root, id)?;
    let manifest = read_manifest_at(dir, id, manifest_blake3)?;
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
    Ok(OpenedSnapshot { manifest, dir: dir.to_path_buf(), lease, kept: Mutex::new(kept) })
}

/// Read, hash and parse `dir/MANIFEST.json`; it must be for snapshot `id`.
pub(crate) fn read_manifest_at(dir: &Path, id: &str, manifest_blake3: Option<&str>) -> Result<Manifest> {
    let mpath = dir.join(MANIFEST_FILE);
    check_regular(&mpath, u64::MAX)?;
    let bytes = artifact::read_file(&mpath, manifest::MAX_MANIFEST_BYTES)?;
    if let Some(expected) = manifest_blake3 {
        let found = blake3::hash(&bytes).to_hex().to_string();
        if found != expected {
            return Err(StoreError::Corrupt { path: mpath, expected: expected.to_string(), found });
        }
    }
    let m = Manifest::parse(&mpath, &bytes)?;
    if m.snapshot_id != id {
        return Err(StoreError::ManifestRefused {
            path: mpath,
            message: format!("manifest is for {}, catalog row is {id}", m.snapshot_id),
        });
    }
    Ok(m)
}

/// The first field in which a catalog row disagrees with the manifest it records, if any.
pub(crate) fn record_mismatch(rec: &SnapshotRecord, m: &Manifest) -> Option<&'static str> {
    if rec.fingerprint_id != m.fingerprint.id() {
        Some("embedding fingerprint")
    } else if rec.documents != m.counts.documents as u64 {
        Some("document count")
    } else if rec.chunks != m.counts.chunks as u64 {
        Some("chunk count")
    } else if rec.index_kind != m.index.kind.as_str() {
        Some("index kind")
    } else if rec.created_at != m.created_at {
        Some("creation time")
    } else if rec.parent_id != m.parent_id {
        Some("parent")
    } else if rec.recall.to_bits() != m.index.recall.to_bits() {
        Some("measured recall")
    } else {
        None
    }
}
