//! Payload formats of the snapshot artifacts (inside the framing of [`crate::artifact`]).
//!
//! * chunks:    `u64 count | count × (u64 offset, u64 length) | records`, each record the JSON of
//!   one [`Chunk`]; offsets are relative to the start of the records. The offset table is read
//!   at open; records are read one at a time with positioned reads.
//! * vectors:   `u32 dims | u64 count | count × dims × f32`, all little-endian.
//! * documents: JSON array of [`DocumentEntry`].

use crate::artifact::{self, ArtifactKind, FOOTER_LEN, HEADER_LEN};
use crate::{Result, StoreError};
use ragsnap_core::Chunk;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// One source document of a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentEntry {
    /// Path relative to its source root (with the source's prefix when there are several).
    pub source_path: String,
    /// blake3 of the raw bytes read.
    pub content_blake3: String,
    /// Public URL.
    pub url: Option<String>,
    /// Page title.
    pub title: Option<String>,
    /// First chunk row of this document.
    pub first_chunk: u32,
    /// Number of chunks.
    pub chunk_count: u32,
    /// blake3 over everything the chunker read for this document (its sanitised, boilerplate-free
    /// content, URL, chunker version and parameters, embedding fingerprint). A later build whose
    /// key for the same document is equal reuses these chunks instead of chunking again. Absent
    /// in snapshots written before incremental chunking; such documents are simply chunked again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_key: Option<String>,
}

/// Encode the chunk table payload.
pub fn encode_chunks(chunks: &[Chunk]) -> Vec<u8> {
    let records: Vec<Vec<u8>> = chunks.iter().map(|c| serde_json::to_vec(c).expect("chunk serialises")).collect();
    let mut out = Vec::with_capacity(8 + 16 * chunks.len() + records.iter().map(Vec::len).sum::<usize>());
    out.extend_from_slice(&(chunks.len() as u64).to_le_bytes());
    let mut off = 0u64;
    for r in &records {
        out.extend_from_slice(&off.to_le_bytes());
        out.extend_from_slice(&(r.len() as u64).to_le_bytes());
        off += r.len() as u64;
    }
    for r in records {
        out.extend_from_slice(&r);
    }
    out
}

/// Encode the vectors payload.
pub fn encode_vectors(dims: usize, rows: &[Vec<f32>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + rows.len() * dims * 4);
    out.extend_from_slice(&(dims as u32).to_le_bytes());
    out.extend_from_slice(&(rows.len() as u64).to_le_bytes());
    for r in rows {
        assert_eq!(r.len(), dims, "vector of the wrong dimension");
        for x in r {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    out
}

/// Decode the vectors payload into `(dims, row-major floats)`, checking every size.
pub fn decode_vectors(path: &Path, payload: &[u8], expect_rows: usize, expect_dims: usize) -> Result<Vec<f32>> {
    if payload.len() < 12 {
        return Err(StoreError::malformed(path, "vectors payload shorter than its header"));
    }
    let dims = u32::from_le_bytes(payload[..4].try_into().expect("4")) as usize;
    let rows = u64::from_le_bytes(payload[4..12].try_into().expect("8"));
    if dims != expect_dims || rows != expect_rows as u64 {
        return Err(StoreError::malformed(
            path,
            format!("{rows} vectors of {dims} dims; the manifest says {expect_rows} of {expect_dims}"),
        ));
    }
    let body = &payload[12..];
    if body.len() as u64 != rows * dims as u64 * 4 {
        return Err(StoreError::malformed(path, format!("{} bytes of vector data for {rows}×{dims}", body.len())));
    }
    Ok(body.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

/// Decode the documents payload.
pub fn decode_documents(path: &Path, payload: &[u8]) -> Result<Vec<DocumentEntry>> {
    serde_json::from_slice(payload).map_err(|e| StoreError::malformed(path, format!("documents: {e}")))
}

/// A chunk table opened for positioned reads: only the offset table lives in memory.
pub struct ChunkTable {
    path: PathBuf,
    file: File,
    /// (absolute offset, length) of each record.
    entries: Vec<(u64, u64)>,
}

/// Largest single chunk record accepted.
const MAX_RECORD: u64 = 16 << 20;

impl ChunkTable {
    /// Open a chunk table whose whole-file checksum the caller has verified. Checks the frame,
    /// the count, and that every record lies inside the payload.
    pub fn open(path: &Path, expect_rows: usize) -> Result<Self> {
        let file = File::open(path).map_err(|e| StoreError::io(path, e))?;
        let len = file.metadata().map_err(|e| StoreError::io(path, e))?.len();
        if len < (HEADER_LEN + FOOTER_LEN + 8) as u64 {
            return Err(StoreError::malformed(path, "too short for a chunk table"));
        }
        let mut head = [0u8; HEADER_LEN + 8];
        file.read_exact_at(&mut head, 0).map_err(|e| StoreError::io(path, e))?;
        if &head[..8] != ArtifactKind::Chunks.magic() {
            return Err(StoreError::malformed(path, "bad magic for a chunk table"));
        }
        let mut footer = [0u8; FOOTER_LEN];
        file.read_exact_at(&mut footer, len - FOOTER_LEN as u64).map_err(|e| StoreError::io(path, e))?;
        if &footer[40..] != artifact::FOOTER_MAGIC {
            return Err(StoreError::malformed(path, "bad footer magic"));
        }
        let payload_len = len - (HEADER_LEN + FOOTER_LEN) as u64;
        let count = u64::from_le_bytes(head[HEADER_LEN..].try_into().expect("8"));
        if count != expect_rows as u64 || 8 + count.saturating_mul(16) > payload_len {
            return Err(StoreError::malformed(
                path,
                format!("chunk table holds {count} rows; the manifest says {expect_rows}"),
            ));
        }
        let mut table = vec![0u8; count as usize * 16];
        file.read_exact_at(&mut table, (HEADER_LEN + 8) as u64).map_err(|e| StoreError::io(path, e))?;
        let records_start = (HEADER_LEN + 8) as u64 + count * 16;
        let records_len = payload_len - 8 - count * 16;
        let mut entries = Vec::with_capacity(count as usize);
        for e in table.chunks_exact(16) {
            let off = u64::from_le_bytes(e[..8].try_into().expect("8"));
            let n = u64::from_le_bytes(e[8..].try_into().expect("8"));
            if n > MAX_RECORD || off.checked_add(n).is_none_or(|end| end > records_len) {
                return Err(StoreError::malformed(path, format!("record at {off}+{n} lies outside the table")));
            }
            entries.push((records_start + off, n));
        }
        Ok(ChunkTable { path: path.to_path_buf(), file, entries })
    }

    /// Number of chunks.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Read chunk `row`.
    pub fn get(&self, row: usize) -> Result<Chunk> {
        let &(off, n) =
            self.entries.get(row).ok_or_else(|| StoreError::malformed(&self.path, format!("no chunk row {row}")))?;
        let mut buf = vec![0u8; n as usize];
        self.file.read_exact_at(&mut buf, off).map_err(|e| StoreError::io(&self.path, e))?;
        serde_json::from_slice(&buf).map_err(|e| StoreError::malformed(&self.path, format!("chunk row {row}: {e}")))
    }
}
