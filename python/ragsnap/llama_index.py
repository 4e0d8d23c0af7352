"""A LlamaIndex retriever over a ragsnap snapshot (install the ``llama-index`` extra).

``RagsnapRetriever`` returns one ``NodeWithScore`` per hit: a ``TextNode`` whose id is the
chunk's content id and whose metadata holds every hit field and the snapshot id, scored with
the hit's cosine. A refused query returns ``[]``.

    from ragsnap.llama_index import RagsnapRetriever
    retriever = RagsnapRetriever.from_store("ragsnap-store", k=4)
    nodes = retriever.retrieve("how do I retry failed jobs?")
"""

from __future__ import annotations

import asyncio
from typing import Any, List

from ragsnap._adapt import check_options, hit_metadata, missing_extra, open_searcher
from ragsnap._native import Searcher

try:
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise missing_extra("llama-index-core", "llama-index", e) from e

__all__ = ["RagsnapRetriever"]

# Metadata shown to the LLM and the embedder with the node text; the scores stay out of prompts.
_PROMPT_KEYS = ("source_path", "url", "header_path")


class RagsnapRetriever(BaseRetriever):
    """LlamaIndex ``BaseRetriever`` backed by a ``ragsnap.Searcher``.

    Keyword arguments other than LlamaIndex's own (``callback_manager``, ``verbose``...) are
    query options for ``Searcher.query`` (``k``, ``mode``, ``floor``...).
    """

    def __init__(
        self,
        searcher: Searcher,
        *,
        callback_manager: Any = None,
        verbose: bool = False,
        **query_options: Any,
    ) -> None:
        self._searcher = searcher
        self._options = check_options(query_options)
        super().__init__(callback_manager=callback_manager, verbose=verbose)

    @classmethod
    def from_store(
        cls,
        store: Any,
        snapshot: str = "HEAD",
        *,
        model_dir: Any = None,
        ort_lib: Any = None,
        config: Any = None,
        **query_options: Any,
    ) -> "RagsnapRetriever":
        """Open ``store`` (a path or a ``ragsnap.Store``) and wrap the searcher."""
        searcher = open_searcher(store, snapshot, model_dir=model_dir, ort_lib=ort_lib, config=config)
        return cls(searcher, **query_options)

    @property
    def searcher(self) -> Searcher:
        """The searcher queried."""
        return self._searcher

    def _nodes(self, query: str) -> List[NodeWithScore]:
        result = self._searcher.query(query, **self._options)
        if result.refused:
            return []
        out = []
        for h in result.hits:
            meta = hit_metadata(h, result)
            hidden = [k for k in meta if k not in _PROMPT_KEYS]
            node = TextNode(
                id_=h.content_id,
                text=h.text,
                metadata=meta,
                excluded_llm_metadata_keys=hidden,
                excluded_embed_metadata_keys=hidden,
            )
            out.append(NodeWithScore(node=node, score=h.score))
        return out

    def _retrieve(self, query_bundle: QueryBundle) -> List[NodeWithScore]:
        return self._nodes(query_bundle.query_str)

    async def _aretrieve(self, query_bundle: QueryBundle) -> List[NodeWithScore]:
        return await asyncio.to_thread(self._nodes, query_bundle.query_str)
