//! Integration tests of the lexical index: identifier queries, persistence, hostile payloads,
//! determinism, and the tokenizer's invariants (property tests).

use proptest::prelude::*;
use ragsnap_lexical::{
    fuse, tokenize, FusionConfig, HybridFloor, LexicalError, LexicalIndex, LEXICAL_VERSION, MAX_TOKEN_BYTES,
};

const DOCS: &[&str] = &[
    "functools > lru_cache\n\n@functools.lru_cache(user_function) Decorator to wrap a function with a memoizing callable.",
    "libpq > Retrieving Query Result Information\n\nPQfnumber Returns the column number associated with the given column name.",
    "SQL Commands > VACUUM\n\nVACUUM FULL rewrites the entire contents of the table into a new disk file.",
    "os.path > Functions\n\nos.path.join(path, *paths) joins one or more path segments intelligently.",
    "Tutorial > Caching\n\nA cache keeps results around. Caching speeds up repeated calls.",
    "C API > Objects\n\nPyObject_GetAttr(PyObject *o, PyObject *attr_name) retrieves an attribute named attr_name.",
    "Tutorial > Loops\n\nThe for statement iterates over the items of any sequence, in the order they appear.",
];

fn top(ix: &LexicalIndex, q: &str) -> u32 {
    ix.search(q, 3).first().map(|h| h.0).unwrap_or(u32::MAX)
}

#[test]
fn identifier_queries_find_their_chunk() {
    let ix = LexicalIndex::build(DOCS);
    for (q, row) in [
        ("lru_cache", 0),
        ("functools.lru_cache()", 0),
        ("how do I use lru cache", 0),
        ("PQfnumber", 1),
        ("pqfnumber column", 1),
        ("VACUUM FULL", 2),
        ("os.path.join", 3),
        ("path.join", 3),
        ("PyObject_GetAttr", 5),
        ("get attr of a py object", 5),
        ("getattr", 5),
    ] {
        assert_eq!(top(&ix, q), row, "query {q:?}: {:?}", ix.search(q, 3));
    }
}

#[test]
fn empty_and_unknown_queries() {
    let ix = LexicalIndex::build(DOCS);
    assert!(ix.search("", 5).is_empty());
    assert!(ix.search("?!", 5).is_empty());
    assert!(ix.search("zyzzyva", 5).is_empty());
    assert!(ix.search("cache", 0).is_empty());
    let empty = LexicalIndex::build(&[]);
    assert!(empty.is_empty());
    assert!(empty.search("cache", 5).is_empty());
    assert_eq!(LexicalIndex::from_bytes(&empty.to_bytes()).unwrap().len(), 0);
}

#[test]
fn coverage_refuses_off_topic_questions() {
    let ix = LexicalIndex::build(DOCS);
    let floor = HybridFloor::with_dense(0.45);
    // Words the corpus never holds weigh in at the largest IDF: low coverage.
    let hits = ix.search_hits("Who won the 1998 World Cup?", 10);
    assert!(hits.iter().all(|h| !floor.keep(Some(0.2), Some(h.coverage))), "{hits:?}");
    // An identifier the corpus defines covers the query fully.
    let hits = ix.search_hits("functools.lru_cache()", 10);
    assert_eq!(hits[0].row, 0);
    assert!(hits[0].coverage > 0.99, "{hits:?}");
    // Over-qualified identifiers are not penalised for compounds the corpus lacks.
    let hits = ix.search_hits("posixpath.os.path.join", 10);
    assert_eq!(hits[0].row, 3);
    assert!(hits[0].coverage >= floor.lexical, "{hits:?}");
}

#[test]
fn long_hostile_queries_stay_fast() {
    let ix = LexicalIndex::build(DOCS);
    let q: String = (0..50_000).map(|i| format!("w{i} ")).collect();
    let t = std::time::Instant::now();
    assert!(ix.search(&q, 5).is_empty());
    assert!(t.elapsed() < std::time::Duration::from_secs(5), "{:?}", t.elapsed());
    let q = "cache ".repeat(100_000);
    let mut rows: Vec<u32> = ix.search(&q, 5).iter().map(|h| h.0).collect();
    rows.sort_unstable();
    assert_eq!(rows, [0, 4]);
}

#[test]
fn round_trip_and_determinism() {
    let a = LexicalIndex::build(DOCS);
    let b = LexicalIndex::build(DOCS);
    assert_eq!(a.to_bytes(), b.to_bytes());
    let c = LexicalIndex::from_bytes(&a.to_bytes()).unwrap();
    assert_eq!(c, a);
    assert_eq!(c.len(), DOCS.len());
    for q in ["cache", "VACUUM FULL", "PyObject_GetAttr", "the order"] {
        assert_eq!(a.search_hits(q, 10), c.search_hits(q, 10));
    }
    // Ties are broken by row, so equal documents come back in row order.
    let same = LexicalIndex::build(&["alpha beta", "alpha beta", "alpha beta"]);
    assert_eq!(same.search("alpha", 3).iter().map(|h| h.0).collect::<Vec<_>>(), [0, 1, 2]);
}

#[test]
fn hostile_payloads_are_errors() {
    let good = LexicalIndex::build(DOCS).to_bytes();
    // Every truncation.
    for n in 0..good.len() {
        assert!(LexicalIndex::from_bytes(&good[..n]).is_err(), "truncated at {n}");
    }
    // Trailing bytes.
    let mut long = good.clone();
    long.push(0);
    assert!(LexicalIndex::from_bytes(&long).is_err());
    // Another version.
    let mut v = good.clone();
    v[..4].copy_from_slice(&(LEXICAL_VERSION + 1).to_le_bytes());
    assert!(matches!(LexicalIndex::from_bytes(&v), Err(LexicalError::UnsupportedVersion { .. })));
    // Huge counts must not allocate.
    let mut huge = good.clone();
    huge[16..24].copy_from_slice(&(u32::MAX as u64).to_le_bytes());
    assert!(LexicalIndex::from_bytes(&huge).is_err());
    let mut huge = good.clone();
    huge[24..32].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(LexicalIndex::from_bytes(&huge).is_err());
    // NaN parameters.
    let mut nan = good;
    nan[8..12].copy_from_slice(&f32::NAN.to_le_bytes());
    assert!(LexicalIndex::from_bytes(&nan).is_err());
}

#[test]
fn every_single_bit_flip_is_an_error_or_a_valid_index() {
    let good = LexicalIndex::build(&DOCS[..3]).to_bytes();
    for i in 0..good.len() * 8 {
        let mut b = good.clone();
        b[i / 8] ^= 1 << (i % 8);
        if let Ok(ix) = LexicalIndex::from_bytes(&b) {
            // Whatever parsed must be searchable without panicking.
            let _ = ix.search_hits("cache vacuum pqfnumber", 5);
        }
    }
}

#[test]
fn index_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<LexicalIndex>();
}

#[test]
fn fusion_with_real_lists() {
    let ix = LexicalIndex::build(DOCS);
    let lexical = ix.search("lru_cache decorator", 5);
    let dense = [(4, 0.52), (0, 0.48), (6, 0.2)];
    let fused = fuse(&dense, &lexical, &FusionConfig::default());
    assert_eq!(fused[0].row, 0, "{fused:?}");
    let mut rows: Vec<u32> = fused.iter().map(|f| f.row).collect();
    rows.sort_unstable();
    rows.dedup();
    assert_eq!(rows.len(), fused.len());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn from_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = LexicalIndex::from_bytes(&bytes);
    }

    #[test]
    fn from_bytes_never_panics_on_mutated_payloads(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut b = LexicalIndex::build(&DOCS[..4]).to_bytes();
        for (i, v) in edits {
            let at = i.index(b.len());
            b[at] = v;
        }
        if let Ok(ix) = LexicalIndex::from_bytes(&b) {
            let _ = ix.search_hits("cache os.path.join PQfnumber", 5);
        }
    }

    #[test]
    fn tokens_are_lowercase_bounded_and_present(text in "\\PC{0,200}") {
        for t in tokenize(&text) {
            prop_assert!(!t.is_empty() && t.len() <= MAX_TOKEN_BYTES, "{t:?}");
            prop_assert_eq!(t.to_lowercase(), t.clone());
            prop_assert!(!t.chars().any(char::is_whitespace), "{:?}", t);
            // Every token's words appear in the lowercased text.
            let lower: String = text.chars().flat_map(char::to_lowercase).collect();
            for w in t.split(['.', '-', ':']).filter(|w| !w.is_empty()) {
                prop_assert!(lower.contains(w), "{w:?} of {t:?} not in {lower:?}");
            }
        }
    }

    #[test]
    fn identifiers_are_kept_whole_and_split(parts in proptest::collection::vec("[a-z]{2,8}", 1..5)) {
        let ident = parts.join("_");
        let toks = tokenize(&format!("call {ident}() now"));
        prop_assert!(toks.contains(&ident));
        for p in &parts {
            prop_assert!(toks.contains(p), "{p} missing from {toks:?}");
        }
        let dotted = format!("pkg.{ident}");
        prop_assert!(tokenize(&dotted).contains(&dotted));
    }

    #[test]
    fn tokenize_is_a_function_of_case_insensitive_words(text in "[a-zA-Z_ .]{0,80}") {
        // Same input, same output; and the index finds every document by any of its tokens.
        prop_assert_eq!(tokenize(&text), tokenize(&text));
        let ix = LexicalIndex::build(&[text.as_str()]);
        for t in tokenize(&text) {
            prop_assert_eq!(ix.search(&t, 1).first().map(|h| h.0), Some(0));
        }
    }

    #[test]
    fn round_trip_random_corpora(texts in proptest::collection::vec("[a-zA-Z0-9_ .:-]{0,60}", 0..12)) {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let ix = LexicalIndex::build(&refs);
        let back = LexicalIndex::from_bytes(&ix.to_bytes()).unwrap();
        prop_assert_eq!(&back, &ix);
        prop_assert_eq!(back.to_bytes(), ix.to_bytes());
    }
}
