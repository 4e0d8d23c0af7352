//! HNSW and exact vector search with recall tuning for ragsnap
