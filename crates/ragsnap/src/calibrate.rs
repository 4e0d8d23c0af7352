//! Per-snapshot refusal calibration, run by the rebuild just before it writes the manifest.
//!
//! A fixed cosine floor means something different for every model and corpus, and it cannot
//! tell an identifier the corpus lacks from one it documents: both score where correct answers
//! score. So every build measures, on the snapshot it is about to publish:
//!
//! * **in-corpus probes**: pseudo-questions made from a deterministic sample of its own chunks,
//!   alternately the section title and the first sentence of the body ([`in_corpus_probes`]);
//! * **off-topic probes**: the generic questions shipped in [`OFF_TOPIC_PROBES`], which no
//!   software documentation answers;
//! * **absent-identifier probes**: near misses made of the snapshot's own owners and name parts
//!   ([`near_miss_probes`]: `owner.part_part()`) and identifiers built from generic programming
//!   words ([`absent_identifier_probes`]), each checked to be absent from the snapshot's lexical
//!   index (neither the whole name nor its last component is a term of any chunk).
//!
//! and records each set's best-cosine and best-coverage quantiles together with the floors chosen
//! from them ([`choose_floors`]) in `calibration.refusal` of the manifest. Queries use those
//! floors unless the caller sets its own ([`crate::Searcher::floors`]); snapshots without the
//! field keep the model's defaults.
//!
//! Cost: about 250 probe embeddings (one short batch each of 64) and as many index and BM25
//! searches; the time taken is logged (`calibrated refusal floors`, at info level).

use crate::Result;
use ragsnap_core::Chunk;
use ragsnap_embed::Embedder;
use ragsnap_index::Index;
use ragsnap_lexical::LexicalIndex;
use ragsnap_store::{ProbeScores, RefusalCalibration, REFUSAL_CALIBRATION_VERSION};

/// Share of in-corpus probes the chosen dense floor must keep.
pub const KEEP_SHARE: f32 = 0.95;
/// In-corpus probes sampled (fewer when the snapshot has fewer distinct chunks).
pub const IN_CORPUS_PROBES: usize = 120;
/// Absent-identifier probes generated.
pub const IDENTIFIER_PROBES: usize = 90;
/// Lowest and highest dense floor the calibration may choose.
pub const DENSE_FLOOR_RANGE: (f32, f32) = (0.30, 0.70);
/// Highest identifier floor the calibration may choose.
pub const MAX_IDENTIFIER_FLOOR: f32 = 0.85;
/// Quantile of the in-corpus probes' best cosines the identifier floor reaches at least.
pub const IDENTIFIER_IN_CORPUS_QUANTILE: f32 = 0.75;
/// Distance kept between the highest off-topic score and the chosen floor.
pub const MARGIN: f32 = 0.02;

/// Generic questions no software manual answers, used as off-topic probes. (The evaluation's
/// off-topic sets are other questions: a floor tuned on these is tested on those.)
pub const OFF_TOPIC_PROBES: &[&str] = &[
    "How long does it take to walk around a lake of five kilometres?",
    "What wine goes well with grilled salmon?",
    "How do I fold a fitted sheet?",
    "Why do cats purr when they are content?",
    "What should I bring to a picnic in the park?",
    "Which mountains are the oldest on Earth?",
    "How often should a houseplant be watered in winter?",
    "Who invented the telephone?",
    "What is the recipe for a classic lemon tart?",
    "How do bees make honey?",
    "What is a good name for a golden retriever puppy?",
    "How many strings does a cello have?",
    "What causes thunder during a storm?",
    "Where can I see penguins in the wild?",
    "How do I clean a cast iron pan?",
    "What is the distance from Paris to Madrid by train?",
    "Who was the architect of the Sagrada Familia?",
    "What are the rules of chess castling?",
    "How do I improve my marathon time?",
    "What vegetables grow well in shade?",
    "Why is the sky blue at noon and red at sunset?",
    "How is cheese aged in caves?",
    "What are good exercises for back pain?",
    "Which birds migrate the longest distance?",
    "How do I write a wedding speech?",
    "What is the history of the Roman aqueducts?",
    "How can I stop my glasses from fogging up?",
    "What is the best season to visit Iceland?",
    "How do volcanoes form islands?",
    "Who composed the Four Seasons?",
    "What should I feed a pet rabbit?",
    "How do I patch a hole in drywall?",
    "What is the difference between a violin and a viola?",
    "How many bones are in the human hand?",
    "What are the ingredients of a margherita pizza?",
    "How do tides work?",
    "What is a good stretching routine before running?",
    "Which films won the most Academy Awards?",
    "How do I repot an orchid?",
    "What do astronauts eat in space?",
];

const VERBS: &[&str] = &[
    "fetch", "merge", "render", "reload", "drain", "pin", "stash", "refresh", "bind", "sweep", "tally", "rotate",
    "seal", "probe", "spawn", "splice", "thaw", "coalesce", "hydrate", "evict", "warm", "graft", "stamp", "prune",
];
const NOUNS: &[&str] = &[
    "ledger", "voucher", "widget", "beacon", "bundle", "pipeline", "shard", "quota", "tenant", "lease", "badge",
    "cart", "invoice", "sprite", "mesh", "ticket", "manifest", "payload", "cluster", "gateway", "webhook", "vault",
];
const OWNERS: &[&str] =
    &["store", "net", "core", "util", "data", "io", "app", "client", "server", "cache", "job", "model", "auth"];

/// Deterministic pseudo-questions from `chunks`: the chunks are ordered by content id (a
/// content hash), distinct texts kept, and every other probe is the section title (last header)
/// or the first sentence of the body (at most 24 words). At most `n`.
pub fn in_corpus_probes(chunks: &[Chunk], n: usize) -> Vec<String> {
    let mut order: Vec<&Chunk> = chunks.iter().collect();
    order.sort_by(|a, b| a.content_id.as_str().cmp(b.content_id.as_str()));
    order.dedup_by(|a, b| a.content_id == b.content_id);
    let mut out: Vec<String> = Vec::new();
    for c in order {
        if out.len() >= n {
            break;
        }
        let title = c.header_path.last().map(|t| t.trim().to_string()).unwrap_or_default();
        let body = c.text.split_once("\n\n").map_or(c.text.as_str(), |x| x.1);
        let sentence = first_sentence(body);
        let probe = if out.len().is_multiple_of(2) && title.chars().filter(|c| c.is_alphabetic()).count() >= 4 {
            title
        } else {
            sentence
        };
        if probe.chars().filter(|c| c.is_alphabetic()).count() >= 4 && !out.contains(&probe) {
            out.push(probe);
        }
    }
    out
}

fn first_sentence(body: &str) -> String {
    let end = body.find(". ").map_or(body.len(), |i| i + 1);
    body[..end].split_whitespace().take(24).collect::<Vec<_>>().join(" ")
}

/// Up to `n` identifiers made from generic programming words in four shapes (`verb_noun`,
/// `verbNoun`, `owner.verb_noun()`, `OWNER_NOUN_VERB`), half of them asked as a question, each
/// absent from `lexical`: neither the whole name nor its last component is a term of any chunk.
/// Deterministic.
pub fn absent_identifier_probes(lexical: &LexicalIndex, n: usize) -> Vec<String> {
    generic_absent_identifiers(lexical, n)
}

/// Up to `n` near misses: an owner the snapshot's chunks use in dotted names (`json` of
/// `json.dumps`) with an invented member made of two parts of the chunks' own snake_case names,
/// absent from `lexical` as a whole and as a last component. These look like the real thing and
/// score like it, which is what the identifier floor has to withstand. Deterministic.
pub fn near_miss_probes(chunks: &[Chunk], lexical: &LexicalIndex, n: usize) -> Vec<String> {
    use std::collections::BTreeSet;
    let mut order: Vec<&Chunk> = chunks.iter().collect();
    order.sort_by(|a, b| a.content_id.as_str().cmp(b.content_id.as_str()));
    let mut owners: BTreeSet<String> = BTreeSet::new();
    let mut parts: BTreeSet<String> = BTreeSet::new();
    for c in order.iter().take(2000) {
        for id in ragsnap_lexical::query_identifiers(&c.text) {
            let last = id.last.as_deref().unwrap_or(&id.whole);
            if let Some(owner) = id.last.as_deref().and_then(|l| id.whole.strip_suffix(l)) {
                let owner = owner.trim_end_matches(['.', ':']);
                if owner.len() >= 2 && owner.chars().all(|c| c.is_ascii_lowercase() || c == '.' || c == '_') {
                    owners.insert(owner.to_string());
                }
            }
            if last.trim_matches('_').contains('_') {
                for p in last.split('_').filter(|p| p.len() >= 3 && p.chars().all(|c| c.is_ascii_lowercase())) {
                    parts.insert(p.to_string());
                }
            }
        }
    }
    let (owners, parts): (Vec<String>, Vec<String>) = (owners.into_iter().collect(), parts.into_iter().collect());
    let mut out = Vec::new();
    if owners.is_empty() || parts.len() < 2 {
        return out;
    }
    for i in 0..n * 8 {
        if out.len() >= n {
            break;
        }
        let owner = &owners[(i * 7919) % owners.len()];
        let a = &parts[(i * 104_729) % parts.len()];
        let b = &parts[(i * 1_299_709 + 1) % parts.len()];
        if a == b {
            continue;
        }
        let member = format!("{a}_{b}");
        let whole = format!("{owner}.{member}");
        if lexical.doc_freq(&member) > 0 || lexical.doc_freq(&whole) > 0 {
            continue;
        }
        let probe = if i.is_multiple_of(2) { format!("{whole}()") } else { format!("how do I call {whole}()?") };
        if !out.contains(&probe) {
            out.push(probe);
        }
    }
    out
}

fn generic_absent_identifiers(lexical: &LexicalIndex, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    let total = VERBS.len() * NOUNS.len();
    // A stride coprime with the grid walks it in a scattered but fixed order.
    let stride = 97;
    for i in 0..total {
        if out.len() >= n {
            break;
        }
        let j = (i * stride) % total;
        let (verb, noun) = (VERBS[j % VERBS.len()], NOUNS[j / VERBS.len()]);
        let owner = OWNERS[j % OWNERS.len()];
        let cap = |s: &str| s[..1].to_uppercase() + &s[1..];
        let (ident, whole, last) = match i % 4 {
            0 => (format!("{verb}_{noun}"), format!("{verb}_{noun}"), None),
            1 => (format!("{verb}{}", cap(noun)), format!("{verb}{noun}"), None),
            2 => (format!("{owner}.{verb}_{noun}()"), format!("{owner}.{verb}_{noun}"), Some(format!("{verb}_{noun}"))),
            _ => {
                let e = format!("{}_{}_{}", owner, noun, verb).to_uppercase();
                (e.clone(), e.to_lowercase(), None)
            }
        };
        if lexical.doc_freq(&whole) > 0 || last.as_deref().is_some_and(|l| lexical.doc_freq(l) > 0) {
            continue;
        }
        out.push(if (i / 4).is_multiple_of(2) { ident } else { format!("what does {ident} do?") });
    }
    out
}

/// 21 quantiles (0%, 5%, …, 100%) of `v`, by linear interpolation; empty for an empty `v`.
pub fn quantiles(v: &[f32]) -> Vec<f32> {
    let mut s: Vec<f32> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return Vec::new();
    }
    s.sort_by(f32::total_cmp);
    (0..=20).map(|i| quantile_sorted(&s, i as f32 / 20.0)).collect()
}

fn quantile_sorted(s: &[f32], p: f32) -> f32 {
    let pos = p.clamp(0.0, 1.0) * (s.len() - 1) as f32;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(s.len() - 1);
    s[lo] + (s[hi] - s[lo]) * (pos - lo as f32)
}

/// The floors chosen from the probe scores (each slice: one best score per probe).
///
/// * dense: half-way between the highest off-topic cosine and the cosine that keeps
///   `keep_share` of the in-corpus probes (at least `MARGIN` above the former, never above the
///   latter), within [`DENSE_FLOOR_RANGE`];
/// * identifier: `MARGIN` above the highest absent-identifier cosine (every such probe is
///   refused) and at least the [`IDENTIFIER_IN_CORPUS_QUANTILE`] of the in-corpus probes (a hit
///   that does not hold the identifier the user pasted must match as closely as the corpus's own
///   near-verbatim pseudo-questions), at least the dense floor, at most
///   [`MAX_IDENTIFIER_FLOOR`]; it applies only to hits that miss an identifier of the query,
///   which an answerable identifier question rarely does;
/// * lexical: the default coverage floor, raised above the highest off-topic coverage
///   (`+ 0.05`, at most 0.95) when an off-topic probe reaches it.
///
/// Returns `(dense, identifier, lexical)`. With no probes of a kind, that side keeps `fallback`
/// (dense) or the default.
pub fn choose_floors(
    in_corpus: &[f32],
    off_topic: &[f32],
    off_topic_coverage: &[f32],
    absent_identifiers: &[f32],
    keep_share: f32,
    fallback: f32,
) -> (f32, f32, f32) {
    let sorted = |v: &[f32]| {
        let mut s: Vec<f32> = v.iter().copied().filter(|x| x.is_finite()).collect();
        s.sort_by(f32::total_cmp);
        s
    };
    let (inc, off, cov, ids) =
        (sorted(in_corpus), sorted(off_topic), sorted(off_topic_coverage), sorted(absent_identifiers));
    let cap = if inc.is_empty() { f32::INFINITY } else { quantile_sorted(&inc, 1.0 - keep_share.clamp(0.0, 1.0)) };
    let want = match off.last() {
        // Half-way between the highest off-topic cosine and the in-corpus quantile, so that
        // neither side sits at the edge.
        Some(&m) if cap.is_finite() => (m + MARGIN).max((m + cap) / 2.0),
        Some(&m) => m + MARGIN,
        None => fallback,
    };
    let dense = want.min(cap).clamp(DENSE_FLOOR_RANGE.0, DENSE_FLOOR_RANGE.1);
    // A hit without the identifier is accepted only on a match as close as the corpus's own
    // near-verbatim probes: at least their upper quartile.
    let upper = if inc.is_empty() { dense } else { quantile_sorted(&inc, IDENTIFIER_IN_CORPUS_QUANTILE) };
    let ident = ids.last().map_or(dense, |m| m + MARGIN).max(upper);
    let ident = ident.min(MAX_IDENTIFIER_FLOOR).max(dense);
    let lexical = match cov.last() {
        Some(&m) if m + 0.05 > ragsnap_lexical::DEFAULT_LEXICAL_FLOOR => (m + 0.05).min(0.95),
        _ => ragsnap_lexical::DEFAULT_LEXICAL_FLOOR,
    };
    (dense, ident, lexical)
}

/// Measure the probes on a snapshot about to be published and choose its floors. `None` for
/// a snapshot without chunks (nothing to measure: queries keep the model's defaults).
pub fn refusal_calibration(
    embedder: &dyn Embedder,
    chunks: &[Chunk],
    index: &Index,
    ef: usize,
    lexical: &LexicalIndex,
) -> Result<Option<RefusalCalibration>> {
    if chunks.is_empty() {
        return Ok(None);
    }
    let started = std::time::Instant::now();
    let inc = in_corpus_probes(chunks, IN_CORPUS_PROBES);
    let off: Vec<String> = OFF_TOPIC_PROBES.iter().map(|s| s.to_string()).collect();
    let mut ids = near_miss_probes(chunks, lexical, IDENTIFIER_PROBES / 2);
    ids.extend(absent_identifier_probes(lexical, IDENTIFIER_PROBES - ids.len()));
    let measure = |probes: &[String]| -> Result<(Vec<f32>, Vec<f32>)> {
        let mut cos = Vec::with_capacity(probes.len());
        let mut cov = Vec::with_capacity(probes.len());
        for batch in probes.chunks(64) {
            let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
            let vecs = embedder.embed_queries(&refs)?;
            for (p, v) in batch.iter().zip(&vecs) {
                cos.push(index.search(v, 10, ef.max(10)).first().map_or(-1.0, |h| h.1.clamp(-1.0, 1.0)));
                cov.push(lexical.search_hits(p, 10).iter().map(|h| h.coverage).fold(0f32, f32::max));
            }
        }
        Ok((cos, cov))
    };
    let (in_cos, in_cov) = measure(&inc)?;
    let (off_cos, off_cov) = measure(&off)?;
    let (id_cos, id_cov) = measure(&ids)?;
    let fallback = embedder.default_floor().unwrap_or(crate::FALLBACK_FLOOR);
    let (dense, ident, lex) = choose_floors(&in_cos, &off_cos, &off_cov, &id_cos, KEEP_SHARE, fallback);
    let scores = |n: usize, cos: &[f32], cov: &[f32]| ProbeScores {
        probes: n as u32,
        top1_cosine: quantiles(cos),
        top1_coverage: quantiles(cov),
    };
    let cal = RefusalCalibration {
        version: REFUSAL_CALIBRATION_VERSION,
        keep_share: KEEP_SHARE,
        dense_floor: dense,
        identifier_floor: ident,
        lexical_floor: lex,
        in_corpus: scores(inc.len(), &in_cos, &in_cov),
        off_topic: scores(off.len(), &off_cos, &off_cov),
        absent_identifiers: scores(ids.len(), &id_cos, &id_cov),
    };
    cal.check().map_err(|m| crate::Error::Invalid(format!("refusing to write the manifest: {m}")))?;
    tracing::info!(
        probes = inc.len() + off.len() + ids.len(),
        dense_floor = dense,
        identifier_floor = ident,
        lexical_floor = lex,
        seconds = started.elapsed().as_secs_f64(),
        "calibrated refusal floors"
    );
    Ok(Some(cal))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dense_floor_clears_off_topic_but_keeps_the_stated_share_of_in_corpus_probes() {
        let inc: Vec<f32> = (0..100).map(|i| 0.40 + i as f32 * 0.004).collect(); // 0.40 … 0.796
                                                                                 // Off-topic tops out at 0.38, 95% of in-corpus probes score 0.4198 or more: the floor
                                                                                 // sits half-way, at least MARGIN above the off-topic side.
        let (d, i, l) = choose_floors(&inc, &[0.2, 0.38], &[0.3], &[0.5, 0.55, 0.6], 0.95, 0.45);
        assert!((d - 0.40).abs() < 1e-6, "{d}");
        let (d, _, _) = choose_floors(&inc, &[0.2, 0.30], &[0.3], &[], 0.95, 0.45);
        assert!((d - (0.30 + 0.4198) / 2.0).abs() < 1e-4, "{d}");
        // The identifier floor: above every absent identifier (0.6 + MARGIN), raised to the
        // in-corpus upper quartile (0.697).
        assert!((i - 0.697).abs() < 1e-4, "{i}");
        let (_, i, _) = choose_floors(&inc, &[0.2], &[], &[0.75], 0.95, 0.45);
        assert!((i - (0.75 + MARGIN)).abs() < 1e-6, "{i}");
        assert_eq!(l, ragsnap_lexical::DEFAULT_LEXICAL_FLOOR);
        // Off-topic reaching 0.5 would refuse more than 5% of the in-corpus probes: capped at
        // their 5th percentile.
        let (d, _, _) = choose_floors(&inc, &[0.5], &[], &[], 0.95, 0.45);
        let kept = inc.iter().filter(|&&x| x >= d).count();
        assert!(kept >= 95, "floor {d} keeps {kept} of 100");
        assert!(d < 0.5);
        // Bounds, fallbacks and the identifier floor never below the dense one.
        let (d, i, _) = choose_floors(&[], &[], &[], &[], 0.95, 0.45);
        assert_eq!((d, i), (0.45, 0.45));
        let (d, i, _) = choose_floors(&[0.35; 10], &[0.05], &[], &[0.1], 0.95, 0.45);
        assert_eq!((d, i), (DENSE_FLOOR_RANGE.0, 0.35));
        let (_, i, _) = choose_floors(&[0.9; 10], &[0.5], &[], &[0.99], 0.95, 0.45);
        assert_eq!(i, MAX_IDENTIFIER_FLOOR);
        // An off-topic probe with a high coverage raises the lexical floor.
        let (_, _, l) = choose_floors(&inc, &[0.3], &[0.8], &[], 0.95, 0.45);
        assert!((l - 0.85).abs() < 1e-6);
    }

    #[test]
    fn quantiles_are_21_ascending_values() {
        let q = quantiles(&[3.0, 1.0, 2.0, f32::NAN]);
        assert_eq!(q.len(), 21);
        assert_eq!((q[0], q[10], q[20]), (1.0, 2.0, 3.0));
        assert!(q.windows(2).all(|w| w[0] <= w[1]));
        assert!(quantiles(&[]).is_empty());
    }

    #[test]
    fn probes_are_deterministic_and_identifiers_absent() {
        let lex = LexicalIndex::build(&["fetch_ledger is documented here", "nothing else"]);
        let a = absent_identifier_probes(&lex, 40);

        assert_eq!(a, absent_identifier_probes(&lex, 40));
        assert_eq!(a.len(), 40);
        assert!(a.iter().all(|p| !p.contains("fetch_ledger")), "{a:?}");
        for p in &a {
            let ids = ragsnap_lexical::query_identifiers(p);
            assert_eq!(ids.len(), 1, "{p:?} is one identifier");
        }
    }

    #[test]
    fn near_misses_use_the_corpus_owners_and_are_absent() {
        let texts = [
            "json > dumps\n\nCall json.dumps() or json.load_file() with read_bytes.",
            "os > path\n\nos.path.join_all() is not here but os.getcwd() and write_text are.",
        ];
        let chunks: Vec<Chunk> = texts
            .iter()
            .map(|t| Chunk {
                content_id: ragsnap_core::ContentId::of_text(t),
                text: t.to_string(),
                source_path: "p.html".into(),
                url: None,
                header_path: vec![],
                byte_range: (0, 0),
                line_range: (1, 1),
                tokens: 10,
            })
            .collect();
        let refs: Vec<&str> = texts.to_vec();
        let lex = LexicalIndex::build(&refs);
        let p = near_miss_probes(&chunks, &lex, 10);
        assert!(!p.is_empty());
        assert_eq!(p, near_miss_probes(&chunks, &lex, 10));
        for q in &p {
            let ids = ragsnap_lexical::query_identifiers(q);
            assert_eq!(ids.len(), 1, "{q}");
            let owner = ids[0].whole.rsplit_once('.').unwrap().0.to_string();
            assert!(["json", "os", "os.path"].contains(&owner.as_str()), "{q}");
            assert_eq!(lex.doc_freq(ids[0].last.as_deref().unwrap()), 0, "{q}");
        }
    }
}
