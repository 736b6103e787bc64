//! Windowed queries against a naive recomputation, on random input.
//!
//! Random batches (keys with nulls, values with nulls, floats with NaN,
//! infinities and 1e17, empty batches, batch sizes from 0 to 40) go through streams over `window(src, L, S)` with random
//! length and slide; for every emitted window the stream's rows must equal
//! DataFusion's answer to the same query over a table of the covered batches'
//! rows. Each aggregate family is covered: derived inverse (count, sum, avg),
//! retraction (median, bit_xor and a user's UDAF), panes (min, max, count
//! DISTINCT, string_agg, stddev, var_pop), text keys (short, long, NULL), mixed, global, FILTER/HAVING/WHERE, and plain
//! rows (recomputed), on one partition and on three. Windows are also checked to be emitted exactly at
//! Spark's times, including the first partial windows.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{AsArray, Float64Array, Int64Array, RecordBatch, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sluice_core::{ClockChoice, ManualClock, StreamingContext};

mod common;
use common::{
    Cell, Seen, collect, manual_context, random_batch, rows_of, run_batches, same, schema,
    sum_squares,
};

/// The queries checked, `{w}` standing for the window relation.
const QUERIES: &[(&str, &str)] = &[
    (
        "inverse",
        "SELECT k, count(*) AS c, count(v) AS cv, sum(v) AS s, avg(v) AS a, sum(f) AS sf, avg(f) AS af FROM {w} GROUP BY k",
    ),
    (
        "retract",
        "SELECT k, median(v) AS md, bit_xor(v) AS x, sum_squares(v) AS q FROM {w} GROUP BY k",
    ),
    (
        "panes",
        "SELECT k, min(v) AS mn, max(v) AS mx, count(DISTINCT v) AS d, string_agg(DISTINCT CAST(v AS VARCHAR), ',' ORDER BY CAST(v AS VARCHAR)) AS sa, stddev(v) AS sd, var_pop(f) AS vf FROM {w} GROUP BY k",
    ),
    (
        "mixed_global",
        "SELECT count(*) AS c, sum(v) AS s, max(v) AS m, sum_squares(v) AS q, min(v) AS mv, avg(f) AS af FROM {w}",
    ),
    (
        "filtered",
        "SELECT k % 2 AS parity, sum(v) FILTER (WHERE v > 0) AS sp, count(*) AS c, max(v) FILTER (WHERE f < 0) AS mneg FROM {w} WHERE v IS NULL OR v <> 7 GROUP BY k % 2 HAVING count(*) > 1",
    ),
    (
        "text_keys",
        "SELECT CASE WHEN k % 2 = 0 THEN CAST(k AS VARCHAR) ELSE 'a longer key ' || CAST(k AS VARCHAR) END AS ks, count(*) AS c, sum(v) AS s, median(v) AS md, min(v) AS mn FROM {w} GROUP BY CASE WHEN k % 2 = 0 THEN CAST(k AS VARCHAR) ELSE 'a longer key ' || CAST(k AS VARCHAR) END",
    ),
    ("rows", "SELECT k, v, f FROM {w} WHERE k IS NOT NULL"),
    (
        "bounds",
        "SELECT window_start, window_end, count(*) AS c, max(v) AS m FROM {w} GROUP BY window_start, window_end",
    ),
    (
        "limited",
        "SELECT count(*) AS c FROM (SELECT v FROM {w} WHERE v IS NOT NULL ORDER BY v LIMIT 5)",
    ),
];

/// The query over the covered rows, each with the window's bounds.
async fn naive(rows: Vec<RecordBatch>, sql: &str, bounds: (i64, i64)) -> Vec<RecordBatch> {
    let ctx = SessionContext::new();
    ctx.register_udaf(sum_squares());
    let mut fields: Vec<Field> = schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    for name in ["window_start", "window_end"] {
        fields.push(Field::new(
            name,
            DataType::Timestamp(TimeUnit::Millisecond, None),
            false,
        ));
    }
    let with_bounds = Arc::new(Schema::new(fields));
    let rows = rows
        .into_iter()
        .map(|b| {
            let n = b.num_rows();
            let mut columns = b.columns().to_vec();
            columns.push(Arc::new(TimestampMillisecondArray::from(vec![bounds.0; n])));
            columns.push(Arc::new(TimestampMillisecondArray::from(vec![bounds.1; n])));
            RecordBatch::try_new(Arc::clone(&with_bounds), columns).unwrap()
        })
        .collect();
    let table = MemTable::try_new(with_bounds, vec![rows]).unwrap();
    ctx.register_table("covered", Arc::new(table)).unwrap();
    ctx.sql(&sql.replace("{w}", "covered"))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap()
}

async fn check_case(seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let length = rng.random_range(1..=12i64);
    let slide = rng.random_range(1..=4i64);
    let batches: Vec<RecordBatch> = (0..rng.random_range(8..=26))
        .map(|_| random_batch(&mut rng))
        .collect();
    let case = format!(
        "seed {seed}: window length {length} s, slide {slide} s, {} batches, {} partition(s)",
        batches.len(),
        1 + seed % 2 * 2
    );

    // Odd seeds run every batch on the partitioned plan (3 partitions), where
    // a pane holds a key once per partition.
    let partitions = if seed % 2 == 1 { 3 } else { 1 };
    let (ssc, clock, queue) = manual_context(partitions).await;
    let window = format!("window(src, '{length} seconds', '{slide} seconds')");
    let mut seen: Vec<(&str, &str, Seen)> = Vec::new();
    for (name, sql) in QUERIES {
        ssc.sql(&format!(
            "CREATE STREAM {name} AS {}",
            sql.replace("{w}", &window)
        ))
        .await
        .unwrap_or_else(|e| panic!("{case}: {name}: {e}"));
        seen.push((name, sql, collect(&ssc, name).await));
    }
    run_batches(&ssc, &clock, &queue, &batches).await;

    // Batch i (0-based) has time (i + 1) s; zero time 0.
    let expected_times: Vec<i64> = (1..=batches.len() as i64)
        .map(|b| b * 1000)
        .filter(|t| t % (slide * 1000) == 0)
        .collect();
    for (name, sql, s) in seen {
        let got = s.lock().unwrap().clone();
        let times: Vec<i64> = got.iter().map(|(t, _)| *t).collect();
        assert_eq!(times, expected_times, "{case}: {name}: emission times");
        for (t, out) in got {
            let covered: Vec<RecordBatch> = batches
                .iter()
                .enumerate()
                .filter(|(i, _)| {
                    let bt = (*i as i64 + 1) * 1000;
                    bt <= t && bt > t - length * 1000
                })
                .map(|(_, b)| b.clone())
                .collect();
            let want = naive(covered, sql, (t - length * 1000, t)).await;
            let (g, w) = (rows_of(&out), rows_of(&want));
            assert!(
                same(&g, &w),
                "{case}: {name} at {t} ms:\n got  {g:?}\n want {w:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windowed_queries_equal_a_recomputation_on_random_input() {
    for seed in 0..common::seeds("WINDOW_SEEDS", 16) {
        check_case(seed).await;
    }
}

/// EXPLAIN names each aggregate's strategy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_names_the_strategy_of_each_aggregate() {
    let session = SessionContext::new();
    session.register_udaf(sum_squares());
    let ssc = StreamingContext::new(session, Duration::from_secs(1));
    ssc.queue_source("src", schema()).await.unwrap();
    let out = ssc
        .sql(
            "CREATE STREAM w AS SELECT k, count(*) AS c, sum_squares(v) AS q, max(v) AS m FROM window(src, '3 seconds') GROUP BY k;
             CREATE STREAM r AS SELECT * FROM window(src, '3 seconds');
             EXPLAIN w; EXPLAIN r;
             CREATE STREAM \"Odd.Name\" AS SELECT count(*) AS c FROM (SELECT k FROM window(src, '3 seconds') LIMIT 3);
             EXPLAIN \"Odd.Name\";",
        )
        .await
        .unwrap();
    let text = |o: &sluice_core::StatementOutput| -> Vec<(String, String)> {
        let sluice_core::StatementOutput::Rows { batches, .. } = o else {
            panic!("rows expected")
        };
        let b = &batches[0];
        (0..b.num_rows())
            .map(|r| {
                (
                    b.column(0).as_string::<i32>().value(r).to_string(),
                    b.column(1).as_string::<i32>().value(r).to_string(),
                )
            })
            .collect()
    };
    let w = text(&out[2]);
    let strategy = |item: &str| {
        w.iter()
            .find(|(i, _)| i.starts_with(item))
            .map(|(_, d)| d.split(':').next().unwrap_or_default().to_string())
            .unwrap_or_else(|| panic!("{item} missing from {w:?}"))
    };
    assert_eq!(strategy("count("), "incremental, inverse");
    assert_eq!(strategy("sum_squares("), "incremental, retraction");
    assert_eq!(strategy("max("), "incremental, panes");
    for (i, why) in [(3, "the query has no aggregate"), (5, "Limit")] {
        let r = text(&out[i]);
        let evaluation = r.iter().find(|(i, _)| i == "evaluation").unwrap();
        assert!(
            evaluation
                .1
                .starts_with("recomputed over the covered batches' rows")
                && evaluation.1.contains(why),
            "{evaluation:?}"
        );
    }
}

/// The embedding API's window helpers: Spark's names, the same operator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_api_window_operations() {
    let ssc = StreamingContext::new(SessionContext::new(), Duration::from_secs(1));
    let clock = Arc::new(ManualClock::new(0));
    ssc.set_clock(ClockChoice::Manual(Arc::clone(&clock)));
    let queue = ssc.queue_source("src", schema()).await.unwrap();
    let (l, s) = (Duration::from_secs(2), Duration::from_secs(1));
    ssc.reduce_by_key_and_window("by_key", "src", &["k"], &["sum(v) AS s"], l, s)
        .await
        .unwrap();
    ssc.count_by_window("total", "src", l, s).await.unwrap();
    ssc.count_by_value_and_window("by_value", "src", "k", l, s)
        .await
        .unwrap();
    ssc.reduce_by_window("extremes", "src", &["min(v) AS lo", "max(v) AS hi"], l, s)
        .await
        .unwrap();
    ssc.window("rows", "src", l, Duration::from_secs(2))
        .await
        .unwrap();
    let err = ssc
        .window("odd", "src", Duration::from_millis(1500), s)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("must be a multiple of the batch interval"),
        "{err}"
    );
    let mut seen = Vec::new();
    for name in ["by_key", "total", "by_value", "extremes", "rows"] {
        seen.push(collect(&ssc, name).await);
    }
    ssc.start().await.unwrap();
    let rows = |k: Vec<i64>, v: Vec<i64>| {
        let f = Float64Array::from(vec![0.0; k.len()]);
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(Int64Array::from(k)),
                Arc::new(Int64Array::from(v)),
                Arc::new(f),
            ],
        )
        .unwrap()
    };
    for (i, b) in [
        rows(vec![1, 2, 1], vec![10, 20, 30]),
        rows(vec![2], vec![5]),
        rows(vec![], vec![]),
    ]
    .into_iter()
    .enumerate()
    {
        queue.push(b).unwrap();
        clock.advance_ms(1_000);
        ssc.wait_for_batches(i as u64 + 1).await.unwrap();
    }
    ssc.stop(true).await.unwrap();
    let text = |s: &Seen| -> Vec<(i64, Vec<String>)> {
        s.lock()
            .unwrap()
            .iter()
            .map(|(t, b)| {
                let mut rows: Vec<String> = rows_of(b)
                    .into_iter()
                    .map(|r| {
                        r.iter()
                            .map(|c| match c {
                                Cell::Exact(s) => s.clone(),
                                Cell::Float(f) => f.map(|x| format!("{x:?}")).unwrap_or_default(),
                            })
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .collect();
                rows.sort();
                (*t, rows)
            })
            .collect()
    };
    let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        text(&seen[0]),
        vec![
            (1000, owned(&["1,40", "2,20"])),
            (2000, owned(&["1,40", "2,25"])),
            (3000, owned(&["2,5"])),
        ]
    );
    assert_eq!(
        text(&seen[1]),
        vec![
            (1000, owned(&["3"])),
            (2000, owned(&["4"])),
            (3000, owned(&["1"]))
        ]
    );
    assert_eq!(
        text(&seen[2]),
        vec![
            (1000, owned(&["1,2", "2,1"])),
            (2000, owned(&["1,2", "2,2"])),
            (3000, owned(&["2,1"])),
        ]
    );
    assert_eq!(
        text(&seen[3]),
        vec![
            (1000, owned(&["10,30"])),
            (2000, owned(&["5,30"])),
            (3000, owned(&["5,5"])),
        ]
    );
    // window(2 s, 2 s): emitted at 2000 only, with both batches' rows.
    assert_eq!(
        text(&seen[4]),
        vec![(
            2000,
            owned(&["1,10,0.0", "1,30,0.0", "2,20,0.0", "2,5,0.0"])
        )]
    );
}
