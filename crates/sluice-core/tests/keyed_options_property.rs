//! `state_timeout`, `initial_state` and `EVICT WHEN` against a naive model
//! on random batches: a map from key to (count, sum, max, last batch with
//! rows), updated by hand. Checks that timeouts fire at the right batch,
//! exactly once and only for idle keys; that seeded keys start from the
//! table (duplicate keys combined); that an evicted key is emitted with its
//! last values, then starts fresh. Every subset of the options, both EMIT
//! modes, on one partition and on three; with a few keys, and with
//! thousands (so the store compacts under timeouts and evictions).

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

mod common;
use common::{Cell, collect, manual_context, random_batch, rows_of, run_batches, same, sort_rows};

const QUERY: &str = "SELECT k, count(*) AS c, sum(v) AS s, max(v) AS m FROM src GROUP BY k";

type Key = Option<i64>;

#[derive(Debug, Clone, Copy)]
struct Value {
    c: i64,
    s: Option<i64>,
    m: Option<i64>,
}

fn add(a: Option<i64>, b: Option<i64>, f: fn(i64, i64) -> i64) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(f(x, y)),
        (x, None) => x,
        (None, y) => y,
    }
}

impl Value {
    fn combine(self, o: Value) -> Value {
        Value {
            c: self.c + o.c,
            s: add(self.s, o.s, |x, y| x + y),
            m: add(self.m, o.m, i64::max),
        }
    }
}

/// One stream's options and its model.
struct Model {
    name: String,
    snapshot: bool,
    timeout_s: Option<i64>,
    seed: Option<Vec<(Key, Value)>>,
    /// `c >= .0 OR s > .1`
    evict: Option<(i64, i64)>,
    state: BTreeMap<Key, (Value, i64)>,
}

fn cell(v: Option<i64>) -> Cell {
    Cell::Exact(v.map(|v| v.to_string()).unwrap_or_default())
}

impl Model {
    fn sql(&self) -> String {
        let mut with = Vec::new();
        if let Some(t) = self.timeout_s {
            with.push(format!("state_timeout = '{t} seconds'"));
        }
        if self.seed.is_some() {
            with.push(format!("initial_state = '{}_seed'", self.name));
        }
        let with = if with.is_empty() {
            String::new()
        } else {
            format!("WITH ({})", with.join(", "))
        };
        let evict = self
            .evict
            .map(|(c, s)| format!(" EVICT WHEN c >= {c} OR s > {s}"))
            .unwrap_or_default();
        format!(
            "CREATE STREAM {} {with} AS {QUERY} EMIT {}{evict}",
            self.name,
            if self.snapshot { "SNAPSHOT" } else { "CHANGES" }
        )
    }

    fn seed_sql(&self) -> Option<String> {
        let rows: Vec<String> = self
            .seed
            .as_ref()?
            .iter()
            .map(|(k, v)| {
                let f = |x: Option<i64>| x.map(|x| x.to_string()).unwrap_or("NULL".into());
                format!("({}, {}, {}, {})", f(*k), v.c, f(v.s), f(v.m))
            })
            .collect();
        Some(format!(
            "CREATE TABLE {}_seed (k BIGINT, c BIGINT, s BIGINT, m BIGINT) AS VALUES {}",
            self.name,
            rows.join(", ")
        ))
    }

    fn row(&self, k: Key, v: Value, timed_out: bool) -> Vec<Cell> {
        let mut row = vec![cell(k), Cell::Exact(v.c.to_string()), cell(v.s), cell(v.m)];
        if self.timeout_s.is_some() {
            row.push(Cell::Exact(timed_out.to_string()));
        }
        row
    }

    /// What the stream emits for batch `batch` at `t`.
    fn step(&mut self, t: i64, batch: &RecordBatch) -> Vec<Vec<Cell>> {
        if let Some(seed) = self.seed.take() {
            for (k, v) in seed {
                let entry = self.state.get(&k).map(|e| e.0.combine(v)).unwrap_or(v);
                self.state.insert(k, (entry, t));
            }
        }
        let keys = batch.column(0).as_primitive::<Int64Type>();
        let values = batch.column(1).as_primitive::<Int64Type>();
        let mut touched: BTreeMap<Key, Value> = BTreeMap::new();
        for i in 0..batch.num_rows() {
            let k = keys.is_valid(i).then(|| keys.value(i));
            let v = values.is_valid(i).then(|| values.value(i));
            let one = Value { c: 1, s: v, m: v };
            let e = touched.get(&k).map(|e| e.combine(one)).unwrap_or(one);
            touched.insert(k, e);
        }
        for (k, v) in &touched {
            let entry = self.state.get(k).map(|e| e.0.combine(*v)).unwrap_or(*v);
            self.state.insert(*k, (entry, t));
        }
        let mut timed_out = Vec::new();
        if let Some(s) = self.timeout_s {
            let idle: Vec<Key> = self
                .state
                .iter()
                .filter(|(_, (_, last))| *last < t - s * 1000)
                .map(|(k, _)| *k)
                .collect();
            for k in idle {
                let (v, _) = self.state.remove(&k).unwrap();
                timed_out.push(self.row(k, v, true));
            }
        }
        let mut out: Vec<Vec<Cell>> = if self.snapshot {
            self.state
                .iter()
                .map(|(k, (v, _))| self.row(*k, *v, false))
                .collect()
        } else {
            touched
                .keys()
                .map(|k| self.row(*k, self.state[k].0, false))
                .collect()
        };
        out.extend(timed_out);
        if let Some((c, s)) = self.evict {
            for k in touched.keys() {
                let v = self.state[k].0;
                if v.c >= c || v.s.is_some_and(|x| x > s) {
                    self.state.remove(k);
                }
            }
        }
        out
    }
}

fn random_seed(rng: &mut StdRng) -> Vec<(Key, Value)> {
    (0..rng.random_range(1..=6))
        .map(|_| {
            let k = (!rng.random_bool(0.1)).then(|| rng.random_range(-1..7));
            let s = (!rng.random_bool(0.2)).then(|| rng.random_range(-20..=20));
            let m = (!rng.random_bool(0.2)).then(|| rng.random_range(-50..=50));
            (
                k,
                Value {
                    c: rng.random_range(1..=5),
                    s,
                    m,
                },
            )
        })
        .collect()
}

/// A batch over 2,000 keys (hundreds of rows), so that the state store
/// compacts along the way (it does past twice its live keys plus 1,024 rows).
fn wide_batch(rng: &mut StdRng) -> RecordBatch {
    use arrow::array::{Float64Array, Int64Array};
    use std::sync::Arc;
    let rows = rng.random_range(300..=800);
    let k: Int64Array = (0..rows).map(|_| Some(rng.random_range(0..2000))).collect();
    let v: Int64Array = (0..rows)
        .map(|_| (!rng.random_bool(0.1)).then(|| rng.random_range(-20..=20)))
        .collect();
    let f = Float64Array::from(vec![None; rows]);
    RecordBatch::try_new(
        common::schema(),
        vec![Arc::new(k), Arc::new(v), Arc::new(f)],
    )
    .unwrap()
}

async fn check_case(seed: u64, wide: bool) {
    let mut rng = StdRng::seed_from_u64(seed);
    let batches: Vec<RecordBatch> = if wide {
        (0..20).map(|_| wide_batch(&mut rng)).collect()
    } else {
        (0..rng.random_range(6..=16))
            .map(|_| random_batch(&mut rng))
            .collect()
    };
    let partitions = if seed % 2 == 1 { 3 } else { 1 };
    let case = format!(
        "seed {seed}: {} batches, {partitions} partition(s)",
        batches.len()
    );
    let (ssc, clock, queue) = manual_context(partitions).await;
    let mut models = Vec::new();
    // Every subset of the three options, in both modes.
    for options in 0..8u8 {
        for snapshot in [false, true] {
            let mut model = Model {
                name: format!(
                    "s{options}_{}",
                    if snapshot { "snapshot" } else { "changes" }
                ),
                snapshot,
                timeout_s: (options & 1 != 0).then(|| rng.random_range(1..=3)),
                seed: (options & 2 != 0).then(|| random_seed(&mut rng)),
                evict: (options & 4 != 0)
                    .then(|| (rng.random_range(3..=12), rng.random_range(10..=80))),
                state: BTreeMap::new(),
            };
            if let Some(sql) = model.seed_sql() {
                ssc.sql(&sql)
                    .await
                    .unwrap_or_else(|e| panic!("{case}: {sql}: {e}"));
            }
            let sql = model.sql();
            ssc.sql(&sql)
                .await
                .unwrap_or_else(|e| panic!("{case}: {sql}: {e}"));
            let seen = collect(&ssc, &model.name).await;
            model.name = sql;
            models.push((model, seen));
        }
    }
    run_batches(&ssc, &clock, &queue, &batches).await;
    for (mut model, seen) in models {
        let seen = seen.lock().unwrap().clone();
        assert_eq!(
            seen.len(),
            batches.len(),
            "{case}: {}: a result per batch",
            model.name
        );
        for (i, (t, out)) in seen.iter().enumerate() {
            let mut want = model.step(*t, &batches[i]);
            let got = rows_of(out);
            // rows_of sorts; sort the model's rows the same way.
            sort_rows(&mut want);
            assert!(
                same(&got, &want),
                "{case}: {} at {t} ms:\n got  {got:?}\n want {want:?}",
                model.name
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_seeds_and_evictions_equal_a_model_on_random_input() {
    let seeds = common::seeds("KEYED_SEEDS", 12);
    for seed in 0..seeds {
        check_case(seed, false).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_thousands_of_keys_through_store_compactions() {
    for seed in 0..3 {
        check_case(seed, true).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_shows_the_options() {
    use arrow::array::AsArray;
    use sluice_core::StatementOutput;
    let (ssc, _clock, _queue) = manual_context(1).await;
    ssc.sql(
        "CREATE STREAM t WITH (state_timeout = '90 seconds') AS
           SELECT k, count(*) AS c FROM src GROUP BY k EMIT CHANGES EVICT WHEN c > 5",
    )
    .await
    .unwrap();
    let out = ssc.sql("EXPLAIN t").await.unwrap();
    let Some(StatementOutput::Rows { batches, .. }) = out.first() else {
        panic!("EXPLAIN gives rows")
    };
    let b = &batches[0];
    let rows: Vec<(String, String)> = (0..b.num_rows())
        .map(|i| {
            (
                b.column(0).as_string::<i32>().value(i).to_string(),
                b.column(1).as_string::<i32>().value(i).to_string(),
            )
        })
        .collect();
    let detail = |item: &str| {
        rows.iter()
            .find(|(i, _)| i == item)
            .map(|(_, d)| d.clone())
            .unwrap_or_else(|| panic!("no '{item}' in {rows:?}"))
    };
    assert!(
        detail("state")
            .contains("EMIT CHANGES (keys touched each batch) per key across batches: 0 keys")
    );
    assert_eq!(
        detail("state_timeout"),
        "90 seconds: a key idle longer is emitted once with timed_out = true, then dropped"
    );
    assert!(
        detail("evict when")
            .starts_with("touched keys whose values pass it are emitted, then dropped")
    );
    assert!(
        detail("evict when").contains("__sluice_evict"),
        "{}",
        detail("evict when")
    );
}
