//! Snapshot and query benchmark on a built store.
//!
//! ```text
//! bench_query open     --store DIR [--reps 10]   # first open in this process, then warm re-opens
//! bench_query latency  --store DIR [--queries 1000]
//! bench_query rss      --store DIR [--queries 1000]
//! bench_query verify   --store DIR [--reps 3]
//! bench_query rollback --store DIR [--reps 3]    # head → previous → head, each verified
//! bench_query inproc   --store DIR --questions Q.jsonl [--modes dense,hybrid] [--threads 1,2]
//!                      [--seconds 10] [--k 5]
//! ```
//!
//! `inproc` is the library side of the service benchmark (`run.sh` part `serve`): the same
//! questions file and modes `benches/serve_load.py` sends to `ragsnap serve`, asked in process by
//! T closed-loop threads for a fixed time. Each thread has its own single-threaded model session
//! over one shared snapshot, as the service's session pool does, so the difference from the
//! service at the same parallelism is what HTTP, JSON and admission add.
//!
//! Queries are made from the snapshot itself: `--queries` chunk rows drawn with a fixed seed,
//! each turned into its body's first sentence cut to 12 words (Markdown symbols dropped), which
//! reads like a short question about that page. `latency` and `rss` run single-threaded
//! (embedder `intra_threads = 1`; `run.sh` sets `RAYON_NUM_THREADS=1`).

use ragsnap::{open_embedder, Answer, Config, Embedder, QueryOptions, Searcher, Snapshot, Store};
use ragsnap_benches::{cpu_secs, emit, load_average, median, peak_rss_kib, rss_kib, summary_ms, timed, Args, Rng};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let args = Args::parse();
    let store = args.path("store");
    match args.positional.first().map(String::as_str) {
        Some("open") => open(&store, args.num("reps", 10)),
        Some("latency") => latency(&store, args.num("queries", 1000)),
        Some("rss") => rss(&store, args.num("queries", 1000)),
        Some("verify") => verify(&store, args.num("reps", 3)),
        Some("rollback") => rollback(&store, args.num("reps", 3)),
        Some("inproc") => inproc(&store, &args),
        other => panic!("bench_query open|latency|rss|verify|rollback|inproc, not {other:?}"),
    }
}

fn single_thread_embedder() -> Arc<ragsnap::OnnxEmbedder> {
    let mut cfg = Config::default();
    cfg.runtime.intra_threads = 1;
    open_embedder(&cfg.runtime).expect("open the embedder")
}

fn open_snapshot(root: &Path) -> (f64, f64, Snapshot) {
    let (store_secs, store) = timed(|| Store::open_reader(root).expect("open store"));
    let (snap_secs, snap) = timed(|| {
        let head = store.head().expect("head").id;
        Snapshot::open(&store, &head).expect("open snapshot")
    });
    (store_secs, snap_secs, snap)
}

fn open(root: &Path, reps: usize) {
    let t = Instant::now();
    let (first_store, first_snap, snap) = open_snapshot(root);
    let first = t.elapsed().as_secs_f64();
    let bytes: u64 = snap.manifest().files.iter().map(|f| f.size).sum();
    let (kind, vectors) = (snap.manifest().index.kind, snap.vectors().len());
    drop(snap);
    let mut warm: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            let (_, _, s) = open_snapshot(root);
            let secs = t.elapsed().as_secs_f64();
            drop(s);
            secs
        })
        .collect();
    let parts = open_parts(root);
    // What a query service also pays before its first answer.
    let (embedder_secs, embedder) = timed(single_thread_embedder);
    let (_, _, snap) = open_snapshot(root);
    let (searcher_secs, _searcher) = timed(|| Searcher::new(Arc::new(snap), embedder).expect("searcher"));
    emit(&json!({
        "bench": "open",
        "snapshot_bytes": bytes,
        "index_kind": kind,
        "vectors": vectors,
        "first_open_secs": first,
        "first_open_parts": {"store_open_reader": first_store, "snapshot_open": first_snap},
        "warm_open_parts": parts,
        "warm_open_median_secs": median(&mut warm),
        "warm_open_min_secs": warm.first().copied(),
        "warm_open_max_secs": warm.last().copied(),
        "reps": reps,
        "embedder_load_secs": embedder_secs,
        "searcher_new_secs (canary check)": searcher_secs,
        "load": load_average(),
    }));
}

/// Where a warm `Snapshot::open` spends its time, step by step with the same public calls
/// `Snapshot::load` makes (crates/ragsnap/src/snapshot.rs).
fn open_parts(root: &Path) -> serde_json::Value {
    use ragsnap::index::{HnswIndex, HnswParams};
    use ragsnap::store::{tables, ArtifactKind};
    let store = Store::open_reader(root).expect("open store");
    let id = store.head().expect("head").id;
    let keep = ragsnap::store::LOADED_KINDS;
    let (verify, opened) = timed(|| store.open_snapshot_keeping(&id, &keep).expect("open_snapshot"));
    let m = opened.manifest.clone();
    let (vectors, set) = timed(|| {
        let p = opened.payload(ArtifactKind::Vectors).expect("read").expect("vectors");
        let path = opened.path(ArtifactKind::Vectors).expect("path");
        let floats = tables::decode_vectors(&path, &p, m.counts.vectors, m.fingerprint.dims).expect("decode");
        std::sync::Arc::new(ragsnap::index::VectorSet::new(m.fingerprint.dims, floats).expect("vectors"))
    });
    let (chunks, _) = timed(|| {
        let path = opened.path(ArtifactKind::Chunks).expect("path");
        ragsnap::store::ChunkTable::open(&path, m.counts.chunks).expect("chunk table")
    });
    let (documents, _) = timed(|| {
        let p = opened.payload(ArtifactKind::Documents).expect("read").expect("documents");
        tables::decode_documents(&opened.path(ArtifactKind::Documents).expect("path"), &p).expect("decode")
    });
    let (hnsw_read, payload) = timed(|| opened.payload(ArtifactKind::Hnsw).expect("read"));
    // A graph updated in place has an id map; it is loaded as `Snapshot::load` loads it.
    let ids = opened.payload(ArtifactKind::HnswIds).expect("read");
    let hnsw_load = payload.map(|p| {
        let params = HnswParams { m: m.index.m, ef_construction: m.index.ef_construction };
        timed(|| match &ids {
            None => HnswIndex::from_bytes_with_vectors(&p, params, set.clone()).expect("hnsw"),
            Some(ids) => {
                let map = ragsnap::index::IdMap::from_bytes(ids, m.counts.chunks).expect("id map");
                HnswIndex::from_bytes_mapped(&p, params, &set, map).expect("hnsw")
            }
        })
        .0
    });
    let (lexical, _) = timed(|| {
        opened
            .payload(ArtifactKind::Lexical)
            .expect("read")
            .map(|p| ragsnap::lexical::LexicalIndex::from_bytes(&p).expect("lexical"))
    });
    json!({"verify_checksums_and_manifest": verify, "vectors_read_decode": vectors, "chunk_table_open": chunks,
           "documents": documents, "hnsw_read_payload": hnsw_read, "hnsw_from_bytes": hnsw_load,
           "lexical_read_and_load": lexical})
}

/// Short question-like texts drawn from the snapshot's own chunks.
fn make_queries(snap: &Snapshot, n: usize) -> Vec<String> {
    let mut rng = Rng::new(0x9e3);
    let rows = snap.chunks().len();
    let mut out = Vec::with_capacity(n);
    let mut tries = 0;
    while out.len() < n && tries < n * 20 {
        tries += 1;
        let c = snap.chunks().get(rng.below(rows)).expect("chunk row");
        let body = c.text.split_once("\n\n").map_or(c.text.as_str(), |(_, b)| b);
        if body.trim_start().starts_with("```") {
            continue;
        }
        let sentence = body.split(['.', '?', '!', '\n']).find(|s| s.split_whitespace().count() >= 3).unwrap_or("");
        let clean: String = sentence.chars().map(|ch| if "#*_`[]()>|:".contains(ch) { ' ' } else { ch }).collect();
        let words: Vec<&str> = clean.split_whitespace().take(12).collect();
        if words.len() >= 3 {
            out.push(words.join(" "));
        }
    }
    out
}

fn latency(root: &Path, n: usize) {
    let (_, _, snap) = open_snapshot(root);
    let snap = Arc::new(snap);
    let embedder = single_thread_embedder();
    let fp = embedder.fingerprint().clone();
    let searcher = Searcher::new(snap.clone(), embedder.clone()).expect("searcher");
    let queries = make_queries(&snap, n);
    let opts = QueryOptions::default();
    // Searcher::search fetches max(4k, 40) candidates with ef = max(tuned ef, that).
    let fetch = (opts.k * 4).max(40).min(snap.vectors().len());
    let ef = snap.manifest().index.ef_search.max(fetch);
    for q in queries.iter().take(50) {
        searcher.query(q, &opts).expect("warm-up query");
    }
    let mut e2e = Vec::new();
    let mut refused = 0usize;
    for q in &queries {
        let (s, r) = timed(|| searcher.query(q, &opts).expect("query"));
        if matches!(r.answer, Answer::NoConfidentMatch { .. }) {
            refused += 1;
        }
        e2e.push(s);
    }
    let mut embed = Vec::new();
    let mut vectors = Vec::new();
    for q in &queries {
        let (s, mut v) = timed(|| embedder.embed(&[q.as_str()]).expect("embed"));
        embed.push(s);
        vectors.push(v.pop().expect("one vector"));
    }
    let mut search_only = Vec::new();
    for v in &vectors {
        let (s, hits) = timed(|| snap.index().search(v, fetch, ef));
        std::hint::black_box(hits);
        search_only.push(s);
    }
    let mut with_meta = Vec::new();
    for v in &vectors {
        let (s, r) = timed(|| searcher.query_vector(v, &fp, &opts).expect("query_vector"));
        std::hint::black_box(r);
        with_meta.push(s);
    }
    emit(&json!({
        "bench": "latency",
        "queries": queries.len(),
        "index_kind": snap.manifest().index.kind,
        "vectors": snap.vectors().len(),
        "k": opts.k,
        "fetch": fetch,
        "ef": ef,
        "refused": refused,
        "end_to_end_ms": summary_ms(&e2e),
        "embed_ms": summary_ms(&embed),
        "search_only_ms": summary_ms(&search_only),
        "search_plus_metadata_ms": summary_ms(&with_meta),
        "example_queries": queries.iter().take(3).collect::<Vec<_>>(),
        "load": load_average(),
    }));
}

fn rss(root: &Path, n: usize) {
    let t = Instant::now();
    let (_, _, snap) = open_snapshot(root);
    let snap = Arc::new(snap);
    let after_open = rss_kib();
    let embedder = single_thread_embedder();
    let searcher = Searcher::new(snap.clone(), embedder).expect("searcher");
    let after_model = rss_kib();
    let queries = make_queries(&snap, n);
    let opts = QueryOptions::default();
    for q in &queries {
        std::hint::black_box(searcher.query(q, &opts).expect("query"));
    }
    emit(&json!({
        "bench": "rss",
        "queries": queries.len(),
        "secs": t.elapsed().as_secs_f64(),
        "rss_after_snapshot_open_kib": after_open,
        "rss_after_embedder_kib": after_model,
        "rss_end_kib": rss_kib(),
        "peak_rss_kib": peak_rss_kib(),
        "load": load_average(),
    }));
}

fn verify(root: &Path, reps: usize) {
    let store = Store::open_reader(root).expect("open store");
    let head = store.head().expect("head").id;
    let mut secs = Vec::new();
    let mut bytes = 0;
    for _ in 0..reps.max(1) {
        let (s, rep) = timed(|| store.verify(&head).expect("verify"));
        assert!(rep.ok, "head does not verify: {:?}", rep.problems);
        bytes = rep.bytes;
        secs.push(s);
    }
    let first = secs[0];
    let med = median(&mut secs);
    emit(&json!({
        "bench": "verify",
        "bytes": bytes,
        "first_secs": first,
        "median_secs": med,
        "mb_per_s": bytes as f64 / 1e6 / med,
        "reps": reps,
        "load": load_average(),
    }));
}

fn rollback(root: &Path, reps: usize) {
    let mut store = Store::open_writer(root).expect("open store for writing");
    let head = store.head().expect("head").id;
    let previous = store.previous_head(1).expect("a previous head (run the rebuild bench first)");
    let mut back = Vec::new();
    let mut forth = Vec::new();
    for _ in 0..reps.max(1) {
        let (s, _) = timed(|| store.rollback(&previous, "bench: rollback", false).expect("rollback"));
        back.push(s);
        // The rollback marked head backed out: going forward again is a forced promotion.
        let (s, _) = timed(|| store.promote_with(&head, true, false, "bench: roll forward").expect("roll forward"));
        forth.push(s);
    }
    assert_eq!(store.head().expect("head").id, head, "head restored");
    let bytes: u64 = store.verify(&previous).expect("verify").bytes;
    emit(&json!({
        "bench": "rollback",
        "target_bytes": bytes,
        "rollback_median_secs": median(&mut back),
        "roll_forward_median_secs": median(&mut forth),
        "reps": reps,
        "load": load_average(),
    }));
}

/// The questions of a `{"question": ...}` JSON-lines file.
fn read_questions(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let qs: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: not JSON ({e}): {l}", path.display()));
            v["question"].as_str().unwrap_or_else(|| panic!("{}: no \"question\" in {l}", path.display())).to_string()
        })
        .collect();
    assert!(!qs.is_empty(), "{}: no questions", path.display());
    qs
}

fn inproc(root: &Path, args: &Args) {
    let questions = Arc::new(read_questions(&args.path("questions")));
    let seconds: f64 = args.num("seconds", 10.0);
    let k: usize = args.num("k", 5);
    let modes: Vec<ragsnap::Mode> = args
        .get("modes")
        .unwrap_or("dense,hybrid")
        .split(',')
        .map(|m| m.parse().unwrap_or_else(|e| panic!("--modes: {e}")))
        .collect();
    let threads: Vec<usize> = args
        .get("threads")
        .unwrap_or("1")
        .split(',')
        .map(|t| t.parse().unwrap_or_else(|e| panic!("--threads {t}: {e}")))
        .collect();
    let (_, _, snap) = open_snapshot(root);
    let snap = Arc::new(snap);
    let most = threads.iter().copied().max().unwrap_or(1).max(1);
    // One searcher per thread, each with its own single-threaded session, loaded as the
    // service's pool loads its members (one intra-op thread, one bulk session).
    let member = || {
        let mut cfg = Config::default();
        cfg.runtime.intra_threads = 1;
        cfg.runtime.bulk_sessions = 1;
        open_embedder(&cfg.runtime).expect("open the embedder")
    };
    let searchers: Vec<Arc<Searcher>> =
        (0..most).map(|_| Arc::new(Searcher::new(snap.clone(), member()).expect("searcher"))).collect();
    for mode in modes {
        let opts = QueryOptions { mode, k, ..QueryOptions::default() };
        for q in questions.iter() {
            searchers[0].query(q, &opts).expect("warm-up query");
        }
        for &t in &threads {
            let stop = Instant::now() + std::time::Duration::from_secs_f64(seconds);
            let started = Instant::now();
            let cpu_before = cpu_secs();
            let workers: Vec<_> = (0..t)
                .map(|i| {
                    let (searcher, questions, opts) = (searchers[i].clone(), questions.clone(), opts.clone());
                    std::thread::spawn(move || {
                        let (mut lat, mut refused, mut n) = (Vec::new(), 0usize, i);
                        while Instant::now() < stop {
                            let q = &questions[n % questions.len()];
                            n += t;
                            let (s, r) = timed(|| searcher.query(q, &opts).expect("query"));
                            refused += usize::from(matches!(r.answer, Answer::NoConfidentMatch { .. }));
                            lat.push(s);
                        }
                        (lat, refused)
                    })
                })
                .collect();
            let mut lat = Vec::new();
            let mut refused = 0;
            for w in workers {
                let (l, r) = w.join().expect("query thread");
                lat.extend(l);
                refused += r;
            }
            let wall = started.elapsed().as_secs_f64();
            let cpu = cpu_secs() - cpu_before;
            emit(&json!({
                "bench": "inproc",
                "cpu_ms_per_query": 1000.0 * cpu / lat.len().max(1) as f64,
                "cpu_share": cpu / wall,
                "mode": mode,
                "threads": t,
                "questions": questions.len(),
                "k": k,
                "queries": lat.len(),
                "refused": refused,
                "queries_per_s": lat.len() as f64 / wall,
                "latency_ms": summary_ms(&lat),
                "peak_rss_kib": peak_rss_kib(),
                "load": load_average(),
            }));
        }
    }
}
