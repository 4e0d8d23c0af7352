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
    assert_eq!(code(&run(&store, &["rebuild", "--force", "--source", s])), 0);
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
            .args(["rebuild", "--force", "--source", s])
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
    assert_eq!(code(&run(&store, &["rebuild", "--force", "--source", s])), 0);
    // Time a warm rebuild to spread the kills over its whole run.
    let t = Instant::now();
    assert_eq!(code(&run(&store, &["rebuild", "--force", "--source", s])), 0);
    let span = t.elapsed().as_millis().max(50) as u64;
    let mut seed = 0x9e3779b97f4a7c15u64;
    let mut killed = 0;
    for i in 0..50 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // Mostly inside the run; how long a run takes varies with the machine's load.
        let delay = seed % (span * 3 / 4).max(1);
        let before_head = head(&store).unwrap();
        let before = ids(&store);
        let mut child = bin()
            .arg("--store")
            .arg(&store)
            .args(["rebuild", "--force", "--source", s])
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
    assert!(killed >= 15, "only {killed} of 50 runs were killed mid-flight");
    eprintln!("{killed} of 50 rebuilds killed mid-flight (warm run took {span} ms)");
    // The next full run succeeds and cleans up.
    assert_eq!(code(&run(&store, &["rebuild", "--force", "--source", s])), 0);
    assert_eq!(leftovers(&store), 0);
    let o = run(&store, &["verify", "--all", "--json"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stdout));
}

/// Give every paragraph of every page a sentence unique to its page, so every chunk changes and
/// the next build has real embedding work (a sentence shared by all pages would be dropped as site
/// boilerplate, and the build would finish in a blink).
fn touch_every_page(site: &Path, tag: &str) {
    let mut stack = vec![site.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "html") {
                let s = String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned();
                let rel = p.strip_prefix(site).unwrap().with_extension("");
                let stem = rel.to_string_lossy().replace(['-', '_', '/'], " ");
                let note = format!(" Reviewed in the {tag} sweep of the {stem} page.");
                let s = s.replace("</p>", &format!("{note}</p>")).replace("</li>", &format!("{note}</li>"));
                std::fs::write(&p, s).unwrap();
            }
        }
    }
}

#[test]
fn sigterm_stops_cleanly_and_leaves_head_alone() {
    let dir = tempfile::tempdir().unwrap();
    let site = site_copy(dir.path());
    let store = dir.path().join("store");
    let s = site.to_str().unwrap();
    assert_eq!(code(&run(&store, &["rebuild", "--force", "--source", s])), 0);
    let old = head(&store).unwrap();
    touch_every_page(&site, "sigterm");
    let child = bin()
        .arg("--store")
        .arg(&store)
        .args(["rebuild", "--force", "--source", s])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Startup takes about half a second here and the embedding of ~250 changed chunks several more.
    std::thread::sleep(Duration::from_millis(1000));
    let st = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(st.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted"));
    assert_eq!(head(&store).as_deref(), Some(old.as_str()));
    assert_eq!(leftovers(&store), 0, "staging cleaned on the way out");
    assert_eq!(ids(&store).len(), 1);
}

#[test]
fn a_full_disk_fails_the_build_and_keeps_head() {
    let dir = tempfile::tempdir().unwrap();
    let site = site_copy(dir.path());
    let work = dir.path().join("work");
    assert_eq!(code(&run(&work, &["rebuild", "--force", "--source", site.to_str().unwrap()])), 0);
    let old = head(&work).unwrap();
    touch_every_page(&site, "diskfull");
    // A real full disk where this machine lets us mount a small tmpfs; a simulated ENOSPC otherwise.
    let mnt = dir.path().join("small");
    std::fs::create_dir_all(&mnt).unwrap();
    let used: u64 = walk_size(&work);
    let size = format!("size={}k", used / 1024 + 300);
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &size, "tmpfs"])
        .arg(&mnt)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    let store = if mounted { mnt.join("store") } else { work.clone() };
    if mounted {
        copy_tree(&work, &store);
    }
    let mut cmd = bin();
    cmd.arg("--store").arg(&store).args(["rebuild", "--force", "--source", site.to_str().unwrap()]);
    if !mounted {
        cmd.env("RAGSNAP_FAILPOINT", "enospc-vectors");
    }
    let o = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("No space left on device")
            || err.contains("os error 28")
            || err.contains("database or disk is full"),
        "{err}"
    );
    assert_eq!(head(&store).as_deref(), Some(old.as_str()));
    let v = run(&store, &["verify"]);
    assert_eq!(code(&v), 0, "{}", String::from_utf8_lossy(&v.stdout));
    if mounted {
        let _ = std::process::Command::new("umount").arg(&mnt).status();
    }
    eprintln!("full disk via {}", if mounted { "a real tmpfs" } else { "a simulated ENOSPC" });
}

fn walk_size(p: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(p).unwrap() {
        let e = e.unwrap();
        let md = e.metadata().unwrap();
        total += if md.is_dir() { walk_size(&e.path()) } else { md.len() };
    }
    total
}
