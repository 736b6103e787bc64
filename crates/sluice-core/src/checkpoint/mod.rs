//! Checkpoints: what a job writes so that a restart resumes after its last
//! completed batch, with no gap and no duplicate.
//!
//! `SET checkpoint = '<path or URL>'` (or [`StreamingContext::checkpoint`])
//! makes the job commit a [`manifest`] after every batch that all its sinks
//! have written: the batch time, the count of batches since the stream's
//! first, each source's position after it, and each stateful stream's saved
//! state ([`state`]: a window's inputs, keyed state as snapshots and deltas).
//! A restarted job with the same checkpoint restores its sources and
//! streams and goes on with the next batch time: batch-named file sinks and
//! the PostgreSQL sink with `key` then see each batch's output exactly
//! once; other sinks may see the batch that was in progress at the crash
//! twice.
//!
//! [`StreamingContext::checkpoint`]: crate::StreamingContext::checkpoint

pub mod inspect;
pub mod manifest;
pub mod state;

pub use manifest::{MANIFEST_VERSION, Manifest, ManifestStore, SavedState, StatePart};

use std::collections::BTreeMap;

use std::time::Duration;

use crate::engine::Engine;
use crate::error::{Result, SluiceError};
use crate::store::resolve;
use state::StreamStates;

/// Manifests kept (and the data files they name); older ones are removed
/// every [`CLEAN_EVERY`] batches.
pub const KEEP_MANIFESTS: usize = 10;
pub const CLEAN_EVERY: u64 = 10;
/// Where sources that keep a write-ahead log (the socket) keep it, under
/// the checkpoint directory.
pub const WAL_DIR: &str = "wal";

/// The checkpoint of one running job.
#[derive(Debug)]
pub struct Checkpointer {
    manifests: ManifestStore,
    display: String,
    streams: std::sync::Mutex<StreamStates>,
}

/// Where a restarted job goes on from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    /// The last completed batch.
    pub batch_time: i64,
    /// Batches completed since the stream's first.
    pub batches: u64,
}

impl Resume {
    /// The stream's first batch time minus the interval (windows count
    /// their slides from it).
    pub fn zero_time(&self, interval: Duration) -> i64 {
        let ms = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
        self.batch_time
            .saturating_sub(ms.saturating_mul(i64::try_from(self.batches).unwrap_or(i64::MAX)))
    }
}

impl Checkpointer {
    /// Opens the checkpoint at `location` for the job `engine` holds, which
    /// must be one a checkpoint can resume: every source reports a
    /// position. Stateful streams record their changes from now on (and
    /// those added later, from their start). `interval`: how often keyed
    /// state is saved whole (`checkpoint_interval`).
    pub async fn open(
        engine: &mut Engine,
        location: &str,
        interval: Option<Duration>,
    ) -> Result<Self> {
        let refuse = |message: String| SluiceError::Checkpoint {
            location: location.to_string(),
            message,
        };
        let at = resolve(&engine.session, location)?;
        engine
            .record_state(at.local.clone())
            .await
            .map_err(refuse)?;
        Ok(Self {
            manifests: ManifestStore::at(at),
            display: location.to_string(),
            streams: std::sync::Mutex::new(StreamStates {
                saved: BTreeMap::new(),
                snapshot_every: state::snapshot_every(interval, engine.batch_interval),
            }),
        })
    }

    fn streams(&self) -> std::sync::MutexGuard<'_, StreamStates> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
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

    /// Restores every source and stateful stream from the last completed
    /// batch's manifest; `None` for a new checkpoint. A source must be the
    /// one the checkpoint knew (same connector and options), a stateful
    /// stream must have the same key, aggregates, window and columns; one
    /// the script no longer has is noted in the log; a new one starts fresh.
    pub async fn resume(&self, engine: &Engine) -> Result<Option<Resume>> {
        let Some(manifest) = self.manifests.latest().await? else {
            return Ok(None);
        };
        let interval = i64::try_from(engine.batch_interval.as_millis()).unwrap_or(i64::MAX);
        if manifest.interval_ms != 0 && i64::try_from(manifest.interval_ms) != Ok(interval) {
            return Err(self.error(format!(
                "it was written with batches of {} ms, and this job's are {interval} ms: the interval changed",
                manifest.interval_ms
            )));
        }
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
        let resume = Resume {
            batch_time: manifest.batch_time,
            batches: manifest.batches,
        };
        self.resume_streams(engine, &manifest, resume.zero_time(engine.batch_interval))
            .await?;
        Ok(Some(resume))
    }

    /// Checks every saved stream against the script's, then rebuilds them.
    async fn resume_streams(&self, engine: &Engine, manifest: &Manifest, zero: i64) -> Result<()> {
        let mut kept = BTreeMap::new();
        for (name, saved) in &manifest.streams {
            let Some(now) = state::signature(engine, name).await else {
                log::warn!(
                    "checkpoint {}: stream '{name}' no longer keeps state in the job; its saved state is dropped",
                    self.display
                );
                continue;
            };
            if let Some(change) = state::difference(&saved.signature, &now) {
                return Err(self.error(format!(
                    "stream '{name}' keeps state, and {change}: its saved state does not apply"
                )));
            }
            kept.insert(name.clone(), saved.clone());
        }
        for (name, saved) in kept.iter_mut() {
            let read = |file: String| async move {
                self.manifests.read(&file).await.map_err(|e| e.message())
            };
            saved.owner = state::restore(engine, name, saved, zero, manifest.batch_time, read)
                .await
                .map_err(|m| self.error(m))?;
        }
        for s in &engine.streams {
            if s.stateful.is_some() && !kept.contains_key(&s.name) {
                log::info!(
                    "checkpoint {}: stream '{}' is new; its state starts empty",
                    self.display,
                    s.name
                );
            }
        }
        self.streams().saved = kept;
        Ok(())
    }

    /// What the manifest says of each source: its connector, options and
    /// position after the batch. Refuses what was added while the job runs
    /// that a checkpoint cannot resume.
    pub fn entries(
        &self,
        engine: &Engine,
        positions: &[(String, Option<serde_json::Value>)],
    ) -> Result<BTreeMap<String, serde_json::Value>> {
        let mut out = BTreeMap::new();
        for (name, position) in positions {
            // Dropped since the cut: nothing to resume.
            let Some(s) = engine.sources.iter().find(|s| &s.name == name) else {
                continue;
            };
            let Some(position) = position else {
                return Err(SluiceError::Checkpoint {
                    location: self.display.clone(),
                    message: format!(
                        "source '{}' ({}) gave no position to resume from",
                        s.name, s.connector
                    ),
                });
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
    /// with the sources' positions after it and what the stateful streams
    /// of `engine` changed: their files first, then the manifest.
    pub async fn commit(
        &self,
        engine: &Engine,
        batch_time: i64,
        batches: u64,
        sources: BTreeMap<String, serde_json::Value>,
    ) -> Result<()> {
        let collected = {
            let streams = std::mem::take(&mut *self.streams());
            let collected = streams.collect(engine, batch_time).await;
            *self.streams() = streams;
            collected
        };
        let (files, states) = collected.map_err(|message| SluiceError::Checkpoint {
            location: self.display.clone(),
            message: format!("batch {batch_time} ms: {message}"),
        })?;
        // A source that keeps a log drops what a commit covers: the commit
        // must then outlive a machine crash, not only the process's.
        let durable = engine.keeps_logs();
        let names: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
        futures::future::try_join_all(
            files
                .into_iter()
                .map(|(name, body)| async move { self.manifests.write(&name, body).await }),
        )
        .await?;
        if durable {
            self.manifests.sync(names).await?;
        }
        let mut manifest = Manifest::new(batch_time, batches);
        manifest.interval_ms = u64::try_from(engine.batch_interval.as_millis()).unwrap_or(u64::MAX);
        manifest.sources = sources;
        manifest.files = states
            .values()
            .flat_map(|s| s.parts.iter().map(|p| p.file.clone()))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        manifest.streams = states.clone();
        self.manifests.commit(&manifest).await?;
        if durable {
            self.manifests
                .sync(vec![manifest::manifest_name(batch_time)])
                .await?;
        }
        self.streams().committed(states);
        // Committed: a failed clean-up only leaves old files behind.
        if batches % CLEAN_EVERY == 0
            && let Err(e) = self.manifests.clean(KEEP_MANIFESTS).await
        {
            log::warn!("{e}; old checkpoint files are left for the next clean-up");
        }
        Ok(())
    }
}

/// Makes `source` one a checkpoint can resume: it reports a position, or
/// keeps a write-ahead log in the checkpoint directory `dir` (local only;
/// then `true`).
pub fn make_resumable(
    source: &mut dyn crate::source::Source,
    name: &str,
    connector: &str,
    dir: Option<&std::path::Path>,
) -> std::result::Result<bool, String> {
    if source.position().is_some() {
        return Ok(false);
    }
    let kept = match dir {
        Some(dir) => source
            .keep_log(&dir.join(WAL_DIR).join(state::directory_name(name)))
            .map_err(|e| e.message())?,
        None => false,
    };
    if kept {
        return Ok(true);
    }
    Err(format!(
        "source '{name}' ({connector}) cannot resume from a checkpoint{}: what it received would be lost on a restart; {}",
        if dir.is_none() {
            " kept in an object store"
        } else {
            ""
        },
        if dir.is_none() {
            "its write-ahead log needs a local checkpoint directory"
        } else {
            "remove SET checkpoint to run it without one"
        }
    ))
}
