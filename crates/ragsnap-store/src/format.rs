//! The names a snapshot is made of, typed: its statuses, reader and writer features and the file
//! name of every artifact. The writer (`ragsnap::snapshot::write`), the reader
//! (`ragsnap::snapshot::read`) and [`crate::Manifest::parse`] all take them from here, so a new
//! artifact or feature is added in one place. The strings are the on-disk format: never change
//! one, add a new variant instead (see `docs/format.md`).

use crate::ArtifactKind;
use serde::{Deserialize, Serialize};

/// A snapshot's status in the catalog (`snapshots.status`) and in repair reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotStatus {
    /// Every gate passed (or it was promoted by hand): it may be head.
    Ready,
    /// A gate rejected it; kept for inspection, head only through `promote --force`.
    Rejected,
    /// GC marked it for removal (its folder may already be gone).
    Collected,
}

impl SnapshotStatus {
    /// Every status.
    pub const ALL: [SnapshotStatus; 3] = [SnapshotStatus::Ready, SnapshotStatus::Rejected, SnapshotStatus::Collected];

    /// The text stored in the catalog and printed by the CLI.
    pub const fn as_str(self) -> &'static str {
        match self {
            SnapshotStatus::Ready => "ready",
            SnapshotStatus::Rejected => "rejected",
            SnapshotStatus::Collected => "collected",
        }
    }

    /// Parse the catalog's text.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for SnapshotStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl PartialEq<&str> for SnapshotStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl rusqlite::types::ToSql for SnapshotStatus {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(rusqlite::types::ToSqlOutput::from(self.as_str()))
    }
}

impl rusqlite::types::FromSql for SnapshotStatus {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let s = value.as_str()?;
        SnapshotStatus::parse(s)
            .ok_or_else(|| rusqlite::types::FromSqlError::Other(format!("unknown status {s:?}").into()))
    }
}

/// A feature a reader must understand to open a snapshot (`reader_features` in the manifest).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReaderFeature {
    /// `chunks.bin`: the chunk table, format 1.
    ChunkTableV1,
    /// `vectors.bin`: row-major little-endian f32.
    VectorsF32le,
    /// `documents.json.bin`: the document list as JSON.
    DocumentsJson,
    /// `lexical.bin`: the BM25 index, format 1.
    LexicalBm25V1,
    /// `index.hnsw`: an hnsw_rs 0.3 graph dump (HNSW snapshots only).
    HnswRsDump03,
    /// `index.ids`: the id map of a graph updated in place (its points are not the rows one
    /// for one; some are deleted). A reader that ignored it would serve deleted rows.
    HnswIdMapV1,
}

impl ReaderFeature {
    /// Every reader feature this build understands.
    pub const ALL: [ReaderFeature; 6] = [
        ReaderFeature::ChunkTableV1,
        ReaderFeature::VectorsF32le,
        ReaderFeature::HnswRsDump03,
        ReaderFeature::DocumentsJson,
        ReaderFeature::LexicalBm25V1,
        ReaderFeature::HnswIdMapV1,
    ];

    /// The name in the manifest.
    pub const fn as_str(self) -> &'static str {
        match self {
            ReaderFeature::ChunkTableV1 => "chunk-table-v1",
            ReaderFeature::VectorsF32le => "vectors-f32le",
            ReaderFeature::DocumentsJson => "documents-json",
            ReaderFeature::LexicalBm25V1 => "lexical-bm25-v1",
            ReaderFeature::HnswRsDump03 => "hnsw-rs-dump-0.3",
            ReaderFeature::HnswIdMapV1 => "hnsw-id-map-v1",
        }
    }
}

/// A feature a writer must understand to modify a snapshot (`writer_features`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WriterFeature {
    /// Written in `staging/` and renamed into `snapshots/` by one commit.
    StagedRenameCommit,
}

impl WriterFeature {
    /// Every writer feature this build understands.
    pub const ALL: [WriterFeature; 1] = [WriterFeature::StagedRenameCommit];

    /// The name in the manifest.
    pub const fn as_str(self) -> &'static str {
        match self {
            WriterFeature::StagedRenameCommit => "staged-rename-commit",
        }
    }
}

impl ArtifactKind {
    /// The file name this build gives the artifact of this kind inside a snapshot folder.
    /// Readers find artifacts through the manifest by kind, never by this name.
    pub const fn file_name(self) -> &'static str {
        match self {
            ArtifactKind::Chunks => "chunks.bin",
            ArtifactKind::Vectors => "vectors.bin",
            ArtifactKind::Hnsw => "index.hnsw",
            ArtifactKind::Documents => "documents.json.bin",
            ArtifactKind::Report => "report.json.bin",
            ArtifactKind::Lexical => "lexical.bin",
            ArtifactKind::HnswIds => "index.ids",
        }
    }

    /// The reader feature a snapshot holding this artifact declares (`None` for the report,
    /// which readers never open).
    pub const fn reader_feature(self) -> Option<ReaderFeature> {
        match self {
            ArtifactKind::Chunks => Some(ReaderFeature::ChunkTableV1),
            ArtifactKind::Vectors => Some(ReaderFeature::VectorsF32le),
            ArtifactKind::Hnsw => Some(ReaderFeature::HnswRsDump03),
            ArtifactKind::Documents => Some(ReaderFeature::DocumentsJson),
            ArtifactKind::Lexical => Some(ReaderFeature::LexicalBm25V1),
            ArtifactKind::HnswIds => Some(ReaderFeature::HnswIdMapV1),
            ArtifactKind::Report => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_their_catalog_text_and_json() {
        for s in SnapshotStatus::ALL {
            assert_eq!(SnapshotStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
        assert_eq!(SnapshotStatus::parse("Ready"), None);
        assert_eq!(format!("{:<9}|", SnapshotStatus::Ready), "ready    |");
    }

    #[test]
    fn every_artifact_has_its_own_file_name_and_feature() {
        let kinds = [
            ArtifactKind::Chunks,
            ArtifactKind::Vectors,
            ArtifactKind::Hnsw,
            ArtifactKind::Documents,
            ArtifactKind::Report,
            ArtifactKind::Lexical,
            ArtifactKind::HnswIds,
        ];
        let names: std::collections::HashSet<_> = kinds.iter().map(|k| k.file_name()).collect();
        assert_eq!(names.len(), kinds.len());
        for k in kinds {
            assert!(crate::manifest::is_plain_file_name(k.file_name()), "{k:?}");
            if let Some(f) = k.reader_feature() {
                assert!(ReaderFeature::ALL.contains(&f));
            }
        }
    }
}
