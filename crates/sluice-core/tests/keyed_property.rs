//! `GROUP BY ... EMIT CHANGES | EMIT SNAPSHOT` against a naive model on
//! random batches: after each batch, EMIT SNAPSHOT must equal the same
//! aggregate over every row so far, and EMIT CHANGES the same restricted to
//! the keys the batch touched (nothing for a batch that touched none).
//! Aggregates of every kind: count/sum/avg, min/max, count DISTINCT, a
//! float variance, a user's UDAF, FILTER, WHERE and HAVING; with and without
//! GROUP BY; on one partition and on three.

use std::sync::Arc;

use arrow::array::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

mod common;
use common::{
    collect, manual_context, random_batch, rows_of, run_batches, same, schema, sum_squares,
};

/// `(name, aggregate query over {s}, grouped)`.
const QUERIES: &[(&str, &str, bool)] = &[
    (
        "sums",
        "SELECT k, count(*) AS c, count(v) AS cv, sum(v) AS s, avg(f) AS af FROM {s} GROUP BY k",
        true,
    ),
    (
        "others",
        "SELECT k, min(v) AS mn, max(v) AS mx, count(DISTINCT v) AS d, var_pop(f) AS vf, sum_squares(v) AS q FROM {s} GROUP BY k",
        true,
    ),
    (
        "filtered",
        "SELECT k % 2 AS parity, sum(v) FILTER (WHERE v > 0) AS sp, count(*) AS c FROM {s} WHERE v IS NULL OR v <> 7 GROUP BY k % 2 HAVING count(*) > 2",
        true,
    ),
    (
        "global",
        "SELECT count(*) AS c, sum(v) AS s, max(v) AS m FROM {s}",
        false,
    ),
];

async fn naive(rows: &[RecordBatch], sql: &str) -> Vec<RecordBatch> {
    let ctx = SessionContext::new();
    ctx.register_udaf(sum_squares());
    let table = MemTable::try_new(schema(), vec![rows.to_vec()]).unwrap();
    ctx.register_table("seen", Arc::new(table)).unwrap();
    ctx.sql(&sql.replace("{s}", "seen"))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap()
}

/// The keys (`k`, or `k % 2` for "filtered") a batch touches, as SQL.
fn touched_filter(name: &str, batch: &RecordBatch) -> Option<String> {
    use arrow::array::{Array, AsArray};
    let k = batch
        .column(0)
        .as_primitive::<arrow::datatypes::Int64Type>();
    let v = batch
        .column(1)
        .as_primitive::<arrow::datatypes::Int64Type>();
    // Rows the WHERE of "filtered" keeps.
    let kept = |i: usize| name != "filtered" || v.is_null(i) || v.value(i) != 7;
    let mut keys: Vec<String> = (0..batch.num_rows())
        .filter(|&i| kept(i))
        .map(|i| {
            if k.is_null(i) {
                "NULL".to_string()
            } else if name == "filtered" {
                (k.value(i) % 2).to_string()
            } else {
                k.value(i).to_string()
            }
        })
        .collect();
    keys.sort();
    keys.dedup();
    if keys.is_empty() {
        return None;
    }
    let column = if name == "filtered" { "parity" } else { "k" };
    let null = keys.iter().any(|k| k == "NULL");
    let values: Vec<&String> = keys.iter().filter(|k| *k != "NULL").collect();
    let mut parts = Vec::new();
    if !values.is_empty() {
        parts.push(format!(
            "{column} IN ({})",
            values
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if null {
        parts.push(format!("{column} IS NULL"));
    }
    Some(parts.join(" OR "))
}

async fn check_case(seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let batches: Vec<RecordBatch> = (0..rng.random_range(6..=16))
        .map(|_| random_batch(&mut rng))
        .collect();
    let partitions = if seed % 2 == 1 { 3 } else { 1 };
    let case = format!(
        "seed {seed}: {} batches, {partitions} partition(s)",
        batches.len()
    );
    let (ssc, clock, queue) = manual_context(partitions).await;
    let mut seen = Vec::new();
    for (name, sql, grouped) in QUERIES {
        for emit in ["CHANGES", "SNAPSHOT"] {
            let stream = format!("{name}_{}", emit.to_lowercase());
            ssc.sql(&format!(
                "CREATE STREAM {stream} AS {} EMIT {emit}",
                sql.replace("{s}", "src")
            ))
            .await
            .unwrap_or_else(|e| panic!("{case}: {stream}: {e}"));
            seen.push((*name, *sql, *grouped, emit, collect(&ssc, &stream).await));
        }
    }
    run_batches(&ssc, &clock, &queue, &batches).await;
    for (name, sql, grouped, emit, got) in seen {
        let got = got.lock().unwrap().clone();
        assert_eq!(
            got.len(),
            batches.len(),
            "{case}: {name} {emit}: a result per batch"
        );
        for (i, (t, out)) in got.iter().enumerate() {
            assert_eq!(*t, (i as i64 + 1) * 1000);
            let so_far = &batches[..=i];
            let want = if emit == "SNAPSHOT" {
                naive(so_far, sql).await
            } else if !grouped {
                if batches[i].num_rows() == 0 {
                    vec![]
                } else {
                    naive(so_far, sql).await
                }
            } else {
                match touched_filter(name, &batches[i]) {
                    None => vec![],
                    Some(filter) => {
                        naive(so_far, &format!("SELECT * FROM ({sql}) WHERE {filter}")).await
                    }
                }
            };
            let (g, w) = (rows_of(out), rows_of(&want));
            assert!(
                same(&g, &w),
                "{case}: {name} EMIT {emit} at {t} ms:\n got  {g:?}\n want {w:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_aggregates_equal_a_recomputation_on_random_input() {
    let seeds = common::seeds("KEYED_SEEDS", 12);
    for seed in 0..seeds {
        check_case(seed).await;
    }
}
