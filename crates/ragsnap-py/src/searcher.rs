//! `ragsnap.Searcher`: one snapshot searched with a model checked against it; `refresh()` and
//! an optional background follower switch to a new head atomically. Queries release the GIL.

use crate::convert;
use crate::errors::{self, to_py};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyInt};
use ragsnap::config::Config;
use ragsnap::{Answer, Hit, Mode, QueryOptions, QueryResult, Searcher, Snapshot, Store};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, RwLock, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the Python object and its follower thread share.
struct Inner {
    root: PathBuf,
    lexical_only: bool,
    current: RwLock<Arc<Searcher>>,
    /// The follower's last refresh error (cleared by a refresh that succeeds).
    last_error: Mutex<Option<String>>,
    /// One refresh at a time (the caller's and the follower's), so an older head read by one
    /// can never replace a newer one installed by the other.
    refreshing: Mutex<()>,
}

impl Inner {
    fn current(&self) -> Arc<Searcher> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Switch to the store's head when it moved: the new snapshot is opened and checked
    /// (checksums, fingerprint, canaries) with the same model before the switch; on any error
    /// the searcher keeps the snapshot it had.
    fn refresh(&self) -> ragsnap::Result<bool> {
        let _one = self.refreshing.lock().unwrap_or_else(|p| p.into_inner());
        let store = Store::open_reader(&self.root)?;
        let head = store.head()?.id;
        let cur = self.current();
        if head == cur.snapshot().id() {
            return Ok(false);
        }
        let snapshot = Arc::new(Snapshot::open(&store, &head)?);
        let next = if self.lexical_only {
            Searcher::lexical_only(snapshot)?
        } else {
            Searcher::new(snapshot, cur.embedder().clone())?
        };
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
        Ok(true)
    }
}

/// A thread calling `refresh` every interval; stopped and joined when dropped.
struct Follower {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Follower {
    fn start(inner: Weak<Inner>, every: Duration) -> std::io::Result<Self> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let signal = stop.clone();
        let thread = std::thread::Builder::new().name("ragsnap-follow".into()).spawn(move || loop {
            let (lock, cv) = &*signal;
            let stopped = lock.lock().unwrap_or_else(|p| p.into_inner());
            let (stopped, _) = cv.wait_timeout(stopped, every).unwrap_or_else(|p| p.into_inner());
            if *stopped {
                return;
            }
            drop(stopped);
            // The searcher is gone: nothing left to follow.
            let Some(inner) = inner.upgrade() else { return };
            let outcome = inner.refresh();
            *inner.last_error.lock().unwrap_or_else(|p| p.into_inner()) = outcome.err().map(|e| e.to_string());
        })?;
        Ok(Follower { stop, thread: Some(thread) })
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let (lock, cv) = &*self.stop;
        *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cv.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Searches one snapshot of a store with a model checked against it (fingerprint and
/// canaries). Safe to share between threads; queries run without the GIL.
#[pyclass(name = "Searcher", module = "ragsnap", frozen)]
pub struct PySearcher {
    inner: Arc<Inner>,
    defaults: QueryOptions,
    follower: Mutex<Option<Follower>>,
}

/// A whole-number option: a wrong type is a `TypeError` and a value out of range an
/// `InvalidRequest`, each naming the option (Python's own messages name neither).
fn usize_arg(name: &str, v: &Bound<'_, PyAny>) -> PyResult<usize> {
    if v.is_instance_of::<PyBool>() || !v.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!("{name} must be an int, not {}", type_name(v))));
    }
    match v.extract::<i64>().ok().and_then(|i| usize::try_from(i).ok()) {
        Some(u) => Ok(u),
        None => Err(errors::invalid(format!("invalid setting {name}: {v} is out of range"))),
    }
}

/// A real-number option (int or float), finite.
fn f32_arg(name: &str, v: &Bound<'_, PyAny>) -> PyResult<f32> {
    if v.is_instance_of::<PyBool>() || !(v.is_instance_of::<PyFloat>() || v.is_instance_of::<PyInt>()) {
        return Err(PyTypeError::new_err(format!("{name} must be a number, not {}", type_name(v))));
    }
    match v.extract::<f64>() {
        Ok(f) if f.is_finite() => Ok(f as f32),
        _ => Err(errors::invalid(format!("invalid setting {name}: {v} is not a finite number"))),
    }
}

fn type_name(v: &Bound<'_, PyAny>) -> String {
    v.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into())
}

#[pymethods]
impl PySearcher {
    /// Same as `Searcher.open`.
    #[new]
    #[pyo3(signature = (store, snapshot="HEAD", *, model_dir=None, ort_lib=None, config=None, lexical_only=false))]
    fn new(
        py: Python<'_>,
        store: PathBuf,
        snapshot: &str,
        model_dir: Option<PathBuf>,
        ort_lib: Option<PathBuf>,
        config: Option<PathBuf>,
        lexical_only: bool,
    ) -> PyResult<Self> {
        let mut cfg = Config::resolve(config.as_deref()).map_err(to_py)?;
        if model_dir.is_some() {
            cfg.runtime.model_dir = model_dir;
        }
        if ort_lib.is_some() {
            cfg.runtime.ort_lib = ort_lib;
        }
        let mode = if lexical_only { Mode::Lexical } else { Mode::Hybrid };
        let searcher =
            py.detach(|| ragsnap::open_searcher(&store, Some(snapshot), &cfg.runtime, mode)).map_err(to_py)?;
        Ok(PySearcher {
            inner: Arc::new(Inner {
                root: store,
                lexical_only,
                current: RwLock::new(Arc::new(searcher)),
                last_error: Mutex::new(None),
                refreshing: Mutex::new(()),
            }),
            defaults: cfg.query.options(),
            follower: Mutex::new(None),
        })
    }

    /// Open snapshot `snapshot` (default head) of the store at `store` read-only and load the
    /// model, found as the `ragsnap` binary finds it: `model_dir` / `ort_lib` when given, else
    /// `RAGSNAP_MODEL_DIR` / `RAGSNAP_ORT_LIB`, else `[runtime]` of the config file (`config`,
    /// else `./ragsnap.toml`), else the `make setup` cache (`RAGSNAP_CACHE`). The model is
    /// checked against the snapshot: another model raises `EmbeddingVersionMismatch`, drifted
    /// vectors `EmbeddingDrift`. `lexical_only=True` loads no model (lexical queries only).
    #[staticmethod]
    #[pyo3(signature = (store, snapshot="HEAD", *, model_dir=None, ort_lib=None, config=None, lexical_only=false))]
    fn open(
        py: Python<'_>,
        store: PathBuf,
        snapshot: &str,
        model_dir: Option<PathBuf>,
        ort_lib: Option<PathBuf>,
        config: Option<PathBuf>,
        lexical_only: bool,
    ) -> PyResult<Self> {
        Self::new(py, store, snapshot, model_dir, ort_lib, config, lexical_only)
    }

    /// Answer `text`. A refusal (nothing cleared the floors) is a normal result with
    /// `refused == True`, not an exception. Unset options come from `[query]` of the config
    /// file, then the library defaults (k 5, hybrid, the snapshot's calibrated floors).
    #[pyo3(signature = (text, k=None, mode=None, floor=None, *, floor_percentile=None, lexical_floor=None, rrf_k=None, ef=None, max_per_source=None, max_k=None))]
    #[allow(clippy::too_many_arguments)]
    fn query(
        &self,
        py: Python<'_>,
        text: &str,
        k: Option<Bound<'_, PyAny>>,
        mode: Option<&str>,
        floor: Option<Bound<'_, PyAny>>,
        floor_percentile: Option<Bound<'_, PyAny>>,
        lexical_floor: Option<Bound<'_, PyAny>>,
        rrf_k: Option<Bound<'_, PyAny>>,
        ef: Option<Bound<'_, PyAny>>,
        max_per_source: Option<Bound<'_, PyAny>>,
        max_k: Option<Bound<'_, PyAny>>,
    ) -> PyResult<PyQueryResult> {
        let mut opts = self.defaults.clone();
        if let Some(m) = mode {
            opts.mode = m.parse::<Mode>().map_err(|e| errors::invalid(format!("invalid setting mode: {e}")))?;
        }
        if let Some(v) = &max_k {
            opts.max_k = usize_arg("max_k", v)?;
        }
        if let Some(v) = &k {
            opts.k = usize_arg("k", v)?;
        }
        if let Some(v) = &floor {
            opts.floor = Some(f32_arg("floor", v)?);
        }
        if let Some(v) = &floor_percentile {
            opts.floor_percentile = Some(f32_arg("floor_percentile", v)?);
        }
        if let Some(v) = &lexical_floor {
            opts.lexical_floor = Some(f32_arg("lexical_floor", v)?);
        }
        if let Some(v) = &rrf_k {
            opts.rrf_k = f32_arg("rrf_k", v)?;
        }
        if let Some(v) = &ef {
            opts.ef = Some(usize_arg("ef", v)?);
        }
        if let Some(v) = &max_per_source {
            opts.max_per_source = usize_arg("max_per_source", v)?;
        }
        opts.validate().map_err(to_py)?;
        let searcher = self.inner.current();
        let result = py.detach(|| searcher.query(text, &opts)).map_err(to_py)?;
        PyQueryResult::new(py, result)
    }

    /// Switch to the store's current head if it moved (a rebuild promoted a snapshot, or a
    /// rollback). The new snapshot is verified and checked against the model first; on any
    /// error the searcher keeps serving the snapshot it had and the error is raised. Queries
    /// already running finish on the snapshot they started with. Returns whether it switched.
    fn refresh(&self, py: Python<'_>) -> PyResult<bool> {
        let inner = self.inner.clone();
        py.detach(move || inner.refresh()).map_err(to_py)
    }

    /// Start a background thread that calls `refresh()` every `interval` seconds (replacing a
    /// follower already running). Its errors do not stop it; the last one is
    /// `last_refresh_error`.
    #[pyo3(signature = (interval=1.0))]
    fn follow(&self, py: Python<'_>, interval: f64) -> PyResult<()> {
        if !interval.is_finite() || !(0.01..=86_400.0).contains(&interval) {
            return Err(errors::invalid(format!(
                "invalid setting interval: {interval} is out of range (0.01 to 86400 seconds)"
            )));
        }
        let follower = Follower::start(Arc::downgrade(&self.inner), Duration::from_secs_f64(interval))
            .map_err(|e| errors::raise(errors::Kind::Error, format!("starting the follower thread: {e}")))?;
        let old = self.follower.lock().unwrap_or_else(|p| p.into_inner()).replace(follower);
        py.detach(move || drop(old));
        Ok(())
    }

    /// Stop the background follower, if one runs (waits for a refresh in progress to finish).
    fn stop_following(&self, py: Python<'_>) {
        let old = self.follower.lock().unwrap_or_else(|p| p.into_inner()).take();
        py.detach(move || drop(old));
    }

    /// Whether a background follower runs.
    #[getter]
    fn following(&self) -> bool {
        self.follower.lock().unwrap_or_else(|p| p.into_inner()).is_some()
    }

    /// The background follower's last refresh error, or None after a refresh that worked.
    #[getter]
    fn last_refresh_error(&self) -> Option<String> {
        self.inner.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Id of the snapshot queries go to now.
    #[getter]
    fn snapshot_id(&self) -> String {
        self.inner.current().snapshot().id().to_string()
    }

    /// Embedding fingerprint id of the snapshot (and of the model checked against it).
    #[getter]
    fn fingerprint_id(&self) -> String {
        self.inner.current().snapshot().manifest().fingerprint.id()
    }

    /// The store's folder.
    #[getter]
    fn store_path(&self) -> PathBuf {
        self.inner.root.clone()
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.stop_following(py);
        false
    }

    fn __repr__(&self) -> String {
        format!(
            "ragsnap.Searcher(store={:?}, snapshot_id={:?})",
            self.inner.root.display().to_string(),
            self.snapshot_id()
        )
    }
}

/// One hit: the chunk, where it comes from, and what each signal said about it.
#[pyclass(name = "Hit", module = "ragsnap", frozen, get_all)]
pub struct PyHit {
    /// Cosine similarity to the query (the lexical coverage in lexical mode).
    score: f32,
    /// Chunk text (header path line, blank line, body).
    text: String,
    /// Source document path, relative to the source folder.
    source_path: String,
    /// Source URL, when the build knew one.
    url: Option<String>,
    /// Headers above the chunk, outermost first.
    header_path: Vec<String>,
    /// Content id of the chunk text.
    content_id: String,
    /// Cosine similarity (None in lexical mode).
    cosine: Option<f32>,
    /// BM25 score (None in dense mode).
    lexical: Option<f32>,
    /// Share of the query's IDF mass the chunk holds, 0 to 1.
    lexical_coverage: Option<f32>,
    /// Reciprocal-rank-fusion score (hybrid mode).
    fused: Option<f32>,
    /// How confident the floors are in the hit, 0.5 to 1 for a returned hit.
    confidence: f32,
    /// Signals that cleared their floor: "dense", "lexical" or both.
    supported_by: Vec<String>,
    /// Rank in the dense candidate list, from 1.
    dense_rank: Option<u32>,
    /// Rank in the lexical candidate list, from 1.
    lexical_rank: Option<u32>,
    /// Cosine minus the cosine floor that applied.
    cosine_margin: Option<f32>,
    /// Lexical coverage minus the lexical floor.
    coverage_margin: Option<f32>,
    /// Words of the query the chunk holds as whole words.
    matched_terms: Vec<String>,
    /// Identifiers of the query the chunk holds.
    exact_matches: Vec<String>,
    /// Identifiers of the query the chunk does not hold.
    missing_identifiers: Vec<String>,
    /// The snapshot the hit comes from.
    snapshot_id: String,
}

impl PyHit {
    fn new(h: &Hit, snapshot_id: &str) -> Self {
        let s = &h.signals;
        PyHit {
            score: h.score,
            text: h.text.clone(),
            source_path: h.source_path.clone(),
            url: h.url.clone(),
            header_path: h.header_path.clone(),
            content_id: h.content_id.to_string(),
            cosine: s.dense_score,
            lexical: s.lexical_score,
            lexical_coverage: s.lexical_coverage,
            fused: s.fused_score,
            confidence: h.confidence,
            supported_by: s.supported_by.iter().map(|x| x.to_string()).collect(),
            dense_rank: s.dense_rank,
            lexical_rank: s.lexical_rank,
            cosine_margin: s.cosine_margin,
            coverage_margin: s.coverage_margin,
            matched_terms: s.matched_terms.clone(),
            exact_matches: s.exact_matches.clone(),
            missing_identifiers: s.missing_identifiers.clone(),
            snapshot_id: snapshot_id.to_string(),
        }
    }
}

#[pymethods]
impl PyHit {
    /// Every field as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
        let d = pyo3::types::PyDict::new(py);
        d.set_item("score", self.score)?;
        d.set_item("text", &self.text)?;
        d.set_item("source_path", &self.source_path)?;
        d.set_item("url", &self.url)?;
        d.set_item("header_path", &self.header_path)?;
        d.set_item("content_id", &self.content_id)?;
        d.set_item("cosine", self.cosine)?;
        d.set_item("lexical", self.lexical)?;
        d.set_item("lexical_coverage", self.lexical_coverage)?;
        d.set_item("fused", self.fused)?;
        d.set_item("confidence", self.confidence)?;
        d.set_item("supported_by", &self.supported_by)?;
        d.set_item("dense_rank", self.dense_rank)?;
        d.set_item("lexical_rank", self.lexical_rank)?;
        d.set_item("cosine_margin", self.cosine_margin)?;
        d.set_item("coverage_margin", self.coverage_margin)?;
        d.set_item("matched_terms", &self.matched_terms)?;
        d.set_item("exact_matches", &self.exact_matches)?;
        d.set_item("missing_identifiers", &self.missing_identifiers)?;
        d.set_item("snapshot_id", &self.snapshot_id)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "ragsnap.Hit(source_path={:?}, header_path={:?}, score={:.4}, confidence={:.3})",
            self.source_path, self.header_path, self.score, self.confidence
        )
    }
}

/// A query's result: which snapshot answered, whether it refused, and the hits.
#[pyclass(name = "QueryResult", module = "ragsnap", frozen)]
pub struct PyQueryResult {
    result: QueryResult,
    hits: Vec<Py<PyHit>>,
}

impl PyQueryResult {
    fn new(py: Python<'_>, result: QueryResult) -> PyResult<Self> {
        let hits = match &result.answer {
            Answer::Hits { hits } => {
                hits.iter().map(|h| Py::new(py, PyHit::new(h, &result.snapshot_id))).collect::<PyResult<Vec<_>>>()?
            }
            Answer::NoConfidentMatch { .. } => Vec::new(),
        };
        Ok(PyQueryResult { result, hits })
    }
}

#[pymethods]
impl PyQueryResult {
    /// The snapshot that answered.
    #[getter]
    fn snapshot_id(&self) -> &str {
        &self.result.snapshot_id
    }

    /// Embedding fingerprint id used.
    #[getter]
    fn fingerprint_id(&self) -> &str {
        &self.result.fingerprint_id
    }

    /// Mode that answered: "dense", "lexical" or "hybrid".
    #[getter]
    fn mode(&self) -> &'static str {
        match self.result.mode {
            Mode::Dense => "dense",
            Mode::Lexical => "lexical",
            Mode::Hybrid => "hybrid",
        }
    }

    /// True when nothing cleared the floors (then `hits` is empty and `reason` says why).
    #[getter]
    fn refused(&self) -> bool {
        matches!(self.result.answer, Answer::NoConfidentMatch { .. })
    }

    /// Best cosine seen: the best candidate's on a refusal (None on an empty snapshot or in
    /// lexical mode), the best hit's score otherwise.
    #[getter]
    fn best_score(&self) -> Option<f32> {
        match &self.result.answer {
            Answer::NoConfidentMatch { best_score } => *best_score,
            Answer::Hits { hits } => hits.iter().map(|h| h.score).reduce(f32::max),
        }
    }

    /// Confidence of the best hit (0.5 to 1), or on a refusal the best candidate's (below 0.5).
    #[getter]
    fn confidence(&self) -> f32 {
        match (&self.result.answer, &self.result.refusal) {
            (Answer::Hits { hits }, _) => hits.iter().map(|h| h.confidence).fold(0.0, f32::max),
            (Answer::NoConfidentMatch { .. }, Some(r)) => r.best_confidence,
            (Answer::NoConfidentMatch { .. }, None) => 0.0,
        }
    }

    /// Why the query was refused, as a dict (`shortfall`, `best_cosine`, `best_coverage`,
    /// `missing_identifiers`, `best_confidence`); None when it was answered.
    #[getter]
    fn reason<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.result.refusal.as_ref().map(|r| convert::ser_to_py(py, r)).transpose()
    }

    /// Cosine floor applied.
    #[getter]
    fn floor(&self) -> f32 {
        self.result.floor
    }

    /// Lexical coverage floor applied (lexical and hybrid modes).
    #[getter]
    fn lexical_floor(&self) -> Option<f32> {
        self.result.lexical_floor
    }

    /// Where the floors came from: "caller", "snapshot" (calibrated at build) or "model".
    #[getter]
    fn floor_source(&self) -> &'static str {
        self.result.floor_source
    }

    /// Identifier-like terms found in the query.
    #[getter]
    fn identifiers(&self) -> Vec<String> {
        self.result.identifiers.clone()
    }

    /// The hits, best first (empty on a refusal).
    #[getter]
    fn hits(&self, py: Python<'_>) -> Vec<Py<PyHit>> {
        self.hits.iter().map(|h| h.clone_ref(py)).collect()
    }

    /// The whole result as a dict, as `ragsnap query --json` prints it.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::ser_to_py(py, &self.result)
    }

    fn __len__(&self) -> usize {
        self.hits.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "ragsnap.QueryResult(snapshot_id={:?}, refused={}, hits={}, best_score={})",
            self.result.snapshot_id,
            if self.refused() { "True" } else { "False" },
            self.hits.len(),
            self.best_score().map_or("None".to_string(), |s| format!("{s:.4}"))
        )
    }
}
