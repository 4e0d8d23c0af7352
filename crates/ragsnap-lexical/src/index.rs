//! The inverted index: build, BM25 search, and the payload format.

use crate::tokenize::{for_each_token, TokenKind, MAX_TOKEN_BYTES};
use crate::{LexicalError, Result, LEXICAL_VERSION};
use std::collections::HashMap;

/// BM25 parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bm25Params {
    /// Term-frequency saturation (default 1.2).
    pub k1: f32,
    /// Length normalisation, 0 (none) to 1 (full) (default 0.75).
    pub b: f32,
}

impl Default for Bm25Params {
    fn default() -> Self {
        Bm25Params { k1: 1.2, b: 0.75 }
    }
}

impl Bm25Params {
    fn is_valid(&self) -> bool {
        self.k1.is_finite() && (0.0..=100.0).contains(&self.k1) && self.b.is_finite() && (0.0..=1.0).contains(&self.b)
    }
}

/// One lexical hit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LexicalHit {
    /// Chunk row.
    pub row: u32,
    /// BM25 score (unbounded; only comparable within one query).
    pub score: f32,
    /// Share of the query's IDF mass this row contains, 0 to 1: the sum of the IDF of the query
    /// tokens the row holds, over the sum of the IDF of all query tokens, where a query *word*
    /// the corpus never contains counts at the largest possible IDF (compounds and parts of
    /// words the corpus lacks count nothing: `asyncio.loop.connect_write_pipe` is not penalised
    /// because the page only ever writes `loop.connect_write_pipe`). Comparable across queries;
    /// it is what the hybrid floor tests (see [`crate::HybridFloor`]).
    pub coverage: f32,
}

/// A BM25 index over the chunk texts of one snapshot. Row `i` is chunk row `i`. `Send + Sync`;
/// searching takes `&self`.
#[derive(Clone, PartialEq)]
pub struct LexicalIndex {
    params: Bm25Params,
    doc_len: Vec<u32>,
    /// Sorted, distinct terms, concatenated; `term_end[i]` is where term `i` ends.
    term_bytes: String,
    term_end: Vec<usize>,
    /// Postings of term `i`: `post_doc/post_tf[post_start[i]..post_start[i + 1]]`, rows ascending.
    post_start: Vec<usize>,
    post_doc: Vec<u32>,
    post_tf: Vec<u32>,
    /// Derived at build/load: `k1 * (1 - b + b * len / avg_len)` per row.
    norm: Vec<f32>,
}

impl std::fmt::Debug for LexicalIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LexicalIndex")
            .field("rows", &self.doc_len.len())
            .field("terms", &self.term_end.len())
            .field("postings", &self.post_doc.len())
            .field("params", &self.params)
            .finish()
    }
}

impl LexicalIndex {
    /// Index `texts` with the default BM25 parameters; row `i` is `texts[i]`.
    ///
    /// # Panics
    /// With more than `u32::MAX` texts.
    pub fn build(texts: &[&str]) -> Self {
        Self::build_with(texts, Bm25Params::default())
    }

    /// Index the texts of `chunks` (the chunk table's order).
    pub fn from_chunks(chunks: &[ragsnap_core::Chunk]) -> Self {
        let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
        Self::build(&texts)
    }

    /// Index `texts` with `params`.
    ///
    /// # Panics
    /// With more than `u32::MAX` texts, or parameters outside `0 ≤ k1 ≤ 100`, `0 ≤ b ≤ 1`.
    pub fn build_with(texts: &[&str], params: Bm25Params) -> Self {
        assert!(params.is_valid(), "BM25 parameters out of range: {params:?}");
        assert!(u32::try_from(texts.len()).is_ok(), "more than u32::MAX texts");
        let mut vocab: HashMap<String, u32> = HashMap::new();
        let mut postings: Vec<Vec<(u32, u32)>> = Vec::new();
        let mut doc_len = Vec::with_capacity(texts.len());
        let mut ids: Vec<u32> = Vec::new();
        for (row, text) in texts.iter().enumerate() {
            ids.clear();
            for_each_token(text, |t, _| {
                let id = match vocab.get(t) {
                    Some(&id) => id,
                    None => {
                        let id = postings.len() as u32;
                        vocab.insert(t.to_string(), id);
                        postings.push(Vec::new());
                        id
                    }
                };
                ids.push(id);
            });
            doc_len.push(u32::try_from(ids.len()).unwrap_or(u32::MAX));
            ids.sort_unstable();
            let mut k = 0;
            while k < ids.len() {
                let mut j = k + 1;
                while j < ids.len() && ids[j] == ids[k] {
                    j += 1;
                }
                postings[ids[k] as usize].push((row as u32, (j - k) as u32));
                k = j;
            }
        }
        let mut terms: Vec<(String, u32)> = vocab.into_iter().collect();
        terms.sort_unstable();
        let mut idx = LexicalIndex {
            params,
            doc_len,
            term_bytes: String::with_capacity(terms.iter().map(|t| t.0.len()).sum()),
            term_end: Vec::with_capacity(terms.len()),
            post_start: Vec::with_capacity(terms.len() + 1),
            post_doc: Vec::new(),
            post_tf: Vec::new(),
            norm: Vec::new(),
        };
        idx.post_start.push(0);
        for (term, id) in terms {
            idx.term_bytes.push_str(&term);
            idx.term_end.push(idx.term_bytes.len());
            for &(d, tf) in &postings[id as usize] {
                idx.post_doc.push(d);
                idx.post_tf.push(tf);
            }
            idx.post_start.push(idx.post_doc.len());
        }
        idx.derive();
        idx
    }

    fn derive(&mut self) {
        let n = self.doc_len.len().max(1) as f64;
        let avg = (self.doc_len.iter().map(|&l| l as u64).sum::<u64>() as f64 / n).max(1.0);
        let Bm25Params { k1, b } = self.params;
        self.norm = self.doc_len.iter().map(|&l| k1 * (1.0 - b + b * (l as f64 / avg) as f32)).collect();
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.doc_len.len()
    }

    /// Whether the index has no rows.
    pub fn is_empty(&self) -> bool {
        self.doc_len.is_empty()
    }

    /// Number of distinct terms.
    pub fn terms(&self) -> usize {
        self.term_end.len()
    }

    /// The BM25 parameters.
    pub fn params(&self) -> Bm25Params {
        self.params
    }

    fn term(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.term_end[i - 1] };
        &self.term_bytes[start..self.term_end[i]]
    }

    fn find(&self, t: &str) -> Option<usize> {
        let (mut lo, mut hi) = (0, self.term_end.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.term(mid).cmp(t) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }

    /// Number of rows containing `token` (already a token: lowercased).
    pub fn doc_freq(&self, token: &str) -> usize {
        self.find(token).map_or(0, |i| self.post_start[i + 1] - self.post_start[i])
    }

    fn idf(&self, df: usize) -> f32 {
        let n = self.doc_len.len() as f32;
        let df = df as f32;
        (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
    }

    /// Top `k` rows for `query` as `(row, BM25 score)`, best first; ties by row. Rows sharing no
    /// token with the query are never returned.
    pub fn search(&self, query: &str, k: usize) -> Vec<(u32, f32)> {
        self.search_hits(query, k).into_iter().map(|h| (h.row, h.score)).collect()
    }

    /// Like [`search`](Self::search), with each hit's [`coverage`](LexicalHit::coverage).
    pub fn search_hits(&self, query: &str, k: usize) -> Vec<LexicalHit> {
        if k == 0 || self.is_empty() {
            return Vec::new();
        }
        // Distinct query tokens; a token that occurs as a whole word anywhere counts as a word.
        // (A map, not a scan of the list: a hostile query may hold many thousand tokens.)
        let mut toks: Vec<(String, bool)> = Vec::new();
        let mut at: HashMap<String, usize> = HashMap::new();
        for_each_token(query, |t, kind| match at.get(t) {
            Some(&i) => toks[i].1 |= kind == TokenKind::Word,
            None => {
                at.insert(t.to_string(), toks.len());
                toks.push((t.to_string(), kind == TokenKind::Word));
            }
        });
        let max_idf = self.idf(0);
        let mut total_idf = 0f32;
        let mut terms = Vec::with_capacity(toks.len());
        for (t, is_word) in &toks {
            match self.find(t) {
                Some(i) => {
                    let idf = self.idf(self.post_start[i + 1] - self.post_start[i]);
                    total_idf += idf;
                    terms.push((i, idf));
                }
                None if *is_word => total_idf += max_idf,
                None => {}
            }
        }
        if terms.is_empty() {
            return Vec::new();
        }
        let n = self.len();
        let mut score = vec![0f32; n];
        let mut matched = vec![0f32; n];
        let mut touched: Vec<u32> = Vec::new();
        let k1p = self.params.k1 + 1.0;
        for &(i, idf) in &terms {
            let range = self.post_start[i]..self.post_start[i + 1];
            for (&d, &tf) in self.post_doc[range.clone()].iter().zip(&self.post_tf[range]) {
                let d = d as usize;
                if matched[d] == 0.0 {
                    touched.push(d as u32);
                }
                let tf = tf as f32;
                score[d] += idf * tf * k1p / (tf + self.norm[d]);
                // Never exactly 0 once touched, even for an IDF of 0.
                matched[d] += idf.max(f32::MIN_POSITIVE);
            }
        }
        let cmp = |a: &u32, b: &u32| score[*b as usize].total_cmp(&score[*a as usize]).then(a.cmp(b));
        if touched.len() > k {
            touched.select_nth_unstable_by(k - 1, cmp);
            touched.truncate(k);
        }
        touched.sort_unstable_by(cmp);
        touched
            .into_iter()
            .map(|d| {
                let coverage = if total_idf > 0.0 { (matched[d as usize] / total_idf).min(1.0) } else { 0.0 };
                LexicalHit { row: d, score: score[d as usize], coverage }
            })
            .collect()
    }

    /// The payload: see the crate docs for the layout. Deterministic: the same texts give the
    /// same bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + 4 * self.len() + self.term_bytes.len() + 3 * self.post_doc.len());
        out.extend_from_slice(&LEXICAL_VERSION.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&self.params.k1.to_le_bytes());
        out.extend_from_slice(&self.params.b.to_le_bytes());
        out.extend_from_slice(&(self.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.terms() as u64).to_le_bytes());
        for &l in &self.doc_len {
            out.extend_from_slice(&l.to_le_bytes());
        }
        for i in 0..self.terms() {
            out.push(self.term(i).len() as u8);
        }
        out.extend_from_slice(self.term_bytes.as_bytes());
        for i in 0..self.terms() {
            let range = self.post_start[i]..self.post_start[i + 1];
            put_varint(&mut out, range.len() as u32);
            let mut prev = 0u32;
            for (j, (&d, &tf)) in self.post_doc[range.clone()].iter().zip(&self.post_tf[range]).enumerate() {
                put_varint(&mut out, if j == 0 { d } else { d - prev });
                put_varint(&mut out, tf);
                prev = d;
            }
        }
        out
    }

    /// Parse a payload written by [`to_bytes`](Self::to_bytes). Every size is checked against the
    /// bytes actually present before anything is allocated, and every structural invariant is
    /// checked (sorted distinct terms, rows in range and ascending, term frequencies adding up
    /// to each row's length), so hostile input is an error, never a panic or a huge allocation.
    pub fn from_bytes(payload: &[u8]) -> Result<Self> {
        let mut r = Reader { buf: payload, pos: 0 };
        let version = r.u32()?;
        if version != LEXICAL_VERSION {
            return Err(LexicalError::UnsupportedVersion { found: version, supported: LEXICAL_VERSION });
        }
        let flags = r.u32()?;
        if flags != 0 {
            return Err(LexicalError::malformed(format!("unknown flags {flags:#x}")));
        }
        let params = Bm25Params { k1: f32::from_le_bytes(r.array()?), b: f32::from_le_bytes(r.array()?) };
        if !params.is_valid() {
            return Err(LexicalError::malformed(format!("BM25 parameters out of range: {params:?}")));
        }
        let n_docs = r.u64()?;
        let n_terms = r.u64()?;
        if n_docs > u32::MAX as u64 {
            return Err(LexicalError::malformed(format!("{n_docs} rows")));
        }
        // Each row takes 4 bytes; each term at least 1 length byte, 1 term byte, 1 df byte and
        // one 2-byte posting.
        if n_docs.saturating_mul(4) > r.remaining() as u64 || n_terms.saturating_mul(5) > r.remaining() as u64 {
            return Err(LexicalError::malformed(format!(
                "{n_docs} rows and {n_terms} terms do not fit in {} bytes",
                payload.len()
            )));
        }
        let (n_docs, n_terms) = (n_docs as usize, n_terms as usize);
        let doc_len: Vec<u32> =
            r.take(n_docs * 4)?.chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        let lens = r.take(n_terms)?;
        let total: usize = lens.iter().map(|&l| l as usize).sum();
        if lens.iter().any(|&l| l == 0 || l as usize > MAX_TOKEN_BYTES) {
            return Err(LexicalError::malformed("term length outside 1..=64"));
        }
        let term_bytes = std::str::from_utf8(r.take(total)?)
            .map_err(|e| LexicalError::malformed(format!("terms are not UTF-8: {e}")))?
            .to_string();
        let mut term_end = Vec::with_capacity(n_terms);
        let mut end = 0;
        for &l in lens {
            end += l as usize;
            if !term_bytes.is_char_boundary(end) {
                return Err(LexicalError::malformed("a term ends inside a character"));
            }
            term_end.push(end);
        }
        let mut idx = LexicalIndex {
            params,
            doc_len,
            term_bytes,
            term_end,
            post_start: Vec::with_capacity(n_terms + 1),
            post_doc: Vec::new(),
            post_tf: Vec::new(),
            norm: Vec::new(),
        };
        for i in 1..n_terms {
            if idx.term(i - 1) >= idx.term(i) {
                return Err(LexicalError::malformed(format!("terms not sorted and distinct at term {i}")));
            }
        }
        let mut tf_sum = vec![0u64; n_docs];
        idx.post_start.push(0);
        for i in 0..n_terms {
            let df = r.varint()? as usize;
            if df == 0 || df > n_docs || df.saturating_mul(2) > r.remaining() {
                return Err(LexicalError::malformed(format!("term {i}: {df} postings")));
            }
            let mut prev: Option<u32> = None;
            for _ in 0..df {
                let gap = r.varint()?;
                let doc = match prev {
                    None => gap,
                    Some(_) if gap == 0 => {
                        return Err(LexicalError::malformed(format!("term {i}: rows not ascending")))
                    }
                    Some(p) => p.checked_add(gap).ok_or_else(|| LexicalError::malformed("row overflows"))?,
                };
                if doc as usize >= n_docs {
                    return Err(LexicalError::malformed(format!("term {i}: row {doc} of {n_docs}")));
                }
                let tf = r.varint()?;
                if tf == 0 {
                    return Err(LexicalError::malformed(format!("term {i}: zero term frequency")));
                }
                tf_sum[doc as usize] += tf as u64;
                idx.post_doc.push(doc);
                idx.post_tf.push(tf);
                prev = Some(doc);
            }
            idx.post_start.push(idx.post_doc.len());
        }
        if r.remaining() != 0 {
            return Err(LexicalError::malformed(format!("{} trailing bytes", r.remaining())));
        }
        if let Some(d) = (0..n_docs).find(|&d| tf_sum[d] != idx.doc_len[d] as u64) {
            return Err(LexicalError::malformed(format!(
                "row {d}: length {} but its terms add up to {}",
                idx.doc_len[d], tf_sum[d]
            )));
        }
        idx.derive();
        Ok(idx)
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(LexicalError::malformed(format!("truncated: {n} bytes wanted at offset {}", self.pos)));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        Ok(self.take(N)?.try_into().expect("N bytes"))
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn varint(&mut self) -> Result<u32> {
        let mut v = 0u32;
        for shift in (0..35).step_by(7) {
            let b = self.take(1)?[0];
            if shift == 28 && b > 0x0f {
                return Err(LexicalError::malformed(format!("varint overflows u32 at offset {}", self.pos - 1)));
            }
            v |= ((b & 0x7f) as u32) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        unreachable!("the fifth byte either ends the varint or is rejected")
    }
}
