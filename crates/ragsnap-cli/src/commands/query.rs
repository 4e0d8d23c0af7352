//! `ragsnap query`.

use super::Ctx;
use crate::exit::ExitKind;
use crate::output::{self, print_json, query_json};
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
        output::query(&result)?;
    }
    Ok(if refused { ExitKind::Refused } else { ExitKind::Ok })
}
