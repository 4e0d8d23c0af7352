//! Tiny controls inside the content flow: the little links, toggles and labels a
//! generator puts beside every item heading or code example ("source", "[−]",
//! "Read more", "Run", "Expand description"). They are recognised by structure
//! and repetition, never by their words:
//!
//! - a *heading-side* element: a sibling of a heading (`h1`–`h6`), not inside running
//!   text, of at most [`WRAPPER_MAX_WORDS`] words, holding links whose labels have at
//!   most [`LABEL_MAX_WORDS`] words;
//! - a *toggle label*: a short `summary` with no heading, link or code in it;
//! - a *trailing label link*: a short link closing a paragraph (or alone in it), no code in it;
//! - a *code toolbar link*: a short link whose parent holds a code block and nothing
//!   else but such links;
//! - a *lone link*: a short link that is all a paragraph or `div` holds.
//!
//! A heading-side element or toggle label whose signature (the tag names and classes
//! of itself and its parent, its own links' tag names and classes, and their labels;
//! separators and glyphs are not counted as words) occurs [`PAGE_REPEATS`] times on the
//! page is dropped there; otherwise it becomes a block of its own with that signature,
//! and the corpus pass drops it where the signature recurs on a few pages. A trailing
//! label link is dropped when the page has the same label on [`PAGE_REPEATS`] trailing
//! links, and they lead to more than one place: a label that names no destination. A
//! lone link that stays becomes a block with its own signature (the block, the link and
//! the label) for the corpus pass. A code toolbar link is always dropped.

use std::collections::{HashMap, HashSet};

use ego_tree::NodeId;
use scraper::node::Element;
use scraper::Node;

use crate::html::{attr, fold_digits, heading_level, short_text, word_count, Fnv, NRef};

/// A control's label: at most this many words...
const LABEL_MAX_WORDS: usize = 3;
/// ...and this many characters.
const LABEL_MAX_CHARS: usize = 32;
/// A heading-side element holds at most this many words, labels included.
const WRAPPER_MAX_WORDS: usize = 5;
/// A signature (or a trailing label with distinct targets) seen this many times on one
/// page is chrome there.
const PAGE_REPEATS: usize = 3;
/// Elements looked at per page; a bigger page is scanned up to here.
const NODE_BUDGET: usize = 400_000;

/// What the scan decided for one page.
#[derive(Default)]
pub(crate) struct Controls {
    /// Elements dropped with their subtree.
    pub(crate) drop: HashSet<NodeId>,
    /// Elements written as a block of their own, with their signature and where their
    /// links lead (see `targets`), for the corpus pass.
    pub(crate) blocks: HashMap<NodeId, (u64, u64)>,
}

/// Elements that are content blocks in their own right, never a heading's side control.
const CONTENT_BLOCKS: &[&str] = &[
    "p",
    "ul",
    "ol",
    "dl",
    "li",
    "dt",
    "dd",
    "table",
    "pre",
    "blockquote",
    "section",
    "article",
    "main",
    "details",
    "figure",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
];

/// Tag name and classes, digit runs folded: a local, id-free description.
fn light_shape(el: &Element) -> u64 {
    let mut h = Fnv::new();
    h.str(el.name());
    let mut classes: Vec<String> = el.classes().map(|c| fold_digits(&c.to_ascii_lowercase())).collect();
    classes.sort_unstable();
    for c in classes {
        h.str(&c);
    }
    h.0
}

fn is_code_like(name: &str) -> bool {
    matches!(name, "code" | "kbd" | "samp" | "tt" | "pre" | "var")
}

/// The label of a link or summary: its text when short enough and free of code.
fn label(node: NRef<'_>) -> Option<String> {
    let mut code = false;
    for d in node.descendants().take(64) {
        if let Some(e) = d.value().as_element() {
            if is_code_like(e.name()) || heading_level(e.name()).is_some() {
                code = true;
            }
        }
    }
    if code {
        return None;
    }
    let text = short_text(node, LABEL_MAX_CHARS)?;
    (word_count(&text) <= LABEL_MAX_WORDS).then_some(text)
}

/// Whether the nearest significant sibling on either side is text (running text around it).
fn has_text_sibling(node: NRef<'_>) -> bool {
    let text = |s: Option<NRef<'_>>| s.is_some_and(|s| s.value().is_text());
    text(node.prev_siblings().find(significant)) || text(node.next_siblings().find(significant))
}

fn significant(s: &NRef<'_>) -> bool {
    match s.value() {
        Node::Text(t) => !t.trim().is_empty(),
        other => other.is_element(),
    }
}

/// Significant children: elements and non-blank text.
fn significant_children(node: NRef<'_>) -> impl Iterator<Item = NRef<'_>> {
    node.children().filter(|c| match c.value() {
        Node::Element(_) => true,
        Node::Text(t) => !t.trim().is_empty(),
        _ => false,
    })
}

/// The signature of a heading-side element: itself, its parent, and its links with labels.
fn side_signature(node: NRef<'_>, el: &Element) -> Option<u64> {
    if CONTENT_BLOCKS.contains(&el.name()) || has_text_sibling(node) {
        return None;
    }
    let text = short_text(node, 64)?;
    if text.is_empty() || label_words(&text) > WRAPPER_MAX_WORDS {
        return None;
    }
    let mut h = Fnv::new();
    h.str("side");
    h.bytes(&light_shape(el).to_le_bytes());
    if let Some(p) = node.parent().and_then(|p| p.value().as_element()) {
        h.bytes(&light_shape(p).to_le_bytes());
    }
    // When the element has links of its own, only they sign it: a link nested in a note
    // beside them (a version or status that varies per item) leaves the signature alone.
    let own_links = node.children().any(|c| c.value().as_element().is_some_and(|e| e.name() == "a"));
    let mut links = 0usize;
    for d in node.descendants() {
        let Some(e) = d.value().as_element() else { continue };
        if heading_level(e.name()).is_some() || is_code_like(e.name()) {
            return None;
        }
        if e.name() == "a" {
            let l = label(d)?;
            if l.is_empty() {
                continue;
            }
            links += 1;
            if !own_links || d.parent().is_some_and(|p| p.id() == node.id()) {
                h.bytes(&light_shape(e).to_le_bytes());
                h.str(&l.to_lowercase());
            }
        }
    }
    (links > 0).then_some(h.0)
}

/// Whether the label's letters and digits occur, in order and together, in the target's.
fn names_target(label: &str, href: &str) -> bool {
    let squash = |s: &str| s.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect::<String>();
    let l = squash(label);
    !l.is_empty() && squash(href).contains(&l)
}

/// [`targets`] of an element without links (or with links to the page itself or to a
/// script only): it tells nothing of where the element leads.
pub(crate) const NO_TARGETS: u64 = 0xcbf2_9ce4_8422_2325;

/// Where the links under `node` lead, resolved against the page's path: a hash of the
/// targets in document order. A control ("source", "Read more") leads somewhere else on
/// every page; a reference ("Package util", "see-also(5)") leads to the same place.
pub(crate) fn targets(node: NRef<'_>, page: &str) -> u64 {
    let mut h = Fnv::new();
    for d in node.descendants().take(256) {
        if let Some(e) = d.value().as_element().filter(|e| e.name() == "a") {
            // A link to the page itself, or a place on it, differs from page to page by nature;
            // a script link says nothing of where it leads.
            let to = resolve(page, attr(e, "href").unwrap_or("").trim());
            let scripted = to.get(..11).is_some_and(|p| p.eq_ignore_ascii_case("javascript:"));
            if !scripted && to != page && !to.strip_prefix(page).is_some_and(|rest| rest.starts_with(['#', '?'])) {
                h.str(&to);
            }
        }
    }
    h.0
}

/// `href` resolved against the page path `page` (relative to the site root): a site
/// path with `.` and `..` segments folded; absolute and external targets as written.
fn resolve(page: &str, href: &str) -> String {
    if href.contains("://") || href.starts_with("//") || href.starts_with('/') || href.contains(':') {
        return href.to_owned();
    }
    if href.is_empty() || href.starts_with('#') || href.starts_with('?') {
        return format!("{page}{href}");
    }
    let mut parts: Vec<&str> = page.split('/').collect();
    parts.pop();
    for seg in href.split('/') {
        match seg {
            "." | "" => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    parts.join("/")
}

/// Words, but for the dots and bullets between a control's labels and bracketed glyphs
/// ("[−]").
fn label_words(text: &str) -> usize {
    let glyph = |w: &str| {
        w.chars().all(|c| matches!(c, '·' | '•'))
            || (w.starts_with('[') && w.ends_with(']') && !w.chars().any(char::is_alphanumeric))
    };
    text.split_whitespace().filter(|w| !glyph(w)).count()
}

/// The signature of a paragraph or `div` that holds one short link and nothing else (a
/// "more" link set apart from the text): the block, its link and the label.
fn lone_link_signature(link: NRef<'_>, el: &Element, l: &str) -> Option<(NodeId, u64)> {
    let parent = link.parent()?;
    let pel = parent.value().as_element()?;
    if !matches!(pel.name(), "p" | "div") || significant_children(parent).nth(1).is_some() {
        return None;
    }
    // A link to a place on the same page is an entry of the page's own contents, and a
    // label that names its target ("IntoIter" to `struct.IntoIter.html`) is a reference.
    let href = attr(el, "href").unwrap_or("").trim();
    if href.is_empty() || href.starts_with('#') || names_target(l, href) {
        return None;
    }
    let mut h = Fnv::new();
    h.str("lone");
    h.bytes(&light_shape(pel).to_le_bytes());
    h.bytes(&light_shape(el).to_le_bytes());
    h.str(&l.to_lowercase());
    Some((parent.id(), h.0))
}

fn summary_signature(node: NRef<'_>, el: &Element) -> Option<u64> {
    if node.descendants().take(256).any(|d| d.value().as_element().is_some_and(|e| e.name() == "a")) {
        return None;
    }
    let l = label(node)?;
    if l.is_empty() {
        return None;
    }
    let mut h = Fnv::new();
    h.str("summary");
    h.bytes(&light_shape(el).to_le_bytes());
    if let Some(p) = node.parent().and_then(|p| p.value().as_element()) {
        h.bytes(&light_shape(p).to_le_bytes());
    }
    h.str(&l.to_lowercase());
    Some(h.0)
}

/// A short link closing a paragraph (nothing after it), or alone in a `p`.
fn is_trailing(node: NRef<'_>) -> bool {
    let Some(parent) = node.parent() else { return false };
    let Some(pel) = parent.value().as_element() else { return false };
    if !matches!(pel.name(), "p" | "div" | "li" | "dd" | "td" | "span") {
        return false;
    }
    if node.next_siblings().any(|s| significant(&s)) {
        return false;
    }
    // Alone only in a paragraph: a lone link in a list item or cell is an entry of a list.
    pel.name() == "p" || node.prev_siblings().any(|s| significant(&s))
}

/// A short link beside a code block in a parent that holds nothing else but such links.
fn is_code_toolbar_link(node: NRef<'_>) -> bool {
    let Some(parent) = node.parent() else { return false };
    let mut has_pre = false;
    // A toolbar is small: a parent with many children is something else.
    if significant_children(parent).nth(8).is_some() {
        return false;
    }
    for c in significant_children(parent) {
        match c.value() {
            Node::Text(_) => return false,
            Node::Element(e) if e.name() == "pre" => has_pre = true,
            Node::Element(e) if e.name() == "a" && label(c).is_none_or(|l| word_count(&l) > 2) => return false,
            Node::Element(e) if e.name() == "a" => {}
            Node::Element(_) => return false,
            _ => {}
        }
    }
    has_pre
}

/// Scan the page under `root` for tiny controls; see the module documentation.
pub(crate) fn scan(root: NRef<'_>, page: &str) -> Controls {
    let mut out = Controls::default();
    let mut signatures: Vec<(NodeId, u64)> = Vec::new();
    let mut counts: HashMap<u64, usize> = HashMap::new();
    // Trailing links by label: their nodes and distinct targets.
    let mut trailing: HashMap<String, (Vec<NodeId>, HashSet<String>)> = HashMap::new();
    // Blocks holding one short link only: (link, block, signature).
    let mut lone: Vec<(NodeId, NodeId, u64)> = Vec::new();
    let heading_parents: HashSet<NodeId> = root
        .descendants()
        .take(NODE_BUDGET)
        .filter(|n| n.value().as_element().is_some_and(|e| heading_level(e.name()).is_some()))
        .filter_map(|n| n.parent().map(|p| p.id()))
        .collect();
    for node in root.descendants().take(NODE_BUDGET) {
        let Some(el) = node.value().as_element() else { continue };
        let heading_sibling = node.parent().is_some_and(|p| heading_parents.contains(&p.id()));
        let sig = if el.name() == "summary" {
            summary_signature(node, el)
        } else if heading_sibling && heading_level(el.name()).is_none() {
            side_signature(node, el)
        } else {
            None
        };
        if let Some(sig) = sig {
            signatures.push((node.id(), sig));
            *counts.entry(sig).or_default() += 1;
            continue;
        }
        if el.name() != "a" {
            continue;
        }
        let Some(l) = label(node).filter(|l| !l.is_empty()) else { continue };
        if is_code_toolbar_link(node) {
            out.drop.insert(node.id());
        } else {
            if is_trailing(node) {
                let e = trailing.entry(l.to_lowercase()).or_default();
                e.0.push(node.id());
                e.1.insert(attr(el, "href").unwrap_or("").trim().to_owned());
            }
            if let Some((block, sig)) = lone_link_signature(node, el, &l) {
                lone.push((node.id(), block, sig));
            }
        }
    }
    for (id, sig) in signatures {
        if counts[&sig] >= PAGE_REPEATS {
            out.drop.insert(id);
        } else {
            let node = root.tree().get(id).expect("a node of this tree");
            out.blocks.insert(id, (sig, targets(node, page)));
        }
    }
    for (nodes, targets) in trailing.into_values() {
        if nodes.len() >= PAGE_REPEATS && targets.len() >= 2 {
            out.drop.extend(nodes);
        }
    }
    // A lone link the page rule kept is left to the corpus pass.
    for (link, block, sig) in lone {
        if !out.drop.contains(&link) && !out.drop.contains(&block) {
            let node = root.tree().get(block).expect("a node of this tree");
            out.blocks.entry(block).or_insert((sig, targets(node, page)));
        }
    }
    out
}
