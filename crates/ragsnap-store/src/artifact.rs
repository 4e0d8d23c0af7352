//! Framing shared by every binary artifact of a snapshot.
//!
//! ```text
//! header  (16 bytes): magic [u8; 8] | format version u32 LE | flags u32 LE (0)
//! payload (n bytes)
//! footer  (48 bytes): payload length u64 LE | blake3(header ‖ payload) [u8; 32] | b"RSNPEND1"
//! ```
//! A reader checks the magic, the version, the total length and the checksum before it hands
//! a single payload byte to a parser.

use crate::{Result, StoreError};
use ragsnap_core::FormatVersion;
use std::io::Read;
use std::path::Path;

/// Size of the header.
pub const HEADER_LEN: usize = 16;
/// Size of the footer.
pub const FOOTER_LEN: usize = 48;
/// Footer magic.
pub const FOOTER_MAGIC: &[u8; 8] = b"RSNPEND1";

/// Artifact kinds and their magic numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArtifactKind {
    /// Chunk metadata table.
    Chunks,
    /// Row-major f32 vectors.
    Vectors,
    /// hnsw_rs graph + data dump.
    Hnsw,
    /// Document list (JSON payload).
    Documents,
    /// The build report (JSON payload); not needed to answer queries.
    Report,
    /// The lexical (BM25) index over the chunk texts.
    Lexical,
    /// The id map of an updated HNSW graph: the row each graph point answers for, or deleted.
    HnswIds,
}

impl ArtifactKind {
    /// The 8-byte magic.
    pub fn magic(self) -> &'static [u8; 8] {
        match self {
            ArtifactKind::Chunks => b"RSNPCHNK",
            ArtifactKind::Vectors => b"RSNPVECS",
            ArtifactKind::Hnsw => b"RSNPHNSW",
            ArtifactKind::Documents => b"RSNPDOCS",
            ArtifactKind::Report => b"RSNPRPRT",
            ArtifactKind::Lexical => b"RSNPLEXI",
            ArtifactKind::HnswIds => b"RSNPHIDS",
        }
    }

    /// Name used in the manifest.
    pub fn name(self) -> &'static str {
        match self {
            ArtifactKind::Chunks => "chunks",
            ArtifactKind::Vectors => "vectors",
            ArtifactKind::Hnsw => "hnsw",
            ArtifactKind::Documents => "documents",
            ArtifactKind::Report => "report",
            ArtifactKind::Lexical => "lexical",
            ArtifactKind::HnswIds => "hnsw-ids",
        }
    }

    /// Parse a manifest kind name.
    pub fn from_name(s: &str) -> Option<Self> {
        [
            ArtifactKind::Chunks,
            ArtifactKind::Vectors,
            ArtifactKind::Hnsw,
            ArtifactKind::Documents,
            ArtifactKind::Report,
            ArtifactKind::Lexical,
            ArtifactKind::HnswIds,
        ]
        .into_iter()
        .find(|k| k.name() == s)
    }
}

/// Frame `payload` as an artifact of `kind`.
pub fn frame(kind: ArtifactKind, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len() + FOOTER_LEN);
    out.extend_from_slice(kind.magic());
    out.extend_from_slice(&FormatVersion::CURRENT.0.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(payload);
    let digest = blake3::hash(&out);
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(digest.as_bytes());
    out.extend_from_slice(FOOTER_MAGIC);
    out
}

/// Check a framed artifact held in memory and return its payload.
pub fn unframe<'a>(path: &Path, kind: ArtifactKind, bytes: &'a [u8]) -> Result<&'a [u8]> {
    if bytes.len() < HEADER_LEN + FOOTER_LEN {
        return Err(StoreError::malformed(path, format!("{} bytes is shorter than an empty artifact", bytes.len())));
    }
    if &bytes[..8] != kind.magic() {
        return Err(StoreError::malformed(
            path,
            format!(
                "bad magic {:?}, expected {:?}",
                String::from_utf8_lossy(&bytes[..8]),
                String::from_utf8_lossy(kind.magic())
            ),
        ));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if !FormatVersion(version).is_readable() {
        return Err(StoreError::UnsupportedVersion {
            path: path.to_path_buf(),
            found: version,
            oldest: FormatVersion::OLDEST_READABLE.0,
            current: FormatVersion::CURRENT.0,
        });
    }
    let footer = &bytes[bytes.len() - FOOTER_LEN..];
    if &footer[40..48] != FOOTER_MAGIC {
        return Err(StoreError::malformed(path, "bad footer magic (truncated or overwritten?)"));
    }
    let len = u64::from_le_bytes(footer[..8].try_into().expect("8 bytes"));
    let expected_len = (bytes.len() - HEADER_LEN - FOOTER_LEN) as u64;
    if len != expected_len {
        return Err(StoreError::malformed(path, format!("footer says {len} payload bytes, file holds {expected_len}")));
    }
    let body = &bytes[..bytes.len() - FOOTER_LEN];
    let found = blake3::hash(body);
    if found.as_bytes() != &footer[8..40] {
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            expected: hex(&footer[8..40]),
            found: found.to_hex().to_string(),
        });
    }
    Ok(&bytes[HEADER_LEN..bytes.len() - FOOTER_LEN])
}

/// Read a whole artifact file, refusing one larger than `max_len` before allocating.
pub fn read_file(path: &Path, max_len: u64) -> Result<Vec<u8>> {
    let f = std::fs::File::open(path).map_err(|e| StoreError::io(path, e))?;
    let len = f.metadata().map_err(|e| StoreError::io(path, e))?.len();
    if len > max_len {
        return Err(StoreError::malformed(path, format!("{len} bytes, more than the {max_len} the manifest allows")));
    }
    let mut buf = Vec::with_capacity(len as usize);
    f.take(max_len).read_to_end(&mut buf).map_err(|e| StoreError::io(path, e))?;
    Ok(buf)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_roundtrip_and_every_bit_flip_is_caught() {
        let p = Path::new("x.bin");
        let framed = frame(ArtifactKind::Vectors, b"hello payload");
        assert_eq!(unframe(p, ArtifactKind::Vectors, &framed).unwrap(), b"hello payload");
        assert!(unframe(p, ArtifactKind::Chunks, &framed).is_err(), "wrong kind");
        for bit in 0..framed.len() * 8 {
            let mut b = framed.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(unframe(p, ArtifactKind::Vectors, &b).is_err(), "flip of bit {bit} went unnoticed");
        }
        for cut in 0..framed.len() {
            assert!(unframe(p, ArtifactKind::Vectors, &framed[..cut]).is_err(), "truncation at {cut}");
        }
    }
}
