//! Identifiers in a query, and whether a chunk names them.
//!
//! A query such as `array_append` shares the sub-words `array` and `append` with half of any
//! programming manual, so BM25 finds chunks and their coverage can look convincing although the
//! identifier the user asked for is nowhere in the corpus. [`query_identifiers`] picks out the
//! identifier-like terms of a query; [`identifier_support`] says which of them a chunk text holds
//! as written. The hybrid rule lets lexical evidence support a hit only when every identifier of
//! the query is held by it; sub-word tokens still rank, they just do not vouch for the hit.
//!
//! What counts as an identifier (one white-space separated term, surrounding quotes and sentence
//! punctuation removed):
//!
//! | shape | example | what the chunk must hold |
//! |---|---|---|
//! | dotted, `::` or `:` path | `functools.lru_cache`, `std::mem::take`, `lists:map` | the path, or its last component |
//! | call | `sorted()`, `open(path)` | the name before `(` (its last component, if a path) |
//! | snake_case | `lru_cache`, `__init__`, `O_RDONLY` | the word |
//! | CamelCase | `shouldFlush`, `PQfnumber`, `HttpServer` | the word |
//! | option flag | `--with-pydebug`, `-j` | the flag without its dashes |
//! | environment variable | `$HOME`, `PYTHONPATH` (upper case, seven characters or more) | the name |
//!
//! "Holds" means a whole-word, case-insensitive occurrence: the match is neither preceded nor
//! followed by a letter, a digit or `_`, so `append` is held by `list.append(x)` but not by
//! `array_append`.

/// Most identifiers taken from one query (the first ones); a hostile query with thousands of
/// them would otherwise make every candidate's check cost thousands of text scans.
pub const MAX_QUERY_IDENTIFIERS: usize = 16;

/// The shape that made a query term an identifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdentifierKind {
    /// `a.b`, `a::b`.
    Path,
    /// `name()` or `name(args)`.
    Call,
    /// Contains `_` between word characters.
    Snake,
    /// Mixed case inside the word.
    Camel,
    /// `-x`, `--long-option`.
    Flag,
    /// `$NAME` or an upper-case word of seven or more characters.
    EnvVar,
}

/// One identifier found in a query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryIdentifier {
    /// The term as written, without surrounding punctuation.
    pub text: String,
    /// What a chunk must hold, lowercased: the whole name (`functools.lru_cache`).
    pub whole: String,
    /// Its last component, lowercased, when it differs from `whole` (`lru_cache`).
    pub last: Option<String>,
    /// Why it counts as an identifier.
    pub kind: IdentifierKind,
}

/// Which identifiers of a query a chunk holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdentifierSupport {
    /// The forms found (the whole name, or else its last component), one per held identifier.
    pub matched: Vec<String>,
    /// The identifiers (as written in the query) the chunk does not hold.
    pub missing: Vec<String>,
}

impl IdentifierSupport {
    /// Whether the chunk holds every identifier (true for a query without identifiers).
    pub fn complete(&self) -> bool {
        self.missing.is_empty()
    }
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Strip quotes, brackets and sentence punctuation around a term (not `()` right after a name).
fn trim_term(t: &str) -> &str {
    let t = t.trim_start_matches(['"', '\'', '`', '(', '[', '{', '<', '@', '*']);
    let mut t = t.trim_end_matches(|c: char| {
        matches!(c, '"' | '\'' | '`' | ',' | ';' | '?' | '!' | ':' | ']' | '}' | '>' | '*')
    });
    // A trailing full stop ends a sentence unless the term is a path that goes on.
    while let Some(s) = t.strip_suffix('.') {
        t = s;
    }
    t
}

/// The identifier-like terms of `query`, in order, without repeats.
///
/// ```
/// use ragsnap_lexical::query_identifiers;
/// let ids = query_identifiers("how does functools.lru_cache() differ from a plain dict?");
/// assert_eq!(ids.len(), 1);
/// assert_eq!(ids[0].whole, "functools.lru_cache");
/// assert_eq!(ids[0].last.as_deref(), Some("lru_cache"));
/// assert!(query_identifiers("how do I retry failed jobs?").is_empty());
/// ```
pub fn query_identifiers(query: &str) -> Vec<QueryIdentifier> {
    let mut out: Vec<QueryIdentifier> = Vec::new();
    for raw in query.split_whitespace() {
        if out.len() == MAX_QUERY_IDENTIFIERS {
            break;
        }
        let t = trim_term(raw);
        if let Some(id) = classify(t) {
            if !out.iter().any(|o| o.whole == id.whole) {
                out.push(id);
            }
        }
    }
    out
}

fn classify(t: &str) -> Option<QueryIdentifier> {
    if t.is_empty() || t.len() > 200 {
        return None;
    }
    // Option flags: -x, --long-name.
    if let Some(rest) = t.strip_prefix("--").or_else(|| t.strip_prefix('-')) {
        let ok = rest.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && !rest.ends_with('-');
        return ok.then(|| QueryIdentifier {
            text: t.to_string(),
            whole: rest.to_lowercase(),
            last: None,
            kind: IdentifierKind::Flag,
        });
    }
    // Environment variables written with `$`.
    if let Some(rest) = t.strip_prefix('$').map(|r| r.trim_start_matches('{').trim_end_matches('}')) {
        let ok = rest.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        return ok.then(|| QueryIdentifier {
            text: t.to_string(),
            whole: rest.to_lowercase(),
            last: None,
            kind: IdentifierKind::EnvVar,
        });
    }
    // A call: name( … ) — keep the name.
    let (name, call) = match t.find('(') {
        Some(i) if i > 0 && t.ends_with(')') => (&t[..i], true),
        Some(_) => return None,
        None => (t, false),
    };
    let name = name.trim_start_matches('@');
    // The name: words joined by `.` or `::`, every component a word.
    // `::` (Rust, C++), `.` and a single `:` (Erlang `lists:map`, `node:fs`) join components.
    let comps: Vec<&str> = name.split("::").flat_map(|p| p.split(['.', ':'])).collect();
    if comps.iter().any(|c| c.is_empty() || !c.chars().all(is_word)) {
        return None;
    }
    if !name.chars().any(|c| c.is_alphabetic()) {
        return None; // version numbers, 3.11
    }
    let last = comps.last().copied().unwrap_or(name);
    let whole = name.to_lowercase();
    let last_l = last.to_lowercase();
    let path = comps.len() > 1;
    let kind = if path {
        // `e.g`, `i.e`: two one-letter components are an abbreviation, not a path.
        if comps.iter().all(|c| c.chars().count() == 1) {
            return None;
        }
        IdentifierKind::Path
    } else if call {
        IdentifierKind::Call
    } else if is_snake(name) {
        IdentifierKind::Snake
    } else if is_camel(name) {
        IdentifierKind::Camel
    } else if is_env(name) {
        IdentifierKind::EnvVar
    } else {
        return None;
    };
    let kind = if call && path { IdentifierKind::Call } else { kind };
    Some(QueryIdentifier { text: t.to_string(), last: (path && last_l != whole).then_some(last_l), whole, kind })
}

fn is_snake(w: &str) -> bool {
    let inner = w.trim_matches('_');
    (inner.contains('_') && inner.split('_').filter(|s| !s.is_empty()).count() >= 2)
        || (w.starts_with("__") && w.ends_with("__") && inner.len() >= 2)
}

/// Lower then upper (`shouldFlush`), or two capitals then lower case after a capital start
/// (`PQfnumber`, `XMLHttp`), or an upper-case letter after the first lower-case run
/// (`HttpServer`).
fn is_camel(w: &str) -> bool {
    let c: Vec<char> = w.chars().collect();
    if c.len() < 3 || !c.iter().all(|c| c.is_alphanumeric()) {
        return false;
    }
    let lower_upper = c.windows(2).any(|p| p[0].is_lowercase() && p[1].is_uppercase());
    let upper_upper_lower = c.windows(3).any(|p| p[0].is_uppercase() && p[1].is_uppercase() && p[2].is_lowercase());
    lower_upper || (upper_upper_lower && c.iter().any(|c| c.is_lowercase()))
}

/// An upper-case word of at least seven characters (letters and digits): `PYTHONPATH`,
/// `LDFLAGS`. Shorter ones are usually acronyms used as words (`REST`, `JSON`, `HTTPS`); an
/// environment variable with `_` (`LD_LIBRARY_PATH`) is snake_case, one with `$` a variable.
fn is_env(w: &str) -> bool {
    w.chars().count() >= 7
        && w.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        && w.chars().filter(|c| c.is_ascii_uppercase()).count() >= 3
}

/// Whether `hay` (lowercased) holds `needle` (lowercased) as a whole word: not preceded or
/// followed by a letter, digit or `_`.
///
/// ```
/// use ragsnap_lexical::holds_word;
/// assert!(holds_word("call list.append(x) to add", "append"));
/// assert!(!holds_word("see array_append", "append"));
/// assert!(holds_word("see array_append", "array_append"));
/// ```
pub fn holds_word(hay: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return false;
    }
    let mut from = 0;
    while let Some(i) = hay[from..].find(needle) {
        let s = from + i;
        let e = s + needle.len();
        let before_ok = hay[..s].chars().next_back().is_none_or(|c| !is_word(c));
        let after_ok = hay[e..].chars().next().is_none_or(|c| !is_word(c));
        if before_ok && after_ok {
            return true;
        }
        from = s + hay[s..].chars().next().map_or(1, char::len_utf8);
    }
    false
}

/// Which of `ids` the chunk `text` holds (whole name first, else its last component).
pub fn identifier_support(text: &str, ids: &[QueryIdentifier]) -> IdentifierSupport {
    let mut s = IdentifierSupport::default();
    if ids.is_empty() {
        return s;
    }
    let hay = text.to_lowercase();
    for id in ids {
        if holds_word(&hay, &id.whole) {
            s.matched.push(id.whole.clone());
        } else if let Some(last) = id.last.as_deref().filter(|l| holds_word(&hay, l)) {
            s.matched.push(last.to_string());
        } else {
            s.missing.push(id.text.clone());
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use IdentifierKind::*;

    fn kinds(q: &str) -> Vec<(String, IdentifierKind)> {
        query_identifiers(q).into_iter().map(|i| (i.whole, i.kind)).collect()
    }

    #[test]
    fn every_shape_is_recognised() {
        assert_eq!(kinds("functools.lru_cache()"), [("functools.lru_cache".into(), Call)]);
        assert_eq!(kinds("what is os.path?"), [("os.path".into(), Path)]);
        assert_eq!(kinds("std::mem::take"), [("std::mem::take".into(), Path)]);
        assert_eq!(kinds("lists:map/2"), []);
        assert_eq!(kinds("lists:map"), [("lists:map".into(), Path)]);
        assert_eq!(kinds("see node:fs"), [("node:fs".into(), Path)]);
        assert_eq!(kinds("use sorted() here"), [("sorted".into(), Call)]);
        assert_eq!(kinds("lru_cache"), [("lru_cache".into(), Snake)]);
        assert_eq!(kinds("__init__"), [("__init__".into(), Snake)]);
        assert_eq!(kinds("O_RDONLY"), [("o_rdonly".into(), Snake)]);
        assert_eq!(kinds("shouldFlush"), [("shouldflush".into(), Camel)]);
        assert_eq!(kinds("PQfnumber"), [("pqfnumber".into(), Camel)]);
        assert_eq!(kinds("HttpServer"), [("httpserver".into(), Camel)]);
        assert_eq!(kinds("build with --with-pydebug"), [("with-pydebug".into(), Flag)]);
        assert_eq!(kinds("python -j 4"), [("j".into(), Flag)]);
        assert_eq!(kinds("is $HOME set"), [("home".into(), EnvVar)]);
        assert_eq!(kinds("PYTHONPATH"), [("pythonpath".into(), EnvVar)]);
        assert_eq!(kinds("\"codecs.BOM_UTF16_BE\","), [("codecs.bom_utf16_be".into(), Path)]);
    }

    #[test]
    fn ordinary_words_are_not_identifiers() {
        for q in [
            "how do I retry failed jobs?",
            "What is the capital of Australia?",
            "Python 3.11 release notes, e.g. the new parser.",
            "SQL and API docs",
            "listing jobs over the REST interface in JSON or HTTPS",
            "well-known - dash",
            "a sentence ends here. Then another",
            "Note: see http://example.com and ratio 3:4",
        ] {
            assert!(query_identifiers(q).is_empty(), "{q:?}: {:?}", query_identifiers(q));
        }
    }

    #[test]
    fn last_component_and_repeats() {
        let ids = query_identifiers("logging.handlers.MemoryHandler.shouldFlush() and shouldFlush");
        assert_eq!(ids.len(), 2);
        assert_eq!(ids[0].last.as_deref(), Some("shouldflush"));
        assert_eq!(ids[0].text, "logging.handlers.MemoryHandler.shouldFlush()");
        assert_eq!(query_identifiers("a_b a_b").len(), 1);
        let hostile: String = (0..10_000).map(|i| format!("x_{i} ")).collect();
        assert_eq!(query_identifiers(&hostile).len(), MAX_QUERY_IDENTIFIERS);
    }

    #[test]
    fn whole_words_only() {
        assert!(holds_word("x = array_append(a)", "array_append"));
        assert!(!holds_word("x = my_array_append(a)", "array_append"));
        assert!(!holds_word("appendix", "append"));
        assert!(holds_word("append", "append"));
        assert!(holds_word("größe append", "append"));
        assert!(!holds_word("", "a"));
        assert!(!holds_word("abc", ""));
    }

    #[test]
    fn support_takes_the_whole_name_or_its_last_component() {
        let ids = query_identifiers("colorsys.rgb_to_hsv() vs array_append");
        let s = identifier_support("Use rgb_to_hsv(r, g, b) to convert.", &ids);
        assert_eq!(s.matched, ["rgb_to_hsv"]);
        assert_eq!(s.missing, ["array_append"]);
        assert!(!s.complete());
        // Sub-words alone do not count.
        let s = identifier_support("Append items to an array.", &query_identifiers("array_append"));
        assert!(!s.complete());
        let s = identifier_support("", &[]);
        assert!(s.complete());
    }
}
