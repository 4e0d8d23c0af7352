//! HTML → clean Markdown: pick the content region, drop page chrome, convert
//! what is left. The tree is walked with an explicit stack, never recursively.

use std::collections::HashSet;

use ego_tree::iter::Edge;
use ego_tree::{NodeId, NodeRef};
use scraper::node::Element;
use scraper::{Html, Node};

use crate::decode::decode;
use crate::depth_guard::{flatten_deep_nesting, MAX_ATTRS, MAX_DEPTH};
use crate::markdown::{escape_heading, escape_line_start};
use crate::{IngestError, SanitizedDoc};

pub(crate) type NRef<'a> = NodeRef<'a, Node>;

/// Sanitise an HTML page into a [`SanitizedDoc`].
///
/// The bytes are decoded (BOM, then a `<meta>` charset in the first 1024 bytes,
/// else UTF-8 with invalid sequences replaced and a warning), parsed with
/// html5ever, reduced to the page's content region without chrome, and
/// converted to Markdown. Returns [`IngestError::Empty`] when no content remains.
///
/// ```
/// let page = br#"<html><head><title>Install | Tidewater</title></head><body>
///   <nav><a href="/">Home</a></nav>
///   <main><h1>Install</h1><p>Run <code>tw setup</code>.</p></main>
///   <footer>&copy; 2026 Tidewater</footer></body></html>"#;
/// let doc = ragsnap_chunk::sanitize_html("install.html", page).unwrap();
/// assert_eq!(doc.title.as_deref(), Some("Install"));
/// assert_eq!(doc.markdown, "# Install\n\nRun `tw setup`.\n");
/// ```
pub fn sanitize_html(source_path: &str, bytes: &[u8]) -> Result<SanitizedDoc, IngestError> {
    let decoded = decode(bytes, true);
    sanitize_html_text(source_path, &decoded.text, decoded.warnings)
}

/// Sanitise already-decoded HTML text.
pub(crate) fn sanitize_html_text(
    source_path: &str,
    text: &str,
    mut warnings: Vec<String>,
) -> Result<SanitizedDoc, IngestError> {
    let (flattened, guarded) = flatten_deep_nesting(text);
    if guarded.deep {
        warnings.push(format!("element nesting deeper than {MAX_DEPTH} levels was flattened"));
    }
    if guarded.attrs {
        warnings.push(format!("attributes beyond {MAX_ATTRS} on one tag were removed"));
    }
    if guarded.tags {
        warnings.push("too many elements for the page size: the last ones were unwrapped, their text kept".to_owned());
    }
    let html = parse_presized(&flattened);
    let info = DocInfo::scan(&html);

    let body = info.body.unwrap_or_else(|| html.tree.root());
    let root = info.content_root().unwrap_or(body);

    let no_flow = HashSet::new();
    let controls = crate::controls::scan(body, source_path);
    let lead = lead_text(body);
    let (outside, verdicts) = text_flow(root, &info.protected);
    let mut walker = Walker::new(&info.protected, true, &outside);
    walker.verdicts = Some(&verdicts);
    walker.controls = Some(&controls);
    walker.lead = Some(&lead);
    walker.walk(root);
    if walker.out.md.is_empty() && root.id() != body.id() {
        walker = Walker::new(&info.protected, true, &no_flow);
        walker.controls = Some(&controls);
        walker.lead = Some(&lead);
        walker.walk(body);
    }
    if walker.out.md.is_empty() {
        // Safety net against over-eager class/id markers (e.g. a wrapper whose
        // class happens to contain "sidebar"): structural rules only.
        walker = Walker::new(&info.protected, false, &no_flow);
        walker.walk(body);
    }
    let hub = walker.is_hub();
    let Walker { out, links, first_h1, blocks, .. } = walker;
    let mut markdown = out.md;
    // A redirect stub's few words ("Redirecting to …") say where the page went, not what it is.
    if markdown.is_empty() || (info.redirect && text_words(&markdown) <= REDIRECT_MAX_WORDS) {
        return Err(IngestError::Empty { path: source_path.to_owned() });
    }
    markdown.push('\n');
    let title = info.title.as_deref().map(|t| strip_site_suffix(t, first_h1.as_deref()));
    let full_title = info.title.filter(|t| Some(t) != title.as_ref());
    Ok(SanitizedDoc {
        source_path: source_path.to_owned(),
        title,
        full_title,
        canonical_url: info.canonical,
        markdown,
        links,
        warnings,
        blocks,
        hub,
    })
}

/// Parse with html5ever into a tree whose node storage is sized up front from the
/// number of start tags (an element and up to two text nodes each): the tree then
/// rarely reallocates, which would briefly hold the old and the new storage.
fn parse_presized(text: &str) -> Html {
    use html5ever::tendril::TendrilSink;
    let bytes = text.as_bytes();
    let start_tags = bytes.windows(2).filter(|w| w[0] == b'<' && w[1].is_ascii_alphabetic()).count();
    let capacity = start_tags.saturating_mul(3) + 16;
    let doc = Html {
        errors: Vec::new(),
        quirks_mode: html5ever::tree_builder::QuirksMode::NoQuirks,
        tree: ego_tree::Tree::with_capacity(Node::Document, capacity),
    };
    html5ever::driver::parse_document(scraper::HtmlTreeSink::new(doc), Default::default()).one(text)
}

/// Nodes looked at when measuring a `header` for [`is_banner_header`]; a bigger one is not a banner.
const BANNER_NODE_BUDGET: usize = 50_000;
/// A banner header has more than this share of its words (percent) in links.
const BANNER_LINK_SHARE: usize = 50;

/// A `header` whose nearest sectioning ancestor is the body (no `article`, `aside`,
/// `main`, `nav` or `section` around it) is the page's banner landmark (HTML-AAM maps it
/// to `role=banner`). It counts as one when most of its words are link text (a site
/// name above a version picker and a table of contents); a header that holds the page's
/// own title and a line of text is not link-dense and stays.
fn is_banner_header(header: NRef<'_>) -> bool {
    if header.ancestors().any(|a| {
        a.value().as_element().is_some_and(|e| {
            matches!(e.name(), "article" | "aside" | "main" | "nav" | "section")
                || attr(e, "role").is_some_and(|r| r.trim().eq_ignore_ascii_case("main"))
        })
    }) {
        return false;
    }
    let (mut words, mut link_words, mut link_depth) = (0usize, 0usize, 0usize);
    for (steps, edge) in header.traverse().enumerate() {
        if steps > BANNER_NODE_BUDGET * 2 {
            return false;
        }
        match edge {
            Edge::Open(n) => match n.value() {
                Node::Text(t) => {
                    let w = text_words(t);
                    words += w;
                    if link_depth > 0 {
                        link_words += w;
                    }
                }
                Node::Element(e) if e.name() == "a" => link_depth += 1,
                _ => {}
            },
            Edge::Close(n) => {
                if n.value().as_element().is_some_and(|e| e.name() == "a") {
                    link_depth -= 1;
                }
            }
        }
    }
    words > 0 && link_words * 100 > words * BANNER_LINK_SHARE
}

/// Non-blank text nodes of the body before its first element: raw text the parser moved
/// out of the document head (an unfilled template slot), or a stray line above the page.
fn lead_text(body: NRef<'_>) -> HashSet<NodeId> {
    if body.value().as_element().is_none_or(|e| e.name() != "body") {
        return HashSet::new();
    }
    body.children()
        .take_while(|c| !c.value().is_element())
        .filter(|c| matches!(c.value(), Node::Text(t) if !t.trim().is_empty()))
        .map(|c| c.id())
        .collect()
}

/// A page that redirects elsewhere and holds at most this many words is a stub.
const REDIRECT_MAX_WORDS: usize = 12;

/// Hub pages: at least this many words of text...
const HUB_MIN_WORDS: usize = 40;
/// ...at least this many links...
const HUB_MIN_LINKS: usize = 15;
/// ...and at least this share of the words inside links (percent), most of them in lists or tables.
const HUB_LINK_SHARE: usize = 70;

/// A template candidate is an element outside the main text flow, without headings,
/// with at most this many words and at least one link.
const CANDIDATE_MAX_WORDS: usize = 100;
/// Such an element is dropped on its own page when this share of its words (percent)
/// is link text and it has at least [`NAV_MIN_LINKS`] links.
const NAV_LINK_SHARE: usize = 60;
const NAV_MIN_LINKS: usize = 2;
/// A paragraph is link-dense when this share of its words (percent) is link text.
const DENSE_LINK_SHARE: usize = 50;
/// Nodes looked at when measuring one candidate.
const CANDIDATE_NODE_BUDGET: usize = 4000;

/// Roots of the subtrees under `root` that lie outside the page's main text flow.
///
/// Words outside links and (kept) headings are summed per element, skipping what
/// the chrome rules drop. From `root`, the walk descends into the child holding
/// every heading and at least half of those words (or, on a page without headings,
/// at least 80% of them), as long as the current element has no heading of its own
/// as a direct child; the other children of each element passed through are
/// outside the flow. In the element reached, and in every element with a heading
/// as a direct child, the children before the first one holding a heading are
/// outside too (a navigation line above a title).
/// Also returns the chrome rules' verdict on every element it looked at, so that
/// the walk from the same root does not evaluate them twice.
fn text_flow(
    root: NRef<'_>,
    protected: &HashSet<NodeId>,
) -> (HashSet<NodeId>, std::collections::HashMap<NodeId, bool>) {
    let mut outside = HashSet::new();
    let mut verdicts = std::collections::HashMap::new();
    let rules = Walker::new(protected, true, &outside);
    // (words outside links, headings) per kept element: link text is not the text flow.
    let mut sums: std::collections::HashMap<NodeId, (u64, u32)> = std::collections::HashMap::new();
    enum S<'a> {
        Enter(NRef<'a>, Flags, bool),
        Exit(NRef<'a>),
    }
    let mut stack = vec![S::Enter(root, Flags::of_root(root), false)];
    // Elements with a heading as a direct child: section containers.
    let mut sections: Vec<NRef<'_>> = Vec::new();
    while let Some(step) = stack.pop() {
        match step {
            S::Enter(node, flags, in_link) => match node.value() {
                Node::Text(t) if !in_link => {
                    if let Some(parent) = node.parent() {
                        let w = text_words(t) as u64;
                        sums.entry(parent.id()).or_default().0 += w;
                    }
                }
                Node::Element(el) => {
                    if node.id() != root.id() {
                        let dropped = rules.is_dropped(node, el, flags);
                        verdicts.insert(node.id(), dropped);
                        if dropped {
                            continue;
                        }
                    }
                    let e = sums.entry(node.id()).or_default();
                    if heading_level(el.name()).is_some() {
                        e.1 += 1;
                        if let Some(parent) = node.parent() {
                            if sections.last().is_none_or(|s| s.id() != parent.id()) {
                                sections.push(parent);
                            }
                        }
                    }
                    stack.push(S::Exit(node));
                    let child_flags = flags.child(node);
                    let in_link = in_link || el.name() == "a";
                    for c in node.children().rev() {
                        stack.push(S::Enter(c, child_flags, in_link));
                    }
                }
                _ => {}
            },
            S::Exit(node) => {
                let own = sums.get(&node.id()).copied().unwrap_or_default();
                if node.id() != root.id() {
                    if let Some(parent) = node.parent() {
                        let p = sums.entry(parent.id()).or_default();
                        p.0 += own.0;
                        p.1 += own.1;
                    }
                }
            }
        }
    }
    drop(rules);
    let kept = |n: &NRef<'_>| n.value().is_element() && sums.contains_key(&n.id());
    let mut cur = root;
    for _ in 0..MAX_DEPTH {
        let (words, headings) = sums.get(&cur.id()).copied().unwrap_or_default();
        let heading_child =
            cur.children().any(|c| c.value().as_element().is_some_and(|e| heading_level(e.name()).is_some()));
        if heading_child || words == 0 {
            break;
        }
        let next = cur.children().filter(kept).find(|c| {
            let (w, h) = sums[&c.id()];
            if headings > 0 {
                h == headings && w * 2 >= words
            } else {
                w * 5 >= words * 4
            }
        });
        let Some(next) = next else { break };
        for c in cur.children().filter(kept) {
            if c.id() != next.id() {
                outside.insert(c.id());
            }
        }
        cur = next;
    }
    if sums.get(&cur.id()).is_some_and(|s| s.1 > 0) {
        sections.push(cur);
    }
    // In a section container, what comes before its first heading (a line of
    // links to the neighbouring sections) is outside the text flow too.
    for section in sections {
        for c in section.children().filter(kept) {
            if sums[&c.id()].1 > 0 {
                break;
            }
            outside.insert(c.id());
        }
    }
    (outside, verdicts)
}

/// Measurements of a template candidate.
struct Shape {
    words: usize,
    link_words: usize,
    links: usize,
    /// `None` for a block over [`CANDIDATE_MAX_WORDS`].
    signature: Option<u64>,
}

/// 64-bit FNV-1a: a stable hash for shape signatures.
#[derive(Clone, Copy)]
pub(crate) struct Fnv(pub(crate) u64);

impl Fnv {
    pub(crate) fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        for &x in b {
            self.0 ^= u64::from(x);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
    pub(crate) fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
        self.bytes(&[0xff]);
    }
}

/// Text-free description of one element: its name, and its class, id, role and
/// summary attributes with digit runs folded (generated ids differ by number only).
fn element_shape(el: &Element) -> u64 {
    let mut h = Fnv::new();
    h.str(el.name());
    let mut classes: Vec<&str> = el.classes().collect();
    classes.sort_unstable();
    for c in classes {
        h.str(&fold_digits(c));
    }
    for name in ["id", "role", "summary"] {
        if let Some(v) = attr(el, name) {
            h.str(name);
            h.str(&fold_digits(&v.to_ascii_lowercase()));
        }
    }
    h.0
}

pub(crate) fn fold_digits(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_digit() {
            if !out.ends_with('#') {
                out.push('#');
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Measure a possible template block: `None` when it holds a heading or no link, or
/// is too big to measure; no signature when it has more than [`CANDIDATE_MAX_WORDS`]
/// words. The signature covers the element's
/// ancestors and itself (see [`element_shape`]) and the set of element shapes
/// inside it, so per-page words (titles in prev/next links, breadcrumb trails of
/// different depths) do not change it.
fn shape_of(node: NRef<'_>) -> Option<Shape> {
    let mut words = 0usize;
    let mut link_words = 0usize;
    let mut links = 0usize;
    let mut link_depth = 0usize;
    let mut inner = std::collections::BTreeSet::new();
    for (steps, edge) in node.traverse().enumerate() {
        if steps > CANDIDATE_NODE_BUDGET * 2 {
            return None;
        }
        match edge {
            Edge::Open(n) => match n.value() {
                Node::Text(t) => {
                    let w = text_words(t);
                    words += w;
                    if link_depth > 0 {
                        link_words += w;
                    }
                }
                Node::Element(e) => {
                    if heading_level(e.name()).is_some() {
                        return None;
                    }
                    if e.name() == "a" {
                        link_depth += 1;
                        links += 1;
                    }
                    if n.id() != node.id() {
                        inner.insert(element_shape(e));
                    }
                }
                _ => {}
            },
            Edge::Close(n) => {
                if n.value().as_element().is_some_and(|e| e.name() == "a") {
                    link_depth = link_depth.saturating_sub(1);
                }
            }
        }
    }
    if links == 0 || words == 0 {
        return None;
    }
    if words > CANDIDATE_MAX_WORDS {
        // Too long to be a template candidate; measured for the link-block rule only.
        return Some(Shape { words, link_words, links, signature: None });
    }
    let mut h = Fnv::new();
    let el = node.value().as_element()?;
    h.bytes(&element_shape(el).to_le_bytes());
    for a in node.ancestors() {
        if let Some(e) = a.value().as_element() {
            h.bytes(&element_shape(e).to_le_bytes());
        }
    }
    h.str("inner");
    for s in inner {
        h.bytes(&s.to_le_bytes());
    }
    Some(Shape { words, link_words, links, signature: Some(h.0) })
}

/// Class words that support reading a titled box as a callout.
const CALLOUT_HINTS: &[&str] = &[
    "admonition",
    "callout",
    "note",
    "tip",
    "hint",
    "warning",
    "caution",
    "important",
    "danger",
    "attention",
    "error",
    "info",
    "notice",
    "alert",
    "remark",
    "seealso",
];

fn has_callout_hint(el: &Element) -> bool {
    is_admonition(el)
        || el.classes().any(|c| c.to_ascii_lowercase().split(['-', '_']).any(|w| CALLOUT_HINTS.contains(&w)))
        || attr(el, "role").is_some_and(|r| matches!(r.trim().to_ascii_lowercase().as_str(), "note" | "alert"))
}

/// Elements that can be the title of a callout box.
const TITLE_TAGS: &[&str] = &[
    "p", "div", "span", "strong", "b", "em", "h1", "h2", "h3", "h4", "h5", "h6", "th", "dt", "header", "label",
    "legend",
];

/// A short title element followed by a body: the title's text and the body nodes.
fn titled_box(node: NRef<'_>) -> Option<(String, Vec<NRef<'_>>)> {
    let mut children = node.children().filter(|c| match c.value() {
        Node::Text(t) => !t.trim().is_empty(),
        Node::Element(e) => !DROP_TAGS.contains(&e.name()),
        _ => false,
    });
    let title = children.next()?;
    let tel = title.value().as_element()?;
    if !TITLE_TAGS.contains(&tel.name()) {
        return None;
    }
    let label = short_text(title, 60)?;
    let label = label.trim().trim_end_matches(':').trim().replace('*', "");
    if label.is_empty() || word_count(&label) > 6 {
        return None;
    }
    let body: Vec<NRef<'_>> = children.collect();
    let has_text = body.iter().any(|b| {
        b.descendants().take(CANDIDATE_NODE_BUDGET).any(|d| matches!(d.value(), Node::Text(t) if !t.trim().is_empty()))
    });
    has_text.then_some((label, body))
}

fn has_heading(n: NRef<'_>) -> bool {
    n.descendants()
        .take(CANDIDATE_NODE_BUDGET)
        .any(|d| d.value().as_element().is_some_and(|e| heading_level(e.name()).is_some()))
}

/// A link whose only content is images (no words of text), e.g. a logo.
fn is_image_only(node: NRef<'_>) -> bool {
    let mut image = false;
    for d in node.descendants().take(64) {
        match d.value() {
            Node::Text(t) if text_words(t) > 0 => return false,
            Node::Element(e) if e.name() == "img" => image = true,
            _ => {}
        }
    }
    image
}

fn has_text_node(n: NRef<'_>) -> bool {
    n.descendants().take(CANDIDATE_NODE_BUDGET).any(|d| matches!(d.value(), Node::Text(t) if !t.trim().is_empty()))
}

/// A callout box (note, tip, warning, "see also"...) recognised by structure: an
/// `aside`, or a `div`/`section` with a class or role hint, holding a short title
/// element followed by a body; a one-cell table holding the same; or a small table
/// whose only two text cells are a short title and a body of block elements.
fn callout<'a>(node: NRef<'a>, el: &Element) -> Option<(String, Vec<NRef<'a>>)> {
    match el.name() {
        "aside" => titled_box(node),
        "div" | "section" if has_callout_hint(el) => titled_box(node),
        "table" => {
            let mut rows = Vec::new();
            for c in node.children() {
                match c.value().as_element().map(|e| e.name()) {
                    Some("tr") => rows.push(c),
                    Some("thead" | "tbody" | "tfoot") => {
                        rows.extend(c.children().filter(|r| r.value().as_element().is_some_and(|e| e.name() == "tr")))
                    }
                    _ => {}
                }
            }
            if rows.is_empty() || rows.len() > 3 {
                return None;
            }
            let cells: Vec<NRef<'a>> = rows
                .iter()
                .flat_map(|r| r.children())
                .filter(|c| c.value().as_element().is_some_and(|e| matches!(e.name(), "td" | "th")))
                .collect();
            if cells.len() == 1 {
                // A one-cell table around a real section (a heading and its text) is layout.
                let opens_with_heading = cells[0]
                    .children()
                    .find(|c| c.value().is_element())
                    .and_then(|c| c.value().as_element().map(|e| heading_level(e.name()).is_some()))
                    .unwrap_or(false);
                if opens_with_heading && !has_callout_hint(el) {
                    return None;
                }
                return titled_box(cells[0]);
            }
            if cells.len() > 6 {
                return None;
            }
            let text_cells: Vec<NRef<'a>> = cells.into_iter().filter(|c| has_text_node(*c)).collect();
            let [title, body] = text_cells.as_slice() else { return None };
            let label = short_text(*title, 60)?;
            let label = label.trim().trim_end_matches(':').trim().replace('*', "");
            let blocky = body.descendants().take(CANDIDATE_NODE_BUDGET).any(|d| {
                d.value().as_element().is_some_and(|e| matches!(e.name(), "p" | "div" | "ul" | "ol" | "pre" | "dl"))
            });
            (!label.is_empty() && word_count(&label) <= 6 && blocky).then(|| (label, body.children().collect()))
        }
        _ => None,
    }
}

/// `"Install — Tidewater docs"` → `"Install"`, but only when the page's first
/// `<h1>` says exactly `Install`: without that confirmation the title is kept whole.
fn strip_site_suffix(title: &str, h1: Option<&str>) -> String {
    let Some(h1) = h1 else {
        return title.to_owned();
    };
    let h1_norm = h1.to_lowercase();
    if title.to_lowercase() == h1_norm {
        return title.to_owned();
    }
    for sep in [" — ", " – ", " | ", " · ", " - ", " :: "] {
        if let Some((prefix, suffix)) = title.rsplit_once(sep) {
            if prefix.trim().to_lowercase() == h1_norm {
                return prefix.trim().to_owned();
            }
            // "Site | Page" ordering.
            if suffix.trim().to_lowercase() == h1_norm {
                return suffix.trim().to_owned();
            }
        }
        if let Some((prefix, _)) = title.split_once(sep) {
            if prefix.trim().to_lowercase() == h1_norm {
                return prefix.trim().to_owned();
            }
        }
    }
    title.to_owned()
}

/// Facts gathered in one pass over every node before the walk.
struct DocInfo<'a> {
    title: Option<String>,
    canonical: Option<String>,
    body: Option<NRef<'a>>,
    /// `main` / `[role=main]` elements in document order.
    mains: Vec<NRef<'a>>,
    articles: Vec<NRef<'a>>,
    /// Ancestors of the content candidates: never dropped as chrome.
    protected: HashSet<NodeId>,
    /// The page asks the browser to go elsewhere (`<meta http-equiv="refresh">` with a URL).
    redirect: bool,
}

impl<'a> DocInfo<'a> {
    fn scan(html: &'a Html) -> Self {
        let mut title = None;
        let mut canonical = None;
        let mut body = None;
        let mut mains = Vec::new();
        let mut articles = Vec::new();
        let mut h1s = Vec::new();
        let mut redirect = false;
        // Traverse from the document root so detached nodes are never seen.
        for edge in html.tree.root().traverse() {
            let Edge::Open(node) = edge else { continue };
            let Node::Element(el) = node.value() else { continue };
            match el.name() {
                "title" if title.is_none() && !has_ancestor(node, &["svg", "math"]) => {
                    let mut buf = Inline::default();
                    for child in node.children() {
                        if let Node::Text(t) = child.value() {
                            buf.text(t);
                        }
                    }
                    let t = buf.take();
                    if !t.is_empty() {
                        title = Some(t);
                    }
                }
                "link" if canonical.is_none() => {
                    let is_canonical = attr(el, "rel")
                        .is_some_and(|rel| rel.split_ascii_whitespace().any(|r| r.eq_ignore_ascii_case("canonical")));
                    if let Some(href) = attr(el, "href").filter(|_| is_canonical) {
                        let href = href.trim();
                        if !href.is_empty() {
                            canonical = Some(href.to_owned());
                        }
                    }
                }
                "meta" => {
                    let refresh = attr(el, "http-equiv").is_some_and(|v| v.trim().eq_ignore_ascii_case("refresh"));
                    if refresh && attr(el, "content").is_some_and(|c| c.to_ascii_lowercase().contains("url=")) {
                        redirect = true;
                    }
                }
                "body" if body.is_none() => body = Some(node),
                "main" => mains.push(node),
                "article" => articles.push(node),
                "h1" => h1s.push(node),
                _ => {}
            }
            if el.name() != "main" && attr(el, "role").is_some_and(|r| r.trim().eq_ignore_ascii_case("main")) {
                mains.push(node);
            }
        }
        let mut protected = HashSet::new();
        // A heading in the page's banner (see `is_banner_header`) names the site, not the page.
        h1s.retain(|h| {
            !h.ancestors()
                .find(|a| a.value().as_element().is_some_and(|e| e.name() == "header"))
                .is_some_and(is_banner_header)
        });
        let anchors: &[NRef<'a>] = if mains.is_empty() && articles.is_empty() { &h1s } else { &[] };
        for node in mains.iter().chain(articles.iter()).chain(anchors.iter()) {
            protected.insert(node.id());
            for anc in node.ancestors() {
                if !protected.insert(anc.id()) {
                    break;
                }
            }
        }
        DocInfo { title, canonical, body, mains, articles, protected, redirect }
    }

    /// `main` / `[role=main]` (the deepest of a nested chain), else the only
    /// `article`; `None` means "use the body".
    fn content_root(&self) -> Option<NRef<'a>> {
        let visible = |n: &NRef<'a>| {
            !n.ancestors().chain(std::iter::once(*n)).any(|a| {
                a.value()
                    .as_element()
                    .is_some_and(|e| matches!(e.name(), "template" | "noscript") || (is_hidden(e) && !is_tab_panel(e)))
            })
        };
        let mains: Vec<NRef<'a>> = self.mains.iter().copied().filter(visible).take(16).collect();
        if let Some(&first) = mains.first() {
            let mut pick = first;
            for &cand in &mains[1..] {
                if cand.ancestors().any(|a| a.id() == pick.id()) {
                    pick = cand;
                }
            }
            return Some(pick);
        }
        let articles: Vec<NRef<'a>> = self.articles.iter().copied().filter(visible).take(2).collect();
        (articles.len() == 1).then(|| articles[0])
    }
}

fn has_ancestor(node: NRef<'_>, names: &[&str]) -> bool {
    node.ancestors().any(|a| a.value().as_element().is_some_and(|e| names.contains(&e.name())))
}

/// Attribute lookup without interning the name (scraper's `attr` creates an atom).
pub(crate) fn attr<'e>(el: &'e Element, name: &str) -> Option<&'e str> {
    el.attrs().find(|(n, _)| *n == name).map(|(_, v)| v)
}

fn is_hidden(el: &Element) -> bool {
    if attr(el, "hidden").is_some() {
        return true;
    }
    if attr(el, "aria-hidden").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return true;
    }
    if let Some(style) = attr(el, "style") {
        let compact: String = style.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_lowercase();
        if compact.contains("display:none") || compact.contains("visibility:hidden") {
            return true;
        }
    }
    false
}

/// Inactive tab panels are hidden but hold real content (install steps per OS...).
fn is_tab_panel(el: &Element) -> bool {
    attr(el, "role").is_some_and(|r| r.trim().eq_ignore_ascii_case("tabpanel"))
        || el.classes().any(|c| {
            let c = c.to_ascii_lowercase();
            c == "tab-pane" || c == "tabpanel" || c.starts_with("sphinx-tabs-panel") || c == "tab-content"
        })
}

/// Class/id words that mark page chrome. Each class token and the id are
/// lowercased and split on `-`, `_`, `:` and `.`; a token is chrome when one of
/// its words is listed here.
const CHROME_WORDS: &[&str] = &[
    "breadcrumb",
    "breadcrumbs",
    "crumbs",
    "cookie",
    "cookies",
    "consent",
    "gdpr",
    "navbar",
    "navigation",
    "nav",
    "menu",
    "sidebar",
    "sidenav",
    "sphinxsidebar",
    "sphinxsidebarwrapper",
    "toc",
    "skiplink",
    "skip",
    "pagination",
    "pager",
    "prevnext",
    "searchbox",
    "search",
    "footer",
    "copyright",
    "related",
    "social",
    "share",
    "feedback",
    "banner",
    "announcement",
    "viewcode",
    "edit",
    "editthispage",
    "headerlink",
];

/// Class/id substrings that mark chrome even inside camelCase or run-together names.
const CHROME_SUBSTRINGS: &[&str] =
    &["cookie", "consent", "gdpr", "breadcrumb", "sidebar", "navbar", "skiplink", "pagination", "copyright"];

/// Whole class tokens meaning "not shown".
const HIDDEN_CLASSES: &[&str] =
    &["hidden", "d-none", "sr-only", "visually-hidden", "visuallyhidden", "screen-reader-text", "screen-reader-only"];

fn is_chrome_token(token: &str) -> bool {
    let t = token.to_ascii_lowercase();
    if CHROME_SUBSTRINGS.iter().any(|s| t.contains(s)) {
        return true;
    }
    t.split(['-', '_', ':', '.']).any(|w| CHROME_WORDS.contains(&w))
}

fn has_chrome_class_or_id(el: &Element) -> bool {
    let hidden_class = el.classes().any(|c| HIDDEN_CLASSES.iter().any(|h| c.eq_ignore_ascii_case(h)));
    if hidden_class {
        // Tailwind/Bootstrap responsive pairs (`hidden md:block`, `d-none d-lg-block`)
        // are visible on a desktop; leave them to the other rules.
        let responsive = el.classes().any(|c| {
            let c = c.to_ascii_lowercase();
            (c.contains(':') && ["block", "flex", "grid", "inline", "table"].iter().any(|v| c.ends_with(v)))
                || (c.starts_with("d-") && c != "d-none" && !c.ends_with("none"))
        });
        if !responsive {
            return true;
        }
    }
    el.classes().any(is_chrome_token) || el.id().is_some_and(is_chrome_id)
}

/// Words that may accompany a chrome word in an id (`site-footer`, `main-nav`).
const ID_FILLER_WORDS: &[&str] = &[
    "main",
    "site",
    "page",
    "global",
    "top",
    "bottom",
    "left",
    "right",
    "primary",
    "secondary",
    "header",
    "container",
    "wrapper",
    "wrap",
    "bar",
    "area",
    "links",
    "box",
    "notice",
    "widget",
    "inner",
    "outer",
    "block",
    "region",
    "panel",
    "content",
    "form",
    "input",
    "button",
    "modal",
    "popup",
    "overlay",
    "dialog",
    "list",
    "menu",
    "nav",
    "to",
    "link",
];

/// Ids are often slugs of headings (`id="can-servers-share-a-directory"`), so an
/// id is chrome only when every word of it is a chrome or filler word and at least
/// one is chrome (`cookie-consent`, `site-footer`, `searchbox`).
fn is_chrome_id(id: &str) -> bool {
    let id = id.to_ascii_lowercase();
    let mut any_chrome = false;
    for word in id.split(['-', '_', ':', '.']).filter(|w| !w.is_empty()) {
        if CHROME_WORDS.contains(&word) || CHROME_SUBSTRINGS.iter().any(|s| word.contains(s)) {
            any_chrome = true;
        } else if !ID_FILLER_WORDS.contains(&word) {
            return false;
        }
    }
    any_chrome
}

const CHROME_ROLES: &[&str] = &["navigation", "banner", "contentinfo", "search", "complementary"];

/// Elements dropped with everything inside them.
const DROP_TAGS: &[&str] = &[
    "script", "style", "noscript", "template", "iframe", "svg", "canvas", "input", "button", "select", "textarea",
    "option", "datalist", "object", "embed", "video", "audio", "map", "head", "link", "meta", "base", "dialog",
    "frameset", "frame", "noembed", "noframes",
];

/// Link texts that are page chrome wherever they appear.
const CHROME_LINK_TEXTS: &[&str] = &[
    "edit this page",
    "edit page",
    "edit on github",
    "edit on gitlab",
    "edit on bitbucket",
    "edit this page on github",
    "view page source",
    "view source",
    "show source",
    "show this page source",
    "report a bug",
    "report an issue",
    "suggest an edit",
    "suggest edits",
    "improve this page",
    "improve this doc",
    "back to top",
    "scroll to top",
    "go to top",
];

const PREV_NEXT_TEXTS: &[&str] = &[
    "previous",
    "prev",
    "next",
    "previous page",
    "next page",
    "previous topic",
    "next topic",
    "previous chapter",
    "next chapter",
    "previous section",
    "next section",
    "previous article",
    "next article",
    "older posts",
    "newer posts",
];

/// Headings that introduce sidebar chrome; the heading and the element right after it go.
const CHROME_HEADINGS: &[&str] = &[
    "previous topic",
    "next topic",
    "this page",
    "quick search",
    "on this page",
    "table of contents",
    "in this article",
];

/// Whole-block texts that are chrome.
const CHROME_BLOCK_TEXTS: &[&str] = &[
    "was this page helpful?",
    "was this page helpful",
    "was this helpful?",
    "is this page helpful?",
    "thank you for your feedback!",
    "thanks for your feedback!",
    "back to top",
    "scroll to top",
    "toggle navigation",
    "toggle sidebar",
    "toggle menu",
    "on this page",
    "table of contents",
    "in this article",
    "copy to clipboard",
    "copied!",
];

const GENERATOR_PHRASES: &[&str] = &[
    "created using sphinx",
    "built with sphinx",
    "built with mkdocs",
    "material for mkdocs",
    "powered by docusaurus",
    "built with docusaurus",
    "generated by doxygen",
    "theme provided by read the docs",
    "powered by gitbook",
    "powered by hugo",
];

/// Words that carry letters or digits (a lone `[`, `|` or `»` between links is not one).
fn text_words(s: &str) -> usize {
    s.split_whitespace().filter(|w| w.chars().any(char::is_alphanumeric)).count()
}

pub(crate) fn word_count(s: &str) -> usize {
    s.split_whitespace().count()
}

fn is_copyright_line(lower: &str) -> bool {
    let words = word_count(lower);
    if words > 40 {
        return false;
    }
    let starts_year = |rest: &str| rest.trim_start().chars().next().is_some_and(|c| c.is_ascii_digit());
    if lower.starts_with('©') || lower.starts_with("&copy;") {
        return true;
    }
    if let Some(rest) = lower.strip_prefix("(c)") {
        if starts_year(rest) {
            return true;
        }
    }
    if let Some(rest) = lower.strip_prefix("copyright") {
        let rest = rest.trim_start();
        if rest.starts_with('©') || rest.starts_with("(c)") || starts_year(rest) {
            return true;
        }
    }
    words <= 25 && lower.contains("all rights reserved")
}

/// Short text blocks that are chrome by their words alone.
fn is_chrome_block_text(lower: &str) -> bool {
    if lower.is_empty() {
        return false;
    }
    if is_copyright_line(lower) || CHROME_BLOCK_TEXTS.contains(&lower) {
        return true;
    }
    let words = word_count(lower);
    let lower = lower.trim_start_matches(|c: char| !c.is_alphanumeric());
    if (lower.starts_with("last updated") || lower.starts_with("last modified")) && words <= 12 {
        return true;
    }
    words <= 30 && GENERATOR_PHRASES.iter().any(|p| lower.contains(p))
}

fn is_prev_next_link(text: &str, lower: &str) -> bool {
    let core = lower.trim_matches(|c: char| "«»←→‹›<>|:·-–—".contains(c) || c.is_whitespace());
    if PREV_NEXT_TEXTS.contains(&core) {
        return true;
    }
    if ["previous:", "prev:", "next:"].iter().any(|p| core.starts_with(p)) {
        return true;
    }
    let t = text.trim();
    if t.starts_with(['«', '←', '‹']) {
        return true;
    }
    t.ends_with(['»', '→', '›']) && (core.starts_with("next") || core.starts_with("prev"))
}

/// Text of a subtree, whitespace collapsed, or `None` when it exceeds
/// `max_chars` (big blocks are content, not chrome; this also bounds the cost).
pub(crate) fn short_text(node: NRef<'_>, max_chars: usize) -> Option<String> {
    let mut buf = Inline::default();
    let mut skip_depth = 0usize;
    let mut steps = 0usize;
    for edge in node.traverse() {
        steps += 1;
        if steps > max_chars * 4 + 64 {
            return None;
        }
        match edge {
            Edge::Open(n) => match n.value() {
                Node::Element(e) if matches!(e.name(), "script" | "style" | "template" | "noscript") => skip_depth += 1,
                Node::Element(e) if e.name() == "img" && skip_depth == 0 => {
                    if let Some(alt) = attr(e, "alt") {
                        buf.text(alt);
                    }
                }
                Node::Element(e) if is_block_name(e.name()) => buf.space(),
                Node::Text(t) if skip_depth == 0 => {
                    buf.text(t);
                    if buf.s.len() > max_chars {
                        return None;
                    }
                }
                _ => {}
            },
            Edge::Close(n) => {
                if let Node::Element(e) = n.value() {
                    if matches!(e.name(), "script" | "style" | "template" | "noscript") {
                        skip_depth = skip_depth.saturating_sub(1);
                    } else if is_block_name(e.name()) {
                        buf.space();
                    }
                }
            }
        }
    }
    Some(buf.take())
}

fn is_block_name(name: &str) -> bool {
    matches!(
        name,
        "address"
            | "article"
            | "aside"
            | "blockquote"
            | "body"
            | "center"
            | "details"
            | "dialog"
            | "dir"
            | "div"
            | "dl"
            | "dt"
            | "dd"
            | "fieldset"
            | "figcaption"
            | "figure"
            | "footer"
            | "form"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "header"
            | "hgroup"
            | "hr"
            | "html"
            | "legend"
            | "li"
            | "main"
            | "menu"
            | "nav"
            | "ol"
            | "p"
            | "pre"
            | "section"
            | "summary"
            | "table"
            | "caption"
            | "thead"
            | "tbody"
            | "tfoot"
            | "tr"
            | "td"
            | "th"
            | "ul"
            | "br"
            | "listing"
            | "xmp"
            | "plaintext"
    )
}

pub(crate) fn heading_level(name: &str) -> Option<u8> {
    match name {
        "h1" => Some(1),
        "h2" => Some(2),
        "h3" => Some(3),
        "h4" => Some(4),
        "h5" => Some(5),
        "h6" => Some(6),
        _ => None,
    }
}

/// Characters that carry no text: soft hyphen, zero-width spaces and joiners, BOM.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}')
}

/// Accumulates inline text with HTML white-space collapsing.
#[derive(Default)]
struct Inline {
    s: String,
    space: bool,
}

impl Inline {
    fn text(&mut self, t: &str) {
        // Runs of visible characters are copied whole; a whitespace run becomes
        // one space before the next visible character; invisible ones vanish.
        let mut run: Option<usize> = None;
        for (i, c) in t.char_indices() {
            let space = c.is_whitespace();
            if space || is_invisible(c) {
                if let Some(start) = run.take() {
                    self.s.push_str(&t[start..i]);
                }
                if space {
                    self.space = true;
                }
            } else if run.is_none() {
                if self.space && !self.s.is_empty() {
                    self.s.push(' ');
                }
                self.space = false;
                run = Some(i);
            }
        }
        if let Some(start) = run {
            self.s.push_str(&t[start..]);
        }
    }

    /// Append pre-formatted inline text (e.g. a code span) as one word.
    fn raw(&mut self, t: &str) {
        if t.is_empty() {
            return;
        }
        if self.space && !self.s.is_empty() {
            self.s.push(' ');
        }
        self.space = false;
        self.s.push_str(t);
    }

    fn space(&mut self) {
        self.space = true;
    }

    fn take(&mut self) -> String {
        self.space = false;
        std::mem::take(&mut self.s)
    }
}

/// Whether the ancestors put a `header`/`footer` in content rather than page chrome.
#[derive(Clone, Copy, Default)]
struct Flags {
    /// Inside `article`, `section` or `main` (a `header` here is content).
    in_sectioning: bool,
    /// Inside `article` or `section` (a `footer` here is content).
    in_article: bool,
    /// Outside the page's main text flow (see [`text_flow`]).
    outside: bool,
    /// Inside a recorded template candidate.
    in_candidate: bool,
}

impl Flags {
    fn of_root(root: NRef<'_>) -> Self {
        let mut f = Flags::default();
        for n in std::iter::once(root).chain(root.ancestors()) {
            f = f.child(n);
        }
        f
    }

    fn child(self, node: NRef<'_>) -> Self {
        let mut f = self;
        if let Some(el) = node.value().as_element() {
            match el.name() {
                "article" | "section" => {
                    f.in_article = true;
                    f.in_sectioning = true;
                }
                "main" => f.in_sectioning = true,
                _ if attr(el, "role").is_some_and(|r| r.trim().eq_ignore_ascii_case("main")) => {
                    f.in_sectioning = true;
                }
                _ => {}
            }
        }
        f
    }
}

enum Step<'a> {
    Enter(NRef<'a>, Flags),
    Exit(Exit),
}

enum Exit {
    Block,
    /// End of a link.
    Link,
    /// End of a subtree outside the text flow.
    Outside,
    /// End of a template candidate whose Markdown started at this offset, with its
    /// signature and, for a tiny control, where its links lead.
    Candidate(usize, u64, Option<u64>),
    /// End of a callout box.
    Box,
    Heading(u8),
    Container,
    Dt,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Para,
    Heading,
    /// First line of a list item or definition.
    Marker,
    /// First line of an ordered list starting at a number other than 1.
    LooseMarker,
    Dt,
    Code,
    Table,
}

enum Container {
    List {
        ordered: bool,
        next: u64,
        first: bool,
    },
    /// `loose`: an ordered list starting at a number other than 1 cannot
    /// interrupt a paragraph, so its first item needs a blank line before it.
    Item {
        marker: String,
        pending: bool,
        loose: bool,
    },
    Quote,
}

/// The Markdown being written, with the container context for prefixes.
#[derive(Default)]
struct Out {
    md: String,
    containers: Vec<Container>,
    last_kind: Option<Kind>,
    last_in_item: bool,
    last_quotes: usize,
}

impl Out {
    fn quotes(&self) -> usize {
        self.containers.iter().filter(|c| matches!(c, Container::Quote)).count()
    }

    fn in_item(&self) -> bool {
        self.containers.iter().any(|c| matches!(c, Container::Item { .. }))
    }

    fn prefix_of(containers: &[Container]) -> String {
        let mut p = String::new();
        for c in containers {
            match c {
                Container::Quote => p.push_str("> "),
                Container::Item { marker, .. } => {
                    for _ in 0..=marker.chars().count() {
                        p.push(' ');
                    }
                }
                Container::List { .. } => {}
            }
        }
        p
    }

    /// Write a block. `body` may hold several lines (code, tables).
    fn emit(&mut self, kind: Kind, body: &str) {
        let rest_prefix = Self::prefix_of(&self.containers);
        let pending_marker = match self.containers.last_mut() {
            Some(Container::Item { marker, pending, loose }) if *pending => {
                *pending = false;
                Some((marker.clone(), *loose))
            }
            _ => None,
        };
        let Some((marker, loose)) = pending_marker else {
            self.emit_lines(kind, body, &rest_prefix, &rest_prefix);
            return;
        };
        let mut first_prefix = Self::prefix_of(&self.containers[..self.containers.len() - 1]);
        first_prefix.push_str(&marker);
        first_prefix.push(' ');
        let marker_kind = if loose { Kind::LooseMarker } else { Kind::Marker };
        if kind == Kind::Para {
            self.emit_lines(marker_kind, body, &first_prefix, &rest_prefix);
        } else {
            // A code block or table opening an item: a lone marker line first.
            let lone = first_prefix.trim_end().to_owned();
            self.emit_lines(marker_kind, &lone, "", "");
            self.emit_lines(kind, body, &rest_prefix, &rest_prefix);
        }
    }

    fn emit_lines(&mut self, kind: Kind, body: &str, first_prefix: &str, rest_prefix: &str) {
        let quotes = self.quotes();
        if !self.md.is_empty() {
            let tight = match kind {
                Kind::Marker => {
                    self.last_in_item || matches!(self.last_kind, Some(Kind::Dt | Kind::Marker | Kind::LooseMarker))
                }
                _ => false,
            };
            self.md.push('\n');
            if !tight {
                if quotes > 0 && self.last_quotes >= quotes {
                    self.md.push_str(rest_prefix.trim_end());
                }
                self.md.push('\n');
            }
        }
        for (i, line) in body.split('\n').enumerate() {
            if i > 0 {
                self.md.push('\n');
            }
            let prefix = if i == 0 { first_prefix } else { rest_prefix };
            if line.is_empty() {
                self.md.push_str(prefix.trim_end());
            } else {
                self.md.push_str(prefix);
                self.md.push_str(line);
            }
        }
        self.last_kind = Some(kind);
        self.last_in_item = self.in_item() || matches!(kind, Kind::Marker | Kind::LooseMarker);
        self.last_quotes = quotes;
    }

    /// Entering a nested list or quote before an item wrote its first line:
    /// the item's marker is given up (the nested block still renders).
    fn release_pending_marker(&mut self) {
        if let Some(Container::Item { pending, .. }) = self.containers.last_mut() {
            *pending = false;
        }
    }
}

struct Walker<'p> {
    out: Out,
    inline: Inline,
    /// Inside headings and `dt`: nested blocks become spaces.
    inline_only: usize,
    links: Vec<String>,
    seen_links: HashSet<String>,
    first_h1: Option<String>,
    protected: &'p HashSet<NodeId>,
    /// Apply class/id chrome markers to big elements too (off in the last-resort pass).
    class_markers: bool,
    /// Roots of subtrees outside the main text flow.
    outside: &'p HashSet<NodeId>,
    outside_open: usize,
    /// Template candidates and chrome-like blocks for the corpus pass.
    blocks: Vec<crate::PageBlock>,
    /// Chrome-rule verdicts already taken for this walk's root and settings.
    verdicts: Option<&'p std::collections::HashMap<NodeId, bool>>,
    /// Tiny controls of the page (see [`crate::controls`]).
    controls: Option<&'p crate::controls::Controls>,
    /// Text nodes before the body's first element (see `lead_text`): each is written as a
    /// block of its own, signed by its text, so the corpus pass drops it where it recurs.
    lead: Option<&'p HashSet<NodeId>>,
    /// Label of the callout box being written, until its first block takes it.
    pending_label: Option<String>,
    in_box: usize,
    in_table: usize,
    in_dt: usize,
    link_depth: usize,
    /// Words of the inline text since the last block, and how many were link text.
    para_words: usize,
    para_link_words: usize,
    /// Words written, words in links, link words in lists or tables, links: for hub pages.
    words: usize,
    link_words: usize,
    listed_link_words: usize,
    link_count: usize,
}

impl<'p> Walker<'p> {
    fn new(protected: &'p HashSet<NodeId>, class_markers: bool, outside: &'p HashSet<NodeId>) -> Self {
        Walker {
            out: Out::default(),
            inline: Inline::default(),
            inline_only: 0,
            links: Vec::new(),
            seen_links: HashSet::new(),
            first_h1: None,
            protected,
            class_markers,
            outside,
            outside_open: 0,
            blocks: Vec::new(),
            verdicts: None,
            controls: None,
            lead: None,
            pending_label: None,
            in_box: 0,
            in_table: 0,
            in_dt: 0,
            link_depth: 0,
            para_words: 0,
            para_link_words: 0,
            words: 0,
            link_words: 0,
            listed_link_words: 0,
            link_count: 0,
        }
    }

    /// Text as written, counted for link density and hub detection.
    fn text(&mut self, t: &str) {
        self.inline.text(t);
        let w = text_words(t);
        if w == 0 {
            return;
        }
        self.para_words += w;
        if self.link_depth > 0 {
            self.para_link_words += w;
        }
        if self.outside_open > 0 {
            return; // beside the text: not evidence of what the page is
        }
        self.words += w;
        if self.link_depth > 0 {
            self.link_words += w;
            let listed = self.in_table > 0
                || self.in_dt > 0
                || self.out.containers.iter().any(|c| matches!(c, Container::Item { .. }));
            if listed {
                self.listed_link_words += w;
            }
        }
    }

    /// Mostly links, mostly in lists or tables: a table of contents, site map or index.
    fn is_hub(&self) -> bool {
        self.words >= HUB_MIN_WORDS
            && self.link_count >= HUB_MIN_LINKS
            && self.link_words * 100 >= self.words * HUB_LINK_SHARE
            && self.listed_link_words * 2 >= self.link_words
    }

    /// Write a block, with a pending callout label, and note it for the corpus pass
    /// when it is outside the text flow or (`dense`) mostly link text.
    fn emit(&mut self, kind: Kind, body: &str, dense: bool) {
        let start = self.out.md.len();
        if let Some(label) = self.pending_label.take() {
            if kind == Kind::Para {
                let text = format!("**{label}:** {body}");
                self.out.emit(kind, &text);
                self.note_block(start, dense);
                return;
            }
            self.out.emit(Kind::Para, &format!("**{label}:**"));
        }
        self.out.emit(kind, body);
        self.note_block(start, dense);
    }

    fn note_block(&mut self, start: usize, dense: bool) {
        if self.outside_open == 0 && !dense {
            return;
        }
        let end = self.out.md.len();
        if let Some(last) = self.blocks.last_mut() {
            if last.shape.is_none() && last.range.1 == start {
                last.range.1 = end;
                return;
            }
        }
        self.blocks.push(crate::PageBlock { range: (start, end), shape: None, chrome_like: true, control: None });
    }

    /// A label with nothing after it in its box goes on its own.
    fn label_alone(&mut self) {
        if let Some(label) = self.pending_label.take() {
            let start = self.out.md.len();
            self.out.emit(Kind::Para, &format!("**{label}:**"));
            self.note_block(start, false);
        }
    }

    fn walk(&mut self, root: NRef<'_>) {
        let mut stack = vec![Step::Enter(root, Flags::of_root(root))];
        while let Some(step) = stack.pop() {
            match step {
                Step::Enter(node, flags) => match node.value() {
                    Node::Text(t) if self.lead.is_some_and(|l| l.contains(&node.id())) => self.lead_block(t),
                    Node::Text(t) => self.text(t),
                    Node::Element(el) => self.enter(node, el, flags, &mut stack),
                    Node::Document | Node::Fragment => push_children(node, flags, &mut stack),
                    _ => {}
                },
                Step::Exit(exit) => self.exit(exit),
            }
        }
        self.flush();
    }

    /// A text run before the body's first element, as a template candidate signed by its
    /// words: the same run opening a large share of the pages is template, however short.
    fn lead_block(&mut self, t: &str) {
        self.flush();
        let start = self.out.md.len();
        self.text(t);
        self.flush();
        let end = self.out.md.len();
        if end > start {
            let mut h = Fnv::new();
            h.str("lead");
            for w in t.split_whitespace() {
                h.str(w);
            }
            self.blocks.push(crate::PageBlock {
                range: (start, end),
                shape: Some(h.0),
                chrome_like: true,
                control: None,
            });
        }
    }

    fn flush(&mut self) {
        if self.inline_only > 0 {
            self.inline.space();
            return;
        }
        let text = self.inline.take();
        let dense = self.para_link_words * 100 >= self.para_words.max(1) * DENSE_LINK_SHARE;
        self.para_words = 0;
        self.para_link_words = 0;
        if !text.is_empty() {
            self.emit(Kind::Para, &escape_line_start(&text), dense);
        }
    }

    fn block_boundary(&mut self) {
        if self.inline_only > 0 {
            self.inline.space();
        } else {
            self.flush();
        }
    }

    fn exit(&mut self, exit: Exit) {
        match exit {
            Exit::Block => self.block_boundary(),
            Exit::Link => self.link_depth = self.link_depth.saturating_sub(1),
            Exit::Outside => self.outside_open = self.outside_open.saturating_sub(1),
            Exit::Candidate(start, shape, control) => {
                self.flush();
                let end = self.out.md.len();
                if end > start {
                    // Blocks noted inside the candidate are covered by it.
                    while self.blocks.last().is_some_and(|b| b.range.0 >= start) {
                        self.blocks.pop();
                    }
                    self.blocks.push(crate::PageBlock {
                        range: (start, end),
                        shape: Some(shape),
                        chrome_like: true,
                        control,
                    });
                }
            }
            Exit::Box => {
                self.flush();
                self.pending_label = None;
                self.in_box = self.in_box.saturating_sub(1);
            }
            Exit::Heading(level) => {
                self.inline_only -= 1;
                let text = self.inline.take();
                self.para_words = 0;
                self.para_link_words = 0;
                if !text.is_empty() {
                    if level == 1 && self.first_h1.is_none() {
                        self.first_h1 = Some(text.clone());
                    }
                    let line = format!("{} {}", "#".repeat(usize::from(level)), escape_heading(&text));
                    self.emit(Kind::Heading, &line, false);
                }
            }
            Exit::Container => {
                self.flush();
                self.out.containers.pop();
            }
            Exit::Dt => {
                self.inline_only -= 1;
                self.in_dt = self.in_dt.saturating_sub(1);
                let text = self.inline.take();
                let dense = self.para_link_words * 100 >= self.para_words.max(1) * DENSE_LINK_SHARE;
                self.para_words = 0;
                self.para_link_words = 0;
                if !text.is_empty() {
                    self.emit(Kind::Dt, &format!("**{}**", text.replace("**", "")), dense);
                }
            }
        }
    }

    fn enter<'a>(&mut self, node: NRef<'a>, el: &Element, flags: Flags, stack: &mut Vec<Step<'a>>) {
        if self.is_dropped(node, el, flags) {
            return;
        }
        let mut control_block = None;
        if let Some(c) = self.controls {
            if c.drop.contains(&node.id()) {
                return;
            }
            control_block = c.blocks.get(&node.id()).copied();
        }
        let name = el.name();
        let mut child_flags = flags.child(node);
        let outside_root = self.outside.contains(&node.id());
        child_flags.outside |= outside_root;
        if name == "a" && child_flags.outside && is_image_only(node) {
            // A logo or icon link beside the text: its alt text is a label, not content.
            return;
        }
        if let Some((signature, targets)) = control_block.filter(|_| !flags.in_candidate && self.inline_only == 0) {
            self.flush();
            child_flags.in_candidate = true;
            stack.push(Step::Exit(Exit::Candidate(self.out.md.len(), signature, Some(targets))));
        }
        if child_flags.outside && !flags.in_candidate && self.inline_only == 0 && is_block_name(name) {
            if let Some(shape) = shape_of(node).filter(|_| callout(node, el).is_none()) {
                if shape.links >= NAV_MIN_LINKS && shape.link_words * 100 >= shape.words * NAV_LINK_SHARE {
                    // A block of links beside the text: navigation. Its shape still counts
                    // for the corpus pass (an empty range), so the same block on pages where
                    // it holds more words is recognised too.
                    if let Some(signature) = shape.signature {
                        let at = self.out.md.len();
                        self.blocks.push(crate::PageBlock {
                            range: (at, at),
                            shape: Some(signature),
                            chrome_like: true,
                            control: None,
                        });
                    }
                    return;
                }
                if let Some(signature) = shape.signature {
                    self.flush();
                    child_flags.in_candidate = true;
                    stack.push(Step::Exit(Exit::Candidate(self.out.md.len(), signature, None)));
                }
            }
        }
        if outside_root {
            self.outside_open += 1;
            stack.push(Step::Exit(Exit::Outside));
        }
        if self.inline_only == 0 && matches!(name, "aside" | "div" | "section" | "table") {
            if let Some((label, body)) = callout(node, el) {
                self.flush();
                self.label_alone();
                self.pending_label = Some(label);
                self.in_box += 1;
                stack.push(Step::Exit(Exit::Box));
                for c in body.into_iter().rev() {
                    stack.push(Step::Enter(c, child_flags));
                }
                return;
            }
        }
        match name {
            "pre" | "xmp" | "listing" | "plaintext" => {
                if self.inline_only > 0 {
                    let code = pre_text(node);
                    self.inline.raw(&code_span(&code));
                } else {
                    self.flush();
                    self.code_block(node);
                }
                return;
            }
            "code" | "kbd" | "samp" | "tt" => {
                let code = pre_text(node);
                self.inline.raw(&code_span(&code));
                return;
            }
            "img" | "area" => {
                if let Some(alt) = attr(el, "alt") {
                    self.inline.text(alt);
                }
                return;
            }
            "br" => {
                self.inline.space();
                return;
            }
            "hr" => {
                self.block_boundary();
                return;
            }
            "table" if self.inline_only == 0 && !is_layout_table(node, el) => {
                self.flush();
                self.in_table += 1;
                self.table(node);
                self.in_table -= 1;
                return;
            }
            "a" => {
                if let Some(href) = attr(el, "href") {
                    self.add_link(href);
                }
                self.link_depth += 1;
                self.link_count += 1;
                stack.push(Step::Exit(Exit::Link));
                push_children(node, child_flags, stack);
                return;
            }
            _ => {}
        }
        if let Some(level) = heading_level(name) {
            self.block_boundary();
            let in_item_or_quote =
                self.in_box > 0 || self.out.containers.iter().any(|c| !matches!(c, Container::List { .. }));
            if self.inline_only > 0 || in_item_or_quote {
                // Headings inside lists, quotes or headings are plain paragraphs.
                stack.push(Step::Exit(Exit::Block));
            } else {
                self.inline_only += 1;
                stack.push(Step::Exit(Exit::Heading(level)));
            }
            push_children(node, child_flags, stack);
            return;
        }
        if self.inline_only > 0 {
            if is_block_name(name) {
                self.inline.space();
                stack.push(Step::Exit(Exit::Block));
            }
            push_children(node, child_flags, stack);
            return;
        }
        match name {
            "ul" | "ol" | "menu" | "dir" => {
                self.flush();
                self.label_alone();
                self.out.release_pending_marker();
                let start = attr(el, "start").and_then(|s| s.trim().parse::<u64>().ok()).unwrap_or(1);
                self.out.containers.push(Container::List { ordered: name == "ol", next: start, first: true });
                stack.push(Step::Exit(Exit::Container));
            }
            "li" => {
                self.flush();
                let (marker, loose) = match self.out.containers.last_mut() {
                    Some(Container::List { ordered: true, next, first }) => {
                        let m = format!("{next}.");
                        let loose = *first && *next != 1;
                        *next += 1;
                        *first = false;
                        (m, loose)
                    }
                    _ => ("-".to_owned(), false),
                };
                self.out.containers.push(Container::Item { marker, pending: true, loose });
                stack.push(Step::Exit(Exit::Container));
            }
            "dd" => {
                self.flush();
                self.out.containers.push(Container::Item { marker: ":".to_owned(), pending: true, loose: false });
                stack.push(Step::Exit(Exit::Container));
            }
            "dt" => {
                self.flush();
                self.inline_only += 1;
                self.in_dt += 1;
                stack.push(Step::Exit(Exit::Dt));
            }
            "blockquote" => {
                self.flush();
                self.label_alone();
                self.out.release_pending_marker();
                self.out.containers.push(Container::Quote);
                stack.push(Step::Exit(Exit::Container));
            }
            "summary" | "caption" | "figcaption" | "legend" => {
                self.flush();
                stack.push(Step::Exit(Exit::Block));
            }
            _ if is_block_name(name) => {
                self.flush();
                stack.push(Step::Exit(Exit::Block));
            }
            _ => {}
        }
        push_children(node, child_flags, stack);
    }

    fn add_link(&mut self, href: &str) {
        let href = href.trim();
        if href.is_empty() || href.starts_with('#') || href.to_ascii_lowercase().starts_with("javascript:") {
            return;
        }
        if self.seen_links.insert(href.to_owned()) {
            self.links.push(href.to_owned());
        }
    }

    /// The chrome rules. `true` drops the element and its subtree.
    fn is_dropped(&self, node: NRef<'_>, el: &Element, flags: Flags) -> bool {
        if let Some(&known) = self.verdicts.and_then(|v| v.get(&node.id())) {
            return known;
        }
        let name = el.name();
        let protected = self.protected.contains(&node.id());
        if DROP_TAGS.contains(&name) {
            return true;
        }
        if name == "form" && !protected {
            return true;
        }
        if is_hidden(el) && !is_tab_panel(el) {
            return true;
        }
        if protected {
            return false;
        }
        match name {
            "nav" => return true,
            "aside" if !is_admonition(el) && !is_callout_aside(node) => return true,
            "header" if !flags.in_sectioning => return true,
            "footer" if !flags.in_article => return true,
            _ => {}
        }
        if let Some(role) = attr(el, "role") {
            let role = role.trim().to_ascii_lowercase();
            if CHROME_ROLES.contains(&role.as_str()) {
                return true;
            }
            // A control dressed as a button: its label is never content.
            if role == "button" && short_text(node, 60).is_some_and(|t| word_count(&t) <= 6) && !has_heading(node) {
                return true;
            }
        }
        if has_chrome_class_or_id(el) && !is_admonition(el) {
            // In the last-resort pass only small elements go: a big wrapper whose
            // class merely mentions "sidebar" is content.
            if self.class_markers || short_text(node, 400).is_some() {
                return true;
            }
        }
        match name {
            "a" => return is_chrome_link(node, el),
            "p" | "div" | "small" | "li" | "address" | "section" | "dd" | "dt" => {
                if let Some(text) = short_text(node, 400) {
                    let lower = text.to_lowercase();
                    if is_chrome_block_text(&lower) {
                        return true;
                    }
                    if name != "p" && name != "li" && lower.contains("cookie") && has_button_like(node) {
                        return true;
                    }
                }
            }
            _ => {}
        }
        if heading_level(name).is_some() {
            if let Some(text) = short_text(node, 80) {
                if CHROME_HEADINGS.contains(&text.to_lowercase().as_str()) {
                    return true;
                }
            }
        }
        // The element right after a chrome heading ("Previous topic" → its link).
        if let Some(prev) = node.prev_siblings().take(8).find(|s| s.value().is_element()) {
            if let Some(pel) = prev.value().as_element() {
                if heading_level(pel.name()).is_some() {
                    if let Some(text) = short_text(prev, 80) {
                        if CHROME_HEADINGS.contains(&text.to_lowercase().as_str()) {
                            return true;
                        }
                    }
                }
            }
        }
        false
    }

    fn code_block(&mut self, node: NRef<'_>) {
        let code = pre_text(node);
        let code = code.trim_end_matches(['\n', ' ', '\t']).trim_start_matches('\n');
        if code.trim().is_empty() {
            return;
        }
        let lang = code_language(node);
        let fence = "`".repeat(longest_run(code, '`').max(2) + 1);
        let block = format!("{fence}{lang}\n{code}\n{fence}");
        self.emit(Kind::Code, &block, false);
    }

    fn table(&mut self, table: NRef<'_>) {
        let mut caption = None;
        let mut rows: Vec<(bool, Vec<String>)> = Vec::new();
        let mut row_nodes: Vec<(bool, NRef<'_>)> = Vec::new();
        for child in table.children() {
            let Some(el) = child.value().as_element() else { continue };
            match el.name() {
                "caption" => caption = Some(child),
                "thead" | "tbody" | "tfoot" => {
                    for tr in child.children() {
                        if tr.value().as_element().is_some_and(|e| e.name() == "tr") {
                            row_nodes.push((el.name() == "thead", tr));
                        }
                    }
                }
                "tr" => row_nodes.push((false, child)),
                _ => {}
            }
        }
        if let Some(cap) = caption {
            let text = self.flatten(cap);
            if !text.is_empty() {
                self.emit(Kind::Para, &escape_line_start(&text), false);
            }
        }
        let (words0, links0) = (self.para_words, self.para_link_words);
        for (in_head, tr) in row_nodes {
            let Some(tr_el) = tr.value().as_element() else { continue };
            if self.is_dropped(tr, tr_el, Flags::default()) {
                continue;
            }
            let mut cells = Vec::new();
            let mut all_th = true;
            for cell in tr.children() {
                let Some(cel) = cell.value().as_element() else { continue };
                if !matches!(cel.name(), "td" | "th") {
                    continue;
                }
                all_th &= cel.name() == "th";
                cells.push(self.flatten(cell));
            }
            if cells.is_empty() || cells.iter().all(String::is_empty) {
                continue;
            }
            rows.push((in_head || all_th, cells));
        }
        if rows.is_empty() {
            return;
        }
        let columns = rows.iter().map(|(_, c)| c.len()).max().unwrap_or(0);
        let has_header = rows[0].0;
        if columns > 6 {
            // Wide tables read better (and chunk better) as one record per row.
            let headers: Vec<String> =
                if has_header { rows[0].1.clone() } else { (1..=columns).map(|i| format!("Column {i}")).collect() };
            let body = if has_header { &rows[1..] } else { &rows[..] };
            for (_, cells) in body {
                let mut lines = Vec::new();
                for (i, value) in cells.iter().enumerate() {
                    if value.is_empty() {
                        continue;
                    }
                    let head = headers
                        .get(i)
                        .filter(|h| !h.is_empty())
                        .cloned()
                        .unwrap_or_else(|| format!("Column {}", i + 1));
                    lines.push(escape_line_start(&format!("{head}: {value}")).into_owned());
                }
                if !lines.is_empty() {
                    let dense = self.para_link_words * 100 >= self.para_words.max(1) * DENSE_LINK_SHARE;
                    self.emit(Kind::Para, &lines.join("\n"), dense);
                }
            }
            self.para_words = words0;
            self.para_link_words = links0;
            return;
        }
        let mut md = String::new();
        let render_row = |md: &mut String, cells: &[String]| {
            md.push('|');
            for i in 0..columns {
                let cell = cells.get(i).map(String::as_str).unwrap_or("");
                md.push(' ');
                md.push_str(&cell.replace('|', "\\|"));
                md.push_str(" |");
            }
        };
        render_row(&mut md, &rows[0].1);
        md.push_str("\n|");
        for _ in 0..columns {
            md.push_str(" --- |");
        }
        for (_, cells) in &rows[1..] {
            md.push('\n');
            render_row(&mut md, cells);
        }
        let dense = (self.para_link_words - links0) * 100 >= (self.para_words - words0).max(1) * DENSE_LINK_SHARE;
        self.para_words = words0;
        self.para_link_words = links0;
        self.emit(Kind::Table, &md, dense);
    }

    /// Everything under `node` as one line of inline text (table cells, captions).
    fn flatten(&mut self, node: NRef<'_>) -> String {
        let saved = std::mem::take(&mut self.inline);
        self.inline_only += 1;
        let mut stack = Vec::new();
        push_children(node, Flags::of_root(node), &mut stack);
        while let Some(step) = stack.pop() {
            match step {
                Step::Enter(n, flags) => match n.value() {
                    Node::Text(t) => self.text(t),
                    Node::Element(el) => self.enter(n, el, flags, &mut stack),
                    _ => {}
                },
                Step::Exit(exit) => self.exit(exit),
            }
        }
        self.inline_only -= 1;
        std::mem::replace(&mut self.inline, saved).take()
    }
}

fn push_children<'a>(node: NRef<'a>, flags: Flags, stack: &mut Vec<Step<'a>>) {
    for child in node.children().rev() {
        stack.push(Step::Enter(child, flags));
    }
}

/// An `aside` that is a titled callout inside the text rather than a sidebar:
/// a short title and a body, fewer than half of its words link text.
fn is_callout_aside(node: NRef<'_>) -> bool {
    if titled_box(node).is_none() {
        return false;
    }
    let mut words = 0usize;
    let mut link_words = 0usize;
    for d in node.descendants().take(CANDIDATE_NODE_BUDGET) {
        if let Node::Text(t) = d.value() {
            let w = text_words(t);
            words += w;
            if d.ancestors()
                .take_while(|a| a.id() != node.id())
                .any(|a| a.value().as_element().is_some_and(|e| e.name() == "a"))
            {
                link_words += w;
            }
        }
    }
    words > 0 && link_words * 2 < words
}

fn is_admonition(el: &Element) -> bool {
    el.classes().any(|c| {
        let c = c.to_ascii_lowercase();
        matches!(
            c.as_str(),
            "admonition"
                | "note"
                | "warning"
                | "tip"
                | "caution"
                | "important"
                | "danger"
                | "attention"
                | "hint"
                | "callout"
        ) || c.starts_with("admonition")
            || c.starts_with("callout")
    })
}

fn is_chrome_link(node: NRef<'_>, el: &Element) -> bool {
    if let Some(rel) = attr(el, "rel") {
        if rel.split_ascii_whitespace().any(|r| r.eq_ignore_ascii_case("prev") || r.eq_ignore_ascii_case("next")) {
            return true;
        }
    }
    let Some(text) = short_text(node, 120) else {
        return false;
    };
    let lower = text.to_lowercase();
    let href = attr(el, "href").unwrap_or("").trim();
    if href.starts_with('#') {
        if lower.starts_with("skip to") || lower.starts_with("skip navigation") || lower.starts_with("jump to") {
            return true;
        }
        if matches!(lower.as_str(), "" | "¶" | "#" | "§" | "🔗" | "link") {
            return true;
        }
    }
    let core = lower.trim_matches(|c: char| !c.is_alphanumeric());
    CHROME_LINK_TEXTS.contains(&core) || is_prev_next_link(&text, &lower)
}

/// A cookie banner's tell: something to click that isn't a content link.
fn has_button_like(node: NRef<'_>) -> bool {
    node.descendants().take(2000).any(|n| {
        n.value().as_element().is_some_and(|e| {
            matches!(e.name(), "button" | "input")
                || attr(e, "role").is_some_and(|r| r.eq_ignore_ascii_case("button"))
                || (e.name() == "a"
                    && short_text(n, 40).is_some_and(|t| {
                        matches!(
                            t.to_lowercase().as_str(),
                            "accept"
                                | "accept all"
                                | "ok"
                                | "got it"
                                | "i agree"
                                | "agree"
                                | "allow"
                                | "allow all"
                                | "decline"
                                | "reject"
                        )
                    }))
        })
    })
}

/// A table used for page layout rather than data: rendered as its content.
fn is_layout_table(node: NRef<'_>, el: &Element) -> bool {
    if attr(el, "role").is_some_and(|r| matches!(r.trim(), "presentation" | "none")) {
        return true;
    }
    let mut columns = 0usize;
    let mut blocks_in_cells = false;
    for (steps, n) in node.descendants().skip(1).enumerate() {
        if steps > 20_000 {
            break;
        }
        let Some(e) = n.value().as_element() else { continue };
        match e.name() {
            "table" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => return true,
            "tr" => {
                let cells = n
                    .children()
                    .filter(|c| c.value().as_element().is_some_and(|e| matches!(e.name(), "td" | "th")))
                    .count();
                columns = columns.max(cells);
            }
            "p" | "div" | "ul" | "ol" | "pre" | "blockquote" => blocks_in_cells = true,
            _ => {}
        }
    }
    columns == 1 && blocks_in_cells
}

/// Raw text under a `pre`/`code`, `br` as newline, dropped chrome (copy
/// buttons, line numbers) skipped.
fn pre_text(node: NRef<'_>) -> String {
    let mut s = String::new();
    let mut stack = vec![node];
    let mut first = true;
    while let Some(n) = stack.pop() {
        match n.value() {
            Node::Text(t) => s.push_str(t),
            Node::Element(e) => {
                if !first {
                    if e.name() == "br" {
                        s.push('\n');
                        continue;
                    }
                    if DROP_TAGS.contains(&e.name())
                        || is_hidden(e)
                        || e.classes().any(|c| matches!(c, "linenos" | "lineno" | "linenodiv" | "copybtn"))
                    {
                        continue;
                    }
                }
                for child in n.children().rev() {
                    stack.push(child);
                }
            }
            _ => {}
        }
        first = false;
    }
    s.replace("\r\n", "\n").replace('\r', "\n")
}

/// Inline code span for `code` text, whitespace collapsed.
fn code_span(code: &str) -> String {
    let mut text = String::with_capacity(code.len());
    for w in code.split_whitespace() {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(w);
    }
    if text.is_empty() {
        return text;
    }
    let ticks = "`".repeat(longest_run(&text, '`') + 1);
    if text.starts_with('`') || text.ends_with('`') {
        format!("{ticks} {text} {ticks}")
    } else {
        format!("{ticks}{text}{ticks}")
    }
}

fn longest_run(s: &str, ch: char) -> usize {
    let mut best = 0;
    let mut cur = 0;
    for c in s.chars() {
        if c == ch {
            cur += 1;
            best = best.max(cur);
        } else {
            cur = 0;
        }
    }
    best
}

/// Language of a code block from `language-x` / `lang-x` / `highlight-x` classes
/// on the `pre`, its `code` child, or the two wrappers above it (Sphinx puts
/// `highlight-python` on a grandparent `div`).
fn code_language(pre: NRef<'_>) -> String {
    let mut candidates: Vec<NRef<'_>> = vec![pre];
    if let Some(code) = pre.children().find(|c| c.value().as_element().is_some_and(|e| e.name() == "code")) {
        candidates.insert(0, code);
    }
    candidates.extend(pre.ancestors().take(2));
    for n in candidates {
        let Some(el) = n.value().as_element() else { continue };
        for class in el.classes() {
            let lower = class.to_ascii_lowercase();
            let lang = lower
                .strip_prefix("language-")
                .or_else(|| lower.strip_prefix("lang-"))
                .or_else(|| lower.strip_prefix("highlight-"))
                .or_else(|| lower.strip_prefix("sourcecode-"));
            if let Some(lang) = lang {
                if matches!(lang, "default" | "none" | "text" | "plain" | "") {
                    return String::new();
                }
                let clean: String = lang
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '_' | '#' | '.'))
                    .collect();
                return clean;
            }
        }
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_suffix_is_stripped_only_when_the_h1_confirms_it() {
        assert_eq!(strip_site_suffix("Install — Tidewater docs", Some("Install")), "Install");
        assert_eq!(strip_site_suffix("Tidewater | Install", Some("Install")), "Install");
        assert_eq!(strip_site_suffix("Install — Tidewater docs", Some("Setup")), "Install — Tidewater docs");
        assert_eq!(strip_site_suffix("Install — Tidewater docs", None), "Install — Tidewater docs");
        assert_eq!(strip_site_suffix("A - B - C", Some("A")), "A");
    }

    #[test]
    fn a_redirect_stub_is_empty_and_a_page_that_also_redirects_is_not() {
        let stub = br#"<html><head><meta http-equiv="refresh" content="0;URL=new.html"></head>
            <body><p>Redirecting to <a href="new.html">new.html</a>...</p></body></html>"#;
        assert!(matches!(sanitize_html("old.html", stub), Err(IngestError::Empty { .. })));
        let page = br#"<html><head><meta http-equiv="refresh" content="300; url=self.html"></head>
            <body><h1>Tide table</h1><p>High water at the harbour mouth comes forty minutes after the
            outer buoy, and the table below lists both for every day of the month.</p></body></html>"#;
        let doc = sanitize_html("table.html", page).expect("a page with text");
        assert!(doc.markdown.contains("forty minutes"));
    }

    #[test]
    fn chrome_tokens() {
        for t in [
            "breadcrumbs",
            "wy-breadcrumbs",
            "cookieBanner",
            "md-footer",
            "sphinxsidebar",
            "skip-link",
            "edit-this-page",
        ] {
            assert!(is_chrome_token(t), "{t}");
        }
        for t in [
            "content",
            "document",
            "body",
            "section-header",
            "highlight",
            "admonition",
            "toctree-wrapper",
            "menuselection",
        ] {
            assert!(!is_chrome_token(t), "{t}");
        }
    }

    #[test]
    fn chrome_ids() {
        for id in
            ["cookie-consent", "site-footer", "searchbox", "main-nav", "sidebar", "skip-to-content", "cookieBanner"]
        {
            assert!(is_chrome_id(id), "{id}");
        }
        for id in
            ["can-several-servers-share-one-data-directory", "session-cookies", "searching-jobs", "content", "main"]
        {
            assert!(!is_chrome_id(id), "{id}");
        }
    }

    #[test]
    fn copyright_lines() {
        assert!(is_copyright_line("© 2026 tidewater inc."));
        assert!(is_copyright_line("copyright 2026, tidewater"));
        assert!(is_copyright_line("copyright © tidewater"));
        assert!(!is_copyright_line("copyright notices must be kept in every source file."));
    }

    #[test]
    fn prev_next_links() {
        for t in ["Next", "« Previous", "Next page →", "Previous: Install", "← Quickstart", "NEXT TOPIC"] {
            assert!(is_prev_next_link(t, &t.to_lowercase()), "{t}");
        }
        for t in ["Next steps", "the next section explains", "Preview"] {
            assert!(!is_prev_next_link(t, &t.to_lowercase()), "{t}");
        }
    }
}
