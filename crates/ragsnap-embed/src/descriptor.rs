//! `model.toml`, the descriptor of a model directory: file names, pooling, dimensions, input and
//! output names, and the pinned digests of the model and tokenizer files.

use crate::{EmbedError, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// `model.toml`: what a model directory holds and how to run it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelDescriptor {
    /// Short model name; the first half of the fingerprint id.
    pub name: String,
    /// ONNX file, relative to the model directory.
    pub model_file: String,
    /// `tokenizer.json`, relative to the model directory.
    pub tokenizer_file: String,
    /// Pooling mode; only `mean` is implemented.
    pub pooling: String,
    /// Whether to L2-normalise the pooled vector.
    pub normalize: bool,
    /// Longest token sequence fed to the model.
    pub max_tokens: usize,
    /// Output dimension.
    pub dims: usize,
    /// Model input names the embedder feeds.
    pub inputs: Vec<String>,
    /// Model output holding per-token hidden states.
    pub output: String,
    /// Cosine a hit must clear unless the caller sets another floor.
    pub default_floor: f32,
    /// Optional pinned blake3 digests of the files.
    #[serde(default)]
    pub expected: Expected,
}

/// Pinned digests; an empty string means "not pinned".
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    /// blake3 of the model file.
    #[serde(default)]
    pub model_blake3: String,
    /// blake3 of the tokenizer file.
    #[serde(default)]
    pub tokenizer_blake3: String,
}

impl ModelDescriptor {
    /// File name of the descriptor inside a model directory.
    pub const FILE_NAME: &'static str = "model.toml";

    /// Read `model.toml` from `dir`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(Self::FILE_NAME);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                EmbedError::Missing { what: "model descriptor", path: path.clone(), hint: "RAGSNAP_MODEL_DIR" }
            } else {
                EmbedError::Descriptor { path: path.clone(), message: e.to_string() }
            }
        })?;
        let d: ModelDescriptor =
            toml::from_str(&text).map_err(|e| EmbedError::Descriptor { path: path.clone(), message: e.to_string() })?;
        if d.pooling != "mean" {
            return Err(EmbedError::Descriptor {
                path,
                message: format!("pooling {:?} is not supported (only \"mean\")", d.pooling),
            });
        }
        if d.dims == 0 || d.max_tokens < 8 {
            return Err(EmbedError::Descriptor { path, message: "dims and max_tokens must be positive".into() });
        }
        Ok(d)
    }

    /// Absolute path of the model file.
    pub fn model_path(&self, dir: &Path) -> PathBuf {
        dir.join(&self.model_file)
    }

    /// Absolute path of the tokenizer file.
    pub fn tokenizer_path(&self, dir: &Path) -> PathBuf {
        dir.join(&self.tokenizer_file)
    }
}
