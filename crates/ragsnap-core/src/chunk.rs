//! [`Chunk`]: the unit a snapshot stores, embeds and returns, with the page and section it came
//! from.

use crate::ContentId;
use serde::{Deserialize, Serialize};

/// One unit of indexed text, with where it came from.
///
/// `text` is what gets embedded and returned to callers: it starts with the
/// header path line (`Title > Section > Subsection`) followed by the body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    /// blake3 of the normalised `text`.
    pub content_id: ContentId,
    /// Header path line followed by a blank line and the chunk body.
    pub text: String,
    /// Path of the source document, relative to its source root, `/`-separated.
    pub source_path: String,
    /// Public URL of the source document, when known.
    pub url: Option<String>,
    /// Headings from the page title down to this chunk's section.
    pub header_path: Vec<String>,
    /// Byte range of the body in the document's sanitised Markdown.
    pub byte_range: (usize, usize),
    /// 1-based inclusive line range of the body in the sanitised Markdown.
    pub line_range: (usize, usize),
    /// Model tokens in `text` as counted by the chunker's token counter.
    pub tokens: usize,
}
