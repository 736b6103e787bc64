//! How batches look when printed: Spark's `print(n)` format and a boxed table.
//!
//! Spark's `DStream.print(n)` prints, for each batch:
//!
//! ```text
//! -------------------------------------------
//! Time: 1000 ms
//! -------------------------------------------
//! (Hello,3)
//! (World,1)
//! ...
//!
//! ```
//!
//! the first `n` rows, `...` when there are more, and an empty line. A
//! one-column row prints its value, a wider row prints `(a,b,c)`, NULL prints `null`.
//!
//! ```
//! use std::sync::Arc;
//! use arrow::array::{Int64Array, StringArray, RecordBatch};
//! use sluice_core::render::spark_print;
//! let batch = RecordBatch::try_from_iter(vec![
//!     ("word", Arc::new(StringArray::from(vec![Some("a"), None])) as _),
//!     ("n", Arc::new(Int64Array::from(vec![1, 2])) as _),
//! ]).unwrap();
//! let text = spark_print(1000, &[batch], 1).unwrap();
//! assert_eq!(text, "-------------------------------------------\nTime: 1000 ms\n\
//!                   -------------------------------------------\n(a,1)\n...\n\n");
//! ```

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::util::display::{ArrayFormatter, FormatOptions};

/// Spark's separator line: 43 dashes.
pub const DASHES: &str = "-------------------------------------------";

fn format_options() -> FormatOptions<'static> {
    FormatOptions::default().with_null("null")
}

/// Renders up to `limit` rows the way Spark prints a row: a value, or `(a,b,c)`.
pub fn spark_rows(batches: &[RecordBatch], limit: usize) -> Result<Vec<String>, ArrowError> {
    let options = format_options();
    let mut out = Vec::new();
    for batch in batches {
        if out.len() >= limit {
            break;
        }
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()?;
        let take = (limit - out.len()).min(batch.num_rows());
        for row in 0..take {
            let line = if formatters.len() == 1 {
                formatters[0].value(row).to_string()
            } else {
                let cells: Vec<String> = formatters
                    .iter()
                    .map(|f| f.value(row).to_string())
                    .collect();
                format!("({})", cells.join(","))
            };
            out.push(line);
        }
    }
    Ok(out)
}

/// The header Spark prints before a batch's rows.
pub fn spark_header(batch_time: i64) -> String {
    format!("{DASHES}\nTime: {batch_time} ms\n{DASHES}\n")
}

/// One batch in Spark's `print(n)` format (see the module docs).
pub fn spark_print(
    batch_time: i64,
    batches: &[RecordBatch],
    n: usize,
) -> Result<String, ArrowError> {
    let rows = spark_rows(batches, n.saturating_add(1))?;
    let mut text = spark_header(batch_time);
    for row in rows.iter().take(n) {
        text.push_str(row);
        text.push('\n');
    }
    if rows.len() > n {
        text.push_str("...\n");
    }
    text.push('\n');
    Ok(text)
}

/// One batch as a boxed table of its first `n` rows, under Spark's header.
pub fn table_print(
    batch_time: i64,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    n: usize,
) -> Result<String, ArrowError> {
    let total: usize = batches.iter().map(|b| b.num_rows()).sum();
    let mut text = spark_header(batch_time);
    text.push_str(&boxed_table(schema, batches, n)?);
    text.push('\n');
    if total > n {
        text.push_str(&format!("({total} rows, first {n} shown)\n"));
    }
    text.push('\n');
    Ok(text)
}

/// A boxed table of the first `n` rows (the column header alone when there are none).
pub fn boxed_table(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    n: usize,
) -> Result<String, ArrowError> {
    let mut shown = Vec::new();
    let mut left = n;
    for b in batches {
        if left == 0 {
            break;
        }
        let take = left.min(b.num_rows());
        shown.push(b.slice(0, take));
        left -= take;
    }
    if shown.is_empty() {
        shown.push(RecordBatch::new_empty(Arc::clone(schema)));
    }
    let options = format_options();
    Ok(arrow::util::pretty::pretty_format_batches_with_options(&shown, &options)?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray};

    fn words(n: usize) -> RecordBatch {
        let w: Vec<String> = (0..n).map(|i| format!("w{i}")).collect();
        RecordBatch::try_from_iter(vec![("word", Arc::new(StringArray::from(w)) as ArrayRef)])
            .unwrap()
    }

    #[test]
    fn empty_batch_prints_header_and_blank_line() {
        assert_eq!(
            spark_print(5000, &[], 10).unwrap(),
            format!("{DASHES}\nTime: 5000 ms\n{DASHES}\n\n")
        );
        assert_eq!(
            spark_print(5000, &[words(0)], 10).unwrap(),
            format!("{DASHES}\nTime: 5000 ms\n{DASHES}\n\n")
        );
    }

    #[test]
    fn one_column_prints_values_and_dots_past_n() {
        let t = spark_print(1000, &[words(3), words(9)], 10).unwrap();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3 + 10 + 1 + 1);
        assert_eq!(lines[3], "w0");
        assert_eq!(lines[6], "w0");
        assert_eq!(lines[13], "...");
        assert_eq!(lines[14], "");
        let exact = spark_print(1000, &[words(10)], 10).unwrap();
        assert!(!exact.contains("..."), "exactly n rows: no dots");
    }

    #[test]
    fn tuples_nulls_and_numbers() {
        let b = RecordBatch::try_from_iter(vec![
            (
                "k",
                Arc::new(Int64Array::from(vec![Some(1), None])) as ArrayRef,
            ),
            (
                "s",
                Arc::new(StringArray::from(vec![None, Some("x y")])) as ArrayRef,
            ),
            (
                "f",
                Arc::new(Float64Array::from(vec![1.0, 2.5])) as ArrayRef,
            ),
        ])
        .unwrap();
        assert_eq!(
            spark_rows(&[b], 10).unwrap(),
            vec!["(1,null,1.0)", "(null,x y,2.5)"]
        );
    }

    #[test]
    fn boxed_table_with_and_without_rows() {
        let schema = words(0).schema();
        let t = table_print(1000, &schema, &[words(2)], 10).unwrap();
        assert!(t.contains("| word |") && t.contains("| w1   |"), "{t}");
        let empty = boxed_table(&schema, &[], 10).unwrap();
        assert_eq!(empty, "+------+\n| word |\n+------+\n+------+");
    }
}
