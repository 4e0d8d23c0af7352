//! `corpus_dump` prints the chunks `ragsnap rebuild` stores, and `eval/corpora/check.py` reads
//! what it prints. Real parts: the fixture site, the real model's tokenizer, a real store.

use ragsnap::config::SourceConfig;
use ragsnap::{Config, Snapshot, Store};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().expect("repo root")
}

/// (header path, text, tokens) of every chunk, by document.
type Chunks = BTreeMap<String, Vec<(Vec<String>, String, usize)>>;

fn dump(source: &Path) -> (Vec<Value>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_corpus_dump")).arg("--source").arg(source).output().expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "corpus_dump failed: {stderr}");
    let lines = String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON document a line"))
        .collect();
    (lines, stderr)
}

fn as_chunks(lines: &[Value]) -> Chunks {
    let mut out = Chunks::new();
    for d in lines {
        let chunks = d["chunks"].as_array().expect("chunks");
        if chunks.is_empty() {
            continue;
        }
        let v = chunks
            .iter()
            .map(|c| {
                let hp = c["header_path"].as_array().unwrap().iter().map(|h| h.as_str().unwrap().to_string()).collect();
                (hp, c["text"].as_str().unwrap().to_string(), c["tokens"].as_u64().unwrap() as usize)
            })
            .collect();
        out.insert(d["source"].as_str().unwrap().to_string(), v);
    }
    out
}

#[test]
fn the_dump_of_the_fixture_site_is_what_rebuild_stores() {
    let site = repo_root().join("fixtures/site");
    let (lines, _) = dump(&site);
    assert!(lines.len() >= 20, "the fixture site has more than 20 pages, got {}", lines.len());
    for d in &lines {
        for key in ["source", "url", "title", "hub", "chunks"] {
            assert!(d.get(key).is_some(), "{key} missing in {d}");
        }
        assert_eq!(d["hub"], Value::Bool(false));
    }
    let dumped = as_chunks(&lines);

    let dir = tempfile::tempdir().unwrap();
    let store_root = dir.path().join("store");
    let embedder = ragsnap::open_embedder(&Config::default().runtime).expect("run `make setup` first");
    let sources = [SourceConfig { dir: site.clone(), url_prefix: None, name: None }];
    let report = ragsnap::rebuild(&store_root, &Config::default(), &sources, embedder.as_ref()).unwrap();
    let store = Store::open_reader(&store_root).unwrap();
    let snapshot = Snapshot::open(&store, &report.snapshot_id).unwrap();
    let mut stored = Chunks::new();
    for d in snapshot.documents() {
        let rows = d.first_chunk as usize..(d.first_chunk + d.chunk_count) as usize;
        let v = rows
            .map(|r| {
                let c = snapshot.chunks().get(r).unwrap();
                (c.header_path, c.text, c.tokens)
            })
            .collect();
        stored.insert(d.source_path.clone(), v);
    }
    assert_eq!(report.chunks, dumped.values().map(Vec::len).sum::<usize>());
    assert_eq!(stored.keys().collect::<Vec<_>>(), dumped.keys().collect::<Vec<_>>());
    for (path, chunks) in &stored {
        assert_eq!(chunks, &dumped[path], "chunks of {path} differ");
    }
}

#[test]
fn the_checker_reads_the_dump_and_counts_every_page() {
    let site = repo_root().join("fixtures/site");
    let dir = tempfile::tempdir().unwrap();
    let (lines, _) = dump(&site);
    let file = dir.path().join("fixture.jsonl");
    std::fs::write(&file, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    let out = Command::new("python3")
        .arg(repo_root().join("eval/corpora/check.py"))
        .args(["--site", "fixture", "--json", "--root"])
        .arg(&site)
        .arg(&file)
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "check.py failed: {}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let s = &report["sites"][0];
    assert_eq!(s["pages"].as_u64().unwrap() as usize, lines.len());
    let chunks: usize = lines.iter().map(|d| d["chunks"].as_array().unwrap().len()).sum();
    assert_eq!(s["chunks"].as_u64().unwrap() as usize, chunks);
}

#[test]
fn a_missing_folder_is_an_error_naming_it() {
    let out =
        Command::new(env!("CARGO_BIN_EXE_corpus_dump")).args(["--source", "/nonexistent/corpus"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/corpus"));
    let out = Command::new(env!("CARGO_BIN_EXE_corpus_dump")).arg("--bogus").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "a usage error exits 2");
}
