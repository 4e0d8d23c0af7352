//! The tokenizer: identifiers are kept whole *and* split into the parts a person would type.
//!
//! A text is cut into **words** (maximal runs of alphanumeric characters and `_`). Words joined
//! by `.`, `::` or `-` with no white space around the joiner form a **chain**
//! (`functools.lru_cache`, `std::mem::take`, `utf-8`, `python3.11-doc`). For every chain the
//! tokenizer emits, lowercased and in this order:
//!
//! 1. compounds: every run of 2 to [`MAX_WINDOW`] consecutive words of the chain, as written
//!    (`os.path.join` → `os.path`, `os.path.join`, `path.join`), and the whole chain when it is
//!    longer than that;
//! 2. each word (`functools`, `lru_cache`);
//! 3. the word's parts, when it has more than one or the part differs from the word: the
//!    `_`-separated segments (`PyObject_GetAttr` → `pyobject`, `getattr`; `__init__` → `init`),
//!    then each segment's camel-case and letter/digit pieces (`PyObject` → `py`, `object`;
//!    `sha256` → `sha`, `256`). Pieces of one character are dropped; whole words of one character
//!    are kept.
//!
//! Tokens longer than [`MAX_TOKEN_BYTES`] are dropped (their parts are still emitted). The same
//! function tokenizes documents and queries, so `lru_cache`, `lru cache`, `functools.lru_cache()`
//! and `@lru_cache` all meet on the token `lru_cache` or its parts.

/// Longest token kept, in bytes.
pub const MAX_TOKEN_BYTES: usize = 64;
/// Longest run of chained words emitted as one compound token (besides the whole chain).
pub const MAX_WINDOW: usize = 4;

/// What a token is, for the floor's coverage measure (see [`crate::LexicalIndex::search_hits`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// Several words of a chain (`functools.lru_cache`).
    Compound,
    /// One word as written (`lru_cache`).
    Word,
    /// A piece of a word (`lru`, `cache`).
    Part,
}

/// Tokenize `text`: identifiers whole, their compounds and their parts, lowercased, in text order.
///
/// ```
/// let t = ragsnap_lexical::tokenize("Use functools.lru_cache()!");
/// assert_eq!(t, ["use", "functools.lru_cache", "functools", "lru_cache", "lru", "cache"]);
/// ```
pub fn tokenize(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for_each_token(text, |t, _| out.push(t.to_string()));
    out
}

#[inline]
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Call `f` with every token of `text` (lowercased) and its kind. Allocation-free apart from
/// one reused buffer, so index builds stay fast.
pub(crate) fn for_each_token(text: &str, mut f: impl FnMut(&str, TokenKind)) {
    let mut buf = String::new();
    let mut words: Vec<(usize, usize)> = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < text.len() {
        let c = text[i..].chars().next().expect("in bounds");
        if !is_word_char(c) {
            i += c.len_utf8();
            continue;
        }
        // A chain: word (joiner word)*.
        words.clear();
        loop {
            let start = i;
            while i < text.len() {
                let c = text[i..].chars().next().expect("in bounds");
                if !is_word_char(c) {
                    break;
                }
                i += c.len_utf8();
            }
            words.push((start, i));
            let joiner = match bytes.get(i) {
                Some(b'.') | Some(b'-') => 1,
                Some(b':') if bytes.get(i + 1) == Some(&b':') => 2,
                _ => 0,
            };
            if joiner == 0 {
                break;
            }
            match text.get(i + joiner..).and_then(|r| r.chars().next()) {
                Some(c) if is_word_char(c) => i += joiner,
                _ => break,
            }
        }
        emit_chain(text, &words, &mut buf, &mut f);
    }
}

fn emit(s: &str, kind: TokenKind, buf: &mut String, f: &mut impl FnMut(&str, TokenKind)) {
    if s.is_empty() || s.len() > MAX_TOKEN_BYTES {
        return;
    }
    buf.clear();
    if s.is_ascii() {
        buf.push_str(s);
        buf.make_ascii_lowercase();
    } else {
        buf.extend(s.chars().flat_map(char::to_lowercase));
        if buf.len() > MAX_TOKEN_BYTES {
            return;
        }
    }
    f(buf, kind);
}

fn emit_chain(text: &str, words: &[(usize, usize)], buf: &mut String, f: &mut impl FnMut(&str, TokenKind)) {
    let n = words.len();
    if n > 1 {
        for start in 0..n {
            for len in 2..=MAX_WINDOW.min(n - start) {
                emit(&text[words[start].0..words[start + len - 1].1], TokenKind::Compound, buf, f);
            }
        }
        if n > MAX_WINDOW {
            emit(&text[words[0].0..words[n - 1].1], TokenKind::Compound, buf, f);
        }
    }
    for &(s, e) in words {
        let word = &text[s..e];
        emit(word, TokenKind::Word, buf, f);
        emit_parts(word, buf, f);
    }
}

/// `_` segments, then camel-case / letter-digit pieces of each segment.
fn emit_parts(word: &str, buf: &mut String, f: &mut impl FnMut(&str, TokenKind)) {
    let segments = || word.split('_').filter(|s| !s.is_empty());
    let Some(first) = segments().next() else { return };
    if first != word {
        for seg in segments() {
            emit(seg, TokenKind::Part, buf, f);
        }
    }
    for seg in segments() {
        let pieces = pieces(seg);
        if pieces.len() > 1 {
            for (s, e) in pieces {
                let p = &seg[s..e];
                if p.chars().nth(1).is_some() {
                    emit(p, TokenKind::Part, buf, f);
                }
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Upper,
    Lower,
    Digit,
    Other,
}

fn class(c: char) -> Class {
    if c.is_uppercase() {
        Class::Upper
    } else if c.is_lowercase() {
        Class::Lower
    } else if c.is_numeric() {
        Class::Digit
    } else {
        Class::Other
    }
}

/// Byte ranges of the camel-case and letter/digit pieces of `seg`: `getAttr` → get|Attr,
/// `XMLHttpRequest` → XML|Http|Request, `sha256` → sha|256.
fn pieces(seg: &str) -> Vec<(usize, usize)> {
    let chars: Vec<(usize, char)> = seg.char_indices().collect();
    let mut out = Vec::new();
    let mut start = 0;
    for k in 1..chars.len() {
        let (prev, cur) = (class(chars[k - 1].1), class(chars[k].1));
        let next = chars.get(k + 1).map(|&(_, c)| class(c));
        let boundary = match (prev, cur) {
            (Class::Lower, Class::Upper) => true,
            (Class::Upper, Class::Upper) => next == Some(Class::Lower),
            (Class::Digit, Class::Upper | Class::Lower) | (Class::Upper | Class::Lower, Class::Digit) => true,
            (a, b) => (a == Class::Other) != (b == Class::Other),
        };
        if boundary {
            out.push((start, chars[k].0));
            start = chars[k].0;
        }
    }
    out.push((start, seg.len()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<String> {
        tokenize(s)
    }

    #[test]
    fn identifiers_whole_and_split() {
        assert_eq!(toks("lru_cache"), ["lru_cache", "lru", "cache"]);
        assert_eq!(toks("functools.lru_cache()"), ["functools.lru_cache", "functools", "lru_cache", "lru", "cache"]);
        assert_eq!(toks("PQfnumber"), ["pqfnumber", "qfnumber"]);
        assert_eq!(
            toks("PyObject_GetAttr"),
            ["pyobject_getattr", "pyobject", "getattr", "py", "object", "get", "attr"]
        );
        assert_eq!(toks("__init__"), ["__init__", "init"]);
        assert_eq!(toks("XMLHttpRequest"), ["xmlhttprequest", "xml", "http", "request"]);
        assert_eq!(toks("sha256"), ["sha256", "sha", "256"]);
        assert_eq!(toks("VACUUM FULL"), ["vacuum", "full"]);
    }

    #[test]
    fn chains() {
        assert_eq!(toks("os.path.join"), ["os.path", "os.path.join", "path.join", "os", "path", "join"]);
        assert_eq!(toks("std::mem::take"), ["std::mem", "std::mem::take", "mem::take", "std", "mem", "take"]);
        assert_eq!(toks("--with-pydebug"), ["with-pydebug", "with", "pydebug"]);
        // Sentence punctuation is not a joiner.
        assert_eq!(toks("a cache. Then"), ["a", "cache", "then"]);
        assert_eq!(toks("x.-y"), ["x", "y"]);
        let long = toks("a.b.c.d.e.f");
        assert!(long.contains(&"a.b.c.d.e.f".to_string()));
        assert!(long.contains(&"c.d.e.f".to_string()));
        assert!(!long.contains(&"b.c.d.e.f".to_string()));
    }

    #[test]
    fn unicode_and_limits() {
        assert_eq!(toks("Größe ÉTÉ"), ["größe", "été"]);
        assert_eq!(toks("日本語のテキスト"), ["日本語のテキスト"]);
        let long = "x".repeat(MAX_TOKEN_BYTES + 1);
        assert!(toks(&long).is_empty());
        assert_eq!(toks(&format!("{long}_ok")), ["ok"]);
        assert!(toks("  ... !!! ").is_empty());
        assert!(toks("").is_empty());
    }

    #[test]
    fn kinds() {
        let mut seen = Vec::new();
        for_each_token("functools.lru_cache", |t, k| seen.push((t.to_string(), k)));
        let kinds: Vec<TokenKind> = seen.iter().map(|x| x.1).collect();
        use TokenKind::*;
        assert_eq!(kinds, [Compound, Word, Word, Part, Part]);
    }
}
