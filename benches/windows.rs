//! Windowed aggregates: per-slide time by window length, incremental against
//! a full recomputation of the same window.
//!
//! ```text
//! cargo bench -p sluice-benches --bench windows            # count and min/max
//! cargo bench -p sluice-benches --bench windows -- count   # keyed count only
//! cargo bench -p sluice-benches --bench windows -- minmax  # min/max only
//! ```
//!
//! 100k rows per batch over 10k keys, slide = 1 batch, windows of 2, 10, 100
//! and 1000 batches. sluice runs `SELECT k, count(*) ... FROM window(src, L)`
//! (derived inverse) and `SELECT k, min(v), max(v) ...` (two-stack of pane
//! states) on the simulated clock; a slide's time is the batch's processing
//! time as the engine records it (pane aggregated, leaving pane removed,
//! window emitted, sink called). The recomputation is DataFusion running the
//! same aggregate over the window's batches (a 2-partition `MemTable`), which
//! is what Spark does for a window without an inverse function.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sluice_core::StreamingContext;

use common::{Stats, ms, session, stats};

const ROWS: usize = 100_000;
const KEYS: i64 = 10_000;
const DISTINCT_BATCHES: usize = 8;
const SLIDES: usize = 20;

fn batches() -> Vec<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, false),
        Field::new("v", DataType::Int64, false),
    ]));
    let mut rng = StdRng::seed_from_u64(11);
    (0..DISTINCT_BATCHES)
        .map(|_| {
            let k: Int64Array = (0..ROWS).map(|_| Some(rng.random_range(0..KEYS))).collect();
            let v: Int64Array = (0..ROWS)
                .map(|_| Some(rng.random_range(0..1_000_000)))
                .collect();
            RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(k), Arc::new(v)])
                .expect("batch")
        })
        .collect()
}

/// sluice: `window` batches fill the window, then `SLIDES` slides are timed.
/// Also returns the bytes the window keeps at the end.
async fn incremental(data: &[RecordBatch], aggregates: &str, window: usize) -> (Stats, usize) {
    let ssc = StreamingContext::new(session(), Duration::from_secs(1));
    let queue = ssc
        .queue_source("src", data[0].schema())
        .await
        .expect("queue");
    ssc.sql(&format!(
        "CREATE STREAM w AS SELECT k, {aggregates} FROM window(src, '{window} seconds') GROUP BY k"
    ))
    .await
    .expect("stream");
    // Check as it goes: once the window is full every key is there.
    ssc.foreach_batch("w", move |t, out| async move {
        let rows: usize = out.iter().map(|b| b.num_rows()).sum();
        if t > window as i64 * 1000 {
            assert_eq!(rows, KEYS as usize, "keys at {t}");
        }
        Ok(())
    })
    .await
    .expect("sink");
    let total = window + SLIDES;
    common::run_queued(&ssc, &queue, data, total).await;
    // The last SLIDES batches (the context keeps a bounded history).
    let infos = ssc.batch_infos();
    assert!(infos.len() >= SLIDES);
    let state = ssc.state_size("w").await.expect("a windowed stream");
    let times = infos[infos.len() - SLIDES..]
        .iter()
        .map(|b| b.processing_time)
        .collect();
    (stats(times), state)
}

/// DataFusion over the whole window: what a slide costs without increments.
async fn recompute(data: &[RecordBatch], aggregates: &str, window: usize, runs: usize) -> Stats {
    let ctx = session();
    let covered: Vec<RecordBatch> = (0..window).map(|i| data[i % data.len()].clone()).collect();
    let half = covered.len().div_ceil(2);
    let parts = vec![covered[..half].to_vec(), covered[half..].to_vec()];
    let table = MemTable::try_new(data[0].schema(), parts).expect("mem");
    ctx.register_table("covered", Arc::new(table))
        .expect("register");
    let sql = format!("SELECT k, {aggregates} FROM covered GROUP BY k");
    let mut times = Vec::new();
    for _ in 0..runs + 1 {
        let t = Instant::now();
        let out = ctx
            .sql(&sql)
            .await
            .expect("plan")
            .collect()
            .await
            .expect("run");
        std::hint::black_box(out);
        times.push(t.elapsed());
    }
    times.remove(0); // warm-up
    stats(times)
}

async fn sweep(label: &str, aggregates: &str, data: &[RecordBatch]) {
    let mut medians = Vec::new();
    for window in [2usize, 10, 100, 1000] {
        let (inc, state) = incremental(data, aggregates, window).await;
        let runs = if window >= 1000 { 3 } else { 10 };
        let full = recompute(data, aggregates, window, runs).await;
        medians.push(inc.median);
        println!(
            "windows/{label} {window:>4} batches: sluice per slide min {:.1} ms  median {:.1} ms  max {:.1} ms, state {:.0} MB | recompute min {:.1} ms  median {:.1} ms  max {:.1} ms | recompute/sluice {:.1}x",
            ms(inc.min),
            ms(inc.median),
            ms(inc.max),
            state as f64 / 1e6,
            ms(full.min),
            ms(full.median),
            ms(full.max),
            full.median.as_secs_f64() / inc.median.as_secs_f64()
        );
    }
    let first = medians[0].as_secs_f64();
    let last = medians[medians.len() - 1].as_secs_f64();
    println!(
        "windows/{label} median per slide, 1000 vs 2 batches: {:.2}x",
        last / first
    );
}

fn main() {
    let wants = common::wanted();
    let runtime = common::runtime();
    println!(
        "machine: {} cores; {ROWS} rows per batch, {KEYS} keys, slide 1 batch, {SLIDES} slides timed",
        common::cores()
    );
    let data = batches();
    runtime.block_on(async {
        if wants("count") {
            sweep("count", "count(*) AS n", &data).await;
        }
        if wants("minmax") {
            sweep("minmax", "min(v) AS lo, max(v) AS hi", &data).await;
        }
    });
}
