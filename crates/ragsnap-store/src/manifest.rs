//! `MANIFEST.json`: everything about one snapshot. See `docs/format.md`.

use crate::format::{ReaderFeature, WriterFeature};
use crate::{Result, StoreError};
use ragsnap_core::{Canary, EmbeddingFingerprint, FormatVersion, IndexKind};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// File name of the manifest inside a snapshot folder.
pub const MANIFEST_FILE: &str = "MANIFEST.json";
/// Largest manifest this build will read.
pub const MAX_MANIFEST_BYTES: u64 = 64 << 20;
/// Reader features this build understands; a manifest naming any other is refused.
pub const KNOWN_READER_FEATURES: [&str; ReaderFeature::ALL.len()] = {
    let mut out = [""; ReaderFeature::ALL.len()];
    let mut i = 0;
    while i < out.len() {
        out[i] = ReaderFeature::ALL[i].as_str();
        i += 1;
    }
    out
};
/// Writer features this build understands.
pub const KNOWN_WRITER_FEATURES: [&str; WriterFeature::ALL.len()] = [WriterFeature::StagedRenameCommit.as_str()];

/// One file of a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Plain file name inside the snapshot folder.
    pub name: String,
    /// Artifact kind (`chunks`, `vectors`, `hnsw`, `documents`).
    pub kind: String,
    /// Size in bytes.
    pub size: u64,
    /// blake3 of the whole file.
    pub blake3: String,
}

/// Chunker identity and parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChunkerInfo {
    /// Chunker version.
    pub version: u32,
    /// Target chunk size in model tokens.
    pub target_tokens: usize,
    /// Hard maximum in model tokens.
    pub max_tokens: usize,
    /// Sections under this size merge into a neighbour.
    pub min_tokens: usize,
}

/// Index kind, parameters and what tuning measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IndexInfo {
    /// `exact` or `hnsw`.
    pub kind: IndexKind,
    /// HNSW `M` (0 for exact).
    pub m: usize,
    /// HNSW `ef_construction` (0 for exact).
    pub ef_construction: usize,
    /// Chosen `ef_search` (0 for exact).
    pub ef_search: usize,
    /// Measured recall@k on the sample.
    pub recall: f64,
    /// Target recall.
    pub target_recall: f64,
    /// Sample queries.
    pub sample: usize,
    /// k of recall@k.
    pub k: usize,
}

/// Score calibration summary: quantiles 0%, 5%, … 100% of the recall sample's top-1 score
/// against another vector.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// 21 quantiles, ascending.
    pub top1_quantiles: Vec<f32>,
    /// Probe score distributions and the floors chosen from them (absent in older snapshots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<crate::calibration::RefusalCalibration>,
}

/// Counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Source documents that produced chunks.
    pub documents: usize,
    /// Chunks.
    pub chunks: usize,
    /// Vectors (equals chunks).
    pub vectors: usize,
}

/// The manifest of one snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Snapshot format version.
    pub format_version: FormatVersion,
    /// Features a reader must understand.
    pub reader_features: Vec<String>,
    /// Features a writer must understand to modify this snapshot (none do: snapshots are immutable).
    pub writer_features: Vec<String>,
    /// Snapshot id.
    pub snapshot_id: String,
    /// Id of the head this build started from.
    pub parent_id: Option<String>,
    /// Creation time, RFC 3339 UTC.
    pub created_at: String,
    /// ragsnap version that wrote it.
    pub tool_version: String,
    /// blake3 over the sorted (path, content hash) pairs of the source.
    pub source_digest: String,
    /// blake3 over everything that decides the snapshot's content: source digest, each
    /// document's chunk key, chunker version and sizes, the settings that change what is read,
    /// kept or indexed, the embedding fingerprint and the tool version. A rebuild whose key
    /// equals head's makes no new snapshot. Absent in snapshots written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_key: Option<String>,
    /// Chunker identity.
    pub chunker: ChunkerInfo,
    /// Embedding identity.
    pub fingerprint: EmbeddingFingerprint,
    /// Canary texts and their vectors.
    pub canaries: Vec<Canary>,
    /// Index parameters and measured recall.
    pub index: IndexInfo,
    /// Counts.
    pub counts: Counts,
    /// Top-1 score distribution.
    pub calibration: Calibration,
    /// Every file of the snapshot except the manifest itself.
    pub files: Vec<FileEntry>,
}

/// Whether `name` is a plain file name: no separators, no `..`, not hidden, short, ASCII.
pub fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl Manifest {
    /// Parse and validate a manifest's bytes. Nothing in it is trusted until this passes.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Self> {
        let refuse = |m: String| StoreError::ManifestRefused { path: path.to_path_buf(), message: m };
        // Peek at the version before the full parse, so an old or future manifest gets the
        // version error rather than a field error.
        let peek: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| refuse(format!("not JSON: {e}")))?;
        let version =
            peek.get("format_version").and_then(|v| v.as_u64()).ok_or_else(|| refuse("no format_version".into()))?;
        let version = u32::try_from(version).map_err(|_| refuse(format!("format_version {version}")))?;
        if !FormatVersion(version).is_readable() {
            return Err(StoreError::UnsupportedVersion {
                path: path.to_path_buf(),
                found: version,
                oldest: FormatVersion::OLDEST_READABLE.0,
                current: FormatVersion::CURRENT.0,
            });
        }
        let m: Manifest = serde_json::from_value(peek).map_err(|e| refuse(format!("bad field: {e}")))?;
        for f in &m.reader_features {
            if !KNOWN_READER_FEATURES.contains(&f.as_str()) {
                return Err(refuse(format!("unknown reader feature {f:?}")));
            }
        }
        for f in &m.writer_features {
            if !KNOWN_WRITER_FEATURES.contains(&f.as_str()) {
                return Err(refuse(format!("unknown writer feature {f:?}")));
            }
        }
        if !is_plain_file_name(&m.snapshot_id) {
            return Err(refuse(format!("snapshot id {:?} is not a plain name", m.snapshot_id)));
        }
        let mut seen = std::collections::HashSet::new();
        let mut kinds = std::collections::HashSet::new();
        for f in &m.files {
            if !is_plain_file_name(&f.name) || f.name == MANIFEST_FILE {
                return Err(refuse(format!("file name {:?} is not a plain file name inside the snapshot", f.name)));
            }
            if !seen.insert(f.name.as_str()) {
                return Err(refuse(format!("file {:?} listed twice", f.name)));
            }
            if crate::ArtifactKind::from_name(&f.kind).is_none() {
                return Err(refuse(format!("file {:?} has unknown kind {:?}", f.name, f.kind)));
            }
            // Readers look artifacts up by kind: a second file of the same kind would be ambiguous.
            if !kinds.insert(f.kind.as_str()) {
                return Err(refuse(format!("file {:?} is a second {:?} artifact", f.name, f.kind)));
            }
            if f.size > crate::MAX_ARTIFACT_BYTES {
                return Err(refuse(format!("file {:?} claims {} bytes", f.name, f.size)));
            }
            if f.blake3.len() != 64 || !f.blake3.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(refuse(format!("file {:?} has a malformed digest", f.name)));
            }
        }
        // An id map changes what the graph's points mean: a manifest must not let a reader that
        // does not know it open the graph without it.
        let ids = crate::ArtifactKind::HnswIds;
        if m.file(ids).is_some()
            && !m.reader_features.iter().any(|f| Some(f.as_str()) == ids.reader_feature().map(|r| r.as_str()))
        {
            return Err(refuse(format!("an {:?} file without the reader feature it needs", ids.name())));
        }
        if let Some(r) = &m.calibration.refusal {
            r.check().map_err(refuse)?;
        }
        if m.counts.vectors != m.counts.chunks {
            return Err(refuse(format!("{} vectors for {} chunks", m.counts.vectors, m.counts.chunks)));
        }
        if m.canaries.iter().any(|c| c.vector.len() != m.fingerprint.dims) {
            return Err(refuse("a canary vector has the wrong dimension".into()));
        }
        Ok(m)
    }

    /// The entry of the file of `kind`, if any.
    pub fn file(&self, kind: crate::ArtifactKind) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.kind == kind.name())
    }

    /// Serialise (pretty JSON, trailing newline).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("manifest serialises");
        v.push(b'\n');
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_only() {
        for ok in ["chunks.bin", "index.hnsw", "a-b_c.1"] {
            assert!(is_plain_file_name(ok), "{ok}");
        }
        for bad in ["", "..", "../x", "/etc/passwd", "a/b", ".hidden", "a\\b", "c:x", "x\0y", "é"] {
            assert!(!is_plain_file_name(bad), "{bad:?}");
        }
    }
}
