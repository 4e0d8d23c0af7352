"""What both framework adapters share: query options and the metadata of a hit."""

from __future__ import annotations

from typing import Any, Dict, Optional

from ragsnap._native import Hit, QueryResult, Searcher, Store

QUERY_OPTIONS = (
    "k",
    "mode",
    "floor",
    "floor_percentile",
    "lexical_floor",
    "rrf_k",
    "ef",
    "max_per_source",
    "max_k",
)


def check_options(options: Dict[str, Any]) -> Dict[str, Any]:
    """The query options given, with an unknown name refused at construction (not at the first query)."""
    unknown = sorted(set(options) - set(QUERY_OPTIONS))
    if unknown:
        raise TypeError(f"unknown query option(s) {', '.join(unknown)} (known: {', '.join(QUERY_OPTIONS)})")
    return {k: v for k, v in options.items() if v is not None}


def hit_metadata(hit: Hit, result: QueryResult) -> Dict[str, Any]:
    """Every field of a hit but its text, plus which snapshot and floors answered."""
    meta = hit.to_dict()
    meta.pop("text", None)
    meta["fingerprint_id"] = result.fingerprint_id
    meta["mode"] = result.mode
    meta["floor"] = result.floor
    meta["floor_source"] = result.floor_source
    return meta


def open_searcher(store: Any, snapshot: str = "HEAD", **open_options: Any) -> Searcher:
    """``Searcher.open`` for the adapters' ``from_store`` constructors (``store`` may be a Store)."""
    path = store.path if isinstance(store, Store) else store
    return Searcher.open(path, snapshot, **open_options)


def missing_extra(framework: str, extra: str, error: Optional[BaseException]) -> ImportError:
    """The ImportError raised when an adapter's framework is not installed."""
    return ImportError(
        f"ragsnap's {framework} adapter needs {framework}: install it with "
        f"`pip install 'ragsnap[{extra}]'` ({error})"
    )
