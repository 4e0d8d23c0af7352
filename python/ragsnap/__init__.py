"""ragsnap: verified retrieval snapshots, similarity floors that refuse rather than guess, and
hot switching between snapshots, for Python applications.

Everything here runs the ragsnap library in-process (a Rust extension module); nothing calls
the ``ragsnap`` command-line tool.

>>> import ragsnap
>>> searcher = ragsnap.Searcher.open("ragsnap-store")          # doctest: +SKIP
>>> result = searcher.query("how do I retry failed jobs?", k=3) # doctest: +SKIP
>>> result.refused, [h.source_path for h in result.hits]        # doctest: +SKIP

The framework adapters live in :mod:`ragsnap.langchain` and :mod:`ragsnap.llama_index`
(install the ``langchain`` or ``llama-index`` extra).
"""

from ragsnap._native import (
    CorruptSnapshot,
    EmbeddingDrift,
    EmbeddingVersionMismatch,
    Error,
    Hit,
    InvalidRequest,
    QueryResult,
    Searcher,
    Store,
    StoreLocked,
    __version__,
    rebuild,
    rollback,
)

__all__ = [
    "CorruptSnapshot",
    "EmbeddingDrift",
    "EmbeddingVersionMismatch",
    "Error",
    "Hit",
    "InvalidRequest",
    "QueryResult",
    "Searcher",
    "Store",
    "StoreLocked",
    "__version__",
    "rebuild",
    "rollback",
]
