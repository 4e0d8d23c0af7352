//! [`StoreError`]: every failure of a store, a snapshot or the catalog, each naming its path.

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Everything that can go wrong with a store, a snapshot or the catalog.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer holds the store.
    #[error("store {path} is locked by pid {pid}")]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// Pid written by the holder (0 when unreadable).
        pid: u32,
    },
    /// An I/O error on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file's content does not match its recorded digest.
    #[error("{path}: checksum mismatch: expected blake3 {expected}, found {found}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Recorded digest.
        expected: String,
        /// Digest of what is on disk.
        found: String,
    },
    /// A file is malformed (bad magic, wrong size, truncated, unparsable).
    #[error("{path}: {message}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A manifest that must not be trusted: traversal paths, unknown feature flags, bad sizes.
    #[error("{path}: manifest refused: {message}")]
    ManifestRefused {
        /// The manifest.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The snapshot's format version is outside what this build reads.
    #[error("{path}: format version {found} is not readable by this build (reads {oldest}..={current})")]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// Version found.
        found: u32,
        /// Oldest readable.
        oldest: u32,
        /// Current.
        current: u32,
    },
    /// No such snapshot in the catalog.
    #[error("no snapshot {0:?} in the catalog")]
    UnknownSnapshot(String),
    /// A snapshot reference that cannot be parsed (`HEAD~x`).
    #[error("bad snapshot reference {spec:?}: {message}")]
    BadReference {
        /// What was given.
        spec: String,
        /// What is wrong with it.
        message: String,
    },
    /// `HEAD~N` goes further back than the chain of builds reaches.
    #[error(
        "{spec} goes back further than the store's history: head has {available} ancestor(s); the oldest is {oldest}"
    )]
    BeyondHistory {
        /// What was given.
        spec: String,
        /// How many steps back exist.
        available: u64,
        /// The oldest snapshot of the chain.
        oldest: String,
    },
    /// The store has no head yet.
    #[error("the store has no head snapshot yet: run `ragsnap rebuild` first")]
    NoHead,
    /// The catalog database failed.
    #[error("catalog {path}: {message}")]
    Catalog {
        /// The database file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// An operation was refused (with the reason).
    #[error("{0}")]
    Refused(String),
    /// No store exists at the path (absent or empty folder) and the command does not create one.
    #[error("no ragsnap store at {path}: nothing was changed (`ragsnap rebuild` creates a store)")]
    NoStore {
        /// The folder.
        path: PathBuf,
    },
    /// The folder has content but is not a ragsnap store; nothing in it was touched.
    #[error("{path} is not a ragsnap store: it has content but no {identity} and no usable catalog; nothing was changed (point --store at a ragsnap store or at an empty or new folder)")]
    NotAStore {
        /// The folder.
        path: PathBuf,
        /// Name of the identity file it lacks.
        identity: &'static str,
    },
    /// The catalog is missing, empty, fails SQLite's checks, or disagrees with the snapshot
    /// folders. Writers stop rather than recreate it.
    #[error("catalog {path} is damaged: {message}; nothing was changed: run `ragsnap repair` to rebuild it from the snapshot folders (`ragsnap repair --dry-run` shows the plan)")]
    CatalogDamaged {
        /// The catalog file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A store entry is a symbolic link; ragsnap does not follow links inside a store.
    #[error("{path} is a symbolic link; ragsnap refuses to follow links for store entries (replace it with a real file or folder)")]
    SymlinkRefused {
        /// The link.
        path: PathBuf,
    },
    /// A snapshot whose checksums match but which a reader cannot open.
    #[error("{path}: a reader cannot open this snapshot: {message}")]
    Unreadable {
        /// The snapshot folder.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StoreError::Io { path: path.into(), source }
    }

    pub(crate) fn malformed(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        StoreError::Malformed { path: path.into(), message: message.into() }
    }
}
