//! `ragsnap publish` / `pull` / `serve --follow` through object storage: a local-filesystem URL
//! and a real S3-API server (moto) on 127.0.0.1, with the real binary, model and stores.

mod common;
use common::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn source_store() -> PathBuf {
    built_store().0.path().join("store")
}

fn ok(o: &std::process::Output) -> serde_json::Value {
    assert_eq!(code(o), 0, "stderr: {}", String::from_utf8_lossy(&o.stderr));
    json(o)
}

fn files_of(remote: &Path, sub: &str) -> Vec<PathBuf> {
    match std::fs::read_dir(remote.join(sub)) {
        Ok(rd) => rd
            .map(|e| e.unwrap().path())
            .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('#'))
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn publish_and_pull_through_a_shared_folder_upload_once_verify_everything_and_refuse_corruption() {
    let (_, first, second) = built_store();
    let src = source_store();
    let dir = tempfile::tempdir().unwrap();
    let remote_dir = dir.path().join("remote");
    let url = format!("file://{}", remote_dir.display());

    // A publish killed after its first upload leaves no head; the next one completes and does
    // not upload that artifact again.
    let o = bin()
        .arg("--store")
        .arg(&src)
        .args(["publish", "--to", &url, "--json"])
        .env("RAGSNAP_FAILPOINT", "publish-after-object")
        .output()
        .unwrap();
    assert_ne!(code(&o), 0, "the failpoint kills the publish");
    assert_eq!(files_of(&remote_dir, "objects").len(), 1, "one artifact was uploaded before the kill");
    assert!(files_of(&remote_dir, "heads").is_empty(), "no head entry after a killed publish");

    let rep = ok(&run(&src, &["publish", "--to", &url, "--json"]));
    assert_eq!(rep["snapshot_id"], second.as_str());
    assert_eq!(rep["already_there"], 1);
    let artifacts = rep["uploaded"].as_u64().unwrap() + 1;
    assert!(artifacts >= 4, "{rep}");
    assert_eq!(rep["head_seq"], 1);
    // Again: nothing to upload, head already names it.
    let rep = ok(&run(&src, &["publish", "HEAD", "--to", &url, "--json"]));
    assert_eq!(rep["uploaded"], 0);
    assert_eq!(rep["already_there"].as_u64().unwrap(), artifacts);
    assert_eq!(rep["head_seq"], serde_json::Value::Null);

    // A replica pulls the head: checked, registered, head.
    let replica = dir.path().join("replica");
    let rep = ok(&run(&replica, &["pull", "--from", &url, "--json"]));
    assert_eq!(rep["snapshot_id"], second.as_str());
    assert_eq!(rep["downloaded"].as_u64().unwrap(), artifacts);
    assert_eq!(rep["head_moved"], true);
    assert_eq!(head(&replica).as_deref(), Some(second.as_str()));
    assert_eq!(code(&run(&replica, &["verify"])), 0);
    let q = run(&replica, &["query", "how do I require client certificates from workers?", "--json"]);
    assert_eq!(json(&q)["snapshot_id"], second.as_str());

    // Rollback is publishing the older snapshot; a corrupted object of it stops the pull
    // before anything is registered.
    // (Named as the CLI's query names it: HEAD~1 is the first build.)
    let rep = ok(&run(&src, &["publish", "HEAD~1", "--to", &url, "--json"]));
    assert_eq!(rep["snapshot_id"], first.as_str());
    assert_eq!(rep["head_seq"], 2);
    let local_second: Vec<String> = std::fs::read_dir(src.join("snapshots").join(second))
        .unwrap()
        .map(|e| blake3::hash(&std::fs::read(e.unwrap().path()).unwrap()).to_hex().to_string())
        .collect();
    let only_first: Vec<PathBuf> = files_of(&remote_dir, "objects")
        .into_iter()
        .filter(|p| !local_second.contains(&p.file_name().unwrap().to_string_lossy().to_string()))
        .collect();
    assert!(!only_first.is_empty(), "the older snapshot has artifacts of its own");
    let victim = &only_first[0];
    let good = std::fs::read(victim).unwrap();
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x40;
    std::fs::write(victim, &bad).unwrap();
    let o = run(&replica, &["pull", "--from", &url]);
    assert_eq!(code(&o), 4, "corrupt object exits 4: {}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains(&victim.file_name().unwrap().to_string_lossy().to_string()));
    assert_eq!(head(&replica).as_deref(), Some(second.as_str()), "local head unchanged");
    // Truncated: the same.
    std::fs::write(victim, &good[..good.len() - 100]).unwrap();
    let o = run(&replica, &["pull", "--from", &url]);
    assert_eq!(code(&o), 4, "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(head(&replica).as_deref(), Some(second.as_str()));
    let listed = json(&run(&replica, &["snapshots", "--json"]));
    assert_eq!(listed.as_array().unwrap().len(), 1, "nothing registered: {listed}");
    // Repaired remote: the pull completes, reusing what the replica already has.
    std::fs::write(victim, &good).unwrap();
    let rep = ok(&run(&replica, &["pull", "--from", &url, "--json"]));
    assert_eq!(rep["snapshot_id"], first.as_str());
    assert!(rep["reused"].as_u64().unwrap() + rep["downloaded"].as_u64().unwrap() >= 4);
    assert_eq!(head(&replica).as_deref(), Some(first.as_str()));

    // Two publishers that read the same head: the one that writes second fails (exit 5) and
    // overwrites nothing.
    let slow = bin()
        .arg("--store")
        .arg(&src)
        .args(["publish", second, "--to", &url, "--json"])
        .env("RAGSNAP_FAILPOINT", "publish-pause-before-head")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let rep = ok(&run(&src, &["publish", second, "--to", &url, "--json"]));
    assert_eq!(rep["head_seq"], 3);
    let o = slow.wait_with_output().unwrap();
    assert_eq!(code(&o), 5, "the late publisher loses: {}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("another publisher"));
    assert_eq!(files_of(&remote_dir, "heads").len(), 3);

    // Bad URLs are usage errors.
    assert_eq!(code(&run(&src, &["publish", "--to", "ftp://x/y"])), 2);
    assert_eq!(code(&run(&src, &["publish", "--to", "s3:///nobucket"])), 2);
}

/// moto's S3 server on a free loopback port; killed when dropped.
struct S3Server {
    child: Child,
    endpoint: String,
    python: String,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn s3_server() -> Option<S3Server> {
    let script = repo_root().join("scripts/s3_test_server.sh");
    let o = Command::new("bash").arg(&script).output().unwrap();
    if !o.status.success() {
        eprintln!(
            "SKIPPED: the S3 test server's virtual environment could not be built ({}): {}",
            script.display(),
            String::from_utf8_lossy(&o.stderr)
        );
        return None;
    }
    let python = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(&python)
        .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = S3Server { child, endpoint: format!("http://127.0.0.1:{port}"), python };
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t.elapsed() < Duration::from_secs(30), "moto did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(server)
}

fn with_s3(mut c: Command, endpoint: &str) -> Command {
    c.env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT", endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE");
    c
}

struct Service(Child, String);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve_following(store: &Path, url: &str, endpoint: &str) -> Service {
    let mut c = with_s3(bin(), endpoint);
    c.arg("--store").arg(store).args(["serve", "--listen", "127.0.0.1:0", "--follow", url, "--refresh-ms", "200"]);
    let mut child = c.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base =
        line.split_whitespace().find(|w| w.starts_with("http://")).unwrap_or_else(|| panic!("{line:?}")).to_string();
    Service(child, base)
}

fn serving(base: &str) -> String {
    let mut r = ureq::get(&format!("{base}/v1/head")).call().unwrap();
    let v: serde_json::Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    v["snapshot_id"].as_str().unwrap_or("").to_string()
}

#[test]
fn two_replicas_following_one_s3_bucket_converge_and_roll_back_by_publishing() {
    let Some(s3) = s3_server() else { return };
    let (_, first, second) = built_store();
    let src = source_store();
    // moto accepts unsigned requests: make the bucket with one plain PUT.
    let r = ureq::put(&format!("{}/replicas", s3.endpoint)).send_empty().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let url = "s3://replicas/team/docs";
    let publish = |id: &str| {
        let mut c = with_s3(bin(), &s3.endpoint);
        c.arg("--store").arg(&src).args(["publish", id, "--to", url, "--json"]);
        ok(&c.output().unwrap())
    };
    let rep = publish(second);
    assert_eq!(rep["head_seq"], 1, "{rep}");
    let dir = tempfile::tempdir().unwrap();
    let a = serve_following(&dir.path().join("a"), url, &s3.endpoint);
    let b = serve_following(&dir.path().join("b"), url, &s3.endpoint);
    assert_eq!(serving(&a.1), *second);
    assert_eq!(serving(&b.1), *second);
    // Roll back by publishing the older snapshot: both replicas follow.
    let t = Instant::now();
    let rep = publish(first);
    assert_eq!(rep["head_seq"], 2);
    while serving(&a.1) != *first || serving(&b.1) != *first {
        assert!(t.elapsed() < Duration::from_secs(20), "replicas did not converge on {first}");
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("both replicas serve {first} {:?} after the publish", t.elapsed());
    // The head entry is a create-if-absent write on S3 too: a publisher that read a stale head
    // loses (exit 5).
    let mut c = with_s3(bin(), &s3.endpoint);
    c.arg("--store")
        .arg(&src)
        .args(["publish", second, "--to", url])
        .env("RAGSNAP_FAILPOINT", "publish-pause-before-head");
    let slow = c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(publish(second)["head_seq"], 3);
    let o = slow.wait_with_output().unwrap();
    assert_eq!(code(&o), 5, "{}", String::from_utf8_lossy(&o.stderr));

    // A corrupted object in the bucket: a fresh pull refuses with exit 4 and registers nothing.
    let key = ragsnap_remote_object(&src, second);
    // (moto wants signed object writes: boto3 comes with it.)
    let put = Command::new(&s3.python)
        .args([
            "-c",
            "import sys, boto3; boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1', \
             aws_access_key_id='test', aws_secret_access_key='test').put_object(Bucket='replicas', Key=sys.argv[2], \
             Body=b'not the artifact')",
            &s3.endpoint,
            &format!("team/docs/objects/{key}"),
        ])
        .output()
        .unwrap();
    assert!(put.status.success(), "{}", String::from_utf8_lossy(&put.stderr));
    let fresh = dir.path().join("fresh");
    let mut c = with_s3(bin(), &s3.endpoint);
    c.arg("--store").arg(&fresh).args(["pull", "--from", url]);
    let o = c.output().unwrap();
    assert_eq!(code(&o), 4, "{}", String::from_utf8_lossy(&o.stderr));
    assert!(head(&fresh).is_none());
}

/// The blake3 of one artifact of snapshot `id` (its remote object name).
fn ragsnap_remote_object(store: &Path, id: &str) -> String {
    let dir = store.join("snapshots").join(id);
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("MANIFEST.json")).unwrap()).unwrap();
    m["files"][0]["blake3"].as_str().unwrap().to_string()
}
