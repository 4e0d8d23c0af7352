//! Corpus-level boilerplate removal: blocks that recur on many pages are chrome
//! the per-page rules missed (a "Need help? Join the forum" box, a version
//! banner, a site-wide notice), so they are dropped from every page.

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::SanitizedDoc;

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
    /// and the number of pages each occurred on; at most 10, most pages first.
    pub top: Vec<(String, usize)>,
}

const TOP_N: usize = 10;
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

/// Remove blocks whose normalised text recurs on at least `cfg.min_pages` pages
/// and at least `cfg.min_share` of all pages from every document.
///
/// Blocks are paragraphs, list items (one line each), table rows, and a heading
/// together with the paragraph right under it. Fenced code is never touched.
/// Text is normalised before comparison: lowercased, Markdown escapes and table
/// pipes dropped, white space collapsed, and every run of digits replaced by `#`
/// (so "© 2025" and "© 2026", or "v1.2" and "v1.3", compare equal). Blocks of
/// fewer than two words are never boilerplate: labels such as "Note" or
/// "Parameters:" recur legitimately. A table whose rows are all removed loses its
/// header too. Documents with nothing removed are left byte-for-byte unchanged.
///
/// ```
/// use ragsnap_chunk::{remove_boilerplate, BoilerplateConfig, SanitizedDoc};
/// let topics = ["tides", "currents", "waves", "charts", "ports", "buoys"];
/// let mut docs: Vec<SanitizedDoc> = topics
///     .iter()
///     .map(|t| SanitizedDoc {
///         source_path: format!("{t}.html"),
///         title: None,
///         canonical_url: None,
///         markdown: format!("# {t}\n\nAll about {t} here.\n\nJoin our community forum today!\n"),
///         links: vec![],
///         warnings: vec![],
///     })
///     .collect();
/// let report = remove_boilerplate(&mut docs, &BoilerplateConfig::default());
/// assert_eq!(report.blocks_removed, 6);
/// assert_eq!(docs[0].markdown, "# tides\n\nAll about tides here.\n");
/// ```
pub fn remove_boilerplate(docs: &mut [SanitizedDoc], cfg: &BoilerplateConfig) -> BoilerplateReport {
    // Parsing and rewriting are per document (rayon, results in document order);
    // only the page counts are gathered sequentially.
    let parsed: Vec<Parsed> = docs.par_iter().map(|d| parse_units(&d.markdown)).collect();
    let mut pages: HashMap<&str, (usize, (usize, usize))> = HashMap::new();
    for (doc_no, p) in parsed.iter().enumerate() {
        let mut seen = HashSet::new();
        for (unit_no, u) in p.units.iter().enumerate() {
            if seen.insert(u.key.as_str()) {
                pages.entry(u.key.as_str()).or_insert((0, (doc_no, unit_no))).0 += 1;
            }
        }
    }
    let threshold = (cfg.min_share * docs.len() as f64).max(cfg.min_pages as f64);
    let boiler: HashMap<&str, (usize, (usize, usize))> =
        pages.into_iter().filter(|(_, (n, _))| *n >= cfg.min_pages && *n as f64 >= threshold).collect();
    let blocks_total = parsed.iter().map(|p| p.units.len()).sum();
    let mut report = BoilerplateReport { distinct_blocks: boiler.len(), blocks_total, ..Default::default() };
    if boiler.is_empty() {
        return report;
    }
    let mut top: Vec<(&str, usize, (usize, usize))> = boiler.iter().map(|(k, (n, at))| (*k, *n, *at)).collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    report.top = top
        .iter()
        .take(TOP_N)
        .map(|&(_, n, (doc_no, unit_no))| {
            let u = &parsed[doc_no].units[unit_no];
            (display_text(&docs[doc_no].markdown, u.lines), n)
        })
        .collect();

    let rewritten: Vec<(usize, Option<String>)> = parsed
        .par_iter()
        .enumerate()
        .map(|(doc_no, p)| {
            let md = &docs[doc_no].markdown;
            let line_count = md.split_inclusive('\n').count();
            let mut removed = vec![false; line_count];
            let mut removed_rows = vec![0usize; p.tables.len()];
            let mut blocks_removed = 0usize;
            // Pairs first, so a paragraph already removed with its heading is not counted twice.
            let ordered = p
                .units
                .iter()
                .filter(|u| u.kind == UnitKind::Pair)
                .chain(p.units.iter().filter(|u| u.kind != UnitKind::Pair));
            for u in ordered {
                if !boiler.contains_key(u.key.as_str()) {
                    continue;
                }
                let (a, b) = u.lines;
                if removed[a..b].iter().all(|&r| r) {
                    continue;
                }
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
            (blocks_removed, removed.iter().any(|&r| r).then(|| rebuild(md, &removed)))
        })
        .collect();
    report.blocks_removed = rewritten.iter().map(|r| r.0).sum();
    let rewritten = rewritten.into_iter().map(|r| r.1);
    for (doc, new_md) in docs.iter_mut().zip(rewritten) {
        if let Some(md) = new_md {
            doc.markdown = md;
        }
    }
    report
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
        }
    }

    #[test]
    fn keys_ignore_case_digits_and_space() {
        assert_eq!(normalize_key("© 2026  Tidewater\tInc"), normalize_key("© 2025 tidewater inc"));
        assert_eq!(normalize_key("| a | b |"), "a b");
    }

    #[test]
    fn recurring_blocks_go_and_unique_ones_stay() {
        // Digits are normalised away, so page-specific text differs by words.
        let names = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"];
        let mut docs: Vec<SanitizedDoc> = (0..10)
            .map(|i| {
                let w = names[i];
                let shared = if i < 4 { "\n\nShared by four pages only.\n" } else { "" };
                doc(
                    i,
                    format!(
                        "# Page {w}\n\n## Need help?\n\nAsk on the forum any time.\n\n- Item unique {w}\n- Docs home link\n\n| k | v |\n| --- | --- |\n| same row | x |\n\n```\nAsk on the forum any time.\n```\n\nBody text for {w}.{shared}"
                    ),
                )
            })
            .collect();
        let report = remove_boilerplate(&mut docs, &BoilerplateConfig::default());
        assert_eq!(report.distinct_blocks, 4, "{report:?}"); // pair, paragraph, list item, row
        assert_eq!(report.blocks_removed, 30);
        assert_eq!(report.top[0].1, 10);
        assert_eq!(
            docs[0].markdown,
            "# Page alpha\n\n- Item unique alpha\n\n```\nAsk on the forum any time.\n```\n\nBody text for alpha.\n\nShared by four pages only.\n"
        );
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
