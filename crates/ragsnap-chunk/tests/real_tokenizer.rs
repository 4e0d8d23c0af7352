//! The max-tokens guarantee against the pinned model's own tokenizer (the counter a
//! rebuild uses; fetched by `make setup`), on the fixture site and on adversarial
//! inputs: one huge paragraph, a huge code block, a long table, a giant word, CJK
//! text without spaces. Also: `chunk_doc_cached` gives exactly `chunk_doc`'s chunks
//! with this tokenizer, whose counts add up over whitespace.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ragsnap_chunk::{chunk_doc, chunk_doc_cached, ingest_many, ChunkConfig, IngestLimits, SanitizedDoc, TokenCache};
use ragsnap_core::Chunk;
use tokenizers::Tokenizer;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tokenizer() -> &'static Tokenizer {
    static T: OnceLock<Tokenizer> = OnceLock::new();
    T.get_or_init(|| {
        let cache =
            std::env::var_os("RAGSNAP_CACHE").map(PathBuf::from).unwrap_or_else(|| repo_root().join(".cache/runtime"));
        let path = cache.join("models/minilm-l6-int8/tokenizer.json");
        let mut t =
            Tokenizer::from_file(&path).unwrap_or_else(|e| panic!("{}: {e} (run `make setup`)", path.display()));
        // As `OnnxEmbedder::count_tokens` counts: no truncation, no padding.
        t.with_truncation(None).expect("no truncation");
        t.with_padding(None);
        t
    })
}

fn count(s: &str) -> usize {
    tokenizer().encode(s, true).expect("encode").len()
}

fn check(doc: &SanitizedDoc, cfg: &ChunkConfig, cache: &TokenCache) -> Vec<Chunk> {
    let chunks = chunk_doc(doc, None, cfg, &count);
    for c in &chunks {
        assert!(c.tokens <= cfg.max_tokens, "{}: {} > {} tokens", doc.source_path, c.tokens, cfg.max_tokens);
        assert_eq!(count(&c.text), c.tokens, "{}: tokens field", doc.source_path);
        assert!(!doc.markdown[c.byte_range.0..c.byte_range.1].trim().is_empty());
    }
    let cached = chunk_doc_cached(doc, None, cfg, &count, cache);
    assert_eq!(chunks, cached, "{}: chunk_doc_cached differs from chunk_doc", doc.source_path);
    chunks
}

fn configs() -> [ChunkConfig; 3] {
    [
        ChunkConfig::default(),
        ChunkConfig { target_tokens: 40, max_tokens: 48, min_tokens: 8 },
        ChunkConfig { target_tokens: 256, max_tokens: 256, min_tokens: 0 },
    ]
}

fn doc(name: &str, markdown: String) -> SanitizedDoc {
    SanitizedDoc {
        source_path: name.into(),
        title: None,
        canonical_url: None,
        markdown,
        links: vec![],
        warnings: vec![],
        ..Default::default()
    }
}

fn non_space(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

#[test]
fn fixture_site_chunks_fit_the_model() {
    let site = repo_root().join("fixtures/site");
    let mut files = Vec::new();
    let mut stack = vec![site.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(&site).unwrap().to_string_lossy().replace('\\', "/");
                files.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    files.sort();
    assert!(files.len() >= 20);
    let cache = TokenCache::new();
    let mut n = 0;
    for cfg in configs() {
        for d in ingest_many(&files, &IngestLimits::default()).into_iter().flatten() {
            n += check(&d, &cfg, &cache).len();
        }
    }
    assert!(n > 100, "{n} chunks");
}

#[test]
fn adversarial_inputs_fit_the_model_and_lose_nothing() {
    let vocab = [
        "tokenization",
        "über",
        "naïve",
        "café",
        "HTTPServer",
        "x86_64",
        "don't",
        "e.g.",
        "3.14159",
        "—",
        "→",
        "foo_bar_baz",
        "Ωmega",
        "interoperability",
        "🙂",
        "a\u{00A0}b",
        "(see",
        "note)",
        "[1]",
        "supercalifragilistic",
    ];
    let word = |i: usize| vocab[(i * 7 + i / 3) % vocab.len()];
    let paragraph: String = (0..6000).map(word).collect::<Vec<_>>().join(" ");
    let code: String = (0..3000)
        .map(|i| format!("    result_{i} = compute({i}, key=\"{}\")  # {}", word(i), word(i + 1)))
        .collect::<Vec<_>>()
        .join("\n");
    let table: String = std::iter::once("| name | value | description |\n| --- | --- | --- |".to_owned())
        .chain((0..2000).map(|i| format!("| row{i} | {} | {} {} {} |", i * 31, word(i), word(i + 2), word(i + 5))))
        .collect::<Vec<_>>()
        .join("\n");
    let giant_word: String = (0..20_000).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    // No whitespace, but punctuation every other character: one token per character.
    let dotted: String =
        (0..20_000).map(|i| if i % 2 == 1 { '.' } else { char::from(b'a' + (i % 26) as u8) }).collect();
    let cjk: String = "東京都は日本の首都であり、人口が最も多い都市である。".repeat(400);
    let one_line_list: String = (0..3000).map(|i| format!("- item {i} {}", word(i))).collect::<Vec<_>>().join("\n");
    let cases = [
        ("paragraph.md", format!("{paragraph}\n")),
        ("code.md", format!("```python\n{code}\n```\n")),
        ("table.md", format!("{table}\n")),
        ("giant-word.md", format!("{giant_word}\n")),
        ("dotted.md", format!("{dotted}\n")),
        ("cjk.md", format!("{cjk}\n")),
        ("list.md", format!("{one_line_list}\n")),
        ("mixed.md", format!("{paragraph}\n\n```\n{code}\n```\n\n{table}\n\n{giant_word} {cjk}\n")),
    ];
    let cache = TokenCache::new();
    for cfg in configs() {
        for (name, md) in &cases {
            let d = doc(name, md.clone());
            let chunks = check(&d, &cfg, &cache);
            // A word over 100 characters is one `[UNK]` to WordPiece: that one fits.
            assert!(chunks.len() > 1 || *name == "giant-word.md", "{name}: {} chunks", chunks.len());
            // No headings in these documents: the chunk bodies are the whole text.
            let bodies: String = chunks.iter().map(|c| &md[c.byte_range.0..c.byte_range.1]).collect();
            assert_eq!(non_space(&bodies), non_space(md), "{name}: content lost");
        }
    }
}
