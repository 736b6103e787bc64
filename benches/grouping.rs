//! Grouping text keys: DataFusion's `GroupValues` for one `Utf8` column (a
//! new table every batch, as its aggregate builds one every run) against
//! sluice's `KeyInterner` (kept from batch to batch,
//! `sluice_core::interned_keys`), on the word count's keys: 400k words a
//! batch drawn Zipf-wise from 100k, cut in two partitions' halves, each
//! partition with its own table or interner, one thread.
//!
//! ```text
//! cargo bench -p sluice-benches --bench grouping
//! ```

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, ArrayRef, AsArray, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::logical_expr::EmitTo;
use datafusion::physical_plan::aggregates::group_values::new_group_values;
use datafusion::physical_plan::aggregates::order::GroupOrdering;
use sluice_connectors::words::WordsSource;
use sluice_core::interned_keys::KeyInterner;

const BATCHES: usize = 13;
const ROUNDS: usize = 7;

fn main() {
    let vocabulary: Vec<String> = (0..100_000).map(|i| format!("w{i}")).collect();
    let source = WordsSource::new(7, 200_000, 2, vocabulary, Some(1.0)).expect("words");
    // Each batch's words, in two halves (the two partitions).
    let mut halves: Vec<StringArray> = Vec::new();
    for i in 1..=BATCHES {
        let lines = source.generate(i as i64 * 1000).expect("generate");
        let lines = lines.column(0).as_string::<i32>();
        let words: Vec<&str> = lines.iter().flatten().flat_map(|l| l.split(' ')).collect();
        let half = words.len() / 2;
        halves.push(StringArray::from(words[..half].to_vec()));
        halves.push(StringArray::from(words[half..].to_vec()));
    }
    let keys: usize = halves.iter().map(|h| h.len()).sum();
    let schema = Arc::new(Schema::new(vec![Field::new("w", DataType::Utf8, true)]));
    let per_key = |d: Duration| d.as_nanos() as f64 / keys as f64;

    let mut datafusion = Vec::new();
    let mut interned = Vec::new();
    let mut groups = Vec::new();
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let mut found = 0;
        for half in &halves {
            let mut table =
                new_group_values(Arc::clone(&schema), &GroupOrdering::None).expect("table");
            table
                .intern(&[Arc::new(half.clone()) as ArrayRef], &mut groups)
                .expect("intern");
            found += table.emit(EmitTo::All).expect("emit")[0].len();
        }
        datafusion.push(started.elapsed());

        let mut interners = [KeyInterner::default(), KeyInterner::default()];
        let started = Instant::now();
        let mut ours = 0;
        for (i, half) in halves.iter().enumerate() {
            let interner = &mut interners[i % 2];
            interner.start_run();
            interner.group(half, &mut groups);
            ours += interner.group_keys(&DataType::Utf8).expect("keys").len();
        }
        interned.push(started.elapsed());
        assert_eq!(found, ours, "both find the same groups");
    }
    println!(
        "{BATCHES} batches of 400k words (Zipf over 100k), two partitions, {ROUNDS} rounds; ns per key, min / median / max:"
    );
    for (name, times) in [
        ("DataFusion GroupValues, new every batch", datafusion),
        ("KeyInterner, kept across batches", interned),
    ] {
        let s = common::stats(times);
        println!(
            "{name:42} {:5.1} / {:5.1} / {:5.1}",
            per_key(s.min),
            per_key(s.median),
            per_key(s.max)
        );
    }
}
