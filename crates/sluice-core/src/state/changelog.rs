//! What a [`StateStore`](super::StateStore) changed since a checkpoint last
//! asked: the rows it put and the keys it removed, in order, as one Arrow
//! batch a checkpoint writes as is (a delta), and reads back with
//! [`StateStore::apply_changes`](super::StateStore::apply_changes).
//!
//! A change batch has the store's columns (all nullable), then
//! [`OP_COLUMN`] (0: the row is the key's state from now; 1: the key is
//! removed, its state columns null) and [`TOUCHED_COLUMN`] (when the key
//! last got rows, for `state_timeout`; null if not kept). A full snapshot
//! is a change batch of puts only. Recording costs a reference to each put
//! batch and removed key array: no copy until the checkpoint asks.
//!
//! ```
//! use std::sync::Arc;
//! use arrow::array::{ArrayRef, Int64Array, RecordBatch};
//! use arrow::datatypes::{DataType, Field, Schema};
//! use sluice_core::state::StateStore;
//!
//! let schema = Arc::new(Schema::new(vec![
//!     Field::new("k", DataType::Int64, true),
//!     Field::new("n", DataType::Int64, false),
//! ]));
//! let rows = RecordBatch::try_new(Arc::clone(&schema), vec![
//!     Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef,
//!     Arc::new(Int64Array::from(vec![10, 20])),
//! ]).unwrap();
//! let mut store = StateStore::new(Arc::clone(&schema), 1).unwrap();
//! store.record_changes();
//! store.upsert(&rows).unwrap();
//! store.remove(&[Arc::new(Int64Array::from(vec![1])) as ArrayRef], 1).unwrap();
//! let delta = store.take_changes().unwrap();
//! assert_eq!(delta.num_rows(), 3, "two puts, one removal");
//!
//! let mut restored = StateStore::new(schema, 1).unwrap();
//! restored.apply_changes(&delta).unwrap();
//! assert_eq!(restored.snapshot().unwrap(), store.snapshot().unwrap());
//! ```

use std::sync::Arc;

use arrow::array::{ArrayRef, Int8Array, Int64Array, RecordBatch, new_null_array};
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::error::Result as DFResult;

/// Whether a change row puts or removes its key.
pub const OP_COLUMN: &str = "__sluice_op";
/// When the key last got rows (null: not kept).
pub const TOUCHED_COLUMN: &str = "__sluice_touched";
pub const PUT: i8 = 0;
pub const REMOVE: i8 = 1;

enum Change {
    Put { rows: RecordBatch, t: Option<i64> },
    Remove { keys: Vec<ArrayRef>, rows: usize },
}

/// The store's changes since they were last taken; see the module docs.
pub struct ChangeLog {
    schema: SchemaRef,
    key_columns: usize,
    changes: Vec<Change>,
}

impl ChangeLog {
    /// A log for a store of rows of `store_schema` keyed by its first
    /// `key_columns` columns.
    pub fn new(store_schema: &SchemaRef, key_columns: usize) -> Self {
        Self {
            schema: change_schema(store_schema),
            key_columns,
            changes: Vec::new(),
        }
    }

    pub fn put(&mut self, rows: &RecordBatch, t: Option<i64>) {
        if rows.num_rows() > 0 {
            self.changes.push(Change::Put {
                rows: rows.clone(),
                t,
            });
        }
    }

    pub fn remove(&mut self, keys: &[ArrayRef], rows: usize) {
        if rows > 0 {
            self.changes.push(Change::Remove {
                keys: keys.to_vec(),
                rows,
            });
        }
    }

    /// The changes since the last call, as one batch; the log is emptied.
    pub fn take(&mut self) -> DFResult<RecordBatch> {
        let changes = std::mem::take(&mut self.changes);
        let parts = changes
            .iter()
            .map(|c| match c {
                Change::Put { rows, t } => self.puts(rows, |_| *t),
                Change::Remove { keys, rows } => self.removals(keys, *rows),
            })
            .collect::<DFResult<Vec<_>>>()?;
        Ok(concat_batches(&self.schema, &parts)?)
    }

    /// Forgets what was recorded (a full snapshot is taken instead).
    pub fn clear(&mut self) {
        self.changes.clear();
    }

    /// `rows` (in the store's schema) as puts, key `i` last touched at `touched(i)`.
    pub fn puts(
        &self,
        rows: &RecordBatch,
        touched: impl Fn(usize) -> Option<i64>,
    ) -> DFResult<RecordBatch> {
        let n = rows.num_rows();
        let mut columns = rows.columns().to_vec();
        columns.push(Arc::new(Int8Array::from(vec![PUT; n])) as ArrayRef);
        columns.push(Arc::new(Int64Array::from_iter((0..n).map(touched))));
        Ok(RecordBatch::try_new(Arc::clone(&self.schema), columns)?)
    }

    fn removals(&self, keys: &[ArrayRef], rows: usize) -> DFResult<RecordBatch> {
        let fields = self.schema.fields();
        let state_end = fields.len() - 2;
        let mut columns: Vec<ArrayRef> = keys[..self.key_columns].to_vec();
        for f in &fields[self.key_columns..state_end] {
            columns.push(new_null_array(f.data_type(), rows));
        }
        columns.push(Arc::new(Int8Array::from(vec![REMOVE; rows])));
        columns.push(new_null_array(&DataType::Int64, rows));
        Ok(RecordBatch::try_new(Arc::clone(&self.schema), columns)?)
    }
}

/// The schema of a store's change batches: its columns made nullable, then
/// the op and touched columns.
pub fn change_schema(store_schema: &SchemaRef) -> SchemaRef {
    let mut fields: Vec<Field> = store_schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    fields.push(Field::new(OP_COLUMN, DataType::Int8, false));
    fields.push(Field::new(TOUCHED_COLUMN, DataType::Int64, true));
    Arc::new(Schema::new(fields))
}
