//! The bundled Tidewater documentation site (`fixtures/site`) through the whole
//! pipeline: no chrome in any chunk, every page yields chunks, and golden files
//! under `snapshots/golden/` pin the Markdown and chunks byte for byte.
//!
//! Regenerate the golden files with `RAGSNAP_BLESS=1 cargo test -p ragsnap-chunk --test fixtures_site`.

use std::path::{Path, PathBuf};

use ragsnap_chunk::{
    approx_token_count, chunk_doc, ingest, ingest_many, remove_boilerplate, BoilerplateConfig, ChunkConfig,
    IngestError, IngestLimits, SanitizedDoc,
};
use ragsnap_core::Chunk;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repo root")
}

fn list_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read fixture dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// `(relative path, bytes)` for every file under `fixtures/site`, sorted.
fn site_files() -> Vec<(String, Vec<u8>)> {
    let site = repo_root().join("fixtures/site");
    list_files(&site)
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(&site).expect("under site").to_string_lossy().replace('\\', "/");
            (rel, std::fs::read(&p).expect("read fixture"))
        })
        .collect()
}

fn site_docs() -> Vec<SanitizedDoc> {
    let files = site_files();
    assert!(files.len() >= 20, "fixtures/site looks incomplete: {} files", files.len());
    ingest_many(&files, &IngestLimits::default()).into_iter().map(|r| r.expect("every fixture page ingests")).collect()
}

fn chunks_of(doc: &SanitizedDoc) -> Vec<Chunk> {
    chunk_doc(doc, doc.canonical_url.as_deref(), &ChunkConfig::default(), &approx_token_count)
}

/// Strings that occur only in the site chrome of the HTML pages (checked case-sensitively;
/// lower-case "next page" / "previous page" are real pagination content in `api/http.html`).
const CHROME: &[&str] = &[
    "We use cookies",
    "Cookie consent",
    "Skip to content",
    "Edit this page on GitHub",
    "© 2026",
    "Tidewater Project",
    "Previous page",
    "Next page",
    "Main navigation",
    "Search the docs",
    "Toggle theme",
    "document.cookie",
    "tracking pixel",
    "Issue tracker",
    "Security policy",
    "build 8d41e07",
    "needs JavaScript",
    "need JavaScript",
    "2.2 beta is out",
    "2.1 (latest)",
    "Permanent link",
    "--accent",
];

fn is_html(doc: &SanitizedDoc) -> bool {
    doc.source_path.ends_with(".html")
}

#[test]
fn no_chunk_contains_site_chrome() {
    let mut docs = site_docs();
    remove_boilerplate(&mut docs, &BoilerplateConfig::default());
    let cfg = ChunkConfig::default();
    for doc in &docs {
        let chunks = chunks_of(doc);
        assert!(!chunks.is_empty(), "{} produced no chunks", doc.source_path);
        for chunk in &chunks {
            assert!(chunk.tokens <= cfg.max_tokens, "{}: {} tokens", doc.source_path, chunk.tokens);
            if !is_html(doc) {
                continue; // Markdown and text are content as written.
            }
            for chrome in CHROME {
                assert!(
                    !chunk.text.contains(chrome),
                    "{}: chunk contains {chrome:?}:\n{}",
                    doc.source_path,
                    chunk.text
                );
            }
            assert!(
                !chunk.text.contains(" #\n") && !chunk.text.ends_with(" #"),
                "headerlink left in {}",
                doc.source_path
            );
        }
    }
}

#[test]
fn chrome_words_in_content_are_kept() {
    let docs = site_docs();
    let md = |path: &str| docs.iter().find(|d| d.source_path == path).map(|d| d.markdown.clone()).expect(path);
    let http = md("api/http.html");
    assert!(http.contains("cookie"), "session cookie auth kept");
    assert!(http.to_lowercase().contains("next page"), "pagination text kept");
    assert!(http.contains("Search") || http.contains("search"));
    let trouble = md("ops/troubleshooting.html");
    assert!(trouble.contains("cookie") && trouble.contains("footer"));
    assert!(trouble.contains("## Job search returns nothing"), "a heading whose id slug holds a chrome word is kept");
    assert!(md("faq.html").contains("### Can several servers share one data directory?"));
    assert!(md("faq.html").to_lowercase().contains("copyright"));
    assert!(md("faq.html").contains("cookie"));
    assert!(md("quickstart.html").to_lowercase().contains("navigation"));
}

#[test]
fn fallback_pages_and_latin1_come_through() {
    let docs = site_docs();
    let get = |path: &str| docs.iter().find(|d| d.source_path == path).expect(path);
    for path in ["guide/workers.html", "ops/troubleshooting.html"] {
        let d = get(path);
        assert!(d.markdown.starts_with("# "), "{path} keeps its h1:\n{}", d.markdown);
        assert!(d.markdown.len() > 1000, "{path} keeps its content");
    }
    let latin = get("legacy/latin1.html");
    assert!(latin.warnings.is_empty(), "{:?}", latin.warnings);
    for word in ["Zürich", "naïve", "Groß", "Conceição"] {
        assert!(latin.markdown.contains(word), "{word} decoded");
    }
    assert!(latin.title.as_deref().is_some_and(|t| !t.contains('\u{FFFD}')));
}

#[test]
fn every_page_has_title_and_canonical_url() {
    for doc in site_docs().iter().filter(|d| is_html(d)) {
        let title = doc.title.as_deref().unwrap_or_default();
        assert!(!title.is_empty() && !title.contains("Tidewater docs"), "{}: title {title:?}", doc.source_path);
        let canonical = doc.canonical_url.as_deref().unwrap_or_default();
        assert!(canonical.starts_with("https://docs.tidewater.example/"), "{}", doc.source_path);
    }
}

#[test]
fn bad_fixtures_are_handled() {
    let bad = repo_root().join("fixtures/bad");
    let read = |name: &str| std::fs::read(bad.join(name)).expect(name);
    let limits = IngestLimits::default();
    assert!(matches!(ingest("bad/binary.html", &read("binary.html"), &limits), Err(IngestError::Binary { .. })));
    assert!(matches!(ingest("bad/empty.html", &read("empty.html"), &limits), Err(IngestError::Empty { .. })));
    assert!(matches!(
        ingest("bad/unknown.pdf", &read("unknown.pdf"), &limits),
        Err(IngestError::UnsupportedType { ref extension, .. }) if extension == "pdf"
    ));
    let broken = ingest("bad/broken.html", &read("broken.html"), &limits).expect("broken.html still has content");
    for chrome in ["Previous page", "Next page", "©"] {
        assert!(!broken.markdown.contains(chrome), "broken.html keeps {chrome:?}:\n{}", broken.markdown);
    }
    assert!(!chunks_of(&broken).is_empty());
    let utf8 = ingest("bad/invalid-utf8.md", &read("invalid-utf8.md"), &limits).expect("invalid UTF-8 is replaced");
    assert!(utf8.warnings.iter().any(|w| w.contains("invalid UTF-8")));
    assert!(utf8.markdown.contains("naïve") && utf8.markdown.contains('\u{FFFD}'));
}

// ---- golden files -------------------------------------------------------------

fn bless() -> bool {
    std::env::var("RAGSNAP_BLESS").is_ok_and(|v| v == "1")
}

/// Compare `actual` with the committed file, or write it when blessing.
fn check_golden(path: &Path, actual: &str, failures: &mut Vec<String>) {
    if bless() {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("create golden dir");
        std::fs::write(path, actual).expect("write golden file");
        return;
    }
    match std::fs::read_to_string(path) {
        Ok(expected) if expected == actual => {}
        Ok(_) => failures.push(format!("{} differs", path.display())),
        Err(_) => failures.push(format!("{} is missing", path.display())),
    }
}

#[derive(serde::Serialize)]
struct GoldenDoc<'a> {
    title: &'a Option<String>,
    canonical_url: &'a Option<String>,
    links: &'a [String],
    warnings: &'a [String],
    chunks: &'a [Chunk],
}

/// The pipeline as the CLI runs it: ingest, corpus boilerplate removal, chunking
/// with `approx_token_count`. Golden Markdown is taken after boilerplate removal.
#[test]
fn golden_files_match() {
    let golden = repo_root().join("snapshots/golden");
    let mut docs = site_docs();
    let report = remove_boilerplate(&mut docs, &BoilerplateConfig::default());
    let mut failures = Vec::new();
    let report_json = serde_json::to_string_pretty(&report).expect("json") + "\n";
    check_golden(&golden.join("boilerplate.json"), &report_json, &mut failures);
    for doc in &docs {
        check_golden(&golden.join("markdown").join(format!("{}.md", doc.source_path)), &doc.markdown, &mut failures);
        let chunks = chunks_of(doc);
        let g = GoldenDoc {
            title: &doc.title,
            canonical_url: &doc.canonical_url,
            links: &doc.links,
            warnings: &doc.warnings,
            chunks: &chunks,
        };
        let json = serde_json::to_string_pretty(&g).expect("json") + "\n";
        check_golden(&golden.join("chunks").join(format!("{}.json", doc.source_path)), &json, &mut failures);
    }
    assert!(
        failures.is_empty(),
        "golden files out of date (inspect, then rerun with RAGSNAP_BLESS=1 to accept):\n{}",
        failures.join("\n")
    );
}

#[test]
fn chunking_is_deterministic_across_runs() {
    let a: Vec<Vec<Chunk>> = site_docs().iter().map(chunks_of).collect();
    let b: Vec<Vec<Chunk>> = site_docs().iter().map(chunks_of).collect();
    assert_eq!(a, b);
}
