//! Flatten pathologically deep tag nesting before the HTML parser sees it.
//!
//! html5ever's tree builder walks the stack of open elements on many start tags
//! (scope checks, the list of active formatting elements), so a document of
//! 100,000 nested `<div>`s takes it minutes. This module runs a cheap,
//! approximate tag scanner over the text; when the estimated depth passes
//! [`MAX_DEPTH`] it removes the start tags (and their matching end tags) beyond
//! that depth, keeping all text. Documents that never get that deep are returned
//! unchanged without copying.

use std::borrow::Cow;

/// Deepest nesting kept. Real documentation pages stay well under 100.
pub(crate) const MAX_DEPTH: usize = 512;

/// Most attributes kept on one tag. html5ever checks each new attribute of a tag
/// against the ones before it (to drop duplicates), so a tag with n attributes
/// costs n² comparisons: 400,000 of them took over a minute. Real pages stay
/// well under 30; attributes beyond this many are removed from the tag (text is
/// never touched).
pub(crate) const MAX_ATTRS: usize = 256;

/// Start tags kept per byte of page beyond [`BASE_TAGS`]: one per this many bytes.
/// The parsed tree costs a few hundred bytes per node, so a page made of nothing
/// but tiny elements (`<b>x</b>` repeated) would need 50 to 100 times its size;
/// past the budget, tags are removed and their text kept. Documentation pages
/// average one start tag per 40 to 100 bytes and stay under it.
pub(crate) const BYTES_PER_TAG: usize = 32;
/// Start tags always kept, whatever the page size.
pub(crate) const BASE_TAGS: usize = 20_000;

/// What [`flatten_deep_nesting`] changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Guarded {
    /// Nesting beyond [`MAX_DEPTH`] was flattened.
    pub(crate) deep: bool,
    /// Attributes beyond [`MAX_ATTRS`] were removed from some tag.
    pub(crate) attrs: bool,
    /// Start tags beyond the budget (see [`BYTES_PER_TAG`]) were removed.
    pub(crate) tags: bool,
}

/// How far down the open-element stack an end tag looks for its start tag.
const END_TAG_SEARCH: usize = 1024;

const VOID: &[&str] = &[
    "area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "img", "input", "keygen", "link",
    "meta", "param", "source", "track", "wbr",
];

/// Elements whose content is raw text: tags inside are not tags.
const RAW_TEXT: &[&str] = &["script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "noscript"];

/// Elements that the parser closes implicitly when a sibling of a listed kind starts.
/// Both names are lowercase (see [`lower`]).
fn implicitly_closed_by(open: &str, starting: &str) -> bool {
    match starting {
        "li" => open == "li",
        "dt" | "dd" => matches!(open, "dt" | "dd"),
        "td" | "th" => matches!(open, "td" | "th"),
        "tr" => matches!(open, "td" | "th" | "tr"),
        "tbody" | "thead" | "tfoot" => matches!(open, "td" | "th" | "tr" | "tbody" | "thead" | "tfoot"),
        "option" => open == "option",
        "p" | "div" | "ul" | "ol" | "dl" | "pre" | "table" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "blockquote"
        | "section" | "article" | "aside" | "nav" | "header" | "footer" | "main" | "figure" | "form" | "hr" => {
            open == "p"
        }
        _ => false,
    }
}

struct Open {
    /// Byte range of the tag name in the document, as written.
    name: (usize, usize),
    kept: bool,
}

/// `name` lowercased into `buf` when it fits; longer names are no element this
/// module knows by name, so they come back as `"-"` (never equal to a known name).
fn lower<'b>(name: &[u8], buf: &'b mut [u8; 16]) -> &'b str {
    if name.len() > buf.len() {
        return "-";
    }
    let out = &mut buf[..name.len()];
    out.copy_from_slice(name);
    out.make_ascii_lowercase();
    std::str::from_utf8(out).unwrap_or("-")
}

/// Return `html` with nesting beyond [`MAX_DEPTH`] flattened and attributes
/// beyond [`MAX_ATTRS`] per tag removed (see the module docs), and what changed.
pub(crate) fn flatten_deep_nesting(html: &str) -> (Cow<'_, str>, Guarded) {
    guard(html, MAX_DEPTH, MAX_ATTRS)
}

#[cfg(test)]
fn flatten_with_limit(html: &str, max_depth: usize) -> Cow<'_, str> {
    guard(html, max_depth, MAX_ATTRS).0
}

fn guard(html: &str, max_depth: usize, max_attrs: usize) -> (Cow<'_, str>, Guarded) {
    let mut guarded = Guarded::default();
    let tag_budget = BASE_TAGS + html.len() / BYTES_PER_TAG;
    let mut start_tags = 0usize;
    let bytes = html.as_bytes();
    let n = bytes.len();
    let mut stack: Vec<Open> = Vec::new();
    let mut kept_depth = 0usize;
    let mut foreign = 0usize; // open <svg>/<math> elements: `/>` is honoured inside them
    let mut drops: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < n {
        let Some(off) = bytes[i..].iter().position(|&b| b == b'<') else {
            break;
        };
        let lt = i + off;
        i = lt + 1;
        if i >= n {
            break;
        }
        let c = bytes[i];
        if c == b'!' {
            i = if bytes[i..].starts_with(b"!--") {
                find(bytes, i + 3, b"-->").map_or(n, |p| p + 3)
            } else if bytes[i..].starts_with(b"![CDATA[") && foreign > 0 {
                find(bytes, i + 8, b"]]>").map_or(n, |p| p + 3)
            } else {
                find(bytes, i, b">").map_or(n, |p| p + 1)
            };
            continue;
        }
        if c == b'?' {
            i = find(bytes, i, b">").map_or(n, |p| p + 1);
            continue;
        }
        let is_end = c == b'/';
        let name_start = if is_end { i + 1 } else { i };
        if name_start >= n || !bytes[name_start].is_ascii_alphabetic() {
            continue; // not a tag: a literal '<'
        }
        let mut j = name_start;
        while j < n && !bytes[j].is_ascii_whitespace() && bytes[j] != b'/' && bytes[j] != b'>' {
            j += 1;
        }
        let raw_name = &bytes[name_start..j];
        let mut buf = [0u8; 16];
        let name = lower(raw_name, &mut buf);
        let (tag_end, self_closing) = scan_tag_end(bytes, j);
        i = tag_end;
        // Drop attributes past the cap, keeping the tag's closing `>` or `/>`.
        if let Some(cut) = nth_attribute(bytes, j, tag_end, max_attrs) {
            let close = if self_closing { tag_end - 2 } else { tag_end - 1 };
            if cut < close {
                drops.push((cut, close));
                guarded.attrs = true;
            }
        }
        // The whole tag dropped replaces a cut inside it.
        let drop_tag = |drops: &mut Vec<(usize, usize)>| {
            if drops.last().is_some_and(|d| d.0 >= lt) {
                drops.pop();
            }
            drops.push((lt, tag_end));
        };
        if is_end {
            let lowest = stack.len().saturating_sub(END_TAG_SEARCH);
            let same = |o: &Open| bytes[o.name.0..o.name.1].eq_ignore_ascii_case(raw_name);
            if let Some(pos) = (lowest..stack.len()).rev().find(|&k| same(&stack[k])) {
                let matched_kept = stack[pos].kept;
                for open in stack.drain(pos..) {
                    if open.kept {
                        kept_depth -= 1;
                    }
                    let open_name = &bytes[open.name.0..open.name.1];
                    if open_name.eq_ignore_ascii_case(b"svg") || open_name.eq_ignore_ascii_case(b"math") {
                        foreign = foreign.saturating_sub(1);
                    }
                }
                if !matched_kept {
                    drop_tag(&mut drops);
                }
            }
            continue;
        }
        if name == "plaintext" {
            break;
        }
        if RAW_TEXT.contains(&name) {
            // Skip to the matching end tag; its content is text.
            let close = format!("</{name}");
            i = find_ci(bytes, tag_end, close.as_bytes()).unwrap_or(n);
            continue;
        }
        if VOID.contains(&name) || (self_closing && foreign > 0) {
            continue;
        }
        while let Some(top) = stack.last() {
            let mut top_buf = [0u8; 16];
            if implicitly_closed_by(lower(&bytes[top.name.0..top.name.1], &mut top_buf), name) {
                if top.kept {
                    kept_depth -= 1;
                }
                stack.pop();
            } else {
                break;
            }
        }
        let within_budget = start_tags < tag_budget;
        let kept = kept_depth < max_depth && within_budget;
        if kept {
            kept_depth += 1;
            start_tags += 1;
        } else {
            drop_tag(&mut drops);
            if within_budget {
                guarded.deep = true;
            } else {
                guarded.tags = true;
            }
        }
        if name == "svg" || name == "math" {
            foreign += 1;
        }
        stack.push(Open { name: (name_start, j), kept });
    }
    if drops.is_empty() {
        return (Cow::Borrowed(html), guarded);
    }
    let mut out = String::with_capacity(html.len());
    let mut last = 0;
    for (s, e) in drops {
        out.push_str(&html[last..s]);
        last = e;
    }
    out.push_str(&html[last..]);
    (Cow::Owned(out), guarded)
}

/// Byte offset where attribute number `n + 1` of a tag starts (`from` is just after
/// the tag name, `end` just after its `>`), when it has more than `n`.
fn nth_attribute(bytes: &[u8], from: usize, end: usize, n: usize) -> Option<usize> {
    let mut i = from;
    let mut count = 0usize;
    let end = end.min(bytes.len());
    while i < end {
        let b = bytes[i];
        if b.is_ascii_whitespace() || b == b'/' {
            i += 1;
            continue;
        }
        if b == b'>' {
            return None;
        }
        count += 1;
        if count > n {
            return Some(i);
        }
        // Name (a leading '=' belongs to it).
        i += 1;
        while i < end && !bytes[i].is_ascii_whitespace() && !matches!(bytes[i], b'/' | b'>' | b'=') {
            i += 1;
        }
        while i < end && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i < end && bytes[i] == b'=' {
            i += 1;
            while i < end && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < end && (bytes[i] == b'"' || bytes[i] == b'\'') {
                let q = bytes[i];
                i = bytes[i + 1..end].iter().position(|&c| c == q).map_or(end, |p| i + 2 + p);
            } else {
                while i < end && !bytes[i].is_ascii_whitespace() && bytes[i] != b'>' {
                    i += 1;
                }
            }
        }
    }
    None
}

/// From just after a tag name, find the end of the tag (after `>`), honouring
/// quoted attribute values. Also reports a `/>` ending.
fn scan_tag_end(bytes: &[u8], mut i: usize) -> (usize, bool) {
    let n = bytes.len();
    let mut after_eq = false;
    while i < n {
        match bytes[i] {
            b'>' => return (i + 1, i > 0 && bytes[i - 1] == b'/'),
            b'=' => after_eq = true,
            b'"' | b'\'' if after_eq => {
                let q = bytes[i];
                i = bytes[i + 1..].iter().position(|&b| b == q).map_or(n, |p| i + 1 + p);
                after_eq = false;
            }
            b if b.is_ascii_whitespace() => {}
            _ => after_eq = false,
        }
        i += 1;
    }
    (n, false)
}

fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    if from >= hay.len() {
        return None;
    }
    hay[from..].windows(needle.len()).position(|w| w == needle).map(|p| p + from)
}

fn find_ci(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    if from >= hay.len() {
        return None;
    }
    hay[from..].windows(needle.len()).position(|w| w.eq_ignore_ascii_case(needle)).map(|p| p + from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shallow_documents_are_untouched() {
        let doc = "<html><body><div><p>a<p>b<ul><li>x<li>y</ul></div><script>if (a<b) {}</script></body></html>";
        assert!(matches!(flatten_deep_nesting(doc).0, Cow::Borrowed(_)));
    }

    #[test]
    fn deep_nesting_is_capped_and_text_kept() {
        let doc = format!("{}x{}", "<div>".repeat(20), "</div>".repeat(20));
        let out = flatten_with_limit(&doc, 5);
        assert_eq!(out, format!("{}x{}", "<div>".repeat(5), "</div>".repeat(5)));
    }

    #[test]
    fn unclosed_paragraphs_and_items_do_not_count_as_depth() {
        let doc = "<p>a".repeat(100) + &"<li>b".repeat(100) + &"<tr><td>c".repeat(100);
        assert!(matches!(flatten_with_limit(&doc, 10), Cow::Borrowed(_)));
    }

    #[test]
    fn quoted_gt_and_comments_are_skipped() {
        let doc = "<div title=\"a>b\"><!-- <div><div><div> --><span>x</span></div>";
        assert!(matches!(flatten_with_limit(doc, 2), Cow::Borrowed(_)));
    }

    #[test]
    fn attributes_past_the_cap_are_removed_and_text_kept() {
        let attrs: String = (0..10).map(|i| format!(" a{i}=\"v {i}\"")).collect();
        let doc = format!("<div{attrs}>text</div><br{attrs}/><p id=x>y</p>");
        let (out, g) = guard(&doc, 100, 3);
        assert_eq!(
            out,
            "<div a0=\"v 0\" a1=\"v 1\" a2=\"v 2\" >text</div><br a0=\"v 0\" a1=\"v 1\" a2=\"v 2\" /><p id=x>y</p>"
        );
        assert_eq!(g, Guarded { deep: false, attrs: true, tags: false });
        let (same, g) = guard("<a href=x title='a>b' c d=e>z</a>", 100, 4);
        assert!(matches!(same, Cow::Borrowed(_)));
        assert_eq!(g, Guarded::default());
    }

    #[test]
    fn tags_past_the_budget_are_unwrapped_and_text_kept() {
        let doc = "<b>x</b>".repeat(2 * BASE_TAGS);
        let (out, g) = flatten_deep_nesting(&doc);
        assert!(g.tags && !g.deep && !g.attrs);
        let kept = out.matches("<b>").count();
        assert_eq!(kept, BASE_TAGS + doc.len() / BYTES_PER_TAG);
        assert_eq!(out.matches("</b>").count(), kept);
        assert!(kept < 2 * BASE_TAGS);
        assert_eq!(out.matches('x').count(), 2 * BASE_TAGS);
    }

    #[test]
    fn truncated_input_does_not_panic() {
        for s in ["<", "<d", "<div", "<div a=\"", "</", "<!--", "<!", "<?", "<script>", "<svg><p/", "<![CDATA["] {
            let _ = flatten_with_limit(s, 1);
        }
    }
}
