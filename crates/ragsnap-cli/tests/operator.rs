//! Operator commands and Unix behaviour (issue #13) on the real binary, model and store:
//! `HEAD`/`HEAD~N` wherever an id is taken, `show` of a rejected build, the audit log behind
//! `history` with its actors, `pin`/`unpin`, `gc --keep-rejected-for`, a closed stdout, JSON
//! errors, `-v` stage timings without colours, lexical queries without the model, and config
//! paths relative to the config file.
//!
//! One store (four pages; a good build, a second good build, a rejected third) is made once per
//! test binary; every case works on its own copy.

mod common;
use common::*;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::OnceLock;

struct Base {
    _dir: tempfile::TempDir,
    store: PathBuf,
    site: PathBuf,
    /// First build, second build (head), rejected third build.
    first: String,
    second: String,
    rejected: String,
    /// stderr of the second build, run with `-vv` and no log variable.
    verbose_stderr: String,
}

fn base() -> &'static Base {
    static BASE: OnceLock<Base> = OnceLock::new();
    BASE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let site = dir.path().join("site");
        std::fs::create_dir_all(&site).unwrap();
        for page in ["guide/retries.html", "config/tls.html", "ops/backups.html", "install.html"] {
            let from = repo_root().join("fixtures/site").join(page);
            std::fs::copy(&from, site.join(Path::new(page).file_name().unwrap())).unwrap();
        }
        let store = dir.path().join("store");
        let s = site.to_str().unwrap();
        let o = run(&store, &["rebuild", "--source", s, "--json"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let first = json(&o)["snapshot_id"].as_str().unwrap().to_string();

        let p = site.join("install.html");
        let html = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, format!("{html}<p>A note about upgrades and restarts.</p>\n")).unwrap();
        let o = bin()
            .env_remove("RAGSNAP_LOG")
            .env_remove("RUST_LOG")
            .args(["--store", store.to_str().unwrap(), "-vv", "--json", "rebuild", "--source", s])
            .output()
            .unwrap();
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let second = json(&o)["snapshot_id"].as_str().unwrap().to_string();
        let verbose_stderr = stderr(&o);

        // One page of four gone: the shrinkage gate (20%) rejects the build.
        std::fs::remove_file(site.join("backups.html")).unwrap();
        let o = run(&store, &["rebuild", "--source", s, "--json"]);
        assert_eq!(code(&o), 6, "{}", stderr(&o));
        let rejected = json(&o)["snapshot_id"].as_str().unwrap().to_string();
        Base { _dir: dir, store, site, first, second, rejected, verbose_stderr }
    })
}

fn copy_store(to: &Path) -> PathBuf {
    let store = to.join("store");
    copy_tree(&base().store, &store);
    store
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn as_actor(store: &Path, actor: Option<&str>, user: &str, args: &[&str]) -> Output {
    let mut c = bin();
    c.env("USER", user).arg("--store").arg(store);
    if let Some(a) = actor {
        c.args(["--actor", a]);
    }
    c.args(args).output().unwrap()
}

#[test]
fn head_references_are_accepted_wherever_an_id_is() {
    let b = base();
    let dir = tempfile::tempdir().unwrap();
    let store = copy_store(dir.path());
    for spec in ["HEAD", "head"] {
        let o = run(&store, &["show", spec, "--json"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert_eq!(json(&o)["snapshot_id"], b.second.as_str());
    }
    let o = run(&store, &["show", "HEAD~1", "--json"]);
    assert_eq!(json(&o)["snapshot_id"], b.first.as_str());
    let o = run(&store, &["diff", "HEAD~1", "HEAD", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let d = json(&o);
    assert_eq!((d["a"].as_str().unwrap(), d["b"].as_str().unwrap()), (b.first.as_str(), b.second.as_str()));
    let o = run(&store, &["verify", "head~1", "--json"]);
    assert_eq!(code(&o), 0);
    assert_eq!(json(&o)[0]["snapshot_id"], b.first.as_str());
    let o = run(&store, &["query", "client certificates", "--mode", "lexical", "--snapshot", "HEAD~1", "--json"]);
    assert_eq!(json(&o)["snapshot_id"], b.first.as_str(), "{}", stderr(&o));

    // Past the first build: a typed usage error naming how far back the history goes.
    let o = run(&store, &["show", "HEAD~2", "--json"]);
    assert_eq!(code(&o), 2);
    let e = json(&o);
    assert_eq!(e["error"]["kind"], "usage");
    assert_eq!(e["error"]["exit_code"], 2);
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(msg.contains("HEAD~2") && msg.contains("1 ancestor") && msg.contains(&b.first), "{msg}");
    assert_eq!(code(&run(&store, &["diff", "HEAD~x"])), 2);

    // A writer: promote and rollback take references too, and the head moves.
    let o = run(&store, &["rollback", "--to", "HEAD~1", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(json(&o)["to"], b.first.as_str());
    let o = run(&store, &["promote", &b.second, "--force", "--reason", "back again", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(json(&o)["to"], b.second.as_str());
    assert_eq!(head(&store).as_deref(), Some(b.second.as_str()));
}

#[test]
fn show_gives_status_gate_results_and_reasons_of_a_rejected_build() {
    let b = base();
    let o = run(&b.store, &["show", &b.rejected, "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["status"], "rejected");
    assert_eq!(v["is_head"], false);
    let gates = v["gates"].as_array().unwrap();
    assert!(gates.iter().any(|g| g["name"] == "shrinkage" && g["passed"] == false), "{gates:?}");
    assert!(!v["rejected_because"].as_array().unwrap().is_empty());
    let o = run(&b.store, &["show", &b.rejected]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("status       rejected"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("gate") && l.contains("shrinkage") && l.contains("FAIL")), "{text}");
    assert!(text.lines().any(|l| l.starts_with("rejected ")), "{text}");
}

#[test]
fn history_records_every_writer_command_with_its_actor() {
    let b = base();
    let dir = tempfile::tempdir().unwrap();
    let store = copy_store(dir.path());
    let o = as_actor(&store, Some("alice"), "ignored", &["pin", "HEAD~1", "--reason", "release 1.0"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = as_actor(&store, None, "carol", &["rollback", "--reason", "bad crawl"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = as_actor(&store, Some("bob"), "ignored", &["unpin", &b.first]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = as_actor(&store, Some("dave"), "ignored", &["gc", "--keep", "5"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // A refused writer command is recorded too.
    let o = as_actor(&store, Some("erin"), "ignored", &["promote", &b.rejected]);
    assert_eq!(code(&o), 3);

    let o = run(&store, &["history", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let h = json(&o);
    let rows: Vec<(String, String, String)> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["command"].as_str().unwrap().to_string(),
                e["actor"].as_str().unwrap().to_string(),
                e["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want = [
        ("rebuild", "ok"),
        ("rebuild", "ok"),
        ("rebuild", "rejected"),
        ("pin", "ok"),
        ("rollback", "ok"),
        ("unpin", "ok"),
        ("gc", "ok"),
        ("promote", "refused"),
    ];
    assert_eq!(rows.len(), want.len(), "{rows:?}");
    for ((cmd, _, outcome), (wc, wo)) in rows.iter().zip(want) {
        assert_eq!((cmd.as_str(), outcome.as_str()), (wc, wo), "{rows:?}");
    }
    let actors: Vec<&str> = rows[3..].iter().map(|r| r.1.as_str()).collect();
    assert_eq!(actors, ["alice", "carol", "bob", "dave", "erin"]);
    let arr = h.as_array().unwrap();
    assert_eq!(arr[3]["detail"], "release 1.0");
    assert_eq!(arr[3]["snapshot_id"], b.first.as_str());
    // The head history names the same actor as the audit log.
    let o = run(&store, &["snapshots", "--json"]);
    let list = json(&o);
    let backed = list.as_array().unwrap().iter().find(|s| s["id"] == b.second.as_str()).unwrap();
    assert!(backed["backed_out"]["by"].as_str().unwrap().starts_with("carol@"), "{backed}");
    // Plain text, newest last, and --last.
    let o = run(&store, &["history", "--last", "2"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.lines().last().unwrap().contains("erin"), "{text}");
}

#[test]
fn pins_and_recent_rejected_builds_survive_gc_until_released() {
    let b = base();
    let dir = tempfile::tempdir().unwrap();
    let store = copy_store(dir.path());
    let o = run(&store, &["pin", &b.first, "--reason", "audit copy", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(json(&o)["pinned"], b.first.as_str());
    let o = run(&store, &["show", &b.first, "--json"]);
    assert_eq!(json(&o)["pin_reason"], "audit copy");

    // --keep 1 keeps head by count, the first build by its pin, the rejected one by its age.
    let o = run(&store, &["gc", "--keep", "1", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let rep = json(&o);
    assert!(rep["removed"].as_array().unwrap().is_empty(), "{rep}");
    let why = |id: &str| {
        rep["kept"].as_array().unwrap().iter().find(|k| k[0] == id).map(|k| k[1].as_str().unwrap().to_string())
    };
    assert_eq!(why(&b.first).as_deref(), Some("pinned"));
    assert!(why(&b.rejected).unwrap().contains("--keep-rejected-for"), "{rep}");
    assert!(store.join("snapshots").join(&b.rejected).is_dir());

    // Unpinned and with no grace period for rejected builds, both go.
    let o = run(&store, &["unpin", &b.first, "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(json(&o)["removed"].as_array().unwrap().len(), 1);
    let o = run(&store, &["gc", "--keep", "1", "--keep-rejected-for", "0s", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let mut removed: Vec<String> =
        json(&o)["removed"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    removed.sort();
    let mut want = vec![b.first.clone(), b.rejected.clone()];
    want.sort();
    assert_eq!(removed, want);
    assert_eq!(head(&store).as_deref(), Some(b.second.as_str()));
    // A pin needs a reason; a bad duration is a usage error.
    assert_eq!(code(&run(&store, &["pin", "HEAD"])), 2);
    assert_eq!(code(&run(&store, &["gc", "--keep-rejected-for", "7"])), 2);
}

/// Run `args` with stdout a pipe whose reader has already gone.
fn with_closed_stdout(args: &[&str]) -> Output {
    let mut child = bin().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take());
    let mut err = Vec::new();
    child.stderr.take().unwrap().read_to_end(&mut err).unwrap();
    let status = child.wait().unwrap();
    Output { status, stdout: Vec::new(), stderr: err }
}

#[test]
fn a_closed_stdout_ends_every_command_quietly() {
    let b = base();
    let s = b.store.to_str().unwrap();
    let site = b.site.to_str().unwrap();
    for args in [
        &["--store", s, "snapshots"][..],
        &["--store", s, "snapshots", "--json"],
        &["--store", s, "show", "HEAD"],
        &["--store", s, "history"],
        &["--store", s, "diff", "HEAD~1"],
        &["--store", s, "verify", "--all"],
        &["--store", s, "query", "client certificates", "--mode", "lexical"],
        &["chunk", "--source", site],
        &["chunk", "--source", site, "--json"],
        &["completions", "bash"],
    ] {
        let o = with_closed_stdout(args);
        assert_eq!(code(&o), 0, "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked") && !stderr(&o).contains("Broken pipe"), "{args:?}: {}", stderr(&o));
    }
    // And through a shell pipe whose reader exits after one line.
    let cmd = format!(
        "set -o pipefail; '{}' --store '{s}' snapshots | head -n 1 >/dev/null && '{}' chunk --source '{site}' | head -n 1 >/dev/null",
        env!("CARGO_BIN_EXE_ragsnap"),
        env!("CARGO_BIN_EXE_ragsnap")
    );
    let o = std::process::Command::new("bash").args(["-c", &cmd]).env("RAGSNAP_LOG", "error").output().unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    for bad in ["panicked", "Broken pipe", "error"] {
        assert!(!stderr(&o).contains(bad), "{}", stderr(&o));
    }
}

#[test]
fn errors_under_json_are_one_json_object_with_the_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let o = run(&missing, &["snapshots", "--json"]);
    assert_eq!(code(&o), 2);
    let e = json(&o);
    assert_eq!(e["error"]["kind"], "usage");
    assert_eq!(e["error"]["exit_code"], 2);
    assert!(e["error"]["message"].as_str().unwrap().contains("no ragsnap store"));
    // A flag clap refuses, with --json anywhere on the line.
    let o = bin().args(["--json", "query"]).output().unwrap();
    assert_eq!(code(&o), 2);
    assert_eq!(json(&o)["error"]["kind"], "usage");
    // Without --json: clap's own message, exit 2, nothing on stdout.
    let o = bin().args(["gc", "--keep", "x"]).output().unwrap();
    assert_eq!(code(&o), 2);
    assert!(o.stdout.is_empty());

    let b = base();
    let store = copy_store(dir.path());
    // Refusals keep their exit code and are JSON too.
    let o = run(&store, &["promote", &b.rejected, "--json"]);
    assert_eq!(code(&o), 3);
    assert_eq!(json(&o)["error"]["kind"], "refused");
    // A refused query has an empty hits list.
    let o = run(&store, &["query", "zzqx vbnm", "--mode", "lexical", "--json"]);
    assert_eq!(code(&o), 3);
    assert_eq!(json(&o)["hits"], serde_json::json!([]));
    // cache prune has --json.
    let o = run(&store, &["cache", "prune", "--all", "--dry-run", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(json(&o)["vectors"].as_u64().unwrap() > 0);
}

#[test]
fn verbose_rebuild_shows_stage_timings_without_colours_or_parser_debug() {
    let err = &base().verbose_stderr;
    for stage in ["read", "chunk", "embed", "index", "gates", "publish"] {
        assert!(err.contains(&format!("stage {stage} done in")), "no timing for {stage}:\n{err}");
    }
    assert!(!err.contains('\u{1b}'), "ANSI codes in a log that is not a terminal");
    assert!(err.lines().count() < 400, "{} lines: third-party debug output leaked", err.lines().count());
}

#[test]
fn lexical_queries_answer_without_the_model_and_hits_carry_every_score() {
    let b = base();
    let s = b.store.to_str().unwrap();
    let no_model = ["--store", s, "--model-dir", "/nonexistent/model", "--ort-lib", "/nonexistent/libonnxruntime.so"];
    let o =
        bin().args(no_model).args(["query", "client certificates", "--mode", "lexical", "--json"]).output().unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let q = json(&o);
    let hits = q["hits"].as_array().unwrap();
    assert!(!hits.is_empty());
    for h in hits {
        assert!(h["cosine"].is_null() && h["fused"].is_null(), "{h}");
        assert_eq!(h["score"], h["lexical"], "lexical hits are ordered by their BM25 score");
    }
    // The same runtime fails a hybrid query: proof the lexical one never looked for the model.
    let o = bin().args(no_model).args(["query", "client certificates", "--json"]).output().unwrap();
    assert_eq!(code(&o), 1);
    assert!(json(&o)["error"]["message"].as_str().unwrap().contains("/nonexistent/"));

    // Hybrid: score is the fused score hits are ordered by; cosine and lexical are there.
    let o = run(&b.store, &["query", "how do I require client certificates from workers?", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let q = json(&o);
    let hits = q["hits"].as_array().unwrap();
    let scores: Vec<f64> = hits.iter().map(|h| h["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    for h in hits {
        assert_eq!(h["score"], h["fused"]);
        assert!(h["cosine"].as_f64().is_some());
    }
}

#[test]
fn config_paths_resolve_against_the_config_file_folder() {
    let b = base();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("etc");
    copy_tree(&b.store, &conf.join("data/store"));
    std::fs::write(conf.join("ragsnap.toml"), "store = \"data/store\"\n").unwrap();
    // The binary runs in the repository root, not beside the config file.
    let o = bin().args(["--config", conf.join("ragsnap.toml").to_str().unwrap(), "show", "--json"]).output().unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(json(&o)["snapshot_id"], b.second.as_str());
    // The environment overrides the file, a flag overrides both.
    let elsewhere = dir.path().join("missing");
    let o = bin()
        .env("RAGSNAP_STORE", &elsewhere)
        .args(["--config", conf.join("ragsnap.toml").to_str().unwrap(), "show"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 2, "RAGSNAP_STORE wins over the file");
    let o = bin()
        .env("RAGSNAP_STORE", &elsewhere)
        .args(["--config", conf.join("ragsnap.toml").to_str().unwrap(), "--store"])
        .arg(conf.join("data/store"))
        .args(["show"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "--store wins over the environment: {}", stderr(&o));
}
