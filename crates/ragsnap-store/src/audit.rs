//! The audit log: one append-only row per writer command (rebuild, promote, rollback, pin,
//! unpin, gc, cache prune, repair), with who ran it, what it touched and how it ended. It lives
//! in the catalog as table `audit`, created by the first writer that records an entry, and is
//! protected by triggers as the head history is: rows cannot be changed or deleted.
//!
//! The actor is the name given to [`set_actor`] (the CLI's `--actor`), else `$USER`, else the
//! name of the process's uid, else `uid N`. The head history's `who` column uses the same name.

use crate::{time, Catalog, Result, StoreError};
use rusqlite::{params, Connection, OpenFlags};
use serde::Serialize;
use std::path::Path;
use std::sync::OnceLock;

static ACTOR: OnceLock<String> = OnceLock::new();

const AUDIT_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    command     TEXT NOT NULL,
    snapshot_id TEXT,
    outcome     TEXT NOT NULL,
    detail      TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_append_only_u BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_append_only_d BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
";

/// Name the actor recorded from now on in this process (first call wins). Empty names are
/// ignored.
pub fn set_actor(name: &str) {
    let name = name.trim();
    if !name.is_empty() {
        let _ = ACTOR.set(name.to_string());
    }
}

/// Who is acting: [`set_actor`]'s name, else `$USER`, else the uid's name, else `uid N`.
pub fn actor() -> String {
    if let Some(a) = ACTOR.get() {
        return a.clone();
    }
    if let Some(u) = std::env::var("USER").ok().filter(|u| !u.is_empty()) {
        return u;
    }
    // The process's own /proc entry belongs to its (effective) uid.
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata("/proc/self") {
        Ok(m) => uid_name(m.uid()).unwrap_or_else(|| format!("uid {}", m.uid())),
        Err(_) => "unknown".into(),
    }
}

/// The login name of `uid` from `/etc/passwd`.
fn uid_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let id: u32 = f.nth(1)?.parse().ok()?;
        (id == uid).then(|| name.to_string())
    })
}

/// One row of the audit log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// Sequence number (0 before it is recorded).
    pub seq: i64,
    /// When, RFC 3339.
    pub at: String,
    /// Who ran the command.
    pub actor: String,
    /// The command: `rebuild`, `promote`, `rollback`, `pin`, `unpin`, `gc`, `cache prune`, `repair`.
    pub command: String,
    /// The snapshot it concerned, when one.
    pub snapshot_id: Option<String>,
    /// `ok`, `rejected`, `refused`, `error`, ...
    pub outcome: String,
    /// What happened, in words (reason given, head move, what was removed, the error).
    pub detail: String,
}

impl AuditEntry {
    /// An entry stamped now, by [`actor`].
    pub fn now(command: &str, snapshot_id: Option<&str>, outcome: &str, detail: impl Into<String>) -> Self {
        AuditEntry {
            seq: 0,
            at: time::rfc3339(time::unix_now()),
            actor: actor(),
            command: command.to_string(),
            snapshot_id: snapshot_id.map(str::to_string),
            outcome: outcome.to_string(),
            detail: detail.into(),
        }
    }
}

fn catalog_err(path: &Path, e: rusqlite::Error) -> StoreError {
    StoreError::Catalog { path: path.to_path_buf(), message: e.to_string() }
}

/// Append `entry` to the audit log of the store at `root`. The catalog must exist as a regular
/// file (a missing or linked catalog is never created here); the table is created on first use.
pub fn append(root: &Path, entry: &AuditEntry) -> Result<()> {
    let path = root.join(crate::layout::CATALOG_FILE);
    match crate::layout::entry_metadata(&path)? {
        Some(m) if m.is_file() => {}
        _ => return Err(StoreError::NoStore { path: root.to_path_buf() }),
    }
    let conn = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_NOFOLLOW,
    )
    .map_err(|e| catalog_err(&path, e))?;
    conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(|e| catalog_err(&path, e))?;
    conn.execute_batch(AUDIT_SCHEMA).map_err(|e| catalog_err(&path, e))?;
    conn.execute(
        "INSERT INTO audit (at, actor, command, snapshot_id, outcome, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![entry.at, entry.actor, entry.command, entry.snapshot_id, entry.outcome, entry.detail],
    )
    .map_err(|e| catalog_err(&path, e))?;
    Ok(())
}

impl Catalog {
    /// The audit log, oldest first (empty when no writer has recorded an entry yet).
    pub fn audit(&self) -> Result<Vec<AuditEntry>> {
        let conn = self.connection();
        let e = |x: rusqlite::Error| catalog_err(self.path(), x);
        let exists: bool = conn
            .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'audit'", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(e)?
            > 0;
        if !exists {
            return Ok(Vec::new());
        }
        let mut stmt = conn
            .prepare("SELECT seq, at, actor, command, snapshot_id, outcome, detail FROM audit ORDER BY seq")
            .map_err(e)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(AuditEntry {
                    seq: r.get(0)?,
                    at: r.get(1)?,
                    actor: r.get(2)?,
                    command: r.get(3)?,
                    snapshot_id: r.get(4)?,
                    outcome: r.get(5)?,
                    detail: r.get(6)?,
                })
            })
            .map_err(e)?;
        rows.collect::<std::result::Result<_, _>>().map_err(e)
    }
}
