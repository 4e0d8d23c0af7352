//! The refusal evaluation: answerable questions and three kinds of unanswerable ones, asked
//! through the library's query path ([`Searcher::query_embedded`], what `Searcher::query` and so
//! the CLI run after embedding), in each mode, with the snapshot's own floors and with the floors
//! switched off. See `eval/README.md`.

use anyhow::{Context, Result};
use ragsnap::{Answer, Mode, QueryOptions, QueryResult, Searcher};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Rank cut-off.
const K: usize = 10;
/// The unanswerable kinds, in table order.
pub const KINDS: [&str; 3] = ["offtopic", "foreign", "near_miss"];
/// The halves: `tune` (floors may be chosen on it) and `held` (reported, never tuned on).
pub const SPLITS: [&str; 2] = ["held", "tune"];

#[derive(Deserialize)]
struct Unanswerable {
    kind: String,
    split: String,
    query: String,
}

/// One answerable question.
pub struct Answerable<'a> {
    /// The question.
    pub query: &'a str,
    /// `tune` or `held`.
    pub split: &'static str,
    /// Relevant pages.
    pub relevant: &'a [u32],
    /// Its vector (from the snapshot's embedder).
    pub vector: &'a [f32],
}

/// What one mode did on one half.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Row {
    /// Answerable questions.
    pub answerable: usize,
    /// Answerable questions refused outright.
    pub refused: usize,
    /// Answerable questions whose relevant page was in the top 10 without floors but not with them.
    pub lost_at_10: usize,
    /// Page recall@10 and MRR@10 with the floors.
    pub recall: f64,
    /// MRR@10 with the floors.
    pub mrr: f64,
    /// Page recall@10 without floors.
    pub recall_unfloored: f64,
    /// MRR@10 without floors.
    pub mrr_unfloored: f64,
    /// Per unanswerable kind: (asked, refused).
    pub unanswerable: BTreeMap<String, (usize, usize)>,
}

/// The whole refusal report.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// Floors the snapshot recorded (manifest `calibration.refusal`), if any.
    pub calibration: Option<ragsnap::store::RefusalCalibration>,
    /// mode → split → row.
    pub modes: BTreeMap<String, BTreeMap<String, Row>>,
    /// Hybrid, held half: unanswerable questions answered, with the best hit's confidence.
    pub answered_examples: Vec<(String, String, f32)>,
}

fn pages_of(r: &QueryResult, pages: &HashMap<String, u32>) -> Vec<u32> {
    match &r.answer {
        Answer::Hits { hits } => hits.iter().filter_map(|h| pages.get(&h.source_path).copied()).collect(),
        Answer::NoConfidentMatch { .. } => Vec::new(),
    }
}

fn score(found_pages: &[u32], relevant: &[u32]) -> (f64, f64) {
    let mut found: Vec<u32> = Vec::new();
    let mut rr = 0.0;
    for (i, p) in found_pages.iter().take(K).enumerate() {
        if relevant.contains(p) {
            if rr == 0.0 {
                rr = 1.0 / (i + 1) as f64;
            }
            if !found.contains(p) {
                found.push(*p);
            }
        }
    }
    (found.len() as f64 / relevant.len().clamp(1, K) as f64, rr)
}

/// Run the evaluation; `embedder` is the snapshot's (the searcher checked it).
pub fn evaluate(
    searcher: &Searcher,
    embedder: &dyn ragsnap::Embedder,
    answerable: &[Answerable<'_>],
    pages: &HashMap<String, u32>,
    unanswerable: &Path,
) -> Result<Report> {
    let raw = std::fs::read_to_string(unanswerable).with_context(|| format!("read {}", unanswerable.display()))?;
    let mut un: Vec<Unanswerable> = Vec::new();
    for (n, line) in raw.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let u: Unanswerable = serde_json::from_str(line)
            .with_context(|| format!("{} line {}: not an unanswerable question", unanswerable.display(), n + 1))?;
        un.push(u);
    }
    let mut vecs: Vec<Vec<f32>> = Vec::with_capacity(un.len());
    for b in un.chunks(64) {
        let refs: Vec<&str> = b.iter().map(|u| u.query.as_str()).collect();
        vecs.extend(embedder.embed_queries(&refs)?);
    }
    let fp = embedder.fingerprint();
    let mut report =
        Report { calibration: searcher.snapshot().manifest().calibration.refusal.clone(), ..Report::default() };
    for mode in [Mode::Dense, Mode::Lexical, Mode::Hybrid] {
        let floored = QueryOptions { mode, k: K, max_per_source: K, ..QueryOptions::default() };
        let open = QueryOptions { floor: Some(-1.0), lexical_floor: Some(0.0), ..floored.clone() };
        let mut rows: BTreeMap<String, Row> = BTreeMap::new();
        let mut sums: BTreeMap<&str, [f64; 4]> = BTreeMap::new();
        for a in answerable {
            let with = searcher.query_embedded(a.query, a.vector, fp, &floored)?;
            let without = searcher.query_embedded(a.query, a.vector, fp, &open)?;
            let (r1, m1) = score(&pages_of(&with, pages), a.relevant);
            let (r0, m0) = score(&pages_of(&without, pages), a.relevant);
            let row = rows.entry(a.split.to_string()).or_default();
            row.answerable += 1;
            row.refused += usize::from(matches!(with.answer, Answer::NoConfidentMatch { .. }));
            row.lost_at_10 += usize::from(r0 > 0.0 && r1 == 0.0);
            let s = sums.entry(a.split).or_default();
            s[0] += r1;
            s[1] += m1;
            s[2] += r0;
            s[3] += m0;
        }
        for (split, s) in sums {
            let row = rows.entry(split.to_string()).or_default();
            let n = row.answerable.max(1) as f64;
            (row.recall, row.mrr, row.recall_unfloored, row.mrr_unfloored) = (s[0] / n, s[1] / n, s[2] / n, s[3] / n);
        }
        for (u, v) in un.iter().zip(&vecs) {
            let r = searcher.query_embedded(&u.query, v, fp, &floored)?;
            let refused = matches!(r.answer, Answer::NoConfidentMatch { .. });
            let e = rows.entry(u.split.clone()).or_default().unanswerable.entry(u.kind.clone()).or_default();
            e.0 += 1;
            e.1 += usize::from(refused);
            if let (Mode::Hybrid, "held", Answer::Hits { hits }) = (mode, u.split.as_str(), &r.answer) {
                report.answered_examples.push((u.kind.clone(), u.query.clone(), hits[0].confidence));
            }
        }
        report.modes.insert(format!("{mode:?}").to_lowercase(), rows);
    }
    Ok(report)
}

/// Print the report as Markdown tables.
pub fn print(r: &Report) {
    println!("\n## Refusals (library query path, k 10)\n");
    if let Some(c) = &r.calibration {
        println!(
            "snapshot floors (calibrated at build time): dense {:.3}, identifier {:.3}, lexical {:.2}; \
             in-corpus probes {} (median best cosine {:.3}), off-topic probes {} (max {:.3}), \
             absent identifiers {} (median {:.3}, max {:.3})\n",
            c.dense_floor,
            c.identifier_floor,
            c.lexical_floor,
            c.in_corpus.probes,
            c.in_corpus.top1_cosine.get(10).copied().unwrap_or(f32::NAN),
            c.off_topic.probes,
            c.off_topic.top1_cosine.last().copied().unwrap_or(f32::NAN),
            c.absent_identifiers.probes,
            c.absent_identifiers.top1_cosine.get(10).copied().unwrap_or(f32::NAN),
            c.absent_identifiers.top1_cosine.last().copied().unwrap_or(f32::NAN),
        );
    } else {
        println!("snapshot has no refusal calibration: model default floors\n");
    }
    for split in SPLITS {
        let title = if split == "held" { "held-back half" } else { "tuning half" };
        println!("| {title} | off-topic refused | foreign identifiers refused | near misses refused | answerable refused | answerable lost at recall@10 | recall@10 (without floors) | MRR@10 (without floors) |");
        println!("|---|---:|---:|---:|---:|---:|---:|---:|");
        for (mode, rows) in &r.modes {
            let Some(row) = rows.get(split) else { continue };
            let un = |k: &str| {
                row.unanswerable.get(k).map_or("–".to_string(), |&(n, refused)| {
                    format!("{:.1}% ({refused}/{n})", 100.0 * refused as f64 / n.max(1) as f64)
                })
            };
            let share =
                |x: usize| format!("{:.1}% ({x}/{})", 100.0 * x as f64 / row.answerable.max(1) as f64, row.answerable);
            println!(
                "| {mode} | {} | {} | {} | {} | {} | {:.3} ({:.3}) | {:.3} ({:.3}) |",
                un(KINDS[0]),
                un(KINDS[1]),
                un(KINDS[2]),
                share(row.refused),
                share(row.lost_at_10),
                row.recall,
                row.recall_unfloored,
                row.mrr,
                row.mrr_unfloored
            );
        }
        println!();
    }
    let mut ex = r.answered_examples.clone();
    ex.sort_by(|a, b| b.2.total_cmp(&a.2));
    for (kind, q, c) in ex.iter().take(12) {
        eprintln!("hybrid answered held {kind} question {q:?} (confidence {c:.2})");
    }
}
