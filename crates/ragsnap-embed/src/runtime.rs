//! Finding the runtime pieces (ONNX Runtime library, model directory): flag, environment, then
//! the `make setup` cache; a missing piece is an error naming the path and `make setup`.

use crate::{EmbedError, Result};
use std::path::{Path, PathBuf};

/// File name of the ONNX Runtime library inside the `make setup` cache.
pub const ORT_LIB_NAME: &str = "libonnxruntime.so.1.31.1";
/// Name of the default model directory inside the cache.
pub const DEFAULT_MODEL: &str = "minilm-l6-int8";

/// Where the runtime pieces are.
///
/// Each piece is found by, in order: the explicit path given (a CLI flag or `ragsnap.toml`),
/// the environment (`RAGSNAP_ORT_LIB`, `RAGSNAP_MODEL_DIR`), then the cache that `make setup`
/// fills (`RAGSNAP_CACHE`, else the first `.cache/runtime` found walking up from the current
/// directory or from the running executable).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Runtime {
    /// The ONNX Runtime shared library.
    pub ort_lib: PathBuf,
    /// The model directory (holding `model.toml`).
    pub model_dir: PathBuf,
}

impl Runtime {
    /// Resolve both pieces; a missing one is an error that says to run `make setup`.
    pub fn resolve(ort_lib: Option<&Path>, model_dir: Option<&Path>) -> Result<Self> {
        let cache = cache_dir();
        let ort_lib =
            pick(ort_lib, "RAGSNAP_ORT_LIB", || cache.as_ref().map(|c| c.join("onnxruntime").join(ORT_LIB_NAME)))
                .ok_or_else(|| {
                    missing(
                        "ONNX Runtime library",
                        Path::new(".cache/runtime/onnxruntime").join(ORT_LIB_NAME),
                        "--ort-lib / RAGSNAP_ORT_LIB",
                    )
                })?;
        if !ort_lib.is_file() {
            return Err(missing("ONNX Runtime library", ort_lib, "--ort-lib / RAGSNAP_ORT_LIB"));
        }
        let model_dir = resolve_model_dir(model_dir)?;
        Ok(Runtime { ort_lib, model_dir })
    }
}

/// The model directory alone (for tools that only need the tokenizer): explicit path, then
/// `RAGSNAP_MODEL_DIR`, then the `make setup` cache, as [`Runtime::resolve`] finds it.
pub fn resolve_model_dir(model_dir: Option<&Path>) -> Result<PathBuf> {
    let dir = pick(model_dir, "RAGSNAP_MODEL_DIR", || cache_dir().map(|c| c.join("models").join(DEFAULT_MODEL)))
        .ok_or_else(|| {
            missing(
                "model directory",
                Path::new(".cache/runtime/models").join(DEFAULT_MODEL),
                "--model-dir / RAGSNAP_MODEL_DIR",
            )
        })?;
    if !dir.is_dir() {
        return Err(missing("model directory", dir, "--model-dir / RAGSNAP_MODEL_DIR"));
    }
    Ok(dir)
}

fn missing(what: &'static str, path: PathBuf, hint: &'static str) -> EmbedError {
    EmbedError::Missing { what, path, hint }
}

fn pick(explicit: Option<&Path>, env: &str, fallback: impl FnOnce() -> Option<PathBuf>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    if let Some(v) = std::env::var_os(env).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(v));
    }
    fallback()
}

/// The `make setup` cache: `RAGSNAP_CACHE`, else `.cache/runtime` in the current directory or
/// one of its ancestors, else next to (or above) the running executable.
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(v) = std::env::var_os("RAGSNAP_CACHE").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(v));
    }
    let mut starts = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        starts.push(cwd);
    }
    if let Some(dir) = std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_path_buf)) {
        starts.push(dir);
    }
    for start in starts {
        for dir in start.ancestors() {
            let c = dir.join(".cache").join("runtime");
            if c.join("onnxruntime").is_dir() || c.join("models").is_dir() {
                return Some(c);
            }
        }
    }
    None
}
