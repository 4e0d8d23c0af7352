"""Reference embedder for `bench_embed`: Python onnxruntime + tokenizers running the same model
files on the same texts with the same batching as ragsnap's `OnnxEmbedder::embed_with`:

* tokenizer.json with truncation at the model's max_tokens, no padding, special tokens added;
* bucketed: indices stably sorted by token count, then cut into batches of at most --batch
  texts whose padding stays within 5% of the batch's tokens (a copy of `length_buckets` and
  `MAX_PADDING_SHARE` in crates/ragsnap-embed/src/onnx.rs); naive: the caller's order cut
  every --batch texts;
* each batch padded to its longest row; inputs input_ids / attention_mask / token_type_ids (i64);
* the pooling, output, maximum length and passage prefix of the model's model.toml (mean pooling
  of last_hidden_state under the attention mask for the default), then L2 normalisation.

The clock covers all of that (tokenising included); `run_secs` sums the time inside
`session.run`. One warm-up pass over the first --warmup texts is not timed.
Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

LEVELS = {
    0: ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    1: ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    2: ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    3: ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


MAX_PADDING_SHARE = 0.05  # crates/ragsnap-embed/src/onnx.rs


def length_buckets(order: list[int], lens: list[int], max_batch: int, max_padding: float) -> list[list[int]]:
    """Same rule as ragsnap's `length_buckets`: `order` is sorted by ascending length."""
    batches: list[list[int]] = []
    current: list[int] = []
    total = 0
    for i in order:
        n_tok = max(lens[i], 1)
        padded = (len(current) + 1) * n_tok
        fits = len(current) < max_batch and (padded - (total + n_tok)) <= max_padding * padded
        if not fits and current:
            batches.append(current)
            current, total = [], 0
        current.append(i)
        total += n_tok
    if current:
        batches.append(current)
    return batches


def read_descriptor(model_dir: str) -> dict:
    """The model's model.toml (pooling, output, max_tokens, prefixes), as ragsnap reads it."""
    import tomllib

    with open(os.path.join(model_dir, "model.toml"), "rb") as f:
        return tomllib.load(f)


class Embedder:
    def __init__(self, model_dir: str, threads: int, batch: int, level: int):
        d = read_descriptor(model_dir)
        self.pooling = d["pooling"]
        self.output = d["output"]
        self.dims = d["dims"]
        self.normalize = d["normalize"]
        self.prefix = d.get("passage_prefix", "")
        self.tok = Tokenizer.from_file(os.path.join(model_dir, d["tokenizer_file"]))
        self.tok.enable_truncation(d["max_tokens"])
        self.tok.no_padding()
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.graph_optimization_level = LEVELS[level]
        self.sess = ort.InferenceSession(os.path.join(model_dir, d["model_file"]), so, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.sess.get_inputs()]
        self.batch = batch
        self.run_secs = 0.0
        self.tokens = 0
        self.padding = 0
        self.calls = 0

    def embed(self, texts: list[str], bucketed: bool) -> np.ndarray:
        if self.prefix:
            texts = [self.prefix + t for t in texts]
        enc = self.tok.encode_batch(texts, add_special_tokens=True)
        order = list(range(len(enc)))
        lens = [len(e.ids) for e in enc]
        if bucketed:
            order.sort(key=lambda i: lens[i])  # stable, like Rust's sort_by_key
            batches = length_buckets(order, lens, self.batch, MAX_PADDING_SHARE)
        else:
            batches = [order[s : s + self.batch] for s in range(0, len(order), self.batch)]
        out = np.empty((len(texts), self.dims), dtype=np.float32)
        for rows in batches:
            seq = max(1, max(len(enc[i].ids) for i in rows))
            ids = np.zeros((len(rows), seq), dtype=np.int64)
            mask = np.zeros((len(rows), seq), dtype=np.int64)
            types = np.zeros((len(rows), seq), dtype=np.int64)
            for r, i in enumerate(rows):
                e = enc[i]
                n = len(e.ids)
                ids[r, :n] = e.ids
                mask[r, :n] = e.attention_mask
                types[r, :n] = e.type_ids
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            feed = {k: v for k, v in feed.items() if k in self.inputs}
            t0 = time.perf_counter()
            (hidden,) = self.sess.run([self.output], feed)
            self.run_secs += time.perf_counter() - t0
            if self.pooling == "mean":
                m = mask[:, :, None].astype(np.float32)
                pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1.0)
            elif self.pooling == "cls":
                pooled = hidden[:, 0, :].copy()
            else:  # "none": the output is already one vector per text
                pooled = hidden.copy()
            if self.normalize:
                pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            out[rows] = pooled
            real = int(mask.sum())
            self.tokens += real
            self.padding += ids.size - real
            self.calls += 1
        return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--texts", required=True, help="JSON array of strings")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--opt", type=int, default=3)
    ap.add_argument("--naive", action="store_true", help="keep the given order inside batches")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N texts")
    ap.add_argument("--warmup", type=int, default=64)
    ap.add_argument("--compare", help="raw little-endian f32 vectors from bench_embed --dump, same texts")
    args = ap.parse_args()

    with open(args.texts, encoding="utf-8") as f:
        texts = json.load(f)
    if args.limit:
        texts = texts[: args.limit]
    t_load = time.perf_counter()
    emb = Embedder(args.model_dir, args.threads, args.batch, args.opt)
    load_secs = time.perf_counter() - t_load
    emb.embed(texts[: args.warmup], True)
    emb.run_secs = 0.0
    emb.tokens = emb.padding = emb.calls = 0

    c0 = time.process_time()
    t0 = time.perf_counter()
    vecs = emb.embed(texts, not args.naive)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0

    out = {
        "impl": "python",
        "onnxruntime": ort.__version__,
        "threads": args.threads,
        "batch": args.batch,
        "opt": args.opt,
        "bucketed": not args.naive,
        "texts": len(texts),
        "tokens": emb.tokens,
        "padding_tokens": emb.padding,
        "model_calls": emb.calls,
        "load_secs": load_secs,
        "wall_secs": wall,
        "cpu_secs": cpu,
        "run_secs": emb.run_secs,
        "chunks_per_s": len(texts) / wall,
        "tokens_per_s": emb.tokens / wall,
        "overhead": (wall - emb.run_secs) / wall,
        "load": " ".join(open("/proc/loadavg").read().split()[:3]),
    }
    if args.compare:
        ours = np.fromfile(args.compare, dtype="<f4").reshape(-1, emb.dims)
        if ours.shape[0] == vecs.shape[0]:
            cos = (ours * vecs).sum(axis=1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(vecs, axis=1))
            out["min_cosine_vs_rust"] = float(cos.min())
    json.dump(out, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
