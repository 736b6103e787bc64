//! The keys (GROUP BY values) live in a window, each with a dense index.
//!
//! Interning uses DataFusion's own [`GroupValues`] (vectorized, per column
//! type). Keys are not removed one by one: at each emission the keys whose
//! row count in the window is zero are dropped all at once and the rest get
//! new indices `0..n`, in their old order, so per-key state kept in vectors
//! is remapped with one `take`.
//!
//! A query with no GROUP BY has exactly one key, always live (a global
//! aggregate over an empty window still gives one row).

use arrow::array::{ArrayRef, BooleanArray};
use arrow::compute::filter;
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
        Ok(Self { schema, values })
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
            Some(v) => v.intern(columns, out),
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
        Ok(kept)
    }

    /// Bytes held.
    pub fn size(&self) -> usize {
        self.values.as_ref().map_or(0, |v| v.size())
    }
}
