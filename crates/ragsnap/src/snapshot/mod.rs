//! The snapshot format's one owner in the library: [`write`] turns a finished build into a
//! staged snapshot folder and its manifest, [`read`] opens one for querying. Both take file
//! names, reader features and the index kind from the typed constants of
//! [`ragsnap_store::format`] and [`ragsnap_store::IndexKind`]; the byte layout of each artifact
//! is in `docs/format.md`.

pub(crate) mod read;
pub(crate) mod write;

pub use read::{load_check, open_head, open_store_writer, repair_store, verify_snapshot, Snapshot};
