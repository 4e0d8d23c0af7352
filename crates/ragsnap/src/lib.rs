//! The ragsnap library: open a store and query it; the rebuild pipeline as an API
