//! Arrow batches as PostgreSQL `COPY ... FROM STDIN` text: a line per row,
//! tab between fields, `\N` for NULL, and `\\`, `\n`, `\r`, `\t` escaped. The
//! server parses each field as its column's type, so an `Int32` column lands
//! in a `BIGINT` or `NUMERIC` column as it would from `psql`.
//!
//! Values are formatted straight into one buffer per batch: no allocation
//! per row or per value.
//!
//! ```
//! use std::sync::Arc;
//! use arrow::array::{Int64Array, RecordBatch, StringArray};
//! let batch = RecordBatch::try_from_iter([
//!     ("id", Arc::new(Int64Array::from(vec![Some(1), None])) as _),
//!     ("name", Arc::new(StringArray::from(vec![Some("a\tb"), Some("")])) as _),
//! ]).unwrap();
//! let encoder = sluice_connectors::postgres::copy_text::CopyText::new(batch.schema_ref()).unwrap();
//! let mut out = Vec::new();
//! encoder.encode(&batch, &mut out).unwrap();
//! assert_eq!(out, b"1\ta\\tb\n\\N\t\n");
//! ```

use std::io::Write;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Schema};
use arrow::util::display::{ArrayFormatter, FormatOptions};

/// The column types the sink writes, as PostgreSQL types (for messages and
/// the `CREATE TABLE` it suggests). `None`: not supported.
pub fn postgres_type(t: &DataType) -> Option<String> {
    Some(match t {
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => "SMALLINT".into(),
        DataType::Int32 | DataType::UInt16 => "INTEGER".into(),
        DataType::Int64 | DataType::UInt32 => "BIGINT".into(),
        DataType::UInt64 => "NUMERIC(20)".into(),
        DataType::Float16 | DataType::Float32 => "REAL".into(),
        DataType::Float64 => "DOUBLE PRECISION".into(),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("NUMERIC({p}, {s})"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "TEXT".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "BYTEA".into(),
        DataType::Date32 => "DATE".into(),
        DataType::Timestamp(_, None) => "TIMESTAMP".into(),
        DataType::Timestamp(_, Some(_)) => "TIMESTAMPTZ".into(),
        DataType::Time32(_) | DataType::Time64(_) => "TIME".into(),
        _ => return None,
    })
}

/// How one column's values are written.
#[derive(Debug, Clone, Copy)]
enum Field {
    /// Text that may need escaping.
    Text,
    /// Bytes, as `\\x` and hex.
    Binary,
    /// Anything else, as Arrow displays it (numbers, dates, timestamps):
    /// never contains a character COPY escapes.
    Plain,
}

/// The encoder for one schema (checked once, used for every batch).
#[derive(Debug)]
pub struct CopyText {
    fields: Vec<Field>,
}

impl CopyText {
    /// Err names the first column whose type PostgreSQL text COPY is not
    /// written for.
    pub fn new(schema: &Schema) -> Result<Self, String> {
        let fields = schema
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Ok(Field::Text),
                DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
                    Ok(Field::Binary)
                }
                t if postgres_type(t).is_some() => Ok(Field::Plain),
                t => Err(format!(
                    "column '{}' is {t}, which the postgres sink does not write; cast it (e.g. to TEXT)",
                    f.name()
                )),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { fields })
    }

    /// Appends `batch`'s rows to `out`.
    pub fn encode(&self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<(), String> {
        let options = FormatOptions::new().with_display_error(true);
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        let columns = batch.columns();
        for row in 0..batch.num_rows() {
            for (i, field) in self.fields.iter().enumerate() {
                if i > 0 {
                    out.push(b'\t');
                }
                let column = &columns[i];
                if column.is_null(row) {
                    out.extend_from_slice(b"\\N");
                    continue;
                }
                match field {
                    Field::Text => escape(text_at(column.as_ref(), row).as_bytes(), out),
                    Field::Binary => {
                        out.extend_from_slice(b"\\\\x");
                        for b in binary_at(column.as_ref(), row) {
                            out.extend_from_slice(&HEX[*b as usize]);
                        }
                    }
                    Field::Plain => {
                        write!(out, "{}", formatters[i].value(row)).map_err(|e| e.to_string())?
                    }
                }
            }
            out.push(b'\n');
        }
        Ok(())
    }
}

fn text_at(column: &dyn Array, row: usize) -> &str {
    match column.data_type() {
        DataType::LargeUtf8 => column.as_string::<i64>().value(row),
        DataType::Utf8View => column.as_string_view().value(row),
        _ => column.as_string::<i32>().value(row),
    }
}

fn binary_at(column: &dyn Array, row: usize) -> &[u8] {
    match column.data_type() {
        DataType::LargeBinary => column.as_binary::<i64>().value(row),
        DataType::BinaryView => column.as_binary_view().value(row),
        _ => column.as_binary::<i32>().value(row),
    }
}

/// Lower-case hex of every byte.
const HEX: [[u8; 2]; 256] = {
    let digits = b"0123456789abcdef";
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [digits[i >> 4], digits[i & 15]];
        i += 1;
    }
    t
};

/// Copies `s`, escaping what COPY's text format would otherwise read as
/// structure.
fn escape(s: &[u8], out: &mut Vec<u8>) {
    let mut start = 0;
    for (i, b) in s.iter().enumerate() {
        let escaped: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            _ => continue,
        };
        out.extend_from_slice(&s[start..i]);
        out.extend_from_slice(escaped);
        start = i + 1;
    }
    out.extend_from_slice(&s[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_only_what_copy_reads_as_structure() {
        let mut out = Vec::new();
        escape("a\\b\tc\nd\re 'x' \"y\" é".as_bytes(), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a\\\\b\\tc\\nd\\re 'x' \"y\" é"
        );
    }

    #[test]
    fn refuses_nested_types_by_name() {
        let schema = Schema::new(vec![arrow::datatypes::Field::new(
            "tags",
            DataType::List(std::sync::Arc::new(arrow::datatypes::Field::new(
                "item",
                DataType::Utf8,
                true,
            ))),
            true,
        )]);
        let err = CopyText::new(&schema).unwrap_err();
        assert!(err.starts_with("column 'tags' is List("), "{err}");
    }
}
