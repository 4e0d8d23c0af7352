//! Embedding benchmark: `OnnxEmbedder::embed_with` over a JSON array of texts, one
//! configuration per process (ONNX Runtime allows one environment per process).
//!
//! ```text
//! bench_embed --texts FILE --threads N --batch B --opt L [--naive] [--limit N] [--warmup 64]
//!             [--dump FILE]                 # raw f32 vectors, for the Python equality check
//!             [--bulk-sessions S]           # S single-threaded sessions share the batches
//!                                           # (default 1: the main session with --threads)
//! bench_embed --texts FILE --procs P ...    # P child processes × N threads, texts split in P
//! ```
//!
//! The clock covers the whole `embed_with` call (tokenising, sorting, batching, tensors,
//! `session.run`, pooling); `run_secs` is the embedder's own `run_nanos` counter, so
//! `overhead = (wall − run) / wall` is everything ragsnap adds around ONNX Runtime. One untimed
//! warm-up call on the first `--warmup` texts precedes the timed one.
//!
//! With `--procs P` this process is only a driver: it starts P children (`--shard i/P`), waits
//! until each has loaded the model and warmed up, releases them together, and reports the
//! wall time from release until the last one finishes.

use ragsnap::{OnnxEmbedder, OnnxOptions};
use ragsnap_benches::{cpu_secs, emit, load_average, runtime, write_f32, Args};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

fn main() {
    let args = Args::parse();
    let texts_path = args.path("texts");
    let mut texts: Vec<String> =
        serde_json::from_slice(&std::fs::read(&texts_path).expect("read --texts")).expect("json");
    let limit: usize = args.num("limit", 0);
    if limit > 0 {
        texts.truncate(limit);
    }
    let procs: usize = args.num("procs", 1);
    if procs > 1 && args.get("shard").is_none() {
        return drive(&args, procs, texts.len());
    }
    let threads: usize = args.num("threads", 1);
    let batch: usize = args.num("batch", 32);
    let opt: u8 = args.num("opt", 3);
    let bucketed = !args.has("naive");
    let warmup: usize = args.num("warmup", 64);
    let shard = args.get("shard").map(|s| {
        let (i, n) = s.split_once('/').expect("--shard i/n");
        (i.parse::<usize>().expect("i"), n.parse::<usize>().expect("n"))
    });
    let mine: Vec<&str> = match shard {
        // Interleaved split: both shards get the same mix of lengths.
        Some((i, n)) => texts.iter().skip(i).step_by(n).map(String::as_str).collect(),
        None => texts.iter().map(String::as_str).collect(),
    };

    let t_load = Instant::now();
    let embedder = OnnxEmbedder::load(
        &runtime(),
        OnnxOptions {
            intra_threads: threads,
            batch_size: batch,
            optimization_level: opt,
            bulk_sessions: args.num("bulk-sessions", 1),
        },
    )
    .expect("load the model");
    let load_secs = t_load.elapsed().as_secs_f64();
    embedder.embed_with(&mine[..warmup.min(mine.len())], true).expect("warm-up");
    if shard.is_some() {
        // Tell the driver we are ready, then wait for "go".
        println!("ready");
        std::io::stdout().flush().expect("stdout");
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).expect("stdin");
    }
    let before = embedder.stats();
    let cpu0 = cpu_secs();
    let t = Instant::now();
    let vectors = embedder.embed_with(&mine, bucketed).expect("embed");
    let wall = t.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu0;
    let after = embedder.stats();
    let run = (after.run_nanos - before.run_nanos) as f64 / 1e9;
    let tokens = after.tokens - before.tokens;
    let padding = after.padding_tokens - before.padding_tokens;
    if let Some(out) = args.get("dump") {
        let flat: Vec<f32> = vectors.iter().flatten().copied().collect();
        write_f32(out.as_ref(), &flat).expect("write --dump");
    }
    emit(&json!({
        "bench": "embed",
        "impl": "ragsnap",
        "threads": threads,
        "bulk_sessions": args.num::<usize>("bulk-sessions", 1),
        "batch": batch,
        "opt": opt,
        "bucketed": bucketed,
        "shard": shard.map(|(i, n)| format!("{i}/{n}")),
        "texts": mine.len(),
        "tokens": tokens,
        "padding_tokens": padding,
        "model_calls": after.model_calls - before.model_calls,
        "truncated": after.truncated - before.truncated,
        "load_secs": load_secs,
        "wall_secs": wall,
        "cpu_secs": cpu,
        "run_secs": run,
        "embed_total_secs": (after.total_nanos - before.total_nanos) as f64 / 1e9,
        "chunks_per_s": mine.len() as f64 / wall,
        "tokens_per_s": tokens as f64 / wall,
        "overhead": (wall - run) / wall,
        "load": load_average(),
    }));
}

/// Start `procs` shards of this binary, release them together, report the aggregate.
fn drive(args: &Args, procs: usize, n_texts: usize) {
    let exe = std::env::current_exe().expect("current exe");
    let passthrough: Vec<String> = std::env::args().skip(1).collect();
    let mut children = Vec::new();
    for i in 0..procs {
        let mut cmd = Command::new(&exe);
        cmd.args(&passthrough).arg("--shard").arg(format!("{i}/{procs}"));
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        children.push(cmd.spawn().expect("spawn shard"));
    }
    let mut readers = Vec::new();
    for c in &mut children {
        let mut r = BufReader::new(c.stdout.take().expect("stdout"));
        let mut line = String::new();
        r.read_line(&mut line).expect("shard ready");
        assert_eq!(line.trim(), "ready", "shard said {line:?}");
        readers.push(r);
    }
    let t = Instant::now();
    for c in &mut children {
        writeln!(c.stdin.as_mut().expect("stdin"), "go").expect("release shard");
    }
    let mut shards: Vec<Value> = Vec::new();
    for (c, mut r) in children.iter_mut().zip(readers) {
        let mut line = String::new();
        r.read_line(&mut line).expect("shard result");
        let status = c.wait().expect("wait shard");
        assert!(status.success(), "shard failed: {status}");
        shards.push(serde_json::from_str(&line).expect("shard json"));
    }
    let wall = t.elapsed().as_secs_f64();
    let sum = |k: &str| shards.iter().map(|s| s[k].as_f64().unwrap_or(0.0)).sum::<f64>();
    let tokens = sum("tokens");
    emit(&json!({
        "bench": "embed",
        "impl": "ragsnap",
        "procs": procs,
        "threads": args.num::<usize>("threads", 1),
        "batch": args.num::<usize>("batch", 32),
        "opt": args.num::<u8>("opt", 3),
        "bucketed": !args.has("naive"),
        "texts": n_texts,
        "tokens": tokens,
        "padding_tokens": sum("padding_tokens"),
        "wall_secs": wall,
        "run_secs_per_proc": shards.iter().map(|s| s["run_secs"].clone()).collect::<Vec<_>>(),
        "wall_secs_per_proc": shards.iter().map(|s| s["wall_secs"].clone()).collect::<Vec<_>>(),
        "chunks_per_s": n_texts as f64 / wall,
        "tokens_per_s": tokens / wall,
        "load": load_average(),
    }));
}
