//! `ragsnap.toml`: every setting with its default, one type per concern.
//!
//! **Precedence, everywhere:** a command-line flag, else a `RAGSNAP_*` environment variable,
//! else the config file, else the built-in default. [`Config::resolve`] applies the file and
//! the environment ([`Config::apply_env`]); the `ragsnap` binary then applies its flags on top.
//! The environment variables are `RAGSNAP_STORE`, `RAGSNAP_ORT_LIB`, `RAGSNAP_MODEL` and
//! `RAGSNAP_MODEL_DIR`.
//!
//! **The model** is chosen by catalogue name (`[runtime] model`, `RAGSNAP_MODEL`, `--model`)
//! or by folder (`model_dir`, `RAGSNAP_MODEL_DIR`, `--model-dir`); a higher layer's choice
//! replaces a lower one's, and both set at the same layer is an error.
//!
//! **Defaults are written once.** Each section's default comes from the library type it
//! configures ([`ragsnap_chunk::ChunkConfig`], [`ragsnap_chunk::BoilerplateConfig`],
//! [`ragsnap_chunk::IngestLimits`], [`crate::QueryOptions`]), and the section converts into
//! that type, so the file, the library and the CLI cannot drift apart.
//!
//! **Relative paths in a file** (`store`, `[runtime] ort_lib` / `model_dir`, `[[sources]] dir`,
//! `[gates] golden`) are resolved against the folder holding the file, not the current folder,
//! so `ragsnap --config /srv/ragsnap/ragsnap.toml` means the same from any folder (cron).

use crate::{Error, Result};
use ragsnap_index::TuneConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Whole configuration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Store folder (default `$RAGSNAP_STORE`, else `./ragsnap-store`).
    pub store: Option<PathBuf>,
    /// Where ONNX Runtime and the model are, and how to run it.
    pub runtime: RuntimeConfig,
    /// Document sources for `rebuild`.
    pub sources: Vec<SourceConfig>,
    /// Which files of the source folders are read (`[source]`).
    pub source: crate::sources::SourceSelection,
    /// Per-document ingest limits.
    pub ingest: IngestConfig,
    /// Chunk sizes.
    pub chunker: ChunkerConfig,
    /// Corpus-level boilerplate removal.
    pub boilerplate: BoilerplateSettings,
    /// Index tuning.
    pub index: TuneConfig,
    /// Query defaults.
    pub query: QueryDefaults,
    /// Gates a build must pass before it is promoted.
    pub gates: GateConfig,
    /// How a rebuild checks the embedding cache before it trusts it.
    pub cache: CacheVerifySettings,
    /// What `ragsnap gc` keeps.
    pub gc: GcSettings,
}

/// `[gc]`: what `ragsnap gc` keeps when its flags do not say (head, pinned snapshots and
/// snapshots open by a reader are always kept).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GcSettings {
    /// Newest ready snapshots kept (`--keep`).
    pub keep: usize,
    /// Rejected builds younger than this are kept for inspection (`--keep-rejected-for`), as a
    /// duration: `7d`, `12h`, `30m`, `90s`, `2w`.
    pub keep_rejected_for: String,
}

impl Default for GcSettings {
    fn default() -> Self {
        GcSettings { keep: 5, keep_rejected_for: "7d".into() }
    }
}

impl GcSettings {
    /// `keep_rejected_for` in seconds.
    pub fn keep_rejected_secs(&self) -> Result<i64> {
        parse_duration(&self.keep_rejected_for)
            .map_err(|message| Error::InvalidSetting { key: "gc.keep_rejected_for".into(), message })
    }

    /// `keep_rejected_for` is a duration [`parse_duration`] accepts.
    pub fn validate(&self) -> Result<()> {
        self.keep_rejected_secs().map(|_| ())
    }
}

/// Longest duration accepted: 100 years, in seconds.
pub const MAX_DURATION_SECS: i64 = 100 * 366 * 86_400;

/// `7d`, `12h`, `30m`, `90s`, `2w` as seconds (a unit is required; at most 100 years).
pub fn parse_duration(s: &str) -> std::result::Result<i64, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num.parse().map_err(|_| format!("bad duration {s:?} (use e.g. 7d, 12h, 30m)"))?;
    let mult: i64 = match unit {
        "" => return Err(format!("duration {s:?} has no unit (use s, m, h, d or w, e.g. {s}d)")),
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(format!("bad duration unit in {s:?} (use s, m, h, d or w)")),
    };
    n.checked_mul(mult)
        .filter(|v| *v <= MAX_DURATION_SECS)
        .ok_or_else(|| format!("duration {s:?} is out of range (at most 100 years)"))
}

/// `[gates]`: what a nightly build must pass to replace head. Each is reported with its
/// measured value and threshold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GateConfig {
    /// Most of head's documents (or chunks) a build may lose, as a share.
    pub max_removed_share: f64,
    /// Most documents that may fail to parse, as a share of documents read.
    pub max_failure_share: f64,
    /// Most probe queries one chunk text may appear in the top 10 of, as a share; for small
    /// corpora the bound is raised to 8 × 10 / chunks (chance alone puts every chunk in 10 / chunks
    /// of the top-10 lists, and broad mixed-topic chunks reach several times that).
    pub max_hub_share: f64,
    /// Probe queries sampled from the snapshot's own chunks for the hubness gate.
    pub hub_probes: usize,
    /// Most of the corpus's blocks that may be boilerplate, as a share.
    pub max_boilerplate_share: f64,
    /// Optional `golden.jsonl`: `{"question": ..., "expected_source": ...}` per line.
    pub golden: Option<PathBuf>,
    /// `k` of the golden recall@k.
    pub golden_k: usize,
    /// Largest allowed drop of golden recall@k versus head.
    pub golden_tolerance: f64,
    /// Fingerprint id the build must have (default: head's). Override with `--allow-model-change`.
    pub pin_fingerprint: Option<String>,
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            max_removed_share: 0.20,
            max_failure_share: 0.05,
            max_hub_share: 0.05,
            hub_probes: 200,
            max_boilerplate_share: 0.50,
            golden: None,
            golden_k: 5,
            golden_tolerance: 0.05,
            pin_fingerprint: None,
        }
    }
}

/// `[runtime]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// ONNX Runtime library (else `RAGSNAP_ORT_LIB`, else the `make setup` cache).
    pub ort_lib: Option<PathBuf>,
    /// Model directory (else `RAGSNAP_MODEL_DIR`, else the cache's default model).
    pub model_dir: Option<PathBuf>,
    /// Catalogued model by name (`ragsnap models`), found in the `make setup` cache; not
    /// together with `model_dir`.
    pub model: Option<String>,
    /// Intra-op threads; 0 = all cores.
    pub intra_threads: usize,
    /// Texts per model call.
    pub batch_size: usize,
    /// Single-threaded sessions that share bulk embedding (a rebuild's cache misses); 0 = one
    /// per core, 1 (the default) = bulk embedding uses the main session with `intra_threads`
    /// threads. Each extra session holds its own weights and ONNX Runtime arena (about 320 MiB
    /// for the default model at batch 32), so 0 trades memory for a few percent of speed.
    pub bulk_sessions: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            ort_lib: None,
            model_dir: None,
            model: None,
            intra_threads: 0,
            batch_size: 32,
            bulk_sessions: 1,
        }
    }
}

/// `[[sources]]`: one folder of documents.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Folder to read.
    pub dir: PathBuf,
    /// Prefix of document URLs (a page's canonical URL wins when it has one).
    #[serde(default)]
    pub url_prefix: Option<String>,
    /// Name prefixed to source paths when there are several sources.
    #[serde(default)]
    pub name: Option<String>,
}

/// `[ingest]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Largest document read, in bytes.
    pub max_bytes: u64,
    /// Budget of working memory for pages being read and sanitised at the same time, in bytes.
    /// Each page is charged [`INGEST_MEMORY_PER_BYTE`] times its size before it is processed
    /// and waits while the budget is spent; a page costing more than the whole budget runs
    /// alone. The bound therefore does not grow with the number of cores.
    pub max_inflight_bytes: u64,
}

/// Working memory a page may take while it is sanitised, per byte of the page (the sanitiser
/// was measured at 30–66 times a page's size).
pub const INGEST_MEMORY_PER_BYTE: u64 = 64;

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig { max_bytes: ragsnap_chunk::IngestLimits::default().max_bytes, max_inflight_bytes: 1 << 30 }
    }
}

impl From<&IngestConfig> for ragsnap_chunk::IngestLimits {
    fn from(c: &IngestConfig) -> Self {
        ragsnap_chunk::IngestLimits { max_bytes: c.max_bytes }
    }
}

/// `[cache]`: how a rebuild checks the embedding cache. Rows whose checksum, length or values
/// are wrong are never served (they are embedded again); on top of that every rebuild embeds a
/// random sample of the cache hits again and compares.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheVerifySettings {
    /// Cache hits embedded again on every rebuild, at least...
    pub sample: usize,
    /// ...or this share of the hits, whichever is larger...
    pub sample_share: f64,
    /// ...but never more than this many (0 turns the sample off).
    pub sample_max: usize,
    /// A cached vector agrees with a fresh one when their cosine is at least this.
    pub min_cosine: f32,
    /// When more than this share of the sample disagrees, no hit of the fingerprint is trusted:
    /// every chunk is embedded again in this run (and the cache rewritten).
    pub max_mismatch_share: f64,
}

impl Default for CacheVerifySettings {
    fn default() -> Self {
        CacheVerifySettings {
            sample: 32,
            sample_share: 0.01,
            sample_max: 2000,
            min_cosine: 0.999,
            max_mismatch_share: 0.01,
        }
    }
}

/// `[chunker]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChunkerConfig {
    /// Target chunk size in model tokens.
    pub target_tokens: usize,
    /// Hard maximum (never above the model's max).
    pub max_tokens: usize,
    /// Sections smaller than this merge into a neighbour.
    pub min_tokens: usize,
}

impl Default for ChunkerConfig {
    fn default() -> Self {
        let c = ragsnap_chunk::ChunkConfig::default();
        ChunkerConfig { target_tokens: c.target_tokens, max_tokens: c.max_tokens, min_tokens: c.min_tokens }
    }
}

/// `[boilerplate]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BoilerplateSettings {
    /// A block must recur on at least this many pages...
    pub min_pages: usize,
    /// ...and on at least this share of pages, to count as template text.
    pub min_share: f64,
}

impl Default for BoilerplateSettings {
    fn default() -> Self {
        let b = ragsnap_chunk::BoilerplateConfig::default();
        BoilerplateSettings { min_pages: b.min_pages, min_share: b.min_share }
    }
}

impl From<&BoilerplateSettings> for ragsnap_chunk::BoilerplateConfig {
    fn from(b: &BoilerplateSettings) -> Self {
        ragsnap_chunk::BoilerplateConfig { min_pages: b.min_pages, min_share: b.min_share }
    }
}

/// `[query]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueryDefaults {
    /// Hits returned.
    pub k: usize,
    /// Hard maximum of `k`.
    pub max_k: usize,
    /// Similarity floor; unset means the model descriptor's default.
    pub floor: Option<f32>,
    /// Most hits from one source page.
    pub max_per_source: usize,
}

impl Default for QueryDefaults {
    fn default() -> Self {
        let q = crate::QueryOptions::default();
        QueryDefaults { k: q.k, max_k: q.max_k, floor: q.floor, max_per_source: q.max_per_source }
    }
}

impl QueryDefaults {
    /// Query options with this section's values; every other option at its default.
    pub fn options(&self) -> crate::QueryOptions {
        crate::QueryOptions {
            k: self.k,
            max_k: self.max_k,
            floor: self.floor,
            max_per_source: self.max_per_source,
            ..crate::QueryOptions::default()
        }
    }
}

impl Config {
    /// Read a config file; its relative paths are resolved against the file's folder.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut config: Config =
            toml::from_str(&text).map_err(|e| Error::Config { path: path.to_path_buf(), message: e.to_string() })?;
        config.rebase(path.parent().unwrap_or(Path::new("")));
        config.validate().map_err(|e| match e {
            Error::InvalidSetting { key, message } => {
                Error::Config { path: path.to_path_buf(), message: format!("{key}: {message}") }
            }
            other => other,
        })?;
        Ok(config)
    }

    /// The config file to use: the one given, else `./ragsnap.toml` when it exists, else defaults.
    pub fn discover(explicit: Option<&Path>) -> Result<Self> {
        match explicit {
            Some(p) => Config::load(p),
            None if Path::new("ragsnap.toml").is_file() => Config::load(Path::new("ragsnap.toml")),
            None => Ok(Config::default()),
        }
    }

    /// The settings a command runs with before its flags: the config file ([`Config::discover`])
    /// with the environment applied over it ([`Config::apply_env`]).
    pub fn resolve(explicit: Option<&Path>) -> Result<Self> {
        let mut config = Config::discover(explicit)?;
        config.apply_env();
        Ok(config)
    }

    /// Let set, non-empty `RAGSNAP_STORE`, `RAGSNAP_ORT_LIB`, `RAGSNAP_MODEL` and
    /// `RAGSNAP_MODEL_DIR` override the file's values.
    pub fn apply_env(&mut self) {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        if let Some(p) = var("RAGSNAP_STORE") {
            self.store = Some(p);
        }
        if let Some(p) = var("RAGSNAP_ORT_LIB") {
            self.runtime.ort_lib = Some(p);
        }
        // Either model variable replaces the file's choice of model; both set is left for
        // `validate` to refuse.
        let name = std::env::var("RAGSNAP_MODEL").ok().filter(|v| !v.is_empty());
        let dir = var("RAGSNAP_MODEL_DIR");
        if name.is_some() || dir.is_some() {
            self.runtime.model = name;
            self.runtime.model_dir = dir;
        }
    }

    /// Resolve the relative paths of a file read from folder `base` against it.
    fn rebase(&mut self, base: &Path) {
        if base.as_os_str().is_empty() {
            return;
        }
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        self.store.iter_mut().for_each(fix);
        self.runtime.ort_lib.iter_mut().for_each(fix);
        self.runtime.model_dir.iter_mut().for_each(fix);
        self.gates.golden.iter_mut().for_each(fix);
        self.sources.iter_mut().for_each(|s| fix(&mut s.dir));
    }

    /// Store folder: explicit, then `RAGSNAP_STORE`, then the file, then `./ragsnap-store`.
    pub fn store_path(&self, explicit: Option<&Path>) -> PathBuf {
        if let Some(p) = explicit {
            return p.to_path_buf();
        }
        if let Some(v) = std::env::var_os("RAGSNAP_STORE").filter(|v| !v.is_empty()) {
            return PathBuf::from(v);
        }
        self.store.clone().unwrap_or_else(|| PathBuf::from("ragsnap-store"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_in_a_file_resolve_against_its_folder() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("etc");
        std::fs::create_dir_all(&conf).unwrap();
        let file = conf.join("ragsnap.toml");
        std::fs::write(
            &file,
            "store = \"data/store\"\n[runtime]\nmodel_dir = \"/abs/model\"\nort_lib = \"lib/ort.so\"\n\
             [[sources]]\ndir = \"../site\"\n[gates]\ngolden = \"golden.jsonl\"\n",
        )
        .unwrap();
        let c = Config::load(&file).unwrap();
        assert_eq!(c.store.as_deref(), Some(conf.join("data/store").as_path()));
        assert_eq!(c.runtime.model_dir.as_deref(), Some(Path::new("/abs/model")), "absolute paths stay");
        assert_eq!(c.runtime.ort_lib.as_deref(), Some(conf.join("lib/ort.so").as_path()));
        assert_eq!(c.sources[0].dir, conf.join("../site"));
        assert_eq!(c.gates.golden.as_deref(), Some(conf.join("golden.jsonl").as_path()));
    }

    #[test]
    fn each_default_is_the_library_types_default() {
        let q = crate::QueryOptions::default();
        let file = QueryDefaults::default();
        assert_eq!((file.k, file.max_k, file.floor, file.max_per_source), (q.k, q.max_k, q.floor, q.max_per_source));
        assert_eq!(file.options(), q, "an untouched [query] section gives the library's default options");
        let c = ragsnap_chunk::ChunkConfig::default();
        let f = ChunkerConfig::default();
        assert_eq!((f.target_tokens, f.max_tokens, f.min_tokens), (c.target_tokens, c.max_tokens, c.min_tokens));
        let b = ragsnap_chunk::BoilerplateConfig::from(&BoilerplateSettings::default());
        assert_eq!(b, ragsnap_chunk::BoilerplateConfig::default());
        let l = ragsnap_chunk::IngestLimits::from(&IngestConfig::default());
        assert_eq!(l.max_bytes, ragsnap_chunk::IngestLimits::default().max_bytes);
    }
}
