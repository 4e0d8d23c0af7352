//! Ingest every page under a folder the way a rebuild does (sanitise, corpus
//! boilerplate, chunk) and print measurements of the result: header-path
//! repetition, the most common header-path elements, short link-only chunks.
//!
//! `cargo run -p ragsnap-chunk --example corpus_stats -- DIR [PHRASE...]`
//! counts, for each PHRASE, the chunks whose text contains it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ragsnap_chunk::{
    approx_token_count, chunk_doc, ingest_many, remove_boilerplate, BoilerplateConfig, ChunkConfig, IngestLimits,
};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            files(&p, out);
        } else if ft.is_file() && p.extension().is_some_and(|x| x == "html" || x == "htm") {
            out.push(p);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(root) = args.first().map(PathBuf::from) else {
        eprintln!("usage: corpus_stats DIR [PHRASE...]");
        std::process::exit(2);
    };
    let phrases = &args[1..];
    let mut paths = Vec::new();
    files(&root, &mut paths);
    paths.sort();
    let input: Vec<(String, Vec<u8>)> = paths
        .iter()
        .filter_map(|p| {
            let rel = p.strip_prefix(&root).ok()?.to_string_lossy().into_owned();
            Some((rel, std::fs::read(p).ok()?))
        })
        .collect();
    let t = std::time::Instant::now();
    let mut docs: Vec<_> = ingest_many(&input, &IngestLimits::default()).into_iter().filter_map(Result::ok).collect();
    let sanitise_s = t.elapsed().as_secs_f64();
    let report = remove_boilerplate(&mut docs, &BoilerplateConfig::default());
    let hubs: Vec<&str> = docs.iter().filter(|d| d.hub).map(|d| d.source_path.as_str()).collect();
    println!("hub pages {}: {:?}", hubs.len(), &hubs);
    println!(
        "template blocks removed {} ({} shapes); title affix {:?}; kept repeated {:?}",
        report.template_blocks_removed,
        report.template_shapes,
        report.title_affix,
        &report.kept_repeated[..report.kept_repeated.len().min(5)]
    );
    let verbose = std::env::var_os("STATS_VERBOSE").is_some();
    let cfg = ChunkConfig::default();
    let mut chunks = Vec::new();
    for d in &docs {
        chunks.extend(chunk_doc(d, None, &cfg, &approx_token_count));
    }
    let n = chunks.len().max(1) as f64;
    if let Some(show) = std::env::var("STATS_SHOW").ok().and_then(|v| v.parse::<usize>().ok()) {
        let step = (chunks.len() / show.max(1)).max(1);
        for c in chunks.iter().step_by(step).take(show) {
            println!("---- {} {:?}\n{}", c.source_path, c.header_path, c.text);
        }
    }
    let norm = |s: &str| s.to_lowercase().split_whitespace().collect::<Vec<_>>().join(" ");
    let repeated = chunks
        .iter()
        .filter(|c| {
            let p: Vec<String> = c.header_path.iter().map(|s| norm(s)).collect();
            (0..p.len()).any(|i| (i + 1..p.len()).any(|j| p[i] == p[j] || p[i].contains(&p[j]) || p[j].contains(&p[i])))
        })
        .count();
    if verbose {
        let mut shown = 0;
        for c in &chunks {
            let p: Vec<String> = c.header_path.iter().map(|s| norm(s)).collect();
            let rep = (0..p.len())
                .any(|i| (i + 1..p.len()).any(|j| p[i] == p[j] || p[i].contains(&p[j]) || p[j].contains(&p[i])));
            if rep && shown < 12 {
                shown += 1;
                println!("  repeated: {} :: {:?}", c.source_path, c.header_path);
            }
        }
    }
    let mut elems: HashMap<String, usize> = HashMap::new();
    for c in &chunks {
        for e in c.header_path.iter().skip(1) {
            *elems.entry(e.clone()).or_default() += 1;
        }
    }
    let mut elems: Vec<_> = elems.into_iter().collect();
    elems.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut titles: HashMap<String, usize> = HashMap::new();
    for d in &docs {
        if let Some(t) = &d.title {
            let ending = t.split_whitespace().rev().take(3).collect::<Vec<_>>().join(" ");
            *titles.entry(ending).or_default() += 1;
        }
    }
    let mut titles: Vec<_> = titles.into_iter().collect();
    titles.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    // A chunk whose body is short and mostly table pipes: a navigation table that got through.
    let table_only = chunks
        .iter()
        .filter(|c| {
            let body = c.text.split_once("\n\n").map_or("", |x| x.1);
            let words = body.split_whitespace().count();
            words <= 40 && body.lines().all(|l| l.trim_start().starts_with('|'))
        })
        .count();
    println!("pages {} docs {} chunks {} sanitise {:.1}s", input.len(), docs.len(), chunks.len(), sanitise_s);
    println!(
        "boilerplate removed {} of {} blocks; top dropped {:?}",
        report.blocks_removed,
        report.blocks_total,
        &report.top.iter().take(5).collect::<Vec<_>>()
    );
    println!("chunks with a repeated header element: {} ({:.1}%)", repeated, 100.0 * repeated as f64 / n);
    println!("chunks that are only a short table: {} ({:.1}%)", table_only, 100.0 * table_only as f64 / n);
    println!("top header-path elements (after the title): {:?}", &elems[..elems.len().min(8)]);
    println!("top title endings: {:?}", &titles[..titles.len().min(4)]);
    for ph in phrases {
        let in_text = chunks.iter().filter(|c| c.text.contains(ph.as_str())).count();
        let in_path = chunks.iter().filter(|c| c.header_path.iter().any(|e| e.contains(ph.as_str()))).count();
        println!("{ph:?}: in {in_text} chunk texts, in {in_path} header paths ({:.1}%)", 100.0 * in_path as f64 / n);
    }
}
