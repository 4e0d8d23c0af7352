//! `ragsnap.Store` (read-only: head, snapshots, history), `ragsnap.rebuild` and
//! `ragsnap.rollback`.

use crate::convert;
use crate::errors::{self, to_py};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use ragsnap::config::{Config, SourceConfig};
use ragsnap::store::audit::{self, AuditEntry};
use ragsnap::store::layout::{self, RootState};
use ragsnap::store::StoreError;
use ragsnap::{RebuildOptions, Store};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A store opened read-only. Each call reads the catalog afresh, so the answers follow a
/// rebuild or rollback made by another process.
#[pyclass(name = "Store", module = "ragsnap", frozen)]
pub struct PyStore {
    root: PathBuf,
}

impl PyStore {
    fn open(&self) -> PyResult<Store> {
        Store::open_reader(&self.root).map_err(|e| to_py(e.into()))
    }
}

#[pymethods]
impl PyStore {
    /// Open the store at `path` read-only; raises `ragsnap.Error` when there is no store there.
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let store = PyStore { root: path };
        py.detach(|| store.open().map(drop))?;
        Ok(store)
    }

    /// The store's folder.
    #[getter]
    fn path(&self) -> PathBuf {
        self.root.clone()
    }

    /// The head snapshot's catalog record, as a dict.
    fn head<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let rec = py.detach(|| self.open()?.head().map_err(|e| to_py(e.into())))?;
        convert::ser_to_py(py, &rec)
    }

    /// Every snapshot's catalog record (ready, rejected and collected), as dicts.
    fn snapshots<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let list = py.detach(|| self.open()?.catalog().list().map_err(|e| to_py(e.into())))?;
        convert::ser_to_py(py, &list)
    }

    /// Every move of head (promote, rollback), oldest first, as dicts.
    fn history<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let list = py.detach(|| self.open()?.catalog().history().map_err(|e| to_py(e.into())))?;
        convert::ser_to_py(py, &list)
    }

    /// The snapshot id a reference names: `HEAD`, `HEAD~N`, a pin tag or an id (prefix).
    fn resolve(&self, py: Python<'_>, spec: &str) -> PyResult<String> {
        py.detach(|| self.open()?.resolve(spec).map_err(|e| to_py(e.into())))
    }

    fn __repr__(&self) -> String {
        format!("ragsnap.Store({:?})", self.root.display().to_string())
    }
}

/// The settings `rebuild` takes as keyword arguments besides the sections of the config file.
const REBUILD_KEYWORDS: &[&str] =
    &["config", "url_prefix", "allow_model_change", "force", "model_dir", "ort_lib", "golden", "selection"];
/// Sections of `ragsnap.toml` that `rebuild` takes as dict keyword arguments.
const CONFIG_SECTIONS: &[&str] =
    &["runtime", "ingest", "chunker", "boilerplate", "index", "query", "gates", "cache", "gc"];

fn sources_of(source: &Bound<'_, PyAny>) -> PyResult<Vec<PathBuf>> {
    if let Ok(one) = source.extract::<PathBuf>() {
        return Ok(vec![one]);
    }
    let mut out = Vec::new();
    for item in source
        .try_iter()
        .map_err(|_| PyTypeError::new_err("source must be a folder (str or os.PathLike) or a list of folders"))?
    {
        out.push(
            item?.extract::<PathBuf>().map_err(|_| {
                PyTypeError::new_err("source must be a folder (str or os.PathLike) or a list of folders")
            })?,
        );
    }
    if out.is_empty() {
        return Err(errors::invalid("source: no folder given"));
    }
    Ok(out)
}

/// The config a rebuild runs with: `ragsnap.toml` (the one given, else `./ragsnap.toml`), the
/// `RAGSNAP_*` environment over it, then the keyword arguments over both.
fn rebuild_config(settings: Option<&Bound<'_, PyDict>>) -> PyResult<(Config, bool, bool)> {
    let get = |k: &str| -> PyResult<Option<Bound<'_, PyAny>>> {
        match settings {
            Some(s) => Ok(s.get_item(k)?.filter(|v| !v.is_none())),
            None => Ok(None),
        }
    };
    if let Some(s) = settings {
        for key in s.keys() {
            let key: String = key.extract()?;
            if !REBUILD_KEYWORDS.contains(&key.as_str()) && !CONFIG_SECTIONS.contains(&key.as_str()) {
                return Err(PyTypeError::new_err(format!(
                    "rebuild() got an unexpected keyword argument {key:?} (settings: {}; config sections as dicts: {})",
                    REBUILD_KEYWORDS.join(", "),
                    CONFIG_SECTIONS.join(", ")
                )));
            }
        }
    }
    let explicit: Option<PathBuf> = get("config")?.map(|v| v.extract()).transpose()?;
    let mut config = Config::resolve(explicit.as_deref()).map_err(to_py)?;
    // Sections merge key by key over the file's values; serde names an unknown key.
    let mut json = serde_json::to_value(&config).map_err(|e| errors::raise(errors::Kind::Error, e.to_string()))?;
    let mut touched = false;
    for section in CONFIG_SECTIONS.iter().copied().chain(["selection"]) {
        let Some(value) = get(section)? else { continue };
        let name = if section == "selection" { "source" } else { section };
        let given = convert::from_py(&value, section)?;
        let serde_json::Value::Object(given) = given else {
            return Err(PyTypeError::new_err(format!("{section} must be a dict of {name} settings")));
        };
        let slot = json.get_mut(name).and_then(|v| v.as_object_mut());
        let Some(slot) = slot else {
            return Err(errors::invalid(format!("{section}: the config has no [{name}] section")));
        };
        for (k, v) in given {
            slot.insert(k, v);
        }
        touched = true;
    }
    if touched {
        config = serde_json::from_value(json).map_err(|e| errors::invalid(format!("rebuild settings: {e}")))?;
    }
    if let Some(v) = get("model_dir")? {
        config.runtime.model_dir = Some(v.extract()?);
    }
    if let Some(v) = get("ort_lib")? {
        config.runtime.ort_lib = Some(v.extract()?);
    }
    if let Some(v) = get("golden")? {
        config.gates.golden = Some(v.extract()?);
    }
    let flag = |k: &str| -> PyResult<bool> {
        match get(k)? {
            Some(v) => v.extract::<bool>().map_err(|_| PyTypeError::new_err(format!("{k} must be True or False"))),
            None => Ok(false),
        }
    };
    Ok((config, flag("allow_model_change")?, flag("force")?))
}

/// Build a snapshot of `source` into the store at `store` (created when the folder is new or
/// empty), run the gates, and promote it when every gate passes. Returns the report as a dict;
/// a build the gates reject is a report with `outcome == "rejected"`, not an exception.
///
/// Settings (keyword only): `config` (a `ragsnap.toml`; default `./ragsnap.toml` when present),
/// `url_prefix`, `allow_model_change`, `force`, `model_dir`, `ort_lib`, `golden`, `selection`
/// (the `[source]` section), and any section of the config file as a dict (`chunker={...}`,
/// `gates={...}`, `index={...}`...). An unknown keyword is a `TypeError`, an unknown or
/// out-of-range setting a `ragsnap.InvalidRequest` naming it.
///
/// Ctrl-C stops the build at its next safe point; head is left as it was.
#[pyfunction]
#[pyo3(signature = (store, source, **settings))]
pub fn rebuild<'py>(
    py: Python<'py>,
    store: PathBuf,
    source: &Bound<'py, PyAny>,
    settings: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let dirs = sources_of(source)?;
    let (config, allow_model_change, force) = rebuild_config(settings)?;
    let url_prefix: Option<String> = match settings {
        Some(s) => s.get_item("url_prefix")?.filter(|v| !v.is_none()).map(|v| v.extract()).transpose()?,
        None => None,
    };
    let sources: Vec<SourceConfig> =
        dirs.into_iter().map(|dir| SourceConfig { dir, url_prefix: url_prefix.clone(), name: None }).collect();
    let cancel = AtomicBool::new(false);
    let outcome = py.detach(|| {
        std::thread::scope(|scope| {
            let build = scope.spawn(|| {
                let embedder = ragsnap::open_embedder(&config.runtime)?;
                let opts =
                    RebuildOptions { sources, allow_model_change, force, cancel: Some(&cancel), ..Default::default() };
                ragsnap::rebuild_with(&store, &config, &opts, embedder.as_ref())
            });
            // Python's signal handlers run only with the GIL held: look at them now and then,
            // and turn Ctrl-C into the build's own cancellation.
            let mut interrupted: Option<PyErr> = None;
            while !build.is_finished() {
                std::thread::sleep(Duration::from_millis(50));
                if interrupted.is_none() {
                    if let Err(e) = Python::attach(|py| py.check_signals()) {
                        cancel.store(true, Ordering::SeqCst);
                        interrupted = Some(e);
                    }
                }
            }
            let result = build.join().unwrap_or_else(|_| Err(ragsnap::Error::Invalid("the rebuild panicked".into())));
            (result, interrupted)
        })
    });
    let report = match outcome {
        (_, Some(interrupt)) => return Err(interrupt),
        (Err(e), None) => {
            record(&store, "rebuild", None, "error", e.to_string());
            return Err(to_py(e));
        }
        (Ok(report), None) => report,
    };
    let detail = match report.outcome {
        ragsnap::Outcome::Unchanged => "unchanged: sources and settings match head; no new snapshot".to_string(),
        ragsnap::Outcome::Promoted => {
            format!("promoted; {} documents, {} chunks", report.documents_indexed, report.chunks)
        }
        ragsnap::Outcome::Rejected => format!("rejected by gates: {}", report.rejected_because.join("; ")),
    };
    let outcome = if report.succeeded() { "ok" } else { "rejected" };
    record(&store, "rebuild", Some(&report.snapshot_id), outcome, detail);
    convert::ser_to_py(py, &report)
}

/// Append to the store's audit log as the `ragsnap` binary does; a failure to record is not
/// the caller's failure (the store may not exist yet).
fn record(root: &Path, command: &str, snapshot: Option<&str>, outcome: &str, detail: String) {
    let _ = audit::append(root, &AuditEntry::now(command, snapshot, outcome, detail));
}

/// Move head of the store at `store` back: to snapshot `to` (an id, pin tag or `HEAD~N`), else
/// to the `steps`-th previous head. The target's checksums are verified first; a snapshot of
/// another embedding model needs `allow_model_change`. Returns `{"from", "to", "reason"}`.
#[pyfunction]
#[pyo3(signature = (store, to=None, *, steps=1, reason="rolled back from Python", allow_model_change=false))]
pub fn rollback<'py>(
    py: Python<'py>,
    store: PathBuf,
    to: Option<String>,
    steps: i64,
    reason: &str,
    allow_model_change: bool,
) -> PyResult<Bound<'py, PyAny>> {
    if steps < 1 {
        return Err(errors::invalid(format!("steps: {steps} is out of range (at least 1)")));
    }
    if reason.trim().is_empty() {
        return Err(errors::invalid("reason: must not be empty"));
    }
    let (from, target) = py
        .detach(|| -> Result<(String, String), ragsnap::Error> {
            if layout::classify(&store)? == RootState::Fresh {
                return Err(StoreError::NoStore { path: store.clone() }.into());
            }
            let mut writer = ragsnap::open_store_writer(&store)?;
            let target = match &to {
                Some(t) => writer.resolve(t)?,
                None => writer.previous_head(usize::try_from(steps).unwrap_or(usize::MAX))?,
            };
            Ok(writer.rollback(&target, reason, allow_model_change)?)
        })
        .map_err(to_py)?;
    record(&store, "rollback", Some(&target), "ok", format!("head {from} -> {target}: {reason}"));
    let d = PyDict::new(py);
    d.set_item("from", from)?;
    d.set_item("to", target)?;
    d.set_item("reason", reason)?;
    Ok(d.into_any())
}
