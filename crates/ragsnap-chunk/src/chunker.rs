//! Header-aware chunking of sanitised Markdown.
//!
//! 1. pulldown-cmark (with byte offsets) cuts the Markdown into top-level blocks;
//!    headings open sections whose header path is `[title, h2, h3, ...]`.
//! 2. Each block that does not fit `max_tokens` together with its header line is
//!    split: list items, then blank-line paragraphs, then lines, then sentences,
//!    then words, then (last resort) halves of a word.
//! 3. Pieces are packed greedily up to `target_tokens`; every packed chunk is
//!    measured with the caller's counter and backed off until it fits `max_tokens`.
//! 4. Chunks under `min_tokens` merge into the previous chunk of the same section,
//!    else into the next sibling/child section, else into their parent's chunk,
//!    whichever fits under `max_tokens` first.
//!
//! A chunk body is always a verbatim, trimmed slice of the Markdown, so
//! `byte_range` locates it exactly.
//!
//! Counting is the expensive part with a real tokenizer, so each text is counted
//! once: every piece's count is memoised, "does this block fit with its header?"
//! is answered from `count(header) + count(block) - count("")` unless that estimate
//! is within [`MARGIN`] tokens of `max_tokens` (then the joined text is measured),
//! and every chunk that is kept is measured exactly, so `Chunk::tokens` is the
//! counter's own count and no chunk exceeds `max_tokens` whatever the counter.
//! [`chunk_doc_cached`] goes further for counters that add up over words (BERT
//! WordPiece): it counts each distinct word once per [`TokenCache`].

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use ragsnap_core::{Chunk, ContentId};

use crate::SanitizedDoc;

/// Token budgets for [`chunk_doc`](crate::chunk_doc), counted with the caller's counter
/// on the whole chunk text (header path line included).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkConfig {
    /// Pieces are packed into a chunk while it stays at or under this many tokens.
    pub target_tokens: usize,
    /// Hard limit: no chunk's text counts more tokens than this.
    pub max_tokens: usize,
    /// Chunks under this many tokens are merged into a neighbour when that fits.
    pub min_tokens: usize,
}

impl Default for ChunkConfig {
    fn default() -> Self {
        ChunkConfig { target_tokens: 200, max_tokens: 256, min_tokens: 32 }
    }
}

/// A crude but deterministic token estimate for tests and for chunking without a
/// model: `ceil(words × 1.3)` + one per punctuation or symbol character + one per
/// CJK character + one extra per 12 characters of long words.
///
/// ```
/// use ragsnap_chunk::approx_token_count;
/// assert_eq!(approx_token_count(""), 0);
/// assert_eq!(approx_token_count("Hello, world!"), 5); // 2 words → 3, plus 2 punctuation
/// ```
pub fn approx_token_count(text: &str) -> usize {
    let mut words = 0usize;
    let mut extra = 0usize;
    let mut singles = 0usize;
    let mut run = 0usize;
    for c in text.chars() {
        if c.is_alphanumeric() && !is_cjk(c) {
            run += 1;
            continue;
        }
        if run > 0 {
            words += 1;
            extra += run / 12;
            run = 0;
        }
        if !c.is_whitespace() {
            singles += 1;
        }
    }
    if run > 0 {
        words += 1;
        extra += run / 12;
    }
    (words * 13).div_ceil(10) + extra + singles
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF)
}

type Counter<'c> = &'c (dyn Fn(&str) -> usize + Sync);

/// Estimates within this many tokens of a limit are re-measured with the counter.
const MARGIN: usize = 8;

/// Split `doc.markdown` into chunks; see the module documentation for the rules.
///
/// Deterministic: the same document, configuration and counter give the same
/// chunks, ids and order. Sections without content produce nothing.
pub fn chunk_doc(
    doc: &SanitizedDoc,
    url: Option<&str>,
    cfg: &ChunkConfig,
    count_tokens: &(dyn Fn(&str) -> usize + Sync),
) -> Vec<Chunk> {
    chunk_with(doc, url, cfg, Mode::Exact(count_tokens))
}

/// A thread-safe memo of per-word token counts for [`chunk_doc_cached`]; share one
/// across the documents of a corpus, and use it with one counter only.
pub struct TokenCache {
    overhead: OnceLock<usize>,
    shards: Vec<Mutex<FnvMap<Box<str>, u32>>>,
}

impl Default for TokenCache {
    fn default() -> Self {
        TokenCache { overhead: OnceLock::new(), shards: (0..32).map(|_| Mutex::new(FnvMap::default())).collect() }
    }
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache").field("words", &self.len()).finish()
    }
}

impl TokenCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Distinct words counted so far.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().map_or(0, |m| m.len())).sum()
    }

    /// Whether no word has been counted yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn overhead(&self, count: Counter<'_>) -> usize {
        *self.overhead.get_or_init(|| count(""))
    }

    /// `count(word) - count("")`, memoised.
    fn word(&self, word: &str, count: Counter<'_>) -> usize {
        let fx = {
            use std::hash::Hasher;
            let mut h = Fnv::default();
            h.write(word.as_bytes());
            h.finish()
        };
        let shard = &self.shards[(fx >> 32) as usize % self.shards.len()];
        if let Some(&n) = shard.lock().unwrap_or_else(|e| e.into_inner()).get(word) {
            return n as usize;
        }
        let n = count(word).saturating_sub(self.overhead(count));
        // Clamped so that a first lookup and later ones agree (a counter may say
        // usize::MAX for text it cannot encode).
        let n32 = u32::try_from(n).unwrap_or(u32::MAX);
        shard.lock().unwrap_or_else(|e| e.into_inner()).insert(word.into(), n32);
        n32 as usize
    }
}

/// [`chunk_doc`] for a counter whose counts add up over words: with `e = count("")`,
/// `count(a + w + b) == count(a) + count(b) - e` for any run `w` of ASCII spaces,
/// tabs, CRs and LFs, and `count(a + p + b) == count(a) + count(p) + count(b) - 2e`
/// for an ASCII punctuation character `p` other than `[` and `]`. BERT WordPiece
/// tokenizers (BertNormalizer, BertPreTokenizer, `[CLS] … [SEP]`, no truncation,
/// `[…]` special tokens) are such counters. Each distinct word is then counted once
/// per `cache`, instead of every candidate chunk being run through the counter.
///
/// The result is the same as [`chunk_doc`]'s, `tokens` included, as long as that
/// property holds; use this only with such a counter. As a safety net, every chunk
/// whose derived count is within a few tokens of `max_tokens` is measured with
/// `count_tokens`, and if any count disagrees the document is chunked again by
/// [`chunk_doc`]. That catches a counter that is slightly off near the limit, not
/// one that does not add up at all (with such a counter, counts far below the limit
/// are not checked, so neither they nor `max_tokens` are guaranteed).
pub fn chunk_doc_cached(
    doc: &SanitizedDoc,
    url: Option<&str>,
    cfg: &ChunkConfig,
    count_tokens: &(dyn Fn(&str) -> usize + Sync),
    cache: &TokenCache,
) -> Vec<Chunk> {
    let chunks = chunk_with(doc, url, cfg, Mode::Words(count_tokens, cache));
    let near = cfg.max_tokens.saturating_sub(MARGIN);
    if chunks.iter().all(|c| c.tokens < near || count_tokens(&c.text) == c.tokens) {
        chunks
    } else {
        chunk_doc(doc, url, cfg, count_tokens)
    }
}

#[derive(Clone, Copy)]
enum Mode<'c> {
    /// Every decision from the counter (memoised, with estimates far from a limit).
    Exact(Counter<'c>),
    /// Counts derived from per-word counts.
    Words(Counter<'c>, &'c TokenCache),
}

fn chunk_with(doc: &SanitizedDoc, url: Option<&str>, cfg: &ChunkConfig, mode: Mode<'_>) -> Vec<Chunk> {
    let md = doc.markdown.as_str();
    let blocks = top_level_blocks(md);
    let title = root_title(doc, &blocks);
    let sections = sections(md, &blocks, &title);
    let overhead = match mode {
        Mode::Exact(count) => count(""),
        Mode::Words(count, cache) => cache.overhead(count),
    };
    let mut ctx = Ctx {
        md,
        cfg,
        mode,
        overhead,
        headers: HashMap::new(),
        header_lines: Vec::new(),
        alone: HashMap::new(),
        measured: HashMap::new(),
        words: FnvMap::default(),
    };

    let mut drafts = Vec::new();
    for (section_no, section) in sections.iter().enumerate() {
        let header = ctx.header(&section.path);
        let mut pieces = Vec::new();
        for &b in &section.blocks {
            let block = &blocks[b];
            let range = trim_range(md, block.range);
            if range.0 == range.1 {
                continue;
            }
            if ctx.fits(&header, range, false) {
                pieces.push(range);
            } else if block.items.len() > 1 {
                for &item in &block.items {
                    ctx.split_to_fit(&header, item, &mut pieces, false);
                }
            } else {
                ctx.split_to_fit(&header, range, &mut pieces, false);
            }
        }
        let first = drafts.len();
        ctx.pack(&header, &section.path, section_no, pieces, &mut drafts);
        if let Some(d) = drafts.get_mut(first) {
            d.heading_start = section.heading_start;
        }
    }
    let drafts = ctx.merge_small(drafts);

    let line_starts: Vec<usize> =
        std::iter::once(0).chain(md.bytes().enumerate().filter(|&(_, b)| b == b'\n').map(|(i, _)| i + 1)).collect();
    let line_of = |offset: usize| line_starts.partition_point(|&s| s <= offset);
    drafts
        .into_iter()
        .map(|d| {
            let fitted = ctx.header(&d.path);
            let text = format!("{}\n\n{}", fitted.line, &md[d.start..d.end]);
            Chunk {
                content_id: ContentId::of_text(&text),
                text,
                source_path: doc.source_path.clone(),
                url: url.map(str::to_owned),
                header_path: fitted.path.clone(),
                byte_range: (d.start, d.end),
                line_range: (line_of(d.start), line_of(d.end.saturating_sub(1).max(d.start))),
                tokens: d.tokens,
            }
        })
        .collect()
}

#[derive(Debug)]
struct Block {
    range: (usize, usize),
    /// `Some((level, text))` for headings.
    heading: Option<(u8, String)>,
    /// Item ranges of a top-level list.
    items: Vec<(usize, usize)>,
    /// Front matter: not content.
    skip: bool,
}

fn top_level_blocks(md: &str) -> Vec<Block> {
    let opts = Options::ENABLE_TABLES
        | Options::ENABLE_YAML_STYLE_METADATA_BLOCKS
        | Options::ENABLE_PLUSES_DELIMITED_METADATA_BLOCKS;
    let mut blocks = Vec::new();
    let mut depth = 0usize;
    let mut current: Option<Block> = None;
    for (event, range) in Parser::new_ext(md, opts).into_offset_iter() {
        match event {
            Event::Start(tag) => {
                if depth == 0 {
                    let mut block =
                        Block { range: (range.start, range.end), heading: None, items: Vec::new(), skip: false };
                    match tag {
                        Tag::Heading { level, .. } => block.heading = Some((level as u8, String::new())),
                        Tag::MetadataBlock(_) => block.skip = true,
                        _ => {}
                    }
                    current = Some(block);
                } else if depth == 1 && matches!(tag, Tag::Item) {
                    if let Some(b) = current.as_mut() {
                        b.items.push((range.start, range.end));
                    }
                }
                depth += 1;
            }
            Event::End(end) => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    if let Some(b) = current.take() {
                        let is_heading = matches!(end, TagEnd::Heading(_));
                        debug_assert_eq!(is_heading, b.heading.is_some());
                        blocks.push(b);
                    }
                }
            }
            Event::Text(t) | Event::Code(t) => {
                if let Some(Block { heading: Some((_, text)), .. }) = current.as_mut() {
                    text.push_str(&t);
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                if let Some(Block { heading: Some((_, text)), .. }) = current.as_mut() {
                    text.push(' ');
                }
            }
            _ => {}
        }
    }
    for b in &mut blocks {
        if let Some((_, text)) = b.heading.as_mut() {
            *text = ragsnap_core::normalize_text(text);
        }
    }
    blocks
}

fn root_title(doc: &SanitizedDoc, blocks: &[Block]) -> String {
    doc.title
        .as_deref()
        .map(ragsnap_core::normalize_text)
        .filter(|t| !t.is_empty())
        .or_else(|| {
            blocks.iter().find_map(|b| match &b.heading {
                Some((1, text)) if !text.is_empty() => Some(text.clone()),
                _ => None,
            })
        })
        .unwrap_or_else(|| doc.source_path.clone())
}

struct Section {
    path: Vec<String>,
    heading_start: Option<usize>,
    blocks: Vec<usize>,
}

/// Lowercase alphanumeric words of a header text.
fn header_words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

/// A header text without a leading section number: "6 Bash Features", "6.1 Invoking",
/// "A. Index", "A.2 Tables", "Chapter 6. Features" and "Part II: Basics" lose the number.
fn strip_numbering(text: &str) -> &str {
    let mut s = text.trim_start();
    for word in ["chapter", "part", "appendix", "section"] {
        if s.len() > word.len() && s.is_char_boundary(word.len()) && s[..word.len()].eq_ignore_ascii_case(word) {
            let rest = &s[word.len()..];
            if rest.starts_with(char::is_whitespace) {
                s = rest.trim_start();
                break;
            }
        }
    }
    let number_len = {
        let b = s.as_bytes();
        let mut i = 0;
        if b.first().is_some_and(u8::is_ascii_digit) {
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
        } else if b.len() >= 2 && b[0].is_ascii_uppercase() && b[1] == b'.' {
            i = 2;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
        } else {
            // Roman numerals: "II", "IV." (only with something after them).
            while i < b.len() && matches!(b[i], b'I' | b'V' | b'X' | b'L') {
                i += 1;
            }
            if i > 0 && b.get(i).is_some_and(|&c| c == b'.' || c == b':') {
                i += 1;
            } else if !b.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
                i = 0;
            }
        }
        i
    };
    if number_len == 0 {
        return text;
    }
    let rest = s[number_len..].trim_start_matches(':');
    if !rest.starts_with(char::is_whitespace) {
        return text;
    }
    let rest = rest.trim_start();
    if rest.is_empty() {
        text
    } else {
        rest
    }
}

/// A section body that is only a row of short control labels joined by middle dots or
/// bullets ("const: unstable · source"), or one such label: what is left of a toolbar
/// beside an item heading, not content.
fn is_control_labels(text: &str) -> bool {
    let t = text.trim();
    if is_lone_token(t) {
        return true;
    }
    if t.contains('\n') || t.contains('`') || t.chars().count() > 48 || !t.contains(['·', '•']) {
        return false;
    }
    let parts: Vec<&str> = t.split(['·', '•']).map(str::trim).collect();
    parts.len() >= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.split_whitespace().count() <= 2
                && p.chars().count() <= 16
                && !p.ends_with(['.', '!', '?', ':', ';'])
        })
        && parts.iter().any(|p| is_lone_token(p))
}

/// Whether two header texts say the same once a leading section number is set aside.
fn same_header(a: &str, b: &str) -> bool {
    let (x, y) = (header_words(strip_numbering(a)), header_words(strip_numbering(b)));
    !x.is_empty() && x == y
}

/// A section body that is one short bare token ("source", "logo", "[−]"): a leftover
/// control label, not content. Code, tables, lists and sentences are never this.
fn is_lone_token(text: &str) -> bool {
    let t = text.trim();
    !t.is_empty()
        && t.chars().count() <= 12
        && !t.contains(char::is_whitespace)
        && !t.starts_with(['`', '~', '|', '-', '*', '+', '>', '#'])
        && !t.contains('`')
        && !t.ends_with(['.', '!', '?', ':', ';'])
        && !t.chars().any(|c| c.is_ascii_digit())
}

/// Whether `short`'s words occur as one run in `long`'s.
fn contains_words(long: &[String], short: &[String]) -> bool {
    !short.is_empty() && long.windows(short.len()).any(|w| w == short)
}

/// Whether at least 75% of the distinct words of the shorter text (three or more)
/// are words of the longer one: "Foo in a::b" and "Struct a::b::Foo".
fn mostly_shared(a: &[String], b: &[String]) -> bool {
    use std::collections::HashSet;
    let (a, b): (HashSet<&String>, HashSet<&String>) = (a.iter().collect(), b.iter().collect());
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    short.len() >= 3 && short.iter().filter(|w| long.contains(*w)).count() * 4 >= short.len() * 3
}

/// The page title and its first heading name the same thing when their words are
/// equal, one's words are a run inside the other's (a site name or section number
/// around it), or most words of the shorter are in the longer. Then the root of the header path is the heading, and the heading is
/// not repeated under it.
fn page_root(blocks: &[Block], title: &str) -> (String, Option<usize>) {
    let first = blocks
        .iter()
        .enumerate()
        .find_map(|(i, b)| b.heading.as_ref().filter(|(_, t)| !t.is_empty() && !b.skip).map(|(_, t)| (i, t)));
    let Some((i, heading)) = first else {
        return (title.to_owned(), None);
    };
    let (t, h) = (header_words(title), header_words(heading));
    if t == h || contains_words(&t, &h) || contains_words(&h, &t) || mostly_shared(&t, &h) {
        (heading.clone(), Some(i))
    } else {
        (title.to_owned(), None)
    }
}

fn sections(md: &str, blocks: &[Block], title: &str) -> Vec<Section> {
    let (title, first_heading) = page_root(blocks, title);
    let title = title.as_str();
    let mut levels: [Option<String>; 6] = Default::default();
    let mut out = vec![Section { path: vec![title.to_owned()], heading_start: None, blocks: Vec::new() }];
    for (i, block) in blocks.iter().enumerate() {
        if block.skip {
            continue;
        }
        match &block.heading {
            Some((level, text)) => {
                let idx = usize::from(*level).clamp(1, 6) - 1;
                // A heading that repeats the header element above it adds nothing.
                let above = levels[..idx].iter().rev().flatten().next().map(String::as_str).unwrap_or(title);
                let repeats = Some(i) == first_heading || same_header(text, above);
                levels[idx] = (!text.is_empty() && !repeats).then(|| text.clone());
                for l in levels.iter_mut().skip(idx + 1) {
                    *l = None;
                }
                let mut path = vec![title.to_owned()];
                path.extend(levels.iter().flatten().cloned());
                out.push(Section { path, heading_start: Some(block.range.0), blocks: Vec::new() });
            }
            None => {
                if let Some(s) = out.last_mut() {
                    s.blocks.push(i);
                }
            }
        }
    }
    for s in &mut out {
        let body: String = s.blocks.iter().map(|&b| &md[blocks[b].range.0..blocks[b].range.1.min(md.len())]).collect();
        if is_control_labels(&body) {
            s.blocks.clear();
        }
    }
    out.retain(|s| !s.blocks.is_empty());
    out
}

fn trim_range(md: &str, (start, end): (usize, usize)) -> (usize, usize) {
    let end = end.min(md.len());
    let start = start.min(end);
    let slice = &md[start..end];
    let lead = slice.len() - slice.trim_start().len();
    let trimmed = slice.trim();
    (start + lead, start + lead + trimmed.len())
}

#[derive(Clone, Debug)]
struct Draft {
    path: Vec<String>,
    start: usize,
    end: usize,
    tokens: usize,
    section: usize,
    /// Start of the section's heading line, on the first chunk of a section.
    heading_start: Option<usize>,
}

#[derive(Clone)]
struct Header {
    path: Vec<String>,
    line: String,
    /// Index into `Ctx::header_lines` (memo key).
    id: usize,
    /// `count(line)`.
    tokens: usize,
}

struct Ctx<'a, 'c> {
    md: &'a str,
    cfg: &'a ChunkConfig,
    mode: Mode<'c>,
    /// `count("")`: what every counted text carries besides its own tokens
    /// (`[CLS]` and `[SEP]` for BERT), so joining two texts counts it once.
    overhead: usize,
    headers: HashMap<Vec<String>, Header>,
    header_lines: Vec<String>,
    /// `count(md[range])`.
    alone: HashMap<(usize, usize), usize>,
    /// `count(header line + "\n\n" + md[range])`, by header id.
    measured: HashMap<(usize, usize, usize), usize>,
    /// Per-document front of the shared word cache ([`Mode::Words`]).
    words: FnvMap<&'a str, usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    Paragraphs,
    Lines,
    Sentences,
    Words,
    Halves,
}

impl Level {
    fn next(self) -> Option<Level> {
        match self {
            Level::Paragraphs => Some(Level::Lines),
            Level::Lines => Some(Level::Sentences),
            Level::Sentences => Some(Level::Words),
            Level::Words => Some(Level::Halves),
            Level::Halves => None,
        }
    }
}

/// The words [`chunk_doc_cached`] counts separately: runs of characters between
/// ASCII whitespace (dropped) and ASCII punctuation other than `[` and `]` (each
/// its own word), as BertPreTokenizer splits text. Brackets stay inside words so
/// that special tokens such as `[MASK]` are counted whole.
fn for_each_word<'t>(text: &'t str, mut f: impl FnMut(&'t str)) {
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let space = matches!(b, b' ' | b'\t' | b'\n' | b'\r');
        let punct = b.is_ascii_punctuation() && b != b'[' && b != b']';
        if space || punct {
            if start < i {
                f(&text[start..i]);
            }
            if punct {
                f(&text[i..=i]);
            }
            start = i + 1;
        }
    }
    if start < bytes.len() {
        f(&text[start..]);
    }
}

/// FNV-1a: a fast hash for the word memo (keys are short and not adversarial
/// enough to matter: the worst case is a slow document, not a wrong count).
#[derive(Default, Clone, Copy)]
struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        self.0 = h;
    }
}

type FnvMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<Fnv>>;

impl<'a> Ctx<'a, '_> {
    /// Sum of the per-word counts of `text` ([`Mode::Words`]), without the overhead.
    fn word_sum(&mut self, text: &'a str) -> usize {
        let Mode::Words(count, cache) = self.mode else { unreachable!("word counts in exact mode") };
        let mut total = 0usize;
        for_each_word(text, |word| {
            total = total.saturating_add(match self.words.get(word) {
                Some(&n) => n,
                None => {
                    let n = cache.word(word, count);
                    self.words.insert(word, n);
                    n
                }
            });
        });
        total
    }

    /// The counter on a text that is not a slice of the Markdown (header lines).
    fn count_owned(&mut self, text: &str) -> usize {
        match self.mode {
            Mode::Exact(count) => count(text),
            Mode::Words(count, cache) => {
                let mut total = self.overhead;
                for_each_word(text, |word| total = total.saturating_add(cache.word(word, count)));
                total
            }
        }
    }

    /// `count(md[start..end])`, memoised.
    fn alone(&mut self, (start, end): (usize, usize)) -> usize {
        if let Some(&n) = self.alone.get(&(start, end)) {
            return n;
        }
        let md: &'a str = self.md;
        let n = match self.mode {
            Mode::Exact(count) => count(&md[start..end]),
            Mode::Words(..) => self.overhead.saturating_add(self.word_sum(&md[start..end])),
        };
        self.alone.insert((start, end), n);
        n
    }

    /// The header line for `path`, shortened until it takes at most half of
    /// `max_tokens`: middle components go first, then the last one is cut.
    fn header(&mut self, path: &[String]) -> Header {
        if let Some(h) = self.headers.get(path) {
            return h.clone();
        }
        let budget = self.cfg.max_tokens / 2;
        let mut p = path.to_vec();
        let tokens = loop {
            let line = p.join(" > ");
            let tokens = self.count_owned(&line);
            if tokens <= budget {
                break tokens;
            }
            if p.len() > 2 {
                p.remove(1);
                continue;
            }
            let Some(last) = p.last_mut() else { break tokens };
            let chars = last.chars().count();
            if chars <= 1 {
                if p.len() > 1 {
                    p.pop();
                    continue;
                }
                break tokens;
            }
            let keep = last.char_indices().nth(chars / 2).map_or(last.len(), |(i, _)| i);
            last.truncate(keep);
            let trimmed = last.trim_end().to_owned();
            *last = trimmed + "…";
            if last.chars().count() >= chars {
                // "x…" cannot get shorter this way.
                last.truncate(last.char_indices().next().map_or(0, |(_, c)| c.len_utf8()));
            }
        };
        // Every exit from the loop counted the current `p`.
        let line = p.join(" > ");
        let h = Header { line: line.clone(), path: p, id: self.header_lines.len(), tokens };
        self.header_lines.push(line);
        self.headers.insert(path.to_vec(), h.clone());
        h
    }

    /// `count(header line + "\n\n" + md[range])`, memoised.
    fn measure(&mut self, header: &Header, (start, end): (usize, usize)) -> usize {
        let key = (header.id, start, end);
        if let Some(&n) = self.measured.get(&key) {
            return n;
        }
        let n = match self.mode {
            Mode::Exact(count) => count(&format!("{}\n\n{}", header.line, &self.md[start..end])),
            // "\n\n" separates words, so the joined text's words are the two parts' words.
            Mode::Words(..) => header.tokens.saturating_add(self.alone((start, end))).saturating_sub(self.overhead),
        };
        self.measured.insert(key, n);
        n
    }

    /// Whether `range` fits under `max_tokens` with the header. Unless `exact`, an
    /// estimate from the memoised counts of the two parts decides when it is more
    /// than [`MARGIN`] tokens from the limit.
    fn fits(&mut self, header: &Header, range: (usize, usize), exact: bool) -> bool {
        let max = self.cfg.max_tokens;
        if !exact && matches!(self.mode, Mode::Exact(_)) {
            let estimate = header.tokens.saturating_add(self.alone(range)).saturating_sub(self.overhead);
            if estimate.saturating_add(MARGIN) <= max {
                return true;
            }
            if estimate > max.saturating_add(MARGIN) {
                return false;
            }
        }
        self.measure(header, range) <= max
    }

    /// Cut `range` into pieces that each fit with the header, in order.
    fn split_to_fit(&mut self, header: &Header, range: (usize, usize), out: &mut Vec<(usize, usize)>, exact: bool) {
        let mut stack = vec![(range, Level::Paragraphs)];
        while let Some((r, level)) = stack.pop() {
            let r = trim_range(self.md, r);
            if r.0 == r.1 {
                continue;
            }
            if self.fits(header, r, exact) {
                out.push(r);
                continue;
            }
            let mut level = Some(level);
            while let Some(l) = level {
                let parts = split_at(self.md, r, l);
                if parts.len() >= 2 {
                    for p in parts.into_iter().rev() {
                        stack.push((p, l));
                    }
                    break;
                }
                level = l.next();
            }
            // A single character that does not fit (only with a pathological
            // counter) is dropped rather than breaking the max-tokens guarantee.
        }
    }

    /// Greedy packing of consecutive pieces up to `target_tokens`, verified
    /// against `max_tokens` with the real counter.
    fn pack(
        &mut self,
        header: &Header,
        path: &[String],
        section: usize,
        mut pieces: Vec<(usize, usize)>,
        out: &mut Vec<Draft>,
    ) {
        let header_tokens = header.tokens;
        let mut i = 0;
        while i < pieces.len() {
            let mut j = i + 1;
            let mut estimate = header_tokens.saturating_add(self.alone(pieces[i]));
            while j < pieces.len() {
                let next = self.alone(pieces[j]);
                if estimate.saturating_add(next) > self.cfg.target_tokens {
                    break;
                }
                estimate += next;
                j += 1;
            }
            let tokens = loop {
                let t = self.measure(header, (pieces[i].0, pieces[j - 1].1));
                if t <= self.cfg.max_tokens || j == i + 1 {
                    break t;
                }
                j -= 1;
            };
            if tokens <= self.cfg.max_tokens {
                out.push(Draft {
                    path: path.to_vec(),
                    start: pieces[i].0,
                    end: pieces[j - 1].1,
                    tokens,
                    section,
                    heading_start: None,
                });
            } else {
                // The piece was let through on an estimate that the counter does
                // not bear out: split it on exact measurements instead.
                let mut sub = Vec::new();
                self.split_to_fit(header, pieces[i], &mut sub, true);
                pieces.splice(i..j, sub);
                continue;
            }
            i = j;
        }
    }

    fn try_merge(&mut self, path: &[String], start: usize, end: usize) -> Option<usize> {
        let header = self.header(path);
        let tokens = self.measure(&header, (start, end));
        (tokens <= self.cfg.max_tokens).then_some(tokens)
    }

    /// Merge chunks under `min_tokens` into a neighbour (see the module docs).
    fn merge_small(&mut self, drafts: Vec<Draft>) -> Vec<Draft> {
        const NONE: usize = usize::MAX;
        let n = drafts.len();
        let mut slots: Vec<Option<Draft>> = drafts.into_iter().map(Some).collect();
        let mut next: Vec<usize> = (1..=n).map(|i| if i == n { NONE } else { i }).collect();
        let mut prev: Vec<usize> = (0..n).map(|i| if i == 0 { NONE } else { i - 1 }).collect();
        let mut cur = if n == 0 { NONE } else { 0 };
        let unlink = |i: usize, next: &mut Vec<usize>, prev: &mut Vec<usize>| {
            let (p, nx) = (prev[i], next[i]);
            if p != NONE {
                next[p] = nx;
            }
            if nx != NONE {
                prev[nx] = p;
            }
        };
        while cur != NONE {
            let c = slots[cur].clone().expect("live slot");
            if c.tokens >= self.cfg.min_tokens {
                cur = next[cur];
                continue;
            }
            let p = prev[cur];
            let nx = next[cur];
            // 1. The previous chunk of the same section.
            if p != NONE {
                let pd = slots[p].as_ref().expect("live slot");
                if pd.section == c.section {
                    let path = pd.path.clone();
                    if let Some(tokens) = self.try_merge(&path, pd.start, c.end) {
                        let pd = slots[p].as_mut().expect("live slot");
                        pd.end = c.end;
                        pd.tokens = tokens;
                        slots[cur] = None;
                        unlink(cur, &mut next, &mut prev);
                        cur = nx;
                        continue;
                    }
                }
            }
            // 2. The next chunk: same section, a child section, or a sibling.
            if nx != NONE {
                let nd = slots[nx].as_ref().expect("live slot");
                let relation = if nd.section == c.section || is_strict_prefix(&c.path, &nd.path) {
                    Some((c.path.clone(), c.start, c.heading_start))
                } else if is_sibling(&c.path, &nd.path) {
                    Some((c.path[..c.path.len() - 1].to_vec(), c.heading_start.unwrap_or(c.start), None))
                } else {
                    None
                };
                if let Some((path, start, heading_start)) = relation {
                    let end = nd.end;
                    let section = nd.section;
                    if let Some(tokens) = self.try_merge(&path, start, end) {
                        slots[nx] = Some(Draft { path, start, end, tokens, section, heading_start });
                        slots[cur] = None;
                        unlink(cur, &mut next, &mut prev);
                        cur = nx;
                        continue;
                    }
                }
            }
            // 3. The parent section's last chunk.
            if p != NONE {
                let pd = slots[p].as_ref().expect("live slot");
                if is_strict_prefix(&pd.path, &c.path) {
                    let path = pd.path.clone();
                    if let Some(tokens) = self.try_merge(&path, pd.start, c.end) {
                        let pd = slots[p].as_mut().expect("live slot");
                        pd.end = c.end;
                        pd.tokens = tokens;
                        slots[cur] = None;
                        unlink(cur, &mut next, &mut prev);
                        cur = nx;
                        continue;
                    }
                }
            }
            cur = nx;
        }
        slots.into_iter().flatten().collect()
    }
}

fn is_strict_prefix(short: &[String], long: &[String]) -> bool {
    short.len() < long.len() && long.starts_with(short)
}

fn is_sibling(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.len() >= 2 && a[..a.len() - 1] == b[..b.len() - 1]
}

/// Split `range` at one granularity; separators are left out of the parts.
fn split_at(md: &str, (start, end): (usize, usize), level: Level) -> Vec<(usize, usize)> {
    let s = &md[start..end];
    let mut parts = Vec::new();
    match level {
        Level::Paragraphs => {
            let mut part_start = 0;
            let mut offset = 0;
            let mut prev_blank = false;
            for line in s.split_inclusive('\n') {
                let blank = line.trim().is_empty();
                if blank && !prev_blank && offset > part_start {
                    parts.push((start + part_start, start + offset));
                }
                if !blank && prev_blank {
                    part_start = offset;
                }
                prev_blank = blank;
                offset += line.len();
            }
            if !prev_blank && offset > part_start {
                parts.push((start + part_start, start + offset));
            }
        }
        Level::Lines => {
            let mut offset = 0;
            for line in s.split_inclusive('\n') {
                if !line.trim().is_empty() {
                    parts.push((start + offset, start + offset + line.len()));
                }
                offset += line.len();
            }
        }
        Level::Sentences => {
            let mut part_start = 0;
            let mut iter = s.char_indices().peekable();
            while let Some((i, c)) = iter.next() {
                let terminal = matches!(c, '.' | '!' | '?' | '。' | '！' | '？');
                if !terminal {
                    continue;
                }
                // Closing quotes/brackets belong to the sentence.
                let mut end_i = i + c.len_utf8();
                while let Some(&(j, d)) = iter.peek() {
                    if matches!(d, '"' | '\'' | ')' | ']' | '”' | '’' | '»') {
                        end_i = j + d.len_utf8();
                        iter.next();
                    } else {
                        break;
                    }
                }
                let followed_by_space = iter.peek().is_none_or(|&(_, d)| d.is_whitespace());
                if followed_by_space || matches!(c, '。' | '！' | '？') {
                    parts.push((start + part_start, start + end_i));
                    part_start = end_i;
                }
            }
            if part_start < s.len() {
                parts.push((start + part_start, end));
            }
        }
        Level::Words => {
            let mut word_start = None;
            for (i, c) in s.char_indices() {
                if c.is_whitespace() {
                    if let Some(ws) = word_start.take() {
                        parts.push((start + ws, start + i));
                    }
                } else if word_start.is_none() {
                    word_start = Some(i);
                }
            }
            if let Some(ws) = word_start {
                parts.push((start + ws, end));
            }
        }
        Level::Halves => {
            let mut mid = s.len() / 2;
            while mid < s.len() && !s.is_char_boundary(mid) {
                mid += 1;
            }
            if mid == s.len() {
                mid = s.char_indices().next_back().map_or(0, |(i, _)| i);
            }
            if mid > 0 && mid < s.len() {
                parts.push((start, start + mid));
                parts.push((start + mid, end));
            }
        }
    }
    parts.retain(|&(a, b)| md[a..b].chars().any(|c| !c.is_whitespace()));
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(title: Option<&str>, md: &str) -> SanitizedDoc {
        SanitizedDoc {
            source_path: "a/b.md".into(),
            title: title.map(str::to_owned),
            canonical_url: None,
            markdown: md.into(),
            links: vec![],
            warnings: vec![],
            ..Default::default()
        }
    }

    fn words(n: usize, tag: &str) -> String {
        (0..n).map(|i| format!("{tag}{i}")).collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn a_row_of_control_labels_is_not_a_section_body() {
        for labels in ["source", "const: unstable · source", "2.1 · src · [−]", "edit • history"] {
            assert!(is_control_labels(labels), "{labels:?}");
        }
        for text in [
            "Returns the depth.",
            "a · b · c but then a sentence of several words",
            "`x` · src",
            "Ports · see the chapter on mooring lines",
            "two words",
            "line one · a\nline two · b",
        ] {
            assert!(!is_control_labels(text), "{text:?}");
        }
        let d = doc(Some("T"), "# T\n\nIntro text of the page.\n\n## fn depth(&self)\n\nconst: unstable · source\n\n## fn load(&self)\n\nReturns the load.\n");
        let cfg = ChunkConfig { min_tokens: 0, ..ChunkConfig::default() };
        let chunks = chunk_doc(&d, None, &cfg, &approx_token_count);
        assert!(chunks.iter().all(|c| !c.text.contains("unstable")), "{chunks:?}");
        assert!(chunks.iter().any(|c| c.text.contains("Returns the load.")), "{chunks:?}");
    }

    #[test]
    fn split_levels() {
        let md = "a b.\n\nc\nd. E f! g";
        let r = (0, md.len());
        assert_eq!(split_at(md, r, Level::Paragraphs).len(), 2);
        assert_eq!(split_at(md, r, Level::Lines).len(), 3);
        let sentences: Vec<&str> = split_at(md, r, Level::Sentences).iter().map(|&(a, b)| md[a..b].trim()).collect();
        assert_eq!(sentences, ["a b.", "c\nd.", "E f!", "g"]);
        assert_eq!(split_at(md, r, Level::Words).len(), 7);
        assert_eq!(split_at("é", (0, 2), Level::Halves).len(), 0);
        assert_eq!(split_at("éé", (0, 4), Level::Halves), [(0, 2), (2, 4)]);
    }

    #[test]
    fn header_path_skips_an_h1_equal_to_the_title() {
        let d =
            doc(Some("Guide"), "# Guide\n\nIntro text here.\n\n## Setup\n\nSetup text.\n\n### Linux\n\nLinux text.\n");
        let cfg = ChunkConfig { min_tokens: 0, ..ChunkConfig::default() };
        let chunks = chunk_doc(&d, None, &cfg, &approx_token_count);
        let paths: Vec<String> = chunks.iter().map(|c| c.header_path.join(" > ")).collect();
        assert_eq!(paths, ["Guide", "Guide > Setup", "Guide > Setup > Linux"]);
        assert_eq!(chunks[1].text, "Guide > Setup\n\nSetup text.");
        assert_eq!(chunks[2].line_range, (11, 11));
    }

    #[test]
    fn tiny_sections_merge() {
        let d = doc(Some("T"), "## A\n\nshort a.\n\n## B\n\nshort b.\n");
        let chunks = chunk_doc(&d, Some("u"), &ChunkConfig::default(), &approx_token_count);
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].header_path, ["T"]);
        assert_eq!(chunks[0].text, "T\n\n## A\n\nshort a.\n\n## B\n\nshort b.");
        assert_eq!(chunks[0].url.as_deref(), Some("u"));
    }

    #[test]
    fn long_sections_split_and_fit() {
        let para = words(150, "w");
        let md = format!(
            "# T\n\n{para}\n\n{para}. {para}\n\n```\n{}\n```\n",
            (0..400).map(|i| format!("line {i}")).collect::<Vec<_>>().join("\n")
        );
        let d = doc(None, &md);
        let cfg = ChunkConfig::default();
        let chunks = chunk_doc(&d, None, &cfg, &approx_token_count);
        assert!(chunks.len() > 5);
        for c in &chunks {
            assert!(c.tokens <= cfg.max_tokens);
            assert_eq!(approx_token_count(&c.text), c.tokens);
            let body = &md[c.byte_range.0..c.byte_range.1];
            assert!(c.text.ends_with(body));
            assert_eq!(c.header_path, ["T"]);
        }
    }

    #[test]
    fn code_blocks_that_fit_stay_whole() {
        let code = (0..20).map(|i| format!("let x{i} = {i};")).collect::<Vec<_>>().join("\n");
        let md = format!("# T\n\n{}\n\n```rust\n{code}\n```\n\n{}\n", words(120, "a"), words(120, "b"));
        let chunks = chunk_doc(&doc(None, &md), None, &ChunkConfig::default(), &approx_token_count);
        assert!(chunks.iter().any(|c| c.text.contains(&format!("```rust\n{code}\n```"))));
    }

    #[test]
    fn huge_header_is_shortened() {
        let title = words(400, "t");
        let d = doc(Some(&title), "body text.\n");
        let cfg = ChunkConfig::default();
        let chunks = chunk_doc(&d, None, &cfg, &approx_token_count);
        assert_eq!(chunks.len(), 1);
        assert!(chunks[0].tokens <= cfg.max_tokens);
    }

    #[test]
    fn estimates_the_counter_does_not_bear_out_are_caught() {
        // Parts count 1 each, but any joined text (it contains "\n\n") counts its
        // bytes: every estimate says "fits", every measurement disagrees.
        let liar = |s: &str| if s.contains("\n\n") { s.len() } else { 1 };
        let md = format!("# T\n\n{}\n\n{}\n", words(200, "a"), words(300, "b"));
        let d = doc(None, &md);
        let cfg = ChunkConfig { target_tokens: 150, max_tokens: 200, min_tokens: 10 };
        let chunks = chunk_doc(&d, None, &cfg, &liar);
        assert!(chunks.len() > 5);
        for c in &chunks {
            assert_eq!(liar(&c.text), c.tokens);
            assert!(c.tokens <= cfg.max_tokens, "{} > {}", c.tokens, cfg.max_tokens);
        }
        let body = chunks.iter().map(|c| &md[c.byte_range.0..c.byte_range.1]).collect::<Vec<_>>().join(" ");
        assert_eq!(body.split_whitespace().count(), 500, "no word lost");
    }

    #[test]
    fn a_counter_that_fails_on_some_text_does_not_overflow() {
        // `OnnxEmbedder::count_tokens` says usize::MAX for text it cannot encode.
        let failing = |s: &str| if s.contains('☃') { usize::MAX } else { approx_token_count(s) };
        let md = format!("# T\n\n{}\n\nsnow ☃ man.\n\n{}\n", words(100, "a"), words(100, "b"));
        let d = doc(None, &md);
        let cfg = ChunkConfig::default();
        let cache = TokenCache::new();
        for chunks in [chunk_doc(&d, None, &cfg, &failing), chunk_doc_cached(&d, None, &cfg, &failing, &cache)] {
            assert!(!chunks.is_empty());
            assert!(chunks.iter().all(|c| c.tokens <= cfg.max_tokens && !c.text.contains('☃')));
        }
    }

    #[test]
    fn cached_counts_match_exact_ones() {
        // Adds up over words (ASCII whitespace; ASCII punctuation is a word of its own).
        let additive = |s: &str| {
            let (mut total, mut run) = (2usize, 0usize);
            for c in s.chars() {
                let punct = c.is_ascii_punctuation() && c != '[' && c != ']';
                if c == ' ' || c == '\n' || punct {
                    total += run.div_ceil(3) + usize::from(punct);
                    run = 0;
                } else {
                    run += 1;
                }
            }
            total + run.div_ceil(3)
        };
        let md = format!("# T\n\n{}\n\n## U\n\nshort.\n\n```\n{}\n```\n", words(400, "w"), words(300, "c"));
        let d = doc(Some("Title"), &md);
        let cache = TokenCache::new();
        let cfg = ChunkConfig::default();
        let exact = chunk_doc(&d, None, &cfg, &additive);
        assert!(exact.len() > 3);
        assert_eq!(chunk_doc_cached(&d, None, &cfg, &additive, &cache), exact);
        assert!(!cache.is_empty());
    }

    #[test]
    fn empty_doc_gives_no_chunks() {
        assert!(chunk_doc(&doc(Some("T"), "# T\n\n## Empty\n"), None, &ChunkConfig::default(), &approx_token_count)
            .is_empty());
        assert!(chunk_doc(&doc(None, ""), None, &ChunkConfig::default(), &approx_token_count).is_empty());
    }
}
