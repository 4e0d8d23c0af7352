//! The model's token counter without the model: the tokenizer of a model directory, set up
//! exactly as [`OnnxEmbedder`](crate::OnnxEmbedder) sets up its counting tokenizer (no
//! truncation, no padding, special tokens included). Loading it reads `model.toml` and the
//! tokenizer file only; no ONNX Runtime, no session.

use crate::onnx::{check_pin, is_bert_wordpiece, read_piece};
use crate::{EmbedError, ModelDescriptor, Result};
use ragsnap_core::blake3_hex;
use std::path::Path;
use tokenizers::Tokenizer;

/// Counts model tokens the way the embedder of the same model directory does.
pub struct TokenCounter {
    descriptor: ModelDescriptor,
    tokenizer: Tokenizer,
    tokenizer_blake3: String,
    word_additive: bool,
}

impl TokenCounter {
    /// Load the tokenizer of the model in `model_dir` (checked against its pinned digest).
    pub fn load(model_dir: &Path) -> Result<Self> {
        let descriptor = ModelDescriptor::load(model_dir)?;
        let tok_path = descriptor.tokenizer_path(model_dir);
        let tok_bytes = read_piece(&tok_path, "tokenizer file")?;
        let tokenizer_blake3 = blake3_hex(&tok_bytes);
        check_pin(&tok_path, "blake3", &descriptor.expected.tokenizer_blake3, &tokenizer_blake3)?;
        if !descriptor.expected.tokenizer_sha256.is_empty() {
            check_pin(&tok_path, "sha256", &descriptor.expected.tokenizer_sha256, &crate::sha256_hex(&tok_bytes))?;
        }
        let mut tokenizer = Tokenizer::from_bytes(&tok_bytes)
            .map_err(|e| EmbedError::Tokenizer(format!("{}: {e}", tok_path.display())))?;
        tokenizer.with_truncation(None).map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        tokenizer.with_padding(None);
        let word_additive = is_bert_wordpiece(&tok_bytes) && descriptor.passage_prefix.is_empty();
        Ok(TokenCounter { word_additive, descriptor, tokenizer, tokenizer_blake3 })
    }

    /// Model tokens in `text` (special tokens included, no truncation), as
    /// [`Embedder::count_tokens`](crate::Embedder::count_tokens) counts them.
    pub fn count_tokens(&self, text: &str) -> usize {
        let prefix = &self.descriptor.passage_prefix;
        let encoded = if prefix.is_empty() {
            self.tokenizer.encode(text, true)
        } else {
            self.tokenizer.encode(format!("{prefix}{text}"), true)
        };
        match encoded {
            Ok(e) => e.len(),
            Err(_) => usize::MAX,
        }
    }

    /// The model's maximum input length.
    pub fn max_tokens(&self) -> usize {
        self.descriptor.max_tokens
    }

    /// Whether counts add up over words (BERT WordPiece).
    pub fn word_additive_counts(&self) -> bool {
        self.word_additive
    }

    /// blake3 of the tokenizer file.
    pub fn tokenizer_blake3(&self) -> &str {
        &self.tokenizer_blake3
    }

    /// The model's descriptor.
    pub fn descriptor(&self) -> &ModelDescriptor {
        &self.descriptor
    }
}
