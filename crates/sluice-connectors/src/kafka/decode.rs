//! `format = 'json' | 'csv'`: each record's value decoded into the columns
//! the source declares (Spark's `from_json` / a CSV line per record).
//!
//! ```sql
//! CREATE SOURCE clicks (user_id BIGINT, page TEXT) WITH (
//!   connector = 'kafka', brokers = '127.0.0.1:9092', topics = 'clicks', format = 'json');
//! ```
//!
//! A batch's values are decoded at once, as one JSON-lines or CSV text;
//! only when that fails is each value decoded alone, to find the records
//! that do not decode (they are reported by the source and left out). A
//! record without a value (a tombstone) gets NULL in every declared column.
//! JSON keys that are not declared columns are ignored; a CSV value is one
//! line without a header, its fields in the declared order.

use std::sync::Arc;

use arrow::array::{Array, RecordBatch, StringArray, UInt32Array};
use arrow::compute::{concat_batches, take};
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;

/// How values are decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoding {
    Json,
    Csv,
}

impl Decoding {
    pub fn name(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Csv => "csv",
        }
    }

    /// The rows of `text` (several values, one after another; about
    /// `expected` rows).
    fn rows(
        self,
        schema: &SchemaRef,
        text: &[u8],
        expected: usize,
    ) -> Result<RecordBatch, ArrowError> {
        let batch_size = expected.clamp(1, 64 * 1024);
        let mut rows = Vec::new();
        match self {
            Self::Json => {
                let mut d = arrow::json::ReaderBuilder::new(Arc::clone(schema))
                    .with_batch_size(batch_size)
                    .build_decoder()?;
                let mut at = 0;
                while at < text.len() {
                    let read = d.decode(&text[at..])?;
                    if read == 0 {
                        break;
                    }
                    at += read;
                    rows.extend(d.flush()?);
                }
                rows.extend(d.flush()?);
            }
            Self::Csv => {
                let mut d = arrow::csv::ReaderBuilder::new(Arc::clone(schema))
                    .with_header(false)
                    .with_batch_size(batch_size)
                    .build_decoder();
                let mut at = 0;
                loop {
                    let read = d.decode(&text[at..])?;
                    at += read;
                    if let Some(b) = d.flush()? {
                        rows.push(b);
                    }
                    if read == 0 {
                        break;
                    }
                }
            }
        }
        concat_batches(schema, &rows)
    }
}

/// The decoded rows of `values`, one per record but those that do not
/// decode, which are listed (index into `values`, why) instead.
pub struct Decoded {
    pub rows: RecordBatch,
    /// For each row of `rows`, the record it is (ascending).
    pub records: Vec<u32>,
    pub bad: Vec<(usize, String)>,
}

pub fn decode(
    decoding: Decoding,
    schema: &SchemaRef,
    values: &StringArray,
) -> Result<Decoded, ArrowError> {
    // The values that are there, as one text.
    let present: Vec<usize> = (0..values.len()).filter(|&i| values.is_valid(i)).collect();
    let mut text = Vec::with_capacity(values.value_data().len() + present.len());
    for &i in &present {
        text.extend_from_slice(values.value(i).as_bytes());
        text.push(b'\n');
    }
    let (decoded, decoded_records, bad) = match decoding.rows(schema, &text, present.len()) {
        Ok(rows) if rows.num_rows() == present.len() => (rows, present, Vec::new()),
        // One at a time, to tell the bad ones.
        _ => {
            let mut good = Vec::new();
            let mut good_records = Vec::new();
            let mut bad = Vec::new();
            for i in present {
                match decoding.rows(schema, values.value(i).as_bytes(), 1) {
                    Ok(rows) if rows.num_rows() == 1 => {
                        good.push(rows);
                        good_records.push(i);
                    }
                    Ok(rows) => bad.push((i, format!("it holds {} rows, not one", rows.num_rows()))),
                    Err(e) => bad.push((i, e.to_string())),
                }
            }
            (concat_batches(schema, &good)?, good_records, bad)
        }
    };
    // Every record but the bad ones, in order; a missing value gets NULLs.
    let mut indices = Vec::with_capacity(values.len());
    let mut records = Vec::with_capacity(values.len());
    let mut next_decoded = decoded_records.iter().enumerate().peekable();
    let mut next_bad = bad.iter().map(|(i, _)| *i).peekable();
    for i in 0..values.len() {
        if next_bad.peek() == Some(&i) {
            next_bad.next();
            continue;
        }
        match next_decoded.peek() {
            Some(&(row, &record)) if record == i => {
                indices.push(Some(row as u32));
                next_decoded.next();
            }
            _ => indices.push(None),
        }
        records.push(i as u32);
    }
    let indices = UInt32Array::from(indices);
    let columns = decoded
        .columns()
        .iter()
        .map(|c| take(c, &indices, None))
        .collect::<Result<Vec<_>, _>>()?;
    let rows = RecordBatch::try_new_with_options(
        Arc::clone(schema),
        columns,
        &arrow::array::RecordBatchOptions::new().with_row_count(Some(indices.len())),
    )?;
    Ok(Decoded { rows, records, bad })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{AsArray, Int64Array};
    use arrow::datatypes::{DataType, Field, Int64Type, Schema};

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
        ]))
    }

    fn ids(d: &Decoded) -> Vec<Option<i64>> {
        d.rows
            .column(0)
            .as_primitive::<Int64Type>()
            .iter()
            .collect()
    }

    #[test]
    fn json_values_decode_at_once_and_bad_ones_are_named() {
        let values = StringArray::from(vec![
            Some(r#"{"id": 1, "name": "a", "extra": true}"#),
            None,
            Some(r#"{"id": "x"}"#),
            Some("{\n  \"id\": 4\n}"),
            Some("not json"),
        ]);
        let d = decode(Decoding::Json, &schema(), &values).unwrap();
        assert_eq!(ids(&d), vec![Some(1), None, Some(4)]);
        assert_eq!(d.records, vec![0, 1, 3]);
        assert_eq!(
            d.bad.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            vec![2, 4]
        );
        let all_good = StringArray::from(vec![r#"{"id": 7}"#, r#"{"id": 8, "name": "b"}"#]);
        let d = decode(Decoding::Json, &schema(), &all_good).unwrap();
        assert_eq!(
            d.rows.column(0).as_ref(),
            &Int64Array::from(vec![7, 8]) as &dyn Array
        );
        assert!(d.bad.is_empty());
    }

    #[test]
    fn csv_values_are_one_line_each() {
        let values = StringArray::from(vec![Some("1,a"), Some("2,\"b,c\""), Some("x,y"), Some("3,d,e")]);
        let d = decode(Decoding::Csv, &schema(), &values).unwrap();
        assert_eq!(ids(&d), vec![Some(1), Some(2)]);
        assert_eq!(d.rows.column(1).as_string::<i32>().value(1), "b,c");
        assert_eq!(
            d.bad.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            vec![2, 3]
        );
    }
}
