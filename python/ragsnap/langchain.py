"""A LangChain retriever over a ragsnap snapshot (install the ``langchain`` extra).

``RagsnapRetriever`` returns one ``Document`` per hit, with every hit field (source path, URL,
header path, content id, cosine, lexical and fused scores, confidence...) and the snapshot id in
``metadata``. A refused query (nothing cleared the floors) returns ``[]``: the chain sees no
context instead of the nearest unrelated chunks. Typed errors (``ragsnap.EmbeddingVersionMismatch``
and the others) propagate.

    from ragsnap.langchain import RagsnapRetriever
    retriever = RagsnapRetriever.from_store("ragsnap-store", k=4)
    docs = retriever.invoke("how do I retry failed jobs?")
"""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List

from ragsnap._adapt import check_options, hit_metadata, missing_extra, open_searcher
from ragsnap._native import Searcher

try:
    from langchain_core.callbacks import (
        AsyncCallbackManagerForRetrieverRun,
        CallbackManagerForRetrieverRun,
    )
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever
    from pydantic import ConfigDict, Field
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise missing_extra("langchain-core", "langchain", e) from e

__all__ = ["RagsnapRetriever"]


class RagsnapRetriever(BaseRetriever):
    """LangChain ``BaseRetriever`` backed by a ``ragsnap.Searcher``.

    ``query_options`` are passed to ``Searcher.query`` (``k``, ``mode``, ``floor``,
    ``floor_percentile``, ``lexical_floor``, ``rrf_k``, ``ef``, ``max_per_source``, ``max_k``).
    The blocking query runs in a worker thread for ``ainvoke`` (the GIL is released while it
    embeds and searches), so one searcher serves concurrent async requests.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    searcher: Searcher
    query_options: Dict[str, Any] = Field(default_factory=dict)

    def __init__(self, searcher: Searcher, **kwargs: Any) -> None:
        options = dict(kwargs.pop("query_options", None) or {})
        for name in list(kwargs):
            if name not in type(self).model_fields:
                options[name] = kwargs.pop(name)
        super().__init__(searcher=searcher, query_options=check_options(options), **kwargs)

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

    def _documents(self, query: str) -> List[Document]:
        result = self.searcher.query(query, **self.query_options)
        if result.refused:
            return []
        return [
            Document(page_content=h.text, metadata=hit_metadata(h, result), id=h.content_id) for h in result.hits
        ]

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> List[Document]:
        return self._documents(query)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> List[Document]:
        return await asyncio.to_thread(self._documents, query)
