//! Shared helpers for the ragsnap benchmarks (`make bench`, see `README.md` beside this file).
//!
//! Each benchmark is its own binary under `src/bin/`, run once per configuration by
//! `benches/run.sh`, and prints one JSON object per measurement on stdout; `python/report.py`
//! turns those into the tables of `README.md`. Everything here is deliberately small: corpus
//! listing, a seeded RNG, percentiles, `/proc` readings (load average, peak RSS) and raw `f32`
//! files for the Python side. The index and distance code measured is always the product's
//! (`ragsnap::index`), never a copy.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Every `.html` file under `dir` (recursively, sorted, hidden entries skipped), as
/// `(path relative to dir, absolute path)`.
pub fn html_pages(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let ft = e.file_type()?;
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() && name.ends_with(".html") {
                let rel = e.path().strip_prefix(dir).unwrap_or(&e.path()).to_string_lossy().into_owned();
                out.push((rel, e.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The 1-, 5- and 15-minute load averages, as `/proc/loadavg` prints them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// Peak resident set size of this process in KiB (`VmHWM` of `/proc/self/status`).
pub fn peak_rss_kib() -> u64 {
    proc_status_kib("VmHWM:")
}

/// Current resident set size of this process in KiB (`VmRSS`).
pub fn rss_kib() -> u64 {
    proc_status_kib("VmRSS:")
}

fn proc_status_kib(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// CPU seconds (user + system, all threads) this process has used so far, from
/// `/proc/self/stat` (10 ms resolution). Next to wall time it shows how much of a run was lost
/// to other processes on a shared machine.
pub fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Print one JSON object on a line of its own on stdout (what `run.sh` collects).
pub fn emit(v: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, v).expect("stdout");
    writeln!(out).expect("stdout");
    out.flush().expect("stdout");
}

/// A small seeded generator (SplitMix64): the same seed gives the same data everywhere.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// Seeded generator.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.uniform() * n as f64) as usize % n.max(1)
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

/// Percentile `p` (0–100) of `sorted` by the nearest-rank method.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Summary of a list of durations in milliseconds: `{n, mean, p50, p90, p99, max}`.
pub fn summary_ms(samples_secs: &[f64]) -> serde_json::Value {
    let mut ms: Vec<f64> = samples_secs.iter().map(|s| s * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    let mean = ms.iter().sum::<f64>() / ms.len().max(1) as f64;
    serde_json::json!({
        "n": ms.len(),
        "mean": mean,
        "p50": percentile(&ms, 50.0),
        "p90": percentile(&ms, 90.0),
        "p99": percentile(&ms, 99.0),
        "max": ms.last().copied().unwrap_or(f64::NAN),
    })
}

/// Median of `v` (which it sorts).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Seconds `f` took, and its result.
pub fn timed<T>(f: impl FnOnce() -> T) -> (f64, T) {
    let t = Instant::now();
    let r = f();
    (t.elapsed().as_secs_f64(), r)
}

/// Write `v` as raw little-endian `f32`.
pub fn write_f32(path: &Path, v: &[f32]) -> std::io::Result<()> {
    let mut bytes = Vec::with_capacity(v.len() * 4);
    for x in v {
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(path, bytes)
}

/// Read raw little-endian `f32`.
pub fn read_f32(path: &Path) -> std::io::Result<Vec<f32>> {
    let bytes = std::fs::read(path)?;
    Ok(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

/// Write `v` as raw little-endian `u32`.
pub fn write_u32(path: &Path, v: &[u32]) -> std::io::Result<()> {
    let mut bytes = Vec::with_capacity(v.len() * 4);
    for x in v {
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(path, bytes)
}

/// Read raw little-endian `u32`.
pub fn read_u32(path: &Path) -> std::io::Result<Vec<u32>> {
    let bytes = std::fs::read(path)?;
    Ok(bytes.chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

/// A rayon pool of exactly `threads` threads.
pub fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new().num_threads(threads.max(1)).build().expect("rayon pool")
}

/// Minimal `--flag value` argument reader for the bench binaries (they are driven by
/// `run.sh`, not by people, so no help text beyond the panic message).
#[derive(Debug, Clone)]
pub struct Args {
    /// Positional arguments.
    pub positional: Vec<String>,
    flags: Vec<(String, Option<String>)>,
}

impl Args {
    /// Parse `std::env::args()`: `--name value`, `--name=value`, or a bare `--switch`
    /// (when the next word is another flag or there is none).
    pub fn parse() -> Self {
        let raw: Vec<String> = std::env::args().skip(1).collect();
        let mut positional = Vec::new();
        let mut flags = Vec::new();
        let mut i = 0;
        while i < raw.len() {
            let a = &raw[i];
            if let Some(name) = a.strip_prefix("--") {
                if let Some((n, v)) = name.split_once('=') {
                    flags.push((n.to_string(), Some(v.to_string())));
                } else if i + 1 < raw.len() && !raw[i + 1].starts_with("--") {
                    flags.push((name.to_string(), Some(raw[i + 1].clone())));
                    i += 1;
                } else {
                    flags.push((name.to_string(), None));
                }
            } else {
                positional.push(a.clone());
            }
            i += 1;
        }
        Args { positional, flags }
    }

    /// Value of `--name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.flags.iter().rev().find(|(n, _)| n == name).and_then(|(_, v)| v.as_deref())
    }

    /// Whether `--name` was given.
    pub fn has(&self, name: &str) -> bool {
        self.flags.iter().any(|(n, _)| n == name)
    }

    /// `--name` parsed, else `default`.
    pub fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> T {
        match self.get(name) {
            Some(v) => v.parse().unwrap_or_else(|_| panic!("--{name}: cannot parse {v:?}")),
            None => default,
        }
    }

    /// `--name` as a path; panics naming the flag when it is missing.
    pub fn path(&self, name: &str) -> PathBuf {
        PathBuf::from(self.get(name).unwrap_or_else(|| panic!("--{name} is required")))
    }

    /// Comma-separated list of numbers.
    pub fn list(&self, name: &str, default: &[usize]) -> Vec<usize> {
        match self.get(name) {
            Some(v) => v.split(',').map(|x| x.trim().parse().expect("number list")).collect(),
            None => default.to_vec(),
        }
    }
}

/// The ONNX Runtime library and model of the `make setup` cache (or `RAGSNAP_*` overrides).
pub fn runtime() -> ragsnap::embed::Runtime {
    ragsnap::embed::Runtime::resolve(None, None).unwrap_or_else(|e| panic!("{e} (run `make setup` first)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[3.0], 99.0), 3.0);
    }

    #[test]
    fn rng_is_deterministic() {
        let a: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        let mut r = Rng::new(7);
        assert_eq!(a, (0..4).map(|_| r.next_u64()).collect::<Vec<_>>());
        assert!(Rng::new(1).uniform() < 1.0);
    }
}
