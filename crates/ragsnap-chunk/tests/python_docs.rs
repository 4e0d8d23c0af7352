//! The real corpus: Debian's python3.11-doc (fetched by `make setup`, scripts/fetch_corpus.sh).
//! No chunk may carry Sphinx chrome unless the page's own content says it, and every page
//! with body text must yield chunks.

use ragsnap_chunk::{approx_token_count, chunk_doc, ingest, ChunkConfig, IngestLimits};
use std::path::{Path, PathBuf};

fn corpus() -> PathBuf {
    if let Some(p) = std::env::var_os("RAGSNAP_PYDOC_HTML") {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for c in [
        root.join(".cache/corpus/python3.11-doc/usr/share/doc/python3.11/html"),
        PathBuf::from("/usr/share/doc/python3.11/html"),
    ] {
        if c.join("library/functools.html").is_file() {
            return c;
        }
    }
    panic!("python3.11-doc not found: run `make setup` (scripts/fetch_corpus.sh) or set RAGSNAP_PYDOC_HTML");
}

fn pages(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('_') {
            continue; // _static, _sources, _images: not pages
        }
        if e.file_type().unwrap().is_dir() {
            pages(&p, out);
        } else if name.ends_with(".html") {
            out.push(p);
        }
    }
}

/// Sphinx chrome phrases, as they appear in the page template.
const CHROME: [&str; 9] = [
    "Previous topic",
    "Next topic",
    "This Page",
    "Report a Bug",
    "Show Source",
    "Quick search",
    "Navigation",
    "Copyright",
    "Theme Auto Light Dark",
];

#[test]
fn python_docs_have_no_sphinx_chrome_and_every_page_with_text_yields_chunks() {
    let root = corpus();
    let mut files = Vec::new();
    pages(&root, &mut files);
    files.sort();
    assert!(files.len() > 400, "{} pages", files.len());
    let cfg = ChunkConfig::default();
    let mut chunks_total = 0;
    let mut empty = Vec::new();
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let rel = f.strip_prefix(&root).unwrap().to_string_lossy().into_owned();
        let doc = match ingest(&rel, &bytes, &IngestLimits::default()) {
            Ok(d) => d,
            Err(e) => {
                empty.push(format!("{rel}: {e}"));
                continue;
            }
        };
        // Body text as a reader sees it: the page's main element.
        let html = String::from_utf8_lossy(&bytes);
        let body_start = html.find("role=\"main\"").unwrap_or(0);
        let body_end = html[body_start..].find("class=\"sphinxsidebar\"").map(|i| body_start + i).unwrap_or(html.len());
        let body = &html[body_start..body_end];
        let chunks = chunk_doc(&doc, None, &cfg, &approx_token_count);
        if chunks.is_empty() {
            empty.push(rel.clone());
        }
        chunks_total += chunks.len();
        for c in &chunks {
            for phrase in CHROME {
                if c.text.contains(phrase) {
                    assert!(
                        body.contains(phrase),
                        "{rel}: chunk carries chrome {phrase:?} that the page content does not have:\n{}",
                        c.text
                    );
                }
            }
            assert!(c.tokens <= cfg.max_tokens);
        }
    }
    // Pages with no body text at all (pure redirects / search page) may yield nothing; name them.
    let allowed = ["search.html", "genindex.html"];
    let unexpected: Vec<&String> = empty.iter().filter(|e| !allowed.iter().any(|a| e.starts_with(a))).collect();
    assert!(unexpected.is_empty(), "pages with no chunks: {unexpected:?}");
    eprintln!("{} pages, {chunks_total} chunks", files.len());
}
