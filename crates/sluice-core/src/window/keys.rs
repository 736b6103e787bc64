//! The keys (GROUP BY values) live in a window, each with a dense index.
//!
//! One text key column (`Utf8` or `Utf8View`, the usual word, user or page)
//! is numbered by sluice's [`KeyInterner`] (a key of up to 8 bytes hashed
//! with one multiply, the slots of rows ahead prefetched); any other key
//! columns by DataFusion's own [`GroupValues`] (vectorized, per column
//! type). Both number keys in the order first met. Keys are not removed one
//! by one: the keys whose row count in the window is zero are dropped all
//! at once and the rest get new indices
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

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, UInt32Array};
use arrow::compute::{concat, filter, take};
use arrow::datatypes::{DataType, SchemaRef};
use datafusion::error::Result as DFResult;
use datafusion::logical_expr::EmitTo;
use datafusion::physical_plan::aggregates::group_values::{GroupValues, new_group_values};
use datafusion::physical_plan::aggregates::order::GroupOrdering;

use crate::interned_keys::KeyInterner;

/// Dense indices for the window's keys.
pub struct WindowKeys {
    schema: SchemaRef,
    /// `None` for a global aggregate (no key columns).
    values: Option<KeyIndex>,
    /// If kept: every key's columns in index order, as parts (each a key
    /// column per column) to concatenate when read.
    columns: Option<Vec<Vec<ArrayRef>>>,
}

/// The index of the keys: what numbers them.
enum KeyIndex {
    /// One text column.
    Text(KeyInterner, DataType),
    /// Any other key columns.
    Values(Box<dyn GroupValues>),
}

impl KeyIndex {
    /// An empty index for keys of `schema` (at least one column).
    fn new(schema: &SchemaRef) -> DFResult<Self> {
        match schema
            .fields()
            .iter()
            .map(|f| f.data_type())
            .collect::<Vec<_>>()[..]
        {
            [t @ (DataType::Utf8 | DataType::Utf8View)] => {
                Ok(Self::Text(KeyInterner::default(), t.clone()))
            }
            _ => Ok(Self::Values(new_group_values(
                std::sync::Arc::clone(schema),
                &GroupOrdering::None,
            )?)),
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::Text(keys, _) => keys.keys(),
            Self::Values(values) => values.len(),
        }
    }

    fn intern(&mut self, columns: &[ArrayRef], out: &mut Vec<usize>) -> DFResult<()> {
        match self {
            Self::Text(keys, _) => {
                let column = &columns[0];
                if let Some(text) = column.as_string_opt::<i32>() {
                    keys.number(text, out);
                } else if let Some(text) = column.as_string_view_opt() {
                    keys.number_views(text, out);
                } else {
                    return datafusion::common::internal_err!(
                        "window keys: a text key of type {}",
                        column.data_type()
                    );
                }
                Ok(())
            }
            Self::Values(values) => values.intern(columns, out),
        }
    }

    /// Every key's columns, in index order.
    fn all(&mut self) -> DFResult<Vec<ArrayRef>> {
        match self {
            Self::Text(keys, data_type) => Ok(vec![keys.all_keys(data_type)?]),
            Self::Values(values) => values.emit(EmitTo::All),
        }
    }

    fn size(&self) -> usize {
        match self {
            Self::Text(keys, _) => keys.memory_size(),
            Self::Values(values) => values.size(),
        }
    }
}

impl WindowKeys {
    /// Keys with the columns of `schema` (empty: a global aggregate).
    pub fn new(schema: SchemaRef) -> DFResult<Self> {
        let values = if schema.fields().is_empty() {
            None
        } else {
            Some(KeyIndex::new(&schema)?)
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
        let all = values.all()?;
        let kept = all
            .iter()
            .map(|c| filter(c, live))
            .collect::<Result<Vec<_>, _>>()?;
        let mut fresh = KeyIndex::new(&self.schema)?;
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{StringArray, StringViewArray};
    use arrow::datatypes::{Field, Schema};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    /// A random text key: NULL, empty, short (up to 8 bytes) or long.
    fn random_key(rng: &mut StdRng) -> Option<String> {
        match rng.random_range(0..10) {
            0 => None,
            1 => Some(String::new()),
            2..=6 => Some(format!("w{}", rng.random_range(0..40))),
            _ => Some(format!("a longer key {}", rng.random_range(0..40))),
        }
    }

    /// A text column's keys numbered by the interner give the indices, and
    /// the key columns after drops, that DataFusion's `GroupValues` gives,
    /// call after call, for `Utf8` and `Utf8View`.
    #[test]
    fn text_keys_are_numbered_as_group_values_number_them() -> DFResult<()> {
        for data_type in [DataType::Utf8, DataType::Utf8View] {
            let schema = Arc::new(Schema::new(vec![Field::new("k", data_type.clone(), true)]));
            for seed in 0..20 {
                let mut rng = StdRng::seed_from_u64(seed);
                let mut ours = WindowKeys::new(Arc::clone(&schema))?.keeping_columns();
                assert!(matches!(ours.values, Some(KeyIndex::Text(..))));
                let mut theirs = WindowKeys {
                    schema: Arc::clone(&schema),
                    values: Some(KeyIndex::Values(new_group_values(
                        Arc::clone(&schema),
                        &GroupOrdering::None,
                    )?)),
                    columns: Some(Vec::new()),
                };
                let (mut a, mut b) = (Vec::new(), Vec::new());
                for call in 0..12 {
                    let keys: Vec<Option<String>> = (0..rng.random_range(0..60))
                        .map(|_| random_key(&mut rng))
                        .collect();
                    let column: ArrayRef = match data_type {
                        DataType::Utf8 => Arc::new(StringArray::from(keys.clone())),
                        _ => Arc::new(StringViewArray::from(keys.clone())),
                    };
                    ours.intern(&[Arc::clone(&column)], keys.len(), &mut a)?;
                    theirs.intern(&[column], keys.len(), &mut b)?;
                    let case = format!("{data_type}, seed {seed}, call {call}");
                    assert_eq!(a, b, "{case}: indices");
                    assert_eq!(ours.len(), theirs.len(), "{case}: keys");
                    assert_eq!(ours.columns()?, theirs.columns()?, "{case}: kept columns");
                    if rng.random_bool(0.3) {
                        let live: BooleanArray = (0..ours.len())
                            .map(|_| Some(rng.random_bool(0.6)))
                            .collect();
                        assert_eq!(
                            ours.retain(&live)?,
                            theirs.retain(&live)?,
                            "{case}: retained"
                        );
                        assert_eq!(ours.len(), theirs.len(), "{case}: keys after the drop");
                    }
                }
            }
        }
        Ok(())
    }
}
