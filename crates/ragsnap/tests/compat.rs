//! Every frozen snapshot under `snapshots/compat/` must still open, verify and answer.

use ragsnap::{Answer, Config, QueryOptions, Searcher, Snapshot, Store};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

fn frozen() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../snapshots/compat");
    let mut v: Vec<PathBuf> =
        std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).filter(|p| p.join("store").is_dir()).collect();
    v.sort();
    v
}

#[test]
fn every_frozen_format_version_still_opens_verifies_and_answers() {
    let versions = frozen();
    assert!(!versions.is_empty(), "no frozen snapshots found");
    let embedder = ragsnap::open_embedder(&Config::default().runtime).expect("run `make setup`");
    for v in versions {
        let tmp = tempfile::tempdir().unwrap();
        copy_tree(&v.join("store"), tmp.path());
        let store = Store::open_reader(tmp.path()).unwrap();
        let head = store.head().unwrap();
        let rep = store.verify(&head.id).unwrap();
        assert!(rep.ok, "{}: {rep:?}", v.display());
        let snap = Arc::new(Snapshot::open(&store, &head.id).unwrap());
        assert_eq!(snap.manifest().index.kind, "hnsw", "the frozen stores cover the graph artifact");
        let s = Searcher::new(snap, embedder.clone()).unwrap();
        let r = s.query("How do I rotate TLS certificates without a restart?", &QueryOptions::default()).unwrap();
        match r.answer {
            Answer::Hits { hits } => assert_eq!(hits[0].source_path, "config/tls.html", "{}", v.display()),
            other => panic!("{}: {other:?}", v.display()),
        }
    }
}

/// The frozen v1 store (catalog schema 1, no identity file) stays readable as it is, and the
/// first writer adopts it and migrates its catalog in place without moving head.
#[test]
fn the_frozen_v1_store_is_read_as_is_and_migrated_by_the_first_writer() {
    let frozen = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../snapshots/compat/v1/store");
    let tmp = tempfile::tempdir().unwrap();
    copy_tree(&frozen, tmp.path());
    let reader = Store::open_reader(tmp.path()).unwrap();
    assert_eq!(reader.catalog().schema_version(), 1);
    let head = reader.head().unwrap();
    assert!(head.backed_out.is_none());
    let rep = ragsnap::verify_snapshot(&reader, &head.id).unwrap();
    assert!(rep.ok, "{rep:?}");
    drop(reader);
    assert!(!tmp.path().join("ragsnap-store.json").exists());

    let writer = ragsnap::open_store_writer(tmp.path()).unwrap();
    assert_eq!(writer.catalog().schema_version(), 2);
    assert_eq!(writer.head().unwrap().id, head.id);
    assert!(writer.quarantined().is_empty(), "{:?}", writer.quarantined());
    drop(writer);
    let identity: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("ragsnap-store.json")).unwrap()).unwrap();
    assert_eq!(identity["kind"], "ragsnap-store");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("HEAD.json")).unwrap()).unwrap();
    assert_eq!(record["head"], head.id.as_str());
    let reader = Store::open_reader(tmp.path()).unwrap();
    assert_eq!(reader.catalog().schema_version(), 2);
    assert!(ragsnap::verify_snapshot(&reader, &head.id).unwrap().ok);
    // The frozen copy itself was never written.
    assert!(!frozen.join("ragsnap-store.json").exists());
}
