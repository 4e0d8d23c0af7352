//! Hot refresh under load: 8 threads × 125 queries while head is rolled back and forward.
//! Zero errors, and every result names a snapshot the reader was serving during the query.

use ragsnap::{Answer, Config, QueryOptions, Reader, Store};
use ragsnap_tests::*;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn _assert_send_sync<T: Send + Sync>() {}

#[test]
fn refresh_during_concurrent_queries() {
    _assert_send_sync::<ragsnap::Searcher>();
    _assert_send_sync::<Reader>();
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    copy_tree(&fixture_site(), &site);
    let store = dir.path().join("store");
    let cfg = Config::default();
    let a = ragsnap::rebuild(&store, &cfg, &source(&site), embedder().as_ref()).unwrap().snapshot_id;
    let page = site.join("guide/queues.html");
    let html = std::fs::read_to_string(&page).unwrap();
    let marker = if html.contains("</main>") { "</main>" } else { "</article>" };
    let added = "<h2>Queue quotas</h2><p>Each queue holds at most ten million pending jobs by default; set zq_overflow_pending to raise the quota.</p>";
    std::fs::write(&page, html.replacen(marker, &format!("{added}{marker}"), 1)).unwrap();
    let b = ragsnap::rebuild(&store, &cfg, &source(&site), embedder().as_ref()).unwrap().snapshot_id;

    let reader = Arc::new(Reader::open(&store, embedder()).unwrap());
    assert_eq!(reader.snapshot_id(), b);
    // (time from which a snapshot is served, id); a snapshot is served until the next entry.
    let served = Arc::new(Mutex::new(vec![(Instant::now(), b.clone())]));
    let results = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let workers: Vec<_> = (0..8)
        .map(|t| {
            let reader = reader.clone();
            let results = results.clone();
            std::thread::spawn(move || {
                let opts = QueryOptions { k: 3, floor: Some(0.0), ..Default::default() };
                for i in 0..125 {
                    let q = if (i + t) % 2 == 0 {
                        "queue quota for pending jobs, zq_overflow_pending"
                    } else {
                        "rotate TLS certificates"
                    };
                    let t0 = Instant::now();
                    let r = reader.query(q, &opts);
                    let t1 = Instant::now();
                    results.lock().unwrap().push((t0, t1, q, r));
                }
            })
        })
        .collect();
    // Roll back and forward while they run.
    let mut store_w = None;
    for (i, target) in [&a, &b, &a, &b].iter().enumerate() {
        std::thread::sleep(Duration::from_millis(150 + 50 * i as u64));
        let mut s = store_w.take().unwrap_or_else(|| Store::open_writer(&store).unwrap());
        // Moving head back marks the snapshot it leaves backed out, so going forward again is
        // a forced promotion.
        s.promote_with(target, true, false, "refresh test").unwrap();
        store_w = Some(s);
        assert!(reader.refresh().unwrap());
        served.lock().unwrap().push((Instant::now(), (*target).clone()));
    }
    for w in workers {
        w.join().unwrap();
    }
    let served = served.lock().unwrap().clone();
    let results = std::mem::take(&mut *results.lock().unwrap());
    assert_eq!(results.len(), 1000);
    let mut per_snapshot = std::collections::HashMap::new();
    for (t0, t1, q, r) in results {
        let r = r.expect("no query may fail during a refresh");
        // Snapshots served at some moment of [t0, t1]: the one current at t0 and any switched to before t1.
        let mut ok: Vec<&str> = Vec::new();
        for (i, (from, id)) in served.iter().enumerate() {
            let until = served.get(i + 1).map(|x| x.0);
            if *from <= t1 && until.is_none_or(|u| u >= t0) {
                ok.push(id);
            }
        }
        assert!(ok.contains(&r.snapshot_id.as_str()), "result from {} outside its window {ok:?}", r.snapshot_id);
        *per_snapshot.entry(r.snapshot_id.clone()).or_insert(0) += 1;
        // Content must match the snapshot that answered (no torn reads across snapshots).
        if q.starts_with("queue quota") {
            let Answer::Hits { hits } = r.answer else { panic!("floor 0 answers") };
            let has_quota = hits.iter().any(|h| h.text.contains("zq_overflow_pending"));
            assert_eq!(has_quota, r.snapshot_id == b, "snapshot {} returned content of the other", r.snapshot_id);
        }
    }
    eprintln!("answers per snapshot: {per_snapshot:?} in {:?}", start.elapsed());
    assert_eq!(reader.snapshot_id(), b);

    // Rollback restores the matching lexical index: the identifier only B has is found
    // lexically on B and nowhere on A.
    let lexical = QueryOptions { mode: ragsnap::Mode::Lexical, ..Default::default() };
    assert!(matches!(reader.query("zq_overflow_pending", &lexical).unwrap().answer, Answer::Hits { .. }));
    let mut s = store_w.take().unwrap();
    s.rollback(&a, "lexical check", false).unwrap();
    assert!(reader.refresh().unwrap());
    let r = reader.query("zq_overflow_pending", &lexical).unwrap();
    assert_eq!(r.snapshot_id, a);
    assert!(matches!(r.answer, Answer::NoConfidentMatch { .. }), "{r:?}");
}
