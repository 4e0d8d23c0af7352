//! Helpers for running the real `ragsnap` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ragsnap"));
    c.current_dir(repo_root());
    c.env_remove("RAGSNAP_STORE").env("RAGSNAP_LOG", "error");
    c
}

pub fn run(store: &Path, args: &[&str]) -> Output {
    bin().arg("--store").arg(store).args(args).output().unwrap()
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

pub fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {}", String::from_utf8_lossy(&o.stdout)))
}

pub fn copy_tree(from: &Path, to: &Path) {
    ragsnap_testkit::copy_tree(from, to)
}

/// A copy of the fixture site in `dir/site`.
pub fn site_copy(dir: &Path) -> PathBuf {
    let site = dir.join("site");
    copy_tree(&repo_root().join("fixtures/site"), &site);
    site
}

pub fn head(store: &Path) -> Option<String> {
    let o = run(store, &["snapshots", "--json"]);
    if code(&o) != 0 {
        return None;
    }
    json(&o).as_array().unwrap().iter().find(|s| s["is_head"] == true).map(|s| s["id"].as_str().unwrap().to_string())
}

/// One store with two snapshots of the fixture site, built once per test binary (tests work on
/// copies of it). Returns (its folder, first id, second id = head); the store is `<folder>/store`.
pub fn built_store() -> &'static (tempfile::TempDir, String, String) {
    static STORE: std::sync::OnceLock<(tempfile::TempDir, String, String)> = std::sync::OnceLock::new();
    STORE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let site = site_copy(dir.path());
        let store = dir.path().join("store");
        let s = site.to_str().unwrap();
        let o = run(&store, &["rebuild", "--source", s, "--json"]);
        assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
        let first = json(&o)["snapshot_id"].as_str().unwrap().to_string();
        let page = site.join("faq.html");
        let html = std::fs::read_to_string(&page).unwrap();
        std::fs::write(
            &page,
            html.replacen("</main>", "<h2>Themes</h2><p>The console has a dark theme.</p></main>", 1),
        )
        .unwrap();
        let o = run(&store, &["rebuild", "--source", s, "--json"]);
        assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
        let second = json(&o)["snapshot_id"].as_str().unwrap().to_string();
        (dir, first, second)
    })
}
