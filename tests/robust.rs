//! Issue #11: the embedding cache is verified, not trusted; one bad input never sinks a build.
//! Real parts throughout: the fixture site, the real model, the real SQLite cache file.

use ragsnap::embed::{cache::row_checksum, EmbedError, EmbeddingCache};
use ragsnap::{Answer, Config, Embedder, Error, Mode, QueryOptions, Searcher, Snapshot, Store};
use ragsnap_core::{ContentId, EmbeddingFingerprint};
use ragsnap_tests::*;
use rusqlite::{params, Connection};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn site_copy(dir: &Path) -> PathBuf {
    let site = dir.join("site");
    copy_tree(&fixture_site(), &site);
    site
}

fn cache_path(store: &Path) -> PathBuf {
    store.join("cache").join("embeddings.sqlite")
}

fn head_snapshot(store: &Path) -> Arc<Snapshot> {
    let s = Store::open_reader(store).unwrap();
    let id = s.head().unwrap().id;
    Arc::new(Snapshot::open(&s, &id).unwrap())
}

/// Content id of the top dense hit for `text` on head (floor 0, so there always is one).
fn top_hit(store: &Path, text: &str) -> ContentId {
    let searcher = Searcher::new(head_snapshot(store), embedder()).unwrap();
    let opts = QueryOptions { mode: Mode::Dense, floor: Some(0.0), ..Default::default() };
    match searcher.query(text, &opts).unwrap().answer {
        Answer::Hits { hits } => hits[0].content_id.clone(),
        other => panic!("{text:?}: {other:?}"),
    }
}

/// (content id, text) of chunk `row` of head.
fn chunk(store: &Path, row: usize) -> (ContentId, String) {
    let c = head_snapshot(store).chunks().get(row).unwrap();
    (c.content_id, c.text)
}

fn row(conn: &Connection, id: &ContentId) -> (Vec<u8>, String) {
    conn.query_row("SELECT vector, checksum FROM vectors WHERE content_id = ?1", [id.as_str()], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
    .unwrap()
}

#[test]
fn swapped_and_nan_cache_rows_are_embedded_again_and_answers_stay_right() {
    let dir = tempfile::tempdir().unwrap();
    let site = site_copy(dir.path());
    let store = dir.path().join("store");
    let cfg = Config::default();
    let clean = ragsnap::rebuild(&store, &cfg, &source(&site), embedder().as_ref()).unwrap();
    let n = head_snapshot(&store).chunks().len();
    let (a, b, c, d) = (chunk(&store, 2), chunk(&store, n / 2), chunk(&store, n / 3), chunk(&store, n - 1));
    let questions = questions();
    let clean_answers: Vec<ContentId> = questions.iter().map(|q| top_hit(&store, &q.question)).collect();
    assert_eq!(top_hit(&store, &a.1), a.0, "a chunk's own text finds it on a clean build");

    // Tamper with the real cache file: swap two rows' vectors (with their checksums), put a NaN
    // into a third, and a NaN with a checksum made to match into a fourth.
    let fp = embedder().fingerprint().id();
    {
        let conn = Connection::open(cache_path(&store)).unwrap();
        let (ra, rb) = (row(&conn, &a.0), row(&conn, &b.0));
        for (id, (v, s)) in [(&a.0, rb), (&b.0, ra)] {
            conn.execute(
                "UPDATE vectors SET vector = ?1, checksum = ?2 WHERE content_id = ?3",
                params![v, s, id.as_str()],
            )
            .unwrap();
        }
        for (id, fix_checksum) in [(&c.0, false), (&d.0, true)] {
            let mut v = row(&conn, id).0;
            v[8..12].copy_from_slice(&f32::NAN.to_le_bytes());
            let sum = if fix_checksum { row_checksum(&fp, id.as_str(), &v) } else { row(&conn, id).1 };
            conn.execute(
                "UPDATE vectors SET vector = ?1, checksum = ?2 WHERE content_id = ?3",
                params![v, sum, id.as_str()],
            )
            .unwrap();
        }
    }

    let next = rebuild_forced(&store, &cfg, &source(&site), embedder().as_ref()).unwrap();
    assert!(next.promoted, "{:?}", next.rejected_because);
    assert_eq!(next.cache_check.rejected_rows, 4, "{:?}", next.cache_check);
    assert_eq!(next.cache_misses, 4, "exactly the four bad rows are embedded again");
    assert_eq!(next.cache_hits + next.cache_misses, clean.distinct_chunks);
    assert!(!next.cache_check.untrusted);
    assert!(ragsnap::prometheus_metrics(&next).contains("ragsnap_rebuild_cache_rejected_rows 4"));
    // Head is readable and verifies; the swapped chunks find themselves; answers are unchanged.
    assert!(Store::open_reader(&store).unwrap().verify(&next.snapshot_id).unwrap().ok);
    assert_eq!(top_hit(&store, &a.1), a.0);
    assert_eq!(top_hit(&store, &b.1), b.0);
    let answers: Vec<ContentId> = questions.iter().map(|q| top_hit(&store, &q.question)).collect();
    assert_eq!(answers, clean_answers);
    // The cache was repaired: the next run finds nothing wrong.
    let third = rebuild_forced(&store, &cfg, &source(&site), embedder().as_ref()).unwrap();
    assert_eq!((third.cache_check.rejected_rows, third.cache_misses), (0, 0), "{:?}", third.cache_check);
}

#[test]
fn a_damaged_cache_file_is_moved_aside_and_the_build_still_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let first = ragsnap::rebuild(&store, &Config::default(), &source(&fixture_site()), embedder().as_ref()).unwrap();
    let path = cache_path(&store);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[..100].fill(b'#');
    std::fs::write(&path, &bytes).unwrap();
    let next = rebuild_forced(&store, &Config::default(), &source(&fixture_site()), embedder().as_ref()).unwrap();
    assert!(next.promoted);
    let aside = next.cache_check.quarantined.clone().expect("the damaged file was moved aside");
    assert_eq!(std::fs::read(&aside).unwrap(), bytes, "the damaged file is kept as it was");
    assert_eq!(next.cache_misses, first.distinct_chunks, "everything embedded again");
    assert!(ragsnap::prometheus_metrics(&next).contains("ragsnap_rebuild_cache_quarantined 1"));
    let (id, text) = chunk(&store, 0);
    assert_eq!(top_hit(&store, &text), id);
    let third = rebuild_forced(&store, &Config::default(), &source(&fixture_site()), embedder().as_ref()).unwrap();
    assert_eq!((third.cache_misses, third.cache_check.quarantined.as_deref()), (0, None));
}

#[test]
fn wrong_vectors_with_valid_checksums_are_caught_by_the_sample_and_everything_is_embedded_again() {
    let dir = tempfile::tempdir().unwrap();
    let site = site_copy(dir.path());
    let store = dir.path().join("store");
    let clean = ragsnap::rebuild(&store, &Config::default(), &source(&site), embedder().as_ref()).unwrap();
    let n = head_snapshot(&store).chunks().len();
    let (a, b) = (chunk(&store, 1), chunk(&store, n - 2));
    // A past writer stored each vector under the other's key, checksums and all.
    let fp = embedder().fingerprint().id();
    let dims = embedder().fingerprint().dims;
    let swap_in_cache = || {
        let cache = EmbeddingCache::open(&cache_path(&store)).unwrap();
        let got = cache.get_many(&fp, dims, &[&a.0, &b.0]).unwrap();
        cache.put_many(&fp, &[(&a.0, got[&b.0].as_slice()), (&b.0, got[&a.0].as_slice())]).unwrap();
    };
    swap_in_cache();

    // Every hit compared; two disagreements in the sample are within the allowed share, so the
    // two rows are replaced and the rest of the cache is used.
    let mut cfg = Config::default();
    cfg.cache.sample = 100_000;
    let next = rebuild_forced(&store, &cfg, &source(&site), embedder().as_ref()).unwrap();
    let cc = &next.cache_check;
    assert_eq!(cc.rejected_rows, 0, "checksums match: only the model can tell");
    assert_eq!(cc.sampled, clean.distinct_chunks);
    assert_eq!(cc.sample_mismatches, 2, "{cc:?}");
    assert!(cc.min_sample_cosine.unwrap() < 0.999);
    assert!(!cc.untrusted, "2 of {} is within 1%", cc.sampled);
    assert_eq!((next.cache_misses, cc.hits_discarded), (2, 2));
    assert!(next.promoted);
    assert_eq!(top_hit(&store, &a.1), a.0);
    assert_eq!(top_hit(&store, &b.1), b.0);

    // The same damage with no disagreement allowed: no hit of the fingerprint is trusted.
    swap_in_cache();
    cfg.cache.max_mismatch_share = 0.0;
    let strict = rebuild_forced(&store, &cfg, &source(&site), embedder().as_ref()).unwrap();
    assert!(strict.cache_check.untrusted, "{:?}", strict.cache_check);
    assert_eq!(strict.cache_hits, 0);
    assert_eq!(strict.cache_misses, clean.distinct_chunks);
    assert!(ragsnap::prometheus_metrics(&strict).contains("ragsnap_rebuild_cache_untrusted 1"));
    assert_eq!(top_hit(&store, &a.1), a.0);
    // Rewritten: a full sample now agrees everywhere.
    let again = rebuild_forced(&store, &cfg, &source(&site), embedder().as_ref()).unwrap();
    assert_eq!(again.cache_check.sample_mismatches, 0);
    assert!(again.cache_check.min_sample_cosine.unwrap() >= 0.999);
}

/// The real model, except that any text containing `marker` gets a NaN in its vector.
struct NanFor {
    inner: Arc<ragsnap::OnnxEmbedder>,
    marker: &'static str,
}

impl Embedder for NanFor {
    fn fingerprint(&self) -> &EmbeddingFingerprint {
        self.inner.fingerprint()
    }
    fn embed(&self, texts: &[&str]) -> ragsnap::embed::Result<Vec<Vec<f32>>> {
        let mut out = self.inner.embed(texts)?;
        for (t, v) in texts.iter().zip(&mut out) {
            if t.contains(self.marker) {
                v[5] = f32::NAN;
            }
        }
        Ok(out)
    }
    fn count_tokens(&self, text: &str) -> usize {
        self.inner.count_tokens(text)
    }
}

#[test]
fn an_embedder_returning_nan_is_a_typed_error_and_nothing_is_published() {
    let dir = tempfile::tempdir().unwrap();
    let site = site_copy(dir.path());
    let store = dir.path().join("store");
    let first = ragsnap::rebuild(&store, &Config::default(), &source(&site), embedder().as_ref()).unwrap();
    std::fs::write(
        site.join("quota.html"),
        "<html><body><main><h1>Quotas</h1><p>Zanzibar quotas cap how many jobs one tenant may queue at once.</p></main></body></html>",
    )
    .unwrap();
    let nan = NanFor { inner: embedder(), marker: "Zanzibar" };
    let err = ragsnap::rebuild(&store, &Config::default(), &source(&site), &nan).unwrap_err();
    match &err {
        Error::Embed(EmbedError::NonFinite { text, problem, .. }) => {
            assert!(text.contains("Zanzibar"), "the error names the input: {err}");
            assert!(problem.contains("NaN"), "{err}");
        }
        other => panic!("expected NonFinite, got {other:?}"),
    }
    let s = Store::open_reader(&store).unwrap();
    assert_eq!(s.head().unwrap().id, first.snapshot_id, "head unchanged");
    assert_eq!(s.catalog().list().unwrap().len(), 1, "no snapshot published, not even a rejected one");
    // Nothing non-finite reached the cache, and head still answers.
    let conn = Connection::open(cache_path(&store)).unwrap();
    let blobs: Vec<Vec<u8>> = conn
        .prepare("SELECT vector FROM vectors")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert!(blobs
        .iter()
        .flat_map(|b| b.chunks_exact(4))
        .all(|x| f32::from_le_bytes(x.try_into().unwrap()).is_finite()));
    let (id, text) = chunk(&store, 0);
    assert_eq!(top_hit(&store, &text), id);
}

#[test]
fn a_page_repeating_one_sentence_does_not_get_the_build_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let site = site_copy(dir.path());
    let store = dir.path().join("store");
    let sentence = "Restart the worker pool after changing the queue settings. ";
    // 3000 times: on the fixture site the build before this fix was rejected by the
    // hubness gate (the repeated chunk was in the top 10 of 78 of 200 probes, bound 0.185).
    let body: String = (0..3000).map(|_| format!("<p>{sentence}</p>")).collect();
    std::fs::write(
        site.join("repeat.html"),
        format!("<html><body><main><h1>Worker notes</h1>{body}</main></body></html>"),
    )
    .unwrap();
    let report = ragsnap::rebuild(&store, &Config::default(), &source(&site), embedder().as_ref()).unwrap();
    let hub = report.gates.iter().find(|g| g.name == "hubness").unwrap();
    assert!(report.promoted, "{:?}", report.rejected_because);
    assert!(hub.passed, "{hub:?}");
    let dropped = report.pages_with_repeated_chunks.get("repeat.html").copied().unwrap_or(0);
    assert!(dropped >= 100, "the page's repeated chunks were collapsed: {:?}", report.pages_with_repeated_chunks);
    assert_eq!(report.duplicate_chunks_dropped, report.pages_with_repeated_chunks.values().sum::<usize>());
    // The page is still indexed and found.
    let snap = head_snapshot(&store);
    let entry = snap.documents().iter().find(|d| d.source_path == "repeat.html").unwrap();
    assert!(entry.chunk_count >= 1 && entry.chunk_count <= 3, "{entry:?}");
}

#[test]
fn pages_are_sanitised_within_the_in_flight_memory_budget() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let largest = ragsnap::rebuild::list_files(&fixture_site())
        .unwrap()
        .iter()
        .map(|(_, p)| std::fs::metadata(p).unwrap().len())
        .max()
        .unwrap();
    // Room for about two of the largest pages at once.
    let mut cfg = Config::default();
    cfg.ingest.max_inflight_bytes = 2 * largest * ragsnap::config::INGEST_MEMORY_PER_BYTE;
    let bounded = ragsnap::rebuild(&store, &cfg, &source(&fixture_site()), embedder().as_ref()).unwrap();
    assert!(bounded.ingest_peak_inflight_bytes > 0);
    assert!(
        bounded.ingest_peak_inflight_bytes <= cfg.ingest.max_inflight_bytes,
        "{} > {}",
        bounded.ingest_peak_inflight_bytes,
        cfg.ingest.max_inflight_bytes
    );
    // A budget smaller than any page: one page at a time, same result.
    cfg.ingest.max_inflight_bytes = 1;
    let serial = ragsnap::rebuild(&store, &cfg, &source(&fixture_site()), embedder().as_ref()).unwrap();
    assert_eq!(serial.ingest_peak_inflight_bytes, 1);
    assert_eq!((serial.documents_indexed, serial.chunks), (bounded.documents_indexed, bounded.chunks));
}

#[test]
fn a_bad_setting_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let mut cfg = Config::default();
    cfg.query.floor = Some(-5.0);
    match ragsnap::rebuild(&store, &cfg, &source(&fixture_site()), embedder().as_ref()) {
        Err(Error::InvalidSetting { key, .. }) => assert_eq!(key, "query.floor"),
        other => panic!("expected InvalidSetting, got {:?}", other.map(|r| r.snapshot_id)),
    }
    assert!(!store.exists(), "nothing was created");
}

#[test]
fn a_non_finite_query_vector_is_refused() {
    let snap = {
        let s = Store::open_reader(fixture_store()).unwrap();
        let id = s.head().unwrap().id;
        Arc::new(Snapshot::open(&s, &id).unwrap())
    };
    let searcher = Searcher::new(snap, embedder()).unwrap();
    let mut v = embedder().embed(&["how do retries work?"]).unwrap().pop().unwrap();
    let fp = embedder().fingerprint().clone();
    assert!(searcher.query_vector(&v, &fp, &QueryOptions::default()).is_ok());
    v[3] = f32::INFINITY;
    let err = searcher.query_vector(&v, &fp, &QueryOptions::default()).unwrap_err();
    assert!(err.to_string().contains("component 3"), "{err}");
}
