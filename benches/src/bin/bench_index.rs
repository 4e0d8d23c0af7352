//! Index benchmark: hnsw_rs build (2 threads) and single-thread queries/s against recall@10,
//! on vector files that `python/index_ref.py` (hnswlib, faiss) reads too.
//!
//! ```text
//! bench_index prepare-real  --store DIR --out DIR [--queries 1000] [--seed S]
//! bench_index prepare-synth --out DIR [--n 100000] [--dims 384] [--clusters 200] [--queries 1000]
//! bench_index run     --data DIR --dist ragsnap|fast [--m 16] [--efc 200] [--efs 10,16,...]
//!                     [--build-threads 2] [--stop-at 0.995]
//! bench_index crossover --data DIR [--sizes 500,1000,2000,4000,8000,16000] [--fetch 40]
//! ```
//!
//! A data folder holds `base.f32`, `queries.f32` (raw little-endian rows), `truth.u32` (the exact
//! top-10 of each query by `ragsnap_index::exact_search`) and `meta.json`.
//!
//! * `prepare-real` takes the vectors of the store's head snapshot (real MiniLM embeddings),
//!   drops exact duplicates (pages repeat some chunks), and holds out `--queries` random rows as
//!   queries; the rest is the base.
//! * `prepare-synth` makes clustered unit vectors: `--clusters` Gaussian centres, each point its
//!   centre plus Gaussian noise of the same norm, L2-normalised; queries come from the same law.
//! * `run` builds with `HnswIndex::build` (`--dist ragsnap`, the product code: hnsw_rs build,
//!   flat search) or the same hnsw_rs calls with the product's distance wrapped to count its
//!   evaluations (`--dist fast`, searched by hnsw_rs), then sweeps `ef` single-threaded (fastest
//!   of repeated passes) until recall@10 passes `--stop-at`. The `fast` run counts distance
//!   evaluations per query at each `ef` and times one evaluation of each dot product (the
//!   product's `DotDistance` and `dot`, its AVX2+FMA kernel, hnsw_rs's own `DistDot`) on random
//!   base rows, which says what share of a ragsnap query goes into `DotDistance`.

use hnsw_rs::prelude::{Distance, Hnsw};
use ragsnap::index::{dot_kernel, exact_search, DotDistance, HnswIndex, HnswParams, VectorSet};
use ragsnap_benches::{cpu_secs, emit, load_average, pool, read_f32, read_u32, write_f32, write_u32, Args, Rng};
use rayon::prelude::*;
use serde_json::json;
use std::collections::HashSet;
use std::path::Path;
use std::time::Instant;

const K: usize = 10;

/// Distance evaluations made through [`CountingDot`] so far.
static EVALS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The product's [`DotDistance`], counting its evaluations.
#[derive(Clone, Copy, Default)]
struct CountingDot;

impl Distance<f32> for CountingDot {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        EVALS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        DotDistance.eval(a, b)
    }
}

fn counted_evals() -> u64 {
    EVALS.load(std::sync::atomic::Ordering::Relaxed)
}

/// `(query, ef) → (row, score)` best first.
type SearchFn<'a> = dyn Fn(&[f32], usize) -> Vec<(u32, f32)> + 'a;
const MAX_LAYERS: usize = 16;

fn main() {
    let args = Args::parse();
    match args.positional.first().map(String::as_str) {
        Some("prepare-real") => prepare_real(&args),
        Some("prepare-synth") => prepare_synth(&args),
        Some("run") => run(&args),
        Some("crossover") => crossover(&args),
        other => panic!("bench_index prepare-real|prepare-synth|run|crossover, not {other:?}"),
    }
}

fn write_data(out: &Path, dims: usize, base: &[f32], queries: &[f32], source: &str) {
    std::fs::create_dir_all(out).expect("create --out");
    let set = VectorSet::new(dims, base.to_vec()).expect("base");
    let nq = queries.len() / dims;
    let t = Instant::now();
    let truth: Vec<u32> = pool(2).install(|| {
        (0..nq)
            .into_par_iter()
            .flat_map_iter(|q| exact_search(&set, &queries[q * dims..(q + 1) * dims], K).into_iter().map(|h| h.0))
            .collect()
    });
    let truth_secs = t.elapsed().as_secs_f64();
    write_f32(&out.join("base.f32"), base).expect("base.f32");
    write_f32(&out.join("queries.f32"), queries).expect("queries.f32");
    write_u32(&out.join("truth.u32"), &truth).expect("truth.u32");
    let meta = json!({"dims": dims, "n": set.len(), "queries": nq, "k": K, "source": source});
    std::fs::write(out.join("meta.json"), serde_json::to_vec_pretty(&meta).expect("json")).expect("meta.json");
    emit(&json!({"bench": "index-prepare", "source": source, "n": set.len(), "queries": nq, "dims": dims,
                 "truth_secs_2_threads": truth_secs, "out": out}));
}

fn prepare_real(args: &Args) {
    let store = args.path("store");
    let out = args.path("out");
    let nq: usize = args.num("queries", 1000);
    let snap = ragsnap::open_head(&store).expect("open the store's head snapshot");
    let vectors = snap.vectors();
    let dims = vectors.dims();
    let mut seen = HashSet::new();
    let mut rows: Vec<usize> = (0..vectors.len())
        .filter(|&i| seen.insert(vectors.get(i).iter().map(|x| x.to_bits()).collect::<Vec<u32>>()))
        .collect();
    Rng::new(args.num("seed", 42)).shuffle(&mut rows);
    let (q_rows, b_rows) = rows.split_at(nq.min(rows.len() / 10));
    let mut b_rows = b_rows.to_vec();
    b_rows.sort_unstable();
    let base: Vec<f32> = b_rows.iter().flat_map(|&i| vectors.get(i).iter().copied()).collect();
    let queries: Vec<f32> = q_rows.iter().flat_map(|&i| vectors.get(i).iter().copied()).collect();
    let source = format!(
        "snapshot {}: {} vectors, {} distinct, {} held out as queries",
        snap.id(),
        vectors.len(),
        rows.len(),
        q_rows.len()
    );
    write_data(&out, dims, &base, &queries, &source);
}

fn prepare_synth(args: &Args) {
    let out = args.path("out");
    let n: usize = args.num("n", 100_000);
    let dims: usize = args.num("dims", 384);
    let clusters: usize = args.num("clusters", 200);
    let nq: usize = args.num("queries", 1000);
    let mut rng = Rng::new(args.num("seed", 7));
    let unit = |v: &mut Vec<f32>| {
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        v.iter_mut().for_each(|x| *x /= norm);
    };
    let centres: Vec<Vec<f32>> = (0..clusters)
        .map(|_| {
            let mut c: Vec<f32> = (0..dims).map(|_| rng.normal() as f32).collect();
            unit(&mut c);
            c
        })
        .collect();
    let sigma = 1.0 / (dims as f64).sqrt();
    let point = |rng: &mut Rng| {
        let c = &centres[rng.below(clusters)];
        let mut v: Vec<f32> = c.iter().map(|x| x + (rng.normal() * sigma) as f32).collect();
        unit(&mut v);
        v
    };
    let base: Vec<f32> = (0..n).flat_map(|_| point(&mut rng)).collect();
    let queries: Vec<f32> = (0..nq).flat_map(|_| point(&mut rng)).collect();
    let source = format!("synthetic: {n} clustered unit vectors ({clusters} centres, noise norm ≈ 1), seed 7");
    write_data(&out, dims, &base, &queries, &source);
}

struct Data {
    dims: usize,
    base: VectorSet,
    queries: Vec<Vec<f32>>,
    truth: Vec<HashSet<u32>>,
    source: String,
}

fn load(dir: &Path) -> Data {
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("meta.json")).expect("meta.json")).expect("json");
    let dims = meta["dims"].as_u64().expect("dims") as usize;
    let base = VectorSet::new(dims, read_f32(&dir.join("base.f32")).expect("base.f32")).expect("base");
    let queries: Vec<Vec<f32>> =
        read_f32(&dir.join("queries.f32")).expect("queries.f32").chunks_exact(dims).map(<[f32]>::to_vec).collect();
    let truth: Vec<HashSet<u32>> = read_u32(&dir.join("truth.u32"))
        .expect("truth.u32")
        .chunks_exact(K)
        .map(|t| t.iter().copied().collect())
        .collect();
    Data { dims, base, queries, truth, source: meta["source"].as_str().unwrap_or("").to_string() }
}

/// The same graph construction as `HnswIndex::build`, with any distance.
fn build_raw<D: Distance<f32> + Send + Sync + Default>(set: &VectorSet, m: usize, efc: usize) -> Hnsw<'_, f32, D> {
    let graph = Hnsw::new(m, set.len().max(1), MAX_LAYERS, efc, D::default());
    let rows: Vec<(&[f32], usize)> = (0..set.len()).map(|i| (set.get(i), i)).collect();
    graph.parallel_insert_slice(&rows);
    let mut graph = graph;
    graph.set_searching_mode(true);
    graph
}

/// The same result shaping as `HnswIndex::search`.
fn search_raw<D: Distance<f32> + Send + Sync>(g: &Hnsw<'_, f32, D>, q: &[f32], k: usize, ef: usize) -> Vec<(u32, f32)> {
    let mut hits: Vec<(u32, f32)> =
        g.search(q, k, ef.max(k)).into_iter().map(|n| (n.d_id as u32, 1.0 - n.distance)).collect();
    hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    hits
}

fn sweep(data: &Data, efs: &[usize], stop_at: f64, search: &SearchFn<'_>) -> Vec<serde_json::Value> {
    // Warm-up pass (page faults, caches), not timed.
    for q in &data.queries {
        std::hint::black_box(search(q, efs[0]));
    }
    let mut out = Vec::new();
    for &ef in efs {
        let mut hits = 0usize;
        let evals = counted_evals();
        let t = Instant::now();
        let results: Vec<Vec<(u32, f32)>> = data.queries.iter().map(|q| search(q, ef)).collect();
        let mut best = t.elapsed().as_secs_f64();
        // Only the `fast` distance counts; for the others this is 0.
        let evals = (counted_evals() - evals) as f64 / data.queries.len() as f64;
        // More passes over the queries until 0.5 s were spent (at most 20); the fastest pass
        // counts, which filters out the moments another process had the core.
        let (mut spent, mut passes) = (best, 1);
        while spent < 0.5 && passes < 20 {
            let t = Instant::now();
            for q in &data.queries {
                std::hint::black_box(search(q, ef));
            }
            let secs = t.elapsed().as_secs_f64();
            best = best.min(secs);
            spent += secs;
            passes += 1;
        }
        let secs = best;
        for (r, truth) in results.iter().zip(&data.truth) {
            hits += r.iter().filter(|h| truth.contains(&h.0)).count();
        }
        let recall = hits as f64 / (data.queries.len() * K) as f64;
        out.push(json!({"ef": ef, "recall": recall, "qps": data.queries.len() as f64 / secs,
                        "us_per_query": secs / data.queries.len() as f64 * 1e6, "evals_per_query": evals,
                        "passes": passes}));
        if recall >= stop_at {
            break;
        }
    }
    out
}

/// One searcher's results: (lib, build secs, build CPU secs, sweep, flat copy secs).
type Variant = (String, f64, f64, Vec<serde_json::Value>, Option<f64>);

fn run(args: &Args) {
    let dir = args.path("data");
    let data = load(&dir);
    let dist = args.get("dist").unwrap_or("ragsnap").to_string();
    let m: usize = args.num("m", 16);
    let efc: usize = args.num("efc", 200);
    let efs = args.list("efs", &[10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512]);
    let build_threads: usize = args.num("build-threads", 2);
    let stop_at: f64 = args.num("stop-at", 0.995);
    let builders = pool(build_threads);
    let cpu0 = cpu_secs();
    let mut variants: Vec<Variant> = Vec::new();
    match dist.as_str() {
        "ragsnap" => {
            let t = Instant::now();
            let idx = builders
                .install(|| HnswIndex::build(&data.base, HnswParams { m, ef_construction: efc }))
                .expect("build");
            let (build, cpu) = (t.elapsed().as_secs_f64(), cpu_secs() - cpu0);
            let sw = sweep(&data, &efs, stop_at, &|q, ef| idx.search(q, K, ef));
            variants.push((
                format!("ragsnap (hnsw_rs build, flat search, {} dot)", ragsnap::index::dot_kernel()),
                build,
                cpu,
                sw,
                None,
            ));
            // hnsw_rs's own search of the very same graph, for comparison.
            let sw = sweep(&data, &efs, stop_at, &|q, ef| idx.search_hnsw_rs(q, K, ef).expect("built graph"));
            variants.push(("same graph, hnsw_rs search".into(), build, cpu, sw, None));
        }
        "fast" => {
            // hnsw_rs's own search over the product's distance, every evaluation counted.
            let t = Instant::now();
            let g = builders.install(|| build_raw::<CountingDot>(&data.base, m, efc));
            let (build, cpu) = (t.elapsed().as_secs_f64(), cpu_secs() - cpu0);
            let sw = sweep(&data, &efs, stop_at, &|q, ef| search_raw(&g, q, K, ef));
            variants.push((format!("hnsw_rs search, {} dot, evaluations counted", dot_kernel()), build, cpu, sw, None));
        }
        other => panic!("--dist ragsnap|fast, not {other:?}"),
    }
    // Brute force for scale (what ragsnap uses below `TuneConfig::exact_below` vectors), on the first 100 queries.
    let nq = data.queries.len().min(100);
    let t = Instant::now();
    for q in &data.queries[..nq] {
        std::hint::black_box(exact_search(&data.base, q, K));
    }
    let exact_qps = nq as f64 / t.elapsed().as_secs_f64();
    let costs = (dist == "fast").then(|| dist_costs(&data.base));
    for (i, (lib, build, cpu, sw, copy)) in variants.into_iter().enumerate() {
        emit(&json!({
            "bench": "index",
            "lib": lib,
            "dist": match (dist.as_str(), i) {
                (_, 0) => dist.clone(),
                ("ragsnap", _) => "hnsw_rs-search".to_string(),
                _ => "flat".to_string(),
            },
            "data": dir.file_name().map(|n| n.to_string_lossy().into_owned()),
            "source": data.source,
            "n": data.base.len(),
            "dims": data.dims,
            "queries": data.queries.len(),
            "k": K,
            "m": m,
            "ef_construction": efc,
            "build_threads": build_threads,
            "build_secs": build,
            "build_cpu_secs": cpu,
            "flat_copy_secs": copy,
            "sweep": sw,
            "exact_qps": exact_qps,
            "distance_ns": if i == 0 { costs.clone() } else { None },
            "load": load_average(),
        }));
    }
}

/// Exact search against the tuned HNSW index at growing sizes (the first n base rows), to set
/// `TuneConfig::exact_below`: each size is tuned as `ragsnap rebuild` tunes (recall@10 ≥ 0.98
/// on 500 sample rows), then both answer every query for `--fetch` candidates, as `Searcher`
/// asks (`max(4k, 40)`, with `ef` raised to it), single-threaded, fastest of 3 passes.
fn crossover(args: &Args) {
    use ragsnap::index::{tune_best_effort, TuneConfig};
    use std::sync::Arc;
    let data = load(&args.path("data"));
    let sizes = args.list("sizes", &[500, 1000, 2000, 4000, 8000, 16000]);
    let fetch: usize = args.num("fetch", 40);
    let nq = data.queries.len().min(500);
    let queries = &data.queries[..nq];
    let time = |f: &dyn Fn(&[f32]) -> usize| {
        let mut best = f64::INFINITY;
        for _ in 0..3 {
            let t = Instant::now();
            let mut s = 0usize;
            for q in queries {
                s += f(q);
            }
            std::hint::black_box(s);
            best = best.min(t.elapsed().as_secs_f64() / nq as f64 * 1e6);
        }
        best
    };
    for n in sizes.into_iter().filter(|&n| n <= data.base.len()) {
        let set = Arc::new(VectorSet::new(data.dims, data.base.as_slice()[..n * data.dims].to_vec()).expect("set"));
        let cfg = TuneConfig { exact_below: 0, ..TuneConfig::default() };
        let t = Instant::now();
        let (idx, rep) = pool(2).install(|| tune_best_effort(set.clone(), &cfg)).expect("tune");
        let tune_secs = t.elapsed().as_secs_f64();
        let ef = rep.ef_search.max(fetch);
        let k = fetch.min(n);
        let exact_us = time(&|q| exact_search(&set, q, k).len());
        let hnsw_us = time(&|q| idx.search(q, k, ef).len());
        emit(&json!({
            "bench": "crossover", "n": n, "dims": data.dims, "queries": nq, "fetch": k,
            "ef_search": rep.ef_search, "ef_used": ef, "recall": rep.recall,
            "m": rep.params.map(|p| p.m), "tune_secs": tune_secs,
            "exact_us": exact_us, "hnsw_us": hnsw_us, "exact_over_hnsw": exact_us / hnsw_us,
            "dot": ragsnap::index::dot_kernel(), "load": load_average(),
        }));
    }
}

/// Nanoseconds per distance evaluation of each dot product, on random pairs of base rows (so
/// cache misses are included, as in a graph search) and on one hot pair (arithmetic only).
fn dist_costs(base: &VectorSet) -> serde_json::Value {
    let mut rng = Rng::new(11);
    let pairs: Vec<(usize, usize)> = (0..200_000).map(|_| (rng.below(base.len()), rng.below(base.len()))).collect();
    let random = |f: &dyn Fn(&[f32], &[f32]) -> f32| {
        let mut best = f64::INFINITY;
        for _ in 0..3 {
            let t = Instant::now();
            let mut s = 0f32;
            for &(a, b) in &pairs {
                s += f(base.get(a), base.get(b));
            }
            std::hint::black_box(s);
            best = best.min(t.elapsed().as_secs_f64() * 1e9 / pairs.len() as f64);
        }
        best
    };
    let hot = |f: &dyn Fn(&[f32], &[f32]) -> f32| {
        let (a, b) = (base.get(0), base.get(1));
        let mut best = f64::INFINITY;
        for _ in 0..3 {
            let t = Instant::now();
            let mut s = 0f32;
            for _ in 0..1_000_000 {
                s += f(std::hint::black_box(a), std::hint::black_box(b));
            }
            std::hint::black_box(s);
            best = best.min(t.elapsed().as_secs_f64() * 1e3);
        }
        best
    };
    let ragsnap = |a: &[f32], b: &[f32]| DotDistance.eval(a, b);
    let fast = |a: &[f32], b: &[f32]| (1.0 - ragsnap::index::dot(a, b)).max(0.0);
    let avx2 = |a: &[f32], b: &[f32]| 1.0 - ragsnap::index::dot_avx2_only(a, b).unwrap_or(0.0);
    let anndists = |a: &[f32], b: &[f32]| hnsw_rs::prelude::DistDot.eval(a, b);
    json!({
        "fast_dot_path": dot_kernel(),
        "random_rows_ns": {"ragsnap_dot": random(&ragsnap), "fast_dot": random(&fast), "avx2_fma": random(&avx2),
                           "anndists_DistDot": random(&anndists)},
        "hot_pair_ns": {"ragsnap_dot": hot(&ragsnap), "fast_dot": hot(&fast), "avx2_fma": hot(&avx2),
                        "anndists_DistDot": hot(&anndists)},
    })
}
