//! The writing half of the snapshot format, mirror of [`super::read`]: what a snapshot holds
//! ([`Contents`], [`Description`]) becomes framed artifacts under `staging/` and a manifest that
//! lists each with its size and digest, then one catalog commit ([`ragsnap_store::Store::publish`]).
//!
//! To add an artifact: give it an [`ArtifactKind`] (magic, manifest name, file name, reader
//! feature) in `ragsnap-store`, write it in [`SnapshotWriter::write`], read it in
//! [`super::read::Snapshot::open`], and describe it in `docs/format.md`.

use crate::{Error, Result};
use ragsnap_core::{Canary, Chunk, EmbeddingFingerprint, FormatVersion};
use ragsnap_index::Index;
use ragsnap_lexical::LexicalIndex;
use ragsnap_store::{
    tables, time, ArtifactKind, Calibration, ChunkerInfo, Counts, DocumentEntry, IndexInfo, IndexKind, Manifest,
    ReaderFeature, Staging, Store, WriterFeature,
};
use serde::Serialize;
use std::sync::atomic::AtomicBool;

/// The data of a snapshot: rows of `chunks`, `vectors` and the lexical index line up.
pub(crate) struct Contents<'a> {
    /// Documents, in source order, each naming its rows.
    pub documents: &'a [DocumentEntry],
    /// The chunk table.
    pub chunks: &'a [Chunk],
    /// One vector per chunk.
    pub vectors: &'a [Vec<f32>],
    /// The vector index over `vectors` (its kind decides whether a graph is written; an updated
    /// graph's id map is written with it).
    pub index: &'a Index,
    /// The BM25 index over the chunk texts.
    pub lexical: &'a LexicalIndex,
}

/// What the manifest says about a snapshot besides its files and counts.
pub(crate) struct Description {
    /// Head when the build started.
    pub parent_id: Option<String>,
    /// Digest of the sources read.
    pub source_digest: String,
    /// Digest of everything that decides the snapshot's content (see `rebuild::unchanged`).
    pub build_key: String,
    /// Chunker identity and sizes.
    pub chunker: ChunkerInfo,
    /// The embedding model's identity.
    pub fingerprint: EmbeddingFingerprint,
    /// Canary texts and their vectors.
    pub canaries: Vec<Canary>,
    /// Index kind, parameters and measured recall.
    pub index: IndexInfo,
    /// Top-1 score distribution of the recall sample.
    pub calibration: Calibration,
}

/// A snapshot being written: its id is known (the build report carries it) before anything is
/// written. Dropping it without [`SnapshotWriter::write`] leaves a marked staging folder that
/// the next writer removes.
pub(crate) struct SnapshotWriter {
    staging: Staging,
}

/// The reader features of a snapshot with an index of `kind` (and an id map, for a graph updated
/// in place), in the order manifests list them.
pub(crate) fn reader_features(kind: IndexKind, id_map: bool) -> Vec<String> {
    let mut kinds = vec![ArtifactKind::Chunks, ArtifactKind::Vectors, ArtifactKind::Documents, ArtifactKind::Lexical];
    if kind == IndexKind::Hnsw {
        kinds.push(ArtifactKind::Hnsw);
    }
    if kind == IndexKind::Hnsw && id_map {
        kinds.push(ArtifactKind::HnswIds);
    }
    kinds.into_iter().filter_map(ArtifactKind::reader_feature).map(|f: ReaderFeature| f.as_str().to_string()).collect()
}

impl SnapshotWriter {
    /// Reserve a staging folder (and its id) in `store`.
    pub(crate) fn begin(store: &mut Store) -> Result<Self> {
        Ok(SnapshotWriter { staging: store.stage()? })
    }

    /// The id the snapshot will have.
    pub(crate) fn id(&self) -> &str {
        &self.staging.id
    }

    /// The manifest for `contents` as described (its file list is filled in by the store).
    pub(crate) fn manifest(&self, contents: &Contents<'_>, d: Description) -> Result<Manifest> {
        let manifest = Manifest {
            format_version: FormatVersion::CURRENT,
            reader_features: reader_features(
                contents.index.kind(),
                matches!(contents.index, Index::Hnsw(h) if h.id_map().is_some()),
            ),
            writer_features: vec![WriterFeature::StagedRenameCommit.as_str().to_string()],
            snapshot_id: self.staging.id.clone(),
            parent_id: d.parent_id,
            created_at: time::rfc3339(time::unix_now()),
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            source_digest: d.source_digest,
            build_key: Some(d.build_key),
            chunker: d.chunker,
            fingerprint: d.fingerprint,
            canaries: d.canaries,
            index: d.index,
            counts: Counts {
                documents: contents.documents.len(),
                chunks: contents.chunks.len(),
                vectors: contents.vectors.len(),
            },
            calibration: d.calibration,
            files: Vec::new(),
        };
        check_manifest_numbers(&manifest)?;
        Ok(manifest)
    }

    /// Write every artifact and `report`, then publish: the catalog commit makes the snapshot
    /// visible, as head when `promote`. On any error before the commit the staging folder is
    /// removed and head is untouched.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn write(
        mut self,
        store: &mut Store,
        contents: &Contents<'_>,
        manifest: Manifest,
        report: &impl Serialize,
        promote: bool,
        reason: &str,
        cancel: Option<&AtomicBool>,
    ) -> Result<()> {
        let dims = manifest.fingerprint.dims;
        let written = (|| -> Result<()> {
            let s = &mut self.staging;
            let mut put = |kind: ArtifactKind, payload: &[u8]| -> Result<()> {
                s.write_artifact(kind.file_name(), kind, payload)?;
                crate::rebuild::check_cancel(cancel)
            };
            put(ArtifactKind::Documents, &serde_json::to_vec(contents.documents).expect("serialises"))?;
            put(ArtifactKind::Chunks, &tables::encode_chunks(contents.chunks))?;
            put(ArtifactKind::Vectors, &tables::encode_vectors(dims, contents.vectors))?;
            if let Index::Hnsw(h) = contents.index {
                put(ArtifactKind::Hnsw, &h.to_bytes()?)?;
                if let Some(map) = h.id_map() {
                    put(ArtifactKind::HnswIds, &map.to_bytes())?;
                }
            }
            put(ArtifactKind::Lexical, &contents.lexical.to_bytes())?;
            put(ArtifactKind::Report, &serde_json::to_vec_pretty(report).expect("serialises"))
        })();
        if let Err(e) = written {
            let _ = self.staging.abandon();
            return Err(e);
        }
        store.publish(self.staging, manifest, promote, reason)?;
        Ok(())
    }
}

/// Every number a manifest holds must be finite: JSON has no NaN, and a manifest with a `null`
/// where a number belongs could never be read back.
pub(crate) fn check_manifest_numbers(m: &Manifest) -> Result<()> {
    let refuse = |what: String| Err(Error::Invalid(format!("refusing to write the manifest: {what} is not finite")));
    for (name, v) in [("index.recall", m.index.recall), ("index.target_recall", m.index.target_recall)] {
        if !v.is_finite() {
            return refuse(format!("{name} ({v})"));
        }
    }
    if let Some(i) = m.calibration.top1_quantiles.iter().position(|q| !q.is_finite()) {
        return refuse(format!("calibration.top1_quantiles[{i}]"));
    }
    for c in &m.canaries {
        if let Some(i) = c.vector.iter().position(|x| !x.is_finite()) {
            return refuse(format!("component {i} of canary {:?}", c.text));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_are_listed_as_manifests_have_always_listed_them() {
        assert_eq!(
            reader_features(IndexKind::Hnsw, false),
            ["chunk-table-v1", "vectors-f32le", "documents-json", "lexical-bm25-v1", "hnsw-rs-dump-0.3"]
        );
        assert_eq!(reader_features(IndexKind::Exact, false).len(), 4);
        assert_eq!(reader_features(IndexKind::Hnsw, true).last().map(String::as_str), Some("hnsw-id-map-v1"));
        for f in reader_features(IndexKind::Hnsw, true) {
            assert!(ragsnap_store::manifest::KNOWN_READER_FEATURES.contains(&f.as_str()), "{f}");
        }
    }
}
