//! sluice's benchmarks, side by side with DataFusion run directly.
//!
//! ```text
//! cargo bench -p sluice-benches              # both benchmarks
//! cargo bench -p sluice-benches -- floor     # per-batch overhead only
//! cargo bench -p sluice-benches -- wordcount # word-count throughput only
//! cargo bench -p sluice-benches -- threshold # single vs partitioned plan by batch size
//! ```
//!
//! 1. `floor`: the per-batch cost of a 3-stream pipeline (filter → projection →
//!    per-batch GROUP BY) on a 10-row batch, against planning and running the
//!    same SQL afresh in DataFusion each batch.
//! 2. `wordcount`: word count on 200k-line batches of 2-word lines over a
//!    100k-word Zipf vocabulary, against DataFusion running the same SQL over
//!    the same batch (a `MemTable` of 2 partitions).
//!
//! sluice batches run on the simulated clock (back to back); a batch's time is
//! its processing time as the engine records it (`BatchInfo::processing_time`:
//! slots filled, every stream run, the sink called). Figures go to
//! `docs/performance.md`.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use datafusion::datasource::MemTable;
use sluice_connectors::words::WordsSource;
use sluice_core::{ClockChoice, StreamingContext};

use common::{Stats, WORDCOUNT_SQL, ms, session, stats};

const FLOOR_SQL: [(&str, &str); 3] = [
    ("evens", "SELECT id, word FROM events WHERE id % 2 = 0"),
    ("shouted", "SELECT id, upper(word) AS word FROM evens"),
    (
        "counts",
        "SELECT word, count(*) AS n FROM shouted GROUP BY word",
    ),
];

/// sluice: the three streams planned once, executed per batch. `threshold`
/// overrides the input row count at which the partitioned plan is used.
async fn floor_sluice(
    values: &str,
    batches: usize,
    warmup: usize,
    threshold: Option<usize>,
) -> (Stats, f64) {
    let ssc = StreamingContext::with_registry(
        session(),
        Duration::from_secs(1),
        sluice_connectors::registry(),
    );
    if let Some(t) = threshold {
        ssc.set_parallel_threshold(t).await;
    }
    ssc.sql(&format!(
        "CREATE TABLE ten (id BIGINT, word TEXT) AS VALUES {values};
         CREATE SOURCE events WITH (connector = 'constant', table = 'ten');"
    ))
    .await
    .expect("setup");
    for (name, sql) in FLOOR_SQL {
        ssc.sql(&format!("CREATE STREAM {name} AS {sql}"))
            .await
            .expect("stream");
    }
    ssc.foreach_batch("counts", |_, _| async { Ok(()) })
        .await
        .expect("sink");
    ssc.set_clock(ClockChoice::Simulated);
    ssc.set_max_batches((batches + warmup) as u64);
    let started = Instant::now();
    ssc.start().await.expect("start");
    ssc.await_termination().await.expect("run");
    let wall = started.elapsed();
    let infos = ssc.batch_infos();
    // ids 0..9 → evens 0,2,4,6,8 → words W0,W2,W1,W0,W2 → 3 groups each batch.
    assert!(
        infos.iter().all(|b| b.output_rows[0].1 == 3),
        "every batch yields the 3 groups"
    );
    let times: Vec<Duration> = infos
        .iter()
        .skip(warmup)
        .map(|b| b.processing_time)
        .collect();
    (stats(times), (batches + warmup) as f64 / wall.as_secs_f64())
}

async fn floor() {
    let rows: Vec<String> = (0..10).map(|i| format!("({i}, 'w{}')", i % 3)).collect();
    let values = rows.join(", ");
    let batches = 3000usize;
    let warmup = 200usize;

    for (label, threshold) in [("", None), (" (partitioned plan forced)", Some(0))] {
        let (s, rate) = floor_sluice(&values, batches, warmup, threshold).await;
        println!(
            "floor/sluice{label:<26} 3-stream pipeline, 10-row batch: min {:.3} ms  median {:.3} ms  max {:.3} ms  ({batches} batches, {rate:.0} batches/s wall)",
            ms(s.min),
            ms(s.median),
            ms(s.max),
        );
    }

    // DataFusion afresh: register the batch, plan and run the three queries each time.
    let ctx = session();
    let ten = ctx
        .sql(&format!("VALUES {values}"))
        .await
        .expect("values")
        .collect()
        .await
        .expect("rows");
    let ten: Vec<RecordBatch> = ten
        .into_iter()
        .map(|b| {
            let schema = Arc::new(arrow::datatypes::Schema::new(vec![
                arrow::datatypes::Field::new("id", arrow::datatypes::DataType::Int64, true),
                arrow::datatypes::Field::new("word", arrow::datatypes::DataType::Utf8, true),
            ]));
            RecordBatch::try_new(schema, b.columns().to_vec()).expect("batch")
        })
        .collect();
    let mut times = Vec::new();
    for i in 0..(batches / 3 + warmup) {
        let t = Instant::now();
        let mut input = ten.clone();
        let mut name = "events";
        ctx.deregister_table(name).expect("deregister");
        ctx.register_table(
            name,
            Arc::new(MemTable::try_new(input[0].schema(), vec![input.clone()]).expect("mem")),
        )
        .expect("register");
        for (stream, sql) in FLOOR_SQL {
            input = ctx
                .sql(sql)
                .await
                .expect("plan")
                .collect()
                .await
                .expect("run");
            name = stream;
            ctx.deregister_table(name).expect("deregister");
            if let Some(first) = input.first() {
                ctx.register_table(
                    name,
                    Arc::new(MemTable::try_new(first.schema(), vec![input.clone()]).expect("mem")),
                )
                .expect("register");
            }
        }
        if i >= warmup {
            times.push(t.elapsed());
        }
    }
    let s = stats(times);
    println!(
        "floor/datafusion same SQL planned afresh per batch: min {:.3} ms  median {:.3} ms  max {:.3} ms",
        ms(s.min),
        ms(s.median),
        ms(s.max)
    );
}

fn zipf_batches(n: usize) -> Vec<RecordBatch> {
    let vocabulary: Vec<String> = (0..100_000).map(|i| format!("w{i}")).collect();
    let source = WordsSource::new(7, 200_000, 2, vocabulary, Some(1.0)).expect("words");
    (1..=n as i64)
        .map(|t| source.generate(t * 1000).expect("batch"))
        .collect()
}

/// Runs `total` batches (cycling through `data`) through the word-count stream;
/// the first `warmup` are not counted.
async fn wordcount_sluice(
    data: &[RecordBatch],
    total: usize,
    warmup: usize,
    threshold: Option<usize>,
) -> Stats {
    let ssc = StreamingContext::new(session(), Duration::from_secs(1));
    if let Some(t) = threshold {
        ssc.set_parallel_threshold(t).await;
    }
    let queue = ssc
        .queue_source("lines", data[0].schema())
        .await
        .expect("queue");
    ssc.sql(&format!("CREATE STREAM counts AS {WORDCOUNT_SQL}"))
        .await
        .expect("stream");
    // Check the answer as it goes: every batch's counts add up to its words.
    let words = 2 * data[0].num_rows() as i64;
    ssc.foreach_batch("counts", move |_, batches| async move {
        let total: i64 = batches
            .iter()
            .map(|b| {
                arrow::compute::sum(
                    b.column(1)
                        .as_any()
                        .downcast_ref::<arrow::array::Int64Array>()
                        .expect("n"),
                )
                .unwrap_or(0)
            })
            .sum();
        assert_eq!(total, words);
        Ok(())
    })
    .await
    .expect("sink");
    common::run_queued(&ssc, &queue, data, total).await;
    stats(
        ssc.batch_infos()
            .iter()
            .skip(warmup)
            .map(|b| b.processing_time)
            .collect(),
    )
}

/// Where a partitioned plan starts to pay: per-batch time of both plans by batch size.
async fn threshold_sweep() {
    let vocabulary: Vec<String> = (0..100_000).map(|i| format!("w{i}")).collect();
    for lines in [1_000usize, 8_000, 32_000, 64_000, 128_000] {
        let source = WordsSource::new(9, lines, 2, vocabulary.clone(), Some(1.0)).expect("words");
        let data: Vec<RecordBatch> = (1..=4)
            .map(|t| source.generate(t * 1000).expect("batch"))
            .collect();
        let total = 40;
        let single = wordcount_sluice(&data, total, 4, Some(usize::MAX)).await;
        let parallel = wordcount_sluice(&data, total, 4, Some(0)).await;
        println!(
            "threshold/{lines:>6} lines: 1 partition median {:.2} ms, 2 partitions median {:.2} ms",
            ms(single.median),
            ms(parallel.median)
        );
    }
}

async fn wordcount() {
    let distinct = 6;
    let rounds = 5;
    let data = zipf_batches(distinct);
    let words_per_batch = 400_000f64;

    let total = distinct * rounds + distinct;
    for (label, threshold) in [("", None), (" (1 partition)", Some(usize::MAX))] {
        let s = wordcount_sluice(&data, total, distinct, threshold).await;
        report(&format!("wordcount/sluice{label}"), s, words_per_batch);
    }

    // DataFusion directly: the same SQL over the same batch as a 2-partition MemTable.
    let ctx = session();
    let mut times = Vec::new();
    for i in 0..total {
        let batch = &data[i % distinct];
        let t = Instant::now();
        let out = common::datafusion_on_halves(&ctx, batch, WORDCOUNT_SQL).await;
        std::hint::black_box(out);
        if i >= distinct {
            times.push(t.elapsed());
        }
    }
    report("wordcount/datafusion", stats(times), words_per_batch);
}

fn report(label: &str, s: Stats, words: f64) {
    let rate = |d: Duration| words / d.as_secs_f64() / 1e6;
    println!(
        "{label} 200k lines/400k words per batch: min {:.1} ms  median {:.1} ms  max {:.1} ms  => {:.2} / {:.2} / {:.2} M words/s (best/median/worst), {:.2} M lines/s median",
        ms(s.min),
        ms(s.median),
        ms(s.max),
        rate(s.min),
        rate(s.median),
        rate(s.max),
        rate(s.median) / 2.0
    );
}

fn main() {
    let wants = common::wanted();
    let runtime = common::runtime();
    println!("machine: {} cores", common::cores());
    runtime.block_on(async {
        if wants("floor") {
            floor().await;
        }
        if wants("wordcount") {
            wordcount().await;
        }
        if wants("threshold") {
            threshold_sweep().await;
        }
    });
}
