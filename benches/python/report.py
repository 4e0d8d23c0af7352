"""Turn benches/.data/results/*.jsonl (written by benches/run.sh) into Markdown tables.

Standard library only. Missing parts are skipped. Usage: report.py RESULTS_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def rows(results: Path, part: str) -> list[dict]:
    p = results / f"{part}.jsonl"
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text().splitlines() if line.startswith("{")]


def table(head: list[str], body: list[list]) -> str:
    def fmt(x):
        if isinstance(x, float):
            if x >= 100:
                return f"{x:,.0f}"
            if x >= 10:
                return f"{x:.1f}"
            return f"{x:.2f}" if x >= 0.1 else f"{x:.3f}"
        return str(x)

    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(fmt(c) for c in r) + " |" for r in body]
    return "\n".join(lines)


def ingest(results: Path) -> str:
    rs = [r for r in rows(results, "ingest") if r.get("bench") == "ingest" or "tool" in r]
    if not rs:
        return ""
    py = {r["procs"]: r for r in rs if "tool" in r}
    body = []
    for r in rs:
        if "tool" in r:
            body.append([f"trafilatura + MarkdownHeaderTextSplitter", f"{r['procs']} proc", r["docs"], r["secs"],
                         r.get("cpu_secs", float("nan")), r["docs_per_s"], r["mb_per_s"], r["chunks"], "1.0×", "-",
                         "-", r.get("load", "")])
        else:
            ref = py.get(r["threads"])
            ratio = f"{r['docs_per_s'] / ref['docs_per_s']:.1f}×" if ref else "-"
            if ref and r.get("cpu_secs") and ref.get("cpu_secs"):
                ratio += f" (CPU {ref['cpu_secs'] / r['cpu_secs']:.1f}×)"
            st = r["stage_secs"]
            parse = r.get("html_parse_only_secs")
            body.append([f"ragsnap ({r['tokens']} tokens)", f"{r['threads']} thr", r["docs"], r["secs"],
                         r.get("cpu_secs", float("nan")), r["docs_per_s"], r["mb_per_s"], r["chunks"], ratio,
                         f"{st['sanitize']:.2f} / {st['boilerplate']:.2f} / {st['chunk']:.2f}",
                         f"{parse:.2f}" if parse is not None else "-", r.get("load", "")])
    loads = sorted({r.get("load", "") for r in rs if r.get("load")})
    return ("### Ingest\n\n" + table(
        ["pipeline", "parallel", "pages", "wall s", "CPU s", "pages/s", "MB/s", "chunks",
         "vs Python, same parallelism", "sanitize / boilerplate / chunk s", "HTML parse alone s", "load at end"],
        body) + "\n")


def embed(results: Path) -> str:
    rs = [r for r in rows(results, "embed") if r.get("bench") == "embed" or r.get("impl") == "python"]
    if not rs:
        return ""
    out = ["### Embedding\n"]
    key = lambda r: (r["texts"], r["threads"], r["batch"], r["opt"], r["bucketed"], bool(r.get("concurrent")))
    py = {key(r): r for r in rs if r["impl"] == "python"}
    pad = lambda r: r["padding_tokens"] / max(1, r["padding_tokens"] + r["tokens"])
    head = [r for r in rs if r["impl"] == "ragsnap" and r.get("procs", 1) == 1 and key(r) in py]
    body = []
    for r in head:
        p = py[key(r)]
        how = "same time" if r.get("concurrent") else "one after the other"
        for x, name in ((r, "ragsnap"), (p, "python")):
            body.append([name, how, x["texts"], x["threads"], x["chunks_per_s"], x["tokens_per_s"], x["wall_secs"],
                         x["run_secs"], x.get("cpu_secs", float("nan")), f"{100 * x['overhead']:.2f}%",
                         f"{100 * pad(x):.2f}%",
                         f"{r['chunks_per_s'] / p['chunks_per_s']:.3f}" if x is r else "",
                         f"{p['cpu_secs'] / r['cpu_secs']:.3f}" if x is r and r.get("cpu_secs") and p.get("cpu_secs") else "",
                         f"{p['min_cosine_vs_rust']:.7f}" if x is r and "min_cosine_vs_rust" in p else "",
                         x.get("load", "")])
    if body:
        out.append(table(["impl", "run", "texts", "threads", "chunks/s", "tokens/s", "wall s", "in session.run s",
                          "CPU s", "overhead", "padding", "ours / python (wall)", "python CPU / ours CPU",
                          "min cosine", "load at end"], body) + "\n")
    explore = [r for r in rs if r["impl"] == "ragsnap" and key(r) not in py]
    if explore:
        base = next((r for r in explore if r.get("procs", 1) == 1 and r["batch"] == 32 and r["opt"] == 3
                     and r["bucketed"]), None)
        body = []
        for r in explore:
            if r.get("procs", 1) > 1:
                label = f"{r['procs']} processes × {r['threads']} thread, batch {r['batch']}, opt {r['opt']}"
                ov = "-"
            else:
                label = (f"1 session × {r['threads']} threads, batch {r['batch']}, opt {r['opt']}, "
                         f"{'bucketed' if r['bucketed'] else 'naive'}")
                ov = f"{100 * r['overhead']:.2f}%"
            rel = f"{r['chunks_per_s'] / base['chunks_per_s']:.2f}" if base else "-"
            body.append([label, r["texts"], r["chunks_per_s"], r["tokens_per_s"], r["wall_secs"],
                         f"{100 * pad(r):.1f}%", ov, rel, r.get("load", "")])
        out.append(table(["ragsnap configuration", "texts", "chunks/s", "tokens/s", "wall s", "padding", "overhead",
                          "vs 1×2 thr batch 32 opt 3 bucketed", "load"], body) + "\n")
    return "\n".join(out)


def rebuild(results: Path) -> str:
    rs = [r for r in rows(results, "rebuild") if r.get("bench") == "rebuild"]
    if not rs:
        return ""
    order = ["sanitize", "boilerplate", "chunk", "embed", "index", "gates", "stage", "publish"]
    keys = {k for r in rs for k in r["timings"]}
    stages = [s for s in order if s in keys] + sorted(keys - set(order) - {"total"}) + ["total"]
    body = [[r["label"], r["pages_changed"], r["wall_secs"]] + [r["timings"].get(s, 0.0) for s in stages]
            + [r["chunks"], r["cache_misses"], r["cache_hits"], f"{r['index_kind']} ef={r['ef_search']} r={r['recall']:.3f}",
               r["load"]] for r in rs]
    return "### Rebuild\n\n" + table(["rebuild", "pages changed", "wall s"] + [f"{s} s" for s in stages]
                                     + ["chunks", "embedded", "from cache", "index", "load"], body) + "\n"


def at_recall(sweep: list[dict], target: float):
    for s in sweep:
        if s["recall"] >= target:
            return s
    return None


def index(results: Path) -> str:
    rs = rows(results, "index")
    runs = [r for r in rs if r.get("bench") == "index" or "lib" in r and "sweep" in r]
    if not runs:
        return ""
    out = ["### Index\n"]
    datasets = []
    for r in runs:
        if r.get("data") not in datasets:
            datasets.append(r.get("data"))
    for data in datasets:
        group = [r for r in runs if r.get("data") == data]
        ref = next((r for r in group if r["lib"] == "hnswlib"), None)
        body = []
        for r in group:
            name = r["lib"] if r["lib"] not in ("hnswlib", "faiss") else f"{r['lib']} {r.get('version', '')}"
            row = [name, r["build_secs"], r.get("build_cpu_secs", float("nan")),
                   f"{r['build_secs'] / ref['build_secs']:.2f}" if ref else "-"]
            for tgt in (0.95, 0.99):
                s = at_recall(r["sweep"], tgt)
                rs_ref = at_recall(ref["sweep"], tgt) if ref else None
                if s:
                    row += [s["ef"], f"{s['recall']:.3f}", s["qps"],
                            f"{s['qps'] / rs_ref['qps']:.2f}" if rs_ref else "-"]
                else:
                    row += ["-", "-", "-", "-"]
            row.append(r.get("load", ""))
            body.append(row)
        g0 = group[0]
        out.append(f"**{data}**: {g0.get('source', '')}; {g0['n']} × {g0.get('dims', 384)} base, "
                   f"{g0['queries']} queries, M={g0['m']}, ef_construction={g0['ef_construction']}\n")
        out.append(table(["library", "build s (2 thr)", "build CPU s", "build / hnswlib", "ef@0.95", "recall", "qps",
                          "qps / hnswlib", "ef@0.99", "recall", "qps", "qps / hnswlib", "load"], body) + "\n")
    fast = [r for r in runs if r.get("dist") == "fast" and r.get("distance_ns")]
    body = []
    for f in fast:
        ours = next((r for r in runs if r.get("dist") == "ragsnap" and r["n"] == f["n"]), None)
        ns = f["distance_ns"]
        for tgt in (0.95, 0.99):
            s_ours = at_recall(ours["sweep"], tgt) if ours else None
            if not s_ours:
                continue
            s_fast = next((x for x in f["sweep"] if x["ef"] == s_ours["ef"]), None)
            if not s_fast:
                continue
            evals = s_fast["evals_per_query"]
            share = evals * ns["random_rows_ns"]["ragsnap_dot"] / 1000 / s_ours["us_per_query"]
            body.append([f["n"], tgt, s_ours["ef"], f"{evals:.0f}", f"{s_ours['us_per_query']:.0f}",
                         f"{ns['random_rows_ns']['ragsnap_dot']:.1f} / {ns['hot_pair_ns']['ragsnap_dot']:.1f}",
                         f"{ns['random_rows_ns']['fast_dot']:.1f} / {ns['hot_pair_ns']['fast_dot']:.1f}",
                         f"{ns['random_rows_ns']['avx2_fma']:.1f} / {ns['hot_pair_ns']['avx2_fma']:.1f}",
                         f"{ns['random_rows_ns']['anndists_DistDot']:.1f} / {ns['hot_pair_ns']['anndists_DistDot']:.1f}",
                         f"{100 * share:.0f}%"])
    if body:
        out.append(table(["n", "recall", "ef", "distance evals / query", "µs / query (ragsnap)",
                          "DotDistance ns (random rows / hot)", f"local {fast[0]['distance_ns']['fast_dot_path']} ns",
                          "local avx2+fma ns", "hnsw_rs DistDot ns", "share of query in DotDistance"], body) + "\n")
    return "\n".join(out)


def query(results: Path) -> str:
    rs = rows(results, "query")
    if not rs:
        return ""
    by = {r["bench"]: r for r in rs}
    body = []
    if "open" in by:
        o = by["open"]
        body += [["snapshot open, first in a new process", f"{1000 * o['first_open_secs']:.1f} ms", f"{o['snapshot_bytes'] / 1e6:.1f} MB, {o['index_kind']}, {o['vectors']} vectors"],
                 ["snapshot open, warm (median of re-opens)", f"{1000 * o['warm_open_median_secs']:.1f} ms", f"{o['reps']} re-opens"],
                 ["embedder load", f"{1000 * o['embedder_load_secs']:.0f} ms", "ONNX session, 1 thread"],
                 ["Searcher::new (canary re-embed)", f"{1000 * o['searcher_new_secs (canary check)']:.0f} ms", "16 texts"]]
    if "open" in by and by["open"].get("warm_open_parts"):
        parts = by["open"]["warm_open_parts"]
        body.append(["warm open, by step", " + ".join(f"{k} {1000 * v:.0f} ms" for k, v in parts.items() if v is not None), "same calls as Snapshot::load"])
    if "verify" in by:
        v = by["verify"]
        body.append(["verify (head)", f"{v['mb_per_s']:.0f} MB/s", f"{v['bytes'] / 1e6:.1f} MB, median {1000 * v['median_secs']:.0f} ms"])
    if "rollback" in by:
        r = by["rollback"]
        body.append(["rollback (verify target + commit)", f"{1000 * r['rollback_median_secs']:.0f} ms",
                     f"target {r['target_bytes'] / 1e6:.1f} MB; roll forward {1000 * r['roll_forward_median_secs']:.0f} ms"])
    if "latency" in by:
        l = by["latency"]
        for name, key in [("query end to end", "end_to_end_ms"), ("embed only", "embed_ms"),
                          ("search only (index)", "search_only_ms"), ("search + metadata", "search_plus_metadata_ms")]:
            s = l[key]
            body.append([f"{name}, p50 / p99", f"{s['p50']:.3f} / {s['p99']:.3f} ms", f"{l['queries']} queries, max {s['max']:.2f} ms"])
    if "rss" in by:
        r = by["rss"]
        body.append([f"peak RSS, open + {r['queries']} queries", f"{r['peak_rss_kib'] / 1024:.0f} MiB",
                     f"after open {r['rss_after_snapshot_open_kib'] / 1024:.0f} MiB, after model {r['rss_after_embedder_kib'] / 1024:.0f} MiB"])
    if "cli-query" in by:
        body.append(["`ragsnap query` CLI, process start to exit", f"{1000 * by['cli-query']['wall_secs']:.0f} ms", ""])
    loads = sorted({r.get("load", "") for r in rs if r.get("load")})
    return "### Snapshots and queries\n\n" + table(["measure", "value", "notes"], body) + f"\n\nload averages seen: {', '.join(loads)}\n"


def serve(results: Path) -> str:
    """`ragsnap serve` under load next to the in-process library (same questions, same modes)."""
    rs = rows(results, "serve")
    if not rs:
        return ""
    inproc = [r for r in rs if r["bench"] == "inproc"]
    load = [r for r in rs if r["bench"] == "serve"]
    ms = lambda v: "–" if v is None else f"{v:.1f} ms"
    body = []
    for r in inproc:
        l = r["latency_ms"]
        body.append([f"library, {r['threads']} thread(s)", r["mode"], r["threads"], f"{r['queries_per_s']:.1f}",
                     ms(l["p50"]), ms(l["p99"]), "–", "–", f"{r.get('cpu_ms_per_query', float('nan')):.1f} ms",
                     f"{r['peak_rss_kib'] / 1024:.0f} MiB", "–"])
    for r in load:
        lib = next((i for i in inproc if i["mode"] == r.get("mode", "hybrid") and i["threads"] == r["concurrency_limit"]), None)
        over = "–"
        if r["multiple"] == 1 and lib and r["p50_ms"] is not None:
            over = f"p50 {r['p50_ms'] - lib['latency_ms']['p50']:+.1f} ms"
            if "service_cpu_ms_per_request" in r and "cpu_ms_per_query" in lib:
                over += f", CPU {r['service_cpu_ms_per_request'] - lib['cpu_ms_per_query']:+.1f} ms"
        cpu = r.get("service_cpu_ms_per_request")
        body.append([f"service {r['multiple']}×", r.get("mode", "hybrid"), r["clients"], f"{r['answered_per_s']:.1f}",
                     ms(r["p50_ms"]), ms(r["p99_ms"]), f"{100 * r['shed_share']:.1f}%",
                     f"{100 * r['timed_out_share']:.1f}%", "–" if cpu is None else f"{cpu:.1f} ms",
                     f"{r['peak_rss_mib']:.0f} MiB", over])
    out = "### Serving\n\n" + table(["run", "mode", "clients / threads", "answered/s", "p50", "p99", "shed",
                                        "timed out", "CPU per request", "peak RSS",
                                        "overhead: service 1× − library at the same parallelism"], body)
    pp = next((r for r in rs if r["bench"] == "publish-pull"), None)
    if pp and "full" in pp:
        f, c = pp["full"], pp["changed_1pct"]
        out += "\n\n" + table(["step", "time", "bytes", "artifacts"], [
            ["publish, full snapshot", f"{f['publish_secs']:.2f} s", f"{f['publish_bytes']:,}", f"{f['uploaded']} uploaded"],
            ["pull into an empty store", f"{f['pull_secs']:.2f} s", f"{f['pull_bytes']:,}", f"{f['downloaded']} downloaded"],
            ["publish, 1%-changed snapshot", f"{c['publish_secs']:.2f} s", f"{c['publish_bytes']:,}",
             f"{c['uploaded']} uploaded, {c['already_there']} already there"],
            ["pull of it into the replica", f"{c['pull_secs']:.2f} s", f"{c['pull_bytes']:,}",
             f"{c['downloaded']} downloaded, {c['reused']} reused"]])
    loads = sorted({r.get("load", "") for r in rs if r.get("load")})
    return out + (f"\n\nload averages seen: {', '.join(loads)}\n" if loads else "\n")


def main() -> int:
    results = Path(sys.argv[1])
    parts = [ingest(results), embed(results), rebuild(results), index(results), query(results), serve(results)]
    print("\n".join(p for p in parts if p))
    return 0


if __name__ == "__main__":
    sys.exit(main())
