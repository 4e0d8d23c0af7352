//! # ragsnap-py
//!
//! The native half of the `ragsnap` Python package (`ragsnap._native`): the library's
//! [`ragsnap::Searcher`], store, rebuild and rollback, with the library's errors turned into
//! typed Python exceptions. The pure-Python half (`python/ragsnap`) re-exports these names and
//! adds the LangChain and LlamaIndex adapters.
//!
//! Everything here calls the library; nothing runs the `ragsnap` binary. The GIL is released
//! while a query embeds and searches and while a rebuild runs, so Python threads sharing one
//! searcher query in parallel.

mod convert;
mod errors;
mod searcher;
mod store;

use pyo3::prelude::*;

/// The extension module. Its name is the last component of `ragsnap._native`.
#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    m.add_class::<store::PyStore>()?;
    m.add_class::<searcher::PySearcher>()?;
    m.add_class::<searcher::PyQueryResult>()?;
    m.add_class::<searcher::PyHit>()?;
    m.add_function(wrap_pyfunction!(store::rebuild, m)?)?;
    m.add_function(wrap_pyfunction!(store::rollback, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
