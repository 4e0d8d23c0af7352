//! Content addressing: blake3 digests and [`ContentId`], the id of a chunk's normalised text
//! (the embedding cache's key and the unit of de-duplication).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Hex blake3 digest of a byte slice.
pub fn blake3_hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// Collapse every run of Unicode white space into one ASCII space and trim the ends.
///
/// Two texts that differ only in white space normalise to the same string, so they
/// get the same [`ContentId`] and are embedded once.
pub fn normalize_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Content address of a chunk: blake3 of its normalised text, as 64 hex digits.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ContentId(String);

impl ContentId {
    /// Id of `text` after [`normalize_text`].
    pub fn of_text(text: &str) -> Self {
        ContentId(blake3_hex(normalize_text(text).as_bytes()))
    }

    /// Wrap an id read back from storage. Returns `None` unless it is 64 lowercase hex digits.
    pub fn parse(s: &str) -> Option<Self> {
        let ok = s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then(|| ContentId(s.to_string()))
    }

    /// The 64 hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_does_not_change_the_id() {
        assert_eq!(ContentId::of_text(" a\tb\n\nc "), ContentId::of_text("a b c"));
        assert_ne!(ContentId::of_text("a b c"), ContentId::of_text("a b d"));
    }

    #[test]
    fn parse_accepts_only_lowercase_hex_of_the_right_length() {
        let id = ContentId::of_text("x");
        assert_eq!(ContentId::parse(id.as_str()), Some(id.clone()));
        assert!(ContentId::parse(&id.as_str().to_uppercase()).is_none());
        assert!(ContentId::parse("abc").is_none());
        assert!(ContentId::parse(&"g".repeat(64)).is_none());
    }
}
