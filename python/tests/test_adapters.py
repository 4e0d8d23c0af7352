"""The LangChain and LlamaIndex retrievers inside a minimal chain and query engine (no LLM)."""

import asyncio

from conftest import ANSWERED, OFF_TOPIC


def test_langchain_retriever_in_a_chain_and_async(built, searcher):
    from langchain_core.documents import Document
    from langchain_core.runnables import RunnableLambda, RunnablePassthrough

    from ragsnap.langchain import RagsnapRetriever

    retriever = RagsnapRetriever(searcher, k=3)
    context = retriever | RunnableLambda(lambda docs: "\n\n".join(d.page_content for d in docs))
    chain = {"context": context, "question": RunnablePassthrough()} | RunnableLambda(
        lambda x: f"Context:\n{x['context']}\n\nQuestion: {x['question']}"
    )
    prompt = chain.invoke(ANSWERED)
    assert "Question: " + ANSWERED in prompt and "Retries and dead letters" in prompt

    docs = retriever.invoke(ANSWERED)
    direct = searcher.query(ANSWERED, k=3)
    assert [d.id for d in docs] == [h.content_id for h in direct.hits]
    assert all(isinstance(d, Document) for d in docs)
    meta = docs[0].metadata
    assert meta["snapshot_id"] == built.second and meta["source_path"] == direct.hits[0].source_path
    assert {"cosine", "lexical", "fused", "confidence", "url", "header_path", "fingerprint_id"} <= set(meta)
    assert "text" not in meta
    assert retriever.invoke(OFF_TOPIC) == []

    async def both():
        return await asyncio.gather(retriever.ainvoke(ANSWERED), retriever.ainvoke(OFF_TOPIC))

    answered, refused = asyncio.run(both())
    assert [d.id for d in answered] == [d.id for d in docs] and refused == []


def test_langchain_retriever_refuses_unknown_options(searcher):
    import pytest

    from ragsnap.langchain import RagsnapRetriever

    with pytest.raises(TypeError, match="top_k"):
        RagsnapRetriever(searcher, top_k=3)


def test_llama_index_retriever_in_a_query_engine_without_an_llm(built, searcher):
    from llama_index.core import Settings
    from llama_index.core.llms import MockLLM
    from llama_index.core.query_engine import RetrieverQueryEngine
    from llama_index.core.schema import NodeWithScore

    from ragsnap.llama_index import RagsnapRetriever

    retriever = RagsnapRetriever(searcher, k=3)
    # "no_text" synthesises nothing: the engine's response is the retrieved nodes. Its
    # synthesiser still reads Settings.llm, whose default would be a hosted model: a mock.
    Settings.llm = MockLLM()
    engine = RetrieverQueryEngine.from_args(retriever, response_mode="no_text")
    response = engine.query(ANSWERED)
    nodes = response.source_nodes
    direct = searcher.query(ANSWERED, k=3)
    assert [n.node.node_id for n in nodes] == [h.content_id for h in direct.hits]
    assert all(isinstance(n, NodeWithScore) for n in nodes)
    assert nodes[0].score == direct.hits[0].score
    assert nodes[0].node.metadata["snapshot_id"] == built.second
    assert nodes[0].node.metadata["source_path"] == direct.hits[0].source_path
    assert "cosine" not in nodes[0].node.get_content(metadata_mode="llm")
    assert engine.query(OFF_TOPIC).source_nodes == []
    assert asyncio.run(retriever.aretrieve(OFF_TOPIC)) == []
    assert len(asyncio.run(retriever.aretrieve(ANSWERED))) == len(nodes)
