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

    /// Fails when `schema` has a column this decoding cannot fill.
    pub fn check(self, schema: &SchemaRef) -> Result<(), ArrowError> {
        match self {
            Self::Json => Decoder::new(self, schema, 1).map(|_| ()),
            Self::Csv => {
                if let Some(f) = schema.fields().iter().find(|f| f.data_type().is_nested()) {
                    return Err(ArrowError::CsvError(format!(
                        "column '{}' is {}: a csv field cannot fill it",
                        f.name(),
                        f.data_type()
                    )));
                }
                // A row of empty fields (NULLs) finds the types the csv
                // reader has no parser for.
                let nullable = Arc::new(arrow::datatypes::Schema::new(
                    schema
                        .fields()
                        .iter()
                        .map(|f| f.as_ref().clone().with_nullable(true))
                        .collect::<Vec<_>>(),
                ));
                let empty = vec![r#""""#; schema.fields().len()].join(",");
                let mut d = Decoder::new(self, &nullable, 1)?;
                d.take(empty.as_bytes())?;
                d.finish(&nullable).map(|_| ())
            }
        }
    }
}

/// An Arrow decoder fed one value at a time.
enum Decoder {
    Json(arrow::json::reader::Decoder),
    Csv(Box<arrow::csv::reader::Decoder>),
}

impl Decoder {
    /// A decoder for up to `rows` rows.
    fn new(decoding: Decoding, schema: &SchemaRef, rows: usize) -> Result<Self, ArrowError> {
        let batch_size = rows.max(1) + 1;
        Ok(match decoding {
            Decoding::Json => Self::Json(
                arrow::json::ReaderBuilder::new(Arc::clone(schema))
                    .with_batch_size(batch_size)
                    .build_decoder()?,
            ),
            Decoding::Csv => Self::Csv(Box::new(
                arrow::csv::ReaderBuilder::new(Arc::clone(schema))
                    .with_header(false)
                    .with_batch_size(batch_size)
                    .build_decoder(),
            )),
        })
    }

    /// Takes one value: `Ok(true)` when it was exactly one whole row.
    fn take(&mut self, value: &[u8]) -> Result<bool, ArrowError> {
        match self {
            Self::Json(d) => {
                let before = d.len();
                let read = d.decode(value)?;
                let end = d.decode(b"\n")?;
                Ok(read == value.len()
                    && end == 1
                    && d.len() == before + 1
                    && !d.has_partial_record())
            }
            Self::Csv(d) => {
                let before = d.capacity();
                let read = d.decode(value)?;
                let end = d.decode(b"\n")?;
                Ok(read == value.len() && end == 1 && d.capacity() + 1 == before)
            }
        }
    }

    fn finish(&mut self, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
        let rows = match self {
            Self::Json(d) => d.flush()?,
            Self::Csv(d) => d.flush()?,
        };
        Ok(rows.unwrap_or_else(|| RecordBatch::new_empty(Arc::clone(schema))))
    }
}

/// The rows of `values[i]` for each `i` of `present`, one each; `None` when
/// some value is not exactly one row (or does not decode).
fn all_at_once(
    decoding: Decoding,
    schema: &SchemaRef,
    values: &StringArray,
    present: &[usize],
) -> Option<RecordBatch> {
    let mut d = Decoder::new(decoding, schema, present.len()).ok()?;
    for &i in present {
        if !d.take(values.value(i).as_bytes()).ok()? {
            return None;
        }
    }
    d.finish(schema).ok()
}

/// The row of one value, or why it is not one.
fn one(decoding: Decoding, schema: &SchemaRef, value: &str) -> Result<RecordBatch, String> {
    let mut d = Decoder::new(decoding, schema, 1).map_err(|e| e.to_string())?;
    let whole = d.take(value.as_bytes()).map_err(|e| e.to_string())?;
    let rows = d.finish(schema).map_err(|e| e.to_string())?;
    match (whole, rows.num_rows()) {
        (true, 1) => Ok(rows),
        (_, 0) => Err("it holds no row".into()),
        _ => Err("it is not exactly one row".into()),
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
    let present: Vec<usize> = (0..values.len()).filter(|&i| values.is_valid(i)).collect();
    let (decoded, decoded_records, bad) = match all_at_once(decoding, schema, values, &present) {
        Some(rows) => (rows, present, Vec::new()),
        // One at a time, to tell the bad ones.
        None => {
            let mut good = Vec::new();
            let mut good_records = Vec::new();
            let mut bad = Vec::new();
            for i in present {
                match one(decoding, schema, values.value(i)) {
                    Ok(rows) => {
                        good.push(rows);
                        good_records.push(i);
                    }
                    Err(why) => bad.push((i, why)),
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
    fn a_value_of_two_rows_or_none_never_shifts_the_others() {
        let values = StringArray::from(vec![r#"{"id": 1} {"id": 2}"#, "", r#"{"id": 3}"#]);
        let d = decode(Decoding::Json, &schema(), &values).unwrap();
        assert_eq!(ids(&d), vec![Some(3)]);
        assert_eq!(d.records, vec![2]);
        let values = StringArray::from(vec!["1,\"open", "2,b", "3,c"]);
        let d = decode(Decoding::Csv, &schema(), &values).unwrap();
        assert_eq!(ids(&d), vec![Some(2), Some(3)]);
        assert_eq!(d.records, vec![1, 2]);
    }

    #[test]
    fn columns_a_decoding_cannot_fill_are_refused() {
        let nested = Arc::new(Schema::new(vec![Field::new(
            "tags",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            true,
        )]));
        assert!(Decoding::Csv.check(&nested).is_err());
        assert!(Decoding::Json.check(&nested).is_ok());
        assert!(Decoding::Csv.check(&schema()).is_ok());
        let bytes = Arc::new(Schema::new(vec![Field::new("b", DataType::Binary, false)]));
        assert!(Decoding::Csv.check(&bytes).is_err());
    }

    #[test]
    fn csv_values_are_one_line_each() {
        let values = StringArray::from(vec![
            Some("1,a"),
            Some("2,\"b,c\""),
            Some("x,y"),
            Some("3,d,e"),
        ]);
        let d = decode(Decoding::Csv, &schema(), &values).unwrap();
        assert_eq!(ids(&d), vec![Some(1), Some(2)]);
        assert_eq!(d.rows.column(1).as_string::<i32>().value(1), "b,c");
        assert_eq!(
            d.bad.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            vec![2, 3]
        );
    }
}
