//! [`OnnxEmbedder`]: the pinned model run with ONNX Runtime (`ort`, loaded dynamically) and the
//! Hugging Face tokenizer. Texts are batched by length to keep padding low, bulk embedding is
//! spread over single-threaded sessions, every output is checked (dimensions, finiteness, unit
//! length), and the fingerprint is computed from the files actually loaded.

use crate::descriptor::Pooling;
use crate::{EmbedError, Embedder, ModelDescriptor, Result, Runtime};
use ort::session::{builder::GraphOptimizationLevel, Session, SessionInputValue};
use ort::value::{Tensor, TensorElementType, ValueType};
use ragsnap_core::{blake3_hex, EmbeddingFingerprint};
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;
use tokenizers::{Encoding, Tokenizer, TruncationParams};

/// How to run the model.
#[derive(Clone, Debug)]
pub struct OnnxOptions {
    /// Intra-op threads of the main session (used for calls of one batch, e.g. a query);
    /// 0 means all cores.
    pub intra_threads: usize,
    /// Texts per `session.run`.
    pub batch_size: usize,
    /// ONNX Runtime graph optimisation level, 0 (off) to 3 (all).
    pub optimization_level: u8,
    /// Single-threaded sessions that share the batches of a call with several batches (bulk
    /// embedding), working side by side; 0 means one per core, 1 (the default) means bulk calls
    /// use the main session. Created on the first bulk call (each holds its own copy of the
    /// weights and its own arena, about 320 MiB for the default model at batch 32). On two
    /// cores, two 1-thread sessions beat one 2-thread session by 4% on an idle machine and by
    /// 29% on a busy one (benches/README.md §2), at about 40% more peak memory for the rebuild.
    pub bulk_sessions: usize,
}

impl Default for OnnxOptions {
    fn default() -> Self {
        OnnxOptions { intra_threads: 0, batch_size: 32, optimization_level: 3, bulk_sessions: 1 }
    }
}

/// Counters an embedder keeps over its life; read them with [`OnnxEmbedder::stats`].
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct EmbedStats {
    /// Calls to `session.run`.
    pub model_calls: u64,
    /// Texts embedded.
    pub texts: u64,
    /// Real tokens fed to the model (attention mask ones).
    pub tokens: u64,
    /// Padding tokens fed to the model.
    pub padding_tokens: u64,
    /// Texts cut at the model's maximum length.
    pub truncated: u64,
    /// Nanoseconds spent inside `session.run`, summed over sessions working side by side.
    pub run_nanos: u64,
    /// Nanoseconds spent in `embed` in all.
    pub total_nanos: u64,
}

#[derive(Default)]
struct Counters {
    model_calls: AtomicU64,
    texts: AtomicU64,
    tokens: AtomicU64,
    padding_tokens: AtomicU64,
    truncated: AtomicU64,
    run_nanos: AtomicU64,
    total_nanos: AtomicU64,
}

/// The process-wide ONNX Runtime environment and the library it was loaded from.
static ENVIRONMENT: OnceLock<std::result::Result<(PathBuf, ort::environment::Environment, String), String>> =
    OnceLock::new();

fn environment(lib: &Path) -> Result<(&'static ort::environment::Environment, &'static str)> {
    let canonical = lib.canonicalize().unwrap_or_else(|_| lib.to_path_buf());
    let entry = ENVIRONMENT.get_or_init(|| {
        let builder = ort::init_from(&canonical).map_err(|e| e.to_string())?;
        let env = builder.with_name("ragsnap").build().map_err(|e| e.to_string())?;
        let version = runtime_version(&canonical);
        Ok((canonical.clone(), env, version))
    });
    match entry {
        Ok((loaded, env, version)) => {
            if *loaded != canonical {
                return Err(EmbedError::Runtime {
                    path: canonical,
                    message: format!(
                        "this process already loaded ONNX Runtime from {}; one runtime per process",
                        loaded.display()
                    ),
                });
            }
            Ok((env, version.as_str()))
        }
        Err(message) => Err(EmbedError::Runtime { path: canonical, message: message.clone() }),
    }
}

/// The runtime's version: from its build-info string (`git-branch=rel-1.31.1`), else from the
/// library's file name (`libonnxruntime.so.1.31.1`).
fn runtime_version(lib: &Path) -> String {
    let info = ort::info();
    if let Some(pos) = info.find("rel-") {
        let v: String = info[pos + 4..].chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
        if v.split('.').count() == 3 {
            return v;
        }
    }
    let name = lib.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    match name.split_once(".so.") {
        Some((_, v)) if !v.is_empty() => v.to_string(),
        _ => format!("unknown ({})", info.chars().take(60).collect::<String>()),
    }
}

/// An embedder running a pinned ONNX model with ONNX Runtime.
pub struct OnnxEmbedder {
    descriptor: ModelDescriptor,
    fingerprint: EmbeddingFingerprint,
    tokenizer: Tokenizer,
    /// The same tokenizer without truncation, for counting.
    counter: Tokenizer,
    session: Mutex<Session>,
    /// What the bulk sessions are made from, and the sessions once made.
    model_bytes: Vec<u8>,
    model_path: PathBuf,
    ort_lib: PathBuf,
    env: &'static ort::environment::Environment,
    bulk: OnceLock<std::result::Result<Vec<Mutex<Session>>, String>>,
    /// The tokenizer is a BERT WordPiece pipeline (see `Embedder::word_additive_counts`).
    word_additive: bool,
    options: OnnxOptions,
    counters: Counters,
}

/// Whether `tokenizer.json` describes the BERT pipeline whose token counts add up over words:
/// BertNormalizer, BertPreTokenizer, a WordPiece model, and a post-processor that only adds a
/// fixed number of special tokens.
pub(crate) fn is_bert_wordpiece(tokenizer_json: &[u8]) -> bool {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(tokenizer_json) else { return false };
    let kind = |key: &str| v.get(key).and_then(|x| x.get("type")).and_then(|t| t.as_str()).map(str::to_owned);
    kind("normalizer").as_deref() == Some("BertNormalizer")
        && kind("pre_tokenizer").as_deref() == Some("BertPreTokenizer")
        && kind("model").as_deref() == Some("WordPiece")
        && matches!(kind("post_processor").as_deref(), Some("TemplateProcessing" | "BertProcessing"))
}

fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

fn new_session(
    env: &ort::environment::Environment,
    ort_lib: &Path,
    model_path: &Path,
    model_bytes: &[u8],
    threads: usize,
    optimization_level: u8,
) -> Result<Session> {
    let level = match optimization_level {
        0 => GraphOptimizationLevel::Disable,
        1 => GraphOptimizationLevel::Level1,
        2 => GraphOptimizationLevel::Level2,
        _ => GraphOptimizationLevel::All,
    };
    let ort_err = |e: ort::Error| EmbedError::Runtime { path: ort_lib.to_path_buf(), message: e.to_string() };
    Session::builder(env)
        .map_err(ort_err)?
        .with_optimization_level(level)
        .map_err(|e| ort_err(e.into()))?
        .with_intra_threads(threads)
        .map_err(|e| ort_err(e.into()))?
        .commit_from_memory(model_bytes)
        .map_err(|e| EmbedError::ModelShape { path: model_path.to_path_buf(), message: e.to_string() })
}

impl OnnxEmbedder {
    /// Load the model that `runtime` points at.
    pub fn load(runtime: &Runtime, options: OnnxOptions) -> Result<Self> {
        // Each bulk session holds its own copy of the weights and each thread is an OS thread:
        // more than a few per core only costs memory and time.
        let cap = 4 * cores();
        for (name, n) in [("intra_threads", options.intra_threads), ("bulk_sessions", options.bulk_sessions)] {
            if n > cap {
                return Err(EmbedError::InvalidOption {
                    name,
                    message: format!("{n} is too many (0 = one per core; at most {cap}, 4 × the cores here)"),
                });
            }
        }
        if options.batch_size == 0 {
            return Err(EmbedError::InvalidOption { name: "batch_size", message: "must be at least 1".into() });
        }
        let dir = &runtime.model_dir;
        let descriptor = ModelDescriptor::load(dir)?;
        let model_path = descriptor.model_path(dir);
        let tok_path = descriptor.tokenizer_path(dir);
        let model_bytes = read_piece(&model_path, "model file")?;
        let want_bytes = descriptor.expected.model_bytes;
        if want_bytes != 0 && model_bytes.len() as u64 != want_bytes {
            return Err(EmbedError::ChecksumMismatch {
                path: model_path,
                algorithm: "size",
                expected: format!("{want_bytes} bytes"),
                found: format!("{} bytes", model_bytes.len()),
            });
        }
        let tok_bytes = read_piece(&tok_path, "tokenizer file")?;
        let model_blake3 = blake3_hex(&model_bytes);
        let tokenizer_blake3 = blake3_hex(&tok_bytes);
        let e = &descriptor.expected;
        check_pin(&model_path, "blake3", &e.model_blake3, &model_blake3)?;
        check_pin(&tok_path, "blake3", &e.tokenizer_blake3, &tokenizer_blake3)?;
        if !e.model_sha256.is_empty() {
            check_pin(&model_path, "sha256", &e.model_sha256, &sha256_hex(&model_bytes))?;
        }
        if !e.tokenizer_sha256.is_empty() {
            check_pin(&tok_path, "sha256", &e.tokenizer_sha256, &sha256_hex(&tok_bytes))?;
        }

        let mut counter = Tokenizer::from_bytes(&tok_bytes)
            .map_err(|e| EmbedError::Tokenizer(format!("{}: {e}", tok_path.display())))?;
        counter.with_truncation(None).map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        counter.with_padding(None);
        let mut tokenizer = counter.clone();
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: descriptor.max_tokens, ..Default::default() }))
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        tokenizer.with_padding(None);

        let (env, runtime_version) = environment(&runtime.ort_lib)?;
        let threads = if options.intra_threads == 0 { cores() } else { options.intra_threads };
        let session =
            new_session(env, &runtime.ort_lib, &model_path, &model_bytes, threads, options.optimization_level)?;
        check_io(&session, &descriptor, &model_path)?;

        let fingerprint = EmbeddingFingerprint {
            model_name: descriptor.name.clone(),
            model_blake3,
            tokenizer_blake3,
            pooling: descriptor.pooling.as_str().to_string(),
            normalize: descriptor.normalize,
            max_tokens: descriptor.max_tokens,
            dims: descriptor.dims,
            inputs: descriptor.inputs.clone(),
            output: descriptor.output.clone(),
            runtime_version: runtime_version.to_string(),
            query_prefix: descriptor.query_prefix.clone(),
            passage_prefix: descriptor.passage_prefix.clone(),
        };
        // A passage prefix adds its tokens to every count, which the per-word counting of the
        // chunker does not know about: count such texts whole.
        let word_additive = is_bert_wordpiece(&tok_bytes) && descriptor.passage_prefix.is_empty();
        Ok(OnnxEmbedder {
            descriptor,
            fingerprint,
            tokenizer,
            counter,
            session: Mutex::new(session),
            model_bytes,
            model_path,
            ort_lib: runtime.ort_lib.clone(),
            env,
            bulk: OnceLock::new(),
            word_additive,
            options,
            counters: Counters::default(),
        })
    }

    /// The bulk sessions, made on first use; `None` when bulk calls use the main session.
    fn bulk_sessions(&self) -> Result<Option<&[Mutex<Session>]>> {
        let n = if self.options.bulk_sessions == 0 { cores() } else { self.options.bulk_sessions };
        if n <= 1 {
            return Ok(None);
        }
        let made = self.bulk.get_or_init(|| {
            (0..n)
                .map(|_| {
                    new_session(
                        self.env,
                        &self.ort_lib,
                        &self.model_path,
                        &self.model_bytes,
                        1,
                        self.options.optimization_level,
                    )
                    .map(Mutex::new)
                })
                .collect::<Result<Vec<_>>>()
                .map_err(|e| e.to_string())
        });
        match made {
            Ok(v) => Ok(Some(v.as_slice())),
            Err(message) => Err(EmbedError::Runtime { path: self.ort_lib.clone(), message: message.clone() }),
        }
    }

    /// The model's descriptor.
    pub fn descriptor(&self) -> &ModelDescriptor {
        &self.descriptor
    }

    /// Counters since the embedder was loaded.
    pub fn stats(&self) -> EmbedStats {
        let c = &self.counters;
        EmbedStats {
            model_calls: c.model_calls.load(Ordering::Relaxed),
            texts: c.texts.load(Ordering::Relaxed),
            tokens: c.tokens.load(Ordering::Relaxed),
            padding_tokens: c.padding_tokens.load(Ordering::Relaxed),
            truncated: c.truncated.load(Ordering::Relaxed),
            run_nanos: c.run_nanos.load(Ordering::Relaxed),
            total_nanos: c.total_nanos.load(Ordering::Relaxed),
        }
    }

    /// Embed with an explicit choice of batching: `bucketed = false` keeps the caller's order
    /// inside batches (for measuring what bucketing buys).
    pub fn embed_with(&self, texts: &[&str], bucketed: bool) -> Result<Vec<Vec<f32>>> {
        self.embed_prefixed(texts, &self.descriptor.passage_prefix, bucketed, None)
    }

    /// [`OnnxEmbedder::embed_batches`] of `texts` each put after `prefix` (no copy without one).
    fn embed_prefixed(
        &self,
        texts: &[&str],
        prefix: &str,
        bucketed: bool,
        cancel: Option<&AtomicBool>,
    ) -> Result<Vec<Vec<f32>>> {
        if prefix.is_empty() {
            return self.embed_batches(texts, bucketed, cancel);
        }
        let owned: Vec<String> = texts.iter().map(|t| format!("{prefix}{t}")).collect();
        let refs: Vec<&str> = owned.iter().map(String::as_str).collect();
        self.embed_batches(&refs, bucketed, cancel)
    }

    /// The work of [`OnnxEmbedder::embed_with`]: `cancel` is checked before every model batch
    /// (one batch is at most `batch_size` texts, well under a second on one core), and every
    /// vector is checked ([`crate::check_output`]) before it is returned.
    fn embed_batches(&self, texts: &[&str], bucketed: bool, cancel: Option<&AtomicBool>) -> Result<Vec<Vec<f32>>> {
        let cancelled = || cancel.is_some_and(|c| c.load(Ordering::SeqCst));
        if cancelled() {
            return Err(EmbedError::Cancelled);
        }
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let started = Instant::now();
        let encodings =
            self.tokenizer.encode_batch(texts.to_vec(), true).map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        let truncated = encodings.iter().filter(|e| !e.get_overflowing().is_empty()).count();
        if truncated > 0 {
            tracing::warn!(
                truncated,
                max_tokens = self.descriptor.max_tokens,
                "inputs truncated at the model's maximum length"
            );
        }
        let mut order: Vec<usize> = (0..encodings.len()).collect();
        if bucketed {
            // Sort by length (stable, so equal lengths keep the caller's order), then cut batches.
            order.sort_by_key(|&i| encodings[i].len());
        }
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        let batches = if bucketed {
            length_buckets(&order, |i| encodings[i].len(), self.options.batch_size.max(1), MAX_PADDING_SHARE)
        } else {
            order.chunks(self.options.batch_size.max(1)).map(<[usize]>::to_vec).collect()
        };
        let bulk = if batches.len() > 1 { self.bulk_sessions()? } else { None };
        match bulk {
            Some(sessions) => {
                // Each session takes the next batch, longest first, until none is left; one
                // result per batch, put back in the caller's order below.
                let next = std::sync::atomic::AtomicUsize::new(0);
                type BatchResult = (usize, Result<Vec<Vec<f32>>>);
                let done: Mutex<Vec<BatchResult>> = Mutex::new(Vec::new());
                std::thread::scope(|scope| {
                    for session in sessions {
                        scope.spawn(|| loop {
                            let k = next.fetch_add(1, Ordering::Relaxed);
                            if k >= batches.len() {
                                break;
                            }
                            if cancelled() {
                                done.lock().unwrap_or_else(|p| p.into_inner()).push((k, Err(EmbedError::Cancelled)));
                                next.store(batches.len(), Ordering::Relaxed);
                                break;
                            }
                            let b = batches.len() - 1 - k;
                            let refs: Vec<&Encoding> = batches[b].iter().map(|&i| &encodings[i]).collect();
                            let r = self.run_batch(session, &refs);
                            let failed = r.is_err();
                            done.lock().unwrap_or_else(|p| p.into_inner()).push((b, r));
                            if failed {
                                next.store(batches.len(), Ordering::Relaxed);
                                break;
                            }
                        });
                    }
                });
                for (b, r) in done.into_inner().unwrap_or_else(|p| p.into_inner()) {
                    for (&i, v) in batches[b].iter().zip(r?) {
                        out[i] = v;
                    }
                }
            }
            None => {
                for batch in &batches {
                    if cancelled() {
                        return Err(EmbedError::Cancelled);
                    }
                    let refs: Vec<&Encoding> = batch.iter().map(|&i| &encodings[i]).collect();
                    let vectors = self.run_batch(&self.session, &refs)?;
                    for (&i, v) in batch.iter().zip(vectors) {
                        out[i] = v;
                    }
                }
            }
        }
        crate::check_output(texts, &out, self.descriptor.dims, self.descriptor.normalize)?;
        let c = &self.counters;
        c.texts.fetch_add(texts.len() as u64, Ordering::Relaxed);
        c.truncated.fetch_add(truncated as u64, Ordering::Relaxed);
        c.total_nanos.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        Ok(out)
    }

    fn run_batch(&self, session: &Mutex<Session>, batch: &[&Encoding]) -> Result<Vec<Vec<f32>>> {
        let rows = batch.len();
        let seq = batch.iter().map(|e| e.len()).max().unwrap_or(0).max(1);
        let mut ids = vec![0i64; rows * seq];
        let mut mask = vec![0i64; rows * seq];
        let mut types = vec![0i64; rows * seq];
        let mut real = 0u64;
        for (r, e) in batch.iter().enumerate() {
            for (j, ((&id, &m), &t)) in e.get_ids().iter().zip(e.get_attention_mask()).zip(e.get_type_ids()).enumerate()
            {
                ids[r * seq + j] = i64::from(id);
                mask[r * seq + j] = i64::from(m);
                types[r * seq + j] = i64::from(t);
                real += u64::from(m);
            }
        }
        let tensor = |v: Vec<i64>| -> Result<SessionInputValue<'static>> {
            Tensor::from_array(([rows, seq], v)).map(Into::into).map_err(|e| EmbedError::Inference(e.to_string()))
        };
        let mut inputs: Vec<(Cow<'static, str>, SessionInputValue<'static>)> = Vec::with_capacity(3);
        for name in &self.descriptor.inputs {
            let value = match name.as_str() {
                "input_ids" => tensor(ids.clone())?,
                "attention_mask" => tensor(mask.clone())?,
                "token_type_ids" => tensor(types.clone())?,
                other => return Err(EmbedError::Inference(format!("no way to feed model input {other:?}"))),
            };
            inputs.push((Cow::Owned(name.clone()), value));
        }
        let dims = self.descriptor.dims;
        let mut session = session.lock().unwrap_or_else(|p| p.into_inner());
        let t0 = Instant::now();
        let outputs = session.run(inputs).map_err(|e| EmbedError::Inference(e.to_string()))?;
        let run_nanos = t0.elapsed().as_nanos() as u64;
        let (shape, data) = outputs[self.descriptor.output.as_str()]
            .try_extract_tensor::<f32>()
            .map_err(|e| EmbedError::Inference(e.to_string()))?;
        let pooling = self.descriptor.pooling;
        let want: Vec<usize> = match pooling {
            Pooling::Mean | Pooling::Cls => vec![rows, seq, dims],
            Pooling::None => vec![rows, dims],
        };
        if shape.len() != want.len() || shape.iter().zip(&want).any(|(&s, &w)| s as usize != w) {
            return Err(EmbedError::Inference(format!(
                "output {:?} has shape {:?}, expected {want:?} for {pooling} pooling",
                self.descriptor.output,
                &shape[..]
            )));
        }
        let mut vectors = Vec::with_capacity(rows);
        for r in 0..rows {
            let mut acc = match pooling {
                Pooling::Mean => {
                    mean_pool(&data[r * seq * dims..(r + 1) * seq * dims], &mask[r * seq..(r + 1) * seq], dims)
                }
                // The first position is the [CLS] token, always present and never masked.
                Pooling::Cls => data[r * seq * dims..r * seq * dims + dims].to_vec(),
                Pooling::None => data[r * dims..(r + 1) * dims].to_vec(),
            };
            if self.descriptor.normalize {
                let norm = acc.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
                acc.iter_mut().for_each(|a| *a /= norm);
            }
            vectors.push(acc);
        }
        drop(outputs);
        drop(session);
        let c = &self.counters;
        c.model_calls.fetch_add(1, Ordering::Relaxed);
        c.run_nanos.fetch_add(run_nanos, Ordering::Relaxed);
        c.tokens.fetch_add(real, Ordering::Relaxed);
        c.padding_tokens.fetch_add((rows * seq) as u64 - real, Ordering::Relaxed);
        Ok(vectors)
    }
}

impl Embedder for OnnxEmbedder {
    fn fingerprint(&self) -> &EmbeddingFingerprint {
        &self.fingerprint
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        self.embed_with(texts, true)
    }

    fn embed_cancellable(&self, texts: &[&str], cancel: Option<&AtomicBool>) -> Result<Vec<Vec<f32>>> {
        self.embed_prefixed(texts, &self.descriptor.passage_prefix, true, cancel)
    }

    fn embed_queries_cancellable(&self, texts: &[&str], cancel: Option<&AtomicBool>) -> Result<Vec<Vec<f32>>> {
        self.embed_prefixed(texts, &self.descriptor.query_prefix, true, cancel)
    }

    fn word_additive_counts(&self) -> bool {
        self.word_additive
    }

    fn truncated_inputs(&self) -> u64 {
        self.counters.truncated.load(Ordering::Relaxed)
    }

    fn count_tokens(&self, text: &str) -> usize {
        let prefix = &self.descriptor.passage_prefix;
        let encoded = if prefix.is_empty() {
            self.counter.encode(text, true)
        } else {
            self.counter.encode(format!("{prefix}{text}"), true)
        };
        match encoded {
            Ok(e) => e.len(),
            Err(_) => usize::MAX,
        }
    }

    fn default_floor(&self) -> Option<f32> {
        Some(self.descriptor.default_floor)
    }
}

/// Mean of the rows of `states` (`seq × dims`, row-major) whose `mask` entry is set.
fn mean_pool(states: &[f32], mask: &[i64], dims: usize) -> Vec<f32> {
    let mut acc = vec![0f32; dims];
    let mut n = 0f32;
    for (h, &m) in states.chunks_exact(dims).zip(mask) {
        if m == 0 {
            continue;
        }
        n += 1.0;
        for (a, x) in acc.iter_mut().zip(h) {
            *a += x;
        }
    }
    let n = n.max(1.0);
    acc.iter_mut().for_each(|a| *a /= n);
    acc
}

/// Most padding a length bucket may carry, as a share of its tokens.
pub const MAX_PADDING_SHARE: f64 = 0.05;

/// Cut `order` (sorted by ascending length) into batches of at most `max_batch` items whose
/// padding to the longest member stays within `max_padding` of the batch's tokens.
fn length_buckets(
    order: &[usize],
    len: impl Fn(usize) -> usize,
    max_batch: usize,
    max_padding: f64,
) -> Vec<Vec<usize>> {
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut sum = 0usize;
    for &i in order {
        let l = len(i).max(1);
        let n = current.len() + 1;
        let padded = n * l; // sorted ascending, so the newcomer is the longest
        let fits = current.len() < max_batch && (padded - (sum + l)) as f64 <= max_padding * padded as f64;
        if !fits && !current.is_empty() {
            batches.push(std::mem::take(&mut current));
            sum = 0;
        }
        current.push(i);
        sum += l;
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

pub(crate) fn read_piece(path: &Path, what: &'static str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            EmbedError::Missing { what, path: path.to_path_buf(), hint: "RAGSNAP_MODEL_DIR" }
        } else {
            EmbedError::Descriptor { path: path.to_path_buf(), message: e.to_string() }
        }
    })
}

/// Lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn check_pin(path: &Path, algorithm: &'static str, expected: &str, found: &str) -> Result<()> {
    if !expected.is_empty() && expected != found {
        return Err(EmbedError::ChecksumMismatch {
            path: path.to_path_buf(),
            algorithm,
            expected: expected.to_string(),
            found: found.to_string(),
        });
    }
    Ok(())
}

fn check_io(session: &Session, d: &ModelDescriptor, path: &Path) -> Result<()> {
    let mut declared: Vec<&str> = session.inputs().iter().map(|o| o.name()).collect();
    let mut wanted: Vec<&str> = d.inputs.iter().map(String::as_str).collect();
    declared.sort_unstable();
    wanted.sort_unstable();
    if declared != wanted {
        return Err(EmbedError::ModelShape {
            path: path.to_path_buf(),
            message: format!("model inputs are {declared:?}, descriptor says {wanted:?}"),
        });
    }
    let Some(out) = session.outputs().iter().find(|o| o.name() == d.output) else {
        let names: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
        return Err(EmbedError::ModelShape {
            path: path.to_path_buf(),
            message: format!("no output {:?} (model has {names:?})", d.output),
        });
    };
    if let ValueType::Tensor { ty, shape, .. } = out.dtype() {
        let last = shape.last().copied().unwrap_or(-1);
        let rank = d.pooling.output_rank();
        if *ty != TensorElementType::Float32 || shape.len() != rank || (last >= 0 && last as usize != d.dims) {
            let wanted = if rank == 3 { format!("[batch, seq, {}]", d.dims) } else { format!("[batch, {}]", d.dims) };
            return Err(EmbedError::ModelShape {
                path: path.to_path_buf(),
                message: format!(
                    "output {:?} is {ty:?} {:?}, descriptor wants f32 {wanted} ({} pooling)",
                    d.output,
                    &shape[..],
                    d.pooling
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::length_buckets;

    #[test]
    fn out_of_range_options_are_refused_before_anything_is_loaded() {
        let rt = crate::Runtime { ort_lib: "/nonexistent/lib.so".into(), model_dir: "/nonexistent/model".into() };
        for (opts, want) in [
            (super::OnnxOptions { bulk_sessions: 100_000, ..Default::default() }, "bulk_sessions"),
            (super::OnnxOptions { intra_threads: 100_000, ..Default::default() }, "intra_threads"),
            (super::OnnxOptions { batch_size: 0, ..Default::default() }, "batch_size"),
        ] {
            match super::OnnxEmbedder::load(&rt, opts) {
                Err(crate::EmbedError::InvalidOption { name, .. }) => assert_eq!(name, want),
                Err(other) => panic!("{want}: expected InvalidOption, got {other}"),
                Ok(_) => panic!("{want}: loaded"),
            }
        }
    }

    #[test]
    fn buckets_keep_padding_under_the_bound_and_cover_every_item_once() {
        let lens: Vec<usize> = (0..500).map(|i| 5 + (i * 37) % 250).collect();
        let mut order: Vec<usize> = (0..lens.len()).collect();
        order.sort_by_key(|&i| lens[i]);
        let batches = length_buckets(&order, |i| lens[i], 32, 0.05);
        let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..500).collect::<Vec<_>>());
        for b in &batches {
            assert!(b.len() <= 32);
            let max = b.iter().map(|&i| lens[i]).max().unwrap();
            let sum: usize = b.iter().map(|&i| lens[i]).sum();
            assert!((b.len() * max - sum) as f64 <= 0.05 * (b.len() * max) as f64);
        }
    }
}
