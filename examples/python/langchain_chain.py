"""A LangChain retrieval chain over a ragsnap store (pip install 'ragsnap[langchain]').

The retriever returns [] when ragsnap's floors refuse, so the prompt says "no context" instead of
carrying the nearest unrelated chunks. Swap `show` for `prompt | llm` to call a model.

    python examples/python/langchain_chain.py ragsnap-store "how do I retry failed jobs?"
"""

import sys

from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda, RunnablePassthrough

from ragsnap.langchain import RagsnapRetriever

retriever = RagsnapRetriever.from_store(sys.argv[1], k=4)


def context(docs):
    if not docs:
        return "(no context: the documentation has no confident match)"
    return "\n\n".join(f"[{d.metadata['source_path']}] {d.page_content}" for d in docs)


prompt = ChatPromptTemplate.from_template("Answer from the context only.\n\n{context}\n\nQuestion: {question}")
chain = {"context": retriever | RunnableLambda(context), "question": RunnablePassthrough()} | prompt
show = RunnableLambda(lambda p: print(p.to_string()))
(chain | show).invoke(" ".join(sys.argv[2:]) or "how do I retry failed jobs?")
