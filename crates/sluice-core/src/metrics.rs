//! Per-batch facts, as Spark's `BatchInfo`: when the batch was cut, when it
//! ran, how long it waited and ran, how many rows came in and went out.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;

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

/// The last batches' infos and a count of completed batches to wait on.
#[derive(Debug)]
pub struct Metrics {
    recent: Mutex<VecDeque<BatchInfo>>,
    completed: watch::Sender<u64>,
    keep: usize,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            recent: Mutex::default(),
            completed: watch::Sender::new(0),
            keep: 1000,
        }
    }
}

impl Metrics {
    pub fn record(&self, info: BatchInfo) {
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

    pub fn completed(&self) -> u64 {
        *self.completed.borrow()
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.completed.subscribe()
    }
}
