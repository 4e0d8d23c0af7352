//! Tests against the real pinned model and ONNX Runtime (fetched by `make setup`).

use ragsnap_core::Canary;
use ragsnap_embed::{canary, cosine, EmbedError, Embedder, OnnxEmbedder, OnnxOptions, Runtime};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn runtime() -> Runtime {
    Runtime::resolve(None, None).expect("runtime pieces missing: run `make setup`")
}

fn shared() -> &'static OnnxEmbedder {
    static E: OnceLock<OnnxEmbedder> = OnceLock::new();
    E.get_or_init(|| OnnxEmbedder::load(&runtime(), OnnxOptions { batch_size: 4, ..Default::default() }).unwrap())
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Copy the model folder so a test can alter it.
fn copy_model_dir() -> tempfile::TempDir {
    let src = runtime().model_dir;
    let dst = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.path().join(e.file_name())).unwrap();
    }
    dst
}

/// Drop the descriptor's tokenizer pin, so that a test may change the tokenizer file.
fn unpin_tokenizer(dir: &Path) {
    let desc = dir.join("model.toml");
    let text = std::fs::read_to_string(&desc).unwrap();
    let kept: String = text.lines().filter(|l| !l.starts_with("tokenizer_sha256")).map(|l| format!("{l}\n")).collect();
    std::fs::write(&desc, kept).unwrap();
}

#[test]
fn vectors_match_the_python_onnxruntime_reference() {
    let text = std::fs::read_to_string(repo_root().join("fixtures/reference/minilm-l6-int8.json")).unwrap();
    let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
    let items = reference["texts"].as_array().unwrap();
    let texts: Vec<&str> = items.iter().map(|t| t["text"].as_str().unwrap()).collect();
    let e = shared();
    let before = e.stats().truncated;
    let ours = e.embed(&texts).unwrap();
    let mut worst = 1.0f32;
    for (item, v) in items.iter().zip(&ours) {
        let want: Vec<f32> = item["vector"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
        assert_eq!(v.len(), 384);
        let c = cosine(&want, v);
        worst = worst.min(c);
        assert!(c >= 0.9999, "cosine {c} for {:?}", item["text"]);
        let untruncated =
            item.get("untruncated_tokens").and_then(|t| t.as_u64()).unwrap_or(item["token_count"].as_u64().unwrap());
        assert_eq!(
            e.count_tokens(item["text"].as_str().unwrap()) as u64,
            untruncated,
            "token count of {:?}",
            item["text"]
        );
    }
    let long = items.iter().filter(|t| t.get("untruncated_tokens").is_some()).count() as u64;
    assert!(long >= 1, "the reference must include a text over the model's maximum");
    assert!(e.stats().truncated - before >= long, "truncation must be counted, never silent");
    eprintln!("worst cosine against the Python reference: {worst}");
}

#[test]
fn bucketing_preserves_the_callers_order_and_vectors_are_deterministic() {
    let e = shared();
    let texts = [
        "a much longer text about queues, workers, retries and dead-letter handling in a job system",
        "short",
        "medium length sentence about TLS",
        "x",
        "another long one: the scheduler accepts cron expressions with seconds and time zones",
    ];
    let batch = e.embed(&texts).unwrap();
    for (t, v) in texts.iter().zip(&batch) {
        let alone = e.embed(&[t]).unwrap().pop().unwrap();
        assert!(cosine(&alone, v) > 0.99999, "{t}");
    }
    let again = e.embed(&texts).unwrap();
    for (a, b) in batch.iter().zip(&again) {
        let same = a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
        assert!(same, "same text, same batch, same runtime must give identical bits");
    }
    let naive = e.embed_with(&texts, false).unwrap();
    for (a, b) in batch.iter().zip(&naive) {
        assert!(cosine(a, b) > 0.99999);
    }
}

#[test]
fn empty_input_does_no_model_work() {
    let e = shared();
    let calls = e.stats().model_calls;
    assert!(e.embed(&[]).unwrap().is_empty());
    assert_eq!(e.stats().model_calls, calls);
}

#[test]
fn changing_one_byte_of_the_tokenizer_changes_the_identity_and_is_refused() {
    let base = shared();
    let dir = copy_model_dir();
    // Without a tokenizer pin (a folder of one's own): the changed file loads, as another model.
    unpin_tokenizer(dir.path());
    let tok = dir.path().join("tokenizer.json");
    let mut bytes = std::fs::read(&tok).unwrap();
    bytes.push(b'\n'); // still valid JSON; one more byte
    std::fs::write(&tok, bytes).unwrap();
    let rt = Runtime { ort_lib: runtime().ort_lib, model_dir: dir.path().to_path_buf() };
    let other = OnnxEmbedder::load(&rt, OnnxOptions::default()).unwrap();
    assert_ne!(other.fingerprint().id(), base.fingerprint().id());
    assert_eq!(other.fingerprint().model_blake3, base.fingerprint().model_blake3);
    let canaries = canary::compute(base).unwrap();
    match canary::verify(&other, base.fingerprint(), &canaries) {
        Err(EmbedError::EmbeddingVersionMismatch { index, embedder }) => {
            assert_eq!(index, base.fingerprint().id());
            assert_eq!(embedder, other.fingerprint().id());
        }
        other => panic!("expected EmbeddingVersionMismatch, got {other:?}"),
    }
}

#[test]
fn canaries_pass_for_the_same_model_and_catch_drift() {
    let e = shared();
    let canaries = canary::compute(e).unwrap();
    assert_eq!(canaries.len(), 16);
    canary::verify(e, e.fingerprint(), &canaries).unwrap();
    // Perturb one stored canary as a runtime upgrade would.
    let mut drifted: Vec<Canary> = canaries.clone();
    let v = &mut drifted[5].vector;
    for (i, x) in v.iter_mut().enumerate() {
        *x += if i % 2 == 0 { 0.01 } else { -0.01 };
    }
    match canary::verify(e, e.fingerprint(), &drifted) {
        Err(EmbedError::EmbeddingDrift { canary, cosine, .. }) => {
            assert_eq!(canary, drifted[5].text);
            assert!(cosine < 0.999);
        }
        other => panic!("expected EmbeddingDrift, got {other:?}"),
    }
}

#[test]
fn pinned_checksum_mismatch_missing_files_and_wrong_io_are_refused() {
    let ort = runtime().ort_lib;
    // Pinned digest that does not match.
    let dir = copy_model_dir();
    let desc = dir.path().join("model.toml");
    let text = std::fs::read_to_string(&desc).unwrap();
    let pinned = text.replace("model_blake3 = \"\"", &format!("model_blake3 = \"{}\"", "0".repeat(64)));
    let pinned = if pinned == text {
        text.replace("[expected]", &format!("[expected]\nmodel_blake3 = \"{}\"", "0".repeat(64)))
    } else {
        pinned
    };
    std::fs::write(&desc, pinned).unwrap();
    let rt = Runtime { ort_lib: ort.clone(), model_dir: dir.path().to_path_buf() };
    assert!(matches!(OnnxEmbedder::load(&rt, OnnxOptions::default()), Err(EmbedError::ChecksumMismatch { .. })));

    // Missing tokenizer: the error names the path and `make setup`.
    let dir = copy_model_dir();
    std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    let rt = Runtime { ort_lib: ort.clone(), model_dir: dir.path().to_path_buf() };
    let err = OnnxEmbedder::load(&rt, OnnxOptions::default()).err().expect("must fail").to_string();
    assert!(err.contains("tokenizer.json") && err.contains("make setup"), "{err}");

    // Descriptor naming an output the model does not have.
    let dir = copy_model_dir();
    let desc = dir.path().join("model.toml");
    let text = std::fs::read_to_string(&desc)
        .unwrap()
        .replace("output = \"last_hidden_state\"", "output = \"sentence_embedding\"");
    std::fs::write(&desc, text).unwrap();
    let rt = Runtime { ort_lib: ort, model_dir: dir.path().to_path_buf() };
    assert!(matches!(OnnxEmbedder::load(&rt, OnnxOptions::default()), Err(EmbedError::ModelShape { .. })));
}

#[test]
fn missing_runtime_pieces_name_the_fix() {
    let err = Runtime::resolve(Some(Path::new("/nonexistent/libonnxruntime.so")), None).unwrap_err().to_string();
    assert!(err.contains("make setup") && err.contains("/nonexistent/libonnxruntime.so"), "{err}");
    let err = Runtime::resolve(None, Some(Path::new("/nonexistent/model"))).unwrap_err().to_string();
    assert!(err.contains("make setup") && err.contains("/nonexistent/model"), "{err}");
}

#[test]
fn bulk_sessions_give_the_same_bits_in_the_callers_order() {
    // Varied lengths, so length bucketing makes several batches of different shapes.
    let texts: Vec<String> = (0..40)
        .map(|i| {
            let words = ["queue", "worker", "retry", "backoff", "schedule", "lease", "ack", "TLS"];
            let n = 1 + (i * 7) % 60;
            (0..n).map(|j| words[(i + j) % words.len()]).collect::<Vec<_>>().join(" ")
        })
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let one = OnnxEmbedder::load(
        &runtime(),
        OnnxOptions { intra_threads: 1, batch_size: 4, bulk_sessions: 1, ..Default::default() },
    )
    .unwrap();
    let three = OnnxEmbedder::load(
        &runtime(),
        OnnxOptions { intra_threads: 1, batch_size: 4, bulk_sessions: 3, ..Default::default() },
    )
    .unwrap();
    let a = one.embed(&refs).unwrap();
    let b = three.embed(&refs).unwrap();
    assert_eq!(a.len(), texts.len());
    assert_eq!(b.len(), texts.len());
    for (t, (x, y)) in texts.iter().zip(a.iter().zip(&b)) {
        // Same batches, single-threaded sessions on both sides: identical bits, same slot.
        assert!(x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits()), "{t}");
    }
    let calls = one.stats().model_calls;
    assert!(calls >= 10, "40 texts in batches of at most 4: {calls} calls");
    assert_eq!(three.stats().model_calls, calls, "every batch ran exactly once");
    assert_eq!(three.stats().texts, 40);
    // A one-batch call (a query) stays on the main session and agrees too.
    let q = three.embed(&refs[..2]).unwrap();
    let alone = one.embed(&refs[..2]).unwrap();
    assert_eq!(q, alone);
}

#[test]
fn word_additive_counting_only_for_a_bert_wordpiece_tokenizer() {
    let base = shared();
    assert!(base.word_additive_counts(), "the pinned MiniLM tokenizer is BERT WordPiece");
    // What the chunker relies on: counts add up over words, minus the special tokens.
    let e = base.count_tokens("");
    let (a, b) = ("retry_backoff with jitter", "dead-letter queues (DLQ)");
    assert_eq!(base.count_tokens(&format!("{a} \n\t {b}")), base.count_tokens(a) + base.count_tokens(b) - e);
    // Another pre-tokenizer: the embedder must not claim the property.
    let dir = copy_model_dir();
    unpin_tokenizer(dir.path());
    let tok = dir.path().join("tokenizer.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&tok).unwrap()).unwrap();
    v["pre_tokenizer"] = serde_json::json!({"type": "Whitespace"});
    std::fs::write(&tok, serde_json::to_vec(&v).unwrap()).unwrap();
    let rt = Runtime { ort_lib: runtime().ort_lib, model_dir: dir.path().to_path_buf() };
    let other = OnnxEmbedder::load(&rt, OnnxOptions { bulk_sessions: 1, ..Default::default() }).unwrap();
    assert!(!other.word_additive_counts());
}
