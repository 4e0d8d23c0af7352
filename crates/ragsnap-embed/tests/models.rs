//! Descriptors that describe real models, against the real ONNX Runtime: cls and none pooling,
//! prefixes, load-time pinning, and the catalogued models other than the default (each test of
//! a catalogued model is skipped, with a message, when the model is not fetched).

use ragsnap_embed::catalog;
use ragsnap_embed::{cosine, EmbedError, Embedder, OnnxEmbedder, OnnxOptions, Runtime};
use std::path::{Path, PathBuf};

fn runtime() -> Runtime {
    Runtime::resolve(None, None).expect("runtime pieces missing: run `make setup`")
}

fn repo_descriptor(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models").join(name).join("model.toml");
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The default model's files in a temporary folder, with the repository's descriptor (pins
/// included) edited by `edit`.
fn default_copy(edit: impl Fn(String) -> String) -> tempfile::TempDir {
    let src = runtime().model_dir;
    let dst = tempfile::tempdir().unwrap();
    for f in ["model.onnx", "tokenizer.json"] {
        std::fs::copy(src.join(f), dst.path().join(f)).unwrap();
    }
    std::fs::write(dst.path().join("model.toml"), edit(repo_descriptor("minilm-l6-int8"))).unwrap();
    dst
}

fn load(dir: &Path) -> Result<OnnxEmbedder, EmbedError> {
    OnnxEmbedder::load(&Runtime { ort_lib: runtime().ort_lib, model_dir: dir.to_path_buf() }, OnnxOptions::default())
}

/// The folder of catalogued model `name` when it is fetched; `None` (and a message) otherwise.
fn fetched(name: &str) -> Option<PathBuf> {
    match catalog::model_dir(name) {
        Ok(dir) => Some(dir),
        Err(e) => {
            eprintln!("SKIPPED: {e}");
            None
        }
    }
}

const TEXTS: [&str; 3] = [
    "How do I set the number of retries for a failed job?",
    "Configure the maximum attempts before a job goes to the dead-letter queue.",
    "The recipe needs two cups of flour and a pinch of salt.",
];

#[test]
fn the_default_model_loads_with_its_repository_descriptor_and_keeps_its_identity() {
    let dir = default_copy(|t| t);
    let pinned = load(dir.path()).unwrap();
    // The same files under the descriptor the cache had before pins and prefixes existed.
    let old = default_copy(|t| {
        t.lines()
            .filter(|l| {
                !l.starts_with("model_sha256") && !l.starts_with("tokenizer_sha256") && !l.starts_with("model_bytes")
            })
            .filter(|l| !l.starts_with("description") && !l.starts_with("license"))
            .map(|l| format!("{l}\n"))
            .collect()
    });
    let unpinned = load(old.path()).unwrap();
    assert_eq!(pinned.fingerprint().id(), unpinned.fingerprint().id());
}

#[test]
fn a_corrupted_model_file_is_refused_at_load_naming_the_file() {
    let dir = default_copy(|t| t);
    let model = dir.path().join("model.onnx");
    let mut bytes = std::fs::read(&model).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55; // same size, one byte different
    std::fs::write(&model, &bytes).unwrap();
    match load(dir.path()) {
        Err(e @ EmbedError::ChecksumMismatch { algorithm: "sha256", .. }) => {
            assert!(e.to_string().contains(&model.display().to_string()), "{e}");
        }
        Err(other) => panic!("expected a sha256 mismatch, got {other}"),
        Ok(_) => panic!("a corrupted model was loaded"),
    }
    // A truncated file is refused on its size before anything is hashed.
    std::fs::write(&model, &bytes[..mid]).unwrap();
    assert!(matches!(load(dir.path()), Err(EmbedError::ChecksumMismatch { algorithm: "size", .. })));
}

#[test]
fn cls_pooling_answers_with_the_first_token_state_and_is_another_model() {
    let mean = load(default_copy(|t| t).path()).unwrap();
    let cls_dir = default_copy(|t| t.replace("pooling = \"mean\"", "pooling = \"cls\""));
    let cls = load(cls_dir.path()).unwrap();
    assert_ne!(cls.fingerprint().id(), mean.fingerprint().id());
    let a = cls.embed(&TEXTS).unwrap();
    let b = mean.embed(&TEXTS).unwrap();
    for (x, y) in a.iter().zip(&b) {
        let c = cosine(x, y);
        assert!(c < 0.99, "cls and mean vectors should differ, cosine {c}");
        assert!((x.iter().map(|v| v * v).sum::<f32>().sqrt() - 1.0).abs() < 1e-3);
    }
    // The same text alone and inside a batch of longer texts gets the same vector.
    let alone = cls.embed(&TEXTS[2..]).unwrap();
    assert!(cosine(&alone[0], &a[2]) > 0.9999);
}

#[test]
fn prefixes_go_before_queries_and_passages_and_change_the_identity() {
    let plain = load(default_copy(|t| t).path()).unwrap();
    let dir = default_copy(|t| t.replace("default_floor = 0.45", "default_floor = 0.45\nquery_prefix = \"query: \""));
    let prefixed = load(dir.path()).unwrap();
    assert_ne!(prefixed.fingerprint().id(), plain.fingerprint().id());
    let q = prefixed.embed_queries(&TEXTS[..1]).unwrap();
    let by_hand = plain.embed(&[&format!("query: {}", TEXTS[0])]).unwrap();
    assert!(cosine(&q[0], &by_hand[0]) > 0.9999);
    // Passages get no query prefix.
    let p = prefixed.embed(&TEXTS[..1]).unwrap();
    assert!(cosine(&p[0], &plain.embed(&TEXTS[..1]).unwrap()[0]) > 0.9999);
    assert!(cosine(&p[0], &q[0]) < 0.9999);
    // A passage prefix counts in the model tokens of a chunk.
    let dir =
        default_copy(|t| t.replace("default_floor = 0.45", "default_floor = 0.45\npassage_prefix = \"passage: \""));
    let passages = load(dir.path()).unwrap();
    assert!(passages.count_tokens(TEXTS[0]) > plain.count_tokens(TEXTS[0]));
    assert!(!passages.word_additive_counts());
}

#[test]
fn an_output_of_the_wrong_rank_for_the_pooling_is_refused_at_load() {
    let dir = default_copy(|t| t.replace("pooling = \"mean\"", "pooling = \"none\""));
    match load(dir.path()) {
        Err(e @ EmbedError::ModelShape { .. }) => assert!(e.to_string().contains("none pooling"), "{e}"),
        Err(other) => panic!("expected ModelShape, got {other}"),
        Ok(_) => panic!("a per-token output was accepted as pooled"),
    }
    let dir = default_copy(|t| t.replace("output = \"last_hidden_state\"", "output = \"pooled\""));
    assert!(matches!(load(dir.path()), Err(EmbedError::ModelShape { .. })));
}

#[test]
fn the_quantized_variant_loads_embeds_and_stays_close_to_the_default() {
    let Some(dir) = fetched("minilm-l6-qint8") else { return };
    let q = load(&dir).unwrap();
    let d = load(default_copy(|t| t).path()).unwrap();
    assert_ne!(q.fingerprint().id(), d.fingerprint().id());
    let a = q.embed(&TEXTS).unwrap();
    let b = d.embed(&TEXTS).unwrap();
    for (x, y) in a.iter().zip(&b) {
        let c = cosine(x, y);
        assert!(c > 0.95, "quantized vector too far from the default's: cosine {c}");
    }
    // Still a retrieval model: the two retry texts are closer to each other than to the recipe.
    assert!(cosine(&a[0], &a[1]) > cosine(&a[0], &a[2]) + 0.1);
}

#[test]
fn the_model_pooled_in_its_graph_answers() {
    let Some(dir) = fetched("paraphrase-minilm-l3") else { return };
    let m = load(&dir).unwrap();
    assert_eq!(m.fingerprint().pooling, "none");
    let a = m.embed(&TEXTS).unwrap();
    assert!(cosine(&a[0], &a[1]) > cosine(&a[0], &a[2]) + 0.1);
    // Batching does not change a vector (the pooled output is per row).
    let alone = m.embed(&TEXTS[2..]).unwrap();
    assert!(cosine(&alone[0], &a[2]) > 0.9999);
}
