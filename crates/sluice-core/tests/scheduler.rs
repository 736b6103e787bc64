//! The engine as an application embeds it: batches on a manual clock queue and
//! are never skipped, failures name the stream and batch, per-batch results
//! equal DataFusion's on the same rows (random input, both plan shapes).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sluice_core::{ClockChoice, ManualClock, StreamingContext};

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, true),
        Field::new("v", DataType::Int64, true),
    ]))
}

fn batch(k: Vec<i64>, v: Vec<i64>) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![Arc::new(Int64Array::from(k)), Arc::new(Int64Array::from(v))],
    )
    .unwrap()
}

/// The first column's values across `batches` (an Int64 column).
fn first_column(batches: &[RecordBatch]) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .values()
                .to_vec()
        })
        .collect()
}

type Seen = Arc<Mutex<Vec<(i64, Vec<RecordBatch>)>>>;

async fn context(session: SessionContext) -> (StreamingContext, Arc<ManualClock>) {
    let ssc = StreamingContext::new(session, Duration::from_secs(1));
    let clock = Arc::new(ManualClock::new(0));
    ssc.set_clock(ClockChoice::Manual(Arc::clone(&clock)));
    (ssc, clock)
}

async fn collect_into(ssc: &StreamingContext, stream: &str, delay_first: Option<Duration>) -> Seen {
    let seen: Seen = Arc::default();
    let s = Arc::clone(&seen);
    ssc.foreach_batch(stream, move |t, batches| {
        let s = Arc::clone(&s);
        async move {
            if t == 1000 {
                if let Some(d) = delay_first {
                    tokio::time::sleep(d).await;
                }
            }
            s.lock().unwrap().push((t, batches));
            Ok(())
        }
    })
    .await
    .unwrap();
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_queue_behind_a_slow_batch_and_none_is_skipped() {
    let (ssc, clock) = context(SessionContext::new()).await;
    let queue = ssc.queue_source("src", schema()).await.unwrap();
    ssc.sql("CREATE STREAM doubled AS SELECT k * 2 AS k2 FROM src")
        .await
        .unwrap();
    let seen = collect_into(&ssc, "doubled", Some(Duration::from_millis(50))).await;
    for i in 0..5 {
        queue.push(batch(vec![i], vec![0])).unwrap();
    }
    ssc.start().await.unwrap();
    // Five batch times pass at once while the first batch is slow.
    clock.advance_ms(5_000);
    ssc.wait_for_batches(5).await.unwrap();
    let times: Vec<i64> = seen.lock().unwrap().iter().map(|(t, _)| *t).collect();
    assert_eq!(times, vec![1000, 2000, 3000, 4000, 5000]);
    let infos = ssc.batch_infos();
    assert_eq!(infos.len(), 5);
    assert!(infos[0].processing_time >= Duration::from_millis(50));
    assert!(
        infos[1].scheduling_delay >= Duration::from_millis(30),
        "the second batch waited behind the first: {:?}",
        infos[1].scheduling_delay
    );
    assert_eq!(infos[0].input_rows, vec![("src".to_string(), 1)]);
    assert_eq!(
        infos[4].total_delay(),
        infos[4].scheduling_delay + infos[4].processing_time
    );
    ssc.stop(true).await.unwrap();
    ssc.await_termination().await.unwrap();
    // Each batch saw its own rows (the slot was swapped, not appended to).
    let rows: Vec<i64> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(_, b)| first_column(b)[0])
        .collect();
    assert_eq!(rows, vec![0, 2, 4, 6, 8]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_cut_before_its_time() {
    let (ssc, clock) = context(SessionContext::new()).await;
    let _queue = ssc.queue_source("src", schema()).await.unwrap();
    let seen = collect_into(&ssc, "src", None).await;
    ssc.start().await.unwrap();
    clock.advance_ms(999);
    tokio::task::yield_now().await;
    assert!(seen.lock().unwrap().is_empty());
    clock.advance_ms(1);
    ssc.wait_for_batches(1).await.unwrap();
    assert_eq!(seen.lock().unwrap()[0].0, 1000);
    ssc.stop(true).await.unwrap();
    ssc.await_termination().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_batch_stops_the_job_naming_stream_and_batch_time() {
    let (ssc, clock) = context(SessionContext::new()).await;
    let queue = ssc.queue_source("src", schema()).await.unwrap();
    ssc.sql("CREATE STREAM ratio AS SELECT v / k AS r FROM src")
        .await
        .unwrap();
    let _seen = collect_into(&ssc, "ratio", None).await;
    queue.push(batch(vec![1], vec![4])).unwrap();
    queue.push(batch(vec![0], vec![4])).unwrap();
    ssc.start().await.unwrap();
    clock.advance_ms(2_000);
    let err = ssc.await_termination().await.unwrap_err().to_string();
    assert!(err.starts_with("stream 'ratio', batch 2000 ms: "), "{err}");
    assert!(err.contains("Divide by zero"), "{err}");
    assert_eq!(ssc.completed_batches(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_no_sink_reads_are_not_run() {
    let (ssc, _clock) = context(SessionContext::new()).await;
    let _queue = ssc.queue_source("src", schema()).await.unwrap();
    ssc.sql(
        "CREATE STREAM a AS SELECT k FROM src;
         CREATE STREAM b AS SELECT k FROM a;
         CREATE STREAM unused AS SELECT k FROM a;
         CREATE STREAM c AS SELECT k FROM b;",
    )
    .await
    .unwrap();
    let err = ssc.start().await.unwrap_err().to_string();
    assert!(
        err.starts_with("no sink: nothing would be computed"),
        "{err}"
    );
    let _seen = collect_into(&ssc, "b", None).await;
    ssc.start().await.unwrap();
    // Lazy: `b` needs `a`; `unused` and `c` are never run.
    assert_eq!(ssc.running_streams().await, vec!["a", "b"]);
    ssc.stop(false).await.unwrap();
}

/// Per-batch GROUP BY and a join with a static table, over random batches
/// small and large (both the single-partition and the partitioned plan), each
/// compared with DataFusion planning and running the same SQL on the same rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_batch_results_equal_datafusion_on_random_input() {
    const SQL: &str = "SELECT s.k, count(*) AS n, sum(s.v) AS total, max(d.name) AS name
                       FROM src s LEFT JOIN dims d ON s.k = d.k
                       WHERE s.v IS NULL OR s.v > -50
                       GROUP BY s.k ORDER BY s.k";
    let session = SessionContext::new_with_config(
        SessionConfig::new()
            .with_target_partitions(2)
            .with_batch_size(64),
    );
    session.sql("CREATE TABLE dims (k BIGINT, name TEXT) AS VALUES (1, 'one'), (3, 'three'), (5, 'five')").await.unwrap();
    let (ssc, clock) = context(session.clone()).await;
    ssc.set_parallel_threshold(100).await;
    let queue = ssc.queue_source("src", schema()).await.unwrap();
    ssc.sql(&format!("CREATE STREAM agg AS {SQL}"))
        .await
        .unwrap();
    let seen = collect_into(&ssc, "agg", None).await;

    let mut rng = StdRng::seed_from_u64(42);
    let mut inputs = Vec::new();
    for _ in 0..30 {
        let n = [0, 1, 7, 99, 100, 1_000, 5_000][rng.random_range(0..7)];
        let k: Vec<i64> = (0..n).map(|_| rng.random_range(0..12)).collect();
        let v: Vec<i64> = (0..n).map(|_| rng.random_range(-100..100)).collect();
        let b = batch(k, v);
        queue.push(b.clone()).unwrap();
        inputs.push(b);
    }
    ssc.start().await.unwrap();
    clock.advance_ms(30_000);
    ssc.wait_for_batches(30).await.unwrap();
    ssc.stop(true).await.unwrap();
    ssc.await_termination().await.unwrap();

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 30);
    for (i, (input, (t, got))) in inputs.iter().zip(seen).enumerate() {
        assert_eq!(t, (i as i64 + 1) * 1000);
        let direct = SessionContext::new();
        direct.sql("CREATE TABLE dims (k BIGINT, name TEXT) AS VALUES (1, 'one'), (3, 'three'), (5, 'five')").await.unwrap();
        direct
            .register_table(
                "src",
                Arc::new(MemTable::try_new(schema(), vec![vec![input.clone()]]).unwrap()),
            )
            .unwrap();
        let want = direct.sql(SQL).await.unwrap().collect().await.unwrap();
        let fmt = |b: &[RecordBatch]| {
            arrow::util::pretty::pretty_format_batches(b)
                .unwrap()
                .to_string()
        };
        assert_eq!(
            fmt(&got),
            fmt(&want),
            "batch {i} ({} rows)",
            input.num_rows()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transform_builds_a_stream_from_a_dataframe_function() {
    use datafusion::prelude::{col, lit};
    let ssc = StreamingContext::new(SessionContext::new(), Duration::from_secs(1));
    let queue = ssc.queue_source("src", schema()).await.unwrap();
    ssc.transform("big", "src", |df| {
        df.filter(col("v").gt(lit(10)))?.select(vec![col("k")])
    })
    .await
    .unwrap();
    let err = ssc
        .transform("x", "nowhere", Ok)
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "transform 'x' reads 'nowhere', which is not a source or stream"
    );
    let seen = collect_into(&ssc, "big", None).await;
    queue.push(batch(vec![1, 2, 3], vec![5, 50, 500])).unwrap();
    ssc.set_clock(ClockChoice::Simulated);
    ssc.set_max_batches(1);
    ssc.start().await.unwrap();
    ssc.await_termination().await.unwrap();
    let seen = seen.lock().unwrap();
    let k = first_column(&seen[0].1);
    assert_eq!((seen[0].0, k), (1000, vec![2, 3]));
}

/// A foreach_batch callback may use the context: sinks are written after the
/// engine is released (feeding a queue from a callback must not deadlock).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_can_use_the_context_and_stop_waits_for_the_end() {
    let (ssc, clock) = context(SessionContext::new()).await;
    let queue = ssc.queue_source("src", schema()).await.unwrap();
    let _feedback = ssc.queue_source("feedback", schema()).await.unwrap();
    let seen = collect_into(&ssc, "feedback", None).await;
    let inner = ssc.clone();
    ssc.foreach_batch("src", move |t, _| {
        let ssc = inner.clone();
        async move {
            assert_eq!(ssc.batch_interval().await, Duration::from_secs(1));
            ssc.sql(&format!("INSERT INTO feedback VALUES ({t}, 0)"))
                .await?;
            Ok(())
        }
    })
    .await
    .unwrap();
    queue.push(batch(vec![1], vec![1])).unwrap();
    ssc.start().await.unwrap();
    for n in 1..=3 {
        clock.advance_ms(1_000);
        tokio::time::timeout(Duration::from_secs(30), ssc.wait_for_batches(n))
            .await
            .expect("no deadlock")
            .unwrap();
    }
    // The feedback written in batch 1000 is read in batch 2000, and so on.
    let got: Vec<(i64, i64)> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, b)| !b.is_empty())
        .map(|(t, b)| (*t, first_column(b)[0]))
        .collect();
    assert_eq!(got, vec![(2000, 1000), (3000, 2000)]);
    ssc.stop(true).await.unwrap();
    // Waiting on a stopped job, or stopping it again, returns at once.
    ssc.await_termination().await.unwrap();
    ssc.stop(true).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_returns_once_the_batch_in_progress_is_done() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let (ssc, clock) = context(SessionContext::new()).await;
    let queue = ssc.queue_source("src", schema()).await.unwrap();
    let began = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicBool::new(false));
    let (b, f) = (Arc::clone(&began), Arc::clone(&finished));
    ssc.foreach_batch("src", move |_, _| {
        let (b, f) = (Arc::clone(&b), Arc::clone(&f));
        async move {
            b.store(true, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(100)).await;
            f.store(true, Ordering::SeqCst);
            Ok(())
        }
    })
    .await
    .unwrap();
    queue.push(batch(vec![1], vec![1])).unwrap();
    ssc.start().await.unwrap();
    clock.advance_ms(1_000);
    // Stop while the first batch's sink is running.
    tokio::time::timeout(Duration::from_secs(30), async {
        while !began.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the batch began");
    ssc.stop(true).await.unwrap();
    assert!(
        finished.load(Ordering::SeqCst),
        "the batch in progress finished before stop returned"
    );
    assert_eq!(ssc.completed_batches(), 1);
}
