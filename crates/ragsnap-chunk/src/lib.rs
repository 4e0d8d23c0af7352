//! HTML sanitising and header-aware Markdown chunking for ragsnap: bytes in, chunks out.
//!
//! ragsnap exists because un-sanitised HTML put nav bars, footers, CSS and cookie
//! banners into the index, and they crowded every top-k. This crate is where that
//! stops. It is pure (no I/O) and has four steps:
//!
//! 1. [`ingest`] decodes a file and dispatches on its extension: HTML goes through
//!    [`sanitize_html`], which keeps the page's content region (`main`,
//!    `[role=main]`, a lone `article`, else the body) and drops scripts, styles,
//!    forms, hidden elements and page chrome (navigation, page header and footer,
//!    sidebars, breadcrumbs, cookie banners, "skip to content", prev/next and
//!    "edit this page" links, copyright lines, Sphinx sidebars) before converting
//!    the rest to Markdown. It also finds the page's main text flow by structure
//!    (the element holding every heading and most of the words; what sits beside
//!    it, or before a section's heading, is outside), drops blocks of links outside
//!    it, and records the text-free *shape* of other short link-bearing blocks there
//!    ([`PageBlock`]). Callout boxes (a short title and a body, in an `aside`, a
//!    hinted `div`, or a small table) stay inline, their title a `**Label:**`.
//!    Pages that are mostly lists of links are flagged as hubs
//!    ([`SanitizedDoc::hub`]). `.md` is kept as written; `.txt` becomes paragraphs.
//! 2. [`remove_boilerplate`] works on the whole corpus: blocks whose shape recurs
//!    on many pages are template (their words may differ per page); recurring text
//!    goes when it is long or chrome-like, while short repeated prose in the content
//!    ("New in version 3.11.") stays; a site name shared by the titles is stripped.
//! 3. [`chunk_doc`] cuts a document into [`Chunk`](ragsnap_core::Chunk)s along its
//!    heading structure, each at most `max_tokens` by the caller's token counter,
//!    header path line included. A first heading that names the page as its title
//!    does is not repeated under it. [`chunk_doc_cached`] gives the same chunks for a
//!    counter that adds up over words (BERT WordPiece), counting each distinct word
//!    once per shared [`TokenCache`] instead of tokenising candidate chunks.
//! 4. [`ingest_many`] runs step 1 over many files in parallel.
//!
//! Every step is deterministic: the same bytes give the same Markdown, the same
//! chunks, ids and order. Parsing never panics on malformed input, and deeply
//! nested documents are walked with an explicit stack.
//!
//! ```
//! use ragsnap_chunk::{approx_token_count, chunk_doc, ingest, ChunkConfig, IngestLimits};
//!
//! let page = r##"<!doctype html><html><head><title>Tides &mdash; Tidewater</title></head><body>
//!   <a href="#main">Skip to content</a>
//!   <nav><a href="/">Home</a> <a href="/guide/">Guide</a></nav>
//!   <div id="cookie-banner">We use cookies. <button>Accept</button></div>
//!   <main id="main">
//!     <h1>Tides</h1>
//!     <p>Tidewater predicts <em>tides</em> for any harbour.</p>
//!     <h2>Install</h2>
//!     <pre><code class="language-sh">pip install tidewater</code></pre>
//!   </main>
//!   <footer>© 2026 Tidewater Inc.</footer>
//! </body></html>"##;
//!
//! let doc = ingest("guide/tides.html", page.as_bytes(), &IngestLimits::default()).unwrap();
//! assert_eq!(doc.title.as_deref(), Some("Tides"));
//! assert_eq!(
//!     doc.markdown,
//!     "# Tides\n\nTidewater predicts tides for any harbour.\n\n## Install\n\n```sh\npip install tidewater\n```\n"
//! );
//!
//! let chunks = chunk_doc(&doc, Some("https://docs.example/tides"), &ChunkConfig::default(), &approx_token_count);
//! assert_eq!(chunks.len(), 1); // the two small sections merged
//! assert!(chunks[0].text.starts_with("Tides\n\nTidewater predicts tides"));
//! assert!(!chunks[0].text.contains("cookies"));
//! ```

mod boilerplate;
mod chunker;
mod controls;
mod decode;
mod depth_guard;
mod html;
mod markdown;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use boilerplate::{remove_boilerplate, BoilerplateConfig, BoilerplateReport};
pub use chunker::{approx_token_count, chunk_doc, chunk_doc_cached, ChunkConfig, TokenCache};
pub use html::sanitize_html;

/// Version of the sanitising and chunking rules. Bump it whenever the same input
/// can produce different Markdown or chunks, so snapshots record what made them.
pub const CHUNKER_VERSION: u32 = 3;

/// Why a file produced no document. Every variant names the file.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The file is bigger than [`IngestLimits::max_bytes`]; it was not decoded.
    #[error("{path}: {size} bytes is over the {limit}-byte limit")]
    TooLarge {
        /// Source path of the file.
        path: String,
        /// Its size in bytes.
        size: u64,
        /// The limit it exceeds.
        limit: u64,
    },
    /// The file contains a NUL byte (outside UTF-16 text): not a text document.
    #[error("{path}: binary content (NUL byte)")]
    Binary {
        /// Source path of the file.
        path: String,
    },
    /// The extension is not one ragsnap ingests (`.html`, `.htm`, `.md`, `.markdown`, `.txt`).
    #[error("{path}: unsupported file type {extension:?}")]
    UnsupportedType {
        /// Source path of the file.
        path: String,
        /// Its extension, lowercased, without the dot (empty when it has none).
        extension: String,
    },
    /// The file parsed but no content remained: it produces no chunks. Callers
    /// usually report this as a note rather than a failure.
    #[error("{path}: no content after sanitising")]
    Empty {
        /// Source path of the file.
        path: String,
    },
}

/// Limits applied by [`ingest`] before any decoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngestLimits {
    /// Files bigger than this are rejected with [`IngestError::TooLarge`]. Default 20 MiB.
    pub max_bytes: u64,
}

impl Default for IngestLimits {
    fn default() -> Self {
        IngestLimits { max_bytes: 20 * 1024 * 1024 }
    }
}

/// A source document reduced to clean Markdown plus metadata.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SanitizedDoc {
    /// Path relative to the source root, `/`-separated.
    pub source_path: String,
    /// The page title (`<title>`, without a site suffix the first `<h1>` confirms;
    /// Markdown front matter `title:` or first `# ` heading; none for text).
    pub title: Option<String>,
    /// The `<title>` as written, when [`title`](Self::title) was shortened from it: the
    /// corpus pass looks for a site name shared by the titles as written. Emptied by
    /// [`remove_boilerplate`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_title: Option<String>,
    /// `<link rel="canonical">` of an HTML page.
    pub canonical_url: Option<String>,
    /// Clean Markdown of the content, ending in a newline.
    pub markdown: String,
    /// Link targets found in the content, in first-seen order, without duplicates.
    /// Kept as metadata only: link text stays in the Markdown, targets do not.
    pub links: Vec<String>,
    /// Problems that did not stop ingestion, e.g. `invalid UTF-8 replaced with U+FFFD`.
    pub warnings: Vec<String>,
    /// Blocks of `markdown` that may be page template, with their text-free shape, for the
    /// corpus pass ([`remove_boilerplate`]), which consumes them (and empties this list,
    /// since its byte ranges no longer hold once the Markdown is rewritten).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<PageBlock>,
    /// The page is mostly a list of links (a table of contents, site map or index):
    /// its targets carry the content. See [`sanitize_html`] for the rule.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hub: bool,
}

/// A block of a sanitised page's Markdown that the corpus pass may remove.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PageBlock {
    /// Byte range in [`SanitizedDoc::markdown`], separator newlines before it included.
    pub range: (usize, usize),
    /// Text-free shape signature (tag path, class/id/role/summary attributes, the
    /// kinds of elements inside) of a short, link-bearing element outside the page's
    /// main text flow: a template candidate. `None` for the other blocks.
    pub shape: Option<u64>,
    /// `true` when the block is outside the main text flow or link-dense: repeated
    /// text there may go; repeated prose in the content flow always stays.
    pub chrome_like: bool,
    /// Set when [`PageBlock::shape`] is the signature of a tiny control (see the
    /// `controls` module): a hash of where its links lead, resolved against the page. A
    /// control recurs on far fewer pages than a site's menus, so the corpus pass drops it
    /// once it is seen on a few pages, not on a share of them, provided its links lead
    /// to more than one place across them (a label such as "source" or "Read more").
    pub control: Option<u64>,
}

/// Which converter a file goes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FileKind {
    Html,
    Markdown,
    Text,
}

pub(crate) fn extension_of(source_path: &str) -> String {
    let name = source_path.rsplit(['/', '\\']).next().unwrap_or(source_path);
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => ext.to_ascii_lowercase(),
        _ => String::new(),
    }
}

/// Turn one file into a [`SanitizedDoc`].
///
/// Checks, in order: the size limit (before decoding anything), NUL bytes
/// ([`IngestError::Binary`]; UTF-16 files with a byte-order mark are decoded
/// first and checked for U+0000 instead), then the extension: `.html`/`.htm` →
/// [`sanitize_html`]; `.md`/`.markdown` → kept as written after decoding (YAML
/// front matter is removed and its `title:` kept); `.txt` → paragraphs, each
/// line escaped so it cannot become Markdown syntax. Returns
/// [`IngestError::Empty`] when no content remains.
pub fn ingest(source_path: &str, bytes: &[u8], limits: &IngestLimits) -> Result<SanitizedDoc, IngestError> {
    let size = bytes.len() as u64;
    if size > limits.max_bytes {
        return Err(IngestError::TooLarge { path: source_path.to_owned(), size, limit: limits.max_bytes });
    }
    let utf16_bom = bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]);
    if !utf16_bom && bytes.contains(&0) {
        return Err(IngestError::Binary { path: source_path.to_owned() });
    }
    let extension = extension_of(source_path);
    let kind = match extension.as_str() {
        "html" | "htm" | "xhtml" => FileKind::Html,
        "md" | "markdown" => FileKind::Markdown,
        "txt" | "text" => FileKind::Text,
        _ => return Err(IngestError::UnsupportedType { path: source_path.to_owned(), extension }),
    };
    let decoded = decode::decode(bytes, kind == FileKind::Html);
    if decoded.utf16 && decoded.text.contains('\0') {
        return Err(IngestError::Binary { path: source_path.to_owned() });
    }
    let empty = || IngestError::Empty { path: source_path.to_owned() };
    match kind {
        FileKind::Html => html::sanitize_html_text(source_path, &decoded.text, decoded.warnings),
        FileKind::Markdown => {
            let (title, markdown) = markdown::markdown_doc(&decoded.text);
            if markdown.trim().is_empty() {
                return Err(empty());
            }
            Ok(SanitizedDoc {
                source_path: source_path.to_owned(),
                title,
                canonical_url: None,
                markdown,
                links: Vec::new(),
                warnings: decoded.warnings,
                ..SanitizedDoc::default()
            })
        }
        FileKind::Text => {
            let markdown = markdown::text_doc(&decoded.text);
            if markdown.is_empty() {
                return Err(empty());
            }
            Ok(SanitizedDoc {
                source_path: source_path.to_owned(),
                title: None,
                canonical_url: None,
                markdown,
                links: Vec::new(),
                warnings: decoded.warnings,
                ..SanitizedDoc::default()
            })
        }
    }
}

/// [`ingest`] over many `(source_path, bytes)` pairs in parallel (rayon's global
/// pool). Results come back in input order.
pub fn ingest_many(docs: &[(String, Vec<u8>)], limits: &IngestLimits) -> Vec<Result<SanitizedDoc, IngestError>> {
    docs.par_iter().map(|(path, bytes)| ingest(path, bytes, limits)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions() {
        assert_eq!(extension_of("a/b/C.HTML"), "html");
        assert_eq!(extension_of("a/b.d/README"), "");
        assert_eq!(extension_of(".hidden"), "");
        assert_eq!(extension_of("x.tar.gz"), "gz");
    }

    #[test]
    fn ingest_errors_name_the_file() {
        let limits = IngestLimits { max_bytes: 10 };
        let e = ingest("big.html", &[b'a'; 11], &limits).unwrap_err();
        assert!(matches!(e, IngestError::TooLarge { size: 11, limit: 10, .. }));
        assert!(e.to_string().starts_with("big.html:"));
        let limits = IngestLimits::default();
        assert!(matches!(ingest("x.html", b"<p>a\0b</p>", &limits), Err(IngestError::Binary { .. })));
        assert!(matches!(
            ingest("x.pdf", b"%PDF", &limits),
            Err(IngestError::UnsupportedType { ref extension, .. }) if extension == "pdf"
        ));
        assert!(matches!(ingest("x.md", b"\n \n", &limits), Err(IngestError::Empty { .. })));
        assert!(matches!(ingest("x.txt", b"", &limits), Err(IngestError::Empty { .. })));
        assert!(matches!(ingest("x.html", b"<nav>only chrome</nav>", &limits), Err(IngestError::Empty { .. })));
    }

    #[test]
    fn utf16_with_bom_is_text() {
        let mut bytes = vec![0xFF, 0xFE];
        for u in "<p>héllo</p>".encode_utf16() {
            bytes.extend_from_slice(&u.to_le_bytes());
        }
        let doc = ingest("u.html", &bytes, &IngestLimits::default()).unwrap();
        assert_eq!(doc.markdown, "héllo\n");
    }

    #[test]
    fn many_keeps_order() {
        let docs = vec![
            ("a.txt".to_owned(), b"one".to_vec()),
            ("b.bin".to_owned(), vec![0]),
            ("c.md".to_owned(), b"# C".to_vec()),
        ];
        let out = ingest_many(&docs, &IngestLimits::default());
        assert_eq!(out[0].as_ref().unwrap().markdown, "one\n");
        assert!(out[1].is_err());
        assert_eq!(out[2].as_ref().unwrap().title.as_deref(), Some("C"));
    }
}
