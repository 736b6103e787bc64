//! Where the directory source reads, the file sinks write and checkpoints
//! are kept: a local path or an object_store URL: `file://`, `memory://`,
//! `s3://bucket/...`, or any store registered in the DataFusion session's
//! runtime.
//!
//! An `s3://` bucket not yet registered is opened from the usual AWS
//! environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_REGION` / `AWS_DEFAULT_REGION`, `AWS_ENDPOINT` or `AWS_ENDPOINT_URL`
//! for an S3-compatible server such as MinIO, `AWS_ALLOW_HTTP=true` for one
//! without TLS), then kept in the session, so `CREATE EXTERNAL TABLE ...
//! LOCATION 's3://...'` reads it too.

use std::sync::Arc;

use crate::at_once::map_at_once;
use crate::error::{Result, SluiceError};
use bytes::Bytes;
use datafusion::error::{DataFusionError, Result as DFResult};
use datafusion::execution::object_store::{
    DefaultObjectStoreRegistry, ObjectStoreRegistry, ObjectStoreUrl,
};
use datafusion::prelude::SessionContext;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

/// A store and a path in it.
#[derive(Debug, Clone)]
pub struct Location {
    pub store: Arc<dyn ObjectStore>,
    pub path: Path,
    /// As the user wrote it, for messages.
    pub display: String,
    /// The directory on this machine, for a local path or a `file://` URL
    /// (the directory source lists it without object_store's stat per file).
    pub local: Option<std::path::PathBuf>,
}

/// Resolves `location` (a local path, relative to the working directory, or a URL).
/// A `memory://` store is created in the session the first time it is named,
/// so later `CREATE EXTERNAL TABLE ... LOCATION 'memory://...'` reads it.
pub fn resolve(session: &SessionContext, location: &str) -> Result<Location> {
    let runtime = session.runtime_env();
    if let Some((scheme, _)) = location.split_once("://") {
        let url = url_parse(location)?;
        let store_url = ObjectStoreUrl::parse(format!("{}://{}", url.scheme(), url.authority()))?;
        let store = match runtime.object_store(&store_url) {
            Ok(s) => s,
            Err(_) if scheme == "memory" => {
                let s: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
                runtime.register_object_store(store_url.as_ref(), Arc::clone(&s));
                s
            }
            Err(_) if scheme == "s3" => {
                let s: Arc<dyn ObjectStore> = Arc::new(s3_from_env(url.authority(), location)?);
                runtime.register_object_store(store_url.as_ref(), Arc::clone(&s));
                s
            }
            Err(e) => {
                return Err(SluiceError::Config(format!(
                    "no object store for '{location}' ({}); register one in the session's runtime",
                    e.strip_backtrace()
                )));
            }
        };
        let path = Path::from_url_path(url.path())
            .map_err(|e| SluiceError::Config(format!("bad path in '{location}': {e}")))?;
        let local = (scheme == "file")
            .then(|| url.to_file_path().ok())
            .flatten();
        return Ok(Location {
            store,
            path,
            display: location.to_string(),
            local,
        });
    }
    let absolute = lexically_normal(&std::path::absolute(location)?);
    let path = Path::from_absolute_path(&absolute)
        .map_err(|e| SluiceError::Config(format!("bad path '{location}': {e}")))?;
    let store = runtime.object_store(ObjectStoreUrl::local_filesystem())?;
    Ok(Location {
        store,
        path,
        display: location.to_string(),
        local: Some(absolute),
    })
}

/// The bucket `bucket`, configured from the AWS environment variables.
fn s3_from_env(bucket: &str, location: &str) -> Result<AmazonS3> {
    AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .build().map_err(|e| {
        SluiceError::Config(format!(
            "cannot open the S3 bucket of '{location}': {e} (set AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, and AWS_ENDPOINT for a server other than AWS)"
        ))
    })
}

/// `a/b/../c` as `a/c`, without touching the disk (the directory may not
/// exist yet): object_store paths have no `..`.
fn lexically_normal(path: &std::path::Path) -> std::path::PathBuf {
    use std::path::Component;
    let mut out = std::path::PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// DataFusion's object store registry, but opening `s3://` buckets (from
/// the AWS environment) and `memory://` stores the first time a URL names
/// them, as datafusion-cli does: `CREATE EXTERNAL TABLE ... LOCATION
/// 's3://bucket/...'` works in a session with no source or sink on the
/// bucket yet. The `sluice` command's session uses it.
///
/// ```
/// use std::sync::Arc;
/// use datafusion::execution::runtime_env::RuntimeEnvBuilder;
/// use datafusion::prelude::{SessionConfig, SessionContext};
/// let runtime = RuntimeEnvBuilder::new()
///     .with_object_store_registry(Arc::new(sluice_core::store::OpeningObjectStores::default()))
///     .build_arc()
///     .unwrap();
/// let ctx = SessionContext::new_with_config_rt(SessionConfig::new(), runtime);
/// let url = datafusion::execution::object_store::ObjectStoreUrl::parse("memory://scratch").unwrap();
/// assert!(ctx.runtime_env().object_store(&url).is_ok());
/// ```
#[derive(Debug, Default)]
pub struct OpeningObjectStores {
    known: DefaultObjectStoreRegistry,
    /// One opening at a time, so two callers never get two stores for one URL.
    opening: std::sync::Mutex<()>,
}

impl ObjectStoreRegistry for OpeningObjectStores {
    fn register_store(
        &self,
        url: &url::Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.known.register_store(url, store)
    }

    fn deregister_store(&self, url: &url::Url) -> DFResult<Arc<dyn ObjectStore>> {
        self.known.deregister_store(url)
    }

    fn get_store(&self, url: &url::Url) -> DFResult<Arc<dyn ObjectStore>> {
        if let Ok(store) = self.known.get_store(url) {
            return Ok(store);
        }
        let _one = self
            .opening
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Ok(store) = self.known.get_store(url) {
            return Ok(store);
        }
        let store: Arc<dyn ObjectStore> = match url.scheme() {
            "s3" => Arc::new(
                s3_from_env(url.authority(), url.as_str())
                    .map_err(|e| DataFusionError::Execution(e.to_string()))?,
            ),
            "memory" => Arc::new(InMemory::new()),
            _ => return self.known.get_store(url),
        };
        self.known.register_store(url, Arc::clone(&store));
        Ok(store)
    }
}

fn url_parse(s: &str) -> Result<url::Url> {
    url::Url::parse(s).map_err(|e| SluiceError::Config(format!("'{s}' is not a valid URL: {e}")))
}

impl Location {
    /// A path under this one (`a/b`: one segment per `/`).
    pub fn child(&self, name: &str) -> Path {
        name.split('/')
            .fold(self.path.clone(), |path, part| path.join(part))
    }

    /// Writes the file `name` under this location whole ([`put_whole`]).
    pub async fn put_whole(
        &self,
        name: &str,
        body: impl Into<PutPayload>,
    ) -> object_store::Result<()> {
        let local = self.local.as_ref().map(|d| d.join(name));
        put_whole(
            self.store.as_ref(),
            &self.child(name),
            local.as_deref(),
            body,
        )
        .await
    }
}

impl Location {
    /// Makes this location a directory holding `files` `(name, body)`, each
    /// written whole ([`put_whole`]): the non-empty files first, then the
    /// empty ones (markers such as `_SUCCESS`), in order. Anything else an
    /// earlier write left in the directory (a rerun's part that this write
    /// has not, a killed put's staging file) is removed first.
    ///
    /// On this machine as object_store's local put does each file (staging
    /// file `name#1`, then a rename), but all in one go rather than a thread
    /// hop per file, and for up to [`INLINE_WRITE_BYTES`] on the task's own
    /// thread: what a small batch's write costs is mostly those hops and file
    /// operations. An empty file is made in place (it is whole as soon as it
    /// exists), and a directory made by this write is not searched for
    /// leftovers. The non-empty files are written at once, each on a thread
    /// of its own: a large write is mostly copying into the page cache,
    /// which then runs on as many cores as there are files.
    pub async fn put_dir_whole(&self, files: Vec<(String, Bytes)>) -> object_store::Result<()> {
        let Some(dir) = &self.local else {
            self.remove_others(&files).await?;
            for (name, body) in files {
                self.put_whole(&name, body).await?;
            }
            return Ok(());
        };
        let inline = files.iter().map(|(_, body)| body.len()).sum::<usize>() <= INLINE_WRITE_BYTES;
        let dir = dir.clone();
        let write = move || -> std::io::Result<()> {
            if !make_dir(&dir).map_err(|e| naming(&dir, e))? {
                remove_others_local(&dir, &files)?;
            }
            let (bodies, markers): (Vec<_>, Vec<_>) =
                files.into_iter().partition(|(_, body)| !body.is_empty());
            let bodies: Vec<_> = bodies
                .into_iter()
                .map(|(name, body)| (dir.join(name), body))
                .collect();
            write_all_at_once(&bodies)?;
            for (name, _) in markers {
                let file = dir.join(name);
                std::fs::write(&file, b"").map_err(|e| naming(&file, e))?;
            }
            Ok(())
        };
        let written = if inline {
            Ok(write())
        } else {
            tokio::task::spawn_blocking(write).await
        };
        match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(object_store::Error::Generic {
                store: "LocalFileSystem",
                source: Box::new(e),
            }),
            Err(e) => Err(object_store::Error::JoinError { source: e }),
        }
    }

    /// Removes the objects directly under this location not named in `files`.
    async fn remove_others(&self, files: &[(String, Bytes)]) -> object_store::Result<()> {
        let listed = self.store.list_with_delimiter(Some(&self.path)).await?;
        for object in listed.objects {
            let name = object.location.filename().unwrap_or_default();
            if !files.iter().any(|(keep, _)| keep == name) {
                self.store.delete(&object.location).await?;
            }
        }
        Ok(())
    }
}

/// Removes the files in `dir` not named in `files` (subdirectories are left).
fn remove_others_local(dir: &std::path::Path, files: &[(String, Bytes)]) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| naming(dir, e))? {
        let entry = entry.map_err(|e| naming(dir, e))?;
        let name = entry.file_name();
        let kept = files
            .iter()
            .any(|(keep, _)| name.as_os_str() == keep.as_str());
        if kept || entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        match std::fs::remove_file(entry.path()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(naming(&entry.path(), e));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Writes each of `files` whole ([`write_local_whole`]), at once
/// ([`map_at_once`]); the first failure.
fn write_all_at_once(files: &[(std::path::PathBuf, Bytes)]) -> std::io::Result<()> {
    map_at_once(files, |(file, body)| write_local_whole(file, body))
        .into_iter()
        .map(|written| {
            written
                .unwrap_or_else(|_| Err(std::io::Error::other("a file's writing thread panicked")))
        })
        .collect()
}

/// Makes `dir` (and its parents) if it is missing; whether it was made now,
/// so that nothing of an earlier write can be in it.
fn make_dir(dir: &std::path::Path) -> std::io::Result<bool> {
    let made = match std::fs::create_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::create_dir(dir)
        }
        made => made,
    };
    match made {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// `file` written whole: `body` into the staging file `file#1` (a leftover
/// of a killed put is overwritten), renamed over `file`. The other
/// leftovers are the caller's to remove ([`Location::put_dir_whole`] does
/// before it writes).
fn write_local_whole(file: &std::path::Path, body: &[u8]) -> std::io::Result<()> {
    let mut staged = file.as_os_str().to_owned();
    staged.push("#1");
    let written = std::fs::write(&staged, body).and_then(|()| std::fs::rename(&staged, file));
    if written.is_err() {
        let _ = std::fs::remove_file(&staged);
    }
    written.map_err(|e| naming(file, e))
}

/// `e`, saying which file.
fn naming(file: &std::path::Path, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("{}: {e}", file.display()))
}

/// Removes `file#from`, `file#<from + 1>`, ... up to the first missing.
fn remove_leftovers(file: &std::path::Path, from: u32) {
    for n in from..=STAGING_LEFTOVERS {
        let mut staged = file.as_os_str().to_owned();
        staged.push(format!("#{n}"));
        if std::fs::remove_file(&staged).is_err() {
            break;
        }
    }
}

/// Writes `path` whole, in one put: a reader sees the old file or the new
/// one. A local put (`local`: the file on this machine) goes through
/// object_store's staging file `name#<n>`, which a process killed mid-put
/// leaves behind; the ones a replayed write finds are removed.
pub async fn put_whole(
    store: &dyn ObjectStore,
    path: &Path,
    local: Option<&std::path::Path>,
    body: impl Into<PutPayload>,
) -> object_store::Result<()> {
    store.put(path, body.into()).await?;
    if let Some(file) = local {
        // One kill leaves #1; a put that found it staged as #2, ...
        remove_leftovers(file, 1);
    }
    Ok(())
}

/// Files up to this size in all are written on the task's own thread.
const INLINE_WRITE_BYTES: usize = 64 * 1024;

/// How many of a file's leftover staging files a put removes at most.
const STAGING_LEFTOVERS: u32 = 8;

#[cfg(test)]
mod tests {
    use super::*;

    /// `(name, body)` pairs as `put_dir_whole` takes them.
    fn files(pairs: &[(&str, &str)]) -> Vec<(String, Bytes)> {
        pairs
            .iter()
            .map(|(name, body)| (name.to_string(), Bytes::from(body.to_string())))
            .collect()
    }

    /// Local files written whole in one task: made with their directory,
    /// overwritten on a rerun, anything else in the directory (a killed
    /// put's staging files, a part the rerun has not) gone, large parts
    /// written at once; a failure names the path.
    #[tokio::test]
    async fn local_files_are_written_whole_and_leftovers_removed() {
        let tmp = std::env::temp_dir().join(format!("sluice-put-all-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let session = SessionContext::new();
        let dir = tmp.join("out-1000");
        let at = resolve(&session, dir.to_str().unwrap()).unwrap();
        let names = || {
            let mut names: Vec<String> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        // Over INLINE_WRITE_BYTES: the parts on threads of their own.
        let big = |c: char| c.to_string().repeat(INLINE_WRITE_BYTES);
        let (a, b) = (big('a'), big('b'));
        at.put_dir_whole(files(&[
            ("part-00000", &a),
            ("part-00001", &b),
            ("_SUCCESS", ""),
        ]))
        .await
        .unwrap();
        assert_eq!(names(), ["_SUCCESS", "part-00000", "part-00001"]);
        assert_eq!(std::fs::read_to_string(dir.join("part-00000")).unwrap(), a);
        assert_eq!(std::fs::read_to_string(dir.join("part-00001")).unwrap(), b);
        // A kill mid-put left staging files behind; the rerun, with one part
        // where there were two, cleans them and the second part.
        for n in 1..=3 {
            std::fs::write(dir.join(format!("part-00000#{n}")), b"half").unwrap();
        }
        std::fs::write(dir.join("_SUCCESS#1"), b"").unwrap();
        std::fs::create_dir(dir.join("kept")).unwrap();
        at.put_dir_whole(files(&[("part-00000", "b\n"), ("_SUCCESS", "")]))
            .await
            .unwrap();
        assert_eq!(names(), ["_SUCCESS", "kept", "part-00000"]);
        assert_eq!(std::fs::read(dir.join("part-00000")).unwrap(), b"b\n");
        // A file where the directory should be.
        let blocked = tmp.join("blocked");
        std::fs::write(&blocked, b"").unwrap();
        let at = resolve(&session, blocked.join("out-2000").to_str().unwrap()).unwrap();
        let e = at
            .put_dir_whole(files(&[("part-00000", "")]))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(blocked.join("out-2000").to_str().unwrap()),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&tmp);
    }

    /// In an object store, too, the directory ends up holding just the files.
    #[tokio::test]
    async fn store_directories_lose_parts_a_rerun_has_not() {
        let session = SessionContext::new();
        let at = resolve(&session, "memory://bucket/out-1000").unwrap();
        at.put_dir_whole(files(&[
            ("part-00000", "a\n"),
            ("part-00001", "b\n"),
            ("_SUCCESS", ""),
        ]))
        .await
        .unwrap();
        let listed = || async {
            let mut names: Vec<String> = at
                .store
                .list_with_delimiter(Some(&at.path))
                .await
                .unwrap()
                .objects
                .into_iter()
                .map(|o| o.location.filename().unwrap().to_string())
                .collect();
            names.sort();
            names
        };
        assert_eq!(listed().await, ["_SUCCESS", "part-00000", "part-00001"]);
        at.put_dir_whole(files(&[("part-00000", "c\n"), ("_SUCCESS", "")]))
            .await
            .unwrap();
        assert_eq!(listed().await, ["_SUCCESS", "part-00000"]);
        let body = at
            .store
            .get(&at.child("part-00000"))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(body.as_ref(), b"c\n");
    }

    #[test]
    fn local_paths_may_go_up_and_need_not_exist() {
        let session = SessionContext::new();
        let here = std::env::current_dir().unwrap();
        let at = resolve(&session, "../not-yet/./made").unwrap();
        let expected = here.parent().unwrap().join("not-yet/made");
        assert_eq!(
            at.path,
            Path::from_absolute_path(&expected).unwrap(),
            "{}",
            at.display
        );
    }
}
