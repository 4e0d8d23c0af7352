//! The embedding cache: SQLite, keyed by (fingerprint id, content id).
//!
//! Vectors are little-endian `f32` blobs. Every row carries a checksum that binds its vector to
//! its key: blake3 over the fingerprint id, the content id, the dimension and the vector bytes
//! ([`row_checksum`]). A row is served only when its checksum matches, its length is right and
//! every component is finite (and, for a model that normalises, its length is 1 within
//! [`crate::UNIT_NORM_TOLERANCE`]); any other row is reported as a [`RowProblem`] and treated
//! as a miss, so the caller embeds the text again and the row is rewritten. Rows written by
//! schema 1 (no checksum) are migrated in place: they stay, without a checksum, and are misses
//! until rewritten.
//!
//! The database runs in WAL mode and every batch is written in one transaction, so a process
//! killed mid-write loses at most the batch in flight and never leaves a torn vector behind.

use crate::{EmbedError, Result};
use ragsnap_core::ContentId;
use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const SCHEMA_VERSION: i64 = 2;

/// A SQLite error as an [`EmbedError`]: [`EmbedError::CacheCorrupt`] when SQLite says the file
/// is not a database or is malformed, [`EmbedError::Cache`] otherwise.
fn db_error(path: &Path, e: rusqlite::Error) -> EmbedError {
    use rusqlite::ErrorCode;
    if let rusqlite::Error::SqliteFailure(f, _) = &e {
        if matches!(f.code, ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) {
            return EmbedError::CacheCorrupt { path: path.to_path_buf(), message: e.to_string() };
        }
    }
    EmbedError::Cache { path: path.to_path_buf(), message: e.to_string() }
}

/// The checksum stored with a cached vector: blake3 (hex) over a domain tag, the fingerprint
/// id, the content id, the dimension (u64 little-endian) and the vector's little-endian bytes.
pub fn row_checksum(fingerprint: &str, content_id: &str, vector_le: &[u8]) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"ragsnap cache row 1\0");
    h.update(fingerprint.as_bytes());
    h.update(b"\0");
    h.update(content_id.as_bytes());
    h.update(b"\0");
    h.update(&((vector_le.len() / 4) as u64).to_le_bytes());
    h.update(vector_le);
    h.finalize().to_hex().to_string()
}

/// Why a cached row was not served.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowProblem {
    /// Written before rows carried checksums (schema 1); re-embedded and rewritten.
    NoChecksum,
    /// The checksum does not match the row's key and vector (a changed or moved vector).
    ChecksumMismatch,
    /// Wrong length, a NaN or infinite component, or not unit length for a normalising model.
    BadVector(String),
}

/// What [`EmbeddingCache::lookup`] found.
#[derive(Debug, Default)]
pub struct CacheLookup {
    /// Rows that passed every check.
    pub hits: HashMap<ContentId, Vec<f32>>,
    /// Rows that exist but were not served, and why.
    pub rejected: Vec<(ContentId, RowProblem)>,
}

/// Per-fingerprint numbers, for `ragsnap cache stats`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CacheStats {
    /// Fingerprint id.
    pub fingerprint: String,
    /// Vectors stored for it.
    pub vectors: u64,
    /// Bytes of vector data.
    pub bytes: u64,
}

/// A persistent map from (fingerprint id, content id) to vector.
pub struct EmbeddingCache {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl EmbeddingCache {
    /// Open (creating if needed) the cache database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let err = |e: rusqlite::Error| db_error(path, e);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| EmbedError::Cache { path: path.to_path_buf(), message: e.to_string() })?;
        }
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(30)).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(err)?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(err)?;
        match version {
            0 => conn
                .execute_batch(
                    "CREATE TABLE IF NOT EXISTS vectors (
                         fingerprint TEXT NOT NULL,
                         content_id  TEXT NOT NULL,
                         dims        INTEGER NOT NULL,
                         vector      BLOB NOT NULL,
                         checksum    TEXT,
                         PRIMARY KEY (fingerprint, content_id)
                     ) WITHOUT ROWID;
                     PRAGMA user_version = 2;",
                )
                .map_err(err)?,
            // Schema 1 had no checksum column: add it; old rows are misses until rewritten.
            1 => conn
                .execute_batch(
                    "BEGIN IMMEDIATE;
                     ALTER TABLE vectors ADD COLUMN checksum TEXT;
                     PRAGMA user_version = 2;
                     COMMIT;",
                )
                .map_err(err)?,
            SCHEMA_VERSION => {}
            _ => {
                return Err(EmbedError::Cache {
                    path: path.to_path_buf(),
                    message: format!("schema version {version}, this build reads 1 and {SCHEMA_VERSION}"),
                })
            }
        }
        Ok(EmbeddingCache { path: path.to_path_buf(), conn: Mutex::new(conn) })
    }

    fn err(&self, e: impl ToString) -> EmbedError {
        EmbedError::Cache { path: self.path.clone(), message: e.to_string() }
    }

    fn db_err(&self, e: rusqlite::Error) -> EmbedError {
        db_error(&self.path, e)
    }

    /// Move a damaged cache file (and its WAL and shared-memory files) aside as
    /// `<name>.corrupt-<unix seconds>`, keeping it for inspection; returns the new path of the
    /// database file. The next [`EmbeddingCache::open`] starts an empty cache.
    pub fn quarantine(path: &Path) -> Result<PathBuf> {
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let target = path.with_file_name(format!("{name}.corrupt-{secs}"));
        for suffix in ["", "-wal", "-shm"] {
            let from = path.with_file_name(format!("{name}{suffix}"));
            let to = path.with_file_name(format!("{name}.corrupt-{secs}{suffix}"));
            match std::fs::rename(&from, &to) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !suffix.is_empty() => {}
                Err(e) => return Err(EmbedError::Cache { path: from, message: format!("moving it aside: {e}") }),
            }
        }
        Ok(target)
    }

    /// Look up vectors for `ids` under `fingerprint`; absent ids are absent from the map, and
    /// so is every row that fails a check (see [`EmbeddingCache::lookup`] for why).
    pub fn get_many(&self, fingerprint: &str, dims: usize, ids: &[&ContentId]) -> Result<HashMap<ContentId, Vec<f32>>> {
        Ok(self.lookup(fingerprint, dims, false, ids)?.hits)
    }

    /// Look up vectors for `ids` under `fingerprint`, serving only rows whose checksum matches
    /// and whose vector has no [`crate::vector_problem`] (`normalized`: the model normalises, so
    /// a stored vector must have unit length).
    pub fn lookup(&self, fingerprint: &str, dims: usize, normalized: bool, ids: &[&ContentId]) -> Result<CacheLookup> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut stmt = conn
            .prepare_cached("SELECT vector, checksum FROM vectors WHERE fingerprint = ?1 AND content_id = ?2")
            .map_err(|e| self.db_err(e))?;
        let mut out = CacheLookup::default();
        for id in ids {
            // Columns are read as whatever SQLite holds, so a value of the wrong type (a hand
            // edit, a foreign writer) is one bad row, not an error that stops every build.
            let row: Option<(Value, Value)> = stmt
                .query_row(params![fingerprint, id.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .map_err(|e| self.db_err(e))?;
            let Some((blob, checksum)) = row else { continue };
            let Value::Blob(blob) = blob else {
                out.rejected.push(((*id).clone(), RowProblem::BadVector("the vector is not a blob".into())));
                continue;
            };
            let checksum = match checksum {
                Value::Null => None,
                Value::Text(c) => Some(c),
                _ => Some(String::new()), // never equal to a checksum
            };
            let problem = match checksum {
                None => Some(RowProblem::NoChecksum),
                Some(c) if c != row_checksum(fingerprint, id.as_str(), &blob) => Some(RowProblem::ChecksumMismatch),
                Some(_) if blob.len() % 4 != 0 => Some(RowProblem::BadVector(format!("{} bytes", blob.len()))),
                Some(_) => None,
            };
            if let Some(p) = problem {
                out.rejected.push(((*id).clone(), p));
                continue;
            }
            let v: Vec<f32> = blob.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            match crate::vector_problem(&v, dims, normalized) {
                Some(p) => out.rejected.push(((*id).clone(), RowProblem::BadVector(p))),
                None => {
                    out.hits.insert((*id).clone(), v);
                }
            }
        }
        Ok(out)
    }

    /// Store vectors in one transaction, each with its checksum. A vector with a
    /// [`crate::vector_problem`] (length aside) is refused: nothing of the batch is written.
    pub fn put_many(&self, fingerprint: &str, items: &[(&ContentId, &[f32])]) -> Result<()> {
        for (id, v) in items {
            if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                return Err(self.err(format!("refusing to store vector for {id}: component {i} is {}", v[i])));
            }
        }
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction().map_err(|e| self.db_err(e))?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO vectors (fingerprint, content_id, dims, vector, checksum)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(|e| self.db_err(e))?;
            for (id, v) in items {
                let blob: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                let sum = row_checksum(fingerprint, id.as_str(), &blob);
                stmt.execute(params![fingerprint, id.as_str(), v.len() as i64, blob, sum])
                    .map_err(|e| self.db_err(e))?;
            }
        }
        tx.commit().map_err(|e| self.db_err(e))
    }

    /// Delete the rows of `ids` under `fingerprint` (rows found bad, so that they are gone even
    /// when the build stops before writing their replacements); returns how many were deleted.
    pub fn delete_many(&self, fingerprint: &str, ids: &[&ContentId]) -> Result<u64> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction().map_err(|e| self.db_err(e))?;
        let mut n = 0u64;
        {
            let mut stmt = tx
                .prepare_cached("DELETE FROM vectors WHERE fingerprint = ?1 AND content_id = ?2")
                .map_err(|e| self.db_err(e))?;
            for id in ids {
                n += stmt.execute(params![fingerprint, id.as_str()]).map_err(|e| self.db_err(e))? as u64;
            }
        }
        tx.commit().map_err(|e| self.db_err(e))?;
        Ok(n)
    }

    /// Vectors and bytes per fingerprint.
    pub fn stats(&self) -> Result<Vec<CacheStats>> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut stmt = conn
            .prepare("SELECT fingerprint, COUNT(*), SUM(LENGTH(vector)) FROM vectors GROUP BY fingerprint ORDER BY fingerprint")
            .map_err(|e| self.db_err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(CacheStats {
                    fingerprint: r.get(0)?,
                    vectors: r.get::<_, i64>(1)? as u64,
                    bytes: r.get::<_, i64>(2)? as u64,
                })
            })
            .map_err(|e| self.db_err(e))?;
        rows.collect::<std::result::Result<_, _>>().map_err(|e| self.db_err(e))
    }

    /// Delete every vector whose fingerprint is not in `keep`; returns how many were deleted.
    pub fn prune(&self, keep: &[String]) -> Result<u64> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let all: Vec<String> = {
            let mut stmt = conn.prepare("SELECT DISTINCT fingerprint FROM vectors").map_err(|e| self.db_err(e))?;
            let rows = stmt.query_map([], |r| r.get(0)).map_err(|e| self.db_err(e))?;
            rows.collect::<std::result::Result<_, _>>().map_err(|e| self.db_err(e))?
        };
        let mut deleted = 0u64;
        for fp in all.iter().filter(|f| !keep.contains(f)) {
            deleted +=
                conn.execute("DELETE FROM vectors WHERE fingerprint = ?1", [fp]).map_err(|e| self.db_err(e))? as u64;
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn roundtrip_is_keyed_by_fingerprint_and_length_checked() {
        let d = tempfile::tempdir().unwrap();
        let cache = EmbeddingCache::open(&d.path().join("c.sqlite")).unwrap();
        let id = ContentId::of_text("hello");
        let v = vec![0.5f32, -1.25, 3.0];
        cache.put_many("fp@1", &[(&id, &v)]).unwrap();
        assert_eq!(cache.get_many("fp@1", 3, &[&id]).unwrap()[&id], v);
        assert!(cache.get_many("fp@2", 3, &[&id]).unwrap().is_empty(), "another fingerprint must not see it");
        let wrong_dims = cache.lookup("fp@1", 4, false, &[&id]).unwrap();
        assert!(wrong_dims.hits.is_empty(), "a vector of the wrong length is never served");
        assert!(matches!(wrong_dims.rejected[0].1, RowProblem::BadVector(_)));
        assert!(!cache.lookup("fp@1", 3, true, &[&id]).unwrap().rejected.is_empty(), "not unit length");
        assert_eq!(cache.stats().unwrap()[0].vectors, 1);
        assert_eq!(cache.prune(&["fp@2".into()]).unwrap(), 1);
        assert!(cache.get_many("fp@1", 3, &[&id]).unwrap().is_empty());
    }

    #[test]
    fn a_row_holding_values_of_the_wrong_type_is_rejected_not_an_error() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("c.sqlite");
        let cache = EmbeddingCache::open(&path).unwrap();
        let (a, b) = (ContentId::of_text("a"), ContentId::of_text("b"));
        let (va, vb) = (unit(&[1.0, 2.0, 3.0]), unit(&[3.0, -1.0, 0.5]));
        cache.put_many("fp", &[(&a, &va), (&b, &vb)]).unwrap();
        let conn = Connection::open(&path).unwrap();
        conn.execute("UPDATE vectors SET vector = 'x' WHERE content_id = ?1", [a.as_str()]).unwrap();
        conn.execute("UPDATE vectors SET checksum = 7 WHERE content_id = ?1", [b.as_str()]).unwrap();
        let found = cache.lookup("fp", 3, true, &[&a, &b]).unwrap();
        assert!(found.hits.is_empty(), "neither row may be served: {:?}", found.hits.keys());
        assert_eq!(found.rejected.len(), 2);
        assert!(matches!(found.rejected[0].1, RowProblem::BadVector(_)));
        assert_eq!(found.rejected[1].1, RowProblem::ChecksumMismatch);
    }

    #[test]
    fn swapped_changed_and_nan_rows_are_rejected_not_served() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("c.sqlite");
        let cache = EmbeddingCache::open(&path).unwrap();
        let (a, b, c) = (ContentId::of_text("a"), ContentId::of_text("b"), ContentId::of_text("c"));
        let (va, vb, vc) = (unit(&[1.0, 2.0, 3.0]), unit(&[3.0, -1.0, 0.5]), unit(&[0.0, 1.0, 1.0]));
        cache.put_many("fp", &[(&a, &va), (&b, &vb), (&c, &vc)]).unwrap();
        assert_eq!(cache.lookup("fp", 3, true, &[&a, &b, &c]).unwrap().hits.len(), 3);
        // Through a second connection, as any other process would: swap a's and b's whole rows'
        // payload (vector and checksum), and put a NaN into c's vector.
        let conn = Connection::open(&path).unwrap();
        let row = |id: &ContentId| -> (Vec<u8>, String) {
            conn.query_row("SELECT vector, checksum FROM vectors WHERE content_id = ?1", [id.as_str()], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap()
        };
        let (ra, rb) = (row(&a), row(&b));
        for (id, (v, s)) in [(&a, rb), (&b, ra)] {
            conn.execute(
                "UPDATE vectors SET vector = ?1, checksum = ?2 WHERE content_id = ?3",
                params![v, s, id.as_str()],
            )
            .unwrap();
        }
        let mut nan = row(&c).0;
        nan[0..4].copy_from_slice(&f32::NAN.to_le_bytes());
        conn.execute("UPDATE vectors SET vector = ?1 WHERE content_id = ?2", params![nan, c.as_str()]).unwrap();
        let got = cache.lookup("fp", 3, true, &[&a, &b, &c]).unwrap();
        assert!(got.hits.is_empty(), "no tampered row may be served: {:?}", got.hits.keys().collect::<Vec<_>>());
        assert_eq!(got.rejected.len(), 3);
        assert!(got.rejected.iter().all(|(_, p)| *p == RowProblem::ChecksumMismatch), "{:?}", got.rejected);
        // A NaN with a checksum made to match is still refused, as a bad vector.
        conn.execute(
            "UPDATE vectors SET checksum = ?1 WHERE content_id = ?2",
            params![row_checksum("fp", c.as_str(), &nan), c.as_str()],
        )
        .unwrap();
        let got = cache.lookup("fp", 3, true, &[&c]).unwrap();
        assert!(matches!(&got.rejected[0].1, RowProblem::BadVector(m) if m.contains("NaN")), "{:?}", got.rejected);
        // Rewriting repairs; deleting removes.
        cache.put_many("fp", &[(&a, &va), (&b, &vb)]).unwrap();
        assert_eq!(cache.lookup("fp", 3, true, &[&a, &b]).unwrap().hits[&b], vb);
        assert_eq!(cache.delete_many("fp", &[&c]).unwrap(), 1);
        assert!(cache.put_many("fp", &[(&c, &[f32::INFINITY, 0.0, 0.0])]).is_err(), "non-finite is never stored");
    }

    #[test]
    fn a_damaged_file_is_cache_corrupt_and_can_be_moved_aside() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("c.sqlite");
        let id = ContentId::of_text("x");
        EmbeddingCache::open(&path).unwrap().put_many("fp", &[(&id, &[1.0f32, 0.0])]).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[..64].fill(b'x');
        std::fs::write(&path, bytes).unwrap();
        match EmbeddingCache::open(&path) {
            Err(EmbedError::CacheCorrupt { path: p, .. }) => assert_eq!(p, path),
            other => panic!("expected CacheCorrupt, got {:?}", other.err()),
        }
        let aside = EmbeddingCache::quarantine(&path).unwrap();
        assert!(aside.is_file() && !path.exists());
        assert!(EmbeddingCache::open(&path).unwrap().get_many("fp", 2, &[&id]).unwrap().is_empty());
    }

    #[test]
    fn schema_1_caches_are_migrated_and_their_rows_are_misses_until_rewritten() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("c.sqlite");
        let id = ContentId::of_text("old row");
        let v = unit(&[1.0, 1.0]);
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE vectors (fingerprint TEXT NOT NULL, content_id TEXT NOT NULL, dims INTEGER NOT NULL,
                 vector BLOB NOT NULL, PRIMARY KEY (fingerprint, content_id)) WITHOUT ROWID;
                 PRAGMA user_version = 1;",
            )
            .unwrap();
            let blob: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            conn.execute("INSERT INTO vectors VALUES ('fp', ?1, 2, ?2)", params![id.as_str(), blob]).unwrap();
        }
        let cache = EmbeddingCache::open(&path).unwrap();
        let got = cache.lookup("fp", 2, true, &[&id]).unwrap();
        assert!(got.hits.is_empty());
        assert_eq!(got.rejected, vec![(id.clone(), RowProblem::NoChecksum)]);
        cache.put_many("fp", &[(&id, &v)]).unwrap();
        assert_eq!(cache.lookup("fp", 2, true, &[&id]).unwrap().hits[&id], v);
        drop(cache);
        // Opening again does not migrate twice.
        assert_eq!(EmbeddingCache::open(&path).unwrap().get_many("fp", 2, &[&id]).unwrap().len(), 1);
    }
}
