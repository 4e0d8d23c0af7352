//! `model.toml`, the descriptor of a model directory: file names, pooling, prefixes, dimensions,
//! input and output names, and the pinned digests of the model and tokenizer files.
//!
//! Every field is checked when the descriptor is read ([`ModelDescriptor::load`]); the digests
//! are checked against the files when the model is loaded ([`crate::OnnxEmbedder::load`]).

use crate::{EmbedError, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

/// How one vector is made from the model's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// Mean of the per-token hidden states (`[batch, seq, dims]`) under the attention mask.
    Mean,
    /// The hidden state of the first token (`[CLS]`), as BGE-style models are trained.
    Cls,
    /// The output is already one vector per text (`[batch, dims]`); taken as it is.
    None,
}

impl Pooling {
    /// The name used in `model.toml` and in the fingerprint.
    pub fn as_str(self) -> &'static str {
        match self {
            Pooling::Mean => "mean",
            Pooling::Cls => "cls",
            Pooling::None => "none",
        }
    }

    /// Rank of the output tensor this pooling reads: 3 for per-token states, 2 for pooled.
    pub fn output_rank(self) -> usize {
        match self {
            Pooling::Mean | Pooling::Cls => 3,
            Pooling::None => 2,
        }
    }
}

impl fmt::Display for Pooling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Model inputs the embedder knows how to feed.
pub const KNOWN_INPUTS: [&str; 3] = ["input_ids", "attention_mask", "token_type_ids"];

/// Longest prefix accepted, in bytes (a prefix is an instruction of a few words).
pub const MAX_PREFIX_BYTES: usize = 256;

/// Longest `max_tokens` accepted (the position tables of the BERT family end at 512; a few
/// long-context models go further).
pub const MAX_TOKENS_LIMIT: usize = 8192;

/// `model.toml`: what a model directory holds and how to run it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelDescriptor {
    /// Short model name; the first half of the fingerprint id.
    pub name: String,
    /// One line saying what the model is (shown by `ragsnap models`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Licence of the model weights, as its publisher states it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub license: String,
    /// ONNX file, relative to the model directory.
    pub model_file: String,
    /// `tokenizer.json`, relative to the model directory.
    pub tokenizer_file: String,
    /// How one vector is made from the output.
    pub pooling: Pooling,
    /// Whether to L2-normalise the pooled vector.
    pub normalize: bool,
    /// Longest token sequence fed to the model.
    pub max_tokens: usize,
    /// Output dimension.
    pub dims: usize,
    /// Model input names the embedder feeds.
    pub inputs: Vec<String>,
    /// Model output the vector comes from: per-token hidden states for `mean` and `cls`, the
    /// pooled vector for `none`.
    pub output: String,
    /// Text put before every query (some models are trained with an instruction there).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub query_prefix: String,
    /// Text put before every passage (chunk, canary) the model embeds.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub passage_prefix: String,
    /// Cosine a hit must clear unless the caller sets another floor.
    pub default_floor: f32,
    /// Pinned digests of the files.
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
    /// sha256 of the model file (the digest the fetch script pins too).
    #[serde(default)]
    pub model_sha256: String,
    /// sha256 of the tokenizer file.
    #[serde(default)]
    pub tokenizer_sha256: String,
    /// Size of the model file in bytes (0: not pinned).
    #[serde(default)]
    pub model_bytes: u64,
}

impl ModelDescriptor {
    /// File name of the descriptor inside a model directory.
    pub const FILE_NAME: &'static str = "model.toml";

    /// Read `model.toml` from `dir` and check every field.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(Self::FILE_NAME);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                EmbedError::Missing { what: "model descriptor", path: path.clone(), hint: "RAGSNAP_MODEL_DIR" }
            } else {
                EmbedError::Descriptor { path: path.clone(), message: e.to_string() }
            }
        })?;
        Self::parse(&text, &path)
    }

    /// Parse and check descriptor text; `path` names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let d: ModelDescriptor = toml::from_str(text)
            .map_err(|e| EmbedError::Descriptor { path: path.to_path_buf(), message: e.to_string() })?;
        d.validate().map_err(|message| EmbedError::Descriptor { path: path.to_path_buf(), message })?;
        Ok(d)
    }

    /// What is wrong with the descriptor, if anything.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if !valid_name(&self.name) {
            return Err(format!(
                "name {:?} must be 1-64 characters of lowercase letters, digits, '-', '_' or '.', starting with a letter or digit",
                self.name
            ));
        }
        for (key, file) in [("model_file", &self.model_file), ("tokenizer_file", &self.tokenizer_file)] {
            let p = Path::new(file);
            if file.is_empty()
                || p.is_absolute()
                || p.components().any(|c| !matches!(c, std::path::Component::Normal(_)))
            {
                return Err(format!("{key} {file:?} must be a plain relative path inside the model folder"));
            }
        }
        if self.dims == 0 {
            return Err("dims must be at least 1".into());
        }
        if self.max_tokens < 8 || self.max_tokens > MAX_TOKENS_LIMIT {
            return Err(format!("max_tokens {} is out of range (8 to {MAX_TOKENS_LIMIT})", self.max_tokens));
        }
        if self.output.trim().is_empty() {
            return Err("output must name the model output the vectors come from".into());
        }
        if self.inputs.is_empty() {
            return Err("inputs must list the model inputs (input_ids at least)".into());
        }
        for (i, name) in self.inputs.iter().enumerate() {
            if !KNOWN_INPUTS.contains(&name.as_str()) {
                return Err(format!("input {name:?} cannot be fed (known inputs: {})", KNOWN_INPUTS.join(", ")));
            }
            if self.inputs[..i].contains(name) {
                return Err(format!("input {name:?} is listed twice"));
            }
        }
        if !self.inputs.iter().any(|n| n == "input_ids") {
            return Err("inputs must include input_ids".into());
        }
        for (key, prefix) in [("query_prefix", &self.query_prefix), ("passage_prefix", &self.passage_prefix)] {
            if prefix.len() > MAX_PREFIX_BYTES {
                return Err(format!("{key} is {} bytes long (at most {MAX_PREFIX_BYTES})", prefix.len()));
            }
            if prefix.chars().any(|c| c.is_control()) {
                return Err(format!("{key} {prefix:?} holds a control character"));
            }
        }
        if !self.default_floor.is_finite() || !(-1.0..=1.0).contains(&self.default_floor) {
            return Err(format!("default_floor {} must be a cosine between -1 and 1", self.default_floor));
        }
        for (key, digest, len) in [
            ("expected.model_blake3", &self.expected.model_blake3, 64),
            ("expected.tokenizer_blake3", &self.expected.tokenizer_blake3, 64),
            ("expected.model_sha256", &self.expected.model_sha256, 64),
            ("expected.tokenizer_sha256", &self.expected.tokenizer_sha256, 64),
        ] {
            if !digest.is_empty()
                && (digest.len() != len || !digest.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
            {
                return Err(format!("{key} {digest:?} is not {len} lowercase hex digits"));
            }
        }
        Ok(())
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

/// Whether `name` is usable as a model name (and folder name in the catalogue).
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
name = "m"
model_file = "model.onnx"
tokenizer_file = "tokenizer.json"
pooling = "mean"
normalize = true
max_tokens = 256
dims = 384
inputs = ["input_ids", "attention_mask"]
output = "last_hidden_state"
default_floor = 0.45
"#;

    fn parse(text: &str) -> std::result::Result<ModelDescriptor, String> {
        ModelDescriptor::parse(text, Path::new("/x/model.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn a_plain_descriptor_reads_with_empty_prefixes_and_pins() {
        let d = parse(BASE).unwrap();
        assert_eq!(d.pooling, Pooling::Mean);
        assert!(d.query_prefix.is_empty() && d.passage_prefix.is_empty());
        assert!(d.expected.model_sha256.is_empty());
    }

    #[test]
    fn every_bad_field_is_refused_with_the_file_and_the_field_named() {
        let cases: [(&str, &str, &str); 12] = [
            ("pooling = \"mean\"", "pooling = \"max\"", "pooling"),
            ("dims = 384", "dims = 0", "dims"),
            ("max_tokens = 256", "max_tokens = 4", "max_tokens"),
            ("output = \"last_hidden_state\"", "output = \" \"", "output"),
            ("inputs = [\"input_ids\", \"attention_mask\"]", "inputs = []", "inputs"),
            (
                "inputs = [\"input_ids\", \"attention_mask\"]",
                "inputs = [\"input_ids\", \"pixel_values\"]",
                "pixel_values",
            ),
            ("inputs = [\"input_ids\", \"attention_mask\"]", "inputs = [\"attention_mask\"]", "input_ids"),
            ("name = \"m\"", "name = \"../m\"", "name"),
            ("model_file = \"model.onnx\"", "model_file = \"../model.onnx\"", "model_file"),
            ("default_floor = 0.45", "default_floor = 1.5", "default_floor"),
            ("default_floor = 0.45", "default_floor = 0.45\nquery_prefix = \"a\\nb\"", "query_prefix"),
            ("default_floor = 0.45", "default_floor = 0.45\n[expected]\nmodel_sha256 = \"abc\"", "model_sha256"),
        ];
        for (from, to, needle) in cases {
            let text = BASE.replace(from, to);
            assert_ne!(text, BASE, "{from} not in the base descriptor");
            let err = parse(&text).expect_err(to);
            assert!(err.contains("/x/model.toml") && err.contains(needle), "{to}: {err}");
        }
        let err = parse(&format!("{BASE}colour = \"blue\"\n")).unwrap_err();
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn cls_and_none_pooling_read() {
        let d = parse(&BASE.replace("\"mean\"", "\"cls\"")).unwrap();
        assert_eq!((d.pooling, d.pooling.output_rank()), (Pooling::Cls, 3));
        let d = parse(&BASE.replace("\"mean\"", "\"none\"")).unwrap();
        assert_eq!((d.pooling.as_str(), d.pooling.output_rank()), ("none", 2));
    }
}
