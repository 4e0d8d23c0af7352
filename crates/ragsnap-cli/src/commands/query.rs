//! `ragsnap query`.

use super::Ctx;
use crate::exit::ExitKind;
use crate::output::{outln, print_json, query_json};
use anyhow::Result;
use ragsnap::{Answer, Mode, QueryOptions};
use std::time::Instant;

/// The query flags; unset ones come from `[query]` of the config, then the library defaults.
pub struct QueryFlags {
    pub k: Option<u32>,
    pub floor: Option<f32>,
    pub floor_percentile: Option<f32>,
    pub ef: Option<u32>,
    pub mode: Mode,
    pub lexical_floor: Option<f32>,
    pub rrf_k: Option<f32>,
}

impl QueryFlags {
    /// Flags over the config's `[query]` section over the defaults.
    fn options(&self, ctx: &Ctx) -> QueryOptions {
        let mut o = ctx.config.query.options();
        o.mode = self.mode;
        o.lexical_floor = self.lexical_floor.or(o.lexical_floor);
        o.rrf_k = self.rrf_k.unwrap_or(o.rrf_k);
        o.k = self.k.map_or(o.k, |k| k as usize);
        o.floor = self.floor.or(o.floor);
        o.floor_percentile = self.floor_percentile.or(o.floor_percentile);
        o.ef = self.ef.map(|e| e as usize).or(o.ef);
        o
    }
}

/// Answer `text` from `snapshot` (default head). Lexical mode loads no model.
pub fn run(ctx: &Ctx, text: &str, flags: &QueryFlags, snapshot: Option<&str>) -> Result<ExitKind> {
    let opts = flags.options(ctx);
    opts.validate()?;
    let t = Instant::now();
    let searcher = ragsnap::open_searcher(&ctx.store_path, snapshot, &ctx.config.runtime, opts.mode)?;
    tracing::info!("snapshot {} opened in {:.2}s", searcher.snapshot().id(), t.elapsed().as_secs_f64());
    let t = Instant::now();
    let result = searcher.query(text, &opts)?;
    tracing::info!("query answered in {:.3}s", t.elapsed().as_secs_f64());
    let refused = matches!(result.answer, Answer::NoConfidentMatch { .. });
    if ctx.json {
        print_json(&query_json(&result)?)?;
    } else {
        match &result.answer {
            Answer::Hits { hits } => {
                outln!(
                    "snapshot {}  mode {:?}  floor {:.2}{}",
                    result.snapshot_id,
                    result.mode,
                    result.floor,
                    result.lexical_floor.map(|l| format!(" (lexical {l:.2})")).unwrap_or_default()
                );
                for (i, h) in hits.iter().enumerate() {
                    let mut why = Vec::new();
                    if let Some(c) = h.signals.dense_score {
                        why.push(format!("cosine {c:.3}"));
                    }
                    if let Some(c) = h.signals.lexical_coverage {
                        why.push(format!("lexical {c:.2}"));
                    }
                    outln!(
                        "{:>2}. {}  [{}]  {}; supported by {}",
                        i + 1,
                        h.source_path,
                        h.header_path.join(" > "),
                        why.join(", "),
                        h.signals.supported_by.join(" + ")
                    );
                    let body: String = h.text.lines().skip(2).collect::<Vec<_>>().join(" ");
                    let short: String = body.chars().take(160).collect();
                    outln!("    {short}{}", if body.chars().count() > 160 { "…" } else { "" });
                }
            }
            Answer::NoConfidentMatch { best_score } => {
                outln!(
                    "no confident match in snapshot {} (best score {}, floor {:.2})",
                    result.snapshot_id,
                    best_score.map(|s| format!("{s:.3}")).unwrap_or_else(|| "none".into()),
                    result.floor
                );
            }
        }
    }
    Ok(if refused { ExitKind::Refused } else { ExitKind::Ok })
}
