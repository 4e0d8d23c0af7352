//! The embedding cache: SQLite, keyed by (fingerprint id, content id).
//!
//! Vectors are little-endian `f32` blobs whose length is checked on read. The database runs in
//! WAL mode and every batch is written in one transaction, so a process killed mid-write loses
//! at most the batch in flight and never leaves a torn vector behind.

use crate::{EmbedError, Result};
use ragsnap_core::ContentId;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const SCHEMA_VERSION: i64 = 1;

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
        let err = |e: rusqlite::Error| EmbedError::Cache { path: path.to_path_buf(), message: e.to_string() };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| EmbedError::Cache { path: path.to_path_buf(), message: e.to_string() })?;
        }
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(30)).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(err)?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(err)?;
        if version == 0 {
            conn.execute_batch(
                "CREATE TABLE IF NOT EXISTS vectors (
                     fingerprint TEXT NOT NULL,
                     content_id  TEXT NOT NULL,
                     dims        INTEGER NOT NULL,
                     vector      BLOB NOT NULL,
                     PRIMARY KEY (fingerprint, content_id)
                 ) WITHOUT ROWID;
                 PRAGMA user_version = 1;",
            )
            .map_err(err)?;
        } else if version != SCHEMA_VERSION {
            return Err(EmbedError::Cache {
                path: path.to_path_buf(),
                message: format!("schema version {version}, this build reads {SCHEMA_VERSION}"),
            });
        }
        Ok(EmbeddingCache { path: path.to_path_buf(), conn: Mutex::new(conn) })
    }

    fn err(&self, e: impl ToString) -> EmbedError {
        EmbedError::Cache { path: self.path.clone(), message: e.to_string() }
    }

    /// Look up vectors for `ids` under `fingerprint`; absent ids are absent from the map.
    pub fn get_many(&self, fingerprint: &str, dims: usize, ids: &[&ContentId]) -> Result<HashMap<ContentId, Vec<f32>>> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut stmt = conn
            .prepare_cached("SELECT dims, vector FROM vectors WHERE fingerprint = ?1 AND content_id = ?2")
            .map_err(|e| self.err(e))?;
        let mut out = HashMap::new();
        for id in ids {
            let row: Option<(i64, Vec<u8>)> = stmt
                .query_row(params![fingerprint, id.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .map_err(|e| self.err(e))?;
            if let Some((d, blob)) = row {
                if d as usize != dims || blob.len() != dims * 4 {
                    return Err(self.err(format!(
                        "vector for {id} under {fingerprint} has {} bytes ({d} dims); expected {} dims",
                        blob.len(),
                        dims
                    )));
                }
                let v = blob.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
                out.insert((*id).clone(), v);
            }
        }
        Ok(out)
    }

    /// Store vectors in one transaction.
    pub fn put_many(&self, fingerprint: &str, items: &[(&ContentId, &[f32])]) -> Result<()> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO vectors (fingerprint, content_id, dims, vector) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(|e| self.err(e))?;
            for (id, v) in items {
                let blob: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                stmt.execute(params![fingerprint, id.as_str(), v.len() as i64, blob]).map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// Vectors and bytes per fingerprint.
    pub fn stats(&self) -> Result<Vec<CacheStats>> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut stmt = conn
            .prepare("SELECT fingerprint, COUNT(*), SUM(LENGTH(vector)) FROM vectors GROUP BY fingerprint ORDER BY fingerprint")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(CacheStats {
                    fingerprint: r.get(0)?,
                    vectors: r.get::<_, i64>(1)? as u64,
                    bytes: r.get::<_, i64>(2)? as u64,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<std::result::Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Delete every vector whose fingerprint is not in `keep`; returns how many were deleted.
    pub fn prune(&self, keep: &[String]) -> Result<u64> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let all: Vec<String> = {
            let mut stmt = conn.prepare("SELECT DISTINCT fingerprint FROM vectors").map_err(|e| self.err(e))?;
            let rows = stmt.query_map([], |r| r.get(0)).map_err(|e| self.err(e))?;
            rows.collect::<std::result::Result<_, _>>().map_err(|e| self.err(e))?
        };
        let mut deleted = 0u64;
        for fp in all.iter().filter(|f| !keep.contains(f)) {
            deleted +=
                conn.execute("DELETE FROM vectors WHERE fingerprint = ?1", [fp]).map_err(|e| self.err(e))? as u64;
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_is_keyed_by_fingerprint_and_length_checked() {
        let d = tempfile::tempdir().unwrap();
        let cache = EmbeddingCache::open(&d.path().join("c.sqlite")).unwrap();
        let id = ContentId::of_text("hello");
        let v = vec![0.5f32, -1.25, 3.0];
        cache.put_many("fp@1", &[(&id, &v)]).unwrap();
        assert_eq!(cache.get_many("fp@1", 3, &[&id]).unwrap()[&id], v);
        assert!(cache.get_many("fp@2", 3, &[&id]).unwrap().is_empty(), "another fingerprint must not see it");
        assert!(cache.get_many("fp@1", 4, &[&id]).is_err(), "wrong dims is an error, not a silent read");
        assert_eq!(cache.stats().unwrap()[0].vectors, 1);
        assert_eq!(cache.prune(&["fp@2".into()]).unwrap(), 1);
        assert!(cache.get_many("fp@1", 3, &[&id]).unwrap().is_empty());
    }
}
