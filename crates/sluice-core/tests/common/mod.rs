//! What the property tests share: random batches (keys and values with
//! nulls, floats with NaN, infinities and 1e17, empty batches), a user's
//! UDAF that can retract, collecting a stream's output, and comparing rows
//! with a tolerance for floats.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema, SchemaRef};
use arrow::util::display::array_value_to_string;
use datafusion::common::ScalarValue;
use datafusion::error::Result as DFResult;
use datafusion::logical_expr::{Accumulator, AggregateUDF, Volatility, create_udaf};
use rand::Rng;
use rand::rngs::StdRng;
use sluice_core::StreamingContext;

pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, true),
        Field::new("v", DataType::Int64, true),
        Field::new("f", DataType::Float64, true),
    ]))
}

pub fn random_batch(rng: &mut StdRng) -> RecordBatch {
    let rows = if rng.random_bool(0.2) {
        0
    } else {
        rng.random_range(1..=40)
    };
    let keys = rng.random_range(1..=6);
    let k: Int64Array = (0..rows)
        .map(|_| (!rng.random_bool(0.1)).then(|| rng.random_range(0..keys)))
        .collect();
    let v: Int64Array = (0..rows)
        .map(|_| (!rng.random_bool(0.15)).then(|| rng.random_range(-50..=50)))
        .collect();
    // Mostly eighths (exact sums), sometimes values that break a naive
    // running float sum: a huge one, NaN, infinities. (No query takes min or
    // max of f: DataFusion's float max with NaN depends on row order.)
    let f: Float64Array = (0..rows)
        .map(|_| {
            (!rng.random_bool(0.15)).then(|| match rng.random_range(0..100) {
                0 => 1e17,
                1 => f64::NAN,
                2 => f64::INFINITY,
                3 => f64::NEG_INFINITY,
                _ => rng.random_range(-1000..=1000) as f64 / 8.0,
            })
        })
        .collect();
    RecordBatch::try_new(schema(), vec![Arc::new(k), Arc::new(v), Arc::new(f)]).unwrap()
}

/// A user's aggregate that can retract: the sum of squares of an Int64.
#[derive(Debug, Default)]
pub struct SumSquares {
    total: i64,
}

impl Accumulator for SumSquares {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DFResult<()> {
        self.total += values[0]
            .as_primitive::<Int64Type>()
            .iter()
            .flatten()
            .map(|x| x * x)
            .sum::<i64>();
        Ok(())
    }
    fn retract_batch(&mut self, values: &[ArrayRef]) -> DFResult<()> {
        self.total -= values[0]
            .as_primitive::<Int64Type>()
            .iter()
            .flatten()
            .map(|x| x * x)
            .sum::<i64>();
        Ok(())
    }
    fn supports_retract_batch(&self) -> bool {
        true
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> DFResult<()> {
        self.total += states[0]
            .as_primitive::<Int64Type>()
            .iter()
            .flatten()
            .sum::<i64>();
        Ok(())
    }
    fn state(&mut self) -> DFResult<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::Int64(Some(self.total))])
    }
    fn evaluate(&mut self) -> DFResult<ScalarValue> {
        Ok(ScalarValue::Int64(Some(self.total)))
    }
    fn size(&self) -> usize {
        std::mem::size_of::<Self>()
    }
}

pub fn sum_squares() -> AggregateUDF {
    create_udaf(
        "sum_squares",
        vec![DataType::Int64],
        Arc::new(DataType::Int64),
        Volatility::Immutable,
        Arc::new(|_| Ok(Box::new(SumSquares::default()))),
        Arc::new(vec![DataType::Int64]),
    )
}

pub type Seen = Arc<Mutex<Vec<(i64, Vec<RecordBatch>)>>>;

/// What `stream` emits, batch by batch.
pub async fn collect(ssc: &StreamingContext, stream: &str) -> Seen {
    let seen: Seen = Arc::default();
    let sink = Arc::clone(&seen);
    ssc.foreach_batch(stream, move |t, b| {
        let sink = Arc::clone(&sink);
        async move {
            sink.lock().unwrap().push((t, b));
            Ok(())
        }
    })
    .await
    .unwrap();
    seen
}

/// A row as comparable cells: exact text, or a float compared with tolerance.
#[derive(Debug, Clone)]
pub enum Cell {
    Exact(String),
    Float(Option<f64>),
}

pub fn rows_of(batches: &[RecordBatch]) -> Vec<Vec<Cell>> {
    let mut rows = Vec::new();
    for b in batches {
        for r in 0..b.num_rows() {
            rows.push(
                b.columns()
                    .iter()
                    .map(|c| match c.data_type() {
                        DataType::Float64 => {
                            let a = c.as_primitive::<Float64Type>();
                            Cell::Float(a.is_valid(r).then(|| a.value(r)))
                        }
                        _ => Cell::Exact(array_value_to_string(c, r).unwrap()),
                    })
                    .collect(),
            );
        }
    }
    sort_rows(&mut rows);
    rows
}

/// Sorts rows as [`rows_of`] does: exact cells first, floats (which may
/// differ in the last bits) only to break ties between rows whose exact
/// cells are equal. For rows a model builds, to compare with `rows_of`.
pub fn sort_rows(rows: &mut [Vec<Cell>]) {
    let key = |row: &Vec<Cell>| -> (Vec<String>, Vec<String>) {
        let exact = row
            .iter()
            .map(|c| match c {
                Cell::Exact(s) => s.clone(),
                Cell::Float(_) => String::new(),
            })
            .collect();
        let floats = row
            .iter()
            .map(|c| match c {
                Cell::Float(f) => format!("{f:?}"),
                Cell::Exact(_) => String::new(),
            })
            .collect();
        (exact, floats)
    };
    rows.sort_by_key(key);
}

/// The number of random cases a property test runs: `$var`, else `default`.
pub fn seeds(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

pub fn same(a: &[Vec<Cell>], b: &[Vec<Cell>]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.len() == y.len()
                && x.iter().zip(y).all(|(p, q)| match (p, q) {
                    (Cell::Exact(p), Cell::Exact(q)) => p == q,
                    (Cell::Float(None), Cell::Float(None)) => true,
                    // Float aggregates summed in another order differ in the
                    // last bits; a standard deviation near 0 is the square
                    // root of such a difference (1e-12 → 1e-6).
                    (Cell::Float(Some(p)), Cell::Float(Some(q))) => {
                        p == q
                            || (p.is_nan() && q.is_nan())
                            || (p - q).abs() <= 1e-5 + 1e-9 * p.abs().max(q.abs())
                    }
                    _ => false,
                })
        })
}

/// A context on a manual clock with the UDAF registered and a queue source
/// `src`; `partitions > 1` runs every batch on the partitioned plan.
pub async fn manual_context(
    partitions: usize,
) -> (
    StreamingContext,
    Arc<sluice_core::ManualClock>,
    sluice_core::QueueHandle,
) {
    use datafusion::prelude::{SessionConfig, SessionContext};
    let session =
        SessionContext::new_with_config(SessionConfig::new().with_target_partitions(partitions));
    session.register_udaf(sum_squares());
    let ssc = StreamingContext::new(session, std::time::Duration::from_secs(1));
    if partitions > 1 {
        ssc.set_parallel_threshold(0).await;
    }
    let clock = Arc::new(sluice_core::ManualClock::new(0));
    ssc.set_clock(sluice_core::ClockChoice::Manual(Arc::clone(&clock)));
    let queue = ssc.queue_source("src", schema()).await.unwrap();
    (ssc, clock, queue)
}

/// Starts the job and runs `batches`, one per second (the first at 1 s),
/// then stops; panics with the job's error if it failed.
pub async fn run_batches(
    ssc: &StreamingContext,
    clock: &sluice_core::ManualClock,
    queue: &sluice_core::QueueHandle,
    batches: &[RecordBatch],
) {
    ssc.start().await.unwrap();
    for (i, b) in batches.iter().enumerate() {
        queue.push(b.clone()).unwrap();
        clock.advance_ms(1_000);
        tokio::time::timeout(
            std::time::Duration::from_secs(60),
            ssc.wait_for_batches(i as u64 + 1),
        )
        .await
        .expect("batch ran")
        .unwrap();
    }
    ssc.stop(true).await.unwrap();
    // A job that failed stopped early: say why.
    ssc.await_termination()
        .await
        .expect("the job ran every batch");
}
