//! Shared helpers for the end-to-end tests: the repo's fixtures, a shared embedder, and a
//! store built once per test process from `fixtures/site` with the real model.

use ragsnap::config::SourceConfig;
use ragsnap::{Config, OnnxEmbedder};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// Repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().expect("repo root")
}

/// The bundled fixture site.
pub fn fixture_site() -> PathBuf {
    repo_root().join("fixtures/site")
}

/// The real embedder, loaded once per process.
pub fn embedder() -> Arc<OnnxEmbedder> {
    static E: OnceLock<Arc<OnnxEmbedder>> = OnceLock::new();
    E.get_or_init(|| ragsnap::open_embedder(&Config::default().runtime).expect("run `make setup` first")).clone()
}

pub use ragsnap_testkit::copy_tree;

/// A source config for `dir`.
pub fn source(dir: &Path) -> Vec<SourceConfig> {
    vec![SourceConfig {
        dir: dir.to_path_buf(),
        url_prefix: Some("https://docs.tidewater.example/".into()),
        name: None,
    }]
}

/// Rebuild even when sources and settings match head's (for tests of what a second build of the
/// same sources does: cache checks, reuse, refresh).
pub fn rebuild_forced(
    store: &Path,
    cfg: &Config,
    sources: &[SourceConfig],
    embedder: &dyn ragsnap::Embedder,
) -> ragsnap::Result<ragsnap::RebuildReport> {
    let opts = ragsnap::RebuildOptions { sources: sources.to_vec(), force: true, ..Default::default() };
    ragsnap::rebuild_with(store, cfg, &opts, embedder)
}

/// A store built from the fixture site once per process (read-only use only).
pub fn fixture_store() -> &'static Path {
    static S: OnceLock<PathBuf> = OnceLock::new();
    S.get_or_init(|| {
        let dir = tempfile::Builder::new().prefix("ragsnap-fixture-store").tempdir().unwrap().keep();
        ragsnap::rebuild(&dir, &Config::default(), &source(&fixture_site()), embedder().as_ref())
            .expect("fixture rebuild");
        dir
    })
}

/// One labelled question of `fixtures/queries.jsonl`.
#[derive(Debug, serde::Deserialize)]
pub struct Question {
    /// The question.
    pub question: String,
    /// Page that answers it; `None` for off-topic questions.
    pub expected_source: Option<String>,
}

/// The labelled questions.
pub fn questions() -> Vec<Question> {
    std::fs::read_to_string(repo_root().join("fixtures/queries.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
