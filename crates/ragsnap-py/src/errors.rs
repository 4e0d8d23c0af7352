//! The library's errors as Python exceptions. Every exception the package raises for a library
//! error is a `ragsnap.Error`; the cases a caller must stop on have their own subclass, and a
//! request that cannot be served as asked is `ragsnap.InvalidRequest`, which is also a
//! `ValueError`.

use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyFloat, PyString, PyTuple, PyType};
use ragsnap::index::IndexError;
use ragsnap::store::StoreError;
use ragsnap::Error as LibError;

pyo3::create_exception!(
    ragsnap,
    Error,
    PyException,
    "Base class of every error ragsnap raises for a failure of the library."
);
pyo3::create_exception!(
    ragsnap,
    EmbeddingVersionMismatch,
    Error,
    "The snapshot was built with another embedding model identity than the one loaded."
);
pyo3::create_exception!(
    ragsnap,
    EmbeddingDrift,
    Error,
    "Same model identity, different vectors: the runtime or a library drifted (canary check)."
);
pyo3::create_exception!(
    ragsnap,
    CorruptSnapshot,
    Error,
    "A snapshot or the catalog fails its checks (checksum, format, manifest); nothing from it is served."
);
pyo3::create_exception!(ragsnap, StoreLocked, Error, "Another writer holds the store's lock.");

/// `InvalidRequest(Error, ValueError)`, made once at import (two bases need `type()`).
static INVALID_REQUEST: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn invalid_request_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    INVALID_REQUEST
        .get_or_try_init(py, || {
            let bases = PyTuple::new(py, [py.get_type::<Error>(), py.get_type::<PyValueError>()])?;
            let ns = PyDict::new(py);
            ns.set_item("__module__", "ragsnap")?;
            ns.set_item(
                "__doc__",
                "A request that cannot be served as asked: a setting out of range, an empty query, an unknown snapshot reference.",
            )?;
            let t = py.get_type::<PyType>().call1(("InvalidRequest", bases, ns))?;
            Ok(t.cast_into::<PyType>()?.unbind())
        })
        .map(|t| t.bind(py))
}

/// Add the exception classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("Error", py.get_type::<Error>())?;
    m.add("EmbeddingVersionMismatch", py.get_type::<EmbeddingVersionMismatch>())?;
    m.add("EmbeddingDrift", py.get_type::<EmbeddingDrift>())?;
    m.add("CorruptSnapshot", py.get_type::<CorruptSnapshot>())?;
    m.add("StoreLocked", py.get_type::<StoreLocked>())?;
    m.add("InvalidRequest", invalid_request_type(py)?)?;
    Ok(())
}

/// Which Python exception a library error becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `ragsnap.Error`.
    Error,
    /// `ragsnap.EmbeddingVersionMismatch`.
    VersionMismatch,
    /// `ragsnap.EmbeddingDrift`.
    Drift,
    /// `ragsnap.CorruptSnapshot`.
    Corrupt,
    /// `ragsnap.StoreLocked`.
    Locked,
    /// `ragsnap.InvalidRequest`.
    Invalid,
}

/// The exception class for a library error. The enums are `#[non_exhaustive]`: a variant added
/// later is a plain `ragsnap.Error` until it is listed here.
pub fn kind(e: &LibError) -> Kind {
    match e {
        LibError::EmbeddingVersionMismatch { .. } => Kind::VersionMismatch,
        LibError::EmbeddingDrift { .. } => Kind::Drift,
        LibError::Store(s) => store_kind(s),
        LibError::Index(i) => match i {
            // Vectors or a graph that do not read back: the snapshot's index files are damaged.
            IndexError::Vectors(_) | IndexError::Graph(_) => Kind::Corrupt,
            IndexError::RecallNotReached { .. } | IndexError::Stopped => Kind::Error,
            _ => Kind::Error,
        },
        LibError::DimensionMismatch { .. }
        | LibError::Invalid(_)
        | LibError::InvalidSetting { .. }
        | LibError::Config { .. } => Kind::Invalid,
        LibError::Embed(_) | LibError::Io { .. } | LibError::Cancelled => Kind::Error,
        _ => Kind::Error,
    }
}

fn store_kind(e: &StoreError) -> Kind {
    match e {
        StoreError::Locked { .. } => Kind::Locked,
        StoreError::Corrupt { .. }
        | StoreError::Malformed { .. }
        | StoreError::ManifestRefused { .. }
        | StoreError::UnsupportedVersion { .. }
        | StoreError::CatalogDamaged { .. }
        | StoreError::Unreadable { .. } => Kind::Corrupt,
        StoreError::UnknownSnapshot(_) | StoreError::BadReference { .. } | StoreError::BeyondHistory { .. } => {
            Kind::Invalid
        }
        StoreError::Io { .. }
        | StoreError::NoHead
        | StoreError::Catalog { .. }
        | StoreError::Refused(_)
        | StoreError::NoStore { .. }
        | StoreError::NotAStore { .. }
        | StoreError::SymlinkRefused { .. } => Kind::Error,
        _ => Kind::Error,
    }
}

/// A Python exception of class `kind` with `message`.
pub fn raise(kind: Kind, message: String) -> PyErr {
    match kind {
        Kind::Error => Error::new_err(message),
        Kind::VersionMismatch => EmbeddingVersionMismatch::new_err(message),
        Kind::Drift => EmbeddingDrift::new_err(message),
        Kind::Corrupt => CorruptSnapshot::new_err(message),
        Kind::Locked => StoreLocked::new_err(message),
        Kind::Invalid => Python::attach(|py| match invalid_request_type(py) {
            Ok(t) => PyErr::from_type(t.clone(), message),
            Err(e) => e,
        }),
    }
}

/// The library error as its Python exception; the message is the library's. The details a
/// caller may act on are attributes too: `index` and `embedder` (fingerprint ids) on
/// `EmbeddingVersionMismatch`, `canary`, `cosine` and `min` on `EmbeddingDrift`, `path` (and
/// `pid` for `StoreLocked`) on store errors that name a file.
pub fn to_py(e: LibError) -> PyErr {
    let err = raise(kind(&e), e.to_string());
    Python::attach(|py| {
        let v = err.value(py);
        let set = |k: &str, x: Bound<'_, PyAny>| {
            let _ = v.setattr(k, x);
        };
        let path = |p: &std::path::Path| PyString::new(py, &p.to_string_lossy()).into_any();
        match &e {
            LibError::EmbeddingVersionMismatch { index, embedder } => {
                set("index", PyString::new(py, index).into_any());
                set("embedder", PyString::new(py, embedder).into_any());
            }
            LibError::EmbeddingDrift { canary, cosine, min } => {
                set("canary", PyString::new(py, canary).into_any());
                set("cosine", PyFloat::new(py, f64::from(*cosine)).into_any());
                set("min", PyFloat::new(py, f64::from(*min)).into_any());
            }
            LibError::Store(StoreError::Locked { path: p, pid }) => {
                set("path", path(p));
                let Ok(pid) = pid.into_pyobject(py);
                set("pid", pid.into_any());
            }
            LibError::Store(
                StoreError::Corrupt { path: p, .. }
                | StoreError::Malformed { path: p, .. }
                | StoreError::ManifestRefused { path: p, .. }
                | StoreError::UnsupportedVersion { path: p, .. }
                | StoreError::CatalogDamaged { path: p, .. }
                | StoreError::Unreadable { path: p, .. }
                | StoreError::Io { path: p, .. },
            )
            | LibError::Io { path: p, .. } => {
                set("path", path(p));
            }
            _ => {}
        }
    });
    err
}

/// `ragsnap.InvalidRequest` with `message`.
pub fn invalid(message: impl Into<String>) -> PyErr {
    raise(Kind::Invalid, message.into())
}
