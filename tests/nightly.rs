//! The nightly job over five nights of a changing source, with real parts throughout.

use ragsnap::config::GateConfig;
use ragsnap::{Config, RebuildOptions, Snapshot, Store};
use ragsnap_tests::*;
use std::path::Path;

fn night(store: &Path, cfg: &Config, site: &Path) -> ragsnap::RebuildReport {
    let opts = RebuildOptions { sources: source(site), ..Default::default() };
    ragsnap::rebuild_with(store, cfg, &opts, embedder().as_ref()).unwrap()
}

fn html_pages(site: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = ragsnap::rebuild::list_files(site)
        .unwrap()
        .into_iter()
        .map(|(_, p)| p)
        .filter(|p| p.extension().is_some_and(|e| e == "html"))
        .collect();
    v.sort();
    v
}

fn inject_before_main_end(page: &Path, html: &str) {
    let s = std::fs::read_to_string(page)
        .unwrap_or_else(|_| String::from_utf8_lossy(&std::fs::read(page).unwrap()).into_owned());
    let marker = ["</main>", "</article>", "</div>\n</div>"].into_iter().find(|m| s.contains(m)).unwrap_or("</body>");
    std::fs::write(page, s.replacen(marker, &format!("{html}{marker}"), 1)).unwrap();
}

fn head(store: &Path) -> String {
    Store::open_reader(store).unwrap().head().unwrap().id
}

#[test]
fn five_nights() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    copy_tree(&fixture_site(), &site);
    let store = dir.path().join("store");
    let cfg = Config {
        gates: GateConfig { golden: Some(repo_root().join("fixtures/queries.jsonl")), ..Default::default() },
        ..Default::default()
    };

    // Night 1: full build.
    let n1 = night(&store, &cfg, &site);
    assert!(n1.promoted, "{:?}", n1.rejected_because);
    assert_eq!(n1.cache_hits, 0);

    // Night 2: one page changed; only its changed chunks are embedded.
    inject_before_main_end(&site.join("guide/workers.html"), "<h2>Graceful drain</h2><p>Send SIGUSR1 to a worker to stop reserving new jobs while it finishes the ones it holds.</p>");
    let n2 = night(&store, &cfg, &site);
    assert!(n2.promoted, "{:?}", n2.rejected_because);
    assert!(n2.cache_misses >= 1 && n2.cache_misses <= 3, "night 2 embedded {} chunks", n2.cache_misses);
    assert_eq!(n2.cache_hits + n2.cache_misses, n2.distinct_chunks);
    // ...and only that page went through the chunker; the others took head's chunks.
    assert_eq!(n2.source_diff.changed, 1, "{:?}", n2.source_diff);
    assert_eq!(n2.source_diff.unchanged, n1.documents_indexed - 1, "{:?}", n2.source_diff);
    assert_eq!((n2.documents_chunked, n2.documents_reused), (1, n1.documents_indexed - 1));

    // Night 3: a template change puts a big promotional footer inside every page's content.
    let footer = "<section class=\"promo\"><h2>Try Tidewater Cloud</h2>\
        <p>Tidewater Cloud runs your queues for you, with automatic backups, managed upgrades and a dashboard for every team in your organisation.</p>\
        <p>Start a free thirty day trial today and move your first production queue over in less than an hour with our migration assistant.</p>\
        <p>Enterprise plans include single sign-on, audit logs, a dedicated support engineer and a ninety-nine point nine five percent uptime commitment.</p></section>";
    for p in html_pages(&site) {
        inject_before_main_end(&p, footer);
    }
    let n3 = night(&store, &cfg, &site);
    assert!(n3.promoted, "{:?}", n3.rejected_because);
    // The footer is dropped as boilerplate, so most pages' content is what it was: their chunks
    // are copied from head even though every file changed.
    assert_eq!(n3.source_diff.changed, html_pages(&site).len(), "{:?}", n3.source_diff);
    assert_eq!(n3.documents_reused + n3.documents_chunked, n3.documents_indexed);
    assert!(n3.documents_reused >= n3.documents_indexed / 2, "reused {}", n3.documents_reused);
    assert!(n3.boilerplate.blocks_removed >= 3 * 15, "footer blocks removed: {:?}", n3.boilerplate);
    let reader = Store::open_reader(&store).unwrap();
    let snap = Snapshot::open(&reader, &n3.snapshot_id).unwrap();
    for i in 0..snap.chunks().len() {
        let c = snap.chunks().get(i).unwrap();
        assert!(
            !c.text.contains("free thirty day trial") && !c.text.contains("Tidewater Cloud runs your queues"),
            "footer reached the index in {}",
            c.source_path
        );
    }
    drop(snap);

    // Night 4: half the source disappears; the shrinkage gate rejects the build, head stays.
    let pages = html_pages(&site);
    for p in pages.iter().step_by(2) {
        std::fs::remove_file(p).unwrap();
    }
    let n4 = night(&store, &cfg, &site);
    assert!(!n4.promoted);
    let g = n4.gates.iter().find(|g| g.name == "shrinkage").unwrap();
    assert!(!g.passed && g.value > 0.4, "{g:?}");
    assert_eq!(head(&store), n3.snapshot_id);
    let rec = reader.catalog().get(&n4.snapshot_id).unwrap();
    assert_eq!(rec.status, "rejected");
    assert!(rec.reason.unwrap().contains("shrinkage"));
    // The rejected snapshot keeps its report.
    let opened = reader.open_snapshot(&n4.snapshot_id).unwrap();
    let stored: serde_json::Value =
        serde_json::from_slice(&opened.read_payload(ragsnap::store::ArtifactKind::Report).unwrap().unwrap()).unwrap();
    assert_eq!(stored["promoted"], false);
    drop(opened);

    // Night 5: the pages come back, but three answer pages are replaced by unrelated text:
    // golden recall drops and the build is rejected.
    copy_tree(&fixture_site(), &site);
    for p in html_pages(&site) {
        inject_before_main_end(&p, footer);
    }
    let filler = "<main><h1>Garden notes</h1><h2>Tomatoes</h2><p>Tomato seedlings want warmth, steady watering and a stake once they reach knee height; pinch out side shoots every week.</p>\
        <h2>Compost</h2><p>Turn the heap every fortnight, keep it as damp as a wrung-out sponge, and mix green cuttings with brown leaves in equal parts.</p></main>";
    for page in ["guide/retries.html", "config/tls.html", "api/http.html", "ops/metrics.html"] {
        std::fs::write(
            site.join(page),
            format!("<html><head><title>Garden notes</title></head><body>{filler}</body></html>"),
        )
        .unwrap();
    }
    let n5 = night(&store, &cfg, &site);
    assert!(!n5.promoted, "golden regression must be rejected: {:?}", n5.gates);
    let g = n5.gates.iter().find(|g| g.name == "golden_queries").unwrap();
    assert!(!g.passed, "{g:?}");
    assert_eq!(head(&store), n3.snapshot_id);

    // The operator inspects night 4's rejected build, force-promotes it, then rolls back.
    let mut w = Store::open_writer(&store).unwrap();
    assert!(w.promote(&n4.snapshot_id, false, "try").is_err(), "a rejected build needs --force");
    w.promote(&n4.snapshot_id, true, "source was trimmed on purpose").unwrap();
    assert_eq!(w.head().unwrap().id, n4.snapshot_id);
    let back = w.previous_head(1).unwrap();
    assert_eq!(back, n3.snapshot_id);
    w.rollback(&back, "trim was a mistake after all", false).unwrap();
    assert_eq!(w.head().unwrap().id, n3.snapshot_id);
    let actions: Vec<String> = w.catalog().history().unwrap().into_iter().map(|h| h.action).collect();
    assert_eq!(actions, ["promote", "promote", "promote", "force-promote", "rollback"]);
}

/// Every chunk row and document entry of snapshot `id`.
fn contents(store: &Path, id: &str) -> (Vec<ragsnap::core::Chunk>, Vec<ragsnap::store::DocumentEntry>) {
    let reader = Store::open_reader(store).unwrap();
    let snap = Snapshot::open(&reader, id).unwrap();
    let chunks = (0..snap.chunks().len()).map(|i| snap.chunks().get(i).unwrap()).collect();
    (chunks, snap.documents().to_vec())
}

/// Build `site` from scratch into a new store (sharing the embedding cache, so no model work)
/// and check the incremental snapshot `id` of `store` holds exactly the same chunks and documents.
fn assert_same_as_full_build(store: &Path, id: &str, site: &Path, cfg: &Config) {
    let fresh = tempfile::tempdir().unwrap();
    copy_tree(&store.join("cache"), &fresh.path().join("cache"));
    let full = night(fresh.path(), cfg, site);
    assert_eq!(full.documents_reused, 0);
    assert_eq!(full.cache_misses, 0, "the shared cache holds every vector");
    let (a, da) = contents(store, id);
    let (b, db) = contents(fresh.path(), &full.snapshot_id);
    assert_eq!(a.len(), b.len(), "chunk count");
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y);
    }
    assert_eq!(da, db);
}

#[test]
fn incremental_chunking_gives_what_a_full_build_gives() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    copy_tree(&fixture_site(), &site);
    let store = dir.path().join("store");
    let cfg = Config::default();
    // A notice on every page: site boilerplate, dropped everywhere.
    let notice = "<p>Scheduled maintenance of the community forum happens every first Sunday between two and four.</p>";
    let pages = html_pages(&site);
    for p in &pages {
        inject_before_main_end(p, notice);
    }
    let n1 = night(&store, &cfg, &site);
    assert!(n1.promoted && n1.boilerplate.blocks_removed >= pages.len() - 2, "{:?}", n1.boilerplate);

    // The notice is taken off all but four pages. Those four did not change, but on 4 of 25
    // pages the notice is no longer boilerplate, so their content did change: they must be
    // chunked again rather than copied from head.
    let keep: Vec<_> = pages.iter().take(4).cloned().collect();
    for p in pages.iter().skip(4) {
        let s = String::from_utf8_lossy(&std::fs::read(p).unwrap()).replace(notice, "");
        std::fs::write(p, s).unwrap();
    }
    let n2 = night(&store, &cfg, &site);
    assert!(n2.promoted, "{:?}", n2.rejected_because);
    // The unchanged documents: the four pages, and the Markdown and text files that never had it.
    let other_files = n1.documents_indexed - pages.len();
    assert_eq!(n2.source_diff.unchanged, keep.len() + other_files, "{:?}", n2.source_diff);
    // The changed pages read exactly as before once the notice is gone (their chunks come from
    // head); the four unchanged pages now show the notice and are the only ones chunked.
    assert_eq!(n2.documents_chunked, keep.len(), "reused {}", n2.documents_reused);
    let (chunks, _) = contents(&store, &n2.snapshot_id);
    let with_notice: std::collections::BTreeSet<&str> = chunks
        .iter()
        .filter(|c| c.text.contains("Scheduled maintenance of the community forum"))
        .map(|c| c.source_path.as_str())
        .collect();
    assert_eq!(with_notice.len(), keep.len(), "{with_notice:?}");
    assert_same_as_full_build(&store, &n2.snapshot_id, &site, &cfg);

    // One page edited: only it is chunked; the snapshot equals a full build of the same source.
    inject_before_main_end(
        &pages[10],
        "<h2>Queue quotas</h2><p>A queue can cap the jobs it holds with max_depth; producers then get a QuotaExceeded error.</p>",
    );
    let n3 = night(&store, &cfg, &site);
    assert!(n3.promoted, "{:?}", n3.rejected_because);
    assert_eq!((n3.documents_chunked, n3.documents_reused), (1, n2.documents_indexed - 1));
    assert_same_as_full_build(&store, &n3.snapshot_id, &site, &cfg);
}

fn snapshot_count(store: &Path) -> usize {
    Store::open_reader(store).unwrap().catalog().list().unwrap().len()
}

/// Sources and settings equal to head's write nothing (outcome `unchanged`), `force` builds
/// anyway, and one changed byte in one source, or a changed chunker setting, builds again.
#[test]
fn a_rebuild_that_matches_head_writes_no_snapshot_unless_forced_or_a_byte_changed() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    copy_tree(&fixture_site(), &site);
    let store = dir.path().join("store");
    let cfg = Config::default();
    let first = night(&store, &cfg, &site);
    assert_eq!(first.outcome, ragsnap::Outcome::Promoted);
    let manifest = Snapshot::open(&Store::open_reader(&store).unwrap(), &first.snapshot_id).unwrap().manifest().clone();
    assert!(manifest.build_key.as_deref().is_some_and(|k| k.len() == 64), "{:?}", manifest.build_key);
    let cache = ragsnap::store::layout::embedding_cache_path(&store);
    let cache_bytes = std::fs::read(&cache).unwrap();

    let same = night(&store, &cfg, &site);
    assert_eq!(same.outcome, ragsnap::Outcome::Unchanged);
    assert!(!same.promoted && same.succeeded());
    assert_eq!(same.snapshot_id, first.snapshot_id, "the report names the head that already holds the sources");
    assert_eq!((same.cache_hits, same.cache_misses, same.gates.len()), (0, 0, 0), "nothing was embedded or gated");
    assert_eq!(same.source_diff.unchanged, first.documents_indexed);
    assert_eq!(snapshot_count(&store), 1);
    assert_eq!(head(&store), first.snapshot_id);
    assert_eq!(std::fs::read(&cache).unwrap(), cache_bytes, "the embedding cache was not written");
    let prom = ragsnap::prometheus_metrics(&same);
    assert!(prom.contains("ragsnap_rebuild_unchanged 1\n") && prom.contains("ragsnap_rebuild_success 1\n"), "{prom}");

    // A setting that only decides the verdict does not make the sources different...
    let mut lenient = cfg.clone();
    lenient.gates.max_hub_share = 0.5;
    assert_eq!(night(&store, &lenient, &site).outcome, ragsnap::Outcome::Unchanged);
    // ...one that changes the chunks does.
    let mut smaller = cfg.clone();
    smaller.chunker.target_tokens -= 10;
    let resized = night(&store, &smaller, &site);
    assert_eq!(resized.outcome, ragsnap::Outcome::Promoted, "{:?}", resized.rejected_because);
    assert_eq!(snapshot_count(&store), 2);

    // Forced: a new snapshot with the same content.
    let opts = RebuildOptions { sources: source(&site), force: true, ..Default::default() };
    let forced = ragsnap::rebuild_with(&store, &smaller, &opts, embedder().as_ref()).unwrap();
    assert_eq!(forced.outcome, ragsnap::Outcome::Promoted);
    assert_ne!(forced.snapshot_id, resized.snapshot_id);
    assert_eq!(snapshot_count(&store), 3);

    // One byte of one page.
    let page = html_pages(&site).into_iter().find(|p| p.ends_with("guide/retries.html")).unwrap();
    let mut bytes = std::fs::read(&page).unwrap();
    let at = bytes.windows(5).position(|w| w == b"retry").expect("the page mentions retries");
    bytes[at] = b'R';
    std::fs::write(&page, bytes).unwrap();
    let changed = night(&store, &smaller, &site);
    assert_eq!(changed.outcome, ragsnap::Outcome::Promoted, "{:?}", changed.rejected_because);
    assert_eq!((changed.source_diff.changed, changed.documents_chunked), (1, 1));
    assert_eq!(snapshot_count(&store), 4);
    assert_eq!(night(&store, &smaller, &site).outcome, ragsnap::Outcome::Unchanged);
}

/// A model other than head's is refused before any source is read or any chunk embedded.
#[test]
fn a_model_change_is_refused_before_anything_is_embedded() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let first = night(&store, &Config::default(), &fixture_site());
    // The same files under another model name: another fingerprint.
    let runtime = std::env::var_os("RAGSNAP_CACHE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".cache/runtime"));
    let model = dir.path().join("renamed-model");
    std::fs::create_dir_all(&model).unwrap();
    let from = runtime.join("models/minilm-l6-int8");
    for f in ["model.onnx", "tokenizer.json"] {
        std::fs::copy(from.join(f), model.join(f)).unwrap();
    }
    let toml = std::fs::read_to_string(from.join("model.toml")).unwrap();
    std::fs::write(model.join("model.toml"), toml.replace("name = \"minilm-l6-int8\"", "name = \"minilm-renamed\""))
        .unwrap();
    let mut cfg = Config::default();
    cfg.runtime.model_dir = Some(model);
    let other = ragsnap::open_embedder(&cfg.runtime).unwrap();
    use ragsnap::Embedder;
    assert_ne!(other.fingerprint().id(), first.fingerprint_id);

    let stages = std::sync::Mutex::new(Vec::<String>::new());
    let record = |stage: &str, _: u64, _: u64| stages.lock().unwrap().push(stage.to_string());
    let opts = RebuildOptions { sources: source(&fixture_site()), progress: Some(&record), ..Default::default() };
    let texts_before = other.stats().texts;
    let err = ragsnap::rebuild_with(&store, &cfg, &opts, other.as_ref()).unwrap_err();
    match &err {
        ragsnap::Error::EmbeddingVersionMismatch { index, embedder } => {
            assert_eq!(index, &first.fingerprint_id);
            assert_eq!(embedder, &other.fingerprint().id());
        }
        e => panic!("expected EmbeddingVersionMismatch, got {e}"),
    }
    assert!(stages.lock().unwrap().is_empty(), "no stage ran: {:?}", stages.lock().unwrap());
    assert_eq!(other.stats().texts, texts_before, "the model embedded nothing");
    assert_eq!(head(&store), first.snapshot_id);
    assert_eq!(snapshot_count(&store), 1);
}
