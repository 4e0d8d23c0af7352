//! Issue #11 with the real binary: bad settings and flags are usage errors (exit 2) naming the
//! key, and SIGTERM stops a rebuild within 2 s in the embed stage and in the index stage.

mod common;
use common::*;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn each_bad_setting_is_a_usage_error_naming_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let cases = [
        ("[query]\nfloor = -5.0\n", "query.floor"),
        ("[query]\nfloor = 2.0\n", "query.floor"),
        ("[query]\nfloor = nan\n", "query.floor"),
        ("[query]\nmax_per_source = 0\n", "query.max_per_source"),
        ("[query]\nk = 0\n", "query.k"),
        ("[runtime]\nbulk_sessions = 100000\n", "runtime.bulk_sessions"),
        ("[runtime]\nintra_threads = 100000\n", "runtime.intra_threads"),
        ("[index]\nno_such_key = 3\n", "no_such_key"),
        ("[index]\ntarget_recall = 1.5\n", "index.target_recall"),
        ("[index]\nladder = [{ m = 16, ef_construction = 200, typo = 1 }]\n", "typo"),
        ("[gates]\nmax_hub_share = 2.0\n", "gates.max_hub_share"),
        ("[cache]\nmin_cosine = -0.5\n", "cache.min_cosine"),
        ("[ingest]\nmax_inflight_bytes = 0\n", "ingest.max_inflight_bytes"),
        ("[gc]\nkeep_rejected_for = \"7\"\n", "gc.keep_rejected_for"),
        ("[[sources]]\ndir = \"fixtures/site\"\nurl_prefix = \"notaurl\"\n", "sources[0].url_prefix"),
    ];
    for (text, key) in cases {
        let cfg = dir.path().join("bad.toml");
        std::fs::write(&cfg, text).unwrap();
        for args in [&["query", "anything"][..], &["rebuild", "--source", "fixtures/site"][..]] {
            let o = bin().arg("--store").arg(&store).arg("--config").arg(&cfg).args(args).output().unwrap();
            assert_eq!(code(&o), 2, "{text:?} {args:?}: {}", stderr(&o));
            assert!(stderr(&o).contains(key), "{text:?}: message must name {key}: {}", stderr(&o));
            assert!(stderr(&o).contains("bad.toml"), "{text:?}: message must name the file: {}", stderr(&o));
        }
    }
    assert!(!store.exists(), "a refused setting creates nothing");
}

#[test]
fn bad_query_flags_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    for (args, what) in [
        (&["-k", "0"][..], "-k"),
        (&["-k", "51"][..], "k"),
        (&["--floor", "2"][..], "floor"),
        (&["--floor", "NaN"][..], "floor"),
        (&["--floor-percentile", "150"][..], "floor_percentile"),
        (&["--lexical-floor=-1"][..], "lexical_floor"),
        (&["--rrf-k", "0"][..], "rrf_k"),
        (&["--ef", "0"][..], "--ef"),
    ] {
        let o = bin().arg("--store").arg(&store).args(["query", "how do retries work?"]).args(args).output().unwrap();
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(what), "{args:?}: {}", stderr(&o));
    }
}

/// Pages of made-up words: every chunk different, nothing that looks like template text.
fn word_salad_site(dir: &Path, pages: usize, sections: usize) {
    let syllables = ["ka", "lo", "mi", "ren", "tu", "sha", "vo", "pel", "dri", "zan", "ko", "mu", "te", "rai", "nok"];
    let mut seed = 0x2545f4914f6cdd1du64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    std::fs::create_dir_all(dir).unwrap();
    for p in 0..pages {
        let mut html = format!("<html><head><title>Page {p}</title></head><body><main><h1>Page {p}</h1>");
        for s in 0..sections {
            html.push_str(&format!("<h2>Part {p}.{s}</h2><p>"));
            for _ in 0..60 {
                let n = 2 + next() % 3;
                let word: String = (0..n).map(|_| syllables[(next() % syllables.len() as u64) as usize]).collect();
                html.push_str(&word);
                html.push(' ');
            }
            html.push_str("</p>");
        }
        html.push_str("</main></body></html>");
        std::fs::write(dir.join(format!("p{p:03}.html")), html).unwrap();
    }
}

/// `line` without terminal colour sequences (the log may carry them).
fn strip_ansi(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Start `ragsnap rebuild`, wait for `stage` to start (from the info log), send SIGTERM after
/// `after`, and return (exit code, seconds from the signal to exit, stages seen).
fn sigterm_during(store: &Path, config: &Path, site: &Path, stage: &str, after: Duration) -> (i32, f64, Vec<String>) {
    let mut child = bin()
        .arg("--store")
        .arg(store)
        .arg("--config")
        .arg(config)
        .args(["rebuild", "--source"])
        .arg(site)
        .env("RAGSNAP_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(strip_ansi(&line)).is_err() {
                break;
            }
        }
    });
    let mut stages = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let line = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("stage {stage} never started; saw {stages:?}")
        });
        if line.contains("stage started") {
            let s = line.split("stage=").nth(1).unwrap_or("").split_whitespace().next().unwrap_or("");
            stages.push(s.trim_matches('"').to_string());
            if stages.last().is_some_and(|s| s == stage) {
                break;
            }
        }
    }
    std::thread::sleep(after);
    assert!(child.try_wait().unwrap().is_none(), "the rebuild ended before the signal; make it longer");
    let signalled = Instant::now();
    let ok = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(ok.success());
    let status = child.wait().unwrap();
    let secs = signalled.elapsed().as_secs_f64();
    while let Ok(line) = rx.try_recv() {
        if line.contains("stage started") {
            stages.push(line);
        }
    }
    (status.code().unwrap_or(-1), secs, stages)
}

#[test]
fn sigterm_stops_a_rebuild_within_two_seconds_while_embedding_and_while_building_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let fixture = site_copy(dir.path());
    assert_eq!(code(&run(&store, &["rebuild", "--source", fixture.to_str().unwrap()])), 0);
    let before = head(&store).unwrap();
    let salad = dir.path().join("salad");
    word_salad_site(&salad, 30, 12);
    // Small chunks: many vectors for little model work.
    let small = "[chunker]\ntarget_tokens = 24\nmax_tokens = 32\nmin_tokens = 0\n";
    let cfg_embed = dir.path().join("embed.toml");
    std::fs::write(&cfg_embed, small).unwrap();

    let (code_embed, secs_embed, stages) =
        sigterm_during(&store, &cfg_embed, &salad, "embed", Duration::from_millis(700));
    eprintln!("SIGTERM while embedding: exit {code_embed} after {secs_embed:.2} s; stages {stages:?}");
    assert_eq!(code_embed, 130);
    assert!(secs_embed < 2.0, "took {secs_embed:.2} s");
    assert!(!stages.iter().any(|s| s.contains("index")), "the signal came during embedding: {stages:?}");
    assert_eq!(head(&store).unwrap(), before);

    // A graph that takes long to build: exact search off, a large ef_construction.
    let cfg_index = dir.path().join("index.toml");
    std::fs::write(
        &cfg_index,
        format!(
            "{small}[index]\nexact_below = 10\nsample = 100\ntarget_recall = 1.0\nef_candidates = [2000]\n\
             ladder = [{{ m = 64, ef_construction = 4000 }}, {{ m = 96, ef_construction = 8000 }}]\n"
        ),
    )
    .unwrap();
    let (code_index, secs_index, stages) =
        sigterm_during(&store, &cfg_index, &salad, "index", Duration::from_millis(700));
    eprintln!("SIGTERM while indexing: exit {code_index} after {secs_index:.2} s; stages {stages:?}");
    assert_eq!(code_index, 130);
    assert!(secs_index < 2.0, "took {secs_index:.2} s");
    assert!(!stages.iter().any(|s| s.contains("gates")), "the signal came during the index stage: {stages:?}");

    // Head untouched and sound; nothing left in staging.
    assert_eq!(head(&store).unwrap(), before);
    assert_eq!(code(&run(&store, &["verify"])), 0);
    let leftovers = std::fs::read_dir(store.join("staging")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(leftovers, 0);
}

#[test]
fn sigterm_stops_a_rebuild_within_two_seconds_while_sanitising_and_while_chunking_large_pages() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let site = dir.path().join("big");
    std::fs::create_dir_all(&site).unwrap();
    // Three pages of about 12 MB: each takes seconds to sanitise and to chunk.
    for p in 0..3 {
        let mut html = format!("<html><body><main><h1>Big page {p}</h1>");
        for i in 0..120_000 {
            html.push_str(&format!(
                "<p>Paragraph {i} of page {p} about <b>queues</b> and <a href=\"x{i}.html\">workers</a>.</p>"
            ));
        }
        html.push_str("</main></body></html>");
        std::fs::write(site.join(format!("big{p}.html")), html).unwrap();
    }
    let cfg = dir.path().join("ragsnap.toml");
    std::fs::write(&cfg, "").unwrap();
    for stage in ["read", "chunk"] {
        let (code, secs, stages) = sigterm_during(&store, &cfg, &site, stage, Duration::from_millis(800));
        eprintln!("SIGTERM during {stage}: exit {code} after {secs:.2} s; stages {stages:?}");
        assert_eq!(code, 130);
        assert!(secs < 2.0, "{stage}: took {secs:.2} s");
        let later = if stage == "read" { "chunk" } else { "embed" };
        assert!(!stages.iter().any(|s| s.contains(later)), "the signal came during {stage}: {stages:?}");
    }
    assert!(head(&store).is_none(), "nothing was published");
}
