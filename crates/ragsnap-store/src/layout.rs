//! The store's own small files and the rules for its entries: the identity file that says a
//! folder is a ragsnap store, the head record kept beside the catalog so that `repair` knows
//! which snapshot was head, the staging markers that prove a folder is an unfinished build,
//! and the checks that refuse a symbolic link wherever a store entry should be.

use crate::catalog::BackedOut;
use crate::{Result, StoreError};
use ragsnap_core::fsio;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Identity file at the top of a store, written when the store is created.
pub const IDENTITY_FILE: &str = "ragsnap-store.json";
/// The catalog.
pub const CATALOG_FILE: &str = "catalog.sqlite";
/// The head record: which snapshot is head and which were backed out, rewritten atomically
/// after every head move. Redundant with the catalog; `repair` reads it.
pub const HEAD_RECORD_FILE: &str = "HEAD.json";
/// Where snapshot folders nobody can account for are moved (never deleted).
pub const QUARANTINE_DIR: &str = "quarantine";
/// Suffix of the marker `staging/<id><suffix>` written before a build's staging folder exists
/// and removed after its catalog commit.
pub const PENDING_SUFFIX: &str = ".pending";
/// Layout version in the identity file.
pub const STORE_LAYOUT_VERSION: u32 = 1;
/// `kind` value of the identity file.
pub const STORE_KIND: &str = "ragsnap-store";
/// Folders of a store.
pub const STORE_DIRS: &[&str] = &["staging", "snapshots", "leases", "cache", QUARANTINE_DIR, GC_DIR];
/// Where gc writes `<id>.collecting` before it marks a snapshot's row `collected`: only a
/// collected row with this marker lets a later gc finish removing the folder.
pub const GC_DIR: &str = "gc";
/// Suffix of gc's removal marker.
pub const COLLECTING_SUFFIX: &str = ".collecting";
/// Every top-level entry a store may hold.
pub const STORE_ENTRIES: &[&str] = &[
    IDENTITY_FILE,
    CATALOG_FILE,
    "catalog.sqlite-wal",
    "catalog.sqlite-shm",
    HEAD_RECORD_FILE,
    "LOCK",
    "staging",
    "snapshots",
    "leases",
    "cache",
    QUARANTINE_DIR,
    GC_DIR,
];

/// Contents of the identity file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// Always `ragsnap-store`.
    pub kind: String,
    /// Layout version (1).
    pub layout_version: u32,
    /// Random id of this store (32 hex digits).
    pub store_id: String,
    /// When the store was created (or adopted), RFC 3339.
    pub created_at: String,
}

/// Contents of the head record.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadRecord {
    /// Head snapshot id, when there is one.
    pub head: Option<String>,
    /// Snapshots marked backed out, by id.
    #[serde(default)]
    pub backed_out: BTreeMap<String, BackedOut>,
    /// When the record was written, RFC 3339.
    #[serde(default)]
    pub written_at: String,
}

/// `symlink_metadata` of a store entry: `None` when absent, an error when it is a link.
pub fn entry_metadata(path: &Path) -> Result<Option<fs::Metadata>> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(StoreError::SymlinkRefused { path: path.to_path_buf() }),
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::io(path, e)),
    }
}

/// The embedding cache of the store at `root` (`cache/embeddings.sqlite`; the store owns the
/// folder, `ragsnap-embed` the file's contents).
pub fn embedding_cache_path(root: &Path) -> PathBuf {
    root.join("cache").join("embeddings.sqlite")
}

/// Refuse any top-level entry of `root` that is a symbolic link.
pub fn check_entries(root: &Path) -> Result<()> {
    for name in STORE_ENTRIES {
        entry_metadata(&root.join(name))?;
    }
    for name in ["embeddings.sqlite", "embeddings.sqlite-wal", "embeddings.sqlite-shm"] {
        entry_metadata(&root.join("cache").join(name))?;
    }
    Ok(())
}

/// Create folder `path` unless it exists; refuse a link or a file in its place.
pub fn ensure_dir(path: &Path) -> Result<()> {
    match entry_metadata(path)? {
        Some(m) if m.is_dir() => Ok(()),
        Some(_) => Err(StoreError::Refused(format!("{} should be a folder of the store", path.display()))),
        None => match fs::create_dir(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match entry_metadata(path)? {
                Some(m) if m.is_dir() => Ok(()),
                _ => Err(StoreError::Refused(format!("{} should be a folder of the store", path.display()))),
            },
            Err(e) => Err(StoreError::io(path, e)),
        },
    }
}

/// Open `path` read-write without following a final symlink (`O_NOFOLLOW`), creating it when
/// `create`. A link is [`StoreError::SymlinkRefused`].
pub fn open_nofollow(path: &Path, create: bool) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| nofollow_error(path, e))
}

/// Map an open error: `ELOOP` from `O_NOFOLLOW` means the entry is a link.
pub(crate) fn nofollow_error(path: &Path, e: io::Error) -> StoreError {
    if e.raw_os_error() == Some(libc::ELOOP) {
        StoreError::SymlinkRefused { path: path.to_path_buf() }
    } else {
        StoreError::io(path, e)
    }
}

/// Read and check the identity file; `None` when the store has none.
pub fn read_identity(root: &Path) -> Result<Option<Identity>> {
    let path = root.join(IDENTITY_FILE);
    if entry_metadata(&path)?.is_none() {
        return Ok(None);
    }
    let bytes = fs::read(&path).map_err(|e| StoreError::io(&path, e))?;
    let id: Identity = serde_json::from_slice(&bytes).map_err(|e| {
        StoreError::malformed(
            &path,
            format!("not a ragsnap identity file ({e}); `ragsnap repair` sets it aside and writes a new one"),
        )
    })?;
    if id.kind != STORE_KIND {
        return Err(StoreError::malformed(&path, format!("kind is {:?}, expected {STORE_KIND:?}", id.kind)));
    }
    if id.layout_version != STORE_LAYOUT_VERSION {
        return Err(StoreError::malformed(
            &path,
            format!(
                "store layout version {} is not readable by this build (reads {STORE_LAYOUT_VERSION})",
                id.layout_version
            ),
        ));
    }
    Ok(Some(id))
}

/// Write a new identity file atomically.
pub fn write_identity(root: &Path) -> Result<Identity> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let seed = format!("{}-{}-{}", std::process::id(), now.as_nanos(), root.display());
    let id = Identity {
        kind: STORE_KIND.into(),
        layout_version: STORE_LAYOUT_VERSION,
        store_id: blake3::hash(seed.as_bytes()).to_hex()[..32].to_string(),
        created_at: crate::time::rfc3339(now.as_secs() as i64),
    };
    let path = root.join(IDENTITY_FILE);
    let mut bytes = serde_json::to_vec_pretty(&id).expect("serialises");
    bytes.push(b'\n');
    fsio::write_atomic(&path, &bytes).map_err(|e| StoreError::io(&path, e))?;
    Ok(id)
}

/// Read the head record; `None` when it is absent or unreadable (it is only a hint).
pub fn read_head_record(root: &Path) -> Option<HeadRecord> {
    let path = root.join(HEAD_RECORD_FILE);
    if !matches!(entry_metadata(&path), Ok(Some(m)) if m.is_file()) {
        return None;
    }
    let bytes = fs::read(&path).ok()?;
    match serde_json::from_slice(&bytes) {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "head record unreadable; ignoring it");
            None
        }
    }
}

/// Write the head record atomically.
pub fn write_head_record(root: &Path, rec: &HeadRecord) -> Result<()> {
    let path = root.join(HEAD_RECORD_FILE);
    entry_metadata(&path)?;
    let mut bytes = serde_json::to_vec_pretty(rec).expect("serialises");
    bytes.push(b'\n');
    fsio::write_atomic(&path, &bytes).map_err(|e| StoreError::io(&path, e))
}

/// Marker of staged build `id`.
pub fn pending_marker(root: &Path, id: &str) -> PathBuf {
    root.join("staging").join(format!("{id}{PENDING_SUFFIX}"))
}

/// Prefix of the catalog `repair` builds beside the real one (`catalog.sqlite.repair-<pid>`).
pub const REPAIR_TMP_PREFIX: &str = "catalog.sqlite.repair-";

/// Remove what a killed `repair` left: `catalog.sqlite.repair-<pid>` and its `-journal`, `-wal`
/// and `-shm`, when no process `<pid>` is alive (they are the store's own temporary files).
/// Call under the writer lock. Returns the names removed.
pub fn remove_dead_repair_leftovers(root: &Path) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for e in fs::read_dir(root).map_err(|e| StoreError::io(root, e))?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(REPAIR_TMP_PREFIX) else { continue };
        let (pid, side) = rest.split_at(rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len()));
        if !["", "-journal", "-wal", "-shm"].contains(&side) {
            continue;
        }
        let Ok(pid) = pid.parse::<i32>() else { continue };
        if pid <= 0 || pid as u32 == std::process::id() || process_alive(pid) {
            continue;
        }
        if !e.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        fs::remove_file(e.path()).map_err(|x| StoreError::io(e.path(), x))?;
        removed.push(name);
    }
    if !removed.is_empty() {
        tracing::info!(?removed, "removed the temporary files of a repair that did not finish");
        fsio::sync_dir(root).map_err(|e| StoreError::io(root, e))?;
    }
    Ok(removed)
}

/// Whether process `pid` exists, from `/proc`; without a `/proc` every process counts as alive
/// (nothing is removed on a guess).
fn process_alive(pid: i32) -> bool {
    if fs::metadata("/proc/self").is_err() {
        return true;
    }
    fs::symlink_metadata(Path::new("/proc").join(pid.to_string())).is_ok()
}

/// gc's removal marker of snapshot `id`.
pub fn collecting_marker(root: &Path, id: &str) -> PathBuf {
    root.join(GC_DIR).join(format!("{id}{COLLECTING_SUFFIX}"))
}

/// Write gc's removal marker of `id` durably (never through a link).
pub fn write_collecting_marker(root: &Path, id: &str) -> Result<()> {
    use std::io::Write;
    let dir = root.join(GC_DIR);
    ensure_dir(&dir)?;
    let path = collecting_marker(root, id);
    let mut f = open_nofollow(&path, true)?;
    f.set_len(0).map_err(|e| StoreError::io(&path, e))?;
    f.write_all(id.as_bytes()).map_err(|e| StoreError::io(&path, e))?;
    f.sync_all().map_err(|e| StoreError::io(&path, e))?;
    fsio::sync_dir(&dir).map_err(|e| StoreError::io(&dir, e))
}

/// Whether gc's removal marker of `id` exists as a regular file.
pub fn has_collecting_marker(root: &Path, id: &str) -> bool {
    fs::symlink_metadata(collecting_marker(root, id)).is_ok_and(|m| m.file_type().is_file())
}

/// Move `path` into `quarantine/`, under its own name or a numbered one; returns where it went.
pub fn quarantine(root: &Path, path: &Path) -> Result<PathBuf> {
    let q = root.join(QUARANTINE_DIR);
    ensure_dir(&q)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "entry".into());
    let mut target = q.join(&name);
    let mut n = 1;
    while fs::symlink_metadata(&target).is_ok() {
        target = q.join(format!("{name}.{n}"));
        n += 1;
    }
    fs::rename(path, &target).map_err(|e| StoreError::io(path, e))?;
    fsio::sync_dir(&q).map_err(|e| StoreError::io(&q, e))?;
    if let Some(parent) = path.parent() {
        fsio::sync_dir(parent).map_err(|e| StoreError::io(parent, e))?;
    }
    Ok(target)
}

/// What a folder given as a store is, seen before anything is written to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootState {
    /// Absent, empty, or holding only an empty store layout (a lock, empty folders, leases, an
    /// embedding cache): a new store is created.
    Fresh,
    /// Has an identity file.
    Known,
    /// No identity file, but a valid ragsnap catalog: a store made before identity files.
    Adoptable,
    /// No identity file and its catalog cannot be opened, but snapshot folders with manifests:
    /// a store whose catalog broke before it was adopted (only `repair` helps).
    Damaged,
}

/// Classify `root` without writing anything. A folder with other content is
/// [`StoreError::NotAStore`].
pub fn classify(root: &Path) -> Result<RootState> {
    let md = match fs::metadata(root) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(RootState::Fresh),
        Err(e) => return Err(StoreError::io(root, e)),
    };
    if !md.is_dir() {
        return Err(StoreError::NotAStore { path: root.to_path_buf(), identity: IDENTITY_FILE });
    }
    check_entries(root)?;
    if read_identity(root)?.is_some() {
        return Ok(RootState::Known);
    }
    let mut only_layout = true;
    for e in fs::read_dir(root).map_err(|e| StoreError::io(root, e))? {
        let e = e.map_err(|e| StoreError::io(root, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        // What a new store may already hold: its lock, empty folders, reader leases, and an
        // embedding cache copied in to warm it.
        let allowed: Option<fn(&str) -> bool> = match name.as_str() {
            "staging" | "snapshots" | QUARANTINE_DIR | GC_DIR => Some(|_| false),
            "leases" => Some(|n| n.ends_with(".lease")),
            "cache" => Some(|n| n.starts_with("embeddings.sqlite")),
            _ => None,
        };
        let fits = match allowed {
            Some(ok) => fs::read_dir(e.path())
                .map(|d| d.flatten().all(|x| ok(&x.file_name().to_string_lossy())))
                .unwrap_or(false),
            None => name == "LOCK",
        };
        if !fits {
            only_layout = false;
        }
    }
    if only_layout {
        return Ok(RootState::Fresh);
    }
    let catalog = root.join(CATALOG_FILE);
    if entry_metadata(&catalog)?.is_some_and(|m| m.is_file() && m.len() > 0)
        && crate::Catalog::open_reader(&catalog).is_ok()
    {
        return Ok(RootState::Adoptable);
    }
    if has_snapshot_folders(root) {
        return Ok(RootState::Damaged);
    }
    Err(StoreError::NotAStore { path: root.to_path_buf(), identity: IDENTITY_FILE })
}

/// Whether `root/snapshots/` holds at least one folder with a manifest.
pub fn has_snapshot_folders(root: &Path) -> bool {
    let snaps = root.join("snapshots");
    if !matches!(entry_metadata(&snaps), Ok(Some(m)) if m.is_dir()) {
        return false;
    }
    fs::read_dir(&snaps)
        .map(|it| {
            it.flatten().any(|e| {
                fs::symlink_metadata(e.path().join(crate::MANIFEST_FILE)).is_ok_and(|m| m.file_type().is_file())
            })
        })
        .unwrap_or(false)
}
