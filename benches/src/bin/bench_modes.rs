//! The Rust side of the Python-overhead benchmark (`benches/run.sh python`): per-query latency
//! of the library, one mode at a time, over a query list that `benches/python_latency.py`
//! then runs through the Python package in another process of the same run.
//!
//! ```text
//! bench_modes queries --store DIR --n 300 --out FILE   # questions made from the snapshot's chunks
//! bench_modes latency --store DIR --queries FILE --mode dense|hybrid [--warmup 20]
//! ```
//!
//! Both sides open the store's head with the model on one intra-op thread, warm up on the
//! first `--warmup` questions, then time every question once.

use ragsnap::config::RuntimeConfig;
use ragsnap::{Mode, QueryOptions};
use ragsnap_benches::{emit, load_average, summary_ms, timed, Args, Rng};
use serde_json::json;
use std::path::Path;

fn main() {
    let args = Args::parse();
    let store = args.path("store");
    match args.positional.first().map(String::as_str) {
        Some("queries") => queries(&store, args.num("n", 300), &args.path("out")),
        Some("latency") => {
            let mode: Mode = args.get("mode").unwrap_or("hybrid").parse().unwrap_or_else(|e| panic!("--mode: {e}"));
            latency(&store, &args.path("queries"), mode, args.num("warmup", 20));
        }
        other => panic!("bench_modes queries|latency, not {other:?}"),
    }
}

/// `n` short questions: the first sentence of randomly drawn chunk bodies, cut to 12 words.
fn queries(root: &Path, n: usize, out: &Path) {
    let store = ragsnap::Store::open_reader(root).expect("open store");
    let snap = ragsnap::Snapshot::open(&store, &store.head().expect("head").id).expect("open snapshot");
    let mut rng = Rng::new(0x5eed);
    let mut list = Vec::with_capacity(n);
    for _ in 0..n * 20 {
        if list.len() == n {
            break;
        }
        let c = snap.chunks().get(rng.below(snap.chunks().len())).expect("chunk row");
        let body = c.text.split_once("\n\n").map_or(c.text.as_str(), |(_, b)| b);
        let sentence = body.split(['.', '?', '!', '\n']).find(|s| s.split_whitespace().count() >= 3).unwrap_or("");
        let clean: String = sentence.chars().map(|ch| if "#*_`[]()>|:".contains(ch) { ' ' } else { ch }).collect();
        let words: Vec<&str> = clean.split_whitespace().take(12).collect();
        if words.len() >= 3 {
            list.push(words.join(" "));
        }
    }
    std::fs::write(out, serde_json::to_vec(&list).expect("json")).expect("write queries");
    emit(&json!({ "bench": "python-queries", "queries": list.len() }));
}

fn latency(root: &Path, file: &Path, mode: Mode, warmup: usize) {
    let list: Vec<String> =
        serde_json::from_slice(&std::fs::read(file).expect("read queries")).expect("queries file is a JSON list");
    let runtime = RuntimeConfig { intra_threads: 1, ..RuntimeConfig::default() };
    let searcher = ragsnap::open_searcher(root, None, &runtime, mode).expect("open searcher");
    let opts = QueryOptions { mode, ..QueryOptions::default() };
    for q in list.iter().take(warmup) {
        searcher.query(q, &opts).expect("warm-up query");
    }
    let mut secs = Vec::with_capacity(list.len());
    for q in &list {
        let (s, r) = timed(|| searcher.query(q, &opts).expect("query"));
        std::hint::black_box(r);
        secs.push(s);
    }
    emit(&json!({
        "bench": "python-overhead",
        "side": "rust",
        "mode": mode,
        "latency_ms": summary_ms(&secs),
        "load": load_average(),
    }));
}
