//! Per-batch facts, as Spark's `BatchInfo`: when the batch was cut, when it
//! ran, how long it waited and ran, how many rows came in and went out; and
//! [`StreamingListener`], Spark's `StreamingListener`, told as batches go.
//!
//! ```
//! use std::sync::Arc;
//! use sluice_core::metrics::{BatchInfo, StreamingListener};
//!
//! struct Slow;
//! impl StreamingListener for Slow {
//!     fn on_batch_completed(&self, info: &BatchInfo) {
//!         if info.total_delay().as_secs() > 1 {
//!             eprintln!("batch {} took {:?}", info.batch_time, info.total_delay());
//!         }
//!     }
//! }
//! // ssc.add_listener(Arc::new(Slow));
//! # let _ = Arc::new(Slow);
//! ```

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use crate::error::SluiceError;

/// Milliseconds since the Unix epoch, now (wall clock).
pub fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Told as batches go (Spark's `StreamingListener`). Calls come from the
/// job's tasks: keep them short.
pub trait StreamingListener: Send + Sync {
    /// Batch `batch_time` was cut from the sources and queued.
    fn on_batch_submitted(&self, _batch_time: i64) {}
    /// It started running.
    fn on_batch_started(&self, _batch_time: i64) {}
    /// It ran and its sinks were written.
    fn on_batch_completed(&self, _info: &BatchInfo) {}
    /// A source, stream or sink failed; the job stops.
    fn on_error(&self, _error: &SluiceError) {}
}

/// What happened to one batch.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchInfo {
    pub batch_time: i64,
    /// Rows each source handed over, by source name.
    pub input_rows: Vec<(String, usize)>,
    /// Rows each sink received, by sink name.
    pub output_rows: Vec<(String, usize)>,
    /// From being cut to starting to run (batches queue when processing falls behind).
    pub scheduling_delay: Duration,
    pub processing_time: Duration,
    /// How long the sources took to cut the batch (reading its input: a
    /// replay file, a Kafka fetch). The cut comes before submission, so this
    /// is in neither `scheduling_delay` nor `processing_time`; on a simulated
    /// clock the next batch is cut while this one runs.
    pub input_time: Duration,
    /// Wall-clock times (ms since the Unix epoch): cut from the sources
    /// (Spark's submission time), started, ended.
    pub submission_time_ms: i64,
    pub processing_start_ms: i64,
    pub processing_end_ms: i64,
}

impl BatchInfo {
    /// Scheduling delay plus processing time.
    pub fn total_delay(&self) -> Duration {
        self.scheduling_delay + self.processing_time
    }

    pub fn total_input_rows(&self) -> usize {
        self.input_rows.iter().map(|(_, n)| n).sum()
    }
}

/// Sums over every batch completed (the recent list keeps the last 1,000).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    pub batches: u64,
    /// Rows per source, by name, in order of first appearance.
    pub input_rows: Vec<(String, u64)>,
    /// Rows per sink.
    pub output_rows: Vec<(String, u64)>,
    pub scheduling_delay: Duration,
    pub processing_time: Duration,
}

fn add_rows(to: &mut Vec<(String, u64)>, rows: &[(String, usize)]) {
    for (name, n) in rows {
        match to.iter_mut().find(|(m, _)| m == name) {
            Some((_, total)) => *total += *n as u64,
            None => to.push((name.clone(), *n as u64)),
        }
    }
}

/// The last batches' infos, a count of completed batches to wait on, and
/// the listeners.
pub struct Metrics {
    totals: Mutex<Totals>,
    recent: Mutex<VecDeque<BatchInfo>>,
    completed: watch::Sender<u64>,
    keep: usize,
    listeners: Mutex<Vec<Arc<dyn StreamingListener>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("completed", &self.completed())
            .finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            totals: Mutex::default(),
            recent: Mutex::default(),
            completed: watch::Sender::new(0),
            keep: 1000,
            listeners: Mutex::default(),
        }
    }
}

impl Metrics {
    pub fn add_listener(&self, listener: Arc<dyn StreamingListener>) {
        self.listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(listener);
    }

    /// Calls `f` on each listener.
    pub fn tell(&self, f: impl Fn(&dyn StreamingListener)) {
        let listeners = self
            .listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for l in listeners {
            f(l.as_ref());
        }
    }

    pub fn record(&self, info: BatchInfo) {
        self.tell(|l| l.on_batch_completed(&info));
        {
            let mut t = self.totals.lock().unwrap_or_else(|e| e.into_inner());
            t.batches += 1;
            add_rows(&mut t.input_rows, &info.input_rows);
            add_rows(&mut t.output_rows, &info.output_rows);
            t.scheduling_delay += info.scheduling_delay;
            t.processing_time += info.processing_time;
        }
        let mut r = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if r.len() == self.keep {
            r.pop_front();
        }
        r.push_back(info);
        drop(r);
        self.completed.send_modify(|n| *n += 1);
    }

    /// The most recent batches, oldest first.
    pub fn recent(&self) -> Vec<BatchInfo> {
        self.recent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    pub fn totals(&self) -> Totals {
        self.totals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn completed(&self) -> u64 {
        *self.completed.borrow()
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.completed.subscribe()
    }
}
