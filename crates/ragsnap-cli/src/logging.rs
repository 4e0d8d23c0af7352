//! Log lines on stderr. `-v` shows ragsnap's stage progress with timings, `-vv` its debug
//! lines; other libraries (the HTML parser, ONNX Runtime, ...) stay at warnings unless
//! `RUST_LOG` (or `RAGSNAP_LOG`) asks for more. Colours only when stderr is a terminal.

use std::io::IsTerminal;

/// ragsnap's own crates (log targets), which `-v` opens up.
const OWN_TARGETS: &[&str] = &[
    "ragsnap",
    "ragsnap_cli",
    "ragsnap_core",
    "ragsnap_chunk",
    "ragsnap_embed",
    "ragsnap_index",
    "ragsnap_store",
    "ragsnap_lexical",
];

/// The filter `-q` / `-v` ask for when no environment variable sets one.
pub fn directives(quiet: bool, verbose: u8) -> String {
    let (others, own) = match (quiet, verbose) {
        (true, _) => ("error", "error"),
        (false, 0) => ("warn", "warn"),
        (false, 1) => ("warn", "info"),
        (false, 2) => ("warn", "debug"),
        (false, _) => ("warn", "trace"),
    };
    let mut d = others.to_string();
    for t in OWN_TARGETS {
        d.push_str(&format!(",{t}={own}"));
    }
    d
}

/// Install the subscriber: `RAGSNAP_LOG`, else `RUST_LOG`, else [`directives`].
pub fn init(quiet: bool, verbose: u8) {
    let from_env = ["RAGSNAP_LOG", "RUST_LOG"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
        .and_then(|v| tracing_subscriber::EnvFilter::try_new(v).ok());
    let filter = from_env.unwrap_or_else(|| tracing_subscriber::EnvFilter::new(directives(quiet, verbose)));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
