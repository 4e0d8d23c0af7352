//! Source reading on the real binary: `ragsnap chunk --source` shows exactly what `rebuild`
//! indexes, hostile entries are skipped and reported, unreadable folders are per-path failures,
//! URL prefixes are checked as usage errors.

mod common;
use common::*;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// JSON Lines on stdout, one value per line.
fn lines(o: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

#[test]
fn url_prefix_problems_are_usage_errors_naming_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let site = repo_root().join("fixtures/site");
    let s = site.to_str().unwrap();
    for args in [
        vec!["rebuild", "--url-prefix", "https://docs.example.com/"],
        vec!["chunk", "--url-prefix", "https://docs.example.com/"],
        vec!["chunk", "--url-prefix", "https://docs.example.com/", "fixtures/site/faq.html"],
    ] {
        let o = run(&store, &args);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("--source"), "{}", stderr(&o));
    }
    for bad in ["docs.example.com/v2", "mailto:docs@example.com", "https://docs.example.com/?v=2"] {
        for cmd in ["rebuild", "chunk"] {
            let o = run(&store, &[cmd, "--source", s, "--url-prefix", bad]);
            assert_eq!(code(&o), 2, "{cmd} {bad}: {}", stderr(&o));
            assert!(stderr(&o).contains(bad), "{}", stderr(&o));
        }
    }
    let o = run(&store, &["chunk", "--source", s, "--exclude", "**/{open"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("{open"), "{}", stderr(&o));
    assert!(!store.exists(), "no usage error touched the store");
    let o = run(&store, &["chunk", "--source", "/nonexistent/docs"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("source /nonexistent/docs: cannot read"), "{}", stderr(&o));
}

#[test]
fn chunk_needs_only_the_tokenizer_not_the_model_or_onnx_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    std::fs::create_dir_all(&model).unwrap();
    let cache = std::env::var_os("RAGSNAP_CACHE")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".cache/runtime"))
        .join("models/minilm-l6-int8");
    for f in ["model.toml", "tokenizer.json"] {
        std::fs::copy(cache.join(f), model.join(f)).unwrap();
    }
    let o = bin()
        .args(["--ort-lib", "/nonexistent/libonnxruntime.so", "--model-dir", model.to_str().unwrap()])
        .args(["chunk", "fixtures/site/faq.html", "--json"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let docs = lines(&o);
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["source"], "fixtures/site/faq.html");
    assert!(docs[0]["chunks"].as_array().unwrap().iter().all(|c| c["tokens"].as_u64().unwrap() <= 256));
}

/// The fixture site plus what a real build output or a hostile tree holds.
fn hostile_site(dir: &Path) -> std::path::PathBuf {
    let site = site_copy(dir);
    let secret = dir.join("secret.txt");
    std::fs::write(&secret, "root:x:0:0:the secret line that must never be indexed").unwrap();
    std::os::unix::fs::symlink(&secret, site.join("passwd.txt")).unwrap();
    std::os::unix::fs::symlink(dir, site.join("outside")).unwrap();
    assert!(std::process::Command::new("mkfifo").arg(site.join("guide/pipe.md")).status().unwrap().success());
    std::fs::create_dir_all(site.join("_sources/guide")).unwrap();
    std::fs::write(
        site.join("_sources/guide/retries.rst.txt"),
        "Retries\n=======\n\nA copy of the retries page source.",
    )
    .unwrap();
    std::fs::create_dir_all(site.join(".cache")).unwrap();
    std::fs::write(site.join(".cache/state.txt"), "tool state, not documentation").unwrap();
    std::fs::create_dir_all(site.join("sub dir")).unwrap();
    std::fs::write(
        site.join("sub dir/ünï code.md"),
        "# Tide tables\n\nTide tables list the height of high and low water for every day of the year.\n",
    )
    .unwrap();
    site
}

#[test]
fn chunk_source_shows_exactly_what_rebuild_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let site = hostile_site(dir.path());
    let store = dir.path().join("store");
    let s = site.to_str().unwrap();
    let prefix = "https://docs.example.com/v2";

    let metrics = dir.path().join("ragsnap.prom");
    let m = metrics.to_str().unwrap();
    let o = run(&store, &["rebuild", "--source", s, "--url-prefix", prefix, "--json", "--metrics-file", m]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let rep = json(&o);
    let prom = std::fs::read_to_string(&metrics).unwrap();
    for line in [
        "ragsnap_rebuild_skipped{reason=\"symlink\"} 2",
        "ragsnap_rebuild_skipped{reason=\"fifo\"} 1",
        "ragsnap_rebuild_files_excluded 2",
    ] {
        assert!(prom.contains(line), "{line} not in {prom}");
    }
    let mut skipped: Vec<(String, String)> = rep["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["path"].as_str().unwrap().to_string(), f["kind"].as_str().unwrap().to_string()))
        .collect();
    skipped.sort();
    assert_eq!(
        skipped,
        [
            ("guide/pipe.md".into(), "fifo".into()),
            ("outside".into(), "symlink".into()),
            ("passwd.txt".into(), "symlink".into())
        ]
    );
    assert_eq!(rep["failed"].as_array().unwrap().len(), 0, "{}", rep["failed"]);
    assert_eq!(rep["files_excluded"], 2, "_sources/ and .cache/");
    assert!(stderr(&o).contains("2 symlink"), "{}", stderr(&o));

    let o = run(&store, &["chunk", "--source", s, "--url-prefix", prefix, "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let docs = lines(&o);
    let summary = stderr(&o);
    assert!(summary.contains(&format!("{} pages", docs.len())) && summary.contains("3 skipped"), "{summary}");

    // The schema the corpus checker reads.
    for d in &docs {
        let keys: BTreeSet<&str> = d.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, BTreeSet::from(["source", "url", "title", "hub", "chunks"]), "{d}");
        assert!(d["source"].is_string() && d["title"].is_string() && d["hub"].is_boolean());
        assert!(d["url"].is_string(), "every page has a URL with a prefix: {d}");
        for c in d["chunks"].as_array().unwrap() {
            let keys: BTreeSet<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(keys, BTreeSet::from(["text", "header_path", "tokens"]));
            assert!(c["tokens"].as_u64().unwrap() <= 256);
        }
    }
    let unicode = docs.iter().find(|d| d["source"] == "sub dir/ünï code.md").expect("the unicode page");
    assert_eq!(unicode["url"], "https://docs.example.com/v2/sub%20dir/%C3%BCn%C3%AF%20code.md");

    // Against the snapshot, through the library: same documents, chunk texts, header paths,
    // token counts and URLs, in the same order.
    let reader = ragsnap::Store::open_reader(&store).unwrap();
    let snap = ragsnap::Snapshot::open(&reader, &reader.head().unwrap().id).unwrap();
    let sources: Vec<&str> = snap.documents().iter().map(|d| d.source_path.as_str()).collect();
    let shown: Vec<&str> = docs.iter().map(|d| d["source"].as_str().unwrap()).collect();
    assert_eq!(shown, sources);
    let mut row = 0;
    for (d, entry) in docs.iter().zip(snap.documents()) {
        assert_eq!(d["url"].as_str(), entry.url.as_deref());
        assert_eq!(d["title"].as_str().unwrap(), entry.title.as_deref().unwrap_or(""));
        let chunks = d["chunks"].as_array().unwrap();
        assert_eq!(chunks.len(), entry.chunk_count as usize, "{}", entry.source_path);
        for c in chunks {
            let stored = snap.chunks().get(row).unwrap();
            row += 1;
            assert_eq!(c["text"].as_str().unwrap(), stored.text);
            let hp: Vec<String> = serde_json::from_value(c["header_path"].clone()).unwrap();
            assert_eq!(hp, stored.header_path);
            assert_eq!(c["tokens"].as_u64().unwrap() as usize, stored.tokens);
        }
    }
    assert_eq!(row, snap.chunks().len());
    for i in 0..snap.chunks().len() {
        let c = snap.chunks().get(i).unwrap();
        assert!(!c.text.contains("secret line") && !c.source_path.starts_with("_sources/"), "{}", c.source_path);
    }

    // --stats: the summary only.
    let o = run(&store, &["chunk", "--source", s, "--url-prefix", prefix, "--stats"]);
    assert_eq!(code(&o), 0);
    assert!(o.stdout.is_empty());
    assert!(stderr(&o).contains(&format!("{} pages, {row} chunks", docs.len())), "{}", stderr(&o));

    // Patterns from the flags narrow both commands alike.
    let o = run(&store, &["chunk", "--source", s, "--include", "guide/", "--exclude", "retries.html", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let shown: Vec<String> = lines(&o).iter().map(|d| d["source"].as_str().unwrap().to_string()).collect();
    assert!(
        !shown.is_empty() && shown.iter().all(|p| p.starts_with("guide/") && p != "guide/retries.html"),
        "{shown:?}"
    );

    // Files named one by one go through the same reading rules.
    let o = run(
        &store,
        &["chunk", site.join("passwd.txt").to_str().unwrap(), site.join("faq.html").to_str().unwrap(), "--json"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(lines(&o).len(), 1);
    assert!(!String::from_utf8_lossy(&o.stdout).contains("secret line"));
    assert!(stderr(&o).contains("1 symlink"), "{}", stderr(&o));
}

/// Run `ragsnap` as an unprivileged user when the tests run as root (root reads everything).
fn run_unprivileged(args: &[&str]) -> Output {
    let mut cmd = if std::env::var("USER").as_deref() == Ok("root") || is_root() {
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", env!("CARGO_BIN_EXE_ragsnap")]);
        c
    } else {
        std::process::Command::new(env!("CARGO_BIN_EXE_ragsnap"))
    };
    cmd.current_dir(repo_root()).env("RAGSNAP_LOG", "error").args(args).output().unwrap()
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::metadata(dir.path()).unwrap().uid() == 0
}

#[test]
fn unreadable_folders_and_files_are_per_path_failures_not_aborts() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let site = site_copy(dir.path());
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(site.join("ops"), std::fs::Permissions::from_mode(0o000)).unwrap();
    std::fs::set_permissions(site.join("faq.html"), std::fs::Permissions::from_mode(0o000)).unwrap();
    let o = run_unprivileged(&["chunk", "--source", site.to_str().unwrap(), "--json"]);
    let err = stderr(&o);
    assert_eq!(code(&o), 1, "failures make the exit code 1: {err}");
    let shown: Vec<String> = lines(&o).iter().map(|d| d["source"].as_str().unwrap().to_string()).collect();
    assert!(shown.len() >= 15, "the readable pages are all there: {shown:?}");
    assert!(shown.iter().all(|p| !p.starts_with("ops/") && p != "faq.html"));
    assert!(err.contains("failed ops: ops: cannot read") && err.contains("Permission denied"), "{err}");
    assert!(err.contains("failed faq.html"), "{err}");
    assert!(err.contains("2 failed"), "{err}");
    std::fs::set_permissions(site.join("ops"), std::fs::Permissions::from_mode(0o755)).unwrap();
}
