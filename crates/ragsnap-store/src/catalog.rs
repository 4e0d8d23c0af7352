//! The SQLite catalog: which snapshots exist, which one is head, and the append-only history
//! of how head moved. The transaction that moves `head` is the store's only commit point.

use crate::time::{rfc3339, unix_now};
use crate::{Result, StoreError};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Catalog schema version (`PRAGMA user_version`).
pub const CATALOG_SCHEMA_VERSION: i64 = 1;

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
    reason          TEXT
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
PRAGMA user_version = 1;
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
    pub status: String,
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
}

impl Catalog {
    fn err(&self, e: impl ToString) -> StoreError {
        StoreError::Catalog { path: self.path.clone(), message: e.to_string() }
    }

    /// Open for writing, creating the schema if the file is new.
    pub fn open_rw(path: &Path) -> Result<Self> {
        let e = |x: rusqlite::Error| StoreError::Catalog { path: path.to_path_buf(), message: x.to_string() };
        let conn = Connection::open(path).map_err(e)?;
        conn.busy_timeout(std::time::Duration::from_secs(30)).map_err(e)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(e)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(e)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(e)?;
        let c = Catalog { path: path.to_path_buf(), conn };
        let v: i64 = c.conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(|x| c.err(x))?;
        match v {
            0 => c.conn.execute_batch(SCHEMA).map_err(|x| c.err(x))?,
            CATALOG_SCHEMA_VERSION => {}
            other => return Err(c.err(format!("schema version {other}; this build reads {CATALOG_SCHEMA_VERSION}"))),
        }
        Ok(c)
    }

    /// Open read-only (readers never write the catalog).
    pub fn open_ro(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Err(StoreError::Catalog {
                path: path.to_path_buf(),
                message: "no catalog: is this a ragsnap store? run `ragsnap rebuild` first".into(),
            });
        }
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .map_err(|x| StoreError::Catalog { path: path.to_path_buf(), message: x.to_string() })?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(|x| StoreError::Catalog { path: path.to_path_buf(), message: x.to_string() })?;
        let c = Catalog { path: path.to_path_buf(), conn };
        let v: i64 = c.conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(|x| c.err(x))?;
        if v != CATALOG_SCHEMA_VERSION {
            return Err(c.err(format!("schema version {v}; this build reads {CATALOG_SCHEMA_VERSION}")));
        }
        Ok(c)
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
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, parent_id, created_at, created_unix, status, manifest_blake3, fingerprint_id, documents, chunks,
                        index_kind, recall, reason FROM snapshots ORDER BY rowid",
            )
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
        let path = self.path.clone();
        let e = |x: rusqlite::Error| StoreError::Catalog { path: path.clone(), message: x.to_string() };
        let tx = self.conn.transaction().map_err(e)?;
        move_head(&tx, id, action, reason).map_err(e)?;
        if action == "force-promote" {
            tx.execute("UPDATE snapshots SET status = 'ready' WHERE id = ?1", [id]).map_err(e)?;
        }
        tx.commit().map_err(e)
    }

    /// Mark a snapshot collected (its folder is gone; its row and history stay).
    pub fn mark_collected(&self, id: &str) -> Result<()> {
        self.conn.execute("UPDATE snapshots SET status = 'collected' WHERE id = ?1", [id]).map_err(|e| self.err(e))?;
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
    let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into());
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
