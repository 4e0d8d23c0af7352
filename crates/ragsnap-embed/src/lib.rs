//! Pinned ONNX embedding models, canary checks and the embedding cache for ragsnap
