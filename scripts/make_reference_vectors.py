#!/usr/bin/env python3
"""Compute reference embeddings for ragsnap's default model (all-MiniLM-L6-v2 int8).

The vectors are made with the Python `onnxruntime` and `tokenizers` packages,
independently of the Rust code, so that ragsnap's embedder can be checked
against them. Output: fixtures/reference/minilm-l6-int8.json.

How to run (from the repository root, after `python3 scripts/fetch_runtime.py`
has filled .cache/runtime/). Use a virtualenv outside the repository:

    python3 -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install onnxruntime==1.31.1 tokenizers==0.23.3 numpy==2.4.6
    /tmp/refvenv/bin/python scripts/make_reference_vectors.py \\
        --cache .cache/runtime --out fixtures/reference/minilm-l6-int8.json

(The fixture in the repository was made with exactly those versions, on
Python 3.11, linux x86_64. The onnxruntime version should match the
libonnxruntime.so that fetch_runtime.py unpacks; the script warns if not.)

What it does, mirroring the Rust embedder:

* Tokenizer: `<cache>/models/minilm-l6-int8/tokenizer.json`. The file itself
  truncates at 128 and pads to a fixed 128; both are overridden here:
  truncation at MAX_TOKENS = 256 tokens (counted with [CLS] and [SEP]),
  padding to the longest sequence in the batch (pad id 0, right side).
* Model: `<cache>/models/minilm-l6-int8/model.onnx`, inputs input_ids,
  attention_mask, token_type_ids (int64 [batch, seq]), output
  last_hidden_state (f32 [batch, seq, 384]).
* Session options: intra_op_num_threads = 1, inter_op_num_threads = 1,
  graph_optimization_level = ORT_ENABLE_ALL, CPU execution provider only.
  One thread keeps the float reductions in a fixed order, so a rerun on the
  same machine gives the same numbers.
* Pooling: mean of last_hidden_state over the positions where
  attention_mask == 1, then L2 normalisation (done in float64, then rounded).
* All texts are embedded in ONE batch, padded to the longest, as the Rust
  side does. Each text is also embedded alone; the cosine between its
  single and batched vector must be >= MIN_COSINE (0.99999) for every text,
  else the script exits 1 without writing. The minimum is recorded as
  `batch_vs_single_min_cosine`.
* Floats in the JSON are rounded to 7 significant digits. Compare against
  them with a tolerance (e.g. cosine >= 0.9999 or max abs diff ~1e-4), not
  bit-exactly: thread count, CPU features and batch shape all move the last
  digits.

JSON layout:

    {"model_sha256", "tokenizer_sha256", "onnxruntime_version",
     "tokenizers_version", "max_tokens": 256, "dims": 384,
     "pooling": "mean", "normalize": true,
     "batch_vs_single_min_cosine": float,
     "texts": [{"text", "token_count", "vector": [384 floats]}, ...]}

`token_count` is the number of tokens fed to the model (attention-mask ones,
[CLS]/[SEP] included, after truncation). The text longer than MAX_TOKENS also
has `untruncated_tokens` (same counting, without truncation).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import tokenizers
from tokenizers import Tokenizer

MODEL_DIR = Path("models") / "minilm-l6-int8"
MAX_TOKENS = 256
DIMS = 384
MIN_COSINE = 0.99999
EXPECTED_ORT_VERSION = "1.31.1"

# A text well over MAX_TOKENS wordpieces, to exercise truncation. Built from
# fixed sentences so it is the same on every run.
_LONG_SENTENCES = [
    "A retrieval-augmented generation pipeline starts by reading the source documents from disk or from a remote store.",
    "Each document is normalised, split into chunks of a few hundred tokens, and every chunk keeps a pointer to its origin.",
    "The chunker prefers to cut at paragraph boundaries, falls back to sentence boundaries, and only then cuts inside a sentence.",
    "Overlapping windows make sure that a fact spanning two chunks can still be found by a query that mentions either half.",
    "Every chunk is then embedded by a small sentence-transformer model, which maps it to a vector of three hundred and eighty-four numbers.",
    "The vectors are normalised to unit length so that a dot product equals the cosine similarity between two chunks.",
    "An index stores the vectors together with the chunk text, the document identifier, the byte offsets, and a content hash.",
    "When the corpus changes, only the chunks whose hashes differ are embedded again, which keeps incremental rebuilds cheap.",
    "At query time the question is embedded with the same model, the nearest chunks are retrieved, and a floor on the cosine drops weak hits.",
    "The retrieved passages are ranked, deduplicated, trimmed to the prompt budget, and handed to the language model with citations.",
    "Snapshots of the index are written atomically, so that a reader never observes a half-written file after a crash.",
    "A fingerprint of the model, the tokenizer, the chunking parameters, and the maximum sequence length is stored with each snapshot.",
    "If any part of that fingerprint changes, the old snapshot is refused instead of silently mixing vectors from two different models.",
    "Benchmarks measure throughput in chunks per second, peak memory, and the recall of known answers on a fixed evaluation set.",
    "Regression tests compare fresh embeddings against reference vectors computed by an independent implementation of the same model.",
]
LONG_TEXT = " ".join(_LONG_SENTENCES)

# (label, text). Labels are for the console report only.
TEXTS = [
    ("short phrase", "retry budget"),
    ("sentence", "The indexer splits every document into overlapping chunks before it embeds them."),
    (
        "paragraph: message-queue retries",
        "To configure retries in the message queue, set max_retries on the queue and choose a backoff policy. "
        "With exponential backoff the broker waits one second before the first redelivery, then two, four and "
        "eight seconds, capped at the configured maximum delay. A message that still fails after the last "
        "attempt is moved to the dead-letter queue, where an operator can inspect it, fix the consumer, and "
        "replay it. Keep handlers idempotent, because a message may be delivered more than once.",
    ),
    ("code-ish line", "tidectl queue create --max-retries 5"),
    ("German", "Die Warteschlange stellt fehlgeschlagene Nachrichten bis zu fünfmal erneut zu, bevor sie aufgibt."),
    ("Japanese", "メッセージキューは失敗したメッセージを最大五回まで再送してから、デッドレターキューに移します。"),
    ("long (> max_tokens)", LONG_TEXT),
    ("single word", "queue"),
    ("emoji and accents", "Crème brûlée at the naïve café in São Paulo 🚀🔥 — déjà vu! 👍🏽"),
    ("question", "How do I set up exponential backoff for a dead-letter queue?"),
]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def round_sig(x: float, digits: int = 7) -> float:
    return float(f"{x:.{digits}g}")


def to_json(doc: dict) -> str:
    """Pretty JSON, but each text entry (with its 384 floats) on one line."""
    head = {k: v for k, v in doc.items() if k != "texts"}
    body = json.dumps(head, ensure_ascii=False, indent=1)
    lines = ",\n  ".join(json.dumps(e, ensure_ascii=False) for e in doc["texts"])
    return body[:-2] + ',\n "texts": [\n  ' + lines + "\n ]\n}\n"


def load_tokenizer(path: Path, truncate: bool) -> Tokenizer:
    tok = Tokenizer.from_file(str(path))
    if truncate:
        tok.enable_truncation(max_length=MAX_TOKENS)
    else:
        tok.no_truncation()
    # No `length` => pad to the longest sequence of each batch (replaces the
    # file's Fixed(128) strategy).
    pad_id = tok.token_to_id("[PAD]")
    if pad_id is None:
        raise SystemExit("make_reference_vectors: tokenizer has no [PAD] token")
    tok.enable_padding(direction="right", pad_id=pad_id, pad_type_id=0, pad_token="[PAD]")
    return tok


def make_session(model_path: Path) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(model_path), sess_options=so, providers=["CPUExecutionProvider"])


def embed(sess: ort.InferenceSession, tok: Tokenizer, texts: list[str]) -> tuple[np.ndarray, list[int]]:
    """Embed `texts` as one padded batch. Returns (unit vectors [n, DIMS] f64, token counts)."""
    encs = tok.encode_batch(texts)
    ids = np.array([e.ids for e in encs], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encs], dtype=np.int64)
    types = np.array([e.type_ids for e in encs], dtype=np.int64)
    (hidden,) = sess.run(
        ["last_hidden_state"],
        {"input_ids": ids, "attention_mask": mask, "token_type_ids": types},
    )
    if hidden.shape != (len(texts), ids.shape[1], DIMS):
        raise SystemExit(f"make_reference_vectors: unexpected output shape {hidden.shape}")
    m = mask.astype(np.float64)[:, :, None]
    summed = (hidden.astype(np.float64) * m).sum(axis=1)
    counts = m.sum(axis=1)
    mean = summed / np.maximum(counts, 1.0)
    norms = np.linalg.norm(mean, axis=1, keepdims=True)
    vecs = mean / np.maximum(norms, 1e-12)
    return vecs, [int(c) for c in mask.sum(axis=1)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", default=".cache/runtime", help="runtime cache made by fetch_runtime.py (default: %(default)s)")
    ap.add_argument(
        "--out",
        default="fixtures/reference/minilm-l6-int8.json",
        help="JSON file to write (default: %(default)s)",
    )
    args = ap.parse_args()

    cache = Path(args.cache)
    model_path = cache / MODEL_DIR / "model.onnx"
    tok_path = cache / MODEL_DIR / "tokenizer.json"
    for p in (model_path, tok_path):
        if not p.is_file():
            print(f"make_reference_vectors: {p} is missing; run `python3 scripts/fetch_runtime.py` first", file=sys.stderr)
            return 1
    if ort.__version__ != EXPECTED_ORT_VERSION:
        print(
            f"make_reference_vectors: warning: onnxruntime {ort.__version__} differs from the "
            f"runtime ragsnap ships ({EXPECTED_ORT_VERSION})",
            file=sys.stderr,
        )

    tok = load_tokenizer(tok_path, truncate=True)
    tok_full = load_tokenizer(tok_path, truncate=False)
    sess = make_session(model_path)

    texts = [t for _, t in TEXTS]
    batch_vecs, token_counts = embed(sess, tok, texts)

    cosines = []
    for i, text in enumerate(texts):
        single, single_counts = embed(sess, tok, [text])
        if single_counts[0] != token_counts[i]:
            print(f"make_reference_vectors: token count differs alone vs batched for text {i}", file=sys.stderr)
            return 1
        cosines.append(float(np.dot(single[0], batch_vecs[i])))
    min_cos = min(cosines)

    entries = []
    print(f"{'#':>2}  {'label':<34} {'tokens':>6}  {'batch·single':>12}")
    for i, (label, text) in enumerate(TEXTS):
        full = len(tok_full.encode(text).ids)
        entry = {"text": text, "token_count": token_counts[i]}
        note = ""
        if full > MAX_TOKENS:
            entry["untruncated_tokens"] = full
            note = f"  (untruncated {full})"
        elif full != token_counts[i]:
            print(f"make_reference_vectors: token count mismatch for text {i}", file=sys.stderr)
            return 1
        entry["vector"] = [round_sig(float(x)) for x in batch_vecs[i]]
        entries.append(entry)
        print(f"{i:>2}  {label:<34} {token_counts[i]:>6}  {cosines[i]:>12.9f}{note}")

    if not any("untruncated_tokens" in e for e in entries):
        print(f"make_reference_vectors: no text exceeds {MAX_TOKENS} tokens", file=sys.stderr)
        return 1

    print(f"batch_vs_single_min_cosine = {min_cos:.9f}")
    if min_cos < MIN_COSINE:
        print(
            f"make_reference_vectors: batched and single embeddings disagree (min cosine {min_cos:.9f} < {MIN_COSINE}); "
            "not writing the fixture",
            file=sys.stderr,
        )
        return 1

    doc = {
        "model_sha256": sha256_file(model_path),
        "tokenizer_sha256": sha256_file(tok_path),
        "onnxruntime_version": ort.__version__,
        "tokenizers_version": tokenizers.__version__,
        "max_tokens": MAX_TOKENS,
        "dims": DIMS,
        "pooling": "mean",
        "normalize": True,
        "session": {"intra_op_num_threads": 1, "inter_op_num_threads": 1, "graph_optimization_level": "ORT_ENABLE_ALL"},
        "batch_vs_single_min_cosine": round_sig(min_cos, 10),
        "texts": entries,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        f.write(to_json(doc))
    print(f"wrote {out} ({out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
