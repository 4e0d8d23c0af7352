//! Listing and reading sources on real files: the default selection, patterns, entries that are
//! not regular files, files swapped between listing and reading, URLs. Chunking uses the
//! model's real tokenizer (`make setup`).

use ragsnap::config::SourceConfig;
use ragsnap::embed::TokenCounter;
use ragsnap::ingest::{self, Inputs, PrepareOptions, PreparedCorpus, Tokens};
use ragsnap::sources::{self, ListedFile, SourceSelection};
use ragsnap::Config;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const SECRET: &str = "root:x:0:0:the-secret-line-that-must-never-be-indexed";

fn counter() -> &'static TokenCounter {
    static C: OnceLock<TokenCounter> = OnceLock::new();
    C.get_or_init(|| ingest::open_token_counter(&Config::default().runtime).expect("run `make setup` first"))
}

fn page(title: &str, body: &str) -> String {
    format!("<!doctype html><html><head><title>{title}</title></head><body><main><h1>{title}</h1><p>{body}</p></main></body></html>")
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A small tree: two real pages, plus a secret kept outside it.
fn tree(dir: &Path) -> (PathBuf, PathBuf) {
    let site = dir.join("site");
    write(&site.join("index.html"), &page("Harbour tides", "Tides rise twice a day in most harbours of the coast."));
    write(&site.join("guide/moon.html"), &page("Moon and tides", "The moon pulls the sea and makes spring tides."));
    let secret = dir.join("outside/passwd.txt");
    write(&secret, SECRET);
    (site, secret)
}

fn prepare(site: &Path, config: &Config, opts: &PrepareOptions<'_>) -> PreparedCorpus {
    let sources = vec![SourceConfig { dir: site.to_path_buf(), url_prefix: None, name: None }];
    ingest::prepare(&Inputs::Folders(&sources), config, Tokens::Tokenizer(counter()), opts).unwrap()
}

fn all_text(p: &PreparedCorpus) -> String {
    p.documents.iter().flat_map(|d| d.chunks.iter().map(|c| c.text.clone())).collect::<Vec<_>>().join("\n")
}

fn paths(p: &PreparedCorpus) -> Vec<&str> {
    p.documents.iter().map(|d| d.doc.source_path.as_str()).collect()
}

#[test]
fn default_selection_leaves_out_hidden_entries_and_generator_copies() {
    let dir = tempfile::tempdir().unwrap();
    let (site, _) = tree(dir.path());
    write(&site.join(".git/notes.txt"), "commit notes that are not documentation");
    write(&site.join("guide/.draft.html"), &page("Draft", "unfinished draft page"));
    write(&site.join("_sources/index.rst.txt"), "Harbour tides\n=============\n\nTides rise twice a day.");
    write(&site.join("api/_static/notes.txt"), "theme asset text");
    write(&site.join("_images/readme.txt"), "image folder text");
    write(&site.join("_downloads/example.md"), "# Example\n\nA downloadable example document.");
    let p = prepare(&site, &Config::default(), &PrepareOptions::default());
    assert_eq!(paths(&p), ["_downloads/example.md", "guide/moon.html", "index.html"]);
    assert_eq!(p.excluded, 5, "hidden folder, hidden file and three by-product folders");
    assert!(p.failed.is_empty() && p.skipped.is_empty(), "{:?} {:?}", p.failed, p.skipped);

    // Dropping the defaults reads them all.
    let mut cfg = Config::default();
    cfg.source.default_excludes = false;
    let p = prepare(&site, &cfg, &PrepareOptions::default());
    for want in [".git/notes.txt", "guide/.draft.html", "_sources/index.rst.txt", "api/_static/notes.txt"] {
        assert!(paths(&p).contains(&want), "{want} missing from {:?}", paths(&p));
    }
    assert_eq!(p.excluded, 0);
}

#[test]
fn include_and_exclude_patterns_follow_gitignore_rules() {
    let dir = tempfile::tempdir().unwrap();
    let (site, _) = tree(dir.path());
    write(&site.join("guide/old/v1.html"), &page("Old moon", "Version one of the moon page, kept for reference."));
    write(&site.join("notes/a.md"), "# Note A\n\nA note about neap tides.");
    write(&site.join("notes/keep.md"), "# Keep\n\nA note to keep about tide tables.");
    let mut cfg = Config::default();
    cfg.source.include = vec!["guide/".into(), "notes/*.md".into()];
    cfg.source.exclude = vec!["old/".into(), "notes/*".into(), "!notes/keep.md".into()];
    let p = prepare(&site, &cfg, &PrepareOptions::default());
    assert_eq!(paths(&p), ["guide/moon.html", "notes/keep.md"]);

    let mut bad = Config::default();
    bad.source.exclude = vec!["**/{unclosed".into()];
    let sources = vec![SourceConfig { dir: site.clone(), url_prefix: None, name: None }];
    let e = ingest::prepare(&Inputs::Folders(&sources), &bad, Tokens::Tokenizer(counter()), &PrepareOptions::default())
        .unwrap_err();
    assert!(e.to_string().contains("{unclosed"), "{e}");
}

#[test]
fn a_file_name_that_is_not_utf8_is_skipped_with_its_reason() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let (site, _) = tree(dir.path());
    write(
        &site.join(std::ffi::OsStr::from_bytes(b"guide/bad-\xff.html")),
        &page("Bad name", "A page with a bad name."),
    );
    let p = prepare(&site, &Config::default(), &PrepareOptions::default());
    assert_eq!(paths(&p), ["guide/moon.html", "index.html"]);
    assert_eq!(p.skipped.len(), 1);
    assert_eq!(p.skipped[0].kind, "name");
    assert!(p.skipped[0].error.contains("bad-\u{fffd}.html"), "{}", p.skipped[0].error);
}

#[test]
fn gitignore_files_in_the_source_are_honoured_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let (site, _) = tree(dir.path());
    write(&site.join(".gitignore"), "guide/\n");
    write(&site.join("index.md"), "# Index\n\nThe markdown index of tide pages.");
    write(&site.join("sub/.ignore"), "*.md\n");
    write(&site.join("sub/page.md"), "# Sub\n\nA page about tide gauges.");
    let p = prepare(&site, &Config::default(), &PrepareOptions::default());
    assert_eq!(paths(&p), ["guide/moon.html", "index.html", "index.md", "sub/page.md"]);
    let mut cfg = Config::default();
    cfg.source.gitignore = true;
    let p = prepare(&site, &cfg, &PrepareOptions::default());
    assert_eq!(paths(&p), ["index.html", "index.md"]);
}

#[test]
fn symlinks_fifos_and_sockets_met_while_listing_are_skipped_with_their_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (site, secret) = tree(dir.path());
    std::os::unix::fs::symlink(&secret, site.join("passwd.txt")).unwrap();
    std::os::unix::fs::symlink(secret.parent().unwrap(), site.join("linked-dir")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("nowhere"), site.join("dangling.html")).unwrap();
    let fifo = site.join("guide/pipe.html");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let _socket = std::os::unix::net::UnixListener::bind(site.join("sock.html")).unwrap();
    let p = prepare(&site, &Config::default(), &PrepareOptions::default());
    assert_eq!(paths(&p), ["guide/moon.html", "index.html"]);
    let mut skipped: Vec<(&str, &str)> = p.skipped.iter().map(|f| (f.path.as_str(), f.kind.as_str())).collect();
    skipped.sort();
    assert_eq!(
        skipped,
        [
            ("dangling.html", "symlink"),
            ("guide/pipe.html", "fifo"),
            ("linked-dir", "symlink"),
            ("passwd.txt", "symlink"),
            ("sock.html", "socket")
        ]
    );
    assert!(p.failed.is_empty(), "{:?}", p.failed);
    assert!(!all_text(&p).contains("secret-line"));
}

/// Swap `victim` for `with` (atomically, by rename over it).
fn swap(victim: &Path, with: impl FnOnce(&Path)) {
    let tmp = victim.with_extension("swap");
    with(&tmp);
    std::fs::rename(&tmp, victim).unwrap();
}

#[test]
fn a_file_swapped_for_a_symlink_after_listing_is_never_read() {
    let dir = tempfile::tempdir().unwrap();
    let (site, secret) = tree(dir.path());
    write(&site.join("passwd.txt"), "An ordinary page about tide tables and their columns.");
    let hook = |files: &[ListedFile]| {
        assert!(files.iter().any(|f| f.rel == "passwd.txt"), "the victim was listed as a regular file");
        swap(&site.join("passwd.txt"), |tmp| std::os::unix::fs::symlink(&secret, tmp).unwrap());
    };
    let p = prepare(&site, &Config::default(), &PrepareOptions { after_listing: Some(&hook), ..Default::default() });
    assert!(!all_text(&p).contains("secret-line"), "the secret was indexed");
    assert_eq!(paths(&p), ["guide/moon.html", "index.html"]);
    let f = p.skipped.iter().find(|f| f.path == "passwd.txt").expect("reported");
    assert_eq!(f.kind, "symlink");
    assert!(f.error.contains("after it was listed"), "{}", f.error);
}

#[test]
fn a_parent_folder_swapped_for_a_symlink_after_listing_is_never_read() {
    let dir = tempfile::tempdir().unwrap();
    let (site, secret) = tree(dir.path());
    // The outside folder holds a file of the same name as the listed one.
    std::fs::copy(&secret, secret.parent().unwrap().join("moon.html")).unwrap();
    let hook = |_: &[ListedFile]| {
        std::fs::rename(site.join("guide"), dir.path().join("guide-moved")).unwrap();
        std::os::unix::fs::symlink(secret.parent().unwrap(), site.join("guide")).unwrap();
    };
    let p = prepare(&site, &Config::default(), &PrepareOptions { after_listing: Some(&hook), ..Default::default() });
    assert!(!all_text(&p).contains("secret-line"), "the secret was indexed");
    assert_eq!(paths(&p), ["index.html"]);
    let f = p.failed.iter().find(|f| f.path == "guide/moon.html").expect("reported");
    assert_eq!(f.kind, "changed", "{f:?}");
}

#[test]
fn a_file_swapped_for_a_fifo_or_grown_past_the_limit_after_listing_is_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let (site, _) = tree(dir.path());
    write(&site.join("grows.txt"), "small at first");
    let hook = |_: &[ListedFile]| {
        swap(&site.join("index.html"), |tmp| {
            assert!(std::process::Command::new("mkfifo").arg(tmp).status().unwrap().success())
        });
        // Same file, grown in place past the limit.
        std::fs::write(site.join("grows.txt"), "x".repeat(5000)).unwrap();
    };
    let mut cfg = Config::default();
    cfg.ingest.max_bytes = 4096;
    let t = std::time::Instant::now();
    let p = prepare(&site, &cfg, &PrepareOptions { after_listing: Some(&hook), ..Default::default() });
    assert!(t.elapsed().as_secs() < 30, "reading blocked on the FIFO");
    assert_eq!(paths(&p), ["guide/moon.html"]);
    assert_eq!(p.skipped.iter().find(|f| f.path == "index.html").map(|f| f.kind.as_str()), Some("fifo"));
    let big = p.failed.iter().find(|f| f.path == "grows.txt").expect("reported");
    assert_eq!(big.kind, "too_large");
    assert!(big.error.contains("5000") && big.error.contains("4096"), "{}", big.error);
}

#[test]
fn page_urls_are_joined_and_encoded_and_canonical_links_resolved() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    write(&site.join("sub dir/ünï code.html"), &page("Unicode", "A page whose path has a space and accents."));
    write(
        &site.join("guide/canon.html"),
        "<html><head><title>Canon</title><link rel=\"canonical\" href=\"../stable/canon.html\"></head>\
         <body><main><h1>Canon</h1><p>A page that names its canonical address relative to itself.</p></main></body></html>",
    );
    let sources =
        vec![SourceConfig { dir: site.clone(), url_prefix: Some("https://docs.example.com/v2".into()), name: None }];
    let p = ingest::prepare(
        &Inputs::Folders(&sources),
        &Config::default(),
        Tokens::Tokenizer(counter()),
        &Default::default(),
    )
    .unwrap();
    let url = |path: &str| p.documents.iter().find(|d| d.doc.source_path == path).unwrap().url.clone().unwrap();
    assert_eq!(url("sub dir/ünï code.html"), "https://docs.example.com/v2/sub%20dir/%C3%BCn%C3%AF%20code.html");
    assert_eq!(url("guide/canon.html"), "https://docs.example.com/v2/stable/canon.html");
    for d in &p.documents {
        assert!(d.chunks.iter().all(|c| c.url == d.url), "every chunk carries the document URL");
    }

    let bad = vec![SourceConfig { dir: site, url_prefix: Some("docs.example.com/v2".into()), name: None }];
    let e =
        ingest::prepare(&Inputs::Folders(&bad), &Config::default(), Tokens::Tokenizer(counter()), &Default::default())
            .unwrap_err();
    assert!(e.to_string().contains("\"docs.example.com/v2\""), "{e}");
}

#[test]
fn several_sources_join_urls_from_their_own_paths_and_a_symlinked_root_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let (site, _) = tree(dir.path());
    let other = dir.path().join("api-docs");
    write(&other.join("ref/calls.md"), "# Calls\n\nThe call reference for the tide service.");
    let linked = dir.path().join("linked-site");
    std::os::unix::fs::symlink(&site, &linked).unwrap();
    let sources = vec![
        SourceConfig { dir: linked, url_prefix: Some("https://d.example/guide/".into()), name: Some("guide".into()) },
        SourceConfig { dir: other, url_prefix: Some("https://d.example/api".into()), name: None },
    ];
    let p = ingest::prepare(
        &Inputs::Folders(&sources),
        &Config::default(),
        Tokens::Tokenizer(counter()),
        &Default::default(),
    )
    .unwrap();
    let got: Vec<(&str, &str)> =
        p.documents.iter().map(|d| (d.doc.source_path.as_str(), d.url.as_deref().unwrap())).collect();
    assert_eq!(
        got,
        [
            ("guide/guide/moon.html", "https://d.example/guide/guide/moon.html"),
            ("guide/index.html", "https://d.example/guide/index.html"),
            ("api-docs/ref/calls.md", "https://d.example/api/ref/calls.md"),
        ]
    );
}

#[test]
fn listing_reports_a_source_that_is_not_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("file.html");
    write(&f, "x");
    let sel = SourceSelection::default().compile().unwrap();
    assert!(sources::list_source(&f, &sel).unwrap_err().to_string().contains("not a folder"));
    assert!(sources::list_source(&dir.path().join("missing"), &sel).unwrap_err().to_string().contains("missing"));
}

#[test]
fn the_tokenizer_only_counter_counts_like_the_embedder_setup_it_mirrors() {
    let c = counter();
    assert_eq!(c.max_tokens(), 256);
    assert!(c.word_additive_counts());
    // [CLS] + 2 words + [SEP]
    assert_eq!(c.count_tokens("harbour tides"), 4);
}

#[test]
fn a_rebuild_never_indexes_a_file_swapped_for_a_symlink_after_listing() {
    let dir = tempfile::tempdir().unwrap();
    let (site, secret) = tree(dir.path());
    write(&site.join("tables.html"), &page("Tide tables", "Tide tables list high and low water for each day."));
    let hook =
        |_: &[ListedFile]| swap(&site.join("tables.html"), |tmp| std::os::unix::fs::symlink(&secret, tmp).unwrap());
    let embedder = ragsnap::open_embedder(&Config::default().runtime).expect("run `make setup` first");
    let store = dir.path().join("store");
    let opts = ragsnap::RebuildOptions {
        sources: vec![SourceConfig { dir: site.clone(), url_prefix: None, name: None }],
        after_listing: Some(&hook),
        ..Default::default()
    };
    let report = ragsnap::rebuild_with(&store, &Config::default(), &opts, embedder.as_ref()).unwrap();
    assert_eq!(report.files_seen, 3);
    assert!(report.skipped.iter().any(|f| f.path == "tables.html" && f.kind == "symlink"), "{:?}", report.skipped);
    let reader = ragsnap::Store::open_reader(&store).unwrap();
    let snap = ragsnap::Snapshot::open(&reader, &report.snapshot_id).unwrap();
    let docs: Vec<&str> = snap.documents().iter().map(|d| d.source_path.as_str()).collect();
    assert_eq!(docs, ["guide/moon.html", "index.html"]);
    for row in 0..snap.chunks().len() {
        assert!(!snap.chunks().get(row).unwrap().text.contains("secret-line"), "the secret was indexed");
    }
}
