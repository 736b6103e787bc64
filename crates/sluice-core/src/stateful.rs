//! Streams that keep state from batch to batch — windows and keyed running
//! aggregates — behind one face for the engine: run a batch (maybe emitting
//! nothing), explain, measure.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::error::Result as DFResult;
use tokio::sync::Mutex;

use crate::plan::StreamPlan;
use crate::slot::SlotContents;
use crate::state::KeyedStream;
use crate::state::function::KeyedFunction;
use crate::window::WindowedStream;

/// A stream with state between batches.
pub enum StatefulStream {
    Window(WindowedStream),
    Keyed(KeyedStream),
    /// `map_with_state` / `update_state_by_key`: a Rust function per key.
    Function(Box<dyn KeyedFunction>),
    /// `state_snapshots()` of a `Function` stream: every key and its state,
    /// read after that stream ran (it is this stream's input).
    Snapshots {
        of: Arc<Mutex<StatefulStream>>,
        input: String,
        schema: SchemaRef,
    },
}

impl StatefulStream {
    /// The source or stream it reads.
    pub fn input(&self) -> &str {
        match self {
            Self::Window(w) => &w.spec.input,
            Self::Keyed(k) => &k.input,
            Self::Function(f) => f.input(),
            Self::Snapshots { input, .. } => input,
        }
    }

    /// The plan of its output (none for a Rust function's).
    pub fn plan(&self) -> Option<&StreamPlan> {
        match self {
            Self::Window(w) => Some(w.plan()),
            Self::Keyed(k) => Some(k.plan()),
            Self::Function(_) | Self::Snapshots { .. } => None,
        }
    }

    /// What it emits.
    pub fn schema(&self) -> arrow::datatypes::SchemaRef {
        match self {
            Self::Window(w) => w.plan().schema(),
            Self::Keyed(k) => k.schema(),
            Self::Function(f) => f.schema(),
            Self::Snapshots { schema, .. } => Arc::clone(schema),
        }
    }

    /// How often it emits.
    pub fn slide(&self, interval: Duration) -> Duration {
        match self {
            Self::Window(w) => w.spec.slide_or(interval),
            Self::Keyed(_) | Self::Function(_) | Self::Snapshots { .. } => interval,
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
            Self::Function(f) => f.run(t, input).map(Some),
            Self::Snapshots { of, .. } => match &*of.lock().await {
                Self::Function(f) => f.snapshot().map(|b| Some(vec![b])),
                _ => datafusion::common::internal_err!(
                    "state snapshots of a stream without a function"
                ),
            },
        }
    }

    /// `(item, detail)` rows for EXPLAIN.
    pub fn explain(&self, interval: Duration) -> Vec<(String, String)> {
        match self {
            Self::Window(w) => w.explain(interval),
            Self::Keyed(k) => k.explain(),
            Self::Function(f) => vec![(
                "state".into(),
                format!(
                    "{}: {} keys, at least {} bytes",
                    f.describe(),
                    f.keys(),
                    f.state_size()
                ),
            )],
            Self::Snapshots { input, .. } => vec![(
                "state".into(),
                format!("every key of '{input}' and its state, each batch (stateSnapshots)"),
            )],
        }
    }

    /// Bytes of state kept between batches.
    pub fn state_size(&self) -> usize {
        match self {
            Self::Window(w) => w.state_size(),
            Self::Keyed(k) => k.state_size(),
            Self::Function(f) => f.state_size(),
            Self::Snapshots { .. } => 0,
        }
    }
}
