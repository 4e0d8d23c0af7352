//! Range checks of every setting, in one place: [`Config::validate`] for `ragsnap.toml` (called
//! by [`Config::load`], by [`crate::rebuild_with`] and by [`crate::open_embedder`]) and
//! [`QueryOptions::validate`] for a query (called by [`crate::Searcher::query`]). A value out
//! of range is [`Error::InvalidSetting`] naming the key; the `ragsnap` binary exits 2 (usage).

use crate::config::{
    BoilerplateSettings, CacheVerifySettings, ChunkerConfig, GateConfig, IngestConfig, QueryDefaults, RuntimeConfig,
};
use crate::{Config, Error, QueryOptions, Result};
use ragsnap_index::TuneConfig;

/// Largest `k` (and `max_k`) any query may ask for.
pub const MAX_K_LIMIT: usize = 10_000;
/// Largest `ef_search` / `ef_construction` accepted.
pub const MAX_EF: usize = 100_000;
/// Threads and sessions are capped at this many per core the machine has.
pub const THREADS_PER_CORE_LIMIT: usize = 4;

fn bad(key: &str, message: impl Into<String>) -> Error {
    Error::InvalidSetting { key: key.to_string(), message: message.into() }
}

fn int_range(key: &str, v: usize, lo: usize, hi: usize) -> Result<()> {
    if v < lo || v > hi {
        return Err(bad(key, format!("must be between {lo} and {hi} (got {v})")));
    }
    Ok(())
}

/// A finite number in `[lo, hi]` (`open_lo`: strictly above `lo`).
fn real_range(key: &str, v: f64, lo: f64, hi: f64, open_lo: bool) -> Result<()> {
    let below = if open_lo { v <= lo } else { v < lo };
    if !v.is_finite() || below || v > hi {
        let interval = if open_lo { format!("({lo}, {hi}]") } else { format!("[{lo}, {hi}]") };
        return Err(bad(key, format!("must be a finite number in {interval} (got {v})")));
    }
    Ok(())
}

fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// A floor: a cosine, so a finite number in [-1, 1].
pub(crate) fn check_floor(key: &str, v: f32) -> Result<()> {
    real_range(key, f64::from(v), -1.0, 1.0, false)
}

impl RuntimeConfig {
    /// Threads and sessions within [`THREADS_PER_CORE_LIMIT`] × the machine's cores (each bulk
    /// session holds its own copy of the weights), batches of 1 to 1024 texts.
    pub fn validate(&self) -> Result<()> {
        let cap = THREADS_PER_CORE_LIMIT * cores();
        let hint = format!("0 = one per core; at most {THREADS_PER_CORE_LIMIT} × the {} cores here", cores());
        if self.intra_threads > cap {
            return Err(bad("runtime.intra_threads", format!("{} is too many ({hint})", self.intra_threads)));
        }
        if self.bulk_sessions > cap {
            return Err(bad("runtime.bulk_sessions", format!("{} is too many ({hint})", self.bulk_sessions)));
        }
        int_range("runtime.batch_size", self.batch_size, 1, 1024)?;
        if let Some(name) = &self.model {
            if self.model_dir.is_some() {
                return Err(bad(
                    "runtime.model",
                    format!("both a model name ({name:?}) and a model folder are given; choose one"),
                ));
            }
            ragsnap_embed::catalog::lookup(name).map_err(|e| bad("runtime.model", e.to_string()))?;
        }
        Ok(())
    }

    /// The model folder this configuration names: `model_dir` as given, a catalogued `model`'s
    /// folder in the `make setup` cache, or `None` (then `RAGSNAP_MODEL_DIR`, then the cache's
    /// default model, as [`ragsnap_embed::Runtime::resolve`] finds them).
    pub fn model_folder(&self) -> Result<Option<std::path::PathBuf>> {
        self.validate()?;
        match (&self.model, &self.model_dir) {
            (Some(name), _) => Ok(Some(ragsnap_embed::catalog::model_dir(name)?)),
            (None, Some(dir)) => Ok(Some(dir.clone())),
            (None, None) => Ok(None),
        }
    }
}

impl IngestConfig {
    /// Both limits at least 1 byte.
    pub fn validate(&self) -> Result<()> {
        if self.max_bytes == 0 {
            return Err(bad("ingest.max_bytes", "must be at least 1"));
        }
        if self.max_inflight_bytes == 0 {
            return Err(bad("ingest.max_inflight_bytes", "must be at least 1"));
        }
        Ok(())
    }
}

impl ChunkerConfig {
    /// `min_tokens ≤ target_tokens ≤ max_tokens`, target at least 1, max at most 65536.
    pub fn validate(&self) -> Result<()> {
        int_range("chunker.max_tokens", self.max_tokens, 1, 65_536)?;
        int_range("chunker.target_tokens", self.target_tokens, 1, self.max_tokens)?;
        int_range("chunker.min_tokens", self.min_tokens, 0, self.target_tokens)
    }
}

impl BoilerplateSettings {
    /// A block must recur on at least 2 pages; the share is in (0, 1].
    pub fn validate(&self) -> Result<()> {
        int_range("boilerplate.min_pages", self.min_pages, 2, usize::MAX)?;
        real_range("boilerplate.min_share", self.min_share, 0.0, 1.0, true)
    }
}

impl QueryDefaults {
    /// `1 ≤ k ≤ max_k ≤` [`MAX_K_LIMIT`], floor in [-1, 1], `max_per_source ≥ 1`.
    pub fn validate(&self) -> Result<()> {
        int_range("query.max_k", self.max_k, 1, MAX_K_LIMIT)?;
        int_range("query.k", self.k, 1, self.max_k)?;
        if let Some(f) = self.floor {
            check_floor("query.floor", f)?;
        }
        int_range("query.max_per_source", self.max_per_source, 1, usize::MAX)
    }
}

impl GateConfig {
    /// Shares in [0, 1], at least one probe, `golden_k ≥ 1`, tolerance in [0, 1].
    pub fn validate(&self) -> Result<()> {
        real_range("gates.max_removed_share", self.max_removed_share, 0.0, 1.0, false)?;
        real_range("gates.max_failure_share", self.max_failure_share, 0.0, 1.0, false)?;
        real_range("gates.max_hub_share", self.max_hub_share, 0.0, 1.0, false)?;
        real_range("gates.max_boilerplate_share", self.max_boilerplate_share, 0.0, 1.0, false)?;
        int_range("gates.hub_probes", self.hub_probes, 1, 100_000)?;
        int_range("gates.golden_k", self.golden_k, 1, MAX_K_LIMIT)?;
        real_range("gates.golden_tolerance", self.golden_tolerance, 0.0, 1.0, false)
    }
}

impl CacheVerifySettings {
    /// Shares in [0, 1], the cosine in (0, 1].
    pub fn validate(&self) -> Result<()> {
        real_range("cache.sample_share", self.sample_share, 0.0, 1.0, false)?;
        real_range("cache.min_cosine", f64::from(self.min_cosine), 0.0, 1.0, true)?;
        real_range("cache.max_mismatch_share", self.max_mismatch_share, 0.0, 1.0, false)
    }
}

/// `[index]`: sample and `k` at least 1, recall target in (0, 1], `update_max_deleted_share` in
/// [0, 0.5], a non-empty ladder with
/// `M` in 2..=256 and `ef_construction` in 1..=[`MAX_EF`], `ef` candidates in 1..=[`MAX_EF`]
/// with at least one reaching `k`.
pub fn validate_index(c: &TuneConfig) -> Result<()> {
    int_range("index.sample", c.sample, 1, 1_000_000)?;
    int_range("index.k", c.k, 1, 1000)?;
    real_range("index.update_max_deleted_share", c.update_max_deleted_share, 0.0, 0.5, false)?;
    real_range("index.target_recall", c.target_recall, 0.0, 1.0, true)?;
    if c.ladder.is_empty() {
        return Err(bad("index.ladder", "must list at least one { m, ef_construction }"));
    }
    for (i, p) in c.ladder.iter().enumerate() {
        int_range(&format!("index.ladder[{i}].m"), p.m, 2, 256)?;
        int_range(&format!("index.ladder[{i}].ef_construction"), p.ef_construction, 1, MAX_EF)?;
    }
    for (i, ef) in c.ef_candidates.iter().enumerate() {
        int_range(&format!("index.ef_candidates[{i}]"), *ef, 1, MAX_EF)?;
    }
    if !c.ef_candidates.iter().any(|&ef| ef >= c.k) {
        return Err(bad("index.ef_candidates", format!("must hold at least one value ≥ index.k ({})", c.k)));
    }
    Ok(())
}

impl Config {
    /// Check every setting's range; the first one out of range is [`Error::InvalidSetting`]
    /// naming its key (`query.k`, `gates.max_hub_share`, ...).
    pub fn validate(&self) -> Result<()> {
        self.runtime.validate()?;
        self.ingest.validate()?;
        self.chunker.validate()?;
        self.boilerplate.validate()?;
        validate_index(&self.index)?;
        self.query.validate()?;
        self.gates.validate()?;
        self.cache.validate()?;
        self.gc.validate()?;
        for (i, s) in self.sources.iter().enumerate() {
            if s.dir.as_os_str().is_empty() {
                return Err(bad(&format!("sources[{i}].dir"), "must not be empty"));
            }
            if let Some(p) = &s.url_prefix {
                crate::sources::parse_url_prefix(p).map_err(|m| bad(&format!("sources[{i}].url_prefix"), m))?;
            }
        }
        Ok(())
    }
}

impl QueryOptions {
    /// `1 ≤ k ≤ max_k ≤` [`MAX_K_LIMIT`], floors finite (cosine in [-1, 1], lexical share in
    /// [0, 1], percentile in [0, 100]), `rrf_k` finite and above 0, `ef` in 1..=[`MAX_EF`],
    /// `max_per_source ≥ 1`.
    pub fn validate(&self) -> Result<()> {
        int_range("max_k", self.max_k, 1, MAX_K_LIMIT)?;
        int_range("k", self.k, 1, self.max_k)?;
        if let Some(f) = self.floor {
            check_floor("floor", f)?;
        }
        if let Some(p) = self.floor_percentile {
            real_range("floor_percentile", f64::from(p), 0.0, 100.0, false)?;
        }
        if let Some(l) = self.lexical_floor {
            real_range("lexical_floor", f64::from(l), 0.0, 1.0, false)?;
        }
        real_range("rrf_k", f64::from(self.rrf_k), 0.0, 1e6, true)?;
        if let Some(ef) = self.ef {
            int_range("ef", ef, 1, MAX_EF)?;
        }
        int_range("max_per_source", self.max_per_source, 1, usize::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(r: Result<()>) -> String {
        match r {
            Err(Error::InvalidSetting { key, message }) => {
                assert!(!message.is_empty());
                key
            }
            other => panic!("expected InvalidSetting, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
        QueryOptions::default().validate().unwrap();
    }

    #[test]
    fn each_bad_value_names_its_key() {
        type Edit = fn(&mut Config);
        let cases: Vec<(&str, Edit)> = vec![
            ("runtime.bulk_sessions", |c| c.runtime.bulk_sessions = 100_000),
            ("runtime.intra_threads", |c| c.runtime.intra_threads = 100_000),
            ("runtime.batch_size", |c| c.runtime.batch_size = 0),
            ("ingest.max_bytes", |c| c.ingest.max_bytes = 0),
            ("ingest.max_inflight_bytes", |c| c.ingest.max_inflight_bytes = 0),
            ("chunker.target_tokens", |c| c.chunker.target_tokens = 300),
            ("chunker.min_tokens", |c| c.chunker.min_tokens = 250),
            ("boilerplate.min_share", |c| c.boilerplate.min_share = f64::NAN),
            ("boilerplate.min_pages", |c| c.boilerplate.min_pages = 0),
            ("index.target_recall", |c| c.index.target_recall = 1.5),
            ("index.target_recall", |c| c.index.target_recall = 0.0),
            ("index.k", |c| c.index.k = 0),
            ("index.update_max_deleted_share", |c| c.index.update_max_deleted_share = 0.9),
            ("index.update_max_deleted_share", |c| c.index.update_max_deleted_share = f64::NAN),
            ("index.ladder", |c| c.index.ladder.clear()),
            ("index.ladder[0].m", |c| c.index.ladder[0].m = 1000),
            ("index.ef_candidates", |c| c.index.ef_candidates = vec![2, 4]),
            ("query.k", |c| c.query.k = 0),
            ("query.k", |c| c.query.k = 51),
            ("query.floor", |c| c.query.floor = Some(-5.0)),
            ("query.floor", |c| c.query.floor = Some(2.0)),
            ("query.floor", |c| c.query.floor = Some(f32::NAN)),
            ("query.max_per_source", |c| c.query.max_per_source = 0),
            ("gates.max_hub_share", |c| c.gates.max_hub_share = -0.1),
            ("gates.max_removed_share", |c| c.gates.max_removed_share = f64::INFINITY),
            ("gates.hub_probes", |c| c.gates.hub_probes = 0),
            ("gates.golden_k", |c| c.gates.golden_k = 0),
            ("cache.min_cosine", |c| c.cache.min_cosine = 1.5),
            ("cache.max_mismatch_share", |c| c.cache.max_mismatch_share = 2.0),
        ];
        for (want, edit) in cases {
            let mut c = Config::default();
            edit(&mut c);
            assert_eq!(key_of(c.validate()), want);
        }
    }

    #[test]
    fn bad_query_options_name_their_option() {
        type Edit = fn(&mut QueryOptions);
        let cases: Vec<(&str, Edit)> = vec![
            ("k", |o| o.k = 0),
            ("k", |o| o.k = 51),
            ("floor", |o| o.floor = Some(-1.5)),
            ("floor", |o| o.floor = Some(f32::NAN)),
            ("floor_percentile", |o| o.floor_percentile = Some(101.0)),
            ("lexical_floor", |o| o.lexical_floor = Some(-0.1)),
            ("rrf_k", |o| o.rrf_k = 0.0),
            ("ef", |o| o.ef = Some(0)),
            ("max_per_source", |o| o.max_per_source = 0),
            ("max_k", |o| o.max_k = 0),
        ];
        for (want, edit) in cases {
            let mut o = QueryOptions::default();
            edit(&mut o);
            assert_eq!(key_of(o.validate()), want);
        }
    }

    #[test]
    fn unknown_keys_are_rejected_in_every_section() {
        for section in ["runtime", "ingest", "chunker", "boilerplate", "index", "query", "gates", "cache"] {
            let text = format!("[{section}]\nno_such_setting = 1\n");
            let err = toml::from_str::<Config>(&text).expect_err(section);
            assert!(err.to_string().contains("no_such_setting"), "{section}: {err}");
        }
    }
}
