//! The checkpoint manifest: one small JSON file per completed batch,
//! `manifest-<batch ms, 20 digits>.json`, written with one atomic put (a
//! local file goes to a temporary name and is renamed; S3 takes one PUT).
//! Data files (state snapshots, pending batches) are written first and named
//! in the manifest, so a manifest that exists is a commit: a crash before
//! its put leaves the previous batch as the last completed one.
//!
//! Reading takes the newest manifest. It must parse, be of a version this
//! sluice reads, and every data file it names must exist; otherwise the
//! error names the file and what is wrong, and the job does not start
//! (resuming from an older manifest would silently repeat output). Old
//! manifests, and data files no kept manifest names, are removed by
//! [`ManifestStore::clean`].
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use sluice_core::checkpoint::{Manifest, ManifestStore};
//! let store = ManifestStore::new(
//!     Arc::new(object_store::memory::InMemory::new()),
//!     object_store::path::Path::from("job"),
//!     "memory://job",
//! );
//! assert!(store.latest().await.unwrap().is_none(), "a new checkpoint");
//! let m = Manifest::new(2000, 2);
//! store.commit(&m).await.unwrap();
//! assert_eq!(store.latest().await.unwrap(), Some(m));
//! # });
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};

use crate::error::{Result, SluiceError};

/// The manifest format this sluice writes and the newest it reads.
pub const MANIFEST_VERSION: u32 = 1;

const PREFIX: &str = "manifest-";
const SUFFIX: &str = ".json";

/// What one completed batch commits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_VERSION`] when written.
    pub version: u32,
    /// The batch this manifest completes.
    pub batch_time: i64,
    /// Batches completed since the stream's first, this one included.
    pub batches: u64,
    /// The job's batch interval (0: not recorded).
    #[serde(default)]
    pub interval_ms: u64,
    /// Each source's position after this batch (what it reads next), as the
    /// source describes it.
    pub sources: BTreeMap<String, serde_json::Value>,
    /// Each stateful stream's saved state, by stream name.
    #[serde(default)]
    pub streams: BTreeMap<String, SavedState>,
    /// Data files this manifest needs, relative to the checkpoint directory.
    pub files: Vec<String>,
}

/// What a stateful stream saved: parts applied in order rebuild its state
/// (a window's inputs still in it; keyed state's last full snapshot and the
/// deltas since).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedState {
    /// What the state fits (key, aggregates, window, columns): a restart
    /// whose stream differs in any of these is refused.
    pub signature: BTreeMap<String, String>,
    pub parts: Vec<StatePart>,
    /// Saved after the stream's first batch: its `initial_state` is in the
    /// parts (else it is applied at the first batch after a restart).
    #[serde(default = "yes")]
    pub started: bool,
    /// The running stream the parts belong to (its address; not saved): a
    /// stream dropped and created again under the same name starts over.
    #[serde(skip)]
    pub owner: usize,
}

fn yes() -> bool {
    true
}

/// One saved file of a stream's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatePart {
    /// The batch it was written at.
    pub batch_time: i64,
    /// `input` (a window's input), `full` or `delta` (keyed state).
    pub kind: String,
    /// Relative to the checkpoint directory (Arrow IPC).
    pub file: String,
    pub rows: usize,
    pub bytes: usize,
}

impl Manifest {
    pub fn new(batch_time: i64, batches: u64) -> Self {
        Self {
            version: MANIFEST_VERSION,
            batch_time,
            batches,
            interval_ms: 0,
            sources: BTreeMap::new(),
            streams: BTreeMap::new(),
            files: Vec::new(),
        }
    }
}

/// The manifests of one checkpoint directory.
#[derive(Debug, Clone)]
pub struct ManifestStore {
    store: Arc<dyn ObjectStore>,
    dir: Path,
    /// The directory as the user wrote it, for messages.
    display: String,
    /// The directory on this machine, if local.
    local: Option<std::path::PathBuf>,
}

/// `manifest-<ms>.json` for `batch_time`; zero-padded so names sort as times.
pub fn manifest_name(batch_time: i64) -> String {
    format!("{PREFIX}{batch_time:020}{SUFFIX}")
}

/// The batch time a manifest's name carries.
fn manifest_time(name: &str) -> Option<i64> {
    let t = name
        .strip_prefix(PREFIX)?
        .strip_suffix(SUFFIX)?
        .parse()
        .ok()?;
    // Only names sluice writes: `manifest-1000.json` is someone else's.
    (manifest_name(t) == name).then_some(t)
}

/// Where data files live, under the checkpoint directory: cleaning looks
/// nowhere else, so a checkpoint beside other files never removes them.
pub const DATA_DIR: &str = "data";

impl ManifestStore {
    pub fn new(store: Arc<dyn ObjectStore>, dir: Path, display: impl Into<String>) -> Self {
        Self {
            store,
            dir,
            display: display.into(),
            local: None,
        }
    }

    /// The store of a resolved location (a local one also removes what a
    /// killed put left behind).
    pub fn at(location: crate::store::Location) -> Self {
        Self {
            store: location.store,
            dir: location.path,
            display: location.display,
            local: location.local,
        }
    }

    /// Puts a file of the checkpoint whole.
    async fn put(&self, relative: &str, body: Vec<u8>) -> object_store::Result<()> {
        let local = self.local.as_ref().map(|d| d.join(relative));
        crate::store::put_whole(
            self.store.as_ref(),
            &self.child(relative),
            local.as_deref(),
            body,
        )
        .await
    }

    /// A file of the checkpoint by its relative name (`data/1000.arrow`):
    /// one path segment per `/`.
    fn child(&self, relative: &str) -> Path {
        relative
            .split('/')
            .fold(self.dir.clone(), |path, part| path.join(part))
    }

    fn error(&self, message: String) -> SluiceError {
        SluiceError::Checkpoint {
            location: self.display.clone(),
            message,
        }
    }

    /// Commits `manifest`: one atomic put. Its data files must be written.
    pub async fn commit(&self, manifest: &Manifest) -> Result<()> {
        let body = serde_json::to_vec_pretty(manifest)
            .map_err(|e| self.error(format!("cannot encode the manifest: {e}")))?;
        let name = manifest_name(manifest.batch_time);
        self.put(&name, body)
            .await
            .map_err(|e| self.error(format!("cannot write {name}: {e}")))?;
        Ok(())
    }

    /// Flushes written files (relative names) and their directories to
    /// disk, for a local checkpoint (object stores are durable once a put
    /// returns).
    pub async fn sync(&self, relatives: Vec<String>) -> Result<()> {
        let Some(dir) = self.local.clone() else {
            return Ok(());
        };
        let synced = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let mut dirs = std::collections::BTreeSet::new();
            for r in &relatives {
                let path = dir.join(r);
                std::fs::File::open(&path)?.sync_all()?;
                if let Some(parent) = path.parent() {
                    dirs.insert(parent.to_path_buf());
                }
            }
            for d in dirs {
                std::fs::File::open(d)?.sync_all()?;
            }
            Ok(())
        })
        .await;
        match synced {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.error(format!("cannot flush to disk: {e}"))),
            Err(e) => Err(self.error(format!("cannot flush to disk: {e}"))),
        }
    }

    /// The batch times that have a manifest, oldest first.
    pub async fn times(&self) -> Result<Vec<i64>> {
        let listed = self
            .store
            .list_with_delimiter(Some(&self.dir))
            .await
            .map_err(|e| self.error(format!("cannot list: {e}")))?;
        let mut times: Vec<i64> = listed
            .objects
            .iter()
            .filter_map(|m| manifest_time(m.location.filename()?))
            .collect();
        times.sort_unstable();
        Ok(times)
    }

    /// The newest manifest, checked; `None` when the checkpoint has none.
    pub async fn latest(&self) -> Result<Option<Manifest>> {
        let Some(&time) = self.times().await?.last() else {
            return Ok(None);
        };
        let name = manifest_name(time);
        let fresh = format!(
            "to start from scratch instead, remove or rename the checkpoint directory {}",
            self.display
        );
        let bytes = self.read(&name).await?;
        let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
            self.error(format!(
                "{name} is damaged ({e}); it was not written by sluice, or was changed since; {fresh}"
            ))
        })?;
        if manifest.version > MANIFEST_VERSION {
            return Err(self.error(format!(
                "{name} is of format {}, written by a newer sluice (this one reads up to {MANIFEST_VERSION}); {fresh}",
                manifest.version
            )));
        }
        if manifest.batch_time != time {
            return Err(self.error(format!(
                "{name} says batch {} ms; it was renamed or copied; {fresh}",
                manifest.batch_time
            )));
        }
        for file in &manifest.files {
            let path = self.child(file);
            match self.store.head(&path).await {
                Ok(_) => {}
                Err(object_store::Error::NotFound { .. }) => {
                    return Err(self.error(format!(
                        "{name} needs {file}, which is missing (deleted?); resuming without it would repeat or lose output; {fresh}"
                    )));
                }
                Err(e) => return Err(self.error(format!("cannot check {file}: {e}"))),
            }
        }
        Ok(Some(manifest))
    }

    /// Keeps the newest `keep` manifests (at least one) and the data files
    /// (under [`DATA_DIR`]) they name; removes older manifests and other
    /// data files. Nothing else in the directory is touched. Returns how
    /// many objects were removed.
    pub async fn clean(&self, keep: usize) -> Result<usize> {
        let times = self.times().await?;
        let cut = times.len().saturating_sub(keep.max(1));
        let (old, kept) = times.split_at(cut);
        let mut needed = BTreeSet::new();
        for &t in kept {
            let name = manifest_name(t);
            let bytes = self.read(&name).await?;
            // A damaged kept manifest keeps everything: nothing is removed
            // on a guess.
            let Ok(m) = serde_json::from_slice::<Manifest>(&bytes) else {
                return Ok(0);
            };
            needed.extend(m.files);
        }
        let mut removed = 0;
        for &t in old {
            self.delete(&manifest_name(t)).await?;
            removed += 1;
        }
        // Data files: those under `data/` that no kept manifest names.
        let all: Vec<_> = self
            .store
            .list(Some(&self.child(DATA_DIR)))
            .try_collect()
            .await
            .map_err(|e| self.error(format!("cannot list: {e}")))?;
        let prefix = format!("{}/", self.dir);
        for meta in all {
            let Some(relative) = meta.location.as_ref().strip_prefix(&prefix) else {
                continue;
            };
            if needed.contains(relative) {
                continue;
            }
            self.delete(relative).await?;
            removed += 1;
        }
        Ok(removed)
    }

    /// Writes a data file of the checkpoint (one atomic put).
    pub async fn write(&self, relative: &str, body: Vec<u8>) -> Result<()> {
        self.put(relative, body)
            .await
            .map_err(|e| self.error(format!("cannot write {relative}: {e}")))?;
        Ok(())
    }

    /// The bytes of a file of the checkpoint.
    pub async fn read(&self, relative: &str) -> Result<bytes::Bytes> {
        let fail = |e: object_store::Error| self.error(format!("cannot read {relative}: {e}"));
        self.store
            .get(&self.child(relative))
            .await
            .map_err(fail)?
            .bytes()
            .await
            .map_err(fail)
    }

    async fn delete(&self, relative: &str) -> Result<()> {
        self.store
            .delete(&self.child(relative))
            .await
            .map_err(|e| self.error(format!("cannot remove {relative}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(store: Arc<dyn ObjectStore>) -> ManifestStore {
        ManifestStore::new(store, Path::from("ck"), "ck/")
    }

    async fn put(store: &Arc<dyn ObjectStore>, name: &str, body: &str) {
        store
            .put(&Path::from(format!("ck/{name}")), body.to_string().into())
            .await
            .unwrap();
    }

    fn with_files(t: i64, files: &[&str]) -> Manifest {
        let mut m = Manifest::new(t, (t / 1000) as u64);
        m.sources
            .insert("lines".into(), serde_json::json!({ "files_taken": 3 }));
        m.files = files.iter().map(|f| f.to_string()).collect();
        m
    }

    #[tokio::test]
    async fn the_newest_manifest_wins_and_clean_keeps_what_it_needs() {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let ck = on(Arc::clone(&store));
        for t in [1000, 2000, 10_000] {
            let file = format!("data/{t}.arrow");
            put(&store, &file, "state").await;
            ck.commit(&with_files(t, &[&file])).await.unwrap();
        }
        // 10000 sorts after 2000 as a time, not as text.
        assert_eq!(
            ck.latest().await.unwrap(),
            Some(with_files(10_000, &["data/10000.arrow"]))
        );
        put(
            &store,
            "data/orphan.arrow",
            "from a batch that never committed",
        )
        .await;
        // Files of others beside the checkpoint are never touched, even one
        // named almost like a manifest.
        put(&store, "notes.txt", "the user's").await;
        put(&store, "manifest-1000.json", "not sluice's").await;
        assert_eq!(ck.clean(2).await.unwrap(), 3);
        let left: Vec<String> = store
            .list(Some(&Path::from("ck")))
            .map_ok(|m| m.location.to_string())
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(
            left,
            [
                "ck/data/10000.arrow",
                "ck/data/2000.arrow",
                "ck/manifest-00000000000000002000.json",
                "ck/manifest-00000000000000010000.json",
                "ck/manifest-1000.json",
                "ck/notes.txt",
            ]
        );
    }

    #[tokio::test]
    async fn a_damaged_or_incomplete_checkpoint_is_refused_by_name() {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let ck = on(Arc::clone(&store));
        put(&store, "data/1000.arrow", "state").await;
        ck.commit(&with_files(1000, &["data/1000.arrow"]))
            .await
            .unwrap();

        // Truncated: half of a manifest.
        let whole = serde_json::to_string(&with_files(2000, &[])).unwrap();
        put(
            &store,
            "manifest-00000000000000002000.json",
            &whole[..whole.len() / 2],
        )
        .await;
        let err = ck.latest().await.unwrap_err().to_string();
        assert!(
            err.starts_with("checkpoint ck/: manifest-00000000000000002000.json is damaged (")
                && err.ends_with(
                    "; to start from scratch instead, remove or rename the checkpoint directory ck/"
                ),
            "{err}"
        );

        // A data file deleted under it.
        put(
            &store,
            "manifest-00000000000000002000.json",
            &serde_json::to_string(&with_files(2000, &["data/2000.arrow"])).unwrap(),
        )
        .await;
        let err = ck.latest().await.unwrap_err().to_string();
        assert!(
            err.contains(
                "manifest-00000000000000002000.json needs data/2000.arrow, which is missing"
            ),
            "{err}"
        );

        // From a newer sluice.
        let mut newer = with_files(3000, &[]);
        newer.version = MANIFEST_VERSION + 1;
        ck.commit(&newer).await.unwrap();
        let err = ck.latest().await.unwrap_err().to_string();
        assert!(err.contains("written by a newer sluice"), "{err}");

        // Renamed: the name and the content disagree.
        put(
            &store,
            "manifest-00000000000000004000.json",
            &serde_json::to_string(&with_files(1000, &[])).unwrap(),
        )
        .await;
        let err = ck.latest().await.unwrap_err().to_string();
        assert!(err.contains("says batch 1000 ms"), "{err}");

        // Cleaning never removes anything on a damaged kept manifest.
        put(&store, "manifest-00000000000000004000.json", "{").await;
        assert_eq!(ck.clean(1).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn commits_are_whole_files_on_a_local_disk() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> =
            Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        let ck = on(store);
        assert_eq!(ck.latest().await.unwrap(), None);
        ck.commit(&with_files(1000, &[])).await.unwrap();
        let names: Vec<String> = std::fs::read_dir(dir.path().join("ck"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(
            names,
            ["manifest-00000000000000001000.json"],
            "no temporary file left"
        );
        assert_eq!(ck.latest().await.unwrap(), Some(with_files(1000, &[])));
    }
}
