//! `map_with_state` (with timeout, initial state, removal, 1–3 partitions),
//! `state_snapshots` and `update_state_by_key` against a naive model on
//! random batches; and the errors a misused function or a key of the wrong
//! type gets.

use std::collections::BTreeMap;
use std::time::Duration;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use sluice_core::state::{State, StateSpec};

mod common;
use common::{Cell, collect, manual_context, random_batch, rows_of, run_batches, same, sort_rows};

type Key = Option<i64>;

/// The value: the rest of the source's columns, as a record.
#[derive(Deserialize)]
struct Row {
    v: Option<i64>,
    #[allow(dead_code)]
    f: Option<f64>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
struct Tally {
    count: i64,
    sum: i64,
}

fn cell(v: Option<i64>) -> Cell {
    Cell::Exact(v.map(|v| v.to_string()).unwrap_or_default())
}

/// Rows in the order `rows_of` gives.
fn sorted(mut rows: Vec<Vec<Cell>>) -> Vec<Vec<Cell>> {
    sort_rows(&mut rows);
    rows
}

fn rows_by_key(batch: &RecordBatch) -> BTreeMap<Key, Vec<Option<i64>>> {
    let k = batch.column(0).as_primitive::<Int64Type>();
    let v = batch.column(1).as_primitive::<Int64Type>();
    let mut out: BTreeMap<Key, Vec<Option<i64>>> = BTreeMap::new();
    for i in 0..batch.num_rows() {
        out.entry(k.is_valid(i).then(|| k.value(i)))
            .or_default()
            .push(v.is_valid(i).then(|| v.value(i)));
    }
    out
}

async fn check_case(seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let batches: Vec<RecordBatch> = (0..rng.random_range(6..=16))
        .map(|_| random_batch(&mut rng))
        .collect();
    let partitions = rng.random_range(1..=3);
    let timeout_s = rng.random_range(1..=3i64);
    let limit = rng.random_range(4..=15i64);
    let initial: Vec<(Key, Tally)> = (0..rng.random_range(0..=4))
        .map(|i| {
            (
                Some(i * 3 - 1),
                Tally {
                    count: rng.random_range(0..3),
                    sum: rng.random_range(-9..9),
                },
            )
        })
        .collect();
    let case = format!(
        "seed {seed}: {} batches, {partitions} partition(s), timeout {timeout_s} s, removed at {limit}, initial {initial:?}",
        batches.len()
    );
    let (ssc, clock, queue) = manual_context(1).await;

    // A running tally per key, dropped at `limit` rows; timing-out keys are
    // emitted with their last tally.
    let spec = StateSpec::function(move |k: &Key, rows: &[Row], state: &mut State<Tally>| {
        let mut tally = state
            .get_option()
            .copied()
            .unwrap_or(Tally { count: 0, sum: 0 });
        if state.is_timing_out() {
            return Some((*k, tally.count, tally.sum, true));
        }
        tally.count += rows.len() as i64;
        tally.sum += rows.iter().filter_map(|r| r.v).sum::<i64>();
        if tally.count >= limit {
            state.remove();
        } else {
            state.update(tally);
        }
        Some((*k, tally.count, tally.sum, false))
    })
    .timeout(Duration::from_secs(timeout_s as u64))
    .initial_state(initial.clone())
    .num_partitions(partitions);
    ssc.map_with_state("tallies", "src", spec).await.unwrap();
    ssc.state_snapshots("snapshots", "tallies").await.unwrap();
    // updateStateByKey: counts that also decay by one each batch without rows.
    ssc.update_state_by_key::<Key, _, _, _>(
        "decaying",
        "src",
        move |rows: &[Row], count: Option<i64>| {
            let c = count.unwrap_or(0);
            if rows.is_empty() {
                (c > 1).then_some(c - 1)
            } else {
                Some(c + rows.len() as i64).filter(|&c| c < limit)
            }
        },
    )
    .await
    .unwrap();
    let tallies = collect(&ssc, "tallies").await;
    let snapshots = collect(&ssc, "snapshots").await;
    let decaying = collect(&ssc, "decaying").await;
    run_batches(&ssc, &clock, &queue, &batches).await;

    let mut state: BTreeMap<Key, (Tally, i64)> = BTreeMap::new();
    let mut counts: BTreeMap<Key, i64> = BTreeMap::new();
    let (tallies, snapshots, decaying) = (
        tallies.lock().unwrap().clone(),
        snapshots.lock().unwrap().clone(),
        decaying.lock().unwrap().clone(),
    );
    assert_eq!(
        (tallies.len(), snapshots.len(), decaying.len()),
        (batches.len(), batches.len(), batches.len()),
        "{case}"
    );
    for (i, batch) in batches.iter().enumerate() {
        let t = (i as i64 + 1) * 1000;
        if i == 0 {
            for (k, s) in &initial {
                state.insert(*k, (*s, t));
            }
        }
        let touched = rows_by_key(batch);
        let mut want = Vec::new();
        for (k, vs) in &touched {
            let mut tally = state
                .get(k)
                .map(|e| e.0)
                .unwrap_or(Tally { count: 0, sum: 0 });
            tally.count += vs.len() as i64;
            tally.sum += vs.iter().flatten().sum::<i64>();
            if tally.count >= limit {
                state.remove(k);
            } else {
                state.insert(*k, (tally, t));
            }
            want.push(vec![
                cell(*k),
                cell(Some(tally.count)),
                cell(Some(tally.sum)),
                Cell::Exact("false".into()),
            ]);
        }
        let idle: Vec<Key> = state
            .iter()
            .filter(|(_, (_, last))| *last < t - timeout_s * 1000)
            .map(|(k, _)| *k)
            .collect();
        for k in idle {
            let (tally, _) = state.remove(&k).unwrap();
            want.push(vec![
                cell(k),
                cell(Some(tally.count)),
                cell(Some(tally.sum)),
                Cell::Exact("true".into()),
            ]);
        }
        let got = rows_of(&tallies[i].1);
        let want = sorted(want);
        assert!(
            same(&got, &want),
            "{case}: tallies at {t}:\n got  {got:?}\n want {want:?}"
        );

        let got = rows_of(&snapshots[i].1);
        let want = sorted(
            state
                .iter()
                .map(|(k, (s, _))| vec![cell(*k), cell(Some(s.count)), cell(Some(s.sum))])
                .collect(),
        );
        assert!(
            same(&got, &want),
            "{case}: snapshots at {t}:\n got  {got:?}\n want {want:?}"
        );

        let keys: std::collections::BTreeSet<Key> =
            counts.keys().chain(touched.keys()).copied().collect();
        for k in keys {
            let c = counts.get(&k).copied().unwrap_or(0);
            let next = match touched.get(&k) {
                None => (c > 1).then_some(c - 1),
                Some(vs) => Some(c + vs.len() as i64).filter(|&c| c < limit),
            };
            match next {
                Some(c) => counts.insert(k, c),
                None => counts.remove(&k),
            };
        }
        let got = rows_of(&decaying[i].1);
        let want = sorted(
            counts
                .iter()
                .map(|(k, c)| vec![cell(*k), cell(Some(*c))])
                .collect(),
        );
        assert!(
            same(&got, &want),
            "{case}: update_state_by_key at {t}:\n got  {got:?}\n want {want:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_functions_equal_a_model_on_random_input() {
    let seeds = common::seeds("KEYED_SEEDS", 12);
    for seed in 0..seeds {
        check_case(seed).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_columns_come_from_the_types() {
    let (ssc, _clock, _queue) = manual_context(1).await;
    #[derive(Serialize, Deserialize)]
    struct Out {
        key: Option<i64>,
        rows: usize,
    }
    let spec = StateSpec::function(|k: &Key, rows: &[Row], _: &mut State<i64>| {
        Some(Out {
            key: *k,
            rows: rows.len(),
        })
    });
    ssc.map_with_state("a", "src", spec).await.unwrap();
    let spec =
        StateSpec::function(|_: &Key, rows: &[Row], _: &mut State<i64>| Some(rows.len() as i64));
    ssc.map_with_state("b", "src", spec).await.unwrap();
    ssc.state_snapshots("b_snapshots", "b").await.unwrap();
    for (stream, want) in [
        ("a", &["key", "rows", "batch_time"][..]),
        ("b", &["value", "batch_time"]),
        ("b_snapshots", &["k", "state", "batch_time"]),
    ] {
        let df = ssc.session().table(stream).await.unwrap();
        let names: Vec<&str> = df
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(names, want);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misuse_and_wrong_types_fail_the_batch_with_a_clear_error() {
    // update() while timing out.
    let (ssc, clock, queue) = manual_context(1).await;
    let spec = StateSpec::function(|_: &Key, _: &[Row], state: &mut State<i64>| {
        state.update(1);
        None::<i64>
    })
    .timeout(Duration::from_secs(1));
    ssc.map_with_state("bad", "src", spec).await.unwrap();
    let _seen = collect(&ssc, "bad").await;
    ssc.start().await.unwrap();
    let mut rng = StdRng::seed_from_u64(1);
    let mut batch = random_batch(&mut rng);
    while batch.num_rows() == 0 {
        batch = random_batch(&mut rng);
    }
    queue.push(batch).unwrap();
    clock.advance_ms(1000);
    clock.advance_ms(1000);
    clock.advance_ms(1000);
    let err = ssc.await_termination().await.unwrap_err().to_string();
    assert!(
        err.contains(
            "'bad' at batch 3000 ms: the function called update() on a key that is timing out"
        ),
        "{err}"
    );

    // A key column that does not read as the key type.
    let (ssc, clock, queue) = manual_context(1).await;
    let spec = StateSpec::function(|_: &String, _: &[Row], _: &mut State<i64>| None::<i64>);
    ssc.map_with_state("typed", "src", spec).await.unwrap();
    let _seen = collect(&ssc, "typed").await;
    ssc.start().await.unwrap();
    queue.push(batch_with_rows()).unwrap();
    clock.advance_ms(1000);
    let err = ssc.await_termination().await.unwrap_err().to_string();
    assert!(
        err.contains("'typed': the key column 'k' (Int64) does not read as alloc::string::String"),
        "{err}"
    );

    // Not a source or stream; too few columns.
    let (ssc, _, _) = manual_context(1).await;
    let spec = StateSpec::function(|_: &Key, _: &[Row], _: &mut State<i64>| None::<i64>);
    let err = ssc
        .map_with_state("x", "nowhere", spec)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("'x' reads 'nowhere', which is not a source or stream"),
        "{err}"
    );
    ssc.sql("CREATE STREAM ks AS SELECT k FROM src")
        .await
        .unwrap();
    let spec = StateSpec::function(|_: &Key, _: &[i64], _: &mut State<i64>| None::<i64>);
    let err = ssc
        .map_with_state("y", "ks", spec)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("'y' reads 'ks', which has 1 column(s); the first column is the key"),
        "{err}"
    );
    let err = ssc
        .state_snapshots("z", "ks")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("state_snapshots 'z': 'ks' is not a map_with_state stream"),
        "{err}"
    );
}

fn batch_with_rows() -> RecordBatch {
    let mut rng = StdRng::seed_from_u64(3);
    loop {
        let b = random_batch(&mut rng);
        if b.num_rows() > 0 {
            return b;
        }
    }
}
