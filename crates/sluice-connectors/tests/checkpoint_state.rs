//! A Rust function's keyed state (`map_with_state`, with `initial_state`
//! and a timeout) through a checkpoint: a job stopped after 4 batches and
//! started again in a new context emits, batch for batch, what an
//! uninterrupted one does: the seed is applied once, states carry over,
//! and keys time out when they would have.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::AsArray;
use datafusion::prelude::SessionContext;
use sluice_core::state::{State, StateSpec};
use sluice_core::{ClockChoice, StreamingContext};

type Emitted = Arc<Mutex<Vec<(i64, Vec<String>)>>>;

/// Keys come and go: `a` in batches 1-4, `b` in 3-7, `c` always, `d` in 6
/// and 10, `e` in 3 only (idle since before the restart, it times out after).
fn inputs(dir: &std::path::Path) {
    for f in 1..=10 {
        let mut lines = vec![format!("c {f}")];
        if f <= 4 {
            lines.push(format!("a {}", f * 10));
        }
        if (3..=7).contains(&f) {
            lines.push(format!("b {f}"));
        }
        if f == 3 {
            lines.push("e 3".to_string());
        }
        if f == 6 || f == 10 {
            lines.push("d 1".to_string());
        }
        std::fs::write(dir.join(format!("{f:02}.txt")), lines.join("\n")).unwrap();
    }
}

/// Runs the job up to batch `until` (counted from the stream's first),
/// appending what `tracked` emits to `out`.
async fn run(dir: &std::path::Path, until: u64, out: &Emitted) {
    let ssc = StreamingContext::with_registry(
        SessionContext::new(),
        Duration::from_secs(1),
        sluice_connectors::registry(),
    );
    ssc.set_clock(ClockChoice::Simulated);
    ssc.checkpoint(&dir.join("ck").display().to_string())
        .await
        .unwrap();
    ssc.sql(&format!(
        "CREATE SOURCE lines WITH (connector = 'replay', path = '{}');
         CREATE STREAM pairs AS
           SELECT split_part(value, ' ', 1) AS k, CAST(split_part(value, ' ', 2) AS BIGINT) AS v
           FROM lines;",
        dir.join("in").display()
    ))
    .await
    .unwrap();
    let spec = StateSpec::function(|k: &String, values: &[i64], state: &mut State<i64>| {
        if state.is_timing_out() {
            return Some(format!("{k} timed out at {}", state.get()));
        }
        let total = state.get_option().copied().unwrap_or(0) + values.iter().sum::<i64>();
        state.update(total);
        Some(format!("{k}={total}"))
    })
    .timeout(Duration::from_secs(2))
    .initial_state(vec![("a".to_string(), 100), ("z".to_string(), 7)]);
    ssc.map_with_state("tracked", "pairs", spec).await.unwrap();
    let sink = Arc::clone(out);
    ssc.foreach_batch("tracked", move |t, batches| {
        let sink = Arc::clone(&sink);
        async move {
            let mut rows: Vec<String> = batches
                .iter()
                .flat_map(|b| {
                    let c = b.column(0).as_string::<i32>();
                    (0..b.num_rows())
                        .map(|i| c.value(i).to_string())
                        .collect::<Vec<_>>()
                })
                .collect();
            rows.sort();
            sink.lock().unwrap().push((t, rows));
            Ok(())
        }
    })
    .await
    .unwrap();
    ssc.set_max_batches(until);
    ssc.start().await.unwrap();
    ssc.await_termination().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_state_resumes_with_its_seed_and_timeouts() {
    let whole = tempfile::tempdir().unwrap();
    std::fs::create_dir(whole.path().join("in")).unwrap();
    inputs(&whole.path().join("in"));
    let expected: Emitted = Arc::default();
    run(whole.path(), 10, &expected).await;

    let job = tempfile::tempdir().unwrap();
    std::fs::create_dir(job.path().join("in")).unwrap();
    inputs(&job.path().join("in"));
    let got: Emitted = Arc::default();
    run(job.path(), 4, &got).await;
    assert_eq!(got.lock().unwrap().len(), 4);
    run(job.path(), 10, &got).await;

    let expected = expected.lock().unwrap().clone();
    assert_eq!(*got.lock().unwrap(), expected);
    // The run saw what it is meant to test.
    let all: Vec<&String> = expected.iter().flat_map(|(_, r)| r).collect();
    for wanted in [
        "a=110",
        "a timed out at 200",
        "z timed out at 7",
        "d timed out at 1",
    ] {
        assert!(all.iter().any(|r| *r == wanted), "{wanted} in {expected:?}");
    }
    // Idle since batch 3: out at 6 s, two seconds later, after the restart.
    assert!(
        expected
            .iter()
            .any(|(t, rows)| *t == 6000 && rows.contains(&"e timed out at 3".to_string())),
        "{expected:?}"
    );
}

/// A source a checkpoint cannot resume is refused by name at start, with
/// what to do.
#[tokio::test]
async fn a_queue_source_is_refused_with_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let ssc = StreamingContext::with_registry(
        SessionContext::new(),
        Duration::from_secs(1),
        sluice_connectors::registry(),
    );
    ssc.checkpoint(&dir.path().join("ck").display().to_string())
        .await
        .unwrap();
    ssc.sql("CREATE SOURCE pushed (v BIGINT) WITH (connector = 'queue')")
        .await
        .unwrap();
    ssc.foreach_batch("pushed", |_, _| async { Ok(()) })
        .await
        .unwrap();
    let e = ssc.start().await.unwrap_err().to_string();
    assert!(
        e.contains("source 'pushed' (queue) cannot resume from a checkpoint: what it received would be lost on a restart; remove SET checkpoint to run it without one"),
        "{e}"
    );
}
