//! The HTTP service: routes, admission, deadlines, hot refresh.
//!
//! A request goes through four gates, each cheap and each with its own answer:
//! 1. the bearer token, when one is configured (401);
//! 2. admission: a place among `concurrency + queue`, taken without waiting (503 with
//!    `Retry-After` when there is none, so a retry storm meets a fast "no", not a slow queue);
//! 3. the body, read up to the size limit (413) and parsed (400);
//! 4. a running slot among `concurrency`, waited for until the request's deadline (504).
//!
//! The query itself runs on the blocking pool with the [`Searcher`] that was current when the
//! request arrived; a head move swaps the searcher under a lock held for a pointer copy, so a
//! request in flight finishes on the snapshot it started with and says which one that was.
//!
//! A request may name another snapshot (`"snapshot": "ID" | "HEAD" | "HEAD~N"`, as `ragsnap
//! query --snapshot`). It is resolved against the catalog, opened and checked against the model
//! like head, inside the request's slot and deadline, and kept in a small least-recently-used
//! cache (`--snapshot-cache`).
//!
//! Nothing read from disk after a snapshot was opened is trusted blindly: every hit's text must
//! still hash to its content id, and each head poll compares the snapshot's files with what they
//! were at opening (size, modification time, inode) and verifies them again when they changed.
//! A snapshot found damaged answers nothing more (`snapshot_damaged`, `/readyz` 503) until head
//! moves to a snapshot that opens cleanly.
//!
//! Connections are served by hyper directly (not `axum::serve`) so that a client has
//! `--read-timeout-ms` to send its headers: a connection that trickles bytes, or sits idle
//! between requests, is closed, and never holds a socket for long. The body has the same time
//! (408 past it) and is read only after admission, so it is bounded by `--max-body-bytes` and the
//! number of admitted requests.

use crate::metrics::{Metrics, Outcome};
use crate::pool::EmbedderPool;
use crate::{ServeError, ServeOptions};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ragsnap::embed::Embedder;
use ragsnap::{Answer, Error, Hit, Mode, QueryOptions, QueryResult, Searcher, Snapshot, Store};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::Semaphore;

/// An open snapshot, with the searcher checked against the embedder.
pub(crate) struct Live {
    pub(crate) searcher: Arc<Searcher>,
    pub(crate) id: String,
    pub(crate) fingerprint_id: String,
    pub(crate) opened_unix: u64,
    /// The snapshot's files as they were when it was opened (see [`FileStamp`]).
    stamps: Mutex<Vec<(PathBuf, Option<FileStamp>)>>,
    /// Set when something read from the snapshot no longer matches what was verified.
    damaged: AtomicBool,
}

/// What a file looked like: enough to notice it was written or replaced since.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified_ns: i128,
    inode: u64,
}

impl FileStamp {
    fn of(path: &std::path::Path) -> Option<FileStamp> {
        use std::os::unix::fs::MetadataExt as _;
        let m = std::fs::metadata(path).ok()?;
        Some(FileStamp {
            len: m.len(),
            modified_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            inode: m.ino(),
        })
    }
}

impl Live {
    fn is_damaged(&self) -> bool {
        self.damaged.load(Ordering::SeqCst)
    }

    /// Files whose stamp changed since the last look (and remember the new stamps).
    fn changed_files(&self) -> Vec<PathBuf> {
        let mut stamps = self.stamps.lock().unwrap_or_else(|p| p.into_inner());
        let mut changed = Vec::new();
        for (path, stamp) in stamps.iter_mut() {
            let now = FileStamp::of(path);
            if now != *stamp {
                changed.push(path.clone());
                *stamp = now;
            }
        }
        changed
    }
}

/// Which snapshot a request asks for.
#[derive(Clone, Debug)]
enum Wanted {
    /// The one serving (`HEAD`, or nothing said).
    Head,
    /// Anything else `Store::resolve` understands.
    Named(String),
}

impl Wanted {
    fn of(spec: Option<&str>) -> Wanted {
        match spec.map(str::trim) {
            None | Some("HEAD") | Some("head") => Wanted::Head,
            Some(s) => Wanted::Named(s.to_string()),
        }
    }
}

/// Why the service does not answer (or answers from an older snapshot than head).
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Problem {
    /// `embedding_version_mismatch`, `embedding_drift` (queries refused) or `head_unreadable`
    /// (the previous snapshot keeps answering).
    pub(crate) kind: &'static str,
    /// The head the service could not switch to.
    pub(crate) head: String,
    /// The error.
    pub(crate) message: String,
}

impl Problem {
    /// Whether queries are refused while this problem stands.
    fn blocks_queries(&self) -> bool {
        self.kind != "head_unreadable"
    }
}

#[derive(Default)]
struct Serving {
    live: Option<Arc<Live>>,
    problem: Option<Problem>,
    store_head: Option<String>,
}

/// Everything a handler needs.
pub(crate) struct App {
    root: PathBuf,
    embedder: Arc<EmbedderPool>,
    serving: RwLock<Serving>,
    pub(crate) metrics: Metrics,
    admission: Arc<Semaphore>,
    slots: Arc<Semaphore>,
    in_flight: AtomicUsize,
    /// Non-head snapshots requests asked for, most recently used first.
    others: Mutex<Vec<Arc<Live>>>,
    opts: ServeOptions,
}

/// A typed error answer: `{"error": {"kind", "message"}}` plus the snapshot when known.
struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    outcome: Outcome,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>, outcome: Outcome) -> Self {
        ApiError { status, kind, message: message.into(), outcome }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message, Outcome::Failed)
    }

    fn damaged(id: &str, what: &str) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "snapshot_damaged",
            format!("snapshot {id} changed on disk since it was verified ({what}); it answers nothing until head moves to a snapshot that opens cleanly"),
            Outcome::Failed,
        )
    }

    /// An error opening a snapshot a request named.
    fn from_named(spec: &str, e: &Error) -> Self {
        use ragsnap::store::StoreError;
        match e {
            Error::Store(StoreError::UnknownSnapshot(_) | StoreError::BeyondHistory { .. }) => {
                Self::new(StatusCode::NOT_FOUND, "snapshot_not_found", e.to_string(), Outcome::Failed)
            }
            Error::Store(StoreError::BadReference { .. }) => Self::bad_request(e.to_string()),
            // The snapshot exists but this service's model cannot search it: retrying will not help.
            Error::EmbeddingVersionMismatch { .. } => {
                Self::new(StatusCode::CONFLICT, "embedding_version_mismatch", e.to_string(), Outcome::Failed)
            }
            Error::EmbeddingDrift { .. } => {
                Self::new(StatusCode::CONFLICT, "embedding_drift", e.to_string(), Outcome::Failed)
            }
            _ => {
                let mut a = Self::from_library(e);
                a.message = format!("snapshot {spec}: {}", a.message);
                a
            }
        }
    }

    fn timeout(ms: u128) -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "deadline_exceeded",
            format!("no answer within the request's deadline of {ms} ms"),
            Outcome::TimedOut,
        )
    }

    fn from_library(e: &Error) -> Self {
        match e {
            Error::Invalid(_) | Error::InvalidSetting { .. } => Self::bad_request(e.to_string()),
            Error::EmbeddingVersionMismatch { .. } => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "embedding_version_mismatch", e.to_string(), Outcome::Failed)
            }
            Error::EmbeddingDrift { .. } => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "embedding_drift", e.to_string(), Outcome::Failed)
            }
            Error::Store(_) => {
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "store_error", e.to_string(), Outcome::Failed)
            }
            _ => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string(), Outcome::Failed),
        }
    }

    fn body(&self, snapshot: Option<&str>) -> serde_json::Value {
        serde_json::json!({
            "error": { "kind": self.kind, "message": self.message },
            "snapshot_id": snapshot,
        })
    }

    fn into_response(self, snapshot: Option<&str>) -> Response {
        let body = Json(self.body(snapshot));
        let mut r = (self.status, body).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

/// One query of a request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryRequest {
    /// The question.
    query: String,
    k: Option<usize>,
    floor: Option<f32>,
    floor_percentile: Option<f32>,
    ef: Option<usize>,
    mode: Option<Mode>,
    lexical_floor: Option<f32>,
    rrf_k: Option<f32>,
    /// Lower the service's deadline for this request (milliseconds).
    timeout_ms: Option<u64>,
    /// The snapshot to answer from: an id, `HEAD` (the default) or `HEAD~N`.
    snapshot: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchRequest {
    queries: Vec<QueryRequest>,
    timeout_ms: Option<u64>,
    /// The snapshot every query of the batch is answered from.
    snapshot: Option<String>,
}

/// The answer to one query: the library's [`QueryResult`] as it serialises, plus what the
/// service adds. A refusal carries `"hits": []` and a `reason`.
#[derive(Serialize)]
struct QueryAnswer {
    #[serde(flatten)]
    result: QueryResult,
    #[serde(skip_serializing_if = "Option::is_none")]
    hits: Option<Vec<Hit>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// The query was longer than the model's input and was cut, as the library cuts it.
    truncated: bool,
    /// Model tokens in the query (special tokens included).
    query_tokens: usize,
}

impl App {
    pub(crate) fn new(opts: ServeOptions, embedder: Arc<EmbedderPool>) -> Self {
        App {
            root: opts.store.clone(),
            embedder,
            serving: RwLock::new(Serving::default()),
            metrics: Metrics::default(),
            admission: Arc::new(Semaphore::new(opts.concurrency + opts.queue)),
            slots: Arc::new(Semaphore::new(opts.concurrency)),
            in_flight: AtomicUsize::new(0),
            others: Mutex::new(Vec::new()),
            opts,
        }
    }

    fn live(&self) -> (Option<Arc<Live>>, Option<Problem>) {
        let s = self.serving.read().unwrap_or_else(|p| p.into_inner());
        (s.live.clone(), s.problem.clone())
    }

    fn serving_id(&self) -> String {
        self.live().0.map(|l| l.id.clone()).unwrap_or_else(|| "none".into())
    }

    fn ready(&self) -> bool {
        let (live, problem) = self.live();
        live.is_some_and(|l| !l.is_damaged()) && !problem.is_some_and(|p| p.blocks_queries())
    }

    fn queued(&self) -> usize {
        let admitted = self.opts.concurrency + self.opts.queue - self.admission.available_permits();
        admitted.saturating_sub(self.opts.concurrency - self.slots.available_permits())
    }

    /// Open `id` and check the embedder against it (fingerprint and canaries).
    fn open(&self, store: &Store, id: &str) -> ragsnap::Result<Arc<Live>> {
        let dir = store.snapshot_dir(id);
        // Stamps first: a change during the open is then seen at the next look.
        let mut stamps: Vec<(PathBuf, Option<FileStamp>)> = Vec::new();
        let manifest_path = dir.join(ragsnap::store::MANIFEST_FILE);
        stamps.push((manifest_path.clone(), FileStamp::of(&manifest_path)));
        let snapshot = Arc::new(Snapshot::open(store, id)?);
        for f in &snapshot.manifest().files {
            let path = dir.join(&f.name);
            let stamp = FileStamp::of(&path);
            stamps.push((path, stamp));
        }
        let calibration = snapshot.manifest().calibration.top1_quantiles.clone();
        let fingerprint_id = snapshot.manifest().fingerprint.id();
        let searcher = Arc::new(Searcher::new(snapshot, self.embedder.clone())?);
        self.metrics.calibration(id, &calibration);
        let opened_unix = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Ok(Arc::new(Live {
            searcher,
            id: id.to_string(),
            fingerprint_id,
            opened_unix,
            stamps: Mutex::new(stamps),
            damaged: AtomicBool::new(false),
        }))
    }

    /// Mark `live` damaged: it answers nothing more (head until head moves; another snapshot
    /// leaves the cache).
    fn mark_damaged(&self, live: &Live, what: &str) {
        if !live.damaged.swap(true, Ordering::SeqCst) {
            self.metrics.refresh_failed();
            tracing::error!(snapshot = %live.id, what, "snapshot changed on disk since it was verified; not answering from it");
        }
        self.others.lock().unwrap_or_else(|p| p.into_inner()).retain(|o| o.id != live.id);
    }

    /// The snapshot a request named (blocking: may open and verify it). `head` is the snapshot
    /// serving when the request arrived (if any), used when the name resolves to it.
    fn named(&self, spec: &str, head: Option<&Arc<Live>>) -> Result<Arc<Live>, ApiError> {
        // An id already open needs no catalog lookup (snapshots are immutable once built).
        if let Some(h) = head.filter(|h| h.id == spec) {
            return Ok(h.clone());
        }
        if let Some(hit) = self.cached(spec) {
            return Ok(hit);
        }
        let store = Store::open_reader(&self.root).map_err(|e| ApiError::from_library(&e.into()))?;
        let id = store.resolve(spec).map_err(|e| ApiError::from_named(spec, &e.into()))?;
        if let Some(h) = head.filter(|h| h.id == id) {
            return Ok(h.clone());
        }
        if let Some(hit) = self.cached(&id) {
            return Ok(hit);
        }
        let live = self.open(&store, &id).map_err(|e| ApiError::from_named(spec, &e))?;
        tracing::info!(snapshot = %id, "opened a snapshot a request named");
        if self.opts.snapshot_cache > 0 {
            let mut others = self.others.lock().unwrap_or_else(|p| p.into_inner());
            others.retain(|o| o.id != id);
            others.insert(0, live.clone());
            others.truncate(self.opts.snapshot_cache);
        }
        Ok(live)
    }

    /// Snapshot `id` from the cache, moved to its front.
    fn cached(&self, id: &str) -> Option<Arc<Live>> {
        let mut others = self.others.lock().unwrap_or_else(|p| p.into_inner());
        let i = others.iter().position(|o| o.id == id)?;
        let hit = others.remove(i);
        others.insert(0, hit.clone());
        Some(hit)
    }

    /// The snapshot to answer from, on the blocking pool.
    fn pick(&self, wanted: &Wanted, head: Option<Arc<Live>>) -> Result<Arc<Live>, ApiError> {
        let live = match wanted {
            Wanted::Head => head.ok_or_else(|| {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", "no snapshot is open yet", Outcome::Failed)
            })?,
            Wanted::Named(spec) => self.named(spec, head.as_ref())?,
        };
        if live.is_damaged() {
            return Err(ApiError::damaged(&live.id, "found earlier"));
        }
        Ok(live)
    }

    /// Follow the store's head once: open a new head and swap it in, or record why not.
    /// Returns an error only when the store itself cannot be read.
    pub(crate) fn refresh(&self) -> ragsnap::Result<()> {
        let store = Store::open_reader(&self.root)?;
        let head = store.head()?.id;
        let (live, problem) = self.live();
        self.serving.write().unwrap_or_else(|p| p.into_inner()).store_head = Some(head.clone());
        if problem.as_ref().is_some_and(|p| p.head == head) {
            return Ok(()); // already tried and refused; wait for head to move again
        }
        if let Some(l) = live.as_ref().filter(|l| l.id == head) {
            if problem.is_some() {
                tracing::warn!(snapshot = %head, "head is back on the snapshot being served; problem cleared");
                self.serving.write().unwrap_or_else(|p| p.into_inner()).problem = None;
            }
            self.check_files(&store, l);
            return Ok(());
        }
        match self.open(&store, &head) {
            Ok(next) => {
                self.metrics.snapshot_switched();
                match &live {
                    Some(l) => tracing::info!(from = %l.id, to = %head, "switched to the new head"),
                    None => tracing::info!(snapshot = %head, "opened head"),
                }
                let mut s = self.serving.write().unwrap_or_else(|p| p.into_inner());
                s.live = Some(next);
                s.problem = None;
            }
            Err(e) => {
                let kind = match e {
                    Error::EmbeddingVersionMismatch { .. } => "embedding_version_mismatch",
                    Error::EmbeddingDrift { .. } => "embedding_drift",
                    _ => "head_unreadable",
                };
                self.metrics.refresh_failed();
                tracing::error!(head = %head, kind, error = %e, "cannot serve the store's head");
                self.serving.write().unwrap_or_else(|p| p.into_inner()).problem =
                    Some(Problem { kind, head, message: e.to_string() });
            }
        }
        Ok(())
    }

    /// When a file of the serving snapshot changed since the last look, verify the snapshot
    /// again (every checksum); a failure marks it damaged.
    fn check_files(&self, store: &Store, live: &Live) {
        if live.is_damaged() {
            return;
        }
        let changed = live.changed_files();
        if changed.is_empty() {
            return;
        }
        let names: Vec<String> = changed.iter().map(|p| p.display().to_string()).collect();
        tracing::warn!(snapshot = %live.id, files = ?names, "files of the serving snapshot changed; verifying it again");
        match ragsnap::verify_snapshot(store, &live.id) {
            Ok(r) if r.ok => tracing::info!(snapshot = %live.id, "the snapshot still verifies"),
            Ok(r) => {
                let first = r.problems.first().map(|p| format!("{p:?}")).unwrap_or_default();
                self.mark_damaged(live, &format!("{} problems, first: {first}", r.problems.len()));
            }
            Err(e) => self.mark_damaged(live, &e.to_string()),
        }
    }

    fn authorize(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(token) = &self.opts.token else { return Ok(()) };
        // The scheme is case-insensitive (RFC 9110 §11.1); the token is compared as given.
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map_or("", |(_, t)| t.trim());
        if constant_time_eq(given.as_bytes(), token.as_bytes()) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a valid bearer token is required",
                Outcome::Failed,
            ))
        }
    }

    fn options(&self, r: &QueryRequest) -> Result<QueryOptions, ApiError> {
        let d = &self.opts.query;
        let opts = QueryOptions {
            mode: r.mode.unwrap_or_default(),
            lexical_floor: r.lexical_floor,
            rrf_k: r.rrf_k.unwrap_or(QueryOptions::default().rrf_k),
            k: r.k.unwrap_or(d.k),
            max_k: d.max_k,
            floor: r.floor.or(d.floor),
            floor_percentile: r.floor_percentile,
            ef: r.ef,
            max_per_source: d.max_per_source,
        };
        opts.validate().map_err(|e| ApiError::bad_request(e.to_string()))?;
        if r.query.trim().is_empty() {
            return Err(ApiError::bad_request("empty query"));
        }
        if r.query.len() > self.opts.max_query_bytes {
            return Err(ApiError::bad_request(format!(
                "query is {} bytes; the limit is {} (set with --max-query-bytes)",
                r.query.len(),
                self.opts.max_query_bytes
            )));
        }
        Ok(opts)
    }

    fn deadline(&self, start: Instant, asked_ms: Option<u64>) -> Result<(Instant, u128), ApiError> {
        let default = self.opts.timeout;
        let t = match asked_ms {
            Some(0) => return Err(ApiError::bad_request("timeout_ms must be at least 1")),
            Some(ms) => Duration::from_millis(ms).min(default),
            None => default,
        };
        Ok((start + t, t.as_millis()))
    }

    /// Answer one query on `live` (blocking: embedding and search).
    fn answer(&self, live: &Live, r: &QueryRequest, opts: &QueryOptions) -> Result<QueryAnswer, ApiError> {
        let result = live.searcher.query(&r.query, opts).map_err(|e| ApiError::from_library(&e))?;
        // Chunk texts are read from disk per query: each must still be the text that was hashed.
        if let Answer::Hits { hits } = &result.answer {
            if let Some(h) = hits.iter().find(|h| ragsnap::core::ContentId::of_text(&h.text) != h.content_id) {
                let what = format!("a chunk of {} no longer matches its content id {}", h.source_path, h.content_id);
                self.mark_damaged(live, &what);
                return Err(ApiError::damaged(&live.id, &what));
            }
        }
        let query_tokens = self.embedder.count_tokens(&r.query);
        let truncated = result.mode != Mode::Lexical && query_tokens > self.embedder.max_tokens();
        let (hits, reason) = match &result.answer {
            Answer::Hits { .. } => (None, None),
            Answer::NoConfidentMatch { best_score } => (
                Some(Vec::new()),
                Some(match (&result.refusal, best_score) {
                    (Some(r), _) => format!("no confident match: {}", refusal_reason(&result, r)),
                    (None, Some(s)) => format!(
                        "no confident match: nothing cleared the floor (best cosine {s:.3}, floor {:.3})",
                        result.floor
                    ),
                    (None, None) => "no confident match: the snapshot returned no candidate".to_string(),
                }),
            ),
        };
        Ok(QueryAnswer { result, hits, reason, truncated, query_tokens })
    }

    fn observe(&self, live: &Live, a: &QueryAnswer, seconds: f64) {
        let outcome = match a.result.answer {
            Answer::Hits { .. } => Outcome::Answered,
            Answer::NoConfidentMatch { .. } => Outcome::Refused,
        };
        self.metrics.record(&live.id, outcome);
        let mode = serde_json::to_value(a.result.mode).ok().and_then(|v| v.as_str().map(str::to_string));
        self.metrics.latency(mode.as_deref().unwrap_or("unknown"), seconds);
        let top1 = match &a.result.answer {
            Answer::Hits { hits } => hits.iter().filter_map(|h| h.signals.dense_score).reduce(f32::max),
            Answer::NoConfidentMatch { best_score } => *best_score,
        };
        if let (Some(s), true) = (top1, a.result.mode != Mode::Lexical) {
            self.metrics.top1(&live.id, s);
        }
    }

    fn access_log(&self, path: &str, status: StatusCode, start: Instant, snapshot: &str, query: Option<&str>) {
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        if self.opts.log_queries {
            tracing::info!(target: "ragsnap_serve::access", path, status = status.as_u16(), ms, snapshot, query = query.unwrap_or(""));
        } else {
            tracing::info!(target: "ragsnap_serve::access", path, status = status.as_u16(), ms, snapshot);
        }
    }
}

/// Which signal fell short of which floor, in words (the `refusal` object says the same in fields).
fn refusal_reason(result: &QueryResult, r: &ragsnap::Refusal) -> String {
    let num = |v: Option<f32>, digits: usize| v.map_or("none".to_string(), |x| format!("{x:.digits$}"));
    let parts: Vec<String> = r
        .shortfall
        .iter()
        .map(|s| match *s {
            "dense" => format!("no cosine reached the floor {:.3} (best {})", result.floor, num(r.best_cosine, 3)),
            "lexical" => format!(
                "no lexical coverage reached the floor {} (best {})",
                num(result.lexical_floor, 2),
                num(r.best_coverage, 2)
            ),
            "identifier" => format!(
                "no candidate holds {}, so the cosine had to reach {}",
                r.missing_identifiers.join(", "),
                num(result.identifier_floor, 3)
            ),
            other => other.to_string(),
        })
        .collect();
    format!("{}; best confidence {:.2} (an answer needs 0.50)", parts.join("; "), r.best_confidence)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // Compare digests so the time depends on neither the length nor the content of the secret.
    let (x, y) = (blake3::hash(a), blake3::hash(b));
    x.as_bytes().iter().zip(y.as_bytes()).fold(0u8, |acc, (p, q)| acc | (p ^ q)) == 0
}

/// The router over `app`.
pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v1/query", post(query))
        .route("/v1/query/batch", post(batch))
        .route("/v1/head", get(head))
        .route("/v1/snapshots", get(snapshots))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(app)
}

async fn not_found() -> Response {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint", Outcome::Failed).into_response(None)
}

async fn method_not_allowed() -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method (queries are POST, the rest GET)",
        Outcome::Failed,
    )
    .into_response(None)
}

/// Admission, body, parse: the part every query endpoint shares. On success returns the body
/// bytes and the admission permit.
async fn admit(
    app: &Arc<App>,
    headers: &HeaderMap,
    body: Body,
) -> Result<(bytes_alias::Bytes, tokio::sync::OwnedSemaphorePermit), ApiError> {
    app.authorize(headers)?;
    let Ok(permit) = app.admission.clone().try_acquire_owned() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            format!("every slot ({}) and queue place ({}) is taken; retry later", app.opts.concurrency, app.opts.queue),
            Outcome::Shed,
        ));
    };
    // A body trickled in slowly must not hold its place for long.
    let read_for = app.opts.read_timeout.min(app.opts.timeout);
    let read = tokio::time::timeout(read_for, axum::body::to_bytes(body, app.opts.max_body_bytes));
    let bytes = read
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!("the request body did not arrive within {} ms", read_for.as_millis()),
                Outcome::Failed,
            )
        })?
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the request body is over {} bytes (or could not be read)", app.opts.max_body_bytes),
                Outcome::Failed,
            )
        })?;
    Ok((bytes, permit))
}

mod bytes_alias {
    pub(crate) type Bytes = axum::body::Bytes;
}

/// Wait for a running slot until `deadline`, run `work` on the blocking pool, and give up at
/// `deadline` (the slot is freed then; the work, when already started, finishes unseen).
async fn run_blocking<T: Send + 'static>(
    app: &Arc<App>,
    deadline: Instant,
    ms: u128,
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let deadline = tokio::time::Instant::from_std(deadline);
    let slot = tokio::time::timeout_at(deadline, app.slots.clone().acquire_owned())
        .await
        .map_err(|_| ApiError::timeout(ms))?
        .map_err(|_| {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", "the service is stopping", Outcome::Failed)
        })?;
    app.in_flight.fetch_add(1, Ordering::SeqCst);
    let task = tokio::task::spawn_blocking(work);
    let r = tokio::time::timeout_at(deadline, task).await;
    app.in_flight.fetch_sub(1, Ordering::SeqCst);
    drop(slot);
    match r {
        Err(_) => Err(ApiError::timeout(ms)),
        Ok(Err(join)) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("query task failed: {join}"),
            Outcome::Failed,
        )),
        Ok(Ok(r)) => r,
    }
}

/// The snapshot serving head, or why head cannot answer. A request naming another snapshot
/// does not need head to be servable: it gets `None` when head is not.
fn current(app: &App, wanted: &Wanted) -> Result<Option<Arc<Live>>, ApiError> {
    let (live, problem) = app.live();
    if let Wanted::Named(_) = wanted {
        return Ok(live.filter(|l| !l.is_damaged()));
    }
    if let Some(l) = live.as_ref().filter(|l| l.is_damaged()) {
        return Err(ApiError::damaged(&l.id, "found earlier"));
    }
    if let Some(p) = problem.as_ref().filter(|p| p.blocks_queries()) {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            p.kind,
            format!("head {} cannot be served with this service's model: {}", p.head, p.message),
            Outcome::Failed,
        ));
    }
    live.map(Some).ok_or_else(|| {
        let why = match &problem {
            Some(p) => format!("no snapshot is open: head {} cannot be opened: {}", p.head, p.message),
            None => "no snapshot is open yet".to_string(),
        };
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", why, Outcome::Failed)
    })
}

async fn query(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    let start = Instant::now();
    let snapshot_at_arrival = app.serving_id();
    let mut text_for_log: Option<String> = None;
    let r: Result<(QueryAnswer, String), ApiError> = async {
        let (bytes, _permit) = admit(&app, &headers, body).await?;
        let req: QueryRequest =
            serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request(format!("request body: {e}")))?;
        if app.opts.log_queries {
            text_for_log = Some(req.query.clone());
        }
        let (deadline, ms) = app.deadline(start, req.timeout_ms)?;
        let opts = app.options(&req)?;
        let wanted = Wanted::of(req.snapshot.as_deref());
        let head = current(&app, &wanted)?;
        let worker = app.clone();
        let (a, live) = run_blocking(&app, deadline, ms, move || {
            let live = worker.pick(&wanted, head)?;
            if Instant::now() >= deadline {
                return Err(ApiError::timeout(ms));
            }
            Ok((worker.answer(&live, &req, &opts)?, live))
        })
        .await?;
        // Counted once the answer is sure to go out (not when the deadline beat it).
        app.observe(&live, &a, start.elapsed().as_secs_f64());
        Ok((a, live.id.clone()))
    }
    .await;
    match r {
        Ok((a, id)) => {
            app.access_log("/v1/query", StatusCode::OK, start, &id, text_for_log.as_deref());
            Json(a).into_response()
        }
        Err(e) => {
            app.metrics.record(&snapshot_at_arrival, e.outcome);
            app.access_log("/v1/query", e.status, start, &snapshot_at_arrival, text_for_log.as_deref());
            e.into_response(Some(&snapshot_at_arrival))
        }
    }
}

async fn batch(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    let start = Instant::now();
    let snapshot_at_arrival = app.serving_id();
    let r: Result<serde_json::Value, ApiError> = async {
        let (bytes, _permit) = admit(&app, &headers, body).await?;
        let req: BatchRequest =
            serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request(format!("request body: {e}")))?;
        if req.queries.is_empty() || req.queries.len() > app.opts.max_batch {
            return Err(ApiError::bad_request(format!(
                "a batch holds 1 to {} queries; this one has {}",
                app.opts.max_batch,
                req.queries.len()
            )));
        }
        let (deadline, ms) = app.deadline(start, req.timeout_ms)?;
        let mut prepared = Vec::with_capacity(req.queries.len());
        for q in req.queries {
            let o = if q.snapshot.is_some() {
                Err(ApiError::bad_request("a batch is answered from one snapshot: name it once, beside \"queries\""))
            } else {
                app.options(&q)
            };
            prepared.push((q, o));
        }
        let wanted = Wanted::of(req.snapshot.as_deref());
        let head = current(&app, &wanted)?;
        let worker = app.clone();
        let (answers, observed) = run_blocking(&app, deadline, ms, move || {
            let live = worker.pick(&wanted, head)?;
            let mut answers = Vec::with_capacity(prepared.len());
            for (q, o) in prepared {
                if Instant::now() >= deadline {
                    return Err(ApiError::timeout(ms));
                }
                let a = o.and_then(|o| worker.answer(&live, &q, &o));
                if a.as_ref().is_err_and(|e| e.kind == "snapshot_damaged") {
                    return Err(a.err().unwrap_or_else(|| ApiError::damaged(&live.id, "")));
                }
                answers.push(a);
            }
            Ok((answers, live))
        })
        .await?;
        let seconds = start.elapsed().as_secs_f64();
        let results: Vec<serde_json::Value> = answers
            .into_iter()
            .map(|r| match r {
                Ok(a) => {
                    app.observe(&observed, &a, seconds);
                    serde_json::to_value(&a).unwrap_or_default()
                }
                Err(e) => {
                    app.metrics.record(&observed.id, e.outcome);
                    e.body(Some(&observed.id))
                }
            })
            .collect();
        Ok(serde_json::json!({ "snapshot_id": observed.id, "results": results }))
    }
    .await;
    match r {
        Ok(v) => {
            let id = v["snapshot_id"].as_str().unwrap_or("").to_string();
            app.access_log("/v1/query/batch", StatusCode::OK, start, &id, None);
            Json(v).into_response()
        }
        Err(e) => {
            app.metrics.record(&snapshot_at_arrival, e.outcome);
            app.access_log("/v1/query/batch", e.status, start, &snapshot_at_arrival, None);
            e.into_response(Some(&snapshot_at_arrival))
        }
    }
}

async fn head(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(e) = app.authorize(&headers) {
        return e.into_response(None);
    }
    let (live, problem, store_head) = {
        let s = app.serving.read().unwrap_or_else(|p| p.into_inner());
        (s.live.clone(), s.problem.clone(), s.store_head.clone())
    };
    Json(serde_json::json!({
        "snapshot_id": live.as_ref().map(|l| l.id.clone()),
        "fingerprint_id": live.as_ref().map(|l| l.fingerprint_id.clone()),
        "opened_unix": live.as_ref().map(|l| l.opened_unix),
        "store_head": store_head,
        "embedder_fingerprint_id": app.embedder.fingerprint().id(),
        "snapshot_damaged": live.as_ref().is_some_and(|l| l.is_damaged()),
        "other_snapshots_open": app.others.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|o| o.id.clone()).collect::<Vec<_>>(),
        "ready": app.ready(),
        "problem": problem,
    }))
    .into_response()
}

async fn snapshots(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(e) = app.authorize(&headers) {
        return e.into_response(None);
    }
    // Reading the catalog is blocking work too: it takes a place like a query, or is shed.
    let Ok(_permit) = app.admission.clone().try_acquire_owned() else {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "every place is taken; retry later",
            Outcome::Shed,
        )
        .into_response(None);
    };
    let root = app.root.clone();
    let listed = tokio::task::spawn_blocking(move || -> ragsnap::Result<_> {
        let store = Store::open_reader(&root)?;
        Ok(store.catalog().list()?)
    })
    .await;
    match listed {
        Ok(Ok(list)) => Json(serde_json::json!({ "snapshots": list })).into_response(),
        Ok(Err(e)) => ApiError::from_library(&e).into_response(None),
        Err(e) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string(), Outcome::Failed)
            .into_response(None),
    }
}

async fn healthz() -> Response {
    Json(serde_json::json!({ "alive": true })).into_response()
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    let (live, problem) = app.live();
    let ready = app.ready();
    let body = Json(serde_json::json!({
        "ready": ready,
        "snapshot_id": live.as_ref().map(|l| l.id.clone()),
        "canaries_checked": live.is_some(),
        "snapshot_damaged": live.as_ref().is_some_and(|l| l.is_damaged()),
        "problem": problem,
    }));
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, body).into_response()
}

async fn metrics(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(e) = app.authorize(&headers) {
        return e.into_response(None);
    }
    let live = app.live().0;
    let in_flight = app.in_flight.load(Ordering::SeqCst);
    let text = app.metrics.render(live.as_ref().map(|l| l.id.as_str()), app.ready(), in_flight, app.queued());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

/// Poll the store's head every `every` and switch when it moves.
pub(crate) async fn follow_head(app: Arc<App>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_error: Option<String> = None;
    loop {
        tick.tick().await;
        let a = app.clone();
        let r = tokio::task::spawn_blocking(move || a.refresh()).await;
        let msg = match r {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(e.to_string()),
        };
        if msg != last_error {
            if let Some(m) = &msg {
                tracing::warn!(error = %m, "cannot read the store's head; serving the snapshot already open");
            }
            last_error = msg;
        }
    }
}

/// Start: open head, bind, serve until SIGINT/SIGTERM.
pub(crate) async fn serve(opts: ServeOptions, embedder: Arc<EmbedderPool>) -> Result<(), ServeError> {
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|e| ServeError::Bind { addr: opts.listen.to_string(), source: e })?;
    let local = listener.local_addr().map_err(|e| ServeError::Bind { addr: opts.listen.to_string(), source: e })?;
    let refresh_every = opts.refresh;
    let follow = opts.follow.clone().map(|u| (u, opts.allow_model_change));
    let app = Arc::new(App::new(opts, embedder));
    {
        let a = app.clone();
        tokio::task::spawn_blocking(move || a.refresh()).await.map_err(|e| ServeError::Internal(e.to_string()))??;
    }
    if let Some(p) = app.live().1 {
        tracing::error!(kind = p.kind, head = %p.head, "{}", p.message);
    }
    tokio::spawn(follow_head(app.clone(), refresh_every));
    if let Some((url, allow)) = follow {
        tokio::spawn(crate::remote::follow_remote(
            url,
            app.root.clone(),
            refresh_every.max(Duration::from_millis(500)),
            allow,
        ));
    }
    // The line tests and scripts read to learn the port (`--listen 127.0.0.1:0`).
    println!("ragsnap serve: listening on http://{local} (snapshot {})", app.serving_id());
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    serve_connections(listener, router(app.clone()), app.opts.read_timeout, app.opts.max_connections).await;
    Ok(())
}

/// Accept connections until SIGINT/SIGTERM and serve each with hyper's HTTP/1, which closes a
/// connection whose request headers take longer than `read_timeout` (idle kept-alive
/// connections included). Past `max_connections` open at once, a new connection is closed at
/// once. On the signal: stop accepting, let each connection finish the request it is on (for at
/// most a minute), then return.
async fn serve_connections(
    listener: tokio::net::TcpListener,
    router: Router,
    read_timeout: Duration,
    max_connections: usize,
) {
    let open = Arc::new(Semaphore::new(max_connections));
    let mut refused_logged = false;
    use hyper_util::rt::{TokioIo, TokioTimer};
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(read_timeout).keep_alive(true);
    // Closed when the service stops; each connection task holds a receiver until it ends.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(());
    let mut stopping = std::pin::pin!(shutdown_signal());
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stopping => break,
        };
        let Ok(place) = open.clone().try_acquire_owned() else {
            if !refused_logged {
                tracing::warn!(max_connections, "every connection place is taken; closing new connections");
                refused_logged = true;
            }
            drop(stream);
            continue;
        };
        refused_logged = false;
        let _ = stream.set_nodelay(true);
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        let conn = http.serve_connection(TokioIo::new(stream), service);
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let _place = place;
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "connection ended");
                    }
                    return;
                }
                _ = stop.changed() => {}
            }
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        });
    }
    drop(listener);
    drop(stop_rx);
    let _ = stop_tx.send(());
    // Every receiver dropped = every connection finished.
    let _ = tokio::time::timeout(Duration::from_secs(60), stop_tx.closed()).await;
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("stopping: no new connections; requests in flight finish");
}
