"""The Python side of the Python-overhead benchmark (`benches/run.sh python`): the same query
list as `bench_modes latency`, through the installed `ragsnap` package, one mode at a time.

    python python_latency.py STORE QUERIES.json MODE [--warmup 20]

Opens the store's head with the model on one intra-op thread (a config file saying so, as the
Rust side sets it), warms up, times each query once, and prints one JSON line in the same shape
as the Rust side (nearest-rank percentiles).
"""

import argparse
import json
import math
import os
import tempfile
import time

import ragsnap


def percentile(sorted_ms, p):
    rank = math.ceil(p / 100.0 * len(sorted_ms))
    return sorted_ms[min(max(rank, 1), len(sorted_ms)) - 1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("store")
    ap.add_argument("queries")
    ap.add_argument("mode", choices=["dense", "hybrid", "lexical"])
    ap.add_argument("--warmup", type=int, default=20)
    a = ap.parse_args()
    questions = json.load(open(a.queries))
    with tempfile.TemporaryDirectory() as d:
        config = os.path.join(d, "ragsnap.toml")
        with open(config, "w") as f:
            f.write("[runtime]\nintra_threads = 1\n")
        searcher = ragsnap.Searcher.open(a.store, config=config)
    for q in questions[: a.warmup]:
        searcher.query(q, mode=a.mode)
    ms = []
    for q in questions:
        t = time.perf_counter()
        searcher.query(q, mode=a.mode)
        ms.append((time.perf_counter() - t) * 1000.0)
    ms.sort()
    print(json.dumps({
        "bench": "python-overhead",
        "side": "python",
        "mode": a.mode,
        "latency_ms": {"n": len(ms), "mean": sum(ms) / len(ms), "p50": percentile(ms, 50), "p90": percentile(ms, 90),
                       "p99": percentile(ms, 99), "max": ms[-1]},
        "load": " ".join(open("/proc/loadavg").read().split()[:3]),
    }))


if __name__ == "__main__":
    main()
