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
use crate::window::stream::WindowInputs;

/// A stateful stream's share of a checkpoint commit.
pub enum StateChanges {
    /// A window's inputs since the last commit.
    Window(WindowInputs),
    /// Keyed state as a change batch; `full`: it replaces everything saved
    /// before, else it applies on top.
    Keyed { changes: RecordBatch, full: bool },
    /// Nothing to save.
    None,
}

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

    /// Keeps what a checkpoint will ask [`take_changes`](Self::take_changes) for.
    pub fn record_changes(&mut self) {
        match self {
            Self::Window(w) => w.record_inputs(),
            Self::Keyed(k) => k.record_changes(),
            Self::Function(_) | Self::Snapshots { .. } => {}
        }
    }

    /// What changed since the last call; `full`: the whole state where the
    /// stream can give deltas (a window's inputs are always deltas, a Rust
    /// function's state always whole).
    pub fn take_changes(&mut self, full: bool) -> DFResult<StateChanges> {
        Ok(match self {
            Self::Window(w) => StateChanges::Window(w.take_inputs()),
            Self::Keyed(k) => StateChanges::Keyed {
                changes: k.take_changes(full)?,
                full,
            },
            Self::Function(f) => StateChanges::Keyed {
                changes: f.saved_state()?,
                full: true,
            },
            Self::Snapshots { .. } => StateChanges::None,
        })
    }

    /// Its `initial_state` is still to be applied: no batch has run.
    pub fn seed_pending(&self) -> bool {
        match self {
            Self::Keyed(k) => k.seed_pending(),
            Self::Function(f) => f.seed_pending(),
            Self::Window(_) | Self::Snapshots { .. } => false,
        }
    }

    /// Rebuilds the state from saved parts, oldest first, each a batch time
    /// and its rows (a window's input, or a change batch). `last`: the last
    /// committed batch; `started`: the state was saved after the stream's
    /// first batch (its `initial_state` is in it).
    pub async fn restore(
        &mut self,
        parts: Vec<(i64, Vec<RecordBatch>)>,
        zero: i64,
        last: i64,
        interval: Duration,
        started: bool,
    ) -> DFResult<()> {
        match self {
            Self::Window(w) => w.replay(parts, zero, interval).await,
            Self::Keyed(k) => {
                let changes: Vec<RecordBatch> = parts.into_iter().flat_map(|(_, b)| b).collect();
                k.restore(&changes, last, started)
            }
            Self::Function(f) => {
                if let Some((_, batches)) = parts.last() {
                    for b in batches {
                        f.restore(b, last, started)?;
                    }
                }
                Ok(())
            }
            Self::Snapshots { .. } => Ok(()),
        }
    }

    /// What a checkpoint compares to know saved state fits this stream:
    /// `(what, description)`.
    pub fn signature(&self, interval: Duration) -> Vec<(&'static str, String)> {
        match self {
            Self::Window(w) => w.signature(interval),
            Self::Keyed(k) => k.signature(),
            Self::Function(f) => vec![
                ("function", f.describe()),
                ("state", crate::catalog::columns(&f.snapshot_schema())),
            ],
            Self::Snapshots { input, .. } => vec![("snapshots of", input.clone())],
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
