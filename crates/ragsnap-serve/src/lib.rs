//! # ragsnap-serve
//!
//! `ragsnap serve`: a long-running HTTP/JSON query service over a ragsnap store, for
//! applications that cannot link the library.
//!
//! It is built to fail fast rather than pile up. A bounded number of queries run at once
//! (default: one per core) and a bounded number wait (default: four per slot); past that a
//! request gets `503` with `Retry-After` at once. Every request has a deadline (default 5 s, a
//! request may ask for less) after which it gets `504` and its slot is freed. Query embedding
//! runs on a small pool of model sessions ([`pool::EmbedderPool`]), not behind one lock.
//!
//! A head move in the store (a rebuild's promotion, `rollback`, `promote`) is noticed within
//! the refresh interval (default 500 ms): the new head is opened and checked against the model
//! (fingerprint and canaries) before it replaces the old one, and a request already running
//! finishes on the snapshot it started with. Every answer names its snapshot. A head built with
//! another model is never searched: `/readyz` fails and queries get a typed
//! `embedding_version_mismatch` error until head moves to a snapshot this model can serve.
//!
//! | endpoint | what |
//! |---|---|
//! | `POST /v1/query` | `{"query", "k"?, "mode"?, "floor"?, "floor_percentile"?, "ef"?, "lexical_floor"?, "rrf_k"?, "timeout_ms"?, "snapshot"?}` → the library's query result; a refusal has `"hits": []` and a `reason` |
//! | `POST /v1/query/batch` | `{"queries": [...], "timeout_ms"?, "snapshot"?}` → `{"snapshot_id", "results": [...]}`, all from one snapshot |
//! | `GET /v1/head` | the snapshot serving, the store's head, the model, readiness and any problem |
//! | `GET /v1/snapshots` | the catalog's snapshots |
//! | `GET /healthz` | the process answers |
//! | `GET /readyz` | a snapshot is open, its canaries matched this model, head is servable |
//! | `GET /metrics` | Prometheus text: per-snapshot requests, answered, refused, shed, timed out; latency per mode; top-1 scores and their drift from the snapshot's calibration |
//!
//! `"snapshot"` is an id, `HEAD` (the default: the snapshot serving) or `HEAD~N`, as `ragsnap
//! query --snapshot` takes it; a snapshot other than head is opened and checked on first use and
//! kept in a small cache (`--snapshot-cache`).
//!
//! Errors are `{"error": {"kind", "message"}, "snapshot_id"}` with kinds `invalid_request`
//! (400), `unauthorized` (401), `snapshot_not_found` (404), `method_not_allowed` (405),
//! `body_timeout` (408), `embedding_version_mismatch` / `embedding_drift` of a named snapshot
//! (409), `payload_too_large` (413), `overloaded` (503), `embedding_version_mismatch` /
//! `embedding_drift` of head, `not_ready`, `snapshot_damaged` (503), `deadline_exceeded` (504),
//! `store_error` / `internal` (500).
//!
//! It listens on loopback unless a bearer token is configured (`--token-file`, a file other users
//! cannot access, or `RAGSNAP_SERVE_TOKEN`); with a token every endpoint but `/healthz` and
//! `/readyz` requires it. A client has `--read-timeout-ms` to send its headers, and again its
//! body, or its connection is closed (headers) or answered 408 (body).

pub mod metrics;
pub mod pool;
pub mod remote;
mod service;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The environment variable holding the bearer token (when `--token-file` is not given).
pub const TOKEN_ENV: &str = "RAGSNAP_SERVE_TOKEN";

/// Exit code of a usage error (bad flag, unsafe listen address).
pub const EXIT_USAGE: u8 = 2;

/// Options of `ragsnap serve`.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on; anything but loopback needs a bearer token.
    #[arg(long, default_value = "127.0.0.1:8077")]
    pub listen: SocketAddr,
    /// Queries running at once [default: the number of cores].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub concurrency: Option<u32>,
    /// Requests admitted to wait for a slot; past concurrency + queue, 503 at once
    /// [default: 4 × concurrency].
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=65536))]
    pub queue: Option<u32>,
    /// Deadline of a request in milliseconds (a request may ask for less).
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub timeout_ms: u64,
    /// Model sessions for query embedding [default: min(cores, concurrency, 4)].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub sessions: Option<u32>,
    /// How often the store's head is checked, in milliseconds.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(50..=1000))]
    pub refresh_ms: u64,
    /// File holding the bearer token clients must send [env: RAGSNAP_SERVE_TOKEN].
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 65_536, value_parser = clap::value_parser!(u64).range(256..=16_777_216))]
    pub max_body_bytes: u64,
    /// Longest query text in bytes (longer is a 400; within it, text past the model's input
    /// length is cut as the library cuts it, and the answer says `"truncated": true`).
    #[arg(long, default_value_t = 8192, value_parser = clap::value_parser!(u64).range(16..=1_048_576))]
    pub max_query_bytes: u64,
    /// Most queries in one batch request.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub max_batch: u32,
    /// Longest time a client may take to send a request's headers (counted from the connection's
    /// start, or from the previous answer on a kept-alive connection) and, separately, its body,
    /// in milliseconds; a slower client's connection is closed (headers) or answered 408 (body).
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub read_timeout_ms: u64,
    /// Client connections open at once; one more is closed as soon as it is accepted, so slow or
    /// idle clients cannot use up the file descriptors the store's files need (keep it well under
    /// `ulimit -n`, often 1024).
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub max_connections: u32,
    /// Snapshots other than head kept open for requests that name one (`"snapshot"`); the least
    /// recently used is closed first. 0 opens such a snapshot for each request.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=16))]
    pub snapshot_cache: u32,
    /// Put the query text into the access log (off by default: queries can hold personal data).
    #[arg(long)]
    pub log_queries: bool,
    /// Follow a remote (s3://bucket/prefix or file:///folder): pull each snapshot published
    /// there into the store and switch to it.
    #[arg(long, value_name = "URL")]
    pub follow: Option<String>,
    /// With --follow: accept a remote head built with another embedding model (the service
    /// then stops answering until it runs with that model; it never mixes models).
    #[arg(long, requires = "follow")]
    pub allow_model_change: bool,
}

/// Options of `ragsnap publish`.
#[derive(clap::Args, Debug, Clone)]
pub struct PublishArgs {
    /// Snapshot to publish (an id, HEAD or HEAD~N) [default: HEAD].
    pub id: Option<String>,
    /// Remote: s3://bucket/prefix or file:///absolute/folder.
    #[arg(long, value_name = "URL")]
    pub to: String,
}

/// Options of `ragsnap pull`.
#[derive(clap::Args, Debug, Clone)]
pub struct PullArgs {
    /// Remote: s3://bucket/prefix or file:///absolute/folder.
    #[arg(long, value_name = "URL")]
    pub from: String,
    /// Accept a remote head built with another embedding model than the local head's.
    #[arg(long)]
    pub allow_model_change: bool,
}

/// Settings of a running service, validated.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Store folder.
    pub store: PathBuf,
    /// Listen address.
    pub listen: SocketAddr,
    /// Queries running at once (≥ 1).
    pub concurrency: usize,
    /// Requests waiting for a slot.
    pub queue: usize,
    /// Default and longest deadline of a request.
    pub timeout: Duration,
    /// Model sessions for query embedding (≥ 1).
    pub sessions: usize,
    /// Head polling interval.
    pub refresh: Duration,
    /// Bearer token, when one is required.
    pub token: Option<String>,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Longest query text.
    pub max_query_bytes: usize,
    /// Most queries in a batch.
    pub max_batch: usize,
    /// Longest wait for a request's headers, and for its body.
    pub read_timeout: Duration,
    /// Non-head snapshots kept open.
    pub snapshot_cache: usize,
    /// Client connections open at once.
    pub max_connections: usize,
    /// Log query texts.
    pub log_queries: bool,
    /// Query defaults (`[query]` of the config).
    pub query: ragsnap::config::QueryDefaults,
    /// Remote to follow.
    pub follow: Option<String>,
    /// Accept a followed remote head built with another model.
    pub allow_model_change: bool,
}

/// Why the service could not start or stopped.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A setting is wrong (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The listen address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// OS error.
        source: std::io::Error,
    },
    /// The library refused (store, model, snapshot).
    #[error(transparent)]
    Library(#[from] ragsnap::Error),
    /// The object store could not be reached or refused a request.
    #[error("remote {url}: {message}")]
    Remote {
        /// The remote URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// A remote object is missing, truncated or does not match its recorded checksum (exit 4).
    #[error("remote object {object} is corrupt: {message}; nothing was registered and the local head is unchanged")]
    RemoteCorrupt {
        /// The object's URL.
        object: String,
        /// What is wrong.
        message: String,
    },
    /// Another publisher moved the remote head first (exit 5).
    #[error("{0}")]
    RemoteConflict(String),
    /// Anything else.
    #[error("{0}")]
    Internal(String),
}

impl ServeError {
    /// The `ragsnap` binary's exit code for this error.
    pub fn exit_code(&self) -> u8 {
        use ragsnap::store::StoreError;
        match self {
            ServeError::Usage(_) => EXIT_USAGE,
            ServeError::Library(e) => match e {
                ragsnap::Error::EmbeddingVersionMismatch { .. } | ragsnap::Error::EmbeddingDrift { .. } => 3,
                ragsnap::Error::InvalidSetting { .. } | ragsnap::Error::Config { .. } => EXIT_USAGE,
                ragsnap::Error::Store(s) => match s {
                    StoreError::Locked { .. } => 5,
                    StoreError::Corrupt { .. }
                    | StoreError::Malformed { .. }
                    | StoreError::ManifestRefused { .. }
                    | StoreError::CatalogDamaged { .. }
                    | StoreError::Unreadable { .. } => 4,
                    StoreError::NotAStore { .. } | StoreError::NoStore { .. } => EXIT_USAGE,
                    StoreError::Refused(_) => 3,
                    _ => 1,
                },
                _ => 1,
            },
            ServeError::RemoteCorrupt { .. } => 4,
            ServeError::RemoteConflict(_) => 5,
            _ => 1,
        }
    }
}

impl From<ragsnap::store::StoreError> for ServeError {
    fn from(e: ragsnap::store::StoreError) -> Self {
        ServeError::Library(ragsnap::Error::Store(e))
    }
}

/// A token file anyone on the machine can read (or write) is no secret: refuse it, as ssh refuses
/// a private key others can read. Owner and group permissions are the operator's choice.
fn check_token_file_mode(path: &Path) -> Result<(), ServeError> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta =
        std::fs::metadata(path).map_err(|e| ServeError::Usage(format!("--token-file {}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(ServeError::Usage(format!("--token-file {}: not a regular file", path.display())));
    }
    let mode = meta.permissions().mode();
    if mode & 0o007 != 0 {
        return Err(ServeError::Usage(format!(
            "--token-file {}: other users may access it (mode {:03o}); make it private first, e.g. chmod 600",
            path.display(),
            mode & 0o777
        )));
    }
    Ok(())
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

impl ServeArgs {
    /// Check the flags against each other and the environment and make the service's settings.
    pub fn options(&self, store: &Path, query: &ragsnap::config::QueryDefaults) -> Result<ServeOptions, ServeError> {
        let concurrency = self.concurrency.map_or_else(cores, |c| c as usize);
        let queue = self.queue.map_or(4 * concurrency, |q| q as usize);
        let sessions = self.sessions.map_or_else(|| cores().min(concurrency).min(4), |s| s as usize).max(1);
        let token = match &self.token_file {
            Some(path) => {
                check_token_file_mode(path)?;
                let t = std::fs::read_to_string(path)
                    .map_err(|e| ServeError::Usage(format!("--token-file {}: {e}", path.display())))?;
                let t = t.trim().to_string();
                if t.is_empty() {
                    return Err(ServeError::Usage(format!("--token-file {}: the file is empty", path.display())));
                }
                Some(t)
            }
            None => match std::env::var(TOKEN_ENV) {
                Ok(t) if !t.trim().is_empty() => Some(t.trim().to_string()),
                _ => None,
            },
        };
        if let Some(t) = &token {
            if t.len() < 16 || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(ServeError::Usage(
                    "the bearer token must be at least 16 characters without spaces or control characters".into(),
                ));
            }
        }
        if let Some(url) = &self.follow {
            remote::Remote::open(url, false)?;
        }
        if !self.listen.ip().is_loopback() && token.is_none() {
            return Err(ServeError::Usage(format!(
                "--listen {} is not a loopback address: configure a bearer token first (--token-file or {TOKEN_ENV})",
                self.listen
            )));
        }
        Ok(ServeOptions {
            store: store.to_path_buf(),
            listen: self.listen,
            concurrency,
            queue,
            timeout: Duration::from_millis(self.timeout_ms),
            sessions,
            refresh: Duration::from_millis(self.refresh_ms),
            token,
            max_body_bytes: self.max_body_bytes as usize,
            max_query_bytes: self.max_query_bytes as usize,
            max_batch: self.max_batch as usize,
            read_timeout: Duration::from_millis(self.read_timeout_ms),
            snapshot_cache: self.snapshot_cache as usize,
            max_connections: self.max_connections as usize,
            log_queries: self.log_queries,
            query: query.clone(),
            follow: self.follow.clone(),
            allow_model_change: self.allow_model_change,
        })
    }
}

/// Run the service until SIGINT/SIGTERM on a runtime of its own.
pub fn run(opts: ServeOptions, runtime: &ragsnap::config::RuntimeConfig) -> Result<(), ServeError> {
    // A follower starts from the remote head; then fail on a missing store before loading the model.
    if let Some(url) = &opts.follow {
        let r = remote::Remote::open(url, false)?;
        block_on(remote::pull(&opts.store, &r, opts.allow_model_change))?;
    }
    ragsnap::Store::open_reader(&opts.store)?.head()?;
    let embedder = Arc::new(pool::EmbedderPool::load(runtime, opts.sessions)?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores().clamp(2, 8))
        .max_blocking_threads((opts.concurrency * 2).max(8))
        .enable_all()
        .build()
        .map_err(|e| ServeError::Internal(format!("starting the async runtime: {e}")))?;
    rt.block_on(serve(opts, embedder))
}

/// Serve on the current tokio runtime with an embedder pool already loaded.
pub async fn serve(opts: ServeOptions, embedder: Arc<pool::EmbedderPool>) -> Result<(), ServeError> {
    service::serve(opts, embedder).await
}

/// `ragsnap serve`, as the binary calls it: returns the exit code and prints any error.
pub fn serve_command(
    args: &ServeArgs,
    store: &Path,
    runtime: &ragsnap::config::RuntimeConfig,
    query: &ragsnap::config::QueryDefaults,
) -> u8 {
    let r = args.options(store, query).and_then(|o| run(o, runtime));
    report(r)
}

fn block_on<T>(f: impl std::future::Future<Output = Result<T, ServeError>>) -> Result<T, ServeError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ServeError::Internal(format!("starting the async runtime: {e}")))?
        .block_on(f)
}

fn print_report(json: bool, v: &impl serde::Serialize, line: String) -> Result<(), ServeError> {
    if json {
        let s = serde_json::to_string_pretty(v).map_err(|e| ServeError::Internal(e.to_string()))?;
        println!("{s}");
    } else {
        eprintln!("ragsnap: {line}");
    }
    Ok(())
}

/// `ragsnap publish`, as the binary calls it: returns the exit code and prints any error.
/// `json` prints the report as one JSON document on stdout (the binary's global `--json`).
pub fn publish_command(args: &PublishArgs, store: &Path, json: bool) -> u8 {
    let r = remote::Remote::open(&args.to, true).and_then(|remote| {
        let rep = block_on(remote::publish(store, args.id.as_deref(), &remote))?;
        let line = format!(
            "published {} to {}: {} artifacts uploaded, {} already there, {} bytes; remote head {}",
            rep.snapshot_id,
            rep.remote,
            rep.uploaded,
            rep.already_there,
            rep.bytes_uploaded,
            rep.head_seq.map_or("already named it".to_string(), |s| format!("moved (entry {s})"))
        );
        print_report(json, &rep, line)
    });
    report(r)
}

/// `ragsnap pull`, as the binary calls it: returns the exit code and prints any error.
/// `json` prints the report as one JSON document on stdout (the binary's global `--json`).
pub fn pull_command(args: &PullArgs, store: &Path, json: bool) -> u8 {
    let r = remote::Remote::open(&args.from, false).and_then(|remote| {
        let rep = block_on(remote::pull(store, &remote, args.allow_model_change))?;
        let line = format!(
            "pulled {} from {}: {} artifacts downloaded ({} bytes), {} reused; local head {}",
            rep.snapshot_id,
            rep.remote,
            rep.downloaded,
            rep.bytes_downloaded,
            rep.reused,
            if rep.head_moved { "moved" } else { "already there" }
        );
        print_report(json, &rep, line)
    });
    report(r)
}

fn report(r: Result<(), ServeError>) -> u8 {
    match r {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("ragsnap: error: {e}");
            e.exit_code()
        }
    }
}
