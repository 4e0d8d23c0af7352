//! Decoding (BOM, `<meta>` charsets, invalid UTF-8) and the ingest checks, plus
//! the deep-nesting regression: 100,000 nested `<div>`s must neither overflow
//! the stack nor take the parser minutes.

use std::time::{Duration, Instant};

use ragsnap_chunk::{approx_token_count, chunk_doc, ingest, sanitize_html, ChunkConfig, IngestError, IngestLimits};

#[test]
fn latin1_meta_charset() {
    let mut bytes = b"<html><head><meta charset=\"iso-8859-1\"><title>Z\xfcrich</title></head><body><p>na\xefve Gro\xdf</p></body></html>".to_vec();
    let doc = sanitize_html("l.html", &bytes).unwrap();
    assert_eq!(doc.markdown, "naïve Groß\n");
    assert_eq!(doc.title.as_deref(), Some("Zürich"));
    assert!(doc.warnings.is_empty());
    // The http-equiv form.
    bytes =
        b"<meta http-equiv=\"Content-Type\" content=\"text/html; charset=windows-1252\"><p>\x93quoted\x94</p>".to_vec();
    assert_eq!(sanitize_html("l.html", &bytes).unwrap().markdown, "\u{201C}quoted\u{201D}\n");
}

#[test]
fn bom_overrides_meta() {
    let mut bytes = vec![0xEF, 0xBB, 0xBF];
    bytes.extend_from_slice("<meta charset=iso-8859-1><p>Zürich</p>".as_bytes());
    let doc = sanitize_html("b.html", &bytes).unwrap();
    assert_eq!(doc.markdown, "Zürich\n");
    assert!(doc.warnings.is_empty());

    let mut bytes = vec![0xFE, 0xFF];
    for unit in "<p>Groß</p>".encode_utf16() {
        bytes.extend_from_slice(&unit.to_be_bytes());
    }
    assert_eq!(ingest("b.html", &bytes, &IngestLimits::default()).unwrap().markdown, "Groß\n");
}

#[test]
fn invalid_utf8_is_replaced_with_a_warning() {
    let doc = sanitize_html("u.html", b"<p>caf\xe9 ok \xff\xfe end</p>").unwrap();
    assert_eq!(doc.markdown, "caf\u{FFFD} ok \u{FFFD}\u{FFFD} end\n");
    assert_eq!(doc.warnings, ["invalid UTF-8 replaced with U+FFFD"]);
    let doc = ingest("u.md", b"# T\n\nna\xc3\xafve \xc3", &IngestLimits::default()).unwrap();
    assert!(doc.markdown.contains("naïve \u{FFFD}"));
    assert_eq!(doc.warnings.len(), 1);
}

#[test]
fn ingest_checks_in_order() {
    let limits = IngestLimits { max_bytes: 16 };
    // Size is checked before anything else, even for binary or unknown files.
    assert!(matches!(ingest("a.pdf", &[0u8; 17], &limits), Err(IngestError::TooLarge { size: 17, limit: 16, .. })));
    let limits = IngestLimits::default();
    // A NUL byte anywhere, not just in the first 8 KiB.
    let mut late_nul = vec![b'a'; 20_000];
    late_nul[19_000] = 0;
    assert!(matches!(ingest("a.txt", &late_nul, &limits), Err(IngestError::Binary { .. })));
    assert!(matches!(ingest("a.docx", b"text", &limits), Err(IngestError::UnsupportedType { .. })));
    assert!(
        matches!(ingest("noext", b"text", &limits), Err(IngestError::UnsupportedType { ref extension, .. }) if extension.is_empty())
    );
    assert!(matches!(ingest("a.html", b"<html><body>  </body></html>", &limits), Err(IngestError::Empty { .. })));
    assert_eq!(ingest("a.HTM", b"<p>x</p>", &limits).unwrap().markdown, "x\n");
    assert_eq!(ingest("a.markdown", b"x", &limits).unwrap().markdown, "x\n");
}

#[test]
fn text_files_become_escaped_paragraphs() {
    let doc = ingest("n.txt", b"Title line\n# not a heading\n\n\n  - not a list\n", &IngestLimits::default()).unwrap();
    assert_eq!(doc.markdown, "Title line\n\\# not a heading\n\n\\- not a list\n");
    let chunks = chunk_doc(&doc, None, &ChunkConfig::default(), &approx_token_count);
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0].header_path, ["n.txt"]);
}

/// Regression for the "Ingest" issue: 100,000 nested `<div>`s.
#[test]
fn hundred_thousand_nested_divs() {
    let n = 100_000;
    let html = format!(
        "<html><body><main>{}<p>deep text</p>{}<p>after</p></main></body></html>",
        "<div>".repeat(n),
        "</div>".repeat(n)
    );
    let started = Instant::now();
    // Run on a small stack: a recursive walk would overflow it.
    let doc = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || sanitize_html("deep.html", html.as_bytes()))
        .expect("spawn")
        .join()
        .expect("no stack overflow")
        .expect("content");
    assert_eq!(doc.markdown, "deep text\n\nafter\n");
    assert!(doc.warnings.iter().any(|w| w.contains("flattened")));
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
}

#[test]
fn deep_unclosed_inline_tags() {
    let html = format!("<p>{}x</p>", "<b><i><span>".repeat(20_000));
    let started = Instant::now();
    let doc = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || sanitize_html("deep.html", html.as_bytes()))
        .expect("spawn")
        .join()
        .expect("no stack overflow")
        .expect("content");
    assert_eq!(doc.markdown, "x\n");
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
}

#[test]
fn deep_markdown_nesting_does_not_overflow() {
    let md = format!("# T\n\n{}deep\n", "> ".repeat(5_000));
    let doc = ingest("d.md", md.as_bytes(), &IngestLimits::default()).unwrap();
    let chunks = std::thread::Builder::new()
        .stack_size(8 * 1024 * 1024)
        .spawn(move || chunk_doc(&doc, None, &ChunkConfig::default(), &approx_token_count))
        .expect("spawn")
        .join()
        .expect("no stack overflow");
    for c in &chunks {
        assert!(c.tokens <= 256);
    }
}
