//! A rebuild over a site whose template has no `<nav>` or ARIA markup
//! (`fixtures/generators/sidebar`), with the real model: the contents page is skipped
//! as a hub with a counted reason, and no stored chunk carries template text or the
//! site name.

use ragsnap::{Config, RebuildOptions, Snapshot, Store};
use ragsnap_tests::*;

#[test]
fn hub_pages_are_skipped_with_a_reason_and_template_never_reaches_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    copy_tree(&repo_root().join("fixtures/generators/sidebar"), &site);
    let store = dir.path().join("store");
    let opts = RebuildOptions { sources: source(&site), ..Default::default() };
    let report = ragsnap::rebuild_with(&store, &Config::default(), &opts, embedder().as_ref()).unwrap();
    assert!(report.promoted, "{:?}", report.rejected_because);
    let hubs: Vec<(&str, &str)> =
        report.skipped.iter().filter(|s| s.kind == "hub").map(|s| (s.path.as_str(), s.kind.as_str())).collect();
    assert_eq!(hubs, [("contents.html", "hub")]);
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.documents_indexed, 6);
    assert_eq!(report.boilerplate.hub_pages, ["contents.html"]);
    assert!(report.boilerplate.template_blocks_removed >= 18, "{:?}", report.boilerplate);

    let reader = Store::open_reader(&store).unwrap();
    let snap = Snapshot::open(&reader, &reader.head().unwrap().id).unwrap();
    let mut n = 0;
    for row in 0..snap.chunks().len() {
        let c = snap.chunks().get(row).unwrap();
        n += 1;
        assert_ne!(c.source_path, "contents.html");
        for t in ["Start page", "Built on", "Harbor Manual", "release 2.4"] {
            assert!(!c.text.contains(t), "{}: {t:?} in\n{}", c.source_path, c.text);
        }
        assert!(c.header_path.iter().all(|e| !e.contains("Harbor")), "{:?}", c.header_path);
    }
    assert!(n >= 6);
}
