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
                         r["docs_per_s"], r["mb_per_s"], r["chunks"], "1.0×", "-"])
        else:
            ref = py.get(r["threads"])
            ratio = f"{r['docs_per_s'] / ref['docs_per_s']:.0f}×" if ref else "-"
            st = r["stage_secs"]
            body.append([f"ragsnap ({r['tokens']} tokens)", f"{r['threads']} thr", r["docs"], r["secs"],
                         r["docs_per_s"], r["mb_per_s"], r["chunks"], ratio,
                         f"{st['sanitize']:.2f} / {st['boilerplate']:.2f} / {st['chunk']:.2f}"])
    loads = sorted({r.get("load", "") for r in rs if r.get("load")})
    return ("### Ingest\n\n" + table(
        ["pipeline", "parallel", "pages", "secs", "pages/s", "MB/s", "chunks", "vs Python (same parallelism)",
         "sanitize / boilerplate / chunk s"], body) + f"\n\nload averages seen: {', '.join(loads)}\n")


def embed(results: Path) -> str:
    rs = [r for r in rows(results, "embed") if r.get("bench") == "embed" or r.get("impl") == "python"]
    if not rs:
        return ""
    out = ["### Embedding\n"]
    key = lambda r: (r["texts"], r["threads"], r["batch"], r["opt"], r["bucketed"], r.get("procs", 1))
    py = {key(r): r for r in rs if r["impl"] == "python"}
    body = []
    for r in rs:
        if r["impl"] != "ragsnap" or r.get("procs", 1) > 1:
            continue
        p = py.get(key(r))
        pad = r["padding_tokens"] / max(1, r["padding_tokens"] + r["tokens"])
        body.append(["ragsnap", r["texts"], r["threads"], r["batch"], r["opt"], "bucketed" if r["bucketed"] else "naive",
                     r["chunks_per_s"], r["tokens_per_s"], r["wall_secs"], f"{100 * r['overhead']:.1f}%",
                     f"{100 * pad:.1f}%", f"{r['chunks_per_s'] / p['chunks_per_s']:.2f}" if p else "-",
                     f"{p['min_cosine_vs_rust']:.6f}" if p and "min_cosine_vs_rust" in p else "-", r.get("load", "")])
        if p:
            ppad = p["padding_tokens"] / max(1, p["padding_tokens"] + p["tokens"])
            body.append(["python", p["texts"], p["threads"], p["batch"], p["opt"],
                         "bucketed" if p["bucketed"] else "naive", p["chunks_per_s"], p["tokens_per_s"],
                         p["wall_secs"], f"{100 * p['overhead']:.1f}%", f"{100 * ppad:.1f}%", "", "", ""])
    out.append(table(["impl", "texts", "threads", "batch", "opt", "batching", "chunks/s", "tokens/s", "wall s",
                      "overhead", "padding", "ours/py", "min cos", "load"], body))
    multi = [r for r in rs if r.get("procs", 1) > 1]
    if multi:
        out.append("\n" + table(["config", "texts", "chunks/s", "tokens/s", "wall s", "load"],
                                [[f"{r['procs']} processes × {r['threads']} thread", r["texts"], r["chunks_per_s"],
                                  r["tokens_per_s"], r["wall_secs"], r.get("load", "")] for r in multi]))
    return "\n".join(out) + "\n"


def rebuild(results: Path) -> str:
    rs = [r for r in rows(results, "rebuild") if r.get("bench") == "rebuild"]
    if not rs:
        return ""
    stages = ["sanitize", "boilerplate", "chunk", "embed", "index", "publish", "total"]
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
    for src_kind in ("snapshot", "synthetic"):
        group = [r for r in runs if r.get("n") and (src_kind in json.dumps(r.get("source", "")) or
                 (src_kind == "synthetic" and r.get("n", 0) >= 50000 and "source" not in r) or
                 (src_kind == "snapshot" and r.get("n", 0) < 50000 and "source" not in r))]
        if not group:
            continue
        ref = next((r for r in group if r["lib"] == "hnswlib"), None)
        body = []
        for r in group:
            row = [r["lib"] if r["lib"] not in ("hnswlib", "faiss") else f"{r['lib']} {r.get('version', '')}",
                   r["n"], r["build_secs"]]
            row.append(f"{r['build_secs'] / ref['build_secs']:.2f}" if ref else "-")
            for tgt in (0.95, 0.99):
                s = at_recall(r["sweep"], tgt)
                rs_ref = at_recall(ref["sweep"], tgt) if ref else None
                if s:
                    row += [s["ef"], f"{s['recall']:.3f}", s["qps"],
                            f"{s['qps'] / rs_ref['qps']:.2f}" if rs_ref else "-"]
                else:
                    row += ["-", "-", "-", "-"]
            body.append(row)
        out.append(f"**{src_kind}** ({group[0]['n']} × {group[0].get('dims', 384)}, M={group[0]['m']}, "
                   f"ef_construction={group[0]['ef_construction']})\n")
        out.append(table(["library", "n", "build s (2 thr)", "build / hnswlib", "ef@0.95", "recall", "qps",
                          "qps / hnswlib", "ef@0.99", "recall", "qps", "qps / hnswlib"], body) + "\n")
    prof = [r for r in rs if r.get("bench") == "index-profile"]
    if prof:
        body = []
        for p in prof:
            ns = p["ns_per_eval_random_rows"]
            for e in p["per_ef"]:
                share = e["evals_per_query"] * ns["ragsnap_dot"] / 1000 / e["us_per_query_counting"]
                body.append([p["n"], e["ef"], e["evals_per_query"], e["us_per_query_counting"], ns["ragsnap_dot"],
                             ns["fast_dot"], ns["anndists_DistDot_simdeez"], f"{100 * share:.0f}%"])
        out.append(table(["n", "ef", "distance evals/query", "µs/query", "ns/eval DotDistance",
                          f"ns/eval local {prof[0]['ns_per_eval_random_rows']['fast_dot_path']}",
                          "ns/eval anndists DistDot", "share of query in DotDistance"], body) + "\n")
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


def main() -> int:
    results = Path(sys.argv[1])
    parts = [ingest(results), embed(results), rebuild(results), index(results), query(results)]
    print("\n".join(p for p in parts if p))
    return 0


if __name__ == "__main__":
    sys.exit(main())
