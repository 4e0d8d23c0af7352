//! Every subcommand's exit codes and JSON shapes, on the real binary, model and store.

mod common;
use common::*;

#[test]
fn operator_commands_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let site = site_copy(dir.path());
    let store = dir.path().join("store");
    let s = site.to_str().unwrap();

    let o = run(&store, &["rebuild", "--source", s, "--json"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let rep = json(&o);
    assert_eq!(rep["promoted"], true);
    assert!(rep["chunks"].as_u64().unwrap() > 20);
    let first = rep["snapshot_id"].as_str().unwrap().to_string();

    let o = run(&store, &["query", "how do I require client certificates from workers?", "--json", "-k", "2"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let q = json(&o);
    assert_eq!(q["snapshot_id"], first.as_str());
    assert_eq!(q["outcome"], "hits");
    let hits = q["hits"].as_array().unwrap();
    assert!(!hits.is_empty() && hits.len() <= 2);
    for key in ["score", "text", "source_path", "url", "header_path", "content_id"] {
        assert!(hits[0].get(key).is_some(), "hit lacks {key}");
    }

    let o = run(&store, &["query", "Who won the 1998 FIFA World Cup final?", "--json"]);
    assert_eq!(code(&o), 3, "no confident match exits 3");
    assert_eq!(json(&o)["outcome"], "no_confident_match");
    let o = run(&store, &["query", "Who won the 1998 FIFA World Cup final?"]);
    assert_eq!(code(&o), 3);
    assert!(String::from_utf8_lossy(&o.stdout).contains("no confident match"));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("why: no cosine reached the floor"),
        "the reason, as --json has it"
    );

    // Second snapshot from a changed page.
    let page = site.join("faq.html");
    let html = std::fs::read_to_string(&page).unwrap();
    std::fs::write(
        &page,
        html.replacen("</main>", "<h2>Extra</h2><p>The dashboard supports a dark theme since 2.1.</p></main>", 1),
    )
    .unwrap();
    let o = run(&store, &["rebuild", "--source", s, "--json"]);
    assert_eq!(code(&o), 0);
    let second = json(&o)["snapshot_id"].as_str().unwrap().to_string();

    let o = run(&store, &["snapshots", "--json"]);
    assert_eq!(code(&o), 0);
    let list = json(&o);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    for key in ["id", "created_at", "is_head", "status", "documents", "chunks", "fingerprint_id", "recall"] {
        assert!(list[0].get(key).is_some(), "snapshot row lacks {key}");
    }
    assert_eq!(head(&store).as_deref(), Some(second.as_str()));

    let o = run(&store, &["show", &first, "--json"]);
    assert_eq!(code(&o), 0);
    let m = json(&o);
    assert_eq!(m["snapshot_id"], first.as_str());
    assert_eq!(m["format_version"], 1);
    assert!(m["files"].as_array().unwrap().iter().all(|f| f["blake3"].as_str().unwrap().len() == 64));

    let o = run(&store, &["rollback", "--json"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(json(&o)["to"], first.as_str());
    assert_eq!(head(&store).as_deref(), Some(first.as_str()));

    let o = run(&store, &["verify", "--all", "--json"]);
    assert_eq!(code(&o), 0);
    assert!(json(&o).as_array().unwrap().iter().all(|r| r["ok"] == true));

    // Corrupt the second snapshot: verify fails with 4 and names the file; rollback to it is refused.
    let vec_file = store.join("snapshots").join(&second).join("vectors.bin");
    let mut b = std::fs::read(&vec_file).unwrap();
    b[100] ^= 0x10;
    std::fs::write(&vec_file, b).unwrap();
    let o = run(&store, &["verify", &second]);
    assert_eq!(code(&o), 4);
    assert!(String::from_utf8_lossy(&o.stdout).contains("vectors.bin"));
    let o = run(&store, &["rollback", "--to", &second]);
    assert_eq!(code(&o), 3, "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(head(&store).as_deref(), Some(first.as_str()));

    let o = run(&store, &["cache", "stats", "--json"]);
    assert_eq!(code(&o), 0);
    assert!(json(&o)[0]["vectors"].as_u64().unwrap() > 20);

    let o = run(&store, &["gc", "--keep", "1", "--dry-run", "--json"]);
    assert_eq!(code(&o), 0);
    assert_eq!(json(&o)["dry_run"], true);
}

#[test]
fn a_second_writer_exits_5_naming_the_pid() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let site = site_copy(dir.path());
    // Hold the writer lock with a long rebuild's lock: take it directly with a child that sleeps.
    std::fs::create_dir_all(&store).unwrap();
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(store.join("LOCK"))
        .unwrap();
    lock.try_lock().unwrap();
    std::fs::write(store.join("LOCK"), format!("{}\n", std::process::id())).unwrap();
    let o = run(&store, &["rebuild", "--source", site.to_str().unwrap()]);
    assert_eq!(code(&o), 5);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("locked by pid {}", std::process::id())), "{err}");
}

#[test]
fn usage_errors_and_a_missing_store_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let o = bin().args(["query"]).output().unwrap();
    assert_eq!(code(&o), 2);
    let o = bin().args(["--store", dir.path().join("nope").to_str().unwrap(), "snapshots"]).output().unwrap();
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("ragsnap rebuild"));
    // A folder with other content is not a store either.
    std::fs::write(dir.path().join("notes.txt"), b"mine").unwrap();
    for args in [&["snapshots"][..], &["show"], &["verify", "--all"]] {
        let o = bin().arg("--store").arg(dir.path()).args(args).output().unwrap();
        assert_eq!(code(&o), 2, "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "a reader wrote into a folder that is not a store");
}

#[test]
fn a_missing_runtime_names_make_setup() {
    let dir = tempfile::tempdir().unwrap();
    let site = site_copy(dir.path());
    let o = bin()
        .args([
            "--store",
            dir.path().join("s").to_str().unwrap(),
            "--model-dir",
            "/nonexistent/model",
            "rebuild",
            "--source",
            site.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(code(&o), 1);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("make setup") && err.contains("/nonexistent/model"), "{err}");
}

#[test]
fn chunk_and_completions() {
    let root = repo_root();
    let page = root.join("fixtures/site/guide/retries.html");
    let o = bin().args(["chunk", page.to_str().unwrap(), "--json"]).output().unwrap();
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let v = json(&o); // one document: one JSON line
    assert!(!v["chunks"].as_array().unwrap().is_empty());
    let o = bin().args(["chunk", page.to_str().unwrap(), "--markdown"]).output().unwrap();
    assert_eq!(code(&o), 0);
    let md = String::from_utf8_lossy(&o.stdout);
    assert!(md.contains("# ") && !md.contains("<script"));
    let o = bin().args(["completions", "bash"]).output().unwrap();
    assert_eq!(code(&o), 0);
    assert!(String::from_utf8_lossy(&o.stdout).contains("ragsnap"));
}

#[test]
fn rejected_rebuild_exits_6_writes_metrics_and_can_be_diffed_and_force_promoted() {
    let dir = tempfile::tempdir().unwrap();
    let site = site_copy(dir.path());
    let store = dir.path().join("store");
    let s = site.to_str().unwrap();
    assert_eq!(code(&run(&store, &["rebuild", "--source", s])), 0);
    let good = head(&store).unwrap();
    for page in [
        "guide/queues.html",
        "guide/retries.html",
        "guide/scheduling.html",
        "guide/workers.html",
        "guide/rate-limits.html",
        "ops/backups.html",
        "ops/metrics.html",
        "ops/upgrading.html",
    ] {
        std::fs::remove_file(site.join(page)).unwrap();
    }
    let metrics = dir.path().join("ragsnap.prom");
    let o = run(&store, &["rebuild", "--source", s, "--json", "--metrics-file", metrics.to_str().unwrap()]);
    assert_eq!(code(&o), 6, "{}", String::from_utf8_lossy(&o.stderr));
    let rep = json(&o);
    assert_eq!(rep["promoted"], false);
    let bad = rep["snapshot_id"].as_str().unwrap().to_string();
    assert!(rep["gates"].as_array().unwrap().iter().any(|g| g["name"] == "shrinkage" && g["passed"] == false));
    assert!(String::from_utf8_lossy(&o.stderr).contains("REJECTED"));
    let prom = std::fs::read_to_string(&metrics).unwrap();
    assert!(prom.contains("ragsnap_rebuild_promoted 0"), "{prom}");
    assert!(prom.contains("ragsnap_rebuild_gate_passed{gate=\"shrinkage\"} 0"), "{prom}");
    assert_eq!(head(&store).as_deref(), Some(good.as_str()));

    let o = run(&store, &["diff", &good, &bad, "--json"]);
    assert_eq!(code(&o), 0);
    let d = json(&o);
    assert_eq!(d["removed"].as_array().unwrap().len(), 8);
    assert!(d["added"].as_array().unwrap().is_empty());
    let o = run(&store, &["diff", &good, &bad]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("- guide/queues.html"));

    let o = run(&store, &["promote", &bad]);
    assert_eq!(code(&o), 3, "a rejected build is refused without --force");
    let o = run(&store, &["promote", &bad, "--force", "--reason", "pages moved on purpose"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(head(&store).as_deref(), Some(bad.as_str()));

    // A fingerprint nobody uses is a usage error, not "delete everything".
    let o = run(&store, &["cache", "prune", "--keep-fingerprints", "nothing@00000000"]);
    assert_eq!(code(&o), 2);
    let o = run(&store, &["cache", "prune", "--all"]);
    assert_eq!(code(&o), 0);
    let o = run(&store, &["cache", "stats", "--json"]);
    assert!(json(&o).as_array().unwrap().is_empty(), "prune removed every other fingerprint");
}

/// Every run writes metrics: an unchanged rebuild exits 0 without a snapshot and is counted;
/// a failed one says `success 0`, `promoted 0` and keeps the last success's time.
#[test]
fn every_rebuild_writes_metrics_and_an_unchanged_one_makes_no_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let site = site_copy(dir.path());
    let store = dir.path().join("store");
    let (s, metrics) = (site.to_str().unwrap(), dir.path().join("ragsnap.prom"));
    let m = metrics.to_str().unwrap();
    let sample = |prom: &str, name: &str| -> Option<f64> {
        prom.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    };
    assert_eq!(code(&run(&store, &["rebuild", "--source", s, "--metrics-file", m])), 0);
    let first = head(&store).unwrap();
    let prom = std::fs::read_to_string(&metrics).unwrap();
    let success_at =
        sample(&prom, "ragsnap_rebuild_last_success_timestamp_seconds").unwrap_or_else(|| panic!("{prom}"));
    assert_eq!(sample(&prom, "ragsnap_rebuild_success"), Some(1.0));
    for l in prom.lines().filter(|l| !l.starts_with('#')) {
        let name = l.split(['{', ' ']).next().unwrap();
        assert!(prom.contains(&format!("# HELP {name} ")) && prom.contains(&format!("# TYPE {name} ")), "{name}");
    }

    let o = run(&store, &["rebuild", "--source", s, "--json", "--metrics-file", m]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(json(&o)["outcome"], "unchanged");
    assert_eq!(json(&o)["snapshot_id"], first.as_str());
    let o = run(&store, &["snapshots", "--json"]);
    assert_eq!(json(&o).as_array().unwrap().len(), 1, "no snapshot was written");
    let prom = std::fs::read_to_string(&metrics).unwrap();
    assert_eq!(sample(&prom, "ragsnap_rebuild_unchanged_total"), Some(1.0), "{prom}");
    assert_eq!(sample(&prom, "ragsnap_rebuild_promoted"), Some(0.0));

    let o = run(&store, &["rebuild", "--source", s, "--force"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    assert_ne!(head(&store).unwrap(), first, "--force builds a new snapshot");

    // A failed run (nothing to index) after a promoted one.
    assert_eq!(code(&run(&store, &["rebuild", "--source", s, "--force", "--metrics-file", m])), 0);
    let success_at =
        sample(&std::fs::read_to_string(&metrics).unwrap(), "ragsnap_rebuild_last_success_timestamp_seconds")
            .unwrap()
            .max(success_at);
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = run(&store, &["rebuild", "--source", empty.to_str().unwrap(), "--metrics-file", m]);
    assert_ne!(code(&o), 0);
    let prom = std::fs::read_to_string(&metrics).unwrap();
    assert_eq!(sample(&prom, "ragsnap_rebuild_success"), Some(0.0), "{prom}");
    assert_eq!(sample(&prom, "ragsnap_rebuild_promoted"), Some(0.0), "{prom}");
    assert_eq!(sample(&prom, "ragsnap_rebuild_last_success_timestamp_seconds"), Some(success_at), "{prom}");
    assert_eq!(sample(&prom, "ragsnap_rebuild_unchanged_total"), Some(1.0), "the count survives a failure");
}
