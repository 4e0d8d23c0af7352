//! `ragsnap`: build, query, verify and roll back RAG index snapshots.
//!
//! Exit codes: 0 ok · 1 error · 2 usage (also: `--store` is not a ragsnap store) · 3 refused (no
//! confident match, embedding mismatch or drift, a refused rollback or promotion) · 4 verification
//! failed / corrupted snapshot / damaged catalog (run `ragsnap repair`) · 5 store locked ·
//! 6 rebuild rejected by a gate (kept as a rejected snapshot; head unchanged) · 130 interrupted.

use anyhow::{Context, Result};
use clap::{CommandFactory, Parser, Subcommand};
use ragsnap::config::SourceConfig;
use ragsnap::store::StoreError;
use ragsnap::{Answer, Config, Error, QueryOptions, Searcher, Snapshot, Store};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

const EXIT_ERROR: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_REFUSED: u8 = 3;
const EXIT_VERIFY: u8 = 4;
const EXIT_LOCKED: u8 = 5;
const EXIT_REJECTED: u8 = 6;
const EXIT_INTERRUPTED: u8 = 130;

#[derive(Parser, Debug)]
#[command(
    name = "ragsnap",
    version,
    about = "Keep RAG indices honest: sanitize, chunk, embed with a pinned model, snapshot, query.",
    after_help = "Examples:\n  ragsnap rebuild --source docs/\n  ragsnap query \"how do I configure retries?\" -k 3\n  ragsnap snapshots --json\n  ragsnap rollback --reason \"bad crawl\"\n  ragsnap verify --all\n\nExit codes: 0 ok, 1 error, 2 usage, 3 refused / no confident match, 4 verification failed, 5 store locked,\n6 rebuild rejected by a gate (head unchanged), 130 interrupted."
)]
struct Cli {
    /// Store folder [env: RAGSNAP_STORE] [default: ./ragsnap-store]
    #[arg(long, global = true)]
    store: Option<PathBuf>,
    /// Config file [default: ./ragsnap.toml when present]
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// ONNX Runtime library [env: RAGSNAP_ORT_LIB]
    #[arg(long, global = true)]
    ort_lib: Option<PathBuf>,
    /// Model folder holding model.toml [env: RAGSNAP_MODEL_DIR]
    #[arg(long, global = true)]
    model_dir: Option<PathBuf>,
    /// Less output on stderr
    #[arg(short, long, global = true)]
    quiet: bool,
    /// More output on stderr (repeat for more)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Build a new snapshot from the sources and promote it to head.
    Rebuild {
        /// Source folder (repeatable); overrides [[sources]] in the config.
        #[arg(long)]
        source: Vec<PathBuf>,
        /// URL prefix for documents of --source (page URL = prefix joined with the path).
        #[arg(long, requires = "source", value_parser = url_prefix_arg)]
        url_prefix: Option<String>,
        #[command(flatten)]
        select: SelectArgs,
        /// Accept an embedding model different from head's (everything is re-embedded).
        #[arg(long)]
        allow_model_change: bool,
        /// golden.jsonl of questions with their expected source page (overrides [gates] golden).
        #[arg(long)]
        golden: Option<PathBuf>,
        /// Write Prometheus textfile-collector metrics here (atomically).
        #[arg(long)]
        metrics_file: Option<PathBuf>,
        /// Print the report as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Answer a question from the head snapshot.
    Query {
        /// The question.
        text: String,
        /// Hits wanted (1 to the configured max_k).
        #[arg(short, long, value_parser = clap::value_parser!(u32).range(1..))]
        k: Option<u32>,
        /// Similarity floor (cosine).
        #[arg(long)]
        floor: Option<f32>,
        /// Calibrated floor: percentile of the snapshot's top-1 score distribution.
        #[arg(long)]
        floor_percentile: Option<f32>,
        /// HNSW ef_search (default: the tuned value).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        ef: Option<u32>,
        /// Retrieval mode: dense, lexical or hybrid.
        #[arg(long, default_value = "hybrid")]
        mode: ragsnap::Mode,
        /// Lexical support floor: share of the query's IDF mass a chunk must contain.
        #[arg(long)]
        lexical_floor: Option<f32>,
        /// Reciprocal-rank-fusion constant for hybrid mode.
        #[arg(long)]
        rrf_k: Option<f32>,
        /// Query this snapshot instead of head.
        #[arg(long)]
        snapshot: Option<String>,
        /// JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// List snapshots.
    Snapshots {
        /// JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Show one snapshot's manifest (head by default).
    Show {
        /// Snapshot id.
        id: Option<String>,
        /// JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// What changed between two snapshots (documents, chunk counts, model, parameters).
    Diff {
        /// Older snapshot.
        a: String,
        /// Newer snapshot (default: head).
        b: Option<String>,
        /// JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Move head back to an earlier snapshot (verified first; never deletes).
    Rollback {
        /// Target snapshot.
        #[arg(long, conflicts_with = "steps")]
        to: Option<String>,
        /// Go back this many ready snapshots that are not backed out (at least 1).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        steps: Option<u64>,
        /// Why (recorded in the history).
        #[arg(long, default_value = "operator rollback")]
        reason: String,
        /// Allow a target built with another embedding model.
        #[arg(long)]
        allow_model_change: bool,
        /// JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Make a snapshot head (a rejected or backed-out one needs --force).
    Promote {
        /// Snapshot id.
        id: String,
        /// Promote a rejected or backed-out snapshot.
        #[arg(long)]
        force: bool,
        /// Allow a snapshot built with another embedding model than head's.
        #[arg(long)]
        allow_model_change: bool,
        /// Why.
        #[arg(long, default_value = "operator promotion")]
        reason: String,
    },
    /// Re-hash snapshot files against their manifest and the catalog.
    Verify {
        /// Snapshot id (default: head).
        id: Option<String>,
        /// Every snapshot.
        #[arg(long, conflicts_with = "id")]
        all: bool,
        /// JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Remove old snapshots (never head, pinned, or open by a reader).
    Gc {
        /// Keep this many newest ready snapshots.
        #[arg(long, default_value_t = 5)]
        keep: usize,
        /// Keep snapshots younger than this (e.g. 7d, 12h, 30m; at most 100 years).
        #[arg(long, value_parser = parse_duration_arg)]
        older_than: Option<i64>,
        /// Say what would be removed.
        #[arg(long)]
        dry_run: bool,
        /// JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Embedding cache maintenance.
    Cache {
        #[command(subcommand)]
        action: CacheAction,
    },
    /// Rebuild a lost or damaged catalog from the snapshot folders (each verified); the old
    /// catalog is kept aside.
    Repair {
        /// Show the plan; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Show exactly what rebuild would index (same reading, sanitising, corpus boilerplate
    /// removal, chunking and settings), without embedding and without a store.
    Chunk {
        /// Files to show (default: --source, else [[sources]] of the config).
        #[arg(conflicts_with = "source")]
        paths: Vec<PathBuf>,
        /// Source folder (repeatable), read as rebuild reads it.
        #[arg(long)]
        source: Vec<PathBuf>,
        /// URL prefix for documents of --source.
        #[arg(long, requires = "source", value_parser = url_prefix_arg)]
        url_prefix: Option<String>,
        #[command(flatten)]
        select: SelectArgs,
        /// Print the sanitized Markdown (after corpus boilerplate removal) instead of chunks.
        #[arg(long)]
        markdown: bool,
        /// Kept for old scripts: tokens are always counted with the model's tokenizer.
        #[arg(long, hide = true)]
        model_tokens: bool,
        /// JSON Lines on stdout, one document per line:
        /// {"source", "url", "title", "hub", "chunks": [{"text", "header_path", "tokens"}]}.
        #[arg(long)]
        json: bool,
        /// Only the summary on stderr; no per-document output.
        #[arg(long)]
        stats: bool,
    },
    /// Serve queries over HTTP/JSON, following head (see the ragsnap-serve crate).
    Serve(ragsnap_serve::ServeArgs),
    /// Upload a verified snapshot to object storage and make it the remote head.
    Publish(ragsnap_serve::PublishArgs),
    /// Download the remote head, verify every checksum, and make it the local head.
    Pull(ragsnap_serve::PullArgs),
    /// Print shell completions.
    Completions {
        /// Shell.
        shell: clap_complete::Shell,
    },
}

/// Which files of the source folders are read; added to `[source]` of the config.
#[derive(clap::Args, Debug, Default)]
struct SelectArgs {
    /// Read only files matching this gitignore-style pattern (repeatable; a folder pattern such
    /// as `guide/` takes everything below it).
    #[arg(long, value_name = "GLOB", value_parser = pattern_arg)]
    include: Vec<String>,
    /// Leave out files and folders matching this gitignore-style pattern (repeatable; `!GLOB`
    /// takes an earlier match back).
    #[arg(long, value_name = "GLOB", value_parser = pattern_arg)]
    exclude: Vec<String>,
    /// Drop the default excludes (hidden entries, `_sources/`, `_static/`, `_images/`).
    #[arg(long)]
    no_default_excludes: bool,
}

impl SelectArgs {
    fn apply(self, config: &mut Config) {
        config.source.include.extend(self.include);
        config.source.exclude.extend(self.exclude);
        if self.no_default_excludes {
            config.source.default_excludes = false;
        }
    }
}

fn url_prefix_arg(s: &str) -> std::result::Result<String, String> {
    ragsnap::sources::parse_url_prefix(s).map(|_| s.to_string())
}

fn pattern_arg(s: &str) -> std::result::Result<String, String> {
    ragsnap::sources::check_pattern(s).map(|_| s.to_string())
}

#[derive(Subcommand, Debug)]
enum CacheAction {
    /// Vectors per fingerprint.
    Stats {
        /// JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Delete vectors of every fingerprint not listed (takes the writer lock).
    #[command(group = clap::ArgGroup::new("selection").required(true).args(["keep_fingerprints", "all"]))]
    Prune {
        /// Fingerprint ids to keep.
        #[arg(long, num_args = 1..)]
        keep_fingerprints: Vec<String>,
        /// Delete every vector of every fingerprint.
        #[arg(long)]
        all: bool,
        /// Say what would be deleted.
        #[arg(long)]
        dry_run: bool,
    },
}

/// An outcome that is not an error but still has its own exit code.
struct Exit(u8);

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = if cli.quiet {
        "error"
    } else {
        match cli.verbose {
            0 => "warn",
            1 => "info",
            _ => "debug",
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("RAGSNAP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();
    match run(cli) {
        Ok(Exit(code)) => ExitCode::from(code),
        Err(e) => {
            eprintln!("ragsnap: error: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}

fn exit_code(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if let Some(err) = cause.downcast_ref::<Error>() {
            return match err {
                Error::EmbeddingVersionMismatch { .. } | Error::EmbeddingDrift { .. } => EXIT_REFUSED,
                Error::Store(s) => store_code(s),
                Error::Cancelled => EXIT_INTERRUPTED,
                Error::InvalidSetting { .. } | Error::Config { .. } => EXIT_USAGE,
                _ => EXIT_ERROR,
            };
        }
        if let Some(s) = cause.downcast_ref::<StoreError>() {
            return store_code(s);
        }
    }
    EXIT_ERROR
}

fn store_code(s: &StoreError) -> u8 {
    match s {
        StoreError::Locked { .. } => EXIT_LOCKED,
        StoreError::Corrupt { .. }
        | StoreError::Malformed { .. }
        | StoreError::ManifestRefused { .. }
        | StoreError::CatalogDamaged { .. }
        | StoreError::Unreadable { .. } => EXIT_VERIFY,
        StoreError::NotAStore { .. } | StoreError::NoStore { .. } => EXIT_USAGE,
        StoreError::Refused(_) => EXIT_REFUSED,
        _ => EXIT_ERROR,
    }
}

fn print_json(v: &impl serde::Serialize) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}

fn run(cli: Cli) -> Result<Exit> {
    let mut config = Config::discover(cli.config.as_deref())?;
    // Flags win over the environment, which wins over the file.
    config.runtime.ort_lib = cli.ort_lib.clone().or_else(|| env_path("RAGSNAP_ORT_LIB")).or(config.runtime.ort_lib);
    config.runtime.model_dir =
        cli.model_dir.clone().or_else(|| env_path("RAGSNAP_MODEL_DIR")).or(config.runtime.model_dir);
    let store_path = config.store_path(cli.store.as_deref());
    match cli.command {
        Command::Rebuild { source, url_prefix, select, allow_model_change, golden, metrics_file, json } => {
            select.apply(&mut config);
            let sources: Vec<SourceConfig> = source
                .into_iter()
                .map(|dir| SourceConfig { dir, url_prefix: url_prefix.clone(), name: None })
                .collect();
            if golden.is_some() {
                config.gates.golden = golden;
            }
            let cancel = Arc::new(AtomicBool::new(false));
            for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
                signal_hook::flag::register(sig, cancel.clone()).context("installing signal handlers")?;
            }
            let embedder = ragsnap::open_embedder(&config.runtime)?;
            // A progress bar only for a person watching: never in cron logs or pipes.
            let bar = (!cli.quiet && std::io::stderr().is_terminal()).then(|| {
                let b = indicatif::ProgressBar::new(0);
                b.set_style(
                    indicatif::ProgressStyle::with_template("{spinner} {msg:<8} [{bar:30}] {pos}/{len} {elapsed}")
                        .expect("valid template")
                        .progress_chars("=> "),
                );
                b
            });
            let on_progress = |stage: &str, done: u64, total: u64| {
                if let Some(b) = &bar {
                    b.set_message(stage.to_string());
                    b.set_length(total);
                    b.set_position(done);
                }
            };
            let opts = ragsnap::RebuildOptions {
                sources,
                allow_model_change,
                cancel: Some(&cancel),
                progress: Some(&on_progress),
                ..Default::default()
            };
            let result = ragsnap::rebuild_with(&store_path, &config, &opts, embedder.as_ref());
            if let Some(b) = &bar {
                b.finish_and_clear();
            }
            let report = result?;
            if let Some(path) = &metrics_file {
                ragsnap::core::fsio::write_atomic(path, ragsnap::prometheus_metrics(&report).as_bytes())
                    .with_context(|| format!("writing metrics to {}", path.display()))?;
            }
            if json {
                print_json(&report)?;
            }
            if !cli.quiet {
                eprintln!(
                    "ragsnap: snapshot {} {}: {} documents, {} chunks ({} embedded, {} from cache), {} failed, {} skipped{}, {} excluded; index {} (recall {:.3}); {:.1}s",
                    report.snapshot_id,
                    if report.promoted { "promoted" } else { "REJECTED (head unchanged)" },
                    report.documents_indexed,
                    report.chunks,
                    report.cache_misses,
                    report.cache_hits,
                    report.failed.len(),
                    report.skipped.len(),
                    skip_reasons(&report.skipped),
                    report.files_excluded,
                    report.index_kind,
                    report.recall,
                    report.timings.get("total").copied().unwrap_or_default()
                );
                let d = &report.source_diff;
                eprintln!(
                    "ragsnap:   sources vs head: {} added, {} changed, {} removed, {} unchanged; {} documents chunked, {} reused from head",
                    d.added, d.changed, d.removed, d.unchanged, report.documents_chunked, report.documents_reused
                );
                for f in &report.failed {
                    eprintln!("ragsnap:   failed {}: {}", f.path, f.error);
                }
                for g in &report.gates {
                    eprintln!(
                        "ragsnap:   gate {:<18} {}  {:.4} (threshold {:.4})  {}",
                        g.name,
                        if g.passed { "pass" } else { "FAIL" },
                        g.value,
                        g.threshold,
                        g.detail
                    );
                }
                for p in &report.changed_during_run {
                    eprintln!("ragsnap:   {p} changed while the build ran; the version read was indexed");
                }
            }
            Ok(Exit(if report.promoted { 0 } else { EXIT_REJECTED }))
        }
        Command::Query { text, k, floor, floor_percentile, ef, mode, lexical_floor, rrf_k, snapshot, json } => {
            let opts = QueryOptions {
                mode,
                lexical_floor,
                rrf_k: rrf_k.unwrap_or(QueryOptions::default().rrf_k),
                k: k.map_or(config.query.k, |k| k as usize),
                max_k: config.query.max_k,
                floor: floor.or(config.query.floor),
                floor_percentile,
                ef: ef.map(|e| e as usize),
                max_per_source: config.query.max_per_source,
            };
            opts.validate()?;
            let store = Store::open_reader(&store_path)?;
            let id = match snapshot {
                Some(id) => id,
                None => store.head()?.id,
            };
            let snap = Arc::new(Snapshot::open(&store, &id)?);
            let embedder = ragsnap::open_embedder(&config.runtime)?;
            let searcher = Searcher::new(snap, embedder)?;
            let result = searcher.query(&text, &opts)?;
            if json {
                print_json(&result)?;
            } else {
                match &result.answer {
                    Answer::Hits { hits } => {
                        println!(
                            "snapshot {}  mode {:?}  floor {:.2}{}",
                            result.snapshot_id,
                            result.mode,
                            result.floor,
                            result.lexical_floor.map(|l| format!(" (lexical {l:.2})")).unwrap_or_default()
                        );
                        for (i, h) in hits.iter().enumerate() {
                            let mut why = Vec::new();
                            if let Some(c) = h.signals.dense_score {
                                why.push(format!("cosine {c:.3}"));
                            }
                            if let Some(c) = h.signals.lexical_coverage {
                                why.push(format!("lexical {c:.2}"));
                            }
                            println!(
                                "{:>2}. {}  [{}]  {}; supported by {}",
                                i + 1,
                                h.source_path,
                                h.header_path.join(" > "),
                                why.join(", "),
                                h.signals.supported_by.join(" + ")
                            );
                            let body: String = h.text.lines().skip(2).collect::<Vec<_>>().join(" ");
                            let short: String = body.chars().take(160).collect();
                            println!("    {short}{}", if body.chars().count() > 160 { "…" } else { "" });
                        }
                    }
                    Answer::NoConfidentMatch { best_score } => {
                        println!(
                            "no confident match in snapshot {} (best score {}, floor {:.2})",
                            result.snapshot_id,
                            best_score.map(|s| format!("{s:.3}")).unwrap_or_else(|| "none".into()),
                            result.floor
                        );
                    }
                }
            }
            Ok(Exit(if matches!(result.answer, Answer::NoConfidentMatch { .. }) { EXIT_REFUSED } else { 0 }))
        }
        Command::Snapshots { json } => {
            let store = Store::open_reader(&store_path)?;
            let list = store.catalog().list()?;
            if json {
                print_json(&list)?;
            } else {
                println!(
                    "{:<2} {:<26} {:<21} {:<9} {:>6} {:>7} {:<24} {:>7}",
                    "", "ID", "CREATED", "STATUS", "DOCS", "CHUNKS", "FINGERPRINT", "RECALL"
                );
                for s in &list {
                    println!(
                        "{:<2} {:<26} {:<21} {:<9} {:>6} {:>7} {:<24} {:>7.3}",
                        if s.is_head { "*" } else { "" },
                        s.id,
                        s.created_at,
                        s.status,
                        s.documents,
                        s.chunks,
                        s.fingerprint_id,
                        s.recall
                    );
                    if let Some(b) = &s.backed_out {
                        println!("   backed out {} by {}: {}", b.at, b.by, b.reason);
                    }
                }
            }
            Ok(Exit(0))
        }
        Command::Show { id, json } => {
            let store = Store::open_reader(&store_path)?;
            let id = match id {
                Some(id) => id,
                None => store.head()?.id,
            };
            let opened = store.open_snapshot(&id)?;
            let record = store.catalog().get(&id)?;
            let mut m = opened.manifest.clone();
            let canaries = m.canaries.len();
            m.canaries.iter_mut().for_each(|c| c.vector.truncate(4));
            if json {
                let mut v = serde_json::to_value(&m)?;
                v["status"] = serde_json::json!(record.status);
                if let Some(b) = &record.backed_out {
                    v["backed_out"] = serde_json::to_value(b)?;
                }
                print_json(&v)?;
            } else {
                println!("snapshot     {}", m.snapshot_id);
                println!("status       {}{}", record.status, if record.is_head { " (head)" } else { "" });
                if let Some(b) = &record.backed_out {
                    println!("backed out   {} by {}: {}", b.at, b.by, b.reason);
                }
                println!("parent       {}", m.parent_id.as_deref().unwrap_or("-"));
                println!("created      {}", m.created_at);
                println!("format       v{}  tool {}", m.format_version.0, m.tool_version);
                println!(
                    "embedding    {}  (runtime {}, {} canaries)",
                    m.fingerprint.id(),
                    m.fingerprint.runtime_version,
                    canaries
                );
                println!(
                    "index        {} M={} ef_construction={} ef_search={} recall@{}={:.4} (target {:.2}, {} queries)",
                    m.index.kind,
                    m.index.m,
                    m.index.ef_construction,
                    m.index.ef_search,
                    m.index.k,
                    m.index.recall,
                    m.index.target_recall,
                    m.index.sample
                );
                println!("counts       {} documents, {} chunks", m.counts.documents, m.counts.chunks);
                println!("source       {}", m.source_digest);
                for f in &m.files {
                    println!("file         {:<20} {:<10} {:>10} B  {}", f.name, f.kind, f.size, &f.blake3[..16]);
                }
            }
            Ok(Exit(0))
        }
        Command::Diff { a, b, json } => {
            let store = Store::open_reader(&store_path)?;
            let b = match b {
                Some(b) => b,
                None => store.head()?.id,
            };
            let d = ragsnap::diff(&store, &a, &b)?;
            if json {
                print_json(&d)?;
            } else {
                println!("{} -> {}", d.a, d.b);
                println!(
                    "documents  {} -> {}  (+{} -{} ~{} ={})",
                    d.documents.0,
                    d.documents.1,
                    d.added.len(),
                    d.removed.len(),
                    d.changed.len(),
                    d.unchanged
                );
                println!("chunks     {} -> {}", d.chunks.0, d.chunks.1);
                if d.fingerprint.0 != d.fingerprint.1 {
                    println!("embedding  {} -> {}", d.fingerprint.0, d.fingerprint.1);
                }
                for (k, (x, y)) in &d.settings {
                    println!("{k:<10} {x} -> {y}");
                }
                for p in &d.added {
                    println!("  + {p}");
                }
                for p in &d.removed {
                    println!("  - {p}");
                }
                for p in &d.changed {
                    println!("  ~ {p}");
                }
            }
            Ok(Exit(0))
        }
        Command::Rollback { to, steps, reason, allow_model_change, json } => {
            let mut store = open_writer(&store_path)?;
            let target = match to {
                Some(t) => t,
                None => store.previous_head(steps.unwrap_or(1) as usize)?,
            };
            let (from, to) = store.rollback(&target, &reason, allow_model_change)?;
            if json {
                print_json(&serde_json::json!({ "from": from, "to": to, "reason": reason }))?;
            } else if !cli.quiet {
                eprintln!("ragsnap: head moved from {from} to {to}");
            }
            Ok(Exit(0))
        }
        Command::Promote { id, force, allow_model_change, reason } => {
            let mut store = open_writer(&store_path)?;
            store.promote_with(&id, force, allow_model_change, &reason)?;
            if !cli.quiet {
                eprintln!("ragsnap: {id} is head");
            }
            Ok(Exit(0))
        }
        Command::Verify { id, all, json } => {
            let store = Store::open_reader(&store_path)?;
            let ids: Vec<String> = if all {
                store.catalog().list()?.into_iter().filter(|s| s.status != "collected").map(|s| s.id).collect()
            } else {
                vec![match id {
                    Some(id) => id,
                    None => store.head()?.id,
                }]
            };
            let mut reports = Vec::new();
            for id in &ids {
                reports.push(ragsnap::verify_snapshot(&store, id)?);
            }
            if all {
                for s in store.catalog().list()?.into_iter().filter(|s| s.status == "collected") {
                    let marker = ragsnap::store::layout::collecting_marker(store.root(), &s.id);
                    if store.snapshot_dir(&s.id).is_dir() && !marker.is_file() {
                        eprintln!(
                            "ragsnap: warning: snapshot {} is marked collected but gc never started removing it (no gc marker); its folder is kept (`ragsnap repair` can restore it)",
                            s.id
                        );
                    }
                }
            }
            let ok = reports.iter().all(|r| r.ok);
            if json {
                print_json(&reports)?;
            } else {
                for r in &reports {
                    if r.ok {
                        println!("ok      {}  ({} files, {} bytes)", r.snapshot_id, r.files, r.bytes);
                    } else {
                        println!("FAILED  {}", r.snapshot_id);
                        for p in &r.problems {
                            println!("        {}: {}", p.file, p.message);
                        }
                    }
                }
            }
            Ok(Exit(if ok { 0 } else { EXIT_VERIFY }))
        }
        Command::Gc { keep, older_than, dry_run, json } => {
            let mut store = if dry_run { Store::open_dry_run(&store_path)? } else { open_writer(&store_path)? };
            let rep = store.gc(keep, older_than, dry_run)?;
            if json {
                print_json(&rep)?;
            } else {
                for line in &rep.housekeeping {
                    println!("{line}");
                }
                for id in &rep.resumed {
                    println!(
                        "{} {id} (collected earlier; an interrupted gc left its folder)",
                        if dry_run { "would remove" } else { "removed" }
                    );
                }
                for id in &rep.removed {
                    println!("{} {id}", if dry_run { "would remove" } else { "removed" });
                }
                println!(
                    "{} snapshot(s), {} bytes{}",
                    rep.removed.len(),
                    rep.bytes_freed,
                    if dry_run { " (dry run)" } else { "" }
                );
            }
            Ok(Exit(0))
        }
        Command::Repair { dry_run, json } => repair_cmd(&store_path, dry_run, json),
        Command::Cache { action } => {
            if !store_path.is_dir() {
                return Err(StoreError::NoStore { path: store_path.clone() }.into());
            }
            // Pruning writes: it takes the writer lock like every other writer. A dry run
            // changes nothing: it opens the store the way a reader does.
            let writer = match &action {
                CacheAction::Prune { dry_run: true, .. } => Some(Store::open_dry_run(&store_path)?),
                CacheAction::Prune { .. } => Some(open_writer(&store_path)?),
                CacheAction::Stats { .. } => None,
            };
            for name in
                ["cache", "cache/embeddings.sqlite", "cache/embeddings.sqlite-wal", "cache/embeddings.sqlite-shm"]
            {
                ragsnap::store::layout::entry_metadata(&store_path.join(name))?;
            }
            let path = store_path.join("cache").join("embeddings.sqlite");
            if !path.exists() {
                anyhow::bail!("no embedding cache at {}: run `ragsnap rebuild` first", path.display());
            }
            let cache = ragsnap::embed::EmbeddingCache::open(&path)?;
            match action {
                CacheAction::Prune { keep_fingerprints, all, dry_run } => {
                    let keep: Vec<String> = if all { Vec::new() } else { keep_fingerprints };
                    // A fingerprint nobody uses is a typo, not a request to delete everything.
                    let mut known: std::collections::HashSet<String> =
                        cache.stats()?.into_iter().map(|s| s.fingerprint).collect();
                    if let Some(store) = &writer {
                        known.extend(store.catalog().list()?.into_iter().map(|s| s.fingerprint_id));
                    }
                    let unknown: Vec<&String> = keep.iter().filter(|k| !known.contains(*k)).collect();
                    if !unknown.is_empty() {
                        usage(&format!(
                            "--keep-fingerprints {} matches no fingerprint in the cache nor any snapshot's; nothing was deleted (`ragsnap cache stats` lists them)",
                            unknown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                        ));
                    }
                    if dry_run {
                        let doomed: Vec<_> =
                            cache.stats()?.into_iter().filter(|s| !keep.contains(&s.fingerprint)).collect();
                        for s in &doomed {
                            println!("would delete {:<28} {:>8} vectors", s.fingerprint, s.vectors);
                        }
                        println!("would delete {} vectors (dry run)", doomed.iter().map(|s| s.vectors).sum::<u64>());
                    } else {
                        let n = cache.prune(&keep)?;
                        println!("deleted {n} vectors");
                    }
                    drop(writer);
                }
                CacheAction::Stats { json } => {
                    let stats = cache.stats()?;
                    if json {
                        print_json(&stats)?;
                    } else {
                        for s in &stats {
                            println!("{:<28} {:>8} vectors {:>12} bytes", s.fingerprint, s.vectors, s.bytes);
                        }
                    }
                }
            }
            Ok(Exit(0))
        }
        Command::Chunk { paths, source, url_prefix, select, markdown, model_tokens: _, json, stats } => {
            if url_prefix.is_some() && source.is_empty() {
                usage("--url-prefix applies to the folders of --source; give --source DIR with it");
            }
            select.apply(&mut config);
            let sources: Vec<SourceConfig> = source
                .into_iter()
                .map(|dir| SourceConfig { dir, url_prefix: url_prefix.clone(), name: None })
                .collect();
            chunk_cmd(&config, &paths, &sources, ChunkOutput { markdown, json, stats, quiet: cli.quiet })
        }
        Command::Serve(args) => {
            Ok(Exit(ragsnap_serve::serve_command(&args, &store_path, &config.runtime, &config.query)))
        }
        Command::Publish(args) => Ok(Exit(ragsnap_serve::publish_command(&args, &store_path))),
        Command::Pull(args) => Ok(Exit(ragsnap_serve::pull_command(&args, &store_path))),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "ragsnap", &mut std::io::stdout());
            Ok(Exit(0))
        }
    }
}

/// Print a usage error the way clap does and exit 2.
fn usage(message: &str) -> ! {
    Cli::command().error(clap::error::ErrorKind::ArgumentConflict, message).exit()
}

/// One document of `ragsnap chunk --json` (JSON Lines; fields in this order).
#[derive(serde::Serialize)]
struct ChunkLine<'a> {
    source: &'a str,
    url: Option<&'a str>,
    title: &'a str,
    hub: bool,
    chunks: Vec<ChunkLineChunk<'a>>,
}

#[derive(serde::Serialize)]
struct ChunkLineChunk<'a> {
    text: &'a str,
    header_path: &'a [String],
    tokens: usize,
}

struct ChunkOutput {
    markdown: bool,
    json: bool,
    stats: bool,
    quiet: bool,
}

/// `ragsnap chunk`: rebuild's stages 1-3 (`ragsnap::ingest::prepare`) with rebuild's settings
/// and the model's tokenizer (no ONNX session), printed instead of embedded.
fn chunk_cmd(config: &Config, paths: &[PathBuf], sources: &[SourceConfig], out: ChunkOutput) -> Result<Exit> {
    use ragsnap::ingest::{self, Inputs, PrepareOptions, Tokens};
    let inputs = if !paths.is_empty() {
        Inputs::Files(paths)
    } else if !sources.is_empty() {
        Inputs::Folders(sources)
    } else if !config.sources.is_empty() {
        Inputs::Folders(&config.sources)
    } else {
        usage("ragsnap chunk needs FILE..., --source DIR, or [[sources]] in ragsnap.toml");
    };
    let counter = ingest::open_token_counter(&config.runtime)?;
    let prepared = ingest::prepare(&inputs, config, Tokens::Tokenizer(&counter), &PrepareOptions::default())?;
    if !out.stats {
        match print_prepared(&prepared, &out) {
            Err(e)
                if e.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
            {
                // The reader stopped early (`| head`): not an error of ours.
                return Ok(Exit(0));
            }
            r => r?,
        }
    }
    if !out.quiet || out.stats {
        for f in &prepared.failed {
            eprintln!("ragsnap: failed {}: {}", f.path, f.error);
        }
        let hubs = prepared.hubs.len();
        eprintln!(
            "ragsnap: chunk: {} pages, {} chunks, {} skipped{}, {} failed, {} template blocks dropped (of {}), {} hub pages; {} files seen, {} excluded by the [source] selection",
            prepared.documents.len(),
            prepared.chunk_count(),
            prepared.skipped.len(),
            skip_reasons(&prepared.skipped),
            prepared.failed.len(),
            prepared.boilerplate.blocks_removed,
            prepared.boilerplate.blocks_total,
            hubs,
            prepared.files_seen,
            prepared.excluded,
        );
    }
    Ok(Exit(if prepared.failed.is_empty() { 0 } else { EXIT_ERROR }))
}

fn print_prepared(prepared: &ragsnap::ingest::PreparedCorpus, out: &ChunkOutput) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    for d in &prepared.documents {
        if out.markdown {
            if out.json {
                writeln!(stdout, "{}", serde_json::to_string(&d.doc)?)?;
            } else {
                writeln!(stdout, "{}", d.doc.markdown)?;
            }
        } else if out.json {
            let line = ChunkLine {
                source: &d.doc.source_path,
                url: d.url.as_deref(),
                title: d.doc.title.as_deref().unwrap_or_default(),
                hub: false,
                chunks: d
                    .chunks
                    .iter()
                    .map(|c| ChunkLineChunk { text: &c.text, header_path: &c.header_path, tokens: c.tokens })
                    .collect(),
            };
            writeln!(stdout, "{}", serde_json::to_string(&line)?)?;
        } else {
            for c in &d.chunks {
                writeln!(
                    stdout,
                    "── {}  [{} tokens, lines {}-{}]  {}",
                    d.doc.source_path,
                    c.tokens,
                    c.line_range.0,
                    c.line_range.1,
                    &c.content_id.as_str()[..12]
                )?;
                writeln!(stdout, "{}\n", c.text)?;
            }
        }
    }
    if out.json && !out.markdown {
        // Hub pages are listed (flagged, without chunks) so a reader sees every page read.
        for d in &prepared.hubs {
            let line = ChunkLine {
                source: &d.source_path,
                url: None,
                title: d.title.as_deref().unwrap_or_default(),
                hub: true,
                chunks: Vec::new(),
            };
            writeln!(stdout, "{}", serde_json::to_string(&line)?)?;
        }
    }
    stdout.flush()?;
    Ok(())
}

/// ` (2 symlink, 1 unsupported)`: skipped entries counted by kind; empty when none.
fn skip_reasons(skipped: &[ragsnap::rebuild::DocFailure]) -> String {
    let mut by: std::collections::BTreeMap<&str, usize> = Default::default();
    for f in skipped {
        *by.entry(f.kind.as_str()).or_default() += 1;
    }
    if by.is_empty() {
        return String::new();
    }
    format!(" ({})", by.iter().map(|(k, n)| format!("{n} {k}")).collect::<Vec<_>>().join(", "))
}

fn env_path(k: &str) -> Option<PathBuf> {
    std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// Longest `--older-than` accepted: 100 years, in seconds.
const MAX_DURATION_SECS: i64 = 100 * 366 * 86_400;

/// `7d`, `12h`, `30m`, `90s`, `2w` as seconds (a unit is required); a clap value parser, so a bad
/// or out-of-range value is a usage error (exit 2).
fn parse_duration_arg(s: &str) -> std::result::Result<i64, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num.parse().map_err(|_| format!("bad duration {s:?} (use e.g. 7d, 12h, 30m)"))?;
    let mult: i64 = match unit {
        "" => return Err(format!("duration {s:?} has no unit (use s, m, h, d or w, e.g. {s}d)")),
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(format!("bad duration unit in {s:?} (use s, m, h, d or w)")),
    };
    n.checked_mul(mult)
        .filter(|v| *v <= MAX_DURATION_SECS)
        .ok_or_else(|| format!("duration {s:?} is out of range (at most 100 years)"))
}

/// Open the store for writing with the library's load check. What the open moves to
/// `quarantine/` is logged as a warning by the store itself (shown unless `-q`).
fn open_writer(path: &std::path::Path) -> Result<Store> {
    // Only `rebuild` creates a store.
    if ragsnap::store::layout::classify(path)? == ragsnap::store::layout::RootState::Fresh {
        return Err(StoreError::NoStore { path: path.to_path_buf() }.into());
    }
    Ok(ragsnap::open_store_writer(path)?)
}

fn repair_cmd(path: &std::path::Path, dry_run: bool, json: bool) -> Result<Exit> {
    let rep = ragsnap::repair_store(path, dry_run)?;
    if json {
        print_json(&rep)?;
    } else if !rep.needed {
        println!("catalog is healthy and agrees with the snapshot folders: nothing to repair");
    } else {
        println!("catalog problem: {}", rep.catalog_problem.as_deref().unwrap_or("-"));
        let verb = if dry_run { "would restore" } else { "restored" };
        for s in &rep.restored {
            println!(
                "{verb} {} as {}{}{}",
                s.id,
                s.status,
                if s.backed_out { " (backed out)" } else { "" },
                s.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default()
            );
        }
        for u in &rep.unrestored {
            println!("could not restore {}: {} ({})", u.name, u.problem, u.path.display());
        }
        if !rep.restored.is_empty() || rep.head.is_some() {
            println!("head: {} ({})", rep.head.as_deref().unwrap_or("none"), rep.head_source);
        }
        if let Some(p) = &rep.old_catalog_kept_as {
            println!("old catalog kept as {}", p.display());
        }
        if !rep.not_restored.is_empty() {
            println!("not restored: {}", rep.not_restored.join(", "));
        }
        if dry_run {
            println!("(dry run: nothing was changed)");
        }
    }
    Ok(Exit(if rep.unrestored.is_empty() { 0 } else { EXIT_VERIFY }))
}
