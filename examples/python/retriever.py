"""Answer questions from a ragsnap store, or say plainly that it cannot.

    python examples/python/retriever.py ragsnap-store "how do I retry failed jobs?"
"""

import sys

import ragsnap

store, question = sys.argv[1], " ".join(sys.argv[2:]) or "how do I retry failed jobs?"
try:
    searcher = ragsnap.Searcher.open(store)  # verifies the snapshot and checks the model against it
except ragsnap.EmbeddingVersionMismatch as e:
    sys.exit(f"this store was built with another embedding model: {e}")

result = searcher.query(question, k=4)
if result.refused:
    print(f"No confident match in snapshot {result.snapshot_id} (best score {result.best_score}).")
    sys.exit(1)
for hit in result.hits:
    print(f"{hit.confidence:.2f}  {hit.url or hit.source_path}  {' > '.join(hit.header_path)}")
print(f"answered from snapshot {result.snapshot_id}")
