"""Reference ANN libraries for `bench_index`: hnswlib and faiss-cpu (IndexHNSWFlat, inner
product) on the same vectors, queries and ground truth as the Rust side, with the same M and
ef_construction.

Build: 2 threads (hnswlib set_num_threads / faiss omp_set_num_threads). Queries: 1 thread, the
whole query set in one call (so Python's per-call cost is paid once, not per query), after one
untimed warm-up pass; each ef is timed over repeated passes (until 0.5 s, at most 20) and the
fastest pass counts, exactly as in bench_index. Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np


def recall_at(found: np.ndarray, truth: np.ndarray, k: int) -> float:
    hits = 0
    for f, t in zip(found, truth):
        hits += len(set(f[:k].tolist()) & set(t[:k].tolist()))
    return hits / (len(truth) * k)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", choices=["hnswlib", "faiss"], required=True)
    ap.add_argument("--data", required=True, help="folder with base.f32, queries.f32, truth.u32, meta.json")
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--efc", type=int, default=200)
    ap.add_argument("--efs", default="10,16,24,32,48,64,96,128,192,256,384,512")
    ap.add_argument("--build-threads", type=int, default=2)
    ap.add_argument("--stop-at", type=float, default=0.995, help="stop the ef sweep past this recall")
    args = ap.parse_args()

    meta = json.load(open(os.path.join(args.data, "meta.json")))
    d, k = meta["dims"], meta["k"]
    base = np.fromfile(os.path.join(args.data, "base.f32"), dtype="<f4").reshape(-1, d)
    queries = np.fromfile(os.path.join(args.data, "queries.f32"), dtype="<f4").reshape(-1, d)
    truth = np.fromfile(os.path.join(args.data, "truth.u32"), dtype="<u4").reshape(-1, k).astype(np.int64)
    efs = [int(x) for x in args.efs.split(",")]
    out = {"lib": args.lib, "data": os.path.basename(os.path.normpath(args.data)), "source": meta.get("source", ""), "n": int(base.shape[0]), "dims": d, "queries": int(queries.shape[0]), "k": k,
           "m": args.m, "ef_construction": args.efc, "build_threads": args.build_threads, "sweep": []}

    if args.lib == "hnswlib":
        import hnswlib

        out["version"] = getattr(hnswlib, "__version__", "0.8.0")
        idx = hnswlib.Index(space="ip", dim=d)
        c0 = time.process_time()
        t0 = time.perf_counter()
        idx.init_index(max_elements=base.shape[0], ef_construction=args.efc, M=args.m, random_seed=100)
        idx.set_num_threads(args.build_threads)
        idx.add_items(base, np.arange(base.shape[0]))
        out["build_secs"] = time.perf_counter() - t0
        out["build_cpu_secs"] = time.process_time() - c0
        idx.set_num_threads(1)

        def search(ef: int) -> np.ndarray:
            idx.set_ef(max(ef, k))
            labels, _ = idx.knn_query(queries, k=k, num_threads=1)
            return labels
    else:
        import faiss

        out["version"] = faiss.__version__
        out["faiss_simd"] = faiss.get_compile_options()
        faiss.omp_set_num_threads(args.build_threads)
        idx = faiss.IndexHNSWFlat(d, args.m, faiss.METRIC_INNER_PRODUCT)
        idx.hnsw.efConstruction = args.efc
        c0 = time.process_time()
        t0 = time.perf_counter()
        idx.add(base)
        out["build_secs"] = time.perf_counter() - t0
        out["build_cpu_secs"] = time.process_time() - c0
        faiss.omp_set_num_threads(1)

        def search(ef: int) -> np.ndarray:
            idx.hnsw.efSearch = max(ef, k)
            _, labels = idx.search(queries, k)
            return labels

    search(efs[0])  # warm-up
    for ef in efs:
        t0 = time.perf_counter()
        labels = search(ef)
        secs = time.perf_counter() - t0
        # More passes until 0.5 s were spent (at most 20); the fastest counts (as in bench_index).
        spent, passes = secs, 1
        while spent < 0.5 and passes < 20:
            t0 = time.perf_counter()
            search(ef)
            dt = time.perf_counter() - t0
            secs = min(secs, dt)
            spent += dt
            passes += 1
        r = recall_at(labels, truth, k)
        out["sweep"].append({"ef": ef, "recall": r, "qps": queries.shape[0] / secs,
                             "us_per_query": secs / queries.shape[0] * 1e6, "passes": passes})
        if r >= args.stop_at:
            break
    out["load"] = " ".join(open("/proc/loadavg").read().split()[:3])
    json.dump(out, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
