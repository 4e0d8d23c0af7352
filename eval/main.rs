//! `ragsnap-eval`: page recall@10 and MRR@10 of dense, lexical and hybrid retrieval on a ragsnap
//! store, the hybrid floor's behaviour on on-topic and off-topic questions, and the extra
//! latency of the lexical side. See `eval/README.md`; `make eval` runs it.
//!
//! ```text
//! ragsnap-eval --store DIR --questions FILE.jsonl [--offtopic FILE] [--json OUT]
//!              [--depth 50] [--dense-floor 0.45] [--sweep] [--refusal FILE.jsonl]
//!              [--hubs FILE]
//! ```
//!
//! With `--hubs` (one source path per line: the pages `ragsnap chunk --json` marks `"hub": true`),
//! the share of top-10 results that come from those pages is reported per mode.
//!
//! With `--refusal`, the unanswerable questions of `make_refusal_sets.py` and the answerable ones
//! are also asked through the library's query path (`refusal.rs`) and the refusal table printed.

use anyhow::{bail, Context, Result};
use ragsnap::embed::Embedder;
use ragsnap::{Snapshot, Store};
use ragsnap_lexical::{fuse_hits, Bm25Params, FusionConfig, HybridFloor, LexicalHit, LexicalIndex};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

mod refusal;

/// Rank cut-off of the metrics.
const K: usize = 10;

struct Args {
    store: PathBuf,
    questions: PathBuf,
    offtopic: Option<PathBuf>,
    json: Option<PathBuf>,
    depth: usize,
    dense_floor: f32,
    sweep: bool,
    refusal: Option<PathBuf>,
    hubs: Option<PathBuf>,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        store: PathBuf::new(),
        questions: PathBuf::new(),
        offtopic: None,
        json: None,
        depth: 50,
        dense_floor: ragsnap::FALLBACK_FLOOR,
        sweep: false,
        refusal: None,
        hubs: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--store" => a.store = val()?.into(),
            "--questions" => a.questions = val()?.into(),
            "--offtopic" => a.offtopic = Some(val()?.into()),
            "--json" => a.json = Some(val()?.into()),
            "--depth" => a.depth = val()?.parse()?,
            "--dense-floor" => a.dense_floor = val()?.parse()?,
            "--sweep" => a.sweep = true,
            "--refusal" => a.refusal = Some(val()?.into()),
            "--hubs" => a.hubs = Some(val()?.into()),
            "-h" | "--help" => {
                println!("ragsnap-eval --store DIR --questions FILE [--offtopic FILE] [--json OUT] [--depth N] [--dense-floor F] [--sweep] [--refusal FILE] [--hubs FILE]");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}"),
        }
    }
    if a.store.as_os_str().is_empty() || a.questions.as_os_str().is_empty() {
        bail!("--store and --questions are required");
    }
    Ok(a)
}

#[derive(Clone, Debug, Deserialize)]
struct Question {
    kind: String,
    style: String,
    split: String,
    query: String,
    pages: Vec<String>,
}

/// A retrieval mode: a question's ranked rows.
type Ranker<'a> = Box<dyn Fn(&Run) -> Vec<u32> + 'a>;

/// Everything measured for one question.
struct Run {
    q: Question,
    relevant: Vec<u32>,
    vector: Vec<f32>,
    dense: Vec<(u32, f32)>,
    lexical: Vec<LexicalHit>,
}

/// Page recall@K and reciprocal rank@K of a ranked list of rows.
fn score(rows: &[u32], page_of: &[u32], relevant: &[u32]) -> (f64, f64) {
    let top = &rows[..rows.len().min(K)];
    let mut found: Vec<u32> = Vec::new();
    let mut rr = 0.0;
    for (i, &r) in top.iter().enumerate() {
        let p = page_of[r as usize];
        if relevant.contains(&p) {
            if rr == 0.0 {
                rr = 1.0 / (i + 1) as f64;
            }
            if !found.contains(&p) {
                found.push(p);
            }
        }
    }
    (found.len() as f64 / relevant.len().min(K) as f64, rr)
}

#[derive(Clone, Copy, Default, Serialize)]
struct Metric {
    n: usize,
    recall: f64,
    mrr: f64,
}

fn mean(v: &[(f64, f64)]) -> Metric {
    let n = v.len().max(1) as f64;
    Metric { n: v.len(), recall: v.iter().map(|x| x.0).sum::<f64>() / n, mrr: v.iter().map(|x| x.1).sum::<f64>() / n }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Hybrid ranking: fused rows, optionally filtered by the floor (cosine computed for every row).
fn hybrid_rows(
    run: &Run,
    cfg: &FusionConfig,
    floor: Option<&HybridFloor>,
    vectors: &ragsnap::index::VectorSet,
) -> Vec<u32> {
    let fused = fuse_hits(&run.dense, &run.lexical, cfg);
    let mut out = Vec::with_capacity(K);
    for f in fused {
        if let Some(fl) = floor {
            let cos = f.dense_score.unwrap_or_else(|| ragsnap::index::dot(vectors.get(f.row as usize), &run.vector));
            if !fl.keep_fused(&f, Some(cos)) {
                continue;
            }
        }
        out.push(f.row);
        if out.len() == K {
            break;
        }
    }
    out
}

#[derive(Serialize)]
struct Report {
    snapshot: String,
    chunks: usize,
    documents: usize,
    questions: usize,
    questions_dropped: usize,
    lexical: BTreeMap<String, f64>,
    metrics: BTreeMap<String, Vec<(String, Metric)>>,
    fusion_sweep: Vec<(f32, f32, Metric, Metric)>,
    floor: BTreeMap<String, f64>,
    latency_ms: BTreeMap<String, f64>,
    refusal: Option<refusal::Report>,
    /// Per mode: the share of all top-10 results, and of top-1 results, from hub pages.
    hub_share: BTreeMap<String, (f64, f64)>,
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let store = Store::open_reader(&args.store).with_context(|| format!("open store {}", args.store.display()))?;
    let snapshot = Arc::new(Snapshot::open(&store, &store.head()?.id)?);
    // The model as the environment chooses it (RAGSNAP_MODEL or RAGSNAP_MODEL_DIR; else the default).
    let mut settings = ragsnap::Config::default();
    settings.apply_env();
    let embedder = ragsnap::open_embedder(&settings.runtime)?;
    if embedder.fingerprint() != &snapshot.manifest().fingerprint {
        bail!("the embedder is not the one the snapshot was built with");
    }
    let m = snapshot.manifest();
    eprintln!(
        "snapshot {} ({} chunks, {} documents, index {})",
        snapshot.id(),
        m.counts.chunks,
        m.counts.documents,
        m.index.kind
    );

    // Chunk texts and the page of every row.
    let mut pages: HashMap<String, u32> = HashMap::new();
    let mut page_of = Vec::with_capacity(m.counts.chunks);
    let mut texts = Vec::with_capacity(m.counts.chunks);
    for i in 0..snapshot.chunks().len() {
        let c = snapshot.chunks().get(i)?;
        let n = pages.len() as u32;
        page_of.push(*pages.entry(c.source_path.clone()).or_insert(n));
        texts.push(c.text);
    }
    let text_refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let mut lex_stats = BTreeMap::new();
    let t = Instant::now();
    let lex = LexicalIndex::build(&text_refs);
    lex_stats.insert("build_s".to_string(), t.elapsed().as_secs_f64());
    let bytes = lex.to_bytes();
    let t = Instant::now();
    let lex = LexicalIndex::from_bytes(&bytes)?;
    lex_stats.insert("load_s".to_string(), t.elapsed().as_secs_f64());
    lex_stats.insert("payload_mib".to_string(), bytes.len() as f64 / (1 << 20) as f64);
    lex_stats.insert("terms".to_string(), lex.terms() as f64);
    let vec_mib = (m.counts.vectors * m.fingerprint.dims * 4) as f64 / (1 << 20) as f64;
    lex_stats.insert("vectors_mib".to_string(), vec_mib);
    eprintln!("lexical index: {lex:?}, {:.1} MiB payload (vectors: {vec_mib:.1} MiB)", bytes.len() as f64 / 1048576.0);
    drop(bytes);

    // Questions whose pages are in the snapshot.
    let raw = std::fs::read_to_string(&args.questions).with_context(|| format!("read {}", args.questions.display()))?;
    let mut questions = Vec::new();
    let mut dropped = 0;
    for line in raw.lines().filter(|l| !l.trim().is_empty()) {
        let q: Question = serde_json::from_str(line).with_context(|| format!("question {line}"))?;
        let relevant: Vec<u32> = q.pages.iter().filter_map(|p| pages.get(p).copied()).collect();
        if relevant.is_empty() {
            dropped += 1;
        } else {
            questions.push((q, relevant));
        }
    }
    let offtopic: Vec<String> = match &args.offtopic {
        Some(p) => std::fs::read_to_string(p)?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(String::from)
            .collect(),
        None => Vec::new(),
    };
    eprintln!(
        "{} questions ({dropped} dropped: pages not in the snapshot), {} off-topic",
        questions.len(),
        offtopic.len()
    );

    // Embed every question.
    let t = Instant::now();
    let all_text: Vec<&str> =
        questions.iter().map(|(q, _)| q.query.as_str()).chain(offtopic.iter().map(String::as_str)).collect();
    let mut vecs = Vec::with_capacity(all_text.len());
    for b in all_text.chunks(64) {
        vecs.extend(embedder.embed_queries(b)?);
    }
    eprintln!("embedded {} questions in {:.1}s", all_text.len(), t.elapsed().as_secs_f64());
    let ef = m.index.ef_search.max(args.depth);
    let index = snapshot.index();
    let runs: Vec<Run> = questions
        .into_iter()
        .zip(vecs.iter())
        .map(|((q, relevant), v)| Run {
            dense: index.search(v, args.depth, ef),
            lexical: lex.search_hits(&q.query, args.depth),
            vector: v.clone(),
            relevant,
            q,
        })
        .collect();
    let off_runs: Vec<Run> = offtopic
        .iter()
        .zip(vecs[runs.len()..].iter())
        .map(|(q, v)| Run {
            q: Question {
                kind: "offtopic".into(),
                style: "natural".into(),
                split: "-".into(),
                query: q.clone(),
                pages: Vec::new(),
            },
            relevant: Vec::new(),
            dense: index.search(v, args.depth, ef),
            lexical: lex.search_hits(q, args.depth),
            vector: v.clone(),
        })
        .collect();

    // Fusion sweep, chosen on the dev split only.
    let groups = |r: &Run| -> Vec<String> {
        vec![
            "all".into(),
            r.q.style.clone(),
            r.q.split.clone(),
            format!("{}/{}", r.q.split, r.q.style),
            format!("kind:{}", r.q.kind),
        ]
    };
    let vectors = snapshot.vectors();
    let eval_cfg = |cfg: &FusionConfig, split: &str| -> Metric {
        let v: Vec<(f64, f64)> = runs
            .iter()
            .filter(|r| split == "all" || r.q.split == split)
            .map(|r| score(&hybrid_rows(r, cfg, None, vectors), &page_of, &r.relevant))
            .collect();
        mean(&v)
    };
    let mut sweep = Vec::new();
    for rrf_k in [2.0f32, 5.0, 10.0, 20.0, 40.0, 60.0, 100.0] {
        for lw in [0.5f32, 0.75, 1.0, 1.25, 1.5, 2.0] {
            let cfg = FusionConfig { rrf_k, dense_weight: 1.0, lexical_weight: lw };
            sweep.push((rrf_k, lw, eval_cfg(&cfg, "dev"), eval_cfg(&cfg, "test")));
        }
    }
    let best = sweep
        .iter()
        .max_by(|a, b| (a.2.recall + a.2.mrr).total_cmp(&(b.2.recall + b.2.mrr)))
        .map(|s| FusionConfig { rrf_k: s.0, dense_weight: 1.0, lexical_weight: s.1 })
        .expect("sweep not empty");
    eprintln!("best fusion on dev: rrf_k {} lexical weight {}", best.rrf_k, best.lexical_weight);

    // Metrics per mode and group.
    // Baseline tokenizer for comparison: every non-alphanumeric character separates words
    // (what SQLite FTS5's unicode61 tokenizer does), so `lru_cache` is only `lru` + `cache`.
    let plain = |t: &str| -> String { t.chars().map(|c| if c.is_alphanumeric() { c } else { ' ' }).collect() };
    let plain_texts: Vec<String> = texts.iter().map(|t| plain(t)).collect();
    let plain_refs: Vec<&str> = plain_texts.iter().map(String::as_str).collect();
    let plain_lex = LexicalIndex::build(&plain_refs);
    let default_cfg = FusionConfig::default();
    let classic = FusionConfig::rrf(60.0);
    let modes: Vec<(String, Ranker)> = vec![
        ("dense".into(), Box::new(|r: &Run| r.dense.iter().map(|x| x.0).collect())),
        ("lexical".into(), Box::new(|r: &Run| r.lexical.iter().map(|x| x.row).collect())),
        (
            "lexical, plain-word tokens".into(),
            Box::new(|r: &Run| plain_lex.search(&plain(&r.q.query), K).into_iter().map(|x| x.0).collect()),
        ),
        (
            format!("hybrid (default: rrf_k {} w_lex {})", default_cfg.rrf_k, default_cfg.lexical_weight),
            Box::new(|r: &Run| hybrid_rows(r, &default_cfg, None, vectors)),
        ),
        ("hybrid, rrf_k 60 equal weights".into(), Box::new(|r: &Run| hybrid_rows(r, &classic, None, vectors))),
        (
            format!("hybrid, best on dev: rrf_k {} w_lex {}", best.rrf_k, best.lexical_weight),
            Box::new(|r: &Run| hybrid_rows(r, &best, None, vectors)),
        ),
    ];
    let mut metrics: BTreeMap<String, Vec<(String, Metric)>> = BTreeMap::new();
    for (name, f) in &modes {
        let mut per: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for r in &runs {
            let s = score(&f(r), &page_of, &r.relevant);
            for g in groups(r) {
                per.entry(g).or_default().push(s);
            }
        }
        for (g, v) in per {
            metrics.entry(g).or_default().push((name.clone(), mean(&v)));
        }
    }

    // Hub pages (tables of contents, indexes) among the results.
    let mut hub_share = BTreeMap::new();
    if let Some(path) = &args.hubs {
        let listed = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        let hub_pages: std::collections::HashSet<u32> =
            listed.lines().map(str::trim).filter_map(|l| pages.get(l).copied()).collect();
        eprintln!("{} of the listed hub pages are in the snapshot", hub_pages.len());
        for (name, f) in
            modes.iter().filter(|(n, _)| n == "dense" || n == "lexical" || n.starts_with("hybrid (default"))
        {
            let (mut top10, mut hub10, mut top1, mut hub1) = (0usize, 0usize, 0usize, 0usize);
            for r in &runs {
                let rows = f(r);
                for (i, &row) in rows.iter().take(K).enumerate() {
                    let is_hub = hub_pages.contains(&page_of[row as usize]);
                    top10 += 1;
                    hub10 += usize::from(is_hub);
                    if i == 0 {
                        top1 += 1;
                        hub1 += usize::from(is_hub);
                    }
                }
            }
            let share = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
            hub_share.insert(name.clone(), (share(hub10, top10), share(hub1, top1)));
        }
    }

    // The floor: on-topic questions answered, off-topic refused.
    let mut floor = BTreeMap::new();
    let answered = |rs: &[Run], keep: &dyn Fn(&Run) -> bool| rs.iter().filter(|r| keep(r)).count() as f64;
    let dense_ok = |r: &Run| r.dense.first().is_some_and(|d| d.1 >= args.dense_floor);
    let best_cov = |r: &Run| r.lexical.iter().map(|h| h.coverage).fold(0f32, f32::max);
    let n_on = runs.len() as f64;
    let n_off = off_runs.len().max(1) as f64;
    floor.insert("dense_floor".into(), args.dense_floor as f64);
    floor.insert("dense_only.on_topic_answered".into(), answered(&runs, &dense_ok) / n_on);
    floor.insert("dense_only.off_topic_refused".into(), 1.0 - answered(&off_runs, &dense_ok) / n_off);
    let max_off_cov = off_runs.iter().map(best_cov).fold(0f32, f32::max);
    floor.insert("off_topic_max_coverage".into(), max_off_cov as f64);
    let mut by_cov: Vec<(f32, &str)> = off_runs.iter().map(|r| (best_cov(r), r.q.query.as_str())).collect();
    by_cov.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (c, q) in by_cov.iter().take(3) {
        eprintln!("off-topic coverage {c:.3}: {q:?}");
    }
    for l in [0.5f32, 0.6, 0.7, 0.75, 0.8, 0.9, 1.0] {
        let fl = HybridFloor { dense: args.dense_floor, lexical: l };
        let keep = |r: &Run| !hybrid_rows(r, &FusionConfig::default(), Some(&fl), vectors).is_empty();
        floor.insert(format!("lexical_floor_{l:.2}.on_topic_answered"), answered(&runs, &keep) / n_on);
        floor.insert(format!("lexical_floor_{l:.2}.off_topic_refused"), 1.0 - answered(&off_runs, &keep) / n_off);
    }
    let hf = HybridFloor::with_dense(args.dense_floor);
    for (name, cfg) in [("hybrid (default) + floor", FusionConfig::default())] {
        let mut per: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for r in &runs {
            let s = score(&hybrid_rows(r, &cfg, Some(&hf), vectors), &page_of, &r.relevant);
            for g in groups(r) {
                per.entry(g).or_default().push(s);
            }
        }
        for (g, v) in per {
            metrics.entry(g).or_default().push((name.to_string(), mean(&v)));
        }
    }
    {
        let dense_floor_rows =
            |r: &Run| -> Vec<u32> { r.dense.iter().filter(|d| d.1 >= args.dense_floor).map(|d| d.0).collect() };
        let mut per: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for r in &runs {
            let s = score(&dense_floor_rows(r), &page_of, &r.relevant);
            for g in groups(r) {
                per.entry(g).or_default().push(s);
            }
        }
        for (g, v) in per {
            metrics.entry(g).or_default().push(("dense + floor".to_string(), mean(&v)));
        }
    }
    let hybrid_answers = |r: &Run| !hybrid_rows(r, &FusionConfig::default(), Some(&hf), vectors).is_empty();
    floor.insert("hybrid.lexical_floor".into(), hf.lexical as f64);
    floor.insert("hybrid.on_topic_answered".into(), answered(&runs, &hybrid_answers) / n_on);
    floor.insert("hybrid.off_topic_refused".into(), 1.0 - answered(&off_runs, &hybrid_answers) / n_off);
    for r in &off_runs {
        if hybrid_answers(r) {
            eprintln!("off-topic question answered: {:?} (coverage {:.2})", r.q.query, best_cov(r));
        }
    }

    // Latency: what hybrid adds to a dense query (lexical search, fusion, cosines of rows only
    // the lexical list found, the floor), single-threaded, after one warm-up pass.
    // Each query is timed three times after a warm-up pass: the first timing is what a query
    // costs on this (shared) machine, the smallest of the three what it costs undisturbed.
    let cfg = FusionConfig::default();
    let mut times: Vec<[[f64; 3]; 3]> = vec![[[0.0; 3]; 3]; runs.len()];
    for pass in 0..4 {
        for (r, slot) in runs.iter().zip(times.iter_mut()) {
            let t = Instant::now();
            let d = index.search(&r.vector, args.depth, ef);
            let td = t.elapsed().as_secs_f64() * 1e3;
            let t = Instant::now();
            let hits = lex.search_hits(&r.q.query, args.depth);
            let tl = t.elapsed().as_secs_f64() * 1e3;
            let fused = fuse_hits(&d, &hits, &cfg);
            let mut kept = 0;
            for f in &fused {
                let cos = f.dense_score.unwrap_or_else(|| ragsnap::index::dot(vectors.get(f.row as usize), &r.vector));
                if hf.keep_fused(f, Some(cos)) {
                    kept += 1;
                    if kept == K {
                        break;
                    }
                }
            }
            std::hint::black_box(kept);
            let te = t.elapsed().as_secs_f64() * 1e3;
            if pass > 0 {
                slot[0][pass - 1] = te;
                slot[1][pass - 1] = tl;
                slot[2][pass - 1] = td;
            }
        }
    }
    let mut latency = BTreeMap::new();
    for (i, name) in ["hybrid_extra", "lexical_search", "dense_search"].into_iter().enumerate() {
        let mut first: Vec<f64> = times.iter().map(|t| t[i][0]).collect();
        let mut least: Vec<f64> = times.iter().map(|t| t[i].iter().copied().fold(f64::MAX, f64::min)).collect();
        first.sort_by(f64::total_cmp);
        least.sort_by(f64::total_cmp);
        latency.insert(format!("{name}.p50"), pct(&first, 0.5));
        latency.insert(format!("{name}.p99"), pct(&first, 0.99));
        latency.insert(format!("{name}.min_of_3.p50"), pct(&least, 0.5));
        latency.insert(format!("{name}.min_of_3.p99"), pct(&least, 0.99));
    }
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    latency
        .insert("loadavg_1min".into(), loadavg.split_whitespace().next().and_then(|x| x.parse().ok()).unwrap_or(-1.0));

    if args.sweep {
        for (k1, b) in [(0.9f32, 0.4f32), (0.9, 0.75), (1.2, 0.5), (1.2, 0.9), (1.6, 0.75), (2.0, 0.75)] {
            let ix = LexicalIndex::build_with(&text_refs, Bm25Params { k1, b });
            let v: Vec<(f64, f64)> = runs
                .iter()
                .filter(|r| r.q.split == "dev")
                .map(|r| {
                    let rows: Vec<u32> = ix.search(&r.q.query, K).into_iter().map(|h| h.0).collect();
                    score(&rows, &page_of, &r.relevant)
                })
                .collect();
            let mm = mean(&v);
            eprintln!("bm25 k1={k1} b={b}: dev recall@10 {:.4} mrr@10 {:.4}", mm.recall, mm.mrr);
        }
    }

    // Refusals, through the library's query path.
    let refusal_report = match &args.refusal {
        Some(path) => {
            let t = Instant::now();
            let searcher = ragsnap::Searcher::new(snapshot.clone(), embedder.clone())?;
            let answerable: Vec<refusal::Answerable> = runs
                .iter()
                .map(|r| refusal::Answerable {
                    query: &r.q.query,
                    split: if r.q.split == "dev" { "tune" } else { "held" },
                    relevant: &r.relevant,
                    vector: &r.vector,
                })
                .collect();
            let rep = refusal::evaluate(&searcher, embedder.as_ref(), &answerable, &pages, path)?;
            eprintln!("refusal evaluation took {:.1}s", t.elapsed().as_secs_f64());
            Some(rep)
        }
        None => None,
    };

    let report = Report {
        snapshot: snapshot.id().to_string(),
        chunks: m.counts.chunks,
        documents: m.counts.documents,
        questions: runs.len(),
        questions_dropped: dropped,
        lexical: lex_stats,
        metrics,
        fusion_sweep: sweep,
        floor,
        latency_ms: latency,
        refusal: refusal_report,
        hub_share,
    };
    print_report(&report);
    if let Some(r) = &report.refusal {
        refusal::print(r);
    }
    if let Some(p) = &args.json {
        std::fs::write(p, serde_json::to_vec_pretty(&report)?)?;
    }
    Ok(())
}

fn print_report(r: &Report) {
    println!(
        "snapshot {}: {} chunks from {} pages; {} questions ({} dropped)\n",
        r.snapshot, r.chunks, r.documents, r.questions, r.questions_dropped
    );
    for g in ["all", "identifier", "natural", "dev", "test"] {
        let Some(ms) = r.metrics.get(g) else { continue };
        let n = ms.first().map_or(0, |m| m.1.n);
        println!("| {g} ({n} questions) | page recall@10 | MRR@10 |");
        println!("|---|---:|---:|");
        for (name, m) in ms {
            println!("| {name} | {:.3} | {:.3} |", m.recall, m.mrr);
        }
        println!();
    }
    if !r.hub_share.is_empty() {
        println!("| mode | share of top-10 results from hub pages | share of top-1 results |");
        println!("|---|---:|---:|");
        for (name, (ten, one)) in &r.hub_share {
            println!("| {name} | {:.2}% | {:.2}% |", ten * 100.0, one * 100.0);
        }
        println!();
    }
    println!("fusion sweep (dev recall/MRR → test recall/MRR):");
    for (k, w, d, t) in &r.fusion_sweep {
        println!("  rrf_k {k:>5} w_lex {w:>4}: {:.3}/{:.3} → {:.3}/{:.3}", d.recall, d.mrr, t.recall, t.mrr);
    }
    println!("\nfloor:");
    for (k, v) in &r.floor {
        println!("  {k}: {v:.3}");
    }
    println!("\nlexical index:");
    for (k, v) in &r.lexical {
        println!("  {k}: {v:.3}");
    }
    println!("\nlatency per query (ms):");
    for (k, v) in &r.latency_ms {
        println!("  {k}: {v:.3}");
    }
}
