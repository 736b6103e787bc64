//! What every bench binary uses: min/median/max of timings, milliseconds, and
#![allow(dead_code)] // each bench binary uses part of this
//! the 2-partition session the figures in docs/performance.md are taken on.

use std::time::Duration;

use datafusion::prelude::{SessionConfig, SessionContext};

pub struct Stats {
    pub min: Duration,
    pub median: Duration,
    pub max: Duration,
}

pub fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    Stats {
        min: samples[0],
        median: samples[samples.len() / 2],
        max: samples[samples.len() - 1],
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn session() -> SessionContext {
    SessionContext::new_with_config(SessionConfig::new().with_target_partitions(2))
}

/// The bench names given on the command line (all when none).
pub fn wanted() -> impl Fn(&str) -> bool {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    move |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()))
}

/// The multi-threaded runtime benches run on.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// The machine's cores, for the report's first line.
pub fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Pushes `total` batches (cycling through `data`) into `queue` and runs
/// them back to back on the simulated clock.
pub async fn run_queued(
    ssc: &sluice_core::StreamingContext,
    queue: &sluice_core::QueueHandle,
    data: &[arrow::array::RecordBatch],
    total: usize,
) {
    for i in 0..total {
        queue.push(data[i % data.len()].clone()).expect("push");
    }
    ssc.set_clock(sluice_core::ClockChoice::Simulated);
    ssc.set_max_batches(total as u64);
    ssc.start().await.expect("start");
    ssc.await_termination().await.expect("run");
}

/// The word count every bench runs, over a table `lines (value TEXT)`.
pub const WORDCOUNT_SQL: &str = "SELECT word, count(*) AS n FROM (SELECT unnest(string_to_array(value, ' ')) AS word FROM lines) GROUP BY word";

/// DataFusion directly: `batch` registered as the table `lines` in two
/// halves (a 2-partition `MemTable`), `sql` planned and run.
pub async fn datafusion_on_halves(
    ctx: &SessionContext,
    batch: &arrow::array::RecordBatch,
    sql: &str,
) -> Vec<arrow::array::RecordBatch> {
    let half = batch.num_rows() / 2;
    let parts = vec![
        vec![batch.slice(0, half)],
        vec![batch.slice(half, batch.num_rows() - half)],
    ];
    let _ = ctx.deregister_table("lines");
    ctx.register_table(
        "lines",
        std::sync::Arc::new(
            datafusion::datasource::MemTable::try_new(batch.schema(), parts).expect("table"),
        ),
    )
    .expect("register");
    ctx.sql(sql)
        .await
        .expect("plan")
        .collect()
        .await
        .expect("run")
}
