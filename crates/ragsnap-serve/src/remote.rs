//! Snapshots through object storage: `ragsnap publish`, `ragsnap pull`, `ragsnap serve --follow`.
//!
//! A remote is a URL (`s3://bucket/prefix`, or `file:///path` for a shared filesystem) read and
//! written through the `object_store` crate. Under its prefix:
//!
//! ```text
//! objects/<blake3>          every artifact file, named by the blake3 of its bytes (uploaded once)
//! manifests/<id>.json       each published snapshot's MANIFEST.json, byte for byte
//! heads/<seq>.json          the head log: {"seq", "snapshot_id", "manifest_blake3", ...}
//! ```
//!
//! The remote head is the head-log entry with the highest sequence number (20 digits, so names
//! sort as numbers). Publishing writes the artifacts, then the manifest, and only then the next
//! head-log entry, created with a create-if-absent write: of two publishers that read the same
//! head, one creates the entry and the other fails, and nothing is overwritten. A publish that
//! dies before its head entry leaves the head where it was; the next publish finds the
//! artifacts already there and does not upload them again. Rollback is publishing an older
//! snapshot: it becomes the newest entry.
//!
//! Pulling checks the manifest's blake3 against the head entry, every artifact's size and blake3
//! against the manifest, and only then registers the snapshot in the local store (with the
//! store's own load check) and moves the local head. A corrupted or truncated object stops the
//! pull before anything is registered.

use crate::ServeError;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use ragsnap::store::{ArtifactKind, Manifest, MANIFEST_FILE};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One entry of the remote head log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteHead {
    /// Position in the log (the highest is head).
    pub seq: u64,
    /// Snapshot id.
    pub snapshot_id: String,
    /// blake3 of the snapshot's `MANIFEST.json`.
    pub manifest_blake3: String,
    /// When it was published (Unix seconds).
    pub published_unix: u64,
}

/// What `publish` did.
#[derive(Clone, Debug, Serialize)]
pub struct PublishReport {
    /// Snapshot published.
    pub snapshot_id: String,
    /// Remote URL.
    pub remote: String,
    /// Artifacts uploaded now.
    pub uploaded: usize,
    /// Artifacts the remote already had.
    pub already_there: usize,
    /// Bytes uploaded (artifacts and manifest).
    pub bytes_uploaded: u64,
    /// Sequence number of the head entry written (`None` when the remote head already named
    /// this snapshot).
    pub head_seq: Option<u64>,
}

/// What `pull` did.
#[derive(Clone, Debug, Serialize)]
pub struct PullReport {
    /// The remote head's snapshot.
    pub snapshot_id: String,
    /// Remote URL.
    pub remote: String,
    /// Artifacts downloaded.
    pub downloaded: usize,
    /// Artifacts copied from snapshots the local store already had.
    pub reused: usize,
    /// Bytes downloaded.
    pub bytes_downloaded: u64,
    /// Whether the local head moved.
    pub head_moved: bool,
}

/// An object store and the prefix under it.
pub struct Remote {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    url: String,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote").field("url", &self.url).finish()
    }
}

fn remote_err(url: &str, e: impl std::fmt::Display) -> ServeError {
    ServeError::Remote { url: url.to_string(), message: e.to_string() }
}

/// Abort here when `RAGSNAP_FAILPOINT` names this point (the fault tests kill a real publish).
fn failpoint(name: &str) {
    if std::env::var_os("RAGSNAP_FAILPOINT").is_some_and(|v| v == name) {
        eprintln!("ragsnap: failpoint {name} reached; aborting");
        std::process::abort();
    }
}

impl Remote {
    /// Open `url`: `s3://bucket[/prefix]` (credentials, region and endpoint from the usual
    /// `AWS_*` environment variables; `AWS_ALLOW_HTTP=true` for a plain-HTTP endpoint) or
    /// `file:///absolute/folder` (created when missing only if `create`: a publisher makes it,
    /// a reader never does).
    pub fn open(url: &str, create: bool) -> Result<Remote, ServeError> {
        let parsed = url::Url::parse(url).map_err(|e| ServeError::Usage(format!("remote URL {url:?}: {e}")))?;
        let prefix = parsed.path().trim_matches('/').to_string();
        let store: Arc<dyn ObjectStore> = match parsed.scheme() {
            "s3" => {
                let bucket = parsed.host_str().unwrap_or("");
                if bucket.is_empty() {
                    return Err(ServeError::Usage(format!("remote URL {url:?} names no bucket")));
                }
                let s3 = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .build()
                    .map_err(|e| ServeError::Usage(format!("remote URL {url:?}: {e}")))?;
                Arc::new(s3)
            }
            "file" => {
                let dir = PathBuf::from(parsed.path());
                if !dir.is_absolute() {
                    return Err(ServeError::Usage(format!("remote URL {url:?}: the path must be absolute")));
                }
                if create {
                    std::fs::create_dir_all(&dir).map_err(|e| remote_err(url, format!("{}: {e}", dir.display())))?;
                } else if !dir.is_dir() {
                    return Err(remote_err(url, format!("{} is not a folder", dir.display())));
                }
                let fs = object_store::local::LocalFileSystem::new_with_prefix(&dir).map_err(|e| remote_err(url, e))?;
                return Ok(Remote { store: Arc::new(fs), prefix: String::new(), url: url.to_string() });
            }
            other => {
                return Err(ServeError::Usage(format!(
                    "remote URL {url:?}: scheme {other:?} is not supported (s3:// or file://)"
                )))
            }
        };
        Ok(Remote { store, prefix, url: url.to_string() })
    }

    /// The URL this remote was opened from.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn path(&self, rel: &str) -> ObjPath {
        if self.prefix.is_empty() {
            ObjPath::from(rel)
        } else {
            ObjPath::from(format!("{}/{rel}", self.prefix))
        }
    }

    async fn get(&self, rel: &str) -> Result<Option<Vec<u8>>, ServeError> {
        match self.store.get(&self.path(rel)).await {
            Ok(r) => Ok(Some(r.bytes().await.map_err(|e| remote_err(&self.url, e))?.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(remote_err(&self.url, e)),
        }
    }

    async fn exists(&self, rel: &str, size: u64) -> Result<bool, ServeError> {
        match self.store.head(&self.path(rel)).await {
            Ok(meta) => Ok(meta.size == size),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(remote_err(&self.url, e)),
        }
    }

    async fn put(&self, rel: &str, bytes: Vec<u8>) -> Result<(), ServeError> {
        self.store.put(&self.path(rel), PutPayload::from(bytes)).await.map_err(|e| remote_err(&self.url, e))?;
        Ok(())
    }

    /// The remote head (the newest head-log entry), if anything was published.
    pub async fn head(&self) -> Result<Option<RemoteHead>, ServeError> {
        let listed =
            self.store.list_with_delimiter(Some(&self.path("heads"))).await.map_err(|e| remote_err(&self.url, e))?;
        let newest = listed
            .objects
            .iter()
            .filter_map(|o| o.location.filename().map(str::to_string))
            .filter(|n| n.len() == 25 && n.ends_with(".json") && n[..20].bytes().all(|b| b.is_ascii_digit()))
            .max();
        let Some(name) = newest else { return Ok(None) };
        let rel = format!("heads/{name}");
        let bytes = self.get(&rel).await?.ok_or_else(|| remote_err(&self.url, format!("{rel} vanished")))?;
        let head: RemoteHead = serde_json::from_slice(&bytes).map_err(|e| ServeError::RemoteCorrupt {
            object: format!("{}/{rel}", self.url),
            message: format!("not a head entry: {e}"),
        })?;
        if format!("{:020}.json", head.seq) != name {
            return Err(ServeError::RemoteCorrupt {
                object: format!("{}/{rel}", self.url),
                message: format!("entry says seq {} but is named {name}", head.seq),
            });
        }
        Ok(Some(head))
    }
}

fn blake3_hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// Upload snapshot `id` (an id, `HEAD` or `HEAD~N`; `None` = the local head) of the store at
/// `root` to `remote` and make it the remote head.
pub async fn publish(root: &Path, id: Option<&str>, remote: &Remote) -> Result<PublishReport, ServeError> {
    let store = ragsnap::Store::open_reader(root)?;
    let id = store.resolve(id.unwrap_or("HEAD"))?;
    // Only a snapshot that verifies (checksums and a full load) leaves this store.
    let report = ragsnap::verify_snapshot(&store, &id)?;
    if !report.ok {
        let first = report.problems.first().map(|p| format!("{p:?}")).unwrap_or_default();
        return Err(ServeError::Library(ragsnap::Error::Store(ragsnap::store::StoreError::Refused(format!(
            "snapshot {id} does not verify ({} problems; first: {first}); run `ragsnap verify {id}`",
            report.problems.len()
        )))));
    }
    let dir = store.snapshot_dir(&id);
    let manifest_path = dir.join(MANIFEST_FILE);
    let manifest_bytes =
        std::fs::read(&manifest_path).map_err(|e| ragsnap::Error::Io { path: manifest_path.clone(), source: e })?;
    let manifest_blake3 = blake3_hex(&manifest_bytes);
    let record = store.catalog().get(&id).map_err(ragsnap::Error::from)?;
    if record.manifest_blake3 != manifest_blake3 {
        return Err(ServeError::Library(ragsnap::Error::Store(ragsnap::store::StoreError::Corrupt {
            path: manifest_path,
            expected: record.manifest_blake3,
            found: manifest_blake3,
        })));
    }
    let manifest = Manifest::parse(&manifest_path, &manifest_bytes).map_err(ragsnap::Error::from)?;
    let mut rep = PublishReport {
        snapshot_id: id.clone(),
        remote: remote.url.clone(),
        uploaded: 0,
        already_there: 0,
        bytes_uploaded: 0,
        head_seq: None,
    };
    for f in &manifest.files {
        let rel = format!("objects/{}", f.blake3);
        if remote.exists(&rel, f.size).await? {
            rep.already_there += 1;
            continue;
        }
        let path = dir.join(&f.name);
        let bytes = std::fs::read(&path).map_err(|e| ragsnap::Error::Io { path: path.clone(), source: e })?;
        let found = blake3_hex(&bytes);
        if found != f.blake3 || bytes.len() as u64 != f.size {
            return Err(ServeError::Library(ragsnap::Error::Store(ragsnap::store::StoreError::Corrupt {
                path,
                expected: f.blake3.clone(),
                found,
            })));
        }
        rep.bytes_uploaded += f.size;
        remote.put(&rel, bytes).await?;
        rep.uploaded += 1;
        failpoint("publish-after-object");
    }
    rep.bytes_uploaded += manifest_bytes.len() as u64;
    remote.put(&format!("manifests/{id}.json"), manifest_bytes).await?;
    failpoint("publish-before-head");
    let current = remote.head().await?;
    // The conflict test holds a publisher here, between reading the head and writing the next
    // entry, while another one publishes.
    if std::env::var_os("RAGSNAP_FAILPOINT").is_some_and(|v| v == "publish-pause-before-head") {
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    }
    if current.as_ref().is_some_and(|h| h.snapshot_id == id && h.manifest_blake3 == manifest_blake3) {
        return Ok(rep);
    }
    let seq = current.map_or(1, |h| h.seq + 1);
    let entry = RemoteHead {
        seq,
        snapshot_id: id.clone(),
        manifest_blake3,
        published_unix: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
    };
    let body = serde_json::to_vec_pretty(&entry).map_err(|e| ServeError::Internal(e.to_string()))?;
    let opts = PutOptions { mode: PutMode::Create, ..Default::default() };
    match remote.store.put_opts(&remote.path(&format!("heads/{seq:020}.json")), PutPayload::from(body), opts).await {
        Ok(_) => {}
        Err(object_store::Error::AlreadyExists { .. }) | Err(object_store::Error::Precondition { .. }) => {
            return Err(ServeError::RemoteConflict(format!(
                "another publisher moved the remote head of {} to entry {seq} first; nothing was overwritten \
                 (publish again to move it after theirs)",
                remote.url
            )))
        }
        Err(e) => return Err(remote_err(&remote.url, e)),
    }
    rep.head_seq = Some(seq);
    Ok(rep)
}

/// Bring the remote head into the store at `root` (created when absent) and make it the local
/// head. A snapshot built with another model than the local head's needs `allow_model_change`.
pub async fn pull(root: &Path, remote: &Remote, allow_model_change: bool) -> Result<PullReport, ServeError> {
    let head = remote
        .head()
        .await?
        .ok_or_else(|| remote_err(&remote.url, "nothing was published there (no head entry under heads/)"))?;
    let id = head.snapshot_id.clone();
    let mut rep = PullReport {
        snapshot_id: id.clone(),
        remote: remote.url.clone(),
        downloaded: 0,
        reused: 0,
        bytes_downloaded: 0,
        head_moved: false,
    };
    let mut store = ragsnap::open_store_writer(root)?;
    let local_head = store.head().ok();
    if let Ok(rec) = store.catalog().get(&id) {
        if rec.manifest_blake3 != head.manifest_blake3 {
            return Err(ServeError::RemoteCorrupt {
                object: format!("{}/heads/{:020}.json", remote.url, head.seq),
                message: format!(
                    "names snapshot {id} with manifest blake3 {}, but this store's snapshot {id} has {}",
                    head.manifest_blake3, rec.manifest_blake3
                ),
            });
        }
        if local_head.as_ref().is_some_and(|h| h.id == id) {
            return Ok(rep);
        }
        store
            .promote_with(
                &id,
                true,
                allow_model_change,
                &format!("pulled from {} (head entry {})", remote.url, head.seq),
            )
            .map_err(ragsnap::Error::from)?;
        rep.head_moved = true;
        return Ok(rep);
    }
    let rel = format!("manifests/{id}.json");
    let object = format!("{}/{rel}", remote.url);
    let manifest_bytes = remote
        .get(&rel)
        .await?
        .ok_or_else(|| ServeError::RemoteCorrupt { object: object.clone(), message: "missing".into() })?;
    let found = blake3_hex(&manifest_bytes);
    if found != head.manifest_blake3 {
        return Err(ServeError::RemoteCorrupt {
            object,
            message: format!("blake3 is {found}; the head entry records {}", head.manifest_blake3),
        });
    }
    let manifest = Manifest::parse(Path::new(&object), &manifest_bytes)
        .map_err(|e| ServeError::RemoteCorrupt { object: object.clone(), message: e.to_string() })?;
    if manifest.snapshot_id != id {
        return Err(ServeError::RemoteCorrupt {
            object,
            message: format!("the manifest is snapshot {}, the head entry says {id}", manifest.snapshot_id),
        });
    }
    if let Some(h) = &local_head {
        if h.fingerprint_id != manifest.fingerprint.id() && !allow_model_change {
            return Err(ServeError::Library(ragsnap::Error::Store(ragsnap::store::StoreError::Refused(format!(
                "the remote head {id} was built with embedding model {}, this store's head {} with {}; \
                 pass --allow-model-change to accept it",
                manifest.fingerprint.id(),
                h.id,
                h.fingerprint_id
            )))));
        }
    }
    // Files this store already has under the same blake3 are copied, not downloaded.
    let mut local: HashMap<String, PathBuf> = HashMap::new();
    for rec in store.catalog().list().map_err(ragsnap::Error::from)? {
        if rec.status == "collected" {
            continue;
        }
        let dir = store.snapshot_dir(&rec.id);
        let mpath = dir.join(MANIFEST_FILE);
        if let Some(m) = std::fs::read(&mpath).ok().and_then(|b| Manifest::parse(&mpath, &b).ok()) {
            for f in m.files {
                local.entry(f.blake3).or_insert_with(|| dir.join(&f.name));
            }
        }
    }
    let mut staging = store.stage_as(&id).map_err(ragsnap::Error::from)?;
    let mut entries = Vec::with_capacity(manifest.files.len());
    let outcome: Result<(), ServeError> = async {
        for f in &manifest.files {
            let rel = format!("objects/{}", f.blake3);
            let object = format!("{}/{rel}", remote.url);
            let reused = local.get(&f.blake3).and_then(|p| std::fs::read(p).ok()).filter(|b| blake3_hex(b) == f.blake3);
            let bytes = match reused {
                Some(b) => {
                    rep.reused += 1;
                    b
                }
                None => {
                    let b = remote
                        .get(&rel)
                        .await?
                        .ok_or_else(|| ServeError::RemoteCorrupt { object: object.clone(), message: "missing".into() })?;
                    rep.downloaded += 1;
                    rep.bytes_downloaded += b.len() as u64;
                    b
                }
            };
            if bytes.len() as u64 != f.size {
                return Err(ServeError::RemoteCorrupt {
                    object,
                    message: format!("{} bytes; the manifest records {} (truncated or replaced)", bytes.len(), f.size),
                });
            }
            let found = blake3_hex(&bytes);
            if found != f.blake3 {
                return Err(ServeError::RemoteCorrupt {
                    object,
                    message: format!("blake3 is {found}; the manifest records {}", f.blake3),
                });
            }
            let kind = ArtifactKind::from_name(&f.kind).ok_or_else(|| ServeError::RemoteCorrupt {
                object: object.clone(),
                message: format!("unknown artifact kind {:?}", f.kind),
            })?;
            let payload = ragsnap::store::artifact::unframe(Path::new(&object), kind, &bytes)
                .map_err(|e| ServeError::RemoteCorrupt { object: object.clone(), message: e.to_string() })?;
            let entry = staging.write_artifact(&f.name, kind, payload).map_err(ragsnap::Error::from)?;
            if entry != *f {
                return Err(ServeError::Internal(format!(
                    "artifact {} of snapshot {id} re-framed to a different file ({} vs {}): written by another format version",
                    f.name, entry.blake3, f.blake3
                )));
            }
            entries.push(entry);
        }
        let mut check = manifest.clone();
        check.files = entries.clone();
        let digest = blake3_hex(&check.to_bytes());
        if digest != head.manifest_blake3 {
            return Err(ServeError::Internal(format!(
                "the manifest of snapshot {id} does not re-serialise to the bytes published ({digest} vs {}); \
                 it was written by another version of ragsnap",
                head.manifest_blake3
            )));
        }
        Ok(())
    }
    .await;
    if let Err(e) = outcome {
        let _ = staging.abandon();
        return Err(e);
    }
    let digest = store
        .publish(staging, manifest, true, &format!("pulled from {} (head entry {})", remote.url, head.seq))
        .map_err(ragsnap::Error::from)?;
    debug_assert_eq!(digest, head.manifest_blake3);
    rep.head_moved = true;
    Ok(rep)
}

/// `serve --follow URL`: pull whenever the remote head moves; the service's own head watch then
/// switches to it.
pub(crate) async fn follow_remote(url: String, root: PathBuf, every: std::time::Duration, allow_model_change: bool) {
    let mut last: Option<(u64, String)> = None;
    let mut last_error: Option<String> = None;
    // After a failure (remote down, corrupt object) wait longer each time, up to a minute, so
    // that a broken head is not downloaded again twice a second.
    let mut delay = every;
    loop {
        tokio::time::sleep(delay).await;
        let (url2, root2) = (url.clone(), root.clone());
        let seen = last.clone();
        let r = tokio::task::spawn_blocking(move || -> Result<Option<(u64, String)>, ServeError> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| ServeError::Internal(e.to_string()))?;
            rt.block_on(async {
                let remote = Remote::open(&url2, false)?;
                let Some(h) = remote.head().await? else { return Ok(None) };
                if seen.as_ref().is_some_and(|(s, id)| *s == h.seq && *id == h.snapshot_id) {
                    return Ok(Some((h.seq, h.snapshot_id)));
                }
                let rep = pull(&root2, &remote, allow_model_change).await?;
                if rep.head_moved {
                    tracing::info!(snapshot = %rep.snapshot_id, downloaded = rep.downloaded, "pulled the remote head");
                }
                Ok(Some((h.seq, h.snapshot_id)))
            })
        })
        .await;
        let msg = match r {
            Ok(Ok(seen)) => {
                last = seen;
                None
            }
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(e.to_string()),
        };
        delay = if msg.is_some() { (delay * 2).min(std::time::Duration::from_secs(60)) } else { every };
        if msg != last_error {
            if let Some(m) = &msg {
                tracing::error!(remote = %url, error = %m, "cannot follow the remote head; serving what the store has");
            }
            last_error = msg;
        }
    }
}
