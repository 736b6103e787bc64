//! Streams that keep state from batch to batch — windows and keyed running
//! aggregates — behind one face for the engine: run a batch (maybe emitting
//! nothing), explain, measure.

use std::time::Duration;

use arrow::array::RecordBatch;
use datafusion::error::Result as DFResult;

use crate::plan::StreamPlan;
use crate::slot::SlotContents;
use crate::state::KeyedStream;
use crate::window::WindowedStream;

/// A stream with state between batches.
pub enum StatefulStream {
    Window(WindowedStream),
    Keyed(KeyedStream),
}

impl StatefulStream {
    /// The source or stream it reads.
    pub fn input(&self) -> &str {
        match self {
            Self::Window(w) => &w.spec.input,
            Self::Keyed(k) => &k.input,
        }
    }

    /// The plan of its output.
    pub fn plan(&self) -> &StreamPlan {
        match self {
            Self::Window(w) => w.plan(),
            Self::Keyed(k) => k.plan(),
        }
    }

    /// What it emits.
    pub fn schema(&self) -> arrow::datatypes::SchemaRef {
        match self {
            Self::Window(w) => w.plan().schema(),
            Self::Keyed(k) => k.schema(),
        }
    }

    /// How often it emits.
    pub fn slide(&self, interval: Duration) -> Duration {
        match self {
            Self::Window(w) => w.spec.slide_or(interval),
            Self::Keyed(_) => interval,
        }
    }

    /// Runs batch `t`, whose input the slot `input` holds; `None`: nothing
    /// emitted (a window between slides). `zero`: the first batch time minus
    /// the interval.
    pub async fn run(
        &mut self,
        t: i64,
        zero: i64,
        interval: Duration,
        input: &SlotContents,
    ) -> DFResult<Option<Vec<RecordBatch>>> {
        match self {
            Self::Window(w) => w.run(t, zero, interval, input).await,
            Self::Keyed(k) => k.run(t, input.rows).await.map(Some),
        }
    }

    /// `(item, detail)` rows for EXPLAIN.
    pub fn explain(&self, interval: Duration) -> Vec<(String, String)> {
        match self {
            Self::Window(w) => w.explain(interval),
            Self::Keyed(k) => k.explain(),
        }
    }

    /// Bytes of state kept between batches.
    pub fn state_size(&self) -> usize {
        match self {
            Self::Window(w) => w.state_size(),
            Self::Keyed(k) => k.state_size(),
        }
    }
}
