//! A long-lived reader that follows head: [`Reader::refresh`] picks up a promotion or a rollback
//! atomically. Queries already running keep the snapshot they started with (they hold an
//! `Arc<Searcher>`, and through it the snapshot's reader lease, so GC cannot delete it).

use crate::{Embedder, QueryOptions, QueryResult, Result, Searcher, Snapshot, Store};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// Follows a store's head. `Send + Sync`: share one between threads.
pub struct Reader {
    root: PathBuf,
    embedder: Arc<dyn Embedder>,
    current: RwLock<Arc<Searcher>>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader").field("root", &self.root).field("snapshot", &self.searcher().snapshot().id()).finish()
    }
}

fn open_searcher(root: &Path, embedder: &Arc<dyn Embedder>, id: Option<&str>) -> Result<Arc<Searcher>> {
    let store = Store::open_reader(root)?;
    let id = match id {
        Some(id) => id.to_string(),
        None => store.head()?.id,
    };
    let snapshot = Arc::new(Snapshot::open(&store, &id)?);
    Ok(Arc::new(Searcher::new(snapshot, embedder.clone())?))
}

impl Reader {
    /// Open the store's head read-only, checking `embedder` against it.
    pub fn open(root: &Path, embedder: Arc<dyn Embedder>) -> Result<Self> {
        let s = open_searcher(root, &embedder, None)?;
        Ok(Reader { root: root.to_path_buf(), embedder, current: RwLock::new(s) })
    }

    /// The searcher queries go to now. Hold it for a batch of queries that must all see one snapshot.
    pub fn searcher(&self) -> Arc<Searcher> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Id of the snapshot queries go to now.
    pub fn snapshot_id(&self) -> String {
        self.searcher().snapshot().id().to_string()
    }

    /// Query the current snapshot.
    pub fn query(&self, text: &str, opts: &QueryOptions) -> Result<QueryResult> {
        self.searcher().query(text, opts)
    }

    /// Switch to the store's current head if it moved. The new snapshot is opened and checked
    /// (checksums, fingerprint, canaries) before the switch; on any error the reader keeps
    /// serving the snapshot it had. Returns whether it switched.
    pub fn refresh(&self) -> Result<bool> {
        let head = Store::open_reader(&self.root)?.head()?.id;
        if head == self.snapshot_id() {
            return Ok(false);
        }
        let next = open_searcher(&self.root, &self.embedder, Some(&head))?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = next;
        Ok(true)
    }
}
