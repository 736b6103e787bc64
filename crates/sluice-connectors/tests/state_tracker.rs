//! StateTracker2 two ways on the same generated words: the Rust
//! `map_with_state` + `state_snapshots` (as in examples/state_tracker2.rs)
//! and SQL's `EMIT CHANGES` / `EMIT SNAPSHOT` give the same rows every batch.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::util::pretty::pretty_format_batches;
use datafusion::prelude::SessionContext;
use sluice_core::state::{State, StateSpec};
use sluice_core::{ClockChoice, StreamingContext};

type Seen = Arc<Mutex<Vec<(i64, Vec<RecordBatch>)>>>;

async fn collect(ssc: &StreamingContext, stream: &str) -> Seen {
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

/// The rows as sorted lines of text (column names and widths left out).
fn lines(batches: &[RecordBatch]) -> Vec<String> {
    let text = pretty_format_batches(batches).unwrap().to_string();
    let mut rows: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("| "))
        .skip(1)
        .map(|l| l.split('|').map(str::trim).collect::<Vec<_>>().join(","))
        .collect();
    rows.sort();
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn map_with_state_agrees_with_emit_changes_and_snapshot() {
    let ssc = StreamingContext::with_registry(
        SessionContext::new(),
        Duration::from_secs(1),
        sluice_connectors::registry(),
    );
    ssc.sql(
        "CREATE SOURCE lines WITH (connector = 'words', rows_per_batch = 5, seed = 5);
         CREATE STREAM pairs AS
           SELECT unnest(string_to_array(value, ' ')) AS word, 1 AS n FROM lines;
         CREATE STREAM sql_changed AS SELECT word, count(*) AS n FROM pairs GROUP BY word EMIT CHANGES;
         CREATE STREAM sql_snapshot AS SELECT word, count(*) AS n FROM pairs GROUP BY word EMIT SNAPSHOT;",
    )
    .await
    .unwrap();
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Count {
        word: String,
        n: i64,
    }
    let spec = StateSpec::function(|word: &String, ones: &[i64], state: &mut State<i64>| {
        let n = ones.iter().sum::<i64>() + state.get_option().copied().unwrap_or(0);
        state.update(n);
        Some(Count {
            word: word.clone(),
            n,
        })
    })
    .num_partitions(2);
    ssc.map_with_state("changed", "pairs", spec).await.unwrap();
    ssc.state_snapshots("snapshot", "changed").await.unwrap();
    let streams = ["changed", "sql_changed", "snapshot", "sql_snapshot"];
    let mut seen = Vec::new();
    for s in streams {
        seen.push(collect(&ssc, s).await);
    }
    ssc.set_clock(ClockChoice::Simulated);
    ssc.set_max_batches(5);
    ssc.start().await.unwrap();
    ssc.await_termination().await.unwrap();
    let seen: Vec<Vec<(i64, Vec<RecordBatch>)>> =
        seen.iter().map(|s| s.lock().unwrap().clone()).collect();
    for i in 0..5 {
        for (rust, sql) in [(0, 1), (2, 3)] {
            let (a, b) = (&seen[rust][i], &seen[sql][i]);
            assert_eq!(a.0, b.0);
            assert_eq!(
                lines(&a.1),
                lines(&b.1),
                "{} vs {} at {} ms",
                streams[rust],
                streams[sql],
                a.0
            );
        }
        // Every batch has words, so both sides have rows to compare.
        assert!(
            !seen[0][i].1.iter().all(|b| b.num_rows() == 0),
            "batch {i} has words"
        );
    }
}
