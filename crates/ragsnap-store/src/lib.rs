//! Snapshots, manifests, checksums, the SQLite catalog, promotion and rollback for ragsnap
