//! Property tests: arbitrary HTML-ish and Markdown-ish input never panics, and
//! every chunk respects the token limit, locates its body exactly, and is stable.

use proptest::prelude::*;
use ragsnap_chunk::{
    approx_token_count, chunk_doc, chunk_doc_cached, ingest, sanitize_html, ChunkConfig, IngestLimits, SanitizedDoc,
    TokenCache,
};
use ragsnap_core::{Chunk, ContentId};

fn html_token() -> impl Strategy<Value = String> {
    let tags = prop::sample::select(vec![
        "div",
        "p",
        "span",
        "a",
        "ul",
        "ol",
        "li",
        "table",
        "tr",
        "td",
        "th",
        "thead",
        "pre",
        "code",
        "h1",
        "h2",
        "h3",
        "h4",
        "blockquote",
        "dl",
        "dt",
        "dd",
        "nav",
        "header",
        "footer",
        "main",
        "article",
        "aside",
        "section",
        "script",
        "style",
        "form",
        "button",
        "svg",
        "b",
        "i",
        "em",
        "br",
        "img",
        "hr",
        "title",
        "template",
        "noscript",
        "select",
    ]);
    let attrs = prop::sample::select(vec![
        "",
        " class=\"nav\"",
        " class=\"content\"",
        " hidden",
        " aria-hidden=\"true\"",
        " role=\"main\"",
        " role=\"navigation\"",
        " style=\"display:none\"",
        " href=\"/x.html\"",
        " rel=\"next\"",
        " class=\"language-rust\"",
        " alt=\"pic\"",
        " id=\"cookie-banner\"",
    ]);
    let text = prop::sample::select(vec![
        "Tidewater",
        "queue",
        "lease.",
        "Next page",
        "© 2026",
        "We use cookies",
        "# hash",
        "1. one",
        "- dash",
        "`tick`",
        "```",
        "|",
        "&amp;",
        "&lt;b&gt;",
        "&nbsp;",
        " ",
        "\n",
        "\t",
        "Hello world. Another sentence! ",
        "ünïcödé",
        "\u{200B}",
        "<",
        ">",
        "\"",
        "'",
        "=",
        "&",
        "Skip to content",
    ]);
    prop_oneof![
        3 => (tags.clone(), attrs).prop_map(|(t, a)| format!("<{t}{a}>")),
        2 => tags.clone().prop_map(|t| format!("</{t}>")),
        4 => text.prop_map(str::to_owned),
        1 => Just("<!-- c -->".to_owned()),
        1 => "[a-z ]{1,40}".prop_map(|s| s),
    ]
}

fn html_doc() -> impl Strategy<Value = String> {
    prop::collection::vec(html_token(), 0..120).prop_map(|v| v.concat())
}

fn md_line() -> impl Strategy<Value = String> {
    let words = "[a-zA-Z]{1,12}( [a-zA-Z]{1,12}){0,30}[.!?]?";
    prop_oneof![
        2 => words.prop_map(|w| format!("{w}\n")),
        1 => (1usize..=4, "[a-zA-Z ]{0,30}").prop_map(|(l, t)| format!("{} {t}\n", "#".repeat(l))),
        1 => words.prop_map(|w| format!("- {w}\n")),
        1 => words.prop_map(|w| format!("  1. {w}\n")),
        1 => Just("\n".to_owned()),
        1 => Just("```rust\nfn main() {}\nlet x = 1;\n```\n".to_owned()),
        1 => Just("| a | b |\n| --- | --- |\n| 1 | 2 |\n".to_owned()),
        1 => words.prop_map(|w| format!("> {w}\n")),
        1 => "[a-z]{200,600}".prop_map(|w| format!("{w}\n")),
        1 => Just("---\n".to_owned()),
        1 => Just("<div>raw html</div>\n".to_owned()),
    ]
}

fn md_doc() -> impl Strategy<Value = String> {
    prop::collection::vec(md_line(), 0..80).prop_map(|v| v.concat())
}

fn config() -> impl Strategy<Value = ChunkConfig> {
    (24usize..300).prop_flat_map(|max| {
        (Just(max), (max / 2)..=max).prop_flat_map(|(max, target)| {
            (0..=target / 2).prop_map(move |min| ChunkConfig {
                target_tokens: target,
                max_tokens: max,
                min_tokens: min,
            })
        })
    })
}

fn doc(markdown: String, title: Option<String>) -> SanitizedDoc {
    SanitizedDoc {
        source_path: "p/doc.md".into(),
        title,
        canonical_url: None,
        markdown,
        links: vec![],
        warnings: vec![],
        ..Default::default()
    }
}

/// A second, very different counter: the guarantee must hold for any counter.
fn bytes_counter(s: &str) -> usize {
    s.len().div_ceil(4)
}

/// A counter that adds up over words as `chunk_doc_cached` needs (ASCII whitespace
/// separates, ASCII punctuation but brackets is a word of its own; plus a fixed 2,
/// like BERT's `[CLS]`/`[SEP]`): `chunk_doc_cached` must give `chunk_doc`'s chunks.
fn word_counter(s: &str) -> usize {
    let (mut total, mut run) = (2usize, 0usize);
    for c in s.chars() {
        let space = matches!(c, ' ' | '\t' | '\n' | '\r');
        let punct = c.is_ascii_punctuation() && c != '[' && c != ']';
        if space || punct {
            total += run.div_ceil(3) + usize::from(punct);
            run = 0;
        } else {
            run += 1;
        }
    }
    total + run.div_ceil(3)
}

fn check_cached(doc: &SanitizedDoc, cfg: &ChunkConfig) -> Result<(), TestCaseError> {
    let cache = TokenCache::new();
    let cached = chunk_doc_cached(doc, Some("https://u"), cfg, &word_counter, &cache);
    let plain = check_chunks(doc, cfg, &word_counter)?;
    prop_assert_eq!(cached, plain);
    Ok(())
}

fn check_chunks(
    doc: &SanitizedDoc,
    cfg: &ChunkConfig,
    count: &(dyn Fn(&str) -> usize + Sync),
) -> Result<Vec<Chunk>, TestCaseError> {
    let chunks = chunk_doc(doc, Some("https://u"), cfg, count);
    for c in &chunks {
        prop_assert!(c.tokens <= cfg.max_tokens, "{} > {}: {:?}", c.tokens, cfg.max_tokens, c.text);
        prop_assert_eq!(count(&c.text), c.tokens);
        let header = c.header_path.join(" > ");
        let (start, end) = c.byte_range;
        let body = &doc.markdown[start..end];
        prop_assert_eq!(&c.text, &format!("{header}\n\n{body}"));
        prop_assert!(!body.trim().is_empty());
        prop_assert_eq!(&c.content_id, &ContentId::of_text(&c.text));
        let lines_before = doc.markdown[..start].matches('\n').count() + 1;
        prop_assert_eq!(c.line_range.0, lines_before);
        prop_assert!(c.line_range.1 >= c.line_range.0);
    }
    for pair in chunks.windows(2) {
        prop_assert!(pair[0].byte_range.1 <= pair[1].byte_range.0, "chunks overlap or are out of order");
    }
    let again = chunk_doc(doc, Some("https://u"), cfg, count);
    prop_assert_eq!(&chunks, &again);
    Ok(chunks)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn html_never_panics_and_chunks_fit(html in html_doc(), cfg in config()) {
        if let Ok(doc) = sanitize_html("p/doc.html", html.as_bytes()) {
            prop_assert!(doc.markdown.ends_with('\n'));
            prop_assert!(!doc.markdown.trim().is_empty());
            check_chunks(&doc, &cfg, &approx_token_count)?;
            check_chunks(&doc, &cfg, &bytes_counter)?;
            check_cached(&doc, &cfg)?;
            let again = sanitize_html("p/doc.html", html.as_bytes()).unwrap();
            prop_assert_eq!(doc, again);
        }
    }

    #[test]
    fn markdown_chunks_fit(md in md_doc(), title in proptest::option::of("[A-Za-z ]{1,300}"), cfg in config()) {
        let d = doc(md, title);
        check_chunks(&d, &cfg, &approx_token_count)?;
        check_chunks(&d, &cfg, &bytes_counter)?;
        check_cached(&d, &cfg)?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2000), ext in prop::sample::select(vec!["html", "md", "txt", "bin"])) {
        let path = format!("x.{ext}");
        if let Ok(doc) = ingest(&path, &bytes, &IngestLimits::default()) {
            check_chunks(&doc, &ChunkConfig::default(), &approx_token_count)?;
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        let _ = sanitize_html("x.html", text.as_bytes());
        if let Ok(doc) = ingest("x.md", text.as_bytes(), &IngestLimits::default()) {
            check_chunks(&doc, &ChunkConfig { target_tokens: 40, max_tokens: 48, min_tokens: 8 }, &approx_token_count)?;
        }
    }
}

#[test]
fn nothing_is_lost_with_ample_budget() {
    // With a budget larger than the document, every content block is in some chunk.
    let md = "# T\n\nIntro.\n\n## A\n\nText a.\n\n```\ncode\n```\n\n## B\n\n- x\n- y\n";
    let d = doc(md.into(), None);
    let cfg = ChunkConfig { target_tokens: 500, max_tokens: 512, min_tokens: 0 };
    let chunks = chunk_doc(&d, None, &cfg, &approx_token_count);
    let all: String = chunks.iter().map(|c| c.text.clone()).collect();
    for piece in ["Intro.", "Text a.", "code", "- x\n- y"] {
        assert!(all.contains(piece), "{piece}");
    }
}
