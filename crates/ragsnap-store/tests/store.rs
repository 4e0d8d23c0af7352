//! Store behaviour on real files and a real SQLite catalog: commit, verify, corruption,
//! hostile manifests, locking, rollback, GC and leases.

use ragsnap_core::{Canary, Chunk, ContentId, EmbeddingFingerprint, FormatVersion};
use ragsnap_store::*;
use std::path::Path;

fn fingerprint(model: &str) -> EmbeddingFingerprint {
    EmbeddingFingerprint {
        model_name: model.into(),
        model_blake3: "m".into(),
        tokenizer_blake3: "t".into(),
        pooling: "mean".into(),
        normalize: true,
        max_tokens: 256,
        dims: 4,
        inputs: vec!["input_ids".into()],
        output: "last_hidden_state".into(),
        runtime_version: "1.31.1".into(),
        query_prefix: String::new(),
        passage_prefix: String::new(),
    }
}

fn chunk(i: usize) -> Chunk {
    let text = format!("Page > Section {i}\n\nbody number {i}");
    Chunk {
        content_id: ContentId::of_text(&text),
        text,
        source_path: format!("p{}.html", i % 3),
        url: None,
        header_path: vec!["Page".into(), format!("Section {i}")],
        byte_range: (0, 10),
        line_range: (1, 2),
        tokens: 8,
    }
}

/// Publish a small snapshot with `n` chunks; returns its id.
fn publish(store: &mut Store, n: usize, model: &str, promote: bool) -> String {
    let mut st = store.stage().unwrap();
    let chunks: Vec<Chunk> = (0..n).map(chunk).collect();
    let rows: Vec<Vec<f32>> = (0..n).map(|i| vec![i as f32, 1.0, 0.0, 0.5]).collect();
    let docs = vec![DocumentEntry {
        source_path: "p0.html".into(),
        content_blake3: "h".into(),
        url: None,
        title: None,
        first_chunk: 0,
        chunk_count: n as u32,
        chunk_key: None,
    }];
    st.write_artifact("documents.json.bin", ArtifactKind::Documents, &serde_json::to_vec(&docs).unwrap()).unwrap();
    st.write_artifact("chunks.bin", ArtifactKind::Chunks, &tables::encode_chunks(&chunks)).unwrap();
    st.write_artifact("vectors.bin", ArtifactKind::Vectors, &tables::encode_vectors(4, &rows)).unwrap();
    let id = st.id.clone();
    let m = Manifest {
        format_version: FormatVersion::CURRENT,
        reader_features: vec!["chunk-table-v1".into(), "vectors-f32le".into(), "documents-json".into()],
        writer_features: vec!["staged-rename-commit".into()],
        snapshot_id: String::new(),
        parent_id: store.catalog().head_id().unwrap(),
        created_at: time::rfc3339(time::unix_now()),
        tool_version: "test".into(),
        source_digest: "d".into(),
        build_key: None,
        chunker: ChunkerInfo { version: 1, target_tokens: 200, max_tokens: 256, min_tokens: 32 },
        fingerprint: fingerprint(model),
        canaries: vec![Canary { text: "c".into(), vector: vec![1.0, 0.0, 0.0, 0.0] }],
        index: IndexInfo {
            kind: ragsnap_store::IndexKind::Exact,
            m: 0,
            ef_construction: 0,
            ef_search: 0,
            recall: 1.0,
            target_recall: 0.98,
            sample: n,
            k: 10,
        },
        counts: Counts { documents: 1, chunks: n, vectors: n },
        calibration: Calibration::default(),
        files: vec![],
    };
    store.publish(st, m, promote, if promote { "test" } else { "rejected by test" }).unwrap();
    id
}

#[test]
fn publish_open_verify_roundtrip() {
    let d = tempfile::tempdir().unwrap();
    let mut s = Store::open_writer(d.path()).unwrap();
    let id = publish(&mut s, 10, "m", true);
    assert_eq!(s.head().unwrap().id, id);
    let rep = s.verify(&id).unwrap();
    assert!(rep.ok, "{rep:?}");
    assert_eq!(rep.files, 4);
    let opened = s.open_snapshot(&id).unwrap();
    let table = ChunkTable::open(&opened.path(ArtifactKind::Chunks).unwrap(), 10).unwrap();
    assert_eq!(table.get(7).unwrap(), chunk(7));
    assert!(table.get(10).is_err());
    let h = s.catalog().history().unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].action, "promote");
}

#[test]
fn every_flipped_bit_is_reported_by_verify_and_refused_by_open() {
    let d = tempfile::tempdir().unwrap();
    let mut s = Store::open_writer(d.path()).unwrap();
    let id = publish(&mut s, 6, "m", true);
    let dir = s.snapshot_dir(&id);
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let mut seed = 12345u64;
    let mut trials = 0;
    for f in &files {
        let original = std::fs::read(f).unwrap();
        for _ in 0..250 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let bit = (seed % (original.len() as u64 * 8)) as usize;
            let mut b = original.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            std::fs::write(f, &b).unwrap();
            let rep = s.verify(&id).unwrap();
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                !rep.ok && rep.problems.iter().any(|p| p.file == name),
                "flip of bit {bit} in {name} not reported: {rep:?}"
            );
            assert!(s.open_snapshot(&id).is_err(), "open must refuse a corrupted snapshot ({name} bit {bit})");
            let all = [ArtifactKind::Vectors, ArtifactKind::Documents, ArtifactKind::Chunks];
            assert!(s.open_snapshot_keeping(&id, &all).is_err(), "keeping open must refuse it too ({name} bit {bit})");
            trials += 1;
        }
        std::fs::write(f, &original).unwrap();
    }
    assert!(trials >= 1000, "{trials} trials");
    assert!(s.verify(&id).unwrap().ok);
}

#[test]
fn truncated_and_extra_files_are_reported() {
    let d = tempfile::tempdir().unwrap();
    let mut s = Store::open_writer(d.path()).unwrap();
    let id = publish(&mut s, 6, "m", true);
    let dir = s.snapshot_dir(&id);
    let v = dir.join("vectors.bin");
    let bytes = std::fs::read(&v).unwrap();
    std::fs::write(&v, &bytes[..bytes.len() - 9]).unwrap();
    std::fs::write(dir.join("stray.bin"), b"x").unwrap();
    let rep = s.verify(&id).unwrap();
    assert!(rep.problems.iter().any(|p| p.file == "vectors.bin"), "{rep:?}");
    assert!(rep.problems.iter().any(|p| p.file == "stray.bin"), "{rep:?}");
}

fn rewrite_manifest(s: &Store, id: &str, edit: impl Fn(&mut serde_json::Value)) -> std::path::PathBuf {
    let p = s.snapshot_dir(id).join(MANIFEST_FILE);
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
    p
}

#[test]
fn hostile_manifests_are_refused_without_reading_outside_the_store() {
    for (what, edit) in [
        (
            "traversal",
            Box::new(|v: &mut serde_json::Value| v["files"][0]["name"] = "../../../etc/passwd".into())
                as Box<dyn Fn(&mut serde_json::Value)>,
        ),
        ("absolute", Box::new(|v: &mut serde_json::Value| v["files"][0]["name"] = "/etc/passwd".into())),
        ("future version", Box::new(|v: &mut serde_json::Value| v["format_version"] = 99.into())),
        (
            "unknown feature",
            Box::new(|v: &mut serde_json::Value| {
                v["reader_features"].as_array_mut().unwrap().push("zstd-chunks".into())
            }),
        ),
        ("huge size", Box::new(|v: &mut serde_json::Value| v["files"][0]["size"] = u64::MAX.into())),
        (
            "an id map without its reader feature",
            Box::new(|v: &mut serde_json::Value| v["files"][0]["kind"] = "hnsw-ids".into()),
        ),
        (
            "two files of one kind",
            Box::new(|v: &mut serde_json::Value| {
                let kind = v["files"][0]["kind"].clone();
                v["files"][1]["kind"] = kind;
            }),
        ),
    ] {
        let d = tempfile::tempdir().unwrap();
        let mut s = Store::open_writer(d.path()).unwrap();
        let id = publish(&mut s, 4, "m", true);
        let mpath = rewrite_manifest(&s, &id, &edit);
        // The catalog digest no longer matches: refused as corrupt.
        assert!(matches!(s.open_snapshot(&id), Err(StoreError::Corrupt { .. })), "{what}");
        // Even with a matching digest (an attacker who also rewrote the catalog), parsing refuses.
        let bytes = std::fs::read(&mpath).unwrap();
        let err = Manifest::parse(&mpath, &bytes).unwrap_err();
        assert!(
            matches!(err, StoreError::ManifestRefused { .. } | StoreError::UnsupportedVersion { .. }),
            "{what}: {err}"
        );
    }
}

#[test]
fn a_symlinked_artifact_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let mut s = Store::open_writer(d.path()).unwrap();
    let id = publish(&mut s, 4, "m", true);
    let v = s.snapshot_dir(&id).join("vectors.bin");
    let outside = d.path().join("outside.bin");
    std::fs::rename(&v, &outside).unwrap();
    std::os::unix::fs::symlink(&outside, &v).unwrap();
    let err = s.open_snapshot(&id).unwrap_err();
    assert!(err.to_string().contains("symlink"), "{err}");
}

#[test]
fn a_second_writer_is_told_who_holds_the_lock() {
    let d = tempfile::tempdir().unwrap();
    let _first = Store::open_writer(d.path()).unwrap();
    match Store::open_writer(d.path()) {
        Err(StoreError::Locked { pid, .. }) => assert_eq!(pid, std::process::id()),
        other => panic!("expected Locked, got {:?}", other.err()),
    }
    // Readers never take the lock.
    Store::open_reader(d.path()).unwrap();
}

#[test]
fn rollback_moves_head_verifies_first_and_never_deletes() {
    let d = tempfile::tempdir().unwrap();
    let mut s = Store::open_writer(d.path()).unwrap();
    let a = publish(&mut s, 4, "m", true);
    let b = publish(&mut s, 5, "m", true);
    assert_eq!(s.previous_head(1).unwrap(), a);
    s.rollback(&a, "bad build", false).unwrap();
    assert_eq!(s.head().unwrap().id, a);
    assert!(s.snapshot_dir(&b).exists());
    let h = s.catalog().history().unwrap();
    assert_eq!(h.last().unwrap().action, "rollback");
    assert_eq!(h.last().unwrap().reason, "bad build");
    // Corrupt b, then try to roll forward to it: refused, head unchanged.
    let v = s.snapshot_dir(&b).join("chunks.bin");
    let mut bytes = std::fs::read(&v).unwrap();
    bytes[40] ^= 1;
    std::fs::write(&v, bytes).unwrap();
    // b was backed out by the rollback: a rollback to it is refused, a forced promotion verifies.
    let err = s.rollback(&b, "forward", false).unwrap_err();
    assert!(err.to_string().contains("backed out"), "{err}");
    let err = s.promote(&b, true, "forward").unwrap_err();
    assert!(err.to_string().contains("failed verification"), "{err}");
    assert_eq!(s.head().unwrap().id, a);
}

#[test]
fn rollback_across_a_model_change_needs_permission() {
    let d = tempfile::tempdir().unwrap();
    let mut s = Store::open_writer(d.path()).unwrap();
    let a = publish(&mut s, 4, "old-model", true);
    publish(&mut s, 4, "new-model", true);
    let err = s.rollback(&a, "r", false).unwrap_err();
    assert!(err.to_string().contains("--allow-model-change"), "{err}");
    s.rollback(&a, "r", true).unwrap();
    assert_eq!(s.head().unwrap().id, a);
}

#[test]
fn rejected_builds_need_force_to_promote() {
    let d = tempfile::tempdir().unwrap();
    let mut s = Store::open_writer(d.path()).unwrap();
    let a = publish(&mut s, 4, "m", true);
    let r = publish(&mut s, 4, "m", false);
    assert_eq!(s.head().unwrap().id, a);
    assert_eq!(s.catalog().get(&r).unwrap().status, "rejected");
    assert!(s.promote(&r, false, "x").is_err());
    s.promote(&r, true, "operator checked it").unwrap();
    assert_eq!(s.head().unwrap().id, r);
    assert_eq!(s.catalog().history().unwrap().last().unwrap().action, "force-promote");
}

#[test]
fn orphans_from_a_crash_are_cleaned_on_the_next_writer_open() {
    let d = tempfile::tempdir().unwrap();
    let id = {
        let mut s = Store::open_writer(d.path()).unwrap();
        publish(&mut s, 4, "m", true)
    };
    // A build this store marked and never committed: provably unfinished, removed.
    std::fs::create_dir_all(d.path().join("staging/sdead-000000")).unwrap();
    std::fs::write(d.path().join("staging/sdead-000000/chunks.bin"), b"half").unwrap();
    std::fs::write(d.path().join("staging/sdead-000000.pending"), b"sdead-000000").unwrap();
    // ... also after its rename into snapshots/.
    std::fs::create_dir_all(d.path().join("snapshots/sgone-222222")).unwrap();
    std::fs::write(d.path().join("staging/sgone-222222.pending"), b"sgone-222222").unwrap();
    // Unmarked: nothing proves these are ours or unfinished; moved to quarantine, not deleted.
    std::fs::create_dir_all(d.path().join("snapshots/sunknown-111111")).unwrap();
    std::fs::write(d.path().join("snapshots/sunknown-111111/keep.txt"), b"mine").unwrap();
    std::fs::create_dir_all(d.path().join("staging/sstray-333333")).unwrap();
    let s = Store::open_writer(d.path()).unwrap();
    assert!(!d.path().join("staging/sdead-000000").exists());
    assert!(!d.path().join("staging/sdead-000000.pending").exists());
    // Under snapshots/, a marker proves nothing (the catalog may be an older copy that
    // missed its commit): moved to quarantine, never deleted.
    assert!(!d.path().join("snapshots/sgone-222222").exists());
    assert!(d.path().join("quarantine/sgone-222222").is_dir());
    assert!(!d.path().join("staging/sgone-222222.pending").exists());
    assert!(!d.path().join("snapshots/sunknown-111111").exists());
    assert_eq!(std::fs::read(d.path().join("quarantine/sunknown-111111/keep.txt")).unwrap(), b"mine");
    assert!(d.path().join("quarantine/sstray-333333").is_dir());
    let names: Vec<&str> = s.quarantined().iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["sstray-333333", "sgone-222222", "sunknown-111111"]);
    assert!(s.verify(&id).unwrap().ok);
}

#[test]
fn gc_keeps_head_pins_recent_and_leased_snapshots() {
    let d = tempfile::tempdir().unwrap();
    let mut s = Store::open_writer(d.path()).unwrap();
    let ids: Vec<String> = (0..5).map(|i| publish(&mut s, 3 + i, "m", true)).collect();
    s.pin("release-1", &ids[0]).unwrap();
    let reader = Store::open_reader(d.path()).unwrap();
    let held = reader.open_snapshot(&ids[1]).unwrap();
    let dry = s.gc(1, None, true).unwrap();
    assert_eq!(dry.removed, vec![ids[2].clone(), ids[3].clone()]);
    assert!(s.snapshot_dir(&ids[2]).exists(), "dry run deletes nothing");
    let rep = s.gc(1, None, false).unwrap();
    assert_eq!(rep.removed, vec![ids[2].clone(), ids[3].clone()]);
    assert!(!s.snapshot_dir(&ids[2]).exists());
    assert!(s.snapshot_dir(&ids[1]).exists(), "leased by a reader");
    assert!(rep.kept.iter().any(|(id, why)| id == &ids[1] && why.contains("reader")));
    assert_eq!(s.catalog().get(&ids[2]).unwrap().status, "collected");
    drop(held);
    let rep = s.gc(1, None, false).unwrap();
    assert_eq!(rep.removed, vec![ids[1].clone()]);
    assert!(s.open_snapshot(&ids[1]).is_err());
    let _ = Path::new("");
}

#[test]
fn kept_payloads_are_the_bytes_read_payload_gives() {
    let d = tempfile::tempdir().unwrap();
    let mut s = Store::open_writer(d.path()).unwrap();
    let id = publish(&mut s, 5, "m", true);
    let plain = s.open_snapshot(&id).unwrap();
    let kept = s.open_snapshot_keeping(&id, &[ArtifactKind::Vectors, ArtifactKind::Documents]).unwrap();
    for kind in [ArtifactKind::Vectors, ArtifactKind::Documents, ArtifactKind::Chunks] {
        let want = plain.read_payload(kind).unwrap().unwrap();
        assert_eq!(&*kept.payload(kind).unwrap().unwrap(), want.as_slice(), "{kind:?}");
        // A second request reads the file again.
        assert_eq!(kept.read_payload(kind).unwrap().unwrap(), want, "{kind:?} again");
    }
    assert!(kept.payload(ArtifactKind::Hnsw).unwrap().is_none());
}

fn refuse_everything(_: OpenedSnapshot) -> std::result::Result<(), String> {
    Err("the test's load check refuses it".into())
}

#[test]
fn a_build_the_load_check_refuses_is_not_published() {
    let d = tempfile::tempdir().unwrap();
    let mut s = Store::open_writer(d.path()).unwrap();
    let a = publish(&mut s, 4, "m", true);
    s.set_load_check(refuse_everything);
    let mut st = s.stage().unwrap();
    let id = st.id.clone();
    assert!(d.path().join("staging").join(format!("{id}.pending")).exists(), "marker written at stage time");
    st.write_artifact("vectors.bin", ArtifactKind::Vectors, &tables::encode_vectors(4, &[vec![1.0, 0.0, 0.0, 0.0]]))
        .unwrap();
    let m = s.open_snapshot(&a).unwrap().manifest.clone();
    let err = s.publish(st, m, true, "t").unwrap_err();
    assert!(matches!(err, StoreError::Unreadable { .. }), "{err}");
    assert!(err.to_string().contains("refuses it"), "{err}");
    assert_eq!(s.head().unwrap().id, a);
    assert!(!s.snapshot_dir(&id).exists());
    assert_eq!(std::fs::read_dir(d.path().join("staging")).unwrap().count(), 0, "staging folder and marker removed");
    assert!(s.catalog().get(&id).is_err());
}

#[test]
fn a_missing_or_empty_catalog_is_never_recreated() {
    let d = tempfile::tempdir().unwrap();
    let a = {
        let mut s = Store::open_writer(d.path()).unwrap();
        publish(&mut s, 4, "m", true)
    };
    std::fs::write(d.path().join("catalog.sqlite"), b"").unwrap();
    for side in ["catalog.sqlite-wal", "catalog.sqlite-shm"] {
        let _ = std::fs::remove_file(d.path().join(side));
    }
    // Twice: the first refusal must not have turned the empty file into a fresh catalog.
    for _ in 0..2 {
        let err = Store::open_writer(d.path()).err().expect("an empty catalog stops the writer");
        assert!(matches!(err, StoreError::CatalogDamaged { .. }), "{err}");
        assert!(err.to_string().contains("ragsnap repair"), "{err}");
        assert!(matches!(Store::open_reader(d.path()).err(), Some(StoreError::CatalogDamaged { .. })));
        assert_eq!(std::fs::metadata(d.path().join("catalog.sqlite")).unwrap().len(), 0, "not recreated");
        assert!(d.path().join("snapshots").join(&a).exists());
    }
    std::fs::remove_file(d.path().join("catalog.sqlite")).unwrap();
    assert!(matches!(Store::open_writer(d.path()).err(), Some(StoreError::CatalogDamaged { .. })));
    let plan = Store::repair(d.path(), true, None).unwrap();
    assert!(plan.needed && plan.head.as_deref() == Some(a.as_str()), "{plan:?}");
    assert!(!d.path().join("catalog.sqlite").exists(), "a dry run changes nothing");
    let done = Store::repair(d.path(), false, None).unwrap();
    assert_eq!(done.head_source, "head record");
    let s = Store::open_writer(d.path()).unwrap();
    assert_eq!(s.head().unwrap().id, a);
    assert!(s.verify(&a).unwrap().ok);
}

#[test]
fn repair_fixes_a_row_that_disagrees_with_its_intact_folder_and_keeps_history_and_pins() {
    let d = tempfile::tempdir().unwrap();
    let (a, b) = {
        let mut s = Store::open_writer(d.path()).unwrap();
        let a = publish(&mut s, 4, "m", true);
        let b = publish(&mut s, 5, "m", true);
        s.pin("keep", &a).unwrap();
        (a, b)
    };
    let conn = rusqlite::Connection::open(d.path().join("catalog.sqlite")).unwrap();
    conn.execute("UPDATE snapshots SET documents = documents + 1 WHERE id = ?1", [a.clone()]).unwrap();
    drop(conn);
    let r = Store::open_reader(d.path()).unwrap();
    let rep = r.verify(&a).unwrap();
    assert!(!rep.ok && rep.problems[0].message.contains("ragsnap repair"), "{rep:?}");
    assert!(matches!(r.open_snapshot(&a).unwrap_err(), StoreError::CatalogDamaged { .. }));
    drop(r);
    let done = Store::repair(d.path(), false, None).unwrap();
    assert!(done.needed, "{done:?}");
    assert!(done.catalog_problem.as_deref().unwrap().contains(&a), "{done:?}");
    assert!(done.not_restored.is_empty(), "{done:?}");
    let s = Store::open_writer(d.path()).unwrap();
    assert_eq!(s.head().unwrap().id, b);
    assert!(s.verify(&a).unwrap().ok);
    assert_eq!(s.catalog().get(&a).unwrap().pins, ["keep"]);
    let actions: Vec<String> = s.catalog().history().unwrap().into_iter().map(|h| h.action).collect();
    assert_eq!(actions, ["promote", "promote", "repair"]);
    let aside = done.old_catalog_kept_as.expect("old catalog kept");
    assert!(aside.exists());
}

#[test]
fn repair_quarantines_a_folder_whose_manifest_digest_differs_from_its_row() {
    let d = tempfile::tempdir().unwrap();
    let (a, b) = {
        let mut s = Store::open_writer(d.path()).unwrap();
        let a = publish(&mut s, 4, "m", true);
        let b = publish(&mut s, 5, "m", true);
        (a, b)
    };
    let conn = rusqlite::Connection::open(d.path().join("catalog.sqlite")).unwrap();
    conn.execute("UPDATE snapshots SET manifest_blake3 = ?1 WHERE id = ?2", ["0".repeat(64), a.clone()]).unwrap();
    drop(conn);
    let r = Store::open_reader(d.path()).unwrap();
    let rep = r.verify(&a).unwrap();
    assert!(!rep.ok && rep.problems[0].message.contains("ragsnap repair"), "{rep:?}");
    match r.open_snapshot(&a).unwrap_err() {
        StoreError::CatalogDamaged { message, .. } => {
            assert!(!message.contains("is intact") && message.contains("which to trust is unknown"), "{message}")
        }
        e => panic!("{e:?}"),
    }
    drop(r);
    let done = Store::repair(d.path(), false, None).unwrap();
    assert!(done.restored.iter().all(|x| x.id != a), "{done:?}");
    assert!(
        done.unrestored
            .iter()
            .any(|u| u.name == a && u.problem.contains("manifest does not match the catalog's record")),
        "{done:?}"
    );
    assert!(d.path().join("quarantine").join(&a).join("MANIFEST.json").exists());
    let s = Store::open_writer(d.path()).unwrap();
    assert_eq!(s.head().unwrap().id, b);
    assert!(s.catalog().get(&a).is_err());
}

#[test]
fn gc_keeps_a_folder_whose_row_was_marked_collected_without_its_marker() {
    let d = tempfile::tempdir().unwrap();
    let (a, b) = {
        let mut s = Store::open_writer(d.path()).unwrap();
        (publish(&mut s, 4, "m", true), publish(&mut s, 5, "m", true))
    };
    let conn = rusqlite::Connection::open(d.path().join("catalog.sqlite")).unwrap();
    conn.execute("UPDATE snapshots SET status = 'collected' WHERE id = ?1", [a.clone()]).unwrap();
    drop(conn);
    // A stale marker (gc killed before marking its row) goes; its folder stays.
    std::fs::write(d.path().join("gc").join(format!("{b}.collecting")), b.as_bytes()).unwrap();
    let mut s = Store::open_writer(d.path()).unwrap();
    let rep = s.gc(100, None, false).unwrap();
    assert!(rep.resumed.is_empty(), "{rep:?}");
    assert!(rep.kept.iter().any(|(id, why)| *id == a && why.contains("no gc marker")), "{rep:?}");
    assert!(d.path().join("snapshots").join(&a).join("MANIFEST.json").exists(), "an intact folder was deleted");
    assert!(!d.path().join("gc").join(format!("{b}.collecting")).exists());
    assert!(s.verify(&b).unwrap().ok);
    drop(s);
    let plan = Store::repair(d.path(), true, None).unwrap();
    assert!(plan.catalog_problem.as_deref().is_some_and(|p| p.contains("no gc marker")), "{plan:?}");
    let mut s = Store::open_writer(d.path()).unwrap();
    // With its marker (what gc writes before marking), the interrupted removal is finished.
    std::fs::write(d.path().join("gc").join(format!("{a}.collecting")), a.as_bytes()).unwrap();
    let rep = s.gc(100, None, false).unwrap();
    assert_eq!(rep.resumed, vec![a.clone()]);
    assert!(!d.path().join("snapshots").join(&a).exists());
    assert!(!d.path().join("gc").join(format!("{a}.collecting")).exists());
}

#[test]
fn gc_refuses_a_row_whose_times_disagree_with_its_folder() {
    let d = tempfile::tempdir().unwrap();
    let a = {
        let mut s = Store::open_writer(d.path()).unwrap();
        let a = publish(&mut s, 4, "m", true);
        publish(&mut s, 5, "m", true);
        a
    };
    let cpath = d.path().join("catalog.sqlite");
    let good = std::fs::read(&cpath).unwrap();
    // created_unix alone shifted back 1,000,000 s: the catalog check stops every writer.
    let conn = rusqlite::Connection::open(&cpath).unwrap();
    conn.execute("UPDATE snapshots SET created_unix = created_unix - 1000000 WHERE id = ?1", [a.clone()]).unwrap();
    drop(conn);
    assert!(matches!(Store::open_writer(d.path()).err(), Some(StoreError::CatalogDamaged { .. })));
    assert!(d.path().join("snapshots").join(&a).exists());
    // created_at shifted with it (consistent row, disagreeing with the manifest): gc refuses.
    for side in ["catalog.sqlite-wal", "catalog.sqlite-shm"] {
        let _ = std::fs::remove_file(d.path().join(side));
    }
    std::fs::write(&cpath, &good).unwrap();
    let conn = rusqlite::Connection::open(&cpath).unwrap();
    let (at, unix): (String, i64) = conn
        .query_row("SELECT created_at, created_unix FROM snapshots WHERE id = ?1", [a.clone()], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    let shifted = ragsnap_store::time::rfc3339(ragsnap_store::time::parse_rfc3339(&at).unwrap() - 1_000_000);
    conn.execute(
        "UPDATE snapshots SET created_at = ?1, created_unix = ?2 WHERE id = ?3",
        rusqlite::params![shifted, unix - 1_000_000, a],
    )
    .unwrap();
    drop(conn);
    let mut s = Store::open_writer(d.path()).unwrap();
    for dry in [true, false] {
        match s.gc(0, Some(7 * 86400), dry) {
            Err(StoreError::CatalogDamaged { message, .. }) => assert!(message.contains("creation time"), "{message}"),
            other => panic!("{other:?}"),
        }
    }
    assert!(d.path().join("snapshots").join(&a).join("MANIFEST.json").exists());
    assert_eq!(s.catalog().get(&a).unwrap().status, "ready");
}

#[test]
fn a_killed_repairs_temporary_catalog_is_removed_by_the_next_writer() {
    let d = tempfile::tempdir().unwrap();
    drop(Store::open_writer(d.path()).unwrap());
    // No process has a pid this large (pid_max is at most 2^22).
    let dead: Vec<String> =
        ["", "-journal", "-wal", "-shm"].iter().map(|side| format!("catalog.sqlite.repair-999999999{side}")).collect();
    for n in &dead {
        std::fs::write(d.path().join(n), b"x").unwrap();
    }
    // A live repair's file (this process) stays.
    let live = format!("catalog.sqlite.repair-{}", std::process::id());
    std::fs::write(d.path().join(&live), b"x").unwrap();
    drop(Store::open_writer(d.path()).unwrap());
    for n in &dead {
        assert!(!d.path().join(n).exists(), "{n} left behind");
    }
    assert!(d.path().join(&live).exists());
    std::fs::write(d.path().join(&dead[0]), b"x").unwrap();
    Store::repair(d.path(), false, None).unwrap();
    assert!(!d.path().join(&dead[0]).exists());
}

#[test]
fn repair_does_not_launder_a_rewritten_artifact_with_recomputed_checksums() {
    let d = tempfile::tempdir().unwrap();
    let (a, b) = {
        let mut s = Store::open_writer(d.path()).unwrap();
        (publish(&mut s, 4, "m", true), publish(&mut s, 5, "m", true))
    };
    // The attacker rewrites an artifact of head, reframes it (frame checksum recomputed) and
    // records its new digest in the manifest.
    let dir = d.path().join("snapshots").join(&b);
    let mpath = dir.join("MANIFEST.json");
    let mut m = ragsnap_store::Manifest::parse(&mpath, &std::fs::read(&mpath).unwrap()).unwrap();
    let entry = m.files.iter_mut().find(|f| f.kind == "documents").unwrap();
    let path = dir.join(&entry.name);
    let bytes = std::fs::read(&path).unwrap();
    let mut payload = ragsnap_store::artifact::unframe(&path, ArtifactKind::Documents, &bytes).unwrap().to_vec();
    let last = payload.len() - 1;
    payload[last] ^= 1;
    let framed = ragsnap_store::artifact::frame(ArtifactKind::Documents, &payload);
    std::fs::write(&path, &framed).unwrap();
    entry.size = framed.len() as u64;
    entry.blake3 = blake3::hash(&framed).to_hex().to_string();
    std::fs::write(&mpath, m.to_bytes()).unwrap();
    let r = Store::open_reader(d.path()).unwrap();
    assert!(r.open_snapshot(&b).is_err());
    drop(r);
    let done = Store::repair(d.path(), false, None).unwrap();
    assert_eq!(done.head.as_deref(), Some(a.as_str()), "{done:?}");
    assert!(done.unrestored.iter().any(|u| u.name == b && u.problem.contains("does not match the catalog's record")));
    let s = Store::open_reader(d.path()).unwrap();
    assert_eq!(s.head().unwrap().id, a);
    assert!(s.catalog().get(&b).is_err());
    assert!(d.path().join("quarantine").join(&b).is_dir());
}

#[test]
fn repair_brings_the_head_records_snapshot_back_from_quarantine() {
    let d = tempfile::tempdir().unwrap();
    let (_a, b) = {
        let mut s = Store::open_writer(d.path()).unwrap();
        (publish(&mut s, 4, "m", true), publish(&mut s, 5, "m", true))
    };
    std::fs::rename(d.path().join("snapshots").join(&b), d.path().join("quarantine").join(&b)).unwrap();
    std::fs::remove_file(d.path().join("catalog.sqlite")).unwrap();
    let plan = Store::repair(d.path(), true, None).unwrap();
    assert_eq!(plan.head.as_deref(), Some(b.as_str()), "{plan:?}");
    assert!(d.path().join("quarantine").join(&b).is_dir(), "a dry run moves nothing");
    let done = Store::repair(d.path(), false, None).unwrap();
    assert_eq!(done.head.as_deref(), Some(b.as_str()), "{done:?}");
    assert_eq!(done.head_source, "head record");
    let s = Store::open_reader(d.path()).unwrap();
    assert_eq!(s.head().unwrap().id, b);
    assert!(s.verify(&b).unwrap().ok);
}

/// The manifest's index kind and the catalog's status are typed, and their on-disk text is the
/// text manifests and catalogs have always held; an unknown kind is refused naming the file.
#[test]
fn typed_index_kind_and_status_keep_their_on_disk_text() {
    let d = tempfile::tempdir().unwrap();
    let mut s = Store::open_writer(d.path()).unwrap();
    let (ready, rejected) = (publish(&mut s, 4, "m", true), publish(&mut s, 4, "m", false));
    assert_eq!(s.catalog().get(&ready).unwrap().status, SnapshotStatus::Ready);
    assert_eq!(s.catalog().get(&rejected).unwrap().status, SnapshotStatus::Rejected);
    let conn = rusqlite::Connection::open(d.path().join("catalog.sqlite")).unwrap();
    let text: String = conn.query_row("SELECT status FROM snapshots WHERE id = ?1", [&rejected], |r| r.get(0)).unwrap();
    assert_eq!(text, "rejected");

    let mpath = d.path().join("snapshots").join(&ready).join(MANIFEST_FILE);
    let bytes = std::fs::read_to_string(&mpath).unwrap();
    assert!(bytes.contains("\"kind\": \"exact\""), "{bytes}");
    let m = Manifest::parse(&mpath, bytes.as_bytes()).unwrap();
    assert_eq!(m.index.kind, IndexKind::Exact);
    assert_eq!(String::from_utf8(m.to_bytes()).unwrap(), bytes, "a manifest round-trips byte for byte");
    let err =
        Manifest::parse(&mpath, bytes.replace("\"kind\": \"exact\"", "\"kind\": \"ivf\"").as_bytes()).unwrap_err();
    assert!(err.to_string().contains("ivf") && err.to_string().contains(MANIFEST_FILE), "{err}");
}
