//! The keys (GROUP BY values) live in a window, each with a dense index.
//!
//! Interning uses DataFusion's own [`GroupValues`] (vectorized, per column
//! type). Keys are not removed one by one: the keys whose row count in the
//! window is zero are dropped all at once and the rest get new indices
//! `0..n`, in their old order, so per-key state kept in vectors is remapped
//! with one `take`.
//!
//! Dropping rebuilds the index (every live key hashed again), so a window
//! may rather keep its keys' columns ([`WindowKeys::keeping_columns`]): it
//! can then read them ([`WindowKeys::columns`]) without a rebuild, and leave
//! keys without rows indexed until they are worth dropping.
//!
//! A query with no GROUP BY has exactly one key, always live (a global
//! aggregate over an empty window still gives one row).

use arrow::array::{ArrayRef, BooleanArray, UInt32Array};
use arrow::compute::{concat, filter, take};
use arrow::datatypes::SchemaRef;
use datafusion::error::Result as DFResult;
use datafusion::logical_expr::EmitTo;
use datafusion::physical_plan::aggregates::group_values::{GroupValues, new_group_values};
use datafusion::physical_plan::aggregates::order::GroupOrdering;

/// Dense indices for the window's keys.
pub struct WindowKeys {
    schema: SchemaRef,
    /// `None` for a global aggregate (no key columns).
    values: Option<Box<dyn GroupValues>>,
    /// If kept: every key's columns in index order, as parts (each a key
    /// column per column) to concatenate when read.
    columns: Option<Vec<Vec<ArrayRef>>>,
}

impl WindowKeys {
    /// Keys with the columns of `schema` (empty: a global aggregate).
    pub fn new(schema: SchemaRef) -> DFResult<Self> {
        let values = if schema.fields().is_empty() {
            None
        } else {
            Some(new_group_values(
                std::sync::Arc::clone(&schema),
                &GroupOrdering::None,
            )?)
        };
        Ok(Self {
            schema,
            values,
            columns: None,
        })
    }

    /// Also keeps the keys' columns, for [`columns`](Self::columns).
    pub fn keeping_columns(mut self) -> Self {
        self.columns = Some(Vec::new());
        self
    }

    /// The number of keys (live or not yet dropped).
    pub fn len(&self) -> usize {
        self.values.as_ref().map_or(1, |v| v.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The index of each row's key, new keys getting the next indices.
    pub fn intern(
        &mut self,
        columns: &[ArrayRef],
        rows: usize,
        out: &mut Vec<usize>,
    ) -> DFResult<()> {
        match &mut self.values {
            Some(v) => {
                let before = v.len();
                v.intern(columns, out)?;
                let Some(kept) = &mut self.columns else {
                    return Ok(());
                };
                if v.len() == before {
                    return Ok(());
                }
                // New keys get the next indices as first met: their first rows.
                let mut next = before;
                let mut first = Vec::with_capacity(v.len() - before);
                for (row, &k) in out.iter().enumerate() {
                    if k == next {
                        first.push(row as u32);
                        next += 1;
                    }
                }
                if next != v.len() {
                    return datafusion::common::internal_err!(
                        "window keys: {} new keys, {} first met",
                        v.len() - before,
                        next - before
                    );
                }
                let first = UInt32Array::from(first);
                kept.push(
                    columns
                        .iter()
                        .map(|c| take(c.as_ref(), &first, None))
                        .collect::<Result<Vec<_>, _>>()?,
                );
                Ok(())
            }
            None => {
                out.clear();
                out.resize(rows, 0);
                Ok(())
            }
        }
    }

    /// Drops the keys `live` marks false; returns the key columns of the
    /// rest, whose new indices are their positions. The caller remaps its
    /// per-key state with the same mask.
    pub fn retain(&mut self, live: &BooleanArray) -> DFResult<Vec<ArrayRef>> {
        let Some(values) = &mut self.values else {
            return Ok(Vec::new());
        };
        let all = values.emit(EmitTo::All)?;
        let kept = all
            .iter()
            .map(|c| filter(c, live))
            .collect::<Result<Vec<_>, _>>()?;
        let mut fresh =
            new_group_values(std::sync::Arc::clone(&self.schema), &GroupOrdering::None)?;
        let mut ignored = Vec::new();
        fresh.intern(&kept, &mut ignored)?;
        *values = fresh;
        if let Some(columns) = &mut self.columns {
            *columns = vec![kept.clone()];
        }
        Ok(kept)
    }

    /// Every key's columns, in index order (keys with no rows included);
    /// `None` unless [`keeping_columns`](Self::keeping_columns).
    pub fn columns(&mut self) -> DFResult<Option<Vec<ArrayRef>>> {
        let Some(parts) = &mut self.columns else {
            return Ok(None);
        };
        if parts.len() > 1 {
            let joined = (0..self.schema.fields().len())
                .map(|c| {
                    let arrays: Vec<&dyn arrow::array::Array> =
                        parts.iter().map(|p| p[c].as_ref()).collect();
                    concat(&arrays)
                })
                .collect::<Result<Vec<_>, _>>()?;
            *parts = vec![joined];
        }
        Ok(Some(match parts.first() {
            Some(columns) => columns.clone(),
            None => self
                .schema
                .fields()
                .iter()
                .map(|f| arrow::array::new_empty_array(f.data_type()))
                .collect(),
        }))
    }

    /// Bytes held.
    pub fn size(&self) -> usize {
        self.values.as_ref().map_or(0, |v| v.size())
            + self.columns.as_ref().map_or(0, |parts| {
                parts
                    .iter()
                    .flatten()
                    .map(|c| c.get_array_memory_size())
                    .sum()
            })
    }
}
