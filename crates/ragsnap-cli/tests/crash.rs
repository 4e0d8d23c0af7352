//! Crash safety of the commit protocol with real processes: a `ragsnap rebuild` aborted at
//! every failpoint, and killed with SIGKILL at random moments, never harms head; the next
//! writer cleans up what it left.

mod common;
use common::*;
use std::path::Path;
use std::time::{Duration, Instant};

fn assert_store_sound(store: &Path, allowed_heads: &[String]) -> String {
    let h = head(store).expect("head must be readable");
    assert!(allowed_heads.contains(&h), "head {h} is neither the old nor a new snapshot");
    let o = run(store, &["verify", "--json"]);
    assert_eq!(code(&o), 0, "head must verify: {}", String::from_utf8_lossy(&o.stdout));
    h
}

fn ids(store: &Path) -> Vec<String> {
    let o = run(store, &["snapshots", "--json"]);
    json(&o).as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_string()).collect()
}

fn leftovers(store: &Path) -> usize {
    std::fs::read_dir(store.join("staging")).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn abort_at_every_step_of_the_commit_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let site = site_copy(dir.path());
    let store = dir.path().join("store");
    let s = site.to_str().unwrap();
    assert_eq!(code(&run(&store, &["rebuild", "--source", s])), 0);
    let old = head(&store).unwrap();
    let points = [
        "after-artifact-documents",
        "after-artifact-chunks",
        "after-artifact-vectors",
        "before-manifest",
        "after-manifest",
        "after-rename",
        "before-catalog-commit",
        "after-commit",
    ];
    for p in points {
        let before = ids(&store);
        let o = bin()
            .arg("--store")
            .arg(&store)
            .args(["rebuild", "--source", s])
            .env("RAGSNAP_FAILPOINT", p)
            .output()
            .unwrap();
        assert!(!o.status.success(), "{p}: the process must have died");
        let after = ids(&store);
        let mut allowed = vec![old.clone()];
        allowed.extend(after.iter().filter(|i| !before.contains(i)).cloned());
        let h = assert_store_sound(&store, &allowed);
        if p == "after-commit" {
            assert_ne!(h, old, "after the catalog commit the new snapshot is head");
        } else {
            assert_eq!(h, old, "{p}: before the catalog commit head must not move");
        }
        // The next writer cleans staging and unknown snapshot folders.
        assert_eq!(code(&run(&store, &["gc", "--keep", "100"])), 0);
        assert_eq!(leftovers(&store), 0, "{p}: staging not cleaned");
        let on_disk: Vec<String> = std::fs::read_dir(store.join("snapshots"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let known = ids(&store);
        assert!(
            on_disk.iter().all(|d| known.contains(d)),
            "{p}: orphan snapshot folder left: {on_disk:?} vs {known:?}"
        );
    }
}

#[test]
fn sigkill_at_random_moments_never_harms_head() {
    let dir = tempfile::tempdir().unwrap();
    let site = site_copy(dir.path());
    let store = dir.path().join("store");
    let s = site.to_str().unwrap();
    assert_eq!(code(&run(&store, &["rebuild", "--source", s])), 0);
    // Time a warm rebuild to spread the kills over its whole run.
    let t = Instant::now();
    assert_eq!(code(&run(&store, &["rebuild", "--source", s])), 0);
    let span = t.elapsed().as_millis().max(50) as u64;
    let mut seed = 0x9e3779b97f4a7c15u64;
    let mut killed = 0;
    for i in 0..50 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = seed % (span + span / 5);
        let before_head = head(&store).unwrap();
        let before = ids(&store);
        let mut child = bin()
            .arg("--store")
            .arg(&store)
            .args(["rebuild", "--source", s])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            killed += 1;
        }
        child.wait().unwrap();
        let mut allowed = vec![before_head];
        allowed.extend(ids(&store).into_iter().filter(|x| !before.contains(x)));
        assert_store_sound(&store, &allowed);
        let _ = i;
    }
    assert!(killed >= 25, "only {killed} of 50 runs were killed mid-flight");
    // The next full run succeeds and cleans up.
    assert_eq!(code(&run(&store, &["rebuild", "--source", s])), 0);
    assert_eq!(leftovers(&store), 0);
    let o = run(&store, &["verify", "--all", "--json"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stdout));
}
