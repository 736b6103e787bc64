//! The JSON API: `/api/batches` (the recent batches, as Spark's `BatchInfo`)
//! and `/api/streams` (the graph).

use serde::Serialize;
use sluice_core::{BatchInfo, StreamingContext};

/// One batch. Times are milliseconds: the batch time and wall-clock times
/// since the Unix epoch, delays as durations.
#[derive(Debug, Serialize, PartialEq)]
pub struct Batch {
    pub batch_time: i64,
    /// Rows per source.
    pub input_rows: Vec<Count>,
    pub total_input_rows: usize,
    /// Rows per sink.
    pub output_rows: Vec<Count>,
    pub submission_time: i64,
    pub processing_start_time: i64,
    pub processing_end_time: i64,
    pub scheduling_delay_ms: f64,
    pub processing_time_ms: f64,
    pub total_delay_ms: f64,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Count {
    pub name: String,
    pub rows: usize,
}

/// `/api/batches`.
#[derive(Debug, Serialize)]
pub struct Batches {
    pub batch_interval_ms: u64,
    /// Batches completed since the job started.
    pub completed: u64,
    /// The most recent (up to 1,000), oldest first.
    pub batches: Vec<Batch>,
}

fn counts(rows: &[(String, usize)]) -> Vec<Count> {
    rows.iter()
        .map(|(name, rows)| Count {
            name: name.clone(),
            rows: *rows,
        })
        .collect()
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl From<&BatchInfo> for Batch {
    fn from(b: &BatchInfo) -> Self {
        Self {
            batch_time: b.batch_time,
            input_rows: counts(&b.input_rows),
            total_input_rows: b.total_input_rows(),
            output_rows: counts(&b.output_rows),
            submission_time: b.submission_time_ms,
            processing_start_time: b.processing_start_ms,
            processing_end_time: b.processing_end_ms,
            scheduling_delay_ms: ms(b.scheduling_delay),
            processing_time_ms: ms(b.processing_time),
            total_delay_ms: ms(b.total_delay()),
        }
    }
}

pub async fn batches(ssc: &StreamingContext) -> Batches {
    Batches {
        batch_interval_ms: ssc.batch_interval().await.as_millis() as u64,
        completed: ssc.completed_batches(),
        batches: ssc.batch_infos().iter().map(Batch::from).collect(),
    }
}

/// `/api/streams`: sources → streams → sinks.
#[derive(Debug, Serialize)]
pub struct Streams {
    pub sources: Vec<Node>,
    pub streams: Vec<Node>,
    pub sinks: Vec<Node>,
}

/// A node of the graph: what it is, what it reads.
#[derive(Debug, Serialize)]
pub struct Node {
    pub name: String,
    /// The connector of a source or sink; a stream's definition.
    pub detail: String,
    pub inputs: Vec<String>,
}

pub async fn streams(ssc: &StreamingContext) -> Streams {
    let g = ssc.graph().await;
    Streams {
        sources: g
            .sources
            .into_iter()
            .map(|(name, connector)| Node {
                name,
                detail: connector,
                inputs: Vec::new(),
            })
            .collect(),
        streams: g
            .streams
            .into_iter()
            .map(|(name, inputs, definition)| Node {
                name,
                detail: definition,
                inputs,
            })
            .collect(),
        sinks: g
            .sinks
            .into_iter()
            .map(|(name, from, connector)| Node {
                name,
                detail: connector,
                inputs: vec![from],
            })
            .collect(),
    }
}
