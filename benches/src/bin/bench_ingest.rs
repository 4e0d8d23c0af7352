//! Ingest benchmark: sanitise + boilerplate removal + chunking of every page of a corpus held
//! in memory, on a rayon pool of `--threads` threads.
//!
//! ```text
//! bench_ingest --corpus DIR --threads N [--tokens approx|model|model-cached] [--reps 3]
//!              [--dump-sample FILE --sample 5000]
//! ```
//!
//! Stages, as `ragsnap::rebuild` runs them: `ragsnap_chunk::ingest` per page (parallel), then
//! `remove_boilerplate` over the corpus (sequential), then `chunk_doc` per page (parallel) with
//! either `approx_token_count` or the model's tokenizer (`OnnxEmbedder::count_tokens`, what a
//! real rebuild uses). `--tokens model-cached` runs the same tokenizer through
//! `chunk_doc_cached` with one `TokenCache` per run (each distinct word counted once; what a
//! rebuild would do if `ragsnap::rebuild` switched to it). Pages are read before the clock
//! starts. Prints one JSON object with the median of `--reps` runs.
//!
//! `--dump-sample` writes the embedding benchmark's input: a seeded sample of distinct prose
//! chunks of 20–256 model tokens (at most half their lines inside code fences), as a JSON array.

use ragsnap::chunk::{
    approx_token_count, chunk_doc, chunk_doc_cached, ingest, remove_boilerplate, BoilerplateConfig, ChunkConfig,
    IngestLimits, TokenCache,
};
use ragsnap::embed::Embedder;
use ragsnap::{OnnxEmbedder, OnnxOptions};
use ragsnap_benches::{cpu_secs, emit, html_pages, load_average, median, pool, runtime, Args, Rng};
use rayon::prelude::*;
use serde_json::json;
use std::time::Instant;

fn main() {
    let args = Args::parse();
    let corpus = args.path("corpus");
    let threads: usize = args.num("threads", 1);
    let reps: usize = args.num("reps", 3);
    let tokens = args.get("tokens").unwrap_or("approx").to_string();
    let pages: Vec<(String, Vec<u8>)> = html_pages(&corpus)
        .expect("corpus")
        .into_iter()
        .map(|(rel, abs)| (rel, std::fs::read(abs).expect("read page")))
        .collect();
    assert!(!pages.is_empty(), "no .html pages under {}", corpus.display());
    let bytes: usize = pages.iter().map(|p| p.1.len()).sum();

    let embedder = match tokens.as_str() {
        "approx" => None,
        "model" | "model-cached" => Some(
            OnnxEmbedder::load(&runtime(), OnnxOptions { intra_threads: 1, ..OnnxOptions::default() })
                .expect("load the model's tokenizer"),
        ),
        other => panic!("--tokens approx|model|model-cached, not {other:?}"),
    };
    let count_with = |s: &str| match &embedder {
        Some(e) => e.count_tokens(s),
        None => approx_token_count(s),
    };
    // How much text the chunker hands the counter (last run): the cost driver with a tokenizer.
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let counted_bytes = std::sync::atomic::AtomicUsize::new(0);
    let counter = |s: &str| {
        calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        counted_bytes.fetch_add(s.len(), std::sync::atomic::Ordering::Relaxed);
        count_with(s)
    };
    let limits = IngestLimits::default();
    // `--min-tokens 0` turns merging off (to see what merging costs).
    let ccfg =
        ChunkConfig { min_tokens: args.num("min-tokens", ChunkConfig::default().min_tokens), ..ChunkConfig::default() };
    let bp = BoilerplateConfig::default();
    let workers = pool(threads);

    let mut runs = Vec::new();
    let mut markdown_bytes = 0usize;
    // Fingerprint of the sanitised documents (after boilerplate removal), like `chunks_digest`.
    let mut docs_digest = String::new();
    let mut last_chunks = Vec::new();
    let mut slowest: Vec<serde_json::Value> = Vec::new();
    for _ in 0..reps.max(1) {
        let t_all = Instant::now();
        let cpu0 = cpu_secs();
        let t = Instant::now();
        let mut docs: Vec<_> = workers
            .install(|| pages.par_iter().map(|(path, b)| ingest(path, b, &limits)).filter_map(Result::ok).collect());
        let sanitize = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let report = workers.install(|| remove_boilerplate(&mut docs, &bp));
        let boilerplate = t.elapsed().as_secs_f64();
        calls.store(0, std::sync::atomic::Ordering::Relaxed);
        counted_bytes.store(0, std::sync::atomic::Ordering::Relaxed);
        let t = Instant::now();
        let cache = TokenCache::new();
        let chunks: Vec<(f64, Vec<ragsnap::core::Chunk>)> = workers.install(|| {
            docs.par_iter()
                .map(|d| {
                    let url = format!("https://docs.python.org/3.11/{}", d.source_path);
                    let t = Instant::now();
                    let c = if tokens == "model-cached" {
                        chunk_doc_cached(d, Some(&url), &ccfg, &counter, &cache)
                    } else {
                        chunk_doc(d, Some(&url), &ccfg, &counter)
                    };
                    (t.elapsed().as_secs_f64(), c)
                })
                .collect()
        });
        let chunk = t.elapsed().as_secs_f64();
        let total = t_all.elapsed().as_secs_f64();
        markdown_bytes = docs.iter().map(|d| d.markdown.len()).sum();
        docs_digest = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            for d in &docs {
                (&d.source_path, &d.title, &d.canonical_url, &d.markdown, &d.links, &d.warnings).hash(&mut h);
            }
            format!("{:016x}", h.finish())
        };
        runs.push((total, sanitize, boilerplate, chunk, docs.len(), report.blocks_removed, cpu_secs() - cpu0));
        let mut per_doc: Vec<(f64, &str, usize)> =
            chunks.iter().zip(&docs).map(|((s, _), d)| (*s, d.source_path.as_str(), d.markdown.len())).collect();
        per_doc.sort_by(|a, b| b.0.total_cmp(&a.0));
        slowest =
            per_doc.iter().take(5).map(|(s, p, n)| json!({"page": p, "markdown_bytes": n, "chunk_secs": s})).collect();
        last_chunks = chunks.into_iter().flat_map(|(_, c)| c).collect();
    }
    let mut totals: Vec<f64> = runs.iter().map(|r| r.0).collect();
    let total = median(&mut totals);
    let mid = runs.iter().min_by(|a, b| (a.0 - total).abs().total_cmp(&(b.0 - total).abs())).expect("a run");
    let chunk_tokens: usize = last_chunks.iter().map(|c| c.tokens).sum();
    // Fingerprint of every chunk (text, tokens, ranges, header path): equal digests mean the
    // chunker produced the same output, e.g. before and after a change.
    let digest = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for c in &last_chunks {
            (&c.text, c.tokens, c.byte_range, c.line_range, &c.header_path, &c.source_path).hash(&mut h);
        }
        format!("{:016x}", h.finish())
    };
    // The HTML parser alone (html5ever via scraper, what `sanitize_html` starts with), same pool:
    // the rest of the sanitize stage is decoding, the depth guard and ragsnap's own tree walk.
    let parse_secs = {
        let t = Instant::now();
        let nodes: usize = workers.install(|| {
            pages
                .par_iter()
                .map(|(_, b)| scraper::Html::parse_document(&String::from_utf8_lossy(b)).tree.nodes().count())
                .sum()
        });
        std::hint::black_box(nodes);
        t.elapsed().as_secs_f64()
    };
    emit(&json!({
        "bench": "ingest",
        "impl": "ragsnap",
        "tokens": tokens,
        "threads": threads,
        "reps": reps,
        "docs": pages.len(),
        "docs_with_content": mid.4,
        "bytes": bytes,
        "secs": total,
        "secs_all_runs": runs.iter().map(|r| r.0).collect::<Vec<_>>(),
        "cpu_secs": mid.6,
        "stage_secs": {"sanitize": mid.1, "boilerplate": mid.2, "chunk": mid.3},
        "html_parse_only_secs": parse_secs,
        "docs_per_s": pages.len() as f64 / total,
        "mb_per_s": bytes as f64 / 1e6 / total,
        "chunks": last_chunks.len(),
        "chunks_digest": digest,
        "markdown_bytes": markdown_bytes,
        "docs_digest": docs_digest,
        "chunk_text_bytes": last_chunks.iter().map(|c| c.text.len()).sum::<usize>(),
        "counter_calls": calls.load(std::sync::atomic::Ordering::Relaxed),
        "counter_bytes": counted_bytes.load(std::sync::atomic::Ordering::Relaxed),
        "mean_chunk_tokens": chunk_tokens as f64 / last_chunks.len().max(1) as f64,
        "boilerplate_blocks_removed": mid.5,
        "slowest_pages_to_chunk": slowest,
        "padding_model": tokens.starts_with("model").then(|| padding_model(&last_chunks)),
        // `--extras 0` skips this (e.g. under a profiler, to see the timed stages only).
        "token_counting": (tokens.starts_with("model") && args.num("extras", 1) == 1)
            .then(|| token_counting(&last_chunks)),
        "load": load_average(),
    }));

    if let Some(out) = args.get("dump-sample") {
        assert!(
            embedder.is_some(),
            "--dump-sample needs --tokens model or model-cached (the 20–256 bounds are model tokens)"
        );
        let want: usize = args.num("sample", 5000);
        let mut seen = std::collections::HashSet::new();
        let mut prose: Vec<(String, usize)> = last_chunks
            .iter()
            .filter(|c| (20..=256).contains(&c.tokens) && code_share(&c.text) <= 0.5)
            .filter(|c| seen.insert(c.text.clone()))
            .map(|c| (c.text.clone(), c.tokens))
            .collect();
        let eligible = prose.len();
        Rng::new(0xbe7c_4001).shuffle(&mut prose);
        prose.truncate(want);
        let mut toks: Vec<f64> = prose.iter().map(|p| p.1 as f64).collect();
        let texts: Vec<&str> = prose.iter().map(|p| p.0.as_str()).collect();
        std::fs::write(out, serde_json::to_vec(&texts).expect("json")).expect("write sample");
        emit(&json!({
            "bench": "embed-sample",
            "eligible": eligible,
            "texts": texts.len(),
            "tokens_total": toks.iter().sum::<f64>(),
            "tokens_mean": toks.iter().sum::<f64>() / toks.len().max(1) as f64,
            "tokens_median": median(&mut toks),
            "tokens_min": toks.first().copied(),
            "tokens_max": toks.last().copied(),
            "path": out,
        }));
    }
}

/// Padding the model would be fed for these chunks (document order, at most 32 texts a batch)
/// under three batching schemes: none (document order, cut every 32), `OnnxEmbedder`'s length
/// buckets (sorted, ≤ 5% padding a batch) inside groups of 2,048 texts (what `rebuild` does: it
/// calls `embed` per 2,048 cache misses), and the same buckets over one sort of all texts.
fn padding_model(chunks: &[ragsnap::core::Chunk]) -> serde_json::Value {
    let lens: Vec<usize> = chunks.iter().map(|c| c.tokens.clamp(1, 256)).collect();
    let real: usize = lens.iter().sum();
    let naive: usize = lens.chunks(32).map(|b| b.iter().max().copied().unwrap_or(0) * b.len()).sum();
    // Sorted ascending: cut when the batch is full or padding would pass 5% (as onnx.rs does).
    let bucketed = |sorted: &[usize]| -> (usize, usize) {
        let (mut fed, mut calls, mut n, mut sum) = (0usize, 0usize, 0usize, 0usize);
        let mut longest = 0usize;
        for &l in sorted {
            let padded = (n + 1) * l;
            let fits = n < 32 && (padded - (sum + l)) as f64 <= 0.05 * padded as f64;
            if !fits && n > 0 {
                fed += n * longest;
                calls += 1;
                n = 0;
                sum = 0;
            }
            n += 1;
            sum += l;
            longest = l;
        }
        if n > 0 {
            fed += n * longest;
            calls += 1;
        }
        (fed, calls)
    };
    let (mut groups, mut group_calls) = (0usize, 0usize);
    for w in lens.chunks(2048) {
        let mut w = w.to_vec();
        w.sort_unstable();
        let (f, c) = bucketed(&w);
        groups += f;
        group_calls += c;
    }
    let mut all = lens.clone();
    all.sort_unstable();
    let (global, global_calls) = bucketed(&all);
    let share = |p: usize| (p - real) as f64 / p as f64;
    json!({"real_tokens": real, "texts": lens.len(),
           "naive": {"padding_share": share(naive), "model_calls": lens.len().div_ceil(32)},
           "buckets_per_2048_group": {"padding_share": share(groups), "model_calls": group_calls},
           "buckets_over_all": {"padding_share": share(global), "model_calls": global_calls}})
}

/// One thread counting the tokens of every chunk text as `OnnxEmbedder::count_tokens` does
/// (`Tokenizer::encode`, which also computes offsets) and with `encode_fast` (no offsets).
fn token_counting(chunks: &[ragsnap::core::Chunk]) -> serde_json::Value {
    let path = runtime().model_dir.join("tokenizer.json");
    let mut tok = tokenizers::Tokenizer::from_file(&path).expect("tokenizer.json");
    tok.with_truncation(None).expect("no truncation");
    tok.with_padding(None);
    let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
    let t = Instant::now();
    let slow: usize = texts.iter().map(|s| tok.encode(*s, true).map(|e| e.len()).unwrap_or(0)).sum();
    let encode = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let fast: usize = texts.iter().map(|s| tok.encode_fast(*s, true).map(|e| e.len()).unwrap_or(0)).sum();
    let encode_fast = t.elapsed().as_secs_f64();
    json!({"texts": texts.len(), "tokens": slow, "same_counts": slow == fast,
           "encode_secs": encode, "encode_fast_secs": encode_fast,
           "tokens_per_s_encode": slow as f64 / encode, "tokens_per_s_encode_fast": fast as f64 / encode_fast})
}

/// Share of a chunk's body lines that sit inside ``` fences.
fn code_share(text: &str) -> f64 {
    let body = text.split_once("\n\n").map_or(text, |(_, b)| b);
    let (mut inside, mut code, mut all) = (false, 0usize, 0usize);
    for line in body.lines() {
        if line.trim_start().starts_with("```") {
            inside = !inside;
            code += 1;
            all += 1;
            continue;
        }
        all += 1;
        if inside {
            code += 1;
        }
    }
    code as f64 / all.max(1) as f64
}
