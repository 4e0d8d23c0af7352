//! Scale benchmark of the index stage alone: a full HNSW build against an update of it (1% of
//! rows added, 1% removed), on synthetic embedding-like vectors, with recall@10 of every graph
//! against exact search and the peak RSS of the process.
//!
//! ```text
//! bench_scale [--n 100000] [--dims 384] [--queries 300] [--m 16] [--efc 200] [--change 0.01]
//!             [--efs 16,24,32,48,64,96,128] [--target 0.98] [--seed 11]
//! ```
//!
//! Vectors: `n / 250` cluster centres (random unit directions), each with its own spread; a point
//! is `0.4 · u + centre + spread · g / √dims` with `u` one direction shared by every vector (real
//! sentence embeddings share a mean direction: unrelated texts score well above 0) and `g`
//! standard Gaussian, L2-normalised. Cluster sizes are skewed (cluster `⌊C · x²⌋` for uniform
//! `x`): a few topics are large, most are small. Queries are held-out points of the same law.
//!
//! The update is what a rebuild does with head's graph: plan (`plan_update`: match rows to
//! points by their vector bits), load head's serialised graph into hnsw_rs, insert the new rows,
//! copy into the flat searcher (`HnswIndex::updated`). Removal marks points deleted (excluded at
//! query time). Each is timed from head's bytes to a searchable graph; serialising the result
//! (`dump_secs`) is reported apart, as for the full build.

use ragsnap_index::{exact_search, plan_update, HnswIndex, HnswParams, VectorSet};
use rayon::prelude::*;
use serde_json::json;
use std::collections::HashSet;
use std::time::Instant;

const K: usize = 10;

/// SplitMix64, seeded: the same seed gives the same vectors everywhere.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.uniform() * (i + 1) as f64) as usize % (i + 1);
            v.swap(i, j);
        }
    }
}

/// `--name value` flags.
struct Args(Vec<String>);

impl Args {
    fn parse() -> Self {
        Args(std::env::args().skip(1).collect())
    }

    fn get(&self, name: &str) -> Option<&str> {
        let flag = format!("--{name}");
        self.0.iter().position(|a| *a == flag).and_then(|i| self.0.get(i + 1)).map(String::as_str)
    }

    fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> T {
        self.get(name).map_or(default, |v| v.parse().unwrap_or_else(|_| panic!("--{name}: not a number: {v}")))
    }

    fn list(&self, name: &str, default: &[usize]) -> Vec<usize> {
        self.get(name).map_or_else(
            || default.to_vec(),
            |v| v.split(',').map(|x| x.trim().parse().expect("--efs: numbers")).collect(),
        )
    }
}

fn status_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

struct Law {
    dims: usize,
    shared: Vec<f32>,
    centres: Vec<Vec<f32>>,
    spreads: Vec<f64>,
}

fn unit(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= norm);
}

impl Law {
    fn new(rng: &mut Rng, dims: usize, clusters: usize) -> Self {
        let dir = |rng: &mut Rng| {
            let mut c: Vec<f32> = (0..dims).map(|_| rng.normal() as f32).collect();
            unit(&mut c);
            c
        };
        let shared = dir(rng);
        let centres = (0..clusters).map(|_| dir(rng)).collect();
        let spreads = (0..clusters).map(|_| 0.6 + 0.6 * rng.uniform()).collect();
        Law { dims, shared, centres, spreads }
    }

    fn point(&self, rng: &mut Rng) -> Vec<f32> {
        let x = rng.uniform();
        let j = ((self.centres.len() as f64) * x * x) as usize % self.centres.len();
        let s = self.spreads[j] / (self.dims as f64).sqrt();
        let mut v: Vec<f32> =
            (0..self.dims).map(|d| 0.4 * self.shared[d] + self.centres[j][d] + (rng.normal() * s) as f32).collect();
        unit(&mut v);
        v
    }

    fn points(&self, rng: &mut Rng, n: usize) -> Vec<f32> {
        (0..n).flat_map(|_| self.point(rng)).collect()
    }
}

/// Recall@10 over `queries` against exact search over `rows`, at each `ef`.
fn recalls(index: &HnswIndex, rows: &VectorSet, queries: &[Vec<f32>], efs: &[usize]) -> Vec<(usize, f64)> {
    let truth: Vec<HashSet<u32>> =
        queries.par_iter().map(|q| exact_search(rows, q, K).into_iter().map(|h| h.0).collect()).collect();
    efs.iter()
        .map(|&ef| {
            let hits: usize = queries
                .par_iter()
                .zip(&truth)
                .map(|(q, t)| index.search(q, K, ef).iter().filter(|h| t.contains(&h.0)).count())
                .sum();
            (ef, hits as f64 / (queries.len() * K) as f64)
        })
        .collect()
}

fn at_target(r: &[(usize, f64)], target: f64) -> serde_json::Value {
    r.iter()
        .find(|(_, rec)| *rec >= target)
        .map_or(serde_json::Value::Null, |(ef, rec)| json!({"ef": ef, "recall": rec}))
}

fn secs(t: Instant) -> f64 {
    (t.elapsed().as_secs_f64() * 1000.0).round() / 1000.0
}

fn mib(kib: u64) -> f64 {
    (kib as f64 / 1024.0 * 10.0).round() / 10.0
}

fn main() {
    let args = Args::parse();
    let n: usize = args.num("n", 100_000);
    let dims: usize = args.num("dims", 384);
    let nq: usize = args.num("queries", 300);
    let params = HnswParams { m: args.num("m", 16), ef_construction: args.num("efc", 200) };
    let change: f64 = args.num("change", 0.01);
    let efs = args.list("efs", &[16, 24, 32, 48, 64, 96, 128]);
    let target: f64 = args.num("target", 0.98);
    let seed: u64 = args.num("seed", 11);
    let clusters = (n / 250).max(4);
    let mut rng = Rng::new(seed);
    let law = Law::new(&mut rng, dims, clusters);
    let base = VectorSet::new(dims, law.points(&mut rng, n)).expect("base");
    let queries: Vec<Vec<f32>> = (0..nq).map(|_| law.point(&mut rng)).collect();
    let delta = ((n as f64 * change).round() as usize).max(1);
    let added = law.points(&mut rng, delta);
    let rss_data = status_kib("VmRSS:");

    // Full build.
    let t = Instant::now();
    let full = HnswIndex::build(&base, params).expect("build");
    let build_secs = secs(t);
    let rss_built = status_kib("VmRSS:");
    let t = Instant::now();
    let payload = full.to_bytes().expect("dump");
    let dump_secs = secs(t);
    let full_recall = recalls(&full, &base, &queries, &efs);
    eprintln!("full build {build_secs} s, recall {full_recall:?}");

    // 1% added: the rows are head's, then the new ones.
    let mut rows_add = base.as_slice().to_vec();
    rows_add.extend_from_slice(&added);
    let rows_add = VectorSet::new(dims, rows_add).expect("rows");
    let t = Instant::now();
    let plan = plan_update(full.vectors(), None, &rows_add).expect("plan");
    let plan_add_secs = secs(t);
    assert_eq!(plan.insert.len(), delta, "every added row is new");
    let add = full.updated(&payload, &rows_add, plan).expect("update");
    let add_secs = secs(t);
    let t = Instant::now();
    let add_bytes = add.to_bytes().expect("dump").len();
    let add_dump_secs = secs(t);
    let add_recall = recalls(&add, &rows_add, &queries, &efs);
    drop(add);
    drop(rows_add);
    eprintln!("1% added {add_secs} s, recall {add_recall:?}");

    // 1% removed: a random 1% of head's rows leave; the rest keep their order.
    let mut order: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut order);
    let gone: HashSet<usize> = order[..delta].iter().copied().collect();
    let kept: Vec<f32> = (0..n).filter(|i| !gone.contains(i)).flat_map(|i| base.get(i).to_vec()).collect();
    let rows_rm = VectorSet::new(dims, kept).expect("rows");
    let t = Instant::now();
    let plan = plan_update(full.vectors(), None, &rows_rm).expect("plan");
    let plan_rm_secs = secs(t);
    assert_eq!((plan.insert.len(), plan.newly_deleted), (0, delta));
    let rm = full.updated(&payload, &rows_rm, plan).expect("update");
    let rm_secs = secs(t);
    let rm_recall = recalls(&rm, &rows_rm, &queries, &efs);
    // Every answer is a live row.
    assert!(queries.iter().all(|q| rm.search(q, K, 64).iter().all(|h| (h.0 as usize) < rows_rm.len())));
    eprintln!("1% removed {rm_secs} s, recall {rm_recall:?}");

    let curve = |r: &[(usize, f64)]| r.iter().map(|(ef, rec)| json!([ef, rec])).collect::<Vec<_>>();
    println!(
        "{}",
        json!({
            "bench": "scale",
            "n": n, "dims": dims, "clusters": clusters, "queries": nq, "m": params.m, "efc": params.ef_construction,
            "threads": rayon::current_num_threads(), "changed_rows": delta,
            "build_secs": build_secs, "dump_secs": dump_secs, "graph_bytes": payload.len(),
            "recall_full": curve(&full_recall), "full_at_target": at_target(&full_recall, target),
            "add_secs": add_secs, "add_plan_secs": plan_add_secs, "add_dump_secs": add_dump_secs, "add_graph_bytes": add_bytes,
            "recall_added": curve(&add_recall), "added_at_target": at_target(&add_recall, target),
            "remove_secs": rm_secs, "remove_plan_secs": plan_rm_secs,
            "recall_removed": curve(&rm_recall), "removed_at_target": at_target(&rm_recall, target),
            "add_share_of_build": add_secs / build_secs, "remove_share_of_build": rm_secs / build_secs,
            "target": target,
            "rss_data_mib": mib(rss_data), "rss_after_build_mib": mib(rss_built), "peak_rss_mib": mib(status_kib("VmHWM:")),
            "load": load_average(),
        })
    );
}
