//! The vector index updated instead of rebuilt, with real parts: the fixture site embedded by
//! the real model into a real store, a page added and a page removed, queries through the
//! library, rollback, and a damaged id map.

use ragsnap::config::GateConfig;
use ragsnap::rebuild::IndexMode;
use ragsnap::{Answer, Config, Mode, QueryOptions, RebuildOptions, Searcher, Snapshot, Store};
use ragsnap_tests::*;
use std::path::Path;
use std::sync::Arc;

const ADDED: &str = "<!doctype html><html><head><title>Checkpoints</title></head><body><main>\
<h1>Checkpoints</h1><p>A long job can write a checkpoint with ctx.checkpoint(state) every few \
minutes. When its worker dies, the job resumes from the newest checkpoint instead of from the \
start, so an eight-hour import loses at most the minutes since the last save.</p>\
<h2>Checkpoint retention</h2><p>Only the three newest checkpoints of a job are kept; older ones \
are pruned when a new one is written, and all of them are dropped once the job succeeds.</p>\
</main></body></html>";

fn night(store: &Path, cfg: &Config, site: &Path) -> ragsnap::RebuildReport {
    let opts = RebuildOptions { sources: source(site), ..Default::default() };
    let r = ragsnap::rebuild_with(store, cfg, &opts, embedder().as_ref()).unwrap();
    assert!(r.promoted, "{:?}", r.rejected_because);
    r
}

fn open(store: &Path, id: &str) -> Arc<Snapshot> {
    Arc::new(Snapshot::open(&Store::open_reader(store).unwrap(), id).unwrap())
}

/// Source paths of the hits for `text` (no floor, so nothing is hidden by it).
fn sources(snap: &Arc<Snapshot>, text: &str, mode: Mode) -> Vec<String> {
    let opts = QueryOptions { k: 10, floor: Some(-1.0), lexical_floor: Some(0.0), mode, ..Default::default() };
    match Searcher::new(snap.clone(), embedder()).unwrap().query(text, &opts).unwrap().answer {
        Answer::Hits { hits } => hits.into_iter().map(|h| h.source_path).collect(),
        Answer::NoConfidentMatch { .. } => Vec::new(),
    }
}

/// Source paths of the dense hits for a vector.
fn sources_of_vector(snap: &Arc<Snapshot>, v: &[f32]) -> Vec<String> {
    let opts = QueryOptions { k: 10, floor: Some(-1.0), mode: Mode::Dense, ..Default::default() };
    let fp = snap.manifest().fingerprint.clone();
    match Searcher::new(snap.clone(), embedder()).unwrap().query_vector(v, &fp, &opts).unwrap().answer {
        Answer::Hits { hits } => hits.into_iter().map(|h| h.source_path).collect(),
        Answer::NoConfidentMatch { .. } => Vec::new(),
    }
}

#[test]
fn a_page_added_and_a_page_removed_update_heads_graph() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    copy_tree(&fixture_site(), &site);
    let store = dir.path().join("store");
    // The fixture site is small: lower the exact-search cutoff so that it gets a graph.
    let mut cfg = Config::default();
    cfg.index.exact_below = 20;
    cfg.gates = GateConfig { max_removed_share: 0.5, ..Default::default() };

    // Night 1: nothing to update.
    let n1 = night(&store, &cfg, &site);
    assert_eq!(n1.index_kind, "hnsw");
    assert_eq!(n1.index_update.mode, IndexMode::Rebuilt, "{:?}", n1.index_update);
    let s1 = open(&store, &n1.snapshot_id);
    let removed = "guide/scheduling.html";
    let removed_rows: Vec<usize> =
        (0..s1.chunks().len()).filter(|&r| s1.chunks().get(r).unwrap().source_path == removed).collect();
    assert!(!removed_rows.is_empty());
    let removed_text = s1.chunks().get(removed_rows[0]).unwrap().text;
    let removed_vectors: Vec<Vec<f32>> = removed_rows.iter().map(|&r| s1.vectors().get(r).to_vec()).collect();
    assert!(sources(&s1, &removed_text, Mode::Dense).iter().any(|s| s == removed), "night 1 finds the page");

    // Night 2: one page removed, one added: head's graph is updated.
    std::fs::remove_file(site.join(removed)).unwrap();
    std::fs::write(site.join("guide/checkpoints.html"), ADDED).unwrap();
    let n2 = night(&store, &cfg, &site);
    let u = &n2.index_update;
    assert_eq!(u.mode, IndexMode::Updated, "{u:?}");
    assert!(u.points_inserted >= 1 && u.points_inserted <= 3, "{u:?}");
    assert!(u.points_deleted >= removed_rows.len(), "{u:?}");
    assert!(u.deleted_share > 0.0 && u.deleted_share <= cfg.index.update_max_deleted_share, "{u:?}");
    assert!(n2.recall >= cfg.index.target_recall, "the recall gate measured the updated graph: {}", n2.recall);
    let s2 = open(&store, &n2.snapshot_id);
    assert!(s2.manifest().file(ragsnap::store::ArtifactKind::HnswIds).is_some(), "the id map is an artifact");
    assert!(s2.manifest().reader_features.iter().any(|f| f == "hnsw-id-map-v1"));
    // The removed page never comes back, whatever the query: its own text, dense and hybrid,
    // and its exact vectors (the deleted points are the nearest ones in the graph).
    for mode in [Mode::Dense, Mode::Hybrid] {
        let got = sources(&s2, &removed_text, mode);
        assert!(!got.is_empty() && got.iter().all(|s| s != removed), "{mode:?}: {got:?}");
    }
    for v in &removed_vectors {
        let got = sources_of_vector(&s2, v);
        assert!(!got.is_empty() && got.iter().all(|s| s != removed), "{got:?}");
    }
    // The added page is found.
    for mode in [Mode::Dense, Mode::Hybrid] {
        let got = sources(&s2, "resume a long job from its newest checkpoint after the worker dies", mode);
        assert_eq!(got.first().map(String::as_str), Some("guide/checkpoints.html"), "{mode:?}: {got:?}");
    }
    let reader = Store::open_reader(&store).unwrap();
    assert!(ragsnap::verify_snapshot(&reader, &n2.snapshot_id).unwrap().ok);
    drop(reader);

    // Night 3: another page gone with a limit below the share it leaves: built from scratch.
    cfg.index.update_max_deleted_share = 0.01;
    std::fs::remove_file(site.join("faq.html")).unwrap();
    let n3 = night(&store, &cfg, &site);
    assert_eq!(n3.index_update.mode, IndexMode::Rebuilt, "{:?}", n3.index_update);
    assert!(n3.index_update.reason.contains("deleted points"), "{}", n3.index_update.reason);
    let s3 = open(&store, &n3.snapshot_id);
    assert!(s3.manifest().file(ragsnap::store::ArtifactKind::HnswIds).is_none(), "a rebuilt graph has no id map");
    drop((s1, s2, s3));

    // Rollback to night 1: it answers from its own graph, the removed page included.
    let mut w = ragsnap::open_store_writer(&store).unwrap();
    w.rollback(&n1.snapshot_id, "test", false).unwrap();
    drop(w);
    let head = ragsnap::open_head(&store).unwrap();
    assert_eq!(head.id(), n1.snapshot_id);
    let head = Arc::new(head);
    assert!(sources(&head, &removed_text, Mode::Dense).iter().any(|s| s == removed));
    drop(head);

    // A damaged id map: verify says so, and the snapshot does not open.
    let ids = store.join("snapshots").join(&n2.snapshot_id).join("index.ids");
    let mut bytes = std::fs::read(&ids).unwrap();
    let at = 16 + (bytes.len() - 64) / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&ids, &bytes).unwrap();
    let reader = Store::open_reader(&store).unwrap();
    let rep = ragsnap::verify_snapshot(&reader, &n2.snapshot_id).unwrap();
    assert!(!rep.ok && rep.problems.iter().any(|p| p.file.contains("index.ids")), "{rep:?}");
    let err = Snapshot::open(&reader, &n2.snapshot_id).unwrap_err().to_string();
    assert!(err.contains("index.ids"), "{err}");
}

/// Peak memory of one rebuild of the folder in `RAGSNAP_RSS_SOURCE` into a new store, with the
/// default settings: run by hand (`cargo test -p ragsnap-tests --test index_update -- --ignored
/// --nocapture`, under `/usr/bin/time -v`) for benches/README.md; prints the report's high-water
/// mark at the end of each stage.
#[test]
#[ignore]
fn peak_memory_of_a_rebuild() {
    let Some(src) = std::env::var_os("RAGSNAP_RSS_SOURCE") else { return };
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config::default();
    let embedder = ragsnap::open_embedder(&cfg.runtime).unwrap();
    let r = ragsnap::rebuild(dir.path(), &cfg, &source(Path::new(&src)), embedder.as_ref()).unwrap();
    println!("chunks {} embed_secs {:?} peak_rss_kib {:?}", r.chunks, r.timings.get("embed"), r.peak_rss_kib);
}
