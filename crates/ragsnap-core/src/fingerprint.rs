//! The embedding model's identity ([`EmbeddingFingerprint`]) and the canary vectors stored with
//! every snapshot; a reader refuses a model whose fingerprint or canaries differ.

use serde::{Deserialize, Serialize};

/// Identity of an embedding model run: everything that decides which vector a text gets.
///
/// Two fingerprints with the same [`id`](EmbeddingFingerprint::id) produce vectors in the
/// same space; anything else is a different space and must never be mixed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbeddingFingerprint {
    /// Model name from its descriptor, e.g. `minilm-l6-int8`.
    pub model_name: String,
    /// blake3 of the ONNX model file.
    pub model_blake3: String,
    /// blake3 of `tokenizer.json`.
    pub tokenizer_blake3: String,
    /// Pooling mode, e.g. `mean`.
    pub pooling: String,
    /// Whether vectors are L2-normalised.
    pub normalize: bool,
    /// Longest token sequence the model is fed; longer inputs are truncated (and counted).
    pub max_tokens: usize,
    /// Output dimension.
    pub dims: usize,
    /// Model input names, in the descriptor's order.
    pub inputs: Vec<String>,
    /// Model output the vectors are pooled from.
    pub output: String,
    /// ONNX Runtime version string the vectors were computed with.
    pub runtime_version: String,
    /// Text put before every query (empty: none; then it takes no part in the digest, so
    /// fingerprints made before prefixes existed keep their id).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub query_prefix: String,
    /// Text put before every passage (empty: none, and no part in the digest).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub passage_prefix: String,
}

impl EmbeddingFingerprint {
    /// blake3 over a canonical serialisation of every field.
    pub fn digest(&self) -> String {
        let mut h = blake3::Hasher::new();
        let fields: [&str; 10] = [
            &self.model_name,
            &self.model_blake3,
            &self.tokenizer_blake3,
            &self.pooling,
            if self.normalize { "l2" } else { "none" },
            &self.max_tokens.to_string(),
            &self.dims.to_string(),
            &self.inputs.join(","),
            &self.output,
            &self.runtime_version,
        ];
        for f in fields {
            h.update(&(f.len() as u64).to_le_bytes());
            h.update(f.as_bytes());
        }
        // Prefixes came later: they enter the digest only when set, each tagged, so that the
        // id of a model without prefixes is what it always was.
        for (tag, prefix) in [("query_prefix", &self.query_prefix), ("passage_prefix", &self.passage_prefix)] {
            if !prefix.is_empty() {
                for f in [tag, prefix.as_str()] {
                    h.update(&(f.len() as u64).to_le_bytes());
                    h.update(f.as_bytes());
                }
            }
        }
        h.finalize().to_hex().to_string()
    }

    /// Short printable id, `<model name>@<first 8 hex digits of the digest>`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.model_name, &self.digest()[..8])
    }
}

/// A fixed text and the vector the model gave it when a snapshot was built.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Canary {
    /// The canary text.
    pub text: String,
    /// Its embedding at build time.
    pub vector: Vec<f32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp() -> EmbeddingFingerprint {
        EmbeddingFingerprint {
            model_name: "m".into(),
            model_blake3: "a".into(),
            tokenizer_blake3: "b".into(),
            pooling: "mean".into(),
            normalize: true,
            max_tokens: 256,
            dims: 384,
            inputs: vec!["input_ids".into()],
            output: "last_hidden_state".into(),
            runtime_version: "1.31.1".into(),
            query_prefix: String::new(),
            passage_prefix: String::new(),
        }
    }

    #[test]
    fn every_field_changes_the_id() {
        let base = fp().id();
        let mut v = fp();
        v.tokenizer_blake3 = "c".into();
        assert_ne!(v.id(), base);
        let mut v = fp();
        v.runtime_version = "1.30.0".into();
        assert_ne!(v.id(), base);
        let mut v = fp();
        v.normalize = false;
        assert_ne!(v.id(), base);
        let mut v = fp();
        v.max_tokens = 128;
        assert_ne!(v.id(), base);
        assert!(base.starts_with("m@") && base.len() == 10);
        let mut q = fp();
        q.query_prefix = "query: ".into();
        let mut p = fp();
        p.passage_prefix = "query: ".into();
        assert!(q.id() != base && p.id() != base && q.id() != p.id(), "each prefix, and which one it is, count");
    }

    #[test]
    fn a_fingerprint_without_prefixes_keeps_the_id_and_json_it_had_before_prefixes() {
        // The id this fingerprint gets from the length-prefixed fields alone, as before prefixes
        // were added: existing snapshots must keep their identity (the default model's id,
        // minilm-l6-int8@206c9699, is the same before and after).
        let f = fp();
        assert_eq!(f.id(), "m@ac40975e");
        let json = serde_json::to_string(&f).unwrap();
        assert!(!json.contains("prefix"), "{json}");
        let back: EmbeddingFingerprint = serde_json::from_str(&json).unwrap();
        assert_eq!(back, f);
    }
}
