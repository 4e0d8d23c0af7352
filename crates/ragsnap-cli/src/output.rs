//! Everything the binary prints on stdout: plain lines through [`outln!`], JSON documents
//! through [`print_json`], JSON errors through [`print_json_error`]. Every write returns its
//! I/O error, so a closed stdout ends the command quietly ([`crate::exit::is_broken_pipe`])
//! instead of panicking.

use crate::exit::ExitKind;
use anyhow::Result;
use ragsnap::{Answer, Mode, QueryResult};
use serde_json::{json, Value};
use std::io::Write;

/// `println!` that returns the write error instead of panicking on a closed stdout.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?
    }};
}
pub(crate) use outln;

/// One JSON document on stdout, pretty-printed.
pub fn print_json(v: &impl serde::Serialize) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// One JSON line on stdout (JSON Lines output).
pub fn print_json_line(out: &mut impl Write, v: &impl serde::Serialize) -> Result<()> {
    serde_json::to_writer(&mut *out, v)?;
    writeln!(out)?;
    Ok(())
}

/// An error as one JSON object on stdout: `{"error": {"kind", "message", "exit_code"}}`.
pub fn print_json_error(kind: ExitKind, message: &str) {
    let v = json!({ "error": { "kind": kind.name(), "message": message, "exit_code": kind.code() } });
    // A closed stdout leaves nothing to tell; the exit code still says it.
    let _ = print_json(&v);
}

/// A query's JSON: the library's [`QueryResult`] as it serialises (so fields the library adds
/// appear here too), with `hits` always present (`[]` when refused) and each hit carrying its
/// `cosine`, `lexical` (BM25) and `fused` scores explicitly (null where a signal was not used)
/// and `score` set to the value hits are ordered by: the fused score in hybrid mode, the cosine
/// in dense mode, the BM25 score in lexical mode.
pub fn query_json(result: &QueryResult) -> Result<Value> {
    let mut v = serde_json::to_value(result)?;
    let hits = match &result.answer {
        Answer::Hits { hits } => hits.as_slice(),
        Answer::NoConfidentMatch { .. } => &[],
    };
    if v.get("hits").is_none() {
        v["hits"] = json!([]);
    }
    if let Some(out) = v["hits"].as_array_mut() {
        for (o, h) in out.iter_mut().zip(hits) {
            let s = &h.signals;
            let score = match result.mode {
                Mode::Hybrid => s.fused_score.or(s.dense_score),
                Mode::Dense => s.dense_score,
                Mode::Lexical => s.lexical_score,
            };
            o["cosine"] = json!(s.dense_score);
            o["lexical"] = json!(s.lexical_score);
            o["fused"] = json!(s.fused_score);
            o["score"] = json!(score.unwrap_or(h.score));
        }
    }
    Ok(v)
}
