//! Keyed state: per-batch time of `GROUP BY k EMIT CHANGES` with 100k or
//! 10M keys in state, batches of 100k rows touching 10k keys.
//!
//! ```text
//! cargo bench -p sluice-benches --bench keyed
//! ```
//!
//! The state is filled with batches of 100k new keys each, then 20 batches
//! of 100k rows over 10k of the existing keys are timed (the batch's
//! processing time as the engine records it). A batch must cost what it
//! touches: the same with 10M keys in state as with 100k. Also reported: the
//! state's bytes per key for a count (`StreamingContext::state_size`).
//! `-- timeout` runs the same with `state_timeout = '1 hour'` (nothing
//! expires; the cost of tracking each key's last batch).

mod common;

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sluice_core::StreamingContext;

use common::{ms, session, stats};

const ROWS: usize = 100_000;
const TOUCHED: i64 = 10_000;
const TIMED: usize = 20;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]))
}

fn keys(values: impl Iterator<Item = i64>) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![Arc::new(Int64Array::from_iter_values(values))],
    )
    .expect("batch")
}

async fn run(keys_in_state: usize, timeout: bool) {
    let ssc = StreamingContext::new(session(), Duration::from_secs(1));
    let queue = ssc.queue_source("src", schema()).await.expect("queue");
    let with = if timeout {
        "WITH (state_timeout = '1 hour')"
    } else {
        ""
    };
    ssc.sql(&format!(
        "CREATE STREAM counts {with} AS SELECT k, count(*) AS n FROM src GROUP BY k EMIT CHANGES"
    ))
    .await
    .expect("stream");
    ssc.foreach_batch("counts", |_, _| async { Ok(()) })
        .await
        .expect("sink");
    let fill = keys_in_state / ROWS;
    let mut data: Vec<RecordBatch> = (0..fill)
        .map(|b| keys((b * ROWS) as i64..((b + 1) * ROWS) as i64))
        .collect();
    let mut rng = StdRng::seed_from_u64(5);
    // Touch 10k keys spread over the whole state.
    let stride = (keys_in_state as i64 / TOUCHED).max(1);
    for _ in 0..TIMED {
        let offset = rng.random_range(0..stride);
        data.push(keys(
            (0..ROWS as i64).map(|i| (i % TOUCHED) * stride + offset),
        ));
    }
    let total = data.len();
    common::run_queued(&ssc, &queue, &data, total).await;
    let infos = ssc.batch_infos();
    let timed = stats(
        infos[infos.len() - TIMED..]
            .iter()
            .map(|b| b.processing_time)
            .collect(),
    );
    assert!(
        infos[infos.len() - TIMED..]
            .iter()
            .all(|b| b.output_rows[0].1 == TOUCHED as usize),
        "each timed batch emits its 10k keys"
    );
    let bytes = ssc.state_size("counts").await.expect("state");
    println!(
        "keyed/changes{} {keys_in_state:>9} keys in state: per batch min {:.1} ms  median {:.1} ms  max {:.1} ms; state {:.0} MB, {:.0} bytes/key",
        if timeout { "+timeout" } else { "" },
        ms(timed.min),
        ms(timed.median),
        ms(timed.max),
        bytes as f64 / 1e6,
        bytes as f64 / keys_in_state as f64
    );
}

fn main() {
    let wants = common::wanted();
    let runtime = common::runtime();
    println!(
        "machine: {} cores; {ROWS} rows per batch touching {TOUCHED} keys, {TIMED} batches timed",
        common::cores()
    );
    runtime.block_on(async {
        for keys in [100_000usize, 1_000_000, 10_000_000] {
            if wants(&format!("{keys}")) || wants("keyed") {
                run(keys, false).await;
            }
        }
        for keys in [100_000usize, 10_000_000] {
            if wants("timeout") {
                run(keys, true).await;
            }
        }
    });
}
