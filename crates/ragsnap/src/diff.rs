//! `ragsnap diff A B`: what changed between two snapshots.

use crate::Result;
use ragsnap_store::{tables, ArtifactKind, Manifest, Store};
use serde::Serialize;
use std::collections::BTreeMap;

/// Differences between snapshot `a` (older) and `b` (newer).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SnapshotDiff {
    /// First snapshot.
    pub a: String,
    /// Second snapshot.
    pub b: String,
    /// Documents only in `b`.
    pub added: Vec<String>,
    /// Documents only in `a`.
    pub removed: Vec<String>,
    /// Documents in both whose content changed.
    pub changed: Vec<String>,
    /// Documents in both with the same content.
    pub unchanged: usize,
    /// Chunk counts (a, b).
    pub chunks: (usize, usize),
    /// Document counts (a, b).
    pub documents: (usize, usize),
    /// Embedding fingerprint ids (a, b).
    pub fingerprint: (String, String),
    /// Other settings that differ: name → (a, b).
    pub settings: BTreeMap<String, (String, String)>,
}

fn documents(store: &Store, id: &str) -> Result<(Manifest, BTreeMap<String, String>)> {
    let opened = store.open_snapshot(id)?;
    let path = opened.path(ArtifactKind::Documents).unwrap_or_default();
    let payload = opened.read_payload(ArtifactKind::Documents)?.unwrap_or_default();
    let docs = tables::decode_documents(&path, &payload)?;
    Ok((opened.manifest, docs.into_iter().map(|d| (d.source_path, d.content_blake3)).collect()))
}

/// Compare two snapshots of `store` (both verified on the way in).
pub fn diff(store: &Store, a: &str, b: &str) -> Result<SnapshotDiff> {
    let (ma, da) = documents(store, a)?;
    let (mb, db) = documents(store, b)?;
    let mut d = SnapshotDiff {
        a: a.into(),
        b: b.into(),
        added: db.keys().filter(|k| !da.contains_key(*k)).cloned().collect(),
        removed: da.keys().filter(|k| !db.contains_key(*k)).cloned().collect(),
        changed: da.iter().filter(|(k, h)| db.get(*k).is_some_and(|h2| h2 != *h)).map(|(k, _)| k.clone()).collect(),
        unchanged: da.iter().filter(|(k, h)| db.get(*k) == Some(*h)).count(),
        chunks: (ma.counts.chunks, mb.counts.chunks),
        documents: (ma.counts.documents, mb.counts.documents),
        fingerprint: (ma.fingerprint.id(), mb.fingerprint.id()),
        settings: BTreeMap::new(),
    };
    let mut cmp = |name: &str, x: String, y: String| {
        if x != y {
            d.settings.insert(name.to_string(), (x, y));
        }
    };
    cmp("chunker", format!("{:?}", ma.chunker), format!("{:?}", mb.chunker));
    cmp("index.kind", ma.index.kind.to_string(), mb.index.kind.to_string());
    cmp("index.m", ma.index.m.to_string(), mb.index.m.to_string());
    cmp("index.ef_construction", ma.index.ef_construction.to_string(), mb.index.ef_construction.to_string());
    cmp("index.ef_search", ma.index.ef_search.to_string(), mb.index.ef_search.to_string());
    cmp("index.recall", format!("{:.4}", ma.index.recall), format!("{:.4}", mb.index.recall));
    cmp("tool_version", ma.tool_version.clone(), mb.tool_version.clone());
    cmp("format_version", ma.format_version.0.to_string(), mb.format_version.0.to_string());
    Ok(d)
}
