//! Fitting rows to declared columns, by position: each column is cast to the
//! declared type and takes the declared name (`INSERT INTO` a queue source, a
//! `constant` source with declared columns).
//!
//! ```
//! use std::sync::Arc;
//! use arrow::array::{Int32Array, RecordBatch};
//! use arrow::datatypes::{DataType, Field, Schema};
//! use sluice_core::conform::conform_to_schema;
//! let rows = RecordBatch::try_from_iter(vec![("column1", Arc::new(Int32Array::from(vec![1])) as _)]).unwrap();
//! let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true)]));
//! let fitted = conform_to_schema(vec![rows], &schema, "source 's'").unwrap();
//! assert_eq!(fitted[0].schema(), schema);
//! ```

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::SchemaRef;

use crate::error::Result;

/// A value that does not fit its column is an error, never a silent NULL.
const STRICT: CastOptions<'static> = CastOptions {
    safe: false,
    format_options: arrow::util::display::FormatOptions::new(),
};

/// Casts and renames each batch's columns to `schema`, by position. `target`
/// names what the rows go into, for the error when the column counts differ.
pub fn conform_to_schema(
    batches: Vec<RecordBatch>,
    schema: &SchemaRef,
    target: &str,
) -> Result<Vec<RecordBatch>> {
    let mut out = Vec::with_capacity(batches.len());
    for b in batches {
        if b.num_columns() != schema.fields().len() {
            return crate::plan_err!(
                "{target} has {} columns ({}), the rows given have {}",
                schema.fields().len(),
                schema
                    .fields()
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                b.num_columns()
            );
        }
        let columns = b
            .columns()
            .iter()
            .zip(schema.fields())
            .map(|(c, f)| cast_with_options(c, f.data_type(), &STRICT))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        out.push(RecordBatch::try_new(Arc::clone(schema), columns)?);
    }
    Ok(out)
}
