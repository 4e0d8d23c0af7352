"""Reference ingest for `bench_ingest`: trafilatura (HTML -> Markdown) + langchain-text-splitters
MarkdownHeaderTextSplitter, over the same pages the Rust bench reads.

Pages are read into memory before the clock starts (as the Rust side does). With --procs 2 the
pages are split over a fork()ed multiprocessing pool (the GIL rules out threads); the pages are
inherited by the children, only indices and chunk counts cross the pipe.

Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import trafilatura
from langchain_text_splitters import MarkdownHeaderTextSplitter

HEADERS = [("#", "h1"), ("##", "h2"), ("###", "h3"), ("####", "h4"), ("#####", "h5"), ("######", "h6")]

PAGES: list[bytes] = []


def one(i: int) -> tuple[int, int, int]:
    """(markdown chars, chunks, 1 if trafilatura returned nothing) for page i."""
    md = trafilatura.extract(
        PAGES[i],
        output_format="markdown",
        include_comments=False,
        include_tables=True,
        include_formatting=True,
        with_metadata=False,
    )
    if not md:
        return (0, 0, 1)
    splitter = MarkdownHeaderTextSplitter(headers_to_split_on=HEADERS, strip_headers=False)
    chunks = splitter.split_text(md)
    return (len(md), len(chunks), 0)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", required=True, help="file with one page path per line")
    ap.add_argument("--procs", type=int, default=1)
    args = ap.parse_args()
    paths = [Path(p) for p in Path(args.pages).read_text().split("\n") if p]
    if not paths:
        print(f"ingest_ref.py: no pages listed in {args.pages}", file=sys.stderr)
        return 1
    PAGES.extend(p.read_bytes() for p in paths)
    total_bytes = sum(len(p) for p in PAGES)
    # Warm-up: imports, lxml and trafilatura's lazy initialisation, on 3 pages (not timed).
    for i in range(min(3, len(PAGES))):
        one(i)
    import resource

    c0 = time.process_time()
    ch0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    if args.procs <= 1:
        results = [one(i) for i in range(len(PAGES))]
    else:
        ctx = mp.get_context("fork")
        with ctx.Pool(args.procs) as pool:
            results = pool.map(one, range(len(PAGES)), chunksize=4)
    secs = time.perf_counter() - t0
    ch1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time() - c0 + (ch1.ru_utime + ch1.ru_stime) - (ch0.ru_utime + ch0.ru_stime)
    out = {
        "tool": f"trafilatura {trafilatura.__version__} + langchain-text-splitters MarkdownHeaderTextSplitter",
        "procs": args.procs,
        "docs": len(PAGES),
        "bytes": total_bytes,
        "secs": secs,
        "cpu_secs": cpu,
        "docs_per_s": len(PAGES) / secs,
        "mb_per_s": total_bytes / 1e6 / secs,
        "markdown_chars": sum(r[0] for r in results),
        "chunks": sum(r[1] for r in results),
        "empty_docs": sum(r[2] for r in results),
        "python": sys.version.split()[0],
        "load": " ".join(open("/proc/loadavg").read().split()[:3]),
    }
    json.dump(out, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
