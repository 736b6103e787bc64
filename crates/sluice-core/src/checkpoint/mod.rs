//! Checkpoints: what a job writes so that a restart resumes after its last
//! completed batch, with no gap and no duplicate.
//!
//! `SET checkpoint = '<path or URL>'` (or [`StreamingContext::checkpoint`])
//! makes the job commit a [`manifest`] after every batch that all its sinks
//! have written: the batch time, the count of batches since the stream's
//! first, and each source's position after it. A restarted job with the
//! same checkpoint restores its sources and goes on with the next batch
//! time: batch-named file sinks and the PostgreSQL sink with `key` then see
//! each batch's output exactly once; other sinks may see the batch that was
//! in progress at the crash twice.
//!
//! Being built in steps (issue 8). Not yet: state of windows and `EMIT`
//! streams (a job with them is refused), the socket source's write-ahead
//! log (refused), `sluice checkpoint inspect`.
//!
//! [`StreamingContext::checkpoint`]: crate::StreamingContext::checkpoint

pub mod manifest;

pub use manifest::{MANIFEST_VERSION, Manifest, ManifestStore};

use std::collections::BTreeMap;

use crate::engine::Engine;
use crate::error::{Result, SluiceError};
use crate::store::resolve;

/// Manifests kept (and the data files they name); older ones are removed
/// every [`CLEAN_EVERY`] batches.
pub const KEEP_MANIFESTS: usize = 10;
pub const CLEAN_EVERY: u64 = 10;

/// The checkpoint of one running job.
#[derive(Debug)]
pub struct Checkpointer {
    manifests: ManifestStore,
    display: String,
    fingerprint: String,
}

/// Where a restarted job goes on from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    /// The last completed batch.
    pub batch_time: i64,
    /// Batches completed since the stream's first.
    pub batches: u64,
}

impl Checkpointer {
    /// Opens the checkpoint at `location` for the job `engine` holds, which
    /// must be one a checkpoint can resume: every source reports a position,
    /// and (for now) no stream keeps state between batches.
    pub async fn open(engine: &Engine, location: &str) -> Result<Self> {
        let refuse = |message: String| SluiceError::Checkpoint {
            location: location.to_string(),
            message,
        };
        let stateful: Vec<&str> = engine
            .streams
            .iter()
            .filter(|s| s.stateful.is_some())
            .map(|s| s.name.as_str())
            .collect();
        if !stateful.is_empty() {
            return Err(refuse(format!(
                "stream {} keeps state between batches (a window or EMIT), which checkpoints do not save yet; remove SET checkpoint to run it without one",
                stateful.join(", ")
            )));
        }
        for s in &engine.sources {
            if s.source.lock().await.position().is_none() {
                return Err(refuse(format!(
                    "source '{}' ({}) cannot resume from a checkpoint yet: what it received would be lost on a restart",
                    s.name, s.connector
                )));
            }
        }
        let at = resolve(&engine.session, location)?;
        Ok(Self {
            manifests: ManifestStore::new(at.store, at.path, location),
            display: location.to_string(),
            fingerprint: String::new(),
        })
    }

    /// Restores every source from the last completed batch's manifest;
    /// `None` for a new checkpoint.
    pub async fn resume(&self, engine: &Engine) -> Result<Option<Resume>> {
        let Some(manifest) = self.manifests.latest().await? else {
            return Ok(None);
        };
        if manifest.fingerprint != self.fingerprint {
            return Err(SluiceError::Checkpoint {
                location: self.display.clone(),
                message: "it was written by a job with other stateful streams; remove or rename the checkpoint directory to start fresh".into(),
            });
        }
        for s in &engine.sources {
            if let Some(position) = manifest.sources.get(&s.name) {
                s.source
                    .lock()
                    .await
                    .restore(position)
                    .map_err(|e| SluiceError::Checkpoint {
                        location: self.display.clone(),
                        message: format!("source '{}': {}", s.name, e.message()),
                    })?;
            }
        }
        Ok(Some(Resume {
            batch_time: manifest.batch_time,
            batches: manifest.batches,
        }))
    }

    /// Commits batch `batch_time`, the `batches`-th since the stream's first,
    /// with the sources' positions after it.
    pub async fn commit(
        &self,
        batch_time: i64,
        batches: u64,
        positions: &[(String, serde_json::Value)],
    ) -> Result<()> {
        let mut manifest = Manifest::new(self.fingerprint.clone(), batch_time, batches);
        manifest.sources = positions.iter().cloned().collect::<BTreeMap<_, _>>();
        self.manifests.commit(&manifest).await?;
        if batches % CLEAN_EVERY == 0 {
            self.manifests.clean(KEEP_MANIFESTS).await?;
        }
        Ok(())
    }
}
