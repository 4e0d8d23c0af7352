//! HTML sanitising and header-aware Markdown chunking for ragsnap (bytes in, chunks out)
