//! `ragsnap serve` as a real process on a loopback port, over a real store and the real model,
//! asked over real HTTP.

mod common;
use common::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const ANSWERABLE: &str = "how do I require client certificates from workers?";
const UNANSWERABLE: &str = "Who won the 1998 FIFA World Cup final?";

fn store_copy(into: &Path) -> PathBuf {
    let (dir, _, _) = built_store();
    let store = into.join("store");
    copy_tree(&dir.path().join("store"), &store);
    // Leases of the builder's processes are not this copy's business.
    let _ = std::fs::remove_dir_all(store.join("leases"));
    std::fs::create_dir_all(store.join("leases")).unwrap();
    store
}

/// The service process; killed when dropped.
struct Service {
    child: Child,
    base: String,
    snapshot_at_start: String,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(store: &Path, extra: &[&str], token: Option<&str>) -> Service {
    let mut cmd = bin();
    cmd.arg("--store").arg(store).args(["serve", "--listen", "127.0.0.1:0"]).args(extra);
    cmd.env_remove("RAGSNAP_SERVE_TOKEN");
    if let Some(t) = token {
        cmd.env("RAGSNAP_SERVE_TOKEN", t);
    }
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no listening line from the service: {line:?}"))
        .to_string();
    let snapshot_at_start = line.trim_end().rsplit(' ').next().unwrap().trim_end_matches(')').to_string();
    Service { child, base: url, snapshot_at_start }
}

/// A `/proc/PID/status` field in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn post(
    a: &ureq::Agent,
    url: &str,
    token: Option<&str>,
    body: &serde_json::Value,
) -> (u16, serde_json::Value, Option<String>) {
    let mut r = a.post(url);
    if let Some(t) = token {
        r = r.header("Authorization", &format!("Bearer {t}"));
    }
    let mut resp = r.send_json(body).unwrap();
    let status = resp.status().as_u16();
    let retry = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
    let text = resp.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)), retry)
}

fn get(a: &ureq::Agent, url: &str, token: Option<&str>) -> (u16, String) {
    let mut r = a.get(url);
    if let Some(t) = token {
        r = r.header("Authorization", &format!("Bearer {t}"));
    }
    let mut resp = r.call().unwrap();
    (resp.status().as_u16(), resp.body_mut().read_to_string().unwrap())
}

#[test]
fn serve_answers_refuses_and_reports_its_snapshot_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_copy(dir.path());
    let (_, _, head) = built_store();
    let token = "a-test-token-of-some-length";
    let svc = start(&store, &["--concurrency", "2"], Some(token));
    assert_eq!(&svc.snapshot_at_start, head);
    let a = agent();
    let t = Some(token);

    // No token: refused, but the probes stay open.
    let (status, body, _) =
        post(&a, &format!("{}/v1/query", svc.base), None, &serde_json::json!({"query": ANSWERABLE}));
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["kind"], "unauthorized");
    let (status, _, _) = post(
        &a,
        &format!("{}/v1/query", svc.base),
        Some("a-test-token-of-some-lengtH"),
        &serde_json::json!({"query": ANSWERABLE}),
    );
    assert_eq!(status, 401, "a token differing in one letter");
    // The scheme is case-insensitive.
    let mut resp = a
        .post(&format!("{}/v1/query", svc.base))
        .header("Authorization", &format!("bearer {token}"))
        .send_json(serde_json::json!({"query": ANSWERABLE, "k": 1}))
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "{}", resp.body_mut().read_to_string().unwrap());
    assert_eq!(get(&a, &format!("{}/healthz", svc.base), None).0, 200);
    let (status, ready) = get(&a, &format!("{}/readyz", svc.base), None);
    assert_eq!(status, 200, "{ready}");
    assert!(ready.contains(head.as_str()), "{ready}");

    // Answered.
    let (status, body, _) =
        post(&a, &format!("{}/v1/query", svc.base), t, &serde_json::json!({"query": ANSWERABLE, "k": 2}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["snapshot_id"], head.as_str());
    assert_eq!(body["outcome"], "hits");
    let hits = body["hits"].as_array().unwrap();
    assert!(!hits.is_empty() && hits.len() <= 2, "{body}");
    assert!(hits[0]["source_path"].as_str().is_some() && hits[0]["score"].as_f64().unwrap() > 0.3);
    assert_eq!(body["truncated"], false);

    // Refused: an answer with no hits and a reason, not an error.
    let (status, body, _) = post(&a, &format!("{}/v1/query", svc.base), t, &serde_json::json!({"query": UNANSWERABLE}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"], "no_confident_match");
    assert_eq!(body["hits"], serde_json::json!([]));
    assert!(body["reason"].as_str().unwrap().contains("no confident match: no cosine reached the floor"), "{body}");

    // A query far over the model's input length is cut, and says so.
    let long = format!("{ANSWERABLE} {}", "worker certificate rotation ".repeat(200));
    let (status, body, _) =
        post(&a, &format!("{}/v1/query", svc.base), t, &serde_json::json!({"query": long, "mode": "dense"}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["truncated"], true, "{body}");

    // Batch: every result from one snapshot.
    let (status, body, _) = post(
        &a,
        &format!("{}/v1/query/batch", svc.base),
        t,
        &serde_json::json!({"queries": [{"query": ANSWERABLE}, {"query": UNANSWERABLE}, {"query": " "}]}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["snapshot_id"], head.as_str());
    let results = body["results"].as_array().unwrap();
    assert_eq!(results[0]["outcome"], "hits");
    assert_eq!(results[1]["outcome"], "no_confident_match");
    assert_eq!(results[2]["error"]["kind"], "invalid_request");

    // Bad requests are typed 400s / 413s.
    for bad in [
        serde_json::json!({"query": ANSWERABLE, "k": 0}),
        serde_json::json!({"query": ANSWERABLE, "colour": "blue"}),
        serde_json::json!({"query": ANSWERABLE, "mode": "psychic"}),
        serde_json::json!({"query": ""}),
        serde_json::json!({"query": ANSWERABLE, "k": 1_000_000_000_000u64}),
        serde_json::json!({"query": ANSWERABLE, "timeout_ms": 0}),
        serde_json::json!({"query": ANSWERABLE, "timeout_ms": -5}),
        serde_json::json!({"query": ANSWERABLE, "snapshot": "HEAD~x"}),
        serde_json::json!(["not", "an", "object"]),
    ] {
        let (status, body, _) = post(&a, &format!("{}/v1/query", svc.base), t, &bad);
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"]["kind"], "invalid_request", "{body}");
    }
    let huge = serde_json::json!({"query": "x".repeat(100_000)});
    let (status, body, _) = post(&a, &format!("{}/v1/query", svc.base), t, &huge);
    assert_eq!(status, 413, "{body}");
    let mut resp = a
        .post(&format!("{}/v1/query", svc.base))
        .header("Authorization", &format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .send("{\"query\": ")
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400, "truncated JSON");
    let body: serde_json::Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(body["error"]["kind"], "invalid_request");
    let (status, body) = get(&a, &format!("{}/v1/query", svc.base), t);
    assert_eq!(status, 405, "{body}");
    assert!(body.contains("method_not_allowed"), "{body}");

    // A deadline the work cannot meet: 504, and the service goes on answering.
    let many: Vec<_> = (0..32).map(|i| serde_json::json!({"query": format!("{ANSWERABLE} {i}")})).collect();
    let (status, body, _) =
        post(&a, &format!("{}/v1/query/batch", svc.base), t, &serde_json::json!({"queries": many, "timeout_ms": 1}));
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["error"]["kind"], "deadline_exceeded");
    let (status, _, _) = post(&a, &format!("{}/v1/query", svc.base), t, &serde_json::json!({"query": ANSWERABLE}));
    assert_eq!(status, 200);

    // Head and snapshots.
    let (status, h) = get(&a, &format!("{}/v1/head", svc.base), t);
    assert_eq!(status, 200);
    let h: serde_json::Value = serde_json::from_str(&h).unwrap();
    assert_eq!(h["snapshot_id"], head.as_str());
    assert_eq!(h["store_head"], head.as_str());
    assert_eq!(h["ready"], true);
    assert_eq!(h["fingerprint_id"], h["embedder_fingerprint_id"]);
    let (status, list) = get(&a, &format!("{}/v1/snapshots", svc.base), t);
    assert_eq!(status, 200);
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list["snapshots"].as_array().unwrap().len(), 2);

    // Metrics: the outcomes above, per snapshot.
    assert_eq!(get(&a, &format!("{}/metrics", svc.base), None).0, 401);
    let (status, m) = get(&a, &format!("{}/metrics", svc.base), t);
    assert_eq!(status, 200);
    let line = |name: &str| {
        let key = format!("{name}{{snapshot=\"{head}\"}} ");
        m.lines().find_map(|l| l.strip_prefix(key.as_str())).unwrap_or_else(|| panic!("no {key} in\n{m}")).to_string()
    };
    assert_eq!(line("ragsnap_serve_answered_total"), "5", "{m}");
    assert_eq!(line("ragsnap_serve_refused_total"), "2", "{m}");
    assert_eq!(line("ragsnap_serve_timed_out_total"), "1", "{m}");
    assert!(m.contains("ragsnap_serve_query_duration_seconds_bucket{mode=\"hybrid\",le=\"+Inf\"}"), "{m}");
    assert!(m.contains(&format!("ragsnap_serve_top1_score_count{{snapshot=\"{head}\"}}")), "{m}");
    assert!(m.contains("ragsnap_serve_ready 1"), "{m}");
}

#[test]
fn overload_is_shed_at_once_and_admitted_requests_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_copy(dir.path());
    let svc = start(&store, &["--concurrency", "1", "--queue", "1", "--sessions", "1", "--timeout-ms", "30000"], None);
    let url = format!("{}/v1/query/batch", svc.base);
    // Memory stays flat: the peak during the overload is measured from the resident size now.
    let pid = svc.child.id();
    let _ = post(&agent(), &url, None, &serde_json::json!({"queries": [{"query": ANSWERABLE}]}));
    let rss_before = status_kib(pid, "VmRSS:");
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
    // Each request is a batch heavy enough to hold its slot while the others arrive.
    let batch: Vec<_> = (0..24).map(|i| serde_json::json!({"query": format!("{ANSWERABLE} variant {i}")})).collect();
    let body = serde_json::json!({ "queries": batch });
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (url, body) = (url.clone(), body.clone());
            std::thread::spawn(move || {
                let t = Instant::now();
                let (status, v, retry) = post(&agent(), &url, None, &body);
                (status, v, retry, t.elapsed())
            })
        })
        .collect();
    let results: Vec<_> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let ok = results.iter().filter(|r| r.0 == 200).count();
    let shed: Vec<_> = results.iter().filter(|r| r.0 == 503).collect();
    assert_eq!(
        ok + shed.len(),
        results.len(),
        "only 200 or 503: {:?}",
        results.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    assert!((1..=3).contains(&ok), "at most concurrency + queue admitted at once (a late one may find room): {ok}");
    assert!(shed.len() >= 5, "{} shed", shed.len());
    for (_, v, retry, took) in &shed {
        assert_eq!(v["error"]["kind"], "overloaded");
        assert_eq!(retry.as_deref(), Some("1"));
        assert!(*took < Duration::from_millis(1500), "shed answers are fast, took {took:?}");
    }
    for (status, v, _, _) in results.iter().filter(|r| r.0 == 200) {
        assert_eq!(*status, 200);
        assert_eq!(v["results"].as_array().unwrap().len(), 24);
    }
    let peak = status_kib(pid, "VmHWM:");
    eprintln!("resident {rss_before} KiB before the overload, peak {peak} KiB during it");
    assert!(peak < rss_before + 64 * 1024, "peak {peak} KiB vs {rss_before} KiB before");
    let (_, m) = get(&agent(), &format!("{}/metrics", svc.base), None);
    let shed_line = format!("ragsnap_serve_shed_total{{snapshot=\"{}\"}} {}", svc.snapshot_at_start, shed.len());
    assert!(m.contains(&shed_line), "{shed_line} not in\n{m}");
}

#[test]
fn a_rollback_loop_under_queries_fails_none_and_every_answer_names_its_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_copy(dir.path());
    let (_, first, second) = built_store();
    let svc = start(&store, &["--refresh-ms", "100"], None);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let client = {
        let (url, stop) = (format!("{}/v1/query", svc.base), stop.clone());
        std::thread::spawn(move || {
            let a = agent();
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let (status, v, _) = post(&a, &url, None, &serde_json::json!({"query": ANSWERABLE, "k": 1}));
                seen.push((status, v["snapshot_id"].as_str().unwrap_or("").to_string()));
            }
            seen
        })
    };
    let wait_for = |want: &str| {
        let t = Instant::now();
        loop {
            let (_, h) = get(&agent(), &format!("{}/v1/head", svc.base), None);
            let h: serde_json::Value = serde_json::from_str(&h).unwrap();
            if h["snapshot_id"] == want {
                return t.elapsed();
            }
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "service still on {} after 5 s, head is {want}",
                h["snapshot_id"]
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let mut switch_times = Vec::new();
    for _ in 0..2 {
        let o = run(&store, &["rollback", "--to", first, "--reason", "test"]);
        assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
        switch_times.push(wait_for(first));
        let o = run(&store, &["promote", second, "--force", "--reason", "test"]);
        assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
        switch_times.push(wait_for(second));
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = client.join().unwrap();
    let failed: Vec<_> = seen.iter().filter(|(s, _)| *s != 200).collect();
    assert!(failed.is_empty(), "{} of {} failed: {failed:?}", failed.len(), seen.len());
    assert!(seen.iter().all(|(_, id)| id == first || id == second), "{seen:?}");
    assert!(seen.iter().any(|(_, id)| id == first) && seen.iter().any(|(_, id)| id == second));
    eprintln!("{} queries during 4 head moves; switch seen after {switch_times:?}", seen.len());
    // The refresh runs every 100 ms; opening and checking the snapshot takes the rest (3 s of slack
    // for a loaded machine).
    assert!(switch_times.iter().all(|t| *t < Duration::from_secs(3)), "{switch_times:?}");
}

#[test]
fn listening_beyond_loopback_without_a_token_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let o = bin()
        .arg("--store")
        .arg(dir.path())
        .args(["serve", "--listen", "0.0.0.0:0"])
        .env_remove("RAGSNAP_SERVE_TOKEN")
        .output()
        .unwrap();
    assert_eq!(code(&o), 2, "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("bearer token"));
    let o = run(dir.path(), &["serve", "--concurrency", "0"]);
    assert_eq!(code(&o), 2);
    // A token file others can read is no secret; an empty one is no token.
    let token = dir.path().join("token");
    std::fs::write(&token, "a-test-token-of-some-length\n").unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = run(dir.path(), &["serve", "--token-file", token.to_str().unwrap()]);
    assert_eq!(code(&o), 2, "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("other users may access it"));
    std::fs::write(&token, "\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = run(dir.path(), &["serve", "--token-file", token.to_str().unwrap()]);
    assert_eq!(code(&o), 2, "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("empty"));
    // A folder that is not a store: a usage error naming it, before any model is loaded.
    let other = dir.path().join("not-a-store");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "mine").unwrap();
    let o = run(&other, &["serve"]);
    assert_eq!(code(&o), 2, "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not-a-store"), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(other.join("notes.txt").exists() && !other.join("catalog.sqlite").exists());
}

#[test]
fn a_head_built_with_another_model_is_never_searched_and_readyz_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_copy(dir.path());
    let (_, _, head) = built_store();
    let svc = start(&store, &["--refresh-ms", "100"], None);
    // Another embedding identity: the same weights read with a shorter input length.
    let model = repo_root().join(".cache/runtime/models/minilm-l6-int8");
    let other = dir.path().join("other-model");
    std::fs::create_dir_all(&other).unwrap();
    for f in ["model.onnx", "tokenizer.json"] {
        std::os::unix::fs::symlink(model.join(f).canonicalize().unwrap(), other.join(f)).unwrap();
    }
    let toml = std::fs::read_to_string(model.join("model.toml")).unwrap();
    assert!(toml.contains("max_tokens = 256"));
    std::fs::write(other.join("model.toml"), toml.replace("max_tokens = 256", "max_tokens = 128")).unwrap();
    // A few pages are enough (the shrinkage gate rejects the build; it is promoted by hand).
    let small = dir.path().join("small");
    copy_tree(&repo_root().join("fixtures/site/guide"), &small);
    let o = bin()
        .arg("--store")
        .arg(&store)
        .arg("--model-dir")
        .arg(&other)
        .args(["rebuild", "--source", small.to_str().unwrap(), "--allow-model-change", "--json"])
        .output()
        .unwrap();
    assert!([0, 6].contains(&code(&o)), "{}", String::from_utf8_lossy(&o.stderr));
    let foreign = json(&o)["snapshot_id"].as_str().unwrap().to_string();
    let o = run(&store, &["promote", &foreign, "--force", "--allow-model-change", "--reason", "test"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));

    let a = agent();
    let t = Instant::now();
    loop {
        let (status, body) = get(&a, &format!("{}/readyz", svc.base), None);
        if status == 503 {
            assert!(body.contains("embedding_version_mismatch") && body.contains(&foreign), "{body}");
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(5), "readyz still {status} after the model changed: {body}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, body, _) =
        post(&a, &format!("{}/v1/query", svc.base), None, &serde_json::json!({"query": ANSWERABLE}));
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["kind"], "embedding_version_mismatch", "{body}");
    assert!(body.get("hits").is_none());
    // Named: the foreign snapshot is a typed 409, never searched; one of this model still answers.
    let (status, body, _) = post(
        &a,
        &format!("{}/v1/query", svc.base),
        None,
        &serde_json::json!({"query": ANSWERABLE, "snapshot": foreign}),
    );
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["kind"], "embedding_version_mismatch", "{body}");
    let (status, body, _) =
        post(&a, &format!("{}/v1/query", svc.base), None, &serde_json::json!({"query": ANSWERABLE, "snapshot": head}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["snapshot_id"], head.as_str());

    // Rolling back to a snapshot of this model makes it ready again.
    let o = run(&store, &["rollback", "--to", head, "--allow-model-change", "--reason", "wrong model"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let t = Instant::now();
    while get(&a, &format!("{}/readyz", svc.base), None).0 != 200 {
        assert!(t.elapsed() < Duration::from_secs(5), "not ready again after the rollback");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, body, _) =
        post(&a, &format!("{}/v1/query", svc.base), None, &serde_json::json!({"query": ANSWERABLE}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["snapshot_id"], head.as_str());
}

#[test]
fn a_request_may_name_a_snapshot_and_an_unknown_one_is_a_typed_404() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_copy(dir.path());
    let (_, first, second) = built_store();
    let svc = start(&store, &["--snapshot-cache", "1"], None);
    let a = agent();
    let url = format!("{}/v1/query", svc.base);
    for (spec, want) in [("HEAD", second), ("HEAD~1", first), (first.as_str(), first), (second.as_str(), second)] {
        let (status, body, _) =
            post(&a, &url, None, &serde_json::json!({"query": ANSWERABLE, "k": 1, "snapshot": spec}));
        assert_eq!(status, 200, "{spec}: {body}");
        assert_eq!(body["snapshot_id"], want.as_str(), "{spec}");
        assert_eq!(body["outcome"], "hits", "{spec}: {body}");
    }
    for spec in ["s20000101T000000Z-000000", "HEAD~9", "../../etc/passwd"] {
        let (status, body, _) = post(&a, &url, None, &serde_json::json!({"query": ANSWERABLE, "snapshot": spec}));
        assert_eq!(status, 404, "{spec}: {body}");
        assert_eq!(body["error"]["kind"], "snapshot_not_found", "{spec}: {body}");
    }
    let (status, body, _) = post(
        &a,
        &format!("{}/v1/query/batch", svc.base),
        None,
        &serde_json::json!({"snapshot": "HEAD~1", "queries": [{"query": ANSWERABLE}, {"query": ANSWERABLE, "snapshot": "HEAD"}]}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["snapshot_id"], first.as_str());
    assert_eq!(body["results"][0]["snapshot_id"], first.as_str());
    assert_eq!(body["results"][1]["error"]["kind"], "invalid_request", "{body}");
    // Head is untouched by the requests above; the other snapshot stays open for the next ones.
    let (_, h) = get(&a, &format!("{}/v1/head", svc.base), None);
    let h: serde_json::Value = serde_json::from_str(&h).unwrap();
    assert_eq!(h["snapshot_id"], second.as_str());
    assert_eq!(h["other_snapshots_open"], serde_json::json!([first]));
}

/// Read from `s` until the peer closes or `within` passes; returns what came and whether it closed.
fn read_until_closed(s: &mut std::net::TcpStream, within: Duration) -> (String, bool) {
    use std::io::Read as _;
    s.set_read_timeout(Some(within)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return (String::from_utf8_lossy(&got).into_owned(), true)
            }
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
        }
    }
}

#[test]
fn slow_clients_are_cut_off_and_hold_no_slot() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let store = store_copy(dir.path());
    let svc = start(
        &store,
        &["--read-timeout-ms", "500", "--concurrency", "1", "--queue", "0", "--max-connections", "2"],
        None,
    );
    let addr = svc.base.trim_start_matches("http://").to_string();
    // Two idle connections take both places: a third is closed at once, not after the timeout.
    let held: Vec<_> = (0..2).map(|_| std::net::TcpStream::connect(&addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    let mut third = std::net::TcpStream::connect(&addr).unwrap();
    let (_, closed) = read_until_closed(&mut third, Duration::from_secs(5));
    assert!(closed && t.elapsed() < Duration::from_millis(400), "third closed {closed} after {:?}", t.elapsed());
    for mut h in held {
        let (_, closed) = read_until_closed(&mut h, Duration::from_secs(5));
        assert!(closed, "an idle connection stays open");
    }
    // Half a request line, then nothing: the connection is closed, with no answer.
    let t = Instant::now();
    let mut half = std::net::TcpStream::connect(&addr).unwrap();
    half.write_all(b"POST /v1/qu").unwrap();
    let (got, closed) = read_until_closed(&mut half, Duration::from_secs(5));
    assert!(closed && got.is_empty(), "closed {closed}, got {got:?}");
    assert!(t.elapsed() < Duration::from_secs(3), "closed after {:?}", t.elapsed());
    // A connection that says nothing at all is closed the same way.
    let mut idle = std::net::TcpStream::connect(&addr).unwrap();
    let (_, closed) = read_until_closed(&mut idle, Duration::from_secs(5));
    assert!(closed, "an idle connection stays open");
    // Headers, then a body that stops short: 408, and the only place it held is free again.
    let t = Instant::now();
    let mut slow = std::net::TcpStream::connect(&addr).unwrap();
    slow.write_all(
        b"POST /v1/query HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"query\": ",
    )
    .unwrap();
    let (got, _) = read_until_closed(&mut slow, Duration::from_secs(5));
    assert!(got.starts_with("HTTP/1.1 408"), "{got:?}");
    assert!(got.contains("body_timeout"), "{got:?}");
    assert!(t.elapsed() < Duration::from_secs(3), "answered after {:?}", t.elapsed());
    let (status, body, _) =
        post(&agent(), &format!("{}/v1/query", svc.base), None, &serde_json::json!({"query": ANSWERABLE}));
    assert_eq!(status, 200, "{body}");
}

/// A run of lowercase words from `text`, long enough to be found only in that chunk and stored
/// as is in the chunk table (no character JSON would escape).
fn plain_words(text: &str) -> String {
    let mut run: Vec<&str> = Vec::new();
    for w in text.split(' ') {
        if !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase()) {
            run.push(w);
            if run.join(" ").len() >= 24 {
                return run.join(" ");
            }
        } else {
            run.clear();
        }
    }
    panic!("no run of plain words in {text:?}")
}

/// Overwrite `old` with `new` (same length) inside `path` without a new inode; with
/// `keep_time` the modification time is put back, as silent bit rot would leave it.
fn damage_in_place(path: &Path, old: &str, new: &str, keep_time: bool) {
    use std::os::unix::fs::FileExt as _;
    assert_eq!(old.len(), new.len());
    let meta = std::fs::metadata(path).unwrap();
    let bytes = std::fs::read(path).unwrap();
    let at =
        bytes.windows(old.len()).position(|w| w == old.as_bytes()).unwrap_or_else(|| panic!("{old:?} not in {path:?}"));
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(new.as_bytes(), at as u64).unwrap();
    if keep_time {
        f.set_modified(meta.modified().unwrap()).unwrap();
    }
}

#[test]
fn a_snapshot_damaged_on_disk_while_serving_answers_nothing_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_copy(dir.path());
    let (_, first, second) = built_store();
    let svc = start(&store, &["--refresh-ms", "100"], None);
    let a = agent();
    let url = format!("{}/v1/query", svc.base);
    let ask =
        |snapshot: &str| post(&a, &url, None, &serde_json::json!({"query": ANSWERABLE, "k": 1, "snapshot": snapshot}));
    let (status, body, _) = ask("HEAD");
    assert_eq!(status, 200, "{body}");
    let words = plain_words(body["hits"][0]["text"].as_str().unwrap());
    let ready = |want: u16| {
        let t = Instant::now();
        loop {
            let (status, body) = get(&agent(), &format!("{}/readyz", svc.base), None);
            if status == want {
                return body;
            }
            assert!(t.elapsed() < Duration::from_secs(5), "readyz still {status}: {body}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    // 1. Head's chunk table written in place: the head poll sees the file change, verifies again, fails.
    damage_in_place(&store.join("snapshots").join(second).join("chunks.bin"), &words, &words.to_uppercase(), false);
    let body = ready(503);
    assert!(body.contains("\"snapshot_damaged\":true"), "{body}");
    let (status, body, _) = ask("HEAD");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["kind"], "snapshot_damaged", "{body}");
    // Rolling back to a sound snapshot serves again.
    let o = run(&store, &["rollback", "--to", first, "--reason", "test"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    ready(200);
    let (status, body, _) = ask("HEAD");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["snapshot_id"], first.as_str());
    // 2. Bit rot that leaves the file's time alone: the hit's text no longer hashes to its id.
    let words = plain_words(body["hits"][0]["text"].as_str().unwrap());
    damage_in_place(&store.join("snapshots").join(first).join("chunks.bin"), &words, &words.to_uppercase(), true);
    std::thread::sleep(Duration::from_millis(300));
    let (status, body, _) = ask("HEAD");
    assert_eq!(status, 503, "the damaged text was served: {body}");
    assert_eq!(body["error"]["kind"], "snapshot_damaged", "{body}");
    ready(503);
    // 3. A service started on that store opens nothing: not ready, and it says why.
    drop(svc);
    let svc = start(&store, &[], None);
    let (status, body) = get(&agent(), &format!("{}/readyz", svc.base), None);
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("head_unreadable") && body.contains("chunks.bin"), "{body}");
    let (status, body, _) =
        post(&agent(), &format!("{}/v1/query", svc.base), None, &serde_json::json!({"query": ANSWERABLE}));
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["kind"], "not_ready", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains(first.as_str()), "{body}");
}
