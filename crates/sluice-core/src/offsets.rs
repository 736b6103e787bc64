//! `offsets(<source>)`: the offset ranges a source's batch was cut from,
//! Spark's `HasOffsetRanges`. A source that reads from a log (Kafka) fixes,
//! when batch `T` is cut, a range `[from_offset, until_offset)` per
//! partition; a stream reads them as a table with one row per partition:
//! `topic, partition, from_offset, until_offset` (and `batch_time`).
//!
//! ```sql
//! CREATE STREAM ranges AS
//!   SELECT topic, partition, from_offset, until_offset FROM offsets(events);
//! ```
//!
//! The Rust API's `foreach_batch_with_offsets` hands them to the callback
//! as [`OffsetRange`]s.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use arrow::array::{Array, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{ScalarValue, plan_err};
use datafusion::error::Result as DFResult;
use datafusion::logical_expr::Expr;

use crate::slot::{BatchSlot, SlotTable};

/// The name of the table function.
pub const FUNCTION: &str = "offsets";

/// The columns of `offsets(<source>)`.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("topic", DataType::Utf8, false),
        Field::new("partition", DataType::Int32, false),
        Field::new("from_offset", DataType::Int64, false),
        Field::new("until_offset", DataType::Int64, false),
    ]))
}

/// One partition's range in a batch (Spark's `OffsetRange`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetRange {
    /// The sluice source that read it.
    pub source: String,
    pub topic: String,
    pub partition: i32,
    pub from_offset: i64,
    /// One past the last offset read: where the next batch starts.
    pub until_offset: i64,
}

/// The ranges of `batch` (in [`schema`]'s columns), read by `source`.
pub fn ranges_of(source: &str, batch: &RecordBatch) -> Vec<OffsetRange> {
    let column = |i: usize| batch.column(i).as_any();
    let (Some(topics), Some(partitions), Some(from), Some(until)) = (
        column(0).downcast_ref::<StringArray>(),
        column(1).downcast_ref::<Int32Array>(),
        column(2).downcast_ref::<Int64Array>(),
        column(3).downcast_ref::<Int64Array>(),
    ) else {
        return Vec::new();
    };
    (0..batch.num_rows())
        .filter(|&i| !topics.is_null(i))
        .map(|i| OffsetRange {
            source: source.to_string(),
            topic: topics.value(i).to_string(),
            partition: partitions.value(i),
            from_offset: from.value(i),
            until_offset: until.value(i),
        })
        .collect()
}

/// The `offsets` table function: the slot of each source that has offset
/// ranges, by name. `offsets(s)` is a slot table reading `s`'s ranges, and
/// counts as reading `s` (see [`SlotTable::reads`]).
#[derive(Debug, Default)]
pub struct OffsetsFunction {
    slots: RwLock<BTreeMap<String, Arc<BatchSlot>>>,
}

impl OffsetsFunction {
    /// Makes `offsets(source)` read `slot`.
    pub fn add(&self, source: &str, slot: Arc<BatchSlot>) {
        self.write().insert(source.to_string(), slot);
    }

    pub fn remove(&self, source: &str) {
        self.write().remove(source);
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<BatchSlot>>> {
        self.slots.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl TableFunctionImpl for OffsetsFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> DFResult<Arc<dyn TableProvider>> {
        let name = match args.exprs() {
            [Expr::Column(c)] if c.relation.is_none() => c.name.clone(),
            [Expr::Literal(ScalarValue::Utf8(Some(s)), _)] => s.clone(),
            _ => return plan_err!("offsets() takes one source name, e.g. offsets(events)"),
        };
        let slots = self.slots.read().unwrap_or_else(|e| e.into_inner());
        match slots.get(&name) {
            Some(slot) => Ok(Arc::new(
                SlotTable::new(schema(), Arc::clone(slot)).reading(&name),
            )),
            None => {
                let known: Vec<&str> = slots.keys().map(String::as_str).collect();
                plan_err!(
                    "offsets({name}): '{name}' is not a source with offset ranges (a kafka source); {}",
                    if known.is_empty() {
                        "there is none yet".to_string()
                    } else {
                        format!("these have them: {}", known.join(", "))
                    }
                )
            }
        }
    }
}
