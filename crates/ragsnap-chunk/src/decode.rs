//! Bytes to text: byte-order mark, then (for HTML) a `<meta>` charset sniffed in
//! the first 1024 bytes, else UTF-8. Malformed input is replaced, never rejected.

use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};

/// How many leading bytes are searched for a `<meta>` charset declaration.
const SNIFF_BYTES: usize = 1024;

/// Text decoded from a file plus the warnings decoding produced.
pub(crate) struct Decoded {
    pub text: String,
    pub warnings: Vec<String>,
    /// Whether a UTF-16 byte-order mark selected the encoding (NUL bytes are then legal).
    pub utf16: bool,
}

/// Decode `bytes`. With `sniff_html`, a `<meta charset>` or `http-equiv`
/// content-type declaration in the first 1024 bytes is honoured when no BOM is present.
pub(crate) fn decode(bytes: &[u8], sniff_html: bool) -> Decoded {
    let (encoding, bom_len) = match Encoding::for_bom(bytes) {
        Some((enc, len)) => (enc, len),
        None => {
            let sniffed = if sniff_html { sniff_meta_charset(bytes) } else { None };
            (sniffed.unwrap_or(UTF_8), 0)
        }
    };
    let body = &bytes[bom_len..];
    let utf16 = bom_len > 0 && encoding != UTF_8;
    let mut warnings = Vec::new();
    let text = if encoding == UTF_8 {
        match std::str::from_utf8(body) {
            Ok(s) => s.to_owned(),
            Err(_) => {
                warnings.push("invalid UTF-8 replaced with U+FFFD".to_owned());
                String::from_utf8_lossy(body).into_owned()
            }
        }
    } else {
        let (text, had_errors) = encoding.decode_without_bom_handling(body);
        if had_errors {
            warnings.push(format!("invalid {} replaced with U+FFFD", encoding.name()));
        }
        text.into_owned()
    };
    Decoded { text, warnings, utf16 }
}

/// Find a charset declared by a `<meta>` tag in the first [`SNIFF_BYTES`] bytes.
///
/// A simplified version of the HTML "prescan": `<meta charset=X>` or
/// `<meta http-equiv="content-type" content="...; charset=X">`. As the HTML
/// standard requires, a declared UTF-16 means UTF-8 and `x-user-defined` means
/// windows-1252.
pub(crate) fn sniff_meta_charset(bytes: &[u8]) -> Option<&'static Encoding> {
    let head = &bytes[..bytes.len().min(SNIFF_BYTES)];
    let mut pos = 0;
    while let Some(off) = find_ci(&head[pos..], b"<meta") {
        let start = pos + off + 5;
        // The tag must end the name here (`<meta ` / `<meta/`), not be `<metadata>`.
        match head.get(start) {
            Some(b) if b.is_ascii_whitespace() || *b == b'/' => {}
            _ => {
                pos = start;
                continue;
            }
        }
        let (attrs, end) = parse_attributes(head, start);
        pos = end;
        let mut charset = None;
        let mut http_equiv_ct = false;
        let mut content = None;
        for (name, value) in attrs {
            match name.as_str() {
                "charset" if charset.is_none() => charset = Some(value),
                "http-equiv" => http_equiv_ct = value.eq_ignore_ascii_case("content-type"),
                "content" if content.is_none() => content = Some(value),
                _ => {}
            }
        }
        let label =
            charset.or_else(|| if http_equiv_ct { content.and_then(|c| charset_from_content(&c)) } else { None });
        if let Some(label) = label {
            if let Some(enc) = Encoding::for_label(label.trim().as_bytes()) {
                let enc = if enc == encoding_rs::UTF_16LE || enc == encoding_rs::UTF_16BE {
                    UTF_8
                } else if enc == encoding_rs::X_USER_DEFINED {
                    WINDOWS_1252
                } else {
                    enc
                };
                return Some(enc);
            }
        }
    }
    None
}

/// `text/html; charset=ISO-8859-1` → `ISO-8859-1`.
fn charset_from_content(content: &str) -> Option<String> {
    let lower = content.to_ascii_lowercase();
    let at = lower.find("charset")?;
    let rest = content[at + 7..].trim_start();
    let rest = rest.strip_prefix('=')?.trim_start();
    let rest = rest.trim_start_matches(['"', '\'']);
    let end = rest.find(|c: char| c == ';' || c == '"' || c == '\'' || c.is_whitespace()).unwrap_or(rest.len());
    (end > 0).then(|| rest[..end].to_owned())
}

/// Parse `name=value` attributes from `bytes[start..]` up to the closing `>`.
/// Returns the attributes (names lowercased) and the position after the tag.
fn parse_attributes(bytes: &[u8], start: usize) -> (Vec<(String, String)>, usize) {
    let mut attrs = Vec::new();
    let mut i = start;
    let n = bytes.len();
    loop {
        while i < n && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        if i >= n || bytes[i] == b'>' {
            return (attrs, (i + 1).min(n));
        }
        let name_start = i;
        while i < n && !bytes[i].is_ascii_whitespace() && !matches!(bytes[i], b'=' | b'>' | b'/') {
            i += 1;
        }
        let name = String::from_utf8_lossy(&bytes[name_start..i]).to_ascii_lowercase();
        while i < n && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < n && bytes[i] == b'=' {
            i += 1;
            while i < n && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < n && (bytes[i] == b'"' || bytes[i] == b'\'') {
                let quote = bytes[i];
                i += 1;
                let v_start = i;
                while i < n && bytes[i] != quote {
                    i += 1;
                }
                value = String::from_utf8_lossy(&bytes[v_start..i]).into_owned();
                i = (i + 1).min(n);
            } else {
                let v_start = i;
                while i < n && !bytes[i].is_ascii_whitespace() && bytes[i] != b'>' {
                    i += 1;
                }
                value = String::from_utf8_lossy(&bytes[v_start..i]).into_owned();
            }
        }
        if !name.is_empty() {
            attrs.push((name, value));
        }
    }
}

/// Case-insensitive search for an ASCII `needle`.
fn find_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_charset_forms() {
        assert_eq!(sniff_meta_charset(b"<meta charset=\"iso-8859-1\">"), Some(WINDOWS_1252));
        assert_eq!(sniff_meta_charset(b"<META CHARSET=latin1>"), Some(WINDOWS_1252));
        let http = b"<meta http-equiv=\"Content-Type\" content=\"text/html; charset=Shift_JIS\">";
        assert_eq!(sniff_meta_charset(http), Some(encoding_rs::SHIFT_JIS));
        assert_eq!(sniff_meta_charset(b"<meta charset=utf-16>"), Some(UTF_8));
        assert_eq!(sniff_meta_charset(b"<metadata charset=latin1>"), None);
        assert_eq!(sniff_meta_charset(b"<meta name=x content=y>"), None);
        assert_eq!(sniff_meta_charset(b"<meta charset=bogus>"), None);
    }

    #[test]
    fn meta_after_1024_bytes_is_ignored() {
        let mut doc = vec![b' '; 1100];
        doc.extend_from_slice(b"<meta charset=latin1>");
        assert_eq!(sniff_meta_charset(&doc), None);
    }

    #[test]
    fn bom_wins_and_utf16_is_flagged() {
        let mut bytes = vec![0xFF, 0xFE];
        for u in "hé".encode_utf16() {
            bytes.extend_from_slice(&u.to_le_bytes());
        }
        let d = decode(&bytes, true);
        assert_eq!(d.text, "hé");
        assert!(d.utf16);
        assert!(d.warnings.is_empty());
    }

    #[test]
    fn invalid_utf8_is_replaced_with_a_warning() {
        let d = decode(b"ab\xFFcd", false);
        assert_eq!(d.text, "ab\u{FFFD}cd");
        assert_eq!(d.warnings.len(), 1);
    }

    #[test]
    fn truncated_tags_do_not_panic() {
        for s in [
            &b"<meta"[..],
            b"<meta ",
            b"<meta charset=",
            b"<meta charset=\"",
            b"<meta http-equiv=content-type content=",
        ] {
            let _ = sniff_meta_charset(s);
        }
    }
}
