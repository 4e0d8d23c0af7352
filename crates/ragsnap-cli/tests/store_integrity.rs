//! Store integrity with real processes (issue #11): a damaged catalog never costs a snapshot
//! folder and `repair` brings head back; a folder that is not a store is left alone; symlinked
//! store entries are refused; a killed gc leaks nothing; a read-only store still answers.
//!
//! One small store (four pages, three builds) is made once per test binary with the real model;
//! every case works on its own copy.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

struct Base {
    _dir: tempfile::TempDir,
    store: PathBuf,
    site: PathBuf,
    /// Snapshot ids, oldest first; the last is head.
    ids: Vec<String>,
    /// MANIFEST.json bytes of each snapshot.
    manifests: BTreeMap<String, Vec<u8>>,
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
        let mut ids = Vec::new();
        for i in 0..3 {
            if i > 0 {
                let p = site.join("install.html");
                let mut html = std::fs::read_to_string(&p).unwrap();
                html.push_str(&format!("<p>Build {i} adds a note about upgrades and restarts.</p>\n"));
                std::fs::write(&p, html).unwrap();
            }
            let o = run(&store, &["rebuild", "--source", s, "--json"]);
            assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
            ids.push(json(&o)["snapshot_id"].as_str().unwrap().to_string());
        }
        let manifests = ids
            .iter()
            .map(|id| (id.clone(), std::fs::read(store.join("snapshots").join(id).join("MANIFEST.json")).unwrap()))
            .collect();
        Base { _dir: dir, store, site, ids, manifests }
    })
}

fn copy_store(to: &Path) -> PathBuf {
    let store = to.join("store");
    if store.exists() {
        std::fs::remove_dir_all(&store).unwrap();
    }
    copy_tree(&base().store, &store);
    store
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Snapshot folders of the base store that are gone: neither in `snapshots/` nor in
/// `quarantine/` with their manifest unchanged.
fn lost_folders(store: &Path) -> Vec<String> {
    let mut lost = Vec::new();
    for (id, manifest) in &base().manifests {
        let mut places = vec![store.join("snapshots").join(id)];
        if let Ok(q) = std::fs::read_dir(store.join("quarantine")) {
            places.extend(q.flatten().map(|e| e.path()));
        }
        if !places.iter().any(|p| std::fs::read(p.join("MANIFEST.json")).ok().as_ref() == Some(manifest)) {
            lost.push(id.clone());
        }
    }
    lost
}

fn head_id(store: &Path) -> Option<String> {
    let o = run(store, &["show", "--json"]);
    (code(&o) == 0).then(|| json(&o)["snapshot_id"].as_str().unwrap().to_string())
}

fn xorshift(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[test]
fn catalog_corruption_campaign_loses_no_folder_and_repair_restores_head() {
    let b = base();
    let old_head = b.ids.last().unwrap().clone();
    let catalog = std::fs::read(b.store.join("catalog.sqlite")).unwrap();
    let used: Vec<usize> = (0..catalog.len()).filter(|&i| catalog[i] != 0).collect();
    assert!(used.len() > 1000, "catalog has {} used bytes", used.len());
    let mut cases: Vec<(String, Option<Vec<u8>>)> = Vec::new();
    let mut seed = 0x5eed_1234_abcd_0001u64;
    for _ in 0..200 {
        let at = used[(xorshift(&mut seed) % used.len() as u64) as usize];
        let mut bytes = catalog.clone();
        let flip = (xorshift(&mut seed) % 255 + 1) as u8;
        bytes[at] ^= flip;
        cases.push((format!("flip byte {at} ^ {flip:#04x}"), Some(bytes)));
    }
    cases.push(("empty".into(), Some(Vec::new())));
    cases.push(("missing".into(), None));
    cases.push(("truncated to half".into(), Some(catalog[..catalog.len() / 2].to_vec())));
    cases.push(("truncated to 100 bytes".into(), Some(catalog[..100].to_vec())));

    let listing = |store: &Path| {
        let o = run(store, &["snapshots", "--json"]);
        let mut v = json(&o);
        // Which rows exist and what they say, without the ordering of JSON keys.
        for row in v.as_array_mut().unwrap() {
            row.as_object_mut().unwrap().remove("pins");
        }
        v
    };
    let original_listing = listing(&b.store);
    let mut listing_changed = 0;
    let mut distrusted_cases = 0;
    let work = tempfile::tempdir().unwrap();
    let (mut worked, mut stopped, mut lost, mut wrong, mut unclear, mut repaired, mut repair_failed) =
        (0, 0, 0, 0, Vec::new(), 0, Vec::new());
    for (name, bytes) in &cases {
        let store = copy_store(work.path());
        let cpath = store.join("catalog.sqlite");
        for side in ["catalog.sqlite-wal", "catalog.sqlite-shm"] {
            let _ = std::fs::remove_file(store.join(side));
        }
        match bytes {
            Some(b) => std::fs::write(&cpath, b).unwrap(),
            None => std::fs::remove_file(&cpath).unwrap(),
        }
        let mut all_ok = true;
        let mut log = Vec::new();
        for args in [
            &["gc", "--keep", "100", "--dry-run"][..],
            &["gc", "--keep", "100"],
            &["show", "--json"],
            &["verify", "--all"],
        ] {
            let o = run(&store, args);
            let said = format!("{}{}", stderr(&o), String::from_utf8_lossy(&o.stdout));
            log.push(format!("{args:?} exit {}: {said}", code(&o)));
            match code(&o) {
                0 => {
                    if args[0] == "show" && json(&o)["snapshot_id"] != old_head.as_str() {
                        wrong += 1;
                    }
                }
                4 if said.contains("ragsnap repair") => all_ok = false,
                c => {
                    all_ok = false;
                    unclear.push(format!("{name}: {args:?} exit {c}: {said}"));
                }
            }
        }
        if !name.starts_with("flip") {
            // The writer that used to wipe the store: a rebuild (it loads the model, so only here).
            let o = run(&store, &["rebuild", "--source", b.site.to_str().unwrap()]);
            assert_eq!(code(&o), 4, "{name}: rebuild: {}", stderr(&o));
            assert!(stderr(&o).contains("ragsnap repair"), "{name}: rebuild: {}", stderr(&o));
            all_ok = false;
        }
        let l = lost_folders(&store);
        lost += l.len();
        if all_ok {
            worked += 1;
            // Values no check can tell from the truth (a publish time, a reason) may differ.
            let now = listing(&store);
            if now != original_listing {
                listing_changed += 1;
                for (x, y) in now.as_array().unwrap().iter().zip(original_listing.as_array().unwrap()) {
                    for (k, v) in x.as_object().unwrap() {
                        if y.get(k) != Some(v) {
                            println!("{name}: worked, but the listing's {k} reads {v} instead of {}", y[k]);
                        }
                    }
                }
            }
            continue;
        }
        stopped += 1;
        let o = run(&store, &["repair", "--dry-run", "--json"]);
        // A flip that turns a recorded manifest digest into another valid digest: the catalog
        // and that folder disagree, and repair quarantines the folder rather than trust it.
        let distrusted: Vec<String> = json(&o)["unrestored"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| {
                let problem = u["problem"].as_str().unwrap();
                assert!(problem.contains("manifest does not match the catalog's record"), "{name}: {problem}");
                u["name"].as_str().unwrap().to_string()
            })
            .collect();
        assert_eq!(code(&o), if distrusted.is_empty() { 0 } else { 4 }, "{name}: repair --dry-run: {}", stderr(&o));
        if !distrusted.is_empty() {
            distrusted_cases += 1;
        }
        let expected_head = if distrusted.contains(&old_head) { b.ids[1].clone() } else { old_head.clone() };
        assert_eq!(json(&o)["head"], expected_head.as_str(), "{name}: the plan restores the old head; {log:#?}");
        let o = run(&store, &["repair", "--json"]);
        let verify = run(&store, &["verify", "--all"]);
        let list = run(&store, &["snapshots", "--json"]);
        let restored = if code(&list) == 0 { json(&list).as_array().unwrap().len() } else { 0 };
        if code(&o) == if distrusted.is_empty() { 0 } else { 4 }
            && head_id(&store).as_deref() == Some(expected_head.as_str())
            && code(&verify) == 0
            && restored == 3 - distrusted.len()
        {
            repaired += 1;
            let report = json(&o);
            if bytes.is_some() {
                let aside = report["old_catalog_kept_as"].as_str().expect("the damaged catalog is kept");
                assert!(Path::new(aside).exists(), "{name}: {aside} is gone");
            }
        } else {
            repair_failed.push(format!(
                "{name}: repair exit {} {}; verify exit {}; {restored} snapshots",
                code(&o),
                stderr(&o),
                code(&verify)
            ));
        }
        assert!(lost_folders(&store).is_empty(), "{name}: repair lost a folder");
    }
    println!(
        "catalog corruption campaign: {} cases ({} byte flips, empty, missing, 2 truncations); \
         {worked} worked unchanged, {stopped} stopped with exit 4 naming `ragsnap repair`; \
         intact snapshot folders lost: {lost}; wrong answers: {wrong}; unclear outcomes: {}; \
         repaired to the old head with verify --all ok: {repaired}; repair failures: {}; \
         cases that worked but list a snapshot row differently: {listing_changed}; \
         cases where repair quarantined a folder its recorded digest disagrees with: {distrusted_cases}",
        cases.len(),
        cases.len() - 4,
        unclear.len(),
        repair_failed.len()
    );
    assert_eq!(lost, 0, "intact snapshot folders were lost");
    assert_eq!(wrong, 0, "a reader answered with another head");
    assert!(unclear.is_empty(), "{unclear:#?}");
    assert!(repair_failed.is_empty(), "{repair_failed:#?}");
    assert!(stopped >= 4, "empty, missing and truncated catalogs must stop the writers");
}

#[test]
fn a_folder_that_is_not_a_store_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let foreign = dir.path().join("mine");
    for (p, body) in [("snapshots/thesis.txt", "chapter one"), ("staging/draft.txt", "draft"), ("notes.txt", "n")] {
        std::fs::create_dir_all(foreign.join(p).parent().unwrap()).unwrap();
        std::fs::write(foreign.join(p), body).unwrap();
    }
    for args in [&["gc", "--dry-run"][..], &["gc"], &["rollback"], &["repair"], &["cache", "prune", "--all"]] {
        let o = run(&foreign, args);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("not a ragsnap store"), "{args:?}: {}", stderr(&o));
    }
    assert_eq!(std::fs::read_to_string(foreign.join("snapshots/thesis.txt")).unwrap(), "chapter one");
    assert_eq!(std::fs::read_to_string(foreign.join("staging/draft.txt")).unwrap(), "draft");
    let mut names: Vec<String> =
        std::fs::read_dir(&foreign).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["notes.txt", "snapshots", "staging"], "nothing was added (no LOCK, no folders)");
}

#[test]
fn a_store_made_before_identity_files_is_adopted() {
    let dir = tempfile::tempdir().unwrap();
    let store = copy_store(dir.path());
    std::fs::remove_file(store.join("ragsnap-store.json")).unwrap();
    std::fs::remove_file(store.join("HEAD.json")).unwrap();
    std::fs::remove_dir(store.join("quarantine")).unwrap();
    let o = run(&store, &["gc", "--keep", "100"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(store.join("ragsnap-store.json").is_file());
    assert!(std::fs::read_to_string(store.join("HEAD.json")).unwrap().contains(base().ids.last().unwrap().as_str()));
    // The same store with its catalog lost: stop and point at repair, which restores it.
    std::fs::remove_file(store.join("ragsnap-store.json")).unwrap();
    std::fs::remove_file(store.join("catalog.sqlite")).unwrap();
    let o = run(&store, &["gc", "--dry-run"]);
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    assert!(stderr(&o).contains("ragsnap repair"), "{}", stderr(&o));
    let o = run(&store, &["repair"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(head_id(&store).as_deref(), Some(base().ids.last().unwrap().as_str()));
    assert!(lost_folders(&store).is_empty());
}

#[test]
fn symlinked_store_entries_are_refused_and_their_targets_untouched() {
    let dir = tempfile::tempdir().unwrap();
    for entry in ["LOCK", "staging", "snapshots", "leases", "cache", "catalog.sqlite"] {
        let store = copy_store(dir.path());
        let target = dir.path().join(format!("target-{entry}"));
        let _ = std::fs::remove_dir_all(&target);
        let _ = std::fs::remove_file(&target);
        let original = store.join(entry);
        if original.is_dir() {
            std::fs::rename(&original, &target).unwrap();
            std::fs::write(target.join("precious.txt"), "keep me").unwrap();
        } else {
            std::fs::rename(&original, &target).unwrap();
        }
        std::os::unix::fs::symlink(&target, &original).unwrap();
        let snapshot = |p: &Path| -> Vec<(String, Vec<u8>)> {
            if p.is_dir() {
                let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(p)
                    .unwrap()
                    .map(|e| {
                        let e = e.unwrap();
                        let bytes = if e.path().is_file() { std::fs::read(e.path()).unwrap() } else { Vec::new() };
                        (e.file_name().to_string_lossy().into_owned(), bytes)
                    })
                    .collect();
                v.sort();
                v
            } else {
                vec![(String::new(), std::fs::read(p).unwrap())]
            }
        };
        let before = snapshot(&target);
        for args in [&["gc", "--keep", "100"][..], &["rollback"], &["cache", "prune", "--all"]] {
            let o = run(&store, args);
            assert_ne!(code(&o), 0, "{entry}: {args:?} accepted a symlinked entry");
            assert!(stderr(&o).contains("symbolic link"), "{entry}: {args:?}: {}", stderr(&o));
        }
        if ["catalog.sqlite", "snapshots", "leases"].contains(&entry) {
            let o = run(&store, &["show"]);
            assert_ne!(code(&o), 0, "{entry}: a reader followed the link");
            assert!(stderr(&o).contains("symbolic link"), "{entry}: {}", stderr(&o));
        }
        assert_eq!(snapshot(&target), before, "{entry}: the link target changed");
    }
}

#[test]
fn a_gc_killed_at_each_step_leaks_nothing_once_the_next_gc_runs() {
    let dir = tempfile::tempdir().unwrap();
    let ids = &base().ids;
    for point in ["gc-after-mark", "gc-after-remove"] {
        let store = copy_store(dir.path());
        let o = bin()
            .arg("--store")
            .arg(&store)
            .args(["gc", "--keep", "1"])
            .env("RAGSNAP_FAILPOINT", point)
            .output()
            .unwrap();
        assert!(!o.status.success(), "{point}: the gc must have died");
        let rows = |store: &Path| -> BTreeMap<String, String> {
            let o = run(store, &["snapshots", "--json"]);
            assert_eq!(code(&o), 0, "{}", stderr(&o));
            json(&o)
                .as_array()
                .unwrap()
                .iter()
                .map(|s| (s["id"].as_str().unwrap().to_string(), s["status"].as_str().unwrap().to_string()))
                .collect()
        };
        let after_kill = rows(&store);
        assert_eq!(after_kill[&ids[0]], "collected", "{point}: the row is marked before its folder goes");
        if point == "gc-after-mark" {
            assert!(store.join("snapshots").join(&ids[0]).exists(), "killed between mark and removal");
        }
        for id in &ids[1..] {
            assert!(store.join("snapshots").join(id).exists(), "{point}: {id} removed before its row was marked");
        }
        let o = run(&store, &["gc", "--keep", "1", "--json"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let on_disk: Vec<String> = std::fs::read_dir(store.join("snapshots"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(on_disk, vec![ids[2].clone()], "{point}: leaked folders");
        let leases: Vec<String> = std::fs::read_dir(store.join("leases"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with(ids[2].as_str()))
            .collect();
        assert!(leases.is_empty(), "{point}: leaked lease files {leases:?}");
        let after = rows(&store);
        assert_eq!(after[&ids[0]], "collected");
        assert_eq!(after[&ids[1]], "collected");
        assert_eq!(code(&run(&store, &["verify", "--all"])), 0);
    }
}

fn query_args(store: &Path) -> Vec<String> {
    ["--store", store.to_str().unwrap(), "query", "How do I rotate TLS certificates without a restart?", "--json"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn chmod_tree(p: &Path, dir_mode: u32, file_mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    for e in std::fs::read_dir(p).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            chmod_tree(&e.path(), dir_mode, file_mode);
            std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(dir_mode)).unwrap();
        } else {
            std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(file_mode)).unwrap();
        }
    }
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(dir_mode)).unwrap();
}

fn assert_answers(o: &Output, how: &str) {
    assert_eq!(code(o), 0, "{how}: {}", stderr(o));
    let hits = json(o)["hits"].as_array().cloned().unwrap_or_default();
    assert!(!hits.is_empty(), "{how}: no hits: {}", String::from_utf8_lossy(&o.stdout));
    assert_eq!(hits[0]["source_path"], "tls.html", "{how}");
}

#[test]
fn a_read_only_store_answers_queries() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut ran = 0;
    // 1. Another user, without write permission (no -wal/-shm, no leases can be created).
    let store = copy_store(dir.path());
    for side in ["catalog.sqlite-wal", "catalog.sqlite-shm"] {
        let _ = std::fs::remove_file(store.join(side));
    }
    chmod_tree(&store, 0o555, 0o444);
    let probe = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "true"])
        .output();
    if probe.is_ok_and(|o| o.status.success()) {
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_ragsnap"))
            .args(query_args(&store))
            .current_dir(repo_root())
            .env_remove("RAGSNAP_STORE")
            .env("RAGSNAP_LOG", "debug");
        let o = c.output().unwrap();
        assert_answers(&o, "as user 65534 on a store it cannot write");
        assert!(stderr(&o).contains("no lease taken"), "the debug log says no lease was taken: {}", stderr(&o));
        assert!(stderr(&o).contains("catalog opened immutable"), "the immutable fallback ran: {}", stderr(&o));
        assert!(!store.join("catalog.sqlite-shm").exists());
        ran += 1;
    } else {
        println!("skipped: setpriv cannot switch to user 65534 here");
    }
    chmod_tree(&store, 0o755, 0o644);
    // 2. A read-only bind mount, as root (EROFS rather than EACCES).
    let store = copy_store(dir.path());
    let script =
        format!("mount --bind {s} {s} && mount -o remount,bind,ro {s} && exec \"$0\" \"$@\"", s = store.display());
    let o = std::process::Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .arg(env!("CARGO_BIN_EXE_ragsnap"))
        .args(query_args(&store))
        .current_dir(repo_root())
        .env_remove("RAGSNAP_STORE")
        .env("RAGSNAP_LOG", "error")
        .output()
        .unwrap();
    if code(&o) == 0 || !stderr(&o).contains("mount") {
        assert_answers(&o, "on a read-only bind mount");
        ran += 1;
    } else {
        println!("skipped: no read-only bind mount here: {}", stderr(&o));
    }
    println!("read-only store: {ran} of 2 ways ran");
}

#[test]
fn operator_commands_move_head_predictably() {
    let dir = tempfile::tempdir().unwrap();
    let store = copy_store(dir.path());
    let ids = &base().ids;
    let (a, b, c) = (&ids[0], &ids[1], &ids[2]);
    // Usage errors exit 2 and change nothing.
    for args in [
        &["rollback", "--steps", "0"][..],
        &["gc", "--older-than", "99999999999d"],
        &["gc", "--older-than", "99999999999999999999d"],
        &["cache", "prune"],
    ] {
        let o = run(&store, args);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
    }
    assert_eq!(head_id(&store).as_deref(), Some(c.as_str()));
    // cache prune --dry-run deletes nothing; a real prune needs the writer lock.
    let stats = |s: &Path| json(&run(s, &["cache", "stats", "--json"]));
    let before = stats(&store);
    let o = run(&store, &["cache", "prune", "--all", "--dry-run"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("would delete"), "{}", String::from_utf8_lossy(&o.stdout));
    assert_eq!(stats(&store), before);
    {
        let lock = std::fs::OpenOptions::new().write(true).open(store.join("LOCK")).unwrap();
        lock.lock().unwrap();
        let o = run(&store, &["cache", "prune", "--all"]);
        assert_eq!(code(&o), 5, "prune must wait for the writer lock: {}", stderr(&o));
    }
    assert_eq!(stats(&store), before);

    // promote A (older) from C: C is backed out; a bare rollback then goes to the newest ready
    // snapshot older than head that is not backed out, never back to C.
    let o = run(&store, &["promote", a, "--reason", "checking an old build"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let list = json(&run(&store, &["snapshots", "--json"]));
    let row = |id: &str| list.as_array().unwrap().iter().find(|s| s["id"] == id).unwrap().clone();
    assert!(row(c)["backed_out"]["reason"] == "checking an old build", "{}", row(c));
    assert!(row(c)["backed_out"]["by"].as_str().unwrap().contains("pid"));
    let shown = String::from_utf8_lossy(&run(&store, &["show", c]).stdout).into_owned();
    assert!(shown.contains("backed out") && shown.contains("checking an old build"), "{shown}");
    let o = run(&store, &["rollback", "--json"]);
    assert_ne!(code(&o), 0, "nothing older than A: {}", String::from_utf8_lossy(&o.stdout));
    assert_eq!(head_id(&store).as_deref(), Some(a.as_str()));
    // Landing on a backed-out snapshot needs promote --force.
    let o = run(&store, &["rollback", "--to", c]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    let o = run(&store, &["promote", c]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let o = run(&store, &["promote", c, "--force", "--reason", "it was fine"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(head_id(&store).as_deref(), Some(c.as_str()));
    // From C a bare rollback goes to B (A is not backed out either, but B is newer).
    let o = run(&store, &["rollback", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(json(&o)["to"], b.as_str());
    // And the next bare rollback goes to A, not forward to C (backed out by that rollback).
    let o = run(&store, &["rollback", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(json(&o)["to"], a.as_str());

    // promote applies rollback's model-change guard.
    let model = dir.path().join("other-model");
    std::fs::create_dir_all(&model).unwrap();
    let cache = std::env::var_os("RAGSNAP_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".cache/runtime"))
        .join("models/minilm-l6-int8");
    for f in ["model.onnx", "tokenizer.json"] {
        std::fs::copy(cache.join(f), model.join(f)).unwrap();
    }
    let toml = std::fs::read_to_string(cache.join("model.toml")).unwrap();
    std::fs::write(model.join("model.toml"), toml.replace("name = \"minilm-l6-int8\"", "name = \"minilm-renamed\""))
        .unwrap();
    let site = base().site.to_str().unwrap();
    let o = bin()
        .arg("--store")
        .arg(&store)
        .arg("--model-dir")
        .arg(&model)
        .args(["rebuild", "--source", site, "--allow-model-change", "--json"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let d = json(&o)["snapshot_id"].as_str().unwrap().to_string();
    assert_eq!(head_id(&store).as_deref(), Some(d.as_str()));
    let o = run(&store, &["promote", a]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(stderr(&o).contains("--allow-model-change"), "{}", stderr(&o));
    let o = run(&store, &["rollback", "--to", a]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(stderr(&o).contains("--allow-model-change"), "{}", stderr(&o));
    assert_eq!(head_id(&store).as_deref(), Some(d.as_str()));
    let o = run(&store, &["promote", a, "--allow-model-change"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(head_id(&store).as_deref(), Some(a.as_str()));
}

#[test]
fn verify_and_rollback_refuse_a_snapshot_that_hashes_but_does_not_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = copy_store(dir.path());
    let a = &base().ids[0];
    // Rewrite A's chunk table with a record offset that points past its data, and re-seal the
    // manifest and catalog digests so every checksum matches.
    let sdir = store.join("snapshots").join(a);
    let mpath = sdir.join("MANIFEST.json");
    let mut manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(&mpath).unwrap()).unwrap();
    let vpath = sdir.join("vectors.bin");
    let mut v = std::fs::read(&vpath).unwrap();
    // vectors payload: u32 dims at 16; claim one dimension fewer, then re-frame.
    let dims = u32::from_le_bytes(v[16..20].try_into().unwrap());
    v[16..20].copy_from_slice(&(dims - 1).to_le_bytes());
    let n = v.len();
    let digest = blake3::hash(&v[..n - 48]);
    v[n - 40..n - 8].copy_from_slice(digest.as_bytes());
    std::fs::write(&vpath, &v).unwrap();
    for f in manifest["files"].as_array_mut().unwrap() {
        if f["name"] == "vectors.bin" {
            f["blake3"] = serde_json::json!(blake3::hash(&v).to_hex().to_string());
        }
    }
    let mut mbytes = serde_json::to_vec_pretty(&manifest).unwrap();
    mbytes.push(b'\n');
    std::fs::write(&mpath, &mbytes).unwrap();
    let conn = rusqlite::Connection::open(store.join("catalog.sqlite")).unwrap();
    conn.execute(
        "UPDATE snapshots SET manifest_blake3 = ?1 WHERE id = ?2",
        [blake3::hash(&mbytes).to_hex().to_string(), a.clone()],
    )
    .unwrap();
    drop(conn);
    let o = run(&store, &["verify", a]);
    assert_eq!(code(&o), 4, "verify must load it: {}", String::from_utf8_lossy(&o.stdout));
    assert!(String::from_utf8_lossy(&o.stdout).contains("cannot open"), "{}", String::from_utf8_lossy(&o.stdout));
    let o = run(&store, &["rollback", "--to", a]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert_eq!(head_id(&store).as_deref(), Some(base().ids[2].as_str()));
}

#[test]
fn a_damaged_identity_file_stops_writers_until_repair_sets_it_aside() {
    let dir = tempfile::tempdir().unwrap();
    let store = copy_store(dir.path());
    std::fs::write(store.join("ragsnap-store.json"), b"{\"kind\": \"something-else\"").unwrap();
    let o = run(&store, &["gc", "--dry-run"]);
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    assert!(stderr(&o).contains("ragsnap-store.json") && stderr(&o).contains("ragsnap repair"), "{}", stderr(&o));
    let o = run(&store, &["repair", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(code(&run(&store, &["gc", "--dry-run"])), 0);
    let kept: Vec<String> = std::fs::read_dir(&store)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("ragsnap-store.json.damaged-"))
        .collect();
    assert_eq!(kept.len(), 1, "the damaged identity file is kept aside");
    assert_eq!(head_id(&store).as_deref(), Some(base().ids[2].as_str()));
}

#[test]
fn repair_quarantines_a_snapshot_whose_manifest_differs_from_the_catalog_record() {
    let dir = tempfile::tempdir().unwrap();
    let ids = &base().ids;
    let store = copy_store(dir.path());
    let head = ids.last().unwrap();
    // The manifest alone is edited (its files still match it): recall raised.
    let mpath = store.join("snapshots").join(head).join("MANIFEST.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&mpath).unwrap()).unwrap();
    m["index"]["recall"] = serde_json::json!(1.0);
    std::fs::write(&mpath, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    let q = run(&store, &["query", "retries", "--json"]);
    assert_eq!(code(&q), 4, "{}", stderr(&q));
    assert!(!stderr(&q).contains("is intact"), "{}", stderr(&q));
    assert!(stderr(&q).contains("which to trust is unknown"), "{}", stderr(&q));
    let o = run(&store, &["repair", "--json"]);
    // Exit 4: a folder could not be restored.
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    let r = json(&o);
    assert_eq!(r["head"], ids[1].as_str(), "{r:#}");
    assert!(r["restored"].as_array().unwrap().iter().all(|s| s["id"] != head.as_str()), "{r:#}");
    let un = r["unrestored"].as_array().unwrap();
    assert!(
        un.iter().any(|u| u["name"] == head.as_str()
            && u["problem"].as_str().unwrap().contains("manifest does not match the catalog's record")),
        "{r:#}"
    );
    assert!(!store.join("snapshots").join(head).exists(), "the tampered folder is quarantined");
    assert!(lost_folders(&store).len() == 1, "only the edited manifest differs from the original");
    assert_eq!(head_id(&store).as_deref(), Some(ids[1].as_str()));
    assert_eq!(code(&run(&store, &["verify", "--all"])), 0);
}

/// A rebuild on a copy of the base store; returns its snapshot id (`None` if it was killed).
fn rebuild_with(store: &Path, failpoint: Option<&str>) -> Option<String> {
    let site = tempfile::tempdir().unwrap();
    copy_tree(&base().site, site.path());
    let p = site.path().join("install.html");
    let mut html = std::fs::read_to_string(&p).unwrap();
    html.push_str("<p>A fourth build mentions rolling restarts.</p>\n");
    std::fs::write(&p, html).unwrap();
    let mut c = bin();
    c.arg("--store").arg(store).args(["rebuild", "--source", site.path().to_str().unwrap(), "--json"]);
    if let Some(f) = failpoint {
        c.env("RAGSNAP_FAILPOINT", f);
    }
    let o = c.output().unwrap();
    if failpoint.is_some() {
        assert!(!o.status.success());
        return None;
    }
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    Some(json(&o)["snapshot_id"].as_str().unwrap().to_string())
}

fn restore_catalog(store: &Path, bytes: &[u8]) {
    for side in ["catalog.sqlite-wal", "catalog.sqlite-shm"] {
        let _ = std::fs::remove_file(store.join(side));
    }
    std::fs::write(store.join("catalog.sqlite"), bytes).unwrap();
}

#[test]
fn a_restored_older_catalog_never_costs_a_committed_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    // Killed right after its catalog commit: the marker stays; then an older catalog comes back.
    let store = copy_store(dir.path());
    let backup = std::fs::read(store.join("catalog.sqlite")).unwrap();
    let before: Vec<String> = std::fs::read_dir(store.join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    rebuild_with(&store, Some("after-commit"));
    let new: Vec<String> = std::fs::read_dir(store.join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !before.contains(n))
        .collect();
    assert_eq!(new.len(), 1);
    let id = &new[0];
    let manifest = std::fs::read(store.join("snapshots").join(id).join("MANIFEST.json")).unwrap();
    restore_catalog(&store, &backup);
    let o = run(&store, &["gc", "--keep", "100"]);
    assert!(code(&o) == 0 || code(&o) == 4, "{}", stderr(&o));
    let mut places = vec![store.join("snapshots").join(id)];
    places.extend(std::fs::read_dir(store.join("quarantine")).unwrap().flatten().map(|e| e.path()));
    assert!(
        places.iter().any(|p| std::fs::read(p.join("MANIFEST.json")).ok().as_ref() == Some(&manifest)),
        "the committed snapshot {id} was deleted"
    );

    // A finished build whose head record survives the restored catalog: writers stop.
    let store = copy_store(dir.path());
    let backup = std::fs::read(store.join("catalog.sqlite")).unwrap();
    let id = rebuild_with(&store, None).unwrap();
    restore_catalog(&store, &backup);
    let head_record = std::fs::read(store.join("HEAD.json")).unwrap();
    for args in [&["gc", "--keep", "100", "--dry-run"][..], &["gc", "--keep", "100"]] {
        let o = run(&store, args);
        assert_eq!(code(&o), 4, "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("ragsnap repair"), "{}", stderr(&o));
        assert!(store.join("snapshots").join(&id).join("MANIFEST.json").exists());
        assert_eq!(std::fs::read(store.join("HEAD.json")).unwrap(), head_record, "HEAD.json rewritten");
    }
    let o = run(&store, &["repair", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(json(&o)["head"], id.as_str());
    assert_eq!(head_id(&store).as_deref(), Some(id.as_str()));
    assert_eq!(code(&run(&store, &["verify", "--all"])), 0);
}

/// Every path under `root` with its contents (folders as `None`).
fn tree(root: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).unwrap().flatten() {
            let path = e.path();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            if e.file_type().unwrap().is_dir() {
                out.insert(rel, None);
                stack.push(path);
            } else {
                out.insert(rel, Some(std::fs::read(&path).unwrap()));
            }
        }
    }
    out
}

#[test]
fn dry_runs_change_nothing_and_only_rebuild_creates_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = copy_store(dir.path());
    // Housekeeping a writer open would do: an unknown folder, a stale marker, no identity file.
    std::fs::create_dir_all(store.join("snapshots/sstray-000000")).unwrap();
    std::fs::write(store.join("snapshots/sstray-000000/keep.txt"), b"mine").unwrap();
    std::fs::write(store.join("staging/sx-000000.pending"), b"sx-000000").unwrap();
    std::fs::remove_file(store.join("ragsnap-store.json")).unwrap();
    let before = tree(&store);
    for args in [
        &["gc", "--keep", "1", "--dry-run"][..],
        &["gc", "--keep", "1", "--dry-run", "--json"],
        &["cache", "prune", "--all", "--dry-run"],
        &["repair", "--dry-run"],
    ] {
        let o = run(&store, args);
        assert!(code(&o) == 0, "{args:?}: exit {}: {}", code(&o), stderr(&o));
        let after = tree(&store);
        let changed: Vec<&PathBuf> =
            before.keys().chain(after.keys()).filter(|k| before.get(*k) != after.get(*k)).collect();
        // SQLite's own side files, which any reader of the catalog may create.
        let changed: Vec<&PathBuf> =
            changed.into_iter().filter(|p| !p.to_string_lossy().starts_with("catalog.sqlite-")).collect();
        assert!(changed.is_empty(), "{args:?} changed the store: {changed:?}");
    }
    let o = run(&store, &["gc", "--keep", "1", "--dry-run", "--json"]);
    assert_eq!(json(&o)["removed"].as_array().unwrap().len(), 2, "the plan lists what gc would remove");
    let plan = json(&o)["housekeeping"].to_string();
    assert!(plan.contains("snapshots/sstray-000000") && plan.contains("sx-000000.pending"), "{plan}");

    let missing = dir.path().join("missing");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for args in [
        &["gc", "--keep", "1"][..],
        &["gc", "--keep", "1", "--dry-run"],
        &["repair"],
        &["repair", "--dry-run"],
        &["rollback"],
        &["promote", "s1"],
        &["cache", "prune", "--all"],
        &["cache", "prune", "--all", "--dry-run"],
        &["snapshots"],
        &["show"],
        &["verify", "--all"],
    ] {
        for at in [&missing, &empty] {
            let o = run(at, args);
            assert_eq!(code(&o), 2, "{args:?} on {}: {}", at.display(), stderr(&o));
            assert!(stderr(&o).contains("no ragsnap store at"), "{args:?}: {}", stderr(&o));
        }
        assert!(!missing.exists(), "{args:?} created a store");
        assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0, "{args:?} wrote into an empty folder");
    }
}

#[test]
fn an_unknown_fingerprint_or_a_bare_duration_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = copy_store(dir.path());
    let stats = |store: &Path| {
        let o = run(store, &["cache", "stats", "--json"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        json(&o)
    };
    let before = stats(&store);
    assert!(!before.as_array().unwrap().is_empty());
    for args in [
        &["cache", "prune", "--keep-fingerprints", "no-such-fingerprint"][..],
        &["cache", "prune", "--keep-fingerprints", "no-such-fingerprint", "--dry-run"],
        &["gc", "--older-than", "14"],
        &["gc", "--older-than", "14", "--dry-run"],
    ] {
        let o = run(&store, args);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
    }
    assert_eq!(stats(&store), before, "the cache was pruned");
    assert_eq!(lost_folders(&store), Vec::<String>::new());
    assert_eq!(code(&run(&store, &["gc", "--older-than", "14d", "--dry-run"])), 0);
}
