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
        refuse_stateful(engine).map_err(refuse)?;
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

    fn error(&self, message: String) -> SluiceError {
        SluiceError::Checkpoint {
            location: self.display.clone(),
            message: format!(
                "{message}; to start from scratch instead, remove or rename the checkpoint directory {}",
                self.display
            ),
        }
    }

    /// Restores every source from the last completed batch's manifest;
    /// `None` for a new checkpoint. A source must be the one the checkpoint
    /// knew (same connector and options); one the script no longer has is
    /// noted in the log; a new one starts fresh.
    pub async fn resume(&self, engine: &Engine) -> Result<Option<Resume>> {
        let Some(manifest) = self.manifests.latest().await? else {
            return Ok(None);
        };
        if manifest.fingerprint != self.fingerprint {
            return Err(self.error("it was written by a job with other stateful streams".into()));
        }
        let interval = i64::try_from(engine.batch_interval.as_millis()).unwrap_or(i64::MAX);
        if interval <= 0 || manifest.batch_time.rem_euclid(interval) != 0 {
            return Err(self.error(format!(
                "its last batch, {} ms, is not on this job's batch interval ({} ms): the interval changed",
                manifest.batch_time, interval
            )));
        }
        for (name, entry) in &manifest.sources {
            let Some(s) = engine.sources.iter().find(|s| &s.name == name) else {
                log::warn!(
                    "checkpoint {}: source '{name}' is no longer in the job; its position is dropped",
                    self.display
                );
                continue;
            };
            let (connector, options) = (&entry["connector"], &entry["options"]);
            if connector.as_str() != Some(s.connector.as_str())
                || options.as_str() != Some(s.options.as_str())
            {
                return Err(self.error(format!(
                    "source '{name}' was {} WITH ({}) and is now {} WITH ({}); its position does not apply",
                    connector.as_str().unwrap_or("?"),
                    options.as_str().unwrap_or("?"),
                    s.connector,
                    s.options
                )));
            }
            s.source
                .lock()
                .await
                .restore(&entry["position"])
                .map_err(|e| self.error(e.message()))?;
        }
        Ok(Some(Resume {
            batch_time: manifest.batch_time,
            batches: manifest.batches,
        }))
    }

    /// What the manifest says of each source: its connector, options and
    /// position after the batch. Refuses what was added while the job runs
    /// that a checkpoint cannot resume.
    pub fn entries(
        &self,
        engine: &Engine,
        positions: &[(String, Option<serde_json::Value>)],
    ) -> Result<BTreeMap<String, serde_json::Value>> {
        refuse_stateful(engine).map_err(|m| self.error(m))?;
        let mut out = BTreeMap::new();
        for (name, position) in positions {
            // Dropped since the cut: nothing to resume.
            let Some(s) = engine.sources.iter().find(|s| &s.name == name) else {
                continue;
            };
            let Some(position) = position else {
                return Err(self.error(format!(
                    "source '{}' ({}) cannot resume from a checkpoint yet: what it received would be lost on a restart",
                    s.name, s.connector
                )));
            };
            out.insert(
                s.name.clone(),
                serde_json::json!({
                    "connector": s.connector,
                    "options": s.options,
                    "position": position,
                }),
            );
        }
        Ok(out)
    }

    /// Commits batch `batch_time`, the `batches`-th since the stream's first,
    /// with the sources' positions after it.
    pub async fn commit(
        &self,
        batch_time: i64,
        batches: u64,
        sources: BTreeMap<String, serde_json::Value>,
    ) -> Result<()> {
        let mut manifest = Manifest::new(self.fingerprint.clone(), batch_time, batches);
        manifest.sources = sources;
        self.manifests.commit(&manifest).await?;
        // Committed: a failed clean-up only leaves old files behind.
        if batches % CLEAN_EVERY == 0
            && let Err(e) = self.manifests.clean(KEEP_MANIFESTS).await
        {
            log::warn!("{e}; old checkpoint files are left for the next clean-up");
        }
        Ok(())
    }
}

/// Windows and `EMIT` streams: their state is not saved yet.
fn refuse_stateful(engine: &Engine) -> std::result::Result<(), String> {
    let stateful: Vec<&str> = engine
        .streams
        .iter()
        .filter(|s| s.stateful.is_some())
        .map(|s| s.name.as_str())
        .collect();
    if stateful.is_empty() {
        return Ok(());
    }
    Err(format!(
        "stream {} keeps state between batches (a window or EMIT), which checkpoints do not save yet; remove SET checkpoint to run it without one",
        stateful.join(", ")
    ))
}
