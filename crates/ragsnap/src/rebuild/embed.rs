//! Stage 4 of the rebuild, embed misses: vectors for every distinct chunk, from the embedding cache where
//! the cache can be trusted, from the model otherwise.
//!
//! The cache is verified, not trusted:
//! 1. every row is checked on read ([`EmbeddingCache::lookup`]): its checksum binds the vector
//!    to (fingerprint, content id), its values must be finite and, for a normalising model,
//!    of unit length. A row that fails is deleted and its chunk embedded again;
//! 2. a random sample of the hits ([`CacheVerifySettings`]) is embedded again and compared by
//!    cosine. A disagreeing row is replaced by the fresh vector. When more than
//!    `max_mismatch_share` of the sample disagrees, no hit of this fingerprint is trusted in
//!    this run: every chunk is embedded again and the cache rewritten. Re-embedding (rather than
//!    refusing the build) is chosen because the model at hand is the reference the cache is
//!    checked against: a full re-embed yields a correct snapshot and repairs the cache, where a
//!    refusal would leave every nightly run failing until someone cleared the cache by hand;
//! 3. every vector the model returns is checked ([`ragsnap_embed::check_output`]): a NaN or
//!    infinite value is [`ragsnap_embed::EmbedError::NonFinite`], never a stored vector.

use crate::config::CacheVerifySettings;
use crate::Result;
use ragsnap_core::{Chunk, ContentId};
use ragsnap_embed::{check_output, cosine, EmbedError, Embedder, EmbeddingCache, RowProblem};
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;

/// Texts per embedding call (and per cache transaction): large enough for length bucketing to
/// pack batches tightly; the embedder checks the cancel flag between its model batches.
const GROUP: usize = 2048;
/// Rejected rows listed by content id in the report (all are counted).
const EXAMPLES: usize = 10;

/// What the embed stage found in the embedding cache.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CacheCheck {
    /// Rows that failed their checksum, length, finiteness or unit-length check: deleted and
    /// embedded again, never served.
    pub rejected_rows: usize,
    /// Rows written before rows carried checksums: embedded again and rewritten.
    pub unchecked_rows: usize,
    /// Up to ten rejected rows: content id and why.
    pub rejected_examples: Vec<RejectedRow>,
    /// Cache hits embedded again to compare with the cached vector.
    pub sampled: usize,
    /// Sampled hits whose fresh vector disagreed (cosine below `cache.min_cosine`).
    pub sample_mismatches: usize,
    /// Lowest cosine between a sampled cached vector and its fresh vector (absent without a
    /// sample).
    pub min_sample_cosine: Option<f32>,
    /// The sample disagreed beyond `cache.max_mismatch_share`: no hit was used, every chunk
    /// was embedded again and the cache rewritten.
    pub untrusted: bool,
    /// Cache hits not used (disagreeing sample rows, or every hit when untrusted).
    pub hits_discarded: usize,
    /// Where a damaged cache file was moved (this run started an empty cache).
    pub quarantined: Option<String>,
}

/// One cache row that was not served.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RejectedRow {
    /// Content id of the chunk.
    pub content_id: String,
    /// Why.
    pub problem: RowProblem,
}

/// A seed that differs between runs, so that successive rebuilds sample different rows.
fn run_seed() -> u64 {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    let h = blake3::hash(&[nanos.to_le_bytes(), u64::from(std::process::id()).to_le_bytes()].concat());
    u64::from_le_bytes(h.as_bytes()[..8].try_into().expect("8 bytes")) | 1
}

/// `want` distinct items of `items`, chosen with `seed` (partial Fisher–Yates).
fn sample<T: Clone>(items: &[T], want: usize, mut seed: u64) -> Vec<T> {
    let mut pool: Vec<T> = items.to_vec();
    let want = want.min(pool.len());
    for i in 0..want {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let j = i + (seed % (pool.len() - i) as u64) as usize;
        pool.swap(i, j);
    }
    pool.truncate(want);
    pool
}

/// How many hits to embed again: the larger of `sample` and `sample_share` of the hits,
/// capped at `sample_max` and at the hits themselves.
pub(crate) fn sample_size(s: &CacheVerifySettings, hits: usize) -> usize {
    let by_share = (s.sample_share * hits as f64).ceil() as usize;
    s.sample.max(by_share).min(s.sample_max).min(hits)
}

/// What the embed stage did, for the report.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct EmbedStats {
    /// Vectors taken from the cache.
    pub cache_hits: usize,
    /// Vectors computed by the model (or by the cache check's re-embedding).
    pub cache_misses: usize,
    /// Inputs the model cut at its maximum length.
    pub truncated_inputs: usize,
    /// How the cache was verified.
    pub cache_check: CacheCheck,
}

/// Vectors for every chunk of `unique` (distinct content ids), verified as the module says,
/// and what it took to get them.
pub(crate) fn embed_chunks(
    embedder: &dyn Embedder,
    cache_path: &Path,
    unique: &[&Chunk],
    settings: &CacheVerifySettings,
    cancel: Option<&AtomicBool>,
    progress: &dyn Fn(usize, usize),
) -> Result<(HashMap<ContentId, Vec<f32>>, EmbedStats)> {
    let mut stats = EmbedStats::default();
    let fp = embedder.fingerprint();
    let (fp_id, dims, normalized) = (fp.id(), fp.dims, fp.normalize);
    let ids: Vec<&ContentId> = unique.iter().map(|c| &c.content_id).collect();
    let mut check = CacheCheck::default();
    // A damaged cache file is moved aside (kept) and replaced by an empty one: every chunk is
    // then embedded again, instead of every rebuild failing until someone deletes the file.
    let mut opened = EmbeddingCache::open(cache_path).and_then(|c| {
        let found = c.lookup(&fp_id, dims, normalized, &ids)?;
        Ok((c, found))
    });
    if let Err(EmbedError::CacheCorrupt { message, .. }) = &opened {
        let aside = EmbeddingCache::quarantine(cache_path)?;
        tracing::warn!(cache = %cache_path.display(), moved_to = %aside.display(), %message, "embedding cache damaged; starting an empty one");
        check.quarantined = Some(aside.display().to_string());
        opened = EmbeddingCache::open(cache_path).and_then(|c| {
            let found = c.lookup(&fp_id, dims, normalized, &ids)?;
            Ok((c, found))
        });
    }
    let (cache, found) = opened?;
    for (id, problem) in &found.rejected {
        if *problem == RowProblem::NoChecksum {
            check.unchecked_rows += 1;
            continue;
        }
        check.rejected_rows += 1;
        if check.rejected_examples.len() < EXAMPLES {
            check.rejected_examples.push(RejectedRow { content_id: id.as_str().to_string(), problem: problem.clone() });
        }
    }
    if check.rejected_rows > 0 {
        tracing::warn!(rows = check.rejected_rows, "embedding cache rows failed their checks; embedding them again");
    }
    // Bad rows go now, so that they are gone even if this run stops before rewriting them.
    let rejected: Vec<&ContentId> = found.rejected.iter().map(|(id, _)| id).collect();
    cache.delete_many(&fp_id, &rejected)?;
    let mut vectors = found.hits;

    // Embed a random sample of the hits again and compare.
    let mut hit_ids: Vec<ContentId> = vectors.keys().cloned().collect();
    hit_ids.sort();
    let picked = sample(&hit_ids, sample_size(settings, hit_ids.len()), run_seed());
    let mut fresh: HashMap<ContentId, Vec<f32>> = HashMap::new();
    if !picked.is_empty() {
        let text_of: HashMap<&ContentId, &str> = unique.iter().map(|c| (&c.content_id, c.text.as_str())).collect();
        let texts: Vec<&str> = picked.iter().map(|id| text_of[id]).collect();
        let vs = embedder.embed_cancellable(&texts, cancel)?;
        check_output(&texts, &vs, dims, normalized)?;
        let mut min = f32::INFINITY;
        for (id, v) in picked.iter().zip(vs) {
            let c = cosine(&vectors[id], &v);
            min = min.min(c);
            if c < settings.min_cosine {
                check.sample_mismatches += 1;
                tracing::warn!(content_id = %id, cosine = c, "cached vector disagrees with the model");
            }
            fresh.insert(id.clone(), v);
        }
        check.sampled = picked.len();
        check.min_sample_cosine = Some(min);
    }
    let mismatch_share = check.sample_mismatches as f64 / check.sampled.max(1) as f64;
    check.untrusted = check.sample_mismatches > 0 && mismatch_share > settings.max_mismatch_share;
    if check.untrusted {
        tracing::warn!(
            mismatches = check.sample_mismatches,
            sampled = check.sampled,
            "the embedding cache disagrees with the model; embedding every chunk again"
        );
        check.hits_discarded = vectors.len();
        vectors.clear();
    } else {
        // Disagreeing rows take their fresh vector (written back below with the misses).
        for (id, v) in &fresh {
            if cosine(&vectors[id], v) < settings.min_cosine {
                vectors.remove(id);
                check.hits_discarded += 1;
            }
        }
    }
    stats.cache_hits = vectors.len();

    // Everything without a trusted vector: fresh sample vectors first, then the model.
    let misses: Vec<&Chunk> = unique.iter().copied().filter(|c| !vectors.contains_key(&c.content_id)).collect();
    stats.cache_misses = misses.len();
    let reuse: Vec<(&ContentId, &[f32])> =
        misses.iter().filter_map(|c| fresh.get(&c.content_id).map(|v| (&c.content_id, v.as_slice()))).collect();
    cache.put_many(&fp_id, &reuse)?;
    for (id, v) in reuse {
        vectors.insert(id.clone(), v.to_vec());
    }
    let to_embed: Vec<&Chunk> = misses.into_iter().filter(|c| !vectors.contains_key(&c.content_id)).collect();
    progress(0, to_embed.len());
    for (i, batch) in to_embed.chunks(GROUP).enumerate() {
        crate::rebuild::check_cancel(cancel)?;
        if i > 0 {
            progress(i * GROUP, to_embed.len());
        }
        let texts: Vec<&str> = batch.iter().map(|c| c.text.as_str()).collect();
        let truncated_before = embedder.truncated_inputs();
        let vs = embedder.embed_cancellable(&texts, cancel)?;
        check_output(&texts, &vs, dims, normalized)?;
        stats.truncated_inputs += embedder.truncated_inputs().saturating_sub(truncated_before) as usize;
        let items: Vec<(&ContentId, &[f32])> =
            batch.iter().zip(&vs).map(|(c, v)| (&c.content_id, v.as_slice())).collect();
        cache.put_many(&fp_id, &items)?;
        for (c, v) in batch.iter().zip(vs) {
            vectors.insert(c.content_id.clone(), v);
        }
    }
    stats.cache_check = check;
    Ok((vectors, stats))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_is_the_larger_of_count_and_share_capped() {
        let s = CacheVerifySettings::default();
        assert_eq!(sample_size(&s, 10), 10);
        assert_eq!(sample_size(&s, 1000), 32);
        assert_eq!(sample_size(&s, 100_000), 1000);
        assert_eq!(sample_size(&s, 10_000_000), 2000);
        assert_eq!(sample_size(&CacheVerifySettings { sample_max: 0, ..s }, 1000), 0);
    }

    #[test]
    fn samples_are_distinct_and_vary_with_the_seed() {
        let items: Vec<u32> = (0..1000).collect();
        let a = sample(&items, 50, 7);
        let mut d = a.clone();
        d.sort_unstable();
        d.dedup();
        assert_eq!(d.len(), 50);
        assert_ne!(a, sample(&items, 50, 8));
        assert_eq!(sample(&items, 5000, 7).len(), 1000);
    }
}
