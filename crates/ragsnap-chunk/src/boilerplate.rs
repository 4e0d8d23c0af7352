//! Corpus-level boilerplate removal. A site generator repeats its template on
//! every page, so what recurs across a large share of the corpus is evidence:
//!
//! - blocks whose text-free *shape* (see [`PageBlock::shape`]) recurs are page
//!   template even when their words change per page (titles in prev/next links,
//!   breadcrumb trails), and are dropped;
//! - blocks whose *text* recurs are dropped when they are outside the main text
//!   flow or link-dense (a "Need help? Join the forum" box, a site-wide notice);
//!   short repeated prose inside the content ("New in version 3.11.", "See also")
//!   stays, and the report lists it;
//! - a title prefix or suffix shared by many pages (the site name) is stripped.

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{PageBlock, SanitizedDoc};

/// When a recurring block counts as boilerplate.
#[derive(Clone, Debug, PartialEq)]
pub struct BoilerplateConfig {
    /// A block must occur on at least this many pages...
    pub min_pages: usize,
    /// ...and on at least this share of all pages (0.0–1.0).
    pub min_share: f64,
}

impl Default for BoilerplateConfig {
    fn default() -> Self {
        BoilerplateConfig { min_pages: 5, min_share: 0.30 }
    }
}

/// What [`remove_boilerplate`] removed.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct BoilerplateReport {
    /// Block occurrences removed, summed over all documents.
    pub blocks_removed: usize,
    /// Distinct block texts judged boilerplate.
    pub distinct_blocks: usize,
    /// Block occurrences seen, summed over all documents (the denominator of the boilerplate share).
    #[serde(default)]
    pub blocks_total: usize,
    /// The most widespread boilerplate blocks (text truncated to 80 characters)
    /// and the number of pages each was dropped from; at most 10, most pages first.
    pub top: Vec<(String, usize)>,
    /// Template blocks (recurring shape) removed, summed over all documents.
    #[serde(default)]
    pub template_blocks_removed: usize,
    /// Distinct template shapes found.
    #[serde(default)]
    pub template_shapes: usize,
    /// Repeated blocks kept because they are prose in the content flow (text truncated
    /// to 80 characters) and the number of pages each was kept on; at most 10.
    #[serde(default)]
    pub kept_repeated: Vec<(String, usize)>,
    /// Title prefix or suffix shared by many pages and stripped from their titles
    /// (separator included), e.g. `" — Tidewater docs"`.
    #[serde(default)]
    pub title_affix: Option<String>,
    /// Pages recognised as hubs ([`SanitizedDoc::hub`]), in document order.
    #[serde(default)]
    pub hub_pages: Vec<String>,
    /// Pages whose title was the one most pages share (the site's name alone): their
    /// title became their first heading.
    #[serde(default)]
    pub untitled_pages: usize,
}

const TOP_N: usize = 10;
/// A recurring block of at least this many words goes wherever it is: nobody writes
/// the same twelve-word passage into a third of their pages as content. Shorter
/// ones ("New in version 3.11.", "See also") go only where they are chrome-like.
const LONG_BLOCK_WORDS: usize = 12;
const DISPLAY_CHARS: usize = 80;

#[derive(Clone, Copy, PartialEq, Eq)]
enum UnitKind {
    Paragraph,
    ListItem,
    TableRow(usize),
    /// A heading and the paragraph right under it.
    Pair,
}

struct Unit {
    kind: UnitKind,
    key: String,
    /// Line indexes `[start, end)`.
    lines: (usize, usize),
}

struct Table {
    header_lines: (usize, usize),
    rows: usize,
}

struct Parsed {
    units: Vec<Unit>,
    tables: Vec<Table>,
}

/// Remove page template and boilerplate from every document; strip a shared
/// title affix.
///
/// A block or shape is *recurring* when it occurs on at least `cfg.min_pages`
/// pages and at least `cfg.min_share` of all pages.
///
/// 1. Template: every [`PageBlock`] whose shape recurs is removed; a tiny control's
///    signature ([`PageBlock::control`]) needs only `cfg.min_pages` pages, and its
///    links must lead to more than one place across them (a control without links,
///    a toggle label, must recur like any shape).
/// 2. Text: blocks are paragraphs, list items (one line each), table rows, and a
///    heading together with the paragraph right under it. Fenced code is never
///    touched. Text is normalised before comparison: lowercased, Markdown escapes
///    and table pipes dropped, white space collapsed, and every run of digits
///    replaced by `#` (so "© 2025" and "© 2026" compare equal). Blocks of fewer
///    than two words are never boilerplate. A recurring block of twelve words or
///    more is removed everywhere; a shorter one only where it is chrome-like: in
///    an HTML page, inside a block the sanitiser marked as outside the text flow
///    or link-dense; in Markdown or text, when most of its words are link text.
///    Elsewhere it is kept and listed in [`BoilerplateReport::kept_repeated`]. A
///    table whose rows are all removed loses its header too.
/// 3. Titles: a prefix or suffix after a separator (` — `, ` | `, ` - `, `: `, …),
///    or a bracketed group closing the title (` (Site 2.0)`), shared by recurring
///    titles is stripped where something remains.
///
/// Each document's [`SanitizedDoc::blocks`] is emptied (its byte ranges would no
/// longer hold). Documents with nothing removed keep their Markdown byte for byte.
///
/// ```
/// use ragsnap_chunk::{remove_boilerplate, BoilerplateConfig, SanitizedDoc};
/// let topics = ["tides", "currents", "waves", "charts", "ports", "buoys"];
/// let mut docs: Vec<SanitizedDoc> = topics
///     .iter()
///     .map(|t| SanitizedDoc {
///         source_path: format!("{t}.md"),
///         title: None,
///         canonical_url: None,
///         markdown: format!("# {t}\n\nAll about {t} here.\n\n[Join our forum](https://forum.example) [today](/t)\n"),
///         links: vec![],
///         warnings: vec![],
///         ..Default::default()
///     })
///     .collect();
/// let report = remove_boilerplate(&mut docs, &BoilerplateConfig::default());
/// // Markdown pages carry no structure: a repeated block goes only when it is mostly links.
/// assert_eq!(report.blocks_removed, 6);
/// assert_eq!(docs[0].markdown, "# tides\n\nAll about tides here.\n");
/// ```
pub fn remove_boilerplate(docs: &mut [SanitizedDoc], cfg: &BoilerplateConfig) -> BoilerplateReport {
    // Parsing and rewriting are per document (rayon, results in document order);
    // only the page counts are gathered sequentially.
    let parsed: Vec<Parsed> = docs.par_iter().map(|d| parse_units(&d.markdown)).collect();
    let threshold = (cfg.min_share * docs.len() as f64).max(cfg.min_pages as f64);
    let recurring = |n: usize| n >= cfg.min_pages && n as f64 >= threshold;
    let mut report = BoilerplateReport {
        hub_pages: docs.iter().filter(|d| d.hub).map(|d| d.source_path.clone()).collect(),
        ..Default::default()
    };
    report.title_affix = strip_title_affix(docs, &recurring);

    // A control's signature (a tiny label beside headings, see `controls`) is template once
    // it recurs on a few pages; other shapes must recur on a share of the corpus.
    // (pages, distinct targets of a control) per shape.
    let mut shape_pages: HashMap<(u64, bool), (usize, HashSet<u64>)> = HashMap::new();
    for d in docs.iter() {
        let mut seen = HashSet::new();
        for b in &d.blocks {
            let Some(s) = b.shape else { continue };
            let key = (s, b.control.is_some());
            let e = shape_pages.entry(key).or_default();
            if seen.insert(key) {
                e.0 += 1;
            }
            e.1.extend(b.control.filter(|&t| t != crate::controls::NO_TARGETS));
        }
    }
    // A control leading somewhere else from page to page names no destination; one that
    // leads to the same place everywhere is a reference and stays, unless it has no links
    // at all (a toggle label) and recurs on a share of the pages.
    let linkless = |to: &HashSet<u64>| to.is_empty();
    let template: HashSet<(u64, bool)> = shape_pages
        .into_iter()
        .filter(|((_, control), (n, to))| {
            if *control {
                *n >= cfg.min_pages && (to.len() >= 2 || (recurring(*n) && linkless(to)))
            } else {
                recurring(*n)
            }
        })
        .map(|(s, _)| s)
        .collect();
    report.template_shapes = template.len();

    let mut pages: HashMap<&str, (usize, (usize, usize))> = HashMap::new();
    for (doc_no, p) in parsed.iter().enumerate() {
        let mut seen = HashSet::new();
        for (unit_no, u) in p.units.iter().enumerate() {
            if seen.insert(u.key.as_str()) {
                pages.entry(u.key.as_str()).or_insert((0, (doc_no, unit_no))).0 += 1;
            }
        }
    }
    let boiler: HashMap<&str, (usize, (usize, usize))> =
        pages.into_iter().filter(|(_, (n, _))| recurring(*n)).collect();
    report.blocks_total = parsed.iter().map(|p| p.units.len()).sum();
    let edge = edge_keys(&parsed, &boiler);
    if boiler.is_empty() && template.is_empty() {
        for d in docs.iter_mut() {
            d.blocks = Vec::new();
        }
        report.untitled_pages = drop_shared_title(docs, &recurring);
        return report;
    }

    struct Rewrite<'k> {
        blocks_removed: usize,
        template_removed: usize,
        markdown: Option<String>,
        dropped: Vec<&'k str>,
        kept: Vec<&'k str>,
    }
    let rewritten: Vec<Rewrite<'_>> = parsed
        .par_iter()
        .enumerate()
        .map(|(doc_no, p)| {
            let doc = &docs[doc_no];
            let md = &doc.markdown;
            let line_starts: Vec<usize> = std::iter::once(0)
                .chain(md.split_inclusive('\n').scan(0usize, |at, l| {
                    *at += l.len();
                    Some(*at)
                }))
                .collect();
            let line_count = line_starts.len() - 1;
            let lines_of = |b: &PageBlock| {
                let first = line_starts.partition_point(|&s| s < b.range.0);
                let end = line_starts[..line_count].partition_point(|&s| s < b.range.1);
                first..end.max(first)
            };
            let mut removed = vec![false; line_count];
            let mut chrome_line = vec![false; line_count];
            let mut template_removed = 0usize;
            for b in &doc.blocks {
                let lines = lines_of(b);
                if b.shape.is_some_and(|s| template.contains(&(s, b.control.is_some()))) {
                    removed[lines.clone()].iter_mut().for_each(|r| *r = true);
                    template_removed += 1;
                }
                if b.chrome_like {
                    chrome_line[lines].iter_mut().for_each(|r| *r = true);
                }
            }
            let structured = matches!(crate::extension_of(&doc.source_path).as_str(), "html" | "htm" | "xhtml");
            let lines: Vec<&str> = md.split_inclusive('\n').collect();
            let eligible = |u: &Unit| {
                if u.key.split(' ').filter(|w| w.chars().any(char::is_alphanumeric)).count() >= LONG_BLOCK_WORDS {
                    return true;
                }
                if edge.contains(u.key.as_str()) {
                    return true;
                }
                if structured {
                    chrome_line[u.lines.0..u.lines.1].iter().any(|&c| c)
                } else {
                    // A heading pair goes with its paragraph: judge the paragraph.
                    let from = if u.kind == UnitKind::Pair { u.lines.0 + 1 } else { u.lines.0 };
                    link_dense_markdown(&lines[from.min(u.lines.1)..u.lines.1].concat())
                }
            };
            let mut removed_rows = vec![0usize; p.tables.len()];
            let mut blocks_removed = 0usize;
            let mut dropped = Vec::new();
            let mut kept = Vec::new();
            // Pairs first, so a paragraph already removed with its heading is not counted twice.
            let ordered = p
                .units
                .iter()
                .filter(|u| u.kind == UnitKind::Pair)
                .chain(p.units.iter().filter(|u| u.kind != UnitKind::Pair));
            for u in ordered {
                let Some((key, _)) = boiler.get_key_value(u.key.as_str()) else {
                    continue;
                };
                let (a, b) = u.lines;
                if removed[a..b].iter().all(|&r| r) {
                    continue;
                }
                if !eligible(u) {
                    kept.push(*key);
                    continue;
                }
                dropped.push(*key);
                removed[a..b].iter_mut().for_each(|r| *r = true);
                blocks_removed += 1;
                if let UnitKind::TableRow(t) = u.kind {
                    removed_rows[t] += 1;
                }
            }
            for (t, table) in p.tables.iter().enumerate() {
                if table.rows > 0 && removed_rows[t] == table.rows {
                    let (a, b) = table.header_lines;
                    removed[a..b].iter_mut().for_each(|r| *r = true);
                }
            }
            Rewrite {
                blocks_removed,
                template_removed,
                markdown: removed.iter().any(|&r| r).then(|| rebuild(md, &removed)),
                dropped,
                kept,
            }
        })
        .collect();
    report.blocks_removed = rewritten.iter().map(|r| r.blocks_removed).sum();
    report.template_blocks_removed = rewritten.iter().map(|r| r.template_removed).sum();
    let dropped = tally(rewritten.iter().map(|r| r.dropped.as_slice()));
    let kept = tally(rewritten.iter().map(|r| r.kept.as_slice()));
    report.distinct_blocks = dropped.len();
    let show = |v: &[(&str, usize)]| -> Vec<(String, usize)> {
        v.iter()
            .take(TOP_N)
            .map(|&(k, n)| {
                let (doc_no, unit_no) = boiler[k].1;
                (display_text(&docs[doc_no].markdown, parsed[doc_no].units[unit_no].lines), n)
            })
            .collect()
    };
    report.top = show(&dropped);
    report.kept_repeated = show(&kept);
    let rewritten: Vec<Option<String>> = rewritten.into_iter().map(|r| r.markdown).collect();
    for (doc, new_md) in docs.iter_mut().zip(rewritten) {
        if let Some(md) = new_md {
            doc.markdown = md;
        }
        doc.blocks = Vec::new();
    }
    report.untitled_pages = drop_shared_title(docs, &recurring);
    report
}

/// Share of a recurring block's pages (percent) on which it must sit at the same edge.
const EDGE_SHARE: usize = 90;

/// Recurring blocks that sit at a fixed edge of the page: on at least [`EDGE_SHARE`]% of
/// the pages that have them, they are among the page's last blocks (only recurring
/// blocks after them), or among its first (only recurring blocks before them). A
/// closing line repeated on every page ("Part of the … suite") is template even when
/// short; a short sentence that recurs at varying places inside sections stays.
fn edge_keys<'k>(parsed: &'k [Parsed], boiler: &HashMap<&str, (usize, (usize, usize))>) -> HashSet<&'k str> {
    let mut at_edge: HashMap<&str, (usize, usize)> = HashMap::new();
    for p in parsed {
        // A page made of recurring blocks only has no edge to speak of.
        let own = |u: &Unit| !boiler.contains_key(u.key.as_str());
        let (Some(first), Some(last)) = (p.units.iter().position(own), p.units.iter().rposition(own)) else {
            continue;
        };
        let head: HashSet<&str> = p.units[..first].iter().map(|u| u.key.as_str()).collect();
        let tail: HashSet<&str> = p.units[last + 1..].iter().map(|u| u.key.as_str()).collect();
        for k in head {
            at_edge.entry(k).or_default().0 += 1;
        }
        for k in tail {
            at_edge.entry(k).or_default().1 += 1;
        }
    }
    at_edge
        .into_iter()
        .filter(|(k, (head, tail))| {
            let n = boiler[k].0;
            head * 100 >= n * EDGE_SHARE || tail * 100 >= n * EDGE_SHARE
        })
        .map(|(k, _)| k)
        .collect()
}

/// A title shared, word for word, by a recurring number of pages (after the site affix
/// is stripped) names the site, not the page. On those pages a first heading that says
/// the same is removed too, and the title becomes the first heading left (or none).
/// Returns how many pages lost their title that way.
fn drop_shared_title(docs: &mut [SanitizedDoc], recurring: &dyn Fn(usize) -> bool) -> usize {
    let key = |t: &str| ragsnap_core::normalize_text(t).to_lowercase();
    let mut counts: HashMap<String, usize> = HashMap::new();
    for d in docs.iter() {
        if let Some(t) = d.title.as_deref() {
            *counts.entry(key(t)).or_default() += 1;
        }
    }
    let shared: HashSet<String> = counts.into_iter().filter(|&(_, n)| recurring(n)).map(|(k, _)| k).collect();
    if shared.is_empty() {
        return 0;
    }
    let mut changed = 0;
    for d in docs.iter_mut() {
        let Some(t) = d.title.as_deref().map(key).filter(|t| shared.contains(t)) else { continue };
        changed += 1;
        let mut lines: Vec<&str> = d.markdown.split_inclusive('\n').collect();
        let first = lines.iter().position(|l| is_heading(content_of(l)));
        if let Some(i) = first {
            let text = content_of(lines[i]).trim_start_matches('#').trim();
            if key(text) == t {
                lines.remove(i);
                while i < lines.len() && lines[i].trim().is_empty() && (i == 0 || lines[i - 1].trim().is_empty()) {
                    lines.remove(i);
                }
                let md: String = lines.concat();
                let md = md.trim_start_matches('\n').to_owned();
                if !md.trim().is_empty() {
                    d.markdown = md;
                }
            }
        }
        d.title = d
            .markdown
            .lines()
            .map(content_of)
            .find(|l| is_heading(l))
            .map(|l| ragsnap_core::normalize_text(l.trim_start_matches('#').trim()))
            .filter(|h| !h.is_empty() && key(h) != t);
    }
    changed
}

/// Pages per key (each page counted once), most pages first.
fn tally<'k>(lists: impl Iterator<Item = &'k [&'k str]>) -> Vec<(&'k str, usize)> {
    let mut n: HashMap<&str, usize> = HashMap::new();
    for list in lists {
        let once: HashSet<&str> = list.iter().copied().collect();
        for k in once {
            *n.entry(k).or_default() += 1;
        }
    }
    let mut v: Vec<(&str, usize)> = n.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    v
}

/// Separators between a page's own title and a site name.
const TITLE_SEPARATORS: &[&str] = &[" — ", " – ", " -- ", " | ", " · ", " - ", " :: ", " » ", ": "];

/// Find the title prefix or suffix (separator included) shared by a recurring
/// number of titles, strip it from every title that has it and keeps some text,
/// and return it.
fn strip_title_affix(docs: &mut [SanitizedDoc], recurring: &dyn Fn(usize) -> bool) -> Option<String> {
    let mut counts: HashMap<(bool, String), usize> = HashMap::new();
    for d in docs.iter() {
        let Some(t) = d.full_title.as_deref().or(d.title.as_deref()) else { continue };
        let mut seen = HashSet::new();
        for sep in TITLE_SEPARATORS {
            if let Some(i) = t.rfind(sep) {
                seen.insert((true, t[i..].to_owned()));
            }
            if let Some(i) = t.find(sep) {
                seen.insert((false, t[..i + sep.len()].to_owned()));
            }
        }
        // A bracketed group closing the title: "Page (Site 2.0)".
        for (open, close) in [('(', ')'), ('[', ']')] {
            if t.ends_with(close) {
                if let Some(i) = t.rfind(&format!(" {open}")) {
                    seen.insert((true, t[i..].to_owned()));
                }
            }
        }
        for k in seen {
            *counts.entry(k).or_default() += 1;
        }
    }
    let mut best: Vec<((bool, String), usize)> = counts.into_iter().filter(|(_, n)| recurring(*n)).collect();
    best.sort_by(|a, b| b.1.cmp(&a.1).then(b.0 .1.len().cmp(&a.0 .1.len())).then(a.0.cmp(&b.0)));
    let Some(((suffix, affix), _)) = best.into_iter().next() else {
        docs.iter_mut().for_each(|d| d.full_title = None);
        return None;
    };
    for d in docs.iter_mut() {
        d.full_title = None;
        let Some(t) = d.title.as_deref() else { continue };
        let rest = if suffix { t.strip_suffix(affix.as_str()) } else { t.strip_prefix(affix.as_str()) };
        if let Some(rest) = rest.map(str::trim).filter(|r| !r.is_empty()) {
            d.title = Some(rest.to_owned());
        }
    }
    Some(affix)
}

/// Whether most words of a Markdown block are link text (`[text](target)`).
fn link_dense_markdown(text: &str) -> bool {
    let mut in_link = 0usize;
    let mut link_text = String::new();
    let mut all = 0usize;
    let mut chars = text.chars().peekable();
    let mut plain = String::new();
    while let Some(c) = chars.next() {
        match c {
            '[' => in_link += 1,
            ']' if in_link > 0 => {
                in_link -= 1;
                if chars.peek() == Some(&'(') {
                    for d in chars.by_ref() {
                        if d == ')' {
                            break;
                        }
                    }
                }
                link_text.push(' ');
            }
            _ if in_link > 0 => link_text.push(c),
            _ => plain.push(c),
        }
    }
    let word = |w: &&str| w.chars().any(char::is_alphanumeric);
    let link_words = link_text.split_whitespace().filter(word).count();
    all += link_words + plain.split_whitespace().filter(word).count();
    all > 0 && link_words * 2 > all
}

fn display_text(md: &str, (a, b): (usize, usize)) -> String {
    let text: String = md.split_inclusive('\n').skip(a).take(b - a).collect::<Vec<_>>().join(" ");
    let text = ragsnap_core::normalize_text(&text);
    if text.chars().count() > DISPLAY_CHARS {
        text.chars().take(DISPLAY_CHARS).collect::<String>() + "…"
    } else {
        text
    }
}

/// Drop removed lines, and the blank lines that would be left doubled.
fn rebuild(md: &str, removed: &[bool]) -> String {
    let lines: Vec<&str> = md.split_inclusive('\n').collect();
    let mut drop = removed.to_vec();
    let blank = |i: usize| lines[i].trim().is_empty();
    let mut i = 0;
    while i < lines.len() {
        if !removed[i] {
            i += 1;
            continue;
        }
        let run_start = i;
        while i < lines.len() && removed[i] {
            i += 1;
        }
        let after_blank_or_start = run_start == 0 || (blank(run_start - 1) && !removed[run_start - 1]);
        if after_blank_or_start {
            while i < lines.len() && blank(i) && !removed[i] {
                drop[i] = true;
                i += 1;
            }
        }
    }
    let mut out = String::with_capacity(md.len());
    for (line, d) in lines.iter().zip(&drop) {
        if !d {
            out.push_str(line);
        }
    }
    let trimmed_len = out.trim_end().len();
    out.truncate(trimmed_len);
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

/// Comparison key for a block: see [`remove_boilerplate`].
fn normalize_key(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.chars() {
        if c.is_whitespace() || c == '|' {
            space = true;
            continue;
        }
        if c == '\\' {
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        if c.is_ascii_digit() {
            if !out.ends_with('#') {
                out.push('#');
            }
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

fn enough_words(key: &str) -> bool {
    key.split(' ').filter(|w| w.chars().any(char::is_alphanumeric)).count() >= 2
}

/// Strip blockquote markers and indentation.
fn content_of(line: &str) -> &str {
    let mut s = line.trim();
    while let Some(rest) = s.strip_prefix('>') {
        s = rest.trim_start();
    }
    s
}

fn fence_of(content: &str) -> Option<(char, usize)> {
    let c = content.chars().next()?;
    if c != '`' && c != '~' {
        return None;
    }
    let n = content.chars().take_while(|&d| d == c).count();
    (n >= 3).then_some((c, n))
}

fn is_heading(content: &str) -> bool {
    let hashes = content.bytes().take_while(|&b| b == b'#').count();
    (1..=6).contains(&hashes) && content[hashes..].chars().next().is_none_or(|c| c == ' ' || c == '\t')
}

/// Text after a list marker (`- `, `* `, `+ `, `1. `, `1) `, or a `: ` definition).
fn list_item_text(content: &str) -> Option<&str> {
    for m in ["- ", "* ", "+ ", ": "] {
        if let Some(rest) = content.strip_prefix(m) {
            return Some(rest);
        }
    }
    let digits = content.bytes().take_while(u8::is_ascii_digit).count();
    if (1..=9).contains(&digits) {
        let rest = &content[digits..];
        if let Some(r) = rest.strip_prefix(". ").or_else(|| rest.strip_prefix(") ")) {
            return Some(r);
        }
    }
    None
}

fn is_table_delimiter(content: &str) -> bool {
    content.contains('-') && content.chars().all(|c| matches!(c, '|' | '-' | ':' | ' ' | '\t')) && content.contains('|')
}

fn push_unit(units: &mut Vec<Unit>, kind: UnitKind, text: &str, lines: (usize, usize)) {
    let key = normalize_key(text);
    if enough_words(&key) {
        units.push(Unit { kind, key, lines });
    }
}

struct UnitParser<'a> {
    lines: Vec<&'a str>,
    units: Vec<Unit>,
    /// First line of the open paragraph.
    para: Option<usize>,
    /// A heading with nothing but blank lines after it so far.
    heading: Option<usize>,
}

impl UnitParser<'_> {
    fn end_para(&mut self, at: usize) {
        if let Some(start) = self.para.take() {
            let text: String = self.lines[start..at].concat();
            push_unit(&mut self.units, UnitKind::Paragraph, &text, (start, at));
            if let Some(h) = self.heading {
                let pair = format!("{}\n{}", self.lines[h], text);
                push_unit(&mut self.units, UnitKind::Pair, &pair, (h, at));
            }
        }
        self.heading = None;
    }
}

fn parse_units(md: &str) -> Parsed {
    let mut p = UnitParser { lines: md.split_inclusive('\n').collect(), units: Vec::new(), para: None, heading: None };
    let mut tables: Vec<Table> = Vec::new();
    let mut fence: Option<(char, usize)> = None;
    let mut table: Option<usize> = None;
    let mut i = 0;
    while i < p.lines.len() {
        let content = content_of(p.lines[i]);
        if let Some((c, n)) = fence {
            if fence_of(content).is_some_and(|(d, m)| d == c && m >= n)
                && content.trim_start_matches(c).trim().is_empty()
            {
                fence = None;
            }
            i += 1;
            continue;
        }
        if content.starts_with('|') {
            if let Some(t) = table {
                push_unit(&mut p.units, UnitKind::TableRow(t), content, (i, i + 1));
                tables[t].rows += 1;
                i += 1;
                continue;
            }
            if p.lines.get(i + 1).is_some_and(|next| is_table_delimiter(content_of(next))) {
                p.end_para(i);
                tables.push(Table { header_lines: (i, i + 2), rows: 0 });
                table = Some(tables.len() - 1);
                i += 2;
                continue;
            }
        }
        table = None;
        if let Some(f) = fence_of(content) {
            p.end_para(i);
            fence = Some(f);
        } else if content.is_empty() {
            if p.para.is_some() {
                p.end_para(i);
            }
        } else if is_heading(content) {
            p.end_para(i);
            p.heading = Some(i);
        } else if let Some(text) = list_item_text(content) {
            p.end_para(i);
            push_unit(&mut p.units, UnitKind::ListItem, text, (i, i + 1));
        } else if p.para.is_none() {
            p.para = Some(i);
        }
        i += 1;
    }
    let n = p.lines.len();
    p.end_para(n);
    Parsed { units: p.units, tables }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(i: usize, md: String) -> SanitizedDoc {
        SanitizedDoc {
            source_path: format!("p{i}.md"),
            title: None,
            canonical_url: None,
            markdown: md,
            links: vec![],
            warnings: vec![],
            ..Default::default()
        }
    }

    #[test]
    fn keys_ignore_case_digits_and_space() {
        assert_eq!(normalize_key("© 2026  Tidewater\tInc"), normalize_key("© 2025 tidewater inc"));
        assert_eq!(normalize_key("| a | b |"), "a b");
    }

    #[test]
    fn recurring_link_blocks_go_and_unique_ones_stay() {
        // Digits are normalised away, so page-specific text differs by words.
        let names = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"];
        let mut docs: Vec<SanitizedDoc> = (0..10)
            .map(|i| {
                let w = names[i];
                let shared = if i < 4 { "\n\n[Shared by](/a) [four pages](/b) only.\n" } else { "" };
                doc(
                    i,
                    format!(
                        "# Page {w}\n\n## Need help?\n\n[Ask on the forum](/forum) any time.\n\n- Item unique {w}\n- [Docs home](/) link\n\n| k | v |\n| --- | --- |\n| [same row](/r) | x |\n\n```\nAsk on the forum any time.\n```\n\nBody text for {w}.{shared}"
                    ),
                )
            })
            .collect();
        let report = remove_boilerplate(&mut docs, &BoilerplateConfig::default());
        assert_eq!(report.distinct_blocks, 3, "{report:?}"); // pair (its paragraph goes with it), list item, row
        assert_eq!(report.blocks_removed, 30);
        assert_eq!(report.top[0].1, 10);
        assert_eq!(
            docs[0].markdown,
            "# Page alpha\n\n- Item unique alpha\n\n```\nAsk on the forum any time.\n```\n\nBody text for alpha.\n\n[Shared by](/a) [four pages](/b) only.\n"
        );
    }

    #[test]
    fn repeated_prose_in_the_content_stays_and_is_reported() {
        let names = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"];
        let mut docs: Vec<SanitizedDoc> = names
            .iter()
            .enumerate()
            .map(|(i, w)| {
                // The short sentences sit at different places on different pages.
                let md = if i % 2 == 0 {
                    format!("# {w}\n\nAll about {w}.\n\nNew in version 3.11.\n\nSee also\n\nMore on {w}.\n")
                } else {
                    format!("# {w}\n\nNew in version 3.11.\n\nAll about {w}.\n\nSee also\n\nMore on {w}.\n")
                };
                doc(i, md)
            })
            .collect();
        let before = docs.clone();
        let report = remove_boilerplate(&mut docs, &BoilerplateConfig::default());
        assert_eq!(report.blocks_removed, 0);
        assert_eq!(docs, before);
        let kept: Vec<&str> = report.kept_repeated.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(kept, ["New in version 3.11.", "See also"], "{report:?}");
        assert_eq!(report.kept_repeated[0].1, 6);
    }

    #[test]
    fn a_short_line_closing_every_page_is_template() {
        let names = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"];
        let mut docs: Vec<SanitizedDoc> = names
            .iter()
            .enumerate()
            .map(|(i, w)| doc(i, format!("# {w}\n\nAll about {w}.\n\n## Suite\n\nPart of the kit.\n")))
            .collect();
        let report = remove_boilerplate(&mut docs, &BoilerplateConfig::default());
        assert_eq!(docs[2].markdown, "# charlie\n\nAll about charlie.\n", "{report:?}");
        assert_eq!(report.blocks_removed, 6);
    }

    #[test]
    fn a_page_of_recurring_blocks_only_keeps_them() {
        let mut docs: Vec<SanitizedDoc> = (0..6).map(|i| doc(i, "Short note here.\n".into())).collect();
        let before = docs.clone();
        remove_boilerplate(&mut docs, &BoilerplateConfig::default());
        assert_eq!(docs, before);
    }

    #[test]
    fn a_title_suffix_shared_by_most_pages_is_stripped() {
        let mut docs: Vec<SanitizedDoc> = (0..8)
            .map(|i| {
                let mut d = doc(i, format!("Text {i}\n"));
                d.title = Some(match i {
                    0 => "Tidewater Docs".to_owned(),
                    7 => "Release notes".to_owned(),
                    _ => format!("Topic {} — Tidewater Docs", ["a", "b", "c", "d", "e", "f"][i - 1]),
                });
                d
            })
            .collect();
        let report = remove_boilerplate(&mut docs, &BoilerplateConfig::default());
        assert_eq!(report.title_affix.as_deref(), Some(" — Tidewater Docs"));
        let titles: Vec<&str> = docs.iter().map(|d| d.title.as_deref().unwrap()).collect();
        assert_eq!(
            titles,
            ["Tidewater Docs", "Topic a", "Topic b", "Topic c", "Topic d", "Topic e", "Topic f", "Release notes"]
        );
    }

    #[test]
    fn a_bracketed_title_suffix_shared_by_most_pages_is_stripped() {
        let mut docs: Vec<SanitizedDoc> = ["Alpha", "Bravo", "Charlie", "Delta", "Echo (old)"]
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let mut d = doc(i, format!("Text {i}\n"));
                d.title = Some(format!("{t} (Tidewater 2 & Docs 2)"));
                d
            })
            .collect();
        let report = remove_boilerplate(&mut docs, &BoilerplateConfig::default());
        assert_eq!(report.title_affix.as_deref(), Some(" (Tidewater 2 & Docs 2)"));
        assert_eq!(docs[4].title.as_deref(), Some("Echo (old)"));
    }

    #[test]
    fn recurring_shapes_go_wherever_their_text_differs() {
        let mut docs: Vec<SanitizedDoc> = (0..6)
            .map(|i| {
                let nav = format!("| Page {i} | [Up](/u) | Part {i} |");
                let body = format!("Body of page number {i} with words.");
                let md = format!("{nav}\n\n{body}\n");
                let mut d = doc(i, md);
                d.source_path = format!("p{i}.html");
                d.blocks = vec![PageBlock { range: (0, nav.len()), shape: Some(7), chrome_like: true, control: None }];
                d
            })
            .collect();
        let report = remove_boilerplate(&mut docs, &BoilerplateConfig::default());
        assert_eq!(report.template_shapes, 1);
        assert_eq!(report.template_blocks_removed, 6);
        assert_eq!(docs[3].markdown, "Body of page number 3 with words.\n");
        assert!(docs.iter().all(|d| d.blocks.is_empty()));
    }

    #[test]
    fn too_few_pages_removes_nothing() {
        let mut docs: Vec<SanitizedDoc> = (0..4).map(|i| doc(i, "Same text everywhere here.\n".into())).collect();
        let before = docs.clone();
        let report = remove_boilerplate(&mut docs, &BoilerplateConfig::default());
        assert_eq!(report.blocks_removed, 0);
        assert_eq!(docs, before);
    }
}
