#!/usr/bin/env python3
"""Load benchmark of `ragsnap serve` (standard library only).

Starts the service on a free loopback port over STORE, then for each retrieval mode and each
multiple M of the concurrency limit runs M x limit closed-loop clients for SECONDS, and prints
one JSON line per (mode, level): queries/s answered, p50/p99 latency of answered requests, shed
and timed-out shares, and the service's peak RSS during that level (VmHWM, reset between levels
through clear_refs) next to its resident size before the level.

    serve_load.py BIN STORE QUERIES.jsonl [--concurrency 2] [--levels 1,4,10,16]
                  [--modes dense,hybrid] [--seconds 10]

`bench_query inproc` asks the same questions in the same modes in process (the overhead row).
"""
import argparse
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request


def status_kib(pid, field="VmHWM:"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def cpu_secs(pid):
    """User + system CPU seconds of process `pid` so far (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def reset_hwm(pid):
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def ask(base, question, mode):
    body = json.dumps({"query": question, "k": 5, "mode": mode}).encode()
    req = urllib.request.Request(base + "/v1/query", data=body, headers={"Content-Type": "application/json"})
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        e.read()
        status = e.code
    except OSError:
        status = 0
    return status, time.perf_counter() - t


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bin")
    ap.add_argument("store")
    ap.add_argument("queries")
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--levels", default="1,4,10,16")
    ap.add_argument("--modes", default="dense,hybrid")
    ap.add_argument("--seconds", type=float, default=10.0)
    a = ap.parse_args()
    questions = [json.loads(l)["question"] for l in open(a.queries) if l.strip()]
    proc = subprocess.Popen(
        [a.bin, "--store", a.store, "serve", "--listen", "127.0.0.1:0", "--concurrency", str(a.concurrency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        base = next(w for w in line.split() if w.startswith("http://"))
        modes = a.modes.split(",")
        for mode in modes:
            for q in questions:  # warm, as the in-process bench warms
                ask(base, q, mode)
        for mode, m in [(mode, int(x)) for mode in modes for x in a.levels.split(",")]:
            clients = m * a.concurrency
            rss_before = status_kib(proc.pid, "VmRSS:")
            cpu_before = cpu_secs(proc.pid)
            reset_ok = reset_hwm(proc.pid)
            stop = time.perf_counter() + a.seconds
            lock = threading.Lock()
            lat, counts = [], {}

            def client(i):
                n = i
                while time.perf_counter() < stop:
                    status, dt = ask(base, questions[n % len(questions)], mode)
                    n += clients
                    with lock:
                        counts[status] = counts.get(status, 0) + 1
                        if status == 200:
                            lat.append(dt)

            threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
            cpu = cpu_secs(proc.pid) - cpu_before
            total = sum(counts.values())
            print(
                json.dumps(
                    {
                        "bench": "serve",
                        "mode": mode,
                        "concurrency_limit": a.concurrency,
                        "multiple": m,
                        "clients": clients,
                        "requests": total,
                        "answered_per_s": round(counts.get(200, 0) / wall, 1),
                        "p50_ms": round(1000 * pct(lat, 50), 1) if lat else None,
                        "p99_ms": round(1000 * pct(lat, 99), 1) if lat else None,
                        "shed_share": round(counts.get(503, 0) / max(total, 1), 3),
                        "timed_out_share": round(counts.get(504, 0) / max(total, 1), 3),
                        "other_errors": total - counts.get(200, 0) - counts.get(503, 0) - counts.get(504, 0),
                        "service_cpu_ms_per_request": round(1000 * cpu / max(total, 1), 2),
                        "service_cpu_share": round(cpu / wall, 2),
                        "rss_before_mib": round(rss_before / 1024, 1),
                        "peak_rss_mib": round(status_kib(proc.pid) / 1024, 1),
                        "peak_is_per_level": reset_ok,
                    }
                ),
                flush=True,
            )
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
