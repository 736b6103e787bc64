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

use arrow::array::{Array, AsArray, Int64Array, RecordBatch, StringArray, StringViewArray};
use arrow::datatypes::{DataType, Int64Type, SchemaRef};
use arrow::error::ArrowError;
use arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::split::{SHORT, append_range};

/// Spark's separator line: 43 dashes.
pub const DASHES: &str = "-------------------------------------------";

/// How NULL prints.
const NULL: &str = "null";

fn format_options() -> FormatOptions<'static> {
    FormatOptions::default().with_null(NULL)
}

/// One column's values as text: strings and integers written straight
/// into the output, any other type through arrow's formatter.
enum Cells<'a> {
    Text(&'a StringArray),
    View(&'a StringViewArray),
    Int(&'a Int64Array),
    Formatted(ArrayFormatter<'a>),
}

impl<'a> Cells<'a> {
    fn new(column: &'a dyn Array, options: &FormatOptions<'a>) -> Result<Self, ArrowError> {
        Ok(match column.data_type() {
            DataType::Utf8 => Cells::Text(column.as_string::<i32>()),
            DataType::Utf8View => Cells::View(column.as_string_view()),
            DataType::Int64 => Cells::Int(column.as_primitive::<Int64Type>()),
            _ => Cells::Formatted(ArrayFormatter::try_new(column, options)?),
        })
    }

    fn write(&self, row: usize, out: &mut String) -> Result<(), ArrowError> {
        match self {
            Cells::Text(a) if a.is_valid(row) => out.push_str(a.value(row)),
            Cells::View(a) if a.is_valid(row) => out.push_str(a.value(row)),
            Cells::Int(a) if a.is_valid(row) => {
                out.push_str(itoa::Buffer::new().format(a.value(row)));
            }
            Cells::Text(_) | Cells::View(_) | Cells::Int(_) => out.push_str(NULL),
            Cells::Formatted(f) => f.value(row).write(out)?,
        }
        Ok(())
    }
}

/// Appends up to `limit` rows to `out` the way Spark prints a row (a value,
/// or `(a,b,c)`), each ending in a newline; returns how many. Written in
/// place: no string per row or cell.
pub fn push_spark_rows(
    batches: &[RecordBatch],
    limit: usize,
    out: &mut String,
) -> Result<usize, ArrowError> {
    let options = format_options();
    let mut written = 0;
    for batch in batches {
        if written >= limit {
            break;
        }
        let columns = batch
            .columns()
            .iter()
            .map(|c| Cells::new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()?;
        let take = (limit - written).min(batch.num_rows());
        if let [Cells::Text(text)] = columns.as_slice() {
            push_text_lines(text, take, out);
            written += take;
            continue;
        }
        let wide = columns.len() != 1;
        for row in 0..take {
            if wide {
                out.push('(');
            }
            for (i, cells) in columns.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                cells.write(row, out)?;
            }
            out.push_str(if wide { ")\n" } else { "\n" });
        }
        written += take;
    }
    Ok(written)
}

/// The first `take` values of one text column, a line each (what the text
/// sink writes for a stream of lines): room for them all is made once, and
/// each value is copied straight in, a short one as one 16-byte copy.
fn push_text_lines(text: &StringArray, take: usize, out: &mut String) {
    let offsets = text.value_offsets();
    let bytes = text.value_data();
    let value_bytes = (offsets[take] - offsets[0]) as usize;
    // SAFETY: only whole values of a valid UTF-8 array, `null` and newlines
    // are appended, so `out` stays UTF-8. (`append_range` writes 16 bytes
    // before cutting back to the value's length, within the room made here.)
    let out = unsafe { out.as_mut_vec() };
    out.reserve(value_bytes + take + NULL.len() * text.null_count() + SHORT);
    let value = |row: usize| (offsets[row] as usize, offsets[row + 1] as usize);
    match text.nulls() {
        None => {
            for row in 0..take {
                let (from, to) = value(row);
                append_range(out, bytes, from, to);
                out.push(b'\n');
            }
        }
        Some(nulls) => {
            for row in 0..take {
                if nulls.is_valid(row) {
                    let (from, to) = value(row);
                    append_range(out, bytes, from, to);
                } else {
                    out.extend_from_slice(NULL.as_bytes());
                }
                out.push(b'\n');
            }
        }
    }
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
    let mut text = spark_header(batch_time);
    push_spark_rows(batches, n, &mut text)?;
    if batches.iter().map(|b| b.num_rows()).sum::<usize>() > n {
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

    /// A text column's lines: values short and long, multi-byte, NULL,
    /// from a slice of a larger array, up to the limit.
    #[test]
    fn one_text_column_writes_each_value_a_line() {
        let values: Vec<Option<String>> = (0..200)
            .map(|i| match i % 5 {
                0 => None,
                1 => Some(String::new()),
                2 => Some(format!("{i} w{i}")),
                3 => Some(format!("a longer line of text, number {i}")),
                _ => Some(format!("€{i}ü")),
            })
            .collect();
        let array = StringArray::from(values.clone());
        let (offset, len) = (7, 150);
        let batch = RecordBatch::try_from_iter(vec![(
            "value",
            Arc::new(array.slice(offset, len)) as ArrayRef,
        )])
        .unwrap();
        for limit in [len, 40] {
            let mut text = String::from("before\n");
            assert_eq!(
                push_spark_rows(&[batch.clone()], limit, &mut text).unwrap(),
                limit
            );
            let expected: String = values[offset..offset + limit]
                .iter()
                .map(|v| format!("{}\n", v.as_deref().unwrap_or("null")))
                .collect();
            assert_eq!(text, format!("before\n{expected}"));
        }
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
        let mut text = String::new();
        assert_eq!(push_spark_rows(&[b.clone(), b], 3, &mut text).unwrap(), 3);
        assert_eq!(text, "(1,null,1.0)\n(null,x y,2.5)\n(1,null,1.0)\n");
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
