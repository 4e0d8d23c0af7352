//! Markdown helpers: escaping text so it cannot turn into block syntax, and
//! ingesting `.md` / `.txt` files.

use std::borrow::Cow;

/// Escape the start of a text line when it would otherwise be read as Markdown
/// block syntax (ATX heading, quote, list item, thematic break or setext
/// underline, code fence, HTML block, table row, link reference definition).
/// Anything else is left alone, so inline code and words like `--force` or
/// `_internal` stay as written.
pub(crate) fn escape_line_start(text: &str) -> Cow<'_, str> {
    if needs_escape(text) {
        let digits = text.bytes().take_while(u8::is_ascii_digit).count();
        let mut s = String::with_capacity(text.len() + 1);
        s.push_str(&text[..digits]);
        s.push('\\');
        s.push_str(&text[digits..]);
        Cow::Owned(s)
    } else {
        Cow::Borrowed(text)
    }
}

fn needs_escape(text: &str) -> bool {
    let bytes = text.as_bytes();
    let Some(&first) = bytes.first() else {
        return false;
    };
    let ws_or_end = |i: usize| bytes.get(i).is_none_or(|b| *b == b' ' || *b == b'\t');
    match first {
        b'#' => {
            let hashes = bytes.iter().take_while(|&&b| b == b'#').count();
            hashes <= 6 && ws_or_end(hashes)
        }
        b'>' | b'|' => true,
        b'-' | b'+' | b'*' | b'_' | b'=' => {
            let marker = matches!(first, b'-' | b'+' | b'*') && ws_or_end(1);
            let rule = bytes.iter().all(|&b| b == first || b == b' ' || b == b'\t')
                && (first == b'=' || first == b'-' || bytes.iter().filter(|&&b| b == first).count() >= 3);
            marker || rule
        }
        b'`' | b'~' => bytes.iter().take_while(|&&b| b == first).count() >= 3,
        b'<' => bytes.get(1).is_some_and(|b| b.is_ascii_alphabetic() || matches!(b, b'/' | b'!' | b'?')),
        b'[' => text.find("]:").is_some_and(|close| !text[1..close].contains(']')),
        b'0'..=b'9' => {
            let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
            digits <= 9 && matches!(bytes.get(digits), Some(b'.' | b')')) && ws_or_end(digits + 1)
        }
        _ => false,
    }
}

/// Heading text: a trailing `#` would be read as a closing sequence.
pub(crate) fn escape_heading(text: &str) -> Cow<'_, str> {
    match text.strip_suffix('#') {
        Some(head) => Cow::Owned(format!("{head}\\#")),
        None => Cow::Borrowed(text),
    }
}

/// A Markdown file as-is (line endings normalised), minus a leading YAML front
/// matter block whose `title:` becomes the title; else the first `# ` heading
/// is the title.
pub(crate) fn markdown_doc(text: &str) -> (Option<String>, String) {
    let text = normalize_newlines(text);
    let (front_title, body) = split_front_matter(&text);
    let title = front_title.or_else(|| first_atx_h1(body));
    (title, body.trim_matches('\n').to_owned() + "\n")
}

/// Plain text as Markdown paragraphs: blank lines separate paragraphs; each
/// line is trimmed and escaped so it cannot become Markdown syntax.
pub(crate) fn text_doc(text: &str) -> String {
    let text = normalize_newlines(text);
    let mut out = String::with_capacity(text.len() + 16);
    let mut blank_pending = false;
    for line in text.split('\n') {
        let line = line.trim();
        if line.is_empty() {
            blank_pending = true;
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
            if blank_pending {
                out.push('\n');
            }
        }
        blank_pending = false;
        out.push_str(&escape_line_start(line));
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

fn normalize_newlines(text: &str) -> Cow<'_, str> {
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    if text.contains('\r') {
        Cow::Owned(text.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        Cow::Borrowed(text)
    }
}

/// `---\ntitle: X\n...\n---\n` at the very start.
fn split_front_matter(text: &str) -> (Option<String>, &str) {
    let Some(rest) = text.strip_prefix("---\n") else {
        return (None, text);
    };
    let mut offset = 0;
    let mut title = None;
    for line in rest.split_inclusive('\n') {
        let trimmed = line.trim_end();
        if trimmed == "---" || trimmed == "..." {
            return (title, &rest[offset + line.len()..]);
        }
        if let Some(v) = trimmed.strip_prefix("title:") {
            let v = v.trim().trim_matches(['"', '\'']).trim();
            if !v.is_empty() {
                title = Some(v.to_owned());
            }
        }
        offset += line.len();
        if offset > 64 * 1024 {
            break;
        }
    }
    (None, text)
}

fn first_atx_h1(text: &str) -> Option<String> {
    let mut in_fence = false;
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence || line.len() - t.len() > 3 {
            continue;
        }
        if let Some(h) = t.strip_prefix("# ") {
            let h = h.trim().trim_end_matches('#').trim();
            if !h.is_empty() {
                return Some(h.to_owned());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_block_syntax_only_at_line_start() {
        assert_eq!(escape_line_start("# of users"), "\\# of users");
        assert_eq!(escape_line_start("1. first"), "1\\. first");
        assert_eq!(escape_line_start("2026) was"), "2026\\) was");
        assert_eq!(escape_line_start("2026)was"), "2026)was");
        assert_eq!(escape_line_start("plain - text"), "plain - text");
        assert_eq!(escape_line_start("1.5 is a number"), "1.5 is a number");
        assert_eq!(escape_line_start("`code` first"), "`code` first");
        assert_eq!(escape_line_start("```"), "\\```");
        assert_eq!(escape_line_start("--force is needed"), "--force is needed");
        assert_eq!(escape_line_start("- item"), "\\- item");
        assert_eq!(escape_line_start("***"), "\\***");
        assert_eq!(escape_line_start("#hashtag"), "#hashtag");
        assert_eq!(escape_line_start("<div> text"), "\\<div> text");
        assert_eq!(escape_line_start("< 5 ms"), "< 5 ms");
        assert_eq!(escape_line_start("[1]: http://x"), "\\[1]: http://x");
        assert_eq!(escape_line_start("[1] and [2]: x"), "[1] and [2]: x");
        assert_eq!(escape_heading("Using C#"), "Using C\\#");
    }

    #[test]
    fn front_matter_gives_the_title() {
        let (title, body) = markdown_doc("---\ntitle: \"Setup\"\nweight: 3\n---\n\n# Setup guide\n\nText\r\n");
        assert_eq!(title.as_deref(), Some("Setup"));
        assert_eq!(body, "# Setup guide\n\nText\n");
        let (title, _) = markdown_doc("Intro\n\n# Real title\n");
        assert_eq!(title.as_deref(), Some("Real title"));
    }

    #[test]
    fn text_paragraphs() {
        assert_eq!(text_doc("  a\n# b\r\n\n\n\nc  \n"), "a\n\\# b\n\nc\n");
        assert_eq!(text_doc("\n \n"), "");
    }
}
