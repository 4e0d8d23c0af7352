//! The SQLite catalog: which snapshots exist, which one is head, and the append-only history
//! of how head moved. The transaction that moves `head` is the store's only commit point.

use crate::time::{rfc3339, unix_now};
use crate::{Result, SnapshotStatus, StoreError};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Catalog schema version (`PRAGMA user_version`) this build writes. Version 2 added the
/// `backed_out_*` columns; a version-1 catalog is migrated in place by the first writer and read
/// as it is by readers.
pub const CATALOG_SCHEMA_VERSION: i64 = 2;

/// Oldest catalog schema version this build reads.
pub const CATALOG_OLDEST_SCHEMA_VERSION: i64 = 1;

/// Longest accepted time between a snapshot's manifest `created_at` and its catalog
/// `created_unix` (the publish time): a week.
const MAX_PUBLISH_DELAY_SECS: i64 = 7 * 86_400;

/// How far the clock may have stepped back between the two readings: a day.
const MAX_CLOCK_STEP_SECS: i64 = 86_400;

/// Columns of the `snapshots` table in a version-1 catalog, in order.
const SNAPSHOT_COLUMNS: [&str; 12] = [
    "id",
    "parent_id",
    "created_at",
    "created_unix",
    "status",
    "manifest_blake3",
    "fingerprint_id",
    "documents",
    "chunks",
    "index_kind",
    "recall",
    "reason",
];

const MIGRATE_1_TO_2: &str = "
ALTER TABLE snapshots ADD COLUMN backed_out_at TEXT;
ALTER TABLE snapshots ADD COLUMN backed_out_by TEXT;
ALTER TABLE snapshots ADD COLUMN backed_out_reason TEXT;
PRAGMA user_version = 2;
";

const SCHEMA: &str = "
CREATE TABLE snapshots (
    id              TEXT PRIMARY KEY,
    parent_id       TEXT,
    created_at      TEXT NOT NULL,
    created_unix    INTEGER NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('ready', 'rejected', 'collected')),
    manifest_blake3 TEXT NOT NULL,
    fingerprint_id  TEXT NOT NULL,
    documents       INTEGER NOT NULL,
    chunks          INTEGER NOT NULL,
    index_kind      TEXT NOT NULL,
    recall          REAL NOT NULL,
    reason          TEXT,
    backed_out_at   TEXT,
    backed_out_by   TEXT,
    backed_out_reason TEXT
);
CREATE TABLE head (
    one         INTEGER PRIMARY KEY CHECK (one = 1),
    snapshot_id TEXT NOT NULL REFERENCES snapshots(id)
);
CREATE TABLE history (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    at      TEXT NOT NULL,
    action  TEXT NOT NULL,
    from_id TEXT,
    to_id   TEXT NOT NULL,
    who     TEXT NOT NULL,
    reason  TEXT NOT NULL
);
CREATE TRIGGER history_append_only_u BEFORE UPDATE ON history BEGIN SELECT RAISE(ABORT, 'history is append-only'); END;
CREATE TRIGGER history_append_only_d BEFORE DELETE ON history BEGIN SELECT RAISE(ABORT, 'history is append-only'); END;
CREATE TABLE pins (
    tag         TEXT PRIMARY KEY,
    snapshot_id TEXT NOT NULL REFERENCES snapshots(id),
    created_at  TEXT NOT NULL
);
PRAGMA user_version = 2;
";

/// A snapshot as the catalog knows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SnapshotRecord {
    /// Snapshot id.
    pub id: String,
    /// Parent snapshot id.
    pub parent_id: Option<String>,
    /// Creation time, RFC 3339.
    pub created_at: String,
    /// Creation time, Unix seconds.
    pub created_unix: i64,
    /// `ready`, `rejected` or `collected`.
    pub status: SnapshotStatus,
    /// blake3 of `MANIFEST.json`.
    pub manifest_blake3: String,
    /// Embedding fingerprint id.
    pub fingerprint_id: String,
    /// Documents.
    pub documents: u64,
    /// Chunks.
    pub chunks: u64,
    /// `exact` or `hnsw`.
    pub index_kind: String,
    /// Measured recall.
    pub recall: f64,
    /// Why it was rejected, when it was.
    pub reason: Option<String>,
    /// Whether it is head.
    pub is_head: bool,
    /// Pin tags.
    pub pins: Vec<String>,
    /// Set when head was moved away from this snapshot by a rollback or by promoting an older
    /// one: a bare `rollback` skips it and making it head again needs `promote --force`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backed_out: Option<BackedOut>,
}

/// Who moved head away from a snapshot, when and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct BackedOut {
    /// When (RFC 3339).
    pub at: String,
    /// `user@host pid N`.
    pub by: String,
    /// The reason given for the head move.
    pub reason: String,
}

/// One row of the head history.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HistoryEntry {
    /// Sequence number.
    pub seq: i64,
    /// When.
    pub at: String,
    /// `promote`, `force-promote` or `rollback`.
    pub action: String,
    /// Previous head.
    pub from_id: Option<String>,
    /// New head.
    pub to_id: String,
    /// User and host that did it.
    pub who: String,
    /// Why.
    pub reason: String,
}

/// Connection to `catalog.sqlite`.
pub struct Catalog {
    path: PathBuf,
    conn: Connection,
    version: i64,
}

/// How a reader reached the catalog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadMode {
    /// An ordinary read-only connection (it may create `-wal`/`-shm` beside the catalog).
    Shared,
    /// SQLite's `immutable=1`: the store could not be written (read-only mount or no
    /// permission) and the catalog had no pending write-ahead log.
    Immutable,
}

impl Catalog {
    fn err(&self, e: impl ToString) -> StoreError {
        StoreError::Catalog { path: self.path.clone(), message: e.to_string() }
    }

    /// Open for writing, creating the schema if the file is new.
    ///
    /// Writers of a store use [`Catalog::create`] and [`Catalog::open_existing`] instead, which
    /// never turn a lost catalog into an empty one.
    pub fn open_rw(path: &Path) -> Result<Self> {
        let conn = Self::connect_rw(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE)?;
        let mut c = Catalog { path: path.to_path_buf(), conn, version: 0 };
        c.version = c.user_version()?;
        if c.version == 0 {
            c.conn.execute_batch(SCHEMA).map_err(|x| c.err(x))?;
            c.version = CATALOG_SCHEMA_VERSION;
        }
        c.check_version()?;
        c.migrate()?;
        Ok(c)
    }

    /// Create a new catalog at `path` (which must not exist yet).
    pub fn create(path: &Path) -> Result<Self> {
        if std::fs::symlink_metadata(path).is_ok() {
            return Err(StoreError::Catalog {
                path: path.to_path_buf(),
                message: "refusing to create a catalog over an existing file".into(),
            });
        }
        let conn = Self::connect_rw(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE)?;
        let c = Catalog { path: path.to_path_buf(), conn, version: CATALOG_SCHEMA_VERSION };
        c.conn.execute_batch(SCHEMA).map_err(|x| c.err(x))?;
        Ok(c)
    }

    /// Open an existing catalog for writing: it must exist, be a ragsnap catalog and pass
    /// SQLite's integrity and foreign-key checks; an old schema is migrated in place. Anything
    /// else is [`StoreError::CatalogDamaged`], and nothing is created or changed.
    pub fn open_existing(path: &Path) -> Result<Self> {
        Self::open_existing_as(path, true)
    }

    /// [`Catalog::open_existing`], with or without migrating an old schema.
    pub(crate) fn open_existing_as(path: &Path, migrate: bool) -> Result<Self> {
        let damaged = |m: String| StoreError::CatalogDamaged { path: path.to_path_buf(), message: m };
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(damaged("the file is missing".into())),
            Err(e) => return Err(StoreError::io(path, e)),
            Ok(m) if m.file_type().is_symlink() => return Err(StoreError::SymlinkRefused { path: path.to_path_buf() }),
            Ok(m) if !m.is_file() => return Err(damaged("not a regular file".into())),
            Ok(m) if m.len() == 0 => return Err(damaged("the file is empty".into())),
            Ok(_) => {}
        }
        // No CREATE flag: SQLite must not make a new database if the file vanished meanwhile.
        let conn = Self::connect_rw(path, OpenFlags::SQLITE_OPEN_READ_WRITE)
            .map_err(|e| damaged(format!("cannot open: {e}")))?;
        let mut c = Catalog { path: path.to_path_buf(), conn, version: 0 };
        c.check_health().map_err(damaged)?;
        if migrate {
            c.migrate()?;
        }
        Ok(c)
    }

    fn connect_rw(path: &Path, flags: OpenFlags) -> Result<Connection> {
        let e = |x: rusqlite::Error| StoreError::Catalog { path: path.to_path_buf(), message: x.to_string() };
        let conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX).map_err(e)?;
        conn.busy_timeout(std::time::Duration::from_secs(30)).map_err(e)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(e)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(e)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(e)?;
        Ok(conn)
    }

    fn user_version(&self) -> Result<i64> {
        self.conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(|x| self.err(x))
    }

    fn check_version(&self) -> Result<()> {
        if !(CATALOG_OLDEST_SCHEMA_VERSION..=CATALOG_SCHEMA_VERSION).contains(&self.version) {
            return Err(self.err(format!(
                "schema version {}; this build reads {CATALOG_OLDEST_SCHEMA_VERSION}..={CATALOG_SCHEMA_VERSION}",
                self.version
            )));
        }
        Ok(())
    }

    /// SQLite's `integrity_check` and `foreign_key_check`, the schema version, and the tables a
    /// ragsnap catalog has. Sets the schema version on success; the error says what failed.
    pub(crate) fn check_health(&mut self) -> std::result::Result<(), String> {
        let v: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| format!("cannot read: {e}"))?;
        if !(CATALOG_OLDEST_SCHEMA_VERSION..=CATALOG_SCHEMA_VERSION).contains(&v) {
            return Err(format!(
                "schema version {v}; this build reads {CATALOG_OLDEST_SCHEMA_VERSION}..={CATALOG_SCHEMA_VERSION}"
            ));
        }
        let mut stmt = self.conn.prepare("PRAGMA integrity_check").map_err(|e| format!("integrity check: {e}"))?;
        let rows: Vec<String> = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .and_then(|it| it.collect())
            .map_err(|e| format!("integrity check: {e}"))?;
        drop(stmt);
        if rows != ["ok"] {
            return Err(format!("integrity check failed: {}", rows.join("; ")));
        }
        let mut stmt = self.conn.prepare("PRAGMA foreign_key_check").map_err(|e| format!("foreign key check: {e}"))?;
        let bad = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(|e| format!("foreign key check: {e}"))?.count();
        drop(stmt);
        if bad > 0 {
            return Err(format!("{bad} row(s) point at snapshots the catalog does not have"));
        }
        let mut snapshot_cols: Vec<&str> = SNAPSHOT_COLUMNS.to_vec();
        if v >= 2 {
            snapshot_cols.extend(["backed_out_at", "backed_out_by", "backed_out_reason"]);
        }
        let tables: [(&str, &[&str]); 4] = [
            ("snapshots", &snapshot_cols),
            ("head", &["one", "snapshot_id"]),
            ("history", &["seq", "at", "action", "from_id", "to_id", "who", "reason"]),
            ("pins", &["tag", "snapshot_id", "created_at"]),
        ];
        for (t, want) in tables {
            let cols: Vec<String> = self
                .conn
                .prepare("SELECT name FROM pragma_table_info(?1)")
                .and_then(|mut st| st.query_map([t], |r| r.get(0))?.collect())
                .map_err(|e| format!("reading the schema: {e}"))?;
            if cols.is_empty() {
                return Err(format!("no {t} table: not a ragsnap catalog"));
            }
            if cols != want {
                return Err(format!("table {t} has columns {cols:?}, expected {want:?}"));
            }
        }
        let bad_status: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM snapshots WHERE status NOT IN ('ready', 'rejected', 'collected')",
                [],
                |r| r.get(0),
            )
            .map_err(|e| format!("reading snapshots: {e}"))?;
        if bad_status > 0 {
            return Err(format!("{bad_status} snapshot row(s) have an unknown status"));
        }
        // Every head move appends a history row in the same transaction: head is the last row's
        // target, and a catalog with history has a head.
        let head: Vec<(i64, String)> = self
            .conn
            .prepare("SELECT one, snapshot_id FROM head")
            .and_then(|mut st| st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .map_err(|e| format!("reading head: {e}"))?;
        let last: Option<String> = self
            .conn
            .query_row("SELECT to_id FROM history ORDER BY seq DESC LIMIT 1", [], |r| r.get(0))
            .optional()
            .map_err(|e| format!("reading history: {e}"))?;
        match (head.as_slice(), last) {
            ([], None) => {}
            ([(1, h)], Some(l)) if *h == l => {
                let status: Option<String> = self
                    .conn
                    .query_row("SELECT status FROM snapshots WHERE id = ?1", [h], |r| r.get(0))
                    .optional()
                    .map_err(|e| format!("reading snapshots: {e}"))?;
                if status.as_deref() != Some(SnapshotStatus::Ready.as_str()) {
                    return Err(format!("head {h} is not a ready snapshot ({})", status.unwrap_or("no row".into())));
                }
            }
            ([(1, h)], Some(l)) => return Err(format!("head is {h} but the last history entry moved it to {l}")),
            ([], Some(l)) => return Err(format!("no head row, though the history moved head to {l}")),
            (rows, _) => return Err(format!("the head table is inconsistent ({} row(s))", rows.len())),
        }
        self.version = v;
        // Read every row the way the store will, so that a damaged value (not UTF-8, wrong
        // type) stops here as damage rather than later as an odd error.
        for r in self.list().map_err(|e| format!("reading snapshots: {e}"))? {
            if r.manifest_blake3.len() != 64
                || !r.manifest_blake3.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            {
                return Err(format!(
                    "snapshot {}: the manifest digest {:?} is not a blake3 digest",
                    r.id, r.manifest_blake3
                ));
            }
            if !crate::manifest::is_plain_file_name(&r.id) {
                return Err(format!("snapshot id {:?} is not a plain file name", r.id));
            }
            // Recorded at publish, seconds after the manifest's creation time (GC's age test
            // reads it, so a damaged value must not pass).
            let made = crate::time::parse_rfc3339(&r.created_at);
            let window = |t: i64| t - MAX_CLOCK_STEP_SECS..=t + MAX_PUBLISH_DELAY_SECS;
            if !made.is_some_and(|t| window(t).contains(&r.created_unix)) {
                return Err(format!(
                    "snapshot {}: recorded at {} but created {:?}",
                    r.id, r.created_unix, r.created_at
                ));
            }
        }
        self.history().map_err(|e| format!("reading history: {e}"))?;
        Ok(())
    }

    fn migrate(&mut self) -> Result<()> {
        if self.version == 1 {
            self.conn.execute_batch(&format!("BEGIN IMMEDIATE; {MIGRATE_1_TO_2} COMMIT;")).map_err(|x| self.err(x))?;
            tracing::info!(path = %self.path.display(), "catalog schema migrated from version 1 to 2");
            self.version = 2;
        }
        Ok(())
    }

    /// Schema version of this catalog (1 or 2).
    pub fn schema_version(&self) -> i64 {
        self.version
    }

    /// Open read-only (readers never write the catalog).
    pub fn open_ro(path: &Path) -> Result<Self> {
        Self::open_reader(path).map(|(c, _)| c)
    }

    /// Open read-only, and say how: an ordinary read-only connection, or, when the store cannot
    /// be written (read-only mount, no permission to create `-wal`/`-shm`) and no write-ahead log
    /// is pending, SQLite's `immutable=1` mode. The catalog is checked like a writer checks it.
    pub fn open_reader(path: &Path) -> Result<(Self, ReadMode)> {
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::Catalog {
                    path: path.to_path_buf(),
                    message: "no catalog: is this a ragsnap store? run `ragsnap rebuild` first".into(),
                })
            }
            Err(e) => return Err(StoreError::io(path, e)),
            Ok(m) if m.file_type().is_symlink() => return Err(StoreError::SymlinkRefused { path: path.to_path_buf() }),
            Ok(_) => {}
        }
        for side in ["-wal", "-shm"] {
            let p = side_file(path, side);
            if std::fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(StoreError::SymlinkRefused { path: p });
            }
        }
        let damaged = |m: String| StoreError::CatalogDamaged { path: path.to_path_buf(), message: m };
        let shared =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .and_then(|conn| {
                    conn.busy_timeout(std::time::Duration::from_secs(30))?;
                    // Reading the schema is what fails when -shm cannot be created.
                    conn.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))?;
                    Ok(conn)
                });
        let (conn, mode) = match shared {
            Ok(conn) => (conn, ReadMode::Shared),
            Err(e) if is_cannot_write(&e) => {
                let wal = side_file(path, "-wal");
                if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
                    return Err(StoreError::Catalog {
                        path: path.to_path_buf(),
                        message: format!(
                            "cannot open read-only ({e}) and {} holds writes not yet in the catalog; \
                             open the store once where it can be written",
                            wal.display()
                        ),
                    });
                }
                tracing::debug!(path = %path.display(), error = %e, "catalog opened immutable: the store cannot be written");
                let uri = format!("file:{}?immutable=1", uri_path(path));
                let conn = Connection::open_with_flags(
                    &uri,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(|x| StoreError::Catalog { path: path.to_path_buf(), message: x.to_string() })?;
                (conn, ReadMode::Immutable)
            }
            Err(e) => return Err(damaged(format!("cannot open: {e}"))),
        };
        let mut c = Catalog { path: path.to_path_buf(), conn, version: 0 };
        c.check_health().map_err(damaged)?;
        Ok((c, mode))
    }

    /// Current head id.
    pub fn head_id(&self) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT snapshot_id FROM head WHERE one = 1", [], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Every snapshot, in the order they were recorded (oldest first).
    pub fn list(&self) -> Result<Vec<SnapshotRecord>> {
        let head = self.head_id()?;
        // A version-1 catalog (read, never migrated, by a reader) has no back-out columns.
        let backed_out =
            if self.version >= 2 { "backed_out_at, backed_out_by, backed_out_reason" } else { "NULL, NULL, NULL" };
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT id, parent_id, created_at, created_unix, status, manifest_blake3, fingerprint_id, documents, chunks,
                        index_kind, recall, reason, {backed_out} FROM snapshots ORDER BY rowid"
            ))
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(SnapshotRecord {
                    id: r.get(0)?,
                    parent_id: r.get(1)?,
                    created_at: r.get(2)?,
                    created_unix: r.get(3)?,
                    status: r.get(4)?,
                    manifest_blake3: r.get(5)?,
                    fingerprint_id: r.get(6)?,
                    documents: r.get::<_, i64>(7)? as u64,
                    chunks: r.get::<_, i64>(8)? as u64,
                    index_kind: r.get(9)?,
                    recall: r.get(10)?,
                    reason: r.get(11)?,
                    is_head: false,
                    pins: Vec::new(),
                    backed_out: match (r.get::<_, Option<String>>(12)?, r.get::<_, Option<String>>(13)?) {
                        (Some(at), by) => Some(BackedOut {
                            at,
                            by: by.unwrap_or_default(),
                            reason: r.get::<_, Option<String>>(14)?.unwrap_or_default(),
                        }),
                        (None, _) => None,
                    },
                })
            })
            .map_err(|e| self.err(e))?;
        let mut out: Vec<SnapshotRecord> = rows.collect::<std::result::Result<_, _>>().map_err(|e| self.err(e))?;
        let pins = self.pins()?;
        for s in &mut out {
            s.is_head = head.as_deref() == Some(s.id.as_str());
            s.pins = pins.iter().filter(|(_, id)| *id == s.id).map(|(t, _)| t.clone()).collect();
        }
        Ok(out)
    }

    /// One snapshot.
    pub fn get(&self, id: &str) -> Result<SnapshotRecord> {
        self.list()?.into_iter().find(|s| s.id == id).ok_or_else(|| StoreError::UnknownSnapshot(id.to_string()))
    }

    /// (tag, snapshot id) pairs.
    pub fn pins(&self) -> Result<Vec<(String, String)>> {
        let mut stmt = self.conn.prepare("SELECT tag, snapshot_id FROM pins ORDER BY tag").map_err(|e| self.err(e))?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(|e| self.err(e))?;
        rows.collect::<std::result::Result<_, _>>().map_err(|e| self.err(e))
    }

    /// The head history, oldest first.
    pub fn history(&self) -> Result<Vec<HistoryEntry>> {
        let mut stmt = self
            .conn
            .prepare("SELECT seq, at, action, from_id, to_id, who, reason FROM history ORDER BY seq")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(HistoryEntry {
                    seq: r.get(0)?,
                    at: r.get(1)?,
                    action: r.get(2)?,
                    from_id: r.get(3)?,
                    to_id: r.get(4)?,
                    who: r.get(5)?,
                    reason: r.get(6)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<std::result::Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Insert a snapshot row and, when `promote` is given, move head to it: one transaction.
    pub fn insert_snapshot(&mut self, rec: &SnapshotRecord, promote: Option<(&str, &str)>) -> Result<()> {
        let path = self.path.clone();
        let e = |x: rusqlite::Error| StoreError::Catalog { path: path.clone(), message: x.to_string() };
        let tx = self.conn.transaction().map_err(e)?;
        tx.execute(
            "INSERT INTO snapshots (id, parent_id, created_at, created_unix, status, manifest_blake3, fingerprint_id,
                                    documents, chunks, index_kind, recall, reason)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                rec.id,
                rec.parent_id,
                rec.created_at,
                rec.created_unix,
                rec.status,
                rec.manifest_blake3,
                rec.fingerprint_id,
                rec.documents as i64,
                rec.chunks as i64,
                rec.index_kind,
                rec.recall,
                rec.reason
            ],
        )
        .map_err(e)?;
        if let Some((action, reason)) = promote {
            move_head(&tx, &rec.id, action, reason).map_err(e)?;
        }
        crate::failpoint("before-catalog-commit");
        tx.commit().map_err(e)
    }

    /// Move head to `id` and append a history row: one transaction.
    pub fn set_head(&mut self, id: &str, action: &str, reason: &str) -> Result<()> {
        self.move_head_backing_out(id, action, reason, false)
    }

    /// Move head to `id` and append a history row; when `back_out`, mark the snapshot head
    /// leaves as backed out (who, when, `reason`). The new head's own back-out mark is cleared.
    /// One transaction.
    pub fn move_head_backing_out(&mut self, id: &str, action: &str, reason: &str, back_out: bool) -> Result<()> {
        let path = self.path.clone();
        let e = |x: rusqlite::Error| StoreError::Catalog { path: path.clone(), message: x.to_string() };
        let tx = self.conn.transaction().map_err(e)?;
        let from: Option<String> =
            tx.query_row("SELECT snapshot_id FROM head WHERE one = 1", [], |r| r.get(0)).optional().map_err(e)?;
        move_head(&tx, id, action, reason).map_err(e)?;
        if action == "force-promote" {
            tx.execute("UPDATE snapshots SET status = ?2 WHERE id = ?1", rusqlite::params![id, SnapshotStatus::Ready])
                .map_err(e)?;
        }
        if self.version >= 2 {
            tx.execute(
                "UPDATE snapshots SET backed_out_at = NULL, backed_out_by = NULL, backed_out_reason = NULL WHERE id = ?1",
                [id],
            )
            .map_err(e)?;
            if let (true, Some(from)) = (back_out, from.filter(|f| f != id)) {
                tx.execute(
                    "UPDATE snapshots SET backed_out_at = ?2, backed_out_by = ?3, backed_out_reason = ?4 WHERE id = ?1",
                    params![from, rfc3339(unix_now()), who(), reason],
                )
                .map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }

    /// Record a snapshot recovered by `repair` (status, back-out mark and all), without moving
    /// head.
    pub(crate) fn insert_recovered(&mut self, rec: &SnapshotRecord) -> Result<()> {
        self.insert_snapshot(rec, None)?;
        if let Some(b) = &rec.backed_out {
            self.conn
                .execute(
                    "UPDATE snapshots SET backed_out_at = ?2, backed_out_by = ?3, backed_out_reason = ?4 WHERE id = ?1",
                    params![rec.id, b.at, b.by, b.reason],
                )
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Copy the head history and the pins of the listed snapshots from `old` (what `repair`
    /// keeps of a damaged catalog that can still be read). Returns (history rows, pins) copied.
    pub(crate) fn copy_history_and_pins(&mut self, old: &Catalog, ids: &[String]) -> Result<(usize, usize)> {
        let history = old.history()?;
        let pins: Vec<(String, String)> = old.pins()?.into_iter().filter(|(_, id)| ids.contains(id)).collect();
        let path = self.path.clone();
        let e = |x: rusqlite::Error| StoreError::Catalog { path: path.clone(), message: x.to_string() };
        let tx = self.conn.transaction().map_err(e)?;
        for h in &history {
            tx.execute(
                "INSERT INTO history (seq, at, action, from_id, to_id, who, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![h.seq, h.at, h.action, h.from_id, h.to_id, h.who, h.reason],
            )
            .map_err(e)?;
        }
        for (tag, id) in &pins {
            tx.execute(
                "INSERT INTO pins (tag, snapshot_id, created_at) VALUES (?1, ?2, ?3)",
                params![tag, id, rfc3339(unix_now())],
            )
            .map_err(e)?;
        }
        tx.commit().map_err(e)?;
        Ok((history.len(), pins.len()))
    }

    /// The catalog's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open connection (for the audit log, `crate::audit`).
    pub(crate) fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Mark a snapshot collected (its folder is gone; its row and history stay).
    pub fn mark_collected(&self, id: &str) -> Result<()> {
        self.conn
            .execute("UPDATE snapshots SET status = ?2 WHERE id = ?1", rusqlite::params![id, SnapshotStatus::Collected])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Pin `id` under `tag` (replacing the tag's previous target).
    pub fn pin(&self, tag: &str, id: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO pins (tag, snapshot_id, created_at) VALUES (?1, ?2, ?3)",
                params![tag, id, rfc3339(unix_now())],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Remove a pin; returns whether it existed.
    pub fn unpin(&self, tag: &str) -> Result<bool> {
        Ok(self.conn.execute("DELETE FROM pins WHERE tag = ?1", [tag]).map_err(|e| self.err(e))? > 0)
    }
}

fn who() -> String {
    let user = crate::audit::actor();
    let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
    format!("{user}@{host} pid {}", std::process::id())
}

fn move_head(tx: &rusqlite::Transaction<'_>, id: &str, action: &str, reason: &str) -> rusqlite::Result<()> {
    let from: Option<String> =
        tx.query_row("SELECT snapshot_id FROM head WHERE one = 1", [], |r| r.get(0)).optional()?;
    tx.execute("INSERT INTO head (one, snapshot_id) VALUES (1, ?1) ON CONFLICT(one) DO UPDATE SET snapshot_id = excluded.snapshot_id", [id])?;
    tx.execute(
        "INSERT INTO history (at, action, from_id, to_id, who, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![rfc3339(unix_now()), action, from, id, who(), reason],
    )?;
    Ok(())
}

/// `catalog.sqlite-wal` and `catalog.sqlite-shm` beside `path`.
pub(crate) fn side_file(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Whether an open failed because the database's folder or side files cannot be written.
fn is_cannot_write(e: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode;
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::CannotOpen | ErrorCode::ReadOnly | ErrorCode::PermissionDenied | ErrorCode::SystemIoFailure)
    )
}

/// A path as a SQLite URI path: percent-encode what URIs reserve.
fn uri_path(path: &Path) -> String {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = String::new();
    for b in abs.to_string_lossy().bytes() {
        match b {
            b'%' | b'?' | b'#' | b' ' | 0x80.. => out.push_str(&format!("%{b:02X}")),
            _ => out.push(b as char),
        }
    }
    out
}
