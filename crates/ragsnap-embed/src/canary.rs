//! Canary texts: embedded when a snapshot is built, re-embedded whenever an embedder is opened
//! against it. Identical model files can still give different vectors after a runtime or
//! library upgrade; the canaries catch that before a single query is answered.

use crate::{cosine, EmbedError, Embedder, Result};
use ragsnap_core::{Canary, EmbeddingFingerprint};

/// Lowest cosine a re-embedded canary may have to its stored vector.
pub const MIN_CANARY_COSINE: f32 = 0.999;

/// The fixed canary texts: varied length, script and register.
pub const CANARY_TEXTS: [&str; 16] = [
    "retry",
    "How do I roll back to the previous index snapshot?",
    "The quick brown fox jumps over the lazy dog.",
    "SELECT id, name FROM users WHERE created_at > now() - interval '7 days';",
    "fn main() { println!(\"hello\"); }",
    "Die Warteschlange speichert Aufträge, bis ein Arbeiter sie abholt.",
    "La configuration se trouve dans le fichier principal du service.",
    "設定ファイルを編集してからサービスを再起動してください。",
    "Настройте тайм-аут соединения в секундах.",
    "¿Dónde se guardan las copias de seguridad?",
    "Error 503: upstream connect error or disconnect/reset before headers.",
    "A vector index maps each chunk of text to a point in a high-dimensional space, and a query \
     is answered by finding the points nearest to the query's own embedding. When the model that \
     embeds the queries differs from the one that built the index, the distances stop meaning \
     anything at all.",
    "TLS certificates must be renewed before they expire; the server reloads them on SIGHUP.",
    "🙂 emoji, accents (café, naïve) and symbols: ± ≤ ≥ → ∞",
    "1, 2, 3, 5, 8, 13, 21, 34, 55, 89",
    "Mean pooling averages the token vectors under the attention mask; the result is then L2-normalised.",
];

/// Embed the canary texts with `embedder`.
pub fn compute(embedder: &dyn Embedder) -> Result<Vec<Canary>> {
    let vectors = embedder.embed(&CANARY_TEXTS)?;
    Ok(CANARY_TEXTS.iter().zip(vectors).map(|(t, v)| Canary { text: (*t).to_string(), vector: v }).collect())
}

/// Check that `embedder` is the identity a snapshot was built with and still reproduces its
/// canaries. A different fingerprint is [`EmbedError::EmbeddingVersionMismatch`]; a canary below
/// [`MIN_CANARY_COSINE`] is [`EmbedError::EmbeddingDrift`] naming the worst one.
pub fn verify(embedder: &dyn Embedder, expected: &EmbeddingFingerprint, canaries: &[Canary]) -> Result<()> {
    let ours = embedder.fingerprint();
    if ours.id() != expected.id() || ours != expected {
        return Err(EmbedError::EmbeddingVersionMismatch { index: expected.id(), embedder: ours.id() });
    }
    if canaries.is_empty() {
        return Ok(());
    }
    let texts: Vec<&str> = canaries.iter().map(|c| c.text.as_str()).collect();
    let fresh = embedder.embed(&texts)?;
    let mut worst: Option<(f32, &str)> = None;
    for (c, v) in canaries.iter().zip(&fresh) {
        let cos = if c.vector.len() == v.len() { cosine(&c.vector, v) } else { -1.0 };
        if worst.is_none_or(|(w, _)| cos < w) {
            worst = Some((cos, &c.text));
        }
    }
    match worst {
        Some((cos, text)) if cos < MIN_CANARY_COSINE => {
            Err(EmbedError::EmbeddingDrift { canary: text.to_string(), cosine: cos, min: MIN_CANARY_COSINE })
        }
        _ => Ok(()),
    }
}
