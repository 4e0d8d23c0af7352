//! The reading half of the snapshot format, mirror of [`super::write`]: a snapshot loaded for
//! querying (verified manifest, chunk table read by position, vectors, the vector index, the
//! lexical index), and the load check the store runs before anything becomes head.

use crate::{Error, Result};
use ragsnap_index::{HnswIndex, HnswParams, IdMap, Index, VectorSet};
use ragsnap_store::{
    tables, ArtifactKind, ChunkTable, DocumentEntry, IndexKind, Lease, Manifest, OpenedSnapshot, Store, StoreError,
};
use std::path::Path;
use std::sync::Arc;

/// A verified, loaded snapshot. Holding it holds a reader lease, so GC will not remove it.
pub struct Snapshot {
    manifest: Manifest,
    chunks: ChunkTable,
    vectors: Arc<VectorSet>,
    index: Index,
    documents: Vec<DocumentEntry>,
    lexical: Option<ragsnap_lexical::LexicalIndex>,
    _lease: Lease,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot").field("id", &self.manifest.snapshot_id).field("chunks", &self.chunks.len()).finish()
    }
}

impl Snapshot {
    /// Open snapshot `id` of `store`: every checksum is verified before any artifact is parsed.
    pub fn open(store: &Store, id: &str) -> Result<Self> {
        // The artifacts parsed at open are read once, hashed once and handed over without a copy;
        // the chunk table is only hashed (it is read by position at query time).
        let keep = ragsnap_store::LOADED_KINDS;
        let opened = store.open_snapshot_keeping(id, &keep)?;
        Snapshot::load(opened)
    }

    fn load(opened: OpenedSnapshot) -> Result<Self> {
        let m = &opened.manifest;
        let dims = m.fingerprint.dims;
        let missing = |k: ArtifactKind| StoreError::ManifestRefused {
            path: opened.dir.join(ragsnap_store::MANIFEST_FILE),
            message: format!("no {} artifact", k.name()),
        };
        let vec_path = opened.path(ArtifactKind::Vectors).ok_or_else(|| missing(ArtifactKind::Vectors))?;
        let payload = opened.payload(ArtifactKind::Vectors)?.ok_or_else(|| missing(ArtifactKind::Vectors))?;
        let floats = tables::decode_vectors(&vec_path, &payload, m.counts.vectors, dims)?;
        drop(payload);
        let vectors = Arc::new(VectorSet::new(dims, floats)?);
        let chunk_path = opened.path(ArtifactKind::Chunks).ok_or_else(|| missing(ArtifactKind::Chunks))?;
        let chunks = ChunkTable::open(&chunk_path, m.counts.chunks)?;
        let doc_path = opened.path(ArtifactKind::Documents).ok_or_else(|| missing(ArtifactKind::Documents))?;
        let doc_payload = opened.payload(ArtifactKind::Documents)?.ok_or_else(|| missing(ArtifactKind::Documents))?;
        let documents = tables::decode_documents(&doc_path, &doc_payload)?;
        drop(doc_payload);
        // A graph updated in place has an id map (its points are not the rows one for one);
        // snapshots without one, older ones included, have a graph built over the rows.
        let ids_path = opened.path(ArtifactKind::HnswIds);
        let ids = match opened.payload(ArtifactKind::HnswIds)? {
            Some(payload) => Some(IdMap::from_bytes(&payload, m.counts.chunks).map_err(|e| {
                Error::Store(StoreError::Malformed {
                    path: ids_path.clone().unwrap_or_default(),
                    message: e.to_string(),
                })
            })?),
            None => None,
        };
        let index = match m.index.kind {
            IndexKind::Exact if ids.is_some() => {
                return Err(Error::Store(StoreError::Malformed {
                    path: ids_path.unwrap_or_default(),
                    message: "an id map in a snapshot with exact search".into(),
                }))
            }
            IndexKind::Exact => Index::Exact(vectors.clone()),
            IndexKind::Hnsw => {
                let payload = opened.payload(ArtifactKind::Hnsw)?.ok_or_else(|| missing(ArtifactKind::Hnsw))?;
                let params = HnswParams { m: m.index.m, ef_construction: m.index.ef_construction };
                match ids {
                    // The graph is parsed straight into the flat searcher, over the vectors above
                    // (the payload's own copy of them is checked equal, not kept).
                    None => Index::Hnsw(HnswIndex::from_bytes_with_vectors(&payload, params, vectors.clone())?),
                    // Deleted points keep their vectors in the payload only: it is decoded, and
                    // every live point checked equal to its row.
                    Some(map) => {
                        Index::Hnsw(HnswIndex::from_bytes_mapped(&payload, params, &vectors, map).map_err(|e| {
                            Error::Store(StoreError::Malformed {
                                path: opened.path(ArtifactKind::Hnsw).unwrap_or_default(),
                                message: e.to_string(),
                            })
                        })?)
                    }
                }
            }
        };
        // Snapshots written before the lexical index existed have none; hybrid queries on them
        // fall back to dense retrieval and say so.
        let lexical = match opened.payload(ArtifactKind::Lexical)? {
            Some(payload) => Some(ragsnap_lexical::LexicalIndex::from_bytes(&payload).map_err(|e| {
                Error::Store(StoreError::Malformed {
                    path: opened.path(ArtifactKind::Lexical).unwrap_or_default(),
                    message: e.to_string(),
                })
            })?),
            None => None,
        };
        if lexical.as_ref().is_some_and(|l| l.len() != m.counts.chunks) {
            return Err(Error::Store(StoreError::Malformed {
                path: opened.path(ArtifactKind::Lexical).unwrap_or_default(),
                message: format!(
                    "lexical index has {} rows; the snapshot has {} chunks",
                    lexical.as_ref().map_or(0, |l| l.len()),
                    m.counts.chunks
                ),
            }));
        }
        let OpenedSnapshot { manifest, lease, .. } = opened;
        Ok(Snapshot { manifest, chunks, vectors, index, documents, lexical, _lease: lease })
    }

    /// Snapshot id.
    pub fn id(&self) -> &str {
        &self.manifest.snapshot_id
    }

    /// Its manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Its chunk table.
    pub fn chunks(&self) -> &ChunkTable {
        &self.chunks
    }

    /// Its vectors.
    pub fn vectors(&self) -> &Arc<VectorSet> {
        &self.vectors
    }

    /// Its index.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Its documents.
    pub fn documents(&self) -> &[DocumentEntry] {
        &self.documents
    }

    /// Its lexical index (absent in snapshots written before lexical retrieval existed).
    pub fn lexical(&self) -> Option<&ragsnap_lexical::LexicalIndex> {
        self.lexical.as_ref()
    }
}

/// The [`ragsnap_store::LoadCheck`] the library gives the store: load a verified snapshot the
/// way [`Snapshot::open`] does (every artifact parsed), and drop it.
pub fn load_check(opened: OpenedSnapshot) -> std::result::Result<(), String> {
    Snapshot::load(opened).map(drop).map_err(|e| e.to_string())
}

/// Verify snapshot `id`: every checksum and frame, and a full load through the reader's code,
/// so that `ok` means a reader can open it.
pub fn verify_snapshot(store: &Store, id: &str) -> Result<ragsnap_store::VerifyReport> {
    Ok(store.verify_with(id, Some(load_check))?)
}

/// Open the store at `root` for writing with [`load_check`] installed: publish, verify,
/// rollback and promote then check their snapshot the way readers will open it.
pub fn open_store_writer(root: &Path) -> Result<Store> {
    let mut store = Store::open_writer(root)?;
    store.set_load_check(load_check);
    Ok(store)
}

/// Rebuild a lost or damaged catalog from the snapshot folders, each checked with a full load
/// ([`Store::repair`]).
pub fn repair_store(root: &Path, dry_run: bool) -> Result<ragsnap_store::RepairReport> {
    Ok(Store::repair(root, dry_run, Some(load_check))?)
}

/// Open the head snapshot of the store at `root` read-only.
pub fn open_head(root: &Path) -> Result<Snapshot> {
    let store = Store::open_reader(root)?;
    let head = store.head()?;
    Snapshot::open(&store, &head.id)
}
